"""Exercise feedback for the notebooks: `check(answer, expected)` prints ✅ or ❌ with a hint.

For a function exercise (`check(my_function, checker)`), the checker is called with a recording copy
of the learner's function: a stub (`...` or no return) is reported as "not answered yet", and a
wrong function is shown with what it returned on the checker's input next to what the reference
returns there (the reference: `check(..., reference=fn)`, a checker's `.reference` attribute, or
`REFERENCES[name]`, the course's reference of each function exercise by the name the notebook checks
it under).

Where later cells of a notebook use the learner's answer (`check(..., stop=True)`), a wrong or
missing answer stops the notebook with `ExerciseNotSolved`: which exercise, what is wrong
(printed above it) and how to go on, instead of the course carrying on with a broken answer.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any, Callable

import numpy as np

UNANSWERED = "replace the `...` with your answer and re-run the cell"
STOP_FIX = (
    "fix your answer in the cell(s) above (the lines above say what is wrong), run them again, "
    "then this cell: the cells below use your answer"
)
# calls of the learner's function recorded per check (inputs deep-copied for the reference)
MAX_CALLS = 8


def _darker_is_later(images: Any) -> float:
    """Notebook 00: the fraction of consecutive frame pairs whose mean intensity goes down."""
    means = np.asarray(images).mean(axis=(1, 2))
    return float(np.mean(np.diff(means) < 0))


def _flip_pairs(x: Any, flip: Any) -> tuple[Any, Any]:
    """Notebook 01: the pairs swapped where flip, and the slot of the earlier frame."""
    from tapkit.ssl.tap import flip_pairs

    return flip_pairs(x, flip), flip.long()


def _trainable_parameters(model: Any, kind: str) -> Any:
    """Notebook 04: freeze what strategy kind keeps fixed; the parameters the optimiser trains."""
    from tapkit.downstream.events.strategies import trainable_parameters

    return trainable_parameters(model, kind)


def _masked_loss(pred: Any, target: Any, mask: Any) -> Any:
    """Notebook 07: mean |pred - target| over the hidden pixels."""
    from tapkit.ssl.mim import masked_loss

    return masked_loss(pred, target, mask)


def _soft_dice(p: Any, t: Any, eps: float = 1e-6) -> Any:
    """Notebook 08: soft Dice over all elements."""
    from tapkit.downstream.segmentation.metrics import soft_dice

    return soft_dice(p, t, eps)


def _consistency_step(net: Any, optimizer: Any, x_a: Any, x_b: Any) -> float:
    """Notebook 08: one Siamese consistency step; returns the loss."""
    from tapkit.downstream.segmentation.consistency import consistency_step

    return consistency_step(net, optimizer, x_a, x_b)


REFERENCES: dict[
    str, Callable[..., Any]
] = {  # function exercise name (check's `name`) -> reference solution
    "darker_is_later": _darker_is_later,
    "flip_pairs": _flip_pairs,
    "trainable_parameters": _trainable_parameters,
    "my_masked_loss": _masked_loss,
    "my_soft_dice": _soft_dice,
    "my_consistency_step": _consistency_step,
}


def _unanswered(value: Any) -> bool:
    """True for None, `...`, or a tuple / list holding one of them (e.g.
    `precision, recall = ..., ...`)."""
    # np.asarray(...)
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 0:
        value = value.item()
    if value is None or value is Ellipsis:
        return True
    return (
        isinstance(value, (tuple, list))
        and 0 < len(value) <= 8
        and any(v is None or v is Ellipsis for v in value)
    )


def _is_function(answer: Any) -> bool:
    """A learner's function (not a model or other callable object that is itself the answer)."""
    return (
        inspect.isfunction(answer)
        or inspect.ismethod(answer)
        or isinstance(answer, functools.partial)
    )


def _short(text: str, n: int = 100) -> str:
    """text cut to n characters with '...'."""
    return text if len(text) <= n else text[: n - 3] + "..."


