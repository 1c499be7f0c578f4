"""The package, tests, scripts and benchmarks are ruff-formatted and pass ruff's checks (pyproject's
[tool.ruff])."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command", [["check", "."], ["format", "--check", "."]], ids=["check", "format"]
)
def test_ruff_is_clean(command):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, (
        f"ruff {' '.join(command)} (fix: ruff format . && ruff check --fix .):\n"
        + result.stdout[-3000:]
        + result.stderr[-1000:]
    )
