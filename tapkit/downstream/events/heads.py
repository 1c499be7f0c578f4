"""The event heads: modules that map a pair of dense features to 2 logits (no event / event).

    crop pair (B, 2, S, S) --encoder.embed--> z (B, 2, F, S, S) --head--> logits (B, 2)

LinearHead (paper strategy digit 0) and ResNetHead (digit 1, App. C / Fig. 7), and EventClassifier,
which puts a head on an encoder. Training lives in fit.py, the strategies A0..C1 in experiments.py.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LinearHead(nn.Module):
    """One linear map on features averaged over time and space: (B, 2, F, S, S) -> (B, 2) logits.

    Why pooled, not flattened: a flattened map would have 2*F*S*S (~150k) weights per class and
    learn *where* in the crop an event sits, overfitting small label sets; the average keeps F + 1
    weights per class and, like the ResNet head, is invariant to swapping the frames. The features
    are standardised first (a fixed affine map at inference), so the whole head stays one linear
    map.
    """

    def __init__(self, n_features: int = 32) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(n_features, affine=False)
        self.fc = nn.Linear(n_features, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 2, F, S, S) -> (B, 2)."""
        pooled = z.mean(dim=(1, 3, 4))  # (B, F) mean over time and space
        return self.fc(self.norm(pooled))


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the identity shortcut, then ReLU: (N, C, Y, X) -> (N, C, Y, X)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, Y, X) -> (N, C, Y, X)."""
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(h)))


class ResNetHead(nn.Module):
    """Paper App. C: one conv layer, one residual block per frame, temporal mean, global pool,
    2 logits.

    (B, 2, F, S, S) -> conv 3x3 stride 2 -> residual block
    -> mean over the 2 frames (time invariant)
    -> global average pool -> linear -> (B, 2). Stride 2 halves S to keep the head cheap.
    """

    def __init__(self, n_features: int = 32, width: int = 32, stride: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(n_features, width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.block = ResidualBlock(width)
        self.fc = nn.Linear(width, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 2, F, S, S) -> (B, 2)."""
        b, t = z.shape[:2]
        h = self.block(self.stem(z.flatten(0, 1)))  # (B*2, W, S/2, S/2)
        h = h.unflatten(0, (b, t)).mean(dim=1)  # (B, W, S/2, S/2) temporal mean pooling
        return self.fc(h.mean(dim=(-2, -1)))  # (B, W) -> (B, 2)


class EventClassifier(nn.Module):
    """Encoder + head on a crop pair: images (B, 2, S, S) -> logits (B, 2).

    The encoder is any model with an `embed` method (N, 1, S, S) -> (N, F, S, S), e.g. a TAPNet.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 2, S, S) -> z (B, 2, F, S, S)."""
        b, t = images.shape[:2]
        return self.encoder.embed(images.flatten(0, 1)[:, None]).unflatten(0, (b, t))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 2, S, S) -> (B, 2)."""
        return self.head(self.features(images))


def make_event_head(kind: str, n_features: int, seed: int) -> nn.Module:
    """An event head on a pair's features: a LinearHead ('linear') or ResNetHead ('resnet'), weights
    drawn from `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return LinearHead(n_features) if kind == "linear" else ResNetHead(n_features)


make_head = make_event_head  # the name notebook 04 calls
