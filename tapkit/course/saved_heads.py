"""The event heads of notebook 04, saved in the run folder and reused by notebooks 05 and 06.

Notebook 04 trains A0 (linear) and A1 (ResNet head) on frozen TAP features, n_runs seeds each, and
saves every run with `save_event_heads(cfg, {"A0": [run, ...], "A1": [run, ...]},
heads_settings(...))`. 05 calls `get_event_heads` (the first run of each: seed `cfg.seed`), 06
`get_event_runs` (every run: the temperature-scaling claim is paired over runs). Both load the file
when it was written with the same settings (data, seed, crop pairs, labels, split, training
settings, TAP weights) and otherwise train the profile's n_runs runs themselves and save them,
saying which they did -- like `tapkit.course.get_tap_model` for the TAP checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from tapkit.data.movie import InputError
from tapkit.downstream.events import experiments, strategies
from tapkit.downstream.events.criteria import label_pairs
from tapkit.downstream.events.crops import CropPairs, Split, crop_pairs, split_pairs
from tapkit.downstream.events.strategies import StrategyResult
from tapkit.downstream.events.run_store import fingerprint, restore, to_state, weights_fingerprint
from tapkit.ssl.checkpoint import UnreadableFileError, describe, read_torch_file, save_checkpoint

SAVED_STRATEGIES = ("A0", "A1")  # what 05 (error timing) and 06 (calibration) need
FORMAT = 2  # 2: a list of runs per strategy (1: one run per strategy, read as a list of one)


def event_dataset(
    cfg: Any, movie: Any, criterion: str = "size-either"
) -> tuple[CropPairs, np.ndarray, Split]:
    """The labelled crop pairs and split of notebook 04 (same data, seed and sizes -> the same
    pairs), for 05 and 06."""
    pairs = crop_pairs(movie, seed=cfg.seed, **cfg.crops)  # n_pairs, size, event_fraction
    labels = label_pairs(pairs, criterion)
    return pairs, labels, split_pairs(labels, seed=cfg.seed)


def heads_path(cfg: Any) -> Path:
    """Where notebook 04 saves its heads: out_dir/event_heads_<data>.pt."""
    return Path(cfg.out_dir) / f"event_heads_{cfg.data_key}.pt"


def train_settings(cfg: Any) -> dict[str, Any]:
    """The profile's `heads` values that train a run (the keywords of
    strategies.strategy_settings)."""
    return {k: v for k, v in strategies.sweep_settings(cfg.heads).items() if k != "n_runs"}


def heads_settings(
    cfg: Any,
    tap_model: torch.nn.Module,
    pairs: CropPairs,
    labels: np.ndarray,
    split: Split,
    criterion: str,
) -> dict[str, Any]:
    """Everything the heads depend on: data, seed, profile sizes, criterion, training, crop pairs
    and TAP weights."""
    train = train_settings(cfg)
    training = {
        f"{s}_{k}": v
        for s in SAVED_STRATEGIES
        for k, v in strategies.strategy_settings(s, **train).items()
    }  # e.g. A0_steps, A1_lr_grid
    return dict(
        data=cfg.data_key,
        seed=int(cfg.seed),
        crops=dict(cfg.crops),
        criterion=str(criterion),
        **training,
        pairs=fingerprint(
            pairs.images,
            pairs.masks,
            pairs.t,
            pairs.y,
            pairs.x,
            labels,
            split.train,
            split.val,
            split.test,
        ),
        tap=weights_fingerprint(tap_model),
    )


def _as_runs(name: str, runs: "StrategyResult | Sequence[StrategyResult]") -> list[StrategyResult]:
    """A list of runs from one StrategyResult (older callers) or a list of them."""
    runs = [runs] if isinstance(runs, StrategyResult) else list(runs)
    if not runs or not all(isinstance(r, StrategyResult) for r in runs):
        raise InputError(
            f"save_event_heads: {name!r} must be a StrategyResult or a non-empty list of them "
            "(compare_strategies(...)[name]), got {runs!r:.80}."
        )
    return runs


def save_event_heads(
    cfg: Any,
    results: "Mapping[str, StrategyResult | Sequence[StrategyResult]]",
    settings: Mapping[str, Any],
) -> Path:
    """Save every run (weights + logits + scores) of `results` {strategy: [run, ...]} with their
    settings, atomically.

    A single StrategyResult per strategy is saved as a list of one run.
    """
    runs = {name: _as_runs(name, r) for name, r in results.items()}
    state = dict(
        settings=dict(settings),
        written_by=f"notebook {cfg.notebook}",
        format=FORMAT,
        results={name: [to_state(r) for r in rs] for name, rs in runs.items()},
    )
    return save_checkpoint(state, heads_path(cfg))


def _saved_runs(saved: Mapping[str, Any]) -> dict[str, list[dict]]:
    """{strategy: [saved run, ...]} of either format."""
    out = {}
    for name, rs in saved.get("results", {}).items():
        rs = [rs] if isinstance(rs, Mapping) else list(rs) if isinstance(rs, (list, tuple)) else []
        out[name] = [
            r
            if not isinstance(r, Mapping) or "weights" in r or "head" not in r
            else {**r, "weights": r["head"]}
            for r in rs
        ]  # format 1 kept the head as "head"
    return out


def _read(path: Path) -> dict | None:
    """The saved state, or None when the file is missing or damaged; InputError for a file that is
    not saved heads."""
    if not path.is_file():
        return None
    try:
        saved = read_torch_file(path, "file of saved event heads")
    except UnreadableFileError:  # a truncated or damaged file: retrain rather than fail
        print(f"tapkit: cannot read {path} (damaged, or not a torch file); ignoring it.")
        return None
    if (
        not isinstance(saved, Mapping)
        or not isinstance(saved.get("settings"), Mapping)
        or not isinstance(saved.get("results"), Mapping)
    ):
        raise InputError(
            f"{path} is not a file of event heads saved by notebook 04: it holds {describe(saved)} "
            "(saved heads have 'settings' and 'results'). Delete it: notebook 04 writes it again, "
            "or this notebook trains the heads itself."
        )
    return saved


def n_runs(cfg: Any) -> int:
    """The profile's number of runs per strategy (at least 1)."""
    return max(1, int(cfg.heads.get("n_runs", 1)))


