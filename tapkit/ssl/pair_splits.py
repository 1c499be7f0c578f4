"""Which frame pairs and crop positions each split of a `PairSampler` draws, and the checks of its
arguments.

A `val_fraction` of each movie's frames is validation (`n_val_frames`, at its start or end), the
rest training; `pair_table` lists every (movie, t, delta) of a split, never straddling the boundary.
`val_region` holds out the right-most columns of every frame (`held_out_width`): `crop_ranges` gives
each split its crop columns (training crops stay half a patch left of the region; the "region" split
crops inside it), and `draw_positions` draws pairs and crop corners uniformly over them. `SPLITS`
names the splits.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tapkit.data.movie import InputError

__all__ = [
    "SPLITS",
    "check_args",
    "n_val_frames",
    "pair_table",
    "crop_ranges",
    "draw_positions",
    "held_out_width",
    "region_fits",
]

SPLITS = (
    "train",
    "val",
    "region",
)  # training crops; held-out frames; held-out region of the training frames


def check_args(
    images: list,
    delta: "int | tuple[int, ...]",
    split: str,
    val_fraction: float,
    batch_size: int,
    reject: float,
    patch: int,
) -> tuple[int, ...]:
    """Validate the sampler arguments early; return the deltas as a tuple."""
    deltas = (delta,) if isinstance(delta, (int, np.integer)) else tuple(int(d) for d in delta)
    if not deltas or min(deltas) < 1:
        raise InputError(
            f"PairSampler: delta={delta!r} must be a non-empty list of frame offsets >= 1, e.g. "
            "(1,) or (1, 2)."
        )
    if split not in SPLITS:
        raise InputError(f"PairSampler: split={split!r}; use 'train', 'val' or 'region'.")
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"PairSampler: val_fraction={val_fraction} must be in [0, 1), e.g. 0.1.")
    if batch_size < 1 or not 0.0 <= reject < 1.0:
        raise InputError(
            f"PairSampler: batch_size={batch_size} must be >= 1 and reject_background={reject} in "
            "[0, 1)."
        )
    longest = max(im.shape[0] for im in images)
    if max(deltas) >= longest:
        raise InputError(
            f"PairSampler: delta {max(deltas)} needs movies with more than {max(deltas)} frames, "
            f"but the longest has {longest}. Use a smaller delta."
        )
    smallest = min(min(im.shape[-2:]) for im in images)
    if patch > smallest or patch < 8:
        raise InputError(
            f"PairSampler: patch={patch} does not fit the smallest frame side ({smallest} px); "
            f"use a patch between 8 and {smallest}."
        )
    if len({im.shape[1] for im in images}) > 1:
        raise InputError(
            "PairSampler: the movies have different numbers of channels; pass movies with the same "
            "C."
        )
    return deltas


def n_val_frames(n_frames: int, val_fraction: float, delta: tuple[int, ...]) -> int:
    """Frames reserved for validation: val_fraction of them, at least two pair start times'
    worth."""
    if val_fraction == 0:
        return 0
    return min(n_frames, max(math.ceil(val_fraction * n_frames), min(delta) + 2))


def pair_table(
    n_frames: list[int], split: str, val_at: str, val_fraction: float, delta: tuple[int, ...]
) -> torch.Tensor:
    """All valid (movie, t, delta) triples of this split, (N, 3) long."""
    rows = []
    for m, n in enumerate(n_frames):
        n_val = n_val_frames(n, val_fraction, delta)
        # the boundary between the two parts
        cut = n_val if val_at == "start" else n - n_val
        # this split is the first part (region: train's)
        first = (split == "val") == (val_at == "start")
        lo, hi = (0, cut) if first else (cut, n)
        rows += [(m, t, d) for d in delta for t in range(lo, hi - d)]
    if not rows:
        raise InputError(
            f"PairSampler: no {split} pairs: with val_fraction={val_fraction} and delta={delta} "
            f"the {split} part of the movies ({n_frames} frames) is too short. Use longer movies, "
            "a smaller delta, or change val_fraction."
        )
    return torch.tensor(rows, dtype=torch.long)


def crop_ranges(
    sizes: torch.Tensor, split: str, patch: int, val_region: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """First allowed crop column (M,) and number of allowed corners per axis (M, 2) of this split;
    sizes (M, 2)."""
    if not 0.0 <= val_region < 1.0:
        raise InputError(
            f"PairSampler: val_region={val_region} must be in [0, 1), e.g. 0.25 (a quarter of "
            "the width held out) or 0 (no held-out region)."
        )
    if split == "region" and val_region == 0:
        raise InputError(
            "PairSampler: split='region' needs a held-out region: pass val_region > 0, e.g. 0.25."
        )
    first, room = [], []
    for height, width in sizes.tolist():
        hold = held_out_width(width, patch, val_region)
        if split == "region":
            lo, hi = width - hold, width - patch  # crops inside the held-out columns
        elif split == "train" and hold:
            lo, hi = (
                0,
                width - hold - patch // 2 - patch,
            )  # left of them, half a patch away
        else:
            lo, hi = 0, width - patch
        if hi < lo:
            raise InputError(
                f"PairSampler: val_region={val_region} leaves no room for training crops of "
                f"{patch} px in a frame {width} px wide (held out: {hold} px, plus a margin of "
                f"{patch // 2}); use a smaller val_region or patch."
            )
        first.append(lo), room.append((height - patch + 1, hi - lo + 1))
    return torch.tensor(first), torch.tensor(room)


def draw_positions(
    n: int,
    table: torch.Tensor,
    room: torch.Tensor,
    x_first: torch.Tensor,
    g: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Draw n (movie, t, delta, y0, x0) uniformly over a split's pairs `table` (N, 3) and crop
    corners (CPU tensors)."""
    movie, t, delta = table[torch.randint(len(table), (n,), generator=g)].T
    corner = (
        torch.rand(n, 2, generator=g) * room[movie]
    ).long()  # (n, 2) within this split's columns
    return dict(movie=movie, t=t, delta=delta, y0=corner[:, 0], x0=corner[:, 1] + x_first[movie])


def held_out_width(width: int, patch: int, val_region: float) -> int:
    """Columns at the right edge of a frame `width` px wide held out by `val_region`
    (0: none; else >= one patch)."""
    return 0 if val_region <= 0 else max(math.ceil(val_region * width), patch)


def region_fits(width: int, patch: int, val_region: float) -> bool:
    """Whether frames `width` px wide hold a held-out region of `val_region` and training crops
    (see PairSampler)."""
    return (
        val_region <= 0
        or width - held_out_width(width, patch, val_region) - patch // 2 - patch >= 0
    )
