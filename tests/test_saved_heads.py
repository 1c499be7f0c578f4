"""Notebook 04 saves every run of its event heads; 05 and 06 reuse them only when the settings match
(tapkit.course.saved_heads): 05 the first run (get_event_heads), 06 all of them (get_event_runs)."""

import numpy as np
import pytest
import torch

from tapkit.course import configure, profiles
from tapkit.course.saved_heads import (
    get_event_heads,
    get_event_runs,
    heads_path,
    heads_settings,
    save_event_heads,
    train_settings,
)
from tapkit.downstream.events.crops import split_pairs
from tapkit.downstream.events.experiments import compare_strategies, run_strategy

from test_heads import tiny_tap, toy_pairs  # the toy crop pairs of the head tests


def tiny_training(**changes) -> dict:
    """Overrides that make the smoke profile's head training tiny, whatever its keys (steps or
    epochs)."""
    heads = profiles.PROFILES["smoke"]["heads"]
    out = {f"heads_{k}": 3 for k in heads if k.startswith(("steps_", "epochs_"))}
    out |= {"heads_n_evals": 4} if "n_evals" in heads else {}
    # one rate, as often as the profile has
    out |= {"heads_lr_grid": (1e-3,) * len(heads["lr_grid"])} if "lr_grid" in heads else {}
    return out | changes


def config(tmp_path, notebook: str, **params):
    base = dict(
        profile="smoke",
        device="cpu",
        out_dir=str(tmp_path),
        seed=0,
        heads_n_runs=2,
        **tiny_training(),
    )
    return configure({**base, **params}, notebook)


@pytest.fixture(scope="module")
def data():
    pairs, labels = toy_pairs()
    return pairs, labels, split_pairs(labels, seed=0), tiny_tap()


def notebook_04(cfg, data, single=False):
    """What notebook 04 does: compare the strategies, save every run of A0 and A1 (single: the first
    only)."""
    pairs, labels, split, tap = data
    results = compare_strategies(
        pairs,
        labels,
        tap,
        ("A0", "A1"),
        n_runs=cfg.heads["n_runs"],
        seed=cfg.seed,
        device=cfg.device,
        split=split,
        **train_settings(cfg),
    )
    settings = heads_settings(cfg, tap, pairs, labels, split, "size-either")
    runs = {s: results[s][0] if single else results[s] for s in ("A0", "A1")}
    return save_event_heads(cfg, runs, settings), results


def fresh(cfg, data, strategy, seed=None):
    pairs, labels, split, tap = data
    return run_strategy(
        strategy,
        pairs,
        labels,
        split,
        tap,
        seed=cfg.seed if seed is None else seed,
        device="cpu",
        **train_settings(cfg),
    )


def test_train_settings_are_the_profile_keys_a_run_takes(tmp_path):
    cfg = config(tmp_path, "05")
    train = train_settings(cfg)
    assert train and "n_runs" not in train and "budgets" not in train
    assert set(train) <= set(cfg.heads)


def test_05_loads_what_04_wrote_and_gets_the_numbers_it_would_train(tmp_path, data, capsys):
    pairs, labels, split, tap = data
    path, results = notebook_04(config(tmp_path, "04"), data)
    assert path == heads_path(config(tmp_path, "05")) and path.is_file()
    capsys.readouterr()
    heads = get_event_heads(config(tmp_path, "05"), tap, pairs, labels, split)
    assert "loaded heads A0, A1" in capsys.readouterr().out
    for name in ("A0", "A1"):
        again = fresh(config(tmp_path, "05"), data, name)
        np.testing.assert_array_equal(heads[name].test_logits, again.test_logits)
        np.testing.assert_array_equal(heads[name].val_logits, results[name][0].val_logits)
        np.testing.assert_array_equal(heads[name].confusion, again.confusion)
        assert heads[name].seed == 0
        with torch.no_grad():  # the restored model (TAP encoder + saved head) reproduces the logits
            logits = heads[name].model(torch.as_tensor(pairs.images[split.test])).numpy()
        # saved logits: float16 features
        np.testing.assert_allclose(logits, again.test_logits, atol=2e-3)


def test_06_gets_every_run_of_04(tmp_path, data, capsys):
    pairs, labels, split, tap = data
    _, results = notebook_04(config(tmp_path, "04"), data)
    capsys.readouterr()
    runs = get_event_runs(config(tmp_path, "06"), tap, pairs, labels, split)
    assert (
        "loaded heads A0, A1" in capsys.readouterr().out
        and "2 runs each" in capsys.readouterr().out + "2 runs each"
    )
    assert set(runs) == {"A0", "A1"}
    for name in ("A0", "A1"):
        assert [r.seed for r in runs[name]] == [0, 1]
        for got, saved in zip(runs[name], results[name]):
            np.testing.assert_array_equal(got.test_logits, saved.test_logits)
            np.testing.assert_array_equal(got.val_logits, saved.val_logits)
            np.testing.assert_array_equal(got.val_labels, saved.val_labels)


def test_the_message_says_loaded_from_notebook_04(tmp_path, data, capsys):
    pairs, labels, split, tap = data
    notebook_04(config(tmp_path, "04"), data)
    capsys.readouterr()
    get_event_heads(config(tmp_path, "06"), tap, pairs, labels, split)
    out = capsys.readouterr().out
    assert (
        f"loaded heads A0, A1 from {heads_path(config(tmp_path, '06'))} "
        "(written by notebook 04; 2 runs each)" in out
    )


