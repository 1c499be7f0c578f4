"""Speed benchmark of TAP pretraining: `python -m benchmarks.bench_pipeline [--device auto] [--batch 128] [--patch 96] [--steps N]`.

Prints, for the chosen device:
  * pairs/s of the batched `PairSampler` (crops + augmentations on the device) alone,
  * pairs/s of a naive per-sample pipeline like the reference's data loader (crop and augment one
    sample at a time with numpy / scipy.ndimage, then stack and move to the device),
  * the time of one training step (forward, TAP loss, backward, Adam; AMP on CUDA) with a
    pre-generated batch, with the batched sampler and with the naive pipeline, hence the share
    of the step spent on data and the whole-step speed-up of batched over naive,
  * peak memory (CUDA: max_memory_allocated; CPU: the process's peak RSS).
Targets: on a GPU data <= 10 % of a step and >= 5x whole-step speed-up at batch 128, patch 96;
on 2 CPU cores >= 2x.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from typing import Any, Callable

import numpy as np
import torch
from scipy import ndimage as ndi

from tapkit.runtime import autocast, pick_device
from tapkit.ssl.tap import TAPNet
from tapkit.data.movie import InputError, normalize
from tapkit.ssl.sampler import AugmentConfig, PairSampler, augment_margin

__all__ = ["bench_movies", "naive_batch", "time_calls", "train_step", "peak_memory_mb", "run_benchmark",
           "format_report", "main"]


def bench_movies(n_frames: int = 12, size: int = 256, seed: int = 0) -> list[np.ndarray]:
    """Two smooth random (T, Y, X) movies: the benchmark measures speed, not learning."""
    rng = np.random.default_rng(seed)
    return [ndi.gaussian_filter(rng.random((n_frames, size, size)), (0, 3, 3)).astype(np.float32)
            for _ in range(2)]


# ----------------------------------------------------------------------------------------------
# The naive pipeline: one sample at a time on the CPU (numpy + scipy.ndimage)
# ----------------------------------------------------------------------------------------------
def _naive_matrix(rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """(2, 2) joint transform of a pair: dihedral x rotation x zoom, drawn like the batched sampler."""
    k = rng.integers(4) if rng.random() < cfg.p_dihedral else 0
    mirror = np.diag([1.0, -1.0]) if rng.random() < cfg.p_dihedral / 2 else np.eye(2)
    angle = rng.uniform(0, 2 * np.pi) if rng.random() < cfg.p_rotate else 0.0
    zoom = math.exp(rng.uniform(*np.log(cfg.scale_range))) if rng.random() < cfg.p_scale else 1.0
    rot = lambda a: np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # noqa: E731
    return rot(k * np.pi / 2).round() @ mirror @ rot(angle) * zoom


def _naive_frame(crop: np.ndarray, mat: np.ndarray, shift: np.ndarray, patch: int) -> np.ndarray:
    """Resample one (C, C) crop to (P, P) around its centre with scipy.ndimage.affine_transform."""
    centre_in, centre_out = (np.array(crop.shape) - 1) / 2, (patch - 1) / 2 * np.ones(2)
    offset = centre_in + shift - mat @ centre_out
    return ndi.affine_transform(crop, mat, offset=offset, output_shape=(patch, patch), order=1, mode="reflect")


def _naive_elastic(pair: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Shared smooth deformation of a (2, P, P) pair with scipy.ndimage.map_coordinates."""
    p = pair.shape[-1]
    coarse = rng.uniform(-1, 1, (2, cfg.elastic_grid, cfg.elastic_grid))
    field = np.stack([ndi.zoom(c, p / cfg.elastic_grid, order=3) for c in coarse]) * cfg.elastic_amplitude
    coords = np.mgrid[:p, :p] + field[:, :p, :p]
    return np.stack([ndi.map_coordinates(f, coords, order=1, mode="reflect") for f in pair])


