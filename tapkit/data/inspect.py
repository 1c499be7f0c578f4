"""Check a movie before pretraining on it: frames, dtype, intensities, drift, bleaching, nucleus
size.

    check_movie(movie) -> MovieReport        (table(), warnings: the shortcuts the course taught)
    estimate_nucleus_size(movie) -> NucleusSize   (Otsu threshold + connected components,
                                                   scipy.ndimage)
    recommend_binning(radius) -> BinningAdvice    (brings nuclei to the size the defaults expect)

Drift is measured by phase correlation of consecutive frames (numpy FFT, sub-pixel by a parabola
through the peak); bleaching by a straight line through the per-frame brightness of the frame's
bright objects. Both are time-arrow shortcuts (notebooks 00 and 01): a network can tell the
order of two frames from them without looking at a single cell. Figures: `tapkit.plot.inspect`.
No torch here: these checks are cheap numpy and scipy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import ndimage as ndi
from tqdm.auto import tqdm

from tapkit.data.movie import InputError, Movie, as_movie, normalize
from tapkit.validate import whole

# thresholds of the warnings (see check_movie)
# fraction of the brightness lost (or gained) per frame; cell cycles alone give ~0.5 %
BLEACHING_WARN = 0.01
DRIFT_WARN = 0.2  # px per frame of steady drift
JUMP_WARN = 8.0  # px between two frames
SATURATION_WARN = 1e-3  # fraction of pixels at the dtype's maximum
FEW_FRAMES = 16


# ----------------------------------------------------------------------------------------------
# Drift: phase correlation between consecutive frames
# ----------------------------------------------------------------------------------------------
def _centre_crop(frames: np.ndarray, max_side: int) -> np.ndarray:
    """The central (.., <= max_side, <= max_side) part of (T, Y, X) frames."""
    ny, nx = frames.shape[-2:]
    y0, x0 = max(0, (ny - max_side) // 2), max(0, (nx - max_side) // 2)
    return frames[..., y0 : y0 + max_side, x0 : x0 + max_side]


def _parabola(left: float, centre: float, right: float) -> float:
    """Sub-pixel offset of a peak from three samples (0 when flat)."""
    den = left - 2 * centre + right
    return 0.0 if den == 0 else float(np.clip(0.5 * (left - right) / den, -0.5, 0.5))


def phase_correlation(a: np.ndarray, b: np.ndarray, whiten: float = 0.5) -> tuple[float, float]:
    """Shift (dy, dx) of frame b relative to frame a: b(y, x) ~ a(y - dy, x - dx), sub-pixel.

    whiten: the cross-power spectrum is divided by its magnitude to this power; 1 is classic phase
    correlation, which on real movies locks onto single migrating cells; 0.5 follows the whole
    field.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise InputError(
            f"phase_correlation: two (Y, X) frames of one shape are needed, got {a.shape} and "
            f"{b.shape}."
        )
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))  # (Y, X) no edge jumps
    fa, fb = (np.fft.rfft2((f - f.mean()) * window) for f in (a, b))
    cross = fb * np.conj(fa)
    # (Y, X) peak at the shift
    corr = np.fft.irfft2(cross / np.maximum(np.abs(cross), 1e-12) ** whiten, s=a.shape)
    py, px = np.unravel_index(int(np.argmax(corr)), corr.shape)
    ny, nx = corr.shape
    dy = py + _parabola(corr[(py - 1) % ny, px], corr[py, px], corr[(py + 1) % ny, px])
    dx = px + _parabola(corr[py, (px - 1) % nx], corr[py, px], corr[py, (px + 1) % nx])
    return (dy - ny if dy > ny / 2 else dy), (dx - nx if dx > nx / 2 else dx)


def estimate_drift(images: np.ndarray, max_side: int = 512) -> np.ndarray:
    """(T - 1, 2) shifts (dy, dx) in px between consecutive frames of (T, Y, X) images."""
    frames = _centre_crop(np.asarray(images, dtype=np.float32), max_side)
    return np.array(
        [
            phase_correlation(frames[t], frames[t + 1])
            for t in tqdm(
                range(len(frames) - 1), desc="drift", leave=False, disable=len(frames) < 50
            )
        ]
    )


