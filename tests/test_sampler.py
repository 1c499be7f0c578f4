"""Tests for the batched TAP pair sampler (tapkit.ssl.sampler) and its augmentations
(tapkit.ssl.augment)."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from tapkit import InputError, Movie, normalize
from tapkit.ssl.tap import flip_pairs
from tapkit.ssl.augment import AugmentConfig, augment_pairs, draw_transforms, source_coords
from tapkit.ssl.sampler import PairSampler, normalize_crops


def noise_movie(t=12, size=48, seed=0) -> np.ndarray:
    """Independent smooth random frames: content, but no time arrow at all."""
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=(t, size, size)), (0, 2, 2)).astype(np.float32)


def tap_sample(s: PairSampler, with_events: bool = False):
    """A TAP batch as training makes it: the sampler's crops (time order), flipped by
    TAPNet.make_batch's rule."""
    crops, info = s.sample(with_events=with_events)
    flip = torch.rand(len(crops), generator=s.generator, device=crops.device) < 0.5
    return flip_pairs(crops, flip), flip.long(), dict(info, flipped=flip)


def test_sampler_returns_crops_in_time_order():
    mov = noise_movie()
    crops, info = PairSampler(mov, patch=20, batch_size=16, augment=False).sample()
    norm = torch.as_tensor(normalize(mov))
    ar = torch.arange(20)
    rows, cols = (info["y0"][:, None] + ar)[:, :, None], (info["x0"][:, None] + ar)[:, None, :]
    assert torch.equal(crops[:, 0, 0], norm[info["t"][:, None, None], rows, cols])
    assert torch.equal(crops[:, 1, 0], norm[(info["t"] + info["delta"])[:, None, None], rows, cols])


def test_shapes_and_info():
    s = PairSampler(noise_movie(), patch=24, batch_size=10)
    x, y, info = tap_sample(s)
    assert x.shape == (10, 2, 1, 24, 24) and x.dtype == torch.float32
    assert y.shape == (10,) and y.dtype == torch.long
    assert set(info) >= {"t", "y0", "x0", "movie", "delta", "flipped"}
    assert torch.isfinite(x).all()
    assert ((info["y0"] >= 0) & (info["y0"] <= 48 - 24)).all()


def test_labels_balanced():
    _, y, _ = tap_sample(PairSampler(noise_movie(), patch=16, batch_size=2000, augment=False))
    assert 0.45 < y.float().mean().item() < 0.55


def test_flip_swaps_frames_without_augmentation():
    mov = noise_movie()
    s = PairSampler(mov, patch=20, delta=(1, 3), batch_size=64, augment=False)
    x, y, info = tap_sample(s)
    norm = torch.as_tensor(normalize(mov))
    ar = torch.arange(20)
    rows, cols = (info["y0"][:, None] + ar)[:, :, None], (info["x0"][:, None] + ar)[:, None, :]
    early = norm[info["t"][:, None, None], rows, cols]  # (B, P, P)
    late = norm[(info["t"] + info["delta"])[:, None, None], rows, cols]
    b = torch.arange(64)
    assert torch.equal(x[b, y, 0], early) and torch.equal(x[b, 1 - y, 0], late)
    assert torch.equal(y, info["flipped"].long())
    assert set(info["delta"].tolist()) == {1, 3}


def test_train_and_val_frames_disjoint():
    mov = noise_movie(t=30)
    frames = {}
    for split in ("train", "val"):
        s = PairSampler(mov, patch=16, delta=(1, 2), batch_size=500, split=split, val_fraction=0.2)
        _, _, info = tap_sample(s)
        frames[split] = set(info["t"].tolist()) | set((info["t"] + info["delta"]).tolist())
    assert max(frames["val"]) < 6 <= min(frames["train"])
    assert frames["val"].isdisjoint(frames["train"])


def test_val_at_end_trains_on_first_frames_and_validates_on_last():
    mov = noise_movie(t=30)
    frames = {}
    for split in ("train", "val"):
        s = PairSampler(
            mov, patch=16, delta=(1, 2), batch_size=500, split=split, val_fraction=0.2, val_at="end"
        )
        _, _, info = tap_sample(s)
        frames[split] = set(info["t"].tolist()) | set((info["t"] + info["delta"]).tolist())
    assert max(frames["train"]) < 24 <= min(frames["val"]) and max(frames["val"]) == 29
    with pytest.raises(InputError, match="val_at"):
        PairSampler(mov, patch=16, val_at="middle")


