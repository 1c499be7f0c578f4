"""Label-budget sweeps of the dense tasks: heads on frozen features of each source, fine-tuning, from scratch.

    frozen:      features of every frame computed ONCE per source; per budget and run a new head
                 ('linear' 1x1 conv or 'conv') learns on random crops of the labelled frames' features
    end to end:  a pretrained encoder + conv head fine-tuned on the images ('<task> fine-tuned'), or the same
                 architecture newly initialised per run ('from scratch', the supervised baseline)

Every run is scored on the same consecutive test frames: Dice and IoU pooled over them, and object
precision / recall / F1 of connected components. Rows are '<source> · <head>'; runs use seeds seed, seed+1, ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from tapkit.data.movie import InputError
from tapkit.downstream.segmentation.fit import feature_inputs, fit_dense, frame_inputs, predict_dense
from tapkit.downstream.segmentation.heads import HEADS, SegmentationNet, fresh_encoder, make_head
from tapkit.downstream.segmentation.masks import FrameSplit, budget_size, pick_frames
from tapkit.downstream.segmentation.metrics import dice, iou, object_scores

LEARNING_RATES = {"linear": 1e-2, "conv": 1e-3, "end to end": 1e-3}  # Adam; none are given by the papers
SCRATCH = "from scratch"


@dataclass
class DenseResult:
    """One trained run: row name, budget, seed, labelled frames and its test scores."""

    row: str
    budget: "int | str"
    seed: int
    frames: np.ndarray
    scores: dict[str, float] = field(default_factory=dict)
    example: "np.ndarray | None" = None  # (Y, X) probabilities of the middle test frame, for figures


def evaluate(probs: np.ndarray, true: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Dice, IoU (pooled over frames) and object precision / recall / F1 of probabilities (N, Y, X) vs masks."""
    pred = probs >= threshold
    obj = object_scores(pred, true)
    return {"dice": dice(pred, true), "iou": iou(pred, true), "object_precision": obj["precision"],
            "object_recall": obj["recall"], "object_f1": obj["f1"]}


def check_budgets(budgets: Sequence["int | str"], masks: np.ndarray, split: FrameSplit) -> None:
    """InputError for a budget larger than the labellable frames (pool frames with a positive pixel), before training."""
    n = int(np.asarray(masks)[split.pool].reshape(len(split.pool), -1).any(1).sum())
    for b in budgets:
        budget_size(b, n)


def _settings(kind: str, train: Mapping[str, Any]) -> dict[str, Any]:
    """fit_dense keywords for a head kind or 'end to end' from the sweep's settings."""
    steps = train.get("steps_end_to_end" if kind == "end to end" else "steps_head", 100)
    return {"steps": int(steps), "crop": int(train.get("crop", 64)), "batch_size": int(train.get("batch_size", 8)),
            "lr": float(train.get(f"lr_{kind.replace(' ', '_')}", LEARNING_RATES[kind])),
            "positive_fraction": float(train.get("positive_fraction", 0.5))}


