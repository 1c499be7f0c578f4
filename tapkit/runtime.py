"""Where and how tensors are computed: the device, the one mixed-precision policy, seeding and
determinism.

Mixed precision: bfloat16 autocast on CUDA GPUs that support it (float16 on older ones), and on CPUs
that compute bfloat16 natively (avx512_bf16 / AMX: `cpu_has_bf16()`); float32 on other CPUs.
`$TAPKIT_CPU_BF16=0` forces float32 on the CPU, `=1` bfloat16 (slow where the CPU lacks the
instructions). On 2 AMD EPYC cores bfloat16 halves a cpu-profile TAP step (0.57 s -> 0.28-0.33 s).
At the old learning rate (1e-3) it learned a little less per step than float32 (notebook 01's cpu
TAP training, 800 steps, seed 0, accuracy on 1024 fresh pairs: 0.753 vs 0.779); the cpu profile's
lr 3e-3 reaches 0.835 in 800 bfloat16 steps (docs/MEASUREMENT_NOTES.md has every option measured).
The tests run in float32 (conftest.py sets $TAPKIT_CPU_BF16=0). Every training loop, feature
extractor and benchmark in tapkit uses `autocast` from here; `cpu_float32()` turns bfloat16 off for
a block (notebook 01 compares logits at the level of float32 rounding).

Reproducibility (measured on CPU, torch 2.13, a 6-step training of a small TAPNet):
- the same seed gives bit-identical weights and history in one process, in two processes, and
  whatever ran before (the trainer seeds its own generators; the global RNG is not used in between);
- numbers are identical only for the same seed AND the same number of CPU threads
  (`torch.get_num_threads()`): oneDNN (mkldnn) kernels split their float sums by thread, so 1, 2
  and 4 threads give three different sets of weights after a few steps (differences in the 6th
  digit that a long training can amplify). `torch.use_deterministic_algorithms(True)` does not
  change this on CPU; `deterministic(thread_independent=True)` (oneDNN off) does: the same weights
  with 1 and 2 threads, but CPU training is ~1.8x slower. Record the thread count with the results
  (`run_settings()`), and use `deterministic(threads=...)` to repeat a run;
- a different machine (CPU instruction set), torch version or device (GPU kernels, autocast) changes
  float rounding and hence the numbers; on CUDA `deterministic` asks for deterministic kernels.
A validation accuracy then moves like between seeds: notebook 01's cpu TAP accuracy (128 validation
pairs, standard error ~0.03) was 0.836 in one run and 0.852 in another, 2 pairs apart.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import random
from typing import Any

import numpy as np
import torch

from tapkit.data.movie import InputError

__all__ = [
    "pick_device",
    "cpu_has_bf16",
    "cpu_bf16",
    "cpu_precision",
    "cpu_float32",
    "amp_dtype",
    "autocast",
    "seed_everything",
    "deterministic",
    "run_settings",
]


def pick_device(device: "str | torch.device" = "auto", verbose: bool = True) -> torch.device:
    """Return a torch.device; 'auto' picks CUDA, then MPS, then CPU and says which (and why)."""
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        if torch.cuda.is_available():
            dev, why = torch.device("cuda"), f"CUDA GPU: {torch.cuda.get_device_name(0)}"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            dev, why = torch.device("mps"), "Apple GPU (MPS)"
        else:
            dev, why = (
                torch.device("cpu"),
                "CPU (no GPU found: training is slower, use the 'cpu' profile)",
            )
        if verbose:
            print(f"tapkit: using {why}")
        return dev
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} asked for CUDA, but PyTorch sees no GPU. Use device='auto' or "
            "'cpu' (on Colab: Runtime > Change runtime type > GPU)."
        )
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise RuntimeError(
            f"device={device!r} asked for Apple MPS, which is not available here. Use 'auto' or "
            "'cpu'."
        )
    return torch.device(name)


# "1": bfloat16 autocast on the CPU; "0": float32; unset / "auto": bf16 where the CPU has it
CPU_BF16_ENV = "TAPKIT_CPU_BF16"


def cpu_has_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (avx512_bf16 or AMX): only there is
    $TAPKIT_CPU_BF16=1 faster."""
    checks = (
        getattr(torch.cpu, "_is_avx512_bf16_supported", None),
        getattr(torch.cpu, "_is_amx_tile_supported", None),
    )
    return any(bool(check()) for check in checks if check is not None)


# set inside `cpu_float32()`
_FORCE_FLOAT32 = contextvars.ContextVar("tapkit_cpu_float32", default=False)


def cpu_bf16() -> bool:
    """Whether tapkit autocasts to bfloat16 on the CPU: $TAPKIT_CPU_BF16=1 / 0, else (unset, 'auto')
    when `cpu_has_bf16()`."""
    if _FORCE_FLOAT32.get():
        return False
    value = os.environ.get(CPU_BF16_ENV, "").strip().lower()
    if value in ("", "auto"):
        return cpu_has_bf16()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise InputError(
        f"${CPU_BF16_ENV}={value!r}: use 1 (bfloat16 autocast on the CPU), 0 (float32) or "
        "auto / unset (bfloat16 where the CPU computes it natively, the default)."
    )


def cpu_precision() -> str:
    """'bfloat16' or 'float32': what the CPU computes in (`cpu_bf16()`), for tables and run
    summaries."""
    return "bfloat16" if cpu_bf16() else "float32"


@contextlib.contextmanager
def cpu_float32() -> Any:
    """Inside this block the CPU computes in float32 whatever $TAPKIT_CPU_BF16 says (comparisons at
    rounding level).

    A context variable, not the environment: other threads and the rest of the process keep their
    precision.
    """
    token = _FORCE_FLOAT32.set(True)
    try:
        yield
    finally:
        _FORCE_FLOAT32.reset(token)


def amp_dtype(device: torch.device, enabled: bool = True) -> "torch.dtype | None":
    """The autocast dtype for `device`: bfloat16 on CUDA (float16 without bf16 support) or a CPU
    where `cpu_bf16()`, else None."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device, enabled: bool = True) -> Any:
    """The one mixed-precision context of tapkit: `amp_dtype` autocast (CUDA; CPU if asked), a no-op
    elsewhere."""
    dtype = amp_dtype(device, enabled)
    return (
        torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    )


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) with one number."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def deterministic(threads: "int | None" = None, thread_independent: bool = False) -> dict[str, Any]:
    """Settings for repeatable seeded runs (thread count, deterministic kernels); returns
    `run_settings()`.

    threads: fix torch's CPU thread count (None keeps it); the same seed gives the same numbers only
    with the same count. thread_independent=True turns oneDNN off: the same numbers for any thread
    count, ~1.8x slower CPU training. On CUDA: deterministic cuDNN/cuBLAS kernels
    (warn where none exists).
    """
    if threads is not None:
        from tapkit.validate import whole

        torch.set_num_threads(whole(1, example=2, where="deterministic: ")("threads", threads))
    torch.backends.mkldnn.enabled = not thread_independent
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    return run_settings()


def run_settings() -> dict[str, Any]:
    """What the numbers of a seeded run depend on besides the seed: torch version, CPU threads,
    oneDNN, device."""
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "onednn": bool(torch.backends.mkldnn.enabled),
        "cpu_bf16": cpu_bf16(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
