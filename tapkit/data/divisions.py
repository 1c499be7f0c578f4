"""Division events of a movie that has segmentation masks but no lineage (e.g. the HeLa subset).

Label ids need not follow cells: the HeLa subset numbers each frame's nuclei afresh (1 ... N per
frame; in frames 0 -> 1 only 6 of 122 nuclei keep their id), so nuclei are linked by overlap
(`link_frames`). The rule, frame pair by frame pair (t-1, t); mothers and daughters
have >= `min_area` px:

1. split:   a nucleus of t-1 linked to exactly two nuclei of t, both having it as best predecessor.
2. shrink:  a nucleus of t-1 whose one successor is more than `shrink` (area fraction) smaller, and
            a new nucleus of t (linked to nothing in t-1) within `max_distance` of the mother's
            centroid: the segmentation kept the mother's place for one daughter, the other
            moved off.
3. two new: a nucleus of t-1 with no successor and two new nuclei of t within `max_distance` of it
            (a compact mitotic figure whose daughters both moved off it: the commonest case
            in HeLa).
Rules 2 and 3 pair each mother and each new nucleus once, nearest first. The daughters' first frame
is t.

Event masks follow the project's convention through one mechanism: the masks are tracked (mutual
best overlap continues a track; mothers end, daughters start tracks with the mother as parent),
which gives CTC track labels and an (N, 4) lineage, and `io.events_from_lineage` marks the mother's
last `n_before` and each daughter's first `n_after` frames.

Limits (it reads masks, not images): a nucleus that the segmentation splits (or two touching nuclei
it merges and then separates) looks like a division; a division whose daughters stay merged in the
masks, or whose mother is missing in t-1, is missed; a cell entering at the border is only a new
nucleus, but one appearing next to a nucleus that shrinks (condensing before mitosis, focus,
segmentation) or vanishes gives a false division; nothing is found in the first frame (no t-1),
divisions at frame 1 or in the last frame get fewer than n_before / n_after event frames; tiny
daughters (< min_area) hide one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from tapkit.data.io import events_from_lineage
from tapkit.data.movie import InputError, Movie


class Division(NamedTuple):
    """One division: daughters first seen in frame t; mother id in frame t-1, daughter ids in frame
    t."""

    t: int
    mother: int
    daughters: tuple[int, int]
    y: float  # the mother's centroid in frame t-1 (px)
    x: float
    rule: str  # "split", "shrink" or "two new" (module docstring)


@dataclass
class Divisions:
    """The divisions found in a (T, Y, X) label movie and the rule's parameters."""

    events: list[Division]
    params: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events)

    def per_frame(self) -> np.ndarray:
        """(T,) int: the number of divisions whose daughters first appear in each frame."""
        return np.bincount([d.t for d in self.events], minlength=self.params.get("n_frames", 0))


def _check_labels(labels: Any, what: str) -> np.ndarray:
    """(T, Y, X) non-negative integer labels, else InputError."""
    arr = np.asarray(labels)
    if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.integer) or (arr.size and arr.min() < 0):
        raise InputError(
            f"{what}: labels must be a (T, Y, X) array of non-negative integer ids "
            f"(0 = background), got {arr.dtype} {arr.shape}. Pass movie.labels, e.g. "
            "divisions_from_masks(movie.labels)."
        )
    return arr.astype(np.int64, copy=False)


