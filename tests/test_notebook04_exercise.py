"""The checker of notebook 04's exercise 'freeze or train?' passes the solution and fails wrong answers."""

import jupytext
import pytest
import torch

import tapkit.course
from tapkit.downstream.events import experiments, heads

from test_heads import tiny_tap

NOTEBOOK = "notebooks/04_head_comparison.py"


def checker_namespace() -> dict:
    """Run the solution cell and the checker's helper of notebook 04 on a tiny TAP model."""
    cells = jupytext.read(NOTEBOOK).cells
    solution = next(i for i, c in enumerate(cells) if "solution" in c.metadata.get("tags", []) and
                    "def trainable_parameters" in c.source)
    checker = cells[solution + 1].source
    assert "tapkit.course.check(trainable_parameters" in checker
    ns = dict(torch=torch, tapkit=tapkit, heads=heads, experiments=experiments, tap_model=tiny_tap(), F=4)
    exec(cells[solution].source, ns)
    exec(checker.split("tapkit.course.check(")[0], ns)  # defines _one_step_changes
    ns["check_cell"] = "tapkit.course.check(" + checker.split("tapkit.course.check(", 1)[1].rstrip().removesuffix(";")
    return ns


def run_check(ns: dict, fn) -> bool:
    return eval(ns["check_cell"], {**ns, "trainable_parameters": fn})


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


def test_solution_passes_and_matches_the_library():
    ns = checker_namespace()
    assert run_check(ns, ns["trainable_parameters"]) is True
    assert run_check(ns, experiments.trainable_parameters) is True


@pytest.mark.parametrize("wrong", [no_eval, everything, head_only])
def test_wrong_answers_fail(wrong, capsys):
    assert run_check(checker_namespace(), wrong) is False
    assert "❌" in capsys.readouterr().out
