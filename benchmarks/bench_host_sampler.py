"""Host-resident vs device-resident sampling on a memory-mapped movie larger than a small GPU \
(issue 13).

    python -m benchmarks.bench_host_sampler [--gb 1.6] [--size 2048] [--batch 128] [--patch 96] \
        [--device auto]

Writes a uint16 (T, size, size) TIFF of about `--gb` GB (200 x 2048 x 2048 = 1.6 GB by default) to a
temporary folder with tifffile (smooth random frames, written frame by frame through a memory map),
then for each storage mode builds a `PairSampler` on the file and reports: set-up seconds
(percentiles, and in device mode the normalised float32 copy), pairs/s over `--batches` batches
after 2 warm-up batches, the peak host RSS (each mode runs in its own process) and the device memory
(CUDA: peak allocated; CPU: the sampler's `nbytes`). The file is read back through the page cache
when it fits in RAM (it was just written): a cold read from disk is slower. Not a test: the figures
go into the notes of issue 13.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

from tapkit.runtime import pick_device
from tapkit.ssl.sampler import PairSampler


def write_movie(path: Path, gb: float, size: int, seed: int = 0) -> tuple[int, int, int]:
    """A uint16 (T, size, size) TIFF of about `gb` GB, written frame by frame through tifffile's
    memory map."""
    import tifffile

    n_frames = max(2, int(round(gb * 1e9 / (2 * size * size))))
    rng = np.random.default_rng(seed)
    bases = [
        ndi.gaussian_filter(rng.normal(size=(size, size)).astype(np.float32), 3) for _ in range(4)
    ]
    bases = [(1000 + 30000 * (b - b.min()) / (np.ptp(b) + 1e-6)).astype(np.uint16) for b in bases]
    movie = tifffile.memmap(
        path, shape=(n_frames, size, size), dtype=np.uint16, photometric="minisblack"
    )
    for t in range(n_frames):  # cheap distinct frames: shifted copies of a few smooth ones
        movie[t] = np.roll(bases[t % len(bases)], (3 * t, 5 * t), axis=(0, 1))
    movie.flush()
    del movie
    return n_frames, size, size


def _reset_peak_rss() -> None:
    """Reset the peak resident set size (VmHWM) of this process (Linux; ignored elsewhere)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _rss_parts_gb() -> dict:
    """Resident memory now, anonymous (the process's own) and file-backed (mapped movie pages,
    reclaimable), GB."""
    try:
        fields = dict(
            line.split(":", 1)
            for line in Path("/proc/self/status").read_text().splitlines()
            if ":" in line
        )
        return {k: round(int(fields[k].split()[0]) * 1024 / 1e9, 3) for k in ("RssAnon", "RssFile")}
    except (OSError, KeyError, ValueError):
        return {}


def _peak_rss_gb() -> "float | None":
    """Peak resident set size since the last reset, in GB (Linux /proc/self/status VmHWM)."""
    try:
        line = next(
            x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:")
        )
        return int(line.split()[1]) * 1024 / 1e9
    except (OSError, StopIteration):
        return None


def measure(
    path: Path, storage: str, device: torch.device, batch: int, patch: int, batches: int
) -> dict:
    """Set-up time, pairs/s, peak host RSS and device memory of one storage mode."""
    _reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    sampler = PairSampler(
        str(path), patch=patch, batch_size=batch, device=device, storage=storage, seed=0
    )
    setup = time.perf_counter() - start
    for _ in range(2):  # warm-up (and, in host mode, the first prefetch)
        sampler.sample()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(batches):
        x, _ = sampler.sample()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    device_gb = (
        torch.cuda.max_memory_allocated(device) if device.type == "cuda" else sampler.nbytes
    ) / 1e9
    result = {
        "storage": storage,
        "setup_s": round(setup, 2),
        "pairs_per_s": round(batch * batches / seconds, 1),
        "peak_host_rss_gb": _peak_rss_gb(),
        "device_gb": round(device_gb, 3),
        "checksum": float(x.sum()),
        **_rss_parts_gb(),
    }
    del sampler, x
    return result


def _measure_in_child(path: Path, mode: str, args: argparse.Namespace) -> dict:
    """`measure` in a fresh Python process, so that its peak RSS is this mode's alone."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_host_sampler",
        "--measure",
        str(path),
        "--modes",
        mode,
        "--device",
        args.device,
        "--batch",
        str(args.batch),
        "--patch",
        str(args.patch),
        "--batches",
        str(args.batches),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: "list[str] | None" = None) -> list[dict]:
    """Write the movie, measure both modes, print a table (and `--json FILE`)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--gb", type=float, default=1.6, help="movie size in GB (uint16; default 1.6)"
    )
    parser.add_argument(
        "--size", type=int, default=2048, help="frame side in pixels (default 2048)"
    )
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument(
        "--batches", type=int, default=10, help="timed batches per mode (after 2 warm-up batches)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--modes", default="device,host", help="comma-separated storage modes, in order"
    )
    parser.add_argument(
        "--dir", default=None, help="folder for the temporary movie (default: the system's)"
    )
    parser.add_argument("--json", default=None, help="write the figures to this file")
    # internal: one mode on this file
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        row = measure(
            Path(args.measure),
            args.modes,
            pick_device(args.device, verbose=False),
            args.batch,
            args.patch,
            args.batches,
        )
        print(json.dumps(row))
        return [row]
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="tapkit-bench-") as tmp:
        path = Path(tmp) / "movie.tif"
        start = time.perf_counter()
        shape = write_movie(path, args.gb, args.size)
        print(
            f"wrote {shape} uint16 = {path.stat().st_size / 1e9:.2f} GB "
            f"in {time.perf_counter() - start:.0f} s "
            f"to {path}; device {device}, torch threads {torch.get_num_threads()}"
        )
        rows = [_measure_in_child(path, mode, args) for mode in args.modes.split(",")]
    print(
        f"{'storage':8} {'setup s':>8} {'pairs/s':>9} {'peak host RSS GB':>17} "
        f"{'anon / file GB at end':>22} "
        f"{'device GB':>10}"
    )
    for r in rows:
        parts = f"{r.get('RssAnon', float('nan')):.2f} / {r.get('RssFile', float('nan')):.2f}"
        print(
            f"{r['storage']:8} {r['setup_s']:8.1f} {r['pairs_per_s']:9.1f} "
            f"{r['peak_host_rss_gb'] or float('nan'):17.2f} "
            f"{parts:>22} {r['device_gb']:10.3f}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "shape": shape,
                    "batch": args.batch,
                    "patch": args.patch,
                    "device": str(device),
                    "rows": rows,
                },
                indent=2,
            )
        )
    return rows


if __name__ == "__main__":
    main()
