"""Simulated fluorescent-nuclei movies with perfect ground truth (the course's default data).

`simulate_movie()` renders H2B-like nuclei (think CTC Fluo-N2DL-HeLa) that grow over their cell
cycle, move, divide (condensation -> metaphase bar -> anaphase -> small bright daughters) and die
(pyknosis -> fragmentation -> fading), imaged with uneven illumination, shot and read noise.
It returns a `tapkit.Movie` with `labels`, `events` and a CTC `lineage`.

How it works, in four steps:
1. cells live in a "world" slightly larger than the field of view (so cells can enter and leave);
2. after a burn-in (cycle phases reach steady state), `_Sim.step` advances the cell cycle each
   frame, starts divisions/deaths and moves cells;
3. `_Sim.render` paints every nucleus inside its bounding box only (vectorised numpy);
4. `_camera` adds illumination, optional bleaching, blur and noise; `_tracks` turns world cells
   into CTC tracks (a new track each time a cell (re)enters the field of view).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from tqdm.auto import tqdm

from tapkit.data.movie import DEATH, DIVISION, NO_EVENT, InputError, Movie

REAL_PIXEL_SIZE = 0.645  # um / px of CTC Fluo-N2DL-HeLa, whose nuclei have radius ~13.7 px
REAL_RADIUS = 13.7
FRAME_INTERVAL = 30.0  # minutes, as in Fluo-N2DL-HeLa; mitosis takes 2-3 frames, the cell cycle ~40
BURN_IN = 48  # at most this many frames simulated (not recorded) before frame 0, see `_burn_in`
TEXTURE_SIZE = 256
PROPHASE = 2.0  # frames of visible chromatin condensation before mitosis (~1 h)
YOUTH = 3.0  # frames: time constant of the daughters' re-expansion after mitosis (~1.5 h)

# Imaging constants in camera units (ADU), measured on Fluo-N2DL-HeLa: flat background with
# read noise ~10 ADU, nuclei ~100-1300 ADU above background (median ~700).
OFFSET = 1000.0
BACKGROUND = 40.0
BRIGHTNESS = 650.0
READ_NOISE = 10.0
GAIN = 3.0  # ADU per photon


@dataclass
class _Cell:
    """One nucleus in world coordinates (pixels); all shape parameters are fixed at birth."""

    wid: int
    parent: int
    y: float
    x: float
    r: float  # interphase radius scale of this cell
    aspect: float  # minor / major axis in interphase
    theta: float
    amp: float
    cycle: float  # frames from birth to mitosis
    age: float = 0.0
    state: str = "G"  # G interphase, M mitosis, A apoptosis
    k: int = 0  # frames spent in the current M/A state
    length: int = 0  # length of the M/A state in frames
    vy: float = 0.0
    vx: float = 0.0
    since_birth: int = 99  # frames since division (daughters start small and bright)
    harm: np.ndarray = field(default_factory=lambda: np.zeros((3, 2)))  # shape wobble (amp, phase)
    tex: np.ndarray = field(default_factory=lambda: np.zeros(2))  # texture origin
    spots: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # (u, v, amp, sigma)
    frags: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # apoptotic body directions


@dataclass
class _Params:
    """The validated simulation parameters (also stored in `movie.meta['params']`)."""

    n_frames: int
    size: tuple[int, int]
    n_cells: int
    division_rate: float
    death_rate: float
    nucleus_radius: float
    noise: float
    bleaching: float
    drift: float
    static: bool
    daughter_event_frames: int
    seed: int


@dataclass
class _Scene:
    """One frame being painted: intensity, world-id labels and event classes."""

    img: np.ndarray
    lab: np.ndarray
    ev: np.ndarray


def simulate_movie(n_frames: int = 80, size: tuple[int, int] = (256, 256), n_cells: int | None = None,
                   division_rate: float = 0.025, death_rate: float = 0.004, nucleus_radius: float = 8.0,
                   noise: float = 1.0, bleaching: float = 0.0, drift: float = 0.0, static: bool = False,
                   daughter_event_frames: int = 2, seed: int = 0, progress: bool = True) -> Movie:
    """Simulate a (T, Y, X) movie of fluorescent nuclei with labels, events and lineage.

    The default movie (80 frames of 256 x 256 px, nuclei of radius ~8 px, one frame per 30 min as
    in Fluo-N2DL-HeLa) is the course's default data: ~75 nuclei in view at the start (20 % of the
    area), a cell cycle of ~40 frames (20 h), mitoses of 2-3 frames and apoptoses of 3-5 frames, so
    that ~1 % of the pixels carry events. Time-asymmetric cues outside the labelled events: chromatin
    condenses over the last ~hour before mitosis, daughters are small and bright and re-expand over
    ~1.5 h, nuclei grow slowly over the cycle. The CPU/smoke profiles pass a smaller `n_frames`/`size`.

    n_cells: number of nuclei in the field at frame 0 (None: ~20% of the area covered by nuclei).
    division_rate: 1 / mean cell-cycle length in frames (slowed down as the field fills up).
    death_rate: probability per cell and frame of starting apoptosis.
    noise: noise scale; 1 is like Fluo-N2DL-HeLa (read noise 10 ADU, 3 ADU per photon), 0 is none.
    bleaching: exponential global decay rate per frame (0 = off; a time-arrow shortcut).
    drift: stage drift in px / frame in a random direction (0 = off; a time-arrow shortcut).
    static: freeze all cells (no motion, growth, divisions, deaths); only noise changes.
    daughter_event_frames: frames after division during which daughters are marked as events.
    """
    p = _check_params(n_frames, size, n_cells, division_rate, death_rate, nucleus_radius, noise,
                      bleaching, drift, static, daughter_event_frames, seed)
    sim = _Sim(p)
    images, labels, events = sim.run(progress)
    lineage, labels, lut = _tracks(sim.visible, labels, sim.parents)
    return Movie(
        images=images, labels=labels, events=events, lineage=lineage, name="simulated",
        pixel_size=REAL_PIXEL_SIZE * REAL_RADIUS / p.nucleus_radius, frame_interval=FRAME_INTERVAL,
        meta={"params": dict(p.__dict__), "events": _event_list(sim.history, lut, p),
              "source": "tapkit.data.simulate.simulate_movie"},
    )


def _check_params(n_frames, size, n_cells, division_rate, death_rate, nucleus_radius, noise,
                  bleaching, drift, static, daughter_event_frames, seed) -> _Params:
    """Validate the parameters of `simulate_movie` and fill in defaults; raise InputError early."""
    if not isinstance(n_frames, (int, np.integer)) or n_frames < 2:
        raise InputError(f"simulate_movie: n_frames={n_frames!r}; a movie needs an integer >= 2 frames.")
    try:
        ny, nx = (int(s) for s in size)
    except (TypeError, ValueError):
        raise InputError(f"simulate_movie: size={size!r} must be two integers (Y, X), e.g. (256, 256).") from None
    if nucleus_radius is None or not 3 <= nucleus_radius <= 40:
        raise InputError(f"simulate_movie: nucleus_radius={nucleus_radius!r} px; use 3-40 px (default 8).")
    if min(ny, nx) < 4 * nucleus_radius or min(ny, nx) < 32:
        raise InputError(
            f"simulate_movie: size={size!r} is too small for nuclei of radius {nucleus_radius} px; "
            f"use at least {max(32, int(4 * nucleus_radius))} px per side (or a smaller nucleus_radius)."
        )
    for name, val, hi in [("division_rate", division_rate, 0.2), ("death_rate", death_rate, 0.2),
                          ("noise", noise, 10.0), ("bleaching", bleaching, 1.0), ("drift", drift, 5.0)]:
        if not np.isfinite(val) or not 0 <= val <= hi:
            raise InputError(f"simulate_movie: {name}={val!r} must be between 0 and {hi} (0 switches it off).")
    if not isinstance(daughter_event_frames, (int, np.integer)) or daughter_event_frames < 0:
        raise InputError(f"simulate_movie: daughter_event_frames={daughter_event_frames!r} must be an integer >= 0.")
    if n_cells is None:
        n_cells = max(1, round(0.2 * ny * nx / (np.pi * nucleus_radius**2)))
    if not isinstance(n_cells, (int, np.integer)) or not 0 <= n_cells <= 0.5 * ny * nx / (np.pi * nucleus_radius**2):
        raise InputError(
            f"simulate_movie: n_cells={n_cells!r} must be an integer between 0 and "
            f"{int(0.5 * ny * nx / (np.pi * nucleus_radius**2))} (nuclei would cover more than half the field)."
        )
    return _Params(int(n_frames), (ny, nx), int(n_cells), float(division_rate), float(death_rate),
                   float(nucleus_radius), float(noise), float(bleaching), float(drift), bool(static),
                   int(daughter_event_frames), int(seed))


def _texture_field(rng: np.random.Generator) -> np.ndarray:
    """A periodic smooth random field (S, S), zero mean and unit std: the chromatin texture."""
    white = rng.standard_normal((TEXTURE_SIZE, TEXTURE_SIZE))
    fine = ndi.gaussian_filter(white, 1.3, mode="wrap")
    coarse = ndi.gaussian_filter(white, 3.5, mode="wrap")
    tex = fine / fine.std() + 0.8 * coarse / coarse.std()
    return ((tex - tex.mean()) / tex.std()).astype(np.float32)


def _world_geometry(p: _Params, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World size (2,), field-of-view origin at frame 0 (2,) and drift direction (2,)."""
    margin = 3 * p.nucleus_radius + p.drift * p.n_frames
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.sin(angle), np.cos(angle)])
    world = np.array(p.size, dtype=float) + 2 * margin
    origin0 = margin - direction * p.drift * p.n_frames / 2  # the field of view stays inside the world
    return world, origin0, direction


