"""Movies for `PairSampler` as stored on the host, and their per-frame normalisation (issue 13).

The sampler reads a movie in one of two ways (`storage`):
  * "device": the whole movie, normalised to float32, lives on the compute device (fast, needs memory);
  * "host": the movie stays on the host as stored (a numpy array or a memory-mapped TIFF; uint8, uint16,
    float16 and float32 are kept as they are), and only the pixels one batch reads travel to the device.
Both modes normalise with the same per-frame percentiles (`frame_stats`, computed once) and the same
arithmetic, `(x - lo) / denom` in float32, so they give the same crops. `choose_storage` picks the mode;
`HostMovies` holds the host mode's movies, gathers each batch's pixels and prefetches the next batch.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from tapkit.data.movie import InputError, Movie, check_images
from tapkit.ssl.augment import PairTransforms, apply_dihedral

if TYPE_CHECKING:
    from tapkit.ssl.sampler import PairSampler

__all__ = [
    "HOST_DTYPES",
    "open_movie",
    "frame_stats",
    "as_float",
    "normalise_",
    "device_store",
    "store_bytes",
    "free_bytes",
    "choose_storage",
    "HOST_FRACTION",
    "HostMovies",
    "as_image_list",
]

HOST_DTYPES = (
    np.uint8,
    np.uint16,
    np.float16,
    np.float32,
)  # kept as stored in host mode; others -> float32 per crop
# "auto" keeps the movies on the host when they need more than this share of free memory
HOST_FRACTION = 1 / 3
# percentiles from at most this many pixels per frame (a 2048 x 2048 frame: all of them)
MAX_STAT_PIXELS = 2**22


def _read_tiff(path: Path) -> np.ndarray:
    """A TIFF as a read-only memory map when it is stored uncompressed and contiguous, else read into memory."""
    import tifffile

    try:
        return tifffile.memmap(path, mode="r")
    except (ValueError, OSError):  # compressed, tiled or not contiguous: tifffile cannot map it
        return tifffile.imread(path)


def open_movie(movie: Any, what: str) -> np.ndarray:
    """A Movie, array, tensor or TIFF path -> a (T, C, Y, X) view of it as stored (no copy, no conversion)."""
    if isinstance(movie, (str, os.PathLike)):
        path = Path(movie)
        if not path.is_file() or path.suffix.lower() not in (".tif", ".tiff"):
            raise InputError(
                f"{what}: {str(path)!r} is not a TIFF file; pass a (T, Y, X) TIFF, an array or a Movie."
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
            f"{what}: expected shape (T, Y, X) or (T, C, Y, X), got {arr.ndim} dimensions {arr.shape}."
        )
    arr = arr[:, None] if arr.ndim == 3 else arr
    if min(arr.shape[-2:]) < 8:
        raise InputError(
            f"{what}: frames of size {arr.shape[-2:]} are too small (at least 8 x 8 pixels)."
        )
    if arr.shape[0] < 2:
        raise InputError(
            f"{what}: has a single frame; time arrow prediction needs at least 2 frames (check that "
            "the time axis is first: (T, Y, X) or (T, C, Y, X))."
        )
    return arr


def as_image_list(
    movies: "Movie | np.ndarray | Sequence", what: str = "PairSampler"
) -> list[np.ndarray]:
    """Accept one or several Movies / (T, Y, X) / (T, C, Y, X) arrays and return validated float32 arrays."""
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
    """Every k-th value of a flattened array (all of them when there are at most `limit`), as float32."""
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
    """Percentiles of a (T, C, Y, X) movie, read frame by frame: lo (T, C) and denom = hi - lo + eps (T, C), float32.

    Per frame (or over the whole movie when per_frame=False), from all pixels up to MAX_STAT_PIXELS per frame
    and a regular subsample beyond; for such movies the numbers equal `tapkit.normalize`'s.
    """
    t, c = arr.shape[:2]
    lo, hi = np.empty((t, c), np.float32), np.empty((t, c), np.float32)
    for k in range(c):
        # views of the movie, not copies
        parts = [arr[i, k] for i in range(t)] if per_frame else [arr[:, k]]
        for i, part in enumerate(parts):
            v = _subsample(
                part, MAX_STAT_PIXELS if per_frame else MAX_STAT_PIXELS * 4
            )  # one frame as float32 at a time
            if not np.isfinite(v).all():
                raise InputError(
                    f"{what}: contains NaN or infinite values (channel {k}); fix or mask them first."
                )
            lo[i if per_frame else slice(None), k] = np.percentile(v, pmin)
            hi[i if per_frame else slice(None), k] = np.percentile(v, pmax)
    return lo, hi - lo + eps


def as_float(x: torch.Tensor) -> torch.Tensor:
    """Raw crops as float32 (uint16 through int32: conversions of torch.uint16 are not on every device)."""
    if x.dtype == torch.uint16:
        return x.view(torch.int16).to(torch.int32).bitwise_and_(0xFFFF).float()
    return x.float()


def normalise_(x: torch.Tensor, lo: torch.Tensor, denom: torch.Tensor) -> torch.Tensor:
    """(x - lo) / denom in place on float32 crops (..., C, Y, X) with lo, denom (..., C): THE normalisation."""
    return x.sub_(lo[..., None, None]).div_(denom[..., None, None])


def store_bytes(arr: np.ndarray) -> int:
    """Device bytes of a (T, C, Y, X) movie normalised into the device store (float32, one zero row per frame)."""
    t, c, y, x = arr.shape
    return 4 * t * c * (y + 1) * x


def device_store(
    arr: np.ndarray,
    lo: np.ndarray,
    denom: np.ndarray,
    device: torch.device,
    chunk_bytes: int = 2**26,
) -> torch.Tensor:
    """(T, C, Y, X) movie as stored -> normalised (C, T, Y + 1, X) float32 tensor on `device`, a zero row per frame."""
    t, c, y, x = arr.shape
    store = torch.zeros((c, t, y + 1, x), dtype=torch.float32, device=device)
    step = max(
        1, chunk_bytes // (4 * c * y * x)
    )  # frames per chunk: never the whole movie as float32 on the host
    for i in range(0, t, step):
        part = torch.from_numpy(
            np.array(arr[i : i + step], dtype=np.float32)
        )  # (t', C, Y, X), a copy: normalised in place
        part = normalise_(
            part, torch.from_numpy(lo[i : i + step]), torch.from_numpy(denom[i : i + step])
        )
        store[:, i : i + step, :y] = part.transpose(0, 1).to(device)
    return store


def free_bytes(device: torch.device) -> "int | None":
    """Free memory on `device`: CUDA free memory, or the host's MemAvailable for the CPU; None when unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        import psutil  # optional

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            return next(
                int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")
            )
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def choose_storage(storage: str, need: int, device: torch.device) -> tuple[str, str]:
    """("device" or "host", the reason in words) for movies that need `need` bytes normalised on `device`."""
    if storage not in ("auto", "device", "host"):
        raise InputError(
            f"storage={storage!r}: use 'auto' (pick from the movie size and free memory), 'device' "
            "(the normalised movie on the compute device) or 'host' (crops read from the host)."
        )
    gib = 2**30
    if storage != "auto":
        return storage, f"storage={storage!r} was asked for ({need / gib:.2f} GiB normalised)"
    free = free_bytes(device)
    if free is None:
        return (
            "device",
            f"the free memory of {device} is unknown; the movies need {need / gib:.2f} GiB normalised",
        )
    mode = "host" if need > HOST_FRACTION * free else "device"
    relation = "more" if mode == "host" else "no more"
    return mode, (
        f"the normalised movies need {need / gib:.2f} GiB, {relation} than 1/3 of the "
        f"{free / gib:.1f} GiB free on {device}"
    )


