"""`simulate_movie`: check the parameters, then run the simulation (_Sim): burn in, and for every
frame advance the cell cycle (divisions, deaths), move the cells, render and image the frame.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from tapkit.data.movie import InputError, Movie
from tapkit.data.simulate.cells import (
    _burn_in,
    _Cell,
    _event_kind,
    _initial_cells,
    _new_cell,
    _Params,
    _repulsion,
    _size_factor,
    _world_geometry,
)
from tapkit.data.simulate.constants import FRAME_INTERVAL, REAL_PIXEL_SIZE, REAL_RADIUS
from tapkit.data.simulate.render import (
    _blobs,
    _camera,
    _ensure_visible,
    _paint,
    _Scene,
    _texture_field,
    _vignette,
)
from tapkit.data.simulate.tracks import _event_list, _tracks


def simulate_movie(
    n_frames: int = 80,
    size: tuple[int, int] = (256, 256),
    n_cells: int | None = None,
    division_rate: float = 0.025,
    death_rate: float = 0.004,
    nucleus_radius: float = 8.0,
    noise: float = 1.0,
    bleaching: float = 0.0,
    drift: float = 0.0,
    static: bool = False,
    daughter_event_frames: int = 2,
    seed: int = 0,
    progress: bool = True,
) -> Movie:
    """Simulate a (T, Y, X) movie of fluorescent nuclei with labels, events and lineage.

    The default movie (80 frames of 256 x 256 px, nuclei of radius ~8 px, one frame per 30 min as
    in Fluo-N2DL-HeLa) is the course's default data: ~75 nuclei in view at the start (20 % of the
    area), a cell cycle of ~40 frames (20 h), mitoses of 2-3 frames and apoptoses of 3-5 frames, so
    that ~1 % of the pixels carry events. Time-asymmetric cues outside the labelled events:
    chromatin condenses over the last ~hour before mitosis, daughters are small and bright and
    re-expand over ~1.5 h, nuclei grow slowly over the cycle. The CPU/smoke profiles pass a smaller
    `n_frames`/`size`.

    n_cells: number of nuclei in the field at frame 0 (None: ~20% of the area covered by nuclei).
    division_rate: 1 / mean cell-cycle length in frames (slowed down as the field fills up).
    death_rate: probability per cell and frame of starting apoptosis.
    noise: noise scale; 1 is like Fluo-N2DL-HeLa (read noise 10 ADU, 3 ADU per photon), 0 is none.
    bleaching: exponential global decay rate per frame (0 = off; a time-arrow shortcut).
    drift: stage drift in px / frame in a random direction (0 = off; a time-arrow shortcut).
    static: freeze all cells (no motion, growth, divisions, deaths); only noise changes.
    daughter_event_frames: frames after division during which daughters are marked as events.
    """
    p = _check_params(
        n_frames,
        size,
        n_cells,
        division_rate,
        death_rate,
        nucleus_radius,
        noise,
        bleaching,
        drift,
        static,
        daughter_event_frames,
        seed,
    )
    sim = _Sim(p)
    images, labels, events = sim.run(progress)
    lineage, labels, lut = _tracks(sim.visible, labels, sim.parents)
    return Movie(
        images=images,
        labels=labels,
        events=events,
        lineage=lineage,
        name="simulated",
        pixel_size=REAL_PIXEL_SIZE * REAL_RADIUS / p.nucleus_radius,
        frame_interval=FRAME_INTERVAL,
        meta={
            "params": dict(p.__dict__),
            "events": _event_list(sim.history, lut, p),
            "source": "tapkit.data.simulate.simulate_movie",
        },
    )


def _check_params(
    n_frames,
    size,
    n_cells,
    division_rate,
    death_rate,
    nucleus_radius,
    noise,
    bleaching,
    drift,
    static,
    daughter_event_frames,
    seed,
) -> _Params:
    """Validate the parameters of `simulate_movie` and fill in defaults; raise InputError early."""
    if not isinstance(n_frames, (int, np.integer)) or n_frames < 2:
        raise InputError(
            f"simulate_movie: n_frames={n_frames!r}; a movie needs an integer >= 2 frames."
        )
    try:
        ny, nx = (int(s) for s in size)
    except (TypeError, ValueError):
        raise InputError(
            f"simulate_movie: size={size!r} must be two integers (Y, X), e.g. (256, 256)."
        ) from None
    if nucleus_radius is None or not 3 <= nucleus_radius <= 40:
        raise InputError(
            f"simulate_movie: nucleus_radius={nucleus_radius!r} px; use 3-40 px (default 8)."
        )
    if min(ny, nx) < 4 * nucleus_radius or min(ny, nx) < 32:
        raise InputError(
            f"simulate_movie: size={size!r} is too small for nuclei of radius {nucleus_radius} px; "
            f"use at least {max(32, int(4 * nucleus_radius))} px per side (or a smaller "
            "nucleus_radius)."
        )
    for name, val, hi in [
        ("division_rate", division_rate, 0.2),
        ("death_rate", death_rate, 0.2),
        ("noise", noise, 10.0),
        ("bleaching", bleaching, 1.0),
        ("drift", drift, 5.0),
    ]:
        if not np.isfinite(val) or not 0 <= val <= hi:
            raise InputError(
                f"simulate_movie: {name}={val!r} must be between 0 and {hi} (0 switches it off)."
            )
    if not isinstance(daughter_event_frames, (int, np.integer)) or daughter_event_frames < 0:
        raise InputError(
            f"simulate_movie: daughter_event_frames={daughter_event_frames!r} must be an "
            "integer >= 0."
        )
    if n_cells is None:
        n_cells = max(1, round(0.2 * ny * nx / (np.pi * nucleus_radius**2)))
    if not isinstance(n_cells, (int, np.integer)) or not 0 <= n_cells <= 0.5 * ny * nx / (
        np.pi * nucleus_radius**2
    ):
        raise InputError(
            f"simulate_movie: n_cells={n_cells!r} must be an integer between 0 and "
            f"{int(0.5 * ny * nx / (np.pi * nucleus_radius**2))} (nuclei would cover more than "
            "half the field)."
        )
    return _Params(
        int(n_frames),
        (ny, nx),
        int(n_cells),
        float(division_rate),
        float(death_rate),
        float(nucleus_radius),
        float(noise),
        float(bleaching),
        float(drift),
        bool(static),
        int(daughter_event_frames),
        int(seed),
    )


class _Sim:
    """The simulation state: parameters, random generator, world cells and event history."""

    def __init__(self, p: _Params) -> None:
        self.p, self.rng = p, np.random.default_rng(p.seed)
        self.texture = _texture_field(self.rng)
        self.world, self.origin0, self.direction = _world_geometry(p, self.rng)
        self.vignette = _vignette(p.size, self.rng)
        self.cells = _initial_cells(p, self.rng, self.world)
        self.next_id = len(self.cells) + 1
        self.parents: dict[
            int, tuple[int, int]
        ] = {}  # daughter world id -> (mother world id, birth frame)
        self.history: list[dict] = []  # one dict per division/death: kind, start, end, cells
        self.visible: list[np.ndarray] = []  # per frame: world ids with pixels in the field of view

    def run(self, progress: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Burn in, then step, render and image every frame: images, world-id labels, events."""
        p = self.p
        shape = (p.n_frames, *p.size)
        images = np.empty(shape, np.float32)
        labels, events = np.zeros(shape, np.int32), np.zeros(shape, np.uint8)
        cached = None
        for t in tqdm(
            range(-_burn_in(p), p.n_frames), desc="simulating", disable=not progress, leave=False
        ):
            if not p.static:
                self.step(t)
            if t < 0:
                continue
            # a static movie without drift is rendered once
            if cached is None or not p.static or p.drift > 0:
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
            self.history.append(
                {
                    "kind": "division",
                    "start": t,
                    "end": t + c.length - 1 + self.p.daughter_event_frames,
                    "cells": [c.wid],
                }
            )
        elif self.rng.random() < self.p.death_rate:
            c.state, c.k, c.length = "A", 0, int(self.rng.integers(3, 6))
            self.history.append(
                {"kind": "death", "start": t, "end": t + c.length - 1, "cells": [c.wid]}
            )

    def _divide(self, mother: _Cell, t: int) -> list[_Cell]:
        """End the mother's track; two small bright daughters appear where the anaphase bars
        were."""
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
        """Brownian motion + persistent drift + repulsion between centres; drop cells leaving the
        world."""
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
        scene = _Scene(
            np.zeros(p.size, np.float32), np.zeros(p.size, np.int32), np.zeros(p.size, np.uint8)
        )
        origin = self.origin0 + self.direction * p.drift * t
        blobs = [(c, _blobs(c)) for c in self.cells]
        blobs.sort(key=lambda cb: -max(b[2] * b[3] for b in cb[1]))
        for c, bl in blobs:
            kind = _event_kind(c, p.daughter_event_frames)
            for b in bl:
                _paint(scene, c, kind, b, origin, self.texture)
        _ensure_visible(scene, self.cells, origin, p.daughter_event_frames)
        return scene
