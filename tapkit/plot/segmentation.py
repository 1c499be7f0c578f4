"""Figures of notebook 08: task masks, predictions, score vs label budget, flicker over time and flicker maps."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from tapkit.plot import EVENT_COLORS
from tapkit.data.movie import DIVISION


def _image(ax: Any, image: np.ndarray, title: str) -> None:
    """A grey frame without ticks."""
    ax.imshow(image, cmap="gray")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def plot_task_masks(frame: np.ndarray, masks: Mapping[str, np.ndarray]) -> Any:
    """One frame and the outline of each task's mask on it (divisions in the course's red)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(masks), figsize=(3.2 * (1 + len(masks)), 3.3))
    _image(axes[0], frame, "frame")
    for ax, (task, mask) in zip(axes[1:], masks.items()):
        _image(ax, frame, f"{task}: {int(mask.sum())} px ({100 * mask.mean():.1f} %)")
        color = EVENT_COLORS[DIVISION] if task == "divisions" else (1.0, 0.8, 0.0)
        if mask.any():
            ax.contour(mask, levels=[0.5], colors=[color], linewidths=1)
    fig.tight_layout()
    return fig


def plot_budget_table(table: Mapping[str, Mapping[str, Mapping[str, float]]], title: str,
                      metrics: Sequence[str] = ("dice", "object_f1")) -> Any:
    """Score (mean ± std over runs) vs labelled frames, one line per features · head, one panel per metric."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for row, by_budget in table.items():
            cells = sorted(by_budget.values(), key=lambda c: c["n_frames"])
            x = [c["n_frames"] for c in cells]
            y, s = np.array([c[metric] for c in cells]), np.array([c[f"{metric}_std"] for c in cells])
            style = "s--" if " · " not in row else ("o:" if row.endswith("linear") else "o-")
            ax.plot(x, y, style, label=row, ms=4)
            ax.fill_between(x, y - s, y + s, alpha=0.12)
        ax.set_xscale("log")
        ax.set_xlabel("labelled frames")
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_ylim(0, 1)
        ax.set_title(f"{title}: {metric.replace('_', ' ')}", fontsize=9)
    axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig


def plot_predictions(frame: np.ndarray, true: np.ndarray, probs: Mapping[str, np.ndarray]) -> Any:
    """A test frame with the ground truth, and each row's probability map with the true outline."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(probs), figsize=(2.9 * (1 + len(probs)), 3.1))
    _image(axes[0], frame, "frame + truth")
    axes[0].contour(true, levels=[0.5], colors=["yellow"], linewidths=0.8)
    for ax, (name, p) in zip(axes[1:], probs.items()):
        ax.imshow(p, cmap="magma", vmin=0, vmax=1)
        ax.contour(true, levels=[0.5], colors=["cyan"], linewidths=0.6)
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_flicker(curves: Mapping[str, np.ndarray], t0: int = 0) -> Any:
    """Flicker (1 - Dice of consecutive predictions in stable cells) per frame pair, one line per model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, values in curves.items():
        ax.plot(np.arange(len(values)) + t0, values, "o-" if name != "ground truth" else "k--", ms=3,
                label=f"{name} (mean {np.mean(values):.3f})")
    ax.set_xlabel("frame pair (t, t + 1)")
    ax.set_ylabel("flicker")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_flicker_maps(preds: Mapping[str, np.ndarray], t: int) -> Any:
    """Where each model's binary prediction changes from t to t + 1: white kept, red lost, green gained."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(preds), figsize=(3.3 * len(preds), 3.4), squeeze=False)
    for ax, (name, pred) in zip(axes[0], preds.items()):
        a, b = pred[t] > 0, pred[t + 1] > 0
        rgb = np.zeros(a.shape + (3,))
        rgb[a & b] = 1.0
        rgb[a & ~b] = (1.0, 0.1, 0.1)
        rgb[~a & b] = (0.1, 0.9, 0.1)
        ax.imshow(rgb)
        ax.set_title(f"{name}: {int((a ^ b).sum())} px change", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_histories(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> Any:
    """Segmentation and consistency losses per step of each Siamese training variant."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=False)
    for name, h in histories.items():
        for ax, key in zip(axes, ("segmentation", "consistency")):
            if len(h.get(key, [])):
                ax.plot(h[key], label=name, lw=1)
                ax.set_title(f"{key} loss", fontsize=9)
                ax.set_xlabel("step")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_val_curves(results: Sequence[Any], budget: "int | str", rows: "Sequence[str] | None" = None) -> Any:
    """Validation Dice vs optimiser step at one budget: one panel per row (default: the first row of each kind —
    linear head, conv head, each end-to-end row), one line per run, a dot at the restored (best) step."""
    import matplotlib.pyplot as plt

    at = [r for r in results if str(r.budget) == str(budget) and len(r.val_curve)]
    if rows is None:
        kinds: dict[str, str] = {}
        for r in at:
            kinds.setdefault(r.row.split(" · ")[-1] if " · " in r.row else r.row, r.row)
        rows = list(kinds.values())
    rows = [row for row in rows if any(r.row == row for r in at)]
    fig, axes = plt.subplots(1, max(1, len(rows)), figsize=(3.3 * max(1, len(rows)), 2.9), squeeze=False)
    for ax, row in zip(axes[0], rows):
        for r in (r for r in at if r.row == row):
            line, = ax.plot(r.val_steps, r.val_curve, lw=1, label=f"seed {r.seed}" + ("" if r.converged else " *"))
            ax.plot([r.best_step], [r.val_curve[r.val_steps.index(r.best_step)]], "o", ms=3, color=line.get_color())
        lr = next(r.lr for r in at if r.row == row)
        ax.set_title(f"{row} (budget {budget}, lr {lr:.0e})", fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6)
    axes[0, 0].set_ylabel("validation Dice")
    fig.tight_layout()
    return fig
