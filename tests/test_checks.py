"""tapkit.course.checks.check: the feedback a learner sees for every call form the notebooks use."""

import copy

import numpy as np
import pytest
import torch

from tapkit.course import check
from tapkit.course.checks import REFERENCES, describe
from tapkit.downstream.events import heads, strategies
from tapkit.downstream.segmentation import consistency, metrics
from tapkit.ssl import mim
from tapkit.ssl.backbone import UNet
from tapkit.ssl.tap import TAPNet


def feedback(capsys, *args, **kw) -> tuple[bool, str]:
    """(check's result, what it printed)."""
    ok = check(*args, **kw)
    return ok, capsys.readouterr().out


# ------------------------------------------------------------------------------------------- values


def test_values_numbers_arrays_strings(capsys):
    assert feedback(capsys, 0.5001, 0.5, tol=1e-3)[0]
    ok, out = feedback(capsys, 0.6, 0.5, hint="count the divisions", name="n")
    assert not ok and "not quite (got 0.6)" in out and "Hint: count the divisions" in out
    assert feedback(capsys, np.arange(3), [0, 1, 2])[0]
    ok, out = feedback(capsys, np.arange(4), [0, 1, 2], name="size_both")
    assert not ok and "shape (4,), expected shape (3,)" in out
    assert feedback(capsys, " Division ", "division")[0]
    assert feedback(capsys, (0.5, 0.25), (0.5, 0.25))[0]  # notebook 04: a tuple of two numbers


@pytest.mark.parametrize("answer", [None, ..., (..., ...), (0.5, ...), [None]])
def test_unanswered_values_say_so(capsys, answer):
    ok, out = feedback(capsys, answer, (0.5, 0.25), name="x")
    assert not ok and "not answered yet" in out and "TypeError" not in out


def test_value_with_a_predicate(capsys):
    """Notebooks 00 and 06: check(value, lambda v: ...)."""
    counts = np.array([0, 3, 1])
    assert feedback(capsys, 1, lambda t: counts[t] == counts.max())[0]
    ok, out = feedback(capsys, 7, lambda t: counts[t] == counts.max(), name="busiest_frame")
    assert not ok and "IndexError" in out and "your answer: 7" in out


# ---------------------------------------------------------------------------------------- functions


# notebook 00's checker input
_TOY = np.ones((5, 8, 8)) * np.array([5.0, 4.0, 3.0, 4.0, 2.0])[:, None, None]


def darker_checker(f):
    return np.isclose(f(_TOY), 0.75)


def test_a_stub_function_is_not_answered(capsys):
    def stub(images): ...  # your answer

    ok, out = feedback(capsys, stub, darker_checker, name="darker_is_later")
    assert not ok and "not answered yet" in out and "returned None" in out


def test_a_stub_whose_none_makes_the_checker_crash_is_not_answered(capsys):
    """Notebook 01's checker unpacks the result: a None used to give 'checking raised TypeError'."""

    def _check_flip(f):
        x = torch.arange(24, dtype=torch.float32).reshape(3, 2, 1, 2, 2)
        xf, y = f(x, torch.tensor([True, False, True]))
        return torch.equal(xf[0, 0], x[0, 1])

    ok, out = feedback(capsys, lambda x, flip: None, _check_flip, name="flip_pairs")
    assert not ok and "not answered yet" in out and "TypeError" not in out
    ok, out = feedback(capsys, lambda x, flip: ..., _check_flip, name="flip_pairs")
    assert not ok and "not answered yet" in out


def test_a_wrong_function_shows_its_value_and_the_expected_one_on_the_checker_input(capsys):
    ok, out = feedback(
        capsys, lambda images: 0.5, darker_checker, name="darker_is_later", hint="np.diff"
    )
    assert not ok
    assert "<function" not in out
    assert "images = array of shape (5, 8, 8)" in out
    assert "your function returned: 0.5" in out and "expected:               0.75" in out
    assert "Hint: np.diff" in out
    assert feedback(capsys, REFERENCES["darker_is_later"], darker_checker, name="darker_is_later")[
        0
    ]