def test_validation_keeps_two_pair_times_on_short_movies():
    s = PairSampler(
        noise_movie(t=20), patch=16, batch_size=200, split="val", val_fraction=0.1, val_at="end"
    )
    assert s.n_val_frames(20) == 3 and set(tap_sample(s)[2]["t"].tolist()) == {17, 18}


def test_determinism_and_fixed_validation():
    mov = noise_movie()
    a = tap_sample(PairSampler(mov, patch=16, batch_size=8, seed=5))
    b = tap_sample(PairSampler(mov, patch=16, batch_size=8, seed=5))
    c = tap_sample(PairSampler(mov, patch=16, batch_size=8, seed=6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    val = PairSampler(mov, patch=16, batch_size=8, split="val", val_fraction=0.3)
    first, second = val.fixed_batches(2), val.fixed_batches(2)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(first, second))
    assert not torch.equal(first[0][0], first[1][0])


def test_state_dict_resumes_stream():
    s = PairSampler(noise_movie(), patch=16, batch_size=4)
    tap_sample(s)
    state = s.state_dict()
    expected = tap_sample(s)[0]
    tap_sample(s)
    s.load_state_dict(state)
    assert torch.equal(tap_sample(s)[0], expected)


def slot_statistics(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample differences slot 0 - slot 1 of simple image statistics."""
    x = x[:, :, 0]
    grad = (x.diff(dim=-1) ** 2).mean((-2, -1)) + (x.diff(dim=-2) ** 2).mean((-2, -1))
    stats = dict(mean=x.mean((-2, -1)), std=x.std((-2, -1)), gradient=grad)
    return {k: v[:, 0] - v[:, 1] for k, v in stats.items()}


@pytest.mark.parametrize(
    "augment",
    [
        AugmentConfig(),
        AugmentConfig.level5(),
        AugmentConfig(p_jitter=1, p_noise=1, p_frame_intensity=1, p_elastic=1, p_affine=1),
    ],
)
def test_augmentations_do_not_leak_the_label(augment):
    s = PairSampler(noise_movie(t=16, size=64), patch=24, batch_size=3000, augment=augment, seed=1)
    x, y, _ = tap_sample(s)
    for name, diff in slot_statistics(x).items():
        auc = roc_auc_score(y.numpy(), diff.numpy())
        assert abs(auc - 0.5) < 0.05, (
            f"{name} of slot 0 vs slot 1 predicts the label (AUC {auc:.3f})"
        )
    # the statistic does catch a leak: noise added only to the earlier frame's slot is detected
    b = torch.arange(len(y))
    leaky = x.clone()
    leaky[b, y] += 0.05 * torch.randn_like(leaky[b, y])
    assert roc_auc_score(y.numpy(), slot_statistics(leaky)["gradient"].numpy()) < 0.4


def test_dihedral_only_permutes_pixels():
    mov = noise_movie()
    plain = PairSampler(mov, patch=16, batch_size=32, augment=False, seed=2).sample()[0]
    cfg = AugmentConfig.none()
    cfg.p_dihedral = 1.0
    rotated = PairSampler(mov, patch=16, batch_size=32, augment=cfg, seed=2).sample()[0]
    torch.testing.assert_close(rotated.flatten(2).sort(-1).values, plain.flatten(2).sort(-1).values)
    assert not torch.allclose(rotated, plain)


def crops_at(norm: torch.Tensor, info: dict, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The movie's pixels (B, ..., P, P) at the drawn t, t + delta, y0, x0 of a (T, ..., Y, X)
    tensor."""
    ar = torch.arange(patch)
    rows, cols = info["y0"][:, None] + ar, info["x0"][:, None] + ar  # (B, P)

    def at(t):
        frames = norm[t]  # (B, ..., Y, X)
        idx = (
            rows[:, None, :, None].expand(*frames.shape[:-2], patch, 1)
            if frames.ndim == 4
            else rows[:, :, None]
        )
        out = frames.gather(-2, idx.expand(*frames.shape[:-2], patch, frames.shape[-1]))
        return out.gather(
            -1, cols[(slice(None),) + (None,) * (out.ndim - 2)].expand(*out.shape[:-1], patch)
        )

    return at(info["t"]), at(info["t"] + info["delta"])


def test_identity_resampling_reads_the_movie_pixels():
    """The resampling path with a zero displacement gives the indexed pixels (up to float
    rounding)."""
    mov = noise_movie()
    cfg = AugmentConfig.none()
    cfg.p_elastic, cfg.elastic_amplitude = 1.0, 0.0
    crops, info = PairSampler(mov, patch=20, batch_size=32, augment=cfg).sample()
    early, late = crops_at(torch.as_tensor(normalize(mov)), info, 20)
    torch.testing.assert_close(crops[:, 0, 0], early, atol=1e-4, rtol=0)
    torch.testing.assert_close(crops[:, 1, 0], late, atol=1e-4, rtol=0)


def test_resampling_never_mixes_frames():
    """Frames of constant, very different values: every output pixel is exactly one of them."""
    mov = np.repeat(np.arange(1.0, 9.0, dtype=np.float32)[:, None, None] ** 3, 40, 1).repeat(40, 2)
    mov += np.random.default_rng(0).normal(0, 1e-3, mov.shape).astype(np.float32)
    cfg = AugmentConfig(
        p_noise=0, p_frame_intensity=0, p_global_intensity=0, p_affine=1, p_jitter=1, p_elastic=1
    )
    crops, info = PairSampler(mov, patch=24, batch_size=64, augment=cfg, per_frame=False).sample()
    norm = torch.as_tensor(normalize(mov, per_frame=False))
    for slot, t in ((0, info["t"]), (1, info["t"] + info["delta"])):
        expected = norm[t].mean((1, 2))[:, None, None]
        assert (
            crops[:, slot, 0] - expected
        ).abs().max() < 1e-3  # frames differ by >> 1e-3 after normalising


def test_source_coords_is_exact_bilinear_interpolation():
    coarse = torch.randn(3, 2, 5, 5)
    ref = torch.nn.functional.interpolate(
        coarse, size=(17, 17), mode="bilinear", align_corners=True
    )
    torch.testing.assert_close(
        source_coords(coarse, 17), ref.permute(0, 2, 3, 1), atol=1e-5, rtol=0
    )


def test_multichannel_shapes_and_per_channel_normalisation():
    rng = np.random.default_rng(0)
    mov = np.stack([rng.random((10, 48, 48)) * 100, rng.random((10, 48, 48)) * 0.01 + 5], 1).astype(
        np.float32
    )
    s = PairSampler(mov, patch=16, batch_size=24, augment=False)
    crops, info = s.sample()
    assert crops.shape == (24, 2, 2, 16, 16)
    # (C, T, Y + 1, X) float32: a zero row after each frame
    assert s.nbytes == 2 * 10 * (48 + 1) * 48 * 4
    norm = torch.stack([torch.as_tensor(normalize(mov[:, c])) for c in range(2)], 1)  # (T, C, Y, X)
    early, late = crops_at(norm, info, 16)
    assert torch.equal(crops[:, 0], early) and torch.equal(crops[:, 1], late)
    for c in range(2):  # each channel of each frame spans ~[0, 1] on its own
        assert (
            0.9 < float(norm[:, c].amax((1, 2)).median()) < 1.2
            and abs(float(norm[:, c].amin((1, 2)).median())) < 0.05
        )
    aug = PairSampler(mov, patch=16, batch_size=24, seed=3).sample()[0]
    assert aug.shape == (24, 2, 2, 16, 16) and torch.isfinite(aug).all()
    with pytest.raises(InputError, match="channels"):
        PairSampler([mov, mov[:, 0]], patch=16)


def test_augment_pairs_same_transform_for_all_channels():
    """Two identical channels stay identical through every augmentation (one geometric map per
    frame)."""
    crop = torch.rand(4, 2, 1, 40, 40).repeat(1, 1, 2, 1, 1)
    cfg = AugmentConfig(p_noise=0)
    out = augment_pairs(crop, torch.Generator().manual_seed(0), cfg, 24)
    assert out.shape == (4, 2, 2, 24, 24)
    torch.testing.assert_close(out[:, :, 0], out[:, :, 1])


def test_augmentations_change_the_crops_and_keep_them_in_range():
    mov = noise_movie(t=16, size=64)
    plain = PairSampler(mov, patch=24, batch_size=64, augment=False, seed=4).sample()[0]
    aug = PairSampler(mov, patch=24, batch_size=64, seed=4).sample()[0]
    assert not torch.allclose(plain, aug)
    assert abs(float(aug.mean() - plain.mean())) < 0.2 and float(aug.std() / plain.std()) < 1.5


def test_default_draws_fewer_transforms_than_tarrow_level5():
    n = 4000
    default = draw_transforms(n, 16, torch.Generator().manual_seed(0), AugmentConfig.level5())
    mild = draw_transforms(n, 16, torch.Generator().manual_seed(0), AugmentConfig())
    assert mild.resample.float().mean() < default.resample.float().mean()
    assert (mild.noise > 0).float().mean() < 0.4 < (default.noise > 0).float().mean()
    assert PairSampler(
        noise_movie(), patch=16, batch_size=8, augment=AugmentConfig.level5()
    ).sample()[0].shape == (8, 2, 1, 16, 16)


def test_exact_preset_only_moves_pixels_on_the_grid():
    """'exact': every crop is a flip / 90-degree rotation of the plain crop, up to an intensity
    transform."""
    n = 2000
    exact = draw_transforms(n, 16, torch.Generator().manual_seed(0), AugmentConfig.named("exact"))
    assert not exact.resample.any() and (exact.dihedral > 0).any() and (exact.noise > 0).any()
    mov = noise_movie()
    no_intensity = {k: 0.0 for k in ("p_noise", "p_frame_intensity", "p_global_intensity")}
    plain = PairSampler(mov, patch=16, batch_size=64, augment="none", seed=3).sample()[0]
    moved = PairSampler(
        mov,
        patch=16,
        batch_size=64,
        augment=AugmentConfig(**vars(AugmentConfig.exact()) | no_intensity),
        seed=3,
    ).sample()[0]
    assert torch.equal(
        plain, PairSampler(mov, patch=16, batch_size=64, augment=False, seed=3).sample()[0]
    )

    def variants(c):
        return [torch.rot90(c.flip(-1) if f else c, k, (-2, -1)) for f in (0, 1) for k in range(4)]

    # the same positions: the sampler draws them before the transforms
    for a, b in zip(plain, moved):
        assert any(torch.equal(v, b) for v in variants(a))


def test_augment_presets_and_bad_values():
    assert (
        AugmentConfig.named("default") == AugmentConfig()
        and AugmentConfig.named("level5") == AugmentConfig.level5()
    )
    with pytest.raises(InputError, match="exact"):
        AugmentConfig.named("light")
    for split in (
        "train",
        "val",
    ):  # a validation sampler refuses it too, although it never augments
        with pytest.raises(InputError, match="augment=1"):
            PairSampler(noise_movie(), patch=16, batch_size=8, augment=1, split=split)


def test_only_switches_on_one_transform_and_names_the_others_when_misspelt():
    probs = AugmentConfig().probabilities()
    assert list(probs)[:2] == ["p_dihedral", "p_affine"] and all(k.startswith("p_") for k in probs)
    elastic = AugmentConfig.only("p_elastic").probabilities()
    assert elastic["p_elastic"] == 1.0 and sum(elastic.values()) == 1.0
    assert set(AugmentConfig.none().probabilities().values()) == {0.0}
    with pytest.raises(InputError, match="p_elastic"):
        AugmentConfig.only("elastic")


def test_bad_augment_config():
    with pytest.raises(InputError, match="p_affine"):
        AugmentConfig(p_affine=2.0)
    with pytest.raises(InputError, match="scale_range"):
        AugmentConfig(scale_range=(1.2, 0.8))


def test_normalize_crops_per_crop():
    x = torch.rand(3, 2, 1, 16, 16) * 7 + 2
    y = normalize_crops(x)
    assert y.shape == x.shape and abs(float(y.amin())) < 0.05 and float(y.amax()) > 0.99


def test_background_rejection():
    mov = np.zeros((6, 80, 80), np.float32)
    mov[:, 40:70, 40:70] = 1.0
    mov += np.random.default_rng(0).normal(0, 0.01, mov.shape).astype(np.float32)
    s = PairSampler(mov, patch=16, batch_size=200, augment=False, reject_background=0.2)
    x, _, _ = tap_sample(s)
    frac = (x > 0.25).float().mean((1, 2, 3, 4))
    assert (frac >= 0.2).float().mean() > 0.95
    x0, _, _ = tap_sample(PairSampler(mov, patch=16, batch_size=200, augment=False))
    assert ((x0 > 0.25).float().mean((1, 2, 3, 4)) >= 0.2).float().mean() < 0.5


def test_several_movies_and_event_flags():
    a = noise_movie(t=10, size=40)
    events = np.zeros(a.shape, np.uint8)
    events[4, 10:14, 10:14] = 1
    b = Movie(noise_movie(t=8, size=56, seed=1), events=np.zeros((8, 56, 56), np.uint8))
    s = PairSampler([Movie(a, events=events), b], patch=16, batch_size=400, augment=False)
    assert "has_event" not in tap_sample(s)[2]  # not computed unless asked for
    x, _, info = tap_sample(s, with_events=True)
    assert set(info["movie"].tolist()) == {0, 1}
    y0, x0, t = info["y0"], info["x0"], info["t"]
    box = (y0 <= 13) & (y0 + 16 > 10) & (x0 <= 13) & (x0 + 16 > 10)
    expected = (info["movie"] == 0) & box & ((t == 4) | (t + info["delta"] == 4))
    assert torch.equal(info["has_event"], expected) and expected.any()


def test_errors():
    mov = noise_movie(t=5, size=32)
    with pytest.raises(InputError, match="patch"):
        PairSampler(mov, patch=40)
    with pytest.raises(InputError, match="delta"):
        PairSampler(mov, patch=16, delta=(5,))
    with pytest.raises(InputError, match="delta"):
        PairSampler(mov, patch=16, delta=())
    with pytest.raises(InputError, match="single frame|frame"):
        PairSampler(mov[:1], patch=16)
    with pytest.raises(InputError, match="no val pairs|val"):
        PairSampler(mov, patch=16, split="val", val_fraction=0.0)


def test_same_crops_whatever_the_thread_count():
    """The resampling is split into one grid_sample chunk per CPU thread; the crops must not
    change."""
    movies = [
        noise_movie(t=8, size=40),
        np.stack([noise_movie(t=8, size=40, seed=1)] * 3, 1),
    ]  # C = 1 and C = 3
    before = torch.get_num_threads()
    try:
        for mov in movies:
            out = []
            for threads in (1, 2, 3):
                torch.set_num_threads(threads)
                out.append(PairSampler(mov, patch=16, batch_size=9, seed=2).sample()[0])
            assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
    finally:
        torch.set_num_threads(before)


def test_noise_bank_windows_are_disjoint_uniform_views_and_depend_only_on_the_seed():
    from tapkit.ssl.augment import NoiseBank

    bank = NoiseBank(n=16, length=100, device=torch.device("cpu"), seed=3)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        w = bank.windows(16, g)  # (16, 100)
        # a view, nothing copied
        assert w.shape == (16, 100) and w.data_ptr() >= bank.field.data_ptr()
        starts = (w.data_ptr() - bank.field.data_ptr()) // 4 + torch.arange(16) * w.stride(0)
        # disjoint, inside the field
        assert w.stride(0) >= 100 and int(starts[-1]) + 100 <= len(bank.field)
    values = bank.windows(16, g).flatten()
    assert (
        0.0 <= float(values.min())
        and float(values.max()) < 1.0
        and abs(float(values.mean()) - 0.5) < 0.05
    )
    # resume reads the same field
    assert torch.equal(NoiseBank(16, 100, torch.device("cpu"), seed=3).field, bank.field)
    assert not torch.equal(NoiseBank(16, 100, torch.device("cpu"), seed=4).field, bank.field)


def test_pixel_noise_has_the_drawn_amplitude_and_differs_between_the_two_frames():
    from tapkit.ssl.augment import AugmentConfig

    flat = np.full((6, 40, 40), 100.0, np.float32)
    flat[:, 0, 0] = 0.0  # a flat movie (one dark pixel so that the percentiles differ)
    cfg = AugmentConfig(
        **{**{k: 0.0 for k in vars(AugmentConfig()) if k.startswith("p_")}, "p_noise": 1.0}
    )
    s = PairSampler(flat, patch=16, batch_size=64, augment=cfg, val_fraction=0.0, seed=1)
    plain = PairSampler(
        flat, patch=16, batch_size=64, augment=False, val_fraction=0.0, seed=1
    ).sample()[0]
    noisy, _ = s.sample()
    noise = (noisy - plain).flatten(2)  # (B, 2, P*P): sigma * U(0, 1), sigma <= noise_max
    assert float(noise.min()) >= 0 and float(noise.max()) <= cfg.noise_max + 1e-6
    assert not torch.allclose(noise[:, 0], noise[:, 1])  # each frame its own noise
    ratio = noise.mean(-1) / noise.amax(-1).clamp(min=1e-9)  # ~0.5 for uniform noise
    assert 0.4 < float(ratio.median()) < 0.6


@pytest.mark.parametrize("storage", ["device", "host"])
@pytest.mark.parametrize("augment", [False, "default"])
def test_held_out_region_is_never_in_a_training_crop(storage, augment):
    """val_region=0.25 of 80 px: columns 60-79 are held out; training crops (plus half a patch) stay
    left of them."""
    mov = noise_movie(size=80)
    train = PairSampler(
        mov, patch=16, batch_size=256, augment=augment, val_region=0.25, storage=storage
    )
    _, info = train.sample()
    assert int((info["x0"] + 16 + 8).max()) <= 60 and int(info["x0"].min()) >= 0
    region = PairSampler(
        mov, patch=16, batch_size=256, split="region", val_region=0.25, storage=storage
    )
    crops, info = region.sample()
    assert int(info["x0"].min()) >= 60 and int((info["x0"] + 16).max()) <= 80
    # region pairs come from the training frames, read unaugmented from the movie
    assert set(info["t"].tolist()) <= set(train.table[:, 1].tolist())
    norm = torch.as_tensor(normalize(mov))
    i = 0
    y0, x0, t = int(info["y0"][i]), int(info["x0"][i]), int(info["t"][i])
    assert torch.equal(crops[i, 0, 0], norm[t, y0 : y0 + 16, x0 : x0 + 16])


def test_no_region_gives_the_same_crops_as_before():
    """val_region=0 keeps the streams of train and val samplers unchanged (same seed -> same
    crops)."""
    mov = noise_movie(size=64)
    a, _ = PairSampler(mov, patch=16, batch_size=32, seed=3).sample()
    b, _ = PairSampler(mov, patch=16, batch_size=32, seed=3, val_region=0.0).sample()
    assert torch.equal(a, b)
    region = PairSampler(mov, patch=16, batch_size=8, split="region", val_region=0.3)
    assert torch.equal(region.sample()[0], region.fixed_batches(1)[0][0])  # a fixed set, like val


def test_region_errors_name_the_parameter():
    with pytest.raises(InputError, match="split='region' needs a held-out region"):
        PairSampler(noise_movie(), patch=16, split="region")
    with pytest.raises(InputError, match="val_region=0.9 leaves no room"):
        PairSampler(noise_movie(), patch=16, val_region=0.9)
    with pytest.raises(InputError, match=r"val_region=1.5 must be in \[0, 1\)"):
        PairSampler(noise_movie(), patch=16, val_region=1.5)


def test_per_crop_normalises_every_crop_of_a_training_batch():
    """per_crop=True: each crop spans 0-1 by its own percentiles, so a brightness change of a frame
    is gone."""
    mov = noise_movie(size=48)
    mov[6:] = 3 * mov[6:] + 5  # frames from 6 on are brighter and stretched (a frame-level cue)
    x, _ = PairSampler(
        mov, patch=16, batch_size=64, augment="default", per_crop=True, per_frame=False
    ).sample()
    flat = x.flatten(2)
    assert torch.allclose(torch.quantile(flat, 0.01, dim=2), torch.zeros(64, 2), atol=1e-5)
    assert torch.allclose(torch.quantile(flat, 0.998, dim=2), torch.ones(64, 2), atol=1e-5)
    plain, _ = PairSampler(
        mov, patch=16, batch_size=64, augment="default", per_frame=False, seed=0
    ).sample()
    # without it: not
    assert not torch.allclose(plain.flatten(2).amax(2), torch.ones(64, 2), atol=0.05)


def test_region_fits_says_exactly_when_the_sampler_accepts_a_region():
    from tapkit.ssl.sampler import region_fits

    for width in (40, 48, 56, 64, 80, 120):
        frames = np.zeros((12, 32, width), np.float32) + np.arange(width, dtype=np.float32)
        try:
            PairSampler(frames, patch=16, val_region=0.3, augment=False)
            accepted = True
        except InputError:
            accepted = False
        assert region_fits(width, 16, 0.3) == accepted
    assert region_fits(10, 16, 0.0)  # no region: nothing to fit
