"""Export results for napari / Fiji: dense features as `.npz` (or zarr) and top regions as CSV
`t,y,x,score`.

Coordinates are written in pixels of the movie as the learner gave it: results computed on frames
binned `binning` x `binning` are scaled back (block centre: y * binning + (binning - 1) / 2), so the
points land on the original movie in napari (`napari.layers.Points`, columns t, y, x) or Fiji.
No torch here: features arrive as numpy arrays (`tapkit.ssl.features.embed`).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from tapkit.data.io import import_zarr
from tapkit.data.movie import InputError

PathArg = Union[str, os.PathLike]
REGION_COLUMNS = ("t", "y", "x", "score")


def export_features(
    features: np.ndarray,
    path: PathArg,
    frames: "Sequence[int] | None" = None,
    binning: int = 1,
    meta: "dict[str, Any] | None" = None,
) -> Path:
    """Write dense features (T, F, Y, X) to `path`: `.npz` (key `features`, plus `frames`,
    `binning`) or `.zarr`."""
    feats = np.asarray(features)
    if feats.ndim != 4:
        raise InputError(
            f"export_features: features must be (T, F, Y, X), got shape {feats.shape}; "
            "use tapkit.ssl.features.embed(model, movie)."
        )
    frames = np.arange(len(feats)) if frames is None else np.asarray(frames, dtype=np.int64)
    if len(frames) != len(feats):
        raise InputError(
            f"export_features: {len(frames)} frame numbers for {len(feats)} frames of features."
        )
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    info = {"axes": "TCYX", "binning": int(binning), **(meta or {})}
    if p.suffix.lower() == ".zarr":
        zarr = import_zarr()
        z = zarr.open(
            str(p), mode="w", shape=feats.shape, dtype=feats.dtype, chunks=(1, 1, *feats.shape[2:])
        )
        z[...] = feats
        z.attrs.update({**info, "frames": frames.tolist()})
    elif p.suffix.lower() == ".npz":
        np.savez_compressed(
            p, features=feats, frames=frames, **{k: np.asarray(v) for k, v in info.items()}
        )
    else:
        raise InputError(
            f"export_features: {p.name} should end in .npz (numpy) or .zarr (needs zarr)."
        )
    return p


def region_rows(
    frames: Sequence[int], regions: Sequence[Sequence[tuple]], binning: int = 1
) -> list[tuple]:
    """(t, y, x, score) rows of the top regions of each pair start t, in unbinned pixels."""
    if len(frames) != len(regions):
        raise InputError(
            f"region_rows: {len(frames)} frames but {len(regions)} lists of regions; give one list "
            "per frame."
        )
    scale = lambda v: float(v) * binning + (binning - 1) / 2  # noqa: E731 block centre in the original pixels
    return [
        (int(t), scale(y), scale(x), float(score))
        for t, regs in zip(frames, regions)
        for y, x, score in regs
    ]


def export_regions(
    frames: Sequence[int], regions: Sequence[Sequence[tuple]], path: PathArg, binning: int = 1
) -> Path:
    """Write top regions (per pair start t, a list of (y, x, score)) to a CSV with columns t, y, x,
    score."""
    p = Path(path).expanduser()
    if p.suffix.lower() != ".csv":
        raise InputError(f"export_regions: {p.name} should end in .csv.")
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(REGION_COLUMNS)
        writer.writerows(
            (t, f"{y:g}", f"{x:g}", f"{s:.6g}")
            for t, y, x, s in region_rows(frames, regions, binning)
        )
    return p


def read_regions(path: PathArg) -> np.ndarray:
    """A regions CSV back as an (N, 4) float array t, y, x, score."""
    with open(Path(path).expanduser(), newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != REGION_COLUMNS:
        raise InputError(
            f"read_regions: {path} does not start with the header {','.join(REGION_COLUMNS)}."
        )
    return np.array(rows[1:], dtype=float).reshape(-1, 4)
