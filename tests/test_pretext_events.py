"""compare_pretext: heads on the frozen features of each pretext model, each model's features
computed once."""

from __future__ import annotations

import numpy as np
import pytest

from tapkit.data import datasets
from tapkit.downstream.events import compare_pretext as pretext_events, criteria, crops, fit
from tapkit.ssl.pretext import build_model

SMALL = dict(n_depth=2, base_filters=4, seed=0)


@pytest.fixture(scope="module")
def labelled():
    movie = datasets.load("simulated", seed=0, n_frames=16, size=(96, 96))
    pairs = crops.crop_pairs(movie, n_pairs=160, size=32, seed=0, event_fraction=0.4)
    labels = criteria.label_pairs(pairs, "any-either")
    return pairs, labels, crops.split_pairs(labels, seed=0)


def test_every_model_gets_both_heads_and_a_curve_with_features_computed_once(labelled, monkeypatch):
    pairs, labels, split = labelled
    calls = []
    original = fit.compute_features
    monkeypatch.setattr(
        fit,
        "compute_features",
        lambda enc, images, *a, **k: (
            calls.append(type(enc).__name__) or original(enc, images, *a, **k)
        ),
    )
    models = {"tap": build_model("tap", **SMALL), "mim": build_model("mim", **SMALL)}
    results, curves = pretext_events.compare_pretext(
        pairs,
        labels,
        split,
        models,
        baselines=("B0", "B1"),
        budgets=(8,),
        n_runs=2,
        seed=0,
        device="cpu",
        steps_linear=4,
        steps_resnet=4,
        n_evals=4,
    )
    assert list(results) == [
        "tap · linear",
        "tap · ResNet",
        "mim · linear",
        "mim · ResNet",
        "random (frozen) · linear",
        "random (frozen) · ResNet",
    ]
    assert all(len(runs) == 2 for runs in results.values())
    assert [r.seed for r in results["mim · ResNet"]] == [0, 1]
    assert curves["n_train"] == [8] and set(curves) == {
        "n_train",
        "tap · linear",
        "mim · linear",
        "random (frozen) · linear",
    }  # linear probes
    assert all(np.asarray(v).shape == (1, 2) for k, v in curves.items() if k != "n_train")
    # features: once per pretrained model (its 6 runs share them), once per seed of the random
    # network
    assert calls.count("MaskedModel") == 1 and calls.count("TAPNet") == 1 + 2, calls
    table = pretext_events.pretext_table(results)
    entries = pretext_events.record_entries(table, {"tap": 800, "mim": 800, "random (frozen)": 0})
    assert set(entries) == {"tap", "mim", "random (frozen)"} and entries["mim"]["steps"] == 800
    assert set(entries["mim"]) == {"steps", "linear", "resnet"}
    assert entries["mim"]["resnet"]["f1"] == pytest.approx(table["mim · ResNet"]["f1"][1])
    text = pretext_events.format_pretext_table(table, {"tap": 800})
    assert "mim · ResNet" in text and "800" in text.splitlines()[2]
