"""Error timing (paper 001 Figs. 3-4) and the gallery of confident mistakes."""

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from tapkit import InputError  # noqa: E402
from tapkit.downstream.events import error_timing as et  # noqa: E402
from tapkit.plot import EVENT_COLORS  # noqa: E402
from tapkit.plot.events import plot_error_timing, plot_mistakes  # noqa: E402


def random_predictions(n=400, n_frames=20, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, n_frames, n)
    y_true = (rng.random(n) < 0.1 + 0.02 * t).astype(int)  # events get more common over time
    y_pred = np.where(rng.random(n) < 0.8, y_true, 1 - y_true)
    return t, y_true, y_pred


def test_counts_match_sklearn_confusion_matrix_overall_and_per_frame():
    t, y_true, y_pred = random_predictions()
    timing = et.error_timing(t, y_true, y_pred)
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred, labels=[0, 1])
    assert (timing["tn"].sum(), timing["fp"].sum(), timing["fn"].sum(), timing["tp"].sum()) == (
        tn,
        fp,
        fn,
        tp,
    )
    for frame in (0, 7, 19):
        sel = t == frame
        (tn, fp), (fn, tp) = confusion_matrix(y_true[sel], y_pred[sel], labels=[0, 1])
        assert (
            timing["tn"][frame],
            timing["fp"][frame],
            timing["fn"][frame],
            timing["tp"][frame],
        ) == (tn, fp, fn, tp)


def test_counts_and_shares_sum_correctly():
    t, y_true, y_pred = random_predictions(seed=1)
    timing = et.error_timing(t, y_true, y_pred, n_frames=25)
    assert len(timing["t"]) == 25 and timing["tp"][20:].sum() == 0
    np.testing.assert_array_equal(timing["tp"] + timing["fn"], timing["pos"])
    np.testing.assert_array_equal(timing["tn"] + timing["fp"], timing["neg"])
    np.testing.assert_array_equal(timing["pos"] + timing["neg"], np.bincount(t, minlength=25))
    for key in et.CATEGORIES:
        assert timing[f"{key}_share"].sum() == pytest.approx(1.0)
        np.testing.assert_allclose(timing[f"{key}_share"], timing[key] / timing[key].sum())


def test_share_of_an_empty_category_is_zero_not_nan():
    timing = et.error_timing([0, 1, 2], [1, 0, 1], [1, 0, 1])  # no mistakes at all
    assert timing["fp"].sum() == 0 and np.all(timing["fp_share"] == 0)


def test_plot_error_timing_two_panels():
    fig = plot_error_timing(et.error_timing(*random_predictions(seed=2)))
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 3
    plt.close(fig)


def test_worst_mistakes_ranked_by_confidence():
    p1 = np.array([0.99, 0.7, 0.2, 0.01, 0.6, 0.4, 0.95, 0.05])
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    m = et.worst_mistakes(p1, y, k=2)
    np.testing.assert_array_equal(m["false_positives"], [0, 1])  # P(event) .99, .7 but no event
    np.testing.assert_array_equal(m["false_negatives"], [3, 2])  # P(event) .01, .2 but an event
    # the same from (N, 2) logits
    logits = np.stack([np.zeros(8), np.log(p1 / (1 - p1))], 1)
    m2 = et.worst_mistakes(logits, y, k=8)
    np.testing.assert_array_equal(m2["false_positives"], [0, 1, 4])
    np.testing.assert_array_equal(m2["false_negatives"], [3, 2, 5])


@dataclass
class FakePairs:  # the fields of tapkit.downstream.events.crops.CropPairs that plot_mistakes reads
    images: np.ndarray
    masks: np.ndarray
    t: np.ndarray
    delta: int = 1


def test_plot_mistakes_gallery():
    rng = np.random.default_rng(3)
    images = rng.random((10, 2, 16, 16)).astype(np.float32)
    masks = np.zeros((10, 2, 16, 16), np.uint8)
    masks[:, :, 4:9, 4:9] = 1
    masks[:, 1, 10:14, 10:14] = 2
    fig = plot_mistakes(
        FakePairs(images, masks, np.arange(10)), [3, 7, 1], [0.9, 0.8, 0.7], ncols=2
    )
    assert len(fig.axes) == 2 * 2 * 2  # 2 rows x (2 pairs x 2 frames)
    assert "0.90" in fig.axes[1].get_title() and "#3" in fig.axes[0].get_title()
    # frame t+1: both events
    colours = [tuple(np.round(c.get_edgecolor()[0][:3], 2)) for c in fig.axes[1].collections]
    assert colours == [
        tuple(np.round(EVENT_COLORS[1], 2)),
        tuple(np.round(EVENT_COLORS[2], 2)),
    ]  # division red, death cyan
    plt.close(fig)
    with pytest.raises(InputError):
        plot_mistakes(FakePairs(images, masks, np.arange(10)), [3, 70], [0.9, 0.8])
    with pytest.raises(InputError):
        plot_mistakes(FakePairs(images, masks, np.arange(10)), [3, 7], [0.9])


@pytest.mark.parametrize(
    "call",
    [
        lambda: et.error_timing([0, 1], [0, 1, 1], [0, 1, 1]),  # shape mismatch
        lambda: et.error_timing([], [], []),  # empty
        lambda: et.error_timing([0, 1], [0, 2], [0, 1]),  # labels not 0/1
        lambda: et.error_timing([-1, 1], [0, 1], [0, 1]),  # negative time
        lambda: et.error_timing([0, 5], [0, 1], [0, 1], n_frames=3),  # time beyond n_frames
        # probs outside [0, 1]
        lambda: et.worst_mistakes(np.array([0.2, 1.5]), [0, 1], kind="probs"),
        lambda: et.worst_mistakes(np.array([0.2, 0.5]), [0, 1, 0]),
        lambda: plot_error_timing({"t": np.arange(3)}),
    ],
)
def test_bad_input_raises_input_error(call):
    with pytest.raises(InputError):
        call()