def test_a_wrong_function_without_a_reference_shows_its_value(capsys):
    ok, out = feedback(capsys, lambda x: x + 1, lambda f: f(3) == 6, name="double")
    assert (
        not ok and "x = 3" in out and "your function returned: 4" in out and "expected" not in out
    )
    ok, out = feedback(
        capsys, lambda x: x + 1, lambda f: f(3) == 6, name="double", reference=lambda x: 2 * x
    )
    assert "expected:               6" in out
    checker = lambda f: f(3) == 6  # noqa: E731
    checker.reference = lambda x: 2 * x  # a checker may carry its reference
    assert (
        "expected:               6" in feedback(capsys, lambda x: x + 1, checker, name="double")[1]
    )


def test_a_crashing_function_is_reported_not_raised(capsys):
    ok, out = feedback(capsys, lambda x: x / 0, lambda f: f(3) == 6)
    assert not ok and "your function raised ZeroDivisionError" in out and "x = 3" in out


def test_a_function_that_returns_the_wrong_kind_shows_it(capsys):
    """flip_pairs returning only the pairs: the checker's unpacking fails; show what came back and
    what should."""

    def _check_flip(f):
        x = torch.arange(24, dtype=torch.float32).reshape(3, 2, 1, 2, 2)
        flip = torch.tensor([True, False, True])
        xf, y = f(x, flip)
        return (
            torch.equal(xf[0, 0], x[0, 1]) and torch.equal(xf[1], x[1]) and y.tolist() == [1, 0, 1]
        )

    ok, out = feedback(capsys, lambda x, flip: x, _check_flip, name="flip_pairs")
    assert not ok and "checking raised ValueError" in out
    assert "your function returned: tensor of shape (3, 2, 1, 2, 2)" in out
    assert (
        "expected:               (tensor of shape (3, 2, 1, 2, 2)" in out
        and "tensor([1, 0, 1])" in out
    )
    # not flipped
    ok, out = feedback(capsys, lambda x, flip: (x, flip.long()), _check_flip, name="flip_pairs")
    assert not ok and "difference:" in out and "item 0: 16 of 24 values differ" in out
    assert feedback(capsys, REFERENCES["flip_pairs"], _check_flip, name="flip_pairs")[0]


def _masked_loss_ok(fn):
    """Notebook 07's checker."""
    gen = torch.Generator().manual_seed(1)
    pred, target = torch.rand(2, 3, 16, 16, generator=gen), torch.rand(2, 3, 16, 16, generator=gen)
    mask = mim.random_mask(2, 16, 4, 0.5, gen)
    changed = pred + 5 * (1 - mask)
    value = float(fn(pred, target, mask))
    return (
        abs(value - float(mim.masked_loss(pred, target, mask))) < 1e-5
        and abs(float(fn(changed, target, mask)) - value) < 1e-5
    )


def test_masked_loss_exercise(capsys):
    ok, out = feedback(
        capsys,
        lambda pred, target, mask: (pred - target).abs().mean(),
        _masked_loss_ok,
        name="my_masked_loss",
    )
    assert not ok and "mask = tensor of shape (2, 1, 16, 16)" in out
    expected = float(out.split("expected:")[1].split()[0])
    got = float(out.split("your function returned:")[1].split()[0])
    assert expected != pytest.approx(got, abs=1e-6)
    assert feedback(capsys, REFERENCES["my_masked_loss"], _masked_loss_ok, name="my_masked_loss")[0]


def test_soft_dice_exercise(capsys):
    def _soft_dice_ok(fn):
        g = torch.Generator().manual_seed(2)
        p, t = (
            torch.rand(2, 1, 12, 12, generator=g),
            (torch.rand(2, 1, 12, 12, generator=g) > 0.7).float(),
        )
        return (
            abs(float(fn(p, t)) - float(metrics.soft_dice(p, t))) < 1e-5
            and abs(float(fn(p, p)) - 1) < 1e-5
        )

    wrong = lambda p, t, eps=1e-6: (2 * (p * t).sum() + eps) / (p.sum() + t.sum() + eps)  # noqa: E731
    ok, out = feedback(capsys, wrong, _soft_dice_ok, name="my_soft_dice")
    assert not ok and "p = tensor of shape (2, 1, 12, 12)" in out and "expected:" in out
    assert feedback(capsys, REFERENCES["my_soft_dice"], _soft_dice_ok, name="my_soft_dice")[0]


