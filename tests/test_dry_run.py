"""The gpu profile runs end to end at tiny sizes on a CPU:
`tapkit course run --profile gpu --dry-run`."""

from tapkit.course import profiles
from tapkit.course.runner import run_course


def test_dry_run_cuts_counts_but_keeps_the_profile_architecture(monkeypatch):
    monkeypatch.setenv(profiles.DRY_RUN_ENV, "1")
    gpu, full = profiles.get_profile("gpu"), profiles.PROFILES["gpu"]
    assert gpu["tap"]["patch"] == full["tap"]["patch"] and gpu["tap"].get("model_kwargs") == full[
        "tap"
    ].get("model_kwargs")
    assert gpu["gradcam"]["inset"] == full["gradcam"]["inset"]
    assert gpu["tap"]["steps_per_epoch"] < full["tap"]["steps_per_epoch"]
    assert (
        gpu["crops"]["n_pairs"] < full["crops"]["n_pairs"]
        and gpu["heads"]["n_runs"] < full["heads"]["n_runs"]
    )
    monkeypatch.setenv(profiles.DRY_RUN_ENV, "")
    assert profiles.get_profile("gpu") == full


def test_gpu_profile_runs_end_to_end_on_cpu_as_a_dry_run(tmp_path):
    summary = run_course(
        profile="gpu", params={"device": "cpu"}, out=tmp_path / "dry", dry_run=True
    )
    assert summary["failed"] == [], {n: e.get("error") for n, e in summary["notebooks"].items()}
    assert (
        summary["dry_run"] is True
        and len(summary["notebooks"]) == len(summary["notebook_list"]) >= 7
    )
    assert 0.0 <= summary["results"]["tap"]["val_accuracy"] <= 1.0 and "heads" in summary["results"]
    assert (
        tmp_path / "dry" / "tap_simulated.pt"
    ).is_file()  # notebook 01 trained the gpu-size U-Net


def test_short_run_keeps_every_size_and_cuts_only_the_steps(monkeypatch):
    full = profiles.get_profile("gpu")
    monkeypatch.setenv(profiles.DRY_RUN_ENV, "short")
    short = profiles.get_profile("gpu")
    # the real movie and crop pairs
    assert short["sim"] == full["sim"] and short["crops"] == full["crops"]
    for key in ("batch_size", "patch", "model_kwargs"):
        assert short["tap"].get(key) == full["tap"].get(key)
    # every real frame
    assert short["segmentation"]["real_frames"] is None is full["segmentation"]["real_frames"]
    assert (
        short["segmentation"]["crop"] == full["segmentation"]["crop"]
        and short["segmentation"]["unet"] == full["segmentation"]["unet"]
    )

    def steps(p):
        return p["tap"]["epochs"] * p["tap"]["steps_per_epoch"]

    assert (
        steps(short) <= 5 < steps(full) and short["heads"]["n_runs"] == 1 < full["heads"]["n_runs"]
    )
