"""Trained event runs kept in the run folder, so that no notebook retrains what an earlier one
trained.

Notebooks 03, 04, 07 and 09 train some of the same runs: A0/A1 on the size-either labels in 03 and
04, the TAP heads and the baselines in 04 and 07, A0/A1/B1 in 04 and 09 on the course movie. A run
is kept under a key made of everything its numbers depend on (strategy, seed, steps, learning rate
or grid, batch size, the crop pairs, labels and split, the TAP weights or the random encoder's
architecture, the device type and the training code); a later sweep with the same key loads it
instead of training it again. On a CPU the same seed gives the same numbers, so a loaded run is
exactly what training again would give (tests/test_run_store.py checks this).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from tapkit.downstream.events import fit, heads, strategies
from tapkit.downstream.events.crops import CropPairs, Split
from tapkit.data.movie import InputError
from tapkit.ssl.checkpoint import (
    UnreadableFileError,
    load_weights,
    read_torch_file,
    save_checkpoint,
)

RESULT_ARRAYS = (
    "precision",
    "recall",
    "f1",
    "confusion",
    "val_logits",
    "val_labels",
    "test_logits",
    "test_labels",
    "test_index",
    "val_index",
)
RUN_KEYS = (
    *RESULT_ARRAYS,
    "strategy",
    "seed",
    "n_train",
    "history",
    "weights",
)  # what restore needs
# the code that decides a run's numbers: experiments.py (it trains the runs and imports this module
# lazily) is read as a file rather than imported, so that run_store does not import it back; then
# these modules
_CODE = (Path(fit.__file__).with_name("experiments.py"), strategies, fit, heads)


def fingerprint(*arrays: Any) -> str:
    """A short hash of arrays / tensors (content, dtype and shape)."""
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(
            a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        )
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of a model's state dict (every tensor, in key order)."""
    state = model.state_dict()
    return fingerprint(*(state[k] for k in sorted(state)))


def _code_fingerprint() -> str:
    return hashlib.sha1(
        b"".join(Path(getattr(m, "__file__", m)).read_bytes() for m in _CODE)
    ).hexdigest()[:16]


class RunStore:
    """Runs of one sweep (one crop-pair set, one TAP model) kept as
    <runs_dir>/<strategy>_<key>.pt."""

    def __init__(
        self,
        runs_dir: "str | Path",
        pairs: CropPairs,
        tap_model: Any,
        device: torch.device,
        train: Mapping[str, Any],
    ):
        self.dir, self.tap_model, self.train = Path(runs_dir), tap_model, dict(train)
        self.loaded = 0
        self.common = dict(
            pairs=fingerprint(pairs.images, pairs.masks, pairs.t, pairs.y, pairs.x),
            device=torch.device(device).type,
            code=_code_fingerprint(),
            architecture=json.dumps(
                getattr(tap_model, "config", None) or {}, sort_keys=True, default=str
            ),
        )
        self._tap_weights: str | None = None

    def key(
        self,
        strategy: str,
        labels: np.ndarray,
        split: Split,
        seed: int,
        train: "Mapping[str, Any] | None" = None,
    ) -> str:
        """The run's key: a hash of everything its numbers depend on (train: this run's settings,
        else the sweep's)."""
        kind = strategies.parse_strategy(strategy)[0]
        if kind == "A" and self._tap_weights is None:
            self._tap_weights = weights_fingerprint(self.tap_model)
        recipe = dict(
            self.common,
            strategy=str(strategy).upper(),
            seed=int(seed),
            settings=strategies.strategy_settings(
                strategy, **(self.train if train is None else train)
            ),
            data=fingerprint(labels, split.train, split.val, split.test),
            weights=self._tap_weights if kind == "A" else None,
        )  # B, C: a seeded init of the architecture
        return hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]

    def path(
        self,
        strategy: str,
        labels: np.ndarray,
        split: Split,
        seed: int,
        train: "Mapping[str, Any] | None" = None,
    ) -> Path:
        """Where the run with this recipe is kept: <runs_dir>/<strategy>_<key>.pt."""
        return (
            self.dir
            / f"{str(strategy).upper()}_{self.key(strategy, labels, split, seed, train)}.pt"
        )

    def load(self, path: Path) -> "strategies.StrategyResult | None":
        """The run stored at `path` (from `self.path`), or None (missing or damaged: it is trained
        again).

        A file that holds anything but tensors and plain values, or not a saved run, raises
        InputError.
        """
        if not path.is_file():
            return None
        try:
            saved = read_torch_file(path, "saved event run")
        except UnreadableFileError:  # a truncated or damaged file: train again rather than fail
            print(
                f"tapkit: cannot read {path} (damaged, or not a torch file); training that run "
                "again."
            )
            return None
        result = restore(saved, self.tap_model, path)
        self.loaded += 1
        return result

    def save(self, result: "strategies.StrategyResult", path: Path) -> Path:
        """Write one run atomically to `path`: scores, logits, history and the trained weights
        (head; whole model for C)."""
        return save_checkpoint(to_state(result), path)


