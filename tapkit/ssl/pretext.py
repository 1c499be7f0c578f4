"""The pretext-task contract: what a self-supervised task says so that `tapkit.ssl.trainer` can
train it.

Every pretext task is an `nn.Module` subclass of `PretextModel`:

    backbone (the shared U-Net) + projection (1x1 conv + BN)  ->  dense features z (N, F, Y, X)
                                                                                           [`embed`]
    + its own head                                                  (the part that differs per task)
    make_batch(crops (B, 2, C, P, P) frames t, t + delta, generator) -> dict of tensors
                                                                                   [inputs, targets]
    loss(batch) -> (total loss, {metric name: scalar tensor})                       [under autocast]

The sampler draws augmented crops at the same place from frames t and t + delta, in time order;
each task turns them into its own batch (TAP flips the order; masked modelling masks patches; a
contrastive task pairs views). The trainer does the rest for every task alike: optimiser and
schedule, mixed precision, atomic checkpoints and exact resume, history, progress bars.

A new task is a module with a `PretextModel` subclass and one line in `PRETEXTS` below.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

import torch
import torch.nn as nn

from tapkit.data.movie import InputError
from tapkit.ssl.backbone import UNet

# pretext name -> "module:class"; imported on first use, so this table is the only place that
# lists tasks
PRETEXTS: dict[str, str] = {
    "tap": "tapkit.ssl.tap:TAPNet",
    "mim": "tapkit.ssl.mim:MaskedModel",
    "contrastive": "tapkit.ssl.contrastive:ContrastiveModel",
}


class PretextModel(nn.Module):
    """The shared encoder of every pretext task (U-Net + 1x1 projection to F dense features) and the
    contract."""

    name: ClassVar[str] = ""

    def __init__(
        self,
        n_depth: int = 3,
        base_filters: int = 32,
        n_features: int = 32,
        backbone_features: int = 32,
        in_channels: int = 1,
        seed: "int | None" = None,
        **options: Any,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(
            n_depth=n_depth,
            base_filters=base_filters,
            n_features=n_features,
            backbone_features=backbone_features,
            in_channels=in_channels,
            seed=seed,
            **options,
        )
        # pixel binning of the training movies, set by the trainer / loader
        self.binning: "int | None" = None
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)  # PyTorch default (Kaiming-uniform) init, reproducible
            self.backbone = UNet(in_channels, backbone_features, n_depth, base_filters)
            self.projection = nn.Sequential(
                nn.Conv2d(backbone_features, n_features, 1), nn.BatchNorm2d(n_features)
            )
            self.build_head(**options)

    @property
    def n_features(self) -> int:
        """Number of channels F of the dense representation z."""
        return int(self.config["n_features"])

    @property
    def in_channels(self) -> int:
        """Number of image channels C the backbone reads."""
        return int(self.config["in_channels"])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Dense features: (N, C, Y, X) -> (N, F, Y, X); the same for every pretext task."""
        if x.ndim != 4:
            raise InputError(
                f"{type(self).__name__}.embed expects (N, C, Y, X) images, got shape "
                f"{tuple(x.shape)}; add the channel axis with x[:, None]."
            )
        return self.projection(self.backbone(x))

    def build_head(self, **options: Any) -> None:
        """Create the task's own modules (called inside the seeded block of __init__)."""
        raise NotImplementedError

    def check_crop(self, patch: int) -> None:
        """Raise InputError if this task cannot use crops of `patch` px (called by `train` before
        anything else)."""

    def make_batch(
        self, crops: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Turn sampler crops (B, 2, C, P, P) (frames t, t + delta) into this task's inputs and
        targets."""
        raise NotImplementedError

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total loss, {metric: scalar tensor}) for one batch; metrics are batch means."""
        raise NotImplementedError


def pretext_class(name: str) -> type[PretextModel]:
    """The PretextModel subclass registered as `name` in PRETEXTS."""
    if name not in PRETEXTS:
        raise InputError(
            f"pretext={name!r} is not a known pretext task; use one of {sorted(PRETEXTS)}."
        )
    module, cls = PRETEXTS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(pretext: str, **config: Any) -> PretextModel:
    """A new model of the pretext task `pretext` with `config` (model sizes, seed and task
    options)."""
    cls = pretext_class(pretext)
    try:
        return cls(**config)
    except TypeError as err:
        raise InputError(
            f"pretext {pretext!r}: {err}. Check the model options (model_kwargs)."
        ) from err
