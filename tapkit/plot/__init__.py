"""Figures and widgets. One colour code for events everywhere: divisions red, deaths cyan."""

from tapkit.data.movie import DEATH, DIVISION

EVENT_COLORS = {DIVISION: (1.0, 0.1, 0.1), DEATH: (0.1, 0.9, 1.0)}  # red divisions, cyan deaths
EVENT_NAMES = {DIVISION: "division", DEATH: "death"}

__all__ = ["EVENT_COLORS", "EVENT_NAMES"]
