"""The `tapkit` command line: argparse wiring, parameter parsing, exit codes."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest

from tapkit import InputError
from tapkit import cli
from tapkit.course import runner, student


def test_parse_params_uses_python_literals_when_possible():
    params = cli.parse_params(
        ["tap_epochs=5", "lr=1e-3", "data=movie.tif", "size=(64, 64)", "x=None", "name= a b "]
    )
    assert params == {
        "tap_epochs": 5,
        "lr": 1e-3,
        "data": "movie.tif",
        "size": (64, 64),
        "x": None,
        "name": "a b",
    }
    for bad in (["epochs"], ["=3"], ["two words=1"]):
        with pytest.raises(InputError, match="key=value"):
            cli.parse_params(bad)


def test_course_run_wiring(monkeypatch, tmp_path):
    seen = {}

    def fake_run_course(**kwargs):
        seen.update(kwargs)
        return {"out": str(tmp_path), "failed": []}

    monkeypatch.setattr(runner, "run_course", fake_run_course)
    rc = cli.main(
        [
            "course",
            "run",
            "--profile",
            "smoke",
            "--only",
            "01,02",
            "-p",
            "tap_epochs=3",
            "-p",
            "data=simulated",
            "--out",
            str(tmp_path / "r"),
            "--notebooks",
            "nbs",
        ]
    )
    assert rc == 0
    assert seen == {
        "profile": "smoke",
        "only": "01,02",
        "params": {"tap_epochs": 3, "data": "simulated"},
        "out": str(tmp_path / "r"),
        "notebooks_dir": "nbs",
        "dry_run": False,
        "resume": False,
        "force": False,
    }
    cli.main(["course", "run", "--resume", "--out", str(tmp_path / "r"), "--force"])
    assert (
        seen["resume"] is True
        and seen["force"] is True
        and seen["profile"] == "auto"
        and seen["params"] == {}
    )
    cli.main(["course", "run", "--dry-run"])
    assert (
        seen["profile"] == "auto"
        and seen["only"] is None
        and seen["params"] == {}
        and seen["out"] is None
    )
    assert seen["dry_run"] is True
    cli.main(["course", "run", "--profile", "gpu", "--short"])
    assert seen["dry_run"] == "short" and seen["profile"] == "gpu"
    seen.clear()
    # refused before anything ran
    assert cli.main(["course", "run", "--dry-run", "--short"]) == 2 and seen == {}


def test_course_run_exit_codes(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(
        runner, "run_course", lambda **kw: {"out": str(tmp_path), "failed": ["02_x"]}
    )
    assert cli.main(["course", "run"]) == 1
    assert "02_x" in capsys.readouterr().err

    def bad_param(**kw):
        raise InputError("Unknown parameter(s) stepz")

    monkeypatch.setattr(runner, "run_course", bad_param)
    assert cli.main(["course", "run", "-p", "stepz=1"]) == 2
    assert "stepz" in capsys.readouterr().err
    assert cli.main(["course", "run", "-p", "oops"]) == 2


def test_course_run_end_to_end_on_a_tiny_notebook(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    v4 = nbformat.v4
    cells = [
        v4.new_code_cell(
            "profile = 'auto'\nout_dir = 'x'\nk = 1", metadata={"tags": ["parameters"]}
        ),
        v4.new_code_cell(
            "import tapkit.course.results\n"
            "tapkit.course.results.record('demo', k=k, profile=profile)"
        ),
    ]
    nbformat.write(v4.new_notebook(cells=cells), str(nbs / "00_tiny.ipynb"))
    out = tmp_path / "run"
    rc = cli.main(
        [
            "course",
            "run",
            "--profile",
            "smoke",
            "-p",
            "k=41",
            "--out",
            str(out),
            "--notebooks",
            str(nbs),
        ]
    )
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["demo"] == {"k": 41, "profile": "smoke"}
    assert (out / "00_tiny.ipynb").exists() and (out / "summary.md").exists()


def test_course_student_wiring(monkeypatch):
    seen = {}
    monkeypatch.setattr(
        student,
        "write_student_copies",
        lambda out, notebooks_dir=None: seen.update(out=out, nb=notebooks_dir),
    )
    assert cli.main(["course", "student", "--out", "mine"]) == 0
    assert seen == {"out": "mine", "nb": None}
    assert cli.main(["course", "student"]) == 0 and seen["out"] == "student"


def test_missing_subcommand_and_bad_size_exit_nonzero():
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code != 0
    with pytest.raises(SystemExit) as info:
        cli.main(["simulate", "--out", "x", "--size", "64"])
    assert info.value.code != 0


def test_simulate_writes_tiff_and_preview(tmp_path):
    import tifffile

    out = tmp_path / "sim"
    assert (
        cli.main(
            ["simulate", "--out", str(out), "--frames", "4", "--size", "48", "40", "--seed", "3"]
        )
        == 0
    )
    images = tifffile.imread(out / "simulated.tif")
    assert images.shape[-3:] == (4, 48, 40) and np.ptp(images) > 0
    assert (out / "simulated.png").stat().st_size > 0


def _tiny_tiff(path):
    """A 10-frame 48 x 48 simulated movie written as a TIFF."""
    from tapkit.data.io import write_tiff
    from tapkit.data.simulate import simulate_movie

    write_tiff(simulate_movie(n_frames=10, size=(48, 48), seed=1), path)
    return path


TINY_TRAIN = [
    "--profile",
    "smoke",
    "--steps-per-epoch",
    "1",
    "--batch-size",
    "2",
    "--patch",
    "32",
    "-o",
    "base_filters=4",
    "-o",
    "n_depth=2",
    "--device",
    "cpu",
]


def test_train_writes_a_checkpoint_that_load_model_loads_and_resumes(tmp_path, capsys):
    from tapkit.ssl.tap import TAPNet
    from tapkit.ssl.trainer import load_model

    movie, out = _tiny_tiff(tmp_path / "movie.tif"), tmp_path / "out"
    args = ["train", "--data", str(movie), "--out", str(out), *TINY_TRAIN]
    assert cli.main([*args, "--epochs", "1", "--seed", "3"]) == 0
    model = load_model(out / "tap_movie.pt", device="cpu")
    assert (
        isinstance(model, TAPNet)
        and model.config["base_filters"] == 4
        and model.config["seed"] == 3
    )
    assert len(json.loads((out / "tap_movie_history.json").read_text())["train_loss"]) == 1
    # never overwrites a training silently
    assert cli.main([*args, "--epochs", "2", "--seed", "3"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main([*args, "--epochs", "2", "--seed", "3", "--resume"]) == 0
    assert "after epoch 1" in capsys.readouterr().out
    assert len(json.loads((out / "tap_movie_history.json").read_text())["train_loss"]) == 2
    # a task of the profile's pretext section, with its options (notebook 07's names)
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(movie),
                "--out",
                str(out),
                *TINY_TRAIN,
                "--epochs",
                "1",
                "--pretext",
                "mim-intensity",
            ]
        )
        == 0
    )
    assert load_model(out / "mim-intensity_movie.pt", device="cpu").config["masking"] == "intensity"


def test_train_bad_input_exits_2_before_training(tmp_path, monkeypatch, capsys):
    import tapkit.ssl.distributed
    import tapkit.ssl.trainer

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(tapkit.ssl.trainer, "_train_epoch", no_training)
    # refused before the group and the data
    monkeypatch.setattr(tapkit.ssl.distributed, "setup", no_training)
    movie = _tiny_tiff(tmp_path / "movie.tif")
    capsys.readouterr()  # the simulator's progress bar
    good = ["train", "--data", str(movie), "--out", str(tmp_path / "out"), *TINY_TRAIN]
    cases = [
        (["--pretext", "jigsaw"], "jigsaw"),
        (["--data", str(tmp_path / "nothing.tif")], "nothing.tif"),
        (["--batch-size", "3", "--shards", "2"], "batch_size=3 is not divisible by 2"),
        (["-o", "wings=3"], "wings"),
        (["--epochs", "0"], "epochs=0"),
        (["--patch", "4"], "patch=4"),
        (["--profile", "huge"], "huge"),
    ]
    for extra, named in cases:
        assert cli.main([*good, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("tapkit: error:") and named in err, err
    # as under `torchrun --nproc_per_node 4`: the batch is split 4 ways
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert cli.main([*good, "--batch-size", "6"]) == 2
    assert "batch_size=6 is not divisible by 4 processes" in capsys.readouterr().err
