"""`TrainConfig`: every setting of one pretraining run, documented and checked once
(like stardist's Config2D).

`tapkit.ssl.trainer.train(pretext, movies, config=TrainConfig(...))` trains with it; the keyword
form `train(pretext, movies, epochs=5, ...)` builds one. Every field is checked in `__post_init__`
with the package's checks (`tapkit.validate`, the same as the notebook parameters'), so a bad value
fails with a named error before any data is moved or model built. What depends on the data, the
model or the process group (a delta longer than the movie, a crop the network cannot take, shards vs
processes) is checked by `train` right after, still before the first step.

The checkpoint stores `to_dict()` under 'train_config' (plain values, `weights_only`-safe);
`TrainConfig.from_dict` reads it back and names any key it does not know.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from tapkit.data.movie import InputError
from tapkit.ssl.augment import AUGMENT_PRESETS, AugmentConfig
from tapkit.validate import choice, flag, number, whole

STORAGES = ("auto", "device", "host")  # where the sampler keeps the movies (tapkit.ssl.sampler)


@dataclass
class TrainConfig:
    """The settings of one pretraining run (`tapkit.ssl.trainer.train`): loop, crops, validation,
    network.

    Sizes are in pixels of the (binned) training movie, counts are whole numbers, fractions lie in
    [0, 1).

    Examples:
        >>> config = TrainConfig(epochs=2, steps_per_epoch=50, batch_size=16, patch=64)
        >>> TrainConfig.from_dict(config.to_dict()) == config
        True
    """

    # passes of `steps_per_epoch` steps; validation, history and a checkpoint after each (>= 1)
    epochs: int = 10
    # optimisation steps (batches) per epoch (>= 1)
    steps_per_epoch: int = 100
    # crop pairs per step, over all processes: the global batch (>= 1)
    batch_size: int = 64
    # crop side P in px: crops are (C, P, P), >= 8 and a size the task's network takes
    patch: int = 96
    # frame offsets of a pair (t, t + delta), each >= 1, e.g. 1 or (1, 2)
    delta: "int | tuple[int, ...]" = (1,)
    # Adam's first learning rate, in (0, 1); a cosine brings it to lr / 20 at the last step
    lr: float = 4e-4
    # fixed validation batches of `batch_size` pairs after every epoch (>= 1)
    val_steps: int = 10
    # share of each movie's frames held out for validation, in [0, 1) (ignored with val_movies)
    val_fraction: float = 0.1
    # where those frames are: 'start' (first frames) or 'end' (last frames: real movies)
    val_at: str = "start"
    # share of every frame's width (right-most columns) kept out of training, in [0, 1)
    val_region: float = 0.0
    # seeds the weights, the crop streams and the validation batches (>= 0): same seed, same run
    seed: int = 0
    # True / False, a preset (AUGMENT_PRESETS) or an AugmentConfig
    augment: "bool | str | AugmentConfig" = True
    # normalise every frame by its own percentiles (1, 99.8) instead of the whole movie's
    per_frame: bool = True
    # normalise every crop by its own percentiles: no frame-wide intensity cue (real movies)
    per_crop: bool = False
    # share of crops allowed to be background, in [0, 1); 0 keeps every crop
    reject_background: float = 0.0
    # options of the task's network (build_model keywords)
    model_kwargs: dict = field(default_factory=dict)
    # mixed precision on CUDA (bfloat16 / float16) and bfloat16 on CPUs with bf16 instructions
    amp: bool = True
    # torch.compile the loss (faster on a GPU after a slow first step; same numbers)
    compile: bool = False
    # crop streams making up the batch (>= 1; None: one per process); fix it to resume
    shards: "int | None" = None
    # SyncBatchNorm: batch statistics over all processes (data-parallel only)
    sync_bn: bool = False
    # where the sampler keeps the movies: 'auto', 'device' or 'host' (same crops)
    storage: str = "auto"

    def __post_init__(self) -> None:
        """Check every field (named error with a fix) and clean numbers to plain
        int / float / bool."""
        for name, check in _CHECKS.items():
            setattr(self, name, check(name, getattr(self, name)))

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any], prefix: str = "") -> "TrainConfig":
        """A TrainConfig from a dict (a checkpoint's 'train_config', a profile's `tap` section);
        unknown keys fail.

        `prefix` is put before the setting's name in errors, e.g. 'tap_' for a notebook's
        `tap_epochs`.
        """
        if not isinstance(settings, Mapping):
            raise InputError(
                f"{prefix or 'settings'}: expected a dict of training settings, got "
                f"{type(settings).__name__}."
            )
        unknown = [k for k in settings if k not in FIELDS]
        if unknown:
            raise InputError(unknown_setting(unknown[0], prefix))
        try:
            return cls(**settings)
        except InputError as err:
            raise InputError(f"{prefix}{err}") from None

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values (an AugmentConfig becomes a dict): what a checkpoint
        stores."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if isinstance(self.augment, AugmentConfig):
            out["augment"] = dataclasses.asdict(self.augment)
        out["model_kwargs"] = dict(self.model_kwargs)
        return out

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with `changes` applied and checked again; an unknown name fails with the known
        ones."""
        return TrainConfig.from_dict(
            {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, **changes}
        )


