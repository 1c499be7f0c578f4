"""Pick the compute device: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch


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
