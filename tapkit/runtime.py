"""Where and how tensors are computed: the device, the one mixed-precision policy, seeding.

Mixed precision: bfloat16 autocast on CUDA GPUs that support it (float16 on older ones), nothing on
CPU or MPS, so CPU results stay exact float32 and reproducible. Every training loop, feature
extractor and benchmark in tapkit uses `autocast` from here.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import numpy as np
import torch

__all__ = ["pick_device", "amp_dtype", "autocast", "seed_everything"]


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
            dev, why = torch.device("cpu"), "CPU (no GPU found: training is slower, use the 'cpu' profile)"
        if verbose:
            print(f"tapkit: using {why}")
        return dev
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} asked for CUDA, but PyTorch sees no GPU. Use device='auto' or 'cpu' "
            "(on Colab: Runtime > Change runtime type > GPU)."
        )
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError(f"device={device!r} asked for Apple MPS, which is not available here. Use 'auto' or 'cpu'.")
    return torch.device(name)


def amp_dtype(device: torch.device, enabled: bool = True) -> "torch.dtype | None":
    """The autocast dtype for `device`: bfloat16 on CUDA (float16 without bf16 support), None = full float32."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, enabled: bool = True) -> Any:
    """The one mixed-precision context of tapkit: `amp_dtype` autocast on CUDA, a no-op elsewhere."""
    dtype = amp_dtype(device, enabled)
    return torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) with one number."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
