"""Crop-pair datasets: cut crop pairs from an annotated movie, split them, count them
(paper Table 1).

A *crop pair* is the same S x S window cut from frames t and t + delta, together with the
event-mask crops (0 none / 1 division / 2 death). How the masks become one binary label is a
*labelling criterion* (criteria.py); plots are in tapkit.plot.events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tapkit.data.movie import InputError, Movie, as_movie, normalize


@dataclass
class CropPairs:
    """N crop pairs: images (N, 2, S, S) float32, masks (N, 2, S, S) uint8, corners t, y, x (N,)."""

    # (N, 2, S, S) float32, per-frame percentile-normalised frames t and t + delta
    images: np.ndarray
    masks: np.ndarray  # (N, 2, S, S) uint8 event masks: 0 none, 1 division, 2 death
    t: np.ndarray  # (N,) int64 frame of the first crop
    y: np.ndarray  # (N,) int64 top row of the crop
    x: np.ndarray  # (N,) int64 left column of the crop
    delta: int = 1
    movie_name: str = "movie"
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> int:
        """Crop side length S."""
        return int(self.images.shape[-1])

    def subset(self, index: Any) -> "CropPairs":
        """The pairs at `index` (an index array, boolean mask or slice) as a new CropPairs."""
        return CropPairs(
            self.images[index],
            self.masks[index],
            self.t[index],
            self.y[index],
            self.x[index],
            self.delta,
            self.movie_name,
            dict(self.meta),
        )

    def __repr__(self) -> str:
        return (
            f"CropPairs(n={len(self)}, size={self.size}, delta={self.delta}, "
            f"movie={self.movie_name!r})"
        )


@dataclass
class Split:
    """Index arrays into a CropPairs: train (balanced), val and test."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in ("train", "val", "test"):
            raise KeyError(f"Split has 'train', 'val' and 'test', not {key!r}.")
        return getattr(self, key)

    def as_dict(self) -> dict[str, np.ndarray]:
        """{'train': ..., 'val': ..., 'test': ...}."""
        return {"train": self.train, "val": self.val, "test": self.test}


def as_split(split: "Split | Mapping[str, Any]") -> Split:
    """Accept a Split or a dict with 'train', 'val', 'test' index arrays."""
    if isinstance(split, Split):
        return split
    try:
        return Split(*(np.asarray(split[k], dtype=np.int64) for k in ("train", "val", "test")))
    except (KeyError, TypeError) as err:
        raise InputError(
            "split must be a tapkit.downstream.events.crops.Split or a dict with 'train', 'val' "
            f"and 'test' index arrays; got {type(split).__name__}. Make one with "
            "tapkit.downstream.events.crops.split_pairs(labels)."
        ) from err


# ----------------------------------------------------------------------------- crop pairs


def _check_crop_args(movie: Movie, n_pairs: int, size: int, delta: int) -> None:
    """Raise InputError for a movie without events or crop settings that cannot work."""
    if movie.events is None or not movie.events.any():
        raise InputError(
            f"Movie '{movie.name}' has no event mask (or an empty one), so crop pairs cannot be "
            "labelled. Use data with events: tapkit.data.simulate.simulate_movie() or "
            "tapkit.data.datasets.load('simulated'), a CTC sequence read with "
            "tapkit.data.io.read_ctc (events from the lineage), or add your own mask: "
            "Movie(images, events=mask) with mask (T, Y, X) uint8, 1 = division, 2 = death."
        )
    T, Y, X = movie.shape
    if int(n_pairs) < 1:
        raise InputError(f"crop_pairs: n_pairs must be at least 1, got {n_pairs}.")
    if int(size) < 8 or size > min(Y, X):
        raise InputError(
            f"crop_pairs: crop size {size} does not fit frames of {Y} x {X} pixels. Choose "
            f"8 <= size <= {min(Y, X)}, e.g. size=48 as in the paper."
        )
    if not 1 <= int(delta) < T:
        raise InputError(
            f"crop_pairs: delta={delta} but the movie has {T} frames; need 1 <= delta < {T} "
            "(delta=1 pairs consecutive frames)."
        )


