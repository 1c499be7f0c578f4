"""What a course run leaves behind: `summary.json` and `summary.md` (which run, which machine, which
commit).

`scripts/write_results.py` turns a run's summary into docs/RESULTS.md; `summary_markdown` writes the
page (notebook statuses, the claims scorecard, one table per results section).
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import tapkit.course.results as results
from tapkit.course.notebooks import repo_root


def machine_info(device: str = "auto") -> dict:
    """Which machine ran: CPU model, cores, CPU arithmetic, Python, torch version and the device the
    notebooks use."""
    import torch

    from tapkit.runtime import cpu_precision

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():  # Linux: the model name
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
        cpu = next(
            (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu
        )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_precision": cpu_precision(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": summary_device(device),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def git_commit() -> str:
    """`git rev-parse HEAD` of the repository (with '+dirty' for uncommitted changes); 'unknown'
    outside git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def summary_device(device: str) -> str:
    """The device the notebooks will use, as text for the summary."""
    from tapkit.runtime import pick_device

    try:
        return str(pick_device(device, verbose=False))
    except RuntimeError:
        return str(device)


def write_summary(summary: dict, out: "str | os.PathLike") -> None:
    """Write `summary.json` and a readable `summary.md` into `out`."""
    out = Path(out)
    results._write_json(results.to_jsonable(summary), out / "summary.json")
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")


def _fmt(value: Any) -> str:
    """Numbers with 4 significant digits, lists of numbers likewise, anything else as text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _md_table(rows: dict, title: str) -> list[str]:
    """A markdown table of {row name: {column: value}}."""
    cols = sorted({c for r in rows.values() if isinstance(r, dict) for c in r})
    if not cols:
        return [f"### {title}", "", *(f"- {k}: {_fmt(v)}" for k, v in rows.items()), ""]
    lines = [f"### {title}", "", "| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [
        f"| {name} | " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |"
        for name, r in rows.items()
        if isinstance(r, dict)
    ]
    return lines + [""]


def summary_markdown(summary: dict, scorecard: bool = True) -> str:
    """The course run as markdown: notebook status table, the claims scorecard, then one table per
    results section.

    scorecard=False leaves the scorecard out (scripts/write_results.py puts it first on its page);
    the `claims` section is never repeated among the generic results.
    """
    from tapkit.course.claims import scorecard_section

    lines = [
        f"# tapkit course run — profile `{summary['profile']}`, device `{summary['device']}`",
        "",
        "| notebook | status | seconds | error |",
        "|---|---|---|---|",
    ]
    for name, e in summary["notebooks"].items():
        lines.append(
            f"| {name} | {e['status']} | {e['seconds']:.1f} | {e.get('error', '')} |".replace(
                "\n", " "
            )
        )
    lines += ["", f"Failed: {', '.join(summary.get('failed', [])) or 'none'}", ""]
    if scorecard:
        lines += [scorecard_section(summary["results"].get("claims"))]
    lines += ["## Results", ""]
    for section, values in summary["results"].items():
        if section == "claims":
            continue
        flat = (
            {k: v for k, v in values.items() if not isinstance(v, dict)}
            if isinstance(values, dict)
            else {}
        )
        nested = (
            {k: v for k, v in values.items() if isinstance(v, dict)}
            if isinstance(values, dict)
            else {}
        )
        if flat:
            lines += _md_table(flat, section)
        if nested:
            lines += _md_table(nested, f"{section} (per entry)")
    return "\n".join(lines) + "\n"
