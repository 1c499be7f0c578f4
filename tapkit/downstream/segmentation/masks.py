"""The dense tasks' target masks and the label budgets (which frames are labelled), checked before
training.

    movie.labels (T, Y, X) instance ids  -> "nuclei"    mask (T, Y, X) uint8: 1 = any nucleus
    movie.events (T, Y, X) 0 / 1 / 2     -> "divisions" mask (T, Y, X) uint8: 1 = division pixels
                                            (mother in mitosis, daughters just after; paper 000's
                                            task)

Frames are split once into a contiguous block of test frames at the end (consecutive, so temporal
consistency can be measured on them), `n_val` validation frames spread evenly over the frames before
it (model selection: best step and learning rate), and the pool of training frames (the rest); a
label budget picks `budget` frames of the pool, the same ones for the same seed. The validation
frames are labelled too, separately from every budget: at "1 labelled frame" a run has also seen
n_val validation masks, the same for every budget and row, so a budget counts training frames only.
That is the honest cost of model selection, and it is the same for every compared row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tapkit.data.movie import DIVISION, InputError, Movie

TASKS = {"nuclei": "labels", "divisions": "events"}  # task -> the Movie field it needs
ALL = "all"  # the budget that labels every frame of the training pool


def task_masks(movie: Movie, task: str) -> np.ndarray:
    """The binary target of `task` for every frame: (T, Y, X) uint8; InputError if the movie lacks
    it."""
    if task not in TASKS:
        raise InputError(f"task={task!r} is not a dense task; use one of {', '.join(TASKS)}.")
    field = getattr(movie, TASKS[task], None) if isinstance(movie, Movie) else None
    if field is None:
        raise InputError(
            f"task {task!r} needs a movie with {TASKS[task]} (Movie.{TASKS[task]}), but "
            f"{getattr(movie, 'name', type(movie).__name__)!r} has none: use a simulated movie or "
            "annotated data (the divisions task needs events or a lineage, e.g. a CTC folder)."
        )
    return (
        (field > 0).astype(np.uint8) if task == "nuclei" else (field == DIVISION).astype(np.uint8)
    )


def check_masks(masks: Any, images: np.ndarray, what: str = "masks") -> np.ndarray:
    """Masks as uint8 (T, Y, X) of exactly the images' shape and values 0/1; InputError
    otherwise."""
    arr = np.asarray(masks)
    if arr.shape != tuple(np.shape(images)[:1]) + tuple(np.shape(images)[-2:]):
        raise InputError(
            f"{what} have shape {arr.shape} but the frames are {np.shape(images)}: one (Y, X) mask "
            "per frame is needed; make them with "
            "tapkit.downstream.segmentation.masks.task_masks(movie, task)."
        )
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise InputError(
            f"{what} must be binary (0 / 1), found values {arr.min()}..{arr.max()}; use (mask > 0)."
        )
    return arr.astype(np.uint8, copy=False)


@dataclass(frozen=True)
class FrameSplit:
    """Training pool, validation and test frames of one movie (indices into its frames, sorted,
    disjoint)."""

    pool: np.ndarray  # (P,) frames that may be labelled for training
    # (V,) validation frames (model selection), spread over the frames before the test block
    val: np.ndarray
    test: np.ndarray  # (N,) consecutive test frames at the end


def split_frames(n_frames: int, n_test: int, n_val: int = 0) -> FrameSplit:
    """The last `n_test` frames for testing (consecutive), `n_val` validation frames evenly spread
    over the frames before them (so validation sees early and late frames, as training does), the
    remaining frames as the pool."""
    n_frames, n_test = int(n_frames), int(n_test)
    if not 1 <= n_test < n_frames - 1:
        raise InputError(
            f"n_test={n_test} test frames must be >= 1 and leave at least 2 of the {n_frames} "
            "frames for training; lower n_test (the profile's segmentation['n_test']) or use a "
            "longer movie."
        )
    before = n_frames - n_test
    if (
        isinstance(n_val, bool)
        or not isinstance(n_val, (int, np.integer))
        or not 0 <= n_val <= before - 2
    ):
        raise InputError(
            f"n_val={n_val!r} validation frames must be a whole number from 0 to {before - 2}: the "
            f"{before} frames before the test block must keep at least 2 for training; lower n_val "
            "(the profile's segmentation['n_val'] / ['real_n_val']) or use a longer movie."
        )
    val = (
        np.unique(((np.arange(n_val) + 0.5) * before / max(n_val, 1)).astype(np.int64))
        if n_val
        else np.zeros(0, np.int64)
    )
    return FrameSplit(np.setdiff1d(np.arange(before), val), val, np.arange(before, n_frames))


def check_validation(masks: np.ndarray, split: FrameSplit, task: str = "") -> None:
    """InputError, before training, if there are no validation frames or none of them has a positive
    pixel."""
    what = f"task {task!r}: " if task else ""
    if len(split.val) == 0:
        raise InputError(
            f"{what}no validation frames: the protocol selects the step and learning rate on "
            "validation, so split with n_val >= 1 (the profile's segmentation['n_val'])."
        )
    if not np.asarray(masks)[split.val].any():
        raise InputError(
            f"{what}none of the {len(split.val)} validation frames {split.val.tolist()} has a "
            "positive pixel (e.g. no division), so validation Dice cannot rank runs: raise n_val "
            "(the profile's segmentation['n_val'] / ['real_n_val']) or use a movie with more "
            "events."
        )


def budget_size(budget: "int | str", pool_size: int) -> int:
    """Number of labelled frames of a budget (an int, or 'all'); InputError if it exceeds the
    pool."""
    if budget == ALL:
        return int(pool_size)
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise InputError(
            f"budget={budget!r}: use a whole number of labelled frames >= 1, or 'all'."
        )
    if budget > pool_size:
        raise InputError(
            f"budget={budget} labelled frames, but only {pool_size} frames can be labelled "
            f"(the others are test frames or have no positive pixels): use a budget <= {pool_size} "
            "or 'all'."
        )
    return int(budget)


def pick_frames(
    pool: np.ndarray, budget: "int | str", seed: int = 0, masks: "np.ndarray | None" = None
) -> np.ndarray:
    """`budget` frames of `pool`, sorted; the same for the same seed. With masks: only frames with
    positives.

    A labeller asked to annotate divisions labels frames that show one, so for rare targets pass the
    task's masks and frames without a positive pixel are left out of the draw.
    """
    pool = np.asarray(pool, dtype=np.int64)
    if masks is not None:
        pool = pool[np.asarray(masks)[pool].reshape(len(pool), -1).any(1)]
    n = budget_size(budget, len(pool))
    # nested draws need not agree; each budget is its own draw
    rng = np.random.default_rng([int(seed), n])
    return np.sort(rng.choice(pool, size=n, replace=False))


def tasks_for(movie: Movie) -> list[str]:
    """The dense tasks this movie has targets for ('nuclei' needs labels, 'divisions' needs
    events)."""
    return [task for task, needs in TASKS.items() if getattr(movie, needs, None) is not None]
