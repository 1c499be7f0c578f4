"""Notebook 04 saves its event heads; 05 and 06 reuse them only when the settings match (tapkit.course.saved_heads)."""

import numpy as np
import pytest
import torch

from tapkit.course import configure
from tapkit.course.saved_heads import get_event_heads, heads_path, heads_settings, save_event_heads
from tapkit.downstream.events.crops import split_pairs
from tapkit.downstream.events.experiments import compare_strategies, run_strategy

from test_heads import tiny_tap, toy_pairs



def config(tmp_path, notebook: str, **params):
    base = dict(profile="smoke", device="cpu", out_dir=str(tmp_path), seed=0, heads_epochs_linear=2, heads_epochs_resnet=1)
    return configure({**base, **params}, notebook)


@pytest.fixture(scope="module")
def data():
    pairs, labels = toy_pairs()
    return pairs, labels, split_pairs(labels, seed=0), tiny_tap()


def notebook_04(cfg, data):
    """What notebook 04 does: compare the strategies, save the first run of A0 and A1."""
    pairs, labels, split, tap = data
    results = compare_strategies(pairs, labels, tap, ("A0", "A1"), n_runs=1, seed=cfg.seed, device=cfg.device,
                                 split=split, epochs_linear=cfg.heads["epochs_linear"],
                                 epochs_resnet=cfg.heads["epochs_resnet"])
    settings = heads_settings(cfg, tap, pairs, labels, split, "size-either")
    return save_event_heads(cfg, {s: results[s][0] for s in ("A0", "A1")}, settings), results


def test_05_loads_what_04_wrote_and_gets_the_numbers_it_would_train(tmp_path, data, capsys):
    pairs, labels, split, tap = data
    path, results = notebook_04(config(tmp_path, "04"), data)
    assert path == heads_path(config(tmp_path, "05")) and path.is_file()
    capsys.readouterr()
    heads = get_event_heads(config(tmp_path, "05"), tap, pairs, labels, split)
    assert "loaded heads A0, A1" in capsys.readouterr().out
    for name, epochs in (("A0", dict(epochs_linear=2)), ("A1", dict(epochs_resnet=1))):
        fresh = run_strategy(name, pairs, labels, split, tap, seed=0, device="cpu", **epochs)
        np.testing.assert_array_equal(heads[name].test_logits, fresh.test_logits)
        np.testing.assert_array_equal(heads[name].val_logits, results[name][0].val_logits)
        np.testing.assert_array_equal(heads[name].confusion, fresh.confusion)
        with torch.no_grad():  # the restored model (TAP encoder + saved head) reproduces the logits
            logits = heads[name].model(torch.as_tensor(pairs.images[split.test])).numpy()
        np.testing.assert_allclose(logits, fresh.test_logits, atol=2e-3)  # saved logits: float16 features


def test_the_message_says_loaded_from_notebook_04(tmp_path, data, capsys):
    pairs, labels, split, tap = data
    notebook_04(config(tmp_path, "04"), data)
    capsys.readouterr()
    get_event_heads(config(tmp_path, "06"), tap, pairs, labels, split)
    out = capsys.readouterr().out
    assert f"loaded heads A0, A1 from {heads_path(config(tmp_path, '06'))} (written by notebook 04)" in out


@pytest.mark.parametrize("change", ["seed", "epochs", "tap", "criterion"])
def test_a_file_from_other_settings_is_not_reused(tmp_path, data, capsys, change):
    pairs, labels, split, tap = data
    notebook_04(config(tmp_path, "04"), data)
    cfg = config(tmp_path, "05", **({"seed": 1} if change == "seed" else {}),
                 **({"heads_epochs_linear": 3} if change == "epochs" else {}))
    other_tap = tiny_tap(seed=7) if change == "tap" else tap
    capsys.readouterr()
    heads = get_event_heads(cfg, other_tap, pairs, labels, split, "any-either" if change == "criterion" else "size-either")
    out = capsys.readouterr().out
    assert "written with other settings" in out and "loaded" not in out, out
    expected = {"seed": "seed", "epochs": "epochs_linear", "tap": "tap", "criterion": "criterion"}[change]
    assert expected in out.split("differs in:")[1].split(")")[0]
    fresh = run_strategy("A0", pairs, labels, split, other_tap, seed=cfg.seed, device="cpu",
                         epochs_linear=cfg.heads["epochs_linear"])
    np.testing.assert_array_equal(heads["A0"].test_logits, fresh.test_logits)


def test_without_notebook_04_it_trains_saves_and_the_next_notebook_loads(tmp_path, data, capsys):
    pairs, labels, split, tap = data
    get_event_heads(config(tmp_path, "05"), tap, pairs, labels, split)
    out = capsys.readouterr().out
    assert "notebook 04 has not been run with these settings" in out and "saved them to" in out
    get_event_heads(config(tmp_path, "06"), tap, pairs, labels, split)
    assert "(written by notebook 05)" in capsys.readouterr().out


def test_an_unreadable_file_is_retrained_not_fatal(tmp_path, data, capsys):
    pairs, labels, split, tap = data
    cfg = config(tmp_path, "05")
    heads_path(cfg).write_bytes(b"not a checkpoint")
    heads = get_event_heads(cfg, tap, pairs, labels, split)
    assert "cannot read" in capsys.readouterr().out and set(heads) == {"A0", "A1"}
