"""Calibration: ECE against torchmetrics and by hand, NLL, temperature scaling, plots, bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy.special import expit, softmax  # noqa: E402

from tapkit import InputError  # noqa: E402
from tapkit.downstream import calibration as cal  # noqa: E402
from tapkit.plot import calibration as plot_cal  # noqa: E402

import torchmetrics.classification as torchmetrics_cls  # noqa: E402  (test-only dependency)


def overconfident_logits(n: int, k: float, seed: int, n_classes: int = 2):
    """Labels drawn from softmax(true_logits); the model reports true_logits * k."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 1.5, size=(n, n_classes))
    probs = softmax(true_logits, axis=1)
    labels = (rng.random(n)[:, None] > np.cumsum(probs, axis=1)).sum(1)
    return true_logits * k, labels


# ----------------------------------------------------------------------------- ECE


@pytest.mark.parametrize("n_bins", [5, 15])
def test_ece_matches_torchmetrics_multiclass(n_bins):
    logits, labels = overconfident_logits(500, 2.0, seed=1, n_classes=3)
    probs = softmax(logits, axis=1)
    ref = torchmetrics_cls.MulticlassCalibrationError(num_classes=3, n_bins=n_bins, norm="l1")
    expected = ref(torch.tensor(probs), torch.tensor(labels)).item()
    assert cal.expected_calibration_error(probs, labels, n_bins=n_bins) == pytest.approx(
        expected, abs=1e-6
    )


def test_ece_matches_torchmetrics_binary_class1():
    rng = np.random.default_rng(2)
    p1 = rng.beta(0.5, 0.5, size=400)
    labels = (rng.random(400) < p1**2).astype(int)  # miscalibrated on purpose
    ref = torchmetrics_cls.BinaryCalibrationError(n_bins=15, norm="l1")
    expected = ref(torch.tensor(p1), torch.tensor(labels)).item()
    got = cal.expected_calibration_error(p1, labels, confidence="class-1")
    assert got == pytest.approx(expected, abs=1e-6)
    # (N, 2) input gives the same class-1 ECE as (N,)
    assert cal.expected_calibration_error(
        np.stack([1 - p1, p1], 1), labels, confidence="class-1"
    ) == pytest.approx(got)


def test_ece_top_label_binary_equals_two_column_multiclass():
    rng = np.random.default_rng(3)
    p1 = rng.random(300)
    labels = rng.integers(0, 2, 300)
    probs2 = np.stack([1 - p1, p1], 1)
    ref = torchmetrics_cls.MulticlassCalibrationError(num_classes=2, n_bins=10, norm="l1")
    expected = ref(torch.tensor(probs2), torch.tensor(labels)).item()
    assert cal.expected_calibration_error(p1, labels, n_bins=10) == pytest.approx(
        expected, abs=1e-6
    )


def test_ece_hand_computed():
    # class-1 confidences, 2 bins: [0, .5) holds .1, .3 (labels 0, 1); [.5, 1] holds .8, .9, .6 (1,
    # 1, 0)
    p1 = np.array([0.1, 0.3, 0.8, 0.9, 0.6])
    labels = np.array([0, 1, 1, 1, 0])
    low = 2 / 5 * abs(0.5 - 0.2)
    high = 3 / 5 * abs(2 / 3 - (0.8 + 0.9 + 0.6) / 3)
    assert cal.expected_calibration_error(
        p1, labels, n_bins=2, confidence="class-1"
    ) == pytest.approx(low + high)
    # top-label: confidences .9, .7, .8, .9, .6, correct: 1, 0, 1, 1, 0 -> all in bin [.5, 1]
    conf = np.array([0.9, 0.7, 0.8, 0.9, 0.6])
    assert cal.expected_calibration_error(p1, labels, n_bins=2) == pytest.approx(
        abs(conf.mean() - 3 / 5)
    )


def test_ece_near_zero_for_calibrated_data():
    rng = np.random.default_rng(4)
    p1 = rng.random(200_000)
    labels = (rng.random(p1.size) < p1).astype(int)
    assert cal.expected_calibration_error(p1, labels, confidence="class-1") < 0.01
    assert cal.expected_calibration_error(p1, labels) < 0.01
    # and clearly non-zero when the same labels come with sharpened probabilities
    assert cal.expected_calibration_error(p1**3, labels, confidence="class-1") > 0.1