def test_consistency_step_exercise_compares_on_copies(capsys):
    """Notebook 08: the learner's step changes net and optimiser; the reference runs on copies of
    both."""

    def _step_ok(fn):
        g = torch.Generator().manual_seed(3)
        x_a, x_b = torch.rand(2, 1, 16, 16, generator=g), torch.rand(2, 1, 16, 16, generator=g)
        torch.manual_seed(0)
        mine = UNet(1, 1, n_depth=1, base_filters=4)
        ref = copy.deepcopy(mine)
        loss = fn(mine, torch.optim.SGD(mine.parameters(), lr=0.5), x_a, x_b)
        ref_loss = consistency.consistency_step(
            ref, torch.optim.SGD(ref.parameters(), lr=0.5), x_a, x_b
        )
        same = all(
            torch.allclose(a, b, atol=1e-5) for a, b in zip(mine.parameters(), ref.parameters())
        )
        return loss is not None and abs(float(loss) - ref_loss) < 1e-4 and same

    # forgets optimizer.step(): the loss is right, the weights are not
    def no_step(net, optimizer, x_a, x_b):
        loss = 1 - metrics.soft_dice(torch.sigmoid(net(x_a)), torch.sigmoid(net(x_b)))
        return loss.item()

    ok, out = feedback(
        capsys, lambda net, optimizer, x_a, x_b: None, _step_ok, name="my_consistency_step"
    )
    assert not ok and "not answered yet" in out
    ok, out = feedback(capsys, no_step, _step_ok, name="my_consistency_step")
    assert not ok and "net = <UNet>" in out and "optimizer = <SGD>" in out
    assert "the returned values agree" in out  # the loss matches; the missing update is what fails
    assert feedback(
        capsys, REFERENCES["my_consistency_step"], _step_ok, name="my_consistency_step"
    )[0]


def test_trainable_parameters_exercise(capsys):
    """Notebook 04: the checker builds a classifier per kind; the stub's None must not crash the
    optimiser."""
    tap = TAPNet(
        n_depth=1, base_filters=4, n_features=4, backbone_features=4, head_features=4, seed=0
    )

    def changes(fn, kind):
        model = heads.EventClassifier(
            strategies.make_encoder("B", tap, 0), heads.LinearHead(4)
        ).train()
        params = fn(model, kind)
        right = list(model.parameters()) if kind == "C" else list(model.head.parameters())
        opt = torch.optim.Adam(params, lr=0.1)
        torch.nn.functional.cross_entropy(
            model(torch.randn(4, 2, 16, 16)), torch.tensor([0, 1, 0, 1])
        ).backward()
        opt.step()
        return {id(p) for p in params} == {id(p) for p in right}

    checker = lambda fn: [changes(fn, k) for k in "ABC"] == [True, True, True]  # noqa: E731
    ok, out = feedback(capsys, lambda model, kind: None, checker, name="trainable_parameters")
    assert not ok and "not answered yet" in out and "TypeError" not in out
    ok, out = feedback(
        capsys, lambda model, kind: list(model.parameters()), checker, name="trainable_parameters"
    )
    assert not ok and "kind = 'A'" in out and "expected:" in out
    assert feedback(
        capsys, REFERENCES["trainable_parameters"], checker, name="trainable_parameters"
    )[0]


def test_describe_is_short():
    assert describe(np.float32(0.25)) == "0.25"
    assert describe(torch.tensor([1, 0, 1])) == "tensor([1, 0, 1])"
    assert describe(torch.zeros(100, 100)).startswith("tensor of shape (100, 100)")
    assert describe(list(range(10))) == "list of 10 items (int)"
    assert len(describe("x" * 1000)) <= 100