def _load_or_train(
    cfg: Any,
    tap_model: torch.nn.Module,
    pairs: CropPairs,
    labels: np.ndarray,
    split: Split,
    criterion: str,
    need: int,
) -> dict[str, list[StrategyResult]]:
    """Every saved run of A0 and A1 when the file matches and holds >= need runs each, else the
    profile's n_runs trained here."""
    path, settings = (
        heads_path(cfg),
        heads_settings(cfg, tap_model, pairs, labels, split, criterion),
    )
    saved = _read(path)
    runs = _saved_runs(saved) if saved is not None else {}
    have = min((len(runs.get(s, [])) for s in SAVED_STRATEGIES), default=0)
    if saved is not None and saved.get("settings") == settings and have >= need:
        print(
            f"tapkit: loaded heads {', '.join(SAVED_STRATEGIES)} from {path} (written by "
            f"{saved['written_by']}; {have} run{'s' if have > 1 else ''} each)"
        )
        return {s: [restore(r, tap_model, path) for r in runs[s]] for s in SAVED_STRATEGIES}
    n = max(need, n_runs(cfg))
    what = f"training A0 and A1 ({n} run{'s' if n > 1 else ''} each) ..."
    if saved is None:
        print(
            f"tapkit: notebook 04 has not been run with these settings ({path} is missing): {what}"
        )
    elif saved.get("settings") != settings:
        other = sorted(
            k
            for k in {*settings, *saved.get("settings", {})}
            if saved.get("settings", {}).get(k) != settings.get(k)
        )
        print(
            f"tapkit: {path} was written with other settings (differs in: {', '.join(other)}); "
            f"{what}"
        )
    else:
        print(
            f"tapkit: {path} holds {have} run(s) of each head, this notebook needs {need}: {what}"
        )
    trained = experiments.compare_strategies(
        pairs,
        labels,
        tap_model,
        ("A1", "A0"),
        n_runs=n,
        seed=cfg.seed,
        device=cfg.device,
        split=split,
        runs_dir=Path(cfg.out_dir) / "event_runs",
        **train_settings(cfg),
    )
    save_event_heads(cfg, trained, settings)
    print(f"tapkit: trained A0 and A1 and saved them to {path}")
    return {s: trained[s] for s in SAVED_STRATEGIES}


def get_event_runs(
    cfg: Any,
    tap_model: torch.nn.Module,
    pairs: CropPairs,
    labels: np.ndarray,
    split: Split,
    criterion: str = "size-either",
) -> dict[str, list[StrategyResult]]:
    """Every run of A0 and A1 (seeds cfg.seed, cfg.seed + 1, ...): notebook 04's when its settings
    match and it saved at least the profile's n_runs runs, else the profile's n_runs trained here
    and saved."""
    return _load_or_train(cfg, tap_model, pairs, labels, split, criterion, need=n_runs(cfg))


def get_event_heads(
    cfg: Any,
    tap_model: torch.nn.Module,
    pairs: CropPairs,
    labels: np.ndarray,
    split: Split,
    criterion: str = "size-either",
) -> dict[str, StrategyResult]:
    """The first run (seed cfg.seed) of A0 and A1: from notebook 04 when its settings match, else
    trained here and saved."""
    runs = _load_or_train(cfg, tap_model, pairs, labels, split, criterion, need=1)
    return {s: runs[s][0] for s in SAVED_STRATEGIES}
