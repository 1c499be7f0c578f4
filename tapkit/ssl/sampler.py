"""Batched crop-pair sampling for time arrow prediction (TAP) pretraining: the `PairSampler`.

A `PairSampler` keeps every movie, normalised per frame and per channel, as a tensor on the compute
device and draws a whole batch at once: positions (movie, t, t + delta, crop corner; which pairs and
columns each split may draw: `tapkit.ssl.pair_splits`), then the augmentations of every pair
(`tapkit.ssl.augment`), then it reads each output pixel ONCE, straight from the movie
(`tapkit.ssl.crop_reads`):
  * pairs with only a flip / 90 degree rotation drawn are gathered by indexing (exact pixels);
  * the others are resampled with one bilinear `grid_sample` over the movie laid out as one tall
    image (frames stacked along y with one zero row between frames, so an interpolation never mixes
    two frames), on a grid of exactly patch x patch points per frame that combines the dihedral,
    rotation, zoom, per-frame jitter and elastic displacement. Coordinates outside a frame are
    reflected about its edge pixels.
No per-sample Python loop, no DataLoader, no margin crops. All randomness (positions, transforms,
noise) is drawn before any pixel is read: positions and transforms from `draw_generator` (on the
CPU, so the device does not change them), the intensity noise (and the task's `make_batch`) from
`generator`: the pixel noise of a batch is a strided view of one field drawn once
(`augment.NoiseBank`), not fresh numbers.

`storage="host"` keeps the movies on the host as stored (arrays or memory-mapped TIFFs) in a
`tapkit.ssl.host_store.HostMovies`, read through the same steps as the device store: a background
thread draws the next batch and gathers exactly the pixels it reads (plain windows, or each warped
crop's footprint) into pinned memory; they are copied with `non_blocking=True`, normalised on the
device with the same per-frame percentiles, and resampled with grid_sample's arithmetic, so both
modes give the same crops. `storage="auto"` picks the mode from the size of the normalised movies
and the free device memory, and says which.
"""

from __future__ import annotations

import os
from typing import Literal, Sequence

import numpy as np
import torch

from tapkit.data.movie import InputError, Movie
from tapkit.ssl.augment import (
    AUGMENT_PRESETS,
    AugmentConfig,
    NoiseBank,
    PairTransforms,
    apply_dihedral,
    apply_intensity,
    augment_pairs,
    draw_transforms,
)
from tapkit.ssl import host_store, movie_arrays, pair_splits
from tapkit.ssl.crop_reads import read_groups, read_windows, resample, sort_for_reading
from tapkit.ssl.movie_arrays import as_image_list  # noqa: F401  (a public name of this module)
from tapkit.ssl.pair_splits import SPLITS, region_fits
from tapkit.ssl.pair_splits import held_out_width  # noqa: F401  (a public name of this module)

__all__ = [
    "AugmentConfig",
    "PairSampler",
    "augment_pairs",
    "as_image_list",
    "normalize_crops",
    "region_fits",
]


def _storage_matters(storage: str, need: int, device: torch.device) -> bool:
    """Whether storage="auto"'s choice is worth a line: the host was chosen, or the movies need over
    half the limit."""
    if storage == "host":
        return True
    free = host_store.free_bytes(device)
    # tight: within 2x of switching to host
    return free is not None and need > host_store.HOST_FRACTION * free / 2


def _draw_seed(seed: int, split: str) -> int:
    """Seed of the CPU generator of positions and transforms: another stream than `generator`'s,
    same seed -> same."""
    return int(np.random.SeedSequence([int(seed), SPLITS.index(split), 13]).generate_state(1)[0])


