"""The course: notebook configuration, exercise checks, the papermill runner, results and profiles.

Notebooks call `tapkit.course.configure`, `load_data`, `get_tap_model` and `check`.
"""

from tapkit.course.config import check, configure, get_tap_model, load_data

__all__ = ["configure", "load_data", "get_tap_model", "check"]
