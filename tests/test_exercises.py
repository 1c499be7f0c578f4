"""Every exercise of notebooks 00-09: its checker passes the solution, fails the student copy's
stub, and stops the notebook (ExerciseNotSolved) where later cells use the answer; notebook 04's
checker also fails wrong freezing choices.

No notebook runs here: each exercise's stub, solution and checker cells are executed in a tiny
namespace that holds what those cells read (small simulated data or stand-ins with the same fields).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from types import SimpleNamespace

import jupytext
import numpy as np
import pytest
import torch

import tapkit
import tapkit.course
from tapkit.course import student
from tapkit.course.checks import ExerciseNotSolved

from test_heads import tiny_tap

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOK_DIR.glob("0[0-9]_*.py"))
STOPS = {
    "darker_is_later",
    "flip_pairs",
    "random_enrichment",
    "trainable_parameters",
    "my_consistency_step",
}
N_EXERCISES = 19


def exercises() -> list[tuple[str, int, str]]:
    """(notebook source name, index of the solution cell, the name its checker checks) of every
    exercise."""
    out = []
    for path in SOURCES:
        cells = jupytext.read(path).cells
        for i, cell in enumerate(cells):
            if "solution" in cell.metadata.get("tags", []):
                name = re.search(r'name="([^"]+)"', checker_cell(cells, i).source).group(1)
                out.append((path.name, i, name))
    return out


def checker_cell(cells: list, solution: int):
    """The first code cell after the solution that calls tapkit.course.check."""
    return next(
        c
        for c in cells[solution + 1 :]
        if c.cell_type == "code" and "tapkit.course.check(" in c.source
    )


@functools.lru_cache(maxsize=None)
def small_movie(bleaching: float = 0.0):
    """A small simulated movie (the smoke profile's size) with events and lineage."""
    from tapkit.data.simulate import simulate_movie

    return simulate_movie(n_frames=24, size=(128, 128), seed=0, bleaching=bleaching, progress=False)


@functools.lru_cache(maxsize=None)
def small_pairs():
    """Crop pairs of the small movie with their labels under every criterion (notebooks 03 and
    05)."""
    from tapkit.downstream.events import criteria, crops

    pairs = crops.crop_pairs(small_movie(), n_pairs=200, size=48, event_fraction=0.3, seed=0)
    return pairs, criteria.label_all(pairs, threshold=40)


def fake_result(seed: int, n: int = 60):
    """A stand-in for a StrategyResult: test logits, labels and index; precision, recall,
    confusion."""
    from tapkit.downstream.events import experiments

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    logits = rng.normal(size=(n, 2)) + np.stack([1 - labels, labels], 1) * rng.uniform(0.5, 2)
    p, r, f1, cm = experiments.scores(labels, logits)
    return SimpleNamespace(
        test_logits=logits,
        test_labels=labels,
        test_index=rng.permutation(200)[:n],
        precision=p,
        recall=r,
        f1=f1,
        confusion=cm,
        val_logits=logits * 2.5,
        val_labels=labels,
    )


def namespace(notebook: str) -> dict:
    """What the exercise cells of `notebook` read, built small."""
    from tapkit.downstream.events import criteria, experiments, heads, strategies

    ns = dict(np=np, torch=torch, tapkit=tapkit, cfg=SimpleNamespace(seed=0))
    if notebook == "00":
        ns.update(sim=small_movie())
    elif notebook == "01":
        from tapkit.ssl import tap

        ns.update(tap=tap)
    elif notebook == "02":
        from scipy import ndimage as ndi
        from tapkit.explain import gradcam as gc

        rng = np.random.default_rng(0)
        cam = ndi.gaussian_filter(rng.random((128, 128)), 4)
        mask = ndi.gaussian_filter(rng.random((128, 128)), 3) > 0.53
        k, inset = 4, 16
        regions = gc.top_regions(cam, k=k, inset=inset)
        ns.update(
            gc=gc,
            cam=cam,
            mask=mask,
            k=k,
            inset=inset,
            regions=regions,
            one=gc.event_enrichment(regions, mask, inset=inset, seed=0),
        )
    elif notebook == "03":
        pairs, labels = small_pairs()
        ns.update(criteria=criteria, event_pairs=pairs, labels=labels, threshold=40)
    elif notebook == "04":
        results = {
            name: [fake_result(10 * i + j) for j in range(2)]
            for i, name in enumerate(("A0", "A1", "B1"))
        }
        table = {
            name: {
                "f1": [
                    np.mean([r.f1[0] for r in runs]),
                    np.mean(
                        [
                            2
                            * r.precision[1]
                            * r.recall[1]
                            / max(r.precision[1] + r.recall[1], 1e-12)
                            for r in runs
                        ]
                    ),
                ]
            }
            for name, runs in results.items()
        }
        ns.update(
            heads=heads,
            experiments=experiments,
            strategies=strategies,
            tap_model=tiny_tap(),
            F=4,
            best_a1=results["A1"][0],
            results=results,
            table=table,
        )
    elif notebook == "05":
        pairs, _ = small_pairs()
        ns.update(criteria=criteria, event_pairs=pairs, res_a1=fake_result(5))
    elif notebook == "06":
        from tapkit.downstream import calibration as cal

        r = fake_result(6, n=200)
        ns.update(
            cal=cal,
            runs={"resnet": r},
            reports={"resnet": {"temperature": cal.fit_temperature(r.val_logits, r.val_labels)}},
        )
    elif notebook == "07":
        from tapkit.ssl import contrastive, mim

        ns.update(contrastive=contrastive, mim=mim)
    elif notebook == "08":
        from tapkit.downstream.segmentation import consistency, metrics
        from tapkit.ssl.backbone import UNet

        ns.update(consistency=consistency, metrics=metrics, UNet=UNet)
    elif notebook == "09":
        from tapkit.data import inspect

        ns.update(report=inspect.check_movie(small_movie(bleaching=0.03)))
    return ns


def run_exercise(
    source: str, solution: int, answer: "str | None", capsys
) -> tuple[str, "BaseException | None"]:
    """Run stub, answer (the solution when None) and checker; (what the checker printed, what it
    raised)."""
    cells = jupytext.read(NOTEBOOK_DIR / source).cells
    ns = namespace(source[:2])
    exec(cells[solution - 1].source, ns)  # the stub the learner starts from
    exec(cells[solution].source if answer is None else answer, ns)
    capsys.readouterr()
    try:
        exec(checker_cell(cells, solution).source, ns)
    except ExerciseNotSolved as err:
        return capsys.readouterr().out, err
    return capsys.readouterr().out, None


def student_answer(source: str, solution: int) -> str:
    """What the student copy (`tapkit course student`) has in place of the solution cell."""
    import nbformat

    nb = student.student_version(
        nbformat.read(str((NOTEBOOK_DIR / source).with_suffix(".ipynb")), as_version=4)
    )
    return nb.cells[solution].source


ALL = exercises()
IDS = [f"{source[:2]}-{name}" for source, _, name in ALL]


def test_every_exercise_is_here():
    assert len(ALL) == N_EXERCISES, f"{len(ALL)} exercises found: {IDS}"
    assert {name for _, _, name in ALL} >= STOPS


@pytest.mark.parametrize("source, solution, name", ALL, ids=IDS)
def test_the_solution_passes_its_checker(source, solution, name, capsys):
    out, err = run_exercise(source, solution, None, capsys)
    assert err is None and f"✅ {name}: correct!" in out, out


@pytest.mark.parametrize("source, solution, name", ALL, ids=IDS)
def test_the_student_stub_fails_its_checker(source, solution, name, capsys):
    out, err = run_exercise(source, solution, student_answer(source, solution), capsys)
    assert "❌" in out and "not answered yet" in out, out
    # later cells use the answer: the notebook stops, saying which exercise and how to go on
    if name in STOPS:
        assert err is not None and "is not solved yet" in str(err) and "Exercise" in str(err), err
    else:
        assert err is None


# -------------------------------------------------------------- notebook 04: wrong freezing choices
def no_eval(model, kind):  # frozen weights, but batch-norm statistics still move
    if kind == "C":
        return list(model.parameters())
    model.encoder.requires_grad_(False)
    return list(model.head.parameters())


def everything(model, kind):  # never freezes
    return list(model.parameters())


def head_only(model, kind):  # also freezes C
    model.encoder.requires_grad_(False).eval()
    return list(model.head.parameters())


@pytest.mark.parametrize("wrong", [no_eval, everything, head_only])
def test_wrong_freezing_choices_stop_notebook_04(wrong, capsys):
    source, solution, _ = next(e for e in ALL if e[2] == "trainable_parameters")
    cells = jupytext.read(NOTEBOOK_DIR / source).cells
    ns = namespace("04")
    exec(cells[solution].source, ns)
    ns["trainable_parameters"] = wrong
    with pytest.raises(ExerciseNotSolved, match="Exercise 1"):
        exec(checker_cell(cells, solution).source, ns)
    assert "❌ trainable_parameters" in capsys.readouterr().out


def test_the_library_freezing_passes_notebook_04(capsys):
    from tapkit.downstream.events import strategies

    source, solution, _ = next(e for e in ALL if e[2] == "trainable_parameters")
    cells = jupytext.read(NOTEBOOK_DIR / source).cells
    ns = namespace("04")
    ns["trainable_parameters"] = strategies.trainable_parameters
    exec(checker_cell(cells, solution).source, ns)
    assert "✅" in capsys.readouterr().out


def test_a_wrong_flip_stops_notebook_01(capsys):
    source, solution, _ = next(e for e in ALL if e[2] == "flip_pairs")
    wrong = "def flip_pairs(x, flip):\n    return x.flip(1), flip.long()\n"  # swaps every pair
    out, err = run_exercise(source, solution, wrong, capsys)
    assert (
        "❌ flip_pairs" in out
        and isinstance(err, ExerciseNotSolved)
        and "Flip and label" in str(err)
    )


def test_check_without_stop_never_raises(capsys):
    assert tapkit.course.check(3, 4, name="x") is False
    with pytest.raises(ExerciseNotSolved, match=r"Exercise 9 · Y \(`x`\) is not solved yet"):
        tapkit.course.check(3, 4, name="x", stop=True, exercise="Exercise 9 · Y")
    assert tapkit.course.check(4, 4, name="x", stop=True) is True


def test_train_with_flip_trains_on_the_learners_batches():
    """Notebook 01: the learner's flip_pairs makes every training batch; validation uses the
    course's labels."""
    from tapkit.ssl import tap

    calls = []

    def flip_pairs(x, flip):
        calls.append(tuple(x.shape))
        return tap.flip_pairs(x, flip), flip.long()

    movie = small_movie()
    model, history = tap.train_with_flip(
        [movie],
        flip_pairs,
        steps=3,
        patch=32,
        batch_size=4,
        n_val=16,
        eval_every=2,
        model_kwargs=dict(n_depth=1, base_filters=4),
    )
    assert (
        calls == [(4, 2, 1, 32, 32)] * 3
        and history["step"] == [1, 2, 3]
        and history["val_step"] == [2, 3]
    )
    assert all(np.isfinite(history["loss"])) and all(0 <= a <= 1 for a in history["val_accuracy"])
    assert not model.training
