"""Checkpoints that never lose a learner's work, and files that cannot run code: written atomically,
read with `torch.load(weights_only=True)`, refused with a clear InputError when they hold anything
else.

Every `.pt` file tapkit writes (training checkpoints, shipped models, event runs, saved heads) holds
tensors and plain Python values only (dict, list, tuple, str, int, float, bool, None);
`save_checkpoint` refuses to write anything else. `read_torch_file` is the one place that reads
them: a file that holds a class or a function -- pickled code, the way a crafted file runs commands
on `torch.load` -- is refused before anything in it is unpickled. Files written before every array
became a tensor hold numpy arrays of numbers; those few numpy types are allowed too
(object arrays are not).
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from tapkit.data.movie import InputError

PLAIN = (str, int, float, bool, type(None))  # besides tensors and dict / list / tuple of them


class UntrustedFileError(InputError):
    """A file that holds more than tensors and plain values: refused without unpickling it."""


class UnreadableFileError(InputError):
    """A file that is not a torch.save zip file, or a damaged one."""


def _numpy_globals() -> list:
    """The numpy types of numeric arrays and scalars (older tapkit files), under numpy 1 and
    2 module names."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray
    reconstruct, scalar = multiarray._reconstruct, multiarray.scalar
    dtypes = [
        type(np.dtype(t))
        for t in ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")
    ]
    names = [
        (f, f"{m}.multiarray.{f.__name__}")
        for f in (reconstruct, scalar)
        for m in ("numpy.core", "numpy._core")
    ]
    return [np.ndarray, np.dtype, *dtypes, *names]


def describe(obj: Any) -> str:
    """A short description of what a file holds: 'a dict with keys 'a', 'b'', 'a list', ..."""
    if isinstance(obj, Mapping):
        keys = ", ".join(repr(k) for k in list(obj)[:8]) + (", ..." if len(obj) > 8 else "")
        return f"a dict with keys {keys}" if obj else "an empty dict"
    return f"a {type(obj).__name__}"


def check_plain(obj: Any, where: str = "state") -> None:
    """Raise TypeError unless `obj` is made of tensors and plain Python values
    (what weights_only loads)."""
    if isinstance(obj, torch.Tensor) or type(obj) in PLAIN:
        return
    if isinstance(obj, (dict, OrderedDict)):
        for k, v in obj.items():
            check_plain(k, f"{where} key"), check_plain(v, f"{where}[{k!r}]")
    elif type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            check_plain(v, f"{where}[{i}]")
    else:
        raise TypeError(
            f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}: tapkit files hold "
            "tensors and plain Python values only (convert it before saving)."
        )


def save_checkpoint(state: dict[str, Any], path: "str | os.PathLike") -> Path:
    """Write `state` with torch.save to a temp file beside `path`, fsync, then rename over `path`.

    A crash or a Colab disconnect in the middle leaves the previous checkpoint intact. `state` must
    hold tensors and plain Python values only (TypeError otherwise), so that `read_torch_file` can
    read it.
    """
    check_plain(state)
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


def _refuse(path: Path, holds: str) -> UntrustedFileError:
    """The error for a file that holds more than tensors and plain values (`holds`: what else)."""
    return UntrustedFileError(
        f"{path} holds {holds}, not only tensors and plain values: it is not a file tapkit wrote, "
        "and loading it could run code, so it was not loaded. Delete it (or move it out of this "
        "folder) and use a file written by tapkit: train again, or take the shipped checkpoint."
    )


def read_torch_file(
    path: "str | os.PathLike", what: str = "file", map_location: "str | torch.device" = "cpu"
) -> Any:
    """What a tapkit `.pt` file holds, read with weights_only=True; anything but tensors and plain
    values is refused.

    Raises UntrustedFileError (an InputError) for a file that holds classes or functions, before any
    of it is unpickled, and UnreadableFileError for a missing, damaged or non-torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(
            f"{path} does not exist. Train a model first (notebook 01) or check the path."
        )
    if not zipfile.is_zipfile(path):
        raise UnreadableFileError(
            f"{path} cannot be read (not a torch.save zip file). The file is corrupt or "
            f"not a tapkit {what}: delete it and train again."
        )
    allowed = _numpy_globals()
    with torch.serialization.safe_globals(allowed):
        try:  # the pickle's globals, read without unpickling anything
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception as err:  # a damaged archive, a TorchScript file, ...
            raise UnreadableFileError(
                f"{path} cannot be read ({type(err).__name__}: {err}). The file is corrupt "
                f"or not a tapkit {what}: delete it and train again."
            ) from None
        if unsafe:
            raise _refuse(path, ", ".join(sorted(unsafe)))
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except (
            pickle.UnpicklingError
        ) as err:  # the restricted unpickler met something it may not build
            found = re.search(r"GLOBAL ([\w.]+)|got <class '([\w.]+)'>", str(err))
            raise _refuse(
                path,
                next(filter(None, found.groups()))
                if found
                else "objects that only a full unpickler builds",
            ) from None
        except Exception as err:  # truncated zip, bad storage, ...
            raise UnreadableFileError(
                f"{path} cannot be read ({type(err).__name__}: {err}). The file is corrupt "
                f"or not a tapkit {what}: delete it and train again."
            ) from err


def load_checkpoint(
    path: "str | os.PathLike", map_location: "str | torch.device" = "cpu"
) -> dict[str, Any]:
    """Read a model checkpoint written by `save_checkpoint` (weights_only); anything else raises
    InputError."""
    state = read_torch_file(path, "checkpoint", map_location)
    if (
        not isinstance(state, Mapping)
        or not isinstance(state.get("model"), Mapping)
        or not isinstance(state.get("config"), Mapping)
    ):
        raise InputError(
            f"{path} is not a tapkit model checkpoint: it holds {describe(state)} (a checkpoint "
            "has 'model' weights and a 'config'). Use a file written by notebook 01 / 07 or "
            "`tapkit train`."
        )
    return dict(state)


def load_weights(
    module: torch.nn.Module, weights: Any, path: "str | os.PathLike", what: str = "model"
) -> None:
    """`module.load_state_dict(weights)`, or one InputError naming the file and what does not fit
    (no key dump)."""
    own = module.state_dict()
    if not isinstance(weights, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        raise InputError(
            f"{path} holds no weights for the {what} (it holds {describe(weights)}): "
            "it is damaged or not a file tapkit wrote; delete it."
        )
    missing, extra = [k for k in own if k not in weights], [k for k in weights if k not in own]
    shapes = [k for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    if missing or extra or shapes:
        example = (
            f"; e.g. {shapes[0]!r} is {tuple(weights[shapes[0]].shape)} in the file, "
            f"{tuple(own[shapes[0]].shape)} here"
            if shapes
            else f"; e.g. {(missing or extra)[0]!r} is {'missing' if missing else 'unexpected'}"
        )
        raise InputError(
            f"{path} does not fit the {what}: {len(missing)} weight(s) missing, {len(extra)} "
            f"unexpected, {len(shapes)} of another shape{example}. It was written for another "
            "architecture or task, or is damaged: use a file written with these settings, or "
            "delete it."
        )
    module.load_state_dict(weights)


def training_finished(state: dict[str, Any]) -> bool:
    """Whether a checkpoint's training ran all its steps (scheduler at its T_max); files without a
    scheduler count as finished."""
    scheduler = state.get("scheduler")
    return scheduler is None or int(scheduler["last_epoch"]) >= int(scheduler["T_max"])
