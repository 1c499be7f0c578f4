"""Look at movies: an interactive browser (ipywidgets) and static frame figures (matplotlib).

Overlays: "events" colours divisions red and deaths cyan (from `movie.events`), "labels"
draws the outlines of the instance masks (from `movie.labels`), None shows the raw frames.
Frames are scaled with one percentile range for the whole movie, so photobleaching stays visible.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tapkit.data.movie import DEATH, DIVISION, InputError, Movie, as_movie
from tapkit.plot import EVENT_COLORS

OVERLAYS = ("events", "labels", None)


def _check_overlay(movie: Movie, overlay: "str | bool | None") -> "str | None":
    """Normalise the overlay choice (True -> 'events') and check the movie carries that ground
    truth."""
    overlay = "events" if overlay is True else (None if overlay is False else overlay)
    if overlay not in OVERLAYS:
        raise InputError(f"overlay={overlay!r}: choose 'events', 'labels' or None.")
    if overlay is not None and getattr(movie, overlay) is None:
        print(f"tapkit: movie '{movie.name}' has no {overlay}; showing it without overlay.")
        return None
    return overlay


def display_range(movie: Movie, pmin: float = 1.0, pmax: float = 99.8) -> tuple[float, float]:
    """One intensity range (percentiles over up to 16 frames) used for every frame of the movie."""
    step = max(1, len(movie) // 16)
    lo, hi = np.percentile(movie.images[::step], (pmin, pmax))
    return float(lo), float(max(hi, lo + 1e-6))


def frame_rgb(
    movie: Movie,
    t: int,
    overlay: "str | None" = "events",
    vrange: "tuple | None" = None,
    alpha: float = 0.45,
) -> np.ndarray:
    """Frame t as a (Y, X, 3) float RGB image in [0, 1], with the overlay blended in."""
    lo, hi = vrange or display_range(movie)
    gray = np.clip((movie.images[t] - lo) / (hi - lo), 0, 1)
    rgb = np.repeat(gray[..., None], 3, axis=-1)  # (Y, X, 3)
    if overlay == "events" and movie.events is not None:
        for kind, color in EVENT_COLORS.items():
            mask = movie.events[t] == kind
            rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.asarray(color)
    elif overlay == "labels" and movie.labels is not None:
        from scipy import ndimage as ndi

        lab = movie.labels[t]
        # outlines stay visible when a big frame is shrunk
        size = 2 * max(1, round(max(lab.shape) / 400)) + 1
        # inner and outer outlines
        edge = ndi.maximum_filter(lab, size=size) != ndi.minimum_filter(lab, size=size)
        rgb[edge & (lab > 0)] = (1.0, 0.8, 0.1)
    return rgb


def _png(rgb: np.ndarray) -> bytes:
    """Encode a (Y, X, 3) float image as PNG bytes."""
    import matplotlib.image

    buf = io.BytesIO()
    matplotlib.image.imsave(buf, rgb, format="png")
    return buf.getvalue()


def _caption(movie: Movie, t: int) -> str:
    """'frame 3 / 24 · 2 dividing, 0 dying objects' (counts from the event mask and labels)."""
    text = f"{movie.name} · frame {t} / {len(movie) - 1}"
    if movie.frame_interval:
        text += f" · {t * movie.frame_interval / 60:.1f} h"
    if movie.events is not None:
        ev = movie.events[t]
        lab = movie.labels[t] if movie.labels is not None else None
        count = (
            (lambda k: len(np.unique(lab[(ev == k) & (lab > 0)])))
            if lab is not None
            else (lambda k: int((ev == k).sum()))
        )
        unit = ("cell", "cells") if lab is not None else ("px", "px")
        text += " · " + ", ".join(
            f"{name}: {n} {unit[n != 1]}"
            for name, n in (("division", count(DIVISION)), ("death", count(DEATH)))
        )
    return text


def movie_browser(
    movie: "Movie | np.ndarray", overlay: "str | None" = "events", width: int = 480
) -> Any:
    """An ipywidgets browser: frame slider, play button and overlay toggle
    (builds without a frontend)."""
    import ipywidgets as w

    movie = as_movie(movie)
    overlay = _check_overlay(movie, overlay)
    vrange = display_range(movie)
    image = w.Image(format="png", width=width)
    slider = w.IntSlider(
        value=0, min=0, max=len(movie) - 1, description="frame", continuous_update=True
    )
    play = w.Play(value=0, min=0, max=len(movie) - 1, interval=200, description="play")
    w.jslink((play, "value"), (slider, "value"))
    toggle = w.Checkbox(
        value=overlay is not None,
        description=f"show {overlay or 'overlay'}",
        disabled=overlay is None,
        indent=False,
    )
    caption = w.Label()

    def redraw(_change: Any = None) -> None:
        t = slider.value
        image.value = _png(frame_rgb(movie, t, overlay if toggle.value else None, vrange))
        caption.value = _caption(movie, t)

    slider.observe(redraw, names="value")
    toggle.observe(redraw, names="value")
    redraw()
    box = w.VBox([w.HBox([play, slider, toggle]), image, caption])
    box.slider, box.play, box.toggle, box.image, box.caption = slider, play, toggle, image, caption
    return box


def show_frames(
    movie: "Movie | np.ndarray",
    frames: "Sequence[int] | int | None" = None,
    overlay: "str | bool | None" = True,
    size: float = 3.0,
    max_width: float = 15.0,
) -> Any:
    """A row of frames (default: 4 evenly spaced) with the overlay; panels keep the frames' aspect
    ratio.

    `size` is the panel height in inches (shrunk so the row fits `max_width`); returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    movie = as_movie(movie)
    overlay = _check_overlay(movie, overlay)
    n = 4 if frames is None else frames
    frames = (
        np.linspace(0, len(movie) - 1, min(n, len(movie))).round().astype(int)
        if isinstance(n, int)
        else list(n)
    )
    bad = [t for t in frames if not -len(movie) <= t < len(movie)]
    if bad or not len(frames):
        raise InputError(f"show_frames: frames {bad or frames} are outside 0..{len(movie) - 1}.")
    vrange = display_range(movie)
    aspect = movie.shape[2] / movie.shape[1]  # X / Y: wide frames get wide panels
    height = min(size, max_width / (aspect * len(frames)))
    legend = 0.35 if overlay == "events" else 0.0
    fig, axes = plt.subplots(
        1,
        len(frames),
        figsize=(height * aspect * len(frames), height + 0.35 + legend),
        squeeze=False,
        layout="constrained",
    )
    for ax, t in zip(axes[0], frames):
        ax.imshow(
            frame_rgb(movie, int(t) % len(movie), overlay, vrange), interpolation="antialiased"
        )
        ax.set_title(f"t = {int(t) % len(movie)}", fontsize=10)
        ax.axis("off")
    if overlay == "events":
        handles = [
            Patch(color=EVENT_COLORS[DIVISION], label="division"),
            Patch(color=EVENT_COLORS[DEATH], label="death"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
    fig.suptitle(movie.name)
    return fig


def save_frames(
    movie: "Movie | np.ndarray",
    path_png: "str | os.PathLike",
    frames: "Sequence[int] | None" = None,
    dpi: int = 100,
) -> Path:
    """Save `show_frames` (events: divisions red, deaths cyan) as a PNG and return its path."""
    import matplotlib.pyplot as plt

    p = Path(path_png).expanduser()
    if p.suffix.lower() != ".png":
        raise InputError(f"save_frames: {p.name} should end in .png.")
    p.parent.mkdir(parents=True, exist_ok=True)
    fig = show_frames(movie, frames)
    fig.savefig(p, dpi=dpi)
    plt.close(fig)
    return p
