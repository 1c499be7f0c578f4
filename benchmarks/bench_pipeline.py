"""Crop-pipeline benchmark: tapkit's `PairSampler` against the reference TAP loader, side by side \
in one run.

    python -m benchmarks.bench_pipeline [--device auto] [--batch 128] [--patch 96] [--repeats 5]

What is compared with what (same movie, same batch 128 and patch 96, same augmentation families and
strengths: `benchmarks/reference_loader.py` says how the two differ):
  * reference: weigertlab/tarrow's pipeline re-implemented faithfully
    (`benchmarks/reference_loader.py`): per-sample crop + level-5 augmenter in `DataLoader` workers
    (2 workers, one torch thread each), as tarrow's `scripts/train.py` runs it; the main process
    only waits for batches;
  * tapkit: `PairSampler.sample()` in the main process (batched crops + augmentations on the
    device), with 1 and with 2 torch threads on a CPU.
Each repeat times the reference, lets its workers refill their prefetch queue (so that they are idle
while tapkit is timed), then times tapkit; ratios are taken within a repeat and the medians
reported, with the load averages before and after (the machine should be idle). Also: peak memory
and, unless --data-only, a TAP training step with a pre-generated batch and with the sampler (the
pipeline's share of a step), optionally with `torch.compile`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from typing import Any, Callable

import numpy as np
import torch
from scipy import ndimage as ndi

from benchmarks.reference_loader import ReferenceDataset, reference_loader
from tapkit.data.movie import InputError
from tapkit.runtime import autocast, pick_device
from tapkit.ssl.augment import AugmentConfig
from tapkit.ssl.sampler import PairSampler
from tapkit.ssl.tap import TAPNet

__all__ = [
    "bench_movie",
    "time_calls",
    "ReferenceTimer",
    "train_step",
    "peak_memory_mb",
    "run_benchmark",
    "format_report",
    "main",
]


def bench_movie(n_frames: int = 64, size: int = 512, seed: int = 0) -> np.ndarray:
    """A smooth random (T, Y, X) movie: the benchmark measures speed, not learning."""
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random((n_frames, size, size), dtype=np.float32), (0, 3, 3))


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


class ReferenceTimer:
    """The reference loader with persistent workers; `seconds_per_batch` times it in its steady
    state."""

    def __init__(self, movie: np.ndarray, patch: int, batch: int, workers: int, seed: int) -> None:
        self.loader = reference_loader(
            ReferenceDataset(movie, patch), batch, workers, n_samples=10**9, seed=seed
        )
        self.workers = workers
        self.queued = workers * 2  # DataLoader's default prefetch_factor is 2 batches per worker
        self.batches = iter(self.loader)
        next(self.batches)  # start the workers

    def seconds_per_batch(self, steps: int) -> float:
        """Drain the batches already made, then the mean seconds per batch over `steps` batches."""
        for _ in range(self.queued):
            next(self.batches)
        start = time.perf_counter()
        for _ in range(steps):
            next(self.batches)
        return (time.perf_counter() - start) / steps

    def settle(self, seconds_per_batch: float) -> None:
        """Wait until the workers have refilled their queue and stopped, so they do not compete with
        tapkit."""
        time.sleep(seconds_per_batch * (self.queued / max(self.workers, 1) + 1) + 0.2)

    def peak_memory_mb(self) -> float:
        """Peak resident memory of the worker processes together (Linux), NaN if unknown."""
        total = 0.0
        for w in getattr(self.batches, "_workers", []):
            try:
                with open(f"/proc/{w.pid}/status") as f:
                    total += (
                        next(int(row.split()[1]) for row in f if row.startswith("VmHWM")) / 1024
                    )
            except (OSError, StopIteration):
                return float("nan")
        return total


def train_step(
    model: TAPNet,
    opt: torch.optim.Optimizer,
    scaler: "torch.amp.GradScaler",
    batch: dict[str, torch.Tensor],
    step_fn: "Callable | None" = None,
) -> float:
    """One TAP training step (AMP on CUDA): forward, loss, backward, optimiser step; returns the
    loss."""
    with autocast(batch["x"].device):
        loss, _ = (step_fn or model.loss)(batch)  # x (B, 2, C, P, P), y (B,)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return float(loss.detach())


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: CUDA max_memory_allocated, else this process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def _check_args(batch: int, patch: int, repeats: int, steps: int, size: int, workers: int) -> None:
    """Raise InputError for sizes that cannot work, before building anything."""
    if min(batch, repeats, steps) < 1 or workers < 0:
        raise InputError(
            f"bench: batch={batch}, repeats={repeats} and steps={steps} must be >= 1, "
            f"workers={workers} >= 0."
        )
    if not 16 <= patch <= size:
        raise InputError(f"bench: patch={patch} must be between 16 and the movie size {size}.")


def _pipelines(
    res: dict,
    movie: np.ndarray,
    dev: torch.device,
    threads: list[int],
    repeats: int,
    steps: int,
    workers: int,
    seed: int,
) -> PairSampler:
    """Time the reference loader and tapkit's sampler in alternation; store per-repeat figures and
    medians."""
    batch, patch = res["batch"], res["patch"]
    ref = ReferenceTimer(movie, patch, batch, workers, seed)
    sampler = PairSampler(
        movie,
        patch=patch,
        batch_size=batch,
        val_fraction=0.0,
        device=dev,
        seed=seed,
        augment=AugmentConfig.level5(),
    )  # the reference's augmentation strengths
    default_threads = torch.get_num_threads()
    runs: dict[str, list[float]] = {"reference": [], **{f"tapkit_{n}t": [] for n in threads}}
    for _ in range(repeats):
        ref_s = ref.seconds_per_batch(steps)
        runs["reference"].append(batch / ref_s)
        ref.settle(ref_s)
        for n in threads:
            torch.set_num_threads(n)
            runs[f"tapkit_{n}t"].append(batch / time_calls(sampler.sample, steps, dev))
    torch.set_num_threads(default_threads)
    res["pairs_s_runs"] = runs
    res["pairs_s"] = {k: float(np.median(v)) for k, v in runs.items()}
    res["ratio"] = {
        k: float(np.median(np.array(v) / np.array(runs["reference"])))
        for k, v in runs.items()
        if k != "reference"
    }
    res["reference_peak_mb"] = ref.peak_memory_mb()
    return sampler


def _steps(
    res: dict,
    sampler: PairSampler,
    dev: torch.device,
    steps: int,
    seed: int,
    model_kw: dict,
    compile_model: bool,
) -> None:
    """Training-step times with a pre-generated batch and with the sampler; the sampler's share of a
    step."""
    model = TAPNet(seed=seed, **model_kw).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(dev.type, enabled=dev.type == "cuda")
    loss_fn = torch.compile(model.loss) if compile_model else None
    make = lambda: model.make_batch(sampler.sample()[0], sampler.generator)  # noqa: E731
    fixed = make()
    tag = "_compiled" if compile_model else ""
    res[f"step_pregenerated_s{tag}"] = time_calls(
        lambda: train_step(model, opt, scaler, fixed, loss_fn),
        steps,
        dev,
        warmup=3 if compile_model else 1,
    )
    res[f"step_with_sampler_s{tag}"] = time_calls(
        lambda: train_step(model, opt, scaler, make(), loss_fn), steps, dev
    )
    res[f"sampler_s{tag}"] = time_calls(sampler.sample, steps, dev)
    res[f"pipeline_share{tag}"] = res[f"sampler_s{tag}"] / res[f"step_with_sampler_s{tag}"]


def run_benchmark(
    device: "str | torch.device" = "auto",
    batch: int = 128,
    patch: int = 96,
    repeats: int = 5,
    steps: int = 5,
    frames: int = 64,
    size: int = 512,
    threads: "list[int] | None" = None,
    workers: int = 2,
    seed: int = 0,
    model_kw: "dict | None" = None,
    data_only: bool = False,
    compile_model: bool = False,
) -> dict[str, Any]:
    """Measure both pipelines (and, unless data_only, training steps); return a dict of figures."""
    _check_args(batch, patch, repeats, steps, size, workers)
    dev = pick_device(device, verbose=False)
    threads = threads or ([1, 2] if dev.type == "cpu" else [torch.get_num_threads()])
    torch.manual_seed(seed)
    movie = bench_movie(frames, size, seed)
    res: dict[str, Any] = dict(
        device=str(dev),
        batch=batch,
        patch=patch,
        repeats=repeats,
        steps=steps,
        movie=[frames, size, size],
        workers=workers,
        cpus=os.cpu_count(),
        load_before=list(os.getloadavg()),
    )
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    sampler = _pipelines(res, movie, dev, threads, repeats, steps, workers, seed)
    res["tapkit_peak_mb"] = peak_memory_mb(dev)
    if not data_only:
        for compiled in [False, True] if compile_model else [False]:
            _steps(res, sampler, dev, steps, seed, model_kw or {}, compiled)
    res["load_after"] = list(os.getloadavg())
    return res


def format_report(res: dict[str, Any]) -> str:
    """The benchmark's figures as a small text report."""
    ref = res["pairs_s"]["reference"]
    lines = [
        f"benchmarks.bench_pipeline on {res['device']} ({res['cpus']} CPUs): batch {res['batch']}, "
        f"patch {res['patch']}, "
        f"movie {'x'.join(map(str, res['movie']))}, median of {res['repeats']} repeats "
        f"x {res['steps']} batches",
        f"  load average before {res['load_before'][0]:.2f} / after {res['load_after'][0]:.2f} "
        f"(1 min; an idle machine is ~0)",
        f"  reference (tarrow-style, {res['workers']} DataLoader workers x 1 thread): "
        f"{ref:8.0f} pairs/s",
    ]
    for key, value in res["ratio"].items():
        label = f"tapkit PairSampler, {key.split('_')[1][:-1]} thread(s)"
        lines.append(
            f"  {label:<55}: {res['pairs_s'][key]:8.0f} pairs/s  -> {value:.1f}x the reference"
        )
    mem = "CUDA max allocated" if res["device"].startswith("cuda") else "peak RSS"
    lines.append(
        f"  peak memory: tapkit {res['tapkit_peak_mb']:.0f} MiB ({mem}), reference workers "
        f"{res['reference_peak_mb']:.0f} MiB (peak RSS, together)"
    )
    for tag in ("", "_compiled"):
        if f"step_with_sampler_s{tag}" in res:
            lines.append(
                f"  train step{' (torch.compile)' if tag else ''}: "
                f"{1e3 * res[f'step_pregenerated_s{tag}']:.1f} ms "
                f"pre-generated, {1e3 * res[f'step_with_sampler_s{tag}']:.1f} ms "
                "with the sampler -> "
                f"pipeline {100 * res[f'pipeline_share{tag}']:.1f} % of a step"
            )
    return "\n".join(lines)


