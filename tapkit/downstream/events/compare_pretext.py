"""Event recognition on the frozen features of several pretext tasks (notebook 07), next to the
baselines.

For each pretrained model: the linear and ResNet heads (strategies A0, A1 with that model as the
encoder) n_runs times on one split, plus A1 on smaller training sets (the label-budget curve), all
in ONE run_sweep, so the model's features are computed once and shared by every head. The baselines
(B = frozen random, C = trained end to end) run once, on the TAP architecture.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from tapkit.downstream.events.crops import CropPairs, Split, split_pairs
from tapkit.downstream.events.experiments import run_sweep
from tapkit.downstream.events.strategies import HEADS, StrategyResult
from tapkit.downstream.events.tables import results_table

BASELINES = {
    "B": "random (frozen)",
    "C": "end to end",
}  # row name of a baseline strategy's features


def row_name(features: str, strategy: str) -> str:
    """'mim · ResNet' for strategy A1 on the features of 'mim'; baselines:
    'random (frozen) · linear'."""
    return f"{BASELINES.get(strategy[0], features)} · {HEADS[strategy[1]]}"


def compare_pretext(
    pairs: CropPairs,
    labels: np.ndarray,
    split: Split,
    models: Mapping[str, Any],
    baselines: Sequence[str] = ("B0", "B1", "C1"),
    budgets: Sequence[int] = (),
    n_runs: int = 3,
    seed: int = 0,
    device: Any = "auto",
    **train: Any,
) -> tuple[dict, dict]:
    """({row: [StrategyResult] * n_runs}, curves {'n_train', row: class-1 F1 (budgets, runs)}).

    models: {task name: pretrained model}; its first one (TAP) gives the baselines their
    architecture. Jobs go seed by seed, the full training set first: with lr=None each row's first
    run (seed, full set) chooses the learning rate and its budget runs reuse it (run_sweep), as in
    notebook 04.
    """
    # same val / test as split
    splits = [split_pairs(labels, seed=int(seed), budget=int(b)) for b in budgets]
    results: dict[str, list[StrategyResult]] = {}
    curves: dict[str, Any] = {"n_train": [len(s.train) for s in splits]}
    # label-budget curves: the linear probe (A0 / B0): the standard measure of frozen features,
    # cheap and quickly converged, so every budget of every model fits the same step budget
    groups = [(task, model, ("A0", "A1"), "A0") for task, model in models.items()]
    groups.append(("baseline", next(iter(models.values())), tuple(baselines), "B0"))
    for task, model, strategies, curve_strategy in groups:
        jobs = [
            job
            for i in range(int(n_runs))
            for job in [  # seed by seed: random features one seed at a time
                (s, labels, split, seed + i) for s in strategies
            ]
            + [(curve_strategy, labels, sp, seed + i) for sp in splits]
        ]
        # one feature cache per model
        runs = iter(run_sweep(jobs, pairs, model, device, desc=task, **train))
        f1 = np.zeros((len(splits), int(n_runs)))  # (budgets, runs)
        for i in range(int(n_runs)):
            for s in strategies:
                results.setdefault(row_name(task, s), []).append(next(runs))
            for b in range(len(splits)):
                f1[b, i] = next(runs).f1[1]
        curves[row_name(task, curve_strategy)] = f1
    return results, curves


def pretext_table(results: Mapping[str, Sequence[StrategyResult]]) -> dict[str, dict[str, Any]]:
    """Per row: precision / recall / F1 per class, mean and std over runs (tables.results_table)."""
    return results_table(results)


def format_pretext_table(
    table: Mapping[str, Mapping], steps: Mapping[str, Any] | None = None
) -> str:
    """One text table: class-1 precision, recall and F1 (mean ± std) per features · head, with
    training steps."""
    head = f"{'features · head':<28}{'steps':>7}  {'precision 1':<13}{'recall 1':<13}{'F1 1':<13}lr"
    lines = [head, "-" * len(head)]
    for name, row in table.items():
        n = (steps or {}).get(name.split(" · ")[0], "-")
        cells = "".join(
            f"{row[m][1]:.2f}±{row[m + '_std'][1]:.2f}".ljust(13)
            for m in ("precision", "recall", "f1")
        )
        mark = "" if row.get("converged", True) else f" *{row['unconverged_runs']}"
        lines.append(
            f"{name + mark:<28}{str(n if n is not None else '?'):>7}  {cells}{row.get('lr', 0):.0e}"
        )
    if any(not row.get("converged", True) for row in table.values()):
        lines.append(
            "* n: n runs whose validation F1 still rose by >= 2 % in their last quarter of steps "
            "(not converged)"
        )
    return "\n".join(lines)


def record_entries(table: Mapping[str, Mapping], steps: Mapping[str, Any]) -> dict[str, dict]:
    """{features: {head: {precision, recall, f1, *_std of class 1}, 'steps': n}} for
    results.record('pretext')."""
    out: dict[str, dict] = {}
    for name, row in table.items():
        features, head = name.split(" · ")
        entry = out.setdefault(features, {"steps": steps.get(features)})
        entry[head.lower()] = {
            k: float(row[k][1])
            for k in ("precision", "recall", "f1", "precision_std", "recall_std", "f1_std")
        }
    return out
