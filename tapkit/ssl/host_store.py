"""Where `PairSampler` keeps its movies: on the compute device or on the host, and the choice
(issue 13).

The sampler reads a movie in one of two ways (`storage`):
  * "device": the whole movie, normalised to float32, lives on the compute device
    (fast, needs memory):
    `device_store`;
  * "host": the movie stays on the host as stored (a numpy array or a memory-mapped TIFF; uint8,
    uint16, float16 and float32 are kept as they are), and only the pixels one batch reads travel to
    the device:
    `HostMovies`, which gathers each batch's pixels (`tapkit.ssl.host_gather`) and prefetches the
    next batch.
Both modes normalise with the same per-frame percentiles (`tapkit.ssl.movie_arrays.frame_stats`,
computed once) and the same arithmetic, `(x - lo) / denom` in float32, so they give the same crops.
`choose_storage` picks the mode from the movies' size (`store_bytes`) and the free memory
(`free_bytes`).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import torch

from tapkit.data.movie import InputError
from tapkit.ssl.augment import PairTransforms, apply_dihedral
from tapkit.ssl.crop_reads import crop_grid, grid_pixels, read_groups
from tapkit.ssl.host_gather import (
    bilinear,
    footprint,
    gather_boxes,
    gather_windows,
    transport_dtype,
)
from tapkit.ssl.movie_arrays import as_float, normalise_

# re-exported: tapkit.ssl.trainer and tapkit.ssl.recipe import it from here

if TYPE_CHECKING:
    from tapkit.ssl.sampler import PairSampler

__all__ = [
    "device_store",
    "store_bytes",
    "free_bytes",
    "choose_storage",
    "HOST_FRACTION",
    "HostMovies",
]

# "auto" keeps the movies on the host when they need more than this share of free memory
HOST_FRACTION = 1 / 3


def store_bytes(arr: np.ndarray) -> int:
    """Device bytes of a (T, C, Y, X) movie normalised into the device store (float32, one zero row
    per frame)."""
    t, c, y, x = arr.shape
    return 4 * t * c * (y + 1) * x


def device_store(
    arr: np.ndarray,
    lo: np.ndarray,
    denom: np.ndarray,
    device: torch.device,
    chunk_bytes: int = 2**26,
) -> torch.Tensor:
    """(T, C, Y, X) movie as stored -> normalised (C, T, Y + 1, X) float32 tensor on `device`, a
    zero row per frame."""
    t, c, y, x = arr.shape
    store = torch.zeros((c, t, y + 1, x), dtype=torch.float32, device=device)
    # frames per chunk: never the whole movie as float32 on the host
    step = max(1, chunk_bytes // (4 * c * y * x))
    for i in range(0, t, step):
        # (t', C, Y, X), a copy: normalised in place
        part = torch.from_numpy(np.array(arr[i : i + step], dtype=np.float32))
        part = normalise_(
            part, torch.from_numpy(lo[i : i + step]), torch.from_numpy(denom[i : i + step])
        )
        store[:, i : i + step, :y] = part.transpose(0, 1).to(device)
    return store


def free_bytes(device: torch.device) -> "int | None":
    """Free memory on `device`: CUDA free memory, or the host's MemAvailable for the CPU; None when
    unknown."""
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
    """("device" or "host", the reason in words) for movies that need `need` bytes normalised on
    `device`."""
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
            f"the free memory of {device} is unknown; the movies need {need / gib:.2f} GiB "
            "normalised",
        )
    mode = "host" if need > HOST_FRACTION * free else "device"
    relation = "more" if mode == "host" else "no more"
    return mode, (
        f"the normalised movies need {need / gib:.2f} GiB, {relation} than 1/3 of the "
        f"{free / gib:.1f} GiB free on {device}"
    )


class HostMovies:
    """The movies of a `PairSampler(storage="host")` as stored, with the device's percentile tables.

    It reads what the device store reads: `windows` gives normalised unaugmented crops, `has_event`
    tests the event masks, `next_batch` gives a batch's crops. A background thread draws the next
    batch (from the sampler's `draw_generator` only) and gathers the raw pixels it reads (plain
    windows, or each warped crop's footprint) into pinned memory; on the device they are normalised
    with the same percentiles and resampled with grid_sample's arithmetic (`bilinear`), so both
    stores give the same crops.
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
        # (sum T, C)
        self.lo, self.denom = (torch.from_numpy(np.concatenate(s)).to(device) for s in zip(*stats))
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
        """Normalised unaugmented crops (n, 2, C, P, P) of movies `movie` (n,) at frames (n, 2), on
        `device`."""
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
        """Whether the unaugmented crops (n,) of movie m at frames (n, 2) contain an event pixel, on
        the device."""
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
        """Draw the sampler's next batch and gather the raw pixels it reads, in (pinned) host memory
        (worker thread)."""
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
        # the grid of each movie's tall image, as the device path
        for _, m, part in read_groups(pos, tf, sampler.n_movies):
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
        """Frame pixels iy, ix (2n, P, P) that the device path's grid into movie m's tall image
        reads."""
        n_t, height, width = (
            self.arrays[m].shape[0],
            int(sampler.sizes[m, 0]) + 1,
            int(sampler.sizes[m, 1]),
        )
        grid = crop_grid(frames, y0, x0, coarse, n_t, height, width, sampler.patch)  # (2n, P, P, 2)
        return grid_pixels(grid, frames, n_t, height, width)

    def prefetch(self, sampler: "PairSampler") -> None:
        """Start drawing and gathering the sampler's next batch in the background."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tapkit-sampler")
        self._pending = (
            self._pool.submit(self.gather, sampler),
            sampler.draw_generator.get_state(),
        )

    def cancel(self) -> None:
        """Drop a prefetched batch (after reset or load_state_dict), waiting for its thread to
        finish."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            pending[0].exception()  # wait; errors of a dropped batch do not matter

    def draw_state(self, draw_generator: torch.Generator) -> torch.Tensor:
        """The draw generator's state before the prefetched batch (its current state when none is
        pending)."""
        return self._pending[1] if self._pending is not None else draw_generator.get_state()

    def next_batch(self, sampler: "PairSampler") -> tuple[dict, PairTransforms, torch.Tensor]:
        """The prefetched (or a freshly gathered) batch, copied to the device and read there;
        prefetches the next one."""
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
            # draws from draw_generator only: the order of every random number stays the same
            self.prefetch(sampler)
        pos = {k: v.to(self.device) for k, v in pos.items()}
        tf = PairTransforms(**{k: v.to(self.device) for k, v in vars(tf).items()})
        return pos, tf, self.read(sampler, pos, tf, raw["n_plain"], dev)

    def read(
        self, sampler: "PairSampler", pos: dict, tf: PairTransforms, n_plain: int, raw: dict
    ) -> torch.Tensor:
        """Crops (B, 2, C, P, P) from the gathered raw pixels on the device: normalise, then index
        or resample."""
        frames = torch.stack([pos["t"], pos["t"] + pos["delta"]], 1)  # (B, 2)
        rows = self.offsets[pos["movie"]][:, None] + frames  # (B, 2) rows of the percentile tables
        lo, denom = self.lo[rows], self.denom[rows]  # (B, 2, C)
        p = sampler.patch
        out = torch.empty((len(frames), 2, sampler.channels, p, p), device=self.device)
        out[:n_plain] = normalise_(as_float(raw["plain"]), lo[:n_plain], denom[:n_plain])
        apply_dihedral(out[:n_plain], tf.dihedral[:n_plain])
        if n_plain == len(frames):
            return out
        # (m, 2, C, Hb, Wb)
        local = normalise_(as_float(raw["warped"]), lo[n_plain:], denom[n_plain:])
        corner = raw["corner"].flatten(0, 1)  # (2m, 2)
        # (2m, 2)
        sizes = sampler.sizes.to(self.device)[pos["movie"][n_plain:]].repeat_interleave(2, 0)
        for warped, m, part in read_groups(pos, tf, sampler.n_movies):
            if not warped:
                continue
            iy, ix = self._pixels(
                sampler, m, frames[part], pos["y0"][part], pos["x0"][part], tf.coarse[part]
            )
            # (pair, frame) items
            items = slice(2 * (part.start - n_plain), 2 * (part.stop - n_plain))
            crops = bilinear(local.flatten(0, 1)[items], iy, ix, corner[items], sizes[items])
            out[part] = crops.view(-1, 2, *crops.shape[1:])
        return out
