"""TrainConfig: one checked, documented set of training settings; the same training as the keyword
form; stored in every checkpoint and read back (older checkpoints too)."""

from pathlib import Path

import pytest
import torch

import tapkit.ssl.trainer
from tapkit import InputError
from tapkit.ssl.augment import AugmentConfig
from tapkit.ssl.checkpoint import load_checkpoint, save_checkpoint
from tapkit.ssl.train_config import FIELDS, TrainConfig
from tapkit.ssl.trainer import load_train_config, train, train_tap

from test_train import FAST, TINY, growing_blobs

SHIPPED = sorted((Path(__file__).resolve().parents[1] / "tapkit" / "checkpoints").glob("*.pt"))
SMALL = dict(epochs=1, steps_per_epoch=2, batch_size=16, patch=24, val_steps=2, model_kwargs=TINY)


@pytest.mark.parametrize(
    "bad, named",
    [
        (dict(epochs=0), "epochs=0: use a whole number >= 1"),
        (dict(steps_per_epoch=1.5), "steps_per_epoch=1.5"),
        (dict(batch_size=True), "batch_size=True"),
        (dict(patch=4), "patch=4: use a whole number >= 8"),
        (dict(lr=0), "lr=0: use a number in (0.0, 1.0)"),
        (dict(lr=float("nan")), "lr=nan"),
        (dict(val_fraction=1.0), "val_fraction=1.0"),
        (dict(val_at="middle"), "val_at='middle': choose one of 'start'"),
        (dict(val_region=-0.1), "val_region=-0.1"),
        (dict(seed=-1), "seed=-1"),
        (dict(delta=(0, 1)), "delta=(0, 1)"),
        (dict(augment="strong"), "augment='strong'"),
        (dict(per_crop="yes"), "per_crop='yes': use True or False"),
        (dict(reject_background=1), "reject_background=1"),
        (dict(model_kwargs=[1]), "model_kwargs=[1]"),
        (dict(shards=0), "shards=0"),
        (dict(storage="gpu"), "storage='gpu': choose one of 'auto'"),
    ],
)
def test_a_bad_field_is_named_with_a_fix(bad, named):
    with pytest.raises(InputError) as err:
        TrainConfig(**bad)
    assert str(err.value).startswith(named)


def test_an_unknown_setting_names_itself_and_the_closest_field():
    with pytest.raises(InputError, match=r"^epoch: not a training setting; did you mean epochs\?"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(InputError, match=r"^tap_batchsize: .*did you mean tap_batch_size\?"):
        TrainConfig.from_dict({"batchsize": 8}, prefix="tap_")
    with pytest.raises(InputError, match="epoch: not a training setting"):
        train_tap(growing_blobs(), epoch=1, device="cpu")


def test_every_field_is_documented_in_the_source():
    import inspect

    lines = inspect.getsource(TrainConfig).splitlines()
    for name in FIELDS:  # a comment line right above each field
        i = next(i for i, ln in enumerate(lines) if ln.strip().startswith(f"{name}:"))
        above = lines[i - 1].strip()
        assert above.startswith("#") and len(above[1:].strip()) > 15, name


def test_to_dict_round_trips_and_is_plain():
    from tapkit.ssl.checkpoint import check_plain

    for config in (
        TrainConfig(),
        TrainConfig(augment=AugmentConfig.level5(), delta=(1, 2), shards=2),
        TrainConfig(
            augment="exact", per_crop=True, val_region=0.25, model_kwargs=dict(base_filters=8)
        ),
    ):
        check_plain(config.to_dict())
        assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig(epochs=2).replace(lr=1e-3) == TrainConfig(epochs=2, lr=1e-3)
    with pytest.raises(InputError, match="lr=2"):
        TrainConfig().replace(lr=2)


def test_a_config_gives_bit_identical_weights_to_the_keyword_form(tmp_path):
    movie = growing_blobs()
    by_keywords, h1 = train_tap(
        movie, **SMALL, seed=3, device="cpu", progress=False, checkpoint=tmp_path / "a.pt"
    )
    config = TrainConfig(**SMALL, seed=3)
    by_config, h2 = train_tap(
        movie, config=config, device="cpu", progress=False, checkpoint=tmp_path / "b.pt"
    )
    assert {k: v for k, v in h1.items() if k != "seconds"} == {
        k: v for k, v in h2.items() if k != "seconds"
    }
    assert all(
        torch.equal(a, b)
        for a, b in zip(by_keywords.state_dict().values(), by_config.state_dict().values())
    )
    a, b = load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "b.pt")
    assert a["recipe"] == b["recipe"] and a["train_config"] == b["train_config"]
    # the config round-trips through the checkpoint (train_tap adds its lam to the network options)
    assert load_train_config(tmp_path / "b.pt") == config.replace(
        model_kwargs={"lam": 0.01, **TINY}
    )
    # keywords win over the config's fields
    _, h3 = train(
        "tap",
        movie,
        None,
        config.replace(seed=0),
        seed=3,
        device="cpu",
        progress=False,
        model_kwargs={"lam": 0.01, **TINY},
    )
    assert h3["train_loss"] == h1["train_loss"]


