"""Batched TAP augmentations: what is drawn per pair and how it becomes sampling coordinates and
intensities.

The sampler (`tapkit.ssl.sampler`) draws crop positions and reads pixels; this module draws the
transforms for a whole batch at once (no per-sample loop) and turns them into
  * source coordinates for every output pixel: dihedral x (rotation, zoom) x per-frame (zoom, shift)
    x elastic displacement, all combined in ONE map per frame. The map is exactly bilinear in the
    output pixel (the elastic field is bilinear between K x K control points and the rest is
    affine), so it is computed at the K x K control points only and upsampled with one
    `F.interpolate`;
  * an intensity transform: noise, then per-frame and global scale/shift.
Both frames of a pair get identically distributed transforms, so nothing but the content tells
which frame came first. The families are those of the reference implementation's level-5 augmenter
(weigertlab/tarrow, `tarrow/data/augmenters.py`); `AugmentConfig.level5()` has its probabilities and
strengths, the defaults are milder; `AugmentConfig.named` gives the presets ('default', 'exact',
'level5', 'none') that the course profiles choose from (`tap['augment']`: the cpu profile's short
training uses 'none').
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tapkit.data.movie import InputError

__all__ = [
    "AUGMENT_PRESETS",
    "AugmentConfig",
    "PairTransforms",
    "draw_transforms",
    "source_coords",
    "reflect",
    "apply_dihedral",
    "apply_intensity",
    "augment_pairs",
    "NoiseBank",
]

AUGMENT_PRESETS = ("default", "exact", "level5", "none")  # the names `AugmentConfig.named` knows


@dataclass
class AugmentConfig:
    """Probabilities (per pair) and strengths of the TAP augmentations (the course's defaults;
    `level5()`: tarrow's)."""

    p_dihedral: float = 0.5  # random flips and 90 degree rotations, shared by the pair
    p_affine: float = 0.5  # joint rotation and zoom, shared by the pair
    max_rotation: float = 180.0  # degrees, uniform in (-max, max)
    scale_range: tuple[float, float] = (0.8, 1.25)  # zoom, uniform
    p_jitter: float = 0.3  # independent per-frame zoom and shift
    jitter_scale: tuple[float, float] = (0.97, 1.03)  # per-frame zoom, uniform
    jitter_shift: float = 2.0  # pixels (max), uniform
    p_elastic: float = 0.3  # smooth displacement field shared by the pair
    elastic_amplitude: float = 5.0  # pixels (max) at the control points
    elastic_grid: int = 5  # control points per side, bilinear in between
    p_noise: float = 0.3  # additive positive noise: U(0, noise_max) * U(0, 1) per pixel
    noise_max: float = 0.05
    p_frame_intensity: float = 0.3  # independent per-frame scale/shift
    frame_scale: tuple[float, float] = (0.9, 1.1)
    frame_shift: float = 0.05
    p_global_intensity: float = 0.5  # one scale/shift for both frames
    global_scale: tuple[float, float] = (0.74, 1.35)
    global_shift: float = 0.1

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if name.startswith("p_") and not 0.0 <= value <= 1.0:
                raise InputError(
                    f"AugmentConfig.{name}={value} is a probability: use a value in [0, 1]."
                )
        for name in ("scale_range", "jitter_scale", "frame_scale", "global_scale"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise InputError(
                    f"AugmentConfig.{name}={getattr(self, name)}: need 0 < low <= high, e.g. "
                    "(0.8, 1.25)."
                )
        if self.elastic_grid < 2:
            raise InputError(
                f"AugmentConfig.elastic_grid={self.elastic_grid}: need at least 2 control points "
                "per side."
            )

    def probabilities(self) -> dict[str, float]:
        """The probability of each transform: {'p_dihedral': 0.5, 'p_affine': 0.5, ...}."""
        return {k: v for k, v in vars(self).items() if k.startswith("p_")}

    @classmethod
    def none(cls) -> "AugmentConfig":
        """A config that switches every augmentation off."""
        return cls(**{k: 0.0 for k in cls().probabilities()})

    @classmethod
    def only(cls, name: str) -> "AugmentConfig":
        """Every augmentation off except `name` (e.g. 'p_elastic'), which every pair gets
        (probability 1)."""
        names = list(cls().probabilities())
        if name not in names:
            raise InputError(f"AugmentConfig.only({name!r}): not a transform; use one of {names}.")
        return cls(**{k: float(k == name) for k in names})

    @classmethod
    def exact(cls) -> "AugmentConfig":
        """Only the transforms that move no pixel off the grid: flips / 90-degree rotations, noise,
        intensity.

        No rotation by other angles, zoom, per-frame jitter or elastic field: nothing is resampled.
        A middle way for short trainings: in the cpu profile's 1000 steps of 16 pairs TAP reached
        0.86 / 0.84 with it (seeds 0 / 3), 0.73 / 0.76 with the defaults and 0.93 / 0.88 with none
        (docs/MEASUREMENT_NOTES.md).
        """
        return cls(p_affine=0.0, p_jitter=0.0, p_elastic=0.0)

    @classmethod
    def named(cls, name: str) -> "AugmentConfig":
        """A preset by name: 'default' (AugmentConfig()), 'exact', 'level5' (tarrow's) or 'none'."""
        presets = dict(zip(AUGMENT_PRESETS, (cls, cls.exact, cls.level5, cls.none)))
        if name not in presets:
            raise InputError(
                f"augment={name!r} is not a preset; use one of {list(AUGMENT_PRESETS)}, "
                "True / False, or an AugmentConfig(...) with your own probabilities."
            )
        return presets[name]()

    @classmethod
    def level5(cls) -> "AugmentConfig":
        """tarrow's level-5 augmenter (its default): every pair flipped, noise on every pair, +-10 %
        per-frame zoom.

        The benchmark uses it to compare like with like. In the course's short cpu training (800
        steps of 16 pairs) it kept TAP near chance (training accuracy 0.56 after 700 steps, against
        0.84 validation with the defaults): independent per-frame zooms of up to 10 % drown the
        growth of nuclei between frames.
        """
        return cls(
            p_dihedral=1.0,
            p_jitter=0.5,
            jitter_scale=(0.9, 1 / 0.9),
            jitter_shift=2.88,
            p_elastic=0.5,
            p_noise=1.0,
            p_frame_intensity=0.5,
            frame_scale=(0.9, 1 / 0.9),
            global_scale=(0.8, 1.25),
        )


@dataclass
class PairTransforms:
    """The transforms drawn for B pairs; pixel units, rows before columns (y, x)."""

    # (B,) long in 0..7: bit 0 flips y, bit 1 flips x, bit 2 transposes (applied last)
    dihedral: torch.Tensor
    resample: torch.Tensor  # (B,) bool: an affine, jitter or elastic transform was drawn
    # (B, 2, 2, K, K) source offsets from the patch centre at K x K control points
    coarse: torch.Tensor
    scale: torch.Tensor  # (B, 2) intensity factor per frame
    shift: torch.Tensor  # (B, 2) intensity offset per frame
    noise: torch.Tensor  # (B, 2) noise amplitude per frame (the factor applied to U(0, 1) noise)


def _rand(g: torch.Generator, *shape: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """Uniform random numbers in [lo, hi) on the generator's device."""
    return lo + (hi - lo) * torch.rand(*shape, generator=g, device=g.device)


def _coin(g: torch.Generator, p: float, *shape: int) -> torch.Tensor:
    """Boolean tensor, True with probability p."""
    return torch.rand(*shape, generator=g, device=g.device) < p


def _dihedral_matrices(code: torch.Tensor) -> torch.Tensor:
    """(B,) codes 0..7 -> (B, 2, 2) matrices acting on (y, x) offsets, matching `apply_dihedral`."""
    flip = torch.stack(
        [1 - 2 * (code & 1), 1 - 2 * ((code >> 1) & 1)], -1
    ).float()  # (B, 2) -1 = flipped
    mat = torch.diag_embed(flip)
    swap = (code & 4) > 0
    mat[swap] = mat[swap].flip(-1)  # transposed output: out[i, j] = flipped[j, i]
    return mat


def draw_transforms(b: int, patch: int, g: torch.Generator, cfg: AugmentConfig) -> PairTransforms:
    """Draw the transforms of b pairs, in a fixed order from generator g
    (same seed -> same transforms)."""
    dev = g.device
    code = torch.randint(0, 8, (b,), generator=g, device=dev) * _coin(g, cfg.p_dihedral, b)
    affine, jitter, elastic = (
        _coin(g, cfg.p_affine, b),
        _coin(g, cfg.p_jitter, b),
        _coin(g, cfg.p_elastic, b),
    )
    angle = _rand(g, b, lo=-1.0, hi=1.0) * math.radians(cfg.max_rotation) * affine
    zoom = torch.where(affine, _rand(g, b, lo=cfg.scale_range[0], hi=cfg.scale_range[1]), 1.0)
    c, s = torch.cos(angle), torch.sin(angle)
    # (B, 2, 2)
    joint = (
        torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2) / zoom[:, None, None]
    )
    frame_zoom = torch.where(
        jitter[:, None], _rand(g, b, 2, lo=cfg.jitter_scale[0], hi=cfg.jitter_scale[1]), 1.0
    )
    # (B, 2, 2)
    frame_shift = (
        _rand(g, b, 2, 2, lo=-cfg.jitter_shift, hi=cfg.jitter_shift) * jitter[:, None, None]
    )
    k = cfg.elastic_grid
    u = torch.linspace(-(patch - 1) / 2, (patch - 1) / 2, k, device=dev)
    grid = torch.stack(torch.meshgrid(u, u, indexing="ij"))  # (2, K, K) output offsets (y, x)
    disp = (
        _rand(g, b, 2, k, k, lo=-cfg.elastic_amplitude, hi=cfg.elastic_amplitude)
        * elastic[:, None, None, None]
    )
    # output offset u -> u + elastic(u) -> per-frame (shift, zoom) -> joint rotation / zoom
    # -> dihedral
    moved = (grid + disp)[:, None] - frame_shift[..., None, None]  # (B, 2 frames, 2, K, K)
    moved = moved / frame_zoom[..., None, None, None]
    mat = _dihedral_matrices(code) @ joint  # (B, 2, 2)
    coarse = torch.einsum("bij,bfjkl->bfikl", mat, moved)
    scale, shift, noise = _intensity_params(b, g, cfg)
    return PairTransforms(code, affine | jitter | elastic, coarse, scale, shift, noise)


def _intensity_params(b: int, g: torch.Generator, cfg: AugmentConfig) -> tuple[torch.Tensor, ...]:
    """Per-frame intensity factor and offset and noise amplitude, each (B, 2): noise, then frame,
    then global."""
    # one amplitude per pair, as tarrow
    sigma = _rand(g, b, 1, hi=cfg.noise_max) * _coin(g, cfg.p_noise, b, 1)
    on = _coin(g, cfg.p_frame_intensity, b, 1)
    a = torch.where(on, _rand(g, b, 2, lo=cfg.frame_scale[0], hi=cfg.frame_scale[1]), 1.0)
    c = _rand(g, b, 2, lo=-cfg.frame_shift, hi=cfg.frame_shift) * on
    on = _coin(g, cfg.p_global_intensity, b, 1)
    ag = torch.where(on, _rand(g, b, 1, lo=cfg.global_scale[0], hi=cfg.global_scale[1]), 1.0)
    cg = _rand(g, b, 1, lo=-cfg.global_shift, hi=cfg.global_shift) * on
    # ((x + sigma u) a + c) ag + cg = x A + sigma A u + C
    return a * ag, c * ag + cg, sigma * a * ag


def _interpolation_matrix(k: int, size: int, device: torch.device) -> torch.Tensor:
    """(size, k) weights of linear interpolation from k control points to size pixels
    (align_corners=True)."""
    pos = torch.linspace(0, k - 1, size, device=device)
    return torch.clamp(1 - (pos[:, None] - torch.arange(k, device=device)).abs(), min=0)


def source_coords(
    coarse: torch.Tensor, patch: int, out: "torch.Tensor | None" = None
) -> torch.Tensor:
    """Control-point coordinates (N, 2, K, K) -> coordinates of every output pixel (N, P, P, 2),
    last axis as given.

    Exact bilinear interpolation written as two small matrix products (Wy @ C @ Wx^T), which writes
    the (N, P, P, 2) layout that `grid_sample` reads directly. `out`: a contiguous (N, P, P, 2)
    buffer to write into (the sampler reuses one: a fresh 18 MB tensor per batch costs more in page
    faults than the product itself on a CPU).
    """
    n, _, k, _ = coarse.shape
    w = _interpolation_matrix(k, patch, coarse.device)  # (P, K)
    # (2K, 2P): keeps the 2 coordinates interleaved
    wx = torch.kron(w.T.contiguous(), torch.eye(2, device=coarse.device))
    rows = coarse.permute(0, 2, 3, 1).reshape(n, k, 2 * k) @ wx  # (N, K, 2P)
    if out is None:
        return (w @ rows).view(n, patch, patch, 2)
    torch.matmul(w, rows, out=out.view(n, patch, 2 * patch))
    return out


def reflect(coord: torch.Tensor, size: int) -> torch.Tensor:
    """Mirror pixel coordinates into [0, size - 1] about the edge pixels (numpy 'reflect'), in
    place."""
    period = 2 * (size - 1)
    return coord.remainder_(period).sub_(size - 1).abs_().neg_().add_(size - 1)


def apply_dihedral(x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """Flip / transpose each (..., P, P) item of x (N, ...) by its code (N,) in 0..7, in place
    (see `PairTransforms`)."""
    for k in code.unique().tolist():
        if k == 0:
            continue
        sel = torch.nonzero(code == k).flatten()
        item = x[sel]  # a copy
        dims = [d for bit, d in ((1, -2), (2, -1)) if k & bit]
        item = item.flip(dims) if dims else item
        x[sel] = item.transpose(-2, -1) if k & 4 else item
    return x


class NoiseBank:
    """U(0, 1) pixel noise for a batch, read as a strided view of one field drawn once
    (the sampler's hot path).

    Drawing B x 2 x P x P fresh random numbers is a sequential CPU generator's work (~2 ms of a
    19 ms batch of 128 pairs at 96 px on 2 cores). Instead, the n crops of a batch read n disjoint
    windows of a field 3x as long as a batch of noise, at a random start and a random gap between
    windows: within a crop and between the crops of a batch the values are independent U(0, 1), as
    before; from batch to batch the windows move. Nothing is copied: the windows are a view
    (`torch.as_strided`). The field comes from its own generator seeded with `seed` only, so a
    resumed training reads the same field;
    start and gap come from the caller's generator.
    """

    def __init__(self, n: int, length: int, device: torch.device, seed: int) -> None:
        self.n, self.length = int(n), int(length)
        g = torch.Generator(device=device).manual_seed(int(seed) + 2_147_483_647)
        self.field = torch.rand(3 * self.n * self.length, generator=g, device=device)

    def windows(self, n: int, g: torch.Generator) -> torch.Tensor:
        """n <= self.n disjoint windows of `length` noise values, (n, length), a view of the
        field."""
        # between windows
        gap = int(torch.randint(self.length // 2 + 1, (1,), generator=g, device=g.device))
        stride = self.length + gap
        start = int(
            torch.randint(
                len(self.field) - (n - 1) * stride - self.length + 1,
                (1,),
                generator=g,
                device=g.device,
            )
        )
        return self.field.as_strided((n, self.length), (stride, 1), start)


def apply_intensity(
    x: torch.Tensor, tf: PairTransforms, g: torch.Generator, bank: "NoiseBank | None" = None
) -> torch.Tensor:
    """Noise and intensity jitter on crops (B, 2, C, P, P), in place: x * A + sigma A U(0, 1) + C.

    The U(0, 1) noise is fresh from g, or windows of `bank` (offsets from g) when one is given.
    """
    view = (*tf.scale.shape, 1, 1, 1)
    x.mul_(tf.scale.view(view)).add_(tf.shift.view(view))
    if bool((tf.noise > 0).any()):
        b, t = x.shape[:2]
        noise = (
            bank.windows(b * t, g)
            if bank is not None
            else torch.rand(b * t, x[0, 0].numel(), generator=g, device=g.device)
        ).view(x.shape)
        x.addcmul_(noise, tf.noise.view(view))
    return x


def augment_pairs(
    crops: torch.Tensor, generator: torch.Generator, cfg: AugmentConfig, patch: "int | None" = None
) -> torch.Tensor:
    """Augment the centre of crop pairs (B, 2, C, H, W) -> (B, 2, C, P, P)
    (reflect at the crop's border).

    For showing and testing the transforms on single crops; the sampler applies the same transforms
    straight to the movie (`PairSampler.sample`), without cutting crops first.
    """
    if crops.ndim != 5:
        raise InputError(
            f"augment_pairs: expected crops (B, 2, C, H, W), got shape {tuple(crops.shape)}."
        )
    b, _, ch, h, w = crops.shape
    patch = min(h, w) if patch is None else int(patch)
    tf = draw_transforms(b, patch, generator, cfg)
    # (2B, P, P, 2) offsets (y, x) from the centre
    coords = source_coords(tf.coarse.flatten(0, 1), patch)
    y, x = coords.unbind(-1)
    reflect(y.add_((h - 1) / 2), h), reflect(x.add_((w - 1) / 2), w)
    # (2B, P, P, 2) as (x, y)
    grid = torch.stack([x * (2 / (w - 1)) - 1, y * (2 / (h - 1)) - 1], -1)
    out = F.grid_sample(
        crops.reshape(2 * b, ch, h, w).float(), grid, mode="bilinear", align_corners=True
    )
    return apply_intensity(out.view(b, 2, ch, patch, patch), tf, generator)
