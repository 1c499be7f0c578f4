"""tapkit.data.io: TIFF / folder / Cell Tracking Challenge readers and writers, with clear
errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile
from conftest import TINY_LINEAGE, make_tiny_movie

from tapkit import DIVISION, InputError, Movie
from tapkit.data.io import (
    check_lineage,
    events_from_lineage,
    natural_key,
    read_ctc,
    read_lineage,
    read_tiff,
    read_tiff_folder,
    write_ctc,
    write_tiff,
)


def _rand(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


# --------------------------------------------------------------------------------------------- TIFF
def test_write_read_tiff_round_trip_exact_and_scale(tmp_path, tiny_movie):
    p = write_tiff(tiny_movie, tmp_path / "m.tif")
    with tifffile.TiffFile(p) as tif:
        assert tif.is_imagej and tif.series[0].axes == "TYX"
    m = read_tiff(p)
    np.testing.assert_array_equal(m.images, tiny_movie.images)
    assert m.pixel_size == pytest.approx(0.5) and m.frame_interval == pytest.approx(10.0)
    floats = _rand((3, 16, 16)) * 7.3  # non-integer values must survive too
    np.testing.assert_array_equal(read_tiff(write_tiff(floats, tmp_path / "f.tif")).images, floats)


def test_read_tiff_with_masks(tmp_path, tiny_movie):
    write_tiff(tiny_movie, tmp_path / "m.tif")
    tifffile.imwrite(tmp_path / "lab.tif", tiny_movie.labels.astype(np.uint16))
    tifffile.imwrite(tmp_path / "ev.tif", tiny_movie.events)
    m = read_tiff(tmp_path / "m.tif", labels=tmp_path / "lab.tif", events=tmp_path / "ev.tif")
    np.testing.assert_array_equal(m.labels, tiny_movie.labels)
    np.testing.assert_array_equal(m.events, tiny_movie.events)
    tifffile.imwrite(
        tmp_path / "short.tif", tiny_movie.labels[:3].astype(np.uint16), photometric="minisblack"
    )
    with pytest.raises(InputError, match=r"short.tif has shape \(3, 64, 64\).*\(8, 64, 64\)"):
        read_tiff(tmp_path / "m.tif", labels=tmp_path / "short.tif")
    tifffile.imwrite(tmp_path / "half.tif", tiny_movie.labels.astype(np.float32) + 0.5)
    with pytest.raises(InputError, match="non-integer"):
        read_tiff(tmp_path / "m.tif", labels=tmp_path / "half.tif")


def test_read_tiff_channels(tmp_path):
    arr = _rand((5, 2, 16, 16))  # (T, C, Y, X)
    arr[:, 1] += 10
    tifffile.imwrite(tmp_path / "tc.tif", arr, imagej=True, metadata={"axes": "TCYX"})
    with pytest.raises(InputError, match=r"\(5, 2, 16, 16\).*channel=0"):
        read_tiff(tmp_path / "tc.tif")
    np.testing.assert_array_equal(read_tiff(tmp_path / "tc.tif", channel=1).images, arr[:, 1])
    with pytest.raises(InputError, match="2 channels"):
        read_tiff(tmp_path / "tc.tif", channel=2)
    tifffile.imwrite(tmp_path / "plain4d.tif", arr)  # no axis names: axis 1 is taken as the channel
    np.testing.assert_array_equal(read_tiff(tmp_path / "plain4d.tif", channel=0).images, arr[:, 0])
    # tifffile's default for 3-frame stacks (planar RGB) must still read as 3 frames
    tifffile.imwrite(tmp_path / "tyx.tif", arr[:3, 0], photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_tiff(tmp_path / "tyx.tif").images, arr[:3, 0])
    tifffile.imwrite(
        tmp_path / "tzyx.tif", _rand((3, 4, 16, 16)), imagej=True, metadata={"axes": "TZYX"}
    )
    with pytest.raises(InputError, match="3D time-lapse.*max projection"):
        read_tiff(tmp_path / "tzyx.tif")
    with pytest.raises(InputError, match="leave out channel"):
        read_tiff(tmp_path / "tyx.tif", channel=0)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: tifffile.imwrite(p, _rand((16, 16))), "single 2D image"),
        (
            lambda p: tifffile.imwrite(p, _rand((16, 16, 3)), photometric="rgb"),
            "3 channels",
        ),  # an RGB picture
        (lambda p: tifffile.imwrite(p, _rand((1, 16, 16))), "single 2D image"),
        (
            lambda p: tifffile.imwrite(
                p,
                np.where(np.eye(16, dtype=bool), np.nan, _rand((3, 16, 16))),
                photometric="minisblack",
            ),
            "NaN",
        ),
        (
            lambda p: tifffile.imwrite(
                p, np.stack([_rand((16, 16)), np.ones((16, 16), np.float32)])
            ),
            "constant",
        ),
        (lambda p: p.write_bytes(b"this is not a tiff at all" * 10), "could not read"),
        (lambda p: p.write_bytes(_valid_tiff_bytes()[:200]), "could not read"),
    ],
)
def test_read_tiff_bad_files(tmp_path, make, words):
    p = tmp_path / "bad.tif"
    make(p)
    with pytest.raises(InputError, match=words) as info:
        read_tiff(p)
    assert "bad.tif" in str(info.value) or words in ("NaN", "constant")


def _valid_tiff_bytes() -> bytes:
    import io as _io

    buf = _io.BytesIO()
    tifffile.imwrite(buf, (_rand((4, 32, 32)) * 1000).astype(np.uint16), photometric="minisblack")
    return buf.getvalue()


def test_missing_path_names_it_and_cwd(tmp_path):
    for reader in (read_tiff, read_tiff_folder, read_ctc):
        with pytest.raises(InputError, match="nope.*does not exist.*working directory") as info:
            reader(tmp_path / "nope")
        assert os.getcwd() in str(info.value)


# ------------------------------------------------------------------------------------------ folders
def test_read_tiff_folder_natural_order_and_odd_file(tmp_path):
    frames = _rand((11, 16, 16))
    for t in range(11):
        tifffile.imwrite(tmp_path / f"frame{t}.tif", frames[t])
    assert sorted(["t10.tif", "t2.tif", "t1.tif"], key=natural_key) == [
        "t1.tif",
        "t2.tif",
        "t10.tif",
    ]
    # frame2 before frame10
    np.testing.assert_array_equal(read_tiff_folder(tmp_path).images, frames)
    tifffile.imwrite(tmp_path / "frame11.tif", _rand((16, 17)))
    with pytest.raises(InputError, match=r"frame11.tif has shape \(16, 17\)"):
        read_tiff_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .tif"):
        read_tiff_folder(tmp_path / "empty")


# ------------------------------------------------------------------------------- lineage and events
def test_events_from_lineage_marks_mothers_and_daughters(tiny_movie):
    ev = events_from_lineage(tiny_movie.labels, TINY_LINEAGE, n_before=2, n_after=2)
    lab = tiny_movie.labels
    expect = np.zeros_like(ev)
    for t in (2, 3):  # mother 1 ends at frame 3
        expect[t][lab[t] == 1] = DIVISION
    for t in (4, 5):  # daughters 2, 3 start at frame 4
        expect[t][np.isin(lab[t], [2, 3])] = DIVISION
    np.testing.assert_array_equal(ev, expect)
    assert not ev[lab == 4].any()  # track 4 never divides
    one = events_from_lineage(lab, TINY_LINEAGE, n_before=1, n_after=1)
    np.testing.assert_array_equal(one, tiny_movie.events)
    single_child = TINY_LINEAGE[[0, 1, 3]]  # 1 -> 2 only: a continuation, not a division
    assert not events_from_lineage(lab, single_child).any()


@pytest.mark.parametrize(
    "text, words",
    [
        ("1 0 3\n", "3 columns"),
        ("1 0 3 0\n2 4 x 1\n", "line 2 holds a non-integer"),
        ("1 5 3 0\n", "first frame is after last frame"),
        ("1 0 3 0\n2 4 7 9\n", "parent id is not a track id"),
        ("1 0 3 0\n1 4 7 0\n", "appears more than once"),
        ("1 0 30 0\n", "beyond the movie"),
    ],
)
def test_read_lineage_errors(tmp_path, text, words):
    (tmp_path / "man_track.txt").write_text(text)
    with pytest.raises(InputError, match=words):
        read_lineage(tmp_path / "man_track.txt", n_frames=8)


def test_check_lineage_accepts_empty_and_valid():
    assert check_lineage(np.zeros((0, 4), int)).shape == (0, 4)
    np.testing.assert_array_equal(check_lineage(TINY_LINEAGE, n_frames=8), TINY_LINEAGE)


# ---------------------------------------------------------------------------------------------- CTC
def test_ctc_round_trip(tmp_path, tiny_movie):
    seq = write_ctc(tiny_movie, tmp_path / "ds")
    assert seq == tmp_path / "ds" / "01" and (seq / "t007.tif").is_file()
    # integer-valued images -> exact uint16
    assert tifffile.imread(seq / "t000.tif").dtype == np.uint16
    assert tifffile.imread(tmp_path / "ds/01_GT/TRA/man_track003.tif").dtype == np.uint16
    m = read_ctc(seq)
    np.testing.assert_array_equal(m.images, tiny_movie.images)
    np.testing.assert_array_equal(m.labels, tiny_movie.labels)
    np.testing.assert_array_equal(m.lineage, tiny_movie.lineage)
    assert (
        m.events is not None and ((m.events == DIVISION) >= (tiny_movie.events == DIVISION)).all()
    )
    np.testing.assert_array_equal(
        m.events, events_from_lineage(tiny_movie.labels, tiny_movie.lineage)
    )
    # non-integer images are written as float32, still exact
    floats = make_tiny_movie(integer=False)
    np.testing.assert_array_equal(
        read_ctc(write_ctc(floats, tmp_path / "f", seq="02")).images, floats.images
    )


def test_write_ctc_without_ground_truth_and_overwrite(tmp_path):
    arr = _rand((3, 16, 16))
    seq = write_ctc(arr, tmp_path)
    m = read_ctc(seq)
    assert m.labels is None and m.lineage is None and m.events is None
    with pytest.raises(InputError, match="overwrite=True"):
        write_ctc(arr, tmp_path)
    write_ctc(arr[:2], tmp_path, overwrite=True)
    assert len(read_ctc(seq)) == 2  # old t002 removed
    with pytest.raises(InputError, match="two digits"):
        write_ctc(arr, tmp_path, seq="1")


def test_write_ctc_lineage_from_labels(tmp_path, tiny_movie):
    no_lin = Movie(tiny_movie.images, labels=tiny_movie.labels, name="nolin")
    m = read_ctc(write_ctc(no_lin, tmp_path))
    np.testing.assert_array_equal(m.lineage[:, :3], TINY_LINEAGE[:, :3])
    assert (m.lineage[:, 3] == 0).all() and not m.events.any()


def test_read_ctc_errors(tmp_path, tiny_movie):
    seq = write_ctc(tiny_movie, tmp_path)
    tra = tmp_path / "01_GT" / "TRA"
    (tra / "man_track.txt").write_text("1 0 3 0\n2 4 7 5\n")
    with pytest.raises(InputError, match="parent id is not a track id"):
        read_ctc(seq)
    (tra / "man_track.txt").unlink()
    with pytest.raises(InputError, match="man_track.txt.*missing.*ground_truth=False"):
        read_ctc(seq)
    assert read_ctc(seq, ground_truth=False).labels is None
    np.savetxt(tra / "man_track.txt", TINY_LINEAGE, fmt="%d")
    (tra / "man_track005.tif").unlink()
    with pytest.raises(InputError, match=r"frames \[5\] are missing"):
        read_ctc(seq)
    (seq / "t004.tif").unlink()
    with pytest.raises(InputError, match=r"frames \[4\] are missing"):
        read_ctc(seq)
    with pytest.raises(InputError, match="no frames named tNNN.tif"):
        read_ctc(tmp_path / "01_GT")


def test_ctc_round_trip_of_simulated_divisions(tmp_path):
    import tapkit.data.simulate as simulate

    sim = simulate.simulate_movie(
        n_frames=16, size=(96, 96), division_rate=0.1, seed=1, progress=False
    )
    m = read_ctc(write_ctc(sim, tmp_path))
    np.testing.assert_array_equal(m.images, sim.images)
    np.testing.assert_array_equal(m.labels, sim.labels)
    np.testing.assert_array_equal(m.lineage, sim.lineage)
    parents, counts = np.unique(sim.lineage[sim.lineage[:, 3] > 0, 3], return_counts=True)
    mothers = parents[counts >= 2].tolist()  # CTC definition: >= 2 visible children
    assert len(mothers) >= 2, "the simulated movie should contain divisions"
    rows = {int(r[0]): r for r in sim.lineage}
    for mother in mothers:  # every division is marked on the right cells, in both masks
        last = rows[mother][2]
        assert (m.events[last][m.labels[last] == mother] == DIVISION).all()
        assert (sim.events[last][sim.labels[last] == mother] == DIVISION).all()
        for d in sim.lineage[sim.lineage[:, 3] == mother, 0].tolist():
            first = rows[d][1]
            assert (m.events[first][m.labels[first] == d] == DIVISION).all()
            assert (sim.events[first][sim.labels[first] == d] == DIVISION).all()
    # the derived mask (2 frames either side) lies inside the simulator's longer mitosis/daughter
    # marks
    assert ((m.events == DIVISION) <= (sim.events == DIVISION)).all()
