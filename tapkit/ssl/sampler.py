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
noise) comes from `generator`, drawn before any pixel is read: a reader that keeps the movie on the
host (issue 13) only has to replace `_windows` / `_resample`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from tapkit.data.movie import InputError, Movie, check_images, normalize
from tapkit.ssl.augment import (AugmentConfig, PairTransforms, apply_dihedral, apply_intensity, augment_pairs,
                                draw_transforms, reflect, source_coords)

__all__ = ["AugmentConfig", "PairSampler", "augment_pairs", "as_image_list", "normalize_crops"]


def as_image_list(movies: "Movie | np.ndarray | Sequence", what: str = "PairSampler") -> list[np.ndarray]:
    """Accept one or several Movies / (T, Y, X) / (T, C, Y, X) arrays and return validated float32 arrays."""
    if isinstance(movies, (Movie, np.ndarray, torch.Tensor)):
        movies = [movies]
    movies = list(movies)
    if not movies:
        raise InputError(f"{what}: got an empty list of movies; pass at least one Movie or (T, Y, X) array.")
    out = []
    for i, m in enumerate(movies):
        arr = m.images if isinstance(m, Movie) else (m.cpu().numpy() if isinstance(m, torch.Tensor) else m)
        arr = np.asarray(arr)
        if arr.ndim == 4:  # (T, C, Y, X): check every channel as a (T, Y, X) movie
            arr = np.stack([check_images(arr[:, c], what=f"{what}: movie {i} channel {c}", min_frames=1)
                            for c in range(arr.shape[1])], 1)
        else:
            arr = check_images(arr, what=f"{what}: movie {i}", min_frames=1)
        if arr.shape[0] < 2:
            raise InputError(f"{what}: movie {i} has a single frame; time arrow prediction needs at least 2 "
                             "frames (check that the time axis is first: (T, Y, X) or (T, C, Y, X)).")
        out.append(arr)
    return out


def _normalised_store(images: np.ndarray, per_frame: bool, device: torch.device) -> torch.Tensor:
    """(T, Y, X) or (T, C, Y, X) movie -> normalised (C, T, Y + 1, X) tensor, a zero row after every frame."""
    chans = images[:, None] if images.ndim == 3 else images  # (T, C, Y, X)
    t, c, y, x = chans.shape
    store = torch.zeros((c, t, y + 1, x), dtype=torch.float32, device=device)
    for k in range(c):  # per channel, and per frame unless per_frame=False
        store[k, :, :y] = torch.as_tensor(normalize(chans[:, k], per_frame=per_frame), device=device)
    return store


