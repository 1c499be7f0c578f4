"""The TAP loss: cross entropy on the time arrow plus a decorrelation penalty on the dense features.

    L = CE(logits, slot of the earliest frame) + lam * L_decorr(z)          (paper 001, eq. 4)
    L_decorr(z) = -1/C sum_i log a_ii,  a_ij = softmax_j(z_i . z_j / tau)    (paper 001, eq. 5)

with z_i the i-th feature channel (over all pixels), normalised to unit length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .movie import InputError

__all__ = ["decorrelation_loss", "tap_loss"]


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
