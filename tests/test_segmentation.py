"""Dense downstream tasks: masks and budgets, metrics against hand computations and scikit-learn,
heads, sweeps."""

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, jaccard_score

from tapkit.data.movie import InputError, Movie
from tapkit.data.simulate import simulate_movie
from tapkit.downstream.segmentation import experiments, fit, heads, masks, metrics, tables
from tapkit.ssl.pretext import build_model


@pytest.fixture(scope="module")
def movie():
    return simulate_movie(n_frames=12, size=(64, 64), seed=3, division_rate=0.1, progress=False)


def tiny_model(seed=0):
    return build_model("tap", n_depth=2, base_filters=4, n_features=8, seed=seed).eval()


# ------------------------------------------------------------------ metrics
def test_soft_dice_and_iou_equal_hand_computation_and_sklearn():
    pred = np.array([[1, 1, 0], [0, 1, 0]])
    true = np.array([[1, 0, 0], [0, 1, 1]])
    # 2 shared pixels, 3 + 3 positives: Dice 4/6, IoU 2/4
    assert metrics.dice(pred, true) == pytest.approx(4 / 6)
    assert metrics.iou(pred, true) == pytest.approx(0.5)
    assert metrics.dice(pred, true) == pytest.approx(f1_score(true.ravel(), pred.ravel()))
    assert metrics.iou(pred, true) == pytest.approx(jaccard_score(true.ravel(), pred.ravel()))
    soft = torch.tensor([[0.5, 1.0, 0.0], [0.0, 1.0, 0.0]])
    # 2 * (0.5 + 1) / ((0.25 + 1 + 1) + 3) = 3 / 5.25
    assert float(metrics.soft_dice(soft, torch.tensor(true))) == pytest.approx(3 / 5.25, abs=1e-5)
    assert float(metrics.soft_dice(torch.tensor(pred), torch.tensor(true))) == pytest.approx(
        4 / 6, abs=1e-5
    )
    assert float(metrics.soft_dice_loss(soft, soft)) == pytest.approx(0.0, abs=1e-6)
    assert metrics.dice(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0


def test_object_matching_on_a_hand_made_case():
    true = np.zeros((10, 10), int)
    true[0:3, 0:3] = 1  # A: 9 px
    true[6:9, 6:9] = 1  # B: 9 px
    true[0:2, 7:9] = 1  # C: 4 px
    pred = np.zeros_like(true)
    pred[0:3, 0:2] = 1  # IoU 6/9 with A: a hit
    pred[6:9, 8:10] = 1  # IoU 3/12 with B: too small an overlap -> FP, and B is missed
    pred[4, 4] = 1  # FP
    s = metrics.object_scores(pred, true)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 2, 2)
    assert (
        s["precision"] == pytest.approx(1 / 3)
        and s["recall"] == pytest.approx(1 / 3)
        and s["f1"] == pytest.approx(1 / 3)
    )
    # frames separately
    stack = metrics.object_scores(np.stack([pred, true]), np.stack([true, true]))
    assert (stack["tp"], stack["fp"], stack["fn"]) == (4, 2, 2)


def test_flicker_is_zero_for_a_constant_prediction_and_counts_changes_in_stable_cells():
    labels = np.zeros((3, 8, 8), int)
    labels[:, 1:4, 1:4] = 1
    labels[:, 5:7, 5:7] = 2
    events = np.zeros_like(labels)
    events[1, 5:7, 5:7] = 1  # cell 2 divides at t=1: left out
    regions = metrics.stable_regions(labels, events, margin=0)
    assert regions[0, 2, 2] and not regions[0, 5, 5]
    pred = labels > 0
    assert np.allclose(metrics.flicker(pred, regions), 0)
    moved = pred.copy()
    moved[2, 1:4, 1:4] = False  # cell 1 vanishes at t=2
    assert np.allclose(metrics.flicker(moved, regions), [0, 1])


# ------------------------------------------------------------------ masks and budgets
def test_task_masks_and_named_errors(movie):
    nuc, div = masks.task_masks(movie, "nuclei"), masks.task_masks(movie, "divisions")
    assert nuc.shape == div.shape == movie.shape and nuc.max() == 1 and div.sum() > 0
    assert np.array_equal(div, (movie.events == 1).astype(np.uint8))
    with pytest.raises(InputError, match="events"):
        masks.task_masks(Movie(movie.images, labels=movie.labels), "divisions")
    with pytest.raises(InputError, match="labels"):
        masks.task_masks(Movie(movie.images), "nuclei")
    with pytest.raises(InputError, match="shape"):
        masks.check_masks(nuc[:, :10], movie.images)


def test_budgets_pick_the_requested_frames_deterministically(movie):
    split = masks.split_frames(12, 4)
    assert list(split.test) == [8, 9, 10, 11] and list(split.pool) == list(range(8))
    a, b = masks.pick_frames(split.pool, 3, seed=1), masks.pick_frames(split.pool, 3, seed=1)
    assert len(a) == 3 and np.array_equal(a, b) and set(a) <= set(split.pool)
    assert len(masks.pick_frames(split.pool, "all")) == 8
    div = masks.task_masks(movie, "divisions")
    with_div = masks.pick_frames(split.pool, "all", masks=div)
    assert all(div[t].any() for t in with_div)
    with pytest.raises(InputError, match="budget=9"):
        masks.pick_frames(split.pool, 9)
    with pytest.raises(InputError, match="n_test"):
        masks.split_frames(5, 4)


