"""Exercise feedback for the notebooks: `check(answer, expected)` prints ✅ or ❌ with a hint."""

from __future__ import annotations

from typing import Any

import numpy as np


def _matches(answer: Any, expected: Any, tol: float) -> bool:
    """True when answer equals expected: numbers/arrays within tol, strings ignoring case and spaces."""
    if callable(expected):
        return bool(expected(answer))
    if isinstance(expected, str):
        return isinstance(answer, str) and answer.strip().lower() == expected.strip().lower()
    if isinstance(expected, (set, frozenset, dict)):
        return answer == expected
    a, e = np.asarray(answer), np.asarray(expected)
    if a.shape != e.shape:
        return False
    if np.issubdtype(e.dtype, np.number) and np.issubdtype(a.dtype, np.number):
        return bool(np.allclose(a, e, rtol=tol, atol=tol, equal_nan=True))
    return bool(np.array_equal(a, e))


def check(answer: Any, expected: Any, tol: float = 1e-6, hint: str = "", name: str = "answer") -> bool:
    """Friendly exercise feedback: print ✅ or ❌ (+ hint) and return True/False; never raises.

    `expected` may be a value (numbers and arrays are compared within `tol`, strings ignoring case)
    or a callable that takes the answer and returns True/False, e.g.
    `check(my_function, lambda f: f(2) == 4)` or `check(acc, lambda a: 0.5 < a <= 1)`.
    Notebooks end a checker line with `;` so Jupyter shows the printed line, not the returned bool.
    """
    if answer is None or answer is Ellipsis:
        print(f"❌ {name}: not answered yet — replace the `...`/None with your answer and re-run the cell.")
        return False
    try:
        ok = _matches(answer, expected, tol)
    except Exception as err:  # a learner's function may crash: report it, do not raise
        print(f"❌ {name}: checking raised {type(err).__name__}: {err}")
        ok = None
    if ok:
        print(f"✅ {name}: correct!")
        return True
    if ok is not None:
        shown = repr(answer)
        print(f"❌ {name}: not quite (got {shown[:80] + ('...' if len(shown) > 80 else '')}).")
    if hint:
        print(f"   Hint: {hint}")
    return False
