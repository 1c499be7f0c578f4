"""The course notebooks: committed clean and in the agreed shape, and each one runs in the smoke
profile with papermill and records the results the course runner collects into summary.json.

(Each notebook runs here once in smoke, alone, with papermill; tests/test_dry_run.py runs them all
again in the gpu profile's dry run, in order in one out_dir as a learner would. nbval is not in the
default run: it would execute every notebook a third time;
`python -m pytest --nbval-lax --nbval-current-env notebooks/`.)
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import nbformat
import pytest

from tapkit.course import notebooks, profiles
from tapkit.course.student import student_version

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if notebooks.NOTEBOOK_RE.match(p.name))
BASE_PARAMETERS = ("profile", "data", "seed", "device", "out_dir")
INSTALLS_CORE = re.compile(
    r"pip.*install.*\b(torch|numpy)\b|conda.*install.*\b(torch|pytorch|numpy)\b"
)


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
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} carry outputs or execution counts; "
        "clear them before committing"
    )
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_header_has_matching_badges(path):
    header = read(path).cells[0]
    assert header.cell_type == "markdown"
    assert notebooks.colab_url(path.name) in header.source, (
        f"{path.name}: Colab badge missing or wrong file name"
    )
    assert notebooks.binder_url(path.name) in header.source, (
        f"{path.name}: Binder badge missing or wrong file name"
    )
    assert re.search(rf"^# {path.name[:2]} ", header.source, re.M), "title '# NN · ...' missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_parameters_cell(path):
    nb = read(path)
    cells = tagged(nb, "parameters")
    assert len(cells) == 1, (
        f"{path.name}: expected exactly one cell tagged 'parameters', found {len(cells)}"
    )
    source = nb.cells[cells[0]].source
    statements = ast.parse(source).body
    assert all(isinstance(s, (ast.Assign, ast.AnnAssign)) for s in statements), (
        "parameters cell: assignments only"
    )
    names = notebooks.parameter_names(path)
    assert names[:5] == list(BASE_PARAMETERS), (
        f"{path.name}: parameters must start with {BASE_PARAMETERS}"
    )
    assert re.search(r'^profile = "auto"', source, re.M)
    later = "".join(c.source for c in nb.cells[cells[0] + 1 :])
    assert re.search(rf"configure\(globals\(\), notebook=\"{path.name[:2]}\"\)", later), (
        "configure cell missing"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_never_installs_torch_or_numpy(path):
    code = [c.source for c in read(path).cells if c.cell_type == "code"]
    offending = [line for src in code for line in src.splitlines() if INSTALLS_CORE.search(line)]
    assert not offending, f"{path.name} installs torch/numpy (breaks Colab): {offending}"
    assert any("google.colab" in src for src in code[:2]), (
        f"{path.name}: the standard set-up cell comes first"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_exercises_have_tagged_solutions_and_checkers(path):
    nb = read(path)
    solutions = tagged(nb, "solution")
    assert solutions, f"{path.name}: no exercise solution cell tagged 'solution'"
    for i in solutions:
        assert nb.cells[i].cell_type == "code"
        rest = "".join(c.source for c in nb.cells[i + 1 :])
        assert "check(" in rest, (
            f"{path.name}: solution cell {i} is not followed by a tapkit.course.check(...)"
        )
    student = student_version(nb)
    assert len(student.cells) == len(nb.cells) and not tagged(student, "solution")


# ---------------------------------------------------------------- jupytext sources, metadata, URLs
# What JupyterLab 4 writes into a notebook when ipykernel's kernel starts (`kernelspec` from the
# kernel spec, `language_info` from kernel_info). Stored as is, opening a notebook changes nothing:
# JupyterLab skips a value that is deep-equal to the stored one, so the notebook is not marked
# modified. Only `version` (ipykernel: sys.version.split()[0]) can differ by interpreter: the
# course's Python 3.11 (binder/environment.yml), one value.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "name": "python",
    "mimetype": "text/x-python",
    "file_extension": ".py",
    "pygments_lexer": "ipython3",
    "codemirror_mode": {"name": "ipython", "version": 3},
    "nbconvert_exporter": "python",
}
PYTHON_VERSION = re.compile(r"3\.11\.\d+")  # a full version, as ipykernel reports it


def _cells(nb: nbformat.NotebookNode) -> list[tuple]:
    """What must agree between a notebook's .py and .ipynb: cell type, source and tags of every
    cell."""
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_py_source_and_ipynb_agree(path):
    import jupytext

    source = path.with_suffix(".py")
    assert source.is_file(), (
        f"{path.name}: no jupytext source {source.name} (jupytext --set-formats ipynb,py:percent)"
    )
    from_py, stored = _cells(jupytext.read(source)), _cells(read(path))
    drift = [i for i, (a, b) in enumerate(zip(from_py, stored)) if a != b]
    assert len(from_py) == len(stored) and not drift, (
        f"{path.name} and {source.name} drifted (cells {drift[:5]}, "
        f"{len(from_py)} vs {len(stored)} cells): "
        f"edit the .py, then run `jupytext --sync {source}`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_metadata_is_what_jupyterlab_writes(path):
    """kernelspec and language_info as JupyterLab + ipykernel write them (clean on open), in the
    .ipynb and the .py."""
    import jupytext

    meta = read(path).metadata
    assert meta.get("kernelspec") == KERNELSPEC, f"{path.name}: kernelspec {meta.get('kernelspec')}"
    info = dict(meta.get("language_info", {}))
    version = info.pop("version", None)
    assert info == LANGUAGE_INFO and PYTHON_VERSION.fullmatch(str(version)), (
        f"{path.name}: language_info {meta.get('language_info')}"
    )
    # `jupytext --sync` writes the .py header's kernelspec into the .ipynb (and keeps its
    # language_info)
    assert jupytext.read(path.with_suffix(".py")).metadata.get("kernelspec") == KERNELSPEC, (
        f"{path.stem}.py header"
    )


def test_notebook_metadata_matches_ipykernel_and_one_version():
    """The stored fields are ipykernel's own (all but the version), and every notebook stores the
    same version."""
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelspec import get_kernel_dict

    reported = dict(IPythonKernel.language_info)
    # a full version: what PYTHON_VERSION expects
    assert re.fullmatch(r"3\.\d+\.\d+", reported.pop("version"))
    assert reported == LANGUAGE_INFO
    spec = get_kernel_dict()
    assert {
        "display_name": spec["display_name"],
        "language": spec["language"],
        "name": "python3",
    } == KERNELSPEC
    versions = {read(p).metadata.get("language_info", {}).get("version") for p in NOTEBOOKS}
    assert len(versions) == 1, f"notebooks store different Python versions {versions}: store one"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_badges_and_install_cell_use_the_one_repository_url(path):
    nb = read(path)
    url = notebooks.repository_url()
    assert (
        url.startswith("https://github.com/")
        and url == "https://github.com/" + notebooks.github_repo()
    )
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    install = next((src for src in code if "google.colab" in src), "")
    assert notebooks.colab_install_spec() in install, (
        f"{path.name}: the Colab install cell must install {url}"
    )
    text = "\n".join(c.source for c in nb.cells)
    repos = set(
        re.findall(r"github(?:\.com)?/([\w.-]+/[\w.-]+?)(?:/blob|/HEAD|\.git|[\s\"')]|$)", text)
    )
    assert repos <= {notebooks.github_repo()}, f"{path.name} names other repositories: {repos}"


# ---------------------------------------------------------------- execution (smoke profile)
def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_data(r: dict) -> None:
    d, sim = r["data"], profiles.PROFILES["smoke"]["sim"]
    # the smoke movie, not another
    assert d["n_frames"] == sim["n_frames"] and d["size"] == list(sim["size"]), d
    assert isinstance(d["n_tracks"], int) and d["n_tracks"] > d["n_divisions"] > 0
    assert 0 < d["division_pixel_fraction"] < 0.1 and 0 <= d["death_pixel_fraction"] < 0.1
    # the bleaching shortcut: darker-is-later beats chance on raw frames and loses that edge after
    # normalisation
    assert d["shortcut_bleaching_raw"] > 0.55 > d["shortcut_bleaching_normalised"], d


def check_tap(r: dict) -> None:
    t = r["tap"]
    assert _number(t["val_accuracy"]) and 0.0 <= t["val_accuracy"] <= 1.0
    assert Path(t["checkpoint"]).is_file(), "the TAP checkpoint recorded by 01 was not written"
    ev = t["evaluation"]
    assert (
        ev["n_pairs"] == 1024 and 0 < ev["n_event_pairs"] < 1024 and len(ev["accuracy_by_t"]) >= 2
    ), ev
    low, high = ev["accuracy_ci"]
    assert low <= ev["accuracy"] <= high and ev["pairs_above_chance"][1] == len(
        ev["accuracy_by_t"]
    ), ev
    # simulated: the profile's recipe
    assert isinstance(t["warnings"], list) and t["per_crop_training"] is False
    # the lesson of the shortcut section: per-frame normalisation leaves the static movie's frames
    # identical, so the logits of the two slots agree to rounding; on raw intensities they differ
    # (in smoke only a little)
    gaps = t["shortcut_logit_gap"]
    assert (
        gaps["per-frame normalisation"] < 1e-4
        and gaps["raw intensities"] > gaps["per-frame normalisation"]
    ), gaps


def check_gradcam(r: dict) -> None:
    g, smoke = r["gradcam"], profiles.PROFILES["smoke"]["gradcam"]
    assert (g["k"], g["inset"]) == (smoke["k"], smoke["inset"]) and len(g["pairs"]) == smoke[
        "n_frames"
    ], g
    assert all(isinstance(t, int) for t in g["pairs"]) and len(set(g["pairs"])) == len(g["pairs"])
    assert 0 <= g["hit_rate_random"] <= 1 and 0 <= g["hit_rate"] <= 1
    assert _number(g["event_enrichment"]) and _number(g["random_map_enrichment"])
    # the pairs are chosen because they hold divisions: random regions must hit some of them
    assert g["hit_rate_random"] > 0, g


def check_criteria(r: dict) -> None:
    assert r["criteria"], "no criteria recorded"
    for claim in (
        "001-criteria-order",
        "001-criteria-order-auc",
    ):  # F1, and ROC AUC (free of the event rate)
        assert r["claims"][claim]["verdict"] in ("holds", "fails", "inconclusive"), claim
    for name, entry in r["criteria"].items():
        assert isinstance(entry["train_positives"], int) and isinstance(
            entry["test_positives"], int
        ), name


def check_heads(r: dict) -> None:
    assert r["heads"] and set(r["heads"]) <= {"A0", "A1", "B0", "B1", "C0", "C1"}, sorted(
        r["heads"]
    )
    for name, entry in r["heads"].items():
        for key in ("precision", "recall", "precision_std", "recall_std"):
            assert len(entry[key]) == 2 and all(_number(v) for v in entry[key]), (name, key)
        assert (
            entry["n_runs"] == profiles.PROFILES["smoke"]["heads"]["n_runs"]
            and entry["lr"] in profiles.PROFILES["smoke"]["heads"]["lr_grid"]
        ), (name, entry)
    # every claim of notebook 04 has a computed verdict from the paired runs
    for claim in (
        "001-a1-best",
        "001-resnet-beats-linear",
        "001-tap-beats-random",
        "001-tap-beats-end-to-end",
    ):
        entry = r["claims"][claim]
        assert (
            entry["verdict"] in ("holds", "fails", "inconclusive")
            and entry["n_runs"] >= 2
            and entry["paper"] == "001"
        )
    # divisions from the masks
    assert r["heads_real"]["data"] == "hela-subset" and r["heads_real"]["n_divisions"] > 10
    assert {"A1", "B1"} <= set(r["heads_real"]), sorted(r["heads_real"])


def check_calibration(r: dict) -> None:
    assert r["calibration"] and set(r["calibration"]) <= {"linear", "resnet"}
    for name, entry in r["calibration"].items():
        assert (
            _number(entry["ece_before"])
            and _number(entry["ece_after"])
            and entry["temperature"] > 0
        ), name


def check_pretext(r: dict) -> None:
    tasks = {"tap", *profiles.PROFILES["smoke"]["pretext"]["tasks"]}
    assert set(r["pretext"]) == tasks | {"random (frozen)", "end to end"}, sorted(r["pretext"])
    for name in tasks:  # every pretext task: both heads, and the steps its model was trained for
        entry = r["pretext"][name]
        assert (
            set(entry) == {"steps", "linear", "resnet"}
            and isinstance(entry["steps"], int)
            and entry["steps"] > 0
        )
        for head in ("linear", "resnet"):
            values = entry[head]
            assert set(values) == {
                "precision",
                "recall",
                "f1",
                "precision_std",
                "recall_std",
                "f1_std",
            }, (name, head)
            assert all(_number(v) and 0 <= v <= 1 for v in values.values()), (name, head, values)
    assert (
        r["pretext"]["random (frozen)"]["steps"] == 0
        and "resnet" in r["pretext"]["random (frozen)"]
    )


def check_segmentation(r: dict) -> None:
    seg, smoke = r["segmentation"], profiles.PROFILES["smoke"]["segmentation"]
    assert set(seg["simulated"]) == {"nuclei", "divisions"}, sorted(seg["simulated"])
    for task, rows in seg[
        "simulated"
    ].items():  # every source x head row at every budget, plus the end-to-end rows
        assert {
            "tap · linear",
            "tap · conv",
            "random (frozen) · conv",
            "from scratch",
            "tap fine-tuned",
        } <= set(rows), rows
        assert set(rows["tap · conv"]) == {str(b) for b in smoke["budgets"]}, (
            task,
            rows["tap · conv"],
        )
        for row, by_budget in rows.items():
            for cell in by_budget.values():
                assert all(
                    _number(cell[k]) and 0 <= cell[k] <= 1
                    for k in ("dice", "dice_std", "object_f1", "iou")
                ), (task, row)
    # divisions also from the frame pair (t, t+1), both sides of claim 000, under the same protocol
    assert {"tap (t, t+1) · conv", "from scratch (t, t+1)"} <= set(seg["simulated"]["divisions"])
    assert "(t, t+1)" not in " ".join(seg["simulated"]["nuclei"])
    for claim in ("000-tap-beats-unet-divisions", "000-tap-beats-unet-divisions-pair"):
        assert r["claims"][claim]["verdict"] in ("holds", "fails", "inconclusive"), claim
    assert set(seg["hela-subset"]) == {
        "nuclei",
        "divisions",
    }  # no lineage: divisions derived from the masks
    # smoke takes the first `real_frames` of the HeLa movie, the last `real_n_test` of them for
    # testing and `real_n_val` of the pool for validation (the fair protocol's model selection)
    assert (
        seg["hela-subset"]["nuclei"]["tap · conv"]["all"]["n_frames"]
        == smoke["real_frames"] - smoke["real_n_test"] - smoke["real_n_val"]
    )
    cons = r["consistency"]
    assert {"before (pretrained)", "segmentation only", "alternating", "consistency only"} <= set(
        cons
    )
    assert all(
        0 <= cons[v]["flicker"] <= 1 and 0 <= cons[v]["dice"] <= 1
        for v in ("alternating", "consistency only")
    )


EXPECTED = {
    "00": check_data,
    "01": check_tap,
    "02": check_gradcam,
    "03": check_criteria,
    "04": check_heads,
    "06": check_calibration,
    "07": check_pretext,
    "08": check_segmentation,
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_records_results(path, tmp_path, monkeypatch):
    import papermill as pm

    results_file = tmp_path / "results.json"
    monkeypatch.setenv("TAPKIT_RESULTS", str(results_file))
    monkeypatch.setenv("TAPKIT_PROFILE", "smoke")
    # the kernel's inline backend: figures become outputs
    monkeypatch.delenv("MPLBACKEND", raising=False)
    pm.execute_notebook(
        str(path),
        str(tmp_path / path.name),
        cwd=str(path.parent),
        progress_bar=False,
        parameters={"profile": "auto", "out_dir": str(tmp_path / "out")},
    )
    executed = read(tmp_path / path.name)
    code = [c for c in executed.cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.execution_count for c in code), "a cell was skipped"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3, (
        f"{path.name} drew fewer than 3 figures"
    )
    echoed = [
        c.source.splitlines()[-1]
        for c in code
        if "check(" in c.source and any(o.output_type == "execute_result" for o in c.outputs)
    ]
    assert not echoed, f"{path.name}: checker cells echo a value (end them with ';'): {echoed}"
    results = json.loads(results_file.read_text())
    assert results, f"{path.name} recorded no results (use tapkit.course.results.record)"
    EXPECTED.get(path.name[:2], lambda r: None)(results)
