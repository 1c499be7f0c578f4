"""Event heads, strategies A0-C1, the sweeps and tables (tapkit.downstream.events.heads /
experiments / tables)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, precision_recall_fscore_support

from tapkit import InputError
from tapkit.downstream.events.criteria import label_pairs
from tapkit.downstream.events.crops import CropPairs, split_pairs
from tapkit.downstream.events.experiments import (
    compare_criteria,
    compare_strategies,
    label_budget_curve,
    run_sweep,
    run_strategy,
    scores,
    selected_lrs,
)
from tapkit.downstream.events.heads import EventClassifier, LinearHead, ResNetHead
from tapkit.downstream.events.strategies import (
    STRATEGIES,
    StrategyResult,
    steps_for,
    trainable_parameters,
)
from tapkit.downstream.events.tables import (
    PAPER_TABLE2,
    criteria_table,
    format_confusion,
    format_criteria_table,
    format_results,
    results_table,
)
from tapkit.plot.events import plot_budget_curve, plot_results
from tapkit.ssl.tap import TAPNet

S = 16
ONE = dict(steps_linear=4, steps_resnet=4, steps_end_to_end=4, n_evals=4, lr=1e-3)
TWO = dict(steps_linear=8, steps_resnet=8, steps_end_to_end=8, n_evals=4, lr=1e-3)


def toy_pairs(n: int = 120, seed: int = 0) -> tuple[CropPairs, np.ndarray]:
    """Noise crop pairs; positives (every third) carry a bright square in one of the two frames."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.3, 0.1, (n, 2, S, S)).astype(np.float32)
    masks = np.zeros((n, 2, S, S), np.uint8)
    labels = (np.arange(n) % 3 == 0).astype(np.int64)
    for i in np.flatnonzero(labels):
        k, y, x = rng.integers(0, 2), rng.integers(0, S - 6), rng.integers(0, S - 6)
        images[i, k, y : y + 6, x : x + 6] += 1.0
        masks[i, k, y : y + 6, x : x + 6] = 1
    z = np.zeros(n, np.int64)
    return CropPairs(images, masks, z, z, z, movie_name="toy"), labels


def tiny_tap(seed: int = 0) -> TAPNet:
    return TAPNet(
        n_depth=1, base_filters=4, n_features=4, backbone_features=4, head_features=4, seed=seed
    )


@pytest.fixture(scope="module")
def data():
    pairs, labels = toy_pairs()
    return pairs, labels, split_pairs(labels, seed=0), tiny_tap()


