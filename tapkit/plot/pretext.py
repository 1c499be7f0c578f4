"""Figures of notebook 07 (which pretext task?): one batch per task, reconstructions, features,
curves."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from tapkit.data.movie import DEATH, DIVISION
from tapkit.plot import EVENT_COLORS, EVENT_NAMES
from tapkit.plot.events import style_budget_axes
from tapkit.plot.style import series_styles

HIDDEN_COLOR = (1.0, 0.8, 0.0)  # the hidden (masked) pixels of MIM: yellow, never an event colour


def _show(
    ax: Any, image: Any, title: str, cmap: str = "gray", vmin: float = 0.0, vmax: float = 1.0
) -> None:
    """One image panel without axes."""
    ax.imshow(np.asarray(image, dtype=np.float32), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def task_panels(
    name: str, batch: Mapping[str, torch.Tensor], i: int = 0
) -> list[tuple[np.ndarray, str]]:
    """(image, caption) panels of item i of a task's batch: what the network sees, and what it must
    predict."""
    b = {k: v.detach().float().cpu() for k, v in batch.items()}
    if "y" in b:  # TAP: a pair in shuffled order, target = the slot of the earlier frame
        return [
            (b["x"][i, 0, 0].numpy(), "slot 0"),
            (b["x"][i, 1, 0].numpy(), "slot 1"),
            (None, f"predict: earlier frame\nin slot {int(b['y'][i])}"),
        ]
    if "view1" in b:  # contrastive: two views are positives; the masked view is rebuilt
        masked = b["view1"][i, 0] * (1 - b["mask"][i, 0])
        return [
            (b["view1"][i, 0].numpy(), "view 1"),
            (b["view2"][i, 0].numpy(), "view 2 (positive)"),
            (masked.numpy(), "view 1 masked:\nrebuild hidden pixels"),
        ]
    m = b["mask"][i, 0]  # MIM: masked input, the mask, the target
    return [
        ((b["x"][i, 0] * (1 - m)).numpy(), f"{name}: input"),
        (m.numpy(), "mask (white = hidden)"),
        (b["x"][i, 0].numpy(), "target: hidden pixels"),
    ]


def plot_task_batches(batches: Mapping[str, Mapping[str, torch.Tensor]], i: int = 0) -> Any:
    """One row per pretext task: what it sees and what it predicts, for item i of one batch each."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(batches), 3, figsize=(6.6, 2.3 * len(batches)), squeeze=False)
    for row, (name, batch) in zip(axes, batches.items()):
        for ax, (image, caption) in zip(row, task_panels(name, batch, i)):
            if image is None:
                ax.text(0.5, 0.5, caption, ha="center", va="center", fontsize=9)
                ax.axis("off")
            else:
                _show(ax, image, caption)
        row[0].text(
            -0.15,
            0.5,
            name,
            transform=row[0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=10,
        )
    fig.tight_layout()
    return fig


def _show_hidden(ax: Any, mask: np.ndarray, fill: bool) -> None:
    """Mark the hidden pixels (mask 1) on an image panel: a translucent yellow fill, or their
    outline."""
    mask = np.asarray(mask, dtype=np.float32)
    if not mask.any():
        return
    if fill:
        rgba = np.zeros(mask.shape + (4,), np.float32)
        rgba[..., :3], rgba[..., 3] = HIDDEN_COLOR, 0.7 * mask
        ax.imshow(rgba)
    else:
        ax.contour(mask, levels=[0.5], colors=[HIDDEN_COLOR], linewidths=0.7)


def plot_reconstructions(
    rows: Mapping[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    n: int = 3,
    channel: int = 0,
) -> Any:
    """Per model and crop: masked input | prediction | truth; rows = {name: (x, mask, pred)} each
    (B, C, P, P).

    The hidden pixels are tinted yellow on the input (else they are black like the background) and
    outlined in yellow on the prediction and the truth.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(
        len(rows) * n,
        3,
        figsize=(5.4, 1.9 * n * len(rows) + 0.4),
        squeeze=False,
        layout="constrained",
    )
    for k, (name, (x, mask, pred)) in enumerate(rows.items()):
        x, m, p = (
            t.detach().float().cpu()[:, min(channel, t.shape[1] - 1)] for t in (x, mask, pred)
        )
        for j in range(n):
            ax = axes[k * n + j]
            _show(ax[0], x[j] * (1 - m[j]), f"{name}: masked input")
            _show_hidden(ax[0], m[j].numpy(), fill=True)
            _show(ax[1], p[j] * m[j] + x[j] * (1 - m[j]), "prediction (hidden part)")
            _show_hidden(ax[1], m[j].numpy(), fill=False)
            _show(ax[2], x[j], "truth")
            _show_hidden(ax[2], m[j].numpy(), fill=False)
    fig.legend(
        handles=[
            Patch(
                facecolor=HIDDEN_COLOR,
                alpha=0.7,
                edgecolor=HIDDEN_COLOR,
                label="hidden pixels (mask)",
            )
        ],
        loc="outside lower center",
        fontsize=8,
        frameon=False,
    )
    return fig


def plot_feature_maps(
    image: np.ndarray, maps: Mapping[str, torch.Tensor], n_channels: int = 4
) -> Any:
    """The image, then per model its n_channels dense-feature channels of largest variance; maps
    (F, Y, X)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(maps), n_channels + 1, figsize=(1.9 * (n_channels + 1), 1.9 * len(maps)), squeeze=False
    )
    for row, (name, z) in zip(axes, maps.items()):
        z = z.detach().float().cpu()
        # raw intensities or normalised
        lo, hi = np.percentile(np.asarray(image, dtype=np.float32), (1, 99.8))
        _show(row[0], image, f"{name}: frame", vmin=float(lo), vmax=float(max(hi, lo + 1e-6)))
        for ax, c in zip(
            row[1:], z.flatten(1).var(1).argsort(descending=True)[:n_channels].tolist()
        ):
            lo, hi = np.percentile(z[c].numpy(), [1, 99])
            _show(ax, z[c], f"channel {c}", cmap="magma", vmin=lo, vmax=hi)
    fig.tight_layout()
    return fig


def pooled_pca(z: torch.Tensor) -> np.ndarray:
    """2-D PCA of pooled features: (N, F, Y, X) -> (N, 2) (centred, first two principal axes)."""
    x = z.detach().float().mean(dim=(-2, -1))  # (N, F)
    x = (x - x.mean(0)) / x.std(0).clamp(min=1e-6)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    return (x @ v[:2].T).cpu().numpy()


def event_classes(pairs: Any) -> np.ndarray:
    """(N,) event class of each crop pair: DIVISION or DEATH (the class with more pixels in the
    pair's two masks), 0 without event pixels; pairs is a CropPairs or masks (N, 2, S, S)."""
    masks = np.asarray(getattr(pairs, "masks", pairs))
    # (N, 2)
    counts = np.stack([(masks == c).sum(axis=(1, 2, 3)) for c in (DIVISION, DEATH)], axis=1)
    return np.where(counts.max(1) > 0, np.where(counts[:, 1] > counts[:, 0], DEATH, DIVISION), 0)


def plot_pooled_pca(
    points: Mapping[str, np.ndarray], labels: np.ndarray, events: "np.ndarray | None" = None
) -> Any:
    """One scatter per model of its pooled features' 2-D PCA: pairs without event grey, events in
    the course's colours (divisions red, deaths cyan) when `events` (N,) gives each pair's class
    (event_classes), else one neutral colour for all events (class 1 of `labels`)."""
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    groups = [(labels == 0, "0.6", "no event")]
    if events is None:
        groups.append((labels != 0, "#7b4173", "event (division or death)"))
    else:
        events = np.asarray(events)
        groups += [
            ((labels != 0) & (events == c), EVENT_COLORS[c], EVENT_NAMES[c])
            for c in (DIVISION, DEATH)
        ]
        groups.append(
            ((labels != 0) & ~np.isin(events, (DIVISION, DEATH)), "#7b4173", "event (other)")
        )
    fig, axes = plt.subplots(1, len(points), figsize=(3 * len(points), 3.2), squeeze=False)
    for ax, (name, p) in zip(axes[0], points.items()):
        for keep, colour, text in groups:
            if keep.any():
                ax.scatter(
                    *p[keep].T, s=6, color=colour, label=f"{text} ({int(keep.sum())})", alpha=0.7
                )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("PC 1 (pooled features)", fontsize=8)
        ax.set_ylabel("PC 2", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
        ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


def plot_budget_curves(curves: Mapping[str, Any]) -> Any:
    """Class-1 F1 (mean ± std over runs) vs labelled training pairs, one line per features · head.

    One colour per row (tapkit.plot.style, never red or cyan), x ticks at the training-set sizes
    run.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.8, 3.6))
    x = np.asarray(curves["n_train"])
    rows = {k: np.asarray(v) for k, v in curves.items() if k != "n_train"}
    styles = series_styles(rows)
    for name, f1 in rows.items():
        st = styles[name]
        ax.plot(x, f1.mean(1), color=st["color"], ls=st["ls"], marker=st["marker"], label=name)
        ax.fill_between(
            x,
            np.clip(f1.mean(1) - f1.std(1), 0, 1),
            np.clip(f1.mean(1) + f1.std(1), 0, 1),
            color=st["color"],
            alpha=0.15,
            lw=0,
        )
    return style_budget_axes(ax, x)


def plot_pretext_table(
    table: Mapping[str, Mapping], metrics: Sequence[str] = ("precision", "recall", "f1")
) -> Any:
    """Bars of class-1 precision, recall and F1 (mean ± std) per features · head, in each row's
    colour (the same as in plot_budget_curves), with a legend."""
    import matplotlib.pyplot as plt

    names = list(table)
    styles = series_styles(names)
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(3.6 * len(metrics) + 2.4, 0.5 + 0.28 * max(6, len(names))),
        sharey=True,
        layout="constrained",
    )
    for ax, m in zip(np.atleast_1d(axes), metrics):
        for i, n in enumerate(names):
            ax.barh(
                [i],
                [table[n][m][1]],
                xerr=[table[n][f"{m}_std"][1]],
                color=styles[n]["color"],
                capsize=3,
                label=n,
            )
        ax.set_yticks(range(len(names)), names)
        ax.set_title(f"{m} of class 1 (event)", fontsize=9)
        ax.set_xlim(0, 1.05)
        ax.set_ylim(len(names) - 0.5, -0.5)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside right center",
        fontsize=7,
        frameon=False,
        title="features · head",
        title_fontsize=7,
    )
    return fig
