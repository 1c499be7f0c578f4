"""Masked image modelling (MIM, paper 002): hide square patches of a crop, rebuild their
intensities.

    x (B, C, P, P) --mask m (B, C, P, P), masked pixels -> a learned token per channel--> x_masked
    x_masked --U-Net + 1x1 projection--> z (B, F, P, P) --1x1 conv--> x_hat (B, C, P, P)
    L = mean over masked pixels of |x_hat - x|  (or (x_hat - x)**2)       loss on masked pixels ONLY

Three masking strategies (paper 002 names them; its text is an abstract, so the rules are ours):
- `random`: exactly round(mask_ratio * n) of the n patches, uniformly at random, the same for all
  channels;
- `intensity`: as many patches, drawn without replacement with probability proportional to
  exp(INTENSITY_SHARPNESS * s_j), s_j = the patch's mean intensity (over channels) standardised
  within its image: bright (foreground) patches are masked more often, so the network must rebuild
  cells rather than background, and the mask ratio stays exactly mask_ratio;
- `channel`: every channel gets its own independent random mask (C >= 2), so a hidden region of one
  channel can partly be read from the others (where all channels are hidden: from the context).

Choices the paper leaves open: one frame of each sampler pair is the image (slot 0, frame t; the
second frame is not used); masked pixels are replaced by a learned value per channel (SimMIM's mask
token; 0 would look like background after percentile normalisation); the reconstruction head reads
the dense features z, so the features used downstream are the ones trained; defaults
(8 px patches, ratio 0.6, L1) follow SimMIM.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn as nn

from tapkit.data.movie import InputError
from tapkit.ssl.pretext import PretextModel
from tapkit.validate import whole

__all__ = [
    "MaskedModel",
    "random_mask",
    "intensity_mask",
    "channel_mask",
    "masked_loss",
    "apply_mask",
    "check_mask_options",
    "check_mask_patch",
]

MASKINGS = ("random", "intensity", "channel")
LOSSES = ("l1", "l2")
INTENSITY_SHARPNESS = 2.0  # beta of the intensity rule: weight exp(beta * standardised patch mean)


def check_mask_options(mask_patch: Any, mask_ratio: Any, what: str) -> None:
    """Named errors for a mask patch that is not a whole number >= 1 or a ratio outside (0, 1)."""
    whole(1, example=8, where=f"{what}: ", hint=" (px)")("mask_patch", mask_patch)
    if (
        isinstance(mask_ratio, bool)
        or not isinstance(mask_ratio, (int, float))
        or not 0 < mask_ratio < 1
    ):
        raise InputError(
            f"{what}: mask_ratio={mask_ratio!r} must be a fraction in (0, 1), e.g. 0.6."
        )


def check_mask_patch(patch: int, mask_patch: int, what: str) -> None:
    """Named error unless square mask patches of `mask_patch` px tile a crop of `patch` px
    exactly."""
    if mask_patch > patch or patch % mask_patch:
        raise InputError(
            f"{what}: mask_patch={mask_patch} must divide the crop size patch={patch} "
            f"(and not exceed it); use e.g. mask_patch=8 with a patch that is a multiple of 8."
        )


def _patch_grid(size: int, patch: int, what: str) -> int:
    """Number of mask patches per side of a (size x size) crop."""
    check_mask_patch(size, patch, what)
    return size // patch


def _top_k_patches(
    log_weights: torch.Tensor, ratio: float, generator: torch.Generator
) -> torch.Tensor:
    """(B, n) -> bool (B, n): round(ratio * n) patches per row without replacement,
    P(j) ~ exp(log_weights_j)."""
    n = log_weights.shape[1]
    k = max(1, min(n, round(ratio * n)))
    u = torch.rand(log_weights.shape, generator=generator, device=generator.device).clamp(
        1e-12, 1 - 1e-7
    )
    # Gumbel top-k = weighted sampling without replacement
    keys = log_weights - torch.log(-torch.log(u))
    chosen = keys.topk(k, dim=1).indices
    return torch.zeros_like(keys, dtype=torch.bool).scatter_(1, chosen, True)


def _to_pixels(patches: torch.Tensor, grid: int, patch: int) -> torch.Tensor:
    """Patch flags (B, grid * grid) -> float pixel mask (B, 1, grid * patch, grid * patch)."""
    m = patches.view(-1, 1, grid, grid).float()
    return m.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)


def random_mask(
    batch: int, size: int, patch: int, ratio: float, generator: torch.Generator
) -> torch.Tensor:
    """(B, 1, size, size) mask, 1 = hidden: round(ratio * n) of the n square patches, uniformly at
    random."""
    grid = _patch_grid(size, patch, "random_mask")
    zeros = torch.zeros(batch, grid * grid, device=generator.device)
    return _to_pixels(_top_k_patches(zeros, ratio, generator), grid, patch)


def intensity_mask(
    images: torch.Tensor,
    patch: int,
    ratio: float,
    generator: torch.Generator,
    sharpness: float = INTENSITY_SHARPNESS,
) -> torch.Tensor:
    """(B, 1, P, P) mask of images (B, C, P, P): bright patches hidden more often
    (weight exp(sharpness * s_j))."""
    grid = _patch_grid(images.shape[-1], patch, "intensity_mask")
    # (B, n)
    means = torch.nn.functional.avg_pool2d(images.float().mean(1, keepdim=True), patch).flatten(1)
    s = (means - means.mean(1, keepdim=True)) / means.std(1, keepdim=True).clamp(min=1e-6)
    return _to_pixels(_top_k_patches(sharpness * s, ratio, generator), grid, patch)


def channel_mask(
    batch: int, channels: int, size: int, patch: int, ratio: float, generator: torch.Generator
) -> torch.Tensor:
    """(B, C, size, size) mask with an independent random mask per channel (needs C >= 2)."""
    if channels < 2:
        raise InputError(
            f"channel_mask: channel-separated masking needs >= 2 channels, got {channels}; "
            "use masking='random' or 'intensity' for single-channel movies."
        )
    m = random_mask(batch * channels, size, patch, ratio, generator)  # (B*C, 1, P, P)
    return m.view(batch, channels, size, size)


def masked_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str = "l1"
) -> torch.Tensor:
    """Mean L1 (or L2) error over the masked pixels only (mask 1 = hidden, broadcast to pred's
    shape)."""
    error = (pred - target).abs() if kind == "l1" else (pred - target) ** 2
    mask = mask.expand_as(error)
    return (error * mask).sum() / mask.sum().clamp(min=1)


def apply_mask(x: torch.Tensor, mask: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """x (B, C, Y, X) with the hidden pixels (mask 1) replaced by the per-channel value token
    (C,)."""
    return x * (1 - mask) + token.view(1, -1, 1, 1) * mask


def masked_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR in dB over the masked pixels, for images normalised to ~[0, 1] (peak 1)."""
    mse = masked_loss(pred.detach().float(), target.float(), mask, "l2")
    return -10 * torch.log10(mse.clamp(min=1e-10))