class PairSampler:
    """Draws batches of (augmented) crop pairs from frames t and t + delta of one or several movies.

    sample() -> crops (B, 2, C, P, P) float32 in time order (frame t, then t + delta),
                info: dict of (B,) tensors t (earlier frame), delta, y0, x0 (crop corner), movie
                and, with `sample(with_events=True)` and an event mask, has_event
                (an event pixel in the crop; off by default to keep it out of the training hot
                path).
    Movies are (T, Y, X) (C = 1) or (T, C, Y, X) arrays, Movies or TIFF paths; all of them need the
    same C.
    A `val_fraction` of each movie's frames is validation, the rest training: the first frames
    (`val_at="start"`) or the last ones (`val_at="end"`); a pair never straddles the boundary. The
    "val" split draws a fixed set of pairs (`reset()` restarts it) and applies no augmentation.
    `val_region` > 0 also holds out a region of every frame: its right-most `val_region` of the
    width (at least one patch wide). Training crops then stay left of it (with a margin of half a
    patch for the augmentations' context); the "region" split draws fixed, unaugmented pairs inside
    it from the training frames (a spatial validation, like another location of the same
    experiment).
    `per_crop=True` rescales every crop by its own percentiles (after the augmentations): no
    frame-wide intensity cue is left for the network to use.
    `storage`: "device" (normalised movies on the device), "host" (movies stay on the host, crops
    are gathered per batch), or "auto" (host when the normalised movies need more than 1/3 of the
    free memory).
    Each pretext task makes its batch from the crops (TAP flips the order: `tapkit.ssl.tap`).
    """

    def __init__(
        self,
        movies: "Movie | np.ndarray | Sequence",
        patch: int = 96,
        delta: "int | Sequence[int]" = (1,),
        batch_size: int = 128,
        split: str = "train",
        val_fraction: float = 0.1,
        val_at: str = "start",
        augment: "bool | str | AugmentConfig" = True,
        reject_background: float = 0.0,
        background_threshold: float = 0.25,
        device: "str | torch.device" = "cpu",
        seed: int = 0,
        per_frame: bool = True,
        storage: Literal["auto", "device", "host"] = "auto",
        per_crop: bool = False,
        val_region: float = 0.0,
    ) -> None:
        movies = (
            [movies]
            if isinstance(movies, (Movie, np.ndarray, torch.Tensor, str, os.PathLike))
            else list(movies)
        )
        if not movies:
            raise InputError(
                "PairSampler: got an empty list of movies; pass at least one Movie or (T, Y, X) "
                "array."
            )
        # (T, C, Y, X)
        arrays = [
            movie_arrays.open_movie(m, f"PairSampler: movie {i}") for i, m in enumerate(movies)
        ]
        self.patch, self.batch_size, self.split, self.seed = (
            int(patch),
            int(batch_size),
            split,
            seed,
        )
        self.delta = pair_splits.check_args(
            arrays, delta, split, val_fraction, batch_size, reject_background, self.patch
        )
        if val_at not in ("start", "end"):
            raise InputError(
                f"PairSampler: val_at={val_at!r}; use 'start' (validate on the first frames) or "
                "'end' (train on the first frames, validate on the last ones)."
            )
        self.val_fraction, self.val_at, self.reject_background = (
            val_fraction,
            val_at,
            reject_background,
        )
        self.per_crop, self.val_region = bool(per_crop), float(val_region)
        self.background_threshold = background_threshold
        self.device = torch.device(device)
        if isinstance(augment, str):  # a preset name (AUGMENT_PRESETS)
            augment = AugmentConfig.named(augment)
        elif augment is True or augment is False:
            augment = AugmentConfig() if augment else AugmentConfig.none()
        if not isinstance(augment, AugmentConfig):
            raise InputError(
                f"PairSampler: augment={augment!r}; use True / False, a preset name "
                f"{AUGMENT_PRESETS} or an AugmentConfig(...)."
            )
        # validation pairs are never augmented
        self.cfg = augment if split == "train" else AugmentConfig.none()
        # (N, 3): movie, t, delta (CPU)
        self.table = pair_splits.pair_table(
            [a.shape[0] for a in arrays], split, val_at, val_fraction, self.delta
        )
        self.sizes = torch.tensor([a.shape[-2:] for a in arrays])  # (M, 2) (CPU)
        # (M,) first crop column, (M, 2) number of corners per axis
        self.x_first, self.room = pair_splits.crop_ranges(
            self.sizes, split, self.patch, self.val_region
        )
        self.n_movies, self.channels = len(arrays), arrays[0].shape[1]
        need = sum(host_store.store_bytes(a) for a in arrays)
        self.storage, self.storage_reason = host_store.choose_storage(storage, need, self.device)
        if (
            storage == "auto"
            and split == "train"
            and _storage_matters(self.storage, need, self.device)
        ):
            print(
                f"tapkit: PairSampler keeps the movies on the {self.storage} "
                f"({self.storage}-resident crops): {self.storage_reason}"
            )
        # per-frame percentile normalisation removes global intensity trends (bleaching);
        # per_frame=False normalises each movie as a whole and keeps them, to show the shortcut on
        # purpose
        stats = [
            movie_arrays.frame_stats(a, per_frame, what=f"PairSampler: movie {i}")
            for i, a in enumerate(arrays)
        ]
        events = [
            m.events if isinstance(m, Movie) and m.events is not None else None for m in movies
        ]
        if self.storage == "device":
            self.movies = [
                host_store.device_store(a, lo, den, self.device)
                for a, (lo, den) in zip(arrays, stats)
            ]
            self.events = (
                None
                if all(e is None for e in events)
                else [
                    None if e is None else torch.as_tensor(e > 0, device=self.device)[None]
                    for e in events
                ]
            )  # (1, T, Y, X)
        self.host: "host_store.HostMovies | None" = None  # the movies as stored (storage="host")
        if self.storage == "host":
            self.host = host_store.HostMovies(arrays, stats, events, self.device)
            self.movies, self.events, self.arrays, self.transport = (
                [],
                self.host.events,
                arrays,
                self.host.transport,
            )
        # intensity noise and the task's make_batch
        self.generator = torch.Generator(device=self.device)
        self.draw_generator = torch.Generator()  # positions and transforms, on the CPU
        # pixel noise field, drawn at the first batch with noise
        self._noise: "NoiseBank | None" = None
        self._grid_buffer: "torch.Tensor | None" = None  # (2B, P, P, 2) sampling grid, reused
        self.reset()

    @property
    def nbytes(self) -> int:
        """Bytes the sampler keeps on the device: the normalised movies, or (host mode) the
        percentile tables."""
        return (
            self.host.nbytes
            if self.host is not None
            else sum(m.numel() * m.element_size() for m in self.movies)
        )

    def n_val_frames(self, n_frames: int) -> int:
        """Frames reserved for validation: val_fraction of them, at least two pair start times'
        worth."""
        return pair_splits.n_val_frames(n_frames, self.val_fraction, self.delta)

    def reset(self) -> None:
        """Re-seed the generators: the val split then yields the same pairs again."""
        self._cancel_prefetch()
        self.generator.manual_seed(self.seed + 7919 * SPLITS.index(self.split))
        self.draw_generator.manual_seed(_draw_seed(self.seed, self.split))

    def state_dict(self) -> dict:
        """Generator states, for exact resumption (a batch already prefetched is drawn again after a
        resume)."""
        draw = (
            self.host.draw_state(self.draw_generator)
            if self.host is not None
            else self.draw_generator.get_state()
        )
        return {"generator": self.generator.get_state(), "draw": draw.clone()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the generator states saved by `state_dict`."""
        self._cancel_prefetch()
        self.generator.set_state(state["generator"].cpu())
        if "draw" in state:  # checkpoints written before positions had their own generator lack it
            self.draw_generator.set_state(state["draw"].cpu())

    def _positions(self, n: int) -> dict[str, torch.Tensor]:
        """Draw n (movie, t, delta, y0, x0) uniformly over this split's pairs and crop positions
        (CPU tensors)."""
        return pair_splits.draw_positions(
            n, self.table, self.room, self.x_first, self.draw_generator
        )

    def _resample(
        self,
        store: torch.Tensor,
        frames: torch.Tensor,
        y0: torch.Tensor,
        x0: torch.Tensor,
        coarse: torch.Tensor,
    ) -> torch.Tensor:
        """Crops (n, 2, C, P, P) through the maps `coarse` (n, 2, 2, K, K): one grid_sample over the
        movie's frames."""
        p = self.patch
        # reused by every batch (device path only: the host path's thread has its own)
        if self._grid_buffer is None:
            self._grid_buffer = torch.empty((2 * self.batch_size, p, p, 2), device=self.device)
        return resample(store, frames, y0, x0, coarse, p, self._grid_buffer[: 2 * len(y0)])

    def _read(self, pos: dict, tf: PairTransforms) -> torch.Tensor:
        """Every output pixel read once: index the plain (dihedral-only) pairs, resample the others;
        (B, 2, C, P, P).

        `pos` and `tf` (on the device) are sorted by (resampled, movie) (`sort_for_reading`), so
        every group is a slice.
        """
        b, p = len(pos["t"]), self.patch
        out = torch.empty((b, 2, self.channels, p, p), device=self.device)
        frames = torch.stack([pos["t"], pos["t"] + pos["delta"]], 1)  # (B, 2)
        for warped, m, part in read_groups(pos, tf, self.n_movies):
            args = (self.movies[m], frames[part], pos["y0"][part], pos["x0"][part])
            if warped:
                out[part] = self._resample(*args, tf.coarse[part])
            else:
                out[part] = read_windows(*args, self.patch)
                apply_dihedral(out[part], tf.dihedral[part])
        return out

    def _foreground(self, pos: dict) -> torch.Tensor:
        """Fraction of pixels above background_threshold in the unaugmented crops of both frames,
        (n,) on the CPU."""
        frames = torch.stack([pos["t"], pos["t"] + pos["delta"]], 1)  # (n, 2)
        if self.host is not None:
            crops = self.host.windows(
                pos["movie"], frames, pos["y0"], pos["x0"], self.patch, torch.device("cpu")
            )
            return (crops > self.background_threshold).float().mean(dim=(1, 2, 3, 4))
        out = torch.zeros(len(frames), device=self.device)
        dev = {k: v.to(self.device) for k, v in dict(pos, frames=frames).items()}
        for m in pos["movie"].unique().tolist():
            sel = torch.nonzero(dev["movie"] == m).flatten()
            crops = read_windows(
                self.movies[m], dev["frames"][sel], dev["y0"][sel], dev["x0"][sel], self.patch
            )
            out[sel] = (crops > self.background_threshold).float().mean(dim=(1, 2, 3, 4))
        return out.cpu()

    def _has_event(self, pos: dict) -> torch.Tensor:
        """Whether the unaugmented crop of either frame contains an event pixel, (B,) bool."""
        frames = torch.stack([pos["t"], pos["t"] + pos["delta"]], 1)  # (B, 2)
        out = torch.zeros(len(frames), dtype=torch.bool, device=self.device)
        for m, events in enumerate(self.events):
            sel = torch.nonzero(pos["movie"] == m).flatten()
            if events is None or not len(sel):
                continue
            if self.storage == "device":
                out[sel] = (
                    read_windows(events, frames[sel], pos["y0"][sel], pos["x0"][sel], self.patch)
                    .flatten(1)
                    .any(1)
                )
            else:
                out[sel] = self.host.has_event(
                    m, frames[sel], pos["y0"][sel], pos["x0"][sel], self.patch
                )
        return out

    def _draw(self, n: int, max_tries: int = 20) -> dict:
        """Positions; with reject_background > 0, crops with too little foreground are redrawn
        (batched)."""
        pos = self._positions(n)
        for _ in range(max_tries if self.reject_background > 0 else 0):
            foreground = self._foreground(pos)  # (n,)
            bad = torch.nonzero(foreground < self.reject_background).flatten()
            if len(bad) == 0:
                break
            new = self._positions(len(bad))
            for key in pos:
                pos[key][bad] = new[key]
        return pos

    def _plan(self) -> tuple[dict, PairTransforms]:
        """Positions and transforms of the next batch from `draw_generator` (CPU tensors), sorted
        for `_read`."""
        pos = self._draw(self.batch_size)
        tf = draw_transforms(self.batch_size, self.patch, self.draw_generator, self.cfg)
        return sort_for_reading(pos, tf, self.n_movies)

    def sample(self, with_events: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One batch: crops (B, 2, C, P, P) of frames t (slot 0) and t + delta (slot 1), info dict
        of (B,) tensors."""
        if self.host is not None:
            pos, tf, x = self.host.next_batch(self)
        else:
            pos, tf = self._plan()
            pos = {k: v.to(self.device) for k, v in pos.items()}
            tf = PairTransforms(**{k: v.to(self.device) for k, v in vars(tf).items()})
            x = self._read(pos, tf)
        if self._noise is None and self.cfg.p_noise > 0:
            self._noise = NoiseBank(
                2 * self.batch_size, self.channels * self.patch**2, self.device, self.seed
            )
        x = apply_intensity(x, tf, self.generator, self._noise)  # (B, 2, C, P, P)
        if self.per_crop:
            x = normalize_crops(x)
        info = dict(pos)
        if with_events and self.events is not None:
            info["has_event"] = self._has_event(pos)
        return x, info

    def _cancel_prefetch(self) -> None:
        """Drop a batch the host store prefetched (after reset or load_state_dict)."""
        if getattr(self, "host", None) is not None:
            self.host.cancel()

    def fixed_batches(self, n_batches: int) -> list[tuple[torch.Tensor, dict]]:
        """Re-seed, then draw n_batches: the same batches on every call (for validation)."""
        self.reset()
        return [self.sample() for _ in range(n_batches)]

    def __repr__(self) -> str:
        return (
            f"PairSampler(split={self.split!r}, movies={self.n_movies}, pairs={len(self.table)}, "
            f"patch={self.patch}, delta={self.delta}, batch_size={self.batch_size}, "
            f"device={self.device}, storage={self.storage!r})"
        )


def normalize_crops(x: torch.Tensor, pmin: float = 1.0, pmax: float = 99.8) -> torch.Tensor:
    """Percentile-normalise every crop of (B, T, C, P, P) on its own: pmin -> 0, pmax -> 1."""
    flat = x.flatten(2)  # (B, T, C*P*P)
    lo = torch.quantile(flat, pmin / 100, dim=2, keepdim=True)
    hi = torch.quantile(flat, pmax / 100, dim=2, keepdim=True)
    return ((flat - lo) / (hi - lo).clamp(min=1e-6)).view_as(x)
