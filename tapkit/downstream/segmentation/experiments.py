"""Label-budget sweeps of the dense tasks: heads on frozen features of each source, fine-tuning,
from scratch.

    frozen:      features of every frame computed ONCE per source; per budget and run a new head
                 ('linear' 1x1 conv or 'conv') learns on random crops of the labelled frames'
                 features
    end to end:  a pretrained encoder + conv head fine-tuned on the images ('<task> fine-tuned'),
                 or the same architecture newly initialised per run ('from scratch', the
                 supervised baseline); both start from the BatchNorm statistics of the movie's
                 non-test images (heads.calibrate_encoder); `offsets` gives either one frame t
                 (default) or frames t + k side by side (fit.stack_frames,
                 heads.ContextSegmentationNet: one encoder applied to each frame)

The fair protocol (tapkit.downstream.protocol), the same for every row:
    - `steps_head` optimiser steps for every head, `steps_end_to_end` for every fine-tuned /
      from-scratch network, whatever the budget (the curve measures labels, not steps);
    - validation Dice on the split's `val` frames at eval_steps(steps, n_evals); the best state is
      restored;
    - the learning rate chosen on validation from `lr_grid` (LR_GRID: the same grid for every row)
      per (row, task) on the FIRST seed at the FIRST budget listed; that run is run 1 and the row's
      other seeds and budgets reuse its lr (as the event heads' label-budget curve does; a grid per
      seed and budget would cost len(grid) x more for what is a property of the row);
    - n_runs seeds seed, seed+1, ...; run i of every row at a (task, budget) trains on the SAME
      labelled frames (pick_frames with seed + i), so two rows are compared per seed (`paired`).
Every run is scored on the same consecutive test frames: Dice and IoU pooled over them, and object
precision / recall / F1 of connected components. Rows are '<source> · <head>'. The tables and the
helpers the claims read from the runs (results_table, format_table, paired, ...) are in
segmentation.tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from tapkit.downstream.protocol import LR_GRID, check_protocol, select_lr
from tapkit.downstream.segmentation.fit import (
    DenseFit,
    feature_inputs,
    fit_dense,
    frame_inputs,
    predict_dense,
    stack_frames,
)
from tapkit.downstream.segmentation.heads import (
    HEADS,
    ContextSegmentationNet,
    SegmentationNet,
    calibrate_encoder,
    fresh_encoder,
    make_pixel_head,
)
from tapkit.downstream.segmentation.masks import (
    FrameSplit,
    budget_size,
    check_validation,
    pick_frames,
)
from tapkit.downstream.segmentation.metrics import dice, iou, object_scores
from tapkit.validate import whole

SCRATCH = "from scratch"
END_TO_END = "end to end"
# the profile's segmentation keys a sweep takes (budget_sweep's **train)
TRAIN_KEYS = (
    "steps_head",
    "steps_end_to_end",
    "crop",
    "batch_size",
    "positive_fraction",
    "n_evals",
    "lr_grid",
    "lr_grid_end_to_end",
)


@dataclass
class DenseResult:
    """One trained run: row name, budget, seed, labelled frames, its test scores and how it was
    trained."""

    row: str
    budget: "int | str"
    seed: int
    frames: np.ndarray
    scores: dict[str, float] = field(default_factory=dict)
    # (Y, X) probabilities of the middle test frame, for figures
    example: "np.ndarray | None" = None
    lr: float = float("nan")  # the learning rate chosen on validation for this (row, task, budget)
    steps: int = 0  # optimiser steps trained
    val_steps: list = field(default_factory=list)
    val_curve: list = field(default_factory=list)  # validation Dice at val_steps
    best_step: int = 0  # the restored step
    converged: bool = False  # protocol.converged(val_curve)


def evaluate(probs: np.ndarray, true: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Dice, IoU (pooled over frames) and object precision / recall / F1 of probabilities (N, Y, X)
    vs masks."""
    pred = probs >= threshold
    obj = object_scores(pred, true)
    return {
        "dice": dice(pred, true),
        "iou": iou(pred, true),
        "object_precision": obj["precision"],
        "object_recall": obj["recall"],
        "object_f1": obj["f1"],
    }


def check_budgets(budgets: Sequence["int | str"], masks: np.ndarray, split: FrameSplit) -> None:
    """InputError for a budget larger than the labellable frames
    (pool frames with a positive pixel), before training."""
    n = int(np.asarray(masks)[split.pool].reshape(len(split.pool), -1).any(1).sum())
    for b in budgets:
        budget_size(b, n)


