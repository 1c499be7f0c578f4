"""Per-pixel heads on dense features, and a segmentation network = encoder + head (nn.Modules only).

features z (N, F, Y, X) --head--> logits (N, 1, Y, X)
    frozen features: only the head learns
images   x (N, 1, Y, X) --encoder.embed--> z --head--> logits
    fine-tuning / from scratch: all learns
frames   x (N, k, Y, X) --encoder.embed of each--> k z side by side --head--> logits
    (ContextSegmentationNet)
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from tapkit.data.movie import InputError

HEADS = ("linear", "conv")


class PixelLinearHead(nn.Module):
    """A 1x1 convolution: one linear map of the F features at each pixel, (N, F, Y, X) ->
    (N, 1, Y, X)."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_features, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, F, Y, X) -> (N, 1, Y, X) logits."""
        return self.conv(z)


class ConvHead(nn.Sequential):
    """Two 3x3 conv + ReLU layers and a 1x1 output: a small context of 5x5 px, (N, F, Y, X) ->
    (N, 1, Y, X)."""

    def __init__(self, n_features: int, hidden: int = 16) -> None:
        super().__init__(
            nn.Conv2d(n_features, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
        )


def make_pixel_head(kind: str, n_features: int, seed: int = 0) -> nn.Module:
    """A per-pixel segmentation head: 'linear' (1x1 conv) or 'conv' (small conv head), initialised
    from `seed`."""
    if kind not in HEADS:
        raise InputError(f"head={kind!r}: use one of {', '.join(HEADS)}.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return PixelLinearHead(n_features) if kind == "linear" else ConvHead(n_features)


def fresh_encoder(
    model: nn.Module, seed: int, movie: "Any | None" = None, n_frames: int = 8
) -> nn.Module:
    """The same architecture as a pretrained PretextModel, newly initialised from `seed`
    (random / from scratch).

    With `movie` (a Movie or (T, Y, X) frames): the frozen random baseline, its BatchNorm statistics
    measured on n_frames frames spread over the movie (ssl.features.calibrate_batchnorm: no labels,
    no weight changes), so its features are normalised at every layer as a trained encoder's are.
    Without: a network to train.
    """
    encoder = type(model)(**{**model.config, "seed": int(seed)}).float()
    if movie is not None:
        from tapkit.ssl.features import prepare_frames

        # (T, Y, X) normalised per frame, as embed sees them
        calibrate_encoder(encoder, prepare_frames(movie), n_frames)
    return encoder


def calibrate_encoder(
    encoder: nn.Module, frames: "np.ndarray | torch.Tensor", n_frames: int = 8
) -> nn.Module:
    """BatchNorm statistics of `n_frames` of the normalised frames (T, Y, X) or (T, 1, Y, X), spread
    over them; eval mode.

    In eval mode a network normalises with its running statistics; a new one's (mean 0, variance 1)
    or a briefly trained one's (a few steps of momentum 0.1 from them) shrink its features layer by
    layer to ~1e-3, and every head on them predicts one constant map. No labels, no gradients, no
    weight changes.
    """
    from tapkit.ssl.features import calibrate_batchnorm

    x = torch.as_tensor(
        np.asarray(frames, dtype=np.float32) if not isinstance(frames, torch.Tensor) else frames
    )
    x = x if x.ndim == 4 else x[:, None]  # (T, 1, Y, X)
    pick = np.unique(np.linspace(0, len(x) - 1, min(n_frames, len(x))).round().astype(int))
    multiple = 2 ** int(encoder.config["n_depth"])
    ny, nx = (s - s % multiple for s in x.shape[2:])  # whole pooling cells
    return calibrate_batchnorm(encoder, x[pick, :, :ny, :nx], batch_size=2)


class SegmentationNet(nn.Module):
    """An encoder (used through `embed`) and a head: (N, 1, Y, X) images -> (N, 1, Y, X) logits."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = copy.deepcopy(encoder).float(), head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, Y, X) -> (N, 1, Y, X) logits."""
        return self.head(self.encoder.embed(x))

    def trainable(self) -> list[nn.Parameter]:
        """Encoder (backbone + projection) and head parameters; the pretext task's own head is left
        out."""
        enc = [*self.encoder.backbone.parameters(), *self.encoder.projection.parameters()]
        return enc + list(self.head.parameters())


class ContextSegmentationNet(SegmentationNet):
    """One encoder applied to each of k frames (shared weights), features side by side, one head:
    (N, k, Y, X) images -> (N, 1, Y, X) logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, k, Y, X) -> (N, 1, Y, X) logits."""
        n, k = x.shape[:2]
        z = self.encoder.embed(x.reshape(n * k, 1, *x.shape[2:]))  # (N k, F, Y, X)
        return self.head(z.reshape(n, k * z.shape[1], *z.shape[2:]))
