"""Figures of pretext training: the history of loss and metrics per epoch."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

TITLES = {"loss": "total loss", "accuracy": "accuracy", "decorr": "decorrelation loss"}


def plot_history(history: dict[str, list[float]]) -> Figure:
    """Loss and every metric per epoch, train vs validation (accuracy against chance); returns the Figure."""
    keys = [k.removeprefix("train_") for k in history if k.startswith("train_")]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    for ax, key in zip(axes[0], keys):
        ax.plot(epochs, history[f"train_{key}"], "o-", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "o-", label="validation")
        ax.set(title=TITLES.get(key, key), xlabel="epoch")
        if key == "accuracy":
            ax.axhline(0.5, color="gray", ls=":", label="chance")
            ax.set_ylim(0.4, 1.0)
            ax.legend()
    fig.tight_layout()
    return fig
