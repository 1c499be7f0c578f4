"""The course machinery: configure a notebook, load its data and TAP model, check exercises, run the course.

Parameters -> settings. A notebook's `parameters` cell holds `profile`, `data`, `seed`, `device`,
`out_dir` and a few sizes named `<section>_<key>`; `configure` maps each size that is not None onto
the profile section: `tap_epochs = 5` sets `cfg.tap["epochs"] = 5`, `sim_n_frames = 32` sets
`cfg.sim["n_frames"]`, `crops_n_pairs`, `heads_n_runs`, `gradcam_k` likewise
(sections: sim, tap, gradcam, crops, heads). None means "keep the profile's value". Keys the
profile does not define are added as given (plain numbers, strings, tuples and lists only).
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tapkit.course import profiles
from tapkit.course import results
from tapkit.data.movie import InputError, Movie
from tapkit.runtime import seed_everything

REPO = "tapkit-course/tapkit"
SECTIONS = ("sim", "tap", "gradcam", "crops", "heads")
BASE_PARAMS = ("profile", "data", "seed", "device", "out_dir")
KNOWN_DATASETS = ("simulated", "simulated-bleaching", "hela-subset")  # fallback if tapkit.data.datasets is absent
NOTEBOOK_RE = re.compile(r"^(\d\d)_.*\.ipynb$")


# ----------------------------------------------------------------------------------------------
# Links and locations
# ----------------------------------------------------------------------------------------------
def _nb_file(nb: str) -> str:
    """'01_tap_pretraining' or '01_tap_pretraining.ipynb' -> '01_tap_pretraining.ipynb'."""
    name = Path(nb).name
    return name if name.endswith(".ipynb") else f"{name}.ipynb"


def colab_url(nb: str) -> str:
    """The 'Open in Colab' link of a course notebook."""
    return f"https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{_nb_file(nb)}"


def binder_url(nb: str) -> str:
    """The 'Launch Binder' link of a course notebook."""
    return f"https://mybinder.org/v2/gh/{REPO}/HEAD?labpath=notebooks%2F{_nb_file(nb)}"


def repo_root() -> Path:
    """The repository folder next to the installed package (editable install), else the cwd."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "notebooks").is_dir() or (here / "data").is_dir() else Path.cwd()


def find_notebooks_dir(notebooks_dir: "str | os.PathLike | None" = None) -> Path:
    """The folder holding `NN_*.ipynb`: the given one, ./notebooks, the cwd, or beside the package."""
    if notebooks_dir is not None:
        candidates = [Path(notebooks_dir)]
    else:
        candidates = [Path.cwd() / "notebooks", Path.cwd(), repo_root() / "notebooks"]
    for folder in candidates:
        if folder.is_dir() and any(NOTEBOOK_RE.match(p.name) for p in folder.iterdir()):
            return folder
    raise InputError(
        f"No course notebooks (NN_name.ipynb) found in {', '.join(map(str, candidates))}. "
        "Run from the repository folder or pass notebooks_dir=..."
    )


def list_notebooks(notebooks_dir: "str | os.PathLike | None" = None) -> list[Path]:
    """All course notebooks `NN_*.ipynb` in order."""
    folder = find_notebooks_dir(notebooks_dir)
    return sorted(p for p in folder.iterdir() if NOTEBOOK_RE.match(p.name))


# ----------------------------------------------------------------------------------------------
# configure
# ----------------------------------------------------------------------------------------------
@dataclass
class Config:
    """A notebook's resolved settings: base parameters plus the profile sections with overrides."""

    notebook: str
    profile: str
    device: Any  # torch.device
    seed: int
    data: str
    out_dir: Path
    binning: "int | None" = None  # None: the dataset's recommended binning (datasets.recommended)
    sim: dict = field(default_factory=dict)
    tap: dict = field(default_factory=dict)
    gradcam: dict = field(default_factory=dict)
    crops: dict = field(default_factory=dict)
    heads: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)

    @property
    def data_key(self) -> str:
        """A file-name-safe name of the data, used for checkpoints: 'simulated', 'hela-subset', ..."""
        return data_key(self.data)


def data_key(data: str) -> str:
    """File-name-safe key of a dataset name or path (a path gives its file/folder stem)."""
    text = str(data)
    path = Path(text).expanduser()
    if path.exists():  # a file gives its stem, a folder 'parent_name' (CTC: 'Fluo-N2DL-HeLa_01')
        text = path.stem if path.is_file() else f"{path.parent.name}_{path.name}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "data"


