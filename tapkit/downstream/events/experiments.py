"""Training the strategies A0-C1 of Chen et al. 2024 (what is frozen, what the optimiser sees) and
the sweeps over them.

Strategies (paper Table 2): the letter picks the features, the digit the head.
    A = TAP backbone, frozen
    B = random backbone, frozen
    C = random backbone, trained end to end
    0 = linear head
    1 = ResNet head (one conv layer + one residual block, App. C / Fig. 7)

For frozen backbones (A, B) the features of every crop are computed once (batched, no gradients,
stored as float16) and only the head is trained on them; C trains the whole network on the images.
What a strategy is (StrategyResult, parse_strategy, make_encoder, strategy_settings, ...) is defined
in tapkit.downstream.events.strategies and re-exported here.
compare_strategies, label_budget_curve and compare_criteria are three lists of runs for run_sweep.

Every run follows the fair protocol (tapkit.downstream.protocol): a fixed number of optimiser steps
per row kind (steps_linear, steps_resnet, steps_end_to_end), the same for every label budget; the
weights that score the best class-1 F1 on the validation split are kept; the Adam learning rate is
chosen from one grid (lr_grid, the same for every strategy) on validation by the first run of each
row (strategy, labels, validation pairs) and reused by its other runs (seeds, budgets);
`selected_lrs(results)` hands the chosen rates to a later sweep (the label budget curve reuses the
rates chosen on the full training set).
"""

from __future__ import annotations

import copy

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from tapkit.data.movie import InputError
from tapkit.downstream.events.criteria import label_pairs
from tapkit.downstream.events.crops import CropPairs, Split, as_split, split_pairs
from tapkit.downstream.events.fit import cached_features, fit, predict
from tapkit.downstream.events.heads import EventClassifier, make_event_head
from tapkit.downstream.events.strategies import (
    STRATEGIES,
    StrategyResult,
    calibrate_end_to_end,
    make_encoder,
    parse_strategy,
    strategy_settings,
    trainable_parameters,
)
from tapkit.downstream.protocol import select_lr
from tapkit.runtime import pick_device

# ----------------------------------------------------------------------------- one run


def check_inputs(pairs: CropPairs, labels: Any, split: Any) -> tuple[np.ndarray, Split]:
    """Labels as int64 matching the pairs, a valid split with both classes in train; InputError
    otherwise."""
    if not isinstance(pairs, CropPairs):
        raise InputError(
            "pairs must be a tapkit.downstream.events.crops.CropPairs (from crop_pairs), got "
            f"{type(pairs).__name__}."
        )
    lab = np.asarray(labels).astype(np.int64)
    if lab.shape != (len(pairs),):
        raise InputError(
            f"labels have shape {lab.shape} but there are {len(pairs)} pairs; label the same "
            "pairs with tapkit.downstream.events.criteria.label_pairs(pairs, criterion)."
        )
    sp = as_split(split)
    for part in ("train", "val", "test"):
        idx = sp[part]
        if len(idx) == 0 or idx.min() < 0 or idx.max() >= len(pairs):
            raise InputError(
                f"split['{part}'] must hold indices 0..{len(pairs) - 1} and not be empty; "
                "make the split with tapkit.downstream.events.crops.split_pairs(labels)."
            )
    if lab[sp.train].min() == lab[sp.train].max():
        raise InputError(
            "The training set holds one class only. Cut more pairs, use a looser criterion "
            "('any-either') or a lower size threshold, or a movie with more events."
        )
    return lab, sp


