"""A faithful re-implementation of the reference TAP data pipeline, to benchmark tapkit's sampler
against.

The reference is weigertlab/tarrow (not on PyPI, and it needs torchvision and scikit-image, which
are not used here). This is our own code that does what these files of tarrow do, per sample:
  * `tarrow/data/tarrow_dataset.py` `TarrowDataset`: the whole movie in RAM, normalised per frame
    with percentiles (1, 99.8) taken from every 8th pixel (`tarrow/utils/utils.py::normalize`); the
    time slices of every delta precomputed; per sample a random 96 px crop (torchvision `RandomCrop`
    with reflect padding), or, with `reject_background=True`, up to 10 random crops until the
    median-filtered (2 x 3 x 3) crop has std > 0.02; then a random time flip (the label) and the
    augmenter.
  * `tarrow/data/augmenters.py` level 5 with `tarrow/data/augmentations.py`, in this order:
    flips of y and/or x, always (`RandomFlipRot`); p = 0.5: rotation up to 180 degrees and zoom
    uniform in (4/5, 5/4), both frames alike, on the already-cut patch with zero fill (torchvision
    `RandomAffine`: inverse affine grid, bilinear `grid_sample`, a mask channel to blend the fill);
    p = 0.5: per-frame zoom uniform in (9/10, 10/9) and shift of round(U(-2.88, 2.88)) px per axis;
    p = 0.5: elastic, a 5 x 5 field of U(-1, 1) * 10 / 96 (grid units), bilinearly upsampled, shared
    by both frames, reflection padding; noise U(0, 0.05) * U(0, 1) per pixel on every sample
    (tarrow's `RandomNoise` re-initialises itself with probability 1); p = 0.5 per-frame intensity
    scale U(9/10, 10/9), shift U(-0.05, 0.05); p = 0.5 global scale U(4/5, 5/4), shift U(-0.1, 0.1).
  * `scripts/train.py`: a `DataLoader` with a `RandomSampler(replacement=True)`, `batch_size` 128,
    persistent workers; here 2 workers with one torch thread each (the machine has 2 cores).
Differences: torchvision's `RandomAffine` and `RandomCrop` are rewritten with torch ops (same maths:
inverse matrix about the patch centre, bilinear, fill 0 blended through a sampled mask), the median
filter of background rejection uses scipy instead of scikit-image, and there is no skimage uint8
conversion. Without torchvision's per-call checks and conversions this is, if anything, faster than
tarrow's own loader (the issue measured tarrow itself at ~430 pairs/s on the 2-core build machine),
so ratios against it are conservative.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from torch.utils.data import DataLoader, Dataset, RandomSampler

__all__ = ["ReferenceDataset", "reference_augment", "reference_loader"]


def _percentile_normalize(frame: np.ndarray, pmin: float = 1.0, pmax: float = 99.8) -> np.ndarray:
    """tarrow's default normalisation of one frame: percentiles from every 8th pixel, no
    clipping."""
    lo, hi = np.percentile(frame[::8, ::8], (pmin, pmax))
    return ((frame - lo) / (hi - lo + 1e-10)).astype(np.float32)


def _base_grid(h: int, w: int) -> torch.Tensor:
    """(1, H, W, 2) grid of (x, y) in [-1, 1] (align_corners=True), like tarrow's `tensor_grid`."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack([xs, ys], -1)[None]


