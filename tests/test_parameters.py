"""Every notebook parameter is checked before any training: in `configure` and in the course runner.

Each bad value must raise `InputError` naming the parameter and a fix, and nothing long may run
first.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tapkit import InputError, cli
from tapkit.course import config, notebooks, parameters, profiles, runner

FIX_WORDS = ("use ", "choose ", "give ", "pick ", "check ")


def base_params(tmp_path, **kw) -> dict:
    """A notebook's globals as its parameters cell would leave them."""
    return (
        dict(profile="smoke", data="simulated", seed=0, device="cpu", out_dir=str(tmp_path / "out"))
        | kw
    )


BAD = [  # (parameter, bad value) — one or more per entry of parameters.CHECKS
    ("profile", "huge"),
    ("data", ""),
    ("data", "no/such/movie.tif"),
    ("data", 3),
    ("seed", -1),
    ("seed", 1.5),
    ("device", "gpu"),
    ("out_dir", ""),
    ("binning", 0),
    ("binning", 1.5),
    ("channel", -1),
    ("channel", "red"),
    ("bleaching", -1),
    ("bleaching", 1.0),
    ("bleaching", float("nan")),
    ("real_data", "nope"),
    ("real_crop", 8),
    ("threshold", -5),
    ("train_heads", "yes"),
    ("criterion", "size-both"),
    ("n_mistakes", 0),
    ("n_bins", 1),
    ("target_recall", 0),
    ("target_recall", 1.5),
    ("sim_n_frames", 1),
    ("sim_size", (16, 16)),
    ("tap_val_at", "middle"),
    ("tap_augment", "light"),
    ("tap_per_crop", "yes"),
    ("tap_val_region", 1.0),
    ("tap_epochs", -2),
    ("tap_batch_size", 2.5),
    ("crops_size", "big"),
    ("pretext", "jigsaw"),
    ("export_features", "yes"),
    ("own_export_frames", 0),
    ("own_nucleus_frames", 1.5),  # 09
]


def test_every_checked_parameter_has_a_bad_case():
    assert {name for name, _ in BAD} >= set(parameters.CHECKS)


@pytest.mark.parametrize("name, value", BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_configure_names_the_parameter_and_a_fix(tmp_path, name, value):
    with pytest.raises(InputError) as info:
        config.configure(base_params(tmp_path) | {name: value}, "01")
    text = str(info.value)
    assert name in text and any(w in text.lower() for w in FIX_WORDS), text


def test_every_notebook_parameter_is_checked():
    """Each name in a parameters cell has a check: an entry in CHECKS or a profile section
    override."""
    prof = profiles.get_profile("smoke")
    for path in notebooks.list_notebooks():
        for name in notebooks.parameter_names(path):
            section, _, key = name.partition("_")
            in_profile = section in parameters.SECTIONS and key in prof[section]
            assert name in parameters.CHECKS or in_profile, (
                f"{path.name}: parameter {name!r} is never checked"
            )


def test_notebook_defaults_pass_their_checks():
    prof = profiles.get_profile("smoke")
    for path in notebooks.list_notebooks():
        defaults = notebooks.parameter_values(path)
        parameters.check_parameters(
            {k: v for k, v in defaults.items() if k not in ("profile", "out_dir")}, prof
        )


def test_run_course_rejects_bleaching_before_training(tmp_path):
    out = tmp_path / "run"
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"bleaching=-1.*use a number"):
        runner.run_course(profile="smoke", only="01", params={"bleaching": -1}, out=out)
    assert time.perf_counter() - start < 20 and not out.exists()  # no notebook started


