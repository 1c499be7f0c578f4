"""Figures of the event-recognition notebooks (03-06): crop pairs, criteria, strategy results,
mistakes.

Event outlines use the one colour code of tapkit.plot.EVENT_COLORS: divisions red, deaths cyan.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from tapkit.data.movie import InputError
from tapkit.downstream.calibration import as_numbers, event_probability
from tapkit.downstream.events.criteria import (
    CRITERIA,
    event_pixels,
    label_pairs,
    pick_disagreements,
)
from tapkit.downstream.events.crops import CropPairs
from tapkit.downstream.events.error_timing import CATEGORIES, CATEGORY_NAMES, worst_mistakes
from tapkit.downstream.events.strategies import FEATURES, HEADS
from tapkit.downstream.events.tables import PAPER_TABLE2
from tapkit.plot import EVENT_COLORS
from tapkit.plot.style import budget_ticks, integer_ticks, log_limits, series_colors, series_styles


def _outline_events(ax: Any, mask: np.ndarray) -> None:
    """Outline the event pixels of one (S, S) mask crop, one colour per event class."""
    for code, color in EVENT_COLORS.items():
        if (mask == code).any():
            ax.contour(mask == code, levels=[0.5], colors=[color], linewidths=1)


# --------------------------------------------------------------------- crop pairs and criteria (03)


def plot_dataset_table(rows: Sequence[Mapping[str, Any]]) -> Any:
    """Grouped bars: positives per split for each criterion (a picture of dataset_table)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    parts, width = ("train", "val", "test"), 0.8 / max(1, len(rows))
    for i, r in enumerate(rows):
        vals = [r[f"{p}_positives"] for p in parts]
        ax.bar(np.arange(3) + i * width, vals, width, label=str(r["criterion"]))
    ax.set_xticks(np.arange(3) + width * (len(rows) - 1) / 2, [f"{p} positives" for p in parts])
    ax.set_ylabel("pairs")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def criteria_gallery(
    pairs: CropPairs,
    idx: Sequence[int] | None = None,
    n: int = 6,
    threshold: int = 40,
    seed: int = 0,
) -> Any:
    """Figure: crop pairs (frame t over t + delta, event contours) with their label under each
    criterion."""
    import matplotlib.pyplot as plt

    idx = (
        pick_disagreements(pairs, n, threshold, seed)
        if idx is None
        else np.asarray(idx, dtype=np.int64)
    )
    if len(idx) == 0:
        raise InputError(
            "criteria_gallery: no pairs to show; pass idx or cut pairs that contain events."
        )
    labs = {c: label_pairs(pairs, c, threshold) for c in CRITERIA}
    fig, axes = plt.subplots(2, len(idx), figsize=(1.9 * len(idx), 4.6), squeeze=False)
    for j, i in enumerate(idx):
        for k in range(2):
            ax = axes[k, j]
            ax.imshow(pairs.images[i, k], cmap="gray", vmin=0, vmax=1)
            _outline_events(ax, pairs.masks[i, k])
            ax.set_xticks([]), ax.set_yticks([])
        axes[0, j].set_title("\n".join(f"{c}: {labs[c][i]}" for c in CRITERIA), fontsize=8)
        axes[1, j].set_xlabel(
            f"#{i}: {event_pixels(pairs.masks[i : i + 1])[0].tolist()} px", fontsize=8
        )
    axes[0, 0].set_ylabel("frame t")
    axes[1, 0].set_ylabel(f"frame t+{pairs.delta}")
    fig.suptitle(
        f"Labels under each criterion (size threshold {threshold} px; outlines: divisions red, "
        "deaths cyan)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def plot_event_sizes(pairs: CropPairs, threshold: int = 40, classes: str = "both") -> Any:
    """Histogram of event pixels per pair (larger of the two crops), with the size threshold."""
    import matplotlib.pyplot as plt

    size = event_pixels(pairs, classes).max(axis=1)
    size = size[size > 0]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(size, bins=40, color="tab:blue")
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold} px")
    ax.set_xlabel("event pixels in the crop pair (larger crop)")
    ax.set_ylabel("pairs")
    ax.set_title(f"{len(size)} of {len(pairs)} pairs touch an event", fontsize=9)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_threshold_sweep(
    pairs: CropPairs,
    thresholds: Sequence[int] = (1, 10, 20, 40, 80, 160, 320),
    classes: str = "both",
) -> Any:
    """Positives under size-either for each threshold, with any-either and any-both as
    references."""
    import matplotlib.pyplot as plt

    counts = event_pixels(pairs, classes)  # (N, 2)
    pos = [int((counts >= th).any(axis=1).sum()) for th in thresholds]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(thresholds, pos, "o-", label="size-either")
    ax.axhline((counts > 0).any(axis=1).sum(), color="tab:orange", ls="--", label="any-either")
    ax.axhline((counts > 0).all(axis=1).sum(), color="tab:green", ls=":", label="any-both")
    ax.set_xscale("log")
    ax.set_xlabel("size threshold (event pixels)")
    ax.set_ylabel("positive pairs")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- strategies (04)