def describe(value: Any) -> str:
    """A short, readable description of a value: numbers, small arrays / tensors in full, big ones
    by shape."""
    # a network's parameter: which one matters, not its values
    if type(value).__name__ == "Parameter":
        return f"Parameter{tuple(value.shape)}"
    # a torch tensor, without importing torch
    if hasattr(value, "detach") and hasattr(value, "shape"):
        name, value = (
            "tensor",
            value.detach().cpu().float().numpy()
            if value.is_floating_point()
            else value.detach().cpu().numpy(),
        )
    elif isinstance(value, np.ndarray):
        name = "array"
    else:
        name = None
    if name is not None:
        if value.ndim == 0:
            return (
                f"{value.item():.6g}"
                if np.issubdtype(value.dtype, np.floating)
                else repr(value.item())
            )
        if value.size <= 12:
            body = np.array2string(value, precision=4, separator=", ", threshold=12).replace(
                "\n", ""
            )
            return (
                f"{name}({body})"
                if value.ndim == 1
                else f"{name} of shape {value.shape}: {_short(body, 80)}"
            )
        finite = value[np.isfinite(value)] if np.issubdtype(value.dtype, np.floating) else value
        stats = (
            f", mean {finite.mean():.4g}"
            if finite.size and np.issubdtype(value.dtype, np.number)
            else ""
        )
        return f"{name} of shape {tuple(value.shape)} ({value.dtype}{stats})"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (tuple, list)):
        if len(value) <= 4:
            inner = ", ".join(describe(v) for v in value)
            return _short(f"({inner})" if isinstance(value, tuple) else f"[{inner}]", 160)
        kinds = sorted({type(v).__name__ for v in value})
        return f"{type(value).__name__} of {len(value)} items ({', '.join(kinds)})"
    if type(value).__module__.startswith("torch") or hasattr(value, "parameters"):
        return f"<{type(value).__name__}>"  # a model, an optimiser: its kind, not its repr
    return _short(repr(value))


def _as_numpy(v: Any) -> np.ndarray:
    """A tensor (any device, dtype) or array-like as a numpy array."""
    return v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v)


def _same(a: Any, b: Any, tol: float = 1e-5) -> bool:
    """True when two returned values agree (numbers / arrays / tensors within tol, containers item
    by item)."""
    try:
        if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
            return len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b))
        as_np = _as_numpy
        x, y = as_np(a), as_np(b)
        if x.shape != y.shape:
            return False
        if np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number):
            return bool(np.allclose(x, y, rtol=tol, atol=tol, equal_nan=True))
        return bool(np.array_equal(x, y))
    except Exception:
        return False


def _difference(a: Any, b: Any, where: str = "") -> str:
    """Where two values of the same look first differ: 'item 0: 8 of 24 values differ, first at
    (0, 0, 0, 0, 0): 4 vs 0'."""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if not _same(x, y):
                return _difference(x, y, f"{where}item {i}: ")
        return ""
    try:
        as_np = _as_numpy
        x, y = as_np(a), as_np(b)
        if x.shape != y.shape or x.ndim == 0:
            return ""
        close = (
            np.isclose(x, y, rtol=1e-5, atol=1e-5) if np.issubdtype(x.dtype, np.number) else x == y
        )
        bad = np.argwhere(~close)
        if not len(bad):
            return ""
        i = tuple(int(k) for k in bad[0])
        return (
            f"{where}{len(bad)} of {x.size} values differ, first at {i}: "
            f"{describe(x[i])} vs {describe(y[i])}"
        )
    except Exception:
        return ""


class _Call:
    """One call of the learner's function: its arguments (named), what it returned or raised, the
    reference's value."""

    def __init__(self, names: list[str], args: tuple, kwargs: dict) -> None:
        self.inputs = [(n, a) for n, a in zip(names, args)] + list(kwargs.items())
        self.result: Any = None
        self.error: "BaseException | None" = None
        self.expected: Any = None
        self.has_expected = False

    def describe_inputs(self) -> str:
        """'x = tensor of shape (3, 2, 1, 2, 2) (float32, ...),
        flip = tensor([ True, False,  True])'."""
        return ", ".join(f"{n} = {describe(v)}" for n, v in self.inputs) or "no arguments"


def _recorder(fn: Callable, reference: "Callable | None", calls: list[_Call]) -> Callable:
    """fn, recording each call (inputs, result or error); with a reference, its value on a copy of
    the same inputs."""
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(calls) >= MAX_CALLS:
            return fn(*args, **kwargs)
        names = [params[i] if i < len(params) else f"arg{i}" for i in range(len(args))]
        call, copied = _Call(names, args, kwargs), None
        calls.append(call)
        if reference is not None:
            try:  # one memo: a copied optimiser keeps the copied net's parameters
                copied = copy.deepcopy((args, kwargs))
            except Exception:
                copied = None
        try:
            result = fn(*args, **kwargs)
        except BaseException as err:
            call.error = err
            raise
        finally:
            if copied is not None:
                try:
                    call.expected, call.has_expected = reference(*copied[0], **copied[1]), True
                except Exception:
                    pass
        # as returned: the checker may change it later (an optimiser step on returned parameters)
        try:
            call.result = copy.deepcopy(result)
        except Exception:
            call.result = result
        return result

    return wrapper