class PairSampler:
    """Draws batches of (augmented) crop pairs from frames t and t + delta of one or several movies.

    sample() -> crops (B, 2, C, P, P) float32 in time order (frame t, then t + delta),
                info: dict of (B,) tensors t (earlier frame), delta, y0, x0 (crop corner), movie
                and, with `sample(with_events=True)` and an event mask, has_event
                (an event pixel in the crop; off by default to keep it out of the training hot path).
    Movies are (T, Y, X) (C = 1) or (T, C, Y, X); all of them need the same C.
    A `val_fraction` of each movie's frames is validation, the rest training: the first frames
    (`val_at="start"`) or the last ones (`val_at="end"`); a pair never straddles the boundary. The
    "val" split draws a fixed set of pairs (`reset()` restarts it) and applies no augmentation.
    Each pretext task makes its batch from the crops (TAP flips the order: `tapkit.ssl.tap`).
    """

    def __init__(self, movies: "Movie | np.ndarray | Sequence", patch: int = 96,
                 delta: "int | Sequence[int]" = (1,), batch_size: int = 128, split: str = "train",
                 val_fraction: float = 0.1, val_at: str = "start", augment: "bool | AugmentConfig" = True,
                 reject_background: float = 0.0, background_threshold: float = 0.25,
                 device: "str | torch.device" = "cpu", seed: int = 0, per_frame: bool = True) -> None:
        images = as_image_list(movies)
        self.patch, self.batch_size, self.split, self.seed = int(patch), int(batch_size), split, seed
        self.delta = self._check_args(images, delta, split, val_fraction, batch_size, reject_background)
        if val_at not in ("start", "end"):
            raise InputError(f"PairSampler: val_at={val_at!r}; use 'start' (validate on the first frames) or 'end' "
                             "(train on the first frames, validate on the last ones).")
        self.val_fraction, self.val_at, self.reject_background = val_fraction, val_at, reject_background
        self.background_threshold = background_threshold
        self.device = torch.device(device)
        if split == "val" or augment is False:
            augment = AugmentConfig.none()
        self.cfg = AugmentConfig() if augment is True else augment
        self.table = self._pair_table([im.shape[0] for im in images])  # (N, 3): movie, t, delta
        self.sizes = torch.tensor([im.shape[-2:] for im in images], device=self.device)  # (M, 2)
        # per-frame percentile normalisation removes global intensity trends (bleaching); per_frame=False
        # normalises each movie as a whole and keeps them, to show the shortcut on purpose
        self.movies = [_normalised_store(im, per_frame, self.device) for im in images]  # (C, T, Y + 1, X) each
        self.channels = self.movies[0].shape[0]
        events = [m.events if isinstance(m, Movie) and m.events is not None else None
                  for m in (movies if isinstance(movies, (list, tuple)) else [movies])]
        self.events = None if all(e is None for e in events) else [
            None if e is None else torch.as_tensor(e > 0, device=self.device)[None] for e in events]  # (1, T, Y, X)
        self.generator = torch.Generator(device=self.device)
        self.reset()

    @property
    def nbytes(self) -> int:
        """Bytes of the normalised movies held on the device."""
        return sum(m.numel() * m.element_size() for m in self.movies)

    def _check_args(self, images: list, delta, split: str, val_fraction: float, batch_size: int,
                    reject: float) -> tuple[int, ...]:
        """Validate the sampler arguments early; return the deltas as a tuple."""
        deltas = (delta,) if isinstance(delta, (int, np.integer)) else tuple(int(d) for d in delta)
        if not deltas or min(deltas) < 1:
            raise InputError(f"PairSampler: delta={delta!r} must be a non-empty list of frame offsets >= 1, e.g. (1,) or (1, 2).")
        if split not in ("train", "val"):
            raise InputError(f"PairSampler: split={split!r}; use 'train' or 'val'.")
        if not 0.0 <= val_fraction < 1.0:
            raise InputError(f"PairSampler: val_fraction={val_fraction} must be in [0, 1), e.g. 0.1.")
        if batch_size < 1 or not 0.0 <= reject < 1.0:
            raise InputError(f"PairSampler: batch_size={batch_size} must be >= 1 and reject_background={reject} in [0, 1).")
        longest = max(im.shape[0] for im in images)
        if max(deltas) >= longest:
            raise InputError(f"PairSampler: delta {max(deltas)} needs movies with more than {max(deltas)} frames, but the "
                             f"longest has {longest}. Use a smaller delta.")
        smallest = min(min(im.shape[-2:]) for im in images)
        if self.patch > smallest or self.patch < 8:
            raise InputError(f"PairSampler: patch={self.patch} does not fit the smallest frame side ({smallest} px); "
                             f"use a patch between 8 and {smallest}.")
        if len({1 if im.ndim == 3 else im.shape[1] for im in images}) > 1:
            raise InputError("PairSampler: the movies have different numbers of channels; pass movies with the same C.")
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
            cut = n_val if self.val_at == "start" else n - n_val  # the boundary between the two parts
            first = (self.split == "val") == (self.val_at == "start")  # this split is the first part
            lo, hi = (0, cut) if first else (cut, n)
            rows += [(m, t, d) for d in self.delta for t in range(lo, hi - d)]
        if not rows:
            raise InputError(
                f"PairSampler: no {self.split} pairs: with val_fraction={self.val_fraction} and delta={self.delta} the "
                f"{self.split} part of the movies ({n_frames} frames) is too short. Use longer movies, a smaller delta, "
                "or change val_fraction.")
        return torch.tensor(rows, dtype=torch.long, device=self.device)

    def reset(self) -> None:
        """Re-seed the generator: the val split then yields the same pairs again."""
        self.generator.manual_seed(self.seed + (7919 if self.split == "val" else 0))

    def state_dict(self) -> dict:
        """Generator state, for exact resumption."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the generator state saved by `state_dict`."""
        self.generator.set_state(state["generator"].cpu())

    def _positions(self, n: int) -> dict[str, torch.Tensor]:
        """Draw n (movie, t, delta, y0, x0) uniformly over this split's pairs and crop positions."""
        g = self.generator
        movie, t, delta = self.table[torch.randint(len(self.table), (n,), generator=g, device=self.device)].T
        room = self.sizes[movie] - self.patch + 1  # (n, 2) number of valid corners per axis
        corner = (torch.rand(n, 2, generator=g, device=self.device) * room).long()
        return dict(movie=movie, t=t, delta=delta, y0=corner[:, 0], x0=corner[:, 1])

    def _windows(self, stack: torch.Tensor, frames: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Unaugmented crops (n, 2, C, P, P) at frames (n, 2), corners y0, x0 (n,) of a (C, T, Y', X) tensor (Y' >= Y)."""
        p = self.patch
        windows = stack.unfold(2, p, 1).unfold(3, p, 1)  # (C, T, Y'-P+1, X-P+1, P, P), a view
        return windows[:, frames, y0[:, None], x0[:, None]].permute(1, 2, 0, 3, 4)  # from (C, n, 2, P, P)

    def _tall_grid(self, ctrl: torch.Tensor, frames: torch.Tensor, n_t: int, height: int, width: int) -> torch.Tensor:
        """Control points (2n, 2 (y, x), K, K) in frame pixels -> grid_sample grid (2n, P, P, 2) into the tall image.

        The tall image is the T frames of height `height` (with their zero row) stacked along y; grid units
        are float32, exact to ~T * height * 6e-8 px, far below the one zero row between frames.
        """
        h = height - 1  # frame height without the zero row
        # a bilinear map peaks at its control points: reflect only the frames whose footprint leaves the frame
        lo, hi = ctrl.flatten(2).amin(-1), ctrl.flatten(2).amax(-1)  # (2n, 2)
        outside = ((lo < 0) | (hi > torch.tensor([h - 1, width - 1], device=lo.device))).any(1)  # (2n,)
        ctrl = ctrl.flip(1).clone()  # (2n, 2 (x, y), K, K): grid_sample's order
        frame_row = (frames.flatten() * height).to(ctrl.dtype)  # (2n,) first row of each frame in the tall image
        scale_x, scale_y = 2 / (width - 1), 2 / (n_t * height - 1)  # pixels -> grid_sample units (align_corners)
        # normalising is affine, so for frames that need no reflection it is done on the control points
        inside = ~outside
        ctrl[inside, 0] = ctrl[inside, 0] * scale_x - 1
        ctrl[inside, 1] = (ctrl[inside, 1] + frame_row[inside, None, None]) * scale_y - 1
        grid = source_coords(ctrl, self.patch)  # (2n, P, P, 2): exact, the maps are bilinear
        if bool(outside.any()):
            x, y = grid[outside].unbind(-1)  # in pixels
            reflect(x, width).mul_(scale_x).sub_(1)
            reflect(y, h).add_(frame_row[outside, None, None]).mul_(scale_y).sub_(1)
            grid[outside] = torch.stack([x, y], -1)
        return grid

    def _resample(self, store: torch.Tensor, frames: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor,
                  coarse: torch.Tensor) -> torch.Tensor:
        """Crops (n, 2, C, P, P) through the maps `coarse` (n, 2, 2, K, K): one grid_sample over the movie's frames."""
        p, (c, n_t, height, width) = self.patch, store.shape
        centre = torch.stack([y0, x0], -1) + (p - 1) / 2  # (n, 2) patch centre (y, x)
        ctrl = (coarse + centre[:, None, :, None, None]).flatten(0, 1)  # (2n, 2, K, K) source pixels (y, x)
        grid = self._tall_grid(ctrl, frames, n_t, height, width)  # (2n, P, P, 2)
        # grid_sample parallelises over its batch on a CPU: split the points into one chunk per thread,
        # all reading the same (expanded, not copied) tall image
        threads = torch.get_num_threads()
        chunks = threads if store.device.type == "cpu" and len(grid) % threads == 0 else 1
        tall = store.view(1, c, n_t * height, width).expand(chunks, -1, -1, -1)
        crops = F.grid_sample(tall, grid.view(chunks, -1, p, 2), mode="bilinear", padding_mode="zeros",
                              align_corners=True)  # (chunks, C, 2n*P / chunks, P)
        return crops.transpose(0, 1).reshape(c, len(y0), 2, p, p).permute(1, 2, 0, 3, 4)

    def _read(self, pos: dict, tf: PairTransforms) -> torch.Tensor:
        """Every output pixel read once: index the plain (dihedral-only) pairs, resample the others; (B, 2, C, P, P).

        `pos` and `tf` are sorted by (resampled, movie) (`_grouped`), so every group is a slice of the batch.
        """
        b, p = len(pos["t"]), self.patch
        out = torch.empty((b, 2, self.channels, p, p), device=self.device)
        frames = torch.stack([pos["t"], pos["t"] + pos["delta"]], 1)  # (B, 2)
        key = tf.resample.long() * len(self.movies) + pos["movie"]
        for k, n in zip(*torch.unique_consecutive(key, return_counts=True)):
            warped, m = divmod(int(k), len(self.movies))
            start = int(torch.searchsorted(key, k))
            part = slice(start, start + int(n))
            args = (self.movies[m], frames[part], pos["y0"][part], pos["x0"][part])
            if warped:
                out[part] = self._resample(*args, tf.coarse[part])
            else:
                out[part] = self._windows(*args)
                apply_dihedral(out[part], tf.dihedral[part])
        return out

    @staticmethod
    def _grouped(pos: dict, tf: PairTransforms, n_movies: int) -> tuple[dict, PairTransforms]:
        """Sort the pairs by (resampled, movie) so that `_read` works on slices; the order of iid pairs is free."""
        order = torch.argsort(tf.resample.long() * n_movies + pos["movie"], stable=True)
        fields = {k: v[order] for k, v in vars(tf).items()}
        return {k: v[order] for k, v in pos.items()}, PairTransforms(**fields)

    def _foreground(self, pos: dict) -> torch.Tensor:
        """Fraction of pixels above background_threshold in the unaugmented crops of both frames, (n,)."""
        frames = torch.stack([pos["t"], pos["t"] + pos["delta"]], 1)  # (n, 2)
        out = torch.zeros(len(frames), device=self.device)
        for m in pos["movie"].unique().tolist():
            sel = torch.nonzero(pos["movie"] == m).flatten()
            crops = self._windows(self.movies[m], frames[sel], pos["y0"][sel], pos["x0"][sel])
            out[sel] = (crops > self.background_threshold).float().mean(dim=(1, 2, 3, 4))
        return out

    def _has_event(self, pos: dict) -> torch.Tensor:
        """Whether the unaugmented crop of either frame contains an event pixel, (B,) bool."""
        frames = torch.stack([pos["t"], pos["t"] + pos["delta"]], 1)  # (B, 2)
        out = torch.zeros(len(frames), dtype=torch.bool, device=self.device)
        for m, events in enumerate(self.events):
            sel = torch.nonzero(pos["movie"] == m).flatten()
            if events is not None and len(sel):
                out[sel] = self._windows(events, frames[sel], pos["y0"][sel], pos["x0"][sel]).flatten(1).any(1)
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

    def sample(self, with_events: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One batch: crops (B, 2, C, P, P) of frames t (slot 0) and t + delta (slot 1), info dict of (B,) tensors."""
        pos = self._draw(self.batch_size)
        tf = draw_transforms(self.batch_size, self.patch, self.generator, self.cfg)
        pos, tf = self._grouped(pos, tf, len(self.movies))
        x = apply_intensity(self._read(pos, tf), tf, self.generator)  # (B, 2, C, P, P)
        info = dict(pos)
        if with_events and self.events is not None:
            info["has_event"] = self._has_event(pos)
        return x, info

    def fixed_batches(self, n_batches: int) -> list[tuple[torch.Tensor, dict]]:
        """Re-seed, then draw n_batches: the same batches on every call (for validation)."""
        self.reset()
        return [self.sample() for _ in range(n_batches)]

    def __repr__(self) -> str:
        return (f"PairSampler(split={self.split!r}, movies={len(self.movies)}, pairs={len(self.table)}, "
                f"patch={self.patch}, delta={self.delta}, batch_size={self.batch_size}, device={self.device})")



def normalize_crops(x: torch.Tensor, pmin: float = 1.0, pmax: float = 99.8) -> torch.Tensor:
    """Percentile-normalise every crop of (B, T, C, P, P) on its own: pmin -> 0, pmax -> 1."""
    flat = x.flatten(2)  # (B, T, C*P*P)
    lo = torch.quantile(flat, pmin / 100, dim=2, keepdim=True)
    hi = torch.quantile(flat, pmax / 100, dim=2, keepdim=True)
    return ((flat - lo) / (hi - lo).clamp(min=1e-6)).view_as(x)
