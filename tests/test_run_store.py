"""Event runs kept in the run folder (run_sweep(..., runs_dir=)): loaded only for the same recipe,
equal to training again."""

import copy

import numpy as np
import pytest
import torch

from tapkit.downstream.events import compare_pretext as pretext_events, experiments
from tapkit.downstream.events.crops import split_pairs
from tapkit.downstream.events.experiments import (
    compare_strategies,
    label_budget_curve,
    run_strategy,
)

from test_heads import tiny_tap, toy_pairs

TRAIN = dict(steps_linear=6, steps_resnet=4, steps_end_to_end=4, n_evals=4, lr=1e-3)


@pytest.fixture(scope="module")
def data():
    pairs, labels = toy_pairs()
    return pairs, labels, split_pairs(labels, seed=0), tiny_tap()


def no_training(monkeypatch):
    """Make any training fail: what follows must load every run."""

    def fail(*args, **kwargs):
        raise AssertionError("a run was trained although the same run is stored")

    monkeypatch.setattr(experiments, "run_strategy", fail)


def test_a_second_sweep_loads_every_run_and_gets_the_numbers_of_training_again(
    tmp_path, data, monkeypatch, capsys
):
    pairs, labels, split, tap = data
    first = compare_strategies(
        pairs,
        labels,
        tap,
        ("A0", "B1", "C1"),
        n_runs=2,
        device="cpu",
        split=split,
        runs_dir=tmp_path,
        **TRAIN,
    )
    assert len(list(tmp_path.glob("*.pt"))) == 6
    fresh = {
        s: run_strategy(s, pairs, labels, split, tap, seed=1, device="cpu", **TRAIN)
        for s in ("A0", "B1", "C1")
    }
    no_training(monkeypatch)
    capsys.readouterr()
    again = compare_strategies(
        pairs,
        labels,
        tap,
        ("A0", "B1", "C1"),
        n_runs=2,
        device="cpu",
        split=split,
        runs_dir=tmp_path,
        **TRAIN,
    )
    assert f"6 of 6 runs loaded from {tmp_path}" in capsys.readouterr().out
    for s in ("A0", "B1", "C1"):
        for a, b in zip(first[s], again[s]):
            for field in (
                "test_logits",
                "val_logits",
                "confusion",
                "precision",
                "test_index",
                "val_index",
            ):
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
            assert (a.seed, a.n_train, a.history) == (b.seed, b.n_train, b.history)
        # = training it again
        np.testing.assert_array_equal(again[s][1].test_logits, fresh[s].test_logits)
        # the restored model gives the stored logits (frozen encoders rebuilt, C's weights saved)
        with torch.no_grad():
            logits = again[s][1].model(torch.as_tensor(pairs.images[split.test])).numpy()
        # stored logits: float16 features
        np.testing.assert_allclose(logits, fresh[s].test_logits, atol=2e-3)


def test_runs_shared_between_sweeps_of_different_notebooks(tmp_path, data, monkeypatch, capsys):
    """04's strategies and budget curve, then 07's comparison: its TAP heads and baselines are 04's
    runs."""
    pairs, labels, split, tap = data
    compare_strategies(
        pairs,
        labels,
        tap,
        ("A0", "A1", "B0", "B1", "C1"),
        n_runs=1,
        device="cpu",
        split=split,
        runs_dir=tmp_path,
        **TRAIN,
    )
    label_budget_curve(
        pairs,
        labels,
        tap,
        (8,),
        ("A0", "B0"),
        n_runs=1,
        device="cpu",
        split_seed=0,
        runs_dir=tmp_path,
        **TRAIN,
    )
    n_stored = len(list(tmp_path.glob("*.pt")))
    no_training(monkeypatch)
    capsys.readouterr()
    results, curves = pretext_events.compare_pretext(
        pairs,
        labels,
        split,
        {"tap": tap},
        ("B0", "B1", "C1"),
        budgets=(8,),
        n_runs=1,
        device="cpu",
        runs_dir=tmp_path,
        **TRAIN,
    )
    out = capsys.readouterr().out
    # TAP: A0, A1, A0 at 8; B0, B1, C1, B0 at 8
    assert "3 of 3 runs loaded" in out and "4 of 4 runs loaded" in out, out
    assert len(list(tmp_path.glob("*.pt"))) == n_stored and curves["tap · linear"].shape == (
        1,
        1,
    )  # linear probes


@pytest.mark.parametrize(
    "change", ["seed", "steps", "lr", "labels", "split", "tap weights", "pairs"]
)
def test_a_run_with_another_recipe_is_trained_not_loaded(tmp_path, data, change):
    pairs, labels, split, tap = data
    compare_strategies(
        pairs, labels, tap, ("A0",), n_runs=1, device="cpu", split=split, runs_dir=tmp_path, **TRAIN
    )
    kw = dict(seed=0, split=split, **TRAIN)
    if change == "seed":
        kw["seed"] = 1
    elif change == "steps":
        kw["steps_linear"] = 8
    elif change == "lr":
        kw["lr"] = 0.05
    elif change == "labels":
        labels = labels.copy()
        labels[split.test[0]] = 1 - labels[split.test[0]]
    elif change == "split":
        kw["split"] = split_pairs(labels, seed=1)
    elif change == "tap weights":
        tap = copy.deepcopy(tap)
        with torch.no_grad():
            next(tap.parameters()).add_(0.01)
    elif change == "pairs":
        pairs = copy.deepcopy(pairs)
        pairs.images[0] += 0.01
    compare_strategies(pairs, labels, tap, ("A0",), n_runs=1, device="cpu", runs_dir=tmp_path, **kw)
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_an_unreadable_run_is_trained_again(tmp_path, data, capsys):
    pairs, labels, split, tap = data
    first = compare_strategies(
        pairs, labels, tap, ("A0",), n_runs=1, device="cpu", split=split, runs_dir=tmp_path, **TRAIN
    )
    (path,) = tmp_path.glob("*.pt")
    path.write_bytes(b"not a checkpoint")
    again = compare_strategies(
        pairs, labels, tap, ("A0",), n_runs=1, device="cpu", split=split, runs_dir=tmp_path, **TRAIN
    )
    assert "cannot read" in capsys.readouterr().out
    np.testing.assert_array_equal(first["A0"][0].test_logits, again["A0"][0].test_logits)
    assert torch.load(path, weights_only=True)["strategy"] == "A0"  # rewritten


def test_bad_labels_fail_before_any_run_is_trained(tmp_path, data, monkeypatch):
    pairs, labels, split, tap = data
    no_training(monkeypatch)
    bad = np.zeros_like(labels)  # one class only
    with pytest.raises(experiments.InputError, match="one class only"):
        experiments.run_sweep(
            [("A0", labels, split, 0), ("A0", bad, split, 0)], pairs, tap, "cpu", runs_dir=tmp_path
        )
