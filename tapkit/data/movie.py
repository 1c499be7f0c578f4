"""The one data type of the course: a `Movie`, plus validation and percentile normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

NO_EVENT, DIVISION, DEATH = 0, 1, 2
EVENT_NAMES = {NO_EVENT: "none", DIVISION: "division", DEATH: "death"}
LINEAGE_COLUMNS = ("id", "first", "last", "parent")


class InputError(ValueError):
    """Bad input from a learner: the message names the problem and the fix."""


@dataclass
class Movie:
    """A 2D time-lapse (T, Y, X) with optional ground truth.

    images:   (T, Y, X) float32 raw intensities
    labels:   (T, Y, X) int32 instance ids (0 = background), or None
    events:   (T, Y, X) uint8, 0 none / 1 division / 2 death, or None
    lineage:  (N, 4) int64 CTC table: id, first frame, last frame, parent id (0 = none), or None
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    events: np.ndarray | None = None
    lineage: np.ndarray | None = None
    name: str = "movie"
    pixel_size: float | None = None  # micrometres per pixel
    frame_interval: float | None = None  # minutes between frames
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.images = check_images(self.images, what=f"Movie '{self.name}' images")
        for key in ("labels", "events"):
            arr = getattr(self, key)
            if arr is None:
                continue
            arr = np.asarray(arr)
            if arr.shape != self.images.shape:
                raise InputError(
                    f"Movie '{self.name}': {key} has shape {arr.shape} but images have shape "
                    f"{self.images.shape}. Masks must have one frame per image frame and the same "
                    "Y, X size; check that you paired the right mask file with the movie."
                )
            if not np.issubdtype(arr.dtype, np.integer):
                raise InputError(
                    f"Movie '{self.name}': {key} must hold integers, got dtype {arr.dtype}. "
                    "Masks are label images: convert with .astype(int) after checking the values."
                )
            setattr(self, key, arr.astype(np.int32 if key == "labels" else np.uint8, copy=False))
        if self.events is not None and self.events.max(initial=0) > DEATH:
            raise InputError(
                f"Movie '{self.name}': events may only hold 0 (none), 1 (division) or 2 (death), "
                f"found {int(self.events.max())}."
            )
        if self.lineage is not None:
            lin = np.asarray(self.lineage, dtype=np.int64).reshape(-1, 4)
            self.lineage = lin

    @property
    def shape(self) -> tuple[int, int, int]:
        """(T, Y, X)."""
        return tuple(self.images.shape)  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def has_events(self) -> bool:
        """True when the movie carries an event mask with at least one event pixel."""
        return self.events is not None and bool(self.events.any())

    def crop(
        self, t: slice = slice(None), y: slice = slice(None), x: slice = slice(None)
    ) -> "Movie":
        """A sub-movie (time and/or space window); the lineage is kept as is."""
        sub = lambda a: None if a is None else a[t, y, x]  # noqa: E731
        return replace(
            self, images=self.images[t, y, x], labels=sub(self.labels), events=sub(self.events)
        )

    def bin(self, factor: int) -> "Movie":
        """Bin pixels factor x factor: images by block mean, events by block max, labels by
        subsampling.

        Trailing rows/columns that do not fill a block are dropped; the pixel size grows by
        `factor`.
        """
        from tapkit.validate import whole  # imports this module: here, not at the top

        factor = whole(1, example=2, where="Movie.bin: ", hint=" for 2x2 binning")("factor", factor)
        t, ny, nx = self.shape[0], self.shape[1] // factor, self.shape[2] // factor
        if factor == 1:
            return self
        if min(ny, nx) < 8:
            raise InputError(
                f"Movie.bin: binning {self.shape[1:]} frames by {factor} leaves {ny} x {nx} "
                "pixels; use a smaller factor."
            )
        blocks = lambda a: a[:, : ny * factor, : nx * factor].reshape(t, ny, factor, nx, factor)  # noqa: E731
        return replace(
            self,
            images=blocks(self.images).mean(axis=(2, 4), dtype=np.float32),
            labels=None
            if self.labels is None
            else self.labels[:, : ny * factor : factor, : nx * factor : factor],
            events=None if self.events is None else blocks(self.events).max(axis=(2, 4)),
            pixel_size=None if self.pixel_size is None else self.pixel_size * factor,
            meta={**self.meta, "binning": self.meta.get("binning", 1) * factor},
        )

    def __repr__(self) -> str:
        gt = [k for k in ("labels", "events", "lineage") if getattr(self, k) is not None]
        return f"Movie(name={self.name!r}, shape={self.shape}, ground_truth={gt or 'none'})"


