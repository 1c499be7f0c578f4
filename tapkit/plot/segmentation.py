"""Figures of notebook 08: task masks, predictions, score vs label budget, flicker over time and
flicker maps."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from tapkit.data.movie import DIVISION
from tapkit.plot import EVENT_COLORS
from tapkit.plot.style import budget_ticks, integer_ticks, log_limits, series_colors, series_styles


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


# outline colour of a task's mask; other tasks: MASK_COLOR
TASK_COLORS = {"divisions": EVENT_COLORS[DIVISION]}
MASK_COLOR = (1.0, 0.8, 0.0)
FLICKER_COLORS = {
    "kept": (1.0, 1.0, 1.0),
    "lost at t + 1": (0.85, 0.2, 0.85),
    "gained at t + 1": (0.1, 0.8, 0.1),
}


def _budget_label(budgets: set, n_frames: int) -> str:
    """Tick label of one x position: the budget(s) run there; 'all' with its number of frames."""
    names = sorted(budgets, key=lambda b: (b == "all", int(b) if str(b).isdigit() else 0, str(b)))
    return "/".join(f"all ({n_frames})" if b == "all" else str(b) for b in names)


def plot_budget_table(
    table: Mapping[str, Mapping[str, Mapping[str, float]]],
    title: str,
    metrics: Sequence[str] = ("dice", "object_f1"),
) -> Any:
    """Score (mean ± std over runs) vs labelled frames, one line per features · head, one panel per
    metric.

    One colour per row in every figure (tapkit.plot.style: features -> hue, dark conv / light linear
    head, squares for the rows trained end to end); x ticks at the budgets run, 'all' included.
    """
    import matplotlib.pyplot as plt

    styles = series_styles(table)
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(4.6 * len(metrics) + 2.2, 3.6),
        squeeze=False,
        layout="constrained",
    )
    ticks: dict[int, set] = {}
    for ax, metric in zip(axes[0], metrics):
        for row, by_budget in table.items():
            cells = sorted(by_budget.items(), key=lambda kv: kv[1]["n_frames"])
            x = [c["n_frames"] for _, c in cells]
            y, s = (
                np.array([c[metric] for _, c in cells]),
                np.array([c[f"{metric}_std"] for _, c in cells]),
            )
            st = styles[row]
            ax.plot(x, y, color=st["color"], ls=st["ls"], marker=st["marker"], label=row, ms=4)
            ax.fill_between(
                x, np.clip(y - s, 0, 1), np.clip(y + s, 0, 1), color=st["color"], alpha=0.12, lw=0
            )
            for budget, c in cells:
                ticks.setdefault(int(c["n_frames"]), set()).add(str(budget))
        ax.set_xscale("log")
        ax.set_xlim(*log_limits(list(ticks)))
        budget_ticks(ax, {n: _budget_label(b, n) for n, b in ticks.items()})
        ax.set_xlabel("labelled frames (budget)")
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{title}: {metric.replace('_', ' ')}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="outside right center", frameon=False)
    return fig


def plot_predictions(
    frame: np.ndarray, true: np.ndarray, probs: Mapping[str, np.ndarray], task: "str | None" = None
) -> Any:
    """A test frame with the true mask's outline, and each row's probability map with the same
    outline.

    The outline is the task's colour (divisions red as everywhere in the course, other masks
    yellow); one colour bar for the probability maps; `task` names the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    color = TASK_COLORS.get(task or "", MASK_COLOR)
    fig, axes = plt.subplots(
        1,
        1 + len(probs),
        figsize=(2.9 * (1 + len(probs)) + 0.8, 3.5),
        squeeze=False,
        layout="constrained",
    )
    axes = axes[0]
    lo, hi = np.percentile(frame, (1, 99.8))
    axes[0].imshow(frame, cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6))
    axes[0].set_title("frame + truth", fontsize=8)
    axes[0].axis("off")
    if np.any(true):
        axes[0].contour(np.asarray(true) > 0, levels=[0.5], colors=[color], linewidths=0.8)
    image = None
    for ax, (name, p) in zip(axes[1:], probs.items()):
        image = ax.imshow(p, cmap="viridis", vmin=0, vmax=1)
        if np.any(true):
            ax.contour(np.asarray(true) > 0, levels=[0.5], colors=[color], linewidths=1.0)
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=list(axes[1:]), shrink=0.8, label="P(pixel in the mask)")
    what = f"{task} mask" if task else "mask"
    fig.legend(
        handles=[Line2D([], [], color=color, lw=1.2, label=f"true {what} (outline)")],
        loc="outside lower center",
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(f"{task + ': ' if task else ''}predicted probability on a test frame", fontsize=10)
    return fig


def plot_flicker(curves: Mapping[str, np.ndarray], t0: int = 0) -> Any:
    """Flicker (1 - Dice of consecutive predictions in stable cells) per frame pair, one line per
    model."""
    import matplotlib.pyplot as plt

    styles = series_styles(curves)
    fig, ax = plt.subplots(figsize=(8.4, 3.2))
    for name, values in curves.items():
        st = styles[name]
        ax.plot(
            np.arange(len(values)) + t0,
            values,
            color=st["color"],
            ls=st["ls"],
            marker=st["marker"],
            ms=3,
            label=f"{name} (mean {np.mean(values):.3f})",
        )
    integer_ticks(ax)
    ax.set_xlabel("frame pair (t, t + 1): t")
    ax.set_ylabel("flicker")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def plot_flicker_maps(preds: Mapping[str, np.ndarray], t: int, t0: int = 0) -> Any:
    """Where each model's binary prediction changes from t to t + 1: white kept, magenta lost, green
    gained (never red or cyan: those are divisions and deaths); a key below the maps.

    preds: {model: (T, Y, X)} predictions of consecutive frames; t indexes them, t0 is the movie
    frame of index 0 (the title names movie frames t0 + t and t0 + t + 1, as plot_flicker's axis).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(
        1, len(preds), figsize=(3.3 * len(preds), 3.8), squeeze=False, layout="constrained"
    )
    for ax, (name, pred) in zip(axes[0], preds.items()):
        a, b = pred[t] > 0, pred[t + 1] > 0
        rgb = np.zeros(a.shape + (3,))
        for region, key in (
            (a & b, "kept"),
            (a & ~b, "lost at t + 1"),
            (~a & b, "gained at t + 1"),
        ):
            rgb[region] = FLICKER_COLORS[key]
        ax.imshow(rgb)
        ax.set_title(f"{name}: {int((a ^ b).sum())} px change", fontsize=8)
        ax.axis("off")
    handles = [Patch(facecolor=c, edgecolor="0.3", label=k) for k, c in FLICKER_COLORS.items()]
    handles.append(Patch(facecolor="black", edgecolor="0.3", label="background at t and t + 1"))
    fig.legend(
        handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False
    )
    fig.suptitle(
        f"binary predictions of frames {t0 + t} and {t0 + t + 1}",
        fontsize=9,
    )
    return fig


def plot_histories(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> Any:
    """Segmentation and consistency losses per step of each Siamese training variant: one fixed
    colour per variant in both panels, one legend naming every variant (a variant without steps of a
    kind is named in that panel)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    styles = series_styles(histories)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    for ax, key in zip(axes, ("segmentation", "consistency")):
        missing = []
        for name, h in histories.items():
            if len(h.get(key, [])):
                ax.plot(
                    np.arange(1, len(h[key]) + 1),
                    h[key],
                    label=name,
                    lw=1,
                    color=styles[name]["color"],
                )
            else:
                missing.append(name)
        if missing:
            ax.text(
                0.98,
                0.96,
                f"no {key} steps: " + ", ".join(missing),
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7,
                color="0.3",
            )
        ax.set_title(f"{key} loss", fontsize=9)
        ax.set_xlabel("step")
        integer_ticks(ax)
    handles = [
        Line2D([], [], color=styles[name]["color"], lw=1.5, label=name) for name in histories
    ]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    return fig


def plot_val_curves(
    results: Sequence[Any],
    budget: "int | str",
    rows: "Sequence[str] | None" = None,
    task: str = "",
) -> Any:
    """Validation Dice vs optimiser step at one budget: one panel per row
    (default: the first row of each kind — linear head, conv head, each end-to-end row), one line
    per run, a dot at the restored (best) step; `task` (e.g. 'nuclei') titles the figure."""
    import matplotlib.pyplot as plt

    at = [r for r in results if str(r.budget) == str(budget) and len(r.val_curve)]
    if rows is None:
        kinds: dict[str, str] = {}
        for r in at:
            kinds.setdefault(r.row.split(" · ")[-1] if " · " in r.row else r.row, r.row)
        rows = list(kinds.values())
    rows = [row for row in rows if any(r.row == row for r in at)]
    colors = series_colors(f"seed {r.seed}" for r in at)  # one colour per seed in every panel
    fig, axes = plt.subplots(
        1, max(1, len(rows)), figsize=(3.3 * max(1, len(rows)), 2.9), squeeze=False
    )
    for ax, row in zip(axes[0], rows):
        for r in (r for r in at if r.row == row):
            color = colors[f"seed {r.seed}"]
            ax.plot(
                r.val_steps,
                r.val_curve,
                lw=1,
                color=color,
                label=f"seed {r.seed}" + ("" if r.converged else " *"),
            )
            ax.plot(
                [r.best_step], [r.val_curve[r.val_steps.index(r.best_step)]], "o", ms=3, color=color
            )
        lr = next(r.lr for r in at if r.row == row)
        ax.set_title(f"{row} (budget {budget}, lr {lr:.0e})", fontsize=8)
        ax.set_xlabel("step")
        integer_ticks(ax)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=6)
    axes[0, 0].set_ylabel("validation Dice")
    if task:
        fig.suptitle(f"{task}: validation Dice during training", fontsize=9)
    fig.tight_layout()
    return fig
