"""Reproducibility of seeded CPU training (tapkit.runtime.deterministic): same seed and threads ->
same bits."""

import hashlib
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from tapkit import InputError
from tapkit.runtime import deterministic, run_settings
from tapkit.ssl.trainer import train_tap

ROOT = Path(__file__).resolve().parents[1]
MOVIE_SEED = 0
TRAIN = (
    "dict(epochs=2, steps_per_epoch=3, batch_size=8, patch=32, val_steps=2, device='cpu', "
    "progress=False, "
    "model_kwargs=dict(n_depth=2, base_filters=8, n_features=8, backbone_features=8, "
    "head_features=8))"
)


def _movie() -> np.ndarray:
    """A (12, 64, 64) random movie: enough for a few training steps."""
    return np.random.default_rng(MOVIE_SEED).random((12, 64, 64)).astype(np.float32)


def _fingerprint(seed: int) -> tuple[str, dict]:
    """Train a tiny TAPNet briefly; return (sha1 of all weights and buffers, history without
    timings)."""
    model, history = train_tap(_movie(), seed=seed, **eval(TRAIN))
    weights = b"".join(v.detach().cpu().numpy().tobytes() for v in model.state_dict().values())
    history.pop("seconds")
    return hashlib.sha1(weights).hexdigest(), history


@pytest.fixture(autouse=True)
def _restore_torch_settings():
    """deterministic() changes process-wide torch settings: put them back after each test."""
    saved = (
        torch.get_num_threads(),
        torch.backends.mkldnn.enabled,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    yield
    torch.set_num_threads(saved[0])
    torch.backends.mkldnn.enabled = saved[1]
    torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[4], saved[5]


def test_same_seed_gives_identical_weights_and_history_whatever_ran_before():
    deterministic(threads=1)
    first = _fingerprint(seed=3)
    (
        random.random(),
        np.random.rand(5),
        torch.rand(7),
    )  # other code drawing from the global generators
    torch.manual_seed(123)
    assert _fingerprint(seed=3) == first


def test_different_seeds_give_different_weights():
    deterministic(threads=1)
    a, b = _fingerprint(seed=0), _fingerprint(seed=1)
    assert a[0] != b[0] and a[1]["train_loss"] != b[1]["train_loss"]


def test_a_second_process_gives_the_same_bits():
    deterministic(threads=1)
    here = _fingerprint(seed=2)[0]
    code = (
        "import sys; sys.path.insert(0, 'tests'); from test_runtime import _fingerprint; "
        "from tapkit.runtime import deterministic; deterministic(threads=1); "
        "print(_fingerprint(seed=2)[0])"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == here


def test_thread_independent_mode_gives_the_same_bits_for_1_and_2_threads():
    deterministic(threads=1, thread_independent=True)
    one = _fingerprint(seed=0)
    deterministic(threads=2, thread_independent=True)
    assert _fingerprint(seed=0) == one
    assert run_settings()["threads"] == 2 and run_settings()["onednn"] is False


def test_settings_are_recorded_and_checked():
    settings = deterministic(threads=1)
    assert settings == run_settings() and settings["threads"] == torch.get_num_threads() == 1
    assert settings["onednn"] is True and torch.are_deterministic_algorithms_enabled()
    for bad in (0, 1.5, True):
        with pytest.raises(InputError, match="threads"):
            deterministic(threads=bad)


def test_cpu_bf16_follows_the_environment_variable(monkeypatch):
    from tapkit.runtime import CPU_BF16_ENV, amp_dtype, autocast, cpu_bf16, cpu_has_bf16

    cpu = torch.device("cpu")
    monkeypatch.setenv(CPU_BF16_ENV, "0")
    assert cpu_bf16() is False and amp_dtype(cpu) is None and run_settings()["cpu_bf16"] is False
    with autocast(cpu):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32  # exact float32
    from tapkit.course.summary import machine_info

    assert machine_info("cpu")["cpu_precision"] == "float32"  # what a course run's summary records
    monkeypatch.setenv(CPU_BF16_ENV, "1")
    assert (
        cpu_bf16() is True
        and amp_dtype(cpu) == torch.bfloat16
        and amp_dtype(cpu, enabled=False) is None
    )
    assert machine_info("cpu")["cpu_precision"] == "bfloat16"
    with autocast(cpu):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    for auto in (None, "auto"):  # the default: bfloat16 exactly where the CPU computes it natively
        monkeypatch.delenv(CPU_BF16_ENV) if auto is None else monkeypatch.setenv(CPU_BF16_ENV, auto)
        assert cpu_bf16() is cpu_has_bf16() and amp_dtype(cpu) == (
            torch.bfloat16 if cpu_has_bf16() else None
        )
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert cpu_bf16() is False and amp_dtype(cpu) is None  # a CPU without bf16: float32
        monkeypatch.undo()
        monkeypatch.setenv(CPU_BF16_ENV, "0")
    from tapkit.runtime import cpu_float32

    for value in ("1", None):
        monkeypatch.setenv(CPU_BF16_ENV, "1") if value else monkeypatch.delenv(CPU_BF16_ENV)
        with cpu_float32():
            assert cpu_bf16() is False and amp_dtype(cpu) is None
            seen = []  # another thread keeps the process's precision
            worker = threading.Thread(target=lambda: seen.append(cpu_bf16()))
            worker.start(), worker.join()
            assert seen == [True if value else cpu_has_bf16()]
        assert os.environ.get(CPU_BF16_ENV) == value  # restored
    monkeypatch.setenv(CPU_BF16_ENV, "maybe")
    with pytest.raises(InputError, match="TAPKIT_CPU_BF16"):
        cpu_bf16()