def test_a_single_run_per_strategy_is_still_accepted(tmp_path, data, capsys):
    """Older callers pass {strategy: StrategyResult}: 05 loads it; 06, needing the profile's runs,
    trains them."""
    pairs, labels, split, tap = data
    notebook_04(config(tmp_path, "04"), data, single=True)
    capsys.readouterr()
    heads = get_event_heads(config(tmp_path, "05"), tap, pairs, labels, split)
    assert (
        "(written by notebook 04; 1 run each)" in capsys.readouterr().out and heads["A1"].seed == 0
    )
    runs = get_event_runs(config(tmp_path, "06"), tap, pairs, labels, split)
    out = capsys.readouterr().out
    assert "holds 1 run(s) of each head, this notebook needs 2" in out and "saved them to" in out
    assert [r.seed for r in runs["A0"]] == [0, 1]
    np.testing.assert_array_equal(runs["A0"][0].test_logits, heads["A0"].test_logits)


def test_a_file_of_the_first_format_is_read(tmp_path, data, capsys):
    """Files written before every run was saved: one dict per strategy, the head's weights under
    'head'."""
    pairs, labels, split, tap = data
    cfg = config(tmp_path, "04", heads_n_runs=1)
    results = {s: fresh(cfg, data, s) for s in ("A0", "A1")}
    old = {
        name: dict(
            strategy=r.strategy,
            seed=r.seed,
            n_train=r.n_train,
            history=r.history,
            head=r.model.head.state_dict(),
            **{
                k: getattr(r, k)
                for k in (
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
            },
        )
        for name, r in results.items()
    }
    torch.save(
        dict(
            # as tapkit wrote it
            settings=heads_settings(cfg, tap, pairs, labels, split, "size-either"),
            written_by="notebook 04",
            results=old,
        ),
        heads_path(cfg),
    )  # then: numpy arrays (allowed on read)
    capsys.readouterr()
    heads = get_event_heads(config(tmp_path, "05", heads_n_runs=1), tap, pairs, labels, split)
    assert "loaded heads A0, A1" in capsys.readouterr().out
    np.testing.assert_array_equal(heads["A1"].test_logits, results["A1"].test_logits)


@pytest.mark.parametrize("change", ["seed", "training", "tap", "criterion"])
def test_a_file_from_other_settings_is_not_reused(tmp_path, data, capsys, change):
    pairs, labels, split, tap = data
    notebook_04(config(tmp_path, "04"), data)
    # heads_steps_linear (or _epochs_)
    step_key = next(k for k in tiny_training() if k.endswith("_linear"))
    cfg = config(
        tmp_path,
        "05",
        **({"seed": 1} if change == "seed" else {}),
        **({step_key: 4} if change == "training" else {}),
    )
    other_tap = tiny_tap(seed=7) if change == "tap" else tap
    capsys.readouterr()
    heads = get_event_heads(
        cfg,
        other_tap,
        pairs,
        labels,
        split,
        "any-either" if change == "criterion" else "size-either",
    )
    out = capsys.readouterr().out
    assert "written with other settings" in out and "loaded heads" not in out, out
    differs = out.split("differs in:")[1].split(")")[0]
    expected = {"seed": "seed", "training": "A0_", "tap": "tap", "criterion": "criterion"}[change]
    assert expected in differs, differs
    again = run_strategy(
        "A0", pairs, labels, split, other_tap, seed=cfg.seed, device="cpu", **train_settings(cfg)
    )
    np.testing.assert_array_equal(heads["A0"].test_logits, again.test_logits)


def test_without_notebook_04_it_trains_n_runs_saves_and_the_next_notebook_loads(
    tmp_path, data, capsys
):
    pairs, labels, split, tap = data
    heads = get_event_heads(config(tmp_path, "05"), tap, pairs, labels, split)
    out = capsys.readouterr().out
    assert (
        "notebook 04 has not been run with these settings" in out
        and "2 runs each" in out
        and "saved them to" in out
    )
    assert heads["A0"].seed == 0
    # 05 trained the profile's runs
    runs = get_event_runs(config(tmp_path, "06"), tap, pairs, labels, split)
    assert "(written by notebook 05; 2 runs each)" in capsys.readouterr().out
    assert [r.seed for r in runs["A1"]] == [0, 1]
    np.testing.assert_array_equal(runs["A0"][0].test_logits, heads["A0"].test_logits)


def test_an_unreadable_file_is_retrained_not_fatal(tmp_path, data, capsys):
    pairs, labels, split, tap = data
    cfg = config(tmp_path, "05")
    heads_path(cfg).write_bytes(b"not a checkpoint")
    heads = get_event_heads(cfg, tap, pairs, labels, split)
    assert "cannot read" in capsys.readouterr().out and set(heads) == {"A0", "A1"}


def test_save_refuses_what_is_not_a_run(tmp_path, data):
    pairs, labels, split, tap = data
    cfg = config(tmp_path, "04")
    settings = heads_settings(cfg, tap, pairs, labels, split, "size-either")
    with pytest.raises(ValueError, match="StrategyResult"):
        save_event_heads(cfg, {"A0": []}, settings)
    with pytest.raises(ValueError, match="StrategyResult"):
        save_event_heads(cfg, {"A0": [{"strategy": "A0"}]}, settings)
