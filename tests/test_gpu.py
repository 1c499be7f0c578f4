"""The science on a GPU: the whole course in the `gpu` profile (run with
`python3 -m pytest -m gpu`).

Skipped without CUDA (CI has none). On a GPU machine this takes the time of the gpu profile.
"""

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the gpu profile)"),
]


@pytest.fixture(scope="module")
def gpu_summary(tmp_path_factory):
    from tapkit.course.runner import run_course

    summary = run_course(profile="gpu", out=tmp_path_factory.mktemp("gpu_run"))
    assert summary["failed"] == [], summary["notebooks"]
    return summary


def test_tap_accuracy_on_simulated_movie(gpu_summary):
    assert gpu_summary["results"]["tap"]["val_accuracy"] >= 0.9


def test_paper_table2_orderings(gpu_summary):
    heads = gpu_summary["results"]["heads"]
    p1 = {k: v["precision"][1] for k, v in heads.items()}
    r1 = {k: v["recall"][1] for k, v in heads.items()}
    # A1 (frozen TAP + ResNet) best for class 1; TAP frozen beats random frozen
    assert p1["A1"] >= max(p1.values()) - 1e-9 and r1["A1"] >= max(r1.values()) - 0.02
    assert p1["A0"] > p1["B0"] and p1["A1"] > p1["B1"]


def test_temperature_scaling_improves_calibration(gpu_summary):
    for head in ("linear", "resnet"):
        cal = gpu_summary["results"]["calibration"][head]
        assert cal["ece_after"] <= cal["ece_before"]
