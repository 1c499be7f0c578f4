"""Crop pairs, labelling criteria, splits and tables (tapkit.downstream.events.crops)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from tapkit import InputError, Movie, normalize
from tapkit.downstream.events.criteria import (
    CRITERIA,
    event_pixels,
    label_all,
    label_pairs,
    pick_disagreements,
)
from tapkit.downstream.events.crops import (
    CropPairs,
    Split,
    as_split,
    balance_indices,
    crop_pairs,
    dataset_table,
    format_table,
    split_pairs,
)
from tapkit.plot import EVENT_COLORS
from tapkit.plot.events import criteria_gallery, plot_event_sizes, plot_threshold_sweep


def tiny_movie(T: int = 6, size: int = 64, seed: int = 0) -> Movie:
    """Noise movie with a growing square 'division' (1) and a 'death' (2) blob in the event mask."""
    rng = np.random.default_rng(seed)
    images = (
        rng.normal(100, 10, (T, size, size)).astype(np.float32) + np.arange(T)[:, None, None] * 5
    )
    events = np.zeros((T, size, size), np.uint8)
    events[2:4, 10:20, 10:20] = 1
    events[3, 40:44, 40:52] = 2
    return Movie(images, events=events, name="tiny")


def pairs_from_masks(masks: np.ndarray) -> CropPairs:
    """CropPairs around hand-made masks (N, 2, S, S)."""
    n, _, s, _ = masks.shape
    z = np.zeros(n, np.int64)
    return CropPairs(np.zeros(masks.shape, np.float32), masks.astype(np.uint8), z, z, z)


# ----------------------------------------------------------------------------- crop_pairs


def test_crop_pairs_shapes_and_content_match_the_movie():
    mov = tiny_movie()
    p = crop_pairs(mov, 50, size=16, delta=2, seed=1)
    assert p.images.shape == (50, 2, 16, 16) and p.images.dtype == np.float32
    assert p.masks.shape == (50, 2, 16, 16) and p.masks.dtype == np.uint8
    assert len(p) == 50 and p.delta == 2 and p.movie_name == "tiny"
    assert (p.t + 2 < len(mov)).all() and (p.y + 16 <= 64).all() and (p.x + 16 <= 64).all()
    norm = normalize(mov.images)
    for i in (0, 17, 49):  # every pair is the window of its corner in frames t and t + delta
        t, y, x = p.t[i], p.y[i], p.x[i]
        np.testing.assert_array_equal(p.images[i, 0], norm[t, y : y + 16, x : x + 16])
        np.testing.assert_array_equal(p.images[i, 1], norm[t + 2, y : y + 16, x : x + 16])
        np.testing.assert_array_equal(p.masks[i, 1], mov.events[t + 2, y : y + 16, x : x + 16])


def test_crop_pairs_same_seed_same_pairs_other_seed_other_pairs():
    mov = tiny_movie()
    a, b, c = (
        crop_pairs(mov, 30, 16, seed=3),
        crop_pairs(mov, 30, 16, seed=3),
        crop_pairs(mov, 30, 16, seed=4),
    )
    np.testing.assert_array_equal(a.images, b.images)
    assert not (np.array_equal(a.t, c.t) and np.array_equal(a.y, c.y) and np.array_equal(a.x, c.x))


def test_subset_keeps_fields_aligned():
    p = crop_pairs(tiny_movie(), 20, 16)
    s = p.subset(np.array([3, 7]))
    assert len(s) == 2 and s.t.tolist() == p.t[[3, 7]].tolist()
    np.testing.assert_array_equal(s.masks[1], p.masks[7])


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(size=80), "does not fit"),
        (dict(delta=6), "delta"),
        (dict(delta=0), "delta"),
        (dict(n_pairs=0), "n_pairs"),
    ],
)
def test_crop_pairs_bad_settings_raise(kwargs, words):
    args = dict(n_pairs=10, size=16, delta=1) | kwargs
    with pytest.raises(InputError, match=words):
        crop_pairs(tiny_movie(), **args)


def test_movie_without_events_says_where_to_get_them():
    mov = tiny_movie()
    for events in (None, np.zeros_like(mov.events)):
        with pytest.raises(InputError, match="simulate_movie.*events=mask"):
            crop_pairs(Movie(mov.images, events=events), 10, 16)


# ----------------------------------------------------------------------------- criteria


def hand_masks(threshold_edge: int = 40) -> np.ndarray:
    """Four pairs like the paper's Table 4 (S=16) plus threshold edge cases."""
    m = np.zeros((6, 2, 16, 16), np.uint8)
    m[0, 0, 0, :5] = m[0, 1, 0, :6] = 1  # both crops, small (edge) -> 1 1 0
    m[1, 0, 4:12, 4:12] = 2  # first crop only, 64 px   -> 0 1 1
    m[2, 0, 15, :3] = 1  # first crop only, 3 px    -> 0 1 0
    m[3, :, 3:13, 3:13] = 1  # both crops, 100 px       -> 1 1 1
    m[4, 1].flat[:threshold_edge] = 1  # exactly threshold px     -> 0 1 1
    m[5, 1].flat[: threshold_edge - 1] = 2  # one pixel short          -> 0 1 0
    return m


