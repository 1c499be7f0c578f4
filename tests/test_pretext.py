"""Every pretext task through the one trainer: seeded determinism, exact resume, checkpoints, dense
features."""

import pytest
import torch

import tapkit.ssl.training_checkpoint
from tapkit.data.simulate import simulate_movie
from tapkit.ssl.checkpoint import save_checkpoint
from tapkit.ssl.pretext import PRETEXTS, pretext_class
from tapkit.ssl.trainer import load_model, train

SIZES = dict(n_depth=1, base_filters=4, n_features=6, backbone_features=4)
OPTIONS = {"tap": {}, "mim": {"masking": "intensity"}, "contrastive": {"warmup_steps": 3}}
TASKS = sorted(PRETEXTS)


@pytest.fixture(scope="module")
def movie():
    """A small simulated movie shared by the tests of this file."""
    return simulate_movie(n_frames=8, size=(48, 48), seed=2, progress=False)


def _run(task: str, movie, seed: int = 1, **kw) -> tuple[torch.nn.Module, dict]:
    """Three short epochs of `task` on `movie` (tiny model, CPU, no progress bars)."""
    return train(
        task,
        movie,
        epochs=3,
        steps_per_epoch=2,
        batch_size=4,
        patch=16,
        val_steps=1,
        seed=seed,
        device="cpu",
        progress=False,
        model_kwargs=dict(SIZES, **OPTIONS[task]),
        **kw,
    )


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """True if two models hold bit-identical parameters and buffers."""
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_every_task_is_tested():
    assert set(OPTIONS) == set(PRETEXTS)


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_model(task, movie):
    (a, ha), (b, hb), (c, _) = _run(task, movie), _run(task, movie), _run(task, movie, seed=2)
    assert _same_weights(a, b) and not _same_weights(a, c)
    ha.pop("seconds"), hb.pop("seconds")
    assert ha == hb


@pytest.mark.parametrize("task", TASKS)
def test_resume_after_an_interruption_equals_one_run(task, movie, tmp_path, monkeypatch):
    whole, h_whole = _run(task, movie, checkpoint=tmp_path / "whole.pt")

    def stop_after_epoch_1(state, path):
        save_checkpoint(state, path)
        if state["epoch"] == 1:
            raise KeyboardInterrupt("interrupted")

    monkeypatch.setattr(tapkit.ssl.training_checkpoint, "save_checkpoint", stop_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        _run(task, movie, checkpoint=tmp_path / "cut.pt")
    monkeypatch.undo()
    resumed, h_resumed = _run(task, movie, checkpoint=tmp_path / "cut.pt", resume=True)
    assert _same_weights(whole, resumed)
    h_whole.pop("seconds"), h_resumed.pop("seconds")
    assert h_whole == h_resumed


@pytest.mark.parametrize("task", TASKS)
def test_checkpoint_loads_with_its_config_and_gives_dense_features(task, movie, tmp_path):
    model, _ = _run(task, movie, checkpoint=tmp_path / "m.pt")
    again = load_model(tmp_path / "m.pt", device="cpu")
    assert (
        type(again) is pretext_class(task) and again.config == model.config and again.name == task
    )
    assert _same_weights(model, again)
    x = torch.rand(3, 1, 20, 28, generator=torch.Generator().manual_seed(0))
    z = again.embed(x)
    assert z.shape == (3, SIZES["n_features"], 20, 28)  # the same F for every task
    torch.testing.assert_close(z, model.embed(x))
