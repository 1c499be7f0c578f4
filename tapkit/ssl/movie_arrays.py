"""Movies as numpy arrays for `PairSampler`: open them, check them, measure them, normalise them.

`open_movie` turns a Movie, array, tensor or TIFF path into a (T, C, Y, X) view as stored (a TIFF
stays a memory map when it can); `as_image_list` validates movies into float32 arrays; `frame_stats`
computes the per-frame (or per-movie) percentiles once, frame by frame; `as_float` and `normalise_`
are THE arithmetic, `(x - lo) / denom` in float32, that both stores (`tapkit.ssl.host_store`) apply
to their pixels.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from tapkit.data.movie import InputError, Movie, check_images

__all__ = [
    "MAX_STAT_PIXELS",
    "open_movie",
    "as_image_list",
    "frame_stats",
    "as_float",
    "normalise_",
]

# percentiles from at most this many pixels per frame (a 2048 x 2048 frame: all of them)
MAX_STAT_PIXELS = 2**22


def _read_tiff(path: Path) -> np.ndarray:
    """A TIFF as a read-only memory map when it is stored uncompressed and contiguous, else read
    into memory."""
    import tifffile

    try:
        return tifffile.memmap(path, mode="r")
    except (ValueError, OSError):  # compressed, tiled or not contiguous: tifffile cannot map it
        return tifffile.imread(path)


def open_movie(movie: Any, what: str) -> np.ndarray:
    """A Movie, array, tensor or TIFF path -> a (T, C, Y, X) view of it as stored
    (no copy, no conversion)."""
    if isinstance(movie, (str, os.PathLike)):
        path = Path(movie)
        if not path.is_file() or path.suffix.lower() not in (".tif", ".tiff"):
            raise InputError(
                f"{what}: {str(path)!r} is not a TIFF file; pass a (T, Y, X) TIFF, an array or a "
                "Movie."
            )
        movie = _read_tiff(path)
    arr = movie.images if isinstance(movie, Movie) else movie
    arr = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else arr
    arr = arr if isinstance(arr, np.ndarray) else np.asarray(arr)
    if (
        arr.dtype == object
        or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool)
        or np.iscomplexobj(arr)
    ):
        raise InputError(f"{what}: expected a real numeric array, got dtype {arr.dtype}.")
    if arr.ndim not in (3, 4):
        raise InputError(
            f"{what}: expected shape (T, Y, X) or (T, C, Y, X), got {arr.ndim} dimensions "
            f"{arr.shape}."
        )
    arr = arr[:, None] if arr.ndim == 3 else arr
    if min(arr.shape[-2:]) < 8:
        raise InputError(
            f"{what}: frames of size {arr.shape[-2:]} are too small (at least 8 x 8 pixels)."
        )
    if arr.shape[0] < 2:
        raise InputError(
            f"{what}: has a single frame; time arrow prediction needs at least 2 frames (check "
            "that the time axis is first: (T, Y, X) or (T, C, Y, X))."
        )
    return arr


def as_image_list(
    movies: "Movie | np.ndarray | Sequence", what: str = "PairSampler"
) -> list[np.ndarray]:
    """Accept one or several Movies / (T, Y, X) / (T, C, Y, X) arrays and return validated float32
    arrays."""
    if isinstance(movies, (Movie, np.ndarray, torch.Tensor)):
        movies = [movies]
    movies = list(movies)
    if not movies:
        raise InputError(
            f"{what}: got an empty list of movies; pass at least one Movie or (T, Y, X) array."
        )
    out = []
    for i, m in enumerate(movies):
        arr = (
            m.images
            if isinstance(m, Movie)
            else (m.cpu().numpy() if isinstance(m, torch.Tensor) else m)
        )
        arr = np.asarray(arr)
        if arr.ndim == 4:  # (T, C, Y, X): check every channel as a (T, Y, X) movie
            arr = np.stack(
                [
                    check_images(arr[:, c], what=f"{what}: movie {i} channel {c}", min_frames=1)
                    for c in range(arr.shape[1])
                ],
                1,
            )
        else:
            arr = check_images(arr, what=f"{what}: movie {i}", min_frames=1)
        if arr.shape[0] < 2:
            raise InputError(
                f"{what}: movie {i} has a single frame; time arrow prediction needs at least 2 "
                "frames (check that the time axis is first: (T, Y, X) or (T, C, Y, X))."
            )
        out.append(arr)
    return out


def _subsample(values: np.ndarray, limit: int) -> np.ndarray:
    """Every k-th value of a flattened array (all of them when there are at most `limit`), as
    float32."""
    flat = values.reshape(-1)
    step = max(1, math.ceil(flat.size / limit))
    return np.asarray(flat[::step], dtype=np.float32)


def frame_stats(
    arr: np.ndarray,
    per_frame: bool = True,
    pmin: float = 1.0,
    pmax: float = 99.8,
    eps: float = 1e-8,
    what: str = "movie",
) -> tuple[np.ndarray, np.ndarray]:
    """Percentiles of a (T, C, Y, X) movie, read frame by frame: lo (T, C) and denom = hi - lo + eps
    (T, C), float32.

    Per frame (or over the whole movie when per_frame=False), from all pixels up to MAX_STAT_PIXELS
    per frame and a regular subsample beyond; for such movies the numbers equal
    `tapkit.normalize`'s.
    """
    t, c = arr.shape[:2]
    lo, hi = np.empty((t, c), np.float32), np.empty((t, c), np.float32)
    for k in range(c):
        # views of the movie, not copies
        parts = [arr[i, k] for i in range(t)] if per_frame else [arr[:, k]]
        for i, part in enumerate(parts):
            # one frame as float32 at a time
            v = _subsample(part, MAX_STAT_PIXELS if per_frame else MAX_STAT_PIXELS * 4)
            if not np.isfinite(v).all():
                raise InputError(
                    f"{what}: contains NaN or infinite values (channel {k}); fix or mask them "
                    "first."
                )
            lo[i if per_frame else slice(None), k] = np.percentile(v, pmin)
            hi[i if per_frame else slice(None), k] = np.percentile(v, pmax)
    return lo, hi - lo + eps


def as_float(x: torch.Tensor) -> torch.Tensor:
    """Raw crops as float32 (uint16 through int32: conversions of torch.uint16 are not on every
    device)."""
    if x.dtype == torch.uint16:
        return x.view(torch.int16).to(torch.int32).bitwise_and_(0xFFFF).float()
    return x.float()


def normalise_(x: torch.Tensor, lo: torch.Tensor, denom: torch.Tensor) -> torch.Tensor:
    """(x - lo) / denom in place on float32 crops (..., C, Y, X) with lo, denom (..., C): THE
    normalisation."""
    return x.sub_(lo[..., None, None]).div_(denom[..., None, None])
