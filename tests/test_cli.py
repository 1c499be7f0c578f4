"""The `tapkit` command line: argparse wiring, parameter parsing, exit codes."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest

from tapkit import InputError
from tapkit import cli
from tapkit.course import runner


def test_parse_params_uses_python_literals_when_possible():
    params = cli.parse_params(["tap_epochs=5", "lr=1e-3", "data=movie.tif", "size=(64, 64)", "x=None", "name= a b "])
    assert params == {"tap_epochs": 5, "lr": 1e-3, "data": "movie.tif", "size": (64, 64), "x": None, "name": "a b"}
    for bad in (["epochs"], ["=3"], ["two words=1"]):
        with pytest.raises(InputError, match="key=value"):
            cli.parse_params(bad)


def test_course_run_wiring(monkeypatch, tmp_path):
    seen = {}

    def fake_run_course(**kwargs):
        seen.update(kwargs)
        return {"out": str(tmp_path), "failed": []}

    monkeypatch.setattr(runner, "run_course", fake_run_course)
    rc = cli.main(["course", "run", "--profile", "smoke", "--only", "01,02", "-p", "tap_epochs=3",
                   "-p", "data=simulated", "--out", str(tmp_path / "r"), "--notebooks", "nbs"])
    assert rc == 0
    assert seen == {"profile": "smoke", "only": "01,02", "params": {"tap_epochs": 3, "data": "simulated"},
                    "out": str(tmp_path / "r"), "notebooks_dir": "nbs", "dry_run": False, "resume": False,
                    "force": False}
    cli.main(["course", "run", "--resume", "--out", str(tmp_path / "r"), "--force"])
    assert seen["resume"] is True and seen["force"] is True and seen["profile"] == "auto" and seen["params"] == {}
    cli.main(["course", "run", "--dry-run"])
    assert seen["profile"] == "auto" and seen["only"] is None and seen["params"] == {} and seen["out"] is None
    assert seen["dry_run"] is True


def test_course_run_exit_codes(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(runner, "run_course", lambda **kw: {"out": str(tmp_path), "failed": ["02_x"]})
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
    cells = [v4.new_code_cell("profile = 'auto'\nout_dir = 'x'\nk = 1", metadata={"tags": ["parameters"]}),
             v4.new_code_cell("import tapkit.course.results\ntapkit.course.results.record('demo', k=k, profile=profile)")]
    nbformat.write(v4.new_notebook(cells=cells), str(nbs / "00_tiny.ipynb"))
    out = tmp_path / "run"
    rc = cli.main(["course", "run", "--profile", "smoke", "-p", "k=41", "--out", str(out), "--notebooks", str(nbs)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["demo"] == {"k": 41, "profile": "smoke"}
    assert (out / "00_tiny.ipynb").exists() and (out / "summary.md").exists()


def test_course_student_wiring(monkeypatch):
    seen = {}
    monkeypatch.setattr(runner, "write_student_copies", lambda out, notebooks_dir=None: seen.update(out=out, nb=notebooks_dir))
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
    assert cli.main(["simulate", "--out", str(out), "--frames", "4", "--size", "48", "40", "--seed", "3"]) == 0
    images = tifffile.imread(out / "simulated.tif")
    assert images.shape[-3:] == (4, 48, 40) and np.ptp(images) > 0
    assert (out / "simulated.png").stat().st_size > 0
