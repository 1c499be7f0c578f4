"""What every reader shares: the PathArg type, existing paths, natural sorting, and the axis,
frame-size and channel checks that decide how an array with named axes becomes a (T, Y, X) movie.

Axes: TYX is a movie, TCYX / CTYX need `channel=`, ZYX (no time axis) is read as time with a note
(Fiji often labels time-lapses as z-slices), and Z and T both > 1 is refused (tapkit is 2D + time).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from tapkit.data.movie import InputError

PathArg = Union[str, os.PathLike]
MIN_FRAME_SIDE = 8  # smallest frame side (px) a movie may have; check_images refuses smaller frames


def natural_key(name: str) -> list[Any]:
    """Sort key that orders numbers by value: 't2.tif' before 't10.tif'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _existing(path: PathArg, what: str) -> Path:
    """The path as a Path if it exists, else InputError naming it and the working directory."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(
            f"{what}: {str(p)!r} does not exist (working directory: {os.getcwd()}). Check the "
            "spelling and that the path is relative to the working directory, or give an absolute "
            "path."
        )
    return p


def _squeeze(arr: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Drop singleton axes (keeping Y and X) so (1, T, 1, Y, X) files read as (T, Y, X)."""
    keep = [i for i, (n, a) in enumerate(zip(arr.shape, axes)) if n > 1 or a in "YX"]
    return arr.reshape([arr.shape[i] for i in keep]), "".join(axes[i] for i in keep)


def _check_frame_size(shape: tuple[int, ...], axes: str, path: Path) -> None:
    """Refuse a file whose frames are too small, before the channel logic misreads a short axis as
    colours.

    tifffile reads a (6, 4, 4) stack as one 6 x 4 image with 4 colour samples (axes YXS); the real
    problem is 4 x 4 px frames, so say that instead of asking for a channel.
    """
    yx = tuple(n for n, a in zip(shape, axes) if a in "YX")
    if yx and min(yx) < MIN_FRAME_SIDE:
        if axes == "YXS":
            yx = tuple(shape[-2:])  # read as the (T, Y, X) movie it was meant to be
        raise InputError(
            f"{path.name}: shape {tuple(shape)} gives frames of {yx[0]} x {yx[-1]} px, too small "
            f"for tapkit (at least {MIN_FRAME_SIDE} x {MIN_FRAME_SIDE}). Check that the file is a "
            "(T, Y, X) movie of whole frames, not a crop or a table of numbers."
        )


def check_axes(
    shape: Sequence[int], axes: str, name: str, what: str = "data", note: bool = True
) -> str:
    """The axes without singletons; InputError when Z and T are both > 1 (a 3D time-lapse), else ZYX
    reads as TYX."""
    keep = [(n, a) for n, a in zip(shape, axes) if n > 1 or a in "YX"]
    squeezed, dims = "".join(a for _, a in keep), tuple(n for n, _ in keep)
    if "Z" in squeezed and "T" in squeezed:
        nz, nt = dims[squeezed.index("Z")], dims[squeezed.index("T")]
        raise InputError(
            f"{what}: {name} is a 3D time-lapse (axes {squeezed}, shape {dims}: {nt} time "
            f"points x {nz} z-slices); tapkit works on 2D movies (T, Y, X). Save one z-slice or a "
            "max projection over Z first (Fiji: Image > Stacks > Z Project...), then point data= "
            "at that file."
        )
    if "Z" in squeezed and "T" not in squeezed:
        if note:
            print(
                f"tapkit: {name} has axes {squeezed} and no time axis; reading its "
                f"{dims[squeezed.index('Z')]} z-slices as time points (Fiji often saves "
                "time-lapses as slices). If it is a real z-stack, it is not a movie."
            )
        squeezed = squeezed.replace("Z", "T")
    return squeezed


def check_channel(
    shape: Sequence[int], axes: str, channel: int | None, name: str, what: str = "read_tiff"
) -> int | None:
    """The channel axis of squeezed (shape, axes) (C or S, or axis 1 of unnamed 4D data), checked
    against `channel`."""
    if len(shape) == 3 and axes[0] == "S":
        # tifffile stores 3- and 4-frame stacks as planar RGB: they are frames
        axes = "T" + axes[1:]
    cax = next((axes.index(a) for a in "CS" if a in axes), 1 if len(shape) == 4 else None)
    if cax is None:
        if channel is not None:
            raise InputError(
                f"{what}: {name} has one channel (axes {axes}, shape {tuple(shape)}); "
                "leave out channel= (channel=None)."
            )
        return None
    n = shape[cax]
    if channel is None:
        raise InputError(
            f"{what}: {name} has shape {tuple(shape)} (axes {axes}) with {n} channels on axis "
            f"{cax}; tapkit uses one channel. Pick one with channel=0 (0 ... {n - 1}), e.g. "
            "read_tiff(path, channel=0)."
        )
    if not -n <= channel < n:
        raise InputError(
            f"{what}: channel={channel} but {name} has {n} channels (0 ... {n - 1}); "
            f"use channel=0 ... {n - 1}."
        )
    return cax
