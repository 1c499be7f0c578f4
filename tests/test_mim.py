"""Masked image modelling: the loss sees only masked pixels, the masks keep their promises, training
learns."""

import numpy as np
import pytest
import torch

from tapkit import InputError
from tapkit.data.simulate import simulate_movie
from tapkit.ssl.mim import MaskedModel, channel_mask, intensity_mask, masked_loss, random_mask
from tapkit.ssl.trainer import train

TINY = dict(n_depth=1, base_filters=4, n_features=4, backbone_features=4)


def _gen(seed: int = 0) -> torch.Generator:
    """A CPU generator with a fixed seed."""
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_masked_loss_ignores_unmasked_pixels(kind):
    g = _gen()
    pred, target = torch.rand(4, 2, 16, 16, generator=g), torch.rand(4, 2, 16, 16, generator=g)
    mask = random_mask(4, 16, 4, 0.5, g)  # (4, 1, 16, 16), broadcast over channels
    loss = masked_loss(pred, target, mask, kind)
    changed_outside = torch.where(
        mask.bool(), pred, pred + 10 * torch.rand(pred.shape, generator=g)
    )
    assert masked_loss(changed_outside, target, mask, kind) == pytest.approx(loss.item())
    changed_inside = torch.where(mask.bool(), pred + 1.0, pred)
    assert masked_loss(changed_inside, target, mask, kind) > loss + 0.1
    error = (pred - target).abs() if kind == "l1" else (pred - target) ** 2
    assert loss.item() == pytest.approx(error[mask.expand_as(error).bool()].mean().item(), rel=1e-5)


@pytest.mark.parametrize("ratio", [0.25, 0.6, 0.75])
def test_mask_ratio_is_met(ratio):
    g, n_patches = _gen(1), 64  # 64 x 64 crops, 8 px patches
    images = torch.rand(32, 2, 64, 64, generator=g)
    for mask in (
        random_mask(32, 64, 8, ratio, g),
        intensity_mask(images, 8, ratio, g),
        channel_mask(32, 2, 64, 8, ratio, g),
    ):
        assert set(mask.unique().tolist()) == {0.0, 1.0}
        # round(ratio * n) patches per image
        assert abs(mask.mean().item() - ratio) <= 0.5 / n_patches
        assert (
            mask.flatten(2).mean(2) - mask.mean()
        ).abs().max() < 1e-6  # every image and channel alike


def _bright_vs_dark_z(mask: torch.Tensor, bright: torch.Tensor, patch: int) -> float:
    """Two-proportion z statistic: how much more often bright patches (bool (B, n)) are masked than
    dark ones."""
    hidden = torch.nn.functional.avg_pool2d(mask[:, :1], patch).flatten(1) > 0.5  # (B, n)
    p1, p0 = hidden[bright].float().mean(), hidden[~bright].float().mean()
    n1, n0 = bright.sum(), (~bright).sum()
    p = hidden.float().mean()
    return float((p1 - p0) / torch.sqrt(p * (1 - p) * (1 / n1 + 1 / n0)))


def test_intensity_masking_hides_bright_patches_more_often_and_random_does_not():
    g, patch, b = _gen(2), 8, 64
    # (B, 16) a 4 x 4 grid of patches, 30 % of them "cells"
    bright = torch.rand(b, 16, generator=g) < 0.3
    images = bright.float().view(b, 1, 4, 4).repeat_interleave(patch, 2).repeat_interleave(patch, 3)
    images = images + 0.2 * torch.rand(images.shape, generator=g)  # (B, 1, 32, 32) noisy background
    z_intensity = _bright_vs_dark_z(intensity_mask(images, patch, 0.4, g), bright, patch)
    z_random = _bright_vs_dark_z(random_mask(b, 32, patch, 0.4, g), bright, patch)
    assert z_intensity > 5  # bright patches masked far more often than dark ones
    assert abs(z_random) < 3  # the same test does not distinguish random masking from chance


def test_channel_masks_differ_between_channels_and_need_two_channels():
    ratio = 0.5
    mask = channel_mask(64, 2, 32, 8, ratio, _gen(3))  # (64, 2, 32, 32)
    disagree = (mask[:, 0] != mask[:, 1]).float().mean().item()
    assert abs(disagree - 2 * ratio * (1 - ratio)) < 0.05  # independent masks
    with pytest.raises(InputError, match="2 channels"):
        channel_mask(4, 1, 32, 8, ratio, _gen())
    with pytest.raises(InputError, match="in_channels"):
        MaskedModel(masking="channel", in_channels=1, **TINY)
    model = MaskedModel(masking="channel", in_channels=2, **TINY)
    with pytest.raises(InputError, match="multi-channel"):
        model.make_batch(torch.rand(2, 2, 1, 32, 32), _gen())
    batch = model.make_batch(torch.rand(2, 2, 2, 32, 32), _gen())
    assert batch["mask"].shape == (2, 2, 32, 32) and not torch.equal(
        batch["mask"][:, 0], batch["mask"][:, 1]
    )
    loss, metrics = model.loss(batch)
    assert loss.ndim == 0 and loss > 0 and set(metrics) == {"psnr"}


