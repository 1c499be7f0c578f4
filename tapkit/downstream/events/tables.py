"""Result tables of the event strategies, and the paper's numbers
(Chen et al. 2024, Tables 2, 3 and 5).

Every number comes from what run_strategy stored in a StrategyResult
(precision, recall, F1, confusion).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from tapkit.downstream.events.strategies import FEATURES, HEADS, StrategyResult

# Paper 001, Table 2: mean and std over 10 runs, classes (0 = no event, 1 = event).
PAPER_TABLE2: dict[str, dict[str, tuple[float, float]]] = {
    "A0": dict(
        precision=(0.98, 0.50),
        precision_std=(0.00, 0.04),
        recall=(0.87, 0.85),
        recall_std=(0.03, 0.03),
    ),
    "A1": dict(
        precision=(0.98, 0.70),
        precision_std=(0.00, 0.03),
        recall=(0.94, 0.89),
        recall_std=(0.01, 0.03),
    ),
    "B0": dict(
        precision=(0.95, 0.34),
        precision_std=(0.04, 0.20),
        recall=(0.60, 0.67),
        recall_std=(0.32, 0.36),
    ),
    "B1": dict(
        precision=(0.97, 0.50),
        precision_std=(0.01, 0.08),
        recall=(0.87, 0.80),
        recall_std=(0.07, 0.05),
    ),
    "C0": dict(
        precision=(0.97, 0.60),
        precision_std=(0.00, 0.02),
        recall=(0.92, 0.82),
        recall_std=(0.01, 0.01),
    ),
    "C1": dict(
        precision=(0.98, 0.57),
        precision_std=(0.01, 0.08),
        recall=(0.90, 0.86),
        recall_std=(0.04, 0.05),
    ),
}
# Paper 001, Table 5: (criterion, head) -> precision / recall means per class, and
# (train, test) positives.
PAPER_TABLE5: dict[tuple[str, str], dict[str, tuple]] = {
    ("any-both", "linear"): dict(
        precision=(0.98, 0.39), recall=(0.85, 0.87), positives=(5858, 1867)
    ),
    ("any-both", "ResNet"): dict(
        precision=(0.99, 0.52), recall=(0.91, 0.89), positives=(5858, 1867)
    ),
    ("any-either", "linear"): dict(
        precision=(0.96, 0.47), recall=(0.80, 0.83), positives=(9946, 3284)
    ),
    ("any-either", "ResNet"): dict(
        precision=(0.97, 0.72), recall=(0.93, 0.86), positives=(9946, 3284)
    ),
    ("size-either", "linear"): dict(
        precision=(0.98, 0.50), recall=(0.87, 0.85), positives=(7467, 2470)
    ),
    ("size-either", "ResNet"): dict(
        precision=(0.98, 0.70), recall=(0.94, 0.89), positives=(7467, 2470)
    ),
}


def _mean_std(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Mean and sample std (ddof=1; 0 for a single run) over runs (axis 0)."""
    values = np.asarray(values, dtype=float)
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1:])
    return values.mean(axis=0).tolist(), std.tolist()


def results_table(results: Mapping[str, Sequence[StrategyResult]]) -> dict[str, dict[str, Any]]:
    """Per strategy: precision/recall/F1 per class, mean and std over runs (Table 2)."""
    table = {}
    for name, runs in results.items():
        if not runs:
            continue
        row: dict[str, Any] = {
            "n_runs": len(runs),
            "converged": all(r.converged for r in runs),
            "lr": runs[0].lr,
            "unconverged_runs": sum(not r.converged for r in runs),
        }
        for metric in ("precision", "recall", "f1"):
            # (runs, 2)
            row[metric], row[f"{metric}_std"] = _mean_std(
                np.array([getattr(r, metric) for r in runs])
            )
        table[name] = row
    return table


def _pm(mean: float, std: float) -> str:
    return f"{mean:.2f}±{std:.2f}"