def state(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


# ----------------------------------------------------------------------------- modules


@pytest.mark.parametrize("head", [LinearHead(8), ResNetHead(8, width=6)])
def test_heads_map_feature_pairs_to_two_logits_and_ignore_frame_order(head):
    z = torch.randn(5, 2, 8, S, S)  # (B, 2, F, S, S)
    head.eval()
    out = head(z)
    assert out.shape == (5, 2)
    torch.testing.assert_close(head(z.flip(1)), out)  # temporal mean pooling: time invariant
    head.train()
    torch.testing.assert_close(head(z.flip(1)), head(z))
    assert not torch.allclose(head(z), head(torch.randn(5, 2, 8, S, S)))


def test_linear_head_is_one_affine_map_at_inference():
    head = LinearHead(4).eval()
    head.norm.running_mean.uniform_(-1, 1)
    z1, z2 = torch.randn(3, 2, 4, S, S), torch.randn(3, 2, 4, S, S)
    mid = head((z1 + z2) / 2)
    torch.testing.assert_close(mid, (head(z1) + head(z2)) / 2)


# ----------------------------------------------------------------------------- strategies


def test_run_strategy_result_fields(data):
    pairs, labels, split, tap = data
    r = run_strategy(
        "B1", pairs, labels, split, tap, steps_resnet=8, n_evals=4, lr=1e-3, seed=0, device="cpu"
    )
    assert isinstance(r, StrategyResult) and r.strategy == "B1"
    assert r.test_logits.shape == (len(split.test), 2) and r.val_logits.shape == (len(split.val), 2)
    np.testing.assert_array_equal(r.test_index, split.test)
    np.testing.assert_array_equal(r.test_labels, labels[split.test])
    assert r.precision.shape == r.recall.shape == (2,) and r.confusion.sum() == len(split.test)
    assert (
        len(r.history["train_loss"]) == 8
        and r.history["val_step"] == [2, 4, 6, 8]
        and r.n_train == len(split.train)
    )
    assert (
        len(r.history["val_f1"]) == 4
        and r.history["best_val_f1"] == max(r.history["val_f1"])
        and r.lr == 1e-3
    )
    with torch.no_grad():  # the returned model reproduces the test logits from the images
        logits = r.model(torch.as_tensor(pairs.images[split.test])).numpy()
    np.testing.assert_allclose(logits, r.test_logits, atol=2e-3)  # cached features are float16


def test_frozen_strategies_keep_backbone_weights_end_to_end_changes_them(data):
    pairs, labels, split, tap = data
    before = state(tap)
    a = run_strategy("A1", pairs, labels, split, tap, device="cpu", **ONE)
    assert same_state(state(tap), before)  # the caller's model is untouched
    assert same_state(state(a.model.encoder.backbone), state(tap.backbone))
    assert a.model.encoder.head is None  # the time-arrow head is not part of the event classifier
    b = run_strategy("B0", pairs, labels, split, tap, seed=3, device="cpu", **ONE)

    def weights(m):
        return {k: v for k, v in state(m).items() if "running" not in k and "batches" not in k}

    # + data's BN statistics
    assert same_state(weights(b.model.encoder.backbone), weights(tiny_tap(seed=3).backbone))
    c = run_strategy("C0", pairs, labels, split, tap, seed=3, device="cpu", **ONE)
    conv = lambda m: m.encoder.backbone.out.weight  # noqa: E731
    assert not torch.equal(conv(c.model), conv(b.model))


def test_same_seed_same_numbers_other_seed_other_numbers(data):
    pairs, labels, split, tap = data
    run = lambda s, seed: run_strategy(s, pairs, labels, split, tap, seed=seed, device="cpu", **TWO)  # noqa: E731
    for s in ("A0", "C1"):
        np.testing.assert_array_equal(run(s, 1).test_logits, run(s, 1).test_logits)
        assert not np.array_equal(run(s, 1).test_logits, run(s, 2).test_logits)


def test_a_head_learns_the_toy_task(data):
    pairs, labels, split, tap = data
    r = run_strategy(
        "C0", pairs, labels, split, tap, steps_end_to_end=60, n_evals=6, lr=1e-2, device="cpu"
    )
    assert r.recall.min() > 0.7 and r.precision.min() > 0.6
    assert r.history["train_loss"][-1] < r.history["train_loss"][0]


def test_bad_inputs_raise_clear_errors(data):
    pairs, labels, split, tap = data
    with pytest.raises(InputError, match="A0, A1, B0, B1, C0, C1"):
        run_strategy("D1", pairs, labels, split, tap)
    with pytest.raises(InputError, match="tap_model"):
        run_strategy("A1", pairs, labels, split, None)
    with pytest.raises(InputError, match="label_pairs"):
        run_strategy("B0", pairs, labels[:-1], split, tap)
    with pytest.raises(InputError, match="split_pairs"):
        run_strategy(
            "B0", pairs, labels, {"train": split.train, "val": [10_000], "test": split.test}, tap
        )
    with pytest.raises(InputError, match="one class.*criterion"):
        run_strategy("B0", pairs, labels, {"train": [1, 2], "val": [3], "test": [4]}, tap)
    with pytest.raises(InputError, match="steps_linear"):
        run_strategy("B0", pairs, labels, split, tap, steps_linear=0)
    with pytest.raises(InputError, match="lr_grid"):
        run_strategy("B0", pairs, labels, split, tap, lr_grid=())
    with pytest.raises(InputError, match="n_evals"):
        run_strategy("B0", pairs, labels, split, tap, n_evals=2)
    with pytest.raises(InputError, match="CropPairs"):
        run_strategy("B0", pairs.images, labels, split, tap)


def test_step_schedule():
    # the keys of the profiles' heads section
    sched = dict(steps_linear=2, steps_resnet=3, steps_end_to_end=1)
    assert [steps_for(s, **sched) for s in STRATEGIES] == [2, 3, 2, 3, 1, 1]
    assert steps_for("C1", steps_resnet=4) == steps_for("C0") == 300 and steps_for("A0") == 500
    with pytest.raises(TypeError):
        steps_for("A0", linear=2)  # one spelling only


def test_steps_are_the_same_at_every_budget(data):
    pairs, labels, split, tap = data
    curve_runs = run_sweep(
        [("A0", labels, split_pairs(labels, seed=0, budget=b), 0) for b in (4, 10, 30)],
        pairs,
        tap,
        "cpu",
        steps_linear=12,
        n_evals=4,
        lr=1e-3,
    )
    assert [len(r.history["train_loss"]) for r in curve_runs] == [
        12,
        12,
        12,
    ]  # not epochs: same steps for 4 or 30 pairs
    assert [r.n_train for r in curve_runs] == [4, 10, 30]


def test_best_validation_weights_are_kept(data):
    """The restored weights are those of the best validation evaluation, not the last step's."""
    pairs, labels, split, tap = data
    r = run_strategy(
        "B0", pairs, labels, split, tap, steps_linear=40, n_evals=8, lr=3e-2, device="cpu"
    )
    best = int(np.argmax(r.history["val_f1"]))
    assert r.history["best_step"] == r.history["val_step"][best]
    from tapkit.downstream.events.fit import class1_f1, predict

    x_val = torch.as_tensor(pairs.images[split.val])
    assert class1_f1(
        predict(r.model, x_val, torch.device("cpu")),
        labels[split.val],
        # features float16 in training: tiny differences
    ) == pytest.approx(r.history["best_val_f1"], abs=0.02)
    assert class1_f1(r.val_logits, labels[split.val]) == r.history["best_val_f1"]


def test_lr_is_chosen_on_validation_and_reused_by_later_seeds(data):
    pairs, labels, split, tap = data
    grid = (1e-4, 3e-2)
    runs = run_sweep(
        [("B0", labels, split, s) for s in (0, 1)],
        pairs,
        tap,
        "cpu",
        steps_linear=20,
        n_evals=4,
        lr_grid=grid,
    )
    first, second = runs
    assert set(first.lr_scores) == set(grid) and first.lr == max(
        grid, key=lambda lr: (first.lr_scores[lr], -lr)
    )
    # the first seed's choice, not a new search
    assert second.lr == first.lr and second.lr_scores == {}
    assert selected_lrs({"B0": runs}) == {"B0": first.lr}
    alone = run_strategy(
        "B0",
        pairs,
        labels,
        split,
        tap,
        seed=0,
        device="cpu",
        steps_linear=20,
        n_evals=4,
        lr=first.lr,
    )
    # the selected run is that lr's run
    np.testing.assert_array_equal(alone.test_logits, first.test_logits)


# ----------------------------------------------------------------------------- tables


def fake_result(labels, preds, name="A1") -> StrategyResult:
    labels, preds = np.asarray(labels), np.asarray(preds)
    logits = np.stack([1 - preds, preds], 1).astype(np.float32)
    return StrategyResult(
        name,
        *scores(labels, logits),
        logits,
        labels,
        logits,
        labels,
        np.arange(len(labels)),
        None,
        {"converged": True},
    )


def test_results_table_means_and_stds():
    y = [0, 0, 0, 1, 1]
    runs = [
        fake_result(y, [0, 0, 1, 1, 1]),
        fake_result(y, [0, 0, 0, 0, 1]),
        fake_result(y, [0, 1, 1, 1, 0]),
    ]
    row = results_table({"A1": runs})["A1"]
    # by hand, run 1: class 1 precision 2/3, recall 1; run 2: 1, 1/2; run 3: 1/3, 1/2
    np.testing.assert_allclose(row["precision"][1], np.mean([2 / 3, 1, 1 / 3]))
    np.testing.assert_allclose(row["recall_std"][1], np.std([1, 0.5, 0.5], ddof=1))
    prf = np.array([precision_recall_fscore_support(y, r.test_logits.argmax(1))[:3] for r in runs])
    np.testing.assert_allclose(row["precision"], prf[:, 0].mean(0))
    np.testing.assert_allclose(row["recall"], prf[:, 1].mean(0))
    np.testing.assert_allclose(row["f1_std"], prf[:, 2].std(0, ddof=1))
    assert row["n_runs"] == 3
    single = results_table({"B0": runs[:1]})["B0"]
    assert single["precision_std"] == [0.0, 0.0]
    text = format_results(results_table({"A1": runs}))
    assert "A1" in text and f"({PAPER_TABLE2['A1']['precision'][1]:.2f}±" in text


def test_confusion_rows_actual_columns_predicted():
    r = fake_result([0, 0, 0, 1, 1], [0, 1, 1, 1, 0])
    np.testing.assert_array_equal(r.confusion, [[1, 2], [1, 1]])
    text = format_confusion(r)
    assert text.splitlines()[2].split() == ["actual", "0", "1", "2"] and text.splitlines()[
        3
    ].split() == ["actual", "1", "1", "1"]


def test_compare_and_budget_curve(data):
    pairs, labels, split, tap = data
    res = compare_strategies(
        pairs, labels, tap, strategies=("A0", "B1"), n_runs=2, device="cpu", **ONE
    )
    assert list(res) == ["A0", "B1"] and [r.seed for r in res["B1"]] == [0, 1]
    assert [
        r.seed
        for r in compare_strategies(
            pairs, labels, tap, ("A0",), n_runs=2, seed=5, device="cpu", **ONE
        )["A0"]
    ] == [5, 6]
    # one split for all
    np.testing.assert_array_equal(res["A0"][0].test_index, res["B1"][1].test_index)
    assert plot_results(results_table(res)).axes
    curve = label_budget_curve(
        pairs, labels, tap, budgets=[4, 10], strategies=("A0",), n_runs=2, device="cpu", **ONE
    )
    assert (
        curve["n_train"] == [4, 10]
        and np.shape(curve["A0"]) == (2, 2)
        and curve["converged"]["A0"].shape == (2, 2)
    )
    one = run_strategy(
        "A0",
        pairs,
        labels,
        split_pairs(labels, seed=0, budget=10),
        tap,
        seed=1,
        device="cpu",
        **ONE,
    )
    # budget 10, seed 1
    assert curve["A0"][1, 1] == f1_score(one.test_labels, one.test_logits.argmax(1))
    assert plot_budget_curve(curve).axes
    with pytest.raises(InputError, match="tap_model"):
        compare_strategies(pairs, labels, None, strategies=("A1",), n_runs=1)


def test_compare_criteria_uses_one_feature_cache_and_the_criterion_labels(data):
    pairs, labels, split, tap = data
    crit = (
        "any-either",
        "size-either",
    )  # the toy events sit in one frame only: no any-both positives
    res = compare_criteria(
        pairs, tap, criteria=crit, strategies=("A0",), threshold=20, device="cpu", **ONE
    )
    assert list(res) == list(crit)
    rows = criteria_table(res)
    for row in rows:
        r = res[row["criterion"]]["A0"][0]
        np.testing.assert_array_equal(
            r.test_labels, label_pairs(pairs, row["criterion"], 20)[r.test_index]
        )
    assert "(in brackets" in format_criteria_table(rows)
    with pytest.raises(InputError, match="any-both, any-either"):
        compare_criteria(pairs, tap, criteria=("size-both",))


@pytest.mark.parametrize("kind", ["A", "B", "C"])
def test_trainable_parameters_freeze_the_encoder_for_a_and_b_only(kind):
    model = EventClassifier(tiny_tap(), LinearHead(4)).train()
    enc_before, head_before = state(model.encoder), state(model.head)
    params = trainable_parameters(model, kind)
    expected = list(model.parameters()) if kind == "C" else list(model.head.parameters())
    assert [id(p) for p in params] == [id(p) for p in expected]
    opt = torch.optim.Adam(params, lr=0.1)
    x = torch.randn(4, 2, S, S)
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 0, 1])).backward()
    opt.step()
    # weights and batch-norm statistics
    assert same_state(state(model.encoder), enc_before) == (kind != "C")
    assert not same_state(state(model.head), head_before)
    with pytest.raises(InputError, match="A, B, C"):
        trainable_parameters(model, "D")


