"""zarr arrays and OME-Zarr images (optional dependency: `pip install 'tapkit-course[zarr]'`).

The axes come from OME-Zarr `multiscales` metadata or an `axes` attribute, else the OME-NGFF order
(ZARR_DEFAULT_AXES); shape, axes and channel are checked from the metadata before any pixel is read.
The zarr package is imported on first use (`import_zarr`), so tapkit works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tapkit.data.io.common import (
    PathArg,
    _check_frame_size,
    _existing,
    _squeeze,
    check_axes,
    check_channel,
)
from tapkit.data.movie import InputError, Movie, check_images

ZARR_MARKERS = (".zarray", ".zgroup", "zarr.json")
ZARR_DEFAULT_AXES = {3: "TYX", 4: "TCYX", 5: "TCZYX"}  # unnamed arrays: OME-NGFF order


def is_zarr(path: PathArg) -> bool:
    """True for a zarr array or group folder (a `.zarr` suffix or zarr's metadata files inside)."""
    p = Path(path).expanduser()
    return p.is_dir() and (
        p.suffix.lower() == ".zarr" or any((p / m).is_file() for m in ZARR_MARKERS)
    )


def import_zarr() -> Any:
    """The zarr package, or InputError naming the extra that installs it."""
    try:
        import zarr
    except ImportError:
        raise InputError(
            "reading or writing zarr arrays needs the optional package zarr: install it with "
            "pip install 'tapkit-course[zarr]' (or pip install zarr), or convert the movie to a "
            "TIFF."
        ) from None
    return zarr


def _ngff_axes(attrs: dict) -> tuple[str | None, str | None]:
    """(path of the full-resolution array, axes letters) from OME-Zarr `multiscales` metadata, if
    present."""
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        return None, None
    first = multiscales[0]
    names = [a["name"] if isinstance(a, dict) else str(a) for a in first.get("axes", [])]
    return first["datasets"][0]["path"], "".join(n[:1].upper() for n in names) or None


def open_zarr(path: PathArg, what: str = "read_zarr") -> tuple[Any, str]:
    """(lazy zarr array, axes) of a zarr array, an OME-Zarr image or a group holding one array; no
    pixels read."""
    zarr, p = import_zarr(), _existing(path, what)
    try:
        node = zarr.open(str(p), mode="r")
    except Exception as err:  # zarr raises several types for folders that are not zarr
        raise InputError(
            f"{what}: could not open {str(p)!r} as zarr ({type(err).__name__}: {err}). Point to "
            "the folder of one zarr array (or of an OME-Zarr image)."
        ) from err
    axes = None
    if not hasattr(node, "shape"):  # a group
        sub, axes = _ngff_axes(dict(node.attrs))
        arrays = sorted(node.array_keys())
        if sub is None and len(arrays) != 1:
            raise InputError(
                f"{what}: {p.name} is a zarr group with arrays {arrays or 'none'} and no OME-Zarr "
                "metadata; point to one array inside it, e.g. "
                f"data='{p}/{arrays[0] if arrays else 'name'}'."
            )
        node = node[sub if sub is not None else arrays[0]]
    axes = axes or node.attrs.get("axes") or ZARR_DEFAULT_AXES.get(node.ndim)
    if node.ndim < 3 or axes is None:
        raise InputError(
            f"{what}: {p.name} holds an array of shape {tuple(node.shape)}, not a movie: tapkit "
            "needs (T, Y, X), (T, C, Y, X) or (T, C, Z, Y, X) with Z = 1. Save the time-lapse, not "
            "one frame."
        )
    if len(axes) != node.ndim:
        raise InputError(
            f"{what}: {p.name} has shape {tuple(node.shape)} but axes {axes!r}; the 'axes' "
            "attribute needs one letter per dimension (T, C, Z, Y, X)."
        )
    return node, str(axes).upper()


def check_zarr(
    path: PathArg, channel: int | None = None, what: str = "data", strict: bool = False
) -> tuple[tuple[int, ...], str]:
    """Check a zarr movie's shape, axes and `channel` (when given, or always if strict) from its
    metadata only; return the squeezed (shape, axes)."""
    node, axes = open_zarr(path, what)
    name = Path(path).name
    squeezed = check_axes(node.shape, axes, name, what, note=False)
    shape = tuple(n for n, a in zip(node.shape, axes) if n > 1 or a in "YX")
    _check_frame_size(shape, squeezed, Path(path))
    if channel is not None or strict:
        check_channel(shape, squeezed, channel, name, what)
    if len(shape) - (1 if any(a in squeezed for a in "CS") else 0) < 3:
        raise InputError(
            f"{what}: {name} has shape {tuple(node.shape)} (axes {axes}): a single frame, not a "
            "movie. A movie needs T >= 2 frames."
        )
    return shape, squeezed


def read_zarr(path: PathArg, channel: int | None = None, name: str | None = None) -> Movie:
    """Read a (T, Y, X) movie from a zarr array or OME-Zarr image (`channel=` for multi-channel
    data)."""
    # shape, axes and channel, before any pixel is read
    check_zarr(path, channel, "read_zarr", strict=True)
    node, axes = open_zarr(path)
    index = tuple(slice(None) for _ in axes)
    cax = next((i for i, a in enumerate(axes) if a in "CS" and node.shape[i] > 1), None)
    if cax is not None:  # read only the chosen channel
        index = index[:cax] + (channel,) + index[cax + 1 :]
        axes = axes[:cax] + axes[cax + 1 :]
    arr, axes = _squeeze(np.asarray(node[index]), axes)
    images = check_images(arr, what=f"read_zarr({Path(path).name})")
    return Movie(
        images=images,
        name=name or Path(path).stem,
        meta={"source": str(path), "dtype": str(arr.dtype)},
    )


def write_zarr(movie_or_array: "Movie | np.ndarray", path: PathArg, axes: str = "TYX") -> Path:
    """Write an array as a zarr array chunked per frame, with its `axes` attribute; returns the
    path."""
    zarr = import_zarr()
    arr = movie_or_array.images if isinstance(movie_or_array, Movie) else np.asarray(movie_or_array)
    if len(axes) != arr.ndim:
        raise InputError(
            f"write_zarr: axes={axes!r} but the array has {arr.ndim} dimensions {arr.shape}."
        )
    chunks = tuple(n if a in "YX" else 1 for n, a in zip(arr.shape, axes))
    z = zarr.open(
        str(Path(path).expanduser()), mode="w", shape=arr.shape, dtype=arr.dtype, chunks=chunks
    )
    z[...] = arr
    z.attrs["axes"] = axes
    return Path(path)
