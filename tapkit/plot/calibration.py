"""Figures of calibration (notebook 06): reliability diagrams before and after temperature
scaling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from tapkit.data.movie import InputError
from tapkit.downstream.calibration import (
    apply_temperature,
    calibration_bins,
    check_logits,
    expected_calibration_error,
    fit_temperature,
    to_probs,
)


def reliability_diagram(
    probs: Any,
    labels: Any,
    n_bins: int = 15,
    ax: Any = None,
    confidence: str = "class-1",
    title: str | None = None,
) -> Figure:
    """Accuracy vs confidence per bin (bars, with sample counts), the diagonal and the ECE."""
    b = calibration_bins(probs, labels, n_bins=n_bins, confidence=confidence)
    ece = expected_calibration_error(probs, labels, n_bins=n_bins, confidence=confidence)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    left, width, full = b["edges"][:-1], 1.0 / n_bins, b["count"] > 0
    ax.bar(
        left[full],
        b["accuracy"][full],
        width=width,
        align="edge",
        color="tab:blue",
        edgecolor="k",
        lw=0.5,
        label="accuracy" if confidence == "top-label" else "fraction of events",
    )
    gap_lo = np.minimum(b["accuracy"], b["confidence"])[full]
    ax.bar(
        left[full],
        np.abs(b["accuracy"] - b["confidence"])[full],
        bottom=gap_lo,
        width=width,
        align="edge",
        color="tab:red",
        alpha=0.3,
        edgecolor="tab:red",
        lw=0.5,
        label="gap",
    )
    for x, acc, n in zip(left[full], b["accuracy"][full], b["count"][full]):
        ax.text(x + width / 2, min(acc, 0.93) + 0.02, str(n), ha="center", fontsize=6, rotation=90)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")  # black: red is the gap
    ax.text(
        0.03,
        0.95,
        f"ECE = {ece:.3f}",
        transform=ax.transAxes,
        va="top",
        bbox=dict(boxstyle="round", fc="white", alpha=0.8),
    )
    xlabel = (
        "confidence of the predicted class" if confidence == "top-label" else "predicted P(event)"
    )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel=xlabel,
        ylabel="observed accuracy" if confidence == "top-label" else "observed fraction of events",
        title=title or "reliability diagram",
    )
    ax.legend(loc="lower right", fontsize=7)
    return ax.figure


def _before_after(run: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """(test_logits, test_labels, T) from a tuple or a result with val_/test_ logits and labels."""
    if isinstance(run, (tuple, list)) and len(run) == 3:
        return check_logits(run[0], "test_logits"), np.asarray(run[1]), float(run[2])
    if all(hasattr(run, k) for k in ("val_logits", "val_labels", "test_logits", "test_labels")):
        return run.test_logits, run.test_labels, fit_temperature(run.val_logits, run.val_labels)
    raise InputError(
        "plot_calibration: each entry must be a tuple (test_logits, test_labels, temperature) or a "
        "result with val_logits/val_labels/test_logits/test_labels (e.g. run_strategy's), got "
        f"{type(run)}."
    )


def plot_calibration(
    runs: Mapping[str, Any], n_bins: int = 15, confidence: str = "class-1"
) -> Figure:
    """Reliability diagrams before | after temperature scaling, one row per head (like Fig. 5).

    ``runs`` maps a name ("linear", "resnet") to a ``run_strategy`` result (T is then fitted on
    its validation split) or to a tuple ``(test_logits, test_labels, temperature)``.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise InputError(
            'plot_calibration: pass a dict like {"linear": result_a0, "resnet": result_a1}.'
        )
    fig, axes = plt.subplots(len(runs), 2, figsize=(8, 4 * len(runs)), squeeze=False)
    for row, (name, run) in zip(axes, runs.items()):
        logits, labels, t = _before_after(run)
        reliability_diagram(
            to_probs(logits),
            labels,
            n_bins,
            ax=row[0],
            confidence=confidence,
            title=f"{name}: before (T = 1)",
        )
        reliability_diagram(
            to_probs(apply_temperature(logits, t)),
            labels,
            n_bins,
            ax=row[1],
            confidence=confidence,
            title=f"{name}: after (T = {t:.2f})",
        )
    fig.tight_layout()
    return fig
