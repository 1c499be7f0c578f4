"""Run the whole course: validate every parameter, execute the notebooks with papermill, resume an
unfinished run.

CLI side only (imports papermill); the notebooks' kernel never imports this module. `summary.json`
records which run (profile, params, notebooks, seconds each), which machine (CPU, cores, torch,
device) and which commit (written by `course.summary`), so `scripts/write_results.py` can turn it
into docs/RESULTS.md. Student copies: `course.student`.

A run folder also holds `run.json` (written atomically at the start and after every notebook): the
run's parameters (profile, notebooks, params, dry run) and each notebook's status. `resume=True`
(`tapkit course run --resume --out runs/NAME`) reruns the notebooks that did not finish, with those
parameters, and sets $TAPKIT_RESUME so that the pretraining continues from its checkpoints.
"""

from __future__ import annotations

import ast
import os
import time
from pathlib import Path
from typing import Any, Literal

import tapkit.course.profiles as profiles
import tapkit.course.results as results
from tapkit.course.notebooks import parameter_values, select_notebooks
from tapkit.course.parameters import check_parameters, writable_folder
from tapkit.course.summary import git_commit, machine_info, summary_device, write_summary
from tapkit.data.movie import InputError

RUN_FILE = "run.json"  # the run's parameters and each notebook's status, in the run folder
# "1" in the kernels of a resumed run: pretraining continues from its checkpoints
RESUME_ENV = profiles.RESUME_ENV


def validate_params(params: dict, notebooks: list[Path], profile: str) -> dict:
    """Check runner parameters before any notebook runs: known names, then every value
    (parameters.CHECKS)."""
    params = dict(params or {})
    for reserved in ("profile", "out_dir"):
        if reserved in params:
            raise InputError(
                f"-p {reserved}=...: set this with --{reserved.replace('_dir', '')} instead."
            )
    declared = {p.name: parameter_values(p) for p in notebooks}
    known = set().union(*declared.values()) if declared else set()
    unknown = sorted(set(params) - known)
    if unknown:
        raise InputError(
            f"Unknown parameter(s) {', '.join(unknown)}: not in the `parameters` cell of "
            f"{', '.join(declared)}. Known: {', '.join(sorted(known)) or 'none'}."
        )
    prof = profiles.get_profile(profile)
    # each notebook's defaults + the -p values, as that notebook will see them
    for defaults in declared.values():
        own = {k: v for k, v in params.items() if k in defaults}
        check_parameters(
            {**{k: v for k, v in defaults.items() if k not in ("profile", "out_dir")}, **own}, prof
        )
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
        pm.execute_notebook(
            str(path),
            str(out / path.name),
            parameters=parameters,
            cwd=str(path.parent),
            kernel_name=kernel_name,
            language=language,
            progress_bar=True,
        )
    except pm.PapermillExecutionError as err:
        entry = {"status": "failed", "error": f"cell {err.exec_count}: {err.ename}: {err.evalue}"}
    except Exception as err:  # kernel died, missing kernel, ...: report and go on with the next one
        entry = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    entry["seconds"] = round(time.perf_counter() - start, 2)
    return entry


def _dry(dry_run: "bool | str") -> "bool | str":
    """The dry-run mode as stored in run.json and summary.json: False, True or 'short'."""
    if dry_run not in (False, True, "short", None):
        raise InputError(
            f"dry_run={dry_run!r}: use False, True (every count cut) or 'short' "
            "(real sizes, a few steps)."
        )
    return "short" if dry_run == "short" else bool(dry_run)


