"""The shared backbone of every pretext task: a 2D U-Net, (N, C_in, Y, X) -> (N, C_out, Y, X)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from tapkit.data.movie import InputError

__all__ = ["ConvBlock", "UNet", "count_parameters"]


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by BatchNorm and LeakyReLU:
    (N, C_in, Y, X) -> (N, C_out, Y, X)."""

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
    """2D U-Net: `n_depth` max-pool steps, filters base*2**level, nearest up-sampling, concatenated
    skips."""

    def __init__(
        self, in_channels: int = 1, out_channels: int = 32, n_depth: int = 3, base_filters: int = 32
    ) -> None:
        super().__init__()
        if n_depth < 1 or base_filters < 1 or out_channels < 1 or in_channels < 1:
            raise InputError(
                f"UNet: n_depth={n_depth}, base_filters={base_filters}, in/out channels="
                f"{in_channels}/{out_channels} must all be >= 1 (the reference uses n_depth=3, "
                "base_filters=32)."
            )
        self.n_depth = n_depth
        widths = [base_filters * 2**i for i in range(n_depth + 1)]  # e.g. 32, 64, 128, 256
        self.down = nn.ModuleList()
        prev = in_channels
        for w in widths[:-1]:
            self.down.append(ConvBlock(prev, w))
            prev = w
        self.bottom = ConvBlock(widths[-2], widths[-1])
        self.up = nn.ModuleList(
            ConvBlock(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(n_depth))
        )
        self.out = nn.Conv2d(widths[0], out_channels, 1)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Pad (N, C, Y, X) at the bottom/right to a multiple of 2**n_depth
        (reflect where possible)."""
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


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
