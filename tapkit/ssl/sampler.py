"""Batched crop-pair sampling and augmentation for time arrow prediction (TAP) pretraining.

A `PairSampler` keeps every movie, normalised per frame, as a tensor on the compute device and
draws a whole batch at once: crops at the same place from frames t and t + delta, then one
batched `grid_sample` that applies all geometric augmentations (flips/90° rotations, rotation,
scale, per-frame jitter, elastic deformation) and batched intensity augmentations. No
per-sample Python loop, no DataLoader. Both slots are augmented with identically distributed
transforms, so nothing but the content tells which frame came first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from tapkit.data.movie import InputError, Movie, check_images, normalize

__all__ = ["AugmentConfig", "PairSampler", "augment_pairs", "augment_margin", "as_image_list", "normalize_crops"]


@dataclass
class AugmentConfig:
    """Probabilities (per sample) and strengths of the TAP augmentations."""

    p_dihedral: float = 0.5  # random flips / 90 degree rotations (joint)
    p_rotate: float = 0.5  # joint rotation by any angle
    p_scale: float = 0.5  # joint zoom, log-uniform in scale_range
    scale_range: tuple[float, float] = (0.8, 1.25)
    p_jitter: float = 0.3  # small independent per-frame translation and zoom
    jitter_shift: float = 2.0  # pixels (max)
    jitter_scale: float = 0.03  # relative (max)
    p_elastic: float = 0.3  # smooth random displacement field shared by the pair
    elastic_amplitude: float = 5.0  # pixels (max)
    elastic_grid: int = 4  # control points per side of the coarse displacement field
    p_noise: float = 0.3  # additive Gaussian noise, std uniform in (0, noise_std)
    noise_std: float = 0.05
    p_frame_intensity: float = 0.3  # independent per-frame scale/shift
    frame_scale: float = 0.1  # relative (max)
    frame_shift: float = 0.05
    p_global_intensity: float = 0.5  # one scale/shift for both frames
    global_scale: float = 0.3
    global_shift: float = 0.1

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if name.startswith("p_") and not 0.0 <= value <= 1.0:
                raise InputError(f"AugmentConfig.{name}={value} is a probability: use a value in [0, 1].")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise InputError(f"AugmentConfig.scale_range={self.scale_range}: need 0 < low <= high, e.g. (0.8, 1.25).")

    @classmethod
    def none(cls) -> "AugmentConfig":
        """A config that switches every augmentation off."""
        return cls(**{k: 0.0 for k in vars(cls()) if k.startswith("p_")})

    @property
    def geometric(self) -> bool:
        """True if any augmentation needs resampling (and so a margin around the crop)."""
        return any(getattr(self, k) > 0 for k in ("p_dihedral", "p_rotate", "p_scale", "p_jitter", "p_elastic"))


def augment_margin(patch: int, cfg: AugmentConfig) -> int:
    """Pixels to crop around a patch so that rotations, zooms and deformations never show borders."""
    if not cfg.geometric:
        return 0
    zoom = (cfg.scale_range[1] if cfg.p_scale > 0 else 1.0) * (1 + cfg.jitter_scale * (cfg.p_jitter > 0))
    extent = patch * zoom * (math.sqrt(2) if cfg.p_rotate > 0 else 1.0)
    extra = cfg.jitter_shift * (cfg.p_jitter > 0) + cfg.elastic_amplitude * (cfg.p_elastic > 0)
    return int(math.ceil((extent - patch) / 2 + extra)) + 1


def as_image_list(movies: "Movie | np.ndarray | Sequence", what: str = "PairSampler") -> list[np.ndarray]:
    """Accept one or several Movies / (T, Y, X) arrays and return validated float32 arrays."""
    if isinstance(movies, (Movie, np.ndarray, torch.Tensor)):
        movies = [movies]
    movies = list(movies)
    if not movies:
        raise InputError(f"{what}: got an empty list of movies; pass at least one Movie or (T, Y, X) array.")
    out = []
    for i, m in enumerate(movies):
        arr = m.images if isinstance(m, Movie) else (m.cpu().numpy() if isinstance(m, torch.Tensor) else m)
        out.append(check_images(arr, what=f"{what}: movie {i}", min_frames=1))
        if out[-1].shape[0] < 2:
            raise InputError(f"{what}: movie {i} has a single frame; time arrow prediction needs at least 2 "
                             "frames (check that the time axis is first: (T, Y, X)).")
    return out


def _rand(g: torch.Generator, *shape: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """Uniform random numbers in [lo, hi) on the generator's device."""
    return lo + (hi - lo) * torch.rand(*shape, generator=g, device=g.device)


def _coin(g: torch.Generator, p: float, *shape: int) -> torch.Tensor:
    """Boolean tensor, True with probability p."""
    return torch.rand(*shape, generator=g, device=g.device) < p


