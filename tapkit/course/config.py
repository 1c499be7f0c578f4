"""Configure a notebook and give it its data and models: `configure`, `Config`, `load_data`,
`get_pretext_model`.

Parameters -> settings. A notebook's `parameters` cell holds `profile`, `data`, `seed`, `device`,
`out_dir`, `binning`, `channel`, notebook-only values and a few sizes named `<section>_<key>`; every
one is checked first (`tapkit.course.parameters`). `configure` maps each size that is not None onto
the profile section: `tap_epochs = 5` sets `cfg.tap["epochs"] = 5`, `sim_n_frames = 32` sets
`cfg.sim["n_frames"]`, `crops_n_pairs`, `heads_n_runs`, `gradcam_k` likewise (sections: sim, tap,
gradcam, crops, heads). None means "keep the profile's value". Profile keys are the keyword names of
the functions a section feeds (`train_tap`, `simulate_movie`, `gradcam_movie`), so notebooks pass
sections straight through.
"""

from __future__ import annotations

import dataclasses

import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tapkit.course.profiles as profiles
import tapkit.course.results as results
from tapkit.course.parameters import SECTIONS, check_parameters, section_overrides, tap_config
from tapkit.data.movie import InputError, Movie
from tapkit.runtime import seed_everything

BASE_DEFAULTS = {
    "profile": "auto",
    "data": "simulated",
    "seed": 0,
    "device": "auto",
    "out_dir": "runs/latest",
    "binning": None,
    "channel": None,
}


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
    # None: single-channel data; else the channel of a multi-channel TIFF
    channel: "int | None" = None
    # where the profile came from: 'parameter' or '$TAPKIT_PROFILE'
    profile_source: str = "parameter"
    sim: dict = field(default_factory=dict)
    tap: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)  # notebook 01's fresh-pair evaluation
    gradcam: dict = field(default_factory=dict)
    crops: dict = field(default_factory=dict)
    heads: dict = field(default_factory=dict)
    pretext: dict = field(default_factory=dict)
    own: dict = field(default_factory=dict)  # notebook 09 (your own movie)
    segmentation: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)

    @property
    def data_key(self) -> str:
        """A file-name-safe name of the data, used for checkpoints: 'simulated', 'hela-subset',
        ..."""
        return data_key(self.data)


def data_key(data: str) -> str:
    """File-name-safe key of a dataset name or path (a path gives its file/folder stem)."""
    text = str(data)
    path = Path(text).expanduser()
    if path.exists():  # a file gives its stem, a folder 'parent_name' (CTC: 'Fluo-N2DL-HeLa_01')
        text = path.stem if path.is_file() else f"{path.parent.name}_{path.name}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "data"


def _profile_source(requested: Any) -> str:
    """'$TAPKIT_PROFILE' when profile='auto' was resolved through the environment, else
    'parameter'/'auto'."""
    if str(requested).lower() != "auto":
        return "parameter"
    return (
        f"${profiles.PROFILE_ENV}" if os.environ.get(profiles.PROFILE_ENV) else "auto: GPU or not"
    )


def configure(namespace: dict, notebook: str) -> Config:
    """Validate a notebook's parameters, seed everything, pick the device, print a table; return a
    Config."""
    params = {**BASE_DEFAULTS, **{k: v for k, v in namespace.items() if not k.startswith("_")}}
    profile_name = check_parameters({"profile": params["profile"]}, {})["profile"]
    prof = profiles.get_profile(profile_name)
    params = check_parameters(params, prof)
    from tapkit.data.datasets import recommended

    advice = recommended(params["data"])
    prof["tap"].setdefault("val_at", advice["val_at"])  # real data: validate on the last frames
    # real data: datasets.REAL_DATA_TAP, real_epochs
    prof["tap"] = profiles.tap_for_data(prof["tap"], advice["tap"])
    overrides = section_overrides(params, prof)
    for section, values in overrides.items():
        prof[section].update(values)
    tap_config(prof["tap"])  # every training setting checked (named tap_<key>) before anything runs
    # `tapkit course run --resume`: continue unfinished checkpoints
    if os.environ.get(profiles.RESUME_ENV) == "1":
        prof["tap"]["resume"] = True
    from tapkit.runtime import pick_device

    try:
        device = pick_device(params["device"], verbose=False)
    except RuntimeError as err:
        raise InputError(str(err)) from err
    out_dir = Path(params["out_dir"])
    results.set_out_dir(out_dir)
    seed_everything(params["seed"])
    cfg = Config(
        notebook=str(notebook),
        profile=profile_name,
        device=device,
        seed=params["seed"],
        data=params["data"],
        out_dir=out_dir,
        binning=params["binning"],
        channel=params["channel"],
        profile_source=_profile_source(namespace.get("profile", "auto")),
        overrides={k: v for k, v in overrides.items() if v},
        **{s: prof[s] for s in SECTIONS},
    )
    print(format_config(cfg))
    if advice["tap"] and notebook in ("01", "09"):
        chosen = {k: prof["tap"][k] for k in (*advice["tap"], "epochs")}
        print(
            f"  TAP recipe for a real movie: {chosen} (datasets.REAL_DATA_TAP; "
            "tap_per_crop / tap_val_region / tap_epochs override it)"
        )
    return cfg


