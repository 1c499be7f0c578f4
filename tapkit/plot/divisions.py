"""Figure of divisions derived from masks (`tapkit.data.divisions`): check a few by eye."""

from __future__ import annotations

from typing import Any

import numpy as np

from tapkit.data.divisions import Divisions
from tapkit.data.movie import DIVISION, InputError, Movie
from tapkit.plot import EVENT_COLORS


def plot_divisions(movie: Movie, divisions: Divisions, k: int = 6, size: int = 64) -> Any:
    """Figure: k divisions (spread over the list), crops at t-1 (mother, solid red) over t
    (daughters, dashed red)."""
    import matplotlib.pyplot as plt

    if movie.labels is None:
        raise InputError(
            f"plot_divisions: movie '{movie.name}' has no labels; pass the movie the divisions "
            "were found in (divisions_from_masks(movie.labels))."
        )
    if len(divisions) == 0 or k < 1:
        raise InputError(
            f"plot_divisions: nothing to show ({len(divisions)} divisions, k={k}); pass k >= 1 and "
            "a movie whose masks hold divisions."
        )
    pick = np.linspace(0, len(divisions) - 1, min(k, len(divisions))).round().astype(int)
    color, half = EVENT_COLORS[DIVISION], size // 2
    fig, axes = plt.subplots(2, len(pick), figsize=(1.9 * len(pick), 4.1), squeeze=False)
    for j, i in enumerate(pick):
        d = divisions.events[i]
        _, ny, nx = movie.shape
        y0 = int(np.clip(round(d.y) - half, 0, max(0, ny - size)))
        x0 = int(np.clip(round(d.x) - half, 0, max(0, nx - size)))
        win = (slice(y0, y0 + size), slice(x0, x0 + size))
        for row, (t, ids, style) in enumerate(
            ((d.t - 1, [d.mother], "solid"), (d.t, list(d.daughters), "dashed"))
        ):
            ax, img = axes[row, j], movie.images[t][win]
            ax.imshow(img, cmap="gray", vmin=np.percentile(img, 1), vmax=np.percentile(img, 99.8))
            lab = movie.labels[t][win]
            for c in ids:
                if (lab == c).any():
                    ax.contour(
                        lab == c, levels=[0.5], colors=[color], linewidths=1.2, linestyles=style
                    )
            ax.set_title(
                f"t={t} id {'+'.join(map(str, ids))}" + (f"\n{d.rule}" if row else ""), fontsize=7
            )
            ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_ylabel("mother (t-1)", fontsize=8)
    axes[1, 0].set_ylabel("daughters (t)", fontsize=8)
    fig.tight_layout()
    return fig
