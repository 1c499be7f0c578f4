"""The fair protocol of the dense sweeps: validation selection in fit_dense, held-out validation
frames, steps per row kind, paired labelled frames, lr chosen on validation from the grid."""

import numpy as np
import pytest
import torch

from tapkit.data.movie import InputError
from tapkit.data.simulate import simulate_movie
from tapkit.downstream.protocol import eval_steps
from tapkit.downstream.segmentation import experiments, fit, heads, masks, tables
from tapkit.ssl.pretext import build_model


@pytest.fixture(scope="module")
def movie():
    return simulate_movie(n_frames=14, size=(64, 64), seed=3, division_rate=0.1, progress=False)


def tiny_model(seed=0):
    return build_model("tap", n_depth=2, base_filters=4, n_features=8, seed=seed).eval()


def _features_and_target(n=6, size=32):
    """A 2-channel input whose first channel is the target (as +-1), the second noise."""
    rng = np.random.default_rng(0)
    target = (rng.random((n, size, size)) > 0.5).astype(np.uint8)
    feats = torch.from_numpy(np.stack([target * 2.0 - 1, rng.normal(size=target.shape)], 1)).float()
    return feats, target


def test_fit_dense_restores_the_best_validation_state():
    """A head that segments well, then trains on inverted labels while validation keeps the true
    ones: validation gets worse after a point. The restored weights score the best validation Dice,
    not the last weights' score."""
    import copy

    feats, target = _features_and_target()
    head = heads.make_pixel_head("linear", 2, seed=0)
    good = fit.fit_dense(
        head,
        head.parameters(),
        feats,
        target,
        np.arange(3),
        steps=60,
        crop=16,
        lr=0.1,
        val_frames=[4, 5],
        n_evals=6,
    )
    assert good.best_score > 0.95
    wrong = target.copy()
    # the training frames now teach the opposite; validation frames stay true
    wrong[:3] = 1 - target[:3]
    twin = copy.deepcopy(head)
    run = fit.fit_dense(
        head,
        head.parameters(),
        feats,
        wrong,
        np.arange(3),
        steps=40,
        crop=16,
        lr=0.05,
        val_frames=[4, 5],
        n_evals=10,
    )
    # no validation
    last = fit.fit_dense(
        twin, twin.parameters(), feats, wrong, np.arange(3), steps=40, crop=16, lr=0.05
    )
    assert run.val_steps == eval_steps(40, 10) and len(run.losses) == len(last.losses) == 40
    # validation got much worse after some point
    assert run.val_curve[-1] < max(run.val_curve) - 0.3
    assert (
        run.best_score == max(run.val_curve)
        and run.best_step == run.val_steps[int(np.argmax(run.val_curve))] < 40
    )
    # restored
    assert fit.validation_dice(head, feats, wrong, [4, 5]) == pytest.approx(run.best_score)
    # the last weights
    assert fit.validation_dice(twin, feats, wrong, [4, 5]) == pytest.approx(run.val_curve[-1])
    assert last.val_curve == [] and last.best_step == 0
    with pytest.raises(InputError, match="validation frames"):
        fit.fit_dense(
            head, head.parameters(), feats, wrong, np.arange(3), steps=2, crop=16, val_frames=[2, 4]
        )


def test_ties_keep_the_earlier_state():
    """lr 0 never changes the weights: every evaluation ties and the first one is kept."""
    feats, target = _features_and_target()
    head = heads.make_pixel_head("linear", 2, seed=0)
    run = fit.fit_dense(
        head,
        head.parameters(),
        feats,
        target,
        np.arange(3),
        steps=8,
        crop=16,
        lr=0.0,
        val_frames=[4, 5],
        n_evals=4,
    )
    assert len(set(run.val_curve)) == 1 and run.best_step == run.val_steps[0] == 2 and run.converged


def test_split_frames_holds_validation_out_of_pool_and_test():
    split = masks.split_frames(64, 10, 4)
    pool, val, test = set(split.pool), set(split.val), set(split.test)
    assert len(val) == 4 and not pool & val and not pool & test and not val & test
    assert pool | val | test == set(range(64)) and list(split.test) == list(range(54, 64))
    # spread over the frames before the test block
    assert max(val) < 54 and min(val) < 27 < max(val)
    assert len(masks.split_frames(12, 4).val) == 0  # n_val defaults to none
    for bad in (-1, 7, 1.5, True):
        with pytest.raises(InputError, match="n_val"):
            masks.split_frames(12, 4, bad)