def known_datasets() -> tuple[str, ...]:
    """Names `tapkit.data.datasets.load` understands (falls back to the core three)."""
    try:
        from tapkit.data.datasets import DATASETS
    except ImportError:
        return KNOWN_DATASETS
    return tuple(DATASETS)


def _check_tiff(path: Path) -> None:
    """Open a TIFF header cheaply; raise InputError if it is not a readable image."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0] if tif.series else None
            shape = series.shape if series is not None else ()
            if len(tif.pages):  # read the last frame only: catches damaged data, stays cheap
                tif.pages[len(tif.pages) - 1].asarray()
            uncompressed = len(tif.pages) and tif.pages.first.compression == 1
            if series is not None and uncompressed and series.nbytes > path.stat().st_size:
                raise ValueError(f"the header promises {series.nbytes} bytes of pixels, the file has "
                                 f"{path.stat().st_size} (truncated)")
    except Exception as err:  # tifffile raises several types for corrupt files
        raise InputError(f"data={str(path)!r} is not a readable TIFF ({type(err).__name__}: {err}). "
                         "Check the file is complete (re-download or re-export it).") from err
    if len(shape) < 2:
        raise InputError(f"data={str(path)!r}: the TIFF holds no image series; expected a (T, Y, X) movie.")


def validate_data(data: Any) -> str:
    """Accept a known dataset name or an existing TIFF / folder; raise InputError before anything long."""
    if not isinstance(data, (str, os.PathLike)):
        raise InputError(f"data must be a dataset name or a path, got {type(data).__name__} {data!r}.")
    text = os.fspath(data)
    names = known_datasets()
    canonical = {n.lower(): n for n in names}
    head, _, seq = text.partition("/")
    if text.lower() in canonical:
        return canonical[text.lower()]
    if re.fullmatch(r"\d\d", seq) and head.lower() in canonical and not Path(text).exists():
        return f"{canonical[head.lower()]}/{seq}"  # a CTC sequence such as 'Fluo-N2DL-HeLa/01'
    path = Path(text).expanduser()
    if not path.exists():
        raise InputError(
            f"data={text!r} is neither a dataset name nor an existing path. Use one of "
            f"{', '.join(map(repr, names))}, or the path of a TIFF movie, a folder of TIFF frames "
            "or a Cell Tracking Challenge sequence folder."
        )
    if path.is_file():
        if path.suffix.lower() not in (".tif", ".tiff"):
            raise InputError(f"data={text!r} is a {path.suffix or 'suffix-less'} file; tapkit reads TIFF "
                             "movies (.tif/.tiff), folders of TIFF frames or CTC sequence folders.")
        _check_tiff(path)
    elif not any(p.suffix.lower() in (".tif", ".tiff") for p in path.iterdir()):
        raise InputError(f"data={text!r} is a folder without .tif files; point to the folder that holds "
                         "the frames (for a CTC dataset: the sequence folder, e.g. .../01).")
    return str(path)


def _section_overrides(namespace: dict, profile: dict) -> dict[str, dict]:
    """Collect `<section>_<key>` parameters that are not None, checking types against the profile."""
    out: dict[str, dict] = {s: {} for s in SECTIONS}
    for name, value in namespace.items():
        section, _, key = name.partition("_")
        if section not in SECTIONS or not key or value is None:
            continue
        if key not in profile[section] and not isinstance(value, (int, float, str, tuple, list)):
            continue  # e.g. `tap_model = ...` from a later cell when the configure cell is re-run
        default = profile[section].get(key)
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise InputError(f"{name}={value!r}: expected a non-negative number like the profile's {default!r} "
                             f"(or None to use the profile's value).")
        if isinstance(default, int) and numeric and isinstance(value, float) and not value.is_integer():
            raise InputError(f"{name}={value!r}: expected a whole number (the profile uses {default!r}).")
        if isinstance(default, (tuple, list)) and (not isinstance(value, (tuple, list)) or len(value) != len(default)):
            raise InputError(f"{name}={value!r}: expected {len(default)} values like the profile's {default!r}.")
        out[section][key] = type(default)(value) if numeric or isinstance(default, tuple) else value
    return out


def _check_base(profile: Any, seed: Any, out_dir: Any) -> str:
    """Validate the base parameters cheaply; return the resolved profile name."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed={seed!r}: use a non-negative whole number such as 0 or 42.")
    if not isinstance(out_dir, (str, os.PathLike)) or not os.fspath(out_dir):
        raise InputError(f"out_dir={out_dir!r}: give a folder path such as 'runs/latest'.")
    try:
        return profiles.resolve_profile(str(profile))
    except ValueError as err:
        raise InputError(str(err)) from err


