"""The course: notebook configuration, exercise checks, the papermill runner, results and profiles.

Notebooks call `tapkit.course.configure`, `load_data`, `get_tap_model` / `get_pretext_model`
(config.py) and `check` (checks.py). Kernel-side modules: config, parameters, checks, results,
profiles. CLI side: runner (papermill), notebooks.
"""

from tapkit.course.checks import check
from tapkit.course.config import (
    configure,
    get_pretext_model,
    get_tap_model,
    load_data,
    segmentation_frames,
)

__all__ = [
    "configure",
    "load_data",
    "segmentation_frames",
    "get_tap_model",
    "get_pretext_model",
    "check",
]