def test_calibration_bins_counts_sum_to_n():
    rng = np.random.default_rng(5)
    p1 = np.concatenate([rng.random(97), [0.0, 1.0, 0.5]])
    b = cal.calibration_bins(p1, rng.integers(0, 2, 100), n_bins=7, confidence="class-1")
    assert b["count"].sum() == 100 and len(b["edges"]) == 8


# ----------------------------------------------------------------------------- NLL


def test_nll_matches_torch_cross_entropy_and_bce():
    logits, labels = overconfident_logits(200, 1.0, seed=6, n_classes=3)
    ref = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels)).item()
    assert cal.negative_log_likelihood(logits, labels) == pytest.approx(ref, rel=1e-9)
    z = logits[:, 0]
    lab2 = labels % 2
    ref_bce = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(z), torch.tensor(lab2, dtype=torch.float64)
    ).item()
    assert cal.negative_log_likelihood(z, lab2) == pytest.approx(ref_bce, rel=1e-9)


# ----------------------------------------------------------------------------- temperature scaling


@pytest.mark.parametrize("k", [0.5, 2.0, 4.0])
def test_fit_temperature_recovers_known_temperature(k):
    logits, labels = overconfident_logits(20_000, k, seed=7)
    assert cal.fit_temperature(logits, labels) == pytest.approx(k, rel=0.1)


def test_fit_temperature_binary_logits():
    logits, labels = overconfident_logits(20_000, 3.0, seed=8)
    z = logits[:, 1] - logits[:, 0]  # the same model as one binary logit
    assert cal.fit_temperature(z, labels) == pytest.approx(3.0, rel=0.1)


@pytest.mark.parametrize("k", [0.3, 1.0, 3.0])
def test_temperature_never_increases_val_nll_and_reduces_test_ece(k):
    logits, labels = overconfident_logits(6000, k, seed=9)
    rep = cal.calibration_report(logits[:3000], labels[:3000], logits[3000:], labels[3000:])
    assert rep["val_nll_after"] <= rep["val_nll_before"] + 1e-12
    if k != 1.0:  # miscalibrated: held-out ECE must drop
        assert rep["test_ece_after"] < rep["test_ece_before"]
    assert set(rep) >= {
        "temperature",
        "val_ece_before",
        "val_ece_after",
        "test_nll_before",
        "test_nll_after",
    }


def test_temperature_keeps_predictions_and_apply_divides():
    logits, _ = overconfident_logits(100, 2.0, seed=10)
    scaled = cal.apply_temperature(logits, 2.5)
    np.testing.assert_allclose(scaled, logits / 2.5)
    np.testing.assert_array_equal(scaled.argmax(1), logits.argmax(1))


def test_fit_temperature_separable_data_is_bounded():
    z = np.array([-5.0, -3.0, 4.0, 6.0])
    t = cal.fit_temperature(z, np.array([0, 0, 1, 1]))
    assert 0.01 <= t < 1.0  # sharpening helps on separable data, but T stays positive and bounded


def test_fit_temperature_is_deterministic():
    logits, labels = overconfident_logits(2000, 2.0, seed=11)
    assert cal.fit_temperature(logits, labels) == cal.fit_temperature(logits, labels)


# ----------------------------------------------------------------------------- human in the loop


def test_triage_and_pairs_to_check():
    rng = np.random.default_rng(12)
    p1 = rng.random(50_000)
    labels = (rng.random(p1.size) < p1).astype(int)
    tri = cal.triage(p1, threshold=0.2, labels=labels)
    assert tri["n_review"] == int((p1 >= 0.2).sum())
    # calibrated -> honest estimate
    assert tri["expected_missed"] == pytest.approx(tri["missed"], rel=0.15)
    chk = cal.pairs_to_check(p1, labels, recall=0.9)
    top = np.argsort(-p1)[: chk["n_check"]]
    assert labels[top].sum() >= 0.9 * labels.sum() > labels[top[:-1]].sum()


# ----------------------------------------------------------------------------- plots


