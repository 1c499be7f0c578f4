"""The training loop of the dense (per-pixel) segmentation heads and networks, and full-frame
prediction.

Unlike the event loop (`tapkit.downstream.events.fit`: one label per crop pair, cross-entropy over
classes) it trains on per-pixel masks of labelled frames, and unlike the pretraining loop
(`tapkit.ssl.trainer`: no labels, a pretext task, checkpoints and resume) it is a short supervised
fit kept in memory.

inputs are (T, C, Y, X) per frame: cached frozen features (C = F, a head learns) or normalised
images (C = 1, a whole network learns); `stack_frames` puts frames t + k beside frame t
(k x C channels). Each step draws `batch_size` crops from the labelled frames; a `positive_fraction`
of them is centred on a random positive pixel (divisions cover ~1 % of the pixels: without this most
crops hold none).
Loss: binary cross-entropy + soft-Dice loss.

With `val_frames` (whole frames held out of training and test, masks.split_frames' `val`), the
validation Dice (binary at 0.5, pooled over the frames: the test metric) is measured at
protocol.eval_steps(steps, n_evals); the best state is kept (ties: the earlier) and restored at the
end.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from tapkit.data.movie import InputError, Movie
from tapkit.downstream.protocol import converged, eval_steps
from tapkit.downstream.segmentation.metrics import dice, soft_dice_loss
from tapkit.runtime import autocast
from tapkit.ssl.features import embed, prepare_frames


def frame_inputs(movie: "Movie | np.ndarray") -> torch.Tensor:
    """Images normalised per frame as the encoders saw them: (T, Y, X) -> (T, 1, Y, X) float32."""
    return torch.from_numpy(prepare_frames(movie))[:, None]


def feature_inputs(
    model: nn.Module, movie: "Movie | np.ndarray", device: torch.device, **kw: Any
) -> torch.Tensor:
    """Frozen dense features of every frame, computed once and standardised: (T, F, Y, X) float32,
    channels-last, CPU.

    Each channel is shifted and scaled to mean 0, std 1 over all frames
    (a fixed affine map, so a linear head stays linear): the same short head training then suits
    every source, whatever the scale of its features (an untrained encoder's can be far from 1).
    Channels-last (F innermost) makes cutting crops and convolving them ~2-4x faster on a CPU;
    float32 because stacking strided float16 crops is slower still.
    """
    z = embed(model, movie, device=device, progress=False, **kw)  # (T, F, Y, X) float32
    sample = z[:, :, ::4, ::4]  # every 16th pixel is plenty for the statistics
    z -= sample.mean(axis=(0, 2, 3), keepdims=True)
    z /= sample.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    return torch.from_numpy(z).contiguous(memory_format=torch.channels_last)


def stack_frames(x: torch.Tensor, offsets: Sequence[int] = (0, 1)) -> torch.Tensor:
    """(T, C, Y, X) -> (T, len(offsets) * C, Y, X): frame t's channels, then those of t + offset,
    clamped at the ends.

    Why neighbouring frames: paper 000 segments dividing cells with TAP features but does not say
    from how many frames. A single frame shows a mitotic nucleus; the next one also shows two
    daughters moving apart. The frozen rows get features of t and t + 1 side by side (a head on 2F
    channels) and the from-scratch baseline the same context (`end_to_end_sweep(offsets=(0, 1))`,
    `heads.ContextSegmentationNet`), so the comparison stays fair (notebook 08, "One frame or two?";
    `scripts/dense_input_context.py` measures what it changes).
    """
    if len(offsets) == 0 or offsets[0] != 0:
        raise InputError(
            f"offsets={tuple(offsets)}: the first offset must be 0 (the frame the mask belongs "
            "to), e.g. (0, 1) for the frame and the next one."
        )
    t = torch.arange(len(x))
    return torch.cat([x[(t + k).clamp(0, len(x) - 1)] for k in offsets], dim=1)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE on logits + (1 - soft Dice) on probabilities; logits and target (N, 1, Y, X)."""
    return F.binary_cross_entropy_with_logits(logits, target) + soft_dice_loss(
        torch.sigmoid(logits), target
    )


def crop_origins(
    masks: np.ndarray,
    frames: np.ndarray,
    crop: int,
    n: int,
    positive_fraction: float,
    rng: np.random.Generator,
) -> list[tuple[int, int, int]]:
    """n crop corners (t, y0, x0) in `frames`; a positive_fraction of them centred on positive
    pixels."""
    ny, nx = masks.shape[-2:]
    pos = np.argwhere(masks[frames] > 0)  # (P, 3) (index into frames, y, x)
    out = []
    for _ in range(n):
        if len(pos) and rng.random() < positive_fraction:
            i, y, x = pos[rng.integers(len(pos))]
            t, y0, x0 = frames[i], y - crop // 2, x - crop // 2
        else:
            t, y0, x0 = (
                frames[rng.integers(len(frames))],
                rng.integers(0, ny - crop + 1),
                rng.integers(0, nx - crop + 1),
            )
        out.append((int(t), int(np.clip(y0, 0, ny - crop)), int(np.clip(x0, 0, nx - crop))))
    return out


def crop_batch(
    inputs: torch.Tensor,
    masks: torch.Tensor,
    origins: Sequence[tuple[int, int, int]],
    crop: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops (B, C, P, P) float32 of inputs and (B, 1, P, P) of masks at the given corners, on the
    device."""
    last = inputs.permute(0, 2, 3, 1)  # (T, Y, X, C): a plain view for channels-last inputs
    x = torch.stack([last[t, y : y + crop, x0 : x0 + crop] for t, y, x0 in origins]).permute(
        0, 3, 1, 2
    )
    x = x.to(device).float()  # (B, C, P, P), channels-last
    m = (
        torch.stack([masks[t, y : y + crop, x0 : x0 + crop] for t, y, x0 in origins])[:, None]
        .to(device)
        .float()
    )
    return x, m


def check_fit_args(inputs: torch.Tensor, masks: np.ndarray, frames: np.ndarray, crop: int) -> None:
    """InputError for shapes or frames that cannot train, before any step."""
    if inputs.ndim != 4 or tuple(inputs.shape[:1]) + tuple(inputs.shape[2:]) != tuple(masks.shape):
        raise InputError(
            f"inputs {tuple(inputs.shape)} must be (T, C, Y, X) with masks (T, Y, X), got masks "
            f"{tuple(masks.shape)}: one mask per frame of the same size."
        )
    if len(frames) == 0 or min(frames) < 0 or max(frames) >= len(masks):
        raise InputError(
            f"labelled frames {list(frames)} must be indices into the {len(masks)} frames."
        )
    if crop > min(masks.shape[-2:]):
        raise InputError(
            f"crop={crop} px is larger than the frames {masks.shape[-2:]}; use a smaller crop."
        )


@dataclass
class DenseFit:
    """One fit_dense run: losses per step and, with validation frames, the validation Dice curve and
    the best step."""

    losses: list[float]
    val_steps: list[int] = field(default_factory=list)  # the steps after which validation ran
    val_curve: list[float] = field(default_factory=list)  # validation Dice at those steps
    best_step: int = 0  # the step whose weights were restored (0: no validation, the last weights)
    best_score: float = math.nan  # validation Dice of the restored weights
    converged: bool = False  # protocol.converged(val_curve)


def validation_dice(
    module: nn.Module,
    inputs: torch.Tensor,
    masks: np.ndarray,
    frames: Sequence[int],
    device: "torch.device | str" = "cpu",
) -> float:
    """Dice of the binary prediction (p >= 0.5) on whole `frames`, pooled over them: the protocol's
    validation metric."""
    return dice(
        predict_dense(module, inputs, frames, device) >= 0.5, np.asarray(masks)[list(frames)]
    )


def fit_dense(
    module: nn.Module,
    params: Sequence[nn.Parameter],
    inputs: torch.Tensor,
    masks: np.ndarray,
    frames: np.ndarray,
    steps: int,
    crop: int = 64,
    batch_size: int = 8,
    lr: float = 1e-3,
    positive_fraction: float = 0.5,
    seed: int = 0,
    device: "torch.device | str" = "cpu",
    optimizer: "torch.optim.Optimizer | None" = None,
    progress: bool = False,
    val_frames: "Sequence[int] | None" = None,
    n_evals: int = 20,
) -> DenseFit:
    """Adam on `params` with segmentation_loss on random crops of the labelled `frames`
    (lr: a cosine to 0 over `steps`, unless an `optimizer` is given: then its own lr, as the
    consistency schedule of paper 004 needs).

    With val_frames: validation Dice at eval_steps(steps, n_evals), the best state restored at the
    end.
    """
    frames = np.asarray(frames, dtype=np.int64)
    check_fit_args(inputs, masks, frames, crop)
    val = [] if val_frames is None else [int(t) for t in val_frames]
    if val and (set(val) & set(frames.tolist()) or min(val) < 0 or max(val) >= len(masks)):
        raise InputError(
            f"validation frames {val} must be frames of the movie that are not labelled for "
            f"training ({frames.tolist()}): hold them out of the pool (masks.split_frames(..., "
            "n_val))."
        )
    device = torch.device(device)
    module.to(device).train()
    opt = optimizer if optimizer is not None else torch.optim.Adam(list(params), lr=lr)
    schedule = (
        None
        if optimizer is not None
        else torch.optim.lr_scheduler.CosineAnnealingLR(opt, int(steps))
    )
    rng, mask_t = np.random.default_rng(int(seed)), torch.from_numpy(np.asarray(masks, np.uint8))
    checks = set(eval_steps(steps, n_evals)) if val else set()
    run, best_state = DenseFit([]), None
    for step in tqdm(range(1, int(steps) + 1), desc="fit", disable=not progress, leave=False):
        x, m = crop_batch(
            inputs,
            mask_t,
            crop_origins(masks, frames, crop, batch_size, positive_fraction, rng),
            crop,
            device,
        )
        with autocast(device):
            loss = segmentation_loss(module(x).float(), m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if schedule is not None:
            schedule.step()
        run.losses.append(loss.item())
        if step in checks:
            score = validation_dice(module, inputs, masks, val, device)
            module.train()
            run.val_steps.append(step)
            run.val_curve.append(score)
            if best_state is None or score > run.best_score:  # ties keep the earlier state
                run.best_step, run.best_score, best_state = (
                    step,
                    score,
                    copy.deepcopy(module.state_dict()),
                )
    if best_state is not None:
        module.load_state_dict(best_state)
        run.converged = converged(run.val_curve)
    return run


@torch.inference_mode()
def predict_dense(
    module: nn.Module,
    inputs: torch.Tensor,
    frames: Sequence[int],
    device: "torch.device | str" = "cpu",
    batch_size: int = 2,
) -> np.ndarray:
    """Probabilities (N, Y, X) float32 for whole frames inputs[frames] (module in eval mode)."""
    device = torch.device(device)
    module.to(device).eval()
    out = []
    for i in range(0, len(frames), batch_size):
        x = inputs[list(frames[i : i + batch_size])].to(device).float()
        with autocast(device):
            out.append(torch.sigmoid(module(x).float())[:, 0].cpu())
    return torch.cat(out).numpy()
