"""Every notebook parameter checked before anything long runs: one table, parameter -> check.

`configure` (inside a notebook) and the course runner (before papermill starts) both call
`check_parameters`, so a bad value gives the same named error in both places. A check takes the
value and returns it cleaned (e.g. a data path made absolute) or raises `InputError` naming the
parameter and a fix. Section overrides `<section>_<key>` (e.g. `tap_epochs`) are checked against the
type of the profile's value; names with an entry in CHECKS get that check instead or in addition.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import tapkit.course.profiles as profiles
from tapkit.data.movie import InputError
from tapkit.validate import Check, choice, flag, is_whole, number, optional, optional_flag, whole

SECTIONS = (
    "sim",
    "tap",
    "evaluation",
    "gradcam",
    "crops",
    "heads",
    "pretext",
    "segmentation",
    "own",
)
DEVICES = ("auto", "cpu", "cuda", "mps")


def data_source(name: str, value: Any) -> str:
    """A dataset name or an existing TIFF / frame folder / CTC sequence (checked by
    datasets.resolve)."""
    from tapkit.data.datasets import resolve

    try:
        return resolve(value)
    except InputError as err:
        raise InputError(str(err).replace("data=", f"{name}=", 1)) from None


def optional_data_source(name: str, value: Any) -> "str | None":
    """None (skip that part) or a data source."""
    return None if value is None else data_source(name, value)


def profile_name(name: str, value: Any) -> str:
    """A profile: auto, smoke, cpu or gpu ('auto' resolved)."""
    try:
        return profiles.resolve_profile(str(value))
    except ValueError as err:
        raise InputError(f"{name}={value!r}: {err}") from None


def device_name(name: str, value: Any) -> str:
    """'auto', 'cpu', 'cuda', 'cuda:N' or 'mps' (availability is checked when the device is
    picked)."""
    text = str(value).lower()
    if not isinstance(value, str) or not (
        text in DEVICES or (text.startswith("cuda:") and text[5:].isdigit())
    ):
        raise InputError(
            f"{name}={value!r}: choose 'auto' (a GPU if there is one), 'cpu', 'cuda', 'cuda:1' or "
            "'mps'."
        )
    return value


def folder(name: str, value: Any) -> str:
    """A folder path that exists or can be made and written to (not an existing file)."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
        raise InputError(f"{name}={value!r}: give a folder path such as 'runs/latest'.")
    return os.fspath(writable_folder(value, name))


def writable_folder(path: "str | os.PathLike", name: str = "out_dir") -> Path:
    """Make `path` (and parents) if needed and check it is a folder we can write to; return it."""
    folder_path = Path(path).expanduser()
    if folder_path.exists() and not folder_path.is_dir():
        raise InputError(
            f"{name}={os.fspath(path)!r} is an existing file, not a folder. Choose a folder path, "
            "e.g. runs/my_run."
        )
    try:
        folder_path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(
            f"{name}={os.fspath(path)!r}: cannot create this folder ({err.strerror}). Choose a "
            "folder you can write to, e.g. runs/my_run."
        ) from None
    try:
        with tempfile.TemporaryFile(dir=folder_path):  # the one honest test of "can I write here"
            pass
    except OSError as err:
        raise InputError(
            f"{name}={os.fspath(path)!r} is read-only for you ({err.strerror}). Choose a folder "
            "you can write to, e.g. runs/my_run."
        ) from None
    return folder_path


def criteria() -> tuple:
    """The labelling criteria notebook 03 compares (from the criteria module)."""
    from tapkit.downstream.events.criteria import CRITERIA

    return CRITERIA


def augment_presets() -> tuple:
    """The augmentation presets a profile's `tap['augment']` may name
    (tapkit.ssl.augment.AUGMENT_PRESETS)."""
    from tapkit.ssl.augment import AUGMENT_PRESETS

    return AUGMENT_PRESETS


def pretext_names() -> tuple:
    """The pretext tasks notebook 09 can pretrain: 'tap' and notebook 07's tasks."""
    return ("tap", *profiles.pretext_tasks(warmup_steps=0))


def sim_size(name: str, value: Any) -> "tuple | None":
    """None or (Y, X), both >= 32 px (the simulator's smallest field)."""
    if value is None:
        return None
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(is_whole(v) and v >= 32 for v in value)
    ):
        raise InputError(
            f"{name}={value!r}: use two whole numbers >= 32 such as (128, 128), or None "
            "(the profile's size)."
        )
    return tuple(int(v) for v in value)


