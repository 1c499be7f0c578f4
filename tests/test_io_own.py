"""Readers notebook 09 needs: OME-TIFF axes, zarr arrays, and named errors before any training."""

import sys

import numpy as np
import pytest
import tifffile

from tapkit.course.parameters import check_parameters
from tapkit.data import datasets, io
from tapkit.data.movie import InputError


def _movie(shape=(6, 32, 32), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(100, 4000, shape).astype(np.uint16)


def test_ome_tiff_tyx_and_tcyx(tmp_path):
    tyx, tcyx = _movie(), _movie((6, 2, 32, 32), 1)
    tifffile.imwrite(tmp_path / "a.ome.tif", tyx, ome=True, metadata={"axes": "TYX"})
    tifffile.imwrite(tmp_path / "b.ome.tif", tcyx, ome=True, metadata={"axes": "TCYX"})
    movie = datasets.load(tmp_path / "a.ome.tif")
    np.testing.assert_array_equal(movie.images, tyx) and movie.meta["dtype"] == "uint16"
    np.testing.assert_array_equal(
        datasets.load(tmp_path / "b.ome.tif", channel=1).images, tcyx[:, 1]
    )
    with pytest.raises(InputError, match="2 channels.*channel=0"):
        datasets.load(tmp_path / "b.ome.tif")


def test_ome_tiff_with_z_and_t_is_refused_by_resolve(tmp_path):
    tifffile.imwrite(
        tmp_path / "tz.ome.tif", _movie((3, 4, 32, 32)), ome=True, metadata={"axes": "TZYX"}
    )
    with pytest.raises(
        InputError, match=r"3D time-lapse.*3 time points x 4 z-slices.*max projection"
    ):
        datasets.resolve(tmp_path / "tz.ome.tif")  # the header alone: before any pixel is read


def test_z_only_stack_is_read_as_time_with_a_note(tmp_path, capsys):
    arr = _movie((5, 32, 32))
    tifffile.imwrite(tmp_path / "z.ome.tif", arr, ome=True, metadata={"axes": "ZYX"})
    np.testing.assert_array_equal(datasets.load(tmp_path / "z.ome.tif").images, arr)
    assert "reading its 5 z-slices as time points" in capsys.readouterr().out


def test_channel_out_of_range_is_caught_by_the_parameter_check(tmp_path):
    tifffile.imwrite(
        tmp_path / "c.ome.tif", _movie((6, 2, 32, 32)), ome=True, metadata={"axes": "TCYX"}
    )
    with pytest.raises(InputError, match=r"channel=2 but c.ome.tif has 2 channels \(0 ... 1\)"):
        check_parameters({"data": str(tmp_path / "c.ome.tif"), "channel": 2}, {})
    assert check_parameters({"data": str(tmp_path / "c.ome.tif"), "channel": 1}, {})["channel"] == 1
    tifffile.imwrite(tmp_path / "one.tif", _movie())
    with pytest.raises(InputError, match="one channel"):
        datasets.resolve(tmp_path / "one.tif", channel=0)


def test_a_2d_tiff_is_not_a_movie(tmp_path):
    tifffile.imwrite(tmp_path / "frame.tif", _movie((32, 32)))
    with pytest.raises(InputError, match="single 2D image"):
        datasets.load(tmp_path / "frame.tif")


def test_zarr_missing_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "m.zarr").mkdir()
    (tmp_path / "m.zarr" / "zarr.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "zarr", None)  # as if zarr were not installed
    with pytest.raises(InputError, match=r"tapkit-course\[zarr\]"):
        datasets.resolve(tmp_path / "m.zarr")


def test_zarr_arrays_read_check_and_refuse(tmp_path):
    pytest.importorskip("zarr")
    tyx, tcyx = _movie(), _movie((6, 3, 32, 32), 2)
    io.write_zarr(tyx, tmp_path / "a.zarr")
    io.write_zarr(tcyx, tmp_path / "b.zarr", axes="TCYX")
    assert datasets.resolve(tmp_path / "a.zarr") == str((tmp_path / "a.zarr").resolve())
    np.testing.assert_array_equal(datasets.load(tmp_path / "a.zarr").images, tyx)
    np.testing.assert_array_equal(datasets.load(tmp_path / "b.zarr", channel=2).images, tcyx[:, 2])
    with pytest.raises(InputError, match="channel=3 but b.zarr has 3 channels"):
        check_parameters({"data": str(tmp_path / "b.zarr"), "channel": 3}, {})
    io.write_zarr(tyx[0], tmp_path / "frame.zarr", axes="YX")
    with pytest.raises(InputError, match=r"shape \(32, 32\), not a movie"):
        datasets.resolve(tmp_path / "frame.zarr")
    io.write_zarr(_movie((2, 3, 32, 32)), tmp_path / "tz.zarr", axes="TZYX")
    with pytest.raises(InputError, match="3D time-lapse"):
        datasets.resolve(tmp_path / "tz.zarr")


def test_ome_zarr_group_uses_its_multiscales_axes(tmp_path):
    zarr = pytest.importorskip("zarr")
    arr = _movie((5, 2, 1, 32, 32), 3)
    group = zarr.open_group(str(tmp_path / "img.zarr"), mode="w")
    group.create_array("0", shape=arr.shape, dtype=arr.dtype)[...] = arr
    group.attrs["multiscales"] = [
        {"axes": [{"name": n} for n in "tczyx"], "datasets": [{"path": "0"}]}
    ]
    np.testing.assert_array_equal(
        datasets.load(tmp_path / "img.zarr", channel=0).images, arr[:, 0, 0]
    )