def scores(
    labels: np.ndarray, logits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision (2,), recall (2,), F1 (2,) and confusion matrix (2, 2) of argmax
    predictions (sklearn)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    pred = np.asarray(logits).argmax(1)
    p, r, f1, _ = precision_recall_fscore_support(labels, pred, labels=[0, 1], zero_division=0)
    return p, r, f1, confusion_matrix(labels, pred, labels=[0, 1])


def _inputs(
    kind: str,
    pairs: CropPairs,
    index: np.ndarray,
    encoder: nn.Module,
    tap_model: Any,
    seed: int,
    device: torch.device,
    cache: dict | None,
) -> torch.Tensor:
    """Cached float16 features (A, B) or the images (C) of pairs[index]."""
    if kind == "C":
        return torch.as_tensor(pairs.images[index]).to(device)  # (N, 2, S, S)
    config = tuple(sorted((getattr(tap_model, "config", None) or {}).items()))
    key = ("A", id(tap_model)) if kind == "A" else ("B", int(seed), config)
    return cached_features(cache, key, encoder, pairs, index, device)  # (N, 2, F, S, S)


def run_strategy(
    strategy: str,
    pairs: CropPairs,
    labels: Any,
    split: "Split | Mapping",
    tap_model: Any = None,
    seed: int = 0,
    device: "str | torch.device" = "auto",
    cache: dict | None = None,
    **train: Any,
) -> StrategyResult:
    """Train one strategy (A0..C1) on split['train'] by the protocol; evaluate the
    best-on-validation weights on test.

    train: strategy_settings keywords (steps_linear, steps_resnet, steps_end_to_end, batch_size, lr,
    lr_grid, n_evals). lr None: one run per rate of lr_grid, the best validation F1 wins
    (its scores in .lr_scores).
    cache: a dict shared between calls to reuse frozen features (run_sweep does this).
    """
    kind, head_kind = parse_strategy(strategy)
    settings = strategy_settings(strategy, **train)
    lab, sp = check_inputs(pairs, labels, split)
    device = pick_device(device, verbose=False) if not isinstance(device, torch.device) else device
    index = np.concatenate([sp.train, sp.val, sp.test])
    x_all, base = (
        None,
        make_encoder(kind, tap_model, seed, pairs),
    )  # once: B's calibration is not repeated per lr
    # start from the statistics of the crops it will see, not a new network's (mean 0, var 1)
    if kind == "C":
        calibrate_end_to_end(base, pairs, np.concatenate([sp.train, sp.val]))

    def train_once(lr: float) -> tuple[EventClassifier, dict, np.ndarray]:
        nonlocal x_all
        encoder = copy.deepcopy(base)  # the same start for every lr of the grid
        model = EventClassifier(encoder, make_event_head(head_kind, encoder.n_features, seed))
        params = trainable_parameters(model, kind)
        if x_all is None:
            x_all = _inputs(kind, pairs, index, encoder, tap_model, seed, device, cache)
        x_tr, x_val = x_all[: len(sp.train)], x_all[len(sp.train) : len(sp.train) + len(sp.val)]
        # frozen backbones: train the head on cached features
        module = model if kind == "C" else model.head
        history, val_logits = fit(
            module,
            params,
            x_tr,
            lab[sp.train],
            x_val,
            lab[sp.val],
            settings["steps"],
            seed,
            device,
            settings["batch_size"],
            lr,
            settings["n_evals"],
        )
        return model, history, val_logits

    if settings["lr"] is None:
        lr, (model, history, val_logits), lr_scores = select_lr(
            train_once, lambda run: run[1]["best_val_f1"], settings["lr_grid"]
        )
    else:
        lr, (model, history, val_logits), lr_scores = settings["lr"], train_once(settings["lr"]), {}
    module = model if kind == "C" else model.head
    test_logits = predict(module, x_all[len(sp.train) + len(sp.val) :], device)
    p, r, f1, cm = scores(lab[sp.test], test_logits)
    return StrategyResult(
        str(strategy).upper(),
        p,
        r,
        f1,
        cm,
        val_logits,
        lab[sp.val],
        test_logits,
        lab[sp.test],
        sp.test.copy(),
        model.cpu().eval(),
        history,
        sp.val.copy(),
        int(seed),
        len(sp.train),
        float(lr),
        lr_scores,
    )


def selected_lrs(
    results: "Mapping[str, Sequence[StrategyResult]] | Sequence[StrategyResult]",
) -> dict[str, float]:
    """{strategy: the learning rate its first run chose on validation} for a later sweep's lr=..."""
    runs = (
        [r for rs in results.values() for r in rs]
        if isinstance(results, Mapping)
        else list(results)
    )
    out: dict[str, float] = {}
    for r in runs:
        out.setdefault(r.strategy, r.lr)
    return out


# ----------------------------------------------------------------------------- sweeps


def run_sweep(
    jobs: Sequence[tuple[str, np.ndarray, Split, int]],
    pairs: CropPairs,
    tap_model: Any,
    device: "str | torch.device" = "auto",
    desc: str = "runs",
    runs_dir: "str | Path | None" = None,
    cache: dict | None = None,
    **train: Any,
) -> list[StrategyResult]:
    """run_strategy for each (strategy, labels, split, seed) job in order, sharing one feature
    cache.

    cache: a dict to share frozen features with a later sweep of the same pairs and model
    (default: a new one). With lr=None the first run of each row
    (strategy, labels, validation pairs) in job order chooses the learning rate from lr_grid on
    validation; the row's later runs (other seeds, smaller training budgets) reuse it.

    runs_dir: a folder where every run is kept under a key of its whole recipe (run_store.RunStore);
    a run already there (trained by an earlier notebook with the same crops, labels, split, seed and
    settings) is loaded instead of trained again. None: train every run.
    """
    for strategy, *_ in jobs:
        if parse_strategy(strategy)[0] == "A" and tap_model is None:
            raise InputError("Strategies A0/A1 need the pretrained TAP model: pass tap_model=...")
    dev, cache, out = pick_device(device), {} if cache is None else cache, []
    jobs = [
        (strategy, *check_inputs(pairs, labels, split), seed)
        for strategy, labels, split, seed in jobs
    ]
    for (
        strategy,
        *_,
    ) in jobs:  # bad settings (steps < 1, an empty lr grid, ...) fail here, before any run trains
        strategy_settings(strategy, **train)
    chosen: dict[
        tuple, float
    ] = {}  # lr chosen by the first run of a (strategy, labels, validation split)
    store = None
    if runs_dir is not None:
        from tapkit.downstream.events.run_store import RunStore

        store = RunStore(runs_dir, pairs, tap_model, dev, train)
    for strategy, labels, split, seed in tqdm(jobs, desc=desc):
        row = (
            strategy,
            labels.tobytes(),
            split.val.tobytes(),
        )  # a row: its lr is chosen by its first run
        # later runs: the first run's lr
        settings = dict(train, lr=chosen[row]) if row in chosen else train
        path = store.path(strategy, labels, split, seed, settings) if store else None
        result = store.load(path) if store else None
        if result is None:
            # B features: one seed at a time
            for k in [k for k in cache if k[0] == "B" and k[1] != seed]:
                del cache[k]
            result = run_strategy(
                strategy, pairs, labels, split, tap_model, seed, dev, cache=cache, **settings
            )
            if store:
                store.save(result, path)
        chosen.setdefault(row, result.lr)
        out.append(result)
    if store and store.loaded:
        print(
            f"tapkit: {store.loaded} of {len(jobs)} runs loaded from {runs_dir}: an earlier "
            "notebook trained them with the same crop pairs, labels, split, seed and settings"
        )
    return out


def _names(strategies: Sequence[str]) -> list[str]:
    """Validated, upper-case strategy names."""
    for s in strategies:
        parse_strategy(s)
    return [str(s).upper() for s in strategies]


def compare_strategies(
    pairs: CropPairs,
    labels: Any,
    tap_model: Any = None,
    strategies: Sequence[str] = STRATEGIES,
    n_runs: int = 10,
    seed: int = 0,
    device: "str | torch.device" = "auto",
    split: "Split | Mapping | None" = None,
    split_seed: int = 0,
    **train: Any,
) -> dict[str, list[StrategyResult]]:
    """Run each strategy n_runs times (seeds seed..seed+n_runs-1) on one split:
    {strategy: [StrategyResult, ...]}."""
    names = _names(strategies)
    sp = split_pairs(labels, seed=split_seed) if split is None else as_split(split)
    check_inputs(pairs, labels, sp)
    jobs = [(s, labels, sp, seed + i) for i in range(int(n_runs)) for s in names]
    runs = run_sweep(jobs, pairs, tap_model, device, "strategies", **train)
    return {s: [r for r in runs if r.strategy == s] for s in names}


def label_budget_curve(
    pairs: CropPairs,
    labels: Any,
    tap_model: Any,
    budgets: Sequence[int],
    strategies: Sequence[str] = ("A1", "C1"),
    n_runs: int = 3,
    seed: int = 0,
    device: "str | torch.device" = "auto",
    split_seed: int = 0,
    **train: Any,
) -> dict[str, Any]:
    """Class-1 F1 on one test set vs number of labelled training pairs, same steps at every budget.

    Returns {'budgets', 'n_train', strategy: f1 (B, runs), 'converged': {strategy: (B, runs) bool},
    'lr': {strategy: (B,) rates}}. Every budget keeps the same validation and test pairs
    (split_pairs with split_seed); run i of every strategy uses seed + i: the strategies are paired.
    """
    names = _names(strategies)
    splits = [split_pairs(labels, seed=split_seed, budget=int(b)) for b in budgets]
    jobs = [(s, labels, sp, seed + i) for s in names for sp in splits for i in range(int(n_runs))]
    runs = iter(run_sweep(jobs, pairs, tap_model, device, "label budget", **train))
    curve: dict[str, Any] = {
        "budgets": [int(b) for b in budgets],
        "n_train": [len(s.train) for s in splits],
        "converged": {},
        "lr": {},
    }
    for s in names:
        # (B, runs) of StrategyResult
        cells = [[next(runs) for _ in range(int(n_runs))] for _ in splits]
        curve[s] = np.array([[r.f1[1] for r in rs] for rs in cells])  # (B, runs)
        curve["converged"][s] = np.array([[r.converged for r in rs] for rs in cells])
        curve["lr"][s] = np.array([rs[0].lr for rs in cells])
    return curve


def compare_criteria(
    pairs: CropPairs,
    tap_model: Any,
    criteria: Sequence[str] = ("any-both", "any-either", "size-either"),
    strategies: Sequence[str] = ("A0", "A1"),
    n_runs: int = 1,
    seed: int = 0,
    threshold: int = 40,
    device: "str | torch.device" = "auto",
    split_seed: int = 0,
    **train: Any,
) -> dict[str, dict[str, list[StrategyResult]]]:
    """Train the strategies on labels from each criterion (Table 5):
    {criterion: {strategy: [results]}}."""
    labels = {c: label_pairs(pairs, c, threshold=threshold) for c in criteria}  # checks names first
    names = _names(strategies)
    # same seed: same val/test pairs
    splits = {c: split_pairs(labels[c], seed=split_seed) for c in criteria}
    jobs = [
        (s, labels[c], splits[c], seed + i)
        for c in criteria
        for i in range(int(n_runs))
        for s in names
    ]
    runs = iter(run_sweep(jobs, pairs, tap_model, device, "criteria", **train))
    out: dict[str, dict[str, list[StrategyResult]]] = {c: {s: [] for s in names} for c in criteria}
    for c in criteria:
        for _ in range(int(n_runs)):
            for s in names:
                out[c][s].append(next(runs))
    return out
