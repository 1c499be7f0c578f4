"""Benchmark tests: the reference loader does what tarrow's pipeline does; the benchmark and GPU
check run (tiny)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.bench_pipeline import format_report, main, run_benchmark, time_calls
from benchmarks.reference_loader import (
    ReferenceDataset,
    _affine,
    reference_augment,
    reference_loader,
)
from tapkit import InputError

TINY = dict(n_depth=1, base_filters=4, n_features=4, backbone_features=4, head_features=4)


def test_reference_affine_identity_and_quarter_turn():
    x = torch.rand(2, 1, 20, 20)
    torch.testing.assert_close(_affine(x, 0.0, (0.0, 0.0), 1.0), x, atol=1e-5, rtol=0)
    turned = _affine(x, 90.0, (0.0, 0.0), 1.0)
    assert any(torch.allclose(turned, torch.rot90(x, k, (2, 3)), atol=1e-5) for k in (1, 3))
    shifted = _affine(x, 0.0, (3.0, 0.0), 1.0)  # shift right by 3 px, zero fill on the left
    torch.testing.assert_close(shifted[..., 3:], x[..., :-3], atol=1e-5, rtol=0)
    assert shifted[..., :3].abs().max() < 1e-6


def test_reference_dataset_crops_and_labels():
    """Without augmentation an item is a crop of frames (t, t + 1), reversed exactly when the label
    is 1."""
    movie = np.random.default_rng(0).random((6, 48, 48), dtype=np.float32)
    ds = ReferenceDataset(movie, patch=16, augment=False)
    assert len(ds) == 5
    torch.manual_seed(0)
    labels = set()
    for i in range(12):
        x, y = ds[i % 5]
        pair = ds.sequences[i % 5][:, 0]  # (2, Y, X) normalised frames t, t + 1
        frames = pair.flip(0) if y == 1 else pair
        assert (
            (frames.unfold(1, 16, 1).unfold(2, 16, 1) == x[:, 0, None, None])
            .flatten(3)
            .all(-1)
            .all(0)
            .any()
        )
        labels.add(int(y))
    assert labels == {0, 1}


def test_reference_augment_keeps_shape_and_adds_positive_noise():
    torch.manual_seed(0)
    x = torch.zeros(2, 1, 32, 32)
    outs = torch.stack([reference_augment(x.clone()) for _ in range(20)])
    assert outs.shape == (20, 2, 1, 32, 32) and torch.isfinite(outs).all()
    assert (outs.flatten(1).std(1) > 0).all()  # noise on every sample


def test_reference_loader_batches():
    ds = ReferenceDataset(np.random.default_rng(0).random((6, 40, 40), dtype=np.float32), patch=16)
    x, y = next(iter(reference_loader(ds, batch_size=8, num_workers=0, n_samples=16)))
    assert x.shape == (8, 2, 1, 16, 16) and y.shape == (8,) and set(y.tolist()) <= {0, 1}


def test_time_calls_counts_calls():
    calls = []
    assert time_calls(lambda: calls.append(1), steps=3, device=torch.device("cpu"), warmup=2) >= 0
    assert len(calls) == 5


def test_run_benchmark_tiny(capsys, tmp_path):
    res = run_benchmark(
        "cpu", batch=4, patch=16, repeats=2, steps=1, frames=6, size=40, workers=0, model_kw=TINY
    )
    assert set(res["pairs_s"]) == {"reference", "tapkit_1t", "tapkit_2t"}
    for key in ("step_pregenerated_s", "step_with_sampler_s", "pipeline_share", "tapkit_peak_mb"):
        assert np.isfinite(res[key]) and res[key] > 0, key
    assert all(v > 0 for v in res["ratio"].values()) and len(res["load_before"]) == 3
    assert "x the reference" in format_report(res)
    main(
        [
            "--device",
            "cpu",
            "--batch",
            "2",
            "--patch",
            "16",
            "--size",
            "40",
            "--frames",
            "6",
            "--repeats",
            "1",
            "--steps",
            "1",
            "--workers",
            "1",
            "--threads",
            "1",
            "--data-only",
            "--json",
            str(tmp_path / "b.json"),
        ]
    )
    out = capsys.readouterr().out
    assert "pairs/s" in out and "train step" not in out
    assert json.loads((tmp_path / "b.json").read_text())["pairs_s"]["reference"] > 0


def test_bad_sizes():
    with pytest.raises(InputError, match="patch"):
        run_benchmark("cpu", batch=2, patch=64, steps=1, size=48)
    with pytest.raises(InputError, match="steps"):
        run_benchmark("cpu", batch=2, patch=16, steps=0, size=48)


def test_gpu_check_tiny_on_cpu(tmp_path):
    """The one-command GPU check runs end to end at toy sizes on a CPU and writes its JSON
    report."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [
            "bash",
            str(root / "scripts" / "gpu_check.sh"),
            "--tiny",
            "--device",
            "cpu",
            "--tests",
            str(root / "tests" / "test_gpu.py"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["tiny"] and report["benchmark"]["pairs_s"]["tapkit_1t"] > 0
    assert report["pytest_gpu"]["returncode"] in (
        0,
        5,
    )  # all gpu tests skipped without CUDA (5: none collected)
    # the short course run (tiny: notebook 00)
    assert report["short_run"]["returncode"] == 0, report["short_run"]["tail"]
    assert report["short_run"]["notebooks"]["00_welcome_and_data"]["status"] == "ok"
