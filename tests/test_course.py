"""The course machinery: configure validation, results recording, student copies, the course
runner."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
import tifffile

from tapkit import InputError
from tapkit.course import checks, config, notebooks, profiles, runner
from tapkit.course.student import write_student_copies
from tapkit.course import results


def base_params(tmp_path, **kw) -> dict:
    """A notebook's globals as its parameters cell would leave them."""
    ns = dict(
        profile="smoke", data="simulated", seed=0, device="cpu", out_dir=str(tmp_path / "out")
    )
    ns.update(kw)
    return ns


# ---------------------------------------------------------------- configure
def test_configure_applies_overrides_and_creates_out_dir(tmp_path, capsys):
    from tapkit.course.profiles import PROFILES

    epochs_before = PROFILES["smoke"]["tap"]["epochs"]
    cfg = config.configure(
        base_params(
            tmp_path,
            tap_epochs=epochs_before + 3,
            sim_n_frames=None,
            crops_size=32,
            tap_augment="exact",
        ),
        "01",
    )
    assert cfg.profile == "smoke" and cfg.device.type == "cpu" and cfg.seed == 0
    assert (
        cfg.tap["epochs"] == epochs_before + 3
        and cfg.crops["size"] == 32
        and cfg.tap["augment"] == "exact"
    )
    # None keeps the profile value
    assert cfg.sim["n_frames"] == PROFILES["smoke"]["sim"]["n_frames"]
    assert PROFILES["smoke"]["tap"]["epochs"] == epochs_before  # the shared profile is not modified
    assert (tmp_path / "out").is_dir()
    table = capsys.readouterr().out
    assert "smoke" in table and "tap_epochs" in table


def test_configure_picks_validation_frames_and_binning_per_dataset(tmp_path):
    sim = config.configure(base_params(tmp_path), "01")
    # a name: nothing is downloaded
    hela = config.configure(base_params(tmp_path, data="hela-subset"), "01")
    own = config.configure(
        base_params(tmp_path, data="hela-subset", tap_val_at="start", binning=1), "01"
    )
    assert (
        sim.tap["val_at"] == "start"
        and hela.tap["val_at"] == "end"
        and own.tap["val_at"] == "start"
    )
    assert sim.binning is None and own.binning == 1
    with pytest.raises(InputError, match="binning"):
        config.configure(base_params(tmp_path, binning=0), "01")


def test_configure_chooses_the_real_movie_recipe_and_prints_it(tmp_path, capsys):
    from tapkit.data.datasets import REAL_DATA_TAP

    sim = config.configure(base_params(tmp_path), "01")
    assert (
        "TAP recipe" not in capsys.readouterr().out
        and not sim.tap.get("per_crop")
        and not sim.tap.get("val_region")
    )
    hela = config.configure(base_params(tmp_path, data="hela-subset"), "01")
    assert {k: hela.tap[k] for k in REAL_DATA_TAP} == REAL_DATA_TAP
    assert "TAP recipe for a real movie" in capsys.readouterr().out
    assert "real_epochs" not in hela.tap and "real_epochs" not in sim.tap  # never reaches train()
    cpu = config.configure(base_params(tmp_path, profile="cpu", data="hela-subset"), "01")
    assert (
        cpu.tap["epochs"]
        == profiles.PROFILES["cpu"]["tap"]["real_epochs"]
        > profiles.PROFILES["cpu"]["tap"]["epochs"]
    )
    assert (
        config.configure(
            base_params(tmp_path, profile="cpu", data="hela-subset", tap_epochs=3), "01"
        ).tap["epochs"]
        == 3
    )
    mine = config.configure(
        base_params(tmp_path, data="hela-subset", tap_per_crop=False, tap_val_region=0.0), "01"
    )
    # the learner's choice wins
    assert mine.tap["per_crop"] is False and mine.tap["val_region"] == 0.0
    with pytest.raises(InputError, match="tap_per_crop"):
        config.configure(base_params(tmp_path, tap_per_crop="yes"), "01")


def test_load_data_bins_as_asked(tmp_path):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(
        path,
        np.random.default_rng(0).random((3, 32, 40)).astype(np.float32),
        photometric="minisblack",
    )
    full = config.load_data(config.configure(base_params(tmp_path, data=str(path)), "01"))
    binned = config.load_data(
        config.configure(base_params(tmp_path, data=str(path), binning=2), "01")
    )
    assert full.shape == (3, 32, 40) and binned.shape == (3, 16, 20)
    assert np.allclose(binned.images, full.images.reshape(3, 16, 2, 20, 2).mean(axis=(2, 4)))


