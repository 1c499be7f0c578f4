"""Batched crop-pair sampling for time arrow prediction (TAP) pretraining.

A `PairSampler` keeps every movie, normalised per frame and per channel, as a tensor on the compute
device and draws a whole batch at once: positions (movie, t, t + delta, crop corner), then the
augmentations of every pair (`tapkit.ssl.augment`), then it reads each output pixel ONCE, straight
from the movie:
  * pairs with only a flip / 90 degree rotation drawn are gathered by indexing (exact pixels);
  * the others are resampled with one bilinear `grid_sample` over the movie laid out as one tall
    image (frames stacked along y with one zero row between frames, so an interpolation never mixes
    two frames), on a grid of exactly patch x patch points per frame that combines the dihedral,
    rotation, zoom, per-frame jitter and elastic displacement. Coordinates outside a frame are
    reflected about its edge pixels.
No per-sample Python loop, no DataLoader, no margin crops. All randomness (positions, transforms,
noise) is drawn before any pixel is read: positions and transforms from `draw_generator` (on the CPU, so
the device does not change them), the intensity noise (and the task's `make_batch`) from `generator`: the
pixel noise of a batch is a strided view of one field drawn once (`augment.NoiseBank`), not fresh numbers.

`storage="host"` keeps the movies on the host as stored (arrays or memory-mapped TIFFs) in a
`tapkit.ssl.host_store.HostMovies`, read through the same steps as the device store: a background thread
draws the next batch and gathers exactly the pixels it reads (plain windows, or each warped crop's
footprint) into pinned memory; they are copied with `non_blocking=True`, normalised on the device with the
same per-frame percentiles, and resampled with grid_sample's arithmetic, so both modes give the same crops. `storage="auto"` picks the mode from the
size of the normalised movies and the free device memory, and says which.
"""

from __future__ import annotations

import math
import os
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F

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
    reflect,
    source_coords,
)
from tapkit.ssl import host_store
from tapkit.ssl.host_store import as_image_list  # noqa: F401  (a public name of this module)

__all__ = [
    "AugmentConfig",
    "PairSampler",
    "augment_pairs",
    "as_image_list",
    "normalize_crops",
    "region_fits",
]


SPLITS = (
    "train",
    "val",
    "region",
)  # training crops; held-out frames; held-out region of the training frames


def _storage_matters(storage: str, need: int, device: torch.device) -> bool:
    """Whether storage="auto"'s choice is worth a line: the host was chosen, or the movies need over half the limit."""
    if storage == "host":
        return True
    free = host_store.free_bytes(device)
    # tight: within 2x of switching to host
    return free is not None and need > host_store.HOST_FRACTION * free / 2


def _draw_seed(seed: int, split: str) -> int:
    """Seed of the CPU generator of positions and transforms: another stream than `generator`'s, same seed -> same."""
    return int(np.random.SeedSequence([int(seed), SPLITS.index(split), 13]).generate_state(1)[0])