def format_results(
    table: Mapping[str, Mapping], paper: Mapping[str, Mapping] | None = PAPER_TABLE2
) -> str:
    """Table 2 as text: mean ± std per class (paper's numbers in brackets), the lr chosen, * = a run
    not converged."""
    cols = [("precision", 0), ("recall", 0), ("precision", 1), ("recall", 1)]
    head = (
        f"{'group':<6}{'feature':<18}{'head':<8}"
        + "".join(f"{m[:4]} {c:<19}" for m, c in cols)
        + "lr"
    )
    lines = [head, "-" * len(head)]
    for name, row in table.items():
        kind, h = name[0], HEADS.get(name[1], "?")
        cells = []
        for m, c in cols:
            cell = _pm(row[m][c], row[f"{m}_std"][c])
            if paper and name in paper:
                cell += f" ({_pm(paper[name][m][c], paper[name][f'{m}_std'][c])})"
            cells.append(f"{cell:<24}")
        mark = "" if row.get("converged", True) else f" *{row['unconverged_runs']}"
        lines.append(
            f"{name + mark:<6}{FEATURES.get(kind, '?'):<18}{h:<8}"
            + "".join(cells)
            + f"{row.get('lr', 0):.0e}"
        )
    if any(not row.get("converged", True) for row in table.values()):
        lines.append(
            "* n: n runs whose validation F1 still rose by >= 2 % in their last quarter of steps "
            "(not converged)"
        )
    if paper:
        lines.append("(in brackets: Chen et al. 2024, Table 2, 10 runs on their HeLa-like movie)")
    return "\n".join(lines)


def format_confusion(result: StrategyResult) -> str:
    """Table 3 as text: the confusion matrix plus per-class precision and recall."""
    cm, p, r = result.confusion, result.precision, result.recall
    return "\n".join(
        [
            f"{result.strategy} (seed {result.seed}) on {cm.sum()} test pairs",
            f"{'':<10}{'pred 0':>9}{'pred 1':>9}",
            f"{'actual 0':<10}{cm[0, 0]:>9}{cm[0, 1]:>9}",
            f"{'actual 1':<10}{cm[1, 0]:>9}{cm[1, 1]:>9}",
            f"{'':<10}{'prec':>9}{'recall':>9}",
            f"{'class 0':<10}{p[0]:>9.2f}{r[0]:>9.2f}",
            f"{'class 1':<10}{p[1]:>9.2f}{r[1]:>9.2f}",
        ]
    )


def criteria_table(
    results: Mapping[str, Mapping[str, Sequence[StrategyResult]]],
) -> list[dict[str, Any]]:
    """Rows like Table 5: criterion, head, train/test positives, precision/recall per class
    (mean, std)."""
    rows = []
    for crit, by_strategy in results.items():
        for name, row in results_table(by_strategy).items():
            first = by_strategy[name][0]
            n_pos_test = int(first.test_labels.sum())
            rows.append(
                dict(
                    criterion=crit,
                    strategy=name,
                    head=HEADS[name[1]],
                    train_positives=first.n_train // 2,
                    test_positives=n_pos_test,
                    **row,
                )
            )
    return rows


def format_criteria_table(
    rows: Sequence[Mapping[str, Any]], paper: Mapping | None = PAPER_TABLE5
) -> str:
    """Table 5 as text, with the paper's class-1 precision/recall in brackets."""
    head = (
        f"{'criterion':<13}{'head':<8}{'pos train, test':<17}"
        f"{'prec 0':<12}{'rec 0':<12}{'prec 1':<22}{'rec 1':<22}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        ref = (paper or {}).get((r["criterion"], r["head"]))
        cells = [
            _pm(r["precision"][0], r["precision_std"][0]),
            _pm(r["recall"][0], r["recall_std"][0]),
        ]
        c1 = [
            _pm(r[m][1], r[f"{m}_std"][1]) + (f" ({ref[m][1]:.2f})" if ref else "")
            for m in ("precision", "recall")
        ]
        lines.append(
            f"{r['criterion']:<13}{r['head']:<8}"
            f"{str(r['train_positives']) + ', ' + str(r['test_positives']):<17}"
            + "".join(f"{c:<12}" for c in cells)
            + "".join(f"{c:<22}" for c in c1)
        )
    if paper:
        lines.append("(in brackets: Chen et al. 2024, Table 5)")
    return "\n".join(lines)
