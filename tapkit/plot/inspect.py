"""Figures of notebook 09's movie checks: brightness trend, drift path, intensity histogram, nucleus
sizes."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from tapkit.data.inspect import BinningAdvice, MovieReport, NucleusSize
from tapkit.data.movie import Movie
from tapkit.plot.style import integer_ticks


def plot_checks(report: MovieReport, movie: "Movie | None" = None) -> Any:
    """Three panels: brightness per frame with its straight-line fit, the drift path, the intensity
    histogram."""
    fig, axes = plt.subplots(
        1, 3 if movie is not None else 2, figsize=(13 if movie is not None else 9, 3.2)
    )
    t = np.arange(len(report.means))
    slope, intercept = np.polyfit(t, report.means, 1)
    axes[0].plot(t, report.means, "o-", ms=3, label="measured")
    axes[0].plot(
        t, intercept + slope * t, "k--", label=f"fit: {100 * report.bleaching_rate:+.2f} %/frame"
    )
    axes[0].set(xlabel="frame", ylabel="nuclei above background", title="bleaching")
    integer_ticks(axes[0])
    axes[0].legend(frameon=False, fontsize=8)
    path = report.drift  # (T, 2) dy, dx
    axes[1].plot(path[:, 1], path[:, 0], "-", color="0.6")
    sc = axes[1].scatter(path[:, 1], path[:, 0], c=np.arange(len(path)), cmap="viridis", s=12)
    axes[1].set(
        xlabel="x shift (px)",
        ylabel="y shift (px)",
        title=f"drift {report.drift_per_frame:.2f} px/frame",
        aspect="equal",
    )
    axes[1].invert_yaxis()
    bar = fig.colorbar(sc, ax=axes[1], label="frame")
    integer_ticks(bar.ax, "y")
    if movie is not None:
        sample = movie.images.reshape(-1)[:: max(1, movie.images.size // 500_000)]
        axes[2].hist(sample, bins=100, color="0.4", log=True)
        for key, ls in (("p1", ":"), ("p99.8", "--")):
            axes[2].axvline(
                report.intensity[key], color="k", ls=ls, label=f"{key[1:]} % percentile"
            )
        axes[2].set(xlabel=f"intensity ({report.dtype})", ylabel="pixels", title="intensities")
        axes[2].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def plot_nucleus_size(
    movie: Movie, size: NucleusSize, advice: "BinningAdvice | None" = None, side: int = 256
) -> Any:
    """A frame crop with the measured objects as circles, and the histogram of their radii with the
    target."""
    t = size.frames[0]
    ny, nx = movie.shape[1:]
    y0, x0 = max(0, (ny - side) // 2), max(0, (nx - side) // 2)
    img = movie.images[t, y0 : y0 + side, x0 : x0 + side]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 4))
    ax0.imshow(img, cmap="gray", vmin=np.percentile(img, 1), vmax=np.percentile(img, 99.8))
    for _, y, x, r in size.blobs[size.blobs[:, 0] == t]:
        if y0 <= y < y0 + img.shape[0] and x0 <= x < x0 + img.shape[1]:
            ax0.add_patch(plt.Circle((x - x0, y - y0), r, fill=False, color="C1", lw=0.8))
    ax0.set(title=f"frame {t}: objects measured (centre crop)"), ax0.axis("off")
    ax1.hist(size.blobs[:, 3], bins=30, color="0.5")
    ax1.axvline(size.radius, color="C1", label=f"median {size.radius:.1f} px")
    if advice is not None:
        ax1.axvline(
            advice.target, color="k", ls="--", label=f"defaults expect {advice.target:g} px"
        )
        if advice.factor > 1:
            ax1.axvline(
                advice.binned_radius,
                color="C2",
                ls=":",
                label=f"binned {advice.factor}x{advice.factor}: {advice.binned_radius:.1f} px",
            )
    ax1.set(xlabel="equivalent radius (px)", ylabel="objects", title=f"{size.n_blobs} objects")
    ax1.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
