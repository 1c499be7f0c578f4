"""Contrastive + generative pretraining: NT-Xent by hand, positives, temporal views, the warm-up
counter."""

import math

import numpy as np
import pytest
import torch

from tapkit import InputError, normalize
from tapkit.data.simulate import simulate_movie
from tapkit.ssl.contrastive import ContrastiveModel, nt_xent, random_views
from tapkit.ssl.sampler import PairSampler
from tapkit.ssl.trainer import train

TINY = dict(n_depth=1, base_filters=4, n_features=4, backbone_features=4)


def test_nt_xent_equals_a_hand_computation():
    # a = (1, 0), b = (0, 1) in view 1; c = (0.6, 0.8), d = (0, 1) in view 2; positives a-c and b-d;
    # T = 0.5
    z1, z2 = (
        torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        torch.tensor([[0.6, 0.8], [0.0, 2.0]]),
    )  # d: any length
    # cosine / T of each embedding with the three others (partner first)
    rows = {
        "a": (1.2, [0.0, 0.0]),  # a.c = 0.6, a.b = 0, a.d = 0
        "b": (2.0, [0.0, 1.6]),  # b.d = 1, b.a = 0, b.c = 0.8
        "c": (1.2, [1.6, 1.6]),  # c.a = 0.6, c.b = 0.8, c.d = 0.8
        "d": (2.0, [0.0, 1.6]),
    }  # d.b = 1, d.a = 0, d.c = 0.8
    by_hand = np.mean(
        [
            -(pos - math.log(math.exp(pos) + sum(math.exp(s) for s in neg)))
            for pos, neg in rows.values()
        ]
    )
    assert nt_xent(z1, z2, temperature=0.5).item() == pytest.approx(by_hand, rel=1e-6)


def test_identical_views_give_a_lower_loss_than_shuffled_ones():
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    shuffled = z[torch.roll(torch.arange(16), 1)]
    assert nt_xent(z, z, 0.2) < nt_xent(z, shuffled, 0.2) - 1.0
    with pytest.raises(InputError, match="temperature"):
        nt_xent(z, z, 0.0)


def test_temperature_and_options_are_checked_before_training():
    movie = simulate_movie(n_frames=6, size=(48, 48), seed=0, progress=False)
    fast = dict(epochs=1, steps_per_epoch=1, batch_size=2, patch=16, device="cpu", progress=False)
    for bad in (0.0, -0.1):
        with pytest.raises(InputError, match="temperature"):
            train("contrastive", movie, model_kwargs=dict(TINY, temperature=bad), **fast)
    with pytest.raises(InputError, match="mask_ratio"):
        ContrastiveModel(**TINY, mask_ratio=1.5)
    with pytest.raises(InputError, match="warmup_steps"):
        ContrastiveModel(**TINY, warmup_steps=-1)
    with pytest.raises(InputError, match="mask_patch"):
        train("contrastive", movie, model_kwargs=dict(TINY, mask_patch=12), **fast)


def test_views_come_from_frame_t_unless_temporal_positives():
    crops = torch.rand(4, 2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    other = crops.clone()
    other[:, 1] = 100.0  # frame t + delta changed
    model = ContrastiveModel(**TINY)
    a = model.make_batch(crops, torch.Generator().manual_seed(1))
    b = model.make_batch(other, torch.Generator().manual_seed(1))
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["view1"], a["view2"])
    temporal = ContrastiveModel(**TINY, temporal_positives=True).make_batch(
        crops, torch.Generator()
    )
    assert torch.equal(temporal["view1"], crops[:, 0]) and torch.equal(
        temporal["view2"], crops[:, 1]
    )


def test_temporal_positives_are_the_same_place_at_t_and_t_plus_delta():
    rng = np.random.default_rng(0)
    movie = rng.normal(size=(10, 40, 40)).astype(np.float32)  # every frame different
    sampler = PairSampler(
        movie, patch=16, delta=(2,), batch_size=6, augment=False, val_fraction=0.0, seed=4
    )
    crops, info = sampler.sample()
    batch = ContrastiveModel(**TINY, temporal_positives=True).make_batch(crops, sampler.generator)
    frames = normalize(movie, per_frame=True)
    for i in range(6):
        t, y, x = (int(info[k][i]) for k in ("t", "y0", "x0"))
        for view, time in (("view1", t), ("view2", t + 2)):
            expected = torch.from_numpy(frames[time, y : y + 16, x : x + 16])
            torch.testing.assert_close(batch[view][i, 0], expected)


def test_random_views_are_symmetries_of_the_square_without_intensity_changes():
    x = torch.rand(8, 2, 6, 6, generator=torch.Generator().manual_seed(0))
    views = random_views(x, torch.Generator().manual_seed(1), scale=0.0, shift=0.0, noise=0.0)
    for v, orig in zip(views, x):
        candidates = [
            torch.rot90(o, r, dims=(-2, -1)) for o in (orig, orig.flip(-1)) for r in range(4)
        ]
        assert any(torch.equal(v, c) for c in candidates)


def test_warm_up_counts_training_steps_and_survives_a_reload():
    model = ContrastiveModel(**TINY, warmup_steps=2, lam=0.5, seed=0)
    batch = model.make_batch(
        torch.rand(4, 2, 1, 16, 16, generator=torch.Generator().manual_seed(0)),
        torch.Generator().manual_seed(0),
    )
    model.train()
    for step in range(3):
        total, m = model.loss(batch)
        expected = 0.5 * m["reconstruction"] + (m["contrastive"] if step >= 2 else 0.0)
        assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    model.eval()
    model.loss(batch)  # validation does not count
    assert int(model.steps_done) == 3
    again = ContrastiveModel(**TINY, warmup_steps=2, lam=0.5)
    again.load_state_dict(model.state_dict())
    assert int(again.steps_done) == 3 and again.contrastive_weight() == 1.0
