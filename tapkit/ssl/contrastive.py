"""Contrastive + generative pretraining (TOWER-like, paper 003) on the shared U-Net.

    views v1, v2 (B, C, P, P) of the same place --U-Net + 1x1 projection--> z1, z2 (B, F, P, P)
      --global average pool--> (B, F) --MLP projector--> h1, h2 (B, D)
      --NT-Xent(temperature)--> L_con
    v1 with random square patches hidden (as in MIM `random`) --same encoder--> z
      --1x1 conv--> v1_hat --L1 on the hidden pixels--> L_rec
    L = w * L_con + lam * L_rec,  w = 0 for the first `warmup_steps` training steps, then 1

Choices (paper 003 is an abstract: it names three phases, "sample space diversification" by
reconstructive proxy tasks, contrastive representation learning, and correlated optimisation):
- views: two independent cheap transforms (random flip / 90° rotation, intensity scale and shift,
  Gaussian noise; batched, on the crops' device, drawn from the sampler's generator) of frame t
  (slot 0). With `temporal_positives=True` the views are the crops at t and t + delta as the sampler
  gives them (same place, same joint augmentation): the movie's own change is what the features must
  ignore, so nothing else is added.
- temperature 0.2 by default: SimCLR's best values are 0.1-0.5, lower for small batches; our
  batches are small (16-64 crops) and 0.2 is also TAP's decorrelation temperature.
- generative term: masked (not noised) reconstruction, mask patch 8 px and ratio 0.6 like
  MIM-random, so its loss is comparable with the MIM task; lam = 1 by default.
- warm-up ("sample space diversification"): the trainer does not tell a model its step, so the
  model counts its own training steps in the buffer `steps_done` (one per call of `loss` in training
  mode, saved in the state dict: a resumed run continues the count exactly). While
  steps_done < warmup_steps the contrastive term has weight 0 (it is still computed and reported).
  A fraction of the run is `warmup_steps = round(fraction * epochs * steps_per_epoch)`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from tapkit.data.movie import InputError
from tapkit.ssl.mim import (
    apply_mask,
    check_mask_options,
    check_mask_patch,
    masked_loss,
    random_mask,
)
from tapkit.ssl.pretext import PretextModel
from tapkit.validate import whole

__all__ = ["ContrastiveModel", "nt_xent", "random_views"]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """NT-Xent (SimCLR's InfoNCE) of projections z1, z2 (B, D): row i of z1 and of z2 are positives.

    Each of the 2B embeddings (unit length) must pick its partner among the 2B - 1 others:
    L = mean_i -log( exp(s_i,p(i) / T) / sum_{k != i} exp(s_ik / T) ),  s = cosine similarity.
    """
    if temperature <= 0:
        raise InputError(f"nt_xent: temperature={temperature} must be > 0 (SimCLR uses 0.1-0.5).")
    if z1.shape != z2.shape or z1.ndim != 2 or len(z1) < 2:
        raise InputError(
            f"nt_xent: z1 and z2 must both be (B, D) with B >= 2, got {tuple(z1.shape)} and "
            f"{tuple(z2.shape)}."
        )
    b = len(z1)
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # (2B, D)
    sim = z @ z.T / temperature  # (2B, 2B)
    # not itself
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)  # (2B,)
    return F.cross_entropy(sim, partner)


def random_views(
    x: torch.Tensor,
    generator: torch.Generator,
    scale: float = 0.3,
    shift: float = 0.1,
    noise: float = 0.05,
) -> torch.Tensor:
    """A random view of every image of x (B, C, P, P): flip / 90° rotation, intensity scale + shift,
    noise."""
    b, g = len(x), generator
    rand = lambda *shape: torch.rand(*shape, generator=g, device=g.device)  # noqa: E731
    # one of the 8 symmetries of the square
    k = torch.randint(0, 8, (b,), generator=g, device=g.device)
    variants = torch.stack(
        [torch.rot90(v, r, dims=(-2, -1)) for v in (x, x.flip(-1)) for r in range(4)]
    )
    x = variants[k, torch.arange(b, device=x.device)]  # (B, C, P, P)
    a = torch.exp((2 * rand(b, 1, 1, 1) - 1) * scale)
    c = (2 * rand(b, 1, 1, 1) - 1) * shift
    sigma = rand(b, 1, 1, 1) * noise
    return x * a + c + sigma * torch.randn(x.shape, generator=g, device=g.device)


class ContrastiveModel(PretextModel):
    """Contrastive (NT-Xent on pooled, projected features) + masked reconstruction on the shared
    encoder."""

    name = "contrastive"

    def __init__(
        self,
        n_depth: int = 3,
        base_filters: int = 32,
        n_features: int = 32,
        backbone_features: int = 32,
        in_channels: int = 1,
        seed: int | None = None,
        temperature: float = 0.2,
        lam: float = 1.0,
        temporal_positives: bool = False,
        warmup_steps: int = 0,
        projection_dim: int = 32,
        mask_patch: int = 8,
        mask_ratio: float = 0.6,
    ) -> None:
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not temperature > 0
        ):
            raise InputError(
                f"ContrastiveModel: temperature={temperature!r} must be > 0; use 0.1-0.5 "
                "(default 0.2)."
            )
        if not lam >= 0:
            raise InputError(
                f"ContrastiveModel: lam={lam!r} (the reconstruction weight) must be >= 0, e.g. 1.0."
            )
        whole(
            0,
            example=80,
            where="ContrastiveModel: ",
            hint=" (training steps of reconstruction only; 0 = no warm-up)",
        )("warmup_steps", warmup_steps)
        whole(1, example=128, where="ContrastiveModel: ")("projection_dim", projection_dim)
        check_mask_options(mask_patch, mask_ratio, "ContrastiveModel")
        super().__init__(
            n_depth,
            base_filters,
            n_features,
            backbone_features,
            in_channels,
            seed,
            temperature=float(temperature),
            lam=float(lam),
            temporal_positives=bool(temporal_positives),
            warmup_steps=warmup_steps,
            projection_dim=projection_dim,
            mask_patch=mask_patch,
            mask_ratio=mask_ratio,
        )

    def build_head(self, projection_dim: int, **_: Any) -> None:
        """MLP projector (F -> 2F -> D) of pooled features, mask token and 1x1 reconstruction
        head."""
        f = self.n_features
        self.projector = nn.Sequential(
            nn.Linear(f, 2 * f), nn.ReLU(inplace=True), nn.Linear(2 * f, projection_dim)
        )
        self.mask_token = nn.Parameter(torch.zeros(self.in_channels))
        self.reconstruct = nn.Conv2d(f, self.in_channels, 1)
        # training steps, for the warm-up
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def check_crop(self, patch: int) -> None:
        """Named error before training unless the mask patches tile a crop of `patch` px."""
        check_mask_patch(patch, self.config["mask_patch"], "ContrastiveModel")

    def make_batch(
        self, crops: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """{"view1", "view2": (B, C, P, P) positives, "mask": (B, 1, P, P) hidden patches of
        view1}."""
        if crops.ndim != 5 or crops.shape[2] != self.in_channels:
            raise InputError(
                f"ContrastiveModel.make_batch expects crops (B, 2, C={self.in_channels}, P, P), "
                f"got shape {tuple(crops.shape)}."
            )
        b, size = len(crops), crops.shape[-1]
        self.check_crop(size)
        if self.config["temporal_positives"]:
            v1, v2 = crops[:, 0], crops[:, 1]  # frames t and t + delta
        else:
            v1, v2 = random_views(crops[:, 0], generator), random_views(crops[:, 0], generator)
        mask = random_mask(b, size, self.config["mask_patch"], self.config["mask_ratio"], generator)
        return {"view1": v1, "view2": v2, "mask": mask}

    def contrastive_weight(self) -> torch.Tensor:
        """0 during the reconstructive warm-up (steps_done < warmup_steps), then
        1 (a tensor: no device sync)."""
        return (self.steps_done >= self.config["warmup_steps"]).float()

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """w * NT-Xent + lam * masked L1; metrics: contrastive, reconstruction, top1
        (partner found)."""
        v1, v2, mask = batch["view1"], batch["view2"], batch["mask"]
        b = len(v1)
        # (3B, F, P, P) one pass
        z = self.embed(torch.cat([v1, v2, apply_mask(v1, mask, self.mask_token)]))
        h = self.projector(z[: 2 * b].float().mean(dim=(-2, -1)))  # (2B, D) pooled and projected
        con = nt_xent(h[:b], h[b:], self.config["temperature"])
        rec = masked_loss(self.reconstruct(z[2 * b :]).float(), v1.float(), mask, "l1")
        weight = self.contrastive_weight()
        if self.training:
            self.steps_done += 1
        with torch.no_grad():
            hn = F.normalize(h.float(), dim=1)
            sim = hn[:b] @ hn[b:].T  # (B, B) view1 -> view2 similarities
            top1 = (sim.argmax(1) == torch.arange(b, device=sim.device)).float().mean()
        return weight * con + self.config["lam"] * rec, {
            "contrastive": con.detach(),
            "reconstruction": rec.detach(),
            "top1": top1,
        }