def transport_dtype(arrays: list[np.ndarray]) -> np.dtype:
    """The dtype crops travel in: the movies' own when they all share one of HOST_DTYPES, else float32."""
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
    """Raw crops (n, 2, C, P, P) at frames (n, 2) and corners y0, x0 (n,) of movies `movie` (n,), as stored."""
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
    """Boxes that hold every pixel a bilinear read at (iy, ix) (m, P, P) touches, plus `margin`, inside frames (m, 2 (h, w)).

    Returns the box corners (m, 2) and one box size (Hb, Wb) for all of them (the largest needed).
    """
    # (m, 2)
    lo = torch.stack([iy.flatten(1).amin(1), ix.flatten(1).amin(1)], -1).floor().long() - margin
    # exclusive
    hi = torch.stack([iy.flatten(1).amax(1), ix.flatten(1).amax(1)], -1).floor().long() + 2 + margin
    lo, hi = torch.maximum(lo, torch.zeros_like(lo)), torch.minimum(hi, sizes)
    size = (hi - lo).amax(0)  # (2,) the box size of the batch
    corner = torch.minimum(
        lo, (sizes - size).clamp(min=0)
    )  # shift boxes that would leave the frame
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
    """Raw regions (m, 2, C, Hb, Wb) with corners (m, 2 frames, 2) of movies `movie` (m,) at frames (m, 2); zeros past a frame."""
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
    """Bilinear reads (m, C, P, P) at frame pixels (iy, ix) (m, P, P) from regions local (m, C, Hb, Wb) at corners (m, 2).

    Pixels outside the frame (sizes (m, 2)) read 0, as `grid_sample(padding_mode="zeros")` on the device store, and
    the arithmetic is grid_sample's (weights from x - floor(x), corners summed nw, ne, sw, se).
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


class HostMovies:
    """The movies of a `PairSampler(storage="host")` as stored, with the device's percentile tables.

    It reads what the device store reads: `windows` gives normalised unaugmented crops, `has_event` tests the
    event masks, `next_batch` gives a batch's crops. A background thread draws the next batch (from the
    sampler's `draw_generator` only) and gathers the raw pixels it reads (plain windows, or each warped crop's
    footprint) into pinned memory; on the device they are normalised with the same percentiles and resampled
    with grid_sample's arithmetic (`bilinear`), so both stores give the same crops.
    """

    def __init__(
        self,
        arrays: list[np.ndarray],
        stats: list[tuple[np.ndarray, np.ndarray]],
        events: "list[np.ndarray | None]",
        device: torch.device,
    ) -> None:
        self.arrays, self.device = arrays, device
        self.events = (
            None
            if all(e is None for e in events)
            else [None if e is None else e > 0 for e in events]
        )
        # (M,)
        self.offsets = torch.tensor([0] + [a.shape[0] for a in arrays]).cumsum(0)[:-1].to(device)
        self.lo, self.denom = (
            torch.from_numpy(np.concatenate(s)).to(device) for s in zip(*stats)
        )  # (sum T, C)
        self.transport = transport_dtype(arrays)
        self.pin = device.type == "cuda" and torch.cuda.is_available()
        self._pool: "ThreadPoolExecutor | None" = None
        # (next batch, draw state before it)
        self._pending: "tuple[Future, torch.Tensor] | None" = None

    @property
    def nbytes(self) -> int:
        """Bytes kept on the device: the percentile tables."""
        return sum(m.numel() * m.element_size() for m in (self.lo, self.denom))

    def windows(
        self,
        movie: torch.Tensor,
        frames: torch.Tensor,
        y0: torch.Tensor,
        x0: torch.Tensor,
        patch: int,
        device: torch.device,
    ) -> torch.Tensor:
        """Normalised unaugmented crops (n, 2, C, P, P) of movies `movie` (n,) at frames (n, 2), on `device`."""
        raw = gather_windows(
            self.arrays,
            movie.numpy(),
            frames.numpy(),
            y0.numpy(),
            x0.numpy(),
            patch,
            self.transport,
            False,
        )
        g = self.offsets.cpu()[movie][:, None] + frames  # (n, 2) rows of the percentile tables
        return normalise_(
            as_float(raw).to(device), self.lo.cpu()[g].to(device), self.denom.cpu()[g].to(device)
        )

    def has_event(
        self, m: int, frames: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor, patch: int
    ) -> torch.Tensor:
        """Whether the unaugmented crops (n,) of movie m at frames (n, 2) contain an event pixel, on the device."""
        found = gather_windows(
            [self.events[m][:, None]],
            np.zeros(len(frames), int),
            frames.cpu().numpy(),
            y0.cpu().numpy(),
            x0.cpu().numpy(),
            patch,
            np.dtype(bool),
            False,
        )
        return found.flatten(1).any(1).to(self.device)

    def gather(self, sampler: "PairSampler") -> tuple[dict, PairTransforms, dict]:
        """Draw the sampler's next batch and gather the raw pixels it reads, in (pinned) host memory (worker thread)."""
        pos, tf = sampler._plan()
        frames = torch.stack([pos["t"], pos["t"] + pos["delta"]], 1)  # (B, 2)
        n_plain = int((~tf.resample).sum())
        plain, warped = slice(0, n_plain), slice(n_plain, len(frames))
        raw = {
            "n_plain": n_plain,
            "plain": gather_windows(
                self.arrays,
                pos["movie"][plain].numpy(),
                frames[plain].numpy(),
                pos["y0"][plain].numpy(),
                pos["x0"][plain].numpy(),
                sampler.patch,
                self.transport,
                self.pin,
            ),
        }
        if n_plain == len(frames):
            return pos, tf, raw
        movie, iy, ix = pos["movie"][warped], [], []
        for _, m, part in sampler._groups(
            pos, tf
        ):  # the grid of each movie's tall image, as the device path
            if part.start >= n_plain:
                y, x = self._pixels(
                    sampler, m, frames[part], pos["y0"][part], pos["x0"][part], tf.coarse[part]
                )
                iy.append(y), ix.append(x)
        sizes = sampler.sizes[movie].repeat_interleave(2, 0)  # (2m, 2) per (pair, frame)
        corner, size = footprint(torch.cat(iy), torch.cat(ix), sizes)
        raw["corner"] = corner.view(len(movie), 2, 2)
        raw["warped"] = gather_boxes(
            self.arrays,
            movie.numpy(),
            frames[warped].numpy(),
            raw["corner"].numpy(),
            size,
            self.transport,
            self.pin,
        )
        return pos, tf, raw

    def _pixels(
        self,
        sampler: "PairSampler",
        m: int,
        frames: torch.Tensor,
        y0: torch.Tensor,
        x0: torch.Tensor,
        coarse: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame pixels iy, ix (2n, P, P) that the device path's grid into movie m's tall image reads."""
        n_t, height, width = (
            self.arrays[m].shape[0],
            int(sampler.sizes[m, 0]) + 1,
            int(sampler.sizes[m, 1]),
        )
        grid = sampler._grid(frames, y0, x0, coarse, n_t, height, width)  # (2n, P, P, 2)
        return sampler._pixels(grid, frames, n_t, height, width)

    def prefetch(self, sampler: "PairSampler") -> None:
        """Start drawing and gathering the sampler's next batch in the background."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tapkit-sampler")
        self._pending = (
            self._pool.submit(self.gather, sampler),
            sampler.draw_generator.get_state(),
        )

    def cancel(self) -> None:
        """Drop a prefetched batch (after reset or load_state_dict), waiting for its thread to finish."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            pending[0].exception()  # wait; errors of a dropped batch do not matter

    def draw_state(self, draw_generator: torch.Generator) -> torch.Tensor:
        """The draw generator's state before the prefetched batch (its current state when none is pending)."""
        return self._pending[1] if self._pending is not None else draw_generator.get_state()

    def next_batch(self, sampler: "PairSampler") -> tuple[dict, PairTransforms, torch.Tensor]:
        """The prefetched (or a freshly gathered) batch, copied to the device and read there; prefetches the next one."""
        if self._pending is None:
            pos, tf, raw = self.gather(sampler)
        else:
            future, _ = self._pending
            self._pending = None
            pos, tf, raw = future.result()
        dev = {
            k: v.to(self.device, non_blocking=True)
            for k, v in raw.items()
            if isinstance(v, torch.Tensor)
        }
        if sampler.split == "train":
            self.prefetch(
                sampler
            )  # draws from draw_generator only: the order of every random number stays the same
        pos = {k: v.to(self.device) for k, v in pos.items()}
        tf = PairTransforms(**{k: v.to(self.device) for k, v in vars(tf).items()})
        return pos, tf, self.read(sampler, pos, tf, raw["n_plain"], dev)

    def read(
        self, sampler: "PairSampler", pos: dict, tf: PairTransforms, n_plain: int, raw: dict
    ) -> torch.Tensor:
        """Crops (B, 2, C, P, P) from the gathered raw pixels on the device: normalise, then index or resample."""
        frames = torch.stack([pos["t"], pos["t"] + pos["delta"]], 1)  # (B, 2)
        rows = self.offsets[pos["movie"]][:, None] + frames  # (B, 2) rows of the percentile tables
        lo, denom = self.lo[rows], self.denom[rows]  # (B, 2, C)
        p = sampler.patch
        out = torch.empty((len(frames), 2, sampler.channels, p, p), device=self.device)
        out[:n_plain] = normalise_(as_float(raw["plain"]), lo[:n_plain], denom[:n_plain])
        apply_dihedral(out[:n_plain], tf.dihedral[:n_plain])
        if n_plain == len(frames):
            return out
        local = normalise_(
            as_float(raw["warped"]), lo[n_plain:], denom[n_plain:]
        )  # (m, 2, C, Hb, Wb)
        corner = raw["corner"].flatten(0, 1)  # (2m, 2)
        sizes = sampler.sizes.to(self.device)[pos["movie"][n_plain:]].repeat_interleave(
            2, 0
        )  # (2m, 2)
        for warped, m, part in sampler._groups(pos, tf):
            if not warped:
                continue
            iy, ix = self._pixels(
                sampler, m, frames[part], pos["y0"][part], pos["x0"][part], tf.coarse[part]
            )
            items = slice(
                2 * (part.start - n_plain), 2 * (part.stop - n_plain)
            )  # (pair, frame) items
            crops = bilinear(local.flatten(0, 1)[items], iy, ix, corner[items], sizes[items])
            out[part] = crops.view(-1, 2, *crops.shape[1:])
        return out