def _affine(
    x: torch.Tensor, angle: float, shift: tuple[float, float], scale: float
) -> torch.Tensor:
    """torchvision `F.affine` on (N, C, H, W) tensors: rotate/zoom/shift about the centre, bilinear,
    fill 0."""
    n, c, h, w = x.shape
    a, s = math.radians(-angle), 1.0 / scale  # inverse map: output pixel -> input pixel
    cos, sin = math.cos(a) * s, math.sin(a) * s
    tx, ty = shift
    inv = torch.tensor([[cos, -sin, -(cos * tx - sin * ty)], [sin, cos, -(sin * tx + cos * ty)]])
    # pixel-centred base grid in pixels, then mapped and rescaled to grid units
    # (align_corners=False)
    xs = torch.arange(w, dtype=torch.float32) - (w - 1) / 2
    ys = torch.arange(h, dtype=torch.float32) - (h - 1) / 2
    # (H, W, 3)
    base = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w), torch.ones(h, w)], -1)
    grid = (base.view(-1, 3) @ inv.T).view(1, h, w, 2) / torch.tensor([w / 2, h / 2])
    # torchvision blends the fill through a mask
    with_mask = torch.cat([x, torch.ones(n, 1, h, w)], 1)
    out = F.grid_sample(
        with_mask,
        grid.expand(n, h, w, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    img, mask = out[:, :c], out[:, c:]
    return img * mask + (1.0 - mask) * 0.0


def _random_affine(
    x: torch.Tensor, degrees: float, translate: float, scale: tuple[float, float]
) -> torch.Tensor:
    """torchvision `RandomAffine(degrees, translate, scale)` on (N, C, H, W): one draw for all N."""
    angle = float(torch.empty(1).uniform_(-degrees, degrees))
    h, w = x.shape[-2:]
    tx = float(round(torch.empty(1).uniform_(-translate * w, translate * w).item()))
    ty = float(round(torch.empty(1).uniform_(-translate * h, translate * h).item()))
    zoom = float(torch.empty(1).uniform_(*scale))
    return _affine(x, angle, (tx, ty), zoom)


def _elastic(x: torch.Tensor, grid: int = 5, amount: float = 10.0) -> torch.Tensor:
    """tarrow `RandomElastic`: one 5 x 5 displacement field for all frames, bilinear, reflection
    padding."""
    h, w = x.shape[-2:]
    amount_normed = amount / torch.tensor([h, w], dtype=torch.float32)
    field = (2 * torch.rand(1, grid, grid, 2) - 1) * amount_normed
    field = F.interpolate(
        field.moveaxis(-1, 1), (h, w), align_corners=True, mode="bilinear"
    ).moveaxis(1, -1)
    coords = (_base_grid(h, w) + field).expand(len(x), h, w, 2)
    return F.grid_sample(x, coords, mode="bilinear", padding_mode="reflection", align_corners=True)


def _intensity(
    x: torch.Tensor, scale: tuple[float, float], shift: tuple[float, float], per_frame: bool
) -> torch.Tensor:
    """tarrow `RandomIntensity`: x * U(scale) + U(shift), one draw per frame or one for the
    sample."""
    shape = (len(x), 1, 1, 1) if per_frame else (1, 1, 1, 1)
    return (scale[0] + (scale[1] - scale[0]) * torch.rand(shape)) * x + (
        shift[0] + (shift[1] - shift[0]) * torch.rand(shape)
    )


def reference_augment(x: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """tarrow's level-5 augmenter on one sample (T, C, H, W), transform by transform, in its
    order."""
    # RandomFlipRot, always
    dims = [d for d, flip in zip((2, 3), np.random.randint(0, 2, 2) == 0) if flip]
    x = torch.flip(x, dims) if dims else x
    if torch.rand(1).item() <= p:  # joint rotation and zoom
        x = _random_affine(x, 180.0, 0.0, (4 / 5, 5 / 4))
    if torch.rand(1).item() <= p:  # per frame: zoom and shift (3 % of the crop)
        x = torch.cat(
            [_random_affine(f, 0.0, 0.03, (9 / 10, 10 / 9)) for f in torch.split(x, 1, dim=0)]
        )
    if torch.rand(1).item() <= p:
        x = _elastic(x)
    x = x + torch.rand(1)[0] * 0.05 * torch.rand(*x.shape)  # RandomNoise: every sample
    if torch.rand(1).item() <= p:
        x = _intensity(x, (9 / 10, 10 / 9), (-0.05, 0.05), per_frame=True)
    if torch.rand(1).item() <= p:
        x = _intensity(x, (4 / 5, 5 / 4), (-0.1, 0.1), per_frame=False)
    return x


class ReferenceDataset(Dataset):
    """tarrow's `TarrowDataset` (2 frames, mode "flip"): one item = an augmented (2, 1, P, P) crop
    pair and its label."""

    def __init__(
        self,
        movie: np.ndarray,
        patch: int = 96,
        deltas: tuple[int, ...] = (1,),
        augment: bool = True,
        reject_background: bool = False,
    ) -> None:
        # (T, 1, Y, X)
        imgs = np.stack([_percentile_normalize(f) for f in np.asarray(movie, np.float32)])[:, None]
        imgs = torch.as_tensor(imgs)
        # (2, 1, Y, X) views
        self.sequences = [imgs[t : t + d + 1 : d] for d in deltas for t in range(len(imgs) - d)]
        self.patch, self.augment, self.reject_background = patch, augment, reject_background

    def __len__(self) -> int:
        return len(self.sequences)

    def _random_crop(self, x: torch.Tensor) -> torch.Tensor:
        """torchvision `RandomCrop(patch, padding_mode="reflect", pad_if_needed=True)` for frames >=
        patch."""
        h, w = x.shape[-2:]
        i = int(torch.randint(0, h - self.patch + 1, (1,)))
        j = int(torch.randint(0, w - self.patch + 1, (1,)))
        return x[..., i : i + self.patch, j : j + self.patch]

    def _crop(self, x: torch.Tensor, threshold: float = 0.02, tries: int = 10) -> torch.Tensor:
        """A random crop; with background rejection, up to `tries` until the median-filtered crop
        varies enough."""
        for _ in range(tries if self.reject_background else 1):
            out = self._random_crop(x)
            if not self.reject_background:
                return out
            smooth = ndi.median_filter(np.clip(out[:, 0].numpy(), -1, 1), size=(2, 3, 3))
            if smooth.std() > threshold:
                return out
        return out

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._crop(self.sequences[idx])
        label = torch.randint(0, 2, (1,))[0]
        if label == 1:
            x = torch.flip(x, dims=(0,))
        return (reference_augment(x) if self.augment else x), label


def _one_thread(_: int) -> None:
    """DataLoader worker init: one torch thread per worker, as on a 2-core machine with 2
    workers."""
    torch.set_num_threads(1)


def reference_loader(
    dataset: Dataset,
    batch_size: int = 128,
    num_workers: int = 2,
    n_samples: int = 100_000,
    seed: int = 0,
) -> DataLoader:
    """tarrow `scripts/train.py::_create_loader`: random sampling with replacement, persistent
    workers."""
    sampler = RandomSampler(
        dataset,
        replacement=True,
        num_samples=n_samples,
        generator=torch.Generator().manual_seed(seed),
    )
    return DataLoader(
        dataset,
        sampler=sampler,
        batch_size=batch_size,
        num_workers=num_workers,
        drop_last=False,
        persistent_workers=num_workers > 0,
        worker_init_fn=_one_thread if num_workers > 0 else None,
    )
