"""The time-arrow pretext task (TAP): a time-equivariant head on the U-Net, and its loss.

    x (B, T, 1, Y, X) --U-Net--> (B*T, C, Y, X) --1x1 conv + BN--> z (B, T, F, Y, X)
      --TimeArrowHead (permutation-equivariant over T)--> logits (B, T)

    L = CE(logits, slot of the earliest frame) + lam * L_decorr(z)          (paper 000, eq. 4)
    L_decorr(z) = -1/C sum_i log a_ii,  a_ij = softmax_j(z_i . z_j / tau)    (paper 000, eq. 5)

with z_i the i-th feature channel (over all pixels), normalised to unit length.
The dense projections `z` are the self-supervised features used downstream.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from tapkit.data.movie import InputError
from tapkit.ssl.backbone import UNet

__all__ = ["EquivariantLayer", "TimeArrowHead", "TAPNet", "decorrelation_loss", "tap_loss"]


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


def decorrelation_loss(z: torch.Tensor, tau: float = 0.2) -> torch.Tensor:
    """Mean over samples of -mean_i log softmax_j(z_i . z_j / tau)_ii for z (..., F, Y, X); minimal if channels orthogonal."""
    if z.ndim < 3:
        raise InputError(f"decorrelation_loss expects features (..., F, Y, X), got shape {tuple(z.shape)}.")
    if tau <= 0:
        raise InputError(f"decorrelation_loss: tau must be > 0, got {tau} (the paper uses 0.2).")
    zf = z.float().flatten(-2)  # (..., F, N) channels over pixels, float32 even under autocast
    zf = zf.reshape(-1, *zf.shape[-2:])  # (S, F, N) one matrix per sample (and frame)
    zf = F.normalize(zf, dim=-1)  # unit-length channels
    corr = zf @ zf.transpose(-1, -2) / tau  # (S, F, F)
    log_a = F.log_softmax(corr, dim=-1)
    return -torch.diagonal(log_a, dim1=-2, dim2=-1).mean()


def tap_loss(logits: torch.Tensor, target: torch.Tensor, z: torch.Tensor, lam: float = 0.01,
             tau: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, ce, decorr) for logits (B, T), target (B,) = slot of the earliest frame, z (B, T, F, Y, X)."""
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise InputError(f"tap_loss: logits must be (B, T) and target (B,), got {tuple(logits.shape)} "
                         f"and {tuple(target.shape)}.")
    ce = F.cross_entropy(logits.float(), target.long())
    decorr = decorrelation_loss(z, tau=tau)
    return ce + lam * decorr, ce, decorr