def config_of_checkpoint(state: Mapping[str, Any]) -> "TrainConfig | None":
    """The TrainConfig a checkpoint's training used: its 'train_config', else what older files hold
    (None if nothing).

    Older tapkit checkpoints hold a 'recipe' (settings, non-plain values as repr; amp only as the
    dtype it gave, so the default is kept); the shipped ones (scripts/make_checkpoints.py) 'meta'
    settings and seed.
    """
    if state.get("train_config") is not None:
        return TrainConfig.from_dict(state["train_config"])
    meta = state.get("meta") or {}
    if "settings" in meta:
        settings = {k: v for k, v in meta["settings"].items() if k in FIELDS}
        return TrainConfig.from_dict({**settings, "seed": meta.get("seed", 0)})
    recipe = state.get("recipe")
    if not recipe:
        return None
    settings = {k: recipe[k] for k in FIELDS if k in recipe and k != "amp"}
    if isinstance(settings.get("delta"), str):
        settings["delta"] = ast.literal_eval(settings["delta"])  # "(1,)"
    if isinstance(settings.get("augment"), str) and settings["augment"] not in AUGMENT_PRESETS:
        # an AugmentConfig's repr: not read back (the recipe still shows it)
        del settings["augment"]
    options = {
        k: v for k, v in (recipe.get("config") or state.get("config") or {}).items() if k != "seed"
    }
    return TrainConfig.from_dict({**settings, "model_kwargs": options})


def unknown_setting(key: str, prefix: str = "") -> str:
    """The error for a key that is not a TrainConfig field: the name, the closest field and the
    list."""
    close = difflib.get_close_matches(str(key), FIELDS, n=1, cutoff=0.5)
    hint = f"did you mean {prefix}{close[0]}? " if close else ""
    return (
        f"{prefix}{key}: not a training setting; {hint}TrainConfig has {', '.join(FIELDS)} "
        "(tapkit.ssl.train_config)."
    )


def frame_offsets(name: str, value: Any) -> "int | tuple[int, ...] | list[int]":
    """A check for `delta`: one whole number >= 1 or a non-empty list of them (kept as given)."""
    values = value if isinstance(value, (tuple, list)) else [value]
    if not values or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise InputError(
            f"{name}={value!r}: use a frame offset >= 1 or a list of them, e.g. 1 or (1, 2)."
        )
    return value


def augmentation(name: str, value: Any) -> "bool | str | AugmentConfig":
    """A check for `augment`: True / False, a preset name, an AugmentConfig or its dict
    (from a checkpoint)."""
    if isinstance(value, Mapping):
        try:
            return AugmentConfig(**value)
        except TypeError as err:
            raise InputError(
                f"{name}={dict(value)!r}: not the fields of an AugmentConfig ({err})."
            ) from None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, AugmentConfig) or value in AUGMENT_PRESETS:
        return value
    raise InputError(
        f"{name}={value!r}: use True / False, a preset name "
        f"({', '.join(map(repr, AUGMENT_PRESETS))}) or a tapkit.ssl.augment.AugmentConfig."
    )


def network_options(name: str, value: Any) -> dict:
    """A check for `model_kwargs`: a dict of keyword names (None: {}); the task checks the
    values."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InputError(
            f"{name}={value!r}: use a dict of network options, e.g. dict(base_filters=16)."
        )
    return dict(value)


def crop_streams(name: str, value: Any) -> "int | None":
    """A check for `shards`: None (one per process) or a whole number >= 1."""
    return whole(1, "one shard per process", example=2)(name, value)


_CHECKS = {
    "epochs": whole(1, example=10),
    "steps_per_epoch": whole(1, example=100),
    "batch_size": whole(1, example=64),
    "patch": whole(8, example=96, hint=" (crop side in px)"),
    "delta": frame_offsets,
    "lr": number(
        0.0, 1.0, low_open=True, high_open=True, example=4e-4, hint=" (the learning rate)"
    ),
    "val_steps": whole(1, example=10),
    "val_fraction": number(0.0, 1.0, high_open=True, example=0.1),
    "val_at": choice(("start", "end")),
    "val_region": number(0.0, 1.0, high_open=True, example=0.25),
    "seed": whole(0, example=0),
    "augment": augmentation,
    "per_frame": flag,
    "per_crop": flag,
    "reject_background": number(0.0, 1.0, high_open=True, example=0.5),
    "model_kwargs": network_options,
    "amp": flag,
    "compile": flag,
    "shards": crop_streams,
    "sync_bn": flag,
    "storage": choice(STORAGES),
}
FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))  # in declaration order
assert set(_CHECKS) == set(FIELDS), "every TrainConfig field has exactly one check"
