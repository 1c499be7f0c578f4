"""The event heads of notebook 04, saved in the run folder and reused by notebooks 05 and 06.

Notebook 04 trains A0 (linear) and A1 (ResNet head) on frozen TAP features and saves them with
`save_event_heads`; 05 and 06 call `get_event_heads`, which loads them when they were trained with
the same settings (data, seed, crop pairs, labels, split, epochs, TAP weights) and otherwise trains
a quick set itself, saying which it did -- like `tapkit.course.get_tap_model` for the TAP checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from tapkit.downstream.events.criteria import label_pairs
from tapkit.downstream.events.crops import CropPairs, Split, crop_pairs, split_pairs
from tapkit.downstream.events.experiments import StrategyResult, run_strategy
from tapkit.downstream.events.run_store import RESULT_ARRAYS, fingerprint, restore, weights_fingerprint
from tapkit.ssl.checkpoint import save_checkpoint

SAVED_STRATEGIES = ("A0", "A1")  # what 05 (error timing) and 06 (calibration) need


def event_dataset(cfg: Any, movie: Any, criterion: str = "size-either") -> tuple[CropPairs, np.ndarray, Split]:
    """The labelled crop pairs and split of notebook 04 (same data, seed and sizes -> the same pairs), for 05 and 06."""
    pairs = crop_pairs(movie, seed=cfg.seed, **cfg.crops)  # n_pairs, size, event_fraction
    labels = label_pairs(pairs, criterion)
    return pairs, labels, split_pairs(labels, seed=cfg.seed)


def heads_path(cfg: Any) -> Path:
    """Where notebook 04 saves its heads: out_dir/event_heads_<data>.pt."""
    return Path(cfg.out_dir) / f"event_heads_{cfg.data_key}.pt"


def heads_settings(cfg: Any, tap_model: torch.nn.Module, pairs: CropPairs, labels: np.ndarray, split: Split,
                   criterion: str) -> dict[str, Any]:
    """Everything the heads depend on: data, seed, profile sizes, criterion, the crop pairs and the TAP weights."""
    return dict(data=cfg.data_key, seed=int(cfg.seed), crops=dict(cfg.crops), criterion=str(criterion),
                epochs_linear=cfg.heads["epochs_linear"], epochs_resnet=cfg.heads["epochs_resnet"],
                pairs=fingerprint(pairs.images, pairs.masks, pairs.t, pairs.y, pairs.x, labels,
                                  split.train, split.val, split.test),
                tap=weights_fingerprint(tap_model))


def save_event_heads(cfg: Any, results: Mapping[str, StrategyResult], settings: Mapping[str, Any]) -> Path:
    """Save the heads (weights + logits + scores) of `results` with their settings, atomically."""
    state = dict(settings=dict(settings), written_by=f"notebook {cfg.notebook}", results={
        name: dict({k: getattr(r, k) for k in RESULT_ARRAYS}, strategy=r.strategy, seed=r.seed, n_train=r.n_train,
                   history=r.history, head=r.model.head.state_dict())
        for name, r in results.items()})
    return save_checkpoint(state, heads_path(cfg))


def _restore(saved: Mapping[str, Any], tap_model: torch.nn.Module) -> StrategyResult:
    """A StrategyResult from its saved form; the model is the TAP encoder + the saved head."""
    return restore({**saved, "weights": saved["head"]}, tap_model)


def _read(path: Path) -> dict | None:
    """The saved state, or None when the file is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file: retrain rather than fail
        print(f"tapkit: cannot read {path} ({type(err).__name__}); ignoring it.")
        return None


def get_event_heads(cfg: Any, tap_model: torch.nn.Module, pairs: CropPairs, labels: np.ndarray, split: Split,
                    criterion: str = "size-either") -> dict[str, StrategyResult]:
    """A0 and A1 from notebook 04 (loaded from cfg.out_dir) when its settings match, else trained here and saved."""
    path, settings = heads_path(cfg), heads_settings(cfg, tap_model, pairs, labels, split, criterion)
    saved = _read(path)
    if saved is not None and saved.get("settings") == settings:
        print(f"tapkit: loaded heads {', '.join(saved['results'])} from {path} (written by {saved['written_by']})")
        return {name: _restore(r, tap_model) for name, r in saved["results"].items()}
    if saved is None:
        print(f"tapkit: notebook 04 has not been run with these settings ({path} is missing): training A0 and A1 ...")
    else:
        other = sorted(k for k in settings if saved.get("settings", {}).get(k) != settings[k])
        print(f"tapkit: {path} was written with other settings (differs in: {', '.join(other)}); "
              "training A0 and A1 ...")
    train = dict(tap_model=tap_model, seed=cfg.seed, device=cfg.device, cache={},  # cache: TAP features once
                 epochs_linear=cfg.heads["epochs_linear"], epochs_resnet=cfg.heads["epochs_resnet"])
    results = {s: run_strategy(s, pairs, labels, split, **train) for s in ("A1", "A0")}  # the order of before
    save_event_heads(cfg, results, settings)
    print(f"tapkit: trained A0 and A1 and saved them to {path}")
    return {s: results[s] for s in SAVED_STRATEGIES}
