"""Figures of Grad-CAM results: the top regions of a map (paper 001, Fig. 2) and an interactive
explorer.

The maps, regions and enrichment scores come from `tapkit.explain.gradcam`; this module only draws.
Event outlines use the course's one colour code, `tapkit.plot.EVENT_COLORS`
(divisions red, deaths cyan).
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tapkit.data.movie import DIVISION, InputError, Movie, as_movie
from tapkit.explain.gradcam import (
    Region,
    event_enrichment,
    event_mask,
    gradcam,
    max_regions,
    top_regions,
)
from tapkit.plot import EVENT_COLORS, EVENT_NAMES

__all__ = ["plot_top_regions", "gradcam_explorer"]


def _show_frame(
    ax: Any, frame: np.ndarray, title: str = "", limits: "tuple[float, float] | None" = None
) -> None:
    """A grey image with robust contrast (1-99.8 percentiles unless `limits`) and no ticks."""
    lo, hi = np.percentile(frame, (1, 99.8)) if limits is None else limits
    ax.imshow(frame, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _draw_overview(
    ax: Any,
    frame: np.ndarray,
    cam: np.ndarray,
    regions: Sequence[Region],
    inset: int,
    events: "np.ndarray | None",
    event_class: int,
) -> None:
    """Frame t with the map overlaid, numbered inset boxes and (optionally) event outlines."""
    _show_frame(ax, frame)
    ax.imshow(cam, cmap="magma", alpha=0.5)
    if events is not None and np.any(events):
        ax.contour(
            np.asarray(events) > 0, levels=[0.5], colors=[EVENT_COLORS[event_class]], linewidths=0.9
        )
    for i, (y, x, _) in enumerate(regions):
        ax.add_patch(
            Rectangle(
                (x - inset // 2 - 0.5, y - inset // 2 - 0.5),
                inset,
                inset,
                fill=False,
                edgecolor="white",
                linewidth=1.2,
            )
        )
        ax.text(
            x - inset // 2 + 1,
            y - inset // 2 + 1,
            str(i + 1),
            color="white",
            fontsize=8,
            va="top",
            ha="left",
            bbox=dict(facecolor="black", alpha=0.5, pad=1, linewidth=0),
        )
    outlined = f", {EVENT_NAMES[event_class]}s outlined" if events is not None else ""
    ax.set_title(f"frame t with Grad-CAM (top regions numbered{outlined})", fontsize=10)


def plot_top_regions(
    frame_t: Any,
    frame_t1: Any,
    cam: Any,
    regions: Sequence[Region],
    events: Any = None,
    inset: int = 48,
    event_class: int = DIVISION,
    n_slots: "int | None" = None,
) -> Figure:
    """Frame t with the Grad-CAM overlay and numbered boxes; below, insets of frames t and t+1 per
    region.

    `n_slots` fixes the number of inset columns (default: one per region), so figures for different
    k have the same size (the explorer uses this).
    """
    # (2, Y, X)
    pair = np.stack([np.asarray(frame_t, np.float32), np.asarray(frame_t1, np.float32)])
    cam = np.asarray(cam, dtype=np.float64)
    if cam.shape != pair.shape[1:]:
        raise InputError(
            f"plot_top_regions: the map {cam.shape} and the frames {pair.shape[1:]} differ in size."
        )
    n = max(n_slots or len(regions), len(regions), 1)
    width = max(6.0, 1.2 * n)
    fig = plt.figure(
        figsize=(width, min(5.0, width * cam.shape[0] / cam.shape[1]) + 2.6 * width / max(n, 5))
    )
    grid = fig.add_gridspec(
        3, n, height_ratios=[5.0 * n / width, 1.0, 1.0], hspace=0.15, wspace=0.05
    )
    _draw_overview(fig.add_subplot(grid[0, :]), pair[0], cam, regions, inset, events, event_class)
    # insets share their frame's contrast
    limits = [tuple(np.percentile(f, (1, 99.8))) for f in pair]
    padded = np.pad(
        pair, ((0, 0), (inset, inset), (inset, inset)), mode="constant", constant_values=pair.min()
    )
    for i, (y, x, _) in enumerate(regions):
        for row, name in ((1, "t"), (2, "t+1")):
            crop = padded[
                row - 1,
                y + inset - inset // 2 : y + inset - inset // 2 + inset,
                x + inset - inset // 2 : x + inset - inset // 2 + inset,
            ]
            ax = fig.add_subplot(grid[row, i])
            _show_frame(ax, crop, title=f"{i + 1}" if row == 1 else "", limits=limits[row - 1])
            if i == 0:
                ax.set_ylabel(name)
    return fig


def _figure_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes and close it (no window, works headless; fixed size, no tight
    crop)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def gradcam_explorer(
    model: Any,
    movie: "Movie | np.ndarray",
    k: int = 8,
    inset: int = 48,
    event_class: int = DIVISION,
    width: int = 640,
    max_k: int = 16,
    **gradcam_kw: Any,
) -> Any:
    """An ipywidgets explorer: frame slider and k slider redraw the top-region figure
    (maps are cached).

    The k slider goes only as far as regions fit in the frame (at most `max_k`), and the figure
    keeps one size for every k.
    """
    import ipywidgets as w

    movie = as_movie(movie)
    cams: dict[int, np.ndarray] = {}
    fits = min(max_k, max_regions(movie.shape[1:], inset))
    frame = w.IntSlider(
        value=0, min=0, max=len(movie) - 2, description="frame t", continuous_update=False
    )
    n_regions = w.IntSlider(
        value=min(k, fits), min=1, max=fits, description="top k", continuous_update=False
    )
    image, caption = w.Image(format="png", width=width), w.Label()

    def redraw(_change: Any = None) -> None:
        """Draw the figure for the current slider values (computing the pair's map once)."""
        t = frame.value
        if t not in cams:
            cams[t] = gradcam(model, movie.images[t], movie.images[t + 1], **gradcam_kw)
        regions = top_regions(cams[t], k=n_regions.value, inset=inset)
        mask = event_mask(movie, t, event_class)
        image.value = _figure_png(
            plot_top_regions(
                movie.images[t],
                movie.images[t + 1],
                cams[t],
                regions,
                events=mask,
                inset=inset,
                event_class=event_class,
                n_slots=fits,
            )
        )
        score = (
            ""
            if mask is None
            else (
                " · enrichment "
                f"{event_enrichment(regions, mask, inset=inset, seed=t)['enrichment']:.2f}"
            )
        )
        found = (
            "" if len(regions) == n_regions.value else f" (only {len(regions)} peaks in this map)"
        )
        caption.value = f"pair ({t}, {t + 1}) · {len(regions)} regions{found}{score}"

    frame.observe(redraw, names="value")
    n_regions.observe(redraw, names="value")
    redraw()
    box = w.VBox([w.HBox([frame, n_regions]), image, caption])
    box.frame, box.k, box.image, box.caption = frame, n_regions, image, caption
    return box
