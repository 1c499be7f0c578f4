"""The cell population in world coordinates: a nucleus (_Cell), the validated parameters (_Params),
new cells and their initial placement, and the per-cell quantities that drive growth, motion and
events (size over the cycle, chromatin condensation, daughters' youth, repulsion, the event class
painted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tapkit.data.movie import DEATH, DIVISION, NO_EVENT
from tapkit.data.simulate.constants import BRIGHTNESS, BURN_IN, PROPHASE, TEXTURE_SIZE, YOUTH


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


def _world_geometry(
    p: _Params, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World size (2,), field-of-view origin at frame 0 (2,) and drift direction (2,)."""
    margin = 3 * p.nucleus_radius + p.drift * p.n_frames
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.sin(angle), np.cos(angle)])
    world = np.array(p.size, dtype=float) + 2 * margin
    # the field of view stays inside the world
    origin0 = margin - direction * p.drift * p.n_frames / 2
    return world, origin0, direction


def _new_cell(
    p: _Params, rng: np.random.Generator, wid: int, y: float, x: float, parent: int = 0
) -> _Cell:
    """A new nucleus with random size, shape, brightness, texture and cycle length."""
    n_spots = rng.integers(2, 6)
    spots = np.column_stack(
        [
            rng.uniform(-0.6, 0.6, (n_spots, 2)),
            rng.uniform(0.25, 0.5, n_spots),
            rng.uniform(0.08, 0.14, n_spots),
        ]
    )
    n_holes = rng.integers(0, 3)  # nucleoli: darker round spots
    holes = np.column_stack(
        [
            rng.uniform(-0.4, 0.4, (n_holes, 2)),
            -rng.uniform(0.25, 0.45, n_holes),
            rng.uniform(0.15, 0.22, n_holes),
        ]
    )
    cycle = 1.0 / max(p.division_rate, 1e-6) * rng.gamma(16, 1 / 16)
    return _Cell(
        wid=wid,
        parent=parent,
        y=y,
        x=x,
        r=p.nucleus_radius * rng.lognormal(0, 0.08),
        aspect=rng.uniform(0.6, 0.9),
        theta=rng.uniform(0, np.pi),
        amp=BRIGHTNESS * rng.lognormal(0, 0.35),
        cycle=cycle,
        vy=rng.normal(0, 0.15),
        vx=rng.normal(0, 0.15),
        harm=np.column_stack([rng.uniform(0, 0.06, 3), rng.uniform(0, 2 * np.pi, 3)]),
        tex=rng.uniform(0, TEXTURE_SIZE, 2),
        spots=np.vstack([spots, holes]),
        frags=rng.uniform(0, 2 * np.pi, rng.integers(3, 7)),
    )


def _burn_in(p: _Params) -> int:
    """Frames simulated before frame 0: about one cell cycle (so cycle phases reach steady
    state)."""
    return int(min(BURN_IN, round(1.2 / max(p.division_rate, 1e-3))))


def _initial_cells(p: _Params, rng: np.random.Generator, world: np.ndarray) -> list[_Cell]:
    """Place cells uniformly in the world with a minimum distance, at random cycle phases."""
    # net growth rate per frame during the burn-in
    growth = np.log(2) * p.division_rate - p.death_rate
    n = int(
        round(p.n_cells * world.prod() / np.prod(p.size) * np.exp(-_burn_in(p) * max(growth, 0.0)))
    )
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


def _condensation(c: _Cell) -> float:
    """0 in interphase, rising to 1 over the last PROPHASE frames before mitosis."""
    return float(np.clip(1 - (c.cycle - c.age) / PROPHASE, 0, 1))


def _youth(c: _Cell) -> float:
    """1 at birth, decaying with time constant YOUTH frames (post-mitotic re-expansion)."""
    return float(np.exp(-c.since_birth / YOUTH))