class PairSampler:
    """Draws batches of (augmented) crop pairs from frames t and t + delta of one or several movies.

    sample() -> crops (B, 2, C, P, P) float32 in time order (frame t, then t + delta),
                info: dict of (B,) tensors t (earlier frame), delta, y0, x0 (crop corner), movie
                and, with `sample(with_events=True)` and an event mask, has_event
                (an event pixel in the crop; off by default to keep it out of the training hot path).
    Movies are (T, Y, X) (C = 1) or (T, C, Y, X) arrays, Movies or TIFF paths; all of them need the same C.
    A `val_fraction` of each movie's frames is validation, the rest training: the first frames
    (`val_at="start"`) or the last ones (`val_at="end"`); a pair never straddles the boundary. The
    "val" split draws a fixed set of pairs (`reset()` restarts it) and applies no augmentation.
    `val_region` > 0 also holds out a region of every frame: its right-most `val_region` of the width (at least
    one patch wide). Training crops then stay left of it (with a margin of half a patch for the augmentations'
    context); the "region" split draws fixed, unaugmented pairs inside it from the training frames (a spatial
    validation, like another location of the same experiment).
    `per_crop=True` rescales every crop by its own percentiles (after the augmentations): no frame-wide
    intensity cue is left for the network to use.
    `storage`: "device" (normalised movies on the device), "host" (movies stay on the host, crops are
    gathered per batch), or "auto" (host when the normalised movies need more than 1/3 of the free memory).
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
                "PairSampler: got an empty list of movies; pass at least one Movie or (T, Y, X) array."
            )
        arrays = [
            host_store.open_movie(m, f"PairSampler: movie {i}") for i, m in enumerate(movies)
        ]  # (T, C, Y, X)
        self.patch, self.batch_size, self.split, self.seed = (
            int(patch),
            int(batch_size),
            split,
            seed,
        )
        self.delta = self._check_args(
            arrays, delta, split, val_fraction, batch_size, reject_background
        )
        if val_at not in ("start", "end"):
            raise InputError(
                f"PairSampler: val_at={val_at!r}; use 'start' (validate on the first frames) or 'end' "
                "(train on the first frames, validate on the last ones)."
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
                f"PairSampler: augment={augment!r}; use True / False, a preset name {AUGMENT_PRESETS} "
                "or an AugmentConfig(...)."
            )
        # validation pairs are never augmented
        self.cfg = augment if split == "train" else AugmentConfig.none()
        self.table = self._pair_table([a.shape[0] for a in arrays])  # (N, 3): movie, t, delta (CPU)
        self.sizes = torch.tensor([a.shape[-2:] for a in arrays])  # (M, 2) (CPU)
        # (M,) first crop column, (M, 2) number of corners per axis
        self.x_first, self.room = self._crop_ranges()
        self.n_movies, self.channels = len(arrays), arrays[0].shape[1]
        need = sum(host_store.store_bytes(a) for a in arrays)
        self.storage, self.storage_reason = host_store.choose_storage(storage, need, self.device)
        if (
            storage == "auto"
            and split == "train"
            and _storage_matters(self.storage, need, self.device)
        ):
            print(
                f"tapkit: PairSampler keeps the movies on the {self.storage} ({self.storage}-resident crops): "
                f"{self.storage_reason}"
            )
        # per-frame percentile normalisation removes global intensity trends (bleaching); per_frame=False
        # normalises each movie as a whole and keeps them, to show the shortcut on purpose
        stats = [
            host_store.frame_stats(a, per_frame, what=f"PairSampler: movie {i}")
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
        self.generator = torch.Generator(
            device=self.device
        )  # intensity noise and the task's make_batch
        self.draw_generator = torch.Generator()  # positions and transforms, on the CPU
        # pixel noise field, drawn at the first batch with noise
        self._noise: "NoiseBank | None" = None
        self._grid_buffer: "torch.Tensor | None" = None  # (2B, P, P, 2) sampling grid, reused
        self.reset()

    @property
    def nbytes(self) -> int:
        """Bytes the sampler keeps on the device: the normalised movies, or (host mode) the percentile tables."""
        return (
            self.host.nbytes
            if self.host is not None
            else sum(m.numel() * m.element_size() for m in self.movies)
        )

    def _check_args(
        self, images: list, delta, split: str, val_fraction: float, batch_size: int, reject: float
    ) -> tuple[int, ...]:
        """Validate the sampler arguments early; return the deltas as a tuple."""
        deltas = (delta,) if isinstance(delta, (int, np.integer)) else tuple(int(d) for d in delta)
        if not deltas or min(deltas) < 1:
            raise InputError(
                f"PairSampler: delta={delta!r} must be a non-empty list of frame offsets >= 1, e.g. (1,) or (1, 2)."
            )
        if split not in SPLITS:
            raise InputError(f"PairSampler: split={split!r}; use 'train', 'val' or 'region'.")
        if not 0.0 <= val_fraction < 1.0:
            raise InputError(
                f"PairSampler: val_fraction={val_fraction} must be in [0, 1), e.g. 0.1."
            )
        if batch_size < 1 or not 0.0 <= reject < 1.0:
            raise InputError(
                f"PairSampler: batch_size={batch_size} must be >= 1 and reject_background={reject} in [0, 1)."
            )
        longest = max(im.shape[0] for im in images)
        if max(deltas) >= longest:
            raise InputError(
                f"PairSampler: delta {max(deltas)} needs movies with more than {max(deltas)} frames, but the "
                f"longest has {longest}. Use a smaller delta."
            )
        smallest = min(min(im.shape[-2:]) for im in images)
        if self.patch > smallest or self.patch < 8:
            raise InputError(
                f"PairSampler: patch={self.patch} does not fit the smallest frame side ({smallest} px); "
                f"use a patch between 8 and {smallest}."
            )
        if len({im.shape[1] for im in images}) > 1:
            raise InputError(
                "PairSampler: the movies have different numbers of channels; pass movies with the same C."
            )
        return deltas

    def n_val_frames(self, n_frames: int) -> int:
        """Frames reserved for validation: val_fraction of them, at least two pair start times' worth."""
        if self.val_fraction == 0:
            return 0
        return min(n_frames, max(math.ceil(self.val_fraction * n_frames), min(self.delta) + 2))

    def _pair_table(self, n_frames: list[int]) -> torch.Tensor:
        """All valid (movie, t, delta) triples of this split, (N, 3) long."""
        rows = []
        for m, n in enumerate(n_frames):
            n_val = self.n_val_frames(n)
            # the boundary between the two parts
            cut = n_val if self.val_at == "start" else n - n_val
            first = (self.split == "val") == (
                self.val_at == "start"
            )  # this split is the first part (region: train's)
            lo, hi = (0, cut) if first else (cut, n)
            rows += [(m, t, d) for d in self.delta for t in range(lo, hi - d)]
        if not rows:
            raise InputError(
                f"PairSampler: no {self.split} pairs: with val_fraction={self.val_fraction} and delta={self.delta} the "
                f"{self.split} part of the movies ({n_frames} frames) is too short. Use longer movies, a smaller delta, "
                "or change val_fraction."
            )
        return torch.tensor(rows, dtype=torch.long)

    def _crop_ranges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """First allowed crop column (M,) and number of allowed corners per axis (M, 2) of this split."""
        if not 0.0 <= self.val_region < 1.0:
            raise InputError(
                f"PairSampler: val_region={self.val_region} must be in [0, 1), e.g. 0.25 (a quarter of "
                "the width held out) or 0 (no held-out region)."
            )
        if self.split == "region" and self.val_region == 0:
            raise InputError(
                "PairSampler: split='region' needs a held-out region: pass val_region > 0, e.g. 0.25."
            )
        first, room = [], []
        for height, width in self.sizes.tolist():
            hold = held_out_width(width, self.patch, self.val_region)
            if self.split == "region":
                lo, hi = width - hold, width - self.patch  # crops inside the held-out columns
            elif self.split == "train" and hold:
                lo, hi = (
                    0,
                    width - hold - self.patch // 2 - self.patch,
                )  # left of them, half a patch away
            else:
                lo, hi = 0, width - self.patch
            if hi < lo:
                raise InputError(
                    f"PairSampler: val_region={self.val_region} leaves no room for training crops of "
                    f"{self.patch} px in a frame {width} px wide (held out: {hold} px, plus a margin of "
                    f"{self.patch // 2}); use a smaller val_region or patch."
                )
            first.append(lo), room.append((height - self.patch + 1, hi - lo + 1))
        return torch.tensor(first), torch.tensor(room)

    def reset(self) -> None:
        """Re-seed the generators: the val split then yields the same pairs again."""
        self._cancel_prefetch()
        self.generator.manual_seed(self.seed + 7919 * SPLITS.index(self.split))
        self.draw_generator.manual_seed(_draw_seed(self.seed, self.split))

    def state_dict(self) -> dict:
        """Generator states, for exact resumption (a batch already prefetched is drawn again after a resume)."""
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
        """Draw n (movie, t, delta, y0, x0) uniformly over this split's pairs and crop positions (CPU tensors)."""
        g = self.draw_generator
        movie, t, delta = self.table[torch.randint(len(self.table), (n,), generator=g)].T
        corner = (
            torch.rand(n, 2, generator=g) * self.room[movie]
        ).long()  # (n, 2) within this split's columns
        return dict(
            movie=movie, t=t, delta=delta, y0=corner[:, 0], x0=corner[:, 1] + self.x_first[movie]
        )

    def _windows(
        self, stack: torch.Tensor, frames: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor
    ) -> torch.Tensor:
        """Unaugmented crops (n, 2, C, P, P) at frames (n, 2), corners y0, x0 (n,) of a (C, T, Y', X) tensor (Y' >= Y)."""
        p = self.patch
        windows = stack.unfold(2, p, 1).unfold(3, p, 1)  # (C, T, Y'-P+1, X-P+1, P, P), a view
        return windows[:, frames, y0[:, None], x0[:, None]].permute(
            1, 2, 0, 3, 4
        )  # from (C, n, 2, P, P)

    def _tall_grid(
        self,
        ctrl: torch.Tensor,
        frames: torch.Tensor,
        n_t: int,
        height: int,
        width: int,
        out: "torch.Tensor | None" = None,
    ) -> torch.Tensor:
        """Control points (2n, 2 (y, x), K, K) in frame pixels -> grid_sample grid (2n, P, P, 2) into the tall image.

        The tall image is the T frames of height `height` (with their zero row) stacked along y; grid units
        are float32, exact to ~T * height * 6e-8 px, far below the one zero row between frames.
        """
        h = height - 1  # frame height without the zero row
        # a bilinear map peaks at its control points: reflect only the frames whose footprint leaves the frame
        lo, hi = ctrl.flatten(2).amin(-1), ctrl.flatten(2).amax(-1)  # (2n, 2)
        outside = ((lo < 0) | (hi > torch.tensor([h - 1, width - 1], device=lo.device))).any(
            1
        )  # (2n,)
        ctrl = ctrl.flip(1).clone()  # (2n, 2 (x, y), K, K): grid_sample's order
        frame_row = (frames.flatten() * height).to(
            ctrl.dtype
        )  # (2n,) first row of each frame in the tall image
        scale_x, scale_y = (
            2 / (width - 1),
            2 / (n_t * height - 1),
        )  # pixels -> grid_sample units (align_corners)
        # normalising is affine, so for frames that need no reflection it is done on the control points
        inside = ~outside
        ctrl[inside, 0] = ctrl[inside, 0] * scale_x - 1
        ctrl[inside, 1] = (ctrl[inside, 1] + frame_row[inside, None, None]) * scale_y - 1
        grid = source_coords(ctrl, self.patch, out)  # (2n, P, P, 2): exact, the maps are bilinear
        if bool(outside.any()):
            idx = torch.nonzero(outside).flatten()
            edge = torch.tensor(
                [width - 1, h - 1], dtype=grid.dtype, device=grid.device
            )  # (x, y) last pixel
            sub = grid.index_select(0, idx)  # (m, P, P, 2) pixels (x, y)
            if bool((lo[idx] >= -(h - 1)).all() and (hi[idx].flip(-1) <= 2 * edge).all()):
                # one mirror per side is enough: reflect()'s result, 5x faster
                sub = edge - (sub.abs_() - edge).abs_()
            else:  # a footprint more than a frame outside (tiny frames): the general reflection
                reflect(sub[..., 0], width), reflect(sub[..., 1], h)
            scale = torch.tensor([scale_x, scale_y], dtype=grid.dtype, device=grid.device)
            offset = torch.stack(
                [torch.full_like(frame_row[idx], -1.0), frame_row[idx] * scale_y - 1], -1
            )  # (m, 2)
            grid.index_copy_(0, idx, sub.mul_(scale).add_(offset[:, None, None]))
        return grid

    def _grid(
        self,
        frames: torch.Tensor,
        y0: torch.Tensor,
        x0: torch.Tensor,
        coarse: torch.Tensor,
        n_t: int,
        height: int,
        width: int,
        out: "torch.Tensor | None" = None,
    ) -> torch.Tensor:
        """grid_sample grid (2n, P, P, 2) into the tall image of a movie for the maps `coarse` (n, 2, 2, K, K)."""
        centre = torch.stack([y0, x0], -1) + (self.patch - 1) / 2  # (n, 2) patch centre (y, x)
        ctrl = (coarse + centre[:, None, :, None, None]).flatten(
            0, 1
        )  # (2n, 2, K, K) source pixels (y, x)
        return self._tall_grid(ctrl, frames, n_t, height, width, out)

    @staticmethod
    def _pixels(
        grid: torch.Tensor, frames: torch.Tensor, n_t: int, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """grid (2n, P, P, 2) -> frame pixel coordinates iy, ix (2n, P, P) as grid_sample computes them (align_corners)."""
        ix = (grid[..., 0] + 1) * ((width - 1) / 2)
        iy = (grid[..., 1] + 1) * ((n_t * height - 1) / 2)
        return iy - (frames.flatten() * height).to(iy.dtype)[
            :, None, None
        ], ix  # rows within the frame: exact

    def _resample(
        self,
        store: torch.Tensor,
        frames: torch.Tensor,
        y0: torch.Tensor,
        x0: torch.Tensor,
        coarse: torch.Tensor,
    ) -> torch.Tensor:
        """Crops (n, 2, C, P, P) through the maps `coarse` (n, 2, 2, K, K): one grid_sample over the movie's frames."""
        p, (c, n_t, height, width) = self.patch, store.shape
        if (
            self._grid_buffer is None
        ):  # reused by every batch (device path only: the host path's thread has its own)
            self._grid_buffer = torch.empty((2 * self.batch_size, p, p, 2), device=self.device)
        grid = self._grid(
            frames, y0, x0, coarse, n_t, height, width, self._grid_buffer[: 2 * len(y0)]
        )  # (2n, P, P, 2)
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

    def _read(self, pos: dict, tf: PairTransforms) -> torch.Tensor:
        """Every output pixel read once: index the plain (dihedral-only) pairs, resample the others; (B, 2, C, P, P).

        `pos` and `tf` (on the device) are sorted by (resampled, movie) (`_grouped`), so every group is a slice.
        """
        b, p = len(pos["t"]), self.patch
        out = torch.empty((b, 2, self.channels, p, p), device=self.device)
        frames = torch.stack([pos["t"], pos["t"] + pos["delta"]], 1)  # (B, 2)
        for warped, m, part in self._groups(pos, tf):
            args = (self.movies[m], frames[part], pos["y0"][part], pos["x0"][part])
            if warped:
                out[part] = self._resample(*args, tf.coarse[part])
            else:
                out[part] = self._windows(*args)
                apply_dihedral(out[part], tf.dihedral[part])
        return out

    def _groups(self, pos: dict, tf: PairTransforms) -> list[tuple[bool, int, slice]]:
        """(resampled, movie, slice of the batch) of the sorted pairs."""
        key = (tf.resample.long() * self.n_movies + pos["movie"]).cpu()
        keys, counts = torch.unique_consecutive(key, return_counts=True)
        ends = counts.cumsum(0).tolist()
        return [
            (bool(k // self.n_movies), int(k % self.n_movies), slice(e - int(n), e))
            for k, n, e in zip(keys.tolist(), counts, ends)
        ]

    @staticmethod
    def _grouped(pos: dict, tf: PairTransforms, n_movies: int) -> tuple[dict, PairTransforms]:
        """Sort the pairs by (resampled, movie) so that `_read` works on slices; the order of iid pairs is free."""
        order = torch.argsort(tf.resample.long() * n_movies + pos["movie"], stable=True)
        fields = {k: v[order] for k, v in vars(tf).items()}
        return {k: v[order] for k, v in pos.items()}, PairTransforms(**fields)

    def _foreground(self, pos: dict) -> torch.Tensor:
        """Fraction of pixels above background_threshold in the unaugmented crops of both frames, (n,) on the CPU."""
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
            crops = self._windows(
                self.movies[m], dev["frames"][sel], dev["y0"][sel], dev["x0"][sel]
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
                    self._windows(events, frames[sel], pos["y0"][sel], pos["x0"][sel])
                    .flatten(1)
                    .any(1)
                )
            else:
                out[sel] = self.host.has_event(
                    m, frames[sel], pos["y0"][sel], pos["x0"][sel], self.patch
                )
        return out

    def _draw(self, n: int, max_tries: int = 20) -> dict:
        """Positions; with reject_background > 0, crops with too little foreground are redrawn (batched)."""
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
        """Positions and transforms of the next batch from `draw_generator` (CPU tensors), sorted for `_read`."""
        pos = self._draw(self.batch_size)
        tf = draw_transforms(self.batch_size, self.patch, self.draw_generator, self.cfg)
        return self._grouped(pos, tf, self.n_movies)

    def sample(self, with_events: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One batch: crops (B, 2, C, P, P) of frames t (slot 0) and t + delta (slot 1), info dict of (B,) tensors."""
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
            f"patch={self.patch}, delta={self.delta}, batch_size={self.batch_size}, device={self.device}, "
            f"storage={self.storage!r})"
        )


def held_out_width(width: int, patch: int, val_region: float) -> int:
    """Columns at the right edge of a frame `width` px wide held out by `val_region` (0: none; else >= one patch)."""
    return 0 if val_region <= 0 else max(math.ceil(val_region * width), patch)


def region_fits(width: int, patch: int, val_region: float) -> bool:
    """Whether frames `width` px wide hold a held-out region of `val_region` and training crops (see PairSampler)."""
    return (
        val_region <= 0
        or width - held_out_width(width, patch, val_region) - patch // 2 - patch >= 0
    )


def normalize_crops(x: torch.Tensor, pmin: float = 1.0, pmax: float = 99.8) -> torch.Tensor:
    """Percentile-normalise every crop of (B, T, C, P, P) on its own: pmin -> 0, pmax -> 1."""
    flat = x.flatten(2)  # (B, T, C*P*P)
    lo = torch.quantile(flat, pmin / 100, dim=2, keepdim=True)
    hi = torch.quantile(flat, pmax / 100, dim=2, keepdim=True)
    return ((flat - lo) / (hi - lo).clamp(min=1e-6)).view_as(x)
