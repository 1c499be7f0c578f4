"""Tests for tapkit.simulate: shapes, determinism, lineage/label/event consistency, options, validation."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from tapkit import DEATH, DIVISION, InputError, Movie
from tapkit.simulate import simulate_movie

SMALL = dict(n_frames=30, size=(128, 128), division_rate=0.03, death_rate=0.02, progress=False)


@pytest.fixture(scope="module")
def movie() -> Movie:
    return simulate_movie(seed=1, **SMALL)


def test_shapes_and_dtypes(movie):
    assert movie.images.shape == movie.labels.shape == movie.events.shape == (30, 128, 128)
    assert movie.images.dtype == np.float32 and movie.labels.dtype == np.int32 and movie.events.dtype == np.uint8
    assert movie.lineage.shape[1] == 4 and movie.pixel_size > 0 and movie.frame_interval > 0
    assert movie.meta["params"]["seed"] == 1


def test_determinism_and_seed_dependence():
    a, b = simulate_movie(seed=3, **SMALL), simulate_movie(seed=3, **SMALL)
    c = simulate_movie(seed=4, **SMALL)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_lineage_matches_labels(movie):
    ids = {int(r[0]): r for r in movie.lineage}
    present = {i: np.flatnonzero([(l == i).any() for l in movie.labels]) for i in ids}
    assert set(np.unique(movie.labels)) - {0} == set(ids)
    for i, (tid, first, last, parent) in ids.items():
        frames = present[i]
        assert frames[0] == first and frames[-1] == last and len(frames) == last - first + 1
        if parent:
            assert ids[parent][2] == first - 1  # the mother's track ends the frame before


def test_daughters_appear_where_the_mother_was(movie):
    daughters = movie.lineage[movie.lineage[:, 3] > 0]
    assert len(daughters) >= 2, "the small movie should contain divisions"
    ends = {int(r[0]): int(r[2]) for r in movie.lineage}
    for tid, first, _, parent in daughters:
        cm = ndi.center_of_mass(movie.labels[ends[parent]] == parent)
        cd = ndi.center_of_mass(movie.labels[first] == tid)
        assert np.hypot(cm[0] - cd[0], cm[1] - cd[1]) < 2.5 * movie.meta["params"]["nucleus_radius"]


def test_events_sit_on_the_right_cells(movie):
    kinds = {"division": DIVISION, "death": DEATH}
    for kind in ("division", "death"):
        code = kinds[kind]
        for t in range(len(movie)):
            allowed = {i for k, t0, t1, ids in movie.meta["events"] if k == kind and t0 <= t <= t1 for i in ids}
            on = np.unique(movie.labels[t][movie.events[t] == code])
            assert 0 not in on and set(on.tolist()) <= allowed


def test_event_counts_match_masks_and_lineage(movie):
    events = movie.meta["events"]
    divisions = [e for e in events if e[0] == "division"]
    deaths = [e for e in events if e[0] == "death"]
    assert len(divisions) >= 1 and len(deaths) >= 1
    for kind, code, evs in (("division", DIVISION, divisions), ("death", DEATH, deaths)):
        for _, t0, t1, ids in evs:  # each listed event has event pixels on its cells
            lab, ev = movie.labels[t0:t1 + 1], movie.events[t0:t1 + 1]
            assert (ev[np.isin(lab, [i for i in ids if i])] == code).any()
    parents = movie.lineage[movie.lineage[:, 3] > 0, 3]
    complete = [e for e in divisions if len(e[3]) == 3 and all(e[3])]  # mother and both daughters in view
    assert set(parents.tolist()) >= {e[3][0] for e in complete}
    for _, _, _, (mother, d1, d2) in complete:
        lin = {int(r[0]): int(r[3]) for r in movie.lineage}
        assert lin[d1] == lin[d2] == mother
    last = {int(r[0]): int(r[2]) for r in movie.lineage}
    for _, _, t1, (dead,) in deaths:  # a dying cell's track ends with its apoptosis, without daughters
        assert dead == 0 or (last[dead] <= t1 and dead not in parents)


def test_event_fraction_is_a_few_percent():
    m = simulate_movie(n_frames=40, size=(192, 192), seed=0, progress=False)
    assert 0.002 < (m.events > 0).mean() < 0.1


def test_static_movie_has_no_dynamics():
    m = simulate_movie(static=True, seed=2, **SMALL)
    assert not m.events.any() and not m.meta["events"]
    assert (m.lineage[:, 3] == 0).all() and (m.lineage[:, 1] == 0).all()
    np.testing.assert_array_equal(m.labels[0], m.labels[-1])
    assert not np.array_equal(m.images[0], m.images[-1])  # noise still changes


def test_bleaching_gives_global_decay():
    kw = dict(SMALL, static=True, seed=5)
    flat = simulate_movie(**kw).images.reshape(30, -1).mean(1)
    bleached = simulate_movie(bleaching=0.05, **kw).images.reshape(30, -1).mean(1) - 1000.0
    assert bleached[-1] < 0.4 * bleached[0]
    assert abs(flat[-1] - flat[0]) < 0.05 * (flat[0] - 1000.0)


def test_drift_moves_the_scene():
    m = simulate_movie(static=True, drift=1.0, seed=6, **SMALL)
    c0 = np.array(ndi.center_of_mass(m.labels[0] > 0))
    shift = np.array(ndi.center_of_mass(m.labels[10] > 0)) - c0
    assert not np.array_equal(m.labels[0], m.labels[10]) and np.hypot(*shift) > 2


@pytest.mark.parametrize("kw", [dict(n_frames=1), dict(size=(16, 16)), dict(division_rate=-0.1),
                                dict(death_rate=-1), dict(noise=-1), dict(size="big"), dict(n_cells=10**6),
                                dict(bleaching=float("nan")), dict(nucleus_radius=0)])
def test_bad_parameters_raise(kw):
    with pytest.raises(InputError):
        simulate_movie(**kw)
