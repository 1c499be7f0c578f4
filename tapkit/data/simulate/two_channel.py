"""A two-channel movie: the nuclei of `simulate_movie` and a cell-body (cytoplasmic) marker painted
from its labels and events and imaged by the same camera model with its own random stream.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from tapkit.data.movie import DIVISION, InputError, Movie
from tapkit.data.simulate.cells import _Params
from tapkit.data.simulate.engine import simulate_movie
from tapkit.data.simulate.render import _camera, _vignette

# ADU above background of the cell-body marker (dimmer than the nuclei)
CELL_BODY_BRIGHTNESS = 250.0
NUCLEAR_EXCLUSION = 0.35  # the cytoplasmic marker inside the nucleus, relative to the cytoplasm
MITOTIC_ROUNDING = 1.6  # a rounded-up mitotic cell is thicker, so brighter in widefield


def simulate_two_channel(
    cell_body: float = 1.0, seed: int = 0, progress: bool = True, **movie_kwargs
) -> tuple[np.ndarray, Movie]:
    """A two-channel movie (T, 2, Y, X): channel 0 the nuclei of `simulate_movie`, channel 1 a
    cell-body marker.

    The second channel is a cytoplasmic marker (think CellMask / cytoplasmic GFP): every nucleus
    grows into a cell body by `cell_body` nucleus radii (split between neighbours by nearest
    nucleus), bright in the cytoplasm, dimmer over the nucleus (nuclear exclusion), with a
    brightness per track; cells in mitosis round up and look brighter. It is painted from the
    movie's labels and events and imaged by the same camera model with its own random stream, so
    channel 0 and the returned Movie are exactly `simulate_movie(seed=seed, **movie_kwargs)`
    (which stays the course's single-channel default).
    """
    if not 0 < cell_body <= 5:
        raise InputError(
            f"simulate_two_channel: cell_body={cell_body!r} nucleus radii; use a value in (0, 5], "
            "e.g. 1."
        )
    movie = simulate_movie(seed=seed, progress=progress, **movie_kwargs)
    p = _Params(**movie.meta["params"])
    rng = np.random.default_rng([seed, 2])  # independent of the nuclei's stream
    # per track id
    brightness = np.r_[0.0, rng.lognormal(0, 0.3, int(movie.labels.max()))].astype(np.float32)
    vignette = _vignette(p.size, rng)
    body = np.empty(movie.images.shape, np.float32)
    for t in range(p.n_frames):
        signal = _cell_bodies(
            movie.labels[t], movie.events[t], brightness, cell_body * p.nucleus_radius
        )
        body[t] = _camera(signal, t, p, vignette, rng)
    return np.stack([movie.images, body], axis=1), movie


def _cell_bodies(
    labels: np.ndarray, events: np.ndarray, brightness: np.ndarray, reach: float
) -> np.ndarray:
    """Cell-body marker signal (Y, X) in ADU: nuclei grown by `reach` px, dimmer over the
    nucleus."""
    if not labels.any():
        return np.zeros(labels.shape, np.float32)
    distance, (iy, ix) = ndi.distance_transform_edt(labels == 0, return_indices=True)
    # (Y, X) track id of the cell body, 0 = none
    owner = np.where(distance <= reach, labels[iy, ix], 0)
    mitotic = events[iy, ix] == DIVISION
    value = (
        brightness[owner]
        * np.where(labels > 0, NUCLEAR_EXCLUSION, 1.0)
        * np.where(mitotic, MITOTIC_ROUNDING, 1.0)
    )
    return (CELL_BODY_BRIGHTNESS * value).astype(np.float32)