def test_criteria_on_hand_made_masks():
    p = pairs_from_masks(hand_masks())
    assert label_pairs(p, "any-both").tolist() == [1, 0, 0, 1, 0, 0]
    assert label_pairs(p, "any-either").tolist() == [1, 1, 1, 1, 1, 1]
    assert label_pairs(p, "size-either", threshold=40).tolist() == [0, 1, 0, 1, 1, 0]
    assert label_pairs(p, "size-either", threshold=39).tolist() == [0, 1, 0, 1, 1, 1]
    assert (
        label_pairs(p, "size-either", threshold=1).tolist() == label_pairs(p, "any-either").tolist()
    )


def test_classes_select_divisions_or_deaths():
    p = pairs_from_masks(hand_masks())
    assert label_pairs(p, "any-either", classes="death").tolist() == [0, 1, 0, 0, 0, 1]
    assert label_pairs(p, "any-either", classes="division").tolist() == [1, 0, 1, 1, 1, 0]
    assert event_pixels(p, "death")[1].tolist() == [64, 0]
    assert set(label_all(p)) == set(CRITERIA)


def test_criteria_are_nested_on_real_crops():
    labs = label_all(crop_pairs(tiny_movie(), 200, 16, seed=0), threshold=20)
    assert labs["any-either"].sum() > labs["any-both"].sum() > 0
    assert (labs["any-both"] <= labs["any-either"]).all() and (
        labs["size-either"] <= labs["any-either"]
    ).all()


def test_unknown_criterion_lists_the_valid_ones():
    p = pairs_from_masks(hand_masks())
    with pytest.raises(InputError, match="any-both, any-either, size-either"):
        label_pairs(p, "size-both")
    with pytest.raises(InputError, match="division"):
        label_pairs(p, "any-both", classes="mitosis")


# ----------------------------------------------------------------------------- splits


def test_split_fractions_disjoint_and_balanced():
    labels = (np.random.default_rng(0).random(1000) < 0.2).astype(int)
    s = split_pairs(labels, seed=0)
    assert len(s.val) == 200 and len(s.test) == 200
    assert (
        not set(s.train) & set(s.val)
        and not set(s.val) & set(s.test)
        and not set(s.train) & set(s.test)
    )
    assert labels[s.train].sum() * 2 == len(s.train) > 0  # balanced
    unbalanced = split_pairs(labels, seed=0, balance=False)
    assert len(unbalanced.train) == 600 and set(s.train) <= set(unbalanced.train)


def test_split_seed_determinism_and_shared_val_test_across_criteria():
    labels = (np.random.default_rng(1).random(300) < 0.3).astype(int)
    a, b, c = split_pairs(labels, seed=5), split_pairs(labels, seed=5), split_pairs(labels, seed=6)
    np.testing.assert_array_equal(a.train, b.train)
    assert not np.array_equal(a.test, c.test)
    other = split_pairs(1 - labels, seed=5)  # other labels, same seed: same val/test pairs
    np.testing.assert_array_equal(a.test, other.test)