def _corners(
    movie: Movie,
    n_pairs: int,
    size: int,
    delta: int,
    event_fraction: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random crop corners t, y, x (N,); a fraction of them placed so a crop covers an event
    pixel."""
    T, Y, X = movie.shape
    t = rng.integers(0, T - delta, n_pairs)
    y = rng.integers(0, Y - size + 1, n_pairs)
    x = rng.integers(0, X - size + 1, n_pairs)
    k = int(round(event_fraction * n_pairs))
    if k:
        te, ye, xe = np.unravel_index(rng.choice(np.flatnonzero(movie.events), k), movie.shape)
        # event in crop 1 or 2
        t[:k] = np.clip(te - delta * rng.integers(0, 2, k), 0, T - delta - 1)
        # event pixel anywhere in the crop
        y[:k] = np.clip(ye - rng.integers(0, size, k), 0, Y - size)
        x[:k] = np.clip(xe - rng.integers(0, size, k), 0, X - size)
    return t, y, x


def crop_pairs(
    movie: "Movie | Any",
    n_pairs: int,
    size: int = 48,
    delta: int = 1,
    seed: int = 0,
    event_fraction: float = 0.0,
) -> CropPairs:
    """Cut n_pairs random S x S crops at the same place of frames t and t + delta, with mask crops.

    event_fraction: share of pairs placed over a random event pixel (0 = uniform crops as in the
    paper; use e.g. 0.3 for small movies with few events; it raises the share of positives).
    """
    movie = as_movie(movie)
    _check_crop_args(movie, n_pairs, size, delta)
    if not 0.0 <= event_fraction <= 1.0:
        raise InputError(
            f"crop_pairs: event_fraction must be between 0 and 1, got {event_fraction}."
        )
    T, Y, X = movie.shape
    t, y, x = _corners(
        movie,
        int(n_pairs),
        int(size),
        int(delta),
        float(event_fraction),
        np.random.default_rng(seed),
    )
    # (T, Y', X', S, S)
    images = sliding_window_view(normalize(movie.images), (size, size), axis=(1, 2))
    masks = sliding_window_view(movie.events, (size, size), axis=(1, 2))
    tt = np.stack([t, t + delta], axis=1)  # (N, 2) frames of the two crops
    yy, xx = y[:, None], x[:, None]
    return CropPairs(
        images=np.ascontiguousarray(images[tt, yy, xx], dtype=np.float32),  # (N, 2, S, S)
        masks=np.ascontiguousarray(masks[tt, yy, xx], dtype=np.uint8),
        t=t.astype(np.int64),
        y=y.astype(np.int64),
        x=x.astype(np.int64),
        delta=int(delta),
        movie_name=movie.name,
        meta={"n_frames": T, "frame_shape": (Y, X), "event_fraction": event_fraction},
    )


# ----------------------------------------------------------------------------- splits


def _check_labels(labels: Any) -> np.ndarray:
    """Labels as a (N,) int64 array of 0/1, or InputError."""
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.size == 0 or not np.isin(lab, (0, 1)).all():
        raise InputError(
            f"labels must be a non-empty (N,) array of 0/1, got shape {lab.shape}. "
            "Make them with tapkit.downstream.events.criteria.label_pairs(pairs, criterion)."
        )
    return lab.astype(np.int64)


def _no_positives_error(where: str, labels: np.ndarray) -> InputError:
    return InputError(
        f"The {where} has {int(labels.sum())} positive and {int((labels == 0).sum())} negative "
        "pairs: both classes are needed to train a classifier. Cut more pairs (n_pairs), use a "
        "looser criterion ('any-either') or a lower size threshold, or a movie with more events."
    )


def balance_indices(indices: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Subsample the majority class of labels[indices] so both classes are equally frequent
    (sorted)."""
    lab = _check_labels(labels)
    indices = np.asarray(indices, dtype=np.int64)
    pos, neg = indices[lab[indices] == 1], indices[lab[indices] == 0]
    if len(pos) == 0 or len(neg) == 0:
        raise _no_positives_error("training set", lab[indices])
    rng = np.random.default_rng(seed)
    k = min(len(pos), len(neg))
    return np.sort(
        np.concatenate([rng.choice(pos, k, replace=False), rng.choice(neg, k, replace=False)])
    )


def _take_budget(train: np.ndarray, labels: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """At most `budget` training indices, half of each class where possible
    (at least one of each)."""
    if budget < 2:
        raise InputError(f"budget must be at least 2 labelled pairs (one per class), got {budget}.")
    rng = np.random.default_rng(seed + 1)
    pos, neg = train[labels[train] == 1], train[labels[train] == 0]
    n_pos = min(len(pos), max(1, budget // 2))
    n_neg = min(len(neg), budget - n_pos)
    return np.sort(
        np.concatenate(
            [rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)]
        )
    )


def split_pairs(
    labels: Any,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    balance: bool = True,
    budget: int | None = None,
) -> Split:
    """Random train/val/test split (fractions); the training set is balanced and optionally capped
    at budget."""
    lab = _check_labels(labels)
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or (fr < 0).any() or not np.isclose(fr.sum(), 1.0) or fr[0] == 0:
        raise InputError(
            f"fractions must be three non-negative numbers (train, val, test) summing to 1 "
            f"with train > 0, got {tuple(fractions)}."
        )
    # same seed -> same val/test for any labels
    perm = np.random.default_rng(seed).permutation(len(lab))
    n_train, n_val = int(round(fr[0] * len(lab))), int(round(fr[1] * len(lab)))
    train, val, test = perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]
    if len(train) == 0 or lab[train].min() == lab[train].max():
        raise _no_positives_error("training set", lab[train])
    if balance:
        train = balance_indices(train, lab, seed)
    if budget is not None:
        train = _take_budget(train, lab, int(budget), seed)
    return Split(np.sort(train), np.sort(val), np.sort(test))


# ----------------------------------------------------------------------------- tables and figures


def dataset_table(
    labels: "np.ndarray | Mapping[str, np.ndarray]",
    split: "Split | Mapping | None" = None,
    seed: int = 0,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
) -> list[dict[str, Any]]:
    """Rows like the paper's Table 1: total pairs and (positives) per split, one row per
    criterion."""
    by_crit = dict(labels) if isinstance(labels, Mapping) else {"labels": labels}
    rows = []
    for name, lab in by_crit.items():
        lab = _check_labels(lab)
        sp = (
            as_split(split[name] if isinstance(split, Mapping) and name in split else split)
            if split is not None
            else split_pairs(lab, fractions, seed=seed)
        )
        row: dict[str, Any] = {"criterion": name, "total": len(lab), "positives": int(lab.sum())}
        for part in ("train", "val", "test"):
            idx = sp[part]
            row[part], row[f"{part}_positives"] = len(idx), int(lab[idx].sum())
        rows.append(row)
    return rows


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A dataset_table as aligned text: 'train (positives)' columns like the paper's Table 1."""
    head = (
        f"{'criterion':<14}{'total (pos)':>14}{'train (pos)':>14}"
        f"{'val (pos)':>14}{'test (pos)':>14}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = [
            f"{r[k]} ({r[k + '_positives' if k != 'total' else 'positives']})"
            for k in ("total", "train", "val", "test")
        ]
        lines.append(f"{r['criterion']:<14}" + "".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)