def main(argv: "list[str] | None" = None) -> dict[str, Any]:
    """Command-line entry point: parse arguments, run the benchmark, print the report (and write
    JSON)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_pipeline", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--batch", type=int, default=128, help="pairs per batch")
    parser.add_argument("--patch", type=int, default=96, help="crop size in pixels")
    parser.add_argument(
        "--repeats", type=int, default=5, help="alternating repeats (medians are reported)"
    )
    parser.add_argument("--steps", type=int, default=5, help="batches timed per measurement")
    parser.add_argument("--frames", type=int, default=64, help="frames of the synthetic movie")
    parser.add_argument("--size", type=int, default=512, help="frame size of the synthetic movie")
    parser.add_argument(
        "--threads", default=None, help="torch threads for tapkit, e.g. 1,2 (default: 1,2 on CPU)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="DataLoader workers of the reference"
    )
    parser.add_argument(
        "--data-only", action="store_true", help="skip the training steps (pipelines only)"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also time the step with torch.compile"
    )
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    threads = [int(n) for n in args.threads.split(",")] if args.threads else None
    res = run_benchmark(
        args.device,
        args.batch,
        args.patch,
        args.repeats,
        args.steps,
        args.frames,
        args.size,
        threads,
        args.workers,
        data_only=args.data_only,
        compile_model=args.compile,
    )
    print(format_report(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
