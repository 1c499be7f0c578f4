"""Figures and widgets. One colour code for events everywhere: divisions red, deaths cyan.

The notebooks use one namespace, `import tapkit.plot as tplot`: `tplot.frames.show_frames(...)`,
`tplot.tap...`; the submodules load on first use (matplotlib is not imported by `import tapkit.plot`
alone).
"""

import importlib
from typing import Any

from tapkit.data.movie import DEATH, DIVISION

EVENT_COLORS = {DIVISION: (1.0, 0.1, 0.1), DEATH: (0.1, 0.9, 1.0)}  # red divisions, cyan deaths
EVENT_NAMES = {DIVISION: "division", DEATH: "death"}

SUBMODULES = (
    "calibration",
    "divisions",
    "events",
    "frames",
    "gradcam",
    "inspect",
    "pretext",
    "segmentation",
    "style",
    "tap",
)

__all__ = ["EVENT_COLORS", "EVENT_NAMES", *SUBMODULES]


def __getattr__(name: str) -> Any:
    """tapkit.plot.<submodule> without importing it first (PEP 562)."""
    if name in SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