def _check_binning(binning: Any) -> "int | None":
    """None or a whole number >= 1."""
    if binning is None:
        return None
    if isinstance(binning, bool) or not isinstance(binning, (int, np.integer)) or binning < 1:
        raise InputError(f"binning={binning!r}: use None (the dataset's recommended binning), 1 (full "
                         "resolution) or a whole number such as 2 (2 x 2 pixels become one).")
    return int(binning)


def configure(namespace: dict, notebook: str) -> Config:
    """Validate a notebook's parameters, seed everything, pick the device, print a table; return a Config."""
    get = namespace.get
    profile_name = _check_base(get("profile", "auto"), get("seed", 0), get("out_dir", "runs/latest"))
    data = validate_data(get("data", "simulated"))
    binning = _check_binning(get("binning"))
    prof = profiles.get_profile(profile_name)
    from tapkit.data.datasets import recommended

    prof["tap"].setdefault("val_at", recommended(data)["val_at"])  # real data: validate on the last frames
    overrides = _section_overrides(namespace, prof)
    for section, values in overrides.items():
        prof[section].update(values)
    from tapkit.runtime import pick_device

    try:
        device = pick_device(get("device", "auto"), verbose=False)
    except RuntimeError as err:
        raise InputError(str(err)) from err
    out_dir = Path(get("out_dir", "runs/latest")).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    results.set_out_dir(out_dir)
    seed = int(get("seed", 0))
    seed_everything(seed)
    cfg = Config(notebook=str(notebook), profile=profile_name, device=device, seed=seed, data=data,
                 out_dir=out_dir, binning=binning, overrides={k: v for k, v in overrides.items() if v},
                 **{s: prof[s] for s in SECTIONS})
    print(format_config(cfg))
    return cfg


def format_config(cfg: Config) -> str:
    """The short table `configure` prints."""
    rows = [("notebook", cfg.notebook), ("profile", cfg.profile), ("device", _device_text(cfg.device)),
            ("data", cfg.data), ("seed", cfg.seed), ("out_dir", cfg.out_dir)]
    rows += [(f"{s}_{k}", f"{v}  (override)") for s, kv in cfg.overrides.items() for k, v in kv.items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}} : {v}" for k, v in rows)


def _device_text(device: Any) -> str:
    """'cuda (NVIDIA H100)' / 'cpu (2 threads)'."""
    import torch

    if getattr(device, "type", "") == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if getattr(device, "type", "") == "cpu":
        return f"cpu ({torch.get_num_threads()} threads; no GPU: use the smoke or cpu profile)"
    return str(device)


# ----------------------------------------------------------------------------------------------
# Data and models
# ----------------------------------------------------------------------------------------------
def load_data(cfg: Config, data: "str | None" = None) -> Movie:
    """Load `data` (default cfg.data), binned by cfg.binning (None: the dataset's recommended binning).

    Simulated movies use the profile's `sim` settings and cfg.seed.
    """
    from tapkit.data import datasets

    name = cfg.data if data is None else validate_data(data)
    movie = datasets.load(name, seed=cfg.seed, **cfg.sim) if name.startswith("simulated") else datasets.load(name)
    factor = cfg.binning if cfg.binning is not None else datasets.recommended(name)["binning"]
    if factor > 1:
        binned = movie.bin(factor)
        print(f"tapkit: binned {name} {factor}x{factor}: {movie.shape[1:]} -> {binned.shape[1:]} px per frame "
              "(nuclei about as many pixels wide as the simulated ones; binning=1 keeps full resolution)")
        movie = binned
    return movie


def shipped_checkpoint(key: str) -> "Path | None":
    """The checkpoint `data/checkpoints/tap_<key>.pt` shipped with the repository, if present."""
    roots = [repo_root(), Path.cwd(), Path.cwd().parent]
    for root in roots:
        path = root / "data" / "checkpoints" / f"tap_{key}.pt"
        if path.is_file():
            return path
    return None


