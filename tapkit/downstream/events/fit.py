"""ONE training loop for event heads and classifiers, and the cache of frozen features.

fit() trains any module on inputs: a head on cached features (N, 2, F, S, S) for frozen backbones,
or a whole EventClassifier on images (N, 2, S, S) when everything is trained end to end.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from tapkit.downstream.events.crops import CropPairs
from tapkit.downstream.events.heads import EventClassifier
from tapkit.runtime import autocast, pick_device


def _batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 64) -> None:
    """Recompute every trainable BatchNorm's running statistics for the final weights, on inputs x.

    The running averages collected during training mix statistics of old weights; after a short
    fine-tuning they can be far off and the model then predicts one class in eval mode.
    """
    norms = [m for m in _batchnorms(module) if m.training or any(p.requires_grad for p in m.parameters())]
    if not norms or len(x) < 2:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # exact average over the batches below
    module.train()
    for i in range(0, len(x) - 1, batch_size):
        with autocast(device):
            module(x[i:i + batch_size].to(device).float())
    for m in norms:
        m.momentum = 0.1


@torch.inference_mode()
def compute_features(encoder: nn.Module, images: np.ndarray, device: "str | torch.device" = "auto",
                     batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """Features of crop pairs, (N, 2, S, S) -> (N, 2, F, S, S) float16, kept on the device."""
    device = pick_device(device, verbose=False) if not isinstance(device, torch.device) else device
    encoder = encoder.to(device).eval()
    model = EventClassifier(encoder, nn.Identity())  # features only
    out = []
    for i in tqdm(range(0, len(images), batch_size), desc="features", disable=not progress, leave=False):
        x = torch.as_tensor(images[i:i + batch_size], device=device)  # (b, 2, S, S)
        with autocast(device):
            out.append(model.features(x).half())  # (b, 2, F, S, S)
    return torch.cat(out)


def cached_features(cache: dict | None, key: Any, encoder: nn.Module, pairs: CropPairs, index: np.ndarray,
                    device: torch.device) -> torch.Tensor:
    """Features of pairs[index]; cache[key] = (sorted indices, features) grows by the missing pairs only."""
    have, feats = cache.get(key, (np.zeros(0, np.int64), None)) if cache is not None else (np.zeros(0, np.int64), None)
    missing = np.setdiff1d(index, have)
    if len(missing):
        new = compute_features(encoder, pairs.images[missing], device)
        have, order = np.unique(np.concatenate([have, missing]), return_index=True)
        feats = new if feats is None else torch.cat([feats, new])
        feats = feats[torch.as_tensor(order, device=feats.device)]
        if cache is not None:
            cache[key] = (have, feats)
    return feats[torch.as_tensor(np.searchsorted(have, index), device=feats.device)]


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches; a last batch of one sample is dropped (batch norm needs two)."""
    perm = torch.randperm(n, generator=generator)
    out = list(perm.split(batch_size))
    return out[:-1] if len(out) > 1 and len(out[-1]) == 1 else out


@torch.inference_mode()
def predict(module: nn.Module, inputs: torch.Tensor, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Logits (N, 2) float32 of a head (on features) or a classifier (on images), batched."""
    module.eval()
    out = []
    for i in range(0, len(inputs), batch_size):
        with autocast(device):
            out.append(module(inputs[i:i + batch_size].to(device).float()).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 2), np.float32)


def fit(module: nn.Module, params: Sequence[nn.Parameter], x: torch.Tensor, y: np.ndarray, x_val: torch.Tensor,
        y_val: np.ndarray, epochs: int, seed: int, device: torch.device, batch_size: int = 32, lr: float = 1e-3,
        track_val: bool = False) -> tuple[dict, np.ndarray]:
    """Adam on `params` + cross-entropy for `epochs`; returns the history and the final validation logits.

    module maps x (N, ...) to logits (N, 2); params: what the optimiser sees (the strategy decides).
    track_val: evaluate on the validation set after every epoch (else only after the last one).
    """
    module.to(device)
    opt = torch.optim.Adam(list(params), lr=lr)
    gen, yt = torch.Generator().manual_seed(int(seed)), torch.as_tensor(y, device=device)
    hist: dict[str, list[float]] = {"train_loss": [], "val_epoch": [], "val_loss": [], "val_accuracy": []}
    for epoch in range(epochs):
        module.train()
        losses = []
        for b in _batches(len(x), batch_size, gen):
            with autocast(device):
                loss = F.cross_entropy(module(x[b.to(x.device)].to(device).float()).float(), yt[b.to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        hist["train_loss"].append(float(np.mean(losses)))
        if not track_val and epoch < epochs - 1:
            continue
        recalibrate_batchnorm(module, x, device)  # running statistics of the current weights
        val = predict(module, x_val, device)
        hist["val_epoch"].append(epoch + 1)
        hist["val_loss"].append(float(F.cross_entropy(torch.as_tensor(val), torch.as_tensor(y_val))))
        hist["val_accuracy"].append(float((val.argmax(1) == y_val).mean()))
    return hist, val