def test_reliability_diagram_and_plot_calibration_return_figures():
    logits, labels = overconfident_logits(300, 3.0, seed=13)
    fig = plot_cal.reliability_diagram(cal.to_probs(logits), labels, n_bins=10)
    assert isinstance(fig, plt.Figure)
    texts = [t.get_text() for t in fig.axes[0].texts]
    ece = cal.expected_calibration_error(
        cal.to_probs(logits), labels, n_bins=10, confidence="class-1"
    )
    assert f"ECE = {ece:.3f}" in texts
    plt.close(fig)

    class Result:  # what run_strategy returns, reduced to the fields plot_calibration reads
        val_logits, val_labels, test_logits, test_labels = (
            logits[:150],
            labels[:150],
            logits[150:],
            labels[150:],
        )

    fig = plot_cal.plot_calibration({"linear": Result(), "resnet": (logits, labels, 2.0)})
    assert len(fig.axes) == 4
    plt.close(fig)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call",
    [
        # shape mismatch
        lambda: cal.expected_calibration_error(np.array([0.2, 0.7]), np.array([0, 1, 1])),
        # not probabilities
        lambda: cal.expected_calibration_error(np.array([0.2, 1.7]), np.array([0, 1])),
        lambda: cal.expected_calibration_error(np.array([]), np.array([])),  # empty
        # labels not 0/1
        lambda: cal.expected_calibration_error(np.array([0.2, 0.7]), np.array([0, 2])),
        # non-integer labels
        lambda: cal.expected_calibration_error(np.array([0.2, 0.7]), np.array([0.5, 1])),
        # rows not summing to 1
        lambda: cal.expected_calibration_error(np.array([[0.2, 0.7]]), np.array([0])),
        lambda: cal.expected_calibration_error(np.array([0.2, 0.7]), np.array([0, 1]), n_bins=0),
        lambda: cal.expected_calibration_error(
            np.array([0.2, 0.7]), np.array([0, 1]), confidence="max"
        ),
        lambda: cal.negative_log_likelihood(np.array([[np.nan, 1.0]]), np.array([0])),
        lambda: cal.fit_temperature(np.zeros((3, 2)), np.array([0, 1])),
        lambda: cal.fit_temperature(np.zeros((0, 2)), np.zeros(0)),
        lambda: cal.apply_temperature(np.zeros((3, 2)), -1.0),
        lambda: cal.triage(np.array([0.2, 0.7]), threshold=2.0),
        lambda: cal.pairs_to_check(np.array([0.2, 0.7]), np.array([0, 0])),
        lambda: plot_cal.plot_calibration({"linear": "nonsense"}),
    ],
)
def test_bad_input_raises_input_error(call):
    with pytest.raises(InputError):
        call()


def test_prior_shift_fixes_balanced_training_bias():
    rng = np.random.default_rng(14)
    labels = (rng.random(100_000) < 0.2).astype(int)  # events are rare where the model is used
    x = rng.normal(np.where(labels == 1, 1.0, -1.0), 1.0)
    llr = 2.0 * x  # exact log-likelihood ratio: what a head trained on balanced data outputs
    biased = cal.expected_calibration_error(expit(llr), labels, confidence="class-1")
    shifted = cal.prior_shift(llr, train_prior=0.5, target_prior=0.2)
    assert biased > 0.1
    assert cal.expected_calibration_error(expit(shifted), labels, confidence="class-1") < 0.01
    two_col = cal.prior_shift(np.stack([np.zeros_like(llr), llr], 1), 0.5, 0.2)
    np.testing.assert_allclose(two_col[:, 1] - two_col[:, 0], shifted)
    with pytest.raises(InputError):
        cal.prior_shift(llr, 0.5, 1.0)


def test_event_probability_is_one_function_for_probs_and_logits():
    z = np.array([[0.0, 2.0], [1.0, -1.0], [0.0, 0.0]])
    p1 = 1 / (1 + np.exp(-(z[:, 1] - z[:, 0])))  # softmax of two logits, by hand
    np.testing.assert_allclose(cal.event_probability(z, "logits"), p1)
    np.testing.assert_allclose(cal.event_probability(z, "auto"), p1)  # rows do not sum to 1: logits
    probs = np.stack([1 - p1, p1], 1)
    np.testing.assert_allclose(cal.event_probability(probs), p1)
    np.testing.assert_allclose(cal.event_probability(p1, "auto"), p1)
    with pytest.raises(InputError, match="kind"):
        cal.event_probability(probs, "odds")
    with pytest.raises(InputError, match="binary"):
        cal.event_probability(np.full((2, 3), 1 / 3))