def _rotation(angle: torch.Tensor) -> torch.Tensor:
    """(N,) angles in radians -> (N, 2, 2) rotation matrices."""
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def _joint_matrices(b: int, g: torch.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """(B, 2, 2) matrices shared by both frames: dihedral x rotation x zoom."""
    k = torch.randint(0, 4, (b,), generator=g, device=g.device) * _coin(g, cfg.p_dihedral, b)
    mirror = torch.where(_coin(g, cfg.p_dihedral / 2, b), -1.0, 1.0)
    dihedral = _rotation(k * (math.pi / 2)).round()  # exact 0/+-1 entries
    dihedral[:, :, 1] *= mirror[:, None]
    angle = _rand(g, b, hi=2 * math.pi) * _coin(g, cfg.p_rotate, b)
    lo, hi = (math.log(v) for v in cfg.scale_range)
    zoom = torch.where(_coin(g, cfg.p_scale, b), torch.exp(_rand(g, b, lo=lo, hi=hi)), 1.0)
    return dihedral @ _rotation(angle) * zoom[:, None, None]


def _frame_matrices(b: int, g: torch.Generator, cfg: AugmentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent per-frame jitter: zoom (B, 2) and shift in pixels (B, 2, 2)."""
    on = _coin(g, cfg.p_jitter, b)[:, None]  # (B, 1) both frames jittered or neither
    zoom = torch.where(on, 1 + _rand(g, b, 2, lo=-cfg.jitter_scale, hi=cfg.jitter_scale), 1.0)
    shift = _rand(g, b, 2, 2, lo=-cfg.jitter_shift, hi=cfg.jitter_shift) * on[..., None]
    return zoom, shift


def _elastic_field(b: int, size: int, g: torch.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """Smooth random displacement in pixels, (B, P, P, 2), zero where elastic is off."""
    n = max(2, cfg.elastic_grid)
    coarse = _rand(g, b, 2, n, n, lo=-1.0, hi=1.0) * _coin(g, cfg.p_elastic, b)[:, None, None, None]
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True).clamp(-1, 1)
    return (field * cfg.elastic_amplitude).permute(0, 2, 3, 1)  # (B, P, P, 2) as (dx, dy)


def _sampling_grid(b: int, crop: int, patch: int, g: torch.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """(B*2, P, P, 2) grid_sample coordinates combining joint, per-frame and elastic transforms."""
    joint = _joint_matrices(b, g, cfg)  # (B, 2, 2)
    zoom, shift = _frame_matrices(b, g, cfg)  # (B, 2), (B, 2, 2)
    mat = joint[:, None] * zoom[..., None, None] * (patch / crop)  # (B, 2, 2, 2) per frame
    theta = torch.cat([mat, (2 * shift / crop)[..., None]], dim=-1)  # (B, 2, 2, 3)
    grid = F.affine_grid(theta.flatten(0, 1), [2 * b, 1, patch, patch], align_corners=False)
    elastic = _elastic_field(b, patch, g, cfg) * (2 / crop)  # shared by both frames of a pair
    return grid + elastic.repeat_interleave(2, dim=0)


def _intensity(x: torch.Tensor, g: torch.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """Per-frame and global scale/shift and additive Gaussian noise on (B, 2, P, P)."""
    b = x.shape[0]
    on = _coin(g, cfg.p_frame_intensity, b, 1)  # (B, 1): both frames or neither
    a = torch.where(on, 1 + _rand(g, b, 2, lo=-cfg.frame_scale, hi=cfg.frame_scale), 1.0)
    c = _rand(g, b, 2, lo=-cfg.frame_shift, hi=cfg.frame_shift) * on
    on = _coin(g, cfg.p_global_intensity, b, 1)
    a = a * torch.where(on, torch.exp(_rand(g, b, 1, lo=-cfg.global_scale, hi=cfg.global_scale)), 1.0)
    c = c + _rand(g, b, 1, lo=-cfg.global_shift, hi=cfg.global_shift) * on
    x = x * a[..., None, None] + c[..., None, None]
    sigma = _rand(g, b, 1, 1, 1, hi=cfg.noise_std) * _coin(g, cfg.p_noise, b, 1, 1, 1)
    return x + sigma * torch.randn(x.shape, generator=g, device=g.device)


def augment_pairs(x: torch.Tensor, generator: torch.Generator, cfg: AugmentConfig,
                  patch: int | None = None) -> torch.Tensor:
    """Augment crop pairs (B, 2, C, C) -> (B, 2, P, P), P = patch (<= C), all samples at once."""
    b, _, crop, _ = x.shape
    patch = crop if patch is None else patch
    if cfg.geometric:
        grid = _sampling_grid(b, crop, patch, generator, cfg)  # (B*2, P, P, 2)
        x = F.grid_sample(x.reshape(2 * b, 1, crop, crop), grid, mode="bilinear",
                          padding_mode="reflection", align_corners=False).reshape(b, 2, patch, patch)
    else:
        m = (crop - patch) // 2
        x = x[..., m:m + patch, m:m + patch]
    return _intensity(x, generator, cfg)


class PairSampler:
    """Draws batches of (augmented) crop pairs from frames t and t + delta of one or several movies.

    sample() -> crops (B, 2, 1, P, P) float32 in time order (frame t, then t + delta),
                info: dict of (B,) tensors t (earlier frame), delta, y0, x0 (crop corner), movie
                and, with `sample(with_events=True)` and an event mask, has_event
                (an event pixel in the crop; off by default to keep it out of the training hot path).
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
        self.margin = augment_margin(self.patch, self.cfg)
        self.table = self._pair_table([im.shape[0] for im in images])  # (N, 3): movie, t, delta
        self.sizes = torch.tensor([im.shape[1:] for im in images], device=self.device)  # (M, 2)
        # per-frame percentile normalisation removes global intensity trends (bleaching); per_frame=False
        # normalises each movie as a whole and keeps them, to show the shortcut on purpose
        self.movies = [self._to_device(normalize(im, per_frame=per_frame)) for im in images]  # (T, Y+2m, X+2m)
        events = [m.events if isinstance(m, Movie) and m.events is not None else None
                  for m in (movies if isinstance(movies, (list, tuple)) else [movies])]
        self.events = None if all(e is None for e in events) else [
            None if e is None else torch.as_tensor(e > 0, device=self.device) for e in events]
        self.generator = torch.Generator(device=self.device)
        self.reset()

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
        smallest = min(min(im.shape[1:]) for im in images)
        if self.patch > smallest or self.patch < 8:
            raise InputError(f"PairSampler: patch={self.patch} does not fit the smallest frame side ({smallest} px); "
                             f"use a patch between 8 and {smallest}.")
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

    def _to_device(self, images: np.ndarray) -> torch.Tensor:
        """Move a normalised movie to the device and pad it by the augmentation margin."""
        x = torch.as_tensor(images, device=self.device)
        if self.margin == 0:
            return x
        mode = "reflect" if self.margin < min(x.shape[1:]) else "replicate"
        return F.pad(x[:, None], (self.margin,) * 4, mode=mode)[:, 0]

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

    def _gather(self, stacks: list, pos: dict, size: int, offset: int) -> torch.Tensor:
        """Crops (n, 2, size, size) at frames t, t + delta from per-movie (T, Y', X') tensors."""
        n = len(pos["t"])
        out = torch.zeros((n, 2, size, size), dtype=stacks[0].dtype, device=self.device)
        for m, stack in enumerate(stacks):
            sel = torch.nonzero(pos["movie"] == m).flatten() if len(stacks) > 1 else torch.arange(n, device=self.device)
            if stack is None or len(sel) == 0:
                continue
            windows = stack.unfold(1, size, 1).unfold(2, size, 1)  # (T, Y'-size+1, X'-size+1, size, size), a view
            t = torch.stack([pos["t"][sel], pos["t"][sel] + pos["delta"][sel]], 1)  # (n_m, 2)
            out[sel] = windows[t, (pos["y0"][sel] + offset)[:, None], (pos["x0"][sel] + offset)[:, None]]
        return out

    def _crops(self, pos: dict) -> torch.Tensor:
        """Normalised crop pairs with the augmentation margin: (n, 2, C, C), C = patch + 2 * margin."""
        return self._gather(self.movies, pos, self.patch + 2 * self.margin, 0)

    def _foreground(self, crops: torch.Tensor) -> torch.Tensor:
        """Fraction of pixels above background_threshold in the central patch of both frames, (n,)."""
        m = self.margin
        centre = crops[..., m:m + self.patch, m:m + self.patch]
        return (centre > self.background_threshold).float().mean(dim=(1, 2, 3))

    def _draw(self, n: int, max_tries: int = 20) -> tuple[dict, torch.Tensor]:
        """Positions and crops; with reject_background > 0, near-empty crops are redrawn (batched)."""
        pos = self._positions(n)
        crops = self._crops(pos)
        for _ in range(max_tries if self.reject_background > 0 else 0):
            bad = torch.nonzero(self._foreground(crops) < self.reject_background).flatten()
            if len(bad) == 0:
                break
            new = self._positions(len(bad))
            for key in pos:
                pos[key][bad] = new[key]
            crops[bad] = self._crops(new)
        return pos, crops

    def sample(self, with_events: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One batch: crops (B, 2, 1, P, P) of frames t (slot 0) and t + delta (slot 1), info dict of (B,) tensors."""
        pos, crops = self._draw(self.batch_size)  # (B, 2, C, C), frame t in slot 0
        x = augment_pairs(crops, self.generator, self.cfg, self.patch)  # (B, 2, P, P)
        info = dict(pos)
        if with_events and self.events is not None:
            info["has_event"] = self._gather(self.events, pos, self.patch, 0).flatten(1).any(1)
        return x[:, :, None].float().contiguous(), info

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
