"""Movie checks of notebook 09: drift, bleaching, nucleus size and binning advice, export files."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from tapkit.data import export, inspect
from tapkit.data.datasets import recommended
from tapkit.data.movie import InputError
from tapkit.data.simulate import simulate_movie


def _equivalent_radius(labels: np.ndarray) -> float:
    """Median sqrt(area / pi) of the labelled nuclei of one frame (the ground truth)."""
    areas = np.bincount(labels.ravel())[1:]
    return float(np.median(np.sqrt(areas[areas > 0] / np.pi)))


@pytest.mark.parametrize("shift", [(3.0, -5.0), (0.4, 1.7), (-2.25, 0.0)])
def test_phase_correlation_recovers_a_known_shift(shift):
    frame = simulate_movie(n_frames=2, size=(128, 128), seed=3, progress=False).images[0]
    moved = ndi.shift(frame, shift, order=3, mode="nearest")  # scipy's shift is the reference
    dy, dx = inspect.phase_correlation(frame, moved)
    assert abs(dy - shift[0]) < 0.3 and abs(dx - shift[1]) < 0.3, (dy, dx)


def test_check_movie_warns_about_drift_and_bleaching_only_when_present():
    clean = inspect.check_movie(
        simulate_movie(n_frames=24, size=(128, 128), seed=0, progress=False)
    )
    assert clean.warnings == [] and clean.drift_per_frame < 0.2 and abs(clean.bleaching_rate) < 0.01
    drifting = inspect.check_movie(
        simulate_movie(n_frames=24, size=(128, 128), drift=1.0, seed=0, progress=False)
    )
    assert abs(drifting.drift_per_frame - 1.0) < 0.2 and any(
        "drifts" in w for w in drifting.warnings
    )
    bleached = inspect.check_movie(
        simulate_movie(n_frames=24, size=(128, 128), bleaching=0.02, seed=0, progress=False)
    )
    assert 0.014 < bleached.bleaching_rate < 0.026 and any(
        "bleaching" in w for w in bleached.warnings
    )
    assert (
        bleached.shape == (24, 128, 128)
        and bleached.drift.shape == (24, 2)
        and "drift" in bleached.table()
    )


def test_bleaching_rate_is_the_straight_line_fit():
    means = 100 * (1 - 0.03 * np.arange(10)) + np.random.default_rng(0).normal(0, 0.5, 10)
    slope, intercept = np.polyfit(np.arange(10), means, 1)
    assert inspect.bleaching_rate(means) == pytest.approx(-slope / intercept)
    assert inspect.bleaching_rate(means) == pytest.approx(0.03, abs=0.005)


def test_otsu_threshold_maximises_the_between_class_variance():
    values = np.concatenate(
        [np.random.default_rng(1).normal(0, 1, 4000), np.random.default_rng(2).normal(8, 1, 1000)]
    )
    cut = inspect.otsu_threshold(values)
    assert 2 < cut < 6

    def between(c):  # brute force over the same candidate cuts
        lo, hi = values[values <= c], values[values > c]
        return len(lo) * len(hi) * (lo.mean() - hi.mean()) ** 2

    candidates = np.linspace(1, 7, 121)
    assert abs(cut - candidates[np.argmax([between(c) for c in candidates])]) < 0.1


@pytest.mark.parametrize("radius", [4.0, 8.0, 16.0])
def test_nucleus_size_matches_the_simulated_masks(radius):
    movie = simulate_movie(
        n_frames=2, size=(256, 256), nucleus_radius=radius, seed=1, progress=False
    )
    truth = _equivalent_radius(movie.labels[0])
    found = inspect.estimate_nucleus_size(movie, n_frames=1)
    assert abs(found.radius - truth) / truth < 0.2, (found.radius, truth)
    assert found.blobs.shape[1] == 4 and found.n_blobs >= 5


def test_default_target_is_the_default_simulated_nuclei_and_hela_gets_its_binning():
    # the defaults' nuclei
    movie = simulate_movie(n_frames=2, size=(256, 256), seed=0, progress=False)
    assert abs(_equivalent_radius(movie.labels[0]) - inspect.DEFAULT_NUCLEUS_RADIUS) < 0.6
    assert inspect.recommend_binning(inspect.estimate_nucleus_size(movie).radius).factor == 1
    hela_radius = 13.7  # Fluo-N2DL-HeLa nuclei (simulate.REAL_RADIUS, from its masks)
    advice = inspect.recommend_binning(hela_radius)
    assert advice.factor == recommended("hela-subset")["binning"] == 2 and "2x2" in advice.reason
    assert (
        inspect.recommend_binning(2.5).factor == 1
        and "smaller" in inspect.recommend_binning(2.5).reason
    )
    with pytest.raises(InputError, match="radius"):
        inspect.recommend_binning(float("nan"))


def test_export_writes_npz_and_csv_in_unbinned_pixels(tmp_path):
    feats = np.random.default_rng(0).random((3, 4, 16, 16), dtype=np.float32)
    path = export.export_features(feats, tmp_path / "f.npz", frames=[0, 5, 9], binning=2)
    with np.load(path) as npz:
        np.testing.assert_array_equal(npz["features"], feats)
        assert npz["frames"].tolist() == [0, 5, 9] and int(npz["binning"]) == 2
    csv = export.export_regions(
        [4, 7], [[(10, 20, 0.5)], [(3, 4, 0.25), (5, 6, 0.125)]], tmp_path / "r.csv", binning=2
    )
    rows = export.read_regions(csv)
    np.testing.assert_allclose(
        rows, [[4, 20.5, 40.5, 0.5], [7, 6.5, 8.5, 0.25], [7, 10.5, 12.5, 0.125]]
    )
    assert csv.read_text().splitlines()[0] == "t,y,x,score"
    with pytest.raises(InputError, match=r"\(T, F, Y, X\)"):
        export.export_features(feats[0], tmp_path / "bad.npz")


def test_export_features_as_zarr(tmp_path):
    zarr = pytest.importorskip("zarr")
    feats = np.arange(2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3, 8, 8)
    path = export.export_features(feats, tmp_path / "f.zarr", binning=1)
    z = zarr.open(str(path), mode="r")
    np.testing.assert_array_equal(np.asarray(z), feats)
    assert z.attrs["axes"] == "TCYX" and list(z.attrs["frames"]) == [0, 1]
