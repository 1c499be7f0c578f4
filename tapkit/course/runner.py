"""Run the whole course: execute the notebooks with papermill, write summary.json/.md, make student copies.

CLI side only (imports papermill); the notebooks' kernel never imports this module. `summary.json`
records which run (profile, params, notebooks, seconds each), which machine (CPU, cores, torch, device)
and which commit, so `scripts/write_results.py` can turn it into docs/RESULTS.md.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import tapkit.course.profiles as profiles
import tapkit.course.results as results
from tapkit.course.notebooks import list_notebooks, parameter_values, repo_root, select_notebooks
from tapkit.course.parameters import check_parameters, writable_folder
from tapkit.data.movie import InputError


def validate_params(params: dict, notebooks: list[Path], profile: str) -> dict:
    """Check runner parameters before any notebook runs: known names, then every value (parameters.CHECKS)."""
    params = dict(params or {})
    for reserved in ("profile", "out_dir"):
        if reserved in params:
            raise InputError(f"-p {reserved}=...: set this with --{reserved.replace('_dir', '')} instead.")
    declared = {p.name: parameter_values(p) for p in notebooks}
    known = set().union(*declared.values()) if declared else set()
    unknown = sorted(set(params) - known)
    if unknown:
        raise InputError(f"Unknown parameter(s) {', '.join(unknown)}: not in the `parameters` cell of "
                         f"{', '.join(declared)}. Known: {', '.join(sorted(known)) or 'none'}.")
    prof = profiles.get_profile(profile)
    for defaults in declared.values():  # each notebook's defaults + the -p values, as that notebook will see them
        own = {k: v for k, v in params.items() if k in defaults}
        check_parameters({**{k: v for k, v in defaults.items() if k not in ("profile", "out_dir")}, **own}, prof)
    return check_parameters(params, prof)


def _run_one(path: Path, out: Path, parameters: dict, kernel_name: "str | None") -> dict:
    """Execute one notebook with papermill into `out`; return its status entry (never raises)."""
    import papermill as pm

    import nbformat

    start, entry = time.perf_counter(), {"status": "ok"}
    bare = not nbformat.read(str(path), as_version=4).metadata.get("kernelspec")
    language = "python" if bare else None  # notebooks written without a kernelspec: default kernel
    kernel_name = kernel_name or ("python3" if bare else None)
    os.environ[results.RESULTS_ENV] = str(out / "results" / f"{path.stem}.json")
    try:
        pm.execute_notebook(str(path), str(out / path.name), parameters=parameters, cwd=str(path.parent),
                            kernel_name=kernel_name, language=language, progress_bar=True)
    except pm.PapermillExecutionError as err:
        entry = {"status": "failed", "error": f"cell {err.exec_count}: {err.ename}: {err.evalue}"}
    except Exception as err:  # kernel died, missing kernel, ...: report and go on with the next one
        entry = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    entry["seconds"] = round(time.perf_counter() - start, 2)
    return entry


def run_course(profile: str = "auto", only: "str | list[str] | None" = None, params: "dict | None" = None,
               out: "str | os.PathLike | None" = None, notebooks_dir: "str | os.PathLike | None" = None,
               kernel_name: "str | None" = None, dry_run: bool = False) -> dict:
    """Execute the course notebooks in order with papermill; write them and summary.json/.md to `out`.

    `dry_run=True` keeps the profile's architecture and sizes but cuts every count to a minimum
    (`profiles.DRY_RUN`): a quick check that the profile runs end to end, e.g. the gpu profile on a CPU.
    Its numbers mean nothing.

    Examples:
        >>> run_course("cpu", only="01,02", params={"seed": 3}, out="runs/workshop")
    """
    from tqdm.auto import tqdm

    profile = check_parameters({"profile": profile}, {})["profile"]
    notebooks = select_notebooks(only, notebooks_dir)
    params = validate_params(params or {}, notebooks, profile)
    out = writable_folder(out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"), "--out").resolve()
    summary = {"profile": profile, "device": _summary_device(params.get("device", "auto")),
               "out": str(out), "params": results.to_jsonable(params), "notebook_list": [p.stem for p in notebooks],
               "machine": machine_info(params.get("device", "auto")), "commit": git_commit(),
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "dry_run": bool(dry_run), "notebooks": {}, "results": {}}
    saved_env = os.environ.get(results.RESULTS_ENV)
    saved_dry = os.environ.get(profiles.DRY_RUN_ENV)
    os.environ[profiles.DRY_RUN_ENV] = "1" if dry_run else ""  # read by get_profile in the kernels
    try:
        for path in tqdm(notebooks, desc="course", unit="notebook"):
            own = {k: v for k, v in params.items() if k in parameter_values(path)}
            entry = _run_one(path, out, dict(own, profile=profile, out_dir=str(out)), kernel_name)
            summary["notebooks"][path.stem] = entry
            results.deep_merge(summary["results"], results.load_results(out / "results" / f"{path.stem}.json"))
            print(f"{path.stem}: {entry['status']} in {entry['seconds']:.0f} s" + (f" — {entry['error']}" if "error" in entry else ""))
    finally:
        _restore_env(results.RESULTS_ENV, saved_env)
        _restore_env(profiles.DRY_RUN_ENV, saved_dry)
    summary["failed"] = [n for n, e in summary["notebooks"].items() if e["status"] != "ok"]
    write_summary(summary, out)
    return summary


def machine_info(device: str = "auto") -> dict:
    """Which machine ran: CPU model, cores, Python, torch version and the device the notebooks use."""
    import torch

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():  # Linux: the model name
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "device": _summary_device(device),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def git_commit() -> str:
    """`git rev-parse HEAD` of the repository (with '+dirty' for uncommitted changes); 'unknown' outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _restore_env(name: str, value: "str | None") -> None:
    """Put an environment variable back as it was."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _summary_device(device: str) -> str:
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
    lines += [f"| {name} | " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |"
              for name, r in rows.items() if isinstance(r, dict)]
    return lines + [""]


def summary_markdown(summary: dict) -> str:
    """The course run as markdown: notebook status table, then one table per results section."""
    lines = [f"# tapkit course run — profile `{summary['profile']}`, device `{summary['device']}`", "",
             "| notebook | status | seconds | error |", "|---|---|---|---|"]
    for name, e in summary["notebooks"].items():
        lines.append(f"| {name} | {e['status']} | {e['seconds']:.1f} | {e.get('error', '')} |".replace("\n", " "))
    lines += ["", f"Failed: {', '.join(summary.get('failed', [])) or 'none'}", "", "## Results", ""]
    for section, values in summary["results"].items():
        flat = {k: v for k, v in values.items() if not isinstance(v, dict)} if isinstance(values, dict) else {}
        nested = {k: v for k, v in values.items() if isinstance(v, dict)} if isinstance(values, dict) else {}
        if flat:
            lines += _md_table(flat, section)
        if nested:
            lines += _md_table(nested, f"{section} (per entry)")
    return "\n".join(lines) + "\n"


def student_version(nb: Any) -> Any:
    """A copy of a notebook with `solution` cells replaced by '# your answer here' and outputs cleared."""
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.cells):
        if "solution" in cell.metadata.get("tags", []):
            tags = [t for t in cell.metadata["tags"] if t != "solution"] + ["answer"]
            new = nbformat.v4.new_code_cell("# your answer here", metadata={"tags": tags})
            if "id" in cell:
                new["id"] = cell["id"]
            nb.cells[i] = new
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    return nb


def write_student_copies(out: "str | os.PathLike" = "student", notebooks_dir: "str | os.PathLike | None" = None) -> list[Path]:
    """Write student copies of all course notebooks (solutions removed, outputs cleared) into `out`."""
    import nbformat

    out = writable_folder(out, "--out")
    written = []
    for path in list_notebooks(notebooks_dir):
        nb = student_version(nbformat.read(str(path), as_version=4))
        nbformat.write(nb, str(out / path.name))
        written.append(out / path.name)
    print(f"tapkit: wrote {len(written)} student notebooks to {out}")
    return written
