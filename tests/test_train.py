"""TAP training: exact resume after an interruption, atomic checkpoints, no shortcut, no label
leak."""

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

import tapkit.ssl.trainer
from tapkit import InputError
from tapkit.ssl.checkpoint import load_checkpoint, save_checkpoint
from tapkit.ssl.sampler import PairSampler
from tapkit.plot.tap import plot_history
from tapkit.ssl.tap import TAPNet, evaluate_tap
from tapkit.ssl.trainer import load_tap, train_tap

TINY = dict(n_depth=1, base_filters=8, n_features=8, backbone_features=8, head_features=8)
FAST = dict(batch_size=16, patch=24, val_steps=2, device="cpu", model_kwargs=TINY, progress=False)


def growing_blobs(t=16, size=48, seed=0) -> np.ndarray:
    """Bright discs that grow every frame: an obvious time arrow."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    centres = rng.uniform(6, size - 6, (12, 2))
    frames = [
        sum(((yy - cy) ** 2 + (xx - cx) ** 2 < (1.5 + 0.35 * k) ** 2) for cy, cx in centres)
        for k in range(t)
    ]
    return (
        np.clip(np.array(frames, np.float32), 0, 1) + 0.05 * rng.normal(size=(t, size, size))
    ).astype(np.float32)


def static_bleaching(t=16, size=48, seed=0, noise=0.02) -> np.ndarray:
    """The same cells in every frame, dimmed by 10 % per frame (noise dims with them): no biology.

    (Real bleaching also lowers the signal-to-noise ratio, a subtler cue that per-frame
    normalisation cannot remove; here the noise scales with the signal so that only the global trend
    is a cue.)
    """
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random((size, size)), 2) * 100 + 10
    fade = 0.9 ** np.arange(t)[:, None, None]
    return (base * fade * (1 + noise * rng.normal(size=(t, size, size)))).astype(np.float32)


def static_noise(t=16, size=48, seed=0) -> np.ndarray:
    """Independent smooth noise frames: nothing changes in a directed way."""
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=(t, size, size)), (0, 1.5, 1.5)).astype(
        np.float32
    )


# Exact resume after an interruption is tested for every pretext task, TAP included, in
# tests/test_pretext.py.


def test_checkpoint_is_atomic_and_loadable(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    model, history = train_tap(
        growing_blobs(), epochs=1, steps_per_epoch=2, checkpoint=path, **FAST
    )
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("disconnect while writing")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"model": {}, "config": {}}, path)
    monkeypatch.undo()
    # old file intact, no temp left
    assert path.read_bytes() == good and list(tmp_path.iterdir()) == [path]
    again = load_tap(path, device="cpu")
    x = torch.rand(2, 2, 1, 24, 24)
    torch.testing.assert_close(again(x)[0], model(x)[0])
    assert set(history) >= {
        "train_loss",
        "val_loss",
        "train_accuracy",
        "val_accuracy",
        "train_decorr",
        "val_decorr",
    }
    assert len(plot_history(history).axes) == 3


def test_bad_checkpoints_and_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_tap(tmp_path / "nothing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="corrupt"):
        load_tap(tmp_path / "bad.pt")
    with pytest.raises(InputError, match="patch"):
        train_tap(growing_blobs(size=20), epochs=1, steps_per_epoch=1, **FAST)
    with pytest.raises(InputError, match="delta"):
        train_tap(growing_blobs(t=4), epochs=1, steps_per_epoch=1, delta=(4,), **FAST)
    with pytest.raises(InputError, match="frame"):
        train_tap(growing_blobs(t=1), epochs=1, steps_per_epoch=1, **FAST)


def _accuracy_after_short_training(make_movie, **kw) -> float:
    """Train briefly on one movie, return the accuracy on a fresh movie of the same kind."""
    model, _ = train_tap(
        make_movie(t=20), **dict(FAST, epochs=3, steps_per_epoch=12, lr=3e-3, seed=0), **kw
    )
    return evaluate_tap(model, make_movie(t=20, seed=5), n_pairs=256, patch=24, split="train")[
        "accuracy"
    ]


class _AlwaysSlot0(TAPNet):
    """A 'model' that always says slot 0 came first: right exactly on the pairs that were not
    flipped."""

    def forward(self, x):
        return torch.tensor([[1.0, 0.0]]).repeat(len(x), 1), None


def test_evaluate_reports_accuracy_per_frame_pair():
    movie = growing_blobs(t=20)
    res = evaluate_tap(
        _AlwaysSlot0(n_depth=1, base_filters=4, n_features=4, backbone_features=4),
        movie,
        n_pairs=320,
        patch=24,
        val_fraction=0.25,
        val_at="end",
        batch_size=64,
        seed=3,
    )
    # the same pairs, drawn again: accuracy per t = share of unflipped pairs starting at t
    s = PairSampler(
        movie,
        patch=24,
        batch_size=64,
        split="val",
        val_fraction=0.25,
        val_at="end",
        augment=False,
        seed=3,
    )
    t = torch.cat([s.sample()[1]["t"] for _ in range(5)])
    # evaluate_tap's flips: make_batch draws them from this stream
    flips = torch.Generator().manual_seed(3)
    flipped = torch.cat([torch.rand(64, generator=flips) < 0.5 for _ in range(5)])
    expected = {int(v): (~flipped[t == v]).float().mean().item() for v in t.unique()}
    assert set(res["accuracy_by_t"]) == {
        15,
        16,
        17,
        18,
    }  # the last 5 frames hold the validation pairs
    assert res["accuracy_by_t"] == pytest.approx(expected) and res["accuracy"] == pytest.approx(
        (~flipped).float().mean().item()
    )


def test_normalize_crops_removes_per_crop_intensity_scale_and_offset():
    from tapkit.ssl.sampler import normalize_crops

    x = torch.rand(4, 2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    scale = torch.tensor([0.5, 2.0, 3.0, 7.0]).view(4, 1, 1, 1, 1) * torch.tensor([1.0, 4.0]).view(
        1, 2, 1, 1, 1
    )
    out = normalize_crops(x)
    assert out.shape == x.shape and torch.allclose(
        normalize_crops(x * scale + 10.0), out, atol=1e-4
    )
    q = torch.quantile(out.flatten(2), torch.tensor([0.01, 0.998]), dim=2)  # (2, B, T)
    assert torch.allclose(q[0], torch.zeros(4, 2), atol=1e-5) and torch.allclose(
        q[1], torch.ones(4, 2), atol=1e-5
    )


def test_checkpoint_records_the_binning_of_the_training_movies(tmp_path):
    from tapkit import Movie

    movie = Movie(np.repeat(np.repeat(growing_blobs(t=8), 2, axis=1), 2, axis=2)).bin(2)
    train_tap([movie], epochs=1, steps_per_epoch=1, checkpoint=tmp_path / "c.pt", **FAST)
    assert (
        load_checkpoint(tmp_path / "c.pt")["binning"] == 2
        and load_tap(tmp_path / "c.pt").binning == 2
    )


@pytest.mark.parametrize("cpu_bf16", ["0", "1"])
def test_learns_a_real_arrow(cpu_bf16, monkeypatch, tmp_path):
    """In float32 and under the course's bfloat16 autocast (the default on CPUs with bf16
    instructions)."""
    monkeypatch.setenv("TAPKIT_CPU_BF16", cpu_bf16)
    assert _accuracy_after_short_training(growing_blobs, checkpoint=tmp_path / "c.pt") > 0.8
    # the autocast dtype the training ran under
    trained_in = load_checkpoint(tmp_path / "c.pt")["recipe"]["amp"]
    assert trained_in == ("torch.bfloat16" if cpu_bf16 == "1" else "None"), trained_in


@pytest.mark.parametrize("make_movie", [static_noise, static_bleaching])
def test_no_arrow_stays_at_chance(make_movie):
    """No label leak through the pipeline, and per-frame normalisation hides the bleaching trend."""
    assert 0.38 < _accuracy_after_short_training(make_movie) < 0.62


def _logit_gaps(model, movie, per_frame) -> torch.Tensor:
    """|logit 0 - logit 1| of the model on one crop of every consecutive frame pair, (T-1,)."""
    from tapkit.data.movie import normalize

    frames = torch.from_numpy(normalize(movie, per_frame=per_frame)[:, :24, :24])  # (T, P, P)
    with torch.no_grad():
        logits, _ = model(torch.stack([frames[:-1], frames[1:]], 1)[:, :, None])  # (T-1, 2)
    return (logits[:, 0] - logits[:, 1]).abs()


def test_noise_free_bleaching_leaves_nothing_to_learn_after_per_frame_normalisation():
    """Notebook 01's lesson: the normalised frames are equal up to rounding, so are the two logits
    (the accuracy is then decided by rounding); on raw intensities the logits differ by far more."""
    from tapkit.data.movie import normalize

    movie = static_bleaching(t=20, noise=0.0)
    flat = normalize(movie)
    assert np.abs(flat - flat[0]).max() < 1e-5
    kw = dict(FAST, epochs=3, steps_per_epoch=12, lr=3e-3, seed=0)
    normalised, _ = train_tap(movie, per_frame=True, **kw)
    raw, _ = train_tap(movie, per_frame=False, augment=False, **kw)
    assert _logit_gaps(normalised, movie, per_frame=True).max() < 1e-4
    assert (
        _logit_gaps(raw, movie, per_frame=False).min()
        > 100 * _logit_gaps(normalised, movie, True).max()
    )


def test_bleaching_is_a_shortcut_without_per_frame_normalisation():
    model, _ = train_tap(
        static_bleaching(t=20),
        **dict(FAST, epochs=3, steps_per_epoch=12, lr=3e-3, seed=0),
        per_frame=False,
        augment=False,
    )
    acc = evaluate_tap(
        model, static_bleaching(t=20, seed=5), n_pairs=256, patch=24, split="train", per_frame=False
    )["accuracy"]
    assert acc > 0.8


@pytest.mark.parametrize(
    "bad, name",
    [
        (dict(lam=-1.0), "lam"),
        (dict(lr=0), "lr"),
        (dict(epochs=0), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(patch=4), "patch"),
        (dict(steps_per_epoch=1.5), "steps_per_epoch"),
        (dict(val_fraction=1.0), "val_fraction"),
        (dict(lr=float("nan")), "lr"),
        (dict(lam=float("nan")), "lam"),
    ],
)
def test_bad_training_arguments_fail_before_any_step(bad, name, monkeypatch):
    def no_step(*args, **kwargs):
        raise AssertionError("a training epoch started")

    monkeypatch.setattr(tapkit.ssl.trainer, "_train_epoch", no_step)
    with pytest.raises(InputError, match=rf"\b{name}="):
        train_tap(growing_blobs(), **{**FAST, "epochs": 1, "steps_per_epoch": 1, **bad})


def test_a_batch_too_big_for_memory_is_refused_before_any_step(monkeypatch):
    def no_step(*args, **kwargs):
        raise AssertionError("a training epoch started")

    monkeypatch.setattr(tapkit.ssl.trainer, "_train_epoch", no_step)
    with pytest.raises(InputError, match=r"batch_size=1000000000 with patch=24") as err:
        train_tap(
            growing_blobs(), **{**FAST, "epochs": 1, "steps_per_epoch": 1, "batch_size": 10**9}
        )
    assert "tap_batch_size" in str(err.value) and "tap_patch" in str(err.value)


_MEASURE_STEP = """
import resource, sys, torch
from tapkit.ssl.tap import TAPNet
from tapkit.ssl.memory import estimate_step_bytes
torch.set_num_threads(1)
model = TAPNet(base_filters=8, seed=0)
opt = torch.optim.Adam(model.parameters(), 1e-3)
x, y = torch.rand(32, 2, 1, 32, 32), torch.randint(0, 2, (32,))
def step(n):
    loss, _ = model.loss({"x": x[:n], "y": y[:n]}); opt.zero_grad(); loss.backward(); opt.step()