CHECKS: dict[str, Check] = {
    # shared by every notebook
    "profile": profile_name,
    "data": data_source,
    "seed": whole(0, example=42),
    "device": device_name,
    "out_dir": folder,
    "binning": whole(1, "the dataset's recommended binning", example=2),
    "channel": whole(0, "single-channel data", example=0),
    # notebook-only parameters
    # 00, 01: photobleaching rate per frame
    "bleaching": number(0.0, 1.0, high_open=True, example=0.02),
    "real_data": optional_data_source,  # 02
    "real_crop": whole(32, "256 px on a CPU, whole frames on a GPU", example=256),  # 02
    "threshold": whole(0, example=40),  # 03
    "train_heads": flag,  # 03
    "criterion": choice(criteria),  # 04
    "n_mistakes": whole(1, example=8),  # 05
    "n_bins": whole(2, example=15),  # 06
    "target_recall": number(0.0, 1.0, low_open=True, example=0.9),  # 06
    "pretext": choice(pretext_names),  # 09: the pretext task trained on your movie
    "export_features": flag,  # 09: write dense features and top regions for napari / Fiji
    # section overrides with more than a type check
    "sim_n_frames": whole(2, "the profile's value", example=32),
    "sim_size": sim_size,
    "tap_val_at": choice(("start", "end"), "'start' for simulated data, 'end' for real data"),
    "tap_augment": choice(augment_presets),  # AugmentConfig.named presets
    # every crop normalised on its own (default: True for real data, False for simulated)
    "tap_per_crop": optional_flag,
    # right part of every frame held out
    "tap_val_region": optional(number(0.0, 1.0, high_open=True, example=0.25)),
    "own_export_frames": whole(1, "the profile's value", example=8),  # 09
    "own_nucleus_frames": whole(1, "the profile's value", example=4),  # 09
}


def _section_value(name: str, value: Any, default: Any) -> Any:
    """Check a `<section>_<key>` override against the type of the profile's value."""
    numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    if numeric and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise InputError(
            f"{name}={value!r}: use a non-negative number like the profile's {default!r} "
            f"(or None to use the profile's value)."
        )
    if isinstance(default, int) and numeric and isinstance(value, float) and not value.is_integer():
        raise InputError(f"{name}={value!r}: use a whole number (the profile uses {default!r}).")
    if isinstance(default, (tuple, list)) and (
        not isinstance(value, (tuple, list)) or len(value) != len(default)
    ):
        raise InputError(
            f"{name}={value!r}: use {len(default)} values like the profile's {default!r}."
        )
    return type(default)(value) if numeric or isinstance(default, tuple) else value


def section_overrides(params: dict, profile: dict) -> dict[str, dict]:
    """{section: {key: value}} of the `<section>_<key>` parameters that are not None, each
    checked."""
    out: dict[str, dict] = {s: {} for s in SECTIONS}
    for name, value in params.items():
        section, _, key = name.partition("_")
        if section not in SECTIONS or not key or value is None:
            continue
        if key not in profile[section] and not isinstance(value, (int, float, str, tuple, list)):
            continue  # e.g. `tap_model = ...` from a later cell when the configure cell is re-run
        if name in CHECKS:
            value = CHECKS[name](name, value)
        if key in profile[section]:
            value = _section_value(name, value, profile[section][key])
        out[section][key] = value
    return out


NOT_TRAINING = (
    "resume",
    "real_epochs",
)  # `tap` keys that are no TrainConfig field (how to run; real movies' epochs)


def tap_config(tap: dict) -> Any:
    """A `tap` section (profile + overrides) as a checked `TrainConfig`; errors name `tap_<key>`."""
    from tapkit.ssl.train_config import TrainConfig

    return TrainConfig.from_dict(
        {k: v for k, v in tap.items() if k not in NOT_TRAINING}, prefix="tap_"
    )


def check_parameters(params: dict, profile: dict) -> dict:
    """Check every known parameter in `params`; return them cleaned. Unknown names pass untouched.

    With a profile, its `tap` section with the `tap_*` overrides must make a valid TrainConfig.
    """
    cleaned = {
        name: CHECKS[name](name, value) if name in CHECKS else value
        for name, value in params.items()
    }
    overrides = section_overrides(cleaned, profile)
    if "tap" in profile:
        tap_config({**profile["tap"], **overrides["tap"]})
    if (
        cleaned.get("channel") is not None
        and "data" in cleaned
        and not os.path.isabs(cleaned["data"])
    ):
        raise InputError(
            f"channel={cleaned['channel']!r}: data={cleaned['data']!r} has a single channel; "
            "channel= picks one channel of a multi-channel TIFF file. Use channel=None."
        )
    # a path: does it have that channel? (header only)
    if cleaned.get("channel") is not None and "data" in cleaned:
        from tapkit.data.datasets import resolve

        resolve(cleaned["data"], channel=cleaned["channel"])
    return cleaned
