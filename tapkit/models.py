"""The TAP network: a 2D U-Net backbone, a 1x1 projection head and a time-equivariant classifier.

Faithful to the reference time-arrow-prediction code (Gallusser et al. 2023):

    x (B, T, 1, Y, X) --U-Net--> (B*T, C, Y, X) --1x1 conv + BN--> z (B, T, F, Y, X)
      --TimeArrowHead (permutation-equivariant over T)--> logits (B, T)

The dense projections `z` are the self-supervised features used downstream.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .movie import InputError

__all__ = ["ConvBlock", "UNet", "EquivariantLayer", "TimeArrowHead", "TAPNet", "count_parameters"]


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by BatchNorm and LeakyReLU: (N, C_in, Y, X) -> (N, C_out, Y, X)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.1, inplace=True),
        )


class UNet(nn.Module):
    """2D U-Net: `n_depth` max-pool steps, filters base*2**level, nearest up-sampling, concatenated skips."""

    def __init__(self, in_channels: int = 1, out_channels: int = 32, n_depth: int = 3,
                 base_filters: int = 32) -> None:
        super().__init__()
        if n_depth < 1 or base_filters < 1 or out_channels < 1 or in_channels < 1:
            raise InputError(
                f"UNet: n_depth={n_depth}, base_filters={base_filters}, in/out channels="
                f"{in_channels}/{out_channels} must all be >= 1 (the reference uses n_depth=3, base_filters=32)."
            )
        self.n_depth = n_depth
        widths = [base_filters * 2**i for i in range(n_depth + 1)]  # e.g. 32, 64, 128, 256
        self.down = nn.ModuleList()
        prev = in_channels
        for w in widths[:-1]:
            self.down.append(ConvBlock(prev, w))
            prev = w
        self.bottom = ConvBlock(widths[-2], widths[-1])
        self.up = nn.ModuleList(ConvBlock(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(n_depth)))
        self.out = nn.Conv2d(widths[0], out_channels, 1)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Pad (N, C, Y, X) at the bottom/right to a multiple of 2**n_depth (reflect where possible)."""
        k = 2**self.n_depth
        ny, nx = x.shape[-2:]
        py, px = (-ny) % k, (-nx) % k
        if py or px:
            mode = "reflect" if (py < ny and px < nx) else "replicate"
            x = F.pad(x, (0, px, 0, py), mode=mode)
        return x, (ny, nx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, Y, X) -> (N, C_out, Y, X) for any Y, X."""
        x, (ny, nx) = self._pad(x)
        skips = []
        for block in self.down:
            x = block(x)  # (N, w_i, Y_i, X_i)
            skips.append(x)
            x = F.max_pool2d(x, 2)  # (N, w_i, Y_i / 2, X_i / 2)
        x = self.bottom(x)  # (N, w_n, Y / 2**n, X / 2**n)
        for block, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(torch.cat([x, skip], dim=1))  # (N, w_i, Y_i, X_i)
        return self.out(x)[..., :ny, :nx]  # (N, C_out, Y, X)


class EquivariantLayer(nn.Module):
    """Permutation-equivariant 1x1 layer over frame slots: y_t = L(x_t) + mean_s G(x_s)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.local = nn.Conv2d(in_features, out_features, 1)
        self.shared = nn.Conv2d(in_features, out_features, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C_in, Y, X) -> (B, T, C_out, Y, X)."""
        b, t = x.shape[:2]
        flat = x.flatten(0, 1)  # (B*T, C_in, Y, X)
        loc = self.local(flat).unflatten(0, (b, t))  # (B, T, C_out, Y, X)
        glob = self.shared(flat).unflatten(0, (b, t)).mean(1, keepdim=True)  # (B, 1, C_out, Y, X)
        return loc + glob


class TimeArrowHead(nn.Module):
    """Time-equivariant classifier: (B, T, F, Y, X) -> logits (B, T); swapping frames swaps logits."""

    def __init__(self, in_features: int, features: int = 64, n_depth: int = 1) -> None:
        super().__init__()
        layers, prev = [], in_features
        for _ in range(n_depth):
            layers.append(nn.ModuleDict(dict(
                eq=EquivariantLayer(prev, features), norm=nn.BatchNorm2d(features))))
            prev = features
        self.blocks = nn.ModuleList(layers)
        self.act = nn.LeakyReLU(0.1)
        self.last = EquivariantLayer(prev, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T, F, Y, X) -> (B, T) logits, one per frame slot."""
        h = z
        for block in self.blocks:
            h = block["eq"](h)  # (B, T, C, Y, X)
            # batch norm with statistics pooled over all B*T slots keeps the layer equivariant
            h = self.act(block["norm"](h.flatten(0, 1)).unflatten(0, h.shape[:2]))
        h = h.mean(dim=(-2, -1), keepdim=True)  # (B, T, C, 1, 1) spatial average pooling
        return self.last(h).flatten(2).squeeze(2)  # (B, T)


class TAPNet(nn.Module):
    """Time arrow prediction network: U-Net backbone + 1x1 projection (dense features z) + equivariant head."""

    def __init__(self, n_depth: int = 3, base_filters: int = 32, n_features: int = 32,
                 backbone_features: int = 32, head_features: int = 64, head_depth: int = 1,
                 in_channels: int = 1, seed: int | None = None) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(
            n_depth=n_depth, base_filters=base_filters, n_features=n_features,
            backbone_features=backbone_features, head_features=head_features,
            head_depth=head_depth, in_channels=in_channels, seed=seed)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)  # PyTorch default (Kaiming-uniform) init, reproducible
            self.backbone = UNet(in_channels, backbone_features, n_depth, base_filters)
            self.projection = nn.Sequential(nn.Conv2d(backbone_features, n_features, 1),
                                            nn.BatchNorm2d(n_features))
            self.head = TimeArrowHead(n_features, head_features, head_depth)

    @property
    def n_features(self) -> int:
        """Number of channels F of the dense representation z."""
        return int(self.config["n_features"])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Dense TAP features: (N, 1, Y, X) -> (N, F, Y, X)."""
        if x.ndim != 4:
            raise InputError(f"TAPNet.embed expects (N, C, Y, X) images, got shape {tuple(x.shape)}; "
                             "add the channel axis with x[:, None].")
        return self.projection(self.backbone(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 1, Y, X) -> (logits (B, T), z (B, T, F, Y, X))."""
        if x.ndim != 5:
            raise InputError(f"TAPNet expects (B, T, C, Y, X) frame stacks, got shape {tuple(x.shape)}; "
                             "a pair of (Y, X) frames becomes torch.stack([f0, f1])[None, :, None].")
        b, t = x.shape[:2]
        z = self.embed(x.flatten(0, 1)).unflatten(0, (b, t))  # (B, T, F, Y, X)
        return self.head(z), z


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
