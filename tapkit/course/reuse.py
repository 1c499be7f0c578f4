"""Reuse a finished training instead of repeating it: notebook 09 on the course movie trains exactly
what notebook 01 (07) already trained, so it copies that checkpoint instead of training again.

The trainer stores a recipe in every checkpoint (task, architecture, data fingerprint, every setting
that decides the result and the seed: `tapkit.ssl.trainer.planned_recipe`); two trainings with the
same recipe give the same weights, so a finished checkpoint with this recipe IS the training.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Sequence


def find_same_training(recipe: dict, candidates: Sequence["str | os.PathLike"]) -> "Path | None":
    """The first finished checkpoint among `candidates` written by a training with exactly this
    `recipe`, else None."""
    from tapkit.ssl.checkpoint import load_checkpoint, training_finished

    for path in map(Path, candidates):
        if path.is_file():
            state = load_checkpoint(path)
            # shipped files have no recipe
            if state.get("recipe") == recipe and training_finished(state):
                return path
    return None


def reuse_same_training(
    checkpoint: "str | os.PathLike",
    candidates: Sequence["str | os.PathLike"],
    pretext: str,
    movies: Any,
    **train_args: Any,
) -> "Path | None":
    """Copy to `checkpoint` (when it does not exist yet) the first of `candidates` that holds this
    very training.

    `train_args`: what `train` gets besides the task and movies (a `config`, its fields, `device`).
    Returns the copied file, else None; `train(..., checkpoint=checkpoint, resume=True)` then loads
    it instead of training.
    """
    from tapkit.ssl.trainer import planned_recipe

    if Path(checkpoint).is_file() or not candidates:
        return None
    same = find_same_training(planned_recipe(pretext, movies, **train_args), candidates)
    if same is not None:
        tmp = Path(checkpoint).with_name(Path(checkpoint).name + ".copy")
        shutil.copyfile(same, tmp)
        os.replace(tmp, checkpoint)  # atomic, like every checkpoint
        print(
            f"tapkit: {same} holds the same training (task, data, settings, seed): reusing it as "
            f"{checkpoint}"
        )
    return same