def frozen_sweep(name: str, features: torch.Tensor, masks: np.ndarray, split: FrameSplit, budgets: Sequence,
                 heads: Sequence[str] = HEADS, n_runs: int = 2, seed: int = 0, device: Any = "cpu",
                 **train: Any) -> list[DenseResult]:
    """New heads on one source's cached features (T, F, Y, X) for every budget, head and run."""
    out, test = [], masks[split.test]
    jobs = [(b, h, seed + i) for b in budgets for i in range(int(n_runs)) for h in heads]
    for budget, head_kind, s in tqdm(jobs, desc=name, leave=False):
        frames = pick_frames(split.pool, budget, s, masks)
        head = make_head(head_kind, features.shape[1], s)
        fit_dense(head, head.parameters(), features, masks, frames, seed=s, device=device, **_settings(head_kind, train))
        probs = predict_dense(head, features, split.test, device)
        out.append(DenseResult(f"{name} · {head_kind}", budget, s, frames, evaluate(probs, test),
                               probs[len(probs) // 2].astype(np.float16)))
    return out


def end_to_end_sweep(name: str, encoder: nn.Module, images: torch.Tensor, masks: np.ndarray, split: FrameSplit,
                     budgets: Sequence, n_runs: int = 2, seed: int = 0, pretrained: bool = True, device: Any = "cpu",
                     **train: Any) -> list[DenseResult]:
    """Encoder + conv head trained on the images: fine-tuned (pretrained=True) or newly initialised per run."""
    out, test = [], masks[split.test]
    for budget in budgets:
        for i in tqdm(range(int(n_runs)), desc=name, leave=False):
            s = seed + i
            frames = pick_frames(split.pool, budget, s, masks)
            start = encoder if pretrained else fresh_encoder(encoder, s)
            net = SegmentationNet(start, make_head("conv", encoder.n_features, s))
            fit_dense(net, net.trainable(), images, masks, frames, seed=s, device=device, **_settings("end to end", train))
            probs = predict_dense(net, images, split.test, device)
            out.append(DenseResult(name, budget, s, frames, evaluate(probs, test), probs[len(probs) // 2].astype(np.float16)))
    return out


def budget_sweep(models: Mapping[str, nn.Module], movie: Any, targets: Mapping[str, np.ndarray], split: FrameSplit,
                 budgets: Sequence, heads: Sequence[str] = HEADS, end_to_end: Mapping[str, "nn.Module | None"] | None = None,
                 end_to_end_budgets: Sequence | None = None, n_runs: int = 2, seed: int = 0, device: Any = "cpu",
                 **train: Any) -> dict[str, list[DenseResult]]:
    """{task: runs} for targets {task: masks (T, Y, X)}: frozen heads on each model's features (computed once for
    all tasks), then end-to-end rows ({row: pretrained model, or None = from scratch, the first model's architecture}).

    All budgets of all tasks are checked before any training.
    """
    e2e_budgets = list(budgets if end_to_end_budgets is None else end_to_end_budgets)
    for m in targets.values():
        check_budgets([*budgets, *(e2e_budgets if end_to_end else [])], m, split)
    out: dict[str, list[DenseResult]] = {task: [] for task in targets}
    for name, model in models.items():
        features = feature_inputs(model, movie, device)  # (T, F, Y, X) once per source
        for task, m in targets.items():
            out[task] += frozen_sweep(name, features, m, split, budgets, heads, n_runs, seed, device, **train)
        del features
    if end_to_end:
        images, template = frame_inputs(movie), next(iter(models.values()))  # (T, 1, Y, X)
        for name, model in end_to_end.items():
            for task, m in targets.items():
                out[task] += end_to_end_sweep(name, template if model is None else model, images, m, split, e2e_budgets,
                                              n_runs, seed, model is not None, device, **train)
    return out


def results_table(results: Sequence[DenseResult]) -> dict[str, dict[str, dict[str, float]]]:
    """{row: {budget: {metric: mean, metric_std: std, 'n_frames': labelled frames}}} over the runs."""
    runs: dict[str, dict[str, list[DenseResult]]] = {}
    for r in results:
        runs.setdefault(r.row, {}).setdefault(str(r.budget), []).append(r)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for row, by_budget in runs.items():
        for budget, rs in by_budget.items():
            cell = {"n_frames": int(np.mean([len(r.frames) for r in rs]))}
            for metric in rs[0].scores:
                values = np.array([r.scores[metric] for r in rs])
                cell[metric], cell[f"{metric}_std"] = float(values.mean()), float(values.std())
            table.setdefault(row, {})[budget] = cell
    return table


def format_table(table: Mapping[str, Mapping[str, Mapping[str, float]]], metrics: Sequence[str] = ("dice", "object_f1")) -> str:
    """Text table: one line per row and budget, mean ± std of `metrics`."""
    head = f"{'features · head':<30}{'budget':>7}{'frames':>7}  " + "".join(f"{m:<14}" for m in metrics)
    lines = [head, "-" * len(head)]
    for row, by_budget in table.items():
        for budget, c in by_budget.items():
            cells = "".join(f"{c[m]:.3f}±{c[m + '_std']:.3f}".ljust(14) for m in metrics)
            lines.append(f"{row:<30}{budget:>7}{c['n_frames']:>7}  {cells}")
    return "\n".join(lines)


def examples(results: Sequence[DenseResult], rows: Sequence[str], budget: "int | str") -> dict[str, np.ndarray]:
    """{'<row>, n frame(s)': (Y, X) probabilities of the middle test frame} of each row's first run at `budget`."""
    out = {}
    for row in rows:
        run = next((r for r in results if r.row == row and str(r.budget) == str(budget)), None)
        if run is not None and run.example is not None:
            out[f"{row}, {len(run.frames)} fr."] = run.example.astype(np.float32)
    return out


def budget_to_reach(table: Mapping[str, Mapping[str, Mapping[str, float]]], reference: float, fraction: float = 0.95,
                    metric: str = "dice") -> dict[str, "int | None"]:
    """Per row: the fewest labelled frames whose mean `metric` reaches fraction * reference (None: never)."""
    out = {}
    for row, by_budget in table.items():
        hits = [c["n_frames"] for c in by_budget.values() if c[metric] >= fraction * reference]
        out[row] = min(hits) if hits else None
    return out


def record_entries(table: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """{row: {budget: {dice, dice_std, object_f1, object_f1_std, iou, n_frames}}} for results.record('segmentation')."""
    keep = ("dice", "dice_std", "iou", "object_f1", "object_f1_std", "n_frames")
    return {row: {b: {k: c[k] for k in keep} for b, c in by_budget.items()} for row, by_budget in table.items()}