def test_budget_limits_training_pairs_and_keeps_both_classes():
    labels = (np.random.default_rng(2).random(1000) < 0.2).astype(int)
    full = split_pairs(labels, seed=0)
    for budget in (2, 3, 10, 50):
        s = split_pairs(labels, seed=0, budget=budget)
        assert len(s.train) == budget and set(s.train) <= set(full.train)
        assert 0 < labels[s.train].sum() < budget
    assert len(split_pairs(labels, seed=0, budget=10**6).train) == len(full.train)
    with pytest.raises(InputError, match="budget"):
        split_pairs(labels, budget=1)


def test_all_negative_training_set_says_what_to_do():
    with pytest.raises(InputError, match="more pairs.*criterion.*threshold"):
        split_pairs(np.zeros(100, int))
    with pytest.raises(InputError, match="fractions"):
        split_pairs(np.array([0, 1] * 10), fractions=(0.5, 0.5, 0.5))


def test_balance_and_as_split():
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    idx = balance_indices(np.arange(8), labels, seed=0)
    assert len(idx) == 6 and labels[idx].sum() == 3
    s = as_split({"train": [0, 1], "val": [2], "test": [3]})
    assert isinstance(s, Split) and s["val"].tolist() == [2]
    with pytest.raises(InputError, match="split_pairs"):
        as_split([1, 2, 3])


# ----------------------------------------------------------------------------- tables and figures


def test_dataset_table_counts_agree_with_the_split():
    labels = (np.random.default_rng(3).random(500) < 0.25).astype(int)
    split = split_pairs(labels, seed=0)
    (row,) = dataset_table(labels, split)
    assert row["total"] == 500 and row["positives"] == labels.sum()
    assert row["test"] == len(split.test) and row["test_positives"] == labels[split.test].sum()
    assert row["train_positives"] * 2 == row["train"]
    rows = dataset_table({"a": labels, "b": 1 - labels}, seed=0)
    assert [r["criterion"] for r in rows] == ["a", "b"] and rows[0]["test"] == rows[1]["test"]
    assert "train (pos)" in format_table(rows)


def test_gallery_picks_disagreeing_pairs():
    p = pairs_from_masks(hand_masks())
    idx = pick_disagreements(p, n=4, threshold=40)
    labs = np.stack([label_pairs(p, c) for c in CRITERIA], 1)[idx]
    assert (labs.min(1) != labs.max(1)).sum() >= 3
    fig = criteria_gallery(crop_pairs(tiny_movie(), 100, 16), n=4, threshold=20)
    assert len(fig.axes) == 8
    outline = {
        tuple(np.round(c.get_edgecolor()[0][:3], 2)) for ax in fig.axes for c in ax.collections
    }
    # divisions red, deaths cyan
    assert outline and outline <= {tuple(np.round(c, 2)) for c in EVENT_COLORS.values()}


def test_event_fraction_places_crops_over_events():
    mov = tiny_movie()
    uniform = label_pairs(crop_pairs(mov, 200, 16, seed=0), "any-either")
    enriched = crop_pairs(mov, 200, 16, seed=0, event_fraction=0.5)
    hits = label_pairs(enriched, "any-either")
    assert hits[:100].all()  # the first half is placed over an event pixel
    assert hits.sum() > uniform.sum()
    with pytest.raises(InputError, match="event_fraction"):
        crop_pairs(mov, 10, 16, event_fraction=1.5)


def test_event_size_and_threshold_plots():
    p = crop_pairs(tiny_movie(), 100, 16, event_fraction=0.5)
    fig = plot_threshold_sweep(p, thresholds=(1, 20, 200))
    line = fig.axes[0].lines[0]
    assert list(line.get_ydata()) == [
        label_pairs(p, "size-either", th).sum() for th in (1, 20, 200)
    ]
    assert plot_event_sizes(p, threshold=20).axes
