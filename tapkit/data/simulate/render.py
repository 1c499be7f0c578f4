"""Rendering a frame: nuclei painted as textured soft-edged ellipses (blobs) whose shapes follow the
cell's state (interphase, mitosis, apoptosis), inside their bounding boxes only (vectorised numpy);
then the optics and camera (illumination, bleaching, blur, shot and read noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from tapkit.data.simulate.cells import (
    _Cell,
    _Params,
    _condensation,
    _event_kind,
    _size_factor,
    _youth,
)
from tapkit.data.simulate.constants import BACKGROUND, GAIN, OFFSET, READ_NOISE, TEXTURE_SIZE


@dataclass
class _Scene:
    """One frame being painted: intensity, world-id labels and event classes."""

    img: np.ndarray
    lab: np.ndarray
    ev: np.ndarray


def _texture_field(rng: np.random.Generator) -> np.ndarray:
    """A periodic smooth random field (S, S), zero mean and unit std: the chromatin texture."""
    white = rng.standard_normal((TEXTURE_SIZE, TEXTURE_SIZE))
    fine = ndi.gaussian_filter(white, 1.3, mode="wrap")
    coarse = ndi.gaussian_filter(white, 3.5, mode="wrap")
    tex = fine / fine.std() + 0.8 * coarse / coarse.std()
    return ((tex - tex.mean()) / tex.std()).astype(np.float32)


# A blob is one painted ellipse: (y, x, a, b, theta, amplitude, texture contrast, with spots).
Blob = tuple[float, float, float, float, float, float, float, bool]


def _blobs(c: _Cell) -> list[Blob]:
    """The ellipses that make up a nucleus now, depending on its state."""
    if c.state == "M":
        return _mitosis_blobs(c)
    if c.state == "A":
        return _apoptosis_blobs(c)
    pre = _condensation(c)  # chromatin condenses in the last hour before mitosis (G2 -> prophase)
    young = _youth(c)  # daughters: small, round and bright, then re-expand and dim over ~2 h
    s = c.r * _size_factor(c)
    aspect = c.aspect + (1 - c.aspect) * max(0.6 * pre, young)
    amp = c.amp * (1 + 0.5 * pre + 0.6 * young)
    return [
        (
            c.y,
            c.x,
            s * (1 - 0.1 * pre),
            s * aspect * (1 - 0.1 * pre),
            c.theta,
            amp,
            0.18 + 0.45 * pre,
            True,
        )
    ]


def _mitosis_blobs(c: _Cell) -> list[Blob]:
    """Prophase (round, smaller, brighter, clumpy) -> metaphase bar -> anaphase
    (two bars separating)."""
    q = (c.k + 0.5) / c.length  # progress through mitosis, in (0, 1)
    if q < 0.35:
        s = c.r * 1.1 * (1 - 0.5 * q)
        return [(c.y, c.x, s, 0.9 * s, c.theta, c.amp * (1.5 + q), 0.55, True)]
    bar = c.theta + np.pi / 2  # the plate lies across the division axis
    if q < 0.6:
        return [(c.y, c.x, 0.95 * c.r, 0.3 * c.r, bar, c.amp * 2.3, 0.12, False)]
    sep = (0.35 + 1.2 * (q - 0.6)) * c.r
    dy, dx = sep * np.sin(c.theta), sep * np.cos(c.theta)
    return [
        (c.y + sgn * dy, c.x + sgn * dx, 0.8 * c.r, 0.25 * c.r, bar, c.amp * 2.1, 0.12, False)
        for sgn in (1, -1)
    ]


def _apoptosis_blobs(c: _Cell) -> list[Blob]:
    """Pyknosis (shrink, brighten, smooth) -> fragmentation into bright bodies -> fading."""
    f = c.k / max(c.length - 1, 1)
    s0 = c.r * _size_factor(c)
    if f < 0.4:
        q = f / 0.4
        return [
            (
                c.y,
                c.x,
                s0 * (1 - 0.45 * q),
                s0 * (1 - 0.45 * q) * (c.aspect + (1 - c.aspect) * q),
                c.theta,
                c.amp * (1.3 + 0.9 * q),
                0.2 * (1 - q),
                False,
            )
        ]
    q = (f - 0.4) / 0.6
    dist = (0.25 + 0.55 * q) * c.r
    amp = c.amp * 2.2 * (1 - 0.85 * np.clip((f - 0.7) / 0.3, 0, 1))
    size = 0.24 * c.r * (1 - 0.3 * q)
    return [
        (c.y + dist * np.sin(a), c.x + dist * np.cos(a), size, size * 0.85, a, amp, 0.0, False)
        for a in c.frags
    ]


def _paint(
    scene: _Scene, c: _Cell, kind: int, blob: Blob, origin: np.ndarray, texture: np.ndarray
) -> None:
    """Add one textured soft-edged ellipse to the scene inside its bounding box; label its
    inside."""
    y, x, a, b, theta, amp, contrast, spots = blob
    cy, cx = y - origin[0], x - origin[1]
    half = int(np.ceil(max(a, b) * 1.3)) + 2
    ny, nx = scene.img.shape
    y0, y1 = max(int(cy) - half, 0), min(int(cy) + half + 1, ny)
    x0, x1 = max(int(cx) - half, 0), min(int(cx) + half + 1, nx)
    if y0 >= y1 or x0 >= x1:
        return
    yy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]  # (h, 1)
    xx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]  # (1, w)
    u = np.cos(theta) * yy + np.sin(theta) * xx  # (h, w) along the major axis
    v = -np.sin(theta) * yy + np.cos(theta) * xx
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2) / _wobble(c, u, v, spots)
    value = amp * (0.5 - 0.5 * np.tanh((rho - 1.0) / 0.1))  # soft edge ~1 px wide
    if contrast > 0:
        tex = texture[
            (c.tex[0] + u).astype(np.intp) % TEXTURE_SIZE,
            (c.tex[1] + v).astype(np.intp) % TEXTURE_SIZE,
        ]
        value = value * np.clip(
            1 + contrast * tex + _spots(c, u / a, v / b, spots, contrast), 0.1, None
        )
    scene.img[y0:y1, x0:x1] += value
    inside = rho < 1.0
    scene.lab[y0:y1, x0:x1][inside] = c.wid
    scene.ev[y0:y1, x0:x1][inside] = kind


def _wobble(c: _Cell, u: np.ndarray, v: np.ndarray, on: bool) -> np.ndarray | float:
    """Irregular outline: the ellipse radius modulated by a few low angular harmonics."""
    if not on:
        return 1.0
    phi = np.arctan2(v, u)
    return 1.0 + sum(amp * np.cos((k + 2) * phi + ph) for k, (amp, ph) in enumerate(c.harm))


def _spots(
    c: _Cell, un: np.ndarray, vn: np.ndarray, on: bool, contrast: float
) -> np.ndarray | float:
    """Bright chromocentres and dark nucleoli at fixed places in the nucleus (normalised coords)."""
    if not on or len(c.spots) == 0:
        return 0.0
    d2 = (un[None] - c.spots[:, 0, None, None]) ** 2 + (vn[None] - c.spots[:, 1, None, None]) ** 2
    gain = (c.spots[:, 2] * (0.5 + contrast))[:, None, None]
    return (gain * np.exp(-d2 / (2 * c.spots[:, 3, None, None] ** 2))).sum(0)


def _ensure_visible(
    scene: _Scene, cells: list[_Cell], origin: np.ndarray, daughter_frames: int
) -> None:
    """A nucleus whose centre is in view but fully covered by others keeps its centre pixel."""
    ny, nx = scene.lab.shape
    present = (
        np.bincount(scene.lab.ravel(), minlength=max((c.wid for c in cells), default=0) + 1) > 0
    )
    for c in cells:
        iy, ix = int(round(c.y - origin[0])), int(round(c.x - origin[1]))
        if not present[c.wid] and 0 <= iy < ny and 0 <= ix < nx:
            scene.lab[iy, ix], scene.ev[iy, ix] = c.wid, _event_kind(c, daughter_frames)


def _vignette(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Smooth uneven illumination (Y, X): 1 at a random point near the centre, ~0.7 in the
    corners."""
    ny, nx = size
    cy, cx = rng.uniform(0.35, 0.65) * ny, rng.uniform(0.35, 0.65) * nx
    yy, xx = np.mgrid[:ny, :nx].astype(np.float32)
    r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / (0.5 * (ny**2 + nx**2))
    return (1.0 - 0.3 * r2).astype(np.float32)


def _camera(
    signal: np.ndarray, t: int, p: _Params, vignette: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Optics and camera: blur, illumination, bleaching, background, shot and read noise (ADU).

    Shot noise uses the normal approximation of the Poisson law (>= ~10 photons per pixel here,
    even on the background), which is 4x faster than drawing Poisson numbers.
    """
    light = (BACKGROUND + ndi.gaussian_filter(signal, 0.8)) * vignette
    if p.bleaching > 0:
        light = light * np.exp(-p.bleaching * t)
    if p.noise > 0:
        std = np.sqrt(GAIN * p.noise * light + (READ_NOISE * p.noise) ** 2)
        light = light + std * rng.standard_normal(light.shape, dtype=np.float32)
    return (OFFSET + light).astype(np.float32)
