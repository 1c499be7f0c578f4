"""Ground truth from the simulated world: CTC tracks and lineage (a new track each time a cell
(re)enters the field of view) and the list of the divisions and deaths visible in the movie.
"""

from __future__ import annotations

import numpy as np

from tapkit.data.simulate.cells import _Params


def _tracks(
    visible: list[np.ndarray], labels: np.ndarray, parents: dict[int, tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CTC tracks from world cells: one track per visible stretch; relabel; (lineage, labels, lut).

    lut: (T, W) int32 map from world id to track id at each frame (0 = not visible).
    """
    n_t = len(visible)
    n_w = max((int(v.max()) for v in visible if len(v)), default=0) + 1
    seen = np.zeros((n_t, n_w), bool)  # (T, W)
    for t, v in enumerate(visible):
        seen[t, v] = True
    lut = np.zeros((n_t, n_w), np.int32)
    rows: list[list[int]] = []
    starts = seen & ~np.vstack([np.zeros((1, n_w), bool), seen[:-1]])  # a stretch begins here
    for t, w in zip(*np.nonzero(starts)):  # sorted by first frame, then world id
        end = t + int(np.argmin(np.append(seen[t:, w], False)))  # first frame no longer visible
        tid = len(rows) + 1
        lut[t:end, w] = tid
        mother, born = parents.get(int(w), (0, -1))
        parent = int(lut[t - 1, mother]) if born == t and t > 0 and mother < n_w else 0
        rows.append([tid, int(t), end - 1, parent])
    relabeled = np.stack([lut[t][labels[t]] for t in range(n_t)]).astype(np.int32)
    return np.array(rows, np.int64).reshape(-1, 4), relabeled, lut


def _event_list(history: list[dict], lut: np.ndarray, p: _Params) -> list[tuple]:
    """Events visible in the movie: (kind, first frame, last frame, track ids (0 = not in view)).

    A cell that leaves and re-enters the field during its event has several tracks: the main entry
    names the mother's last and the daughters' first track; each other track gets its own entry.
    """
    n_t, n_w = lut.shape
    out = []
    for ev in history:
        t0, t1 = max(ev["start"], 0), min(ev["end"], n_t - 1)
        if t0 > t1:
            continue
        cols = [
            lut[t0 : t1 + 1, w] if w < n_w else np.zeros(t1 + 1 - t0, np.int32) for w in ev["cells"]
        ]
        # in order of appearance
        tracks = [list(dict.fromkeys(col[col > 0].tolist())) for col in cols]
        ids = [(tr[-1] if i == 0 else tr[0]) if tr else 0 for i, tr in enumerate(tracks)]
        if any(ids):
            out.append((ev["kind"], t0, t1, tuple(ids)))
        for i, (col, tr) in enumerate(zip(cols, tracks)):
            for tid in tr[:-1] if i == 0 else tr[1:]:
                frames = t0 + np.flatnonzero(col == tid)
                extra = [0] * len(cols)
                extra[i] = tid
                out.append((ev["kind"], int(frames[0]), int(frames[-1]), tuple(extra)))
    return out
