"""Read and write movies: single TIFFs and OME-TIFFs, folders of TIFF frames, the Cell Tracking Challenge
format and zarr arrays (optional dependency: `pip install 'tapkit-course[zarr]'`).

Axes: a file's named axes (OME-TIFF, ImageJ, OME-Zarr `multiscales`, a zarr `axes` attribute) decide how
it is read: TYX is a movie, TCYX / CTYX need `channel=`, ZYX (no time axis) is read as time with a note
(Fiji often labels time-lapses as z-slices), and Z and T both > 1 is refused (tapkit is 2D + time).

Every reader returns a `tapkit.Movie`; every problem with a file raises `tapkit.InputError` naming
the file and the fix, before the (possibly long) pixel work starts.

Cell Tracking Challenge (CTC) layout, as written by `write_ctc` and read by `read_ctc`::

    root/01/t000.tif, t001.tif, ...                 one 2D frame per file
    root/01_GT/TRA/man_track000.tif, ...            uint16 instance masks (track ids, 0 = background)
    root/01_GT/TRA/man_track.txt                    lineage: "id first_frame last_frame parent_id"
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
import tifffile
from tqdm.auto import tqdm

from tapkit.data.movie import DIVISION, InputError, Movie, as_movie, check_images

PathArg = Union[str, os.PathLike]
TIFF_SUFFIXES = (".tif", ".tiff")
_CTC_FRAME = re.compile(r"^t(\d+)\.tiff?$", re.IGNORECASE)
_CTC_MASK = re.compile(r"^man_track(\d+)\.tiff?$", re.IGNORECASE)


# ----------------------------------------------------------------------------------------------
# Small helpers: paths, natural sorting, opening TIFFs with clear errors
# ----------------------------------------------------------------------------------------------
def natural_key(name: str) -> list[Any]:
    """Sort key that orders numbers by value: 't2.tif' before 't10.tif'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _existing(path: PathArg, what: str) -> Path:
    """The path as a Path if it exists, else InputError naming it and the working directory."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(
            f"{what}: {str(p)!r} does not exist (working directory: {os.getcwd()}). Check the spelling "
            "and that the path is relative to the working directory, or give an absolute path."
        )
    return p


def _read_tiff_file(path: Path, what: str) -> tuple[np.ndarray, str, dict[str, float]]:
    """Read a TIFF's first series as (array, axes, ImageJ scale); re-raise any reader error as InputError."""
    if path.is_dir():
        raise InputError(f"{what}: {str(path)!r} is a folder; use read_tiff_folder() or read_ctc() for folders.")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return series.asarray(), series.axes, _imagej_scale(tif)
    except Exception as err:  # tifffile raises many types (TiffFileError, ValueError, struct.error, ...)
        raise InputError(
            f"{what}: could not read {str(path)!r} as a TIFF ({type(err).__name__}: {err}). Check that it "
            "is a complete .tif file (re-download or re-export it, e.g. Fiji 'File > Save As > Tiff')."
        ) from err


def check_tiff_header(path: Path, what: str = "data", channel: int | None = None) -> None:
    """Open a TIFF cheaply (header, last frame); raise InputError if it is damaged, empty, too small, 3D + time,
    or (when `channel` is given) has no such channel."""
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0] if tif.series else None
            shape, axes = (series.shape, series.axes) if series is not None else ((), "")
            if len(tif.pages):  # read the last frame only: catches damaged data, stays cheap
                tif.pages[len(tif.pages) - 1].asarray()
            uncompressed = len(tif.pages) and tif.pages.first.compression == 1
            if series is not None and uncompressed and series.nbytes > path.stat().st_size:
                raise ValueError(f"the header promises {series.nbytes} bytes of pixels, the file has "
                                 f"{path.stat().st_size} (truncated)")
    except Exception as err:  # tifffile raises several types for corrupt files
        raise InputError(f"{what}={str(path)!r} is not a readable TIFF ({type(err).__name__}: {err}). "
                         "Check the file is complete (re-download or re-export it).") from err
    if len(shape) < 2:
        raise InputError(f"{what}={str(path)!r}: the TIFF holds no image series; expected a (T, Y, X) movie.")
    _check_frame_size(shape, axes, path)
    squeezed = check_axes(shape, axes, path.name, what, note=False)
    if len(squeezed) == 2:
        raise InputError(f"{what}={str(path)!r} holds a single 2D image {tuple(shape)}, not a movie: a movie needs T >= 2 "
                         "frames (T, Y, X). Check you saved the whole time-lapse as one stack, or give the folder of frames.")
    if channel is not None:
        check_channel(tuple(n for n, a in zip(shape, axes) if n > 1 or a in "YX"), squeezed, channel, path.name, what)