class MaskedModel(PretextModel):
    """Masked image modelling: the shared encoder + a 1x1 head that rebuilds the hidden
    intensities."""

    name = "mim"

    def __init__(
        self,
        n_depth: int = 3,
        base_filters: int = 32,
        n_features: int = 32,
        backbone_features: int = 32,
        in_channels: int = 1,
        seed: int | None = None,
        masking: Literal["random", "intensity", "channel"] = "random",
        mask_patch: int = 8,
        mask_ratio: float = 0.6,
        loss: Literal["l1", "l2"] = "l1",
    ) -> None:
        check_mask_options(mask_patch, mask_ratio, "MaskedModel")
        if masking not in MASKINGS:
            raise InputError(f"MaskedModel: masking={masking!r}; use one of {MASKINGS}.")
        if loss not in LOSSES:
            raise InputError(f"MaskedModel: loss={loss!r}; use 'l1' (SimMIM) or 'l2' (MAE).")
        if masking == "channel" and in_channels < 2:
            raise InputError(
                f"MaskedModel: masking='channel' needs multi-channel input, but in_channels="
                f"{in_channels}; use a two-channel movie (simulate_two_channel) with "
                "in_channels=2, or masking='random' / 'intensity'."
            )
        super().__init__(
            n_depth,
            base_filters,
            n_features,
            backbone_features,
            in_channels,
            seed,
            masking=masking,
            mask_patch=mask_patch,
            mask_ratio=mask_ratio,
            loss=loss,
        )

    def build_head(self, **_: Any) -> None:
        """The mask token (one learned value per channel) and the 1x1 reconstruction head
        z -> x_hat."""
        self.mask_token = nn.Parameter(torch.zeros(self.in_channels))
        self.reconstruct = nn.Conv2d(self.n_features, self.in_channels, 1)

    def check_crop(self, patch: int) -> None:
        """Named error before training unless the mask patches tile a crop of `patch` px."""
        check_mask_patch(patch, self.config["mask_patch"], "MaskedModel")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Reconstruction (B, C, Y, X) of images x (B, C, Y, X) from their unmasked pixels
        (mask 1 = hidden)."""
        return self.reconstruct(self.embed(apply_mask(x, mask, self.mask_token)))

    def make_mask(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The mask of images x (B, C, P, P) for this model's strategy: (B, 1 or C, P, P),
        1 = hidden."""
        b, c, size = x.shape[0], x.shape[1], x.shape[-1]
        patch, ratio = self.config["mask_patch"], self.config["mask_ratio"]
        self.check_crop(size)
        if self.config["masking"] == "intensity":
            return intensity_mask(x, patch, ratio, generator)
        if self.config["masking"] == "channel":
            return channel_mask(b, c, size, patch, ratio, generator)
        return random_mask(b, size, patch, ratio, generator)

    def make_batch(
        self, crops: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Frame t of each pair (slot 0) is the image; {"x": (B, C, P, P), "mask":
        (B, 1 or C, P, P)}."""
        if crops.ndim != 5 or crops.shape[2] != self.in_channels:
            raise InputError(
                f"MaskedModel.make_batch expects crops (B, 2, C={self.in_channels}, P, P), got "
                f"shape {tuple(crops.shape)}; channel-separated masking needs a multi-channel "
                "movie."
            )
        x = crops[:, 0]  # (B, C, P, P) frame t
        return {"x": x, "mask": self.make_mask(x, generator)}

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Masked-pixel L1/L2 loss; metrics: PSNR (dB) of the reconstruction on the masked
        pixels."""
        x, mask = batch["x"], batch["mask"]
        pred = self(x, mask).float()  # (B, C, P, P)
        total = masked_loss(pred, x.float(), mask, self.config["loss"])
        return total, {"psnr": masked_psnr(pred, x, mask)}
