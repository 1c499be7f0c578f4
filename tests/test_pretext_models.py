"""get_pretext_model: own checkpoint first, then the shipped one, else a quick training; other tasks
refused."""

from __future__ import annotations

import inspect
import shutil

import pytest
import torch

from tapkit import InputError
from tapkit.course import config, profiles
from tapkit.data.io import write_tiff
from tapkit.downstream.events.strategies import STRATEGIES
from tapkit.ssl.contrastive import ContrastiveModel
from tapkit.ssl.mim import MaskedModel
from tests.conftest import make_tiny_movie

TINY = dict(tap_epochs=1, tap_steps_per_epoch=2, tap_batch_size=2, tap_patch=32, tap_val_steps=1)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """(cfg for a tiny TIFF movie in the smoke profile, the movie); cwd = tmp_path, shipped
    checkpoints in tmp_path/shipped."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "shipped_folder", lambda: tmp_path / "shipped")
    movie = make_tiny_movie(n_frames=6, size=48)
    path = write_tiff(movie, tmp_path / "tiny.tif")
    cfg = config.configure(
        dict(
            profile="smoke",
            data=str(path),
            seed=0,
            device="cpu",
            out_dir=str(tmp_path / "out"),
            **TINY,
        ),
        "07",
    )
    return cfg, movie


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_trains_once_then_loads_its_own(tiny, capsys):
    cfg, movie = tiny
    first = config.get_pretext_model(cfg, "mim-intensity", movie=movie)
    assert "trained a quick model" in capsys.readouterr().out
    assert (cfg.out_dir / "mim-intensity_tiny.pt").is_file()
    assert (
        first.name == "mim"
        and first.config["masking"] == "intensity"
        and first.config["base_filters"] == 8
    )
    assert config.training_steps(first.checkpoint) == 2  # 1 epoch x 2 steps
    second = config.get_pretext_model(cfg, "mim-intensity")
    assert "loaded your model" in capsys.readouterr().out
    assert same_weights(first, second) and not second.training


def test_shipped_checkpoint_is_used_when_there_is_no_own_one(tiny, tmp_path, capsys):
    cfg, movie = tiny
    trained = config.get_pretext_model(cfg, "contrastive", movie=movie)
    shipped = tmp_path / "shipped" / "contrastive_tiny.pt"
    shipped.parent.mkdir(parents=True)
    shutil.move(cfg.out_dir / "contrastive_tiny.pt", shipped)
    capsys.readouterr()
    model = config.get_pretext_model(cfg, "contrastive")
    assert (
        "loaded the shipped checkpoint" in capsys.readouterr().out and model.checkpoint == shipped
    )
    assert same_weights(trained, model)


def test_own_checkpoint_wins_over_the_shipped_one(tiny, tmp_path, capsys):
    cfg, movie = tiny
    config.get_pretext_model(cfg, "mim", movie=movie)
    (tmp_path / "shipped").mkdir(parents=True)
    shutil.copy(cfg.out_dir / "mim_tiny.pt", tmp_path / "shipped" / "mim_tiny.pt")
    capsys.readouterr()
    assert config.get_pretext_model(cfg, "mim").checkpoint == cfg.out_dir / "mim_tiny.pt"
    assert "loaded your model" in capsys.readouterr().out


@pytest.mark.parametrize(
    "stored, asked",
    [("tap", "mim"), ("mim", "mim-intensity"), ("mim", "contrastive"), ("contrastive", "tap")],
)
def test_a_checkpoint_of_another_task_is_refused(tiny, stored, asked):
    cfg, movie = tiny
    config.get_pretext_model(cfg, stored, movie=movie)
    shutil.move(cfg.out_dir / f"{stored}_tiny.pt", cfg.out_dir / f"{asked}_tiny.pt")
    with pytest.raises(InputError, match=f"not one of the task '{asked}'"):
        config.get_pretext_model(cfg, asked, movie=movie)


def test_unknown_task_is_named_before_anything_runs(tiny):
    cfg, _ = tiny
    with pytest.raises(InputError, match="task='mae'.*mim-intensity"):
        config.get_pretext_model(cfg, "mae")


def test_get_tap_model_is_get_pretext_model_for_tap(tiny, capsys):
    cfg, movie = tiny
    model = config.get_tap_model(cfg, movie=movie)
    assert model.name == "tap" and (cfg.out_dir / "tap_tiny.pt").is_file()
    assert same_weights(model, config.get_pretext_model(cfg, "tap"))


def test_pretext_profile_keys_are_api_keyword_names():
    api = {"mim": MaskedModel, "contrastive": ContrastiveModel}
    for name, prof in profiles.PROFILES.items():
        section = prof["pretext"]
        assert set(section) == {"tasks", "strategies", "budgets"}, name
        for task, options in section["tasks"].items():
            keys = set(options) - set(inspect.signature(api[task.split("-")[0]]).parameters)
            assert not keys, f"profile {name}: pretext task {task} options {keys} are not keywords"
            if task.startswith("mim"):
                assert options["masking"] == (task.partition("-")[2] or "random"), (name, task)
        assert set(section["strategies"]) <= set(STRATEGIES) and not any(
            s[0] == "A" for s in section["strategies"]
        )
        assert all(isinstance(b, int) and b > 0 for b in section["budgets"]), name
