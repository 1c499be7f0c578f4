"""Benchmark smoke test: the naive baseline does what the batched sampler does, the report runs."""

import numpy as np
import pytest
import torch

from tapkit import InputError
from benchmarks.bench_pipeline import (_naive_frame, format_report, main, naive_batch, naive_movies, run_benchmark,
                          time_calls)
from tapkit.ssl.sampler import AugmentConfig

torch.set_num_threads(2)
TINY = dict(n_depth=1, base_filters=4, n_features=4, backbone_features=4, head_features=4)


def test_naive_frame_identity_and_rotation():
    crop = np.random.default_rng(0).random((40, 40))
    centre = crop[10:30, 10:30]
    np.testing.assert_allclose(_naive_frame(crop, np.eye(2), np.zeros(2), 20), centre, atol=1e-12)
    quarter = np.array([[0.0, -1.0], [1.0, 0.0]])
    rotated = _naive_frame(crop, quarter, np.zeros(2), 20)
    assert any(np.allclose(rotated, np.rot90(centre, k), atol=1e-12) for k in (1, 3))


def test_naive_batch_labels_point_at_the_earlier_frame():
    """A movie that brightens over time: without augmentation the earlier slot is the dimmer one."""
    ramp = np.linspace(1, 2, 6, dtype=np.float32)[:, None, None]
    noise = np.random.default_rng(0).random((6, 48, 48), dtype=np.float32)
    cfg = AugmentConfig.none()
    x, y = naive_batch([ramp * (1 + noise)], 16, 32, np.random.default_rng(1), cfg, torch.device("cpu"))
    assert x.shape == (32, 2, 1, 16, 16) and y.shape == (32,)
    earlier = x[torch.arange(32), y].mean((1, 2, 3))
    later = x[torch.arange(32), 1 - y].mean((1, 2, 3))
    assert (earlier < later).all() and 0 < y.sum() < 32


def test_naive_movies_normalised_per_frame_and_padded():
    ramp = np.linspace(1, 5, 4, dtype=np.float32)[:, None, None]
    movie = ramp * np.random.default_rng(0).random((4, 40, 40), dtype=np.float32)
    cfg = AugmentConfig()
    (out,) = naive_movies([movie], 16, cfg)
    m = (out.shape[1] - 40) // 2
    assert m > 0 and out.shape == (4, 40 + 2 * m, 40 + 2 * m)
    inner = out[:, m:m + 40, m:m + 40]
    np.testing.assert_allclose(np.percentile(inner, [1, 99.8], axis=(1, 2)), [[0] * 4, [1] * 4], atol=1e-4)


def test_time_calls_counts_calls():
    calls = []
    assert time_calls(lambda: calls.append(1), steps=3, device=torch.device("cpu"), warmup=2) >= 0
    assert len(calls) == 5


def test_run_benchmark_tiny(capsys):
    res = run_benchmark("cpu", batch=4, patch=16, steps=1, size=48, model_kw=TINY)
    for key in ("sampler_pairs_s", "naive_pairs_s", "step_pregenerated_s", "step_batched_s", "step_naive_s",
                "data_share", "speedup_step", "peak_memory_mb"):
        assert np.isfinite(res[key]) and res[key] > 0, key
    assert res["step_batched_s"] >= res["sampler_s"] * 0.5  # a step includes drawing its batch
    assert "whole-step speed-up" in format_report(res)
    main(["--device", "cpu", "--batch", "2", "--patch", "16", "--size", "48", "--steps", "1", "--data-only"])
    out = capsys.readouterr().out
    assert "pairs/s" in out and "train step" not in out


def test_bad_sizes():
    with pytest.raises(InputError, match="patch"):
        run_benchmark("cpu", batch=2, patch=64, steps=1, size=48)
    with pytest.raises(InputError, match="steps"):
        run_benchmark("cpu", batch=2, patch=16, steps=0, size=48)