def test_bad_n_val_and_validation_without_positives_raise_before_training(movie, monkeypatch):
    calls = []
    monkeypatch.setattr(experiments, "fit_dense", lambda *a, **k: calls.append(1))
    div, nuc = masks.task_masks(movie, "divisions"), masks.task_masks(movie, "nuclei")
    no_val = masks.split_frames(14, 4)
    with pytest.raises(InputError, match="n_val"):
        experiments.budget_sweep(
            {"tap": tiny_model()}, movie, {"nuclei": nuc}, no_val, budgets=(1,), steps_head=4
        )
    split = masks.split_frames(14, 4, 2)
    empty = div.copy()
    empty[split.val] = 0  # no division in the validation frames
    with pytest.raises(InputError, match="n_val"):
        experiments.budget_sweep(
            {"tap": tiny_model()},
            movie,
            {"nuclei": nuc, "divisions": empty},
            split,
            budgets=(1,),
            steps_head=4,
        )
    with pytest.raises(InputError, match="lr_grid"):
        experiments.budget_sweep(
            {"tap": tiny_model()},
            movie,
            {"nuclei": nuc},
            split,
            budgets=(1,),
            steps_head=4,
            lr_grid=(),
        )
    with pytest.raises(InputError, match="n_evals"):
        experiments.budget_sweep(
            {"tap": tiny_model()},
            movie,
            {"nuclei": nuc},
            split,
            budgets=(1,),
            steps_head=4,
            n_evals=2,
        )
    assert calls == []  # nothing trained


@pytest.fixture(scope="module")
def sweep(movie):
    nuc = masks.task_masks(movie, "nuclei")
    split = masks.split_frames(14, 4, 2)
    model = tiny_model()
    runs = experiments.budget_sweep(
        {"tap": model},
        movie,
        {"nuclei": nuc},
        split,
        budgets=(1, 3),
        heads=("linear", "conv"),
        end_to_end={experiments.SCRATCH: None},
        end_to_end_budgets=(1, 3),
        n_runs=2,
        steps_head=6,
        steps_end_to_end=4,
        n_evals=4,
        lr_grid=(1e-3, 3e-3),
        crop=32,
        batch_size=2,
    )["nuclei"]
    return runs, split


def test_steps_are_the_same_for_every_budget_of_a_row_kind(sweep):
    runs, split = sweep
    heads_steps = {r.steps for r in runs if " · " in r.row}
    e2e_steps = {r.steps for r in runs if " · " not in r.row}
    assert heads_steps == {6} and e2e_steps == {4}
    assert all(
        r.val_steps == eval_steps(r.steps, 4) and len(r.val_curve) == len(r.val_steps) for r in runs
    )
    assert all(r.best_step in r.val_steps for r in runs)


def test_rows_at_the_same_budget_and_seed_train_on_the_same_frames(sweep):
    runs, split = sweep
    by = {}
    for r in runs:
        by.setdefault((str(r.budget), r.seed), set()).add(tuple(r.frames.tolist()))
        assert not set(r.frames.tolist()) & set(split.val.tolist()) | set(
            split.test.tolist()
        ) & set(r.frames.tolist())
    # one set of frames per (budget, seed)
    assert len(by) == 4 and all(len(frames) == 1 for frames in by.values())
    a, b = tables.paired(runs, "tap · conv", experiments.SCRATCH, 1)
    assert len(a) == len(b) == 2
    assert a == [
        r.scores["dice"]
        for r in sorted(runs, key=lambda r: r.seed)
        if r.row == "tap · conv" and r.budget == 1
    ]
    with pytest.raises(InputError, match="no runs"):
        tables.paired(runs, "tap · conv", "mim · conv", 1)


