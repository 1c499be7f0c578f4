"""Grad-CAM for the time arrow: maps point at what the logit depends on, regions obey the rules,
enrichment tells events from chance."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

from tapkit import DIVISION, InputError  # noqa: E402
from tapkit.explain.gradcam import (
    box_fractions,
    event_enrichment,
    gradcam,
    gradcam_movie,  # noqa: E402
    max_regions,
    top_regions,
)
from tapkit.plot.gradcam import plot_top_regions  # noqa: E402
from tapkit.ssl.tap import TAPNet  # noqa: E402

R = (slice(20, 40), slice(70, 90))  # the only region the toy logit looks at


class ToyTAP(torch.nn.Module):
    """Features z = [bright (x > 0.7), any signal (x)]; logit[slot 0] = brightening inside R
    only."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2, 1, Y, X) -> (logits (B, 2), z (B, 2, 2, Y, X))."""
        z = torch.cat([torch.relu(x - 0.7), x], dim=2)  # (B, T, 2, Y, X)
        s = (z[:, 1, 0, R[0], R[1]] - z[:, 0, 0, R[0], R[1]]).mean((-2, -1))  # (B,)
        return torch.stack([s, -s], dim=1), z


def disc(shape, centre, radius=6, value=1.0) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return value * (((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) <= radius**2)


def toy_pair(seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A bright cell appearing in R, a bright static cell at Q and a dim cell appearing at S."""
    shape, rng = (100, 120), np.random.default_rng(seed)
    static = disc(shape, (70, 30))  # Q: bright, in both frames
    f0 = static + rng.normal(0, 0.01, shape)
    f1 = (
        static
        + disc(shape, (30, 80))
        + disc(shape, (75, 90), value=0.5)
        + rng.normal(0, 0.01, shape)
    )
    return f0.astype(np.float32), f1.astype(np.float32)


def test_map_peaks_where_the_logit_looks():
    f0, f1 = toy_pair()
    cam = gradcam(ToyTAP(), f0, f1, normalize=False)
    assert cam.shape == f0.shape and cam.dtype == np.float32
    y, x = np.unravel_index(np.argmax(cam), cam.shape)
    assert R[0].start <= y < R[0].stop and R[1].start <= x < R[1].stop
    assert cam[70, 30] < 0.05 * cam.max()  # static bright cell cancels between the frames
    assert cam[75, 90] < 0.05 * cam.max()  # dim cell changes a channel the logit ignores
    ((y, x, _),) = top_regions(cam, k=1, inset=16)
    assert abs(y - 30) <= 3 and abs(x - 80) <= 3


def test_frame_t_only_and_relu_options():
    f0, f1 = toy_pair()
    cam_t = gradcam(ToyTAP(), f0, f1, normalize=False, frames="t")
    assert cam_t[70, 30] > 0.5 * cam_t.max()  # frame t alone: the static bright cell shows
    # w[t] < 0 for the bright channel: the signed map is negative there, so ReLU keeps nothing
    assert gradcam(ToyTAP(), f0, f1, normalize=False, frames="t", absolute=False).max() == 0
    summed = gradcam(ToyTAP(), f0, f1, normalize=False)
    mean = gradcam(ToyTAP(), f0, f1, normalize=False, reduce="mean")  # weights divided by Y * X
    np.testing.assert_allclose(mean * f0.size, summed, rtol=1e-4, atol=1e-6 * summed.max())


@pytest.fixture(scope="module")
def tapnet() -> TAPNet:
    return TAPNet(
        n_depth=2, base_filters=4, n_features=4, backbone_features=4, head_features=4, seed=1
    ).eval()


def test_tiled_map_matches_untiled(tapnet):
    """The head pools over space, so per-tile gradients differ only by a constant factor."""
    rng = np.random.default_rng(0)
    f0, f1 = (ndi.gaussian_filter(rng.normal(size=(90, 140)), 2) for _ in range(2))
    whole = gradcam(tapnet, f0, f1)
    tiled = gradcam(tapnet, f0, f1, tile=64, overlap=24)
    assert whole.shape == tiled.shape == (90, 140)
    np.testing.assert_allclose(tiled / tiled.max(), whole / whole.max(), atol=1e-3)
    assert tapnet.training is False


def test_gradcam_bad_input(tapnet):
    f = np.random.default_rng(0).normal(size=(32, 32))
    with pytest.raises(InputError, match="same shape"):
        gradcam(tapnet, f, f[:30])
    with pytest.raises(InputError, match="reduce"):
        gradcam(tapnet, f, f, reduce="max")
    with pytest.raises(InputError, match="constant"):
        gradcam(tapnet, f, np.zeros_like(f))


def bumps(shape, centres, amps, sigma=4.0) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return sum(
        a * np.exp(-((yy - c[0]) ** 2 + (xx - c[1]) ** 2) / (2 * sigma**2))
        for c, a in zip(centres, amps)
    )


def test_top_regions_finds_bumps_in_order_and_skips_border():
    cam = bumps((128, 128), [(40, 40), (90, 70), (60, 100), (5, 64)], [1.0, 3.0, 2.0, 10.0])
    regions = top_regions(cam, k=3, inset=32)
    assert [(y, x) for y, x, _ in regions] == [
        (90, 70),
        (60, 100),
        (40, 40),
    ]  # (5, 64) is in the border
    assert regions[0][2] > regions[1][2] > regions[2][2]


@pytest.mark.parametrize("inset, border", [(32, None), (48, 10), (20, 0)])
def test_top_regions_spacing_and_border(inset, border):
    cam = ndi.gaussian_filter(np.random.default_rng(inset).random((160, 150)), 2)
    regions = top_regions(cam, k=12, inset=inset, border=border)
    b = inset // 2 if border is None else border
    assert 1 <= len(regions) <= 12
    ys, xs = np.array([r[0] for r in regions]), np.array([r[1] for r in regions])
    assert ys.min() >= b and xs.min() >= b and ys.max() < 160 - b and xs.max() < 150 - b
    cheb = np.maximum(np.abs(ys[:, None] - ys), np.abs(xs[:, None] - xs)) + 10**6 * np.eye(len(ys))
    assert cheb.min() >= inset / 2
    assert all(r1[2] >= r2[2] for r1, r2 in zip(regions, regions[1:]))


def test_top_regions_bad_input():
    with pytest.raises(InputError, match="border"):
        top_regions(np.random.rand(40, 40), inset=48)
    with pytest.raises(InputError, match="map"):
        top_regions(np.random.rand(2, 40, 40))


def event_mask(seed, shape=(128, 128), n=12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return sum(disc(shape, rng.integers(0, shape[0], 2), radius=5) for _ in range(n)) > 0


def test_box_fractions_match_slicing():
    mask = event_mask(0)
    ys, xs = np.array([20, 64, 100]), np.array([30, 64, 90])
    expected = [mask[y - 8 : y + 8, x - 8 : x + 8].mean() for y, x in zip(ys, xs)]
    np.testing.assert_allclose(box_fractions(mask, ys, xs, 16), expected)


def test_enrichment_large_when_map_is_the_event_mask():
    mask = event_mask(1)
    res = event_enrichment(mask.astype(float), mask, inset=16, k=8)
    assert res["enrichment"] > 3 and res["hit_rate"] == 1.0
    assert res["n_regions"] == len(res["region_fractions"]) == 8
    assert res["hit_rate"] > res["hit_rate_random"]


def test_enrichment_near_one_for_random_maps():
    values = []
    for seed in range(30):
        cam = ndi.gaussian_filter(np.random.default_rng(1000 + seed).random((128, 128)), 3)
        values.append(
            event_enrichment(cam, event_mask(seed), inset=16, k=8, seed=seed)["enrichment"]
        )
    assert 0.7 < np.mean(values) < 1.4


def test_enrichment_takes_regions_and_checks_shapes():
    mask = np.zeros((64, 64), bool)
    mask[30:34, 30:34] = True
    assert event_enrichment([(32, 32, 1.0)], mask, inset=8)["hit_rate"] == 1.0
    assert event_enrichment([(12, 12)], mask, inset=8)["enrichment"] == 0.0
    assert np.isnan(event_enrichment([(12, 12)], np.zeros((64, 64)), inset=8)["enrichment"])
    with pytest.raises(InputError, match="shape"):
        event_enrichment(np.zeros((32, 32)), mask)


def test_plot_top_regions_and_movie(tapnet, tiny_movie):
    res = gradcam_movie(tapnet, tiny_movie, n_frames=5, k=3, inset=16)
    assert res["frames"] == [2, 3, 4]  # the pairs holding division pixels (frames 3 and 4)
    assert res["cams"].shape == (3, 64, 64) and len(res["regions"][0]) == 3
    assert len(res["per_pair"]) == 3
    assert np.isfinite(res["enrichment"])
    t = res["frames"][0]
    fig = plot_top_regions(
        tiny_movie.images[t],
        tiny_movie.images[t + 1],
        res["cams"][0],
        res["regions"][0],
        events=tiny_movie.events[t] == DIVISION,
        inset=16,
    )
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 1 + 2 * 3
    plt.close(fig)
    with pytest.raises(InputError, match="pair starts"):
        gradcam_movie(tapnet, tiny_movie, frames=[7])


def test_explorer_redraws_headless(tapnet, tiny_movie):
    from tapkit.plot.gradcam import gradcam_explorer

    box = gradcam_explorer(tapnet, tiny_movie, k=2, inset=16)
    first = box.image.value
    fits = max_regions(tiny_movie.shape[1:], 16)
    assert (
        box.k.max == min(16, fits)
        and len(top_regions(np.random.default_rng(0).random((64, 64)), k=99, inset=16)) <= fits
    )
    assert first[:4] == b"\x89PNG" and "2 regions" in box.caption.value
    box.frame.value = 3
    assert (
        box.image.value != first
        and "(3, 4)" in box.caption.value
        and "enrichment" in box.caption.value
    )
    size = box.image.value[16:24]  # PNG width and height
    box.k.value = 4
    # the figure keeps its size
    assert "4 regions" in box.caption.value and box.image.value[16:24] == size