def format_config(cfg: Config) -> str:
    """The short table `configure` prints."""
    dry = (
        ""
        if not profiles.is_dry_run()
        else "; SHORT RUN: real sizes, a few steps, numbers mean nothing"
        if profiles.is_short_run()
        else "; DRY RUN: every count cut, numbers mean nothing"
    )
    rows = [
        ("notebook", cfg.notebook),
        ("profile", f"{cfg.profile}  (from {cfg.profile_source}{dry})"),
        ("device", _device_text(cfg.device)),
        ("data", cfg.data),
        ("seed", cfg.seed),
        ("out_dir", cfg.out_dir),
    ]
    rows += [
        (f"{s}_{k}", f"{v}  (override)") for s, kv in cfg.overrides.items() for k, v in kv.items()
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}} : {v}" for k, v in rows)


def _device_text(device: Any) -> str:
    """'cuda (NVIDIA H100)' / 'cpu (2 threads, bfloat16; ...)'."""
    import torch

    from tapkit.runtime import cpu_precision

    if getattr(device, "type", "") == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if getattr(device, "type", "") == "cpu":
        return (
            f"cpu ({torch.get_num_threads()} threads, {cpu_precision()}; "
            "no GPU: use the smoke or cpu profile)"
        )
    return str(device)


def load_data(cfg: Config, data: "str | None" = None, divisions_from_masks: bool = False) -> Movie:
    """Load `data` (default cfg.data), binned by cfg.binning (None: the dataset's recommended
    binning).

    Simulated movies use the profile's `sim` settings and cfg.seed; cfg.channel picks the channel of
    cfg.data when it is a multi-channel TIFF. divisions_from_masks: a movie with masks but no events
    gets division events derived from its masks (tapkit.data.divisions, at full resolution, before
    binning).
    """
    from tapkit.data import datasets

    name = cfg.data if data is None else datasets.resolve(data)
    if name.startswith("simulated"):
        movie = datasets.load(name, seed=cfg.seed, **cfg.sim)
    else:
        movie = datasets.load(
            name, **({} if cfg.channel is None or data is not None else {"channel": cfg.channel})
        )
    if divisions_from_masks and movie.events is None and movie.labels is not None:
        from tapkit.data.divisions import with_divisions

        movie = with_divisions(movie)
        print(
            f"tapkit: {name}: {len(movie.meta['divisions'].events)} divisions derived from its "
            "masks (tapkit.data.divisions: nuclei linked by overlap; a nucleus that splits is a "
            "division)"
        )
    factor = cfg.binning if cfg.binning is not None else datasets.recommended(name)["binning"]
    if factor > 1:
        binned = movie.bin(factor)
        if "divisions" in movie.meta:  # centroids in binned pixels, for plot_divisions
            found = movie.meta["divisions"]
            binned.meta["divisions"] = dataclasses.replace(
                found, events=[d._replace(y=d.y / factor, x=d.x / factor) for d in found.events]
            )
        print(
            f"tapkit: binned {name} {factor}x{factor}: {movie.shape[1:]} -> {binned.shape[1:]} px "
            "per frame (nuclei about as many pixels wide as the simulated ones; binning=1 keeps "
            "full resolution)"
        )
        movie = binned
    return movie


def segmentation_frames(cfg: Config, movie: Movie) -> Movie:
    """The frames of a real movie that notebooks 08 / 09 segment: all, or the first
    segmentation['real_frames']."""
    n = cfg.segmentation["real_frames"]  # None: every frame (cpu, gpu); smoke and dry runs: a few
    if n is None or len(movie) <= n:
        return movie
    print(
        f"tapkit: segmentation on the first {n} of {len(movie)} frames of {movie.name} (the "
        "profile's segmentation['real_frames']; None takes every frame)"
    )
    return movie.crop(t=slice(0, n))


def shipped_folder() -> Path:
    """The folder of the checkpoints shipped inside the package, `tapkit/checkpoints` (found by
    importlib.resources)."""
    # a wheel installs it as a plain folder
    return Path(str(resources.files("tapkit") / "checkpoints"))


def shipped_checkpoint(key: str, task: str = "tap") -> "Path | None":
    """The checkpoint `tapkit/checkpoints/<task>_<key>.pt` shipped with the package, if there is
    one."""
    path = shipped_folder() / f"{task}_{key}.pt"
    return path if path.is_file() else None


def task_options(cfg: Config, task: str) -> tuple[str, dict]:
    """(pretext name, model options) of a notebook-07 task name: 'tap', or a key of
    cfg.pretext['tasks']."""
    tasks = {"tap": {}, **cfg.pretext.get("tasks", {})}
    if task not in tasks:
        raise InputError(
            f"task={task!r} is not a pretext task of this profile; use one of {sorted(tasks)} "
            "(the profile's pretext['tasks'], plus 'tap')."
        )
    return task.split("-")[0], dict(tasks[task])