def test_get_tap_model_refuses_frames_binned_unlike_its_training(tmp_path):
    from tapkit import Movie

    # the shipped HeLa model: binned 2x2
    cfg = config.configure(base_params(tmp_path, data="hela-subset"), "02")
    frames = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    # full resolution: a named error with the fix
    with pytest.raises(InputError, match="binning=2"):
        config.get_tap_model(cfg, movie=Movie(frames))
    model = config.get_tap_model(cfg, movie=Movie(np.tile(frames, (1, 2, 2))).bin(2))
    assert model.binning == 2


def test_configure_auto_profile_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPKIT_PROFILE", "cpu")
    assert config.configure(base_params(tmp_path, profile="auto"), "00").profile == "cpu"


def test_configure_seeds_everything(tmp_path):
    import torch

    config.configure(base_params(tmp_path, seed=7), "00")
    a = (np.random.rand(), torch.rand(1).item())
    config.configure(base_params(tmp_path, seed=7), "00")
    assert (np.random.rand(), torch.rand(1).item()) == a


@pytest.mark.parametrize(
    "bad, words",
    [
        (dict(profile="huge"), ["huge", "smoke"]),
        (dict(data="no/such/movie.tif"), ["no/such/movie.tif", "simulated"]),
        (dict(seed=-3), ["seed"]),
        (dict(seed=1.5), ["seed"]),
        (dict(tap_epochs="many"), ["tap_epochs"]),
        (dict(tap_epochs=2.5), ["tap_epochs", "whole"]),
        (dict(out_dir=""), ["out_dir"]),
        (dict(sim_size=64), ["sim_size", "two whole numbers"]),
    ],
)
def test_configure_rejects_bad_parameters(tmp_path, bad, words):
    with pytest.raises(InputError) as info:
        config.configure(base_params(tmp_path, **bad), "01")
    for word in words:
        assert word in str(info.value)


def test_configure_checks_data_files_cheaply(tmp_path):
    corrupt = tmp_path / "broken.tif"
    corrupt.write_bytes(b"II*\x00" + b"\x00" * 5)
    with pytest.raises(InputError, match="broken.tif"):
        config.configure(base_params(tmp_path, data=str(corrupt)), "01")
    truncated = tmp_path / "truncated.tif"
    tifffile.imwrite(truncated, np.ones((6, 64, 64), np.uint16), photometric="minisblack")
    truncated.write_bytes(truncated.read_bytes()[: 64 * 64 * 3])
    with pytest.raises(InputError, match="truncated.tif"):
        config.configure(base_params(tmp_path, data=str(truncated)), "01")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="TIFF"):
        config.configure(base_params(tmp_path, data=str(text)), "01")
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    with pytest.raises(InputError, match="without .tif"):
        config.configure(base_params(tmp_path, data=str(empty)), "01")
    good = tmp_path / "movie.tif"
    tifffile.imwrite(
        good,
        np.random.default_rng(0).random((3, 16, 16), dtype=np.float32),
        photometric="minisblack",
    )
    cfg = config.configure(base_params(tmp_path, data=str(good)), "01")
    assert cfg.data == str(good) and cfg.data_key == "movie"


def test_links_match_file_names():
    nb = "03_event_crops"
    assert notebooks.colab_url(nb).endswith(
        f"/{notebooks.github_repo()}/blob/main/notebooks/{nb}.ipynb"
    )
    assert notebooks.binder_url(nb + ".ipynb").endswith(f"labpath=notebooks%2F{nb}.ipynb")


# ---------------------------------------------------------------- check
def test_check_gives_feedback_without_raising(capsys):
    assert checks.check(0.5001, 0.5, tol=1e-3)
    assert not checks.check(0.6, 0.5, hint="count the divisions")
    assert "count the divisions" in capsys.readouterr().out
    assert checks.check(np.arange(3), [0, 1, 2])
    assert not checks.check(np.arange(4), [0, 1, 2])
    assert checks.check(" Division ", "division")
    assert not checks.check(None, 1)
    assert "not answered" in capsys.readouterr().out
    assert checks.check(lambda x: 2 * x, lambda f: f(3) == 6)
    # a crashing answer is reported, not raised
    assert not checks.check(lambda x: x / 0, lambda f: f(3) == 6)
    assert "ZeroDivisionError" in capsys.readouterr().out