# ------------------------------------------------------------------ heads and fitting
def test_heads_on_frozen_features_leave_the_backbone_unchanged(movie):
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    m, split = masks.task_masks(movie, "nuclei"), masks.split_frames(12, 4, 2)
    results = experiments.budget_sweep(
        {"tap": model},
        movie,
        {"nuclei": m},
        split,
        budgets=(1,),
        heads=("linear", "conv"),
        n_runs=1,
        steps_head=4,
        n_evals=4,
        lr_grid=(1e-3,),
        crop=32,
        batch_size=2,
    )["nuclei"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [r.row for r in results] == ["tap · linear", "tap · conv"]
    assert all(0 <= r.scores["dice"] <= 1 for r in results)


def test_a_head_learns_nuclei_from_features():
    rng = np.random.default_rng(0)
    target = (rng.random((4, 32, 32)) > 0.5).astype(np.uint8)
    feats = torch.from_numpy(
        np.stack([target * 2.0 - 1, rng.normal(size=target.shape)], 1)
    ).float()  # (4, 2, 32, 32)
    head = heads.make_pixel_head("linear", 2, seed=0)
    losses = fit.fit_dense(
        head, head.parameters(), feats, target, np.arange(3), steps=60, crop=16, lr=0.1
    ).losses
    assert losses[-1] < losses[0]
    probs = fit.predict_dense(head, feats, [3])
    assert metrics.dice(probs[0] > 0.5, target[3]) > 0.95


def test_end_to_end_trains_the_encoder_and_from_scratch_differs_per_seed(movie):
    model = tiny_model()
    net = heads.SegmentationNet(model, heads.make_pixel_head("conv", 8))
    before = [p.clone() for p in net.encoder.backbone.parameters()]
    m = masks.task_masks(movie, "nuclei")
    fit.fit_dense(
        net,
        net.trainable(),
        fit.frame_inputs(movie),
        m,
        np.arange(4),
        steps=2,
        crop=32,
        batch_size=2,
    )
    assert any(not torch.equal(a, b) for a, b in zip(before, net.encoder.backbone.parameters()))
    # the pretrained model is copied
    assert all(torch.equal(a, b) for a, b in zip(before, model.backbone.parameters()))
    w0 = next(heads.fresh_encoder(model, 0).parameters())
    assert not torch.equal(w0, next(heads.fresh_encoder(model, 1).parameters()))
    assert torch.equal(w0, next(heads.fresh_encoder(model, 0).parameters()))


def test_bad_input_raises_named_errors_before_training(movie):
    m, split = masks.task_masks(movie, "nuclei"), masks.split_frames(12, 4)
    with pytest.raises(InputError, match="budget=20"):
        experiments.budget_sweep(
            {"tap": tiny_model()}, movie, {"nuclei": m}, split, budgets=(1, 20)
        )
    with pytest.raises(InputError, match="masks"):
        fit.fit_dense(
            heads.make_pixel_head("linear", 1),
            [],
            fit.frame_inputs(movie),
            m[:, :30],
            np.arange(2),
            steps=1,
        )
    with pytest.raises(InputError, match="head"):
        heads.make_pixel_head("mlp", 4)


def test_results_table_and_budget_to_reach():
    rs = [
        experiments.DenseResult("a · conv", b, s, np.arange(n), {"dice": d, "object_f1": d / 2})
        for b, n, s, d in [(1, 1, 0, 0.5), (1, 1, 1, 0.7), ("all", 8, 0, 0.9), ("all", 8, 1, 0.9)]
    ]
    table = tables.results_table(rs)
    assert table["a · conv"]["1"]["dice"] == pytest.approx(0.6) and table["a · conv"]["1"][
        "dice_std"
    ] == pytest.approx(0.1)
    assert tables.budget_to_reach(table, reference=0.9) == {"a · conv": 8}
    assert tables.budget_to_reach(table, reference=0.62) == {"a · conv": 1}
    assert "a · conv" in tables.format_table(table)


def test_frozen_features_are_standardised_per_channel(movie):
    z = fit.feature_inputs(tiny_model(), movie, torch.device("cpu"))
    assert z.shape == (12, 8, 64, 64) and z.is_contiguous(memory_format=torch.channels_last)
    # statistics of a pixel sample
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(8), atol=0.2)
    assert torch.allclose(z.std(dim=(0, 2, 3)), torch.ones(8), atol=0.2)


def test_end_to_end_rows_see_the_data_batchnorm_statistics_and_differ(movie):
    """A network trained a few steps keeps a new network's BatchNorm statistics unless calibrated:
    in eval mode its features collapse and fine-tuned and from scratch predict the same constant map
    (notebook 09, smoke)."""
    # running statistics of a new network, as after a few pretraining steps
    pretrained = tiny_model(seed=7)
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}
    m, split = masks.task_masks(movie, "nuclei"), masks.split_frames(12, 4, 2)
    images = fit.frame_inputs(movie)
    kw = dict(
        budgets=(1,),
        n_runs=2,
        seed=0,
        steps_end_to_end=4,
        n_evals=4,
        lr_grid=(1e-3,),
        crop=32,
        batch_size=2,
    )
    tuned = experiments.end_to_end_sweep(
        "tap fine-tuned", pretrained, images, m, split, pretrained=True, **kw
    )
    scratch = experiments.end_to_end_sweep(
        experiments.SCRATCH, pretrained, images, m, split, pretrained=False, **kw
    )
    spread = [float(r.example.astype(np.float32).std()) for r in tuned + scratch]
    # not one constant map (uncalibrated: std <= 0.0008, calibrated >= 0.01)
    assert min(spread) > 0.005, spread
    gaps = [
        float(np.abs(a.example.astype(np.float32) - b.example).max())
        for a, b in zip(tuned, scratch)
    ]
    # the encoder shapes the map (uncalibrated: the shared head's, gaps <= 0.007)
    assert min(gaps) > 0.05, gaps
    # calibrated a copy
    assert all(torch.equal(before[k], v) for k, v in pretrained.state_dict().items())
