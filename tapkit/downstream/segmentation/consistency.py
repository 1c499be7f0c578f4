"""Siamese temporal consistency (Shabanov et al., paper 004): one network, shared weights, two
frames.

    frames t and t + delta (unlabelled, same crop) --net--> p_t, p_t+d --consistency loss-->
        backward through both

The schedule of the paper: first segmentation only (soft Dice on the few labelled frames); then
rounds of 2 segmentation epochs per consistency epoch, with separate Adam optimisers and a smaller
learning rate for consistency (the paper's code: 1e-4 and 1e-5). `train_variants` runs the
comparison from ONE pretrained network: segmentation only, alternating, and consistency only
(the paper's warning: without the alternation the network forgets the segmentation). Every variant
trains the same number of epochs.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tapkit.data.movie import InputError
from tapkit.downstream.segmentation.fit import crop_batch, fit_dense
from tapkit.downstream.segmentation.metrics import soft_dice_loss
from tapkit.runtime import autocast

KINDS = ("dice", "bce")
VARIANTS = {
    "segmentation only": (3, 0),
    "alternating": (2, 1),
    "consistency only": (0, 3),
}  # epochs per round


def consistency_loss(p_a: torch.Tensor, p_b: torch.Tensor, kind: str = "dice") -> torch.Tensor:
    """Disagreement of two probability maps: 'dice' = 1 - soft Dice (both get gradients), 'bce' =
    BCE to detached p_b."""
    if kind == "dice":
        return soft_dice_loss(p_a, p_b)
    if kind == "bce":
        return F.binary_cross_entropy(p_a.clamp(1e-6, 1 - 1e-6), p_b.detach())
    raise InputError(f"consistency kind={kind!r}: use one of {', '.join(KINDS)}.")


def consistency_step(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    kind: str = "dice",
) -> float:
    """One Siamese step: the same `net` on both frame batches (B, 1, P, P), the loss back through
    both, one update."""
    with autocast(x_a.device):
        p_a, p_b = torch.sigmoid(net(x_a).float()), torch.sigmoid(net(x_b).float())
    loss = consistency_loss(p_a, p_b, kind)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def pair_origins(
    frames: np.ndarray,
    n_frames: int,
    deltas: Sequence[int],
    shape: tuple[int, int],
    crop: int,
    n: int,
    rng: np.random.Generator,
) -> list[tuple[int, int, int, int]]:
    """n (t, t + delta, y0, x0) for unlabelled pairs whose frames both lie in `frames`."""
    allowed = set(int(f) for f in frames)
    pairs = [(t, t + d) for t in allowed for d in deltas if t + d in allowed and t + d < n_frames]
    if not pairs:
        raise InputError(
            f"no consecutive frame pairs (deltas {list(deltas)}) among the unlabelled frames; use "
            "more frames."
        )
    out = []
    for _ in range(n):
        a, b = pairs[rng.integers(len(pairs))]
        out.append(
            (
                a,
                b,
                int(rng.integers(0, shape[0] - crop + 1)),
                int(rng.integers(0, shape[1] - crop + 1)),
            )
        )
    return out


def consistency_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    frames: np.ndarray,
    steps: int,
    crop: int,
    batch_size: int,
    deltas: Sequence[int],
    kind: str,
    rng: np.random.Generator,
    device: torch.device,
) -> list[float]:
    """`steps` consistency steps on random crops of unlabelled pairs (t, t + delta) of `frames`."""
    net.to(device).train()
    losses = []
    for _ in range(int(steps)):
        x_a, x_b = pair_batch(images, frames, crop, batch_size, deltas, rng, device)
        losses.append(consistency_step(net, optimizer, x_a, x_b, kind))
    return losses


def pair_batch(
    images: torch.Tensor,
    frames: np.ndarray,
    crop: int,
    batch_size: int,
    deltas: Sequence[int],
    rng: np.random.Generator,
    device: Any = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of unlabelled crop pairs: x_a (B, C, P, P) of frames t and x_b of t + delta, same
    place, from `frames`."""
    # crop_batch wants masks
    dummy = torch.zeros(images.shape[0], *images.shape[2:], dtype=torch.uint8)
    origins = pair_origins(
        frames, len(images), deltas, tuple(images.shape[-2:]), crop, batch_size, rng
    )
    x_a, _ = crop_batch(images, dummy, [(a, y, x) for a, _, y, x in origins], crop, device)
    x_b, _ = crop_batch(images, dummy, [(b, y, x) for _, b, y, x in origins], crop, device)
    return x_a, x_b


