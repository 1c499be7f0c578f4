"""Figures of pretext training: the history of loss and metrics per epoch."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from tapkit.plot.style import NAMED, integer_ticks

TITLES = {
    "loss": "total loss",
    "accuracy": "accuracy",
    "decorr": "decorrelation loss",
    "psnr": "masked-pixel PSNR (dB)",
}
FRACTIONS = ("accuracy",)  # metrics in [0, 1]: their axis shows all of 0-1, whatever the values


def plot_history(history: dict[str, list[float]]) -> Figure:
    """Loss and every metric per epoch, train vs validation (accuracy on 0-1 against chance);
    returns the Figure.

    Epoch ticks are whole numbers; every axis holds all of its values.
    """
    keys = [k.removeprefix("train_") for k in history if k.startswith("train_")]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    for ax, key in zip(axes[0], keys):
        ax.plot(epochs, history[f"train_{key}"], "o-", color=NAMED["train"], label="train")
        if f"val_{key}" in history:
            ax.plot(
                epochs, history[f"val_{key}"], "o-", color=NAMED["validation"], label="validation"
            )
        ax.set(title=TITLES.get(key, key), xlabel="epoch")
        integer_ticks(ax)
        if len(epochs) == 1:
            ax.set_xlim(0.5, 1.5)
        if key in FRACTIONS:
            ax.axhline(0.5, color=NAMED["chance"], ls=":", label="chance")
            values = np.concatenate(
                [
                    np.asarray(history[k], float)
                    for k in (f"train_{key}", f"val_{key}")
                    if k in history
                ]
            )
            values = values[np.isfinite(values)]
            low = min(0.0, float(values.min())) if len(values) else 0.0
            high = max(1.0, float(values.max())) if len(values) else 1.0
            ax.set_ylim(low - 0.02, high + 0.02)
        if len(ax.get_lines()) > 1:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