def test_a_bad_config_fails_before_any_data_is_read(monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("the data was read")

    monkeypatch.setattr(tapkit.ssl.trainer, "_samplers", no_data)
    monkeypatch.setattr(tapkit.ssl.trainer, "_fitting_region", no_data)
    with pytest.raises(InputError, match="^val_at='middle'"):
        train(
            "tap",
            growing_blobs(),
            config=TrainConfig(**SMALL).to_dict() | {"val_at": "middle"},
            device="cpu",
        )
    with pytest.raises(InputError, match="^batch_size=0"):
        train_tap(growing_blobs(), config=TrainConfig(**SMALL), batch_size=0, device="cpu")
    with pytest.raises(InputError, match="config="):  # settings passed where val_movies go
        train("tap", growing_blobs(), TrainConfig(**SMALL), device="cpu")


def test_older_checkpoints_give_their_config(tmp_path):
    """Shipped files: their meta settings; tapkit checkpoints from before TrainConfig: their
    recipe."""
    for path in SHIPPED:
        state = load_checkpoint(path)
        config = load_train_config(path)
        settings = state["meta"]["settings"]
        assert (
            config.epochs == settings["epochs"]
            and config.lr == settings["lr"]
            and config.patch == settings["patch"]
        )
        assert (
            config.model_kwargs == settings["model_kwargs"] and config.val_at == settings["val_at"]
        )
    train_tap(
        growing_blobs(),
        **SMALL,
        delta=(1, 2),
        augment="exact",
        seed=2,
        device="cpu",
        progress=False,
        checkpoint=tmp_path / "new.pt",
    )
    state = load_checkpoint(tmp_path / "new.pt")
    new = load_train_config(tmp_path / "new.pt")
    del state["train_config"]  # as written before TrainConfig
    save_checkpoint(state, tmp_path / "old.pt")
    old = load_train_config(tmp_path / "old.pt")
    assert old.delta == (1, 2) and old.augment == "exact" and old.seed == 2
    assert old.model_kwargs == {k: v for k, v in state["config"].items() if k != "seed"}
    # the recipe holds the resolved shards (1)
    assert old.replace(model_kwargs=new.model_kwargs, shards=None) == new
    assert tapkit.ssl.trainer.load_tap(tmp_path / "old.pt") is not None  # and the model still loads


def test_every_profile_tap_section_is_a_valid_config():
    from tapkit.course import parameters, profiles
    from tapkit.data.datasets import REAL_DATA_TAP

    for name, prof in profiles.PROFILES.items():
        for recipe in ({}, REAL_DATA_TAP):
            config = parameters.tap_config(profiles.tap_for_data(prof["tap"], recipe))
            assert config.epochs >= 1, name
    assert FAST["device"] == "cpu"  # the keyword form's runtime arguments are not fields
    assert not {"device", "checkpoint", "resume", "progress"} & set(FIELDS)
