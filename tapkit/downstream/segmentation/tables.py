"""Result tables of the dense label-budget sweeps, and the helpers the claims and figures read from
them.

Every number comes from what the sweeps (segmentation.experiments) stored in a DenseResult: per
(row, budget) means and stds over runs (`results_table`), their text form (`format_table`), per-seed
paired scores for claims (`paired`), `more_labels_check`, `budget_to_reach`, the example maps of
figures (`examples`) and the entries results.record('segmentation') keeps (`record_entries`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from tapkit.data.movie import InputError

if TYPE_CHECKING:
    from tapkit.downstream.segmentation.experiments import DenseResult


def results_table(results: Sequence[DenseResult]) -> dict[str, dict[str, dict[str, float]]]:
    """{row: {budget: {metric: mean, metric_std: std, 'n_frames', 'n_runs', 'lr', 'steps',
    'converged'}}} over runs.

    'converged' is True only when every run of the cell converged; 'lr' is the cell's lr chosen on
    validation.
    """
    runs: dict[str, dict[str, list[DenseResult]]] = {}
    for r in results:
        runs.setdefault(r.row, {}).setdefault(str(r.budget), []).append(r)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for row, by_budget in runs.items():
        for budget, rs in by_budget.items():
            cell = {
                "n_frames": int(np.mean([len(r.frames) for r in rs])),
                "n_runs": len(rs),
                "lr": float(rs[0].lr),
                "steps": int(max(r.steps for r in rs)),
                "converged": bool(all(r.converged for r in rs)),
            }
            for metric in rs[0].scores:
                values = np.array([r.scores[metric] for r in rs])
                cell[metric], cell[f"{metric}_std"] = float(values.mean()), float(values.std())
            table.setdefault(row, {})[budget] = cell
    return table


def format_table(
    table: Mapping[str, Mapping[str, Mapping[str, float]]],
    metrics: Sequence[str] = ("dice", "object_f1"),
) -> str:
    """Text table: one line per row and budget, mean ± std of `metrics`, the chosen lr; '*' marks a
    cell with a run that did not converge (footnote below the table)."""
    head = (
        f"{'features · head':<30}{'budget':>7}{'frames':>7}  "
        + "".join(f"{m:<14}" for m in metrics)
        + f"{'lr':>8}"
    )
    lines, starred = [head, "-" * len(head)], False
    for row, by_budget in table.items():
        for budget, c in by_budget.items():
            cells = "".join(f"{c[m]:.3f}±{c[m + '_std']:.3f}".ljust(14) for m in metrics)
            mark = "" if c.get("converged", True) else "*"
            starred |= bool(mark)
            lr = f"{c['lr']:.0e}" if np.isfinite(c.get("lr", np.nan)) else "-"
            lines.append(f"{row:<30}{budget:>7}{c['n_frames']:>7}  {cells}{lr:>8}{mark}")
    if starred:
        lines.append(
            "* at least one run of this cell had not converged (its best validation Dice still "
            "rose by >= 2 % in the last quarter of its steps): more steps would change it."
        )
    return "\n".join(lines)


def paired(
    results: "Sequence[DenseResult] | Mapping[str, Sequence[DenseResult]]",
    row_a: str,
    row_b: str,
    budget: "int | str",
    task: "str | None" = None,
    metric: str = "dice",
    budget_b: "int | str | None" = None,
) -> tuple[list[float], list[float]]:
    """Per-seed aligned test scores (a_runs, b_runs) of two rows at a budget
    (row_b at budget_b if given), for claims.

    results: one task's runs, or {task: runs} with `task`. Only seeds both rows ran are kept, in
    seed order.
    """
    if isinstance(results, Mapping):
        if task not in results:
            raise InputError(
                f"paired: task={task!r} is not among the results' tasks {sorted(results)}."
            )
        results = results[task]
    budget_b = budget if budget_b is None else budget_b
    by = [
        {r.seed: r.scores[metric] for r in results if r.row == row and str(r.budget) == str(b)}
        for row, b in ((row_a, budget), (row_b, budget_b))
    ]
    for (row, b), runs in zip(((row_a, budget), (row_b, budget_b)), by):
        if not runs:
            raise InputError(
                f"paired: no runs of row {row!r} at budget {b!r}; rows: "
                f"{sorted({r.row for r in results})}."
            )
    seeds = sorted(set(by[0]) & set(by[1]))
    if not seeds:
        raise InputError(
            f"paired: rows {row_a!r} and {row_b!r} share no seed; run both with the same seeds."
        )
    return [by[0][s] for s in seeds], [by[1][s] for s in seeds]


def more_labels_check(
    table: Mapping[str, Mapping[str, Mapping[str, float]]], tol: float = 0.02, metric: str = "dice"
) -> dict[str, tuple[float, float, bool]]:
    """Per row: (mean at its smallest budget, mean at its largest, largest >= smallest - tol): more
    labels never hurt."""
    out = {}
    for row, by_budget in table.items():
        cells = sorted(by_budget.values(), key=lambda c: c["n_frames"])
        lo, hi = cells[0][metric], cells[-1][metric]
        out[row] = (lo, hi, bool(hi >= lo - tol))
    return out


def examples(
    results: Sequence[DenseResult], rows: Sequence[str], budget: "int | str"
) -> dict[str, np.ndarray]:
    """{'<row>, n frame(s)': (Y, X) probabilities of the middle test frame} of each row's first run
    at `budget`."""
    out = {}
    for row in rows:
        run = next((r for r in results if r.row == row and str(r.budget) == str(budget)), None)
        if run is not None and run.example is not None:
            out[f"{row}, {len(run.frames)} fr."] = run.example.astype(np.float32)
    return out


def budget_to_reach(
    table: Mapping[str, Mapping[str, Mapping[str, float]]],
    reference: float,
    fraction: float = 0.95,
    metric: str = "dice",
) -> dict[str, "int | None"]:
    """Per row: the fewest labelled frames whose mean `metric` reaches fraction * reference
    (None: never)."""
    out = {}
    for row, by_budget in table.items():
        hits = [c["n_frames"] for c in by_budget.values() if c[metric] >= fraction * reference]
        out[row] = min(hits) if hits else None
    return out


def record_entries(
    table: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> dict[str, dict[str, dict[str, float]]]:
    """{row: {budget: {dice, dice_std, object_f1, object_f1_std, iou, n_frames, n_runs, lr, steps,
    converged}}} for results.record('segmentation')."""
    keep = (
        "dice",
        "dice_std",
        "iou",
        "object_f1",
        "object_f1_std",
        "n_frames",
        "n_runs",
        "lr",
        "steps",
        "converged",
    )
    return {
        row: {b: {k: c[k] for k in keep if k in c} for b, c in by_budget.items()}
        for row, by_budget in table.items()
    }
