"""The three dependency lists (pyproject, environment.yml, binder/) must agree."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAME = {"torch": "pytorch"}  # pip name -> conda-forge name
CONDA_ONLY = {"python", "pip"}
TEST_ONLY = {"pytest", "torchmetrics"}  # needed by the tests, not by learners


def _split(req: str) -> tuple[str, str]:
    """'numpy>=1.24' -> ('numpy', '>=1.24')."""
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = data["dependencies"] + data["optional-dependencies"]["course"]
    return dict(_split(CONDA_NAME.get(_split(r)[0], _split(r)[0]) + _split(r)[1]) for r in reqs)


def _conda(path: Path) -> dict[str, str]:
    deps = {}
    text = path.read_text().split("dependencies:", 1)[1]
    for line in text.splitlines():
        m = re.match(r"^  - ([^#:\s][^#]*)$", line)
        if m:
            name, spec = _split(m.group(1).strip())
            if name not in CONDA_ONLY:
                deps[name.removesuffix("-cpu")] = spec.lstrip("=") if spec.startswith("=") else spec
    return deps


def test_environment_yml_matches_pyproject():
    assert _conda(ROOT / "environment.yml") == _pyproject()


def test_binder_matches_pyproject():
    assert _conda(ROOT / "binder" / "environment.yml") == _pyproject()


def test_test_extra_covers_course_runner_and_no_torchvision():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    test = {_split(r)[0] for r in data["optional-dependencies"]["test"]}
    assert {"papermill", "nbval", "ipykernel"} <= test
    assert TEST_ONLY <= test
    everything = data["dependencies"] + sum(data["optional-dependencies"].values(), [])
    assert not any(_split(r)[0] == "torchvision" for r in everything)


def test_torch_range_admits_the_cpu_wheel():
    from packaging.specifiers import SpecifierSet

    spec = dict(_split(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert "2.13.0" in SpecifierSet(spec["torch"])