def train_variant(
    net: nn.Module,
    variant: str,
    images: torch.Tensor,
    masks: np.ndarray,
    labelled: np.ndarray,
    unlabelled: np.ndarray,
    rounds: int,
    steps_per_epoch: int,
    crop: int = 64,
    batch_size: int = 8,
    lr_segmentation: float = 1e-4,
    lr_consistency: float = 1e-5,
    deltas: Sequence[int] = (1,),
    kind: str = "dice",
    seed: int = 0,
    device: Any = "cpu",
) -> dict[str, list[float]]:
    """Continue training `net` (in place) for `rounds` rounds of VARIANTS[variant] epochs; returns
    the loss history."""
    if variant not in VARIANTS:
        raise InputError(f"variant={variant!r}: use one of {', '.join(VARIANTS)}.")
    n_seg, n_cons = VARIANTS[variant]
    device, rng = torch.device(device), np.random.default_rng(int(seed))
    # separate optimisers, as in the paper's code
    opt_seg = torch.optim.Adam(net.parameters(), lr=lr_segmentation)
    opt_cons = torch.optim.Adam(net.parameters(), lr=lr_consistency)
    hist: dict[str, list[float]] = {"segmentation": [], "consistency": []}
    for r in range(int(rounds)):
        for e in range(n_seg):
            hist["segmentation"] += fit_dense(
                net,
                [],
                images,
                masks,
                labelled,
                steps_per_epoch,
                crop,
                batch_size,
                seed=int(rng.integers(2**31)),
                device=device,
                optimizer=opt_seg,
            ).losses
        for e in range(n_cons):
            hist["consistency"] += consistency_epoch(
                net,
                opt_cons,
                images,
                unlabelled,
                steps_per_epoch,
                crop,
                batch_size,
                deltas,
                kind,
                rng,
                device,
            )
    return hist


def train_variants(
    net: nn.Module, variants: Sequence[str] = tuple(VARIANTS), **kw: Any
) -> dict[str, tuple[nn.Module, dict]]:
    """{variant: (trained copy of the pretrained `net`, history)}: every variant starts from the
    same weights."""
    for v in variants:
        if v not in VARIANTS:
            raise InputError(f"variant={v!r}: use one of {', '.join(VARIANTS)}.")
    out = {}
    for v in variants:
        copy_ = copy.deepcopy(net)
        out[v] = (copy_, train_variant(copy_, v, **kw))
    return out


def evaluate_consistency(
    nets: "dict[str, nn.Module]",
    images: torch.Tensor,
    masks: np.ndarray,
    frames: np.ndarray,
    regions: np.ndarray,
    device: Any = "cpu",
) -> tuple[dict, dict, dict]:
    """Per net on consecutive test `frames`: scores {dice, iou, flicker}, binary predictions
    (N, Y, X), flicker per pair.

    regions (N - 1, Y, X): the stable cells of each pair (metrics.stable_regions) where flicker is
    measured.
    """
    from tapkit.downstream.segmentation.fit import predict_dense
    from tapkit.downstream.segmentation.metrics import dice, flicker, iou

    scores, preds, curves = {}, {}, {}
    for name, net in nets.items():
        preds[name] = predict_dense(net, images, frames, device) >= 0.5
        curves[name] = flicker(preds[name], regions)
        truth = masks[frames]
        scores[name] = {
            "dice": dice(preds[name], truth),
            "iou": iou(preds[name], truth),
            "flicker": float(curves[name].mean()),
        }
    return scores, preds, curves
