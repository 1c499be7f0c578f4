"""What a pretraining checkpoint holds, and reading it back: the state of a training (weights,
optimiser, learning-rate schedule, gradient scaler, every crop shard's sampler, the global RNGs,
history, recipe and TrainConfig) written by rank 0 after every epoch (`save_training`), loaded into
a new run's training objects to continue exactly (`resume_training`), and the trained model rebuilt
from it (`load_model`, `load_tap`; `load_train_config`: the settings it was trained with).

The file itself (atomic writing, weights-only reading, refusing anything but tensors and plain
values) is `tapkit.ssl.checkpoint`'s; the loop that trains is `tapkit.ssl.trainer`'s.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from tapkit.ssl import distributed

from tapkit.data.movie import InputError
from tapkit.runtime import pick_device
from tapkit.ssl.checkpoint import load_checkpoint, load_weights, save_checkpoint
from tapkit.ssl.pretext import PretextModel, build_model
from tapkit.ssl.recipe import NORMALIZATION
from tapkit.ssl.sampler import PairSampler
from tapkit.ssl.tap import TAPNet
from tapkit.ssl.train_config import TrainConfig, config_of_checkpoint


def _rng_state() -> dict:
    """All global RNG states (python, numpy, torch CPU and CUDA) as tensors and plain values
    (weights_only)."""
    # ('MT19937', uint32 array, pos, has_gauss, cached_gaussian)
    name, keys, *rest = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), *rest),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    """Restore the RNG states saved by `_rng_state` (numpy's keys: a tensor, or an array in older
    checkpoints)."""
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _state(
    model,
    optimizer,
    scheduler,
    scaler,
    samplers: list[dict],
    epoch: int,
    history: dict,
    normalization: dict,
    recipe: "dict | None" = None,
    config: "TrainConfig | None" = None,
) -> dict:
    """Everything needed to rebuild and use the model (task, config, binning, normalisation) and to
    resume (`samplers`: the state of every shard's sampler, in shard order; 'sampler' is shard 0's,
    as before);
    'train_config': the TrainConfig's fields (`load_train_config` reads them back)."""
    return {
        "pretext": model.name,
        "config": model.config,
        "binning": model.binning,
        "normalization": normalization,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "sampler": samplers[0],
        "samplers": samplers,
        "shards": len(samplers),
        "rng": _rng_state(),
        "epoch": epoch,
        "history": history,
        "recipe": recipe,
        "train_config": None if config is None else config.to_dict(),
    }


def save_training(
    path: "str | os.PathLike",
    model: PretextModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    samplers: dict[int, PairSampler],
    epoch: int,
    history: dict,
    normalization: dict,
    recipe: "dict | None" = None,
    config: "TrainConfig | None" = None,
) -> None:
    """Rank 0 writes the checkpoint (with every rank's sampler states, gathered); the other ranks
    wait."""
    shards: dict[int, dict] = {}
    for part in distributed.gather_objects({k: s.state_dict() for k, s in samplers.items()}):
        shards.update(part)
    if distributed.is_main():
        save_checkpoint(
            _state(
                model,
                optimizer,
                scheduler,
                scaler,
                [shards[k] for k in sorted(shards)],
                epoch,
                history,
                normalization=normalization,
                recipe=recipe,
                config=config,
            ),
            path,
        )
    distributed.barrier()


def resume_training(
    path: Path,
    model: PretextModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    samplers: dict[int, PairSampler],
) -> tuple[int, dict]:
    """Load a checkpoint into the training objects (`samplers`: shard -> sampler); return
    (epochs done, history)."""
    state = load_checkpoint(path)
    if state.get("pretext", "tap") != model.name or state["config"] != model.config:
        raise InputError(
            f"Cannot resume from {path}: it holds a {state.get('pretext', 'tap')!r} model with "
            f"config {state['config']}, but this run builds a {model.name!r} model with "
            f"{model.config}. Use another checkpoint path or resume=False."
        )
    load_weights(model, state["model"], path, f"{model.name} model")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    saved = state.get("samplers", [state["sampler"]])  # one generator state per shard
    for k, sampler in samplers.items():
        if k < len(saved):
            sampler.load_state_dict(saved[k])
    _set_rng_state(state["rng"])
    if distributed.is_main():
        print(f"tapkit: resuming from {path} after epoch {state['epoch']}")
        shards = distributed.info().world_size * len(samplers)
        if len(saved) != shards:
            print(
                f"tapkit: the checkpoint has {len(saved)} crop shard(s), this run {shards}: "
                "weights, optimiser and step count continue exactly, the crops differ from an "
                "uninterrupted run (keep --shards fixed to resume with another number of processes "
                "exactly)"
            )
    return int(state["epoch"]), state["history"]


def load_model(path: "str | os.PathLike", device: "str | torch.device" = "auto") -> PretextModel:
    """Rebuild a trained model of any pretext task from its checkpoint, in eval mode on `device`.

    The checkpoint says which task, the architecture, the binning of the training movies
    (`model.binning`) and the normalisation (`model.normalization`); nothing else is needed.
    """
    state = load_checkpoint(path)
    pretext = state.get("pretext", "tap")
    try:
        model = build_model(pretext, **state["config"])
    except (
        TypeError,
        ValueError,
    ) as err:  # an unknown task or option: not a config this tapkit wrote
        raise InputError(
            f"{path} holds a {pretext!r} model whose config tapkit cannot build ({err}). It was "
            "written by another version or damaged: train it again."
        ) from None
    weights = {
        k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
        for k, v in state["model"].items()
    }
    load_weights(model, weights, path, f"{pretext} model of this config")
    model.binning = state.get("binning")
    model.normalization = state.get("normalization", dict(NORMALIZATION, per_frame=True))
    return model.to(pick_device(device, verbose=False)).eval()


def load_train_config(path: "str | os.PathLike") -> "TrainConfig | None":
    """The TrainConfig a checkpoint was trained with (older files: read from their recipe or meta;
    None if neither)."""
    return config_of_checkpoint(load_checkpoint(path))


def load_tap(path: "str | os.PathLike", device: "str | torch.device" = "auto") -> TAPNet:
    """Rebuild a trained TAPNet from its checkpoint (see `load_model`); other pretext tasks are
    refused."""
    model = load_model(path, device)
    if not isinstance(model, TAPNet):
        raise InputError(
            f"{path} holds a {model.name!r} model, not a TAP one: use "
            "tapkit.ssl.trainer.load_model."
        )
    return model
