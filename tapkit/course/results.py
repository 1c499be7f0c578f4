"""Record a notebook's key numbers in a JSON file that the course runner collects into summary.json.

`record("tap", val_accuracy=0.81)` writes to `$TAPKIT_RESULTS` when it is set (the runner sets it
per notebook), otherwise to `<out_dir>/results.json`, where `out_dir` is the folder chosen by
`tapkit.course.configure` (default `runs/latest`). Sections and nested dicts are merged, so a
notebook can record a section piece by piece.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from tapkit.data.movie import InputError

RESULTS_ENV = "TAPKIT_RESULTS"
DEFAULT_OUT_DIR = "runs/latest"
_state: dict[str, Any] = {"out_dir": None}


def set_out_dir(out_dir: "str | os.PathLike") -> None:
    """Remember the notebook's output folder (called by `tapkit.course.configure`)."""
    _state["out_dir"] = Path(out_dir)


def results_path() -> Path:
    """Where `record` writes: $TAPKIT_RESULTS, else <out_dir>/results.json."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env)
    return Path(_state["out_dir"] or DEFAULT_OUT_DIR) / "results.json"


def to_jsonable(value: Any) -> Any:
    """Convert numpy/torch scalars and arrays, tuples and paths into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    # a torch tensor, without importing torch
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":  # numpy scalar or array
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value  # NaN is not valid JSON; inf is kept by json
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise InputError(
        f"record: cannot store a value of type {type(value).__name__} ({value!r:.60}). "
        "Record numbers, strings, lists or dicts of them, e.g. float(x) or x.tolist()."
    )


def deep_merge(base: dict, new: dict) -> dict:
    """Merge `new` into `base` in place: nested dicts are merged, everything else replaced."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def load_results(path: "str | os.PathLike | None" = None) -> dict:
    """Read a results file (default: where `record` writes); an empty dict if it does not exist."""
    path = Path(path) if path is not None else results_path()
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as err:
        raise InputError(
            f"results file {path} is not valid JSON ({err}); delete it and re-run."
        ) from err


def _write_json(data: dict, path: Path) -> None:
    """Write JSON atomically (temporary file + os.replace) so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


def record(section: str, **values: Any) -> dict:
    """Merge `values` into `section` of the results file and return the whole section."""
    if not isinstance(section, str) or not section:
        raise InputError(
            f"record: the section must be a non-empty string like 'tap', got {section!r}."
        )
    if not values:
        raise InputError(
            f"record({section!r}): give at least one value, e.g. record('tap', val_accuracy=0.8)."
        )
    path = results_path()
    data = load_results(path)
    deep_merge(data, {section: to_jsonable(values)})
    _write_json(data, path)
    return data[section]