def train_pretext_model(cfg: Config, movie: Movie, checkpoint: Path, task: str = "tap") -> Any:
    """Train `task` with the profile's `tap` sizes and step budget (+ its options) and save it to
    `checkpoint`."""
    from tapkit.ssl.trainer import train

    pretext, options = task_options(cfg, task)
    config = tap_config(cfg.tap)
    network = (
        {"lam": 0.01, **config.model_kwargs}
        if pretext == "tap"  # train_tap's decorrelation weight
        else {**config.model_kwargs, **options}
    )
    config = config.replace(seed=cfg.seed, model_kwargs=network)
    model, _history = train(
        pretext,
        [movie],
        config=config,
        device=cfg.device,
        checkpoint=checkpoint,
        resume=bool(cfg.tap.get("resume", False)),
    )
    return model


def check_model_task(model: Any, path: Path, task: str) -> None:
    """Refuse a checkpoint of another pretext task ('mim-intensity' is MIM with
    masking='intensity')."""
    pretext, _, variant = task.partition("-")
    masking = model.config.get("masking")
    if model.name != pretext or (pretext == "mim" and masking != (variant or "random")):
        kind = f"{model.name!r}" + (f" (masking={masking!r})" if masking else "")
        raise InputError(
            f"{path} holds a {kind} model, not one of the task {task!r}. Move or delete that file, "
            "or use another out_dir."
        )


def check_model_binning(model: Any, path: Path, movie: "Movie | None") -> None:
    """Refuse frames binned differently from the frames the model (from `load_model`) was trained
    on."""
    trained, here = model.binning, None if movie is None else movie.meta.get("binning", 1)
    if None not in (trained, here) and trained != here:
        raise InputError(
            f"{path.name} was trained on frames binned {trained}x{trained}, but these frames are "
            f"binned {here}x{here}: nuclei would have another size in pixels than the model knows. "
            f"Set binning={trained} (the checkpoint's) in this notebook, or retrain in notebook 01 "
            "with the binning you want here."
        )


def get_pretext_model(
    cfg: Config, task: str = "tap", data: "str | None" = None, movie: "Movie | None" = None
) -> Any:
    """A trained model of `task`: out_dir/<task>_<data>.pt, else the shipped one, else a quick one
    (says which).

    task: 'tap' or a key of the profile's pretext['tasks'] ('mim', 'mim-intensity', 'contrastive').
    """
    from tapkit.ssl.trainer import load_model

    task_options(cfg, task)  # a named error for an unknown task, before anything is loaded
    key = data_key(data if data is not None else cfg.data)
    own = Path(cfg.out_dir) / f"{task}_{key}.pt"
    shipped = shipped_checkpoint(key, task)
    # an interrupted training is not a model
    interrupted = own.is_file() and not checkpoint_finished(own)
    found = (
        own
        if own.is_file() and not interrupted
        else None
        if interrupted and cfg.tap.get("resume")
        else shipped
    )
    if interrupted and found is None:
        print(
            f"tapkit: {own} is from an interrupted training; "
            + (
                "continuing it"
                if cfg.tap.get("resume")
                else "training again (`tapkit course run --resume` continues it)"
            )
        )
    if found is not None:
        model = load_model(found, cfg.device)
        check_model_task(model, found, task)
        check_model_binning(model, found, movie)
        model.checkpoint = found
        how = (
            f"loaded your model from notebook {'01' if task == 'tap' else '07'}: {own}"
            if found == own
            else f"loaded the shipped checkpoint {shipped}"
        )
    else:
        movie = movie if movie is not None else load_data(cfg, data)
        print(
            f"tapkit: no {task} checkpoint for {key!r} found; training a quick {task} model "
            f"({cfg.profile} profile) ..."
        )
        model, how = (
            train_pretext_model(cfg, movie, own, task),
            f"trained a quick model and saved it to {own}",
        )
        model.checkpoint = own
    print(f"tapkit: {how}")
    return model.eval()


def checkpoint_finished(path: "str | os.PathLike") -> bool:
    """Whether a training checkpoint has all its steps (scheduler at its T_max); shipped files
    without one count as finished."""
    from tapkit.ssl.checkpoint import load_checkpoint, training_finished

    return training_finished(load_checkpoint(path))


def training_steps(path: "str | os.PathLike") -> "int | None":
    """Optimisation steps a checkpoint was trained for (its scheduler, or the shipped file's
    settings)."""
    from tapkit.ssl.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if "scheduler" in state:
        return int(state["scheduler"]["last_epoch"])  # one scheduler step per optimisation step
    settings = state.get("meta", {}).get("settings", {})
    return int(settings["epochs"] * settings["steps_per_epoch"]) if "epochs" in settings else None


def get_tap_model(cfg: Config, data: "str | None" = None, movie: "Movie | None" = None) -> Any:
    """A trained TAPNet: out_dir/tap_<data>.pt from notebook 01, else the shipped one, else a quick
    one."""
    return get_pretext_model(cfg, "tap", data, movie)