def plot_results(
    table: Mapping[str, Mapping], paper: Mapping[str, Mapping] | None = PAPER_TABLE2
) -> Any:
    """Four panels (precision/recall of class 0/1): bars = mean ± std per strategy, dots = the
    paper."""
    import matplotlib.pyplot as plt

    names = list(table)
    fig, axes = plt.subplots(1, 4, figsize=(12.8, 3), sharey=True, layout="constrained")
    for ax, (m, c) in zip(axes, [("precision", 0), ("recall", 0), ("precision", 1), ("recall", 1)]):
        mean = [table[n][m][c] for n in names]
        ax.bar(
            names,
            mean,
            yerr=[table[n][f"{m}_std"][c] for n in names],
            color="tab:blue",
            capsize=3,
            label="ours",
        )
        if paper:
            ax.plot(
                [n for n in names if n in paper],
                [paper[n][m][c] for n in names if n in paper],
                "ko",
                ms=4,
                label="paper",
            )
        ax.set_title(f"{m} class {c}")
        ax.set_ylim(0, 1.05)
    fig.legend(
        *axes[0].get_legend_handles_labels(), frameon=False, fontsize=8, loc="outside right center"
    )
    return fig


def plot_budget_curve(curve: Mapping[str, Any]) -> Any:
    """Class-1 F1 (mean ± std over runs) vs number of labelled training pairs, one line per
    strategy."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 3.4))
    x = np.asarray(curve["n_train"])
    rows = {
        k: np.asarray(v)
        for k, v in curve.items()
        if k not in ("budgets", "n_train", "converged", "lr")
    }
    styles = series_styles(rows)  # one colour per strategy, never the event colours red / cyan
    for name, f1 in rows.items():
        mean, std, st = f1.mean(1), f1.std(1), styles[name]
        label = (
            f"{name}: {FEATURES[name[0]]}, {HEADS[name[1]]}"
            if name[:1] in FEATURES and name[1:] in HEADS
            else name
        )
        ax.plot(x, mean, color=st["color"], ls=st["ls"], marker=st["marker"], label=label)
        ax.fill_between(
            x,
            np.clip(mean - std, 0, 1),
            np.clip(mean + std, 0, 1),
            color=st["color"],
            alpha=0.15,
            lw=0,
        )
    return style_budget_axes(ax, x)


def plot_val_curves(
    results: Mapping[str, Sequence[Any]], title: str = "validation F1 during training"
) -> Any:
    """Validation class-1 F1 vs optimiser step of every run, one panel per strategy; the kept step
    is marked."""
    import matplotlib.pyplot as plt

    names = [n for n, runs in results.items() if runs]
    # one colour per seed, every panel
    colors = series_colors(f"seed {r.seed}" for n in names for r in results[n])
    fig, axes = plt.subplots(
        1, len(names), figsize=(2.3 * len(names), 2.6), sharey=True, squeeze=False
    )
    for ax, name in zip(axes[0], names):
        for i, r in enumerate(results[name]):
            h, color = r.history, colors[f"seed {r.seed}"]
            ax.plot(
                h["val_step"],
                h["val_f1"],
                lw=1,
                color=color,
                label=f"seed {r.seed}" + ("" if r.converged else " *"),
            )
            ax.plot(h["best_step"], h["best_val_f1"], "o", color=color, ms=4)
        ax.set(title=f"{name} (lr {results[name][0].lr:.0e})", xlabel="step", ylim=(-0.02, 1.02))
        ax.title.set_fontsize(9)
        integer_ticks(ax)
        ax.legend(fontsize=6, frameon=False)
    axes[0][0].set_ylabel("val F1 (class 1)")
    title += "; * not converged" if any(not r.converged for n in names for r in results[n]) else ""
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- mistakes (05)


def plot_error_timing(timing: dict[str, np.ndarray], title: str | None = None) -> Any:
    """Two panels like paper 001 Figs. 3 and 4: FP vs TP vs GT positives; FN vs TN vs GT
    negatives."""
    import matplotlib.pyplot as plt

    missing = [k for k in ("t",) + tuple(f"{c}_share" for c in CATEGORIES) if k not in timing]
    if missing:
        raise InputError(
            f"plot_error_timing: pass the dict returned by error_timing(); missing {missing}."
        )
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharex=True)
    panels = (
        (("fp", "tab:red"), ("tp", "tab:green"), ("pos", "k")),
        (("fn", "tab:orange"), ("tn", "tab:blue"), ("neg", "k")),
    )
    for ax, panel in zip(axes, panels):
        for key, color in panel:
            total = int(np.sum(timing[key]))
            ax.plot(
                timing["t"],
                100 * timing[f"{key}_share"],
                color=color,
                marker=".",
                ls="--" if key in ("pos", "neg") else "-",
                label=f"{CATEGORY_NAMES[key]} (n={total})",
            )
        ax.set(xlabel="time index t of the pair", ylabel="% of the category's total")
        integer_ticks(ax)
        ax.legend(fontsize=8)
    axes[0].set_title("false positives over time")
    axes[1].set_title("false negatives over time")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _draw_crop(ax: Any, image: np.ndarray, mask: np.ndarray | None, title: str) -> None:
    """One (S, S) crop in grey with the event-mask outlines (EVENT_COLORS: divisions red, deaths
    cyan)."""
    ax.imshow(
        image,
        cmap="gray",
        vmin=float(np.percentile(image, 1)),
        vmax=float(np.percentile(image, 99.8)),
    )
    if mask is not None:
        _outline_events(ax, mask)
    ax.set_title(title, fontsize=7)
    ax.set_axis_off()


def plot_mistakes(
    pairs: Any, idx: Any, probs: Any, ncols: int = 4, title: str | None = None
) -> Any:
    """Gallery of crop pairs: frame t and t+delta side by side, event-mask contours, P(event) on
    top.

    ``pairs`` is a ``tapkit.downstream.events.crops.CropPairs``; ``idx`` indexes into it; ``probs``
    holds the event probability of each shown pair (same length as ``idx``). Contours: red =
    division, cyan = death (tapkit.plot.EVENT_COLORS).
    """
    import matplotlib.pyplot as plt

    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    p1 = as_numbers(probs, "probs").reshape(-1) if len(idx) else np.zeros(0)
    if len(p1) != len(idx):
        raise InputError(
            f"plot_mistakes: got {len(idx)} indices but {len(p1)} probabilities; pass probs[idx]."
        )
    if len(idx) and (idx.min() < 0 or idx.max() >= len(pairs.images)):
        raise InputError(
            f"plot_mistakes: indices must lie in 0..{len(pairs.images) - 1} (indices into pairs)."
        )
    n_rows = max(1, int(np.ceil(len(idx) / ncols)))
    fig, axes = plt.subplots(
        n_rows, 2 * ncols, figsize=(2 * ncols * 1.3, n_rows * 1.6), squeeze=False
    )
    for ax in axes.ravel():
        ax.set_axis_off()
    delta = getattr(pairs, "delta", 1)
    for k, (i, p) in enumerate(zip(idx, p1)):
        row, col = divmod(k, ncols)
        masks = getattr(pairs, "masks", None)
        for j in range(2):
            t0 = int(pairs.t[i])
            label = f"#{i}  t={t0}" if j == 0 else f"t={t0 + delta}  P(event)={p:.2f}"
            _draw_crop(
                axes[row, 2 * col + j],
                pairs.images[i, j],
                None if masks is None else masks[i, j],
                label,
            )
    if not len(idx):
        axes[0, 0].text(0, 0.5, "no mistakes of this kind", transform=axes[0, 0].transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_result_mistakes(
    result: Any, pairs: Any, which: str = "false_positives", k: int = 8
) -> Any:
    """The k most confident mistakes of a ``run_strategy`` result on its test split, as a
    gallery."""
    if which not in ("false_positives", "false_negatives"):
        raise InputError(f"which must be 'false_positives' or 'false_negatives', got {which!r}.")
    p1 = event_probability(result.test_logits, "logits")
    sel = worst_mistakes(p1, result.test_labels, k=k, kind="probs")[which]
    title = f"{getattr(result, 'strategy', '')}: most confident {which.replace('_', ' ')}".strip(
        ": "
    )
    return plot_mistakes(pairs, np.asarray(result.test_index)[sel], p1[sel], title=title)


def style_budget_axes(ax: Any, x: "Sequence[float] | None" = None) -> Any:
    """Axes of an F1-vs-label-budget plot: log x with ticks at the sizes run (`x`), labels, 0-1 y,
    legend; returns the tight Figure."""
    ax.set_xscale("log")
    if x is not None and len(x):
        sizes = sorted({int(v) for v in np.asarray(x).ravel()})
        ax.set_xlim(*log_limits(sizes))
        budget_ticks(ax, {n: str(n) for n in sizes})
    ax.set_xlabel("labelled training pairs")
    ax.set_ylabel("F1 of class 1 (event), test set")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    ax.figure.tight_layout()
    return ax.figure