def _new_cell(p: _Params, rng: np.random.Generator, wid: int, y: float, x: float, parent: int = 0) -> _Cell:
    """A new nucleus with random size, shape, brightness, texture and cycle length."""
    n_spots = rng.integers(2, 6)
    spots = np.column_stack([rng.uniform(-0.6, 0.6, (n_spots, 2)), rng.uniform(0.25, 0.5, n_spots),
                             rng.uniform(0.08, 0.14, n_spots)])
    n_holes = rng.integers(0, 3)  # nucleoli: darker round spots
    holes = np.column_stack([rng.uniform(-0.4, 0.4, (n_holes, 2)), -rng.uniform(0.25, 0.45, n_holes),
                             rng.uniform(0.15, 0.22, n_holes)])
    cycle = 1.0 / max(p.division_rate, 1e-6) * rng.gamma(16, 1 / 16)
    return _Cell(
        wid=wid, parent=parent, y=y, x=x, r=p.nucleus_radius * rng.lognormal(0, 0.08),
        aspect=rng.uniform(0.6, 0.9), theta=rng.uniform(0, np.pi), amp=BRIGHTNESS * rng.lognormal(0, 0.35),
        cycle=cycle, vy=rng.normal(0, 0.15), vx=rng.normal(0, 0.15),
        harm=np.column_stack([rng.uniform(0, 0.06, 3), rng.uniform(0, 2 * np.pi, 3)]),
        tex=rng.uniform(0, TEXTURE_SIZE, 2), spots=np.vstack([spots, holes]),
        frags=rng.uniform(0, 2 * np.pi, rng.integers(3, 7)),
    )


