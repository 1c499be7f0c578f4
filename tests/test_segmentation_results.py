"""scripts/write_results.py renders notebook 08's `segmentation` results as one table (not the
generic nesting)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "write_results.py"


def test_segmentation_section_becomes_one_table():
    spec = importlib.util.spec_from_file_location("write_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cell = {
        "dice": 0.8125,
        "dice_std": 0.01,
        "iou": 0.7,
        "object_f1": 0.5,
        "object_f1_std": 0.02,
        "n_frames": 5,
    }
    seg = {
        "simulated": {
            "nuclei": {"tap · conv": {"5": cell}, "from scratch": {"all": {**cell, "dice": 0.9}}}
        },
        "budget_to_95_percent": {"tap · conv": None, "from scratch": 48},
    }
    summary = {
        "profile": "cpu",
        "device": "cpu",
        "notebooks": {},
        "results": {"segmentation": seg, "tap": {"val_accuracy": 0.8}},
    }
    text = module.results_markdown(summary)
    assert "| simulated | nuclei | tap · conv | 5 | 5 | 0.812 ± 0.010 | 0.500 ± 0.020 |" in text
    assert "| simulated | nuclei | from scratch | all | 5 | 0.900 ± 0.010 |" in text
    assert "from scratch: 48" in text and "segmentation (per entry)" not in text
    assert "val_accuracy" in text  # other sections still go through the generic tables
