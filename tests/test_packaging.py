"""The three dependency lists (pyproject, environment.yml, binder/) must agree; the Colab set-up
cell installs what Colab lacks; the wheel ships the checkpoints and a notebook run from it alone
loads them."""

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

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

    spec = dict(
        _split(r)
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    assert "2.13.0" in SpecifierSet(spec["torch"])


# ---------------------------------------------------- the wheel: what Colab gets from a pip install
# Colab's own builds, never reinstalled by the set-up cell (tapkit comes with --no-deps; a pip torch
# or numpy would replace Colab's CUDA builds); every other dependency of pyproject.toml is installed
# by the cell's first pip install
COLAB_PREINSTALLED = {"torch", "numpy", "scipy", "matplotlib", "scikit-learn", "tqdm", "ipywidgets"}


def _dependencies() -> dict[str, str]:
    """The package's dependencies in pyproject.toml, name -> version spec."""
    return dict(
        _split(r)
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    )


def _colab_cell(path: Path) -> str:
    """The shell command of a notebook's Colab set-up cell (the jupytext .py source and the .ipynb
    agree, see tests/test_notebooks.py)."""
    import nbformat

    code = [c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]
    cell = next(src for src in code if "google.colab" in src)
    return re.search(r'subprocess\.run\("(.*?)", shell=True', cell).group(1)


@pytest.mark.parametrize(
    "path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem
)
def test_colab_cell_installs_exactly_the_dependencies_colab_lacks(path):
    from tapkit.course.notebooks import colab_install_spec

    first, second = (shlex.split(part) for part in _colab_cell(path).split(" && "))
    assert first[:3] == ["pip", "install", "-q"] and second == [
        "pip",
        "install",
        "-q",
        "--no-deps",
        colab_install_spec(),
    ]
    wanted = {
        name: spec for name, spec in _dependencies().items() if name not in COLAB_PREINSTALLED
    }
    assert dict(_split(r) for r in first[3:]) == wanted, (
        f"{path.name}: the Colab cell must install {wanted}"
    )


def _wheel(tmp_path: Path) -> Path:
    """Build the wheel of this checkout (from a copy of pyproject.toml, README.md and tapkit/; no
    network)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    shutil.copytree(
        ROOT / "tapkit", src / "tapkit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "wheel"),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "wheel").glob("tapkit_course-*.whl")
    return wheel


def test_a_pip_installed_wheel_ships_the_checkpoints_and_notebook_02_loads_one(
    tmp_path, monkeypatch
):
    """Colab opens one notebook alone, from a pip install: no checkout, no data/ folder beside
    it."""
    import nbformat
    import papermill as pm

    wheel = _wheel(tmp_path)
    shipped = sorted(p.name for p in (ROOT / "tapkit" / "checkpoints").iterdir())
    assert {f"tapkit/checkpoints/{name}" for name in shipped} <= set(
        zipfile.ZipFile(wheel).namelist()
    )
    site, work = tmp_path / "site", tmp_path / "work"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / "02_gradcam.ipynb", work)
    # the kernel imports the installed copy, not this checkout
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("TAPKIT_PROFILE", "smoke")
    monkeypatch.setenv("TAPKIT_RESULTS", str(tmp_path / "results.json"))
    pm.execute_notebook(
        str(work / "02_gradcam.ipynb"),
        str(work / "run.ipynb"),
        cwd=str(work),
        progress_bar=False,
        parameters={"profile": "auto", "out_dir": str(work / "out"), "real_data": None},
    )
    text = "".join(
        o.get("text", "")
        for c in nbformat.read(str(work / "run.ipynb"), as_version=4).cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert (
        "tapkit: loaded the shipped checkpoint "
        f"{site / 'tapkit' / 'checkpoints' / 'tap_simulated.pt'}" in text
    ), text
    assert "training a quick" not in text and not (work / "out" / "tap_simulated.pt").exists()
