"""`tapkit course run --resume`: a run killed in the middle of notebook 01's training continues to
the same summary."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tapkit import InputError
from tapkit.cli import main
from tapkit.course.runner import RUN_FILE, run_course

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 4  # smoke's tap steps, over 4 epochs: a checkpoint after each one to interrupt
COURSE = [
    sys.executable,
    "-m",
    "tapkit",
    "course",
    "run",
    "--profile",
    "smoke",
    "--only",
    "00,01",
    "-p",
    f"tap_epochs={EPOCHS}",
]
ENV = dict(
    os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", MPLBACKEND="Agg"
)


def course(*args: str) -> subprocess.CompletedProcess:
    """Run `tapkit course run ...` to the end; its output as text."""
    return subprocess.run(
        [*COURSE, *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600
    )


def children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def comparable(summary: dict, out: Path) -> dict:
    """A summary's results and statuses, without run times and with the run folder's path
    replaced."""

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "seconds"}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value.replace(str(out), "OUT") if isinstance(value, str) else value

    return clean(
        {
            "results": summary["results"],
            "failed": summary["failed"],
            "params": summary["params"],
            "profile": summary["profile"],
            "notebooks": summary["notebooks"],
        }
    )


# about 2 min on an idle 2-core machine (three course runs of 00-01, one of them cut short)
@pytest.mark.slow
@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="kills the kernel found through /proc"
)
def test_a_killed_run_resumes_to_the_uninterrupted_summary(tmp_path):
    killed = tmp_path / "killed"
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(
            [*COURSE, "--out", str(killed)],
            cwd=REPO,
            env=ENV,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    checkpoint = killed / "tap_simulated.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # the notebook kernel runs in its own session: a disconnect ends it as well
    kernels = children(proc.pid)
    for pid in kernels:
        os.kill(pid, signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert checkpoint.exists(), (tmp_path / "killed.log").read_text()[-3000:]
    # interrupted in the middle of training
    assert torch.load(checkpoint, weights_only=True)["epoch"] < EPOCHS
    run = json.loads((killed / RUN_FILE).read_text())
    assert run["notebooks"]["00_welcome_and_data"]["status"] == "ok"
    assert run["notebooks"]["01_tap_pretraining"]["status"] == "running"
    assert run["profile"] == "smoke" and run["params"] == {"tap_epochs": EPOCHS}

    resumed = subprocess.run(
        [sys.executable, "-m", "tapkit", "course", "run", "--resume", "--out", str(killed)],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "00_welcome_and_data: finished in the stored run, skipped" in resumed.stdout
    assert "01_tap_pretraining: did not finish (running), running it again" in resumed.stdout
    executed = (killed / "01_tap_pretraining.ipynb").read_text()
    # training continued, not restarted
    assert "tapkit: resuming from" in executed and "after epoch" in executed

    reference = tmp_path / "reference"
    done = course("--out", str(reference))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    a = json.loads((killed / "summary.json").read_text())
    b = json.loads((reference / "summary.json").read_text())
    assert comparable(a, killed) == comparable(b, reference)
    # a real number, same bits
    assert a["results"]["tap"]["val_accuracy"] == b["results"]["tap"]["val_accuracy"]

    again = subprocess.run(
        [sys.executable, "-m", "tapkit", "course", "run", "--resume", "--out", str(killed)],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # a finished run: nothing runs again
    assert again.returncode == 0 and again.stdout.count("skipped") == 2


def test_resume_without_a_stored_run_is_a_named_error(tmp_path, capsys):
    with pytest.raises(InputError, match="no run to resume"):
        run_course(out=tmp_path / "empty", resume=True)
    assert main(["course", "run", "--resume", "--out", str(tmp_path / "nothing")]) == 2
    assert "no run to resume" in capsys.readouterr().err
    assert main(["course", "run", "--resume"]) == 2
    assert "--out runs/NAME" in capsys.readouterr().err


def stored_run(out: Path, **changes) -> None:
    """A run.json as `tapkit course run --profile smoke --only 00 -p seed=3` writes it, with nothing
    finished."""
    run = {
        "profile": "smoke",
        "notebook_list": ["00_welcome_and_data"],
        "params": {"seed": 3},
        "params_repr": {"seed": "3"},
        "dry_run": False,
        "started": "2026-01-01 00:00:00",
        "notebooks": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_FILE).write_text(json.dumps({**run, **changes}))


@pytest.mark.parametrize(
    "args, named",
    [
        (["-p", "seed=4"], "-p seed=4 (the run used 3)"),
        (["-p", "bleaching=0.1"], "-p bleaching=0.1 (the run used the notebook's default)"),
        (["--profile", "cpu"], "--profile cpu (the run used smoke)"),
        (["--only", "00,01"], "--only 00,01 (the run used 00)"),
        (["--dry-run"], "--dry-run (the run was not a dry run)"),
        (["--short"], "--short (the run was not a dry run)"),
    ],
)
def test_a_changed_parameter_is_an_error_naming_it_unless_forced(
    tmp_path, capsys, monkeypatch, args, named
):
    out = tmp_path / "run"
    stored_run(out)
    assert main(["course", "run", "--resume", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert named in err and "--force" in err
    calls = []
    monkeypatch.setattr(
        "tapkit.course.runner._run_one",
        lambda path, out, parameters, kernel: (
            calls.append((path.stem, parameters)) or {"status": "ok", "seconds": 0.0}
        ),
    )
    assert main(["course", "run", "--resume", "--out", str(out), "--force", *args]) == 0
    assert "--force: resuming with" in capsys.readouterr().out and calls
    stored = json.loads((out / RUN_FILE).read_text())
    assert all(stored["notebooks"][stem]["status"] == "ok" for stem, _ in calls)


def test_resume_passes_the_stored_parameters_and_skips_finished_notebooks(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "run"
    stored_run(
        out,
        notebook_list=["00_welcome_and_data", "01_tap_pretraining"],
        params={"seed": 3, "sim_size": [64, 64]},
        params_repr={"seed": "3", "sim_size": "(64, 64)"},
        notebooks={"01_tap_pretraining": {"status": "ok", "seconds": 5.0}},
    )
    calls = []
    monkeypatch.setattr(
        "tapkit.course.runner._run_one",
        lambda path, out, parameters, kernel: (
            calls.append((path.stem, parameters, os.environ.get("TAPKIT_RESUME")))
            or {"status": "ok", "seconds": 1.0}
        ),
    )
    monkeypatch.delenv("TAPKIT_RESUME", raising=False)
    summary = run_course(out=out, resume=True)
    assert [stem for stem, _, _ in calls] == ["00_welcome_and_data"]
    assert calls[0][2] == "1"  # the kernels continue the pretraining from its checkpoint
    params = calls[0][1]
    assert params["seed"] == 3 and params["sim_size"] == (64, 64) and params["profile"] == "smoke"
    assert summary["notebooks"]["01_tap_pretraining"] == {"status": "ok", "seconds": 5.0}
    assert "TAPKIT_RESUME" not in os.environ  # restored after the run
    assert "did not finish (not started), running it again" in capsys.readouterr().out


def test_a_changed_dry_run_mode_names_the_stored_one(tmp_path, capsys):
    out = tmp_path / "run"
    stored_run(out, dry_run="short")
    assert main(["course", "run", "--resume", "--out", str(out), "--dry-run"]) == 2
    assert "--dry-run (the run was a short run)" in capsys.readouterr().err
    stored_run(out, dry_run=True)
    assert main(["course", "run", "--resume", "--out", str(out), "--short"]) == 2
    assert "--short (the run was a dry run)" in capsys.readouterr().err
