"""The fair protocol's rules (tapkit.downstream.protocol) and the claims scorecard
(tapkit.course.claims), on hand-made numbers: the verdict rule, the paired t-interval (against
scipy), convergence, evaluation steps, learning-rate selection, combining parts, recording and the
scorecard table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from tapkit.course import claims, results
from tapkit.data.movie import InputError
from tapkit.downstream import protocol
from tapkit.downstream.protocol import (
    LR_GRID,
    PairedDifference,
    check_protocol,
    converged,
    eval_steps,
    paired_difference,
    select_lr,
    verdict,
)


# ---------------------------------------------------------------- the verdict rule
def test_a_clear_win_holds():
    d = paired_difference([0.80, 0.82, 0.81, 0.83], [0.60, 0.61, 0.63, 0.60])
    assert d.low > 0 and verdict(d) == "holds"


def test_a_clear_loss_fails():
    d = paired_difference([0.50, 0.52, 0.51], [0.70, 0.71, 0.69])
    assert d.high < 0 and verdict(d) == "fails"


def test_a_noisy_tie_is_inconclusive():
    d = paired_difference([0.70, 0.55, 0.80, 0.60], [0.65, 0.62, 0.71, 0.66])
    assert d.low < 0 < d.high and verdict(d) == "inconclusive"


def test_one_run_is_inconclusive_however_large_the_difference():
    d = paired_difference([0.99], [0.01])
    assert d.n == 1 and d.mean == pytest.approx(0.98)
    assert (d.low, d.high) == (-math.inf, math.inf) and verdict(d) == "inconclusive"


def test_the_margin_moves_the_bar():
    d = paired_difference([0.80, 0.81, 0.82], [0.70, 0.70, 0.71])  # about +0.106, a narrow interval
    assert verdict(d, margin=0.0) == "holds"
    assert verdict(d, margin=0.2) == "fails"  # the whole interval lies below +0.2
    assert verdict(d, margin=d.mean) == "inconclusive"  # the margin inside the interval
    # slightly worse: "near" with margin -0.05
    near = paired_difference([0.77, 0.79, 0.80], [0.80, 0.81, 0.82])
    assert verdict(near) == "fails" and verdict(near, margin=-0.05) == "holds"


def test_equal_runs_give_a_zero_width_interval():
    d = paired_difference([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert (
        d.mean == pytest.approx(0.1)
        and d.low == pytest.approx(0.1)
        and d.high == pytest.approx(0.1)
    )
    assert verdict(d) == "holds" and verdict(d, margin=0.1 + 1e-9) == "fails"


# ---------------------------------------------------------------- the paired interval is scipy's
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [2, 3, 10])
def test_paired_difference_is_the_scipy_t_interval(seed, n):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.7, 0.05, n), rng.normal(0.65, 0.05, n)
    d = a - b
    low, high = stats.t.interval(0.95, n - 1, loc=d.mean(), scale=stats.sem(d))
    got = paired_difference(a, b)
    assert (got.mean, got.low, got.high, got.n) == pytest.approx(
        (d.mean(), low, high, n), rel=1e-12, abs=1e-12
    )
    # the same interval as ttest_rel's confidence interval, and the same decision as its two-sided
    # p-value
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (got.low, got.high) == pytest.approx((ci.low, ci.high), rel=1e-12, abs=1e-12)
    assert (verdict(got) != "inconclusive") == (stats.ttest_rel(a, b).pvalue < 0.05)


def test_paired_difference_other_confidence():
    a, b = [0.8, 0.7, 0.9, 0.75], [0.6, 0.65, 0.7, 0.7]
    d = np.subtract(a, b)
    low, high = stats.t.interval(0.9, 3, loc=d.mean(), scale=stats.sem(d))
    got = paired_difference(a, b, confidence=0.9)
    assert (got.low, got.high, got.confidence) == pytest.approx((low, high, 0.9))


@pytest.mark.parametrize("a, b", [([0.5, 0.6], [0.5]), ([], []), ([[0.5, 0.6]], [[0.4, 0.5]])])
def test_paired_difference_needs_paired_runs(a, b):
    with pytest.raises(InputError, match="same seeds"):
        paired_difference(a, b)


def test_paired_difference_refuses_nan():
    with pytest.raises(InputError, match="finite"):
        paired_difference([0.5, float("nan")], [0.4, 0.3])


def test_paired_difference_prints_its_interval():
    assert str(PairedDifference(0.1, 0.05, 0.15, 3)) == "+0.100 [+0.050, +0.150] (n=3)"


# ---------------------------------------------------------------- convergence
def test_a_saturating_exponential_with_enough_steps_converged():
    steps = np.array(eval_steps(2000, 20))
    assert converged(0.9 * (1 - np.exp(-steps / 200)))


def test_the_same_exponential_cut_early_did_not():
    steps = np.array(eval_steps(300, 20))
    assert not converged(0.9 * (1 - np.exp(-steps / 200)))


def test_a_still_rising_line_did_not_converge():
    assert not converged(np.linspace(0.2, 0.8, 20))


def test_a_noisy_plateau_converged():
    rng = np.random.default_rng(0)
    curve = 0.8 + rng.normal(0, 0.004, 20)
    curve[:3] = [0.3, 0.6, 0.75]  # the rise is over before the last quarter
    assert converged(curve)


def test_a_late_jump_is_not_a_plateau():
    curve = np.r_[np.full(15, 0.6), 0.6, 0.6, 0.7, 0.7, 0.7]
    assert not converged(curve)


def test_a_curve_near_zero_needs_an_absolute_rise():
    assert converged(np.r_[np.zeros(15), np.full(5, 0.0005)])  # < 2 % of the floor 0.05
    assert not converged(np.r_[np.zeros(15), np.full(5, 0.002)])


@pytest.mark.parametrize("curve", [[], [0.5], [0.1, 0.9], [0.5, 0.5, 0.5]])
def test_fewer_than_four_points_never_converged(curve):
    assert not converged(curve)


def test_a_curve_with_nan_did_not_converge():
    assert not converged([0.5, 0.6, float("nan"), 0.6, 0.6])


# ---------------------------------------------------------------- evaluation steps
@pytest.mark.parametrize(
    "steps, n", [(100, 20), (1000, 20), (37, 5), (7, 4), (5, 20), (1, 3), (99, 7)]
)
def test_eval_steps_are_increasing_and_end_at_steps(steps, n):
    got = eval_steps(steps, n)
    assert got[-1] == steps and got[0] >= 1
    assert all(a < b for a, b in zip(got, got[1:]))
    assert len(got) == min(n, steps)


def test_eval_steps_are_evenly_spaced():
    assert eval_steps(100, 4) == [25, 50, 75, 100]
    assert eval_steps(20, 20) == list(range(1, 21))


def test_eval_steps_refuses_no_steps():
    with pytest.raises(InputError, match="steps must be at least 1"):
        eval_steps(0, 5)


# ---------------------------------------------------------------- learning-rate selection
def test_select_lr_picks_the_best_validation_score():
    trained = []

    def train(lr):
        trained.append(lr)
        return {"lr": lr, "score": {3e-4: 0.5, 1e-3: 0.7, 3e-3: 0.6}[lr]}

    best, run, scores = select_lr(train, lambda r: r["score"])
    assert trained == list(LR_GRID)  # every lr of the one grid is tried
    assert best == 1e-3 and run["lr"] == 1e-3 and scores == {3e-4: 0.5, 1e-3: 0.7, 3e-3: 0.6}


def test_select_lr_ties_go_to_the_smaller_lr():
    best, run, _ = select_lr(
        lambda lr: lr, lambda lr: 0.8 if lr > 1e-4 else 0.1, grid=(3e-3, 1e-4, 1e-3, 3e-4)
    )
    assert best == 3e-4 and run == 3e-4


def test_select_lr_needs_a_grid():
    with pytest.raises(InputError, match="lr_grid is empty"):
        select_lr(lambda lr: lr, float, grid=())


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(steps=0), "steps"),
        (dict(n_evals=3), "plateau"),
        (dict(n_runs=0), "n_runs"),
        (dict(lr_grid=()), "lr_grid"),
        (dict(lr_grid=(1e-3, 2.0)), "lr_grid"),
        (dict(steps=10.5), "steps"),
        (dict(n_runs=True), "n_runs"),
    ],
)
def test_check_protocol_names_the_bad_setting(kw, match):
    args = dict(steps=100, n_evals=10, lr_grid=LR_GRID, n_runs=3, what="heads") | kw
    with pytest.raises(InputError, match=match) as err:
        check_protocol(**args)
    assert "heads" in str(err.value)


def test_check_protocol_accepts_the_defaults():
    check_protocol(
        steps=100,
        n_evals=protocol.eval_steps.__defaults__[0],
        lr_grid=LR_GRID,
        n_runs=1,
        what="heads",
    )


# ---------------------------------------------------------------- parts
@pytest.mark.parametrize(
    "verdicts, expected",
    [
        (["holds", "holds"], "holds"),
        (["holds", "inconclusive"], "inconclusive"),
        (["holds", "fails"], "fails"),
        (["inconclusive", "fails"], "fails"),
        (["inconclusive"], "inconclusive"),
        (["fails"], "fails"),
    ],
)
def test_combine(verdicts, expected):
    assert claims.combine(verdicts) == expected


def test_combine_needs_a_part():
    with pytest.raises(InputError, match="at least one"):
        claims.combine([])


# ---------------------------------------------------------------- assess and the results file
@pytest.fixture
def results_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    monkeypatch.setenv(results.RESULTS_ENV, str(path))
    return path


def test_assess_prints_the_verdict_and_records_it(results_file, capsys):
    entry = claims.assess(
        "001-tap-beats-random", [0.8, 0.82, 0.81], [0.6, 0.62, 0.6], measured="class-1 F1, A1 - B1"
    )
    line = capsys.readouterr().out
    assert line.startswith(
        "claim 001 · frozen TAP features beat frozen random features: HOLDS "
        "(class-1 F1, A1 - B1: +0.203"
    )
    assert "n=3)" in line
    stored = json.loads(results_file.read_text())["claims"]["001-tap-beats-random"]
    assert stored == results.to_jsonable(entry)
    assert stored["verdict"] == "holds" and stored["n_runs"] == 3 and stored["paper"] == "001"
    assert (
        stored["measured"] == "class-1 F1, A1 - B1"
        and stored["claim"] == claims.CLAIMS["001-tap-beats-random"][1]
    )
    d = paired_difference([0.8, 0.82, 0.81], [0.6, 0.62, 0.6])
    assert stored["difference"] == pytest.approx(
        dict(mean=d.mean, low=d.low, high=d.high, n_runs=3, margin=0.0)
    )
    assert "parts" not in stored


def test_assess_with_parts(results_file, capsys):
    entry = claims.assess(
        "001-criteria-order",
        None,
        parts={
            "size-either - any-either": ([0.7, 0.72, 0.71], [0.5, 0.52, 0.5]),
            "any-either - any-both": ([0.5, 0.6, 0.4], [0.5, 0.45, 0.55]),
        },
        measured="class-1 F1 of A1",
    )
    assert entry["verdict"] == "inconclusive" and set(entry["parts"]) == {
        "size-either - any-either",
        "any-either - any-both",
    }
    assert entry["parts"]["size-either - any-either"]["verdict"] == "holds"
    assert entry["parts"]["any-either - any-both"]["verdict"] == "inconclusive"
    out = capsys.readouterr().out
    assert "INCONCLUSIVE" in out and "size-either - any-either +0.203" in out
    stored = json.loads(results_file.read_text())["claims"]["001-criteria-order"]
    assert "difference" not in stored and stored["parts"]["any-either - any-both"]["n_runs"] == 3


def test_a_failing_part_fails_the_claim(results_file):
    entry = claims.assess(
        "001-criteria-order",
        None,
        parts={"a": ([0.7, 0.71], [0.5, 0.5]), "b": ([0.3, 0.31], [0.6, 0.6])},
    )
    assert entry["verdict"] == "fails" and entry["n_runs"] == 2


def test_assess_margin_is_recorded(results_file):
    entry = claims.assess(
        "002-mim-quarter-labels", [0.78, 0.79, 0.8], [0.8, 0.8, 0.81], margin=-0.05
    )
    assert entry["verdict"] == "holds" and entry["difference"]["margin"] == -0.05


def test_assessing_again_replaces_the_entry(results_file):
    claims.assess("001-criteria-order", None, parts={"a": ([0.7, 0.71], [0.5, 0.5])})
    claims.assess("001-criteria-order", [0.5, 0.6], [0.55, 0.5], note="again")
    stored = json.loads(results_file.read_text())["claims"]["001-criteria-order"]
    # nothing of the first left
    assert "parts" not in stored and stored["note"] == "again" and stored["n_runs"] == 2


def test_entries_of_other_claims_stay(results_file):
    claims.assess("001-tap-beats-random", [0.8, 0.82], [0.6, 0.62])
    claims.assess("001-content-view", [0.8, 0.82], [0.7, 0.71])
    assert set(json.loads(results_file.read_text())["claims"]) == {
        "001-tap-beats-random",
        "001-content-view",
    }


def test_assess_without_record_writes_nothing(results_file):
    claims.assess("001-content-view", [0.8, 0.82], [0.7, 0.71], record=False)
    assert not results_file.exists()


def test_assess_rejects_an_unknown_claim(results_file):
    with pytest.raises(InputError, match="Unknown claim 'tap-is-great'"):
        claims.assess("tap-is-great", [0.8], [0.7])
    assert not results_file.exists()


@pytest.mark.parametrize("kw", [dict(), dict(other=None), dict(parts={"a": ([0.5, 0.6], None)})])
def test_assess_needs_the_other_row(results_file, kw):
    with pytest.raises(InputError, match="other"):
        claims.assess("001-tap-beats-random", [0.8, 0.82], **kw)
    assert not results_file.exists()


def test_assess_needs_paired_runs(results_file):
    with pytest.raises(InputError, match="same seeds"):
        claims.assess("001-tap-beats-random", [0.8, 0.82, 0.9], [0.6, 0.62])


def test_one_run_is_recorded_as_inconclusive_and_survives_json(results_file):
    claims.assess("001-content-view", [0.9], [0.5])
    stored = json.loads(results_file.read_text())["claims"]["001-content-view"]
    assert stored["verdict"] == "inconclusive" and stored["difference"]["low"] == -math.inf
    assert "-inf, +inf" in claims.scorecard_markdown({"001-content-view": stored})


# ---------------------------------------------------------------- the scorecard
def test_every_claim_id_names_its_paper():
    for claim_id, (paper, text) in claims.CLAIMS.items():
        assert (
            claim_id.startswith(paper + "-")
            and paper in {"000", "001", "002", "003", "004"}
            and text
        )


def test_scorecard_lists_every_claim_in_order_with_not_measured(results_file):
    entry = claims.assess(
        "001-content-view",
        [0.8, 0.82, 0.81],
        [0.7, 0.71, 0.7],
        measured="TAP accuracy, crop 64 - crop 32",
    )
    table = claims.scorecard_markdown({"001-content-view": entry})
    rows = table.splitlines()[2:]
    assert len(rows) == len(claims.CLAIMS)
    for row, (claim_id, (paper, text)) in zip(rows, claims.CLAIMS.items()):
        assert row.startswith(f"| {paper} | {text} |"), (row, claim_id)
        assert ("not measured" in row) == (claim_id != "001-content-view")
    measured = rows[list(claims.CLAIMS).index("001-content-view")]
    assert (
        "TAP accuracy, crop 64 - crop 32: +0.107 [" in measured and "| 3 | **holds** |" in measured
    )


def test_scorecard_of_nothing_and_of_parts():
    assert claims.scorecard_markdown({}).count("not measured in this run") == len(claims.CLAIMS)
    assert claims.scorecard_markdown(None).count("not measured in this run") == len(claims.CLAIMS)
    entry = claims.assess(
        "001-criteria-order",
        None,
        parts={
            "size > any": ([0.7, 0.72, 0.71], [0.5, 0.52, 0.5]),
            "either > both": ([0.5, 0.6, 0.4], [0.5, 0.45, 0.55]),
        },
        record=False,
        note="each criterion has its own test labels",
    )
    row = next(
        r
        for r in claims.scorecard_markdown({"001-criteria-order": entry}).splitlines()
        if "Table 5" in r
    )
    assert (
        "size > any: +0.203 [" in row and "; either > both: " in row and "**inconclusive**" in row
    )
    assert "*each criterion has its own test labels*" in row


def test_scorecard_cells_are_safe_markdown():
    entry = claims.assess(
        "001-content-view", [0.8, 0.82], [0.7, 0.71], measured="a | b\nc", record=False
    )
    row = next(
        r
        for r in claims.scorecard_markdown({"001-content-view": entry}).splitlines()
        if "Table 6" in r
    )
    assert "a \\| b c" in row and row.count(" | ") == 4


def test_scorecard_shows_a_margin():
    entry = claims.assess(
        "002-mim-quarter-labels", [0.78, 0.79, 0.8], [0.8, 0.8, 0.81], margin=-0.05, record=False
    )
    assert "(margin -0.050)" in claims.scorecard_markdown({"002-mim-quarter-labels": entry})


def test_scorecard_section_has_heading_rule_and_tally():
    entry = claims.assess("001-content-view", [0.8, 0.82, 0.81], [0.7, 0.71, 0.7], record=False)
    text = claims.scorecard_section({"001-content-view": entry})
    assert text.startswith("## Claims scorecard\n\n" + claims.RULE)
    assert (
        f"1 of {len(claims.CLAIMS)} claims measured in this run: 1 holds, 0 fails, 0 inconclusive."
        in text
    )
    assert claims.scorecard_markdown({"001-content-view": entry}) in text


def test_scorecard_names_the_parts_a_run_could_not_measure():
    entry = claims.assess(
        "001-a1-best",
        None,
        parts={"A1 - A0": ([0.8, 0.82, 0.81], [0.6, 0.62, 0.6])},
        missing=["A1 - C1"],
        record=False,
    )
    assert entry["verdict"] == "inconclusive"  # a part not measured: at best inconclusive
    row = next(
        r
        for r in claims.scorecard_markdown({"001-a1-best": entry}).splitlines()
        if "best class-1" in r
    )
    assert (
        "A1 - A0: +0.203 [" in row and "not measured: A1 - C1" in row and "**inconclusive**" in row
    )
