"""The labelling criteria of Chen et al. 2024 (Tables 4-5): from two event-mask crops to one label.

any-both     both crops contain event pixels
any-either   at least one crop contains event pixels
size-either  at least one crop contains >= threshold event pixels (the paper's default, 40)
"""

from __future__ import annotations

import numpy as np

from tapkit.data.movie import DEATH, DIVISION, InputError
from tapkit.downstream.events.crops import CropPairs

CRITERIA = ("any-both", "any-either", "size-either")
CLASSES = {"both": (DIVISION, DEATH), "division": (DIVISION,), "death": (DEATH,)}
CRITERION_TITLES = {
    "any-both": "any size, both",
    "any-either": "any size, either",
    "size-either": "size filter, either",
}


def _check_criterion(criterion: str, classes: str) -> None:
    """Raise InputError for an unknown criterion or class selection."""
    if criterion not in CRITERIA:
        raise InputError(
            f"Unknown labelling criterion {criterion!r}. Choose one of: {', '.join(CRITERIA)}."
        )
    if classes not in CLASSES:
        raise InputError(f"Unknown classes {classes!r}. Choose one of: {', '.join(CLASSES)}.")


def event_pixels(pairs: "CropPairs | np.ndarray", classes: str = "both") -> np.ndarray:
    """Number of event pixels of the chosen classes in each crop: (N, 2) int64."""
    masks = pairs.masks if isinstance(pairs, CropPairs) else np.asarray(pairs)
    if masks.ndim != 4 or masks.shape[1] != 2:
        raise InputError(
            f"Expected masks of shape (N, 2, S, S), got {masks.shape}. Pass a CropPairs."
        )
    if classes not in CLASSES:
        raise InputError(f"Unknown classes {classes!r}. Choose one of: {', '.join(CLASSES)}.")
    return np.isin(masks, CLASSES[classes]).sum(axis=(2, 3), dtype=np.int64)


def label_pairs(
    pairs: "CropPairs | np.ndarray",
    criterion: str = "size-either",
    threshold: int = 40,
    classes: str = "both",
) -> np.ndarray:
    """Binary labels (N,) int64 under a criterion: any-both, any-either or size-either
    (>= threshold px)."""
    _check_criterion(criterion, classes)
    if threshold < 1:
        raise InputError(f"threshold must be at least 1 pixel, got {threshold}.")
    counts = event_pixels(pairs, classes)  # (N, 2)
    if criterion == "any-both":
        hit = (counts > 0).all(axis=1)
    elif criterion == "any-either":
        hit = (counts > 0).any(axis=1)
    else:
        hit = (counts >= threshold).any(axis=1)
    return hit.astype(np.int64)


def label_all(
    pairs: "CropPairs | np.ndarray", threshold: int = 40, classes: str = "both"
) -> dict[str, np.ndarray]:
    """{criterion: labels (N,)} for every criterion in CRITERIA."""
    return {c: label_pairs(pairs, c, threshold=threshold, classes=classes) for c in CRITERIA}


def pick_disagreements(
    pairs: CropPairs, n: int = 6, threshold: int = 40, seed: int = 0
) -> np.ndarray:
    """Indices of pairs where the criteria disagree, one per label pattern in turn (Table 4)."""
    labs = np.stack([label_pairs(pairs, c, threshold) for c in CRITERIA], axis=1)  # (N, 3)
    rng = np.random.default_rng(seed)
    groups = [
        rng.permutation(np.flatnonzero((labs == p).all(1))).tolist()
        for p in np.unique(labs, axis=0)
        if p.min() != p.max()
    ]
    agree = rng.permutation(np.flatnonzero(labs.sum(1) == len(CRITERIA))).tolist()
    groups.append(agree)  # one 'all positive' example for contrast
    picked: list[int] = []
    while len(picked) < n and any(groups):
        for g in groups:
            if g and len(picked) < n:
                picked.append(g.pop())
    return np.asarray(picked, dtype=np.int64)