def test_lr_is_selected_from_the_grid_on_validation(movie, monkeypatch):
    """The lr with the best validation Dice wins on the first seed; the other seeds reuse it."""
    nuc = masks.task_masks(movie, "nuclei")
    split = masks.split_frames(14, 4, 2)
    real_fit, seen = experiments.fit_dense, []

    def fake_fit(*args, lr, seed, **kw):
        run = real_fit(*args, lr=lr, seed=seed, **kw)
        run.best_score = {1e-3: 0.2, 3e-3: 0.7, 1e-2: 0.4}[lr]  # pretend validation prefers 3e-3
        seen.append((seed, lr))
        return run

    monkeypatch.setattr(experiments, "fit_dense", fake_fit)
    runs = experiments.budget_sweep(
        {"tap": tiny_model()},
        movie,
        {"nuclei": nuc},
        split,
        budgets=(1,),
        heads=("linear",),
        n_runs=3,
        steps_head=4,
        n_evals=4,
        lr_grid=(1e-3, 3e-3, 1e-2),
        crop=32,
        batch_size=2,
    )["nuclei"]
    assert seen == [(0, 1e-3), (0, 3e-3), (0, 1e-2), (1, 3e-3), (2, 3e-3)]
    assert [r.lr for r in runs] == [3e-3] * 3 and [r.seed for r in runs] == [0, 1, 2]
    table = tables.results_table(runs)
    assert table["tap · linear"]["1"]["lr"] == 3e-3 and table["tap · linear"]["1"]["n_runs"] == 3


def test_table_marks_unconverged_cells(sweep):
    runs, _ = sweep
    runs = [
        experiments.DenseResult(
            r.row, r.budget, r.seed, r.frames, r.scores, lr=r.lr, converged=(r.seed == 0)
        )
        if r.row == "tap · conv"
        else experiments.DenseResult(
            r.row, r.budget, r.seed, r.frames, r.scores, lr=r.lr, converged=True
        )
        for r in runs
    ]
    table = tables.results_table(runs)
    assert (
        table["tap · conv"]["1"]["converged"] is False
        and table["tap · linear"]["1"]["converged"] is True
    )
    text = tables.format_table(table)
    starred = [line for line in text.splitlines() if line.rstrip().endswith("*")]
    assert (
        starred
        and all(line.startswith("tap · conv") for line in starred)
        and "had not converged" in text
    )
    checks = tables.more_labels_check(table)
    assert set(checks) == set(table) and all(len(v) == 3 for v in checks.values())


def test_fit_dense_lr_is_a_cosine_unless_an_optimizer_is_given():
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from tapkit.downstream.segmentation.fit import fit_dense
    from tapkit.downstream.segmentation.heads import make_pixel_head

    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(4, 3, 16, 16)).astype(np.float32))
    m = (rng.random((4, 16, 16)) > 0.7).astype(np.uint8)
    seen = []
    hook = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"])
    )
    try:
        head = make_pixel_head("linear", 3, 0)
        fit_dense(
            head, head.parameters(), x, m, np.array([0, 1]), steps=10, crop=8, batch_size=2, lr=1e-2
        )
        cosine, seen[:] = list(seen), []
        opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        fit_dense(
            head,
            head.parameters(),
            x,
            m,
            np.array([0, 1]),
            steps=5,
            crop=8,
            batch_size=2,
            optimizer=opt,
        )
    finally:
        hook.remove()
    np.testing.assert_allclose(
        cosine, [1e-2 * (1 + np.cos(np.pi * k / 10)) / 2 for k in range(10)], rtol=1e-6
    )
    assert seen == [1e-3] * 5  # the caller's optimizer keeps its own lr (paper 004's schedule)


def test_a_frozen_random_encoder_is_calibrated_on_the_movie_frames():
    from tapkit.downstream.segmentation.heads import fresh_encoder
    from tapkit.ssl.tap import TAPNet

    model = TAPNet(
        n_depth=2, base_filters=4, n_features=4, backbone_features=4, head_features=4, seed=0
    )
    # not a multiple of 4: cut
    frames = np.random.default_rng(1).random((6, 37, 41)).astype(np.float32)
    plain, random = fresh_encoder(model, 5), fresh_encoder(model, 5, frames)
    assert plain.training and not random.training  # a network to train vs a frozen baseline
    with torch.no_grad():
        std = random.eval().embed(torch.as_tensor(frames[:2, None, :36, :40])).std(dim=(0, 2, 3))
    assert ((std > 0.5) & (std < 2.0)).all(), std
