"""What a strategy A0-C1 of Chen et al. 2024 is: its name, encoder, trainable parameters and
training settings.

Strategies (paper Table 2): the letter picks the features, the digit the head.
    A = TAP backbone, frozen
    B = random backbone, frozen
    C = random backbone, trained end to end
    0 = linear head
    1 = ResNet head (one conv layer + one residual block, App. C / Fig. 7)

StrategyResult holds one trained run. experiments.py trains and sweeps strategies; run_store.py
keeps trained runs. Both import their definitions from here (experiments re-exports them).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from tapkit.data.movie import InputError
from tapkit.downstream.events.crops import CropPairs
from tapkit.downstream.events.heads import EventClassifier
from tapkit.downstream.protocol import LR_GRID, check_protocol
from tapkit.validate import whole

STRATEGIES = ("A0", "A1", "B0", "B1", "C0", "C1")
FEATURES = {"A": "TAP (frozen)", "B": "random (frozen)", "C": "random (trained)"}
HEADS = {"0": "linear", "1": "ResNet"}
PAPER_EPOCHS = {"linear": 10, "resnet": 30}  # the paper's schedule (Table 2 caption), for reference
DEFAULT_STEPS = {
    "linear": 500,
    "resnet": 500,
    "end_to_end": 300,
}  # optimiser steps when a sweep gives none


@dataclass
class StrategyResult:
    """One trained strategy: test/val logits, per-class precision/recall/F1, the model and its
    history."""

    strategy: str
    precision: np.ndarray  # (2,) class 0, class 1 on the test set
    recall: np.ndarray  # (2,)
    f1: np.ndarray  # (2,)
    confusion: np.ndarray  # (2, 2) rows = actual, columns = predicted
    val_logits: np.ndarray  # (Nv, 2)
    val_labels: np.ndarray  # (Nv,)
    test_logits: np.ndarray  # (Nt, 2)
    test_labels: np.ndarray  # (Nt,)
    test_index: np.ndarray  # (Nt,) indices into the CropPairs
    model: "EventClassifier | None"
    history: dict[str, list[float]]
    val_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    seed: int = 0
    n_train: int = 0
    lr: float = 0.0  # the Adam learning rate it trained with (chosen on validation, or given)
    # {lr: best validation F1} of the grid, when this run chose it
    lr_scores: dict = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        """Whether its validation F1 had stopped rising (protocol.converged): the best of its last
        quarter < +2 %."""
        return bool(self.history.get("converged", False))

    def __repr__(self) -> str:
        p, r = np.round(self.precision, 3).tolist(), np.round(self.recall, 3).tolist()
        return (
            f"StrategyResult({self.strategy}, seed={self.seed}, n_train={self.n_train}, "
            f"precision={p}, recall={r})"
        )


# ----------------------------------------------------------------------------- what a strategy is


def parse_strategy(strategy: str) -> tuple[str, str]:
    """'A1' -> ('A', 'resnet'); raise InputError for anything but A0..C1."""
    name = str(strategy).upper()
    if name not in STRATEGIES:
        raise InputError(
            f"Unknown strategy {strategy!r}. Choose one of: {', '.join(STRATEGIES)} "
            "(A = TAP frozen, B = random frozen, C = random trained; 0 = linear, 1 = ResNet head)."
        )
    return name[0], "linear" if name[1] == "0" else "resnet"


# the first pairs of a CropPairs give a frozen random encoder its BatchNorm statistics
CALIBRATION_PAIRS = 256


def make_encoder(
    kind: str, tap_model: nn.Module | None, seed: int, pairs: "CropPairs | None" = None
) -> nn.Module:
    """A: a copy of the TAP model; B/C: the same architecture, Kaiming-uniform init from seed.

    B with `pairs`: the frozen random encoder gets the BatchNorm statistics of the first
    CALIBRATION_PAIRS pairs' crops (ssl.features.calibrate_batchnorm: no labels, no weight changes),
    so that its features are normalised at every layer as a trained network's are; C's batch norms
    learn them during training. (run_strategy starts C from the statistics of the non-test crops:
    `calibrate_end_to_end`.)
    The encoder is used through its `embed` method, (N, 1, S, S) -> (N, F, S, S); its time-arrow
    head is not needed for events and is dropped.
    """
    from tapkit.ssl.features import calibrate_batchnorm
    from tapkit.ssl.tap import TAPNet

    if kind == "A":
        if tap_model is None:
            raise InputError(
                "Strategy A needs the pretrained TAP model: pass tap_model=... "
                "(tapkit.course.get_tap_model(cfg) or tapkit.ssl.trainer.load_tap(path))."
            )
        encoder = copy.deepcopy(tap_model)
    else:
        config = dict(getattr(tap_model, "config", {}) or {})
        encoder = TAPNet(**{**config, "seed": int(seed)})  # PyTorch default init, reproducible
        if kind == "B" and pairs is not None:
            # (2n, 1, S, S)
            crops = pairs.images[:CALIBRATION_PAIRS].reshape(-1, 1, *pairs.images.shape[-2:])
            calibrate_batchnorm(encoder, crops, device="cpu")
    encoder.head = None  # the time-arrow head: not part of the event classifier
    return encoder.float().to(memory_format=torch.channels_last)  # ~1.5x faster convolutions on CPU


def calibrate_end_to_end(encoder: nn.Module, pairs: CropPairs, index: np.ndarray) -> nn.Module:
    """C: the BatchNorm statistics of the first CALIBRATION_PAIRS crop pairs of `index`
    (no test pair), in place.

    No labels, no gradients, no weight changes (ssl.features.calibrate_batchnorm). Training updates
    them (momentum 0.1), but a run of a few steps is validated and tested in eval mode with
    statistics still close to a new network's (mean 0, variance 1): its features shrink layer by
    layer, the logits of every pair are the same and one class is predicted for all (notebook 07's
    smoke profile: 'end to end · ResNet' F1 0.00).
    """
    from tapkit.ssl.features import calibrate_batchnorm

    first = np.sort(np.asarray(index))[:CALIBRATION_PAIRS]
    crops = pairs.images[first].reshape(-1, 1, *pairs.images.shape[-2:])  # (2n, 1, S, S)
    return calibrate_batchnorm(encoder, crops, device="cpu")


def trainable_parameters(model: EventClassifier, kind: str) -> list[nn.Parameter]:
    """Freeze what strategy `kind` ('A', 'B' or 'C') keeps fixed; return the parameters the
    optimiser trains.

    A, B: the encoder gets no gradients and stays in eval mode (batch-norm statistics fixed): only
    the head learns. C: encoder and head learn together (end to end).
    """
    if kind not in FEATURES:
        raise InputError(
            f"kind must be one of {', '.join(FEATURES)} (the strategy's letter), got {kind!r}."
        )
    if kind == "C":
        return list(model.parameters())
    model.encoder.requires_grad_(False).eval()
    return list(model.head.parameters())


def steps_for(
    strategy: str,
    steps_linear: int | None = None,
    steps_resnet: int | None = None,
    steps_end_to_end: int | None = None,
) -> int:
    """Optimiser steps of a strategy: C uses steps_end_to_end, else its head's;
    None = DEFAULT_STEPS."""
    kind, head = parse_strategy(strategy)
    given = (
        steps_end_to_end if kind == "C" else {"linear": steps_linear, "resnet": steps_resnet}[head]
    )
    n = DEFAULT_STEPS["end_to_end" if kind == "C" else head] if given is None else given
    return whole(
        1,
        where=f"strategy {strategy}: ",
        example=300,
        hint=" (steps_linear, steps_resnet, steps_end_to_end)",
    )("steps", n)


def strategy_settings(
    strategy: str,
    steps_linear: int | None = None,
    steps_resnet: int | None = None,
    steps_end_to_end: int | None = None,
    batch_size: int = 32,
    lr: "float | Mapping[str, float] | None" = None,
    lr_grid: Sequence[float] = LR_GRID,
    n_evals: int = 10,
) -> dict[str, Any]:
    """The training settings of one run of `strategy`: steps, lr (None: chosen from lr_grid), grid,
    batch, n_evals.

    lr: one rate for every strategy, {strategy: rate} (e.g. selected_lrs of an earlier sweep), or
    None.
    """
    if isinstance(lr, Mapping):
        lr = lr.get(str(strategy).upper())
    steps = steps_for(strategy, steps_linear, steps_resnet, steps_end_to_end)
    check_protocol(steps, n_evals, lr_grid if lr is None else (lr,), 1, "heads")
    return dict(
        steps=steps,
        lr=None if lr is None else float(lr),
        lr_grid=[float(v) for v in lr_grid],
        batch_size=int(batch_size),
        n_evals=int(n_evals),
    )


def sweep_settings(section: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a profile's `heads` section that a sweep takes: n_runs and strategy_settings'
    keywords."""
    import inspect

    accepted = set(inspect.signature(strategy_settings).parameters) - {"strategy"} | {"n_runs"}
    return {k: v for k, v in section.items() if k in accepted}