def test_cli_reports_bad_parameter_as_error_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        cli.main(
            [
                "course",
                "run",
                "--profile",
                "smoke",
                "--only",
                "01",
                "-p",
                "bleaching=-1",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        err.startswith("tapkit: error: bleaching=-1")
        and "Traceback" not in err
        and not out.exists()
    )


def test_cli_empty_data_is_an_error_not_the_cwd(tmp_path, capsys):
    assert (
        cli.main(
            [
                "course",
                "run",
                "--profile",
                "smoke",
                "--only",
                "00",
                "-p",
                "data=",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "data='' is empty" in capsys.readouterr().err


def test_cli_out_that_is_a_file(tmp_path, capsys):
    existing = tmp_path / "file.txt"
    existing.write_text("x")
    assert (
        cli.main(["course", "run", "--profile", "smoke", "--only", "00", "--out", str(existing)])
        == 2
    )
    err = capsys.readouterr().err
    assert (
        err.startswith("tapkit: error: --out=")
        and "existing file" in err
        and "Traceback" not in err
    )
    assert cli.main(["course", "student", "--out", str(existing / "sub")]) == 2
    assert "tapkit: error: --out=" in capsys.readouterr().err


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write to (chmod for ordinary users, /sys for root), or skip."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    for candidate in (folder, Path("/sys")):
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            return candidate
    pytest.skip("no read-only folder available")


def test_cli_read_only_out(tmp_path, capsys):
    locked = _read_only_folder(tmp_path)
    for out in (locked, locked / "run"):
        assert (
            cli.main(["course", "run", "--profile", "smoke", "--only", "00", "--out", str(out)])
            == 2
        )
        err = capsys.readouterr().err
        assert err.startswith("tapkit: error: --out=") and "Traceback" not in err
        assert "read-only" in err or "cannot create" in err


def test_small_frames_are_reported_as_too_small_not_as_channels(tmp_path):
    path = tmp_path / "tiny.tif"
    tifffile.imwrite(path, np.random.default_rng(0).random((6, 4, 4), dtype=np.float32))
    with pytest.raises(InputError) as info:
        config.configure(base_params(tmp_path, data=str(path)), "00")
    assert "too small" in str(info.value) and "channel" not in str(info.value)


def test_channel_parameter_picks_a_channel_of_a_tiff(tmp_path):
    rng = np.random.default_rng(0)
    stack = rng.random((4, 2, 32, 32), dtype=np.float32)  # (T, C, Y, X)
    stack[:, 1] += 10
    path = tmp_path / "two.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TCYX"})
    with pytest.raises(InputError, match="channel=0"):
        config.load_data(config.configure(base_params(tmp_path, data=str(path)), "00"))
    movie = config.load_data(
        config.configure(base_params(tmp_path, data=str(path), channel=1), "00")
    )
    np.testing.assert_allclose(movie.images, stack[:, 1])
    with pytest.raises(InputError, match="channel=1.*single channel"):
        config.configure(base_params(tmp_path, channel=1), "00")  # simulated data has one channel


def test_runner_checks_each_notebooks_defaults_with_the_given_values(tmp_path):
    """-p data=my.tif with channel unset fails for a two-channel TIFF only when loading: but a bad
    -p fails at once."""
    with pytest.raises(InputError, match="criterion"):
        runner.run_course(
            profile="smoke", only="04", params={"criterion": "nope"}, out=tmp_path / "r"
        )
    assert not (tmp_path / "r").exists()


def test_profile_keys_are_api_keyword_names():
    import inspect

    from tapkit.data.simulate import simulate_movie
    from tapkit.explain.gradcam import gradcam_movie

    api = {"sim": simulate_movie, "gradcam": gradcam_movie}
    for name, prof in profiles.PROFILES.items():
        for section, func in api.items():
            keys = set(prof[section]) - set(inspect.signature(func).parameters)
            assert not keys, (
                f"profile {name}: {section} keys {keys} are not keywords of {func.__name__}"
            )
        # every tap key: a TrainConfig field
        assert parameters.tap_config(prof["tap"]).epochs == prof["tap"]["epochs"]


@pytest.mark.parametrize(
    "bad, named",
    [
        (dict(tap_epochs=0), "tap_epochs=0: use a whole number >= 1"),
        (dict(tap_lr=2.0), "tap_lr=2.0: use a number in (0.0, 1.0)"),
        (dict(tap_val_steps=0), "tap_val_steps=0"),
    ],
)
def test_a_bad_training_setting_is_named_before_the_notebook_runs(tmp_path, bad, named):
    prof = profiles.get_profile("smoke")
    with pytest.raises(InputError) as err:
        parameters.check_parameters(base_params(tmp_path, **bad), prof)
    assert named in str(err.value)
    # configure's own check: the section with the data's recipe
    with pytest.raises(InputError, match="tap_epochs"):
        parameters.tap_config({**prof["tap"], "epochs": 0})
    with pytest.raises(InputError, match="did you mean tap_epochs"):
        parameters.tap_config({**prof["tap"], "epoch": 3})


def test_configure_says_where_the_profile_came_from(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(profiles.PROFILE_ENV, "smoke")
    config.configure(base_params(tmp_path, profile="auto"), "00")
    assert "smoke  (from $TAPKIT_PROFILE)" in capsys.readouterr().out
    config.configure(base_params(tmp_path, profile="smoke"), "00")
    assert "smoke  (from parameter)" in capsys.readouterr().out