# ---------------------------------------------------------------- results
def test_record_merges_sections_and_converts_numpy(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    monkeypatch.setenv(results.RESULTS_ENV, str(path))
    results.record("tap", val_accuracy=np.float32(0.75), curve=np.arange(3))
    results.record("tap", epochs=np.int64(4))
    results.record("criteria", **{"any-both": {"train_positives": np.int64(12)}})
    results.record(
        "criteria", **{"any-both": {"test_positives": 3}, "size-either": {"test_positives": 1}}
    )
    data = json.loads(path.read_text())
    assert data["tap"] == {"val_accuracy": 0.75, "curve": [0, 1, 2], "epochs": 4}
    assert data["criteria"]["any-both"] == {"train_positives": 12, "test_positives": 3}
    assert data["criteria"]["size-either"] == {"test_positives": 1}
    assert results.load_results(path) == data


def test_record_defaults_to_out_dir_and_rejects_junk(tmp_path, monkeypatch):
    monkeypatch.delenv(results.RESULTS_ENV, raising=False)
    config.configure(base_params(tmp_path), "00")
    results.record("demo", n=1)
    assert results.load_results(tmp_path / "out" / "results.json") == {"demo": {"n": 1}}
    with pytest.raises(InputError, match="cannot store"):
        results.record("demo", thing=object())
    with pytest.raises(InputError):
        results.record("", n=1)


# ---------------------------------------------------------------- fake notebooks
def make_notebook(path, body: str, params: str = "", solution: str | None = None) -> None:
    """A tiny course-shaped notebook: parameters cell, body, optional solution + checker."""
    v4 = nbformat.v4
    cells = [
        v4.new_markdown_cell("# fake"),
        v4.new_code_cell(
            "profile = 'auto'\ndata = 'simulated'\nseed = 0\nout_dir = 'runs/latest'\n" + params,
            metadata={"tags": ["parameters"]},
        ),
        v4.new_code_cell(body),
    ]
    if solution is not None:
        cells += [
            v4.new_code_cell("answer = ..."),
            v4.new_code_cell(solution, metadata={"tags": ["solution"]}),
            v4.new_code_cell("import tapkit.course.config\ntapkit.course.check(answer, 4)"),
        ]
    cells[2].outputs = [nbformat.v4.new_output("stream", text="old output\n")]
    cells[2].execution_count = 3
    nbformat.write(v4.new_notebook(cells=cells), str(path))


@pytest.fixture
def fake_course(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    make_notebook(
        nbs / "01_first.ipynb",
        "import tapkit.course.results\n"
        "tapkit.course.results.record('tap', val_accuracy=0.5 + steps / 100, profile=profile)",
        params="steps = 1\n",
        solution="answer = 2 + 2",
    )
    make_notebook(nbs / "02_broken.ipynb", "raise RuntimeError('deliberately broken')")
    make_notebook(
        nbs / "03_last.ipynb",
        "import tapkit.course.results\n"
        "tapkit.course.results.record('criteria', **{'any-both': {'test_positives': 5}})",
    )
    return nbs


def test_student_copies_remove_solutions_only(fake_course, tmp_path):
    out = tmp_path / "student"
    written = write_student_copies(out, notebooks_dir=fake_course)
    assert [p.name for p in written] == ["01_first.ipynb", "02_broken.ipynb", "03_last.ipynb"]
    original = nbformat.read(str(fake_course / "01_first.ipynb"), as_version=4)
    student = nbformat.read(str(out / "01_first.ipynb"), as_version=4)
    nbformat.validate(student)
    assert len(student.cells) == len(original.cells)
    for a, b in zip(original.cells, student.cells):
        if "solution" in a.metadata.get("tags", []):
            assert b.source == "# your answer here" and "solution" not in b.metadata.get("tags", [])
        else:
            assert a.source == b.source
        if b.cell_type == "code":
            assert b.outputs == [] and b.execution_count is None
    assert not any("answer = 2 + 2" in c.source for c in student.cells)
    assert any("tapkit.course.check(answer" in c.source for c in student.cells)


def test_run_course_continues_past_failure_and_summarises(fake_course, tmp_path, monkeypatch):
    monkeypatch.delenv(results.RESULTS_ENV, raising=False)
    out = tmp_path / "run"
    summary = runner.run_course(
        profile="smoke", params={"steps": 20}, out=out, notebooks_dir=fake_course
    )
    nbs = summary["notebooks"]
    assert list(nbs) == ["01_first", "02_broken", "03_last"]
    assert nbs["01_first"]["status"] == "ok" and nbs["03_last"]["status"] == "ok"
    assert (
        nbs["02_broken"]["status"] == "failed"
        and "deliberately broken" in nbs["02_broken"]["error"]
    )
    assert summary["failed"] == ["02_broken"]
    assert summary["results"]["tap"] == {
        "val_accuracy": pytest.approx(0.7),
        "profile": "smoke",
    }  # -p steps=20
    assert summary["results"]["criteria"]["any-both"]["test_positives"] == 5
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["profile"] == "smoke" and on_disk["notebooks"]["02_broken"]["status"] == "failed"
    assert all(isinstance(e["seconds"], float) for e in on_disk["notebooks"].values())
    md = (out / "summary.md").read_text()
    assert "02_broken" in md and "failed" in md and "val_accuracy" in md
    executed = nbformat.read(str(out / "01_first.ipynb"), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    # the runner restores the environment
    assert results.RESULTS_ENV not in __import__("os").environ


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(params={"stepz": 3}), ["stepz", "steps"]),
        (dict(params={"data": "missing.tif"}), ["missing.tif"]),
        (dict(params={"seed": -1}), ["seed"]),
        (dict(params={"profile": "gpu"}), ["--profile"]),
        (dict(only="07"), ["07"]),
        (dict(profile="fast"), ["fast"]),
    ],
)
def test_run_course_fails_fast_on_bad_parameters(fake_course, tmp_path, kwargs, words):
    out = tmp_path / "run"
    with pytest.raises(InputError) as info:
        runner.run_course(
            **dict(dict(profile="smoke", out=out, notebooks_dir=fake_course), **kwargs)
        )
    for word in words:
        assert word in str(info.value)
    assert not out.exists()  # nothing ran, nothing written


