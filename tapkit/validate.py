"""The package's argument checks, written once: whole numbers, numbers in a range, choices, flags.

Each factory returns a check `check(name, value) -> cleaned value` that raises `InputError` naming
the parameter, what is wrong and a value that works, e.g.
"epochs=0: use a whole number >= 1, e.g. 10.".
`tapkit.course.parameters` (notebook parameters), `tapkit.ssl.train_config.TrainConfig` (training
settings) and the functions that check their own arguments (`Movie.bin`, `embed`, ...) all use
these, so one kind of mistake reads the same everywhere.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from tapkit.data.movie import InputError

Check = Callable[[str, Any], Any]


def is_whole(value: Any) -> bool:
    """An int (numpy ints too), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def whole(
    low: int,
    none_means: "str | None" = None,
    example: "int | None" = None,
    where: str = "",
    hint: str = "",
) -> Check:
    """A check for a whole number >= low (or None, when `none_means` says what None does).

    `where` prefixes the message (e.g. "Movie.bin: "), `hint` ends it
    (e.g. " (1: full resolution)").
    """

    def check(name: str, value: Any) -> "int | None":
        if value is None and none_means is not None:
            return None
        if not is_whole(value) or value < low:
            also = f", or None ({none_means})" if none_means else ""
            raise InputError(
                f"{where}{name}={value!r}: use a whole number >= {low}, "
                f"e.g. {low if example is None else example}{hint}{also}."
            )
        return int(value)

    return check


def number(
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
    example: float = 0.5,
    where: str = "",
    hint: str = "",
) -> Check:
    """A check for a finite number in [low, high] (ends excluded when *_open); returns it as a
    float."""

    def check(name: str, value: Any) -> float:
        ok = (
            isinstance(value, (int, float, np.number))
            and not isinstance(value, bool)
            and math.isfinite(value)
        )
        ok = (
            ok
            and (low < value if low_open else low <= value)
            and (value < high if high_open else value <= high)
        )
        if not ok:
            span = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise InputError(
                f"{where}{name}={value!r}: use a number in {span}, e.g. {example}{hint}."
            )
        return float(value)

    return check


def choice(
    options: "tuple | Callable[[], tuple]", none_means: "str | None" = None, where: str = ""
) -> Check:
    """A check for one of `options` (a tuple, or a function giving it, for lists that live
    elsewhere)."""

    def check(name: str, value: Any) -> Any:
        allowed = options() if callable(options) else options
        if value is None and none_means is not None:
            return None
        if value not in allowed:
            also = f", or None ({none_means})" if none_means else ""
            raise InputError(
                f"{where}{name}={value!r}: choose one of {', '.join(map(repr, allowed))}{also}."
            )
        return value

    return check


def flag(name: str, value: Any) -> bool:
    """True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}={value!r}: use True or False.")
    return bool(value)


def optional(check: Check) -> Check:
    """`check`, but None (the default of the data or the profile) passes."""
    return lambda name, value: None if value is None else check(name, value)


optional_flag = optional(flag)  # None, True or False
