"""Host-mode pixel reads for `tapkit.ssl.host_store.HostMovies`: gather raw pixels, resample them
bilinearly.

On the host, `gather_windows` copies plain crops and `gather_boxes` the boxes (`footprint`) that
warped crops read, as stored, into (pinned) buffers in the dtype they travel in (`transport_dtype`).
On the device, `bilinear` resamples the normalised boxes with grid_sample's arithmetic, so the host
store gives the same crops as one grid_sample over the device store.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "HOST_DTYPES",
    "transport_dtype",
    "gather_windows",
    "footprint",
    "gather_boxes",
    "bilinear",
]

HOST_DTYPES = (
    np.uint8,
    np.uint16,
    np.float16,
    np.float32,
)  # kept as stored in host mode; others -> float32 per crop


def transport_dtype(arrays: list[np.ndarray]) -> np.dtype:
    """The dtype crops travel in: the movies' own when they all share one of HOST_DTYPES, else
    float32."""
    kinds = {a.dtype for a in arrays}
    only = kinds.pop() if len(kinds) == 1 else None
    return (
        np.dtype(only)
        if only is not None and any(only == d for d in HOST_DTYPES)
        else np.dtype(np.float32)
    )


def _buffer(shape: tuple[int, ...], dtype: np.dtype, pin: bool) -> tuple[torch.Tensor, np.ndarray]:
    """An empty host tensor (pinned when `pin`) and a numpy view of it, to fill from the movie."""
    buf = torch.empty(shape, dtype=torch.from_numpy(np.empty(0, dtype)).dtype, pin_memory=pin)
    return buf, buf.numpy()


def gather_windows(
    arrays: list[np.ndarray],
    movie: np.ndarray,
    frames: np.ndarray,
    y0: np.ndarray,
    x0: np.ndarray,
    patch: int,
    dtype: np.dtype,
    pin: bool,
) -> torch.Tensor:
    """Raw crops (n, 2, C, P, P) at frames (n, 2) and corners y0, x0 (n,) of movies `movie` (n,), as
    stored."""
    n, c = len(movie), arrays[0].shape[1]
    buf, out = _buffer((n, 2, c, patch, patch), dtype, pin)
    for i in range(n):
        arr, y, x = arrays[movie[i]], y0[i], x0[i]
        for f in range(2):
            out[i, f] = arr[frames[i, f], :, y : y + patch, x : x + patch]
    return buf


def footprint(
    iy: torch.Tensor, ix: torch.Tensor, sizes: torch.Tensor, margin: int = 1
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Boxes that hold every pixel a bilinear read at (iy, ix) (m, P, P) touches, plus `margin`,
    inside frames (m, 2 (h, w)).

    Returns the box corners (m, 2) and one box size (Hb, Wb) for all of them (the largest needed).
    """
    # (m, 2)
    lo = torch.stack([iy.flatten(1).amin(1), ix.flatten(1).amin(1)], -1).floor().long() - margin
    # exclusive
    hi = torch.stack([iy.flatten(1).amax(1), ix.flatten(1).amax(1)], -1).floor().long() + 2 + margin
    lo, hi = torch.maximum(lo, torch.zeros_like(lo)), torch.minimum(hi, sizes)
    size = (hi - lo).amax(0)  # (2,) the box size of the batch
    # shift boxes that would leave the frame
    corner = torch.minimum(lo, (sizes - size).clamp(min=0))
    return corner, (int(size[0]), int(size[1]))


def gather_boxes(
    arrays: list[np.ndarray],
    movie: np.ndarray,
    frames: np.ndarray,
    corner: np.ndarray,
    size: tuple[int, int],
    dtype: np.dtype,
    pin: bool,
) -> torch.Tensor:
    """Raw regions (m, 2, C, Hb, Wb) with corners (m, 2 frames, 2) of movies `movie` (m,) at frames
    (m, 2); zeros past a frame."""
    m, c = len(movie), arrays[0].shape[1]
    buf, out = _buffer((m, 2, c, *size), dtype, pin)
    for i in range(m):
        arr = arrays[movie[i]]
        for f in range(2):
            y, x = corner[i, f]
            part = arr[frames[i, f], :, y : y + size[0], x : x + size[1]]
            if part.shape[-2:] != size:  # a frame smaller than the box (movies of several sizes)
                out[i, f] = 0
            out[i, f, :, : part.shape[-2], : part.shape[-1]] = part
    return buf


def bilinear(
    local: torch.Tensor,
    iy: torch.Tensor,
    ix: torch.Tensor,
    corner: torch.Tensor,
    sizes: torch.Tensor,
) -> torch.Tensor:
    """Bilinear reads (m, C, P, P) at frame pixels (iy, ix) (m, P, P) from regions local
    (m, C, Hb, Wb) at corners (m, 2).

    Pixels outside the frame (sizes (m, 2)) read 0, as `grid_sample(padding_mode="zeros")` on the
    device store, and the arithmetic is grid_sample's (weights from x - floor(x), corners summed nw,
    ne, sw, se).
    """
    m, c, hb, wb = local.shape
    y0, x0 = iy.floor(), ix.floor()
    ny, wx = iy - y0, ix - x0
    sy, ex = 1 - ny, 1 - wx
    weights = (sy * ex, sy * wx, ny * ex, ny * wx)  # nw, ne, sw, se
    y0, x0 = y0.long(), x0.long()
    flat = local.flatten(2)  # (m, C, Hb * Wb)
    out = None
    for (dy, dx), w in zip(((0, 0), (0, 1), (1, 0), (1, 1)), weights):
        y, x = y0 + dy, x0 + dx  # (m, P, P) frame pixels
        inside = (y >= 0) & (y < sizes[:, 0, None, None]) & (x >= 0) & (x < sizes[:, 1, None, None])
        ly = (y - corner[:, 0, None, None]).clamp(0, hb - 1)
        lx = (x - corner[:, 1, None, None]).clamp(0, wb - 1)
        idx = (ly * wb + lx).flatten(1)[:, None].expand(m, c, -1)  # (m, C, P * P)
        val = torch.where(inside.flatten(1)[:, None], flat.gather(2, idx), 0.0).view(
            m, c, *iy.shape[1:]
        )
        term = val * w[:, None]
        out = term if out is None else out + term
    return out
