"""Figures of notebook 07 (which pretext task?): one batch per task, reconstructions, features, curves."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from tapkit.plot.events import style_budget_axes


def _show(ax: Any, image: Any, title: str, cmap: str = "gray", vmin: float = 0.0, vmax: float = 1.0) -> None:
    """One image panel without axes."""
    ax.imshow(np.asarray(image, dtype=np.float32), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def task_panels(name: str, batch: Mapping[str, torch.Tensor], i: int = 0) -> list[tuple[np.ndarray, str]]:
    """(image, caption) panels of item i of a task's batch: what the network sees, and what it must predict."""
    b = {k: v.detach().float().cpu() for k, v in batch.items()}
    if "y" in b:  # TAP: a pair in shuffled order, target = the slot of the earlier frame
        return [(b["x"][i, 0, 0].numpy(), "slot 0"), (b["x"][i, 1, 0].numpy(), "slot 1"),
                (None, f"predict: earlier frame\nin slot {int(b['y'][i])}")]
    if "view1" in b:  # contrastive: two views are positives; the masked view is rebuilt
        masked = b["view1"][i, 0] * (1 - b["mask"][i, 0])
        return [(b["view1"][i, 0].numpy(), "view 1"), (b["view2"][i, 0].numpy(), "view 2 (positive)"),
                (masked.numpy(), "view 1 masked:\nrebuild hidden pixels")]
    m = b["mask"][i, 0]  # MIM: masked input, the mask, the target
    return [((b["x"][i, 0] * (1 - m)).numpy(), f"{name}: input"), (m.numpy(), "mask (white = hidden)"),
            (b["x"][i, 0].numpy(), "target: hidden pixels")]


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
        row[0].text(-0.15, 0.5, name, transform=row[0].transAxes, rotation=90, va="center", ha="right", fontsize=10)
    fig.tight_layout()
    return fig


def plot_reconstructions(rows: Mapping[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]], n: int = 3,
                         channel: int = 0) -> Any:
    """Per model and crop: masked input | prediction | truth; rows = {name: (x, mask, pred)} each (B, C, P, P)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows) * n, 3, figsize=(5.4, 1.9 * n * len(rows)), squeeze=False)
    for k, (name, (x, mask, pred)) in enumerate(rows.items()):
        x, m, p = (t.detach().float().cpu()[:, min(channel, t.shape[1] - 1)] for t in (x, mask, pred))
        for j in range(n):
            ax = axes[k * n + j]
            _show(ax[0], x[j] * (1 - m[j]), f"{name}: masked input")
            _show(ax[1], p[j] * m[j] + x[j] * (1 - m[j]), "prediction (hidden part)")
            _show(ax[2], x[j], "truth")
    fig.tight_layout()
    return fig


def plot_feature_maps(image: np.ndarray, maps: Mapping[str, torch.Tensor], n_channels: int = 4) -> Any:
    """The image, then per model its n_channels dense-feature channels of largest variance; maps (F, Y, X)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(maps), n_channels + 1, figsize=(1.9 * (n_channels + 1), 1.9 * len(maps)),
                             squeeze=False)
    for row, (name, z) in zip(axes, maps.items()):
        z = z.detach().float().cpu()
        _show(row[0], image, f"{name}: frame")
        for ax, c in zip(row[1:], z.flatten(1).var(1).argsort(descending=True)[:n_channels].tolist()):
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


def plot_pooled_pca(points: Mapping[str, np.ndarray], labels: np.ndarray) -> Any:
    """One scatter per model of its pooled features' 2-D PCA, events (class 1) in red."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(points), figsize=(3 * len(points), 3), squeeze=False)
    for ax, (name, p) in zip(axes[0], points.items()):
        for cls, colour, text in ((0, "0.6", "no event"), (1, "tab:red", "event")):
            ax.scatter(*p[labels == cls].T, s=6, c=colour, label=text, alpha=0.6)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def plot_budget_curves(curves: Mapping[str, Any]) -> Any:
    """Class-1 F1 (mean ± std over runs) vs labelled training pairs, one line per features · head."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    x = np.asarray(curves["n_train"])
    for name, f1 in ((k, np.asarray(v)) for k, v in curves.items() if k != "n_train"):
        ax.plot(x, f1.mean(1), "o-", label=name)
        ax.fill_between(x, f1.mean(1) - f1.std(1), f1.mean(1) + f1.std(1), alpha=0.15)
    return style_budget_axes(ax)


def plot_pretext_table(table: Mapping[str, Mapping], metrics: Sequence[str] = ("precision", "recall", "f1")) -> Any:
    """Bars of class-1 precision, recall and F1 (mean ± std) per features · head."""
    import matplotlib.pyplot as plt

    names = list(table)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), sharey=True)
    for ax, m in zip(np.atleast_1d(axes), metrics):
        ax.barh(names, [table[n][m][1] for n in names], xerr=[table[n][f"{m}_std"][1] for n in names],
                color=["tab:blue" if "ResNet" in n else "tab:gray" for n in names], capsize=3)
        ax.set_title(f"{m} of class 1 (event)", fontsize=9)
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
    fig.tight_layout()
    return fig
