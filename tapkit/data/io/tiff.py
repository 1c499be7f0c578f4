"""TIFF movies: one TIFF or OME-TIFF file (with optional label and event mask TIFFs), a folder of 2D
TIFF frames, and writing a movie as an ImageJ TIFF. Damaged files raise InputError naming the file
and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tifffile
from tqdm.auto import tqdm

from tapkit.data.io.common import (
    PathArg,
    _check_frame_size,
    _existing,
    _squeeze,
    check_axes,
    check_channel,
    natural_key,
)
from tapkit.data.movie import InputError, Movie, as_movie, check_images

TIFF_SUFFIXES = (".tif", ".tiff")


def _read_tiff_file(path: Path, what: str) -> tuple[np.ndarray, str, dict[str, float]]:
    """Read a TIFF's first series as (array, axes, ImageJ scale); re-raise any reader error as
    InputError."""
    if path.is_dir():
        raise InputError(
            f"{what}: {str(path)!r} is a folder; use read_tiff_folder() or read_ctc() for folders."
        )
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return series.asarray(), series.axes, _imagej_scale(tif)
    except (
        Exception
    ) as err:  # tifffile raises many types (TiffFileError, ValueError, struct.error, ...)
        raise InputError(
            f"{what}: could not read {str(path)!r} as a TIFF ({type(err).__name__}: {err}). Check "
            "that it is a complete .tif file (re-download or re-export it, e.g. Fiji "
            "'File > Save As > Tiff')."
        ) from err


def check_tiff_header(path: Path, what: str = "data", channel: int | None = None) -> None:
    """Open a TIFF cheaply (header, last frame); raise InputError if it is damaged, empty, too
    small, 3D + time, or (when `channel` is given) has no such channel."""
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0] if tif.series else None
            shape, axes = (series.shape, series.axes) if series is not None else ((), "")
            if len(tif.pages):  # read the last frame only: catches damaged data, stays cheap
                tif.pages[len(tif.pages) - 1].asarray()
            uncompressed = len(tif.pages) and tif.pages.first.compression == 1
            if series is not None and uncompressed and series.nbytes > path.stat().st_size:
                raise ValueError(
                    f"the header promises {series.nbytes} bytes of pixels, the file has "
                    f"{path.stat().st_size} (truncated)"
                )
    except Exception as err:  # tifffile raises several types for corrupt files
        raise InputError(
            f"{what}={str(path)!r} is not a readable TIFF ({type(err).__name__}: {err}). "
            "Check the file is complete (re-download or re-export it)."
        ) from err
    if len(shape) < 2:
        raise InputError(
            f"{what}={str(path)!r}: the TIFF holds no image series; expected a (T, Y, X) movie."
        )
    _check_frame_size(shape, axes, path)
    squeezed = check_axes(shape, axes, path.name, what, note=False)
    if len(squeezed) == 2:
        raise InputError(
            f"{what}={str(path)!r} holds a single 2D image {tuple(shape)}, not a movie: a movie "
            "needs T >= 2 frames (T, Y, X). Check you saved the whole time-lapse as one stack, or "
            "give the folder of frames."
        )
    if channel is not None:
        check_channel(
            tuple(n for n, a in zip(shape, axes) if n > 1 or a in "YX"),
            squeezed,
            channel,
            path.name,
            what,
        )


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


def _pick_channel(arr: np.ndarray, axes: str, channel: int | None, path: Path) -> np.ndarray:
    """Reduce a TIFF to (T, Y, X): select `channel` along the C/S axis (or axis 1 of unnamed 4D
    data)."""
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
            f"read_tiff: the {key} mask {p.name} has shape {arr.shape} but the movie has shape "
            f"{shape}. A mask needs one frame per movie frame and the same Y, X size: check you "
            "paired the right files."
        )
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.array_equal(arr, np.round(arr)):
            raise InputError(
                f"read_tiff: the {key} mask {p.name} holds non-integer values ({arr.dtype}); "
                "masks are label images with whole numbers (0 = background)."
            )
        arr = arr.astype(np.int64)
    return arr


def read_tiff(
    path: PathArg,
    channel: int | None = None,
    labels: PathArg | None = None,
    events: PathArg | None = None,
    name: str | None = None,
) -> Movie:
    """Read a (T, Y, X) movie from one TIFF file, optionally with label and event mask TIFFs.

    A 2D file is refused (a movie needs T >= 2 frames); multi-channel files need `channel=`.
    Pixel size and frame interval are taken from ImageJ metadata when present.
    """
    p = _existing(path, "read_tiff")
    arr, axes, scale = _read_tiff_file(p, "read_tiff")
    arr = _pick_channel(arr, axes, channel, p)
    raw_dtype = str(arr.dtype)
    if arr.ndim == 2:
        raise InputError(
            f"read_tiff: {p.name} holds a single 2D image {arr.shape}, but a movie needs T frames "
            "(T, Y, X). Save the time-lapse as one stack, or use read_tiff_folder() for a folder "
            "of frames."
        )
    images = check_images(arr, what=f"read_tiff({p.name})")
    lab = None if labels is None else _read_mask(labels, images.shape, "labels")
    ev = None if events is None else _read_mask(events, images.shape, "events")
    return Movie(
        images=images,
        labels=lab,
        events=ev,
        name=name or p.stem,
        meta={"source": str(p), "dtype": raw_dtype},
        **scale,
    )


def _stack_frames(files: Sequence[Path], what: str) -> np.ndarray:
    """Read 2D TIFF frames into a (T, Y, X) array; every frame must have the first frame's shape."""
    frames: list[np.ndarray] = []
    for f in tqdm(
        files, desc=f"reading {files[0].parent.name}", leave=False, disable=len(files) < 50
    ):
        arr, axes, _ = _read_tiff_file(f, what)
        arr, _ = _squeeze(arr, axes)
        if arr.ndim != 2:
            raise InputError(
                f"{what}: {f.name} has shape {arr.shape}; every file in the folder must be one "
                "2D frame (Y, X). Multi-frame stacks are read with read_tiff()."
            )
        if frames and arr.shape != frames[0].shape:
            raise InputError(
                f"{what}: {f.name} has shape {arr.shape} but {files[0].name} has "
                f"{frames[0].shape}; all frames must have the same size. Remove or crop the odd "
                "file."
            )
        frames.append(arr)
    return np.stack(frames)