def _naive_intensity(pair: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Per-frame and global scale/shift and noise of one (2, P, P) pair."""
    if rng.random() < cfg.p_frame_intensity:
        pair = pair * rng.uniform(1 - cfg.frame_scale, 1 + cfg.frame_scale, (2, 1, 1)) \
            + rng.uniform(-cfg.frame_shift, cfg.frame_shift, (2, 1, 1))
    if rng.random() < cfg.p_global_intensity:
        pair = pair * math.exp(rng.uniform(-cfg.global_scale, cfg.global_scale)) \
            + rng.uniform(-cfg.global_shift, cfg.global_shift)
    if rng.random() < cfg.p_noise:
        pair = pair + rng.uniform(0, cfg.noise_std) * rng.standard_normal(pair.shape)
    return pair


def _naive_sample(movies: list[np.ndarray], patch: int, margin: int, rng: np.random.Generator,
                  cfg: AugmentConfig) -> tuple[np.ndarray, int]:
    """One augmented pair (2, P, P) and its label (slot of the earlier frame)."""
    mov = movies[rng.integers(len(movies))]  # normalised and padded by `margin`
    t = rng.integers(mov.shape[0] - 1)
    y0, x0 = (rng.integers(n - 2 * margin - patch + 1) for n in mov.shape[1:])
    c = patch + 2 * margin
    pair, label = mov[t:t + 2, y0:y0 + c, x0:x0 + c], 0
    if rng.random() < 0.5:
        pair, label = pair[::-1], 1
    mat = _naive_matrix(rng, cfg)
    jitter = rng.random() < cfg.p_jitter
    frames = []
    for f in pair:
        zoom = 1 + rng.uniform(-cfg.jitter_scale, cfg.jitter_scale) if jitter else 1.0
        shift = rng.uniform(-cfg.jitter_shift, cfg.jitter_shift, 2) if jitter else np.zeros(2)
        frames.append(_naive_frame(f, mat * zoom, shift, patch))
    out = np.stack(frames)
    if rng.random() < cfg.p_elastic:
        out = _naive_elastic(out, rng, cfg)
    return _naive_intensity(out, rng, cfg), label


def naive_batch(movies: list[np.ndarray], patch: int, batch: int, rng: np.random.Generator,
                cfg: AugmentConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch built sample by sample with scipy (movies pre-normalised and padded), then moved to the device."""
    margin = augment_margin(patch, cfg)
    samples = [_naive_sample(movies, patch, margin, rng, cfg) for _ in range(batch)]
    x = torch.from_numpy(np.stack([s[0] for s in samples]).astype(np.float32))[:, :, None]  # (B, 2, 1, P, P)
    y = torch.tensor([s[1] for s in samples])
    return x.to(device), y.to(device)


def naive_movies(movies: list[np.ndarray], patch: int, cfg: AugmentConfig) -> list[np.ndarray]:
    """Normalise per frame and pad by the augmentation margin once, as a reference data set would."""
    m = augment_margin(patch, cfg)
    return [np.pad(normalize(mov), ((0, 0), (m, m), (m, m)), mode="reflect") for mov in movies]


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    """Wait for queued GPU work so that wall-clock times are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], steps: int, device: torch.device, warmup: int = 1) -> float:
    """Median seconds per call of `fn` over `steps` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def train_step(model: TAPNet, opt: torch.optim.Optimizer, scaler: "torch.amp.GradScaler",
               x: torch.Tensor, y: torch.Tensor) -> float:
    """One TAP training step (AMP on CUDA): forward, loss, backward, optimiser step; returns the loss."""
    with autocast(x.device):
        loss, _ = model.loss({"x": x, "y": y})  # x (B, 2, 1, P, P), y (B,)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return float(loss.detach())


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: CUDA max_memory_allocated, else the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def _check_args(batch: int, patch: int, steps: int, size: int) -> None:
    """Raise InputError for sizes that cannot work, before building anything."""
    if min(batch, steps) < 1:
        raise InputError(f"bench: batch={batch} and steps={steps} must be >= 1.")
    if not 16 <= patch <= size:
        raise InputError(f"bench: patch={patch} must be between 16 and the movie size {size}.")


def run_benchmark(device: "str | torch.device" = "auto", batch: int = 128, patch: int = 96, steps: int = 5,
                  size: int = 256, seed: int = 0, model_kw: "dict | None" = None,
                  data_only: bool = False) -> dict[str, Any]:
    """Measure sampler, naive pipeline and (unless data_only) training-step speeds; return a dict."""
    _check_args(batch, patch, steps, size)
    dev = pick_device(device)
    torch.manual_seed(seed)
    movies, cfg = bench_movies(size=size, seed=seed), AugmentConfig()
    sampler = PairSampler(movies, patch=patch, batch_size=batch, val_fraction=0.0, device=dev, seed=seed)
    naive_data, rng = naive_movies(movies, patch, cfg), np.random.default_rng(seed)
    naive = lambda: naive_batch(naive_data, patch, batch, rng, cfg, dev)  # noqa: E731
    model = TAPNet(seed=seed, **(model_kw or {})).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(dev.type, enabled=dev.type == "cuda")
    flips = torch.Generator(device=dev).manual_seed(seed)
    tap_batch = lambda: tuple(model.make_batch(sampler.sample()[0], flips).values())  # noqa: E731  (x, y)
    x, y = tap_batch()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    res = dict(device=str(dev), batch=batch, patch=patch, steps=steps)
    res["sampler_s"] = time_calls(sampler.sample, steps, dev)
    res["naive_s"] = time_calls(naive, steps, dev)
    if data_only:
        res["peak_memory_mb"] = peak_memory_mb(dev)
        return _derived(res)
    res["step_pregenerated_s"] = time_calls(lambda: train_step(model, opt, scaler, x, y), steps, dev)
    res["step_batched_s"] = time_calls(lambda: train_step(model, opt, scaler, *tap_batch()), steps, dev)
    res["step_naive_s"] = time_calls(lambda: train_step(model, opt, scaler, *naive()), steps, dev)
    res["peak_memory_mb"] = peak_memory_mb(dev)
    return _derived(res)


def _derived(res: dict[str, Any]) -> dict[str, Any]:
    """Add pairs/s, the data share of a step and the speed-up of batched over naive."""
    b = res["batch"]
    res["sampler_pairs_s"] = b / res["sampler_s"]
    res["naive_pairs_s"] = b / res["naive_s"]
    res["speedup_data"] = res["naive_s"] / res["sampler_s"]
    if "step_batched_s" not in res:
        return res
    res["data_share"] = res["sampler_s"] / res["step_batched_s"]
    res["data_share_naive"] = res["naive_s"] / res["step_naive_s"]
    res["speedup_step"] = res["step_naive_s"] / res["step_batched_s"]
    return res


def format_report(res: dict[str, Any]) -> str:
    """The benchmark's numbers as a small text table, with the targets."""
    gpu = res["device"].startswith("cuda")
    target_share, target_speed = (0.10, 5.0) if gpu else (None, 2.0)
    lines = [
        f"benchmarks.bench_pipeline on {res['device']}: batch {res['batch']}, patch {res['patch']}, median of {res['steps']} steps",
        f"  batched sampler + augmenter : {res['sampler_pairs_s']:10.0f} pairs/s ({1e3 * res['sampler_s']:.1f} ms/batch)",
        f"  naive per-sample (scipy)    : {res['naive_pairs_s']:10.0f} pairs/s ({1e3 * res['naive_s']:.1f} ms/batch)"
        f"  -> data speed-up {res['speedup_data']:.1f}x",
    ]
    if "step_batched_s" in res:
        lines += _step_lines(res, target_share, target_speed)
    lines.append(f"  peak memory                 : {res['peak_memory_mb']:10.0f} MiB "
                 f"({'CUDA allocated' if gpu else 'process RSS'})")
    return "\n".join(lines)


def _step_lines(res: dict[str, Any], target_share: "float | None", target_speed: float) -> list[str]:
    """Report lines of the training-step measurements."""
    return [
        f"  train step, pre-generated   : {1e3 * res['step_pregenerated_s']:10.1f} ms",
        f"  train step, batched sampler : {1e3 * res['step_batched_s']:10.1f} ms  (data {100 * res['data_share']:.1f} %"
        + (f", target <= {100 * target_share:.0f} %)" if target_share else ")"),
        f"  train step, naive pipeline  : {1e3 * res['step_naive_s']:10.1f} ms  (data {100 * res['data_share_naive']:.1f} %)",
        f"  whole-step speed-up         : {res['speedup_step']:10.2f}x  (target >= {target_speed:.0f}x)",
    ]


def main(argv: "list[str] | None" = None) -> dict[str, Any]:
    """Command-line entry point: parse arguments, run the benchmark, print the report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--batch", type=int, default=128, help="pairs per batch")
    parser.add_argument("--patch", type=int, default=96, help="crop size in pixels")
    parser.add_argument("--steps", type=int, default=5, help="timed calls per measurement (median)")
    parser.add_argument("--size", type=int, default=256, help="frame size of the synthetic movies")
    parser.add_argument("--data-only", action="store_true", help="skip the training steps (data pipelines only)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    res = run_benchmark(args.device, args.batch, args.patch, args.steps, args.size, data_only=args.data_only)
    print(format_report(res))
    return res


if __name__ == "__main__":
    main()
