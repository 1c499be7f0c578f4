"""scripts/write_results.py renders notebook 07's `pretext` results as one table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "write_results.py"


def load_script():
    spec = importlib.util.spec_from_file_location("write_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scores(p: float) -> dict:
    return {
        "precision": p,
        "recall": 0.5,
        "f1": 0.25,
        "precision_std": 0.01,
        "recall_std": 0.02,
        "f1_std": 0.03,
    }


def test_pretext_results_become_one_row_per_features_and_head():
    summary = {
        "profile": "cpu",
        "device": "cpu",
        "notebooks": {},
        "results": {
            "data": {"n_frames": 64},
            "pretext": {
                "tap": {"steps": 800, "linear": scores(0.7), "resnet": scores(0.9)},
                "random (frozen)": {"steps": 0, "resnet": scores(0.1)},
            },
        },
    }
    page = load_script().results_markdown(summary)
    assert "| tap | linear | 800 | 0.70 ± 0.01 | 0.50 ± 0.02 | 0.25 ± 0.03 |" in page
    assert (
        "| tap | resnet | 800 | 0.90 ± 0.01 |" in page
        and "| random (frozen) | resnet | 0 | 0.10 ± 0.01 |" in page
    )
    # not also as a generic list
    assert page.count("| tap |") == 2 and "pretext (per entry)" not in page
    assert "n_frames: 64" in page  # the other sections are still rendered


def test_no_pretext_results_no_table():
    summary = {
        "profile": "smoke",
        "device": "cpu",
        "notebooks": {},
        "results": {"data": {"n_frames": 24}},
    }
    assert "### pretext" not in load_script().results_markdown(summary)