def test_run_course_rejects_corrupt_data_file(fake_course, tmp_path):
    bad = tmp_path / "corrupt.tiff"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(InputError, match="corrupt.tiff"):
        runner.run_course(
            profile="smoke",
            params={"data": str(bad)},
            out=tmp_path / "run",
            notebooks_dir=fake_course,
        )


def test_select_notebooks(fake_course):
    assert [p.name[:2] for p in notebooks.select_notebooks("03,1", fake_course)] == ["01", "03"]
    assert notebooks.parameter_names(fake_course / "01_first.ipynb") == [
        "profile",
        "data",
        "seed",
        "out_dir",
        "steps",
    ]


# ---------------------------------------------------------------- viewer
@pytest.fixture
def event_movie():
    from tapkit import Movie

    rng = np.random.default_rng(0)
    images = rng.random((5, 32, 32), dtype=np.float32)
    labels = np.zeros((5, 32, 32), np.int32)
    labels[:, 4:12, 4:12] = 1
    labels[:, 20:28, 20:28] = 2
    events = np.zeros((5, 32, 32), np.uint8)
    events[2][labels[2] == 1] = 1  # a division at t=2
    events[3][labels[3] == 2] = 2  # a death at t=3
    return Movie(images, labels=labels, events=events, name="toy")


def test_movie_browser_builds_headless_and_redraws(event_movie):
    from tapkit.plot import frames as viewer

    box = viewer.movie_browser(event_movie)
    assert box.slider.max == 4 and box.play.max == 4 and box.toggle.value
    first = box.image.value
    box.slider.value = 2
    with_overlay = box.image.value
    assert (
        with_overlay != first
        and "division: 1 cell," in box.caption.value
        and "death: 0 cells" in box.caption.value
    )
    box.toggle.value = False
    assert box.image.value != with_overlay
    bare = viewer.movie_browser(event_movie.images)  # a plain array has nothing to overlay
    assert bare.toggle.disabled


