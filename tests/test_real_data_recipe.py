"""scripts/real_data_recipe.py: one run trains with an option set and reports the three held-out
accuracies."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from tapkit import Movie

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "real_data_recipe.py"


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("real_data_recipe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_option_set_is_a_valid_training(recipe):
    from tapkit.ssl.train_config import TrainConfig

    for option in recipe.OPTIONS.values():
        TrainConfig(**option)  # every key a field, every value valid
    assert recipe.OPTIONS["profile"] == {}


def test_one_run_reports_frames_region_and_minutes(recipe):
    rng = np.random.default_rng(0)
    # (T, Y, X)
    frames = ndimage.gaussian_filter(rng.random((8, 96, 200)), (0, 2, 2)).astype(np.float32)
    row = recipe.run_one(Movie(frames), "per-crop", seed=0, n_pairs=32, steps=1)
    assert row["option"] == "per-crop" and row["minutes"] >= 0
    for key in ("frames", "region", "frames_per_frame_norm", "train_accuracy"):
        assert 0.0 <= row[key] <= 1.0
    # the region check uses the training frames only
    assert max(row["region_by_t"]) < min(row["frames_by_t"])