def _tiffs_in(folder: Path) -> list[Path]:
    """The visible .tif/.tiff files of a folder, naturally sorted."""
    files = [
        f
        for f in folder.iterdir()
        if f.suffix.lower() in TIFF_SUFFIXES and not f.name.startswith(".")
    ]
    return sorted(files, key=lambda f: natural_key(f.name))


def read_tiff_folder(path: PathArg, name: str | None = None) -> Movie:
    """Read a folder of 2D TIFF frames (sorted naturally: t2 before t10) into a Movie."""
    folder = _existing(path, "read_tiff_folder")
    if not folder.is_dir():
        raise InputError(
            f"read_tiff_folder: {str(folder)!r} is a file; use read_tiff() for a single TIFF movie."
        )
    files = _tiffs_in(folder)
    if not files:
        raise InputError(
            f"read_tiff_folder: no .tif/.tiff files in {str(folder)!r}; point to the folder "
            "that holds the frames."
        )
    stack = _stack_frames(files, "read_tiff_folder")
    images = check_images(stack, what=f"read_tiff_folder({folder.name})")
    return Movie(
        images=images,
        name=name or folder.name,
        meta={"source": str(folder), "dtype": str(stack.dtype)},
    )


def _exact_dtype(images: np.ndarray) -> np.ndarray:
    """uint16 when every value is a whole number in 0 ... 65535 (exact and compact), else
    float32."""
    if (
        images.size
        and images.min() >= 0
        and images.max() <= 65535
        and np.array_equal(images, np.round(images))
    ):
        return images.astype(np.uint16)
    return images.astype(np.float32)


def write_tiff(movie_or_array: "Movie | np.ndarray", path: PathArg) -> Path:
    """Write a (T, Y, X) movie as an ImageJ-compatible TIFF (uint16 if exact, else float32) and
    return the path.

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
