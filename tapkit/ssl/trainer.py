"""Train a TAP network: Adam, cosine learning rate, AMP on CUDA, atomic checkpoints, exact resume."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from tapkit.ssl.checkpoint import load_checkpoint, save_checkpoint
from tapkit.runtime import autocast, pick_device
from tapkit.ssl.tap import tap_loss
from tapkit.ssl.tap import TAPNet
from tapkit.data.movie import InputError, Movie
from tapkit.ssl.sampler import PairSampler

HISTORY_KEYS = ("train_loss", "train_accuracy", "train_decorr", "val_loss", "val_accuracy", "val_decorr",
                "lr", "seconds")


def _rng_state() -> dict:
    """All global RNG states (python, numpy, torch CPU and CUDA)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    """Restore the RNG states saved by `_rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, lam: float, device: torch.device,
          amp: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward one batch: (total loss, ce, decorrelation, number correct)."""
    with autocast(device, amp):
        logits, z = model(x)  # (B, 2), (B, 2, F, P, P)
    loss, ce, decorr = tap_loss(logits.float(), y, z.float(), lam=lam)
    return loss, ce, decorr, (logits.argmax(1) == y).sum()


@torch.no_grad()
def _validate(model: torch.nn.Module, batches: list, lam: float, device: torch.device, amp: bool) -> dict:
    """Mean loss, accuracy and decorrelation over fixed validation batches (eval-mode batch norm)."""
    model.eval()
    tot = torch.zeros(3, device=device)
    n = 0
    for x, y, _ in batches:
        loss, _, decorr, correct = _step(model, x, y, lam, device, amp)
        tot += torch.stack([loss * len(y), decorr * len(y), correct.float()])
        n += len(y)
    loss, decorr, correct = (tot / max(n, 1)).tolist()
    return {"val_loss": loss, "val_accuracy": correct, "val_decorr": decorr}


def _samplers(movies, val_movies, patch, delta, batch_size, val_fraction, val_at, augment, per_frame,
              reject_background, device, seed) -> tuple[PairSampler, PairSampler]:
    """Training sampler and validation sampler (first or last frames of each movie, or separate val_movies)."""
    common = dict(patch=patch, delta=delta, batch_size=batch_size, device=device, per_frame=per_frame)
    if val_movies is None:
        train = PairSampler(movies, split="train", val_fraction=val_fraction, val_at=val_at, augment=augment,
                            reject_background=reject_background, seed=seed, **common)
        val = PairSampler(movies, split="val", val_fraction=val_fraction, val_at=val_at, seed=seed, **common)
    else:
        train = PairSampler(movies, split="train", val_fraction=0.0, augment=augment,
                            reject_background=reject_background, seed=seed, **common)
        val = PairSampler(val_movies, split="train", val_fraction=0.0, augment=False, seed=seed + 1, **common)
    return train, val


def _resume(path: Path, model, optimizer, scheduler, scaler, sampler) -> tuple[int, dict]:
    """Load a checkpoint into the training objects; return (epochs done, history)."""
    state = load_checkpoint(path)
    if state["config"] != model.config:
        raise InputError(f"Cannot resume from {path}: it holds a model with config {state['config']}, "
                         f"but this run builds {model.config}. Use another checkpoint path or resume=False.")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    sampler.load_state_dict(state["sampler"])
    _set_rng_state(state["rng"])
    print(f"tapkit: resuming from {path} after epoch {state['epoch']}")
    return int(state["epoch"]), state["history"]