def row_settings(kind: str, train: Mapping[str, Any]) -> dict[str, Any]:
    """fit_dense keywords and the lr grid for a head kind or END_TO_END from the sweep's settings
    (checked)."""
    steps = int(train.get("steps_end_to_end" if kind == END_TO_END else "steps_head", 100))
    grid = tuple(
        train.get(
            "lr_grid_end_to_end"
            if kind == END_TO_END and train.get("lr_grid_end_to_end")
            else "lr_grid",
            LR_GRID,
        )
    )
    n_evals = int(train.get("n_evals", 20))
    check_protocol(steps, n_evals, grid, 1, f"segmentation ({kind})")
    return {
        "steps": steps,
        "crop": int(train.get("crop", 64)),
        "batch_size": int(train.get("batch_size", 8)),
        "positive_fraction": float(train.get("positive_fraction", 0.5)),
        "n_evals": n_evals,
        "lr_grid": grid,
    }


def run_cell(
    row: str,
    budget: "int | str",
    make: Callable[[int], tuple[nn.Module, Any]],
    inputs: torch.Tensor,
    masks: np.ndarray,
    split: FrameSplit,
    n_runs: int,
    seed: int,
    device: Any,
    settings: Mapping[str, Any],
    lr: "float | None" = None,
) -> list[DenseResult]:
    """The n_runs runs of one (row, budget): lr from the grid on validation with the first seed
    (that run is run 1), reused for seeds seed+1, ...; each run trains on pick_frames(pool, budget,
    its seed) and keeps its best step.

    make(seed) -> (module, its trainable parameters), the same initialisation for the same seed.
    lr: a rate the row chose at an earlier budget (then no grid here).
    """
    kw = {k: v for k, v in settings.items() if k != "lr_grid"}

    def train(s: int, lr: float) -> tuple[nn.Module, np.ndarray, DenseFit]:
        frames = pick_frames(split.pool, budget, s, masks)
        module, params = make(s)
        return (
            module,
            frames,
            fit_dense(
                module,
                params,
                inputs,
                masks,
                frames,
                lr=lr,
                seed=s,
                device=device,
                val_frames=split.val,
                **kw,
            ),
        )

    if lr is None:
        lr, first, _ = select_lr(
            lambda lr: train(seed, lr), lambda run: run[2].best_score, settings["lr_grid"]
        )
    else:
        first = train(seed, float(lr))
    runs = [first] + [train(seed + i, lr) for i in range(1, int(n_runs))]
    out, test = [], masks[split.test]
    for i, (module, frames, fit) in enumerate(runs):
        probs = predict_dense(module, inputs, split.test, device)
        out.append(
            DenseResult(
                row,
                budget,
                seed + i,
                frames,
                evaluate(probs, test),
                probs[len(probs) // 2].astype(np.float16),
                lr,
                len(fit.losses),
                fit.val_steps,
                fit.val_curve,
                fit.best_step,
                fit.converged,
            )
        )
    return out


def frozen_sweep(
    name: str,
    features: torch.Tensor,
    masks: np.ndarray,
    split: FrameSplit,
    budgets: Sequence,
    heads: Sequence[str] = HEADS,
    n_runs: int = 3,
    seed: int = 0,
    device: Any = "cpu",
    **train: Any,
) -> list[DenseResult]:
    """New heads on one source's cached features (T, F, Y, X) for every budget and head
    (run_cell each)."""
    check_validation(masks, split)
    out = []

    def make(s: int, kind: str) -> tuple[nn.Module, Any]:
        head = make_pixel_head(kind, features.shape[1], s)
        return head, head.parameters()

    chosen: dict[str, float] = {}  # head kind -> the lr its first budget chose on validation
    for budget, head_kind in tqdm([(b, h) for b in budgets for h in heads], desc=name, leave=False):
        out += run_cell(
            f"{name} · {head_kind}",
            budget,
            lambda s, k=head_kind: make(s, k),
            features,
            masks,
            split,
            n_runs,
            seed,
            device,
            row_settings(head_kind, train),
            chosen.get(head_kind),
        )
        chosen.setdefault(head_kind, out[-1].lr)
    return out


def end_to_end_sweep(
    name: str,
    encoder: nn.Module,
    images: torch.Tensor,
    masks: np.ndarray,
    split: FrameSplit,
    budgets: Sequence,
    n_runs: int = 3,
    seed: int = 0,
    pretrained: bool = True,
    device: Any = "cpu",
    offsets: Sequence[int] = (0,),
    **train: Any,
) -> list[DenseResult]:
    """Encoder + conv head trained on the images: fine-tuned (pretrained=True) or newly initialised
    per run.

    offsets: the input of frame t's mask is frames t + k for k in offsets
    (fit.stack_frames, the first 0); the default (0,) is frame t alone, (0, 1) the pair (t, t + 1):
    the encoder is applied to each frame (shared weights) and the conv head sees their k x F
    features side by side (heads.ContextSegmentationNet). Every run's encoder first gets the
    BatchNorm statistics of the images of the frames outside the test set
    (calibrate_encoder: no labels): with a new network's statistics, or a briefly pretrained one's,
    its eval-mode features would be ~1e-3 wide, so validation and test would see one constant map,
    the head's alone, the same for both rows at a seed.
    """
    check_validation(masks, split)
    settings = row_settings(END_TO_END, train)
    offsets = tuple(offsets)
    inputs = images if offsets == (0,) else stack_frames(images, offsets)  # (T, k, Y, X)
    held_out = set(np.asarray(split.test).tolist())
    # (N, 1, Y, X) single images, as the encoder sees them; no test frame
    unlabelled = images[[t for t in range(len(images)) if t not in held_out]]
    net_type = SegmentationNet if len(offsets) == 1 else ContextSegmentationNet

    def make(s: int) -> tuple[nn.Module, Any]:
        trained = encoder if pretrained else fresh_encoder(encoder, s)
        net = net_type(trained, make_pixel_head("conv", len(offsets) * encoder.n_features, s))
        # the copy inside net; the caller's encoder is untouched
        calibrate_encoder(net.encoder, unlabelled)
        return net, net.trainable()

    out: list[DenseResult] = []
    for budget in tqdm(list(budgets), desc=name, leave=False):
        out += run_cell(
            name,
            budget,
            make,
            inputs,
            masks,
            split,
            n_runs,
            seed,
            device,
            settings,
            out[0].lr if out else None,
        )  # the lr the first budget chose
    return out


def budget_sweep(
    models: Mapping[str, nn.Module],
    movie: Any,
    targets: Mapping[str, np.ndarray],
    split: FrameSplit,
    budgets: Sequence,
    heads: Sequence[str] = HEADS,
    end_to_end: Mapping[str, "nn.Module | None"] | None = None,
    end_to_end_budgets: Sequence | None = None,
    n_runs: int = 3,
    seed: int = 0,
    device: Any = "cpu",
    **train: Any,
) -> dict[str, list[DenseResult]]:
    """{task: runs} for targets {task: masks (T, Y, X)}: frozen heads on each model's features
    (computed once for all tasks), then end-to-end rows ({row: pretrained model, or None = from
    scratch, the first model's architecture}).

    All budgets, the validation frames of all tasks and the protocol's settings are checked before
    any training.
    """
    e2e_budgets = list(budgets if end_to_end_budgets is None else end_to_end_budgets)
    for kind in [*heads, *([END_TO_END] if end_to_end else [])]:
        row_settings(kind, train)
    whole(1, where="segmentation: ", example=3)("n_runs", n_runs)
    for task, m in targets.items():
        check_budgets([*budgets, *(e2e_budgets if end_to_end else [])], m, split)
        check_validation(m, split, task)
    out: dict[str, list[DenseResult]] = {task: [] for task in targets}
    for name, model in models.items():
        features = feature_inputs(model, movie, device)  # (T, F, Y, X) once per source
        for task, m in targets.items():
            out[task] += frozen_sweep(
                name, features, m, split, budgets, heads, n_runs, seed, device, **train
            )
        del features
    if end_to_end:
        images, template = frame_inputs(movie), next(iter(models.values()))  # (T, 1, Y, X)
        for name, model in end_to_end.items():
            for task, m in targets.items():
                out[task] += end_to_end_sweep(
                    name,
                    template if model is None else model,
                    images,
                    m,
                    split,
                    e2e_budgets,
                    n_runs,
                    seed,
                    model is not None,
                    device,
                    **train,
                )
    return out