def _imagej_scale(tif: tifffile.TiffFile) -> dict[str, float]:
    """Pixel size (um) and frame interval (min) from ImageJ metadata, when the file has them."""
    meta, out = tif.imagej_metadata or {}, {}
    if meta.get("finterval"):
        out["frame_interval"] = float(meta["finterval"]) / 60.0  # ImageJ stores seconds
    tag = tif.pages.first.tags.get("XResolution")
    if meta.get("unit") in ("um", "micron", "\u00b5m", "\\u00B5m") and tag is not None:
        num, den = tag.value
        if num > 0:
            out["pixel_size"] = float(den) / float(num)
    return out


def _squeeze(arr: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Drop singleton axes (keeping Y and X) so (1, T, 1, Y, X) files read as (T, Y, X)."""
    keep = [i for i, (n, a) in enumerate(zip(arr.shape, axes)) if n > 1 or a in "YX"]
    return arr.reshape([arr.shape[i] for i in keep]), "".join(axes[i] for i in keep)


# ----------------------------------------------------------------------------------------------
# Single TIFF movies
# ----------------------------------------------------------------------------------------------
MIN_FRAME_SIDE = 8  # smallest frame side (px) a movie may have; check_images refuses smaller frames


def _check_frame_size(shape: tuple[int, ...], axes: str, path: Path) -> None:
    """Refuse a file whose frames are too small, before the channel logic misreads a short axis as colours.

    tifffile reads a (6, 4, 4) stack as one 6 x 4 image with 4 colour samples (axes YXS); the real problem
    is 4 x 4 px frames, so say that instead of asking for a channel.
    """
    yx = tuple(n for n, a in zip(shape, axes) if a in "YX")
    if yx and min(yx) < MIN_FRAME_SIDE:
        if axes == "YXS":
            yx = tuple(shape[-2:])  # read as the (T, Y, X) movie it was meant to be
        raise InputError(f"{path.name}: shape {tuple(shape)} gives frames of {yx[0]} x {yx[-1]} px, too small for "
                         f"tapkit (at least {MIN_FRAME_SIDE} x {MIN_FRAME_SIDE}). Check that the file is a (T, Y, X) "
                         "movie of whole frames, not a crop or a table of numbers.")


def check_axes(shape: Sequence[int], axes: str, name: str, what: str = "data", note: bool = True) -> str:
    """The axes without singletons; InputError when Z and T are both > 1 (a 3D time-lapse), else ZYX reads as TYX."""
    keep = [(n, a) for n, a in zip(shape, axes) if n > 1 or a in "YX"]
    squeezed, dims = "".join(a for _, a in keep), tuple(n for n, _ in keep)
    if "Z" in squeezed and "T" in squeezed:
        nz, nt = dims[squeezed.index("Z")], dims[squeezed.index("T")]
        raise InputError(f"{what}: {name} is a 3D time-lapse (axes {squeezed}, shape {dims}: {nt} time points x {nz} "
                         "z-slices); tapkit works on 2D movies (T, Y, X). Save one z-slice or a max projection "
                         "over Z first (Fiji: Image > Stacks > Z Project...), then point data= at that file.")
    if "Z" in squeezed and "T" not in squeezed:
        if note:
            print(f"tapkit: {name} has axes {squeezed} and no time axis; reading its {dims[squeezed.index('Z')]} z-slices "
                  "as time points (Fiji often saves time-lapses as slices). If it is a real z-stack, it is not a movie.")
        squeezed = squeezed.replace("Z", "T")
    return squeezed


def check_channel(shape: Sequence[int], axes: str, channel: int | None, name: str, what: str = "read_tiff") -> int | None:
    """The channel axis of squeezed (shape, axes) (C or S, or axis 1 of unnamed 4D data), checked against `channel`."""
    if len(shape) == 3 and axes[0] == "S":
        axes = "T" + axes[1:]  # tifffile stores 3- and 4-frame stacks as planar RGB: they are frames
    cax = next((axes.index(a) for a in "CS" if a in axes), 1 if len(shape) == 4 else None)
    if cax is None:
        if channel is not None:
            raise InputError(f"{what}: {name} has one channel (axes {axes}, shape {tuple(shape)}); "
                             "leave out channel= (channel=None).")
        return None
    n = shape[cax]
    if channel is None:
        raise InputError(
            f"{what}: {name} has shape {tuple(shape)} (axes {axes}) with {n} channels on axis {cax}; "
            f"tapkit uses one channel. Pick one with channel=0 (0 ... {n - 1}), e.g. read_tiff(path, channel=0)."
        )
    if not -n <= channel < n:
        raise InputError(f"{what}: channel={channel} but {name} has {n} channels (0 ... {n - 1}); "
                         f"use channel=0 ... {n - 1}.")
    return cax


def _pick_channel(arr: np.ndarray, axes: str, channel: int | None, path: Path) -> np.ndarray:
    """Reduce a TIFF to (T, Y, X): select `channel` along the C/S axis (or axis 1 of unnamed 4D data)."""
    arr, axes = _squeeze(arr, axes)
    _check_frame_size(arr.shape, axes, path)
    axes = check_axes(arr.shape, axes, path.name, "read_tiff")
    cax = check_channel(arr.shape, axes, channel, path.name)
    return arr if cax is None else np.take(arr, channel, axis=cax)


def _read_mask(path: PathArg, shape: tuple[int, ...], key: str) -> np.ndarray:
    """Read a label/event mask TIFF and check it matches the movie's (T, Y, X) shape."""
    p = _existing(path, f"read_tiff({key}=...)")
    arr, axes, _ = _read_tiff_file(p, f"read_tiff({key}=...)")
    arr, _ = _squeeze(arr, axes)
    if arr.shape != shape:
        raise InputError(
            f"read_tiff: the {key} mask {p.name} has shape {arr.shape} but the movie has shape {shape}. "
            "A mask needs one frame per movie frame and the same Y, X size: check you paired the right files."
        )
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.array_equal(arr, np.round(arr)):
            raise InputError(f"read_tiff: the {key} mask {p.name} holds non-integer values ({arr.dtype}); "
                             "masks are label images with whole numbers (0 = background).")
        arr = arr.astype(np.int64)
    return arr


def read_tiff(path: PathArg, channel: int | None = None, labels: PathArg | None = None,
              events: PathArg | None = None, name: str | None = None) -> Movie:
    """Read a (T, Y, X) movie from one TIFF file, optionally with label and event mask TIFFs.

    A 2D file is refused (a movie needs T >= 2 frames); multi-channel files need `channel=`.
    Pixel size and frame interval are taken from ImageJ metadata when present.
    """
    p = _existing(path, "read_tiff")
    arr, axes, scale = _read_tiff_file(p, "read_tiff")
    arr = _pick_channel(arr, axes, channel, p)
    raw_dtype = str(arr.dtype)
    if arr.ndim == 2:
        raise InputError(f"read_tiff: {p.name} holds a single 2D image {arr.shape}, but a movie needs T frames "
                         "(T, Y, X). Save the time-lapse as one stack, or use read_tiff_folder() for a folder of frames.")
    images = check_images(arr, what=f"read_tiff({p.name})")
    lab = None if labels is None else _read_mask(labels, images.shape, "labels")
    ev = None if events is None else _read_mask(events, images.shape, "events")
    return Movie(images=images, labels=lab, events=ev, name=name or p.stem, meta={"source": str(p), "dtype": raw_dtype},
                 **scale)


# ----------------------------------------------------------------------------------------------
# Folders of 2D frames
# ----------------------------------------------------------------------------------------------
def _stack_frames(files: Sequence[Path], what: str) -> np.ndarray:
    """Read 2D TIFF frames into a (T, Y, X) array; every frame must have the first frame's shape."""
    frames: list[np.ndarray] = []
    for f in tqdm(files, desc=f"reading {files[0].parent.name}", leave=False, disable=len(files) < 50):
        arr, axes, _ = _read_tiff_file(f, what)
        arr, _ = _squeeze(arr, axes)
        if arr.ndim != 2:
            raise InputError(f"{what}: {f.name} has shape {arr.shape}; every file in the folder must be one "
                             "2D frame (Y, X). Multi-frame stacks are read with read_tiff().")
        if frames and arr.shape != frames[0].shape:
            raise InputError(f"{what}: {f.name} has shape {arr.shape} but {files[0].name} has "
                             f"{frames[0].shape}; all frames must have the same size. Remove or crop the odd file.")
        frames.append(arr)
    return np.stack(frames)


def _tiffs_in(folder: Path) -> list[Path]:
    """The visible .tif/.tiff files of a folder, naturally sorted."""
    files = [f for f in folder.iterdir() if f.suffix.lower() in TIFF_SUFFIXES and not f.name.startswith(".")]
    return sorted(files, key=lambda f: natural_key(f.name))


def read_tiff_folder(path: PathArg, name: str | None = None) -> Movie:
    """Read a folder of 2D TIFF frames (sorted naturally: t2 before t10) into a Movie."""
    folder = _existing(path, "read_tiff_folder")
    if not folder.is_dir():
        raise InputError(f"read_tiff_folder: {str(folder)!r} is a file; use read_tiff() for a single TIFF movie.")
    files = _tiffs_in(folder)
    if not files:
        raise InputError(f"read_tiff_folder: no .tif/.tiff files in {str(folder)!r}; point to the folder "
                         "that holds the frames.")
    stack = _stack_frames(files, "read_tiff_folder")
    images = check_images(stack, what=f"read_tiff_folder({folder.name})")
    return Movie(images=images, name=name or folder.name, meta={"source": str(folder), "dtype": str(stack.dtype)})


# ----------------------------------------------------------------------------------------------
# Lineage (CTC man_track.txt) and events derived from it
# ----------------------------------------------------------------------------------------------
def check_lineage(lineage: np.ndarray, n_frames: int | None = None, what: str = "lineage") -> np.ndarray:
    """Validate an (N, 4) lineage (id, first, last, parent) and return it as int64; InputError otherwise."""
    lin = np.asarray(lineage)
    if lin.size == 0:
        return np.zeros((0, 4), np.int64)
    if lin.ndim != 2 or lin.shape[1] != 4 or not np.issubdtype(lin.dtype, np.integer):
        raise InputError(f"{what}: expected an (N, 4) integer table id, first, last, parent; got {lin.dtype} {lin.shape}.")
    lin = lin.astype(np.int64)
    ids, first, last, parent = lin.T
    problems = [
        (ids <= 0, "ids must be positive (0 is the background)"),
        (first > last, "first frame is after last frame"),
        (first < 0, "frames must be >= 0"),
        (last >= (n_frames if n_frames is not None else np.iinfo(np.int64).max), f"frames beyond the movie's {n_frames} frames"),
        ((parent != 0) & ~np.isin(parent, ids), "parent id is not a track id (use 0 for no parent)"),
        (parent == ids, "a track cannot be its own parent"),
    ]
    for bad, why in problems:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{what}: {why}; see row {row + 1}: {lin[row].tolist()} (id first last parent).")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise InputError(f"{what}: track id {int(uniq[counts > 1][0])} appears more than once; ids must be unique.")
    return lin


def read_lineage(path: PathArg, n_frames: int | None = None) -> np.ndarray:
    """Parse a CTC man_track.txt ('id first last parent' per line) into a validated (N, 4) int64 array."""
    p = _existing(path, "read_lineage")
    rows = []
    for i, line in enumerate(p.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise InputError(f"read_lineage: {p.name} line {i} has {len(parts)} columns ({line.strip()!r}); "
                             "each line must be 'id first_frame last_frame parent_id'.")
        try:
            rows.append([int(v) for v in parts])
        except ValueError:
            raise InputError(f"read_lineage: {p.name} line {i} holds a non-integer ({line.strip()!r}); "
                             "all four columns must be whole numbers.") from None
    return check_lineage(np.array(rows, dtype=np.int64).reshape(-1, 4), n_frames, what=f"read_lineage({p.name})")


def _division_tracks(lineage: np.ndarray) -> tuple[list[int], list[int]]:
    """Ids of mothers (tracks with >= 2 children) and of their daughters."""
    parents, counts = np.unique(lineage[lineage[:, 3] > 0, 3], return_counts=True)
    mothers = parents[counts >= 2]
    daughters = lineage[np.isin(lineage[:, 3], mothers), 0]
    return mothers.tolist(), daughters.tolist()


def events_from_lineage(labels: np.ndarray, lineage: np.ndarray, n_before: int = 2, n_after: int = 2) -> np.ndarray:
    """Division events (T, Y, X) uint8 from a lineage: 1 on dividing mothers and their new daughters.

    A division is a track with >= 2 children. Its mother gets event 1 on her last `n_before` frames
    (the last one included) and each daughter on her first `n_after` frames, on those cells' mask
    pixels. Deaths are not recorded in a CTC lineage (a track that ends may die, leave the field of
    view or be lost), so this mask holds divisions only (no 2s).
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise InputError(f"events_from_lineage: labels must be (T, Y, X), got shape {labels.shape}.")
    if n_before < 0 or n_after < 0:
        raise InputError(f"events_from_lineage: n_before and n_after must be >= 0, got {n_before}, {n_after}.")
    lin = check_lineage(lineage, labels.shape[0], what="events_from_lineage")
    mothers, daughters = _division_tracks(lin)
    rows = {int(r[0]): r for r in lin}
    marked: dict[int, list[int]] = {}  # frame -> ids with an event there
    for tid in mothers:
        _, first, last, _ = rows[tid]
        for t in range(max(first, last - n_before + 1), last + 1):
            marked.setdefault(t, []).append(tid)
    for tid in daughters:
        _, first, last, _ = rows[tid]
        for t in range(first, min(last, first + n_after - 1) + 1):
            marked.setdefault(t, []).append(tid)
    events = np.zeros(labels.shape, np.uint8)
    for t, ids in marked.items():
        events[t][np.isin(labels[t], ids)] = DIVISION
    return events


# ----------------------------------------------------------------------------------------------
# Cell Tracking Challenge sequences
# ----------------------------------------------------------------------------------------------
def _numbered(folder: Path, pattern: re.Pattern[str]) -> dict[int, Path]:
    """Files of `folder` whose names match `pattern`, keyed by their frame number."""
    return {int(m.group(1)): f for f in folder.iterdir() if (m := pattern.match(f.name))}


def _ctc_frames(seq: Path) -> list[Path]:
    """The tNNN.tif frames of a CTC sequence folder in order; frame numbers must run 0 ... T-1."""
    found = _numbered(seq, _CTC_FRAME)
    if not found:
        raise InputError(f"read_ctc: no frames named tNNN.tif in {str(seq)!r}. Point to a CTC sequence folder "
                         "such as .../Fluo-N2DL-HeLa/01, or use read_tiff_folder() for other names.")
    missing = sorted(set(range(max(found) + 1)) - set(found))
    if missing:
        raise InputError(f"read_ctc: frames {missing[:10]} are missing in {str(seq)!r}; CTC frames must be "
                         "numbered t000 ... without gaps (lineage frame numbers refer to them).")
    return [found[t] for t in range(len(found))]


def _ctc_gt_files(tra: Path, n_frames: int) -> tuple[np.ndarray, list[Path]]:
    """Lineage and the per-frame mask files of a CTC `NN_GT/TRA` folder, checked before any pixel is read."""
    txt = tra / "man_track.txt"
    if not txt.is_file():
        raise InputError(f"read_ctc: the ground-truth folder {str(tra.parent)!r} exists but {str(txt)!r} is "
                         "missing. Restore it, or load the images only with read_ctc(seq_dir, ground_truth=False).")
    lineage = read_lineage(txt, n_frames=n_frames)
    masks = _numbered(tra, _CTC_MASK)
    missing = sorted(set(range(n_frames)) - set(masks))
    if missing:
        raise InputError(f"read_ctc: tracking masks man_trackNNN.tif for frames {missing[:10]} are missing in "
                         f"{str(tra)!r}; every frame needs one (or use ground_truth=False).")
    return lineage, [masks[t] for t in range(n_frames)]


def read_ctc(seq_dir: PathArg, ground_truth: bool = True, name: str | None = None) -> Movie:
    """Read a CTC sequence folder (e.g. .../Fluo-N2DL-HeLa/01) with its TRA ground truth if present.

    Labels and lineage come from the sibling `01_GT/TRA` folder; division events are derived with
    `events_from_lineage` (deaths are not in CTC ground truth). Without `01_GT` the Movie has no
    ground truth. Segmentation-only (`SEG`) ground truth is not read. Note that CTC TRA masks are
    tracking markers: in some datasets they cover only part of each cell, and so do the events.
    """
    seq = _existing(seq_dir, "read_ctc")
    if not seq.is_dir():
        raise InputError(f"read_ctc: {str(seq)!r} is a file; give the sequence folder (e.g. .../01).")
    frames = _ctc_frames(seq)
    gt = seq.parent / f"{seq.name}_GT"
    labels = lineage = events = None
    if ground_truth and gt.is_dir():
        lineage, mask_files = _ctc_gt_files(gt / "TRA", len(frames))
    stack = _stack_frames(frames, "read_ctc")
    images = check_images(stack, what=f"read_ctc({seq.name})")
    if lineage is not None:
        labels = _stack_frames(mask_files, "read_ctc (TRA masks)")
        if labels.shape != images.shape:
            raise InputError(f"read_ctc: TRA masks have shape {labels.shape} but the frames {images.shape}; "
                             "they must match (check the man_track files belong to this sequence).")
        events = events_from_lineage(labels, lineage)
    return Movie(images=images, labels=labels, events=events, lineage=lineage,
                 name=name or f"{seq.parent.name}/{seq.name}", meta={"source": str(seq), "dtype": str(stack.dtype)})


def _exact_dtype(images: np.ndarray) -> np.ndarray:
    """uint16 when every value is a whole number in 0 ... 65535 (exact and compact), else float32."""
    if images.size and images.min() >= 0 and images.max() <= 65535 and np.array_equal(images, np.round(images)):
        return images.astype(np.uint16)
    return images.astype(np.float32)


def lineage_from_labels(labels: np.ndarray) -> np.ndarray:
    """A parent-less lineage (id, first, last, 0) listing every id found in (T, Y, X) labels."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t, frame in enumerate(labels):
        for i in np.unique(frame[frame > 0]).tolist():
            first.setdefault(i, t)
            last[i] = t
    return np.array([[i, first[i], last[i], 0] for i in sorted(first)], np.int64).reshape(-1, 4)


def _prepare_ctc_dirs(root: Path, seq: str, overwrite: bool) -> tuple[Path, Path]:
    """Create root/seq and root/seq_GT/TRA; refuse to mix with existing frames unless overwrite."""
    seq_dir, tra = root / seq, root / f"{seq}_GT" / "TRA"
    old = [*(_numbered(seq_dir, _CTC_FRAME).values() if seq_dir.is_dir() else []),
           *(_numbered(tra, _CTC_MASK).values() if tra.is_dir() else [])]
    if old and not overwrite:
        raise InputError(f"write_ctc: {str(seq_dir)!r} already holds CTC files; pass overwrite=True to replace "
                         "them or choose another root/seq.")
    for f in old:
        f.unlink()
    seq_dir.mkdir(parents=True, exist_ok=True)
    return seq_dir, tra


def write_ctc(movie: "Movie | np.ndarray", root: PathArg, seq: str = "01", overwrite: bool = False) -> Path:
    """Write a movie in CTC layout under `root` and return the sequence folder `root/seq`.

    Frames are written exactly: uint16 when all values are whole numbers in 0 ... 65535, else float32.
    Labels go to `seq_GT/TRA/man_trackNNN.tif` (uint16) with `man_track.txt` from `movie.lineage`
    (or a parent-less lineage built from the labels). Events are not part of CTC and are not written;
    `read_ctc` derives division events from the lineage again.
    """
    movie = as_movie(movie)
    if not re.fullmatch(r"\d\d", seq):
        raise InputError(f"write_ctc: seq={seq!r}; CTC sequences are two digits such as '01' or '02'.")
    if movie.labels is not None and movie.labels.max(initial=0) > 65535:
        raise InputError("write_ctc: label ids above 65535 do not fit CTC's uint16 masks; relabel first.")
    if movie.lineage is not None and movie.labels is None:
        raise InputError("write_ctc: the movie has a lineage but no labels; CTC needs the masks too.")
    lineage = None
    if movie.labels is not None:
        lineage = movie.lineage if movie.lineage is not None else lineage_from_labels(movie.labels)
        lineage = check_lineage(lineage, len(movie), what="write_ctc (movie.lineage)")
    seq_dir, tra = _prepare_ctc_dirs(Path(root).expanduser(), seq, overwrite)
    digits = max(3, len(str(len(movie) - 1)))
    for t, frame in enumerate(_exact_dtype(movie.images)):
        tifffile.imwrite(seq_dir / f"t{t:0{digits}d}.tif", frame)
    if movie.labels is not None:
        tra.mkdir(parents=True, exist_ok=True)
        for t, mask in enumerate(movie.labels.astype(np.uint16)):
            tifffile.imwrite(tra / f"man_track{t:0{digits}d}.tif", mask, compression="zlib")
        np.savetxt(tra / "man_track.txt", lineage, fmt="%d")
    return seq_dir


# ----------------------------------------------------------------------------------------------
# Writing a TIFF movie, previews
# ----------------------------------------------------------------------------------------------
def write_tiff(movie_or_array: "Movie | np.ndarray", path: PathArg) -> Path:
    """Write a (T, Y, X) movie as an ImageJ-compatible TIFF (uint16 if exact, else float32) and return the path.

    Pixel size (um) and frame interval (written in seconds) are stored in the ImageJ metadata when
    the Movie has them, so `read_tiff` gets them back.
    """
    movie = as_movie(movie_or_array)
    p = Path(path).expanduser()
    if p.suffix.lower() not in TIFF_SUFFIXES:
        raise InputError(f"write_tiff: {p.name} should end in .tif or .tiff.")
    p.parent.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"axes": "TYX"}
    kwargs: dict[str, Any] = {}
    if movie.frame_interval:
        meta["finterval"] = float(movie.frame_interval) * 60.0
    if movie.pixel_size:
        meta["unit"] = "um"
        kwargs["resolution"] = (1.0 / movie.pixel_size, 1.0 / movie.pixel_size)
    tifffile.imwrite(p, _exact_dtype(movie.images), imagej=True, metadata=meta, **kwargs)
    return p


# ----------------------------------------------------------------------------------------------
# zarr arrays (optional dependency: pip install 'tapkit-course[zarr]')
# ----------------------------------------------------------------------------------------------
ZARR_MARKERS = (".zarray", ".zgroup", "zarr.json")
ZARR_DEFAULT_AXES = {3: "TYX", 4: "TCYX", 5: "TCZYX"}  # unnamed arrays: OME-NGFF order


def is_zarr(path: PathArg) -> bool:
    """True for a zarr array or group folder (a `.zarr` suffix or zarr's metadata files inside)."""
    p = Path(path).expanduser()
    return p.is_dir() and (p.suffix.lower() == ".zarr" or any((p / m).is_file() for m in ZARR_MARKERS))


def import_zarr() -> Any:
    """The zarr package, or InputError naming the extra that installs it."""
    try:
        import zarr
    except ImportError:
        raise InputError("reading or writing zarr arrays needs the optional package zarr: install it with "
                         "pip install 'tapkit-course[zarr]' (or pip install zarr), or convert the movie to a TIFF.") from None
    return zarr


def _ngff_axes(attrs: dict) -> tuple[str | None, str | None]:
    """(path of the full-resolution array, axes letters) from OME-Zarr `multiscales` metadata, if present."""
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        return None, None
    first = multiscales[0]
    names = [a["name"] if isinstance(a, dict) else str(a) for a in first.get("axes", [])]
    return first["datasets"][0]["path"], "".join(n[:1].upper() for n in names) or None


def open_zarr(path: PathArg, what: str = "read_zarr") -> tuple[Any, str]:
    """(lazy zarr array, axes) of a zarr array, an OME-Zarr image or a group holding one array; no pixels read."""
    zarr, p = import_zarr(), _existing(path, what)
    try:
        node = zarr.open(str(p), mode="r")
    except Exception as err:  # zarr raises several types for folders that are not zarr
        raise InputError(f"{what}: could not open {str(p)!r} as zarr ({type(err).__name__}: {err}). Point to the "
                         "folder of one zarr array (or of an OME-Zarr image).") from err
    axes = None
    if not hasattr(node, "shape"):  # a group
        sub, axes = _ngff_axes(dict(node.attrs))
        arrays = sorted(node.array_keys())
        if sub is None and len(arrays) != 1:
            raise InputError(f"{what}: {p.name} is a zarr group with arrays {arrays or 'none'} and no OME-Zarr "
                             f"metadata; point to one array inside it, e.g. data='{p}/{arrays[0] if arrays else 'name'}'.")
        node = node[sub if sub is not None else arrays[0]]
    axes = axes or node.attrs.get("axes") or ZARR_DEFAULT_AXES.get(node.ndim)
    if node.ndim < 3 or axes is None:
        raise InputError(f"{what}: {p.name} holds an array of shape {tuple(node.shape)}, not a movie: tapkit needs "
                         "(T, Y, X), (T, C, Y, X) or (T, C, Z, Y, X) with Z = 1. Save the time-lapse, not one frame.")
    if len(axes) != node.ndim:
        raise InputError(f"{what}: {p.name} has shape {tuple(node.shape)} but axes {axes!r}; the 'axes' attribute "
                         "needs one letter per dimension (T, C, Z, Y, X).")
    return node, str(axes).upper()


def check_zarr(path: PathArg, channel: int | None = None, what: str = "data",
               strict: bool = False) -> tuple[tuple[int, ...], str]:
    """Check a zarr movie's shape, axes and `channel` (when given, or always if strict) from its metadata only;
    return the squeezed (shape, axes)."""
    node, axes = open_zarr(path, what)
    name = Path(path).name
    squeezed = check_axes(node.shape, axes, name, what, note=False)
    shape = tuple(n for n, a in zip(node.shape, axes) if n > 1 or a in "YX")
    _check_frame_size(shape, squeezed, Path(path))
    if channel is not None or strict:
        check_channel(shape, squeezed, channel, name, what)
    if len(shape) - (1 if any(a in squeezed for a in "CS") else 0) < 3:
        raise InputError(f"{what}: {name} has shape {tuple(node.shape)} (axes {axes}): a single frame, not a movie. "
                         "A movie needs T >= 2 frames.")
    return shape, squeezed


def read_zarr(path: PathArg, channel: int | None = None, name: str | None = None) -> Movie:
    """Read a (T, Y, X) movie from a zarr array or OME-Zarr image (`channel=` for multi-channel data)."""
    check_zarr(path, channel, "read_zarr", strict=True)  # shape, axes and channel, before any pixel is read
    node, axes = open_zarr(path)
    index = tuple(slice(None) for _ in axes)
    cax = next((i for i, a in enumerate(axes) if a in "CS" and node.shape[i] > 1), None)
    if cax is not None:  # read only the chosen channel
        index = index[:cax] + (channel,) + index[cax + 1:]
        axes = axes[:cax] + axes[cax + 1:]
    arr, axes = _squeeze(np.asarray(node[index]), axes)
    images = check_images(arr, what=f"read_zarr({Path(path).name})")
    return Movie(images=images, name=name or Path(path).stem, meta={"source": str(path), "dtype": str(arr.dtype)})


def write_zarr(movie_or_array: "Movie | np.ndarray", path: PathArg, axes: str = "TYX") -> Path:
    """Write an array as a zarr array chunked per frame, with its `axes` attribute; returns the path."""
    zarr = import_zarr()
    arr = movie_or_array.images if isinstance(movie_or_array, Movie) else np.asarray(movie_or_array)
    if len(axes) != arr.ndim:
        raise InputError(f"write_zarr: axes={axes!r} but the array has {arr.ndim} dimensions {arr.shape}.")
    chunks = tuple(n if a in "YX" else 1 for n, a in zip(arr.shape, axes))
    z = zarr.open(str(Path(path).expanduser()), mode="w", shape=arr.shape, dtype=arr.dtype, chunks=chunks)
    z[...] = arr
    z.attrs["axes"] = axes
    return Path(path)
