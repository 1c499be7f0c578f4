"""Notebook 09 (your own movie): resumable pretraining on it, and its top regions for any pretext
task.

Kernel side. `pretrain` keeps one checkpoint per task, data and binning in out_dir and always calls
the trainer with `resume=True`: a first run trains from scratch, an interrupted run continues from
its last finished epoch, a finished run loads (no training). `top_regions_movie` gives Grad-CAM
regions for TAP and, for tasks without a time-arrow head, the regions where the dense features
change most between frames t and t + 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tapkit.course.config import Config, data_key, segmentation_frames, task_options
from tapkit.course.parameters import tap_config
from tapkit.course.reuse import reuse_same_training
from tapkit.data.movie import Movie


def own_checkpoint(cfg: Config, movie: Movie, task: str) -> Path:
    """out_dir/own_<task>_<data>_bin<b>.pt: one file per task, data and binning."""
    return (
        Path(cfg.out_dir) / f"own_{task}_{data_key(cfg.data)}_bin{movie.meta.get('binning', 1)}.pt"
    )


def epochs_done(path: Path) -> int:
    """Finished epochs stored in a checkpoint (0 when there is none)."""
    from tapkit.ssl.checkpoint import load_checkpoint

    return int(load_checkpoint(path).get("epoch", 0)) if path.is_file() else 0


def pretrain(cfg: Config, movie: Movie, task: str = "tap") -> tuple[Any, dict, Path]:
    """Train `task` on `movie` with the profile's `tap` sizes, resuming from out_dir; (model,
    history, checkpoint)."""
    from tapkit.ssl.trainer import train

    pretext, options = task_options(cfg, task)
    checkpoint = own_checkpoint(cfg, movie, task)
    done, total = epochs_done(checkpoint), cfg.tap["epochs"]
    how = (
        "not trained here yet (notebook 01's identical training is reused if there is one)"
        if done == 0
        else f"already trained ({done} epochs): loading"
        if done >= total
        else f"continuing from epoch {done} of {total}"
    )
    print(
        f"tapkit: {task} on {movie.name} ({movie.shape[1]} x {movie.shape[2]} px frames): "
        f"{how} -> {checkpoint}"
    )
    config = tap_config(cfg.tap).replace(
        seed=cfg.seed, model_kwargs={**cfg.tap.get("model_kwargs", {}), **options}
    )
    # notebook 01's (07's) training of the course movie
    course = Path(cfg.out_dir) / f"{task}_{data_key(cfg.data)}.pt"
    reuse_same_training(checkpoint, [course], pretext, [movie], config=config, device=cfg.device)
    model, history = train(
        pretext, [movie], config=config, device=cfg.device, checkpoint=checkpoint, resume=True
    )
    return model.eval(), history, checkpoint


def change_map(model: Any, frame_t: np.ndarray, frame_t1: np.ndarray) -> np.ndarray:
    """(Y, X) how much the dense features change from frame t to t + 1: sum over F of
    |z(t + 1) - z(t)|."""
    from tapkit.ssl.features import embed

    z = embed(model, np.stack([frame_t, frame_t1]))  # (2, F, Y, X)
    return np.abs(z[1] - z[0]).sum(0).astype(np.float32)


def top_regions_movie(
    model: Any, movie: Movie, task: str, n_frames: int, k: int, inset: int, seed: int = 0
) -> dict[str, Any]:
    """Top regions of `n_frames` pairs: Grad-CAM of the time arrow (TAP) or the feature-change map
    (other tasks)."""
    from tapkit.explain import gradcam as gc

    if task == "tap":
        res = gc.gradcam_movie(model, movie, n_frames=n_frames, k=k, inset=inset, seed=seed)
        return dict(
            frames=res["frames"],
            maps=res["cams"],
            regions=res["regions"],
            kind="Grad-CAM of the time arrow",
        )
    frames = sorted(
        {int(t) for t in np.linspace(0, len(movie) - 2, min(n_frames, len(movie) - 1)).round()}
    )
    maps = np.stack([change_map(model, movie.images[t], movie.images[t + 1]) for t in frames])
    regions = [gc.top_regions(m, k=k, inset=inset) for m in maps]
    return dict(
        frames=frames, maps=maps, regions=regions, kind="feature change between t and t + 1"
    )


def segmentation_rows(cfg: Config, movie: Movie, model: Any, task: str = "tap") -> dict[str, dict]:
    """Notebook 08's protocol on a movie with masks: {segmentation task: results table}.

    Frozen features of `model` (and of a random encoder of its architecture) with the conv head, the
    model fine-tuned and a U-Net from scratch, at the profile's `real_*` label budgets (the settings
    notebook 08 uses for real frames: `cfg.segmentation`), the last `real_n_test` frames as test set
    and `real_n_val` validation frames (best step and lr, experiments' fair protocol).
    """
    from tapkit.downstream.segmentation import experiments, heads, masks
    from tapkit.downstream.segmentation.tables import results_table

    s = cfg.segmentation
    movie = segmentation_frames(cfg, movie)  # all, or the first few (smoke and dry runs)
    # named error when too short
    split = masks.split_frames(len(movie.images), s["real_n_test"], s["real_n_val"])
    sources = {task: model, "random (frozen)": heads.fresh_encoder(model, cfg.seed, movie)}
    train = {k: s[k] for k in experiments.TRAIN_KEYS}
    tables = {}
    for name in masks.tasks_for(movie):
        runs = experiments.budget_sweep(
            sources,
            movie,
            {name: masks.task_masks(movie, name)},
            split,
            s["real_budgets"],
            ("conv",),
            {f"{task} fine-tuned": model, experiments.SCRATCH: None},
            s["real_end_to_end_budgets"],
            s["n_runs"],
            cfg.seed,
            cfg.device,
            **train,
        )
        tables[name] = results_table(runs[name])
    return tables