def train_tap(movies: "Movie | np.ndarray | Sequence", val_movies: "Sequence | None" = None, epochs: int = 10,
              steps_per_epoch: int = 100, batch_size: int = 64, patch: int = 96, delta: "int | Sequence[int]" = (1,),
              lr: float = 4e-4, lam: float = 0.01, val_steps: int = 10, val_fraction: float = 0.1,
              val_at: str = "start", device: "str | torch.device" = "auto", seed: int = 0,
              checkpoint: "str | os.PathLike | None" = None,
              resume: bool = False, amp: bool = True, compile: bool = False, augment: Any = True,
              per_frame: bool = True, reject_background: float = 0.0, model_kwargs: "dict | None" = None,
              progress: bool = True) -> tuple[TAPNet, dict]:
    """Pretrain a TAPNet on crop pairs of `movies`; returns (model in eval mode, history of per-epoch lists).

    Validation pairs come from `val_fraction` of the frames at the movie's start or end (`val_at`), or
    from `val_movies`. Checkpoints (atomic) after every epoch when `checkpoint` is a path; `resume=True`
    continues from it.
    """
    if epochs < 1 or steps_per_epoch < 1 or val_steps < 1:
        raise InputError(f"train_tap: epochs={epochs}, steps_per_epoch={steps_per_epoch} and val_steps={val_steps} "
                         "must all be >= 1.")
    device = pick_device(device)
    torch.manual_seed(seed)
    train_s, val_s = _samplers(movies, val_movies, patch, delta, batch_size, val_fraction, val_at, augment,
                               per_frame, reject_background, device, seed)  # validates the data before any training
    model = TAPNet(**{"seed": seed, **(model_kwargs or {})}).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch, eta_min=lr / 20)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda")
    history: dict[str, list] = {k: [] for k in HISTORY_KEYS}
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        start, history = _resume(Path(checkpoint), model, optimizer, scheduler, scaler, train_s)
    step_fn = torch.compile(model) if compile else model
    binning = data_binning(movies)  # recorded so that later notebooks can check they bin frames alike
    val_batches = val_s.fixed_batches(val_steps)  # the same validation pairs every epoch
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        stats = _train_epoch(step_fn, model, train_s, optimizer, scheduler, scaler, lam, device, amp,
                             steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", progress=progress)
        stats.update(_validate(step_fn, val_batches, lam, device, amp), lr=scheduler.get_last_lr()[0],
                     seconds=time.perf_counter() - t0)
        for k in HISTORY_KEYS:
            history[k].append(float(stats[k]))
        if checkpoint is not None:
            state = _state(model, optimizer, scheduler, scaler, train_s, epoch + 1, history)
            save_checkpoint(dict(state, binning=binning), checkpoint)
    return model.eval(), history


def data_binning(movies: Any) -> "int | None":
    """The pixel binning of the training movies (Movie.meta['binning'], 1 if unbinned); None if unknown or mixed."""
    found = {m.meta.get("binning", 1) for m in (movies if isinstance(movies, (list, tuple)) else [movies])
             if isinstance(m, Movie)}
    return found.pop() if len(found) == 1 else None


def _train_epoch(step_fn, model, sampler, optimizer, scheduler, scaler, lam, device, amp, steps, desc,
                 progress) -> dict:
    """One epoch of optimisation steps with a progress bar; returns mean train loss/accuracy/decorr."""
    model.train()
    tot = torch.zeros(3, device=device)
    seen = 0
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for i in bar:
        x, y, _ = sampler.sample()  # (B, 2, 1, P, P), (B,)
        loss, _, decorr, correct = _step(step_fn, x, y, lam, device, amp)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        tot += torch.stack([loss.detach() * len(y), decorr.detach() * len(y), correct.float()])
        seen += len(y)
        if progress and (i % 10 == 0 or i == steps - 1):
            loss_m, _, acc = (tot / seen).tolist()
            bar.set_postfix(loss=f"{loss_m:.3f}", acc=f"{acc:.3f}")
    loss_m, decorr_m, acc = (tot / max(seen, 1)).tolist()
    if progress:
        print(f"{desc}: loss {loss_m:.3f}, accuracy {acc:.3f}")
    return {"train_loss": loss_m, "train_accuracy": acc, "train_decorr": decorr_m}


def _state(model, optimizer, scheduler, scaler, sampler, epoch: int, history: dict) -> dict:
    """Everything needed to rebuild the model and to resume training exactly."""
    return {"config": model.config, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "sampler": sampler.state_dict(),
            "rng": _rng_state(), "epoch": epoch, "history": history}


def load_tap(path: "str | os.PathLike", device: "str | torch.device" = "auto") -> TAPNet:
    """Rebuild a trained TAPNet from a checkpoint file (its config included), in eval mode on `device`.

    `model.binning` is the pixel binning of the movies it was trained on (None if not recorded).
    """
    state = load_checkpoint(path)
    model = TAPNet(**state["config"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state["model"].items()})
    model.binning = state.get("binning")
    return model.to(pick_device(device, verbose=False)).eval()


def plot_history(history: dict):
    """Loss, accuracy and decorrelation loss per epoch, train vs validation; returns the Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    for ax, key, title in zip(axes, ("loss", "accuracy", "decorr"), ("total loss", "accuracy", "decorrelation loss")):
        ax.plot(epochs, history[f"train_{key}"], "o-", label="train")
        ax.plot(epochs, history[f"val_{key}"], "o-", label="validation")
        ax.set(title=title, xlabel="epoch")
    axes[1].axhline(0.5, color="gray", ls=":", label="chance")
    axes[1].set_ylim(0.4, 1.0)
    axes[1].legend()
    fig.tight_layout()
    return fig


def normalize_crops(x: torch.Tensor, pmin: float = 1.0, pmax: float = 99.8) -> torch.Tensor:
    """Percentile-normalise every crop of (B, T, C, P, P) on its own: pmin -> 0, pmax -> 1."""
    flat = x.flatten(2)  # (B, T, C*P*P)
    lo = torch.quantile(flat, pmin / 100, dim=2, keepdim=True)
    hi = torch.quantile(flat, pmax / 100, dim=2, keepdim=True)
    return ((flat - lo) / (hi - lo).clamp(min=1e-6)).view_as(x)


@torch.no_grad()
def evaluate_tap(model: TAPNet, movies: "Movie | np.ndarray | Sequence", n_pairs: int = 1024, patch: int = 96,
                 split: str = "val", delta: "int | Sequence[int]" = (1,), val_fraction: float = 0.1,
                 val_at: str = "start", batch_size: int = 64, seed: int = 0,
                 device: "str | torch.device | None" = None, per_frame: bool = True, per_crop: bool = False) -> dict:
    """TAP accuracy on fresh pairs: overall, on crops with / without event pixels, and per frame pair.

    `accuracy_by_t` maps each earlier frame t to the accuracy on its pairs: crops of one frame pair
    share frame-level quirks, so look at how many frame pairs are above chance, not only the mean.
    `per_crop=True` rescales every crop by its own percentiles first: no frame-wide intensity cue is left.
    """
    device = next(model.parameters()).device if device is None else pick_device(device, verbose=False)
    sampler = PairSampler(movies, patch=patch, delta=delta, batch_size=batch_size, split=split,
                          val_fraction=val_fraction if split == "val" else 0.0, val_at=val_at, augment=False,
                          device=device, seed=seed, per_frame=per_frame)
    model.eval()
    correct, events, times = [], [], []
    for _ in range(max(1, -(-n_pairs // batch_size))):
        x, y, info = sampler.sample(with_events=True)
        x = normalize_crops(x) if per_crop else x
        correct.append((model(x)[0].argmax(1) == y).cpu())
        events.append(info["has_event"].cpu() if "has_event" in info else torch.zeros_like(y, dtype=torch.bool).cpu())
        times.append(info["t"].cpu())
    correct, events, times = (torch.cat(v)[:n_pairs] for v in (correct, events, times))
    out = {"accuracy": correct.float().mean().item(), "n_pairs": len(correct), "n_event_pairs": int(events.sum()),
           "accuracy_by_t": {int(t): correct[times == t].float().mean().item() for t in times.unique()}}
    if events.any():
        out["accuracy_event"] = correct[events].float().mean().item()
    if (~events).any():
        out["accuracy_no_event"] = correct[~events].float().mean().item()
    return out
