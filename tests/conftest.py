"""Shared test fixtures: small, generic, fast. Add yours below with a one-line docstring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tapkit import DIVISION, Movie

# A hand-made lineage: track 1 divides into 2 and 3 after frame 3; track 4 never divides.
TINY_LINEAGE = np.array([[1, 0, 3, 0], [2, 4, 7, 1], [3, 4, 7, 1], [4, 0, 7, 0]], np.int64)
TINY_CENTRES = {1: (20, 20), 2: (13, 20), 3: (28, 22), 4: (44, 44)}


def make_tiny_movie(
    n_frames: int = 8, size: int = 64, seed: int = 0, integer: bool = True
) -> Movie:
    """A (8, 64, 64) movie of four disc 'nuclei' with labels, lineage and one division (events on
    the mother's last frame and the daughters' first frame). Integer-valued images unless
    integer=False."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((n_frames, size, size), np.int32)
    for tid, first, last, _ in TINY_LINEAGE:
        cy, cx = TINY_CENTRES[int(tid)]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 25
        labels[first : last + 1][:, disc] = tid
    images = 100.0 + 400.0 * (labels > 0) + rng.normal(0, 10, labels.shape)
    images = np.round(images) if integer else images
    events = np.zeros(labels.shape, np.uint8)
    events[3][labels[3] == 1] = DIVISION
    events[4][np.isin(labels[4], [2, 3])] = DIVISION
    return Movie(
        images.astype(np.float32),
        labels=labels,
        events=events,
        lineage=TINY_LINEAGE.copy(),
        name="tiny",
        pixel_size=0.5,
        frame_interval=10.0,
    )


@pytest.fixture
def tiny_movie() -> Movie:
    """A small movie with labels, lineage and one division (see make_tiny_movie)."""
    return make_tiny_movie()


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty tapkit cache folder ($TAPKIT_CACHE) for this test only."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("TAPKIT_CACHE", str(cache))
    return cache
