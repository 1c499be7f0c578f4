"""How a batch's crops are read from a normalised movie store (C, T, Y + 1, X) on the device.

The pairs of a batch are sorted by (resampled, movie) (`sort_for_reading`), so each group is one
slice (`read_groups`). Pairs with only a flip / 90 degree rotation are gathered by indexing
(`read_windows`, exact pixels); the others are resampled (`resample`) with one bilinear
`grid_sample` over the movie laid out as one tall image (frames stacked along y with one zero row
between frames, so an interpolation never mixes two frames), on a grid of exactly patch x patch
points per frame (`crop_grid`, `tall_grid`) that combines the dihedral, rotation, zoom, per-frame
jitter and elastic displacement; coordinates outside a frame are reflected about its edge pixels.
The host store (`tapkit.ssl.host_store`) reads the same grid's pixels (`grid_pixels`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tapkit.ssl.augment import PairTransforms, reflect, source_coords

__all__ = [
    "read_windows",
    "tall_grid",
    "crop_grid",
    "grid_pixels",
    "resample",
    "read_groups",
    "sort_for_reading",
]


def read_windows(
    stack: torch.Tensor, frames: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor, patch: int
) -> torch.Tensor:
    """Unaugmented crops (n, 2, C, P, P) at frames (n, 2), corners y0, x0 (n,) of a (C, T, Y', X)
    tensor (Y' >= Y)."""
    p = patch
    windows = stack.unfold(2, p, 1).unfold(3, p, 1)  # (C, T, Y'-P+1, X-P+1, P, P), a view
    # from (C, n, 2, P, P)
    return windows[:, frames, y0[:, None], x0[:, None]].permute(1, 2, 0, 3, 4)


def tall_grid(
    ctrl: torch.Tensor,
    frames: torch.Tensor,
    n_t: int,
    height: int,
    width: int,
    patch: int,
    out: "torch.Tensor | None" = None,
) -> torch.Tensor:
    """Control points (2n, 2 (y, x), K, K) in frame pixels -> grid_sample grid (2n, P, P, 2) into
    the tall image.

    The tall image is the T frames of height `height` (with their zero row) stacked along y; grid
    units are float32, exact to ~T * height * 6e-8 px, far below the one zero row between frames.
    """
    h = height - 1  # frame height without the zero row
    # a bilinear map peaks at its control points: reflect only the frames whose footprint leaves the
    # frame
    lo, hi = ctrl.flatten(2).amin(-1), ctrl.flatten(2).amax(-1)  # (2n, 2)
    outside = ((lo < 0) | (hi > torch.tensor([h - 1, width - 1], device=lo.device))).any(1)  # (2n,)
    ctrl = ctrl.flip(1).clone()  # (2n, 2 (x, y), K, K): grid_sample's order
    # (2n,) first row of each frame in the tall image
    frame_row = (frames.flatten() * height).to(ctrl.dtype)
    scale_x, scale_y = (
        2 / (width - 1),
        2 / (n_t * height - 1),
    )  # pixels -> grid_sample units (align_corners)
    # normalising is affine, so for frames that need no reflection it is done on the control points
    inside = ~outside
    ctrl[inside, 0] = ctrl[inside, 0] * scale_x - 1
    ctrl[inside, 1] = (ctrl[inside, 1] + frame_row[inside, None, None]) * scale_y - 1
    grid = source_coords(ctrl, patch, out)  # (2n, P, P, 2): exact, the maps are bilinear
    if bool(outside.any()):
        idx = torch.nonzero(outside).flatten()
        # (x, y) last pixel
        edge = torch.tensor([width - 1, h - 1], dtype=grid.dtype, device=grid.device)
        sub = grid.index_select(0, idx)  # (m, P, P, 2) pixels (x, y)
        if bool((lo[idx] >= -(h - 1)).all() and (hi[idx].flip(-1) <= 2 * edge).all()):
            # one mirror per side is enough: reflect()'s result, 5x faster
            sub = edge - (sub.abs_() - edge).abs_()
        else:  # a footprint more than a frame outside (tiny frames): the general reflection
            reflect(sub[..., 0], width), reflect(sub[..., 1], h)
        scale = torch.tensor([scale_x, scale_y], dtype=grid.dtype, device=grid.device)
        # (m, 2)
        offset = torch.stack(
            [torch.full_like(frame_row[idx], -1.0), frame_row[idx] * scale_y - 1], -1
        )
        grid.index_copy_(0, idx, sub.mul_(scale).add_(offset[:, None, None]))
    return grid


def crop_grid(
    frames: torch.Tensor,
    y0: torch.Tensor,
    x0: torch.Tensor,
    coarse: torch.Tensor,
    n_t: int,
    height: int,
    width: int,
    patch: int,
    out: "torch.Tensor | None" = None,
) -> torch.Tensor:
    """grid_sample grid (2n, P, P, 2) into the tall image of a movie for the maps `coarse`
    (n, 2, 2, K, K)."""
    centre = torch.stack([y0, x0], -1) + (patch - 1) / 2  # (n, 2) patch centre (y, x)
    # (2n, 2, K, K) source pixels (y, x)
    ctrl = (coarse + centre[:, None, :, None, None]).flatten(0, 1)
    return tall_grid(ctrl, frames, n_t, height, width, patch, out)


def grid_pixels(
    grid: torch.Tensor, frames: torch.Tensor, n_t: int, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """grid (2n, P, P, 2) -> frame pixel coordinates iy, ix (2n, P, P) as grid_sample computes them
    (align_corners)."""
    ix = (grid[..., 0] + 1) * ((width - 1) / 2)
    iy = (grid[..., 1] + 1) * ((n_t * height - 1) / 2)
    return iy - (frames.flatten() * height).to(iy.dtype)[
        :, None, None
    ], ix  # rows within the frame: exact


def resample(
    store: torch.Tensor,
    frames: torch.Tensor,
    y0: torch.Tensor,
    x0: torch.Tensor,
    coarse: torch.Tensor,
    patch: int,
    out: "torch.Tensor | None" = None,
) -> torch.Tensor:
    """Crops (n, 2, C, P, P) through the maps `coarse` (n, 2, 2, K, K): one grid_sample over the
    movie's frames.

    `out` (2n, P, P, 2), when given, holds the sampling grid (a buffer reused from batch to batch).
    """
    p, (c, n_t, height, width) = patch, store.shape
    grid = crop_grid(frames, y0, x0, coarse, n_t, height, width, patch, out)  # (2n, P, P, 2)
    # grid_sample parallelises over its batch on a CPU: split the points into one chunk per thread,
    # all reading the same (expanded, not copied) tall image
    threads = torch.get_num_threads()
    chunks = threads if store.device.type == "cpu" and len(grid) % threads == 0 else 1
    tall = store.view(1, c, n_t * height, width).expand(chunks, -1, -1, -1)
    crops = F.grid_sample(
        tall,
        grid.view(chunks, -1, p, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )  # (chunks, C, 2n*P / chunks, P)
    return crops.transpose(0, 1).reshape(c, len(y0), 2, p, p).permute(1, 2, 0, 3, 4)


def read_groups(pos: dict, tf: PairTransforms, n_movies: int) -> list[tuple[bool, int, slice]]:
    """(resampled, movie, slice of the batch) of the pairs sorted by `sort_for_reading`."""
    key = (tf.resample.long() * n_movies + pos["movie"]).cpu()
    keys, counts = torch.unique_consecutive(key, return_counts=True)
    ends = counts.cumsum(0).tolist()
    return [
        (bool(k // n_movies), int(k % n_movies), slice(e - int(n), e))
        for k, n, e in zip(keys.tolist(), counts, ends)
    ]


def sort_for_reading(pos: dict, tf: PairTransforms, n_movies: int) -> tuple[dict, PairTransforms]:
    """Sort the pairs by (resampled, movie) so that reading works on slices; the order of iid pairs
    is free."""
    order = torch.argsort(tf.resample.long() * n_movies + pos["movie"], stable=True)
    fields = {k: v[order] for k, v in vars(tf).items()}
    return {k: v[order] for k, v in pos.items()}, PairTransforms(**fields)
