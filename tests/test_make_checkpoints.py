"""scripts/make_checkpoints.py --from-checkpoint takes a finished training of exactly the asked
settings only."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tapkit.ssl.trainer import train_tap

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_checkpoints.py"


def script():
    spec = importlib.util.spec_from_file_location("make_checkpoints", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "full.pt"
    settings = dict(
        epochs=2,
        steps_per_epoch=2,
        batch_size=4,
        patch=16,
        val_steps=1,
        lr=1e-3,
        augment="none",
        model_kwargs=dict(n_depth=1, base_filters=4, n_features=4),
        per_crop=True,
    )
    movie = np.random.default_rng(0).random((8, 40, 40)).astype(np.float32)
    train_tap([movie], seed=0, device="cpu", progress=False, checkpoint=path, **settings)
    return path, settings


def test_the_same_settings_are_accepted(trained):
    path, settings = trained
    assert script().same_recipe_checkpoint(path, settings) == path


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(lr=3e-3), "not trained with these settings"),
        (dict(per_crop=False), "not trained with these settings"),
        (dict(epochs=3), "not trained with these settings"),
    ],
)
def test_other_settings_are_refused(trained, change, message):
    path, settings = trained
    with pytest.raises(SystemExit, match=message):
        script().same_recipe_checkpoint(path, {**settings, **change})


def test_an_unfinished_training_is_refused(trained, tmp_path):
    from tapkit.ssl.checkpoint import load_checkpoint, save_checkpoint

    path, settings = trained
    state = load_checkpoint(path)
    # as if stopped after epoch 1 of 2
    state["history"] = {k: v[:1] for k, v in state["history"].items()}
    save_checkpoint(state, tmp_path / "half.pt")
    with pytest.raises(SystemExit, match="has not finished its 2 epochs"):
        script().same_recipe_checkpoint(tmp_path / "half.pt", settings)
