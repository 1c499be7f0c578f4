"""Checkpoints that never lose a learner's work: written atomically, read with clear errors."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from tapkit.data.movie import InputError


def save_checkpoint(state: dict[str, Any], path: "str | os.PathLike") -> Path:
    """Write `state` with torch.save to a temp file beside `path`, fsync, then rename over `path`.

    A crash or a Colab disconnect in the middle leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: "str | os.PathLike", map_location: "str | torch.device" = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; missing or corrupt files raise InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Checkpoint {path} does not exist. Train a model first (notebook 01) or check the path.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated zip, pickle garbage, ...
        raise InputError(f"Checkpoint {path} cannot be read ({type(err).__name__}: {err}). The file is corrupt "
                         "or not a tapkit checkpoint: delete it and train again.") from err
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise InputError(f"{path} is not a tapkit TAP checkpoint (no 'model' and 'config' entries).")
    return state


def training_finished(state: dict[str, Any]) -> bool:
    """Whether a checkpoint's training ran all its steps (scheduler at its T_max); files without a scheduler count as finished."""
    scheduler = state.get("scheduler")
    return scheduler is None or int(scheduler["last_epoch"]) >= int(scheduler["T_max"])