def _report_function(name: str, calls: list[_Call], checker_error: "BaseException | None") -> None:
    """Explain a failed function exercise from the recorded calls (first the call that went
    wrong)."""
    crashed = next((c for c in calls if c.error is not None), None)
    if crashed is not None:
        print(f"❌ {name}: your function raised {type(crashed.error).__name__}: {crashed.error}")
        print(f"   on the checker's input: {_short(crashed.describe_inputs(), 300)}")
        return
    if checker_error is not None:
        print(f"❌ {name}: checking raised {type(checker_error).__name__}: {checker_error}")
    else:
        print(f"❌ {name}: not quite.")
    if not calls:
        return
    wrong = next((c for c in calls if c.has_expected and not _same(c.result, c.expected)), calls[0])
    print(f"   on the checker's input: {_short(wrong.describe_inputs(), 300)}")
    print(f"   your function returned: {_short(describe(wrong.result), 300)}")
    if wrong.has_expected:
        print(f"   expected:               {_short(describe(wrong.expected), 300)}")
        if describe(wrong.result) == describe(wrong.expected) and _difference(
            wrong.result, wrong.expected
        ):
            print(f"   difference:             {_difference(wrong.result, wrong.expected)}")
        if all(_same(c.result, c.expected) for c in calls if c.has_expected):
            print(
                "   (the returned values agree: the checker also tests what the function does, see "
                "the hint)"
            )


def _matches(answer: Any, expected: Any, tol: float) -> bool:
    """True when answer equals expected: numbers/arrays within tol, strings ignoring case and
    spaces."""
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


def _shape_note(answer: Any, expected: Any) -> str:
    """' (shape (4,), expected (3,))' when array-like answer and expected differ in shape, else
    ''."""
    if callable(expected) or isinstance(expected, (str, set, frozenset, dict)):
        return ""
    try:
        a, e = np.shape(answer), np.shape(expected)
    except Exception:
        return ""
    return f"; shape {a}, expected shape {e}" if a != e else ""


class ExerciseNotSolved(Exception):
    """Raised by `check(..., stop=True)` when an answer that later cells use is wrong or missing."""


def check(
    answer: Any,
    expected: Any,
    tol: float = 1e-6,
    hint: str = "",
    name: str = "answer",
    reference: "Callable | None" = None,
    stop: bool = False,
    exercise: str = "",
) -> bool:
    """Friendly exercise feedback: print ✅ or ❌ (+ hint) and return True/False.

    With `stop=True` (the cells below use the answer) a wrong or missing answer raises
    ExerciseNotSolved after the feedback, naming the `exercise` (e.g. "Exercise 1 · Flip and label")
    and the fix; otherwise `check` never raises.

    `expected` may be a value (numbers and arrays are compared within `tol`, strings ignoring case)
    or a callable that takes the answer and returns True/False, e.g.
    `check(my_function, lambda f: f(2) == 4)` or `check(acc, lambda a: 0.5 < a <= 1)`.
    An answer left at `...` / None (or a function that returns None or `...`) is "not answered yet".
    For a function that fails its checker, the feedback shows its value on the checker's input next
    to the reference's (`reference`, else `expected.reference`, else `REFERENCES[name]`), when there
    is one. Notebooks end a checker line with `;` so Jupyter shows the printed line, not the
    returned bool.
    """
    ok = _check(answer, expected, tol, hint, name, reference)
    if stop and not ok:
        where = f"{exercise} (`{name}`)" if exercise else f"the exercise `{name}`"
        raise ExerciseNotSolved(f"{where} is not solved yet: {STOP_FIX}.")
    return ok


def _check(
    answer: Any, expected: Any, tol: float, hint: str, name: str, reference: "Callable | None"
) -> bool:
    """check without stopping: print the feedback, return True/False."""
    if _unanswered(answer):
        print(f"❌ {name}: not answered yet — {UNANSWERED}.")
        return False
    calls: list[_Call] = []
    function = _is_function(answer) and callable(expected)
    if function:
        reference = reference or getattr(expected, "reference", None) or REFERENCES.get(name)
        answer = _recorder(answer, reference, calls)
    error: "BaseException | None" = None
    try:
        ok = _matches(answer, expected, tol)
    except Exception as err:  # a learner's function may crash: report it, do not raise
        ok, error = False, err
    if function and any(c.error is None and _unanswered(c.result) for c in calls):
        stub = next(c for c in calls if c.error is None and _unanswered(c.result))
        print(
            f"❌ {name}: not answered yet — your function returned {stub.result!r} on the "
            "checker's input; write its body (replace the `...`) and re-run the cell."
        )
        return False
    if ok:
        print(f"✅ {name}: correct!")
        return True
    if function:
        _report_function(name, calls, error)
    elif error is not None:
        print(
            f"❌ {name}: checking raised {type(error).__name__}: {error} (your answer: "
            f"{_short(describe(answer), 80)})"
        )
    elif _is_function(answer):
        print(f"❌ {name}: got a function; call it and store the value it returns.")
    else:
        print(
            f"❌ {name}: not quite (got "
            f"{_short(describe(answer), 80)}{_shape_note(answer, expected)})."
        )
    if hint:
        print(f"   Hint: {hint}")
    return False
