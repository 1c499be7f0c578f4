"""The GPU check in one command: `python -m benchmarks.gpu_check [--out gpu_check.json]` (or \
scripts/gpu_check.sh).

On a CUDA machine (under 8 minutes): the crop-pipeline benchmark at batch 128, patch 96 (pairs/s of
tapkit and of the reference loader, peak memory, the pipeline's share of a TAP training step, with
and without `torch.compile`); every notebook of the gpu profile at its real sizes for a few steps
(`tapkit course run --profile gpu --short`: status and seconds per notebook); then
`pytest -m gpu` (the whole gpu-profile course and its science checks) within the time left, which is
reported as unfinished when it needs longer. Writes one JSON report. `--tiny --device cpu` runs the
same path at toy sizes in seconds (CI: the smoke profile's notebook 00 stands in for the short run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench_pipeline import format_report, run_benchmark

__all__ = ["run_pytest_gpu", "run_short_course", "gpu_check", "main"]

TINY_MODEL = dict(n_depth=1, base_filters=4, n_features=4, backbone_features=4, head_features=4)


def run_pytest_gpu(timeout_s: float, tests: str = "tests") -> dict[str, Any]:
    """Run `pytest -m gpu` in a subprocess with a time limit; return its exit code, time and last
    lines."""
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-o", "addopts=", tests]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout_s, 1))
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        code, out = "timeout", f"{err.stdout or ''}\npytest -m gpu stopped after {timeout_s:.0f} s"
    out = out if isinstance(out, str) else out.decode(errors="replace")
    return dict(
        command=" ".join(cmd),
        returncode=code,
        seconds=time.perf_counter() - start,
        tail=out.strip().splitlines()[-15:],
    )


def run_short_course(timeout_s: float, tiny: bool, device: str) -> dict[str, Any]:
    """`tapkit course run --profile gpu --short` in a subprocess with a time limit; its per-notebook
    status and seconds."""
    import tempfile

    start = time.perf_counter()
    out = Path(tempfile.mkdtemp(prefix="gpu_check_short_"))
    cmd = [
        sys.executable,
        "-m",
        "tapkit",
        "course",
        "run",
        "--profile",
        "smoke" if tiny else "gpu",
        "--short",
        "--out",
        str(out),
        "-p",
        f"device={device}",
    ] + (["--only", "00"] if tiny else [])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout_s, 1))
        code, tail = proc.returncode, (proc.stdout + proc.stderr)[-2000:]
    except subprocess.TimeoutExpired:
        code, tail = "timeout", f"stopped after {timeout_s:.0f} s"
    summary_file = out / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    notebooks = {
        name: {k: e.get(k) for k in ("status", "seconds", "error")}
        for name, e in summary.get("notebooks", {}).items()
    }
    return {
        "returncode": code,
        "seconds": time.perf_counter() - start,
        "out": str(out),
        "notebooks": notebooks,
        "failed": summary.get("failed"),
        "tail": tail if code != 0 else "",
    }


def gpu_check(
    device: str = "auto", tiny: bool = False, budget_s: float = 450.0, tests: str = "tests"
) -> dict[str, Any]:
    """Benchmark (with and without torch.compile) then `pytest -m gpu` in the time left; return the
    report."""
    start = time.perf_counter()
    sizes = (
        dict(
            batch=4, patch=16, repeats=1, steps=1, frames=6, size=40, workers=0, model_kw=TINY_MODEL
        )
        if tiny
        else dict(batch=128, patch=96, repeats=3, steps=5, frames=64, size=512, workers=2)
    )
    report: dict[str, Any] = dict(
        host=platform.node(),
        python=platform.python_version(),
        torch=torch.__version__,
        cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        tiny=tiny,
    )
    compile_ok = hasattr(torch, "compile") and not (tiny and sys.platform == "win32")
    try:
        report["benchmark"] = run_benchmark(device, compile_model=compile_ok and not tiny, **sizes)
    except Exception as err:  # keep the report: say what failed
        report["benchmark_error"] = f"{type(err).__name__}: {err}"
    left = budget_s - (time.perf_counter() - start)
    report["short_run"] = run_short_course(left * 0.6, tiny, "cpu" if device == "cpu" else "auto")
    left = budget_s - (time.perf_counter() - start)
    report["pytest_gpu"] = run_pytest_gpu(left, tests)
    report["seconds"] = time.perf_counter() - start
    return report


def main(argv: "list[str] | None" = None) -> dict[str, Any]:
    """Command-line entry point: run the check, print a summary, write the JSON report."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cuda or cpu")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (seconds; for CI on a CPU)")
    parser.add_argument(
        "--budget",
        type=float,
        default=450.0,
        help="seconds for the whole check (pytest gets the rest)",
    )
    parser.add_argument("--tests", default="tests", help="the tests folder for pytest -m gpu")
    parser.add_argument("--out", default="gpu_check.json", help="the JSON report")
    args = parser.parse_args(argv)
    report = gpu_check(args.device, args.tiny, args.budget, args.tests)
    if "benchmark" in report:
        print(format_report(report["benchmark"]))
    else:
        print("benchmark failed:", report["benchmark_error"])
    short = report["short_run"]
    print(
        f"gpu profile at real sizes, a few steps per notebook: exit {short['returncode']} "
        f"in {short['seconds']:.0f} s; "
        + ", ".join(
            f"{n[:2]} {e['status']} {e['seconds'] or 0:.0f} s"
            for n, e in short["notebooks"].items()
        )
    )
    print(
        f"pytest -m gpu: exit {report['pytest_gpu']['returncode']} "
        f"in {report['pytest_gpu']['seconds']:.0f} s"
    )
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    print(f"report written to {os.path.abspath(args.out)} ({report['seconds']:.0f} s in all)")
    return report


if __name__ == "__main__":
    main()