def _pairs(labels_a: np.ndarray, labels_b: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every overlapping pair of two (Y, X) label frames: (id_a, id_b, shared px, shared / smaller
    area)."""
    a, b = np.asarray(labels_a, np.int64).ravel(), np.asarray(labels_b, np.int64).ravel()
    both = (a > 0) & (b > 0)
    base = int(b.max(initial=0)) + 1
    keys, inter = np.unique(a[both] * base + b[both], return_counts=True)
    ia, ib = keys // base, keys % base
    smaller = np.minimum(np.bincount(a)[ia], np.bincount(b)[ib])
    return ia, ib, inter, inter / np.maximum(smaller, 1)


def link_frames(
    labels_a: np.ndarray, labels_b: np.ndarray, min_overlap: float = 0.2
) -> list[tuple[int, int, float]]:
    """Links (id_a, id_b, overlap) between two (Y, X) frames: shared pixels / area of the smaller
    object.

    The smaller object's fraction, not IoU: a daughter covers about half of her mother, so her IoU
    with the mother is <= 0.5 and falls further as she moves, while her own covered fraction stays
    high; a cell that keeps its shape scores the same either way. (A small fragment inside a nucleus
    scores 1: the division rule drops objects below `min_area` for that reason.)
    """
    ia, ib, _, frac = _pairs(labels_a, labels_b)
    keep = frac >= min_overlap
    return [(int(i), int(j), float(f)) for i, j, f in zip(ia[keep], ib[keep], frac[keep])]


def _props(frame: np.ndarray) -> dict[int, tuple[int, float, float]]:
    """id -> (area px, centroid y, centroid x) of one (Y, X) label frame."""
    flat = frame.ravel()
    area = np.bincount(flat)
    yy, xx = np.indices(frame.shape)
    sy, sx = np.bincount(flat, yy.ravel(), len(area)), np.bincount(flat, xx.ravel(), len(area))
    return {
        int(i): (int(area[i]), sy[i] / area[i], sx[i] / area[i])
        for i in np.flatnonzero(area)
        if i > 0
    }


def divisions_from_masks(
    labels: np.ndarray,
    min_overlap: float = 0.2,
    min_area: int = 20,
    shrink: float = 0.3,
    max_distance: float | None = None,
) -> Divisions:
    """Divisions of a (T, Y, X) label movie by the module's rules (split, shrink, two new); see the
    module docstring.

    `max_distance` (px) None: 3 equivalent radii (sqrt(area / pi)) of each mother, so it scales with
    the nuclei.
    """
    labels = _check_labels(labels, "divisions_from_masks")
    if not 0 < min_overlap <= 1 or not 0 < shrink < 1 or min_area < 1:
        raise InputError(
            f"divisions_from_masks: need 0 < min_overlap <= 1, 0 < shrink < 1, min_area >= 1; got "
            f"{min_overlap}, {shrink}, {min_area}."
        )
    params = dict(
        min_overlap=min_overlap,
        min_area=min_area,
        shrink=shrink,
        max_distance=max_distance,
        n_frames=len(labels),
    )
    events: list[Division] = []
    before = _props(labels[0])
    for t in range(1, len(labels)):
        now = _props(labels[t])
        big_a = {i for i, p in before.items() if p[0] >= min_area}
        big_b = {i for i, p in now.items() if p[0] >= min_area}
        succ: dict[int, list[int]] = {}
        best: dict[
            int, tuple[int, int]
        ] = {}  # id in t -> (shared px, id in t-1) of its best predecessor
        # ids in t with any predecessor (tiny ones too: a fragment that grows is not new)
        seen: set[int] = set()
        for a, b, n, f in zip(*_pairs(labels[t - 1], labels[t])):
            if f >= min_overlap:
                seen.add(int(b))
            if f >= min_overlap and a in big_a and b in big_b:
                succ.setdefault(int(a), []).append(int(b))
                best[int(b)] = max(best.get(int(b), (0, 0)), (int(n), int(a)))
        for a, bs in succ.items():  # rule 1: two successors
            if len(bs) == 2 and all(best[b][1] == a for b in bs):
                events.append(
                    Division(
                        t, a, tuple(sorted(bs)), float(before[a][1]), float(before[a][2]), "split"
                    )
                )
        new = [b for b in big_b if b not in seen]
        close = []  # rules 2 and 3: (distance, mother, daughters, rule)
        for a in big_a:
            bs, y, x = succ.get(a, []), before[a][1], before[a][2]
            limit = max_distance if max_distance is not None else 3 * np.sqrt(before[a][0] / np.pi)
            near = sorted((float(np.hypot(now[b][1] - y, now[b][2] - x)), b) for b in new)
            near = [(d, b) for d, b in near if d <= limit]
            if len(bs) == 1 and best[bs[0]][1] == a and now[bs[0]][0] < (1 - shrink) * before[a][0]:
                close += [(d, a, (bs[0], b), "shrink") for d, b in near]
            elif not bs and len(near) >= 2:
                close.append((near[1][0], a, (near[0][1], near[1][1]), "two new"))
        mothers, taken = set(), set()
        for d, a, pair, rule in sorted(close):
            if a not in mothers and not taken & set(pair):
                mothers.add(a)
                taken |= set(pair)
                events.append(
                    Division(
                        t, a, tuple(sorted(pair)), float(before[a][1]), float(before[a][2]), rule
                    )
                )
        before = now
    return Divisions(sorted(events), params)


def track_masks(labels: np.ndarray, divisions: Divisions) -> tuple[np.ndarray, np.ndarray]:
    """(track labels (T, Y, X) int32, lineage (N, 4) CTC id/first/last/parent) of per-frame masks
    and their divisions.

    A nucleus continues the track of its mutual best overlap (shared pixels, at least `min_overlap`
    of the smaller one) in the frame before, unless it is a daughter or that nucleus a mother.
    """
    labels = _check_labels(labels, "track_masks")
    min_overlap = divisions.params.get("min_overlap", 0.2)
    tracks = np.zeros(labels.shape, np.int32)
    rows: list[list[int]] = []  # id, first, last, parent
    prev: dict[int, int] = {}  # id in frame t-1 -> track id
    for t in range(len(labels)):
        at_t = [d for d in divisions.events if d.t == t]
        mothers = {d.mother for d in at_t}
        parent = {b: prev[d.mother] for d in at_t for b in d.daughters}
        cur: dict[int, int] = {}
        if t > 0:
            ia, ib, inter, frac = _pairs(labels[t - 1], labels[t])
            fwd: dict[int, tuple[int, int]] = {}
            back: dict[int, tuple[int, int]] = {}
            for a, b, n, f in zip(ia.tolist(), ib.tolist(), inter.tolist(), frac.tolist()):
                if f >= min_overlap:
                    fwd[a] = max(fwd.get(a, (0, 0)), (n, b))  # (shared px, id): the best successor
                    back[b] = max(back.get(b, (0, 0)), (n, a))  # and the best predecessor
            for b, (_, a) in back.items():
                if fwd[a][1] == b and a not in mothers and b not in parent:
                    cur[b] = prev[a]
                    rows[cur[b] - 1][2] = t
        ids = np.unique(labels[t])
        for b in ids[ids > 0].tolist():
            if b not in cur:
                rows.append([len(rows) + 1, t, t, parent.get(b, 0)])
                cur[b] = len(rows)
        lut = np.zeros(int(ids.max()) + 1, np.int32)
        lut[list(cur)] = list(cur.values())
        tracks[t] = lut[labels[t]]
        prev = cur
    return tracks, np.array(rows, np.int64).reshape(-1, 4)


def division_event_masks(
    labels: np.ndarray, divisions: Divisions, n_before: int = 2, n_after: int = 2
) -> np.ndarray:
    """(T, Y, X) uint8 event masks: 1 on each mother's last n_before frames and each daughter's
    first n_after."""
    tracks, lineage = track_masks(labels, divisions)
    return events_from_lineage(tracks, lineage, n_before, n_after)


def with_divisions(movie: Movie, n_before: int = 2, n_after: int = 2, **rule: Any) -> Movie:
    """A copy of a movie with labels whose events and lineage come from
    `divisions_from_masks(labels, **rule)`.

    The copy's labels are the same masks renumbered as tracks (the lineage's ids);
    `meta["divisions"]` holds the divisions with those ids, e.g. for
    `tapkit.plot.divisions.plot_divisions(copy, ...)`.
    """
    if movie.labels is None:
        raise InputError(
            f"with_divisions: movie '{movie.name}' has no labels (segmentation masks); divisions "
            "are read from them. Load a movie with labels, e.g. "
            "read_tiff(path, labels='masks.tif')."
        )
    if movie.events is not None:
        raise InputError(
            f"with_divisions: movie '{movie.name}' already has events; they would be replaced. "
            "Pass dataclasses.replace(movie, events=None, lineage=None) to derive them from the "
            "masks."
        )
    found = divisions_from_masks(movie.labels, **rule)
    tracks, lineage = track_masks(movie.labels, found)
    events = events_from_lineage(tracks, lineage, n_before, n_after)
    renamed = [
        d._replace(
            mother=int(tracks[d.t - 1][movie.labels[d.t - 1] == d.mother][0]),
            daughters=tuple(int(tracks[d.t][movie.labels[d.t] == b][0]) for b in d.daughters),
        )
        for d in found.events
    ]
    meta = {
        **movie.meta,
        "events": "divisions derived from the masks (tapkit.data.divisions)",
        "divisions": Divisions(renamed, found.params),
    }
    return dataclasses.replace(movie, labels=tracks, events=events, lineage=lineage, meta=meta)