# ------------------------------------------------------------------------ fairness of the baselines


def test_frozen_random_encoder_gets_the_batchnorm_statistics_of_the_crops(data):
    """B: a new encoder in eval mode would normalise with mean 0 / var 1; with the crops' statistics
    every channel of its features is about unit-wide, and no weight changes (the same random
    network)."""
    from tapkit.downstream.events.strategies import make_encoder

    pairs, labels, split, tap = data
    plain, calibrated = make_encoder("B", tap, 3), make_encoder("B", tap, 3, pairs)
    weights = {
        k: v
        for k, v in calibrated.state_dict().items()
        if "running" not in k and "batches" not in k
    }
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in weights.items())
    assert not calibrated.training  # eval mode: a frozen encoder
    x = torch.as_tensor(pairs.images[:32, 0, None])  # (32, 1, S, S)
    with torch.no_grad():
        std = calibrated.embed(x).std(dim=(0, 2, 3))  # (F,) per channel
        # eval mode without statistics: mean 0, var 1
        std_plain = plain.eval().embed(x).std(dim=(0, 2, 3))
    assert ((std > 0.5) & (std < 2.0)).all(), std
    assert abs(std.log()).mean() < abs(std_plain.log()).mean()  # closer to unit width than without
    c = make_encoder("C", tap, 3, pairs).state_dict()  # C learns its statistics while it trains
    assert all(torch.equal(c[k], v) for k, v in plain.state_dict().items())