def _filter_kwargs(func: Callable, kwargs: dict) -> dict:
    """Keep only the keyword arguments `func` accepts (profile sections may carry extra keys)."""
    import inspect

    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in params}


def train_quick_tap(cfg: Config, movie: Movie, checkpoint: Path) -> Any:
    """Train a TAP model with the profile's `tap` settings and save it to `checkpoint`."""
    from tapkit.ssl.trainer import train_tap

    kwargs = dict(cfg.tap, device=cfg.device, seed=cfg.seed, checkpoint=checkpoint)
    model, _history = train_tap([movie], **_filter_kwargs(train_tap, kwargs))
    return model


def _warn_binning(model: Any, path: Path, movie: "Movie | None") -> None:
    """Say so when a model (from `load_tap`) was trained on frames binned differently from `movie`."""
    trained, here = model.binning, None if movie is None else movie.meta.get("binning", 1)
    if None not in (trained, here) and trained != here:
        print(f"tapkit: WARNING: {path.name} was trained on frames binned {trained}x{trained}, but these are binned "
              f"{here}x{here}: nuclei have another size in pixels than the model knows. Use the same `binning` "
              "as in notebook 01 (or retrain there).")


def get_tap_model(cfg: Config, data: "str | None" = None, movie: "Movie | None" = None) -> Any:
    """A trained TAPNet: out_dir/tap_<data>.pt from notebook 01, else the shipped one, else a quick one."""
    from tapkit.ssl.trainer import load_tap

    key = data_key(data if data is not None else cfg.data)
    own = Path(cfg.out_dir) / f"tap_{key}.pt"
    shipped = shipped_checkpoint(key)
    if own.is_file():
        model, how = load_tap(own, cfg.device), f"loaded your model from notebook 01: {own}"
        _warn_binning(model, own, movie)
    elif shipped is not None:
        model, how = load_tap(shipped, cfg.device), f"loaded the shipped checkpoint {shipped}"
        _warn_binning(model, shipped, movie)
    else:
        movie = movie if movie is not None else load_data(cfg, data)
        print(f"tapkit: no checkpoint for {key!r} found; training a quick TAP model ({cfg.profile} profile) ...")
        model, how = train_quick_tap(cfg, movie, own), f"trained a quick model and saved it to {own}"
    print(f"tapkit: {how}")
    return model.eval()


# ----------------------------------------------------------------------------------------------
# Exercises
# ----------------------------------------------------------------------------------------------
def _matches(answer: Any, expected: Any, tol: float) -> bool:
    """True when answer equals expected: numbers/arrays within tol, strings ignoring case and spaces."""
    if callable(expected):
        return bool(expected(answer))
    if isinstance(expected, str):
        return isinstance(answer, str) and answer.strip().lower() == expected.strip().lower()
    if isinstance(expected, (set, frozenset, dict)):
        return answer == expected
    a, e = np.asarray(answer), np.asarray(expected)
    if a.shape != e.shape:
        return False
    if np.issubdtype(e.dtype, np.number) and np.issubdtype(a.dtype, np.number):
        return bool(np.allclose(a, e, rtol=tol, atol=tol, equal_nan=True))
    return bool(np.array_equal(a, e))


def check(answer: Any, expected: Any, tol: float = 1e-6, hint: str = "", name: str = "answer") -> bool:
    """Friendly exercise feedback: print ✅ or ❌ (+ hint) and return True/False; never raises.

    `expected` may be a value (numbers and arrays are compared within `tol`, strings ignoring case)
    or a callable that takes the answer and returns True/False, e.g.
    `check(my_function, lambda f: f(2) == 4)` or `check(acc, lambda a: 0.5 < a <= 1)`.
    """
    if answer is None or answer is Ellipsis:
        print(f"❌ {name}: not answered yet — replace the `...`/None with your answer and re-run the cell.")
        return False
    try:
        ok = _matches(answer, expected, tol)
    except Exception as err:  # a learner's function may crash: report it, do not raise
        print(f"❌ {name}: checking raised {type(err).__name__}: {err}")
        ok = None
    if ok:
        print(f"✅ {name}: correct!")
        return True
    if ok is not None:
        shown = repr(answer)
        print(f"❌ {name}: not quite (got {shown[:80] + ('...' if len(shown) > 80 else '')}).")
    if hint:
        print(f"   Hint: {hint}")
    return False


