"""Dense embeddings: tiling must not change the features, any frame size works, bad input fails
early."""

import numpy as np
import pytest
import torch

from tapkit import InputError, Movie
from tapkit.ssl.features import embed, prepare_frames, tile_windows
from tapkit.ssl.pretext import PretextModel
from tapkit.ssl.tap import TAPNet


@pytest.fixture(scope="module")
def model() -> TAPNet:
    """A tiny TAPNet with non-trivial batch-norm running statistics (so eval mode matters)."""
    net = TAPNet(
        n_depth=2, base_filters=4, n_features=5, backbone_features=4, head_features=4, seed=0
    )
    gen = torch.Generator().manual_seed(0)
    for mod in net.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(0.2 * torch.randn(mod.num_features, generator=gen))
            mod.running_var.copy_(0.5 + torch.rand(mod.num_features, generator=gen))
    return net


def frames(shape, seed=0) -> np.ndarray:
    """Smooth random frames, like blurry cells."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    return gaussian_filter(rng.normal(size=shape), (0, 2, 2)).astype(np.float32)


def test_tiled_equals_untiled(model):
    x = frames((3, 150, 133))
    whole = embed(model, x, tile=256, progress=False)
    tiled = embed(model, x, tile=64, overlap=24, batch_size=5, progress=False)
    assert whole.shape == tiled.shape == (3, 5, 150, 133)
    assert whole.dtype == np.float32
    np.testing.assert_allclose(tiled, whole, atol=1e-4 * np.abs(whole).max())


def test_tiles_without_overlap_lose_context(model):
    """Sanity check of the test above: with no overlap, tile borders do change the features."""
    x = frames((1, 150, 133))
    whole = embed(model, x, tile=256, progress=False)
    cut = embed(model, x, tile=64, overlap=0, progress=False)
    assert np.abs(cut - whole).max() > 1e-3 * np.abs(whole).max()


def test_windows_cover_every_pixel_once():
    for shape in [(152, 136), (64, 304), (40, 40), (37, 96)]:
        count = np.zeros(shape, int)
        for sy, sx, ky, kx in tile_windows(shape, 64, 16, 8):
            count[sy, sx][ky, kx] += 1
            assert sy.stop - sy.start == min(64, shape[0]) and sx.stop - sx.start == min(
                64, shape[1]
            )
            assert sy.start % 8 == 0 and sx.start % 8 == 0
        assert (count == 1).all()
    with pytest.raises(InputError, match="padded"):
        tile_windows((150, 133), 64, 16, 8)


@pytest.mark.parametrize("shape", [(2, 37, 53), (1, 8, 129), (2, 64, 64)])
def test_odd_sizes(model, shape):
    out = embed(model, frames(shape), tile=64, overlap=16, progress=False)
    assert out.shape == (shape[0], 5) + shape[1:]
    assert np.isfinite(out).all()


def test_movie_array_and_single_frame_agree(model):
    x = frames((2, 40, 48))
    a = embed(model, Movie(images=x), progress=False)
    b = embed(model, x, progress=False)
    c = embed(model, x[1], progress=False)
    np.testing.assert_array_equal(a, b)
    assert c.shape == (1, 5, 40, 48)
    np.testing.assert_allclose(c[0], b[1], atol=1e-5)


def test_per_frame_normalisation(model):
    """Brightness and offset per frame (e.g. bleaching) do not change the normalised features."""
    x = frames((2, 40, 48))
    scaled = x * np.array([10.0, 0.3], np.float32)[:, None, None] + 5
    np.testing.assert_allclose(
        embed(model, scaled, progress=False), embed(model, x, progress=False), atol=1e-4
    )
    raw = embed(model, scaled, normalize=False, progress=False)
    assert not np.allclose(raw, embed(model, x, progress=False), atol=1e-2)


def test_eval_mode_and_state_restored(model):
    model.train()
    before = [b.clone() for b in model.buffers()]
    out1 = embed(model, frames((2, 32, 32)), progress=False)
    assert model.training  # restored
    # running stats untouched
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers()))
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(prepare_frames(frames((2, 32, 32))))
        ref = model.embed(x[:, None]).numpy()
    np.testing.assert_allclose(out1, ref, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(tile=62), "multiple of 4"),
        (dict(tile=64, overlap=31), "overlap"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_bad_arguments(model, kwargs, match):
    with pytest.raises(InputError, match=match):
        embed(model, frames((1, 100, 100)), progress=False, **kwargs)


def test_bad_inputs(model):
    with pytest.raises(InputError, match="4D"):
        embed(model, np.zeros((2, 1, 32, 32)) + np.arange(32), progress=False)
    with pytest.raises(InputError, match="constant"):
        embed(model, np.ones((2, 32, 32)), progress=False)
    with pytest.raises(InputError, match="TAPNet"):
        embed(torch.nn.Conv2d(1, 1, 1), frames((1, 32, 32)), progress=False)


class _NoHead(PretextModel):
    """A pretext task with no head at all: embed must need nothing but the shared encoder."""

    name = "no-head"

    def build_head(self, **options) -> None:
        """Nothing: only the backbone and projection of PretextModel."""


def test_any_pretext_model_is_embedded_through_its_encoder_alone():
    net = _NoHead(n_depth=2, base_filters=4, n_features=6, backbone_features=4, seed=0).eval()
    images = frames((2, 40, 56))
    out = embed(net, images, tile=32, overlap=8, progress=False)  # tiled
    with torch.no_grad():
        whole = net.embed(torch.from_numpy(prepare_frames(images))[:, None]).numpy()
    assert out.shape == (2, net.n_features, 40, 56)
    np.testing.assert_allclose(out, whole, atol=1e-4)


def test_a_multichannel_encoder_is_refused():
    net = _NoHead(
        n_depth=2, base_filters=4, n_features=6, backbone_features=4, in_channels=2, seed=0
    )
    with pytest.raises(InputError, match="in_channels=1"):
        embed(net, frames((1, 32, 32)), progress=False)