def check_images(images: Any, what: str = "movie", min_frames: int = 2) -> np.ndarray:
    """Validate a (T, Y, X) movie array early and return it as float32; raise InputError
    otherwise."""
    if isinstance(images, Movie):
        images = images.images
    arr = np.asarray(images)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{what}: expected a numeric array, got dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise InputError(
            f"{what}: complex values are not images; take np.abs() or the real part first."
        )
    if arr.ndim == 2:
        raise InputError(
            f"{what}: got a single 2D image of shape {arr.shape}, but a movie needs shape "
            "(T, Y, X). Stack at least two frames, e.g. np.stack([frame0, frame1])."
        )
    if arr.ndim == 4:
        small = int(np.argmin(arr.shape))
        raise InputError(
            f"{what}: got a 4D array of shape {arr.shape}; tapkit works on one channel (T, Y, X). "
            f"If axis {small} is the channel axis, select one channel, e.g. "
            f"images.take(0, axis={small})."
        )
    if arr.ndim != 3:
        raise InputError(
            f"{what}: expected shape (T, Y, X), got {arr.ndim} dimensions {arr.shape}."
        )
    if arr.shape[0] < min_frames:
        raise InputError(
            f"{what}: has {arr.shape[0]} frame(s); at least {min_frames} are needed to see time. "
            "Check the time axis is first (T, Y, X)."
        )
    if min(arr.shape[1:]) < 8:
        raise InputError(
            f"{what}: frames of size {arr.shape[1:]} are too small (at least 8 x 8 pixels)."
        )
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise InputError(
            f"{what}: contains {bad} NaN/inf values. Replace them first, e.g. "
            "np.nan_to_num(images)."
        )
    flat = arr.reshape(arr.shape[0], -1)
    const = np.flatnonzero(flat.max(1) == flat.min(1))
    if len(const):
        raise InputError(
            f"{what}: frame(s) {const[:10].tolist()} are constant (no signal). Remove empty frames "
            "or check the file: a constant frame often means a failed acquisition or wrong axis "
            "order."
        )
    return arr


def as_movie(data: "Movie | np.ndarray", name: str = "movie") -> Movie:
    """Accept a Movie or a plain (T, Y, X) array and return a validated Movie."""
    if isinstance(data, Movie):
        return data
    return Movie(images=np.asarray(data), name=name)


def normalize(
    images: "Movie | np.ndarray",
    pmin: float = 1.0,
    pmax: float = 99.8,
    per_frame: bool = True,
    clip: bool = False,
    eps: float = 1e-8,
) -> np.ndarray:
    """Percentile-normalise a (T, Y, X) movie so pmin -> 0 and pmax -> 1 (per frame by default).

    Per-frame normalisation, as in the reference TAP code, removes global intensity trends
    such as photobleaching, which would otherwise give the time arrow away.
    """
    arr = check_images(images, what="normalize", min_frames=1)
    if not 0 <= pmin < pmax <= 100:
        raise InputError(f"normalize: need 0 <= pmin < pmax <= 100, got pmin={pmin}, pmax={pmax}.")
    axis = (1, 2) if per_frame else None
    lo = np.percentile(arr, pmin, axis=axis, keepdims=True).astype(np.float32)
    hi = np.percentile(arr, pmax, axis=axis, keepdims=True).astype(np.float32)
    out = (arr - lo) / (hi - lo + eps)
    if clip:
        out = np.clip(out, 0.0, 1.0)
    return out.astype(np.float32, copy=False)