# ----------------------------------------------------------------------------------------------
# Running the whole course
# ----------------------------------------------------------------------------------------------
def parameter_names(path: "str | os.PathLike") -> list[str]:
    """The names assigned in a notebook's cell tagged `parameters` (empty if there is none)."""
    import ast

    import nbformat

    nb = nbformat.read(os.fspath(path), as_version=4)
    names: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def select_notebooks(only: "str | list[str] | None" = None, notebooks_dir: "str | os.PathLike | None" = None) -> list[Path]:
    """The notebooks to run: all, or those whose number (or name) is listed in `only` ('01,02' or ['01'])."""
    nbs = list_notebooks(notebooks_dir)
    if only is None or only == "" or only == []:
        return nbs
    wanted = [w.strip() for w in (only.split(",") if isinstance(only, str) else only) if str(w).strip()]
    chosen = [p for p in nbs if any(p.name.startswith(str(w).zfill(2)) or p.stem == w for w in wanted)]
    missing = [w for w in wanted if not any(p.name.startswith(str(w).zfill(2)) or p.stem == w for p in nbs)]
    if missing:
        raise InputError(f"--only {','.join(missing)}: no such notebook. Available: "
                         f"{', '.join(p.name[:2] for p in nbs)}.")
    return chosen


def validate_params(params: dict, notebooks: list[Path], profile: str) -> dict:
    """Check runner parameters before any notebook runs: known names, existing data, sensible sizes."""
    params = dict(params or {})
    for reserved in ("profile", "out_dir"):
        if reserved in params:
            raise InputError(f"-p {reserved}=...: set this with --{reserved.replace('_dir', '')} instead.")
    declared = {p.name: set(parameter_names(p)) for p in notebooks}
    known = set().union(*declared.values()) if declared else set()
    unknown = sorted(set(params) - known)
    if unknown:
        raise InputError(f"Unknown parameter(s) {', '.join(unknown)}: not in the `parameters` cell of "
                         f"{', '.join(declared)}. Known: {', '.join(sorted(known)) or 'none'}.")
    if "data" in params:
        data = validate_data(params["data"])
        params["data"] = str(Path(data).resolve()) if Path(data).exists() else data
    if "seed" in params:
        _check_base(profile, params["seed"], "unused")
    _section_overrides(params, profiles.get_profile(profile))
    return params


def _run_one(path: Path, out: Path, parameters: dict, kernel_name: "str | None") -> dict:
    """Execute one notebook with papermill into `out`; return its status entry (never raises)."""
    import time

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
               kernel_name: "str | None" = None) -> dict:
    """Execute the course notebooks in order with papermill; write them and summary.json/.md to `out`."""
    import time

    from tqdm.auto import tqdm

    try:
        profile = profiles.resolve_profile(profile)
    except ValueError as err:
        raise InputError(str(err)) from err
    notebooks = select_notebooks(only, notebooks_dir)
    params = validate_params(params or {}, notebooks, profile)
    out = Path(out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary = {"profile": profile, "device": _summary_device(params.get("device", "auto")),
               "out": str(out), "params": results.to_jsonable(params), "notebooks": {}, "results": {}}
    saved_env = os.environ.get(results.RESULTS_ENV)
    try:
        for path in tqdm(notebooks, desc="course", unit="notebook"):
            own = {k: v for k, v in params.items() if k in parameter_names(path)}
            entry = _run_one(path, out, dict(own, profile=profile, out_dir=str(out)), kernel_name)
            summary["notebooks"][path.stem] = entry
            results.deep_merge(summary["results"], results.load_results(out / "results" / f"{path.stem}.json"))
            print(f"{path.stem}: {entry['status']} in {entry['seconds']:.0f} s" + (f" — {entry['error']}" if "error" in entry else ""))
    finally:
        _restore_env(results.RESULTS_ENV, saved_env)
    summary["failed"] = [n for n, e in summary["notebooks"].items() if e["status"] != "ok"]
    write_summary(summary, out)
    return summary


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


# ----------------------------------------------------------------------------------------------
# Student copies
# ----------------------------------------------------------------------------------------------
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

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in list_notebooks(notebooks_dir):
        nb = student_version(nbformat.read(str(path), as_version=4))
        nbformat.write(nb, str(out / path.name))
        written.append(out / path.name)
    print(f"tapkit: wrote {len(written)} student notebooks to {out}")
    return written
