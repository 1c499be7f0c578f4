"""The optional second channel of the simulator (a cell-body marker): off by default, tied to the
nuclei."""

import hashlib

import numpy as np
import pytest
from scipy import ndimage as ndi

from tapkit import InputError
from tapkit.data.simulate import simulate_movie, simulate_two_channel

SMALL = dict(n_frames=12, size=(64, 64), seed=3, progress=False)
# sha256 of simulate_movie(**SMALL).images taken before the second channel was added (same machine,
# numpy, scipy)
HASH_BEFORE = "680856733d9cbda4e8cb013648e4ed9e7b2016bf2bffdc4e4f1671f5b313ef15"


def _sha(a: np.ndarray) -> str:
    """sha256 of an array's bytes."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_default_movie_is_unchanged_and_is_channel_zero():
    movie = simulate_movie(**SMALL)
    assert movie.images.ndim == 3 and _sha(movie.images) == HASH_BEFORE
    both, same = simulate_two_channel(**SMALL)
    assert both.shape == (12, 2, 64, 64) and both.dtype == np.float32
    assert np.array_equal(both[:, 0], movie.images) and np.array_equal(same.labels, movie.labels)


def test_cell_body_channel_follows_the_nuclei():
    both, movie = simulate_two_channel(**SMALL)
    body = both[:, 1]
    # px to the nearest nucleus
    dist = np.stack([ndi.distance_transform_edt(frame == 0) for frame in movie.labels])
    reach = movie.meta["params"]["nucleus_radius"]
    cytoplasm, nucleus = body[(dist > 0) & (dist <= reach)].mean(), body[dist == 0].mean()
    far = body[dist > 1.5 * reach].mean()
    assert cytoplasm > nucleus > far  # bright cytoplasm, nuclear exclusion, dark background
    assert cytoplasm - far > 100  # ADU, well above the noise
    smooth = lambda a: ndi.gaussian_filter(a, (0, reach, reach))  # noqa: E731 at the scale of a cell
    assert np.corrcoef(smooth(both[:, 0]).ravel(), smooth(body).ravel())[0, 1] > 0.6


def test_cell_body_channel_is_deterministic_and_checked():
    a, _ = simulate_two_channel(**SMALL)
    b, _ = simulate_two_channel(**SMALL)
    c, _ = simulate_two_channel(**dict(SMALL, seed=4))
    assert np.array_equal(a, b) and not np.array_equal(a[:, 1], c[:, 1])
    wider, _ = simulate_two_channel(cell_body=2.0, **SMALL)
    assert np.array_equal(wider[:, 0], a[:, 0]) and not np.array_equal(wider[:, 1], a[:, 1])
    with pytest.raises(InputError, match="cell_body"):
        simulate_two_channel(cell_body=0.0, **SMALL)
