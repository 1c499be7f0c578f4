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

Modules: `engine` (simulate_movie, the _Sim loop), `cells` (nuclei, parameters, placement, growth
and motion), `render` (painting nuclei, the camera), `tracks` (CTC tracks, lineage, event list),
`two_channel` (simulate_two_channel), `constants`. The public names are re-exported here, so
`from tapkit.data.simulate import simulate_movie` works as before.
"""

from tapkit.data.simulate.constants import (
    BACKGROUND,
    BRIGHTNESS,
    BURN_IN,
    FRAME_INTERVAL,
    GAIN,
    OFFSET,
    PROPHASE,
    READ_NOISE,
    REAL_PIXEL_SIZE,
    REAL_RADIUS,
    TEXTURE_SIZE,
    YOUTH,
)
from tapkit.data.simulate.engine import simulate_movie
from tapkit.data.simulate.render import Blob
from tapkit.data.simulate.two_channel import (
    CELL_BODY_BRIGHTNESS,
    MITOTIC_ROUNDING,
    NUCLEAR_EXCLUSION,
    simulate_two_channel,
)

__all__ = [
    "BACKGROUND",
    "BRIGHTNESS",
    "BURN_IN",
    "Blob",
    "CELL_BODY_BRIGHTNESS",
    "FRAME_INTERVAL",
    "GAIN",
    "MITOTIC_ROUNDING",
    "NUCLEAR_EXCLUSION",
    "OFFSET",
    "PROPHASE",
    "READ_NOISE",
    "REAL_PIXEL_SIZE",
    "REAL_RADIUS",
    "TEXTURE_SIZE",
    "YOUTH",
    "simulate_movie",
    "simulate_two_channel",
]
