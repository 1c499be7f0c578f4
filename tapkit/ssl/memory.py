"""Whether a training fits in memory: the estimate of one optimisation step's peak memory
(`estimate_step_bytes`) and the check that refuses a batch (with the movies) too big for the
device's free memory before anything is moved there, naming what to lower (`check_memory`, run by
the trainer).
"""

from __future__ import annotations

import torch

from tapkit.data.movie import InputError
from tapkit.ssl.host_store import free_bytes
from tapkit.ssl.pretext import PretextModel


def estimate_step_bytes(batch_size: int, patch: int, model: PretextModel, frames: int = 2) -> int:
    """Peak memory of one training step of `batch_size` samples of `frames` crops (float32
    activations + backward).

    Per crop and pixel: the U-Net keeps ~12 tensors of width base * 2**i at (patch / 2**i)**2 pixels
    on level i (block, pooling, skip concatenation; down and up), less than 24 * base_filters in
    all; the projection ~4 tensors of backbone_features and a head ~5 of its width
    (TAP: head_features) at full resolution; x 1.3 for gradients in flight during backward.
    Measured (peak RSS increase of two CPU steps after a warm-up step, TAPNet, float32, 1 thread):
        base 8,  patch 32, batch 8:   58 MiB measured,   52 MiB estimated
        base 16, patch 64, batch 16: 561 MiB measured,  541 MiB estimated
        base 16, patch 64, batch 32: 880 MiB measured, 1082 MiB estimated
        base 32, patch 96, batch 8:  849 MiB measured,  889 MiB estimated
    """
    cfg = model.config
    per_pixel = (
        24 * int(cfg["base_filters"])
        + 4 * int(cfg["backbone_features"])
        + 5 * int(cfg.get("head_features", 0))
    )
    return int(1.3 * 4 * per_pixel * patch**2 * frames * batch_size)


def check_memory(
    batch_size: int, patch: int, movies_bytes: int, model: PretextModel, device: torch.device
) -> None:
    """Refuse a batch (and movie) that cannot fit in the device's free memory, naming what to
    lower."""
    free = free_bytes(device)  # CUDA free memory, or the host's MemAvailable
    need = estimate_step_bytes(batch_size, patch, model) + movies_bytes
    if free is not None and need > 0.9 * free:
        gib = 2**30
        raise InputError(
            f"batch_size={batch_size} with patch={patch} needs about {need / gib:.1f} GiB on "
            f"{device} (the movies {movies_bytes / gib:.2f} GiB), but only {free / gib:.1f} GiB is "
            "free. Lower batch_size (tap_batch_size in the notebooks) or patch (tap_patch), or use "
            "smaller movies."
        )
