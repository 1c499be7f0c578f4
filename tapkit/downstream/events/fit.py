"""The training loop of the event heads and classifiers (the fair protocol: steps, best on
validation).

It fits one label per crop pair (event or not) with cross-entropy;
`tapkit.downstream.segmentation.fit` fits per-pixel masks instead, and `tapkit.ssl.trainer`
pretrains an encoder without labels (pretext tasks).

fit() trains any module on inputs: a head on cached features (N, 2, F, S, S) for frozen backbones,
or a whole EventClassifier on images (N, 2, S, S) when everything is trained end to end.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from tapkit.downstream.events.crops import CropPairs
from tapkit.downstream.events.heads import EventClassifier
from tapkit.runtime import autocast, pick_device


@torch.inference_mode()
def compute_features(
    encoder: nn.Module,
    images: np.ndarray,
    device: "str | torch.device" = "auto",
    batch_size: int = 64,
    progress: bool = False,
) -> torch.Tensor:
    """Features of crop pairs, (N, 2, S, S) -> (N, 2, F, S, S) float16, kept on the device."""
    device = pick_device(device, verbose=False) if not isinstance(device, torch.device) else device
    encoder = encoder.to(device).eval()
    model = EventClassifier(encoder, nn.Identity())  # features only
    out = []
    for i in tqdm(
        range(0, len(images), batch_size), desc="features", disable=not progress, leave=False
    ):
        x = torch.as_tensor(images[i : i + batch_size], device=device)  # (b, 2, S, S)
        with autocast(device):
            out.append(model.features(x).half())  # (b, 2, F, S, S)
    return torch.cat(out)


def cached_features(
    cache: dict | None,
    key: Any,
    encoder: nn.Module,
    pairs: CropPairs,
    index: np.ndarray,
    device: torch.device,
) -> torch.Tensor:
    """Features of pairs[index]; cache[key] = (sorted indices, features) grows by the missing pairs
    only."""
    have, feats = (
        cache.get(key, (np.zeros(0, np.int64), None))
        if cache is not None
        else (np.zeros(0, np.int64), None)
    )
    missing = np.setdiff1d(index, have)
    if len(missing):
        new = compute_features(encoder, pairs.images[missing], device)
        have, order = np.unique(np.concatenate([have, missing]), return_index=True)
        feats = new if feats is None else torch.cat([feats, new])
        feats = feats[torch.as_tensor(order, device=feats.device)]
        if cache is not None:
            cache[key] = (have, feats)
    return feats[torch.as_tensor(np.searchsorted(have, index), device=feats.device)]


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches of shuffled epochs, endlessly; a last batch of one sample is dropped
    (batch norm needs two)."""
    while True:
        out = list(torch.randperm(n, generator=generator).split(batch_size))
        yield from (out[:-1] if len(out) > 1 and len(out[-1]) == 1 else out)


@torch.inference_mode()
def predict(
    module: nn.Module, inputs: torch.Tensor, device: torch.device, batch_size: int = 256
) -> np.ndarray:
    """Logits (N, 2) float32 of a head (on features) or a classifier (on images), batched."""
    module.eval()
    out = []
    for i in range(0, len(inputs), batch_size):
        with autocast(device):
            out.append(module(inputs[i : i + batch_size].to(device).float()).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 2), np.float32)


def class1_f1(logits: np.ndarray, labels: np.ndarray) -> float:
    """F1 of class 1 (event) of argmax predictions (sklearn): the validation metric of every event
    run."""
    from sklearn.metrics import f1_score

    return float(
        f1_score(labels, np.asarray(logits).argmax(1), labels=[1], average="macro", zero_division=0)
    )


def fit(
    module: nn.Module,
    params: Sequence[nn.Parameter],
    x: torch.Tensor,
    y: np.ndarray,
    x_val: torch.Tensor,
    y_val: np.ndarray,
    steps: int,
    seed: int,
    device: torch.device,
    batch_size: int = 32,
    lr: float = 1e-3,
    n_evals: int = 10,
) -> tuple[dict, np.ndarray]:
    """Adam on `params` + cross-entropy for `steps` steps (lr decays on a cosine to 0), keeping the
    best weights on validation.

    module maps x (N, ...) to logits (N, 2); params: what the optimiser sees (the strategy decides).
    The class-1 F1 on (x_val, y_val) is computed at protocol.eval_steps(steps, n_evals); the best
    state (ties: the earlier) is restored at the end. Returns the history (train_loss per step,
    val_step, val_f1, val_loss, best_step, converged) and the validation logits of the restored
    weights.
    """
    from tapkit.downstream.protocol import converged, eval_steps

    module.to(device)
    opt = torch.optim.Adam(list(params), lr=lr)
    # lr -> 0 at the last step
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, int(steps))
    gen, yt = torch.Generator().manual_seed(int(seed)), torch.as_tensor(y, device=device)
    hist: dict[str, Any] = {"train_loss": [], "val_step": [], "val_f1": [], "val_loss": []}
    evals, batches, best = (
        set(eval_steps(steps, n_evals)),
        _batches(len(x), batch_size, gen),
        (-1.0, None, None, 0),
    )
    for step in range(1, int(steps) + 1):
        module.train()
        b = next(batches)
        with autocast(device):
            loss = F.cross_entropy(
                module(x[b.to(x.device)].to(device).float()).float(), yt[b.to(device)]
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        hist["train_loss"].append(loss.item())
        if step in evals:
            # eval mode: the running batch-norm statistics of these weights
            val = predict(module, x_val, device)
            hist["val_step"].append(step)
            hist["val_f1"].append(class1_f1(val, y_val))
            hist["val_loss"].append(
                float(F.cross_entropy(torch.as_tensor(val), torch.as_tensor(y_val)))
            )
            if hist["val_f1"][-1] > best[0]:
                best = (hist["val_f1"][-1], copy.deepcopy(module.state_dict()), val, step)
    module.load_state_dict(best[1])
    hist.update(best_step=best[3], best_val_f1=best[0], converged=converged(hist["val_f1"]))
    return hist, best[2]