def _burn_in(p: _Params) -> int:
    """Frames simulated before frame 0: about one cell cycle (so cycle phases reach steady state)."""
    return int(min(BURN_IN, round(1.2 / max(p.division_rate, 1e-3))))


def _initial_cells(p: _Params, rng: np.random.Generator, world: np.ndarray) -> list[_Cell]:
    """Place cells uniformly in the world with a minimum distance, at random cycle phases."""
    growth = np.log(2) * p.division_rate - p.death_rate  # net growth rate per frame during the burn-in
    n = int(round(p.n_cells * world.prod() / np.prod(p.size) * np.exp(-_burn_in(p) * max(growth, 0.0))))
    pts: list[np.ndarray] = []
    for _ in range(50 * n + 50):
        if len(pts) == n:
            break
        q = rng.uniform(0, 1, 2) * world
        if not pts or np.min(np.hypot(*(np.array(pts) - q).T)) > 2.0 * p.nucleus_radius:
            pts.append(q)
    cells = [_new_cell(p, rng, i + 1, q[0], q[1]) for i, q in enumerate(pts)]
    for c in cells:
        c.age = rng.uniform(0, 0.95) * c.cycle
    return cells


class _Sim:
    """The simulation state: parameters, random generator, world cells and event history."""

    def __init__(self, p: _Params) -> None:
        self.p, self.rng = p, np.random.default_rng(p.seed)
        self.texture = _texture_field(self.rng)
        self.world, self.origin0, self.direction = _world_geometry(p, self.rng)
        self.vignette = _vignette(p.size, self.rng)
        self.cells = _initial_cells(p, self.rng, self.world)
        self.next_id = len(self.cells) + 1
        self.parents: dict[int, tuple[int, int]] = {}  # daughter world id -> (mother world id, birth frame)
        self.history: list[dict] = []  # one dict per division/death: kind, start, end, cells
        self.visible: list[np.ndarray] = []  # per frame: world ids with pixels in the field of view

    def run(self, progress: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Burn in, then step, render and image every frame: images, world-id labels, events."""
        p = self.p
        shape = (p.n_frames, *p.size)
        images = np.empty(shape, np.float32)
        labels, events = np.zeros(shape, np.int32), np.zeros(shape, np.uint8)
        cached = None
        for t in tqdm(range(-_burn_in(p), p.n_frames), desc="simulating", disable=not progress, leave=False):
            if not p.static:
                self.step(t)
            if t < 0:
                continue
            if cached is None or not p.static or p.drift > 0:  # a static movie without drift is rendered once
                cached = self.render(t)
            scene = cached
            labels[t], events[t] = scene.lab, scene.ev
            self.visible.append(np.flatnonzero(np.bincount(scene.lab.ravel())[1:]) + 1)
            images[t] = _camera(scene.img, t, p, self.vignette, self.rng)
        return images, labels, events

    def step(self, t: int) -> None:
        """Advance every cell by one frame: cycle, divisions, deaths, then motion."""
        g = self._growth_factor()
        survivors: list[_Cell] = []
        for c in self.cells:
            c.k += 1
            c.since_birth += 1
            if c.state == "M" and c.k >= c.length:
                survivors += self._divide(c, t)
            elif c.state == "A" and c.k >= c.length:
                continue  # the dead cell's track ends
            else:
                survivors.append(c)
                if c.state == "G":
                    self._advance_cycle(c, g, t)
        self.cells = survivors
        self._move()

    def _growth_factor(self) -> float:
        """Contact inhibition: the cell cycle slows down as nuclei cover more of the world."""
        covered = sum(np.pi * c.r**2 for c in self.cells) / self.world.prod()
        return float(np.clip(1.0 - (covered / 0.55) ** 2, 0.0, 1.0))

    def _advance_cycle(self, c: _Cell, g: float, t: int) -> None:
        """Age an interphase cell; start mitosis at the end of its cycle, or apoptosis at random."""
        c.age += g
        if c.age >= c.cycle:
            c.state, c.k, c.length = "M", 0, int(self.rng.integers(2, 4))
            self.history.append({"kind": "division", "start": t, "end": t + c.length - 1
                                 + self.p.daughter_event_frames, "cells": [c.wid]})
        elif self.rng.random() < self.p.death_rate:
            c.state, c.k, c.length = "A", 0, int(self.rng.integers(3, 6))
            self.history.append({"kind": "death", "start": t, "end": t + c.length - 1, "cells": [c.wid]})

    def _divide(self, mother: _Cell, t: int) -> list[_Cell]:
        """End the mother's track; two small bright daughters appear where the anaphase bars were."""
        axis = np.array([np.sin(mother.theta), np.cos(mother.theta)])
        daughters = []
        for sign in (1, -1):
            y, x = np.array([mother.y, mother.x]) + sign * 1.1 * mother.r * axis
            d = _new_cell(self.p, self.rng, self.next_id, y, x, parent=mother.wid)
            d.amp = mother.amp * self.rng.lognormal(0, 0.1)
            d.theta, d.since_birth = mother.theta + self.rng.normal(0, 0.3), 0
            self.parents[d.wid] = (mother.wid, t)
            self.next_id += 1
            daughters.append(d)
        for ev in reversed(self.history):
            if ev["kind"] == "division" and ev["cells"][0] == mother.wid:
                ev["cells"] += [d.wid for d in daughters]
                break
        return daughters

    def _move(self) -> None:
        """Brownian motion + persistent drift + repulsion between centres; drop cells leaving the world."""
        if not self.cells:
            return
        rng, n = self.rng, len(self.cells)
        pos = np.array([[c.y, c.x] for c in self.cells])
        vel = np.array([[c.vy, c.vx] for c in self.cells]) * 0.9 + rng.normal(0, 0.05, (n, 2))
        mobility = np.array([{"G": 1.0, "M": 0.3, "A": 0.2}[c.state] for c in self.cells])
        radius = np.array([c.r * _size_factor(c) for c in self.cells])
        pos += mobility[:, None] * (vel + rng.normal(0, 0.35, (n, 2))) + _repulsion(pos, radius)
        keep = np.all((pos >= 0) & (pos < self.world), axis=1)
        for c, q, v in zip(self.cells, pos, vel):
            c.y, c.x, c.vy, c.vx = q[0], q[1], v[0], v[1]
        self.cells = [c for c, k in zip(self.cells, keep) if k]

    def render(self, t: int) -> _Scene:
        """Paint all nuclei of frame t in field-of-view coordinates (small ones on top)."""
        p = self.p
        scene = _Scene(np.zeros(p.size, np.float32), np.zeros(p.size, np.int32), np.zeros(p.size, np.uint8))
        origin = self.origin0 + self.direction * p.drift * t
        blobs = [(c, _blobs(c)) for c in self.cells]
        blobs.sort(key=lambda cb: -max(b[2] * b[3] for b in cb[1]))
        for c, bl in blobs:
            kind = _event_kind(c, p.daughter_event_frames)
            for b in bl:
                _paint(scene, c, kind, b, origin, self.texture)
        _ensure_visible(scene, self.cells, origin, p.daughter_event_frames)
        return scene


def _size_factor(c: _Cell) -> float:
    """Interphase radius relative to `c.r`: grows over the cycle, daughters start small."""
    phase = min(c.age / c.cycle, 1.0)
    return 0.8 + 0.3 * phase - 0.3 * _youth(c)


def _repulsion(pos: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """(N, 2) displacement pushing apart nuclei whose centres are closer than the sum of radii."""
    diff = pos[:, None, :] - pos[None, :, :]  # (N, N, 2)
    dist = np.hypot(diff[..., 0], diff[..., 1]) + np.eye(len(pos))
    overlap = np.clip(0.95 * (radius[:, None] + radius[None, :]) - dist, 0, None)
    np.fill_diagonal(overlap, 0)
    push = (0.25 * overlap / dist)[..., None] * diff
    step = push.sum(1)
    norm = np.hypot(step[:, 0], step[:, 1])[:, None]
    return step * np.minimum(1.0, 2.0 / np.maximum(norm, 1e-9))  # at most 2 px per frame


def _event_kind(c: _Cell, daughter_frames: int) -> int:
    """Event class painted on this cell now: division (mitosis, young daughters), death or none."""
    if c.state == "M" or (c.state == "G" and c.since_birth < daughter_frames):
        return DIVISION
    return DEATH if c.state == "A" else NO_EVENT


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
    return [(c.y, c.x, s * (1 - 0.1 * pre), s * aspect * (1 - 0.1 * pre), c.theta, amp, 0.18 + 0.45 * pre, True)]


def _condensation(c: _Cell) -> float:
    """0 in interphase, rising to 1 over the last PROPHASE frames before mitosis."""
    return float(np.clip(1 - (c.cycle - c.age) / PROPHASE, 0, 1))


def _youth(c: _Cell) -> float:
    """1 at birth, decaying with time constant YOUTH frames (post-mitotic re-expansion)."""
    return float(np.exp(-c.since_birth / YOUTH))


def _mitosis_blobs(c: _Cell) -> list[Blob]:
    """Prophase (round, smaller, brighter, clumpy) -> metaphase bar -> anaphase (two bars separating)."""
    q = (c.k + 0.5) / c.length  # progress through mitosis, in (0, 1)
    if q < 0.35:
        s = c.r * 1.1 * (1 - 0.5 * q)
        return [(c.y, c.x, s, 0.9 * s, c.theta, c.amp * (1.5 + q), 0.55, True)]
    bar = c.theta + np.pi / 2  # the plate lies across the division axis
    if q < 0.6:
        return [(c.y, c.x, 0.95 * c.r, 0.3 * c.r, bar, c.amp * 2.3, 0.12, False)]
    sep = (0.35 + 1.2 * (q - 0.6)) * c.r
    dy, dx = sep * np.sin(c.theta), sep * np.cos(c.theta)
    return [(c.y + sgn * dy, c.x + sgn * dx, 0.8 * c.r, 0.25 * c.r, bar, c.amp * 2.1, 0.12, False)
            for sgn in (1, -1)]


def _apoptosis_blobs(c: _Cell) -> list[Blob]:
    """Pyknosis (shrink, brighten, smooth) -> fragmentation into bright bodies -> fading."""
    f = c.k / max(c.length - 1, 1)
    s0 = c.r * _size_factor(c)
    if f < 0.4:
        q = f / 0.4
        return [(c.y, c.x, s0 * (1 - 0.45 * q), s0 * (1 - 0.45 * q) * (c.aspect + (1 - c.aspect) * q), c.theta,
                 c.amp * (1.3 + 0.9 * q), 0.2 * (1 - q), False)]
    q = (f - 0.4) / 0.6
    dist = (0.25 + 0.55 * q) * c.r
    amp = c.amp * 2.2 * (1 - 0.85 * np.clip((f - 0.7) / 0.3, 0, 1))
    size = 0.24 * c.r * (1 - 0.3 * q)
    return [(c.y + dist * np.sin(a), c.x + dist * np.cos(a), size, size * 0.85, a, amp, 0.0, False)
            for a in c.frags]


def _paint(scene: _Scene, c: _Cell, kind: int, blob: Blob, origin: np.ndarray, texture: np.ndarray) -> None:
    """Add one textured soft-edged ellipse to the scene inside its bounding box; label its inside."""
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
        tex = texture[(c.tex[0] + u).astype(np.intp) % TEXTURE_SIZE, (c.tex[1] + v).astype(np.intp) % TEXTURE_SIZE]
        value = value * np.clip(1 + contrast * tex + _spots(c, u / a, v / b, spots, contrast), 0.1, None)
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


def _spots(c: _Cell, un: np.ndarray, vn: np.ndarray, on: bool, contrast: float) -> np.ndarray | float:
    """Bright chromocentres and dark nucleoli at fixed places in the nucleus (normalised coords)."""
    if not on or len(c.spots) == 0:
        return 0.0
    d2 = (un[None] - c.spots[:, 0, None, None]) ** 2 + (vn[None] - c.spots[:, 1, None, None]) ** 2
    gain = (c.spots[:, 2] * (0.5 + contrast))[:, None, None]
    return (gain * np.exp(-d2 / (2 * c.spots[:, 3, None, None] ** 2))).sum(0)


def _ensure_visible(scene: _Scene, cells: list[_Cell], origin: np.ndarray, daughter_frames: int) -> None:
    """A nucleus whose centre is in view but fully covered by others keeps its centre pixel."""
    ny, nx = scene.lab.shape
    present = np.bincount(scene.lab.ravel(), minlength=max((c.wid for c in cells), default=0) + 1) > 0
    for c in cells:
        iy, ix = int(round(c.y - origin[0])), int(round(c.x - origin[1]))
        if not present[c.wid] and 0 <= iy < ny and 0 <= ix < nx:
            scene.lab[iy, ix], scene.ev[iy, ix] = c.wid, _event_kind(c, daughter_frames)


def _vignette(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Smooth uneven illumination (Y, X): 1 at a random point near the centre, ~0.7 in the corners."""
    ny, nx = size
    cy, cx = rng.uniform(0.35, 0.65) * ny, rng.uniform(0.35, 0.65) * nx
    yy, xx = np.mgrid[:ny, :nx].astype(np.float32)
    r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / (0.5 * (ny**2 + nx**2))
    return (1.0 - 0.3 * r2).astype(np.float32)


def _camera(signal: np.ndarray, t: int, p: _Params, vignette: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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


def _tracks(visible: list[np.ndarray], labels: np.ndarray,
            parents: dict[int, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CTC tracks from world cells: one track per visible stretch; relabel; (lineage, labels, lut).

    lut: (T, W) int32 map from world id to track id at each frame (0 = not visible).
    """
    n_t = len(visible)
    n_w = max((int(v.max()) for v in visible if len(v)), default=0) + 1
    seen = np.zeros((n_t, n_w), bool)  # (T, W)
    for t, v in enumerate(visible):
        seen[t, v] = True
    lut = np.zeros((n_t, n_w), np.int32)
    rows: list[list[int]] = []
    starts = seen & ~np.vstack([np.zeros((1, n_w), bool), seen[:-1]])  # a stretch begins here
    for t, w in zip(*np.nonzero(starts)):  # sorted by first frame, then world id
        end = t + int(np.argmin(np.append(seen[t:, w], False)))  # first frame no longer visible
        tid = len(rows) + 1
        lut[t:end, w] = tid
        mother, born = parents.get(int(w), (0, -1))
        parent = int(lut[t - 1, mother]) if born == t and t > 0 and mother < n_w else 0
        rows.append([tid, int(t), end - 1, parent])
    relabeled = np.stack([lut[t][labels[t]] for t in range(n_t)]).astype(np.int32)
    return np.array(rows, np.int64).reshape(-1, 4), relabeled, lut


def _event_list(history: list[dict], lut: np.ndarray, p: _Params) -> list[tuple]:
    """Events visible in the movie: (kind, first frame, last frame, track ids (0 = not in view)).

    A cell that leaves and re-enters the field during its event has several tracks: the main entry
    names the mother's last and the daughters' first track; each other track gets its own entry.
    """
    n_t, n_w = lut.shape
    out = []
    for ev in history:
        t0, t1 = max(ev["start"], 0), min(ev["end"], n_t - 1)
        if t0 > t1:
            continue
        cols = [lut[t0:t1 + 1, w] if w < n_w else np.zeros(t1 + 1 - t0, np.int32) for w in ev["cells"]]
        tracks = [list(dict.fromkeys(col[col > 0].tolist())) for col in cols]  # in order of appearance
        ids = [(tr[-1] if i == 0 else tr[0]) if tr else 0 for i, tr in enumerate(tracks)]
        if any(ids):
            out.append((ev["kind"], t0, t1, tuple(ids)))
        for i, (col, tr) in enumerate(zip(cols, tracks)):
            for tid in (tr[:-1] if i == 0 else tr[1:]):
                frames = t0 + np.flatnonzero(col == tid)
                extra = [0] * len(cols)
                extra[i] = tid
                out.append((ev["kind"], int(frames[0]), int(frames[-1]), tuple(extra)))
    return out


CELL_BODY_BRIGHTNESS = 250.0  # ADU above background of the cell-body marker (dimmer than the nuclei)
NUCLEAR_EXCLUSION = 0.35  # the cytoplasmic marker inside the nucleus, relative to the cytoplasm
MITOTIC_ROUNDING = 1.6  # a rounded-up mitotic cell is thicker, so brighter in widefield


def simulate_two_channel(cell_body: float = 1.0, seed: int = 0, progress: bool = True,
                         **movie_kwargs) -> tuple[np.ndarray, Movie]:
    """A two-channel movie (T, 2, Y, X): channel 0 the nuclei of `simulate_movie`, channel 1 a cell-body marker.

    The second channel is a cytoplasmic marker (think CellMask / cytoplasmic GFP): every nucleus
    grows into a cell body by `cell_body` nucleus radii (split between neighbours by nearest
    nucleus), bright in the cytoplasm, dimmer over the nucleus (nuclear exclusion), with a
    brightness per track; cells in mitosis round up and look brighter. It is painted from the
    movie's labels and events and imaged by the same camera model with its own random stream, so
    channel 0 and the returned Movie are exactly `simulate_movie(seed=seed, **movie_kwargs)`
    (which stays the course's single-channel default).
    """
    if not 0 < cell_body <= 5:
        raise InputError(f"simulate_two_channel: cell_body={cell_body!r} nucleus radii; use a value in (0, 5], e.g. 1.")
    movie = simulate_movie(seed=seed, progress=progress, **movie_kwargs)
    p = _Params(**movie.meta["params"])
    rng = np.random.default_rng([seed, 2])  # independent of the nuclei's stream
    brightness = np.r_[0.0, rng.lognormal(0, 0.3, int(movie.labels.max()))].astype(np.float32)  # per track id
    vignette = _vignette(p.size, rng)
    body = np.empty(movie.images.shape, np.float32)
    for t in range(p.n_frames):
        signal = _cell_bodies(movie.labels[t], movie.events[t], brightness, cell_body * p.nucleus_radius)
        body[t] = _camera(signal, t, p, vignette, rng)
    return np.stack([movie.images, body], axis=1), movie


def _cell_bodies(labels: np.ndarray, events: np.ndarray, brightness: np.ndarray, reach: float) -> np.ndarray:
    """Cell-body marker signal (Y, X) in ADU: nuclei grown by `reach` px, dimmer over the nucleus."""
    if not labels.any():
        return np.zeros(labels.shape, np.float32)
    distance, (iy, ix) = ndi.distance_transform_edt(labels == 0, return_indices=True)
    owner = np.where(distance <= reach, labels[iy, ix], 0)  # (Y, X) track id of the cell body, 0 = none
    mitotic = events[iy, ix] == DIVISION
    value = brightness[owner] * np.where(labels > 0, NUCLEAR_EXCLUSION, 1.0) * np.where(mitotic, MITOTIC_ROUNDING, 1.0)
    return (CELL_BODY_BRIGHTNESS * value).astype(np.float32)
