"""The Movie type: validation with clear errors, and percentile normalisation."""

import numpy as np
import pytest

from tapkit import InputError, Movie, as_movie, check_images, normalize
from tapkit.data.movie import DIVISION


def _movie(t=4, y=16, x=20, seed=0):
    return np.random.default_rng(seed).random((t, y, x)).astype(np.float32) * 100


def test_movie_accepts_tyx_and_masks():
    imgs = _movie()
    ev = np.zeros(imgs.shape, np.int64)
    ev[1, 2:4, 2:4] = 1
    m = Movie(imgs, labels=(ev > 0).astype(int), events=ev, lineage=[[1, 0, 3, 0]], name="toy")
    assert m.shape == (4, 16, 20) and len(m) == 4
    assert (
        m.images.dtype == np.float32 and m.events.dtype == np.uint8 and m.labels.dtype == np.int32
    )
    assert m.has_events and m.lineage.shape == (1, 4)
    sub = m.crop(t=slice(1, 3), y=slice(0, 8))
    assert sub.shape == (2, 8, 20) and sub.events.sum() == 4


@pytest.mark.parametrize(
    "arr, words",
    [
        (np.ones((16, 16)), ["single 2D image", "(T, Y, X)"]),
        (np.random.rand(3, 16, 16, 2), ["4D", "channel", "take(0, axis=3)"]),
        (np.random.rand(1, 16, 16), ["1 frame", "at least 2"]),
        (
            np.where(np.eye(16)[None].repeat(3, 0) > 0, np.nan, 1.0) + np.random.rand(3, 16, 16),
            ["NaN"],
        ),
        (
            np.concatenate([np.random.rand(2, 16, 16), np.ones((1, 16, 16))]),
            ["frame(s) [2]", "constant"],
        ),
        (np.array([["a"]]), ["numeric"]),
    ],
)
def test_bad_images_name_problem_and_fix(arr, words):
    with pytest.raises(InputError) as err:
        check_images(arr)
    for w in words:
        assert w in str(err.value)


def test_mask_shape_and_values_checked():
    imgs = _movie()
    with pytest.raises(InputError, match="events has shape"):
        Movie(imgs, events=np.zeros((4, 16, 19), np.uint8))
    with pytest.raises(InputError, match="integers"):
        Movie(imgs, labels=np.zeros(imgs.shape, np.float32))
    with pytest.raises(InputError, match="0 \\(none\\), 1 \\(division\\) or 2"):
        Movie(imgs, events=np.full(imgs.shape, 3, np.uint8))


def test_normalize_per_frame_removes_bleaching():
    base = np.repeat(_movie(t=1), 6, axis=0)  # static cells, only bleaching changes
    bleached = base * (0.8 ** np.arange(6))[:, None, None] + 5
    n = normalize(bleached)
    lo = np.percentile(n, 1, axis=(1, 2))
    hi = np.percentile(n, 99.8, axis=(1, 2))
    np.testing.assert_allclose(lo, 0, atol=1e-4)
    np.testing.assert_allclose(hi, 1, atol=1e-4)
    # per-frame normalisation makes the frames identical up to float error; global does not
    np.testing.assert_allclose(n[0], n[-1], atol=1e-4)
    g = normalize(bleached, per_frame=False)
    assert g[0].mean() > 2 * g[-1].mean()
    assert normalize(bleached, clip=True).max() <= 1.0


def test_as_movie_and_normalize_errors():
    m = as_movie(_movie(), name="x")
    assert isinstance(m, Movie) and as_movie(m) is m
    with pytest.raises(InputError, match="pmin < pmax"):
        normalize(_movie(), pmin=50, pmax=10)


def test_bin_averages_images_keeps_events_and_scales_pixel_size():
    images = np.arange(2 * 16 * 19, dtype=np.float32).reshape(2, 16, 19)
    events = np.zeros((2, 16, 19), np.uint8)
    events[1, 5, 3] = DIVISION  # one event pixel survives binning as one binned event pixel
    labels = np.arange(2 * 16 * 19, dtype=np.int32).reshape(2, 16, 19) % 7
    mov = Movie(images, labels=labels, events=events, pixel_size=0.5)
    two = mov.bin(2)  # the odd last column is dropped
    assert two.shape == (2, 8, 9) and two.pixel_size == 1.0 and two.meta["binning"] == 2
    assert (
        two.images[0, 0, 0] == images[0, :2, :2].mean()
        and two.images[1, 7, 8] == images[1, 14:16, 16:18].mean()
    )
    assert two.events.sum() == DIVISION and two.events[1, 2, 1] == DIVISION
    assert np.array_equal(two.labels, labels[:, 0:16:2, 0:18:2])
    assert mov.bin(1) is mov


@pytest.mark.parametrize("factor", [0, 2.5, True, 4])
def test_bin_rejects_bad_factors(factor):
    with pytest.raises(InputError, match="factor" if factor != 4 else "smaller factor"):
        Movie(_movie(t=2, y=24, x=24)).bin(factor)
