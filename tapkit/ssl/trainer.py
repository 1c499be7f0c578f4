"""The pretraining loop, shared by every pretext task (no labels; downstream heads train in
`downstream.*.fit`): Adam, cosine learning rate, AMP on CUDA, a checkpoint after every epoch, exact
resume, history and progress bars. The task (`tapkit.ssl.pretext`) says how a batch is made from
the sampler's crops and what the loss is; `train_tap` is the course's named entry point for TAP.
Every setting that decides a training's result is a field of `TrainConfig`
(`tapkit.ssl.train_config`: documented, checked once, stored in the checkpoint); `train` takes one,
or its fields as keywords.

The same loop trains data-parallel when a process group exists (`tapkit.ssl.distributed.setup()`,
under torchrun): DistributedDataParallel around the loss, crops in shards (one crop stream per
shard, each rank draws its own), metrics averaged over ranks, and only rank 0 writes the checkpoint.
The design and what is identical to one process is in `tapkit.ssl.distributed`'s docstring.

Around the loop, each in its own module: what a checkpoint holds, resuming from it and rebuilding a
trained model (`tapkit.ssl.training_checkpoint`), the recipe a training stores (`tapkit.ssl.recipe`;
`planned_recipe` here: what `train` would store) and the memory check before anything is moved to
the device (`tapkit.ssl.memory`). `load_model`, `load_tap`, `load_train_config` and `check_memory`
are importable from here too, where the notebooks and the CLI call them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from tapkit.ssl import distributed

from tapkit.data.movie import InputError, Movie
from tapkit.runtime import amp_dtype, autocast, pick_device
from tapkit.ssl.movie_arrays import open_movie
from tapkit.ssl.memory import check_memory
from tapkit.ssl.pretext import PretextModel, build_model
from tapkit.ssl.recipe import NORMALIZATION, data_binning, movies_digest, training_recipe
from tapkit.ssl.sampler import PairSampler, region_fits
from tapkit.ssl.tap import TAPNet
from tapkit.ssl.train_config import FIELDS, TrainConfig, unknown_setting
from tapkit.ssl.training_checkpoint import (
    load_model,
    load_tap,
    load_train_config,
    resume_training,
    save_training,
)

__all__ = [  # the entry points (load_*: re-exported from tapkit.ssl.training_checkpoint)
    "train",
    "train_tap",
    "training_config",
    "planned_recipe",
    "check_memory",
    "load_model",
    "load_tap",
    "load_train_config",
]


def _validate(
    model: PretextModel, batches: list[dict], device: torch.device, amp: bool
) -> dict[str, float]:
    """Mean loss and metrics over fixed validation batches (eval-mode batch norm)."""
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    n = 0
    with torch.no_grad():
        for batch in batches:
            with autocast(device, amp):
                loss, metrics = model.loss(batch)
            size = len(next(iter(batch.values())))
            for k, v in {"loss": loss, **metrics}.items():
                sums[k] = sums.get(k, 0.0) + v.detach().float() * size
            n += size
    return {f"val_{k}": float(v) / max(n, 1) for k, v in sums.items()}


def _samplers(
    movies, val_movies, config: TrainConfig, val_region: float, device, shards=(0,), n_shards=1
) -> tuple[list[PairSampler], PairSampler]:
    """Training samplers of this process's `shards` (batch_size / n_shards crops each, seeds
    `distributed.shard_seed(seed, k)`) and the validation sampler (first or last frames of each
    movie, or separate val_movies; the whole batch, the same on every rank). `config.storage`: where
    the movies live (auto / device / host); the first sampler resolves 'auto' and the others follow
    it."""
    c = config
    common = dict(
        patch=c.patch, delta=c.delta, device=device, per_frame=c.per_frame, per_crop=c.per_crop
    )
    if val_movies is None:
        split = dict(val_fraction=c.val_fraction, val_at=c.val_at, val_region=val_region)
        val_args = dict(movies=movies, split="val", seed=c.seed, **split)
    else:
        split = dict(val_fraction=0.0)
        val_args = dict(
            movies=val_movies, split="train", val_fraction=0.0, augment=False, seed=c.seed + 1
        )
    train = []
    for k in shards:
        train.append(
            PairSampler(
                movies,
                split="train",
                augment=c.augment,
                reject_background=c.reject_background,
                seed=distributed.shard_seed(c.seed, k),
                batch_size=c.batch_size // n_shards,
                storage=train[0].storage if train else c.storage,
                **split,
                **common,
            )
        )
    return train, PairSampler(
        **val_args, batch_size=c.batch_size, storage=train[0].storage, **common
    )


def _fitting_region(movies: Any, patch: int, val_region: float, verbose: bool = True) -> float:
    """`val_region`, or 0 (with a note) when a movie is too narrow to hold it out and still give
    training crops."""
    if val_region <= 0:
        return val_region
    group = (
        [movies]
        if isinstance(movies, (Movie, np.ndarray, torch.Tensor, str, os.PathLike))
        else list(movies)
    )
    narrowest = min(open_movie(m, "train").shape[-1] for m in group)
    if not region_fits(narrowest, patch, val_region):
        if verbose:
            print(
                f"tapkit: frames {narrowest} px wide leave no room for a held-out region of "
                f"{val_region} of the width and training crops of {patch} px: training on whole "
                "frames, no region held out"
            )
        return 0.0
    return val_region


def training_config(
    config: "TrainConfig | Mapping | None" = None, settings: "Mapping | None" = None
) -> TrainConfig:
    """`config` (a TrainConfig, a dict of its fields or None: the defaults) with `settings` on top,
    checked.

    The cheap checks of a training (run before any data is moved or model built); an unknown name
    fails with the closest setting.
    """
    base = config.to_dict() if isinstance(config, TrainConfig) else dict(config or {})
    if isinstance(config, TrainConfig):
        base["augment"] = config.augment  # the object itself, not its dict
    for key in settings or {}:
        if key not in FIELDS:
            raise InputError(
                unknown_setting(key)
                + " Besides them train takes device, checkpoint, resume, progress."
            )
    return TrainConfig.from_dict({**base, **(settings or {})})


def train(
    pretext: str,
    movies: "Movie | np.ndarray | Sequence",
    val_movies: "Sequence | None" = None,
    config: "TrainConfig | None" = None,
    *,
    device: "str | torch.device" = "auto",
    checkpoint: "str | os.PathLike | None" = None,
    resume: bool = False,
    progress: bool = True,
    **settings: Any,
) -> tuple[PretextModel, dict]:
    """Pretrain the pretext task `pretext` on crops of `movies`; returns
    (model in eval mode, history).

    `config` (a `TrainConfig`; its fields can also be given as keywords, which win over `config`'s)
    holds every setting that decides the result: steps, batch, crops, validation, augmentation,
    normalisation, seed, network options. Every one is checked before any data is moved or model
    built.
    The history holds per-epoch lists: train_/val_ loss and every metric the task reports, lr,
    seconds.
    Validation crops come from `val_fraction` of the frames at the movie's start or end (`val_at`),
    or from `val_movies`; `val_region` > 0 also keeps the right-most part of every frame out of
    training (a spatial check: `evaluate_tap(split="region")`). Checkpoints (atomic, with the config
    and the recipe) after every epoch when `checkpoint` is a path; `resume=True` continues from it
    exactly.

    Data-parallel (inside a process group, see `tapkit.ssl.distributed`): `batch_size` is the global
    batch, made of `shards` (default: one per process) sub-batches with their own crop streams;
    `sync_bn=True` turns BatchNorm into SyncBatchNorm. One process with `shards=N` draws the crops
    of N.

    Examples:
        >>> model, history = train(
        ...     "tap", [movie], epochs=2, steps_per_epoch=50, checkpoint="runs/tap.pt"
        ... )
        >>> model, history = train(
        ...     "mim", [movie], config=TrainConfig(epochs=2, model_kwargs=dict(mask_ratio=0.5))
        ... )
    """
    if isinstance(val_movies, (TrainConfig, Mapping)):
        raise InputError(
            "train: the third argument is val_movies (movies to validate on), but it got training "
            "settings: pass them as config=... ."
        )
    c = training_config(config, settings)
    ctx = distributed.info()
    n_shards = distributed.check_shards(c.batch_size, c.shards, ctx.world_size)
    model = build_model(pretext, **{"seed": c.seed, **c.model_kwargs})  # checks the task's options
    model.check_crop(c.patch)
    device = pick_device(device, verbose=distributed.is_main())
    mine = distributed.rank_shards(n_shards, ctx.rank, ctx.world_size)
    val_region = _fitting_region(movies, c.patch, c.val_region, verbose=distributed.is_main())
    # checks the data
    train_s, val_s = _samplers(movies, val_movies, c, val_region, device, mine, n_shards)
    check_memory(
        c.batch_size // ctx.world_size, c.patch, sum(s.nbytes for s in train_s), model, device
    )
    torch.manual_seed(c.seed)
    model.binning = data_binning(movies)
    model.normalization = dict(NORMALIZATION, per_frame=c.per_frame, per_crop=c.per_crop)
    recipe = _recipe(pretext, model, movies, val_movies, c, n_shards, val_region, device)
    if c.sync_bn and ctx.enabled:
        # the same weights; statistics over all ranks
        model = distributed.sync_batchnorm(model, device)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=c.lr)
    total_steps = c.epochs * c.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=total_steps, eta_min=c.lr / 20
    )
    scaler = torch.amp.GradScaler("cuda", enabled=c.amp and device.type == "cuda")
    history: dict[str, list] = {}
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        start, history = resume_training(
            Path(checkpoint), model, optimizer, scheduler, scaler, dict(zip(mine, train_s))
        )
    # DDP syncs gradients in backward
    step_fn = distributed.wrap(model, device) if ctx.enabled else model.loss
    loss_fn = torch.compile(step_fn) if c.compile else step_fn
    g_val = torch.Generator(device=device).manual_seed(c.seed + 104729)
    # fixed
    val_batches = [model.make_batch(crops, g_val) for crops, _ in val_s.fixed_batches(c.val_steps)]
    for epoch in range(start, c.epochs):
        t0 = time.perf_counter()
        stats = _train_epoch(
            loss_fn,
            model,
            train_s,
            optimizer,
            scheduler,
            scaler,
            device,
            c.amp,
            c.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{c.epochs}",
            progress=progress and distributed.is_main(),
        )
        distributed.broadcast_buffers(model)  # every rank validates rank 0's model
        with torch.no_grad():
            stats.update(
                _validate(model, val_batches, device, c.amp),
                lr=scheduler.get_last_lr()[0],
                seconds=time.perf_counter() - t0,
            )
        for k, v in stats.items():
            history.setdefault(k, []).append(float(v))
        if checkpoint is not None:
            save_training(
                checkpoint,
                model,
                optimizer,
                scheduler,
                scaler,
                dict(zip(mine, train_s)),
                epoch + 1,
                history,
                model.normalization,
                recipe,
                c,
            )
    return model.eval(), history


def _recipe(
    pretext: str,
    model: PretextModel,
    movies: Any,
    val_movies: Any,
    c: TrainConfig,
    n_shards: int,
    val_region: float,
    device: torch.device,
) -> dict:
    """The recipe a training with these pieces stores: `training_recipe` of the settings that decide
    its result."""
    return training_recipe(
        pretext,
        model,
        movies_digest(movies, val_movies),
        epochs=c.epochs,
        steps_per_epoch=c.steps_per_epoch,
        batch_size=c.batch_size,
        patch=c.patch,
        delta=c.delta,
        lr=c.lr,
        val_steps=c.val_steps,
        val_fraction=c.val_fraction,
        val_at=c.val_at,
        seed=c.seed,
        augment=c.augment,
        per_frame=c.per_frame,
        per_crop=c.per_crop,
        val_region=val_region,
        reject_background=c.reject_background,
        shards=n_shards,
        amp=str(amp_dtype(device, c.amp)),
        sync_bn=c.sync_bn,
        binning=model.binning,
    )


def planned_recipe(
    pretext: str,
    movies: Any,
    val_movies: Any = None,
    config: "TrainConfig | None" = None,
    device: "str | torch.device" = "auto",
    **settings: Any,
) -> dict:
    """The recipe `train` would store for these arguments (one process), without training or moving
    data."""
    c = training_config(config, settings)
    model = build_model(pretext, **{"seed": c.seed, **c.model_kwargs})
    model.binning = data_binning(movies)
    n_shards = distributed.check_shards(c.batch_size, c.shards, distributed.info().world_size)
    val_region = _fitting_region(movies, c.patch, c.val_region, verbose=False)
    return _recipe(
        pretext,
        model,
        movies,
        val_movies,
        c,
        n_shards,
        val_region,
        pick_device(device, verbose=False),
    )


def train_tap(
    movies: "Movie | np.ndarray | Sequence",
    val_movies: "Sequence | None" = None,
    config: "TrainConfig | None" = None,
    lam: float = 0.01,
    **kwargs: Any,
) -> tuple[TAPNet, dict]:
    """Pretrain a TAPNet (time arrow prediction, decorrelation weight `lam`) with `train`; returns
    (model, history).

    `kwargs`: `train`'s (device, checkpoint, resume, progress and any TrainConfig field). A `lam` in
    `model_kwargs` wins over the argument.

    Examples:
        >>> model, history = train_tap(
        ...     [movie], epochs=2, steps_per_epoch=50, batch_size=16, patch=64
        ... )
        >>> history["val_accuracy"][-1]  # share of validation pairs whose order the model tells
    """
    options = kwargs.pop("model_kwargs", None)
    options = (config.model_kwargs if config is not None else {}) if options is None else options
    return train("tap", movies, val_movies, config, **kwargs, model_kwargs={"lam": lam, **options})


def _make_batch(model: PretextModel, samplers: list[PairSampler]) -> dict[str, torch.Tensor]:
    """This process's batch: every shard's crops made into the task's batch with its own generator,
    concatenated."""
    parts = []
    for sampler in samplers:
        crops, _ = sampler.sample()  # (B / shards, 2, C, P, P)
        parts.append(model.make_batch(crops, sampler.generator))
    return parts[0] if len(parts) == 1 else {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _train_epoch(
    loss_fn, model, samplers, optimizer, scheduler, scaler, device, amp, steps, desc, progress
) -> dict[str, float]:
    """One epoch of optimisation steps with a progress bar; returns the mean train loss and metrics
    (all ranks)."""
    model.train()
    sums: dict[str, torch.Tensor] = {}
    shown: dict[str, torch.Tensor] = {}
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for i in bar:
        batch = _make_batch(model, samplers)
        with autocast(device, amp):
            loss, metrics = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        for k, v in {"loss": loss, **metrics}.items():
            sums[k] = sums.get(k, 0.0) + v.detach().float()
        # every rank takes part in the all-reduce, rank 0 shows it
        if i % 10 == 0 or i == steps - 1:
            shown = distributed.mean_over_ranks(sums)
            if progress:
                bar.set_postfix({k: f"{float(v) / (i + 1):.3f}" for k, v in shown.items()})
    means = {f"train_{k}": float(v) / steps for k, v in shown.items()}
    if progress:
        print(
            f"{desc}, training batches: "
            + ", ".join(f"{k.removeprefix('train_')} {v:.3f}" for k, v in means.items())
        )
    return means
