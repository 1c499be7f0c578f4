"""The course notebooks: committed clean and in the agreed shape, and each one runs in the smoke
profile with papermill and records the results the course runner collects into summary.json.

(The same `python -m pytest` also runs nbval-lax over notebooks/ when pytest is configured with
`testpaths = ["tests", "notebooks"]` and `--nbval-lax`: that checks the notebooks as a learner
runs them, top to bottom with default parameters, sharing one out_dir.)
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import nbformat
import pytest

from tapkit.course import checks, config, notebooks, profiles, runner

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if notebooks.NOTEBOOK_RE.match(p.name))
BASE_PARAMETERS = ("profile", "data", "seed", "device", "out_dir")
INSTALLS_CORE = re.compile(r"pip.*install.*\b(torch|numpy)\b|conda.*install.*\b(torch|pytorch|numpy)\b")


def read(path: Path) -> nbformat.NotebookNode:
    """The notebook as stored in git."""
    return nbformat.read(str(path), as_version=4)


def tagged(nb: nbformat.NotebookNode, tag: str) -> list[int]:
    """Indices of the cells carrying `tag`."""
    return [i for i, c in enumerate(nb.cells) if tag in c.metadata.get("tags", [])]


def test_there_are_course_notebooks():
    assert NOTEBOOKS, f"no NN_name.ipynb notebooks in {NOTEBOOK_DIR}"
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert len(set(numbers)) == len(numbers), f"two notebooks share a number: {numbers}"


# ---------------------------------------------------------------- shape (cheap)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = read(path)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_header_has_matching_badges(path):
    header = read(path).cells[0]
    assert header.cell_type == "markdown"
    assert notebooks.colab_url(path.name) in header.source, f"{path.name}: Colab badge missing or wrong file name"
    assert notebooks.binder_url(path.name) in header.source, f"{path.name}: Binder badge missing or wrong file name"
    assert re.search(rf"^# {path.name[:2]} ", header.source, re.M), "title '# NN · ...' missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_parameters_cell(path):
    nb = read(path)
    cells = tagged(nb, "parameters")
    assert len(cells) == 1, f"{path.name}: expected exactly one cell tagged 'parameters', found {len(cells)}"
    source = nb.cells[cells[0]].source
    statements = ast.parse(source).body
    assert all(isinstance(s, (ast.Assign, ast.AnnAssign)) for s in statements), "parameters cell: assignments only"
    names = notebooks.parameter_names(path)
    assert names[:5] == list(BASE_PARAMETERS), f"{path.name}: parameters must start with {BASE_PARAMETERS}"
    assert re.search(r'^profile = "auto"', source, re.M)
    later = "".join(c.source for c in nb.cells[cells[0] + 1:])
    assert re.search(rf"configure\(globals\(\), notebook=\"{path.name[:2]}\"\)", later), "configure cell missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_never_installs_torch_or_numpy(path):
    code = [c.source for c in read(path).cells if c.cell_type == "code"]
    offending = [line for src in code for line in src.splitlines() if INSTALLS_CORE.search(line)]
    assert not offending, f"{path.name} installs torch/numpy (breaks Colab): {offending}"
    assert any("google.colab" in src for src in code[:2]), f"{path.name}: the standard set-up cell comes first"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_exercises_have_tagged_solutions_and_checkers(path):
    nb = read(path)
    solutions = tagged(nb, "solution")
    assert solutions, f"{path.name}: no exercise solution cell tagged 'solution'"
    for i in solutions:
        assert nb.cells[i].cell_type == "code"
        rest = "".join(c.source for c in nb.cells[i + 1:])
        assert "check(" in rest, f"{path.name}: solution cell {i} is not followed by a tapkit.course.check(...)"
    student = runner.student_version(nb)
    assert len(student.cells) == len(nb.cells) and not tagged(student, "solution")


# ---------------------------------------------------------------- execution (smoke profile)
def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_tap(r: dict) -> None:
    assert 0.0 <= r["tap"]["val_accuracy"] <= 1.0


def check_gradcam(r: dict) -> None:
    assert _number(r["gradcam"]["event_enrichment"]) and r["gradcam"]["event_enrichment"] >= 0


def check_criteria(r: dict) -> None:
    assert r["criteria"], "no criteria recorded"
    for name, entry in r["criteria"].items():
        assert isinstance(entry["train_positives"], int) and isinstance(entry["test_positives"], int), name


def check_heads(r: dict) -> None:
    assert r["heads"] and set(r["heads"]) <= {"A0", "A1", "B0", "B1", "C0", "C1"}, sorted(r["heads"])
    for name, entry in r["heads"].items():
        for key in ("precision", "recall", "precision_std", "recall_std"):
            assert len(entry[key]) == 2 and all(_number(v) for v in entry[key]), (name, key)


def check_calibration(r: dict) -> None:
    assert r["calibration"] and set(r["calibration"]) <= {"linear", "resnet"}
    for name, entry in r["calibration"].items():
        assert _number(entry["ece_before"]) and _number(entry["ece_after"]) and entry["temperature"] > 0, name


EXPECTED = {"01": check_tap, "02": check_gradcam, "03": check_criteria, "04": check_heads, "06": check_calibration}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_records_results(path, tmp_path, monkeypatch):
    import papermill as pm

    results_file = tmp_path / "results.json"
    monkeypatch.setenv("TAPKIT_RESULTS", str(results_file))
    monkeypatch.setenv("TAPKIT_PROFILE", "smoke")
    pm.execute_notebook(str(path), str(tmp_path / path.name), cwd=str(path.parent), progress_bar=False,
                        parameters={"profile": "auto", "out_dir": str(tmp_path / "out")})
    executed = read(tmp_path / path.name)
    assert all(c.execution_count for c in executed.cells if c.cell_type == "code" and c.source.strip())
    results = json.loads(results_file.read_text())
    assert results, f"{path.name} recorded no results (use tapkit.course.results.record)"
    EXPECTED.get(path.name[:2], lambda r: None)(results)