def test_end_to_end_starts_from_the_batchnorm_statistics_of_the_non_test_crops(data, monkeypatch):
    """C: a run of a few steps is validated and tested in eval mode. From a new network's statistics
    (mean 0, var 1) its features shrink to ~1e-3 and every pair gets the same logits (one class
    predicted for all: notebook 07's smoke 'end to end' F1 0.00); from the crops' statistics they
    are about unit-wide."""
    import tapkit.ssl.features as features

    pairs, labels, split, tap = data
    seen, calibrate = [], features.calibrate_batchnorm
    monkeypatch.setattr(
        features, "calibrate_batchnorm", lambda m, x, **kw: seen.append(x) or calibrate(m, x, **kw)
    )
    r = run_strategy(
        "C1",
        pairs,
        labels,
        split,
        tap,
        seed=3,
        device="cpu",
        steps_end_to_end=4,
        n_evals=4,
        lr=1e-6,
    )
    first = np.sort(np.concatenate([split.train, split.val]))[:256]  # no test pair, no label
    assert len(seen) == 1 and np.array_equal(seen[0], pairs.images[first].reshape(-1, 1, S, S))
    x = torch.as_tensor(pairs.images[split.test, 0, None])  # (Nt, 1, S, S)
    with torch.no_grad():
        std = r.model.encoder.eval().embed(x).std(dim=(0, 2, 3))  # (F,) per channel
    assert ((std > 0.3) & (std < 3.0)).all(), std
    # the pairs' logits differ (without the statistics: ~1e-4)
    assert r.test_logits.std(0).mean() > 3e-3


def test_event_heads_train_with_a_cosine_learning_rate(data):
    """fit: Adam's lr follows a cosine from lr to ~0 over the fixed steps (the same for every
    row)."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    pairs, labels, split, tap = data
    seen = []
    hook = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"])
    )
    try:
        run_strategy(
            "A0", pairs, labels, split, tap, steps_linear=20, n_evals=4, lr=1e-2, device="cpu"
        )
    finally:
        hook.remove()
    expected = [1e-2 * (1 + np.cos(np.pi * k / 20)) / 2 for k in range(20)]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)
    assert seen[-1] < 0.01 * seen[0]