# ----------------------------------------------------------------------------------------------
# Bleaching: trend of the mean intensity
# ----------------------------------------------------------------------------------------------
def frame_means(images: np.ndarray) -> np.ndarray:
    """(T,) mean brightness of each frame's bright objects above its background (Otsu cut, median
    below it).

    Brightness per object, not the frame mean: a field that fills with dividing cells gets brighter
    overall without any bleaching; bleaching dims every nucleus.
    """
    flat = np.asarray(images, dtype=np.float32).reshape(len(images), -1)[:, ::3]  # (T, ~Y * X / 3)
    out = np.empty(len(flat))
    for t, f in enumerate(flat):
        fg = f > otsu_threshold(f)
        out[t] = f[fg].mean() - np.median(f[~fg]) if fg.any() and (~fg).any() else f.mean()
    return out


def bleaching_rate(means: Sequence[float]) -> float:
    """Fraction of the initial mean intensity lost per frame: -slope / intercept of a straight-line
    fit."""
    means = np.asarray(means, dtype=float)
    slope, intercept = np.polyfit(np.arange(len(means)), means, 1)
    return float(-slope / intercept) if intercept != 0 else 0.0


# ----------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------
@dataclass
class MovieReport:
    """What check_movie found: sizes, intensities, per-frame means, drift, and warnings."""

    name: str
    shape: tuple[int, int, int]  # (T, Y, X)
    dtype: str  # of the file (Movie images are float32)
    intensity: dict[str, float]  # min, p1, median, p99.8, max, saturated fraction
    means: np.ndarray  # (T,) brightness of the bright objects above the background, per frame
    bleaching_rate: float  # fraction of the initial mean lost per frame (negative: brightening)
    shifts: np.ndarray  # (T - 1, 2) dy, dx between consecutive frames
    pixel_size: "float | None" = None
    frame_interval: "float | None" = None
    warnings: list[str] = field(default_factory=list)

    @property
    def drift(self) -> np.ndarray:
        """(T, 2) position of the field relative to frame 0 (cumulative shifts)."""
        return np.vstack([np.zeros((1, 2)), np.cumsum(self.shifts, axis=0)])

    @property
    def drift_per_frame(self) -> float:
        """Steady drift in px per frame: length of the median shift (robust to cells that move on
        their own)."""
        return float(np.hypot(*np.median(self.shifts, axis=0))) if len(self.shifts) else 0.0

    @property
    def bleaching_total(self) -> float:
        """Relative loss of the fitted mean intensity from the first to the last frame."""
        return self.bleaching_rate * (self.shape[0] - 1)

    def table(self) -> str:
        """A short two-column table of the checks."""
        i = self.intensity
        rows = [
            (
                "movie",
                f"{self.name}: {self.shape[0]} frames of {self.shape[1]} x {self.shape[2]} px",
            ),
            ("dtype", self.dtype),
            (
                "intensity",
                f"min {i['min']:.4g} | 1 % {i['p1']:.4g} | median {i['median']:.4g} | "
                f"99.8 % {i['p99.8']:.4g} | max {i['max']:.4g}",
            ),
            ("saturated", f"{100 * i['saturated']:.3f} % of pixels at the dtype's maximum"),
            (
                "bleaching",
                f"{100 * self.bleaching_rate:+.2f} % of the nuclei's brightness per frame "
                f"({100 * self.bleaching_total:+.1f} % over the movie; + = darker)",
            ),
            (
                "drift",
                f"{self.drift_per_frame:.2f} px/frame steady, largest step "
                f"{np.hypot(*self.shifts.T).max(initial=0):.2f} px",
            ),
        ]
        if self.pixel_size or self.frame_interval:
            rows.append(
                ("scale", f"{self.pixel_size or '?'} um/px, {self.frame_interval or '?'} min/frame")
            )
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"  {k:<{width}} : {v}" for k, v in rows)