def test_the_image_is_frame_t_and_only_hidden_pixels_are_replaced():
    model = MaskedModel(**TINY, seed=0)
    crops = torch.rand(3, 2, 1, 16, 16, generator=_gen())
    batch = model.make_batch(crops, _gen())
    assert torch.equal(batch["x"], crops[:, 0])
    with torch.no_grad():
        model.mask_token.fill_(7.0)
        pred_a = model.eval()(batch["x"], batch["mask"])
        other = torch.where(
            batch["mask"].bool(), torch.rand(batch["x"].shape, generator=_gen(9)), batch["x"]
        )
        pred_b = model(other, batch["mask"])  # hidden pixels' true values are never seen
    torch.testing.assert_close(pred_a, pred_b)


def test_bad_mask_options_are_named_errors():
    for bad in (dict(mask_ratio=0.0), dict(mask_ratio=1.0), dict(mask_ratio=-0.2)):
        with pytest.raises(InputError, match="mask_ratio"):
            MaskedModel(**TINY, **bad)
    with pytest.raises(InputError, match="mask_patch"):
        MaskedModel(**TINY, mask_patch=0)
    with pytest.raises(InputError, match="masking"):
        MaskedModel(**TINY, masking="checkerboard")
    with pytest.raises(InputError, match="loss"):
        MaskedModel(**TINY, loss="huber")
    model = MaskedModel(**TINY, mask_patch=8)
    for size in (12, 4):  # not divisible by 8, smaller than 8
        with pytest.raises(InputError, match="mask_patch"):
            model.make_batch(torch.rand(2, 2, 1, size, size), _gen())


def test_bad_patch_and_task_fail_before_training():
    movie = simulate_movie(n_frames=6, size=(48, 48), seed=0, progress=False)
    fast = dict(epochs=1, steps_per_epoch=1, batch_size=2, device="cpu", progress=False)
    with pytest.raises(InputError, match="mask_patch"):
        train("mim", movie, patch=24, model_kwargs=dict(TINY, mask_patch=16), **fast)
    with pytest.raises(InputError, match="mask_patch"):
        train("mim", movie, patch=16, model_kwargs=dict(TINY, mask_patch=32), **fast)
    with pytest.raises(InputError, match="not a known pretext"):
        train("jigsaw", movie, patch=16, **fast)


@pytest.mark.parametrize("masking", ["random", "intensity"])
def test_reconstruction_loss_falls_on_a_tiny_movie(masking):
    movie = simulate_movie(n_frames=12, size=(64, 64), seed=3, progress=False)
    _, history = train(
        "mim",
        movie,
        epochs=4,
        steps_per_epoch=10,
        batch_size=16,
        patch=32,
        lr=3e-3,
        val_steps=2,
        device="cpu",
        progress=False,
        model_kwargs=dict(TINY, masking=masking),
    )
    assert history["val_loss"][-1] < 0.85 * history["val_loss"][0]
    assert history["val_psnr"][-1] > history["val_psnr"][0]


def test_channel_separated_masking_learns_on_the_two_channel_movie():
    """Multi-channel path through make_batch / loss directly (the sampler reads single-channel
    movies)."""
    from tapkit import normalize
    from tapkit.data.simulate import simulate_two_channel

    both, _ = simulate_two_channel(**dict(n_frames=8, size=(64, 64), seed=1, progress=False))
    x = torch.from_numpy(np.stack([normalize(both[:, c]) for c in range(2)], 1))  # (T, 2, Y, X)
    g = _gen(0)
    model = MaskedModel(**TINY, in_channels=2, masking="channel", seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    # fixed check batch
    val = model.make_batch(x[:, :, :32, :32][:, None].expand(-1, 2, -1, -1, -1), _gen(1))

    def val_loss() -> float:
        with torch.no_grad():
            return model.eval().loss(val)[0].item()

    before = val_loss()
    for _ in range(25):
        y0, x0 = torch.randint(0, 33, (2,), generator=g).tolist()
        # (T, 2, C, 32, 32)
        crops = x[:, :, y0 : y0 + 32, x0 : x0 + 32][:, None].expand(-1, 2, -1, -1, -1)
        loss, _ = model.train().loss(model.make_batch(crops, g))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert val_loss() < 0.8 * before
