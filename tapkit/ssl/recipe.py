"""A training's recipe: everything that decides its result, stored in every checkpoint so that two
trainings can be told the same (`tapkit.course.reuse` reuses a finished one instead of training
again).

`training_recipe` gathers the task, the architecture, the data's fingerprint (`movies_digest`:
shapes, dtypes and a strided subsample of the pixels, fast for GBs) and the loop's settings;
`data_binning` and `NORMALIZATION` are what a model records about its training movies. The trainer
fills the recipe from its TrainConfig (`tapkit.ssl.trainer.planned_recipe`: what `train` would
store, without training).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from tapkit.data.movie import Movie
from tapkit.ssl.movie_arrays import open_movie
from tapkit.ssl.pretext import PretextModel


NORMALIZATION = {
    "pmin": 1.0,
    "pmax": 99.8,
}  # percentiles of the movie normalisation (tapkit.normalize defaults)


def movies_digest(movies: Any, val_movies: Any = None) -> str:
    """A short fingerprint of the training data: shapes, dtypes and a strided subsample of the
    pixels (fast for GBs)."""
    import hashlib

    h = hashlib.blake2b(digest_size=12)
    for group in (movies, val_movies or []):
        group = (
            [group]
            if isinstance(group, (Movie, np.ndarray, torch.Tensor, str, os.PathLike))
            else list(group)
        )
        for m in group:
            arr = open_movie(m, "train")  # (T, C, Y, X) as stored
            step = max(1, len(arr) // 64)
            h.update(
                repr((arr.shape, str(arr.dtype), getattr(m, "meta", {}).get("binning"))).encode()
            )
            h.update(np.ascontiguousarray(arr[::step, :, ::3, ::3]).tobytes())
        h.update(b"|")
    return h.hexdigest()


def training_recipe(pretext: str, model: PretextModel, data: str, **settings: Any) -> dict:
    """Everything that decides a training's result: task, architecture, data fingerprint and the
    loop's settings."""
    return {
        "pretext": pretext,
        "config": dict(model.config),
        "data": data,
        **{
            k: repr(v) if not isinstance(v, (int, float, str, bool, type(None))) else v
            for k, v in settings.items()
        },
    }


def data_binning(movies: Any) -> "int | None":
    """The pixel binning of the training movies (Movie.meta['binning'], 1 if unbinned); None if
    unknown or mixed."""
    found = {
        m.meta.get("binning", 1)
        for m in (movies if isinstance(movies, (list, tuple)) else [movies])
        if isinstance(m, Movie)
    }
    return found.pop() if len(found) == 1 else None
