"""Lineages: the (N, 4) table id, first frame, last frame, parent id of the CTC `man_track.txt`, and
the division events derived from one.

A division is a track with >= 2 children; `events_from_lineage` marks the mother's last frames and
the daughters' first frames on their mask pixels. A CTC lineage records no deaths.
"""

from __future__ import annotations

import numpy as np

from tapkit.data.movie import DIVISION, InputError


def check_lineage(
    lineage: np.ndarray, n_frames: int | None = None, what: str = "lineage"
) -> np.ndarray:
    """Validate an (N, 4) lineage (id, first, last, parent) and return it as int64; InputError
    otherwise."""
    lin = np.asarray(lineage)
    if lin.size == 0:
        return np.zeros((0, 4), np.int64)
    if lin.ndim != 2 or lin.shape[1] != 4 or not np.issubdtype(lin.dtype, np.integer):
        raise InputError(
            f"{what}: expected an (N, 4) integer table id, first, last, parent; got {lin.dtype} "
            f"{lin.shape}."
        )
    lin = lin.astype(np.int64)
    ids, first, last, parent = lin.T
    problems = [
        (ids <= 0, "ids must be positive (0 is the background)"),
        (first > last, "first frame is after last frame"),
        (first < 0, "frames must be >= 0"),
        (
            last >= (n_frames if n_frames is not None else np.iinfo(np.int64).max),
            f"frames beyond the movie's {n_frames} frames",
        ),
        (
            (parent != 0) & ~np.isin(parent, ids),
            "parent id is not a track id (use 0 for no parent)",
        ),
        (parent == ids, "a track cannot be its own parent"),
    ]
    for bad, why in problems:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{what}: {why}; see row {row + 1}: {lin[row].tolist()} (id first last parent)."
            )
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise InputError(
            f"{what}: track id {int(uniq[counts > 1][0])} appears more than once; ids must be "
            "unique."
        )
    return lin


def _division_tracks(lineage: np.ndarray) -> tuple[list[int], list[int]]:
    """Ids of mothers (tracks with >= 2 children) and of their daughters."""
    parents, counts = np.unique(lineage[lineage[:, 3] > 0, 3], return_counts=True)
    mothers = parents[counts >= 2]
    daughters = lineage[np.isin(lineage[:, 3], mothers), 0]
    return mothers.tolist(), daughters.tolist()


def events_from_lineage(
    labels: np.ndarray, lineage: np.ndarray, n_before: int = 2, n_after: int = 2
) -> np.ndarray:
    """Division events (T, Y, X) uint8 from a lineage: 1 on dividing mothers and their new
    daughters.

    A division is a track with >= 2 children. Its mother gets event 1 on her last `n_before` frames
    (the last one included) and each daughter on her first `n_after` frames, on those cells' mask
    pixels. Deaths are not recorded in a CTC lineage (a track that ends may die, leave the field of
    view or be lost), so this mask holds divisions only (no 2s).
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise InputError(
            f"events_from_lineage: labels must be (T, Y, X), got shape {labels.shape}."
        )
    if n_before < 0 or n_after < 0:
        raise InputError(
            f"events_from_lineage: n_before and n_after must be >= 0, got {n_before}, {n_after}."
        )
    lin = check_lineage(lineage, labels.shape[0], what="events_from_lineage")
    mothers, daughters = _division_tracks(lin)
    rows = {int(r[0]): r for r in lin}
    marked: dict[int, list[int]] = {}  # frame -> ids with an event there
    for tid in mothers:
        _, first, last, _ = rows[tid]
        for t in range(max(first, last - n_before + 1), last + 1):
            marked.setdefault(t, []).append(tid)
    for tid in daughters:
        _, first, last, _ = rows[tid]
        for t in range(first, min(last, first + n_after - 1) + 1):
            marked.setdefault(t, []).append(tid)
    events = np.zeros(labels.shape, np.uint8)
    for t, ids in marked.items():
        events[t][np.isin(labels[t], ids)] = DIVISION
    return events


def lineage_from_labels(labels: np.ndarray) -> np.ndarray:
    """A parent-less lineage (id, first, last, 0) listing every id found in (T, Y, X) labels."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t, frame in enumerate(labels):
        for i in np.unique(frame[frame > 0]).tolist():
            first.setdefault(i, t)
            last[i] = t
    return np.array([[i, first[i], last[i], 0] for i in sorted(first)], np.int64).reshape(-1, 4)
