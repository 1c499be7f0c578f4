"""One colour and line style per compared series, the same in every figure, never an event colour.

Red and cyan mean divisions and deaths in this course (`tapkit.plot.EVENT_COLORS`), so no method is
drawn in them. A row "features · head" gets its features' hue, dark for a conv / ResNet head
(solid line) and light for a linear head (dashed); rows trained end to end are dark with square
markers. Strategy codes (A0 ... C1) and the consistency variants of notebook 08 have fixed colours
too; any other name gets the next unused palette colour.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

# features -> (dark, light): tab20's pairs without red and cyan, the light ones a little darker
HUES = {
    "tap": ("#1f77b4", "#7da0d8"),
    "mim": ("#ff7f0e", "#fdae6b"),
    "mim-intensity": ("#2ca02c", "#74c476"),
    "mim-channel": ("#9467bd", "#b5a1d6"),
    "contrastive": ("#8c564b", "#c49c94"),
    "random (frozen)": ("#555555", "#a3a3a3"),
    "tap fine-tuned": ("#e377c2", "#f4a9d9"),
    "end to end": ("#8a8b12", "#c9ca4f"),
    "from scratch": ("#8a8b12", "#c9ca4f"),  # supervised, new weights
}
NAMED = {  # other series of the course's figures
    "segmentation only": "#1f77b4",
    "alternating": "#ff7f0e",
    "consistency only": "#2ca02c",
    "before (pretrained)": "#555555",
    "ground truth": "#000000",
    "train": "#1f77b4",
    "validation": "#ff7f0e",
    "chance": "#808080",
}
STRATEGY_FEATURES = {"A": "tap", "B": "random (frozen)", "C": "end to end"}
FALLBACK = (
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#7b4173",
    "#5254a3",
    "#8ca252",
    "#bd9e39",
    "#a55194",
    "#6b6ecf",
    "#b5cf6b",
    "#e7ba52",
    "#ce6dbd",
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#555555",
)
LINEAR_HEADS, DEEP_HEADS = ("linear",), ("conv", "resnet")


def _rgb(color: Any) -> np.ndarray:
    """A colour as an RGB array in [0, 1]."""
    from matplotlib.colors import to_rgb

    return np.asarray(to_rgb(color))


def is_event_like(color: Any, distance: float = 0.3) -> bool:
    """True for a colour close to an event colour (red divisions, cyan deaths), such as matplotlib's
    tab:red, red, tab:cyan or cyan (RGB distance < `distance`)."""
    from tapkit.plot import EVENT_COLORS

    return any(np.linalg.norm(_rgb(color) - _rgb(r)) < distance for r in EVENT_COLORS.values())


def parse(name: str) -> tuple[str, str]:
    """(features, head kind) of a series name: 'mim · conv' -> ('mim', 'conv');
    'A1' -> ('tap', 'resnet'); a row trained end to end ('from scratch') -> (name, 'end to end');
    anything else -> (name, '')."""
    if re.fullmatch(r"[ABC][01]", name):
        return STRATEGY_FEATURES[name[0]], ("linear" if name[1] == "0" else "resnet")
    if " · " in name:
        features, head = name.rsplit(" · ", 1)
        return features, head.strip().lower()
    return name, "end to end" if name in HUES else ""


def _known(name: str) -> "dict[str, Any] | None":
    """The fixed style of a known name, else None."""
    if name in NAMED:
        return {
            "color": NAMED[name],
            "ls": "--" if name in ("ground truth", "chance") else "-",
            "marker": "o",
        }
    features, head = parse(name)
    if features not in HUES:
        return None
    dark, light = HUES[features]
    if head in LINEAR_HEADS:
        return {"color": light, "ls": "--", "marker": "o"}
    if head == "end to end":
        return {"color": dark, "ls": "-", "marker": "s"}
    return {"color": dark, "ls": "-", "marker": "o"}


def series_styles(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{name: {color, ls, marker}}: fixed styles for the course's names, the next free palette
    colour for others; no two names share a colour and none is red or cyan."""
    out: dict[str, dict[str, Any]] = {}
    names = list(dict.fromkeys(names))
    for name in names:
        style = _known(name)
        if style is not None and style["color"] not in {s["color"] for s in out.values()}:
            out[name] = style
    used = {s["color"] for s in out.values()}
    free = iter(c for c in FALLBACK if c not in used)
    for name in names:
        if name not in out:
            features, head = parse(name)
            out[name] = {
                "color": next(free, "#000000"),
                "ls": "--" if head in LINEAR_HEADS else "-",
                "marker": "s" if head == "end to end" else "o",
            }
    return {name: out[name] for name in names}


def series_colors(names: Iterable[str]) -> dict[str, str]:
    """{name: colour} of series_styles."""
    return {name: s["color"] for name, s in series_styles(names).items()}


def budget_ticks(ax: Any, ticks: Mapping[float, str], axis: str = "x") -> None:
    """Ticks only at the budgets run (position -> label, e.g. {20: 'all (20)'}), no minor ticks
    (a log axis would otherwise label 4x10^1)."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    positions = sorted(ticks)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(positions))
    target.set_major_formatter(FixedFormatter([ticks[p] for p in positions]))
    target.set_minor_locator(NullLocator())


def integer_ticks(ax: Any, axis: str = "x") -> None:
    """Whole-number ticks (frames, epochs, steps, frame pairs)."""
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(
        MaxNLocator(integer=True, min_n_ticks=1)
    )


def log_limits(values: Sequence[float], pad: float = 1.25) -> tuple[float, float]:
    """Limits of a log axis holding every positive value with a margin."""
    v = np.asarray([x for x in values if x > 0], dtype=float)
    return (float(v.min()) / pad, float(v.max()) * pad) if len(v) else (0.5, 2.0)
