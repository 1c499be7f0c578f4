"""The fair protocol of every downstream comparison: one learning-rate grid, one convergence rule,
paired intervals.

Every compared row (method and baselines alike) is trained the same way:
    - a fixed number of optimiser steps per row kind, the SAME for every label budget
      (not epochs: with epochs, a small budget would also mean fewer steps and the curve would
      measure steps, not labels); Adam's learning rate decays on a cosine to 0 over those steps
      (the common recipe of linear probes and fine-tuning: constant-rate Adam kept the validation F1
      of a head swinging by +-0.1 between evaluations);
    - frozen random encoders get the BatchNorm statistics of the data first
      (ssl.features.calibrate_batchnorm): a new network in eval mode shrinks its activations layer
      by layer, and its features would be ~1e-3 wide;
    - the validation metric evaluated every `steps // n_evals` steps; the best checkpoint on
      validation is kept;
    - the learning rate chosen from LR_GRID on validation (the same grid for every row), by
      `select_lr`;
    - n runs per cell with seeds seed, seed+1, ...; two rows compared with the SAME split and seed
      per run (paired), reported as the mean paired difference with its 95 % t-interval
      (`paired_difference`).
A run counts as converged when its best validation score improved by less than 2 % during the last
quarter of its steps (`converged`); tables mark every run that did not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, Sequence, TypeVar

import numpy as np

from tapkit.data.movie import InputError
from tapkit.validate import whole

LR_GRID = (3e-4, 1e-3, 3e-3)  # Adam learning rates tried for every row, baselines included
CONVERGENCE_TAIL = 0.25  # the last quarter of the steps ...
CONVERGENCE_TOL = 0.02  # ... may improve the best validation score by less than 2 % (relative)
# the 2 % are of max(best score, 0.05): a score near 0 needs an absolute 0.001
CONVERGENCE_FLOOR = 0.05
Verdict = Literal["holds", "fails", "inconclusive"]
R = TypeVar("R")


def eval_steps(steps: int, n_evals: int = 20) -> list[int]:
    """The steps (1-based) after which the validation metric is evaluated: n_evals evenly spaced,
    the last = steps."""
    steps, n_evals = int(steps), max(1, min(int(n_evals), int(steps)))
    if steps < 1:
        raise InputError(
            f"steps must be at least 1, got {steps}: give the number of optimiser steps per run."
        )
    return sorted({int(round(steps * (i + 1) / n_evals)) for i in range(n_evals)})


def converged(
    curve: Sequence[float],
    tail: float = CONVERGENCE_TAIL,
    tol: float = CONVERGENCE_TOL,
    floor: float = CONVERGENCE_FLOOR,
) -> bool:
    """True when the best-so-far of a validation curve (higher = better) rose by < tol during its
    last `tail`.

    The rise is relative to max(best before the tail, floor). A curve of fewer than 4 evaluations
    cannot show a plateau and is not converged.
    """
    v = np.asarray(curve, dtype=float)
    if v.ndim != 1 or len(v) < 4 or not np.isfinite(v).all():
        return False
    k = max(1, int(math.ceil(len(v) * tail)))
    before, end = float(v[:-k].max()), float(v.max())
    return end - before < tol * max(before, floor)


@dataclass(frozen=True)
class PairedDifference:
    """Mean of paired differences a_i - b_i (same split and seed per run) with its t-interval."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}] (n={self.n})"


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95
) -> PairedDifference:
    """Mean of a - b over paired runs and its two-sided t-interval (infinite for one run, zero width
    if all equal)."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise InputError(
            "paired values need two equal-length lists of runs (same split and seed), got "
            f"{a.shape} and {b.shape}: run both rows with the same seeds."
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError(
            f"paired values must be finite numbers, got {a.tolist()} and {b.tolist()}: drop the "
            "runs without a score (NaN) from both lists, keeping them paired."
        )
    d = a - b
    n, mean = len(d), float(d.mean())
    if n < 2:
        return PairedDifference(mean, -math.inf, math.inf, n, confidence)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
    return PairedDifference(mean, mean - half, mean + half, n, confidence)


def verdict(diff: PairedDifference, margin: float = 0.0) -> Verdict:
    """'holds' if the whole interval is above margin, 'fails' if it is below, else 'inconclusive'
    (at this n)."""
    if diff.low > margin:
        return "holds"
    if diff.high < margin:
        return "fails"
    return "inconclusive"


def select_lr(
    train: Callable[[float], R], score: Callable[[R], float], grid: Sequence[float] = LR_GRID
) -> tuple[float, R, dict[float, float]]:
    """Train once per learning rate of `grid`; return (best lr on validation, its run,
    {lr: validation score}).

    train(lr) -> a run; score(run) -> its best validation score (higher = better). Ties keep the
    smaller lr.
    """
    if not len(grid):
        raise InputError(
            "lr_grid is empty: give at least one learning rate, e.g. (3e-4, 1e-3, 3e-3)."
        )
    runs = {float(lr): train(float(lr)) for lr in grid}
    scores = {lr: float(score(run)) for lr, run in runs.items()}
    best = max(scores, key=lambda lr: (scores[lr], -lr))
    return best, runs[best], scores


def check_protocol(
    steps: int, n_evals: int, lr_grid: Sequence[float], n_runs: int, what: str
) -> None:
    """InputError, before any training, for settings the protocol cannot use
    (`what` names the profile section)."""
    whole(1, where=f"{what}: ")("steps", steps)
    whole(4, where=f"{what}: ", hint=" (a plateau needs at least 4 validation points)")(
        "n_evals", n_evals
    )
    whole(1, where=f"{what}: ")("n_runs", n_runs)
    if not len(lr_grid) or any(not (isinstance(lr, (int, float)) and 0 < lr < 1) for lr in lr_grid):
        raise InputError(
            f"{what}: lr_grid must be learning rates in (0, 1), e.g. (3e-4, 1e-3, 3e-3); got "
            f"{lr_grid!r}."
        )