def to_state(result: "strategies.StrategyResult") -> dict[str, Any]:
    """A StrategyResult as tensors and plain values (weights_only): its arrays as tensors, and the
    trained weights: the head's, or the whole model's when it was trained (C)."""
    kind = strategies.parse_strategy(result.strategy)[0]
    trained = result.model if kind == "C" else result.model.head
    arrays = {k: torch.from_numpy(np.ascontiguousarray(getattr(result, k))) for k in RESULT_ARRAYS}
    statistics = (
        {
            k: v
            for k, v in result.model.encoder.state_dict().items()
            if "running" in k or "batches" in k
        }
        if kind == "B"
        else {}
    )  # B: the batch-norm statistics its frozen random encoder measured on the crops
    return dict(
        arrays,
        strategy=result.strategy,
        seed=int(result.seed),
        n_train=int(result.n_train),
        history=result.history,
        weights=trained.state_dict(),
        lr=float(result.lr),
        lr_scores={float(k): float(v) for k, v in result.lr_scores.items()},
        encoder_statistics=statistics,
    )


def check_run(saved: Any, path: "str | Path") -> None:
    """Raise InputError unless `saved` (read from `path`) is a saved event run of one of the
    strategies A0..C1."""
    if not isinstance(saved, Mapping):
        holds = f"a {type(saved).__name__}"
    elif any(k not in saved for k in RUN_KEYS):
        holds = "no " + ", ".join(repr(k) for k in RUN_KEYS if k not in saved)
    elif str(saved["strategy"]).upper() not in strategies.STRATEGIES:
        holds = f"strategy {saved['strategy']!r}"
    else:
        return
    raise InputError(
        f"{path} is not a saved event run of tapkit: it holds {holds} (a run has the scores, "
        f"logits, history and weights of one of {', '.join(strategies.STRATEGIES)}). Delete it: "
        "the run is then trained again."
    )


def _array(value: Any) -> np.ndarray:
    """A saved array as numpy: a tensor (this version) or a numpy array (older files)."""
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def restore(
    saved: Mapping[str, Any], tap_model: Any, path: "str | Path" = "the saved run"
) -> "strategies.StrategyResult":
    """The StrategyResult of a saved state (read from `path`); frozen encoders are rebuilt
    (A: the TAP model, B: from the seed). A state that is not a run, or weights that do not fit,
    raise InputError naming `path`."""
    check_run(saved, path)
    kind, head_kind = strategies.parse_strategy(saved["strategy"])
    encoder = strategies.make_encoder(kind, tap_model, saved["seed"])
    # B: the statistics it was trained with (make_encoder(..., pairs))
    if saved.get("encoder_statistics"):
        load_weights(
            encoder,
            {**encoder.state_dict(), **saved["encoder_statistics"]},
            path,
            f"{saved['strategy']} encoder statistics of this architecture",
        )
        encoder.eval()
    model = heads.EventClassifier(
        encoder, heads.make_event_head(head_kind, encoder.n_features, saved["seed"])
    )
    strategies.trainable_parameters(model, kind)  # frozen encoder, as when it was trained
    load_weights(
        model if kind == "C" else model.head,
        saved["weights"],
        path,
        f"{saved['strategy']} {'model' if kind == 'C' else 'head'} of this TAP model",
    )
    arrays = {k: _array(saved[k]) for k in RESULT_ARRAYS}
    return strategies.StrategyResult(
        saved["strategy"],
        *(arrays[k] for k in RESULT_ARRAYS[:-1]),
        model.eval(),
        saved["history"],
        arrays["val_index"],
        saved["seed"],
        saved["n_train"],
        saved.get("lr", 0.0),
        saved.get("lr_scores", {}),
    )