def kib(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") \
if line.startswith(field))
step(1)  # Adam state and library workspaces exist before the measurement
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current resident set
before = kib("VmRSS:")
step(32), step(32)  # ~200 MB: well above the allocator noise of the baseline
print((kib("VmHWM:") - before) * 1024, estimate_step_bytes(32, 32, model))
"""


@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="peak-RSS reset needs Linux /proc"
)
def test_step_memory_estimate_is_within_a_factor_2_of_the_measured_peak():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE_STEP],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(root)),
    )
    measured, estimated = map(int, out.stdout.split()[-2:])
    assert measured / 2 < estimated < 2 * measured, (measured, estimated)


def train_reusing(movie, path, candidates, **kw):
    """What notebook 09 does (course.own_movie.pretrain): reuse a finished identical training, else
    train."""
    from tapkit.course.reuse import reuse_same_training

    settings = {**FAST, "epochs": 1, "steps_per_epoch": 2, **kw}
    progress = settings.pop("progress")
    reuse_same_training(path, candidates, "tap", movie, **settings)
    return train_tap(movie, checkpoint=path, resume=True, progress=progress, **settings)


def test_the_same_training_is_reused_and_any_other_is_not(tmp_path, capsys):
    from tapkit.ssl.recipe import movies_digest
    from tapkit.ssl.trainer import planned_recipe

    movie = growing_blobs()
    first = tmp_path / "tap_course.pt"
    model, history = train_tap(movie, epochs=1, steps_per_epoch=2, checkpoint=first, **FAST)
    settings = {k: v for k, v in FAST.items() if k != "progress"}
    assert (
        planned_recipe("tap", movie, epochs=1, steps_per_epoch=2, **settings)
        == load_checkpoint(first)["recipe"]
    )
    again = tmp_path / "own.pt"
    model2, history2 = train_reusing(movie.copy(), again, [first])
    assert "holds the same training" in capsys.readouterr().out
    # copied and loaded, not retrained
    assert again.read_bytes() == first.read_bytes() and history2 == history
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values())
    )
    # another seed, another movie or other settings: a training of its own
    for i, (mov, kw) in enumerate(
        [(movie, dict(seed=1)), (growing_blobs(seed=1), {}), (movie, dict(lr=1e-3))]
    ):
        path = tmp_path / f"other{i}.pt"
        train_reusing(mov, path, [first], **kw)
        assert "holds the same training" not in capsys.readouterr().out
        assert load_checkpoint(path)["recipe"] != load_checkpoint(first)["recipe"]
    assert movies_digest(movie) == movies_digest(movie.copy()) != movies_digest(movie + 1e-3)
    # an unfinished training is never reused
    partial = tmp_path / "partial.pt"
    state = load_checkpoint(first)
    state["scheduler"]["last_epoch"] = 1
    save_checkpoint(state, partial)
    train_reusing(movie, tmp_path / "fresh.pt", [partial])
    assert "holds the same training" not in capsys.readouterr().out


def outlier_cue(t=20, size=48, seed=0) -> np.ndarray:
    """The same cells in every frame, plus one small spot that brightens every frame (a dividing
    cell, debris).

    Per-frame percentile normalisation then dims every other pixel a little more in each frame: a
    frame-level cue that per-frame normalisation creates and that only per-crop normalisation
    removes.
    """
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random((size, size)), 2) * 100 + 10
    frames = np.repeat(base[None], t, 0) * (1 + 0.01 * rng.normal(size=(t, size, size)))
    # 25 px > the 99.8th percentile's 5
    frames[:, :5, :5] = (200 * 1.15 ** np.arange(t))[:, None, None]
    return frames.astype(np.float32)


def test_per_crop_training_removes_a_frame_level_cue():
    """Per frame, the spot's brightness becomes a time arrow everywhere; per crop there is none left
    to learn."""
    movie = outlier_cue()
    kw = dict(FAST, epochs=3, steps_per_epoch=12, lr=3e-3, seed=0, augment=False)
    frame_model, _ = train_tap(movie, **kw)
    crop_model, _ = train_tap(movie, per_crop=True, **kw)
    check = outlier_cue(seed=5)
    shortcut = evaluate_tap(frame_model, check, n_pairs=256, patch=24, split="train")["accuracy"]
    honest = evaluate_tap(crop_model, check, n_pairs=256, patch=24, split="train", per_crop=True)
    assert shortcut > 0.8
    # chance: nothing but the cue
    assert honest["accuracy_ci"][0] < 0.5 < honest["accuracy_ci"][1] + 0.05


def test_checkpoint_records_per_crop_and_the_held_out_region(tmp_path):
    train_tap(
        growing_blobs(t=8, size=96),
        epochs=1,
        steps_per_epoch=1,
        checkpoint=tmp_path / "c.pt",
        per_crop=True,
        val_region=0.25,
        **FAST,
    )
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["normalization"]["per_crop"] is True and state["recipe"]["val_region"] == 0.25
    assert load_tap(tmp_path / "c.pt").normalization["per_crop"] is True


def test_evaluate_on_the_held_out_region_with_an_interval():
    """split='region': pairs of the training frames inside the held-out columns; Wilson 95 %
    interval."""
    model = _AlwaysSlot0(n_depth=1, base_filters=4, n_features=4, backbone_features=4)
    res = evaluate_tap(
        model,
        growing_blobs(t=20, size=64),
        n_pairs=256,
        patch=16,
        split="region",
        val_region=0.25,
        val_at="end",
        seed=1,
    )
    k, n = round(res["accuracy"] * res["n_pairs"]), res["n_pairs"]
    p, z = k / n, 1.959963984540054
    centre, half = (
        (p + z**2 / (2 * n)) / (1 + z**2 / n),
        z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n),
    )
    assert res["accuracy_ci"] == pytest.approx((centre - half, centre + half))
    assert max(res["accuracy_by_t"]) < 18  # training frames only (the last ones are held out)
    above, pairs = res["pairs_above_chance"]
    assert pairs == len(res["accuracy_by_t"]) and above == sum(
        v > 0.5 for v in res["accuracy_by_t"].values()
    )


def test_accuracy_warnings_flag_chance_and_frame_level_cues():
    from tapkit.ssl.tap import accuracy_warnings

    good = dict(accuracy=0.85, accuracy_ci=(0.82, 0.88), accuracy_by_t={0: 0.8, 1: 0.9})
    assert accuracy_warnings(good) == []
    chance = dict(good, accuracy=0.52, accuracy_ci=(0.49, 0.55))
    assert "not clearly above chance" in accuracy_warnings(chance)[0]
    cue = dict(good, accuracy_by_t={17: 0.95, 18: 0.04})
    found = accuracy_warnings(cue)
    assert "t=18: 0.04" in found[0] and "frame-level" not in found[0] and "What to try" in found[-1]


def test_a_movie_too_narrow_for_the_region_trains_on_whole_frames_and_says_so(tmp_path, capsys):
    train_tap(
        growing_blobs(t=8, size=48),
        epochs=1,
        steps_per_epoch=1,
        checkpoint=tmp_path / "c.pt",
        val_region=0.25,
        **FAST,
    )
    assert "no room for a held-out region" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "c.pt")["recipe"]["val_region"] == 0.0


def test_held_out_checks_add_the_region_only_where_training_held_one_out():
    from tapkit import Movie
    from tapkit.ssl.tap import checks_warnings, held_out_checks

    model = _AlwaysSlot0(n_depth=1, base_filters=4, n_features=4, backbone_features=4)
    kw = dict(n_pairs=64, patch=16, seed=1, val_at="end")
    wide = held_out_checks(model, Movie(growing_blobs(t=20, size=64)), 0.25, **kw)
    assert set(wide) == {"held-out frames", "held-out region"}
    # no room: training had none
    narrow = held_out_checks(model, Movie(growing_blobs(t=20, size=32)), 0.25, **kw)
    assert set(narrow) == {"held-out frames"}
    given = held_out_checks(
        model, Movie(growing_blobs(t=20, size=64)), 0.0, frames=wide["held-out frames"], **kw
    )
    assert given == {"held-out frames": wide["held-out frames"]}
    lines = checks_warnings(wide)
    # one "what to try" for both
    assert len(lines) == len(set(lines)) and lines[-1].startswith("What to try")
