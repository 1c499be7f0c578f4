"""Write docs/real_vs_simulated.png: real HeLa frames next to simulated ones, plus event sequences.

Run:  python scripts/figure_real_vs_sim.py [--out docs/real_vs_simulated.png] [--seed 0]
Row 1: a real Fluo-N2DL-HeLa frame (tapkit.data.datasets.hela_subset) and a simulated frame at the
same pixel size (nucleus_radius = REAL_RADIUS), full frame and zoomed crop, shown
background-subtracted with one shared display range. Rows 2-3: a simulated division and death over
consecutive frames, with the event mask outlined.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

from tapkit import DEATH, DIVISION, Movie  # noqa: E402
from tapkit.data.datasets import hela_subset  # noqa: E402
from tapkit.data.simulate import REAL_RADIUS, simulate_movie  # noqa: E402

VMIN, VMAX = -50.0, 1500.0  # ADU above the background median, shared by real and simulated panels
CROP = 128


def above_background(frame: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The frame minus the median of its background pixels (label 0), in ADU."""
    return frame - np.median(frame[labels == 0])


def show(ax: plt.Axes, img: np.ndarray, title: str) -> None:
    """Grey image with the shared display range and no ticks."""
    ax.imshow(img, cmap="gray", vmin=VMIN, vmax=VMAX, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def busiest_crop(labels: np.ndarray, size: int) -> tuple[slice, slice]:
    """The size x size window (on a coarse grid) holding the most nucleus pixels."""
    cover = ndi.uniform_filter((labels > 0).astype(np.float32), size, mode="constant")
    h = size // 2
    cy, cx = np.unravel_index(np.argmax(cover[h:-h, h:-h]), cover[h:-h, h:-h].shape)
    return slice(cy, cy + size), slice(cx, cx + size)


def first_event(movie: Movie, kind: str, n_before: int = 1) -> tuple[int, int, tuple[int, ...]]:
    """(first frame, last frame, track ids) of the first fully visible event of this kind, away from
    the border."""
    ny, nx = movie.labels.shape[1:]
    for k, t0, t1, ids in movie.meta["events"]:
        if k == kind and all(ids) and t0 >= n_before and t1 + 1 < len(movie):
            cy, cx = ndi.center_of_mass(movie.labels[t0] == ids[0])
            if 40 <= cy < ny - 40 and 40 <= cx < nx - 40:
                return t0 - n_before, t1 + 1, ids
    raise RuntimeError(f"no complete {kind} in the simulated movie; try another --seed")


def event_row(fig: plt.Figure, movie: Movie, kind: str, n_max: int = 10) -> None:
    """Consecutive crops around one event, with its event-mask outline (red)."""
    t0, t1, ids = first_event(movie, kind)
    frames = list(range(t0, min(t1, t0 + n_max - 1) + 1))
    cls = DIVISION if kind == "division" else DEATH
    where = np.isin(movie.labels[frames], ids)
    cy, cx = (int(c) for c in ndi.center_of_mass(where.any(0)))
    h = 32
    ny, nx = movie.labels.shape[1:]
    cy, cx = np.clip(cy, h, ny - h), np.clip(cx, h, nx - h)
    win = (slice(cy - h, cy + h), slice(cx - h, cx + h))
    axes = fig.subplots(1, n_max)
    for ax, t in zip(axes, frames + [None] * (n_max - len(frames))):
        ax.set_axis_off()
        if t is None:
            continue
        show(ax, above_background(movie.images[t], movie.labels[t])[win], f"t={t}")
        ev = (movie.events[t] == cls)[win]
        if ev.any():
            ax.contour(ev, levels=[0.5], colors="red", linewidths=0.8)
    fig.suptitle(
        f"simulated {kind} (tracks {', '.join(map(str, ids))}); red: event mask", fontsize=10
    )


def make_figure(seed: int = 0) -> plt.Figure:
    """The whole real-vs-simulated figure."""
    real = hela_subset()
    ny, nx = real.shape[1:]
    sim = simulate_movie(
        n_frames=2, size=(ny, nx), nucleus_radius=REAL_RADIUS, seed=seed, progress=False
    )
    events = simulate_movie(
        n_frames=40,
        size=(256, 256),
        nucleus_radius=REAL_RADIUS,
        division_rate=0.03,
        death_rate=0.01,
        seed=seed,
        progress=False,
    )
    fig = plt.figure(figsize=(15, 10.5), layout="constrained")
    top, mid, bottom = fig.subfigures(3, 1, height_ratios=[1.7, 1, 1])
    ax = top.subplots(1, 4, gridspec_kw=dict(width_ratios=[1.6, 1.6, 1, 1]))
    for j, (m, name) in enumerate([(real, "real HeLa (CTC Fluo-N2DL-HeLa)"), (sim, "simulated")]):
        img = above_background(m.images[0], m.labels[0])
        show(ax[j], img, f"{name}, {nx} x {ny} px at {m.pixel_size:.3f} um/px")
        ys, xs = busiest_crop(m.labels[0], CROP)
        ax[j].add_patch(
            plt.Rectangle((xs.start, ys.start), CROP, CROP, fill=False, ec="yellow", lw=1)
        )
        show(ax[2 + j], img[ys, xs], f"{name.split(' (')[0]}: {CROP} px crop")
    top.suptitle(
        f"background-subtracted ADU, shared display range [{VMIN:.0f}, {VMAX:.0f}]", fontsize=10
    )
    event_row(mid, events, "division")
    event_row(bottom, events, "death")
    return fig


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "real_vs_simulated.png")
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    make_figure(args.seed).savefig(args.out, dpi=72)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} kB)")