def _intensity(images: np.ndarray, dtype: str) -> dict[str, float]:
    """Robust intensity summary, and the fraction of pixels at an integer dtype's maximum."""
    sample = images.reshape(-1)[:: max(1, images.size // 2_000_000)]
    p1, med, p998 = np.percentile(sample, [1, 50, 99.8])
    top = np.iinfo(np.dtype(dtype)).max if np.issubdtype(np.dtype(dtype), np.integer) else None
    saturated = float((images >= top).mean()) if top is not None else 0.0
    return {
        "min": float(images.min()),
        "p1": float(p1),
        "median": float(med),
        "p99.8": float(p998),
        "max": float(images.max()),
        "saturated": saturated,
    }


def _warnings(r: MovieReport) -> list[str]:
    """The shortcuts and problems worth telling a learner about before pretraining."""
    out = []
    if r.shape[0] < FEW_FRAMES:
        out.append(
            f"only {r.shape[0]} frames: TAP learns from {r.shape[0] - 1} consecutive pairs and "
            "validates on the last ones; more frames give a more trustworthy model."
        )
    if abs(r.bleaching_rate) > BLEACHING_WARN:
        way = "falls" if r.bleaching_total > 0 else "rises"
        out.append(
            f"the nuclei's brightness {way} by {100 * abs(r.bleaching_rate):.1f} % per frame "
            f"({100 * abs(r.bleaching_total):.0f} % over the movie; bleaching or a "
            "drifting lamp): a time-arrow shortcut (notebook 01). Keep per-frame normalisation on "
            "(the default) so brightness alone does not tell the order of two frames."
        )
    if r.drift_per_frame > DRIFT_WARN:
        out.append(
            f"the field drifts {r.drift_per_frame:.2f} px per frame in a steady direction: a "
            "time-arrow shortcut (notebook 00). TAP can learn the drift direction instead of "
            "biology; register the movie first (e.g. Fiji 'Correct 3D Drift' or StackReg) and read "
            "Grad-CAM maps with care."
        )
    jumps = np.flatnonzero(np.hypot(*r.shifts.T) > JUMP_WARN)
    if len(jumps):
        out.append(
            f"the field jumps by more than {JUMP_WARN:g} px between frames "
            f"{[(int(t), int(t) + 1) for t in jumps[:5]]} (stage moved, refocus?): check those "
            "frames; cut the movie there if the jump is real."
        )
    if r.intensity["saturated"] > SATURATION_WARN:
        out.append(
            f"{100 * r.intensity['saturated']:.2f} % of pixels are saturated: bright nuclei lose "
            "their texture; lower the exposure next time."
        )
    return out


def check_movie(movie: "Movie | np.ndarray", max_side: int = 512) -> MovieReport:
    """Frames, dtype, intensity range, drift (phase correlation) and bleaching (mean trend) of a
    movie, with warnings."""
    movie = as_movie(movie)
    whole(16, example=512, where="check_movie: ")("max_side", max_side)
    dtype = str(movie.meta.get("dtype", movie.images.dtype))
    means = frame_means(movie.images)
    report = MovieReport(
        name=movie.name,
        shape=movie.shape,
        dtype=dtype,
        intensity=_intensity(movie.images, dtype),
        means=means,
        bleaching_rate=bleaching_rate(means),
        shifts=estimate_drift(movie.images, max_side),
        pixel_size=movie.pixel_size,
        frame_interval=movie.frame_interval,
    )
    report.warnings = _warnings(report)
    return report


# ----------------------------------------------------------------------------------------------
# Nucleus size: threshold (Otsu) + connected components
# ----------------------------------------------------------------------------------------------
# The radius the course's defaults expect, as this estimator measures it: the equivalent radius
# sqrt(area / pi) of the default simulated movie's nuclei (simulate_movie(nucleus_radius=8):
# interphase nuclei are 0.8-1.1 x 8 px ellipses, whose labels give a median of ~6 px;
# tests/test_inspect.py checks this against the labels). The HeLa nuclei (~13.7 px, from their
# masks) are about twice that: binned 2x2, as datasets.recommended('hela-subset') says.
DEFAULT_NUCLEUS_RADIUS = 6.0


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the histogram cut that maximises the between-class variance."""
    hist, edges = np.histogram(np.asarray(values, dtype=float).ravel(), bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0, s0 = np.cumsum(hist), np.cumsum(hist * centres)
    w1, s1 = w0[-1] - w0, s0[-1] - s0
    between = w0 * w1 * (s0 / np.maximum(w0, 1) - s1 / np.maximum(w1, 1)) ** 2
    return float(centres[int(np.argmax(between[:-1]))])


def _components(img: np.ndarray, min_area: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) centres and (N,) equivalent radii of the bright objects of a frame that do not touch
    its border."""
    smooth = ndi.gaussian_filter(img, 1.0)
    labels, n = ndi.label(smooth > otsu_threshold(smooth))
    if n == 0:
        return np.zeros((0, 2)), np.zeros(0)
    ids = np.arange(1, n + 1)
    areas = ndi.sum_labels(np.ones_like(labels), labels, ids)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep = (areas >= min_area) & ~np.isin(ids, edge)
    centres = np.array(ndi.center_of_mass(np.ones_like(labels), labels, ids[keep])).reshape(-1, 2)
    return centres, np.sqrt(areas[keep] / np.pi)


@dataclass
class NucleusSize:
    """Typical nucleus radius (px) and the objects it was measured on."""

    radius: float  # median equivalent radius sqrt(area / pi) of the objects, px
    blobs: np.ndarray  # (N, 4) frame, y, x, radius of every object (y, x in the full frame)
    frames: list[int]

    @property
    def n_blobs(self) -> int:
        """How many objects the estimate rests on."""
        return len(self.blobs)


def estimate_nucleus_size(
    movie: "Movie | np.ndarray", n_frames: int = 2, max_side: int = 512, min_area: int = 9
) -> NucleusSize:
    """Typical nucleus radius (px): median equivalent radius of the bright objects (Otsu threshold,
    connected components).

    Uses `n_frames` evenly spaced frames, each percentile-normalised, smoothed (sigma 1 px) and cut
    to its central `max_side` px; objects touching the crop's border or smaller than `min_area` px
    are ignored. Touching nuclei merge into one object, so the median (not the mean) is reported.
    """
    movie = as_movie(movie)
    whole(1, example=2, where="estimate_nucleus_size: ")("n_frames", n_frames)
    frames = sorted(
        {int(t) for t in np.linspace(0, len(movie) - 1, min(n_frames, len(movie))).round()}
    )
    ny, nx = movie.shape[1:]
    y0, x0 = max(0, (ny - max_side) // 2), max(0, (nx - max_side) // 2)
    found = []
    for t in tqdm(frames, desc="nucleus size", leave=False, disable=len(frames) < 4):
        img = normalize(_centre_crop(movie.images[t : t + 1], max_side), per_frame=True)[0]
        centres, radii = _components(img, min_area)
        found.append(
            np.column_stack([np.full(len(radii), t), centres[:, 0] + y0, centres[:, 1] + x0, radii])
        )
    blobs = np.concatenate(found)
    if not len(blobs):
        raise InputError(
            f"estimate_nucleus_size: found no bright objects in frames {frames}. Are nuclei bright "
            "on a dark background (a fluorescent nuclear marker)? Otherwise set binning by hand."
        )
    return NucleusSize(radius=float(np.median(blobs[:, 3])), blobs=blobs, frames=frames)


@dataclass
class BinningAdvice:
    """A binning factor and why."""

    factor: int
    radius: float  # measured nucleus radius, px
    target: float  # radius the defaults expect, px (DEFAULT_NUCLEUS_RADIUS)
    reason: str

    @property
    def binned_radius(self) -> float:
        """The nucleus radius after binning, px."""
        return self.radius / self.factor


def recommend_binning(radius: float, target: "float | None" = None) -> BinningAdvice:
    """The binning that brings nuclei of `radius` px (equivalent radius) closest to
    DEFAULT_NUCLEUS_RADIUS.

    The profiles' crop sizes and the U-Net's receptive field were chosen for the default simulated
    nuclei (the HeLa data, radius ~14 px, are binned 2x2 for the same reason: datasets.recommended).
    Binning only shrinks, so nuclei smaller than the target keep binning 1.
    """
    target = DEFAULT_NUCLEUS_RADIUS if target is None else float(target)
    if not (np.isfinite(radius) and radius > 0 and target > 0):
        raise InputError(
            f"recommend_binning: radius={radius!r} and target={target!r} must be positive numbers "
            "of px."
        )
    factor = max(1, int(np.floor(radius / target + 0.5)))
    why = (
        f"nuclei have a radius of ~{radius:.1f} px; the course's defaults "
        f"(crop sizes, U-Net depth) are tuned for ~{target:g} px, the simulated nuclei"
    )
    if factor > 1:
        why += (
            f". Binning {factor}x{factor} brings them to ~{radius / factor:.1f} px and makes "
            f"every step {factor**2}x cheaper."
        )
    elif radius < target / 1.5:
        why += (
            ". They are smaller; binning cannot enlarge them, so keep binning 1 and consider "
            "smaller crops (tap_patch) so that a crop does not hold too many nuclei."
        )
    else:
        why += ", close enough: no binning."
    return BinningAdvice(factor=factor, radius=float(radius), target=target, reason=why)