def run_course(
    profile: str = "auto",
    only: "str | list[str] | None" = None,
    params: "dict | None" = None,
    out: "str | os.PathLike | None" = None,
    notebooks_dir: "str | os.PathLike | None" = None,
    kernel_name: "str | None" = None,
    dry_run: "bool | Literal['short']" = False,
    resume: bool = False,
    force: bool = False,
) -> dict:
    """Execute the course notebooks in order with papermill; write them and summary.json/.md to
    `out`.

    `dry_run=True` keeps the profile's architecture and sizes but cuts every count to a minimum
    (`profiles.DRY_RUN`): a quick check that the profile runs end to end, e.g. the gpu profile on a
    CPU. Its numbers mean nothing. `dry_run="short"` keeps every size of the profile (movie, batch,
    crop pairs) and cuts only steps, epochs, runs and budgets (`profiles.SHORT_RUN`): the gpu
    profile at its real sizes for a few steps per notebook (the GPU check). `resume=True` continues
    the run stored in `out` (see `resume_settings`; `force=True` lets other parameters than the
    stored ones through).

    Examples:
        >>> run_course("cpu", only="01,02", params={"seed": 3}, out="runs/workshop")
        >>> # after a disconnect: the unfinished notebooks only
        >>> run_course(out="runs/workshop", resume=True)
    """
    from tqdm.auto import tqdm

    profile = check_parameters({"profile": profile or "auto"}, {})["profile"]
    stored = None
    if resume:
        if out is None:
            raise InputError(
                "--resume needs the run folder: --out runs/NAME (the folder of the run to "
                "continue)."
            )
        stored = read_run(out)
        profile, only, params, dry_run = resume_settings(
            stored, profile, only, params, dry_run, force, notebooks_dir
        )
    notebooks = select_notebooks(only, notebooks_dir)
    params = validate_params(params or {}, notebooks, profile)
    out = writable_folder(out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"), "--out").resolve()
    run = {
        "profile": profiles.resolve_profile(profile),
        "notebook_list": [p.stem for p in notebooks],
        "params": results.to_jsonable(params),
        "params_repr": {k: _literal(v) for k, v in params.items()},
        "dry_run": _dry(dry_run),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "notebooks": {},
    }
    if stored is not None:
        run.update(
            started=stored["started"],
            notebooks=dict(stored["notebooks"]),
            resumed=stored.get("resumed", []) + [time.strftime("%Y-%m-%d %H:%M:%S")],
        )
    write_run(run, out)
    summary = {
        "profile": profile,
        "device": summary_device(params.get("device", "auto")),
        "out": str(out),
        "params": results.to_jsonable(params),
        "notebook_list": [p.stem for p in notebooks],
        "machine": machine_info(params.get("device", "auto")),
        "commit": git_commit(),
        "started": run["started"],
        "dry_run": _dry(dry_run),
        "notebooks": {},
        "results": {},
    }
    saved = {
        name: os.environ.get(name)
        for name in (results.RESULTS_ENV, profiles.DRY_RUN_ENV, RESUME_ENV)
    }
    # read by get_profile
    os.environ[profiles.DRY_RUN_ENV] = "short" if dry_run == "short" else "1" if dry_run else ""
    os.environ[RESUME_ENV] = "1" if resume else ""  # read by configure in the kernels
    try:
        for path in tqdm(notebooks, desc="course", unit="notebook"):
            entry = _resumed_or_run(path, out, run, params, profile, kernel_name, resume)
            summary["notebooks"][path.stem] = entry
            results.deep_merge(
                summary["results"], results.load_results(out / "results" / f"{path.stem}.json")
            )
    finally:
        for name, value in saved.items():
            _restore_env(name, value)
    summary["failed"] = [n for n, e in summary["notebooks"].items() if e["status"] != "ok"]
    write_summary(summary, out)
    return summary


def _resumed_or_run(
    path: Path,
    out: Path,
    run: dict,
    params: dict,
    profile: str,
    kernel_name: "str | None",
    resume: bool,
) -> dict:
    """A notebook's status entry: the stored one when a resumed run finished it, else run it
    (recorded in run.json)."""
    done = run["notebooks"].get(path.stem, {})
    if resume and done.get("status") == "ok":
        print(f"{path.stem}: finished in the stored run, skipped")
        return done
    if resume:
        print(
            f"{path.stem}: did not finish ({done.get('status', 'not started')}), running it again"
        )
        # no values of the interrupted attempt
        (out / "results" / f"{path.stem}.json").unlink(missing_ok=True)
    run["notebooks"][path.stem] = {"status": "running"}
    write_run(run, out)
    own = {k: v for k, v in params.items() if k in parameter_values(path)}
    entry = _run_one(path, out, dict(own, profile=profile, out_dir=str(out)), kernel_name)
    run["notebooks"][path.stem] = entry
    write_run(run, out)
    print(
        f"{path.stem}: {entry['status']} in {entry['seconds']:.0f} s"
        + (f" — {entry['error']}" if "error" in entry else "")
    )
    return entry


def _literal(value: Any) -> str:
    """A parameter value as Python literal text (`ast.literal_eval` gives it back; tuples stay
    tuples)."""
    text = repr(value)
    try:
        ast.literal_eval(text)
        return text
    except (ValueError, SyntaxError):  # e.g. a Path: stored as its JSON form
        return repr(results.to_jsonable(value))


def write_run(run: dict, out: "str | os.PathLike") -> None:
    """Write the run's parameters and notebook statuses to `out/run.json` atomically."""
    results._write_json(results.to_jsonable(run), Path(out) / RUN_FILE)


def read_run(out: "str | os.PathLike") -> dict:
    """The stored run of a run folder (for --resume), with a named error when there is none."""
    path = Path(out) / RUN_FILE
    if not path.is_file():
        raise InputError(
            f"--resume: there is no run to resume in {out} ({RUN_FILE} is missing). Start the run "
            f"without --resume, or give the folder of an earlier run with --out."
        )
    run = results.load_results(path)
    missing = {"profile", "notebook_list", "params_repr", "dry_run", "notebooks"} - set(run)
    if missing:
        raise InputError(
            f"--resume: {path} lacks {', '.join(sorted(missing))}; it was not written by "
            "`tapkit course run`. Start a new run without --resume."
        )
    return run


def resume_settings(
    stored: dict,
    profile: str,
    only: "str | list[str] | None",
    params: "dict | None",
    dry_run: bool,
    force: bool,
    notebooks_dir: "str | os.PathLike | None" = None,
) -> tuple:
    """(profile, only, params, dry_run) of a resumed run: the stored ones; others given are an error
    unless `force`.

    A profile of 'auto', no `only`, no params and no dry run mean "as stored"; with `force`, what is
    given replaces the stored values (params are merged).
    """
    stored_params = {k: ast.literal_eval(v) for k, v in stored["params_repr"].items()}
    changed = []
    if profile != "auto" and profiles.resolve_profile(profile) != stored["profile"]:
        changed.append(f"--profile {profile} (the run used {stored['profile']})")
    stems = None if only is None else [p.stem for p in select_notebooks(only, notebooks_dir)]
    if stems is not None and stems != stored["notebook_list"]:
        changed.append(
            f"--only {only} (the run used "
            f"{','.join(s.split('_')[0] for s in stored['notebook_list'])})"
        )
    given = validate_params(
        params or {},
        select_notebooks(stems or stored["notebook_list"], notebooks_dir),
        stored["profile"],
    )
    for key, value in given.items():
        if key not in stored_params or results.to_jsonable(value) != results.to_jsonable(
            stored_params[key]
        ):
            was = f"{stored_params[key]!r}" if key in stored_params else "the notebook's default"
            changed.append(f"-p {key}={value!r} (the run used {was})")
    if dry_run and _dry(dry_run) != stored["dry_run"]:
        was = {"short": "a short run", True: "a dry run"}.get(stored["dry_run"], "not a dry run")
        flag = "--short" if dry_run == "short" else "--dry-run"
        changed.append(f"{flag} (the run was {was})")
    if changed and not force:
        raise InputError(
            f"--resume: {'; '.join(changed)}. A resumed run keeps its stored parameters: drop "
            f"{'these' if len(changed) > 1 else 'it'}, or add --force to resume with the new "
            "value(s)."
        )
    if changed:
        print(f"tapkit: --force: resuming with {'; '.join(changed)}")
    return (
        stored["profile"] if profile == "auto" else profile,
        stems or stored["notebook_list"],
        {**stored_params, **given},
        _dry(dry_run) if dry_run else stored["dry_run"],
    )  # a different one was refused above unless forced


def _restore_env(name: str, value: "str | None") -> None:
    """Put an environment variable back as it was."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