def test_frame_rgb_colours_events_only_where_they_are(event_movie):
    from tapkit.plot import frames as viewer

    rgb = viewer.frame_rgb(event_movie, 2, "events")
    plain = viewer.frame_rgb(event_movie, 2, None)
    changed = np.any(rgb != plain, axis=-1)
    assert np.array_equal(changed, event_movie.events[2] > 0)
    assert rgb[8, 8, 0] > rgb[8, 8, 1]  # divisions are red
    assert rgb[24, 24, 0] == plain[24, 24, 0]  # no death at t=2


def test_show_frames_returns_a_figure(event_movie):
    from tapkit.plot import frames as viewer

    fig = viewer.show_frames(event_movie, frames=[0, 2, 3])
    assert len(fig.axes) == 3 and [a.get_title() for a in fig.axes] == ["t = 0", "t = 2", "t = 3"]
    assert len(viewer.show_frames(event_movie, frames=2, overlay="labels").axes) == 2
    with pytest.raises(InputError, match="outside"):
        viewer.show_frames(event_movie, frames=[9])
    with pytest.raises(InputError, match="overlay"):
        viewer.show_frames(event_movie, overlay="tracks")


def test_show_frames_keeps_the_aspect_of_wide_frames_and_saves_png(event_movie, tmp_path):
    import matplotlib.pyplot as plt

    from tapkit import Movie
    from tapkit.plot import frames as viewer

    wide = Movie(np.random.default_rng(0).random((3, 40, 120), dtype=np.float32), name="wide")
    fig = viewer.show_frames(wide, frames=[0, 1, 2], overlay=None)
    fig.canvas.draw()
    box = fig.axes[0].get_window_extent()
    assert box.width / box.height == pytest.approx(3.0, rel=0.05)  # no white gap around a 3:1 frame
    plt.close(fig)
    p = viewer.save_frames(event_movie, tmp_path / "prev.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="png"):
        viewer.save_frames(event_movie, tmp_path / "prev.jpg")


def test_configure_rerun_ignores_later_objects(tmp_path):
    # globals of a re-run notebook
    ns = base_params(tmp_path, tap_lr=1e-3, tap_model=object(), sim=object())
    cfg = config.configure(ns, "02")
    assert cfg.tap["lr"] == 1e-3 and "model" not in cfg.tap


def test_get_tap_model_trains_once_then_loads(tmp_path, capsys):
    from tests.conftest import make_tiny_movie
    from tapkit.data.io import write_tiff

    movie = make_tiny_movie(n_frames=6, size=48)
    path = write_tiff(movie, tmp_path / "tiny.tif")
    cfg = config.configure(
        base_params(
            tmp_path,
            data=str(path),
            tap_epochs=1,
            tap_steps_per_epoch=1,
            tap_batch_size=2,
            tap_patch=32,
            tap_val_steps=1,
        ),
        "02",
    )
    first = config.get_tap_model(cfg, movie=movie)
    assert "trained a quick model" in capsys.readouterr().out
    assert (cfg.out_dir / "tap_tiny.pt").is_file()
    second = config.get_tap_model(cfg)
    assert "loaded your model" in capsys.readouterr().out
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch_equal(a, b)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_segmentation_frames_cuts_only_where_the_profile_says(tmp_path, capsys, tiny_movie):
    smoke = config.configure(base_params(tmp_path), "08")  # smoke: real_frames = 8
    long_movie = type(tiny_movie)(np.concatenate([tiny_movie.images] * 3), name="long")  # 24 frames
    cut = config.segmentation_frames(smoke, long_movie)
    assert len(cut) == smoke.segmentation["real_frames"] == 8 and np.array_equal(
        cut.images, long_movie.images[:8]
    )
    assert "first 8 of 24 frames of long" in capsys.readouterr().out
    assert config.segmentation_frames(smoke, tiny_movie) is tiny_movie  # 8 frames: nothing to cut
    cpu = config.configure(base_params(tmp_path, profile="cpu"), "08")
    assert (
        cpu.segmentation["real_frames"] is None
        and config.segmentation_frames(cpu, long_movie) is long_movie
    )


def test_real_movie_recipe_parameters_accept_none_and_check_values(tmp_path):
    cfg = config.configure(base_params(tmp_path, tap_per_crop=None, tap_val_region=None), "01")
    # simulated: the profile's recipe
    assert "per_crop" not in cfg.tap and "val_region" not in cfg.tap
    with pytest.raises(InputError, match="tap_val_region=1.5"):
        config.configure(base_params(tmp_path, tap_val_region=1.5), "01")
