"""When and what does the event classifier get wrong? (paper 001, Chen et al. 2024, Figs. 3-4).

``error_timing`` counts true/false positives/negatives per time index of the test pairs and turns
each count into a *share*: the count at time t divided by the total of that category over the whole
movie, so that the curves of different categories are comparable distributions over time.
``worst_mistakes`` finds the most confident wrong predictions; the plots are in tapkit.plot.events.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapkit.downstream.calibration import as_numbers, check_labels, event_probability
from tapkit.data.movie import InputError

CATEGORIES = ("tp", "fp", "fn", "tn", "pos", "neg")
CATEGORY_NAMES = dict(
    tp="true positives",
    fp="false positives",
    fn="false negatives",
    tn="true negatives",
    pos="ground-truth positives",
    neg="ground-truth negatives",
)


def _check_times(t: Any, n: int, n_frames: int | None) -> tuple[np.ndarray, int]:
    """Validate (N,) non-negative integer time indices; return them and the number of frames."""
    times = as_numbers(t, "t")
    if times.ndim != 1 or len(times) != n:
        raise InputError(
            f"t: expected shape ({n},), one time index per prediction, got {times.shape}."
        )
    if not np.all(times == np.round(times)) or times.min() < 0:
        raise InputError(
            "t: time indices must be non-negative integers (the frame of each crop pair)."
        )
    times = times.astype(np.int64)
    n_frames = int(times.max()) + 1 if n_frames is None else int(n_frames)
    if times.max() >= n_frames:
        raise InputError(
            f"t: found time index {times.max()} but n_frames={n_frames}; raise n_frames."
        )
    return times, n_frames


def error_timing(
    t: Any, y_true: Any, y_pred: Any, n_frames: int | None = None
) -> dict[str, np.ndarray]:
    """Per time index: counts of tp/fp/fn/tn/pos/neg and their shares
    (count at t / total over t)."""
    truth = check_labels(y_true, len(as_numbers(y_true, "y_true")), what="y_true")
    pred = check_labels(y_pred, len(truth), what="y_pred")
    times, n_frames = _check_times(t, len(truth), n_frames)
    masks = dict(
        tp=(truth == 1) & (pred == 1),
        fp=(truth == 0) & (pred == 1),
        fn=(truth == 1) & (pred == 0),
        tn=(truth == 0) & (pred == 0),
        pos=truth == 1,
        neg=truth == 0,
    )
    out: dict[str, np.ndarray] = {"t": np.arange(n_frames)}
    for key, m in masks.items():
        count = np.bincount(times[m], minlength=n_frames)  # (n_frames,)
        out[key] = count
        out[f"{key}_share"] = count / max(int(count.sum()), 1)
    return out


def worst_mistakes(
    probs_or_logits: Any, y_true: Any, k: int = 8, kind: str = "auto"
) -> dict[str, np.ndarray]:
    """Indices of the k most confident false positives (highest P(event)) and false negatives
    (lowest)."""
    p1 = event_probability(probs_or_logits, kind)
    truth = check_labels(y_true, len(p1), what="y_true")
    pred = (p1 > 0.5).astype(np.int64)  # same rule as argmax of (N, 2); ties -> no event
    fp = np.flatnonzero((truth == 0) & (pred == 1))
    fn = np.flatnonzero((truth == 1) & (pred == 0))
    return dict(
        false_positives=fp[np.argsort(-p1[fp], kind="stable")][:k],
        false_negatives=fn[np.argsort(p1[fn], kind="stable")][:k],
    )
