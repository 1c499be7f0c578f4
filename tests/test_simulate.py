"""Tests for tapkit.data.simulate: ground truth consistency, determinism, static/bleaching options,
errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from tapkit import DEATH, DIVISION, InputError
from tapkit.data.simulate import simulate_movie

SMALL = dict(n_frames=30, size=(128, 128), progress=False)


@pytest.fixture(scope="module")
def busy():
    """A small movie with many divisions and deaths (high rates so that every check has events)."""
    return simulate_movie(**SMALL, division_rate=0.04, death_rate=0.01, seed=3)


def _frames_of(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Track id -> sorted frames where it has pixels."""
    per_t = [np.unique(lab) for lab in labels]
    out: dict[int, list[int]] = {}
    for t, ids in enumerate(per_t):
        for i in ids[ids > 0]:
            out.setdefault(int(i), []).append(t)
    return {k: np.array(v) for k, v in out.items()}


def test_shapes_and_dtypes(busy):
    """Images float32, labels int32, events uint8, all (T, Y, X); lineage (N, 4) int64."""
    assert busy.images.shape == busy.labels.shape == busy.events.shape == (30, 128, 128)
    assert (
        busy.images.dtype == np.float32
        and busy.labels.dtype == np.int32
        and busy.events.dtype == np.uint8
    )
    assert busy.lineage.dtype == np.int64 and busy.lineage.shape[1] == 4
    assert set(np.unique(busy.events)) <= {0, DIVISION, DEATH}
    assert busy.pixel_size > 0 and busy.frame_interval > 0


def test_same_seed_same_movie_other_seed_differs():
    """A seed fixes every number; another seed gives another movie."""
    a = simulate_movie(n_frames=4, size=(64, 64), seed=7, progress=False)
    b = simulate_movie(n_frames=4, size=(64, 64), seed=7, progress=False)
    c = simulate_movie(n_frames=4, size=(64, 64), seed=8, progress=False)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.lineage, b.lineage)
    assert not np.array_equal(a.images, c.images)
    assert not np.array_equal(a.labels, c.labels)


def test_lineage_matches_labels(busy):
    """Each track's first/last frame are where it appears in labels, and it is present in
    between."""
    frames = _frames_of(busy.labels)
    assert set(frames) == set(busy.lineage[:, 0].tolist())
    for tid, first, last, parent in busy.lineage:
        f = frames[int(tid)]
        assert (f[0], f[-1]) == (first, last)
        assert len(f) == last - first + 1, f"track {tid} has gaps"


def test_daughters_start_after_mother_ends_near_her(busy):
    """Daughters begin the frame after their mother's last frame, close to the mother's last
    centroid."""
    lin = {int(r[0]): r for r in busy.lineage}
    children = [r for r in busy.lineage if r[3] > 0]
    assert len(children) >= 4, "the busy movie should contain several divisions"
    for tid, first, _, parent in children:
        mother = lin[int(parent)]
        assert first == mother[2] + 1
        cm = np.array(ndi.center_of_mass(busy.labels[mother[2]] == parent))
        cd = np.array(ndi.center_of_mass(busy.labels[first] == tid))
        assert np.hypot(*(cm - cd)) < 3 * busy.meta["params"]["nucleus_radius"]


def test_event_list_matches_lineage_and_masks(busy):
    """Meta events name the right tracks; each one is painted in the mask with its class and
    frames."""
    events = busy.meta["events"]
    kinds = [e[0] for e in events]
    assert "division" in kinds and "death" in kinds
    lin = {int(r[0]): r for r in busy.lineage}
    for kind, t0, t1, ids in events:
        cls = DIVISION if kind == "division" else DEATH
        for tid in ids:
            if tid == 0:
                continue
            on = (busy.labels[t0 : t1 + 1] == tid) & (busy.events[t0 : t1 + 1] == cls)
            assert on.any(), f"{kind} of track {tid} in frames {t0}-{t1} is not in the event mask"
        # a mitosis that ends after the movie has no daughters
        if kind == "division" and len(ids) == 3 and all(ids):
            assert lin[ids[1]][3] == lin[ids[2]][3] == ids[0]
    # every daughter pair in the lineage is listed as a division of its mother
    listed = {(e[3][0], d) for e in events if e[0] == "division" for d in e[3][1:]}
    for tid, _, _, parent in busy.lineage:
        if parent:
            assert (parent, tid) in listed


def test_event_pixels_sit_on_event_cells(busy):
    """Event pixels are inside labels of cells taking part in an event of that class at that
    frame."""
    assert (busy.labels[busy.events > 0] > 0).all()
    allowed = {DIVISION: set(), DEATH: set()}
    for kind, t0, t1, ids in busy.meta["events"]:
        cls = DIVISION if kind == "division" else DEATH
        allowed[cls] |= {(t, tid) for t in range(t0, t1 + 1) for tid in ids if tid}
    for cls in (DIVISION, DEATH):
        t, y, x = np.nonzero(busy.events == cls)
        pairs = set(zip(t.tolist(), busy.labels[t, y, x].tolist()))
        assert pairs, f"no pixels of class {cls}"
        assert pairs <= allowed[cls], (
            f"class {cls} painted on cells without such an event: {pairs - allowed[cls]}"
        )


def test_number_of_events_matches_masks(busy):
    """Connected (track, class) event stretches in the masks are as many as the listed event
    cells."""
    listed = {
        (cls, tid)
        for kind, _, _, ids in busy.meta["events"]
        for cls in [DIVISION if kind == "division" else DEATH]
        for tid in ids
        if tid
    }
    t, y, x = np.nonzero(busy.events > 0)
    painted = set(zip(busy.events[t, y, x].tolist(), busy.labels[t, y, x].tolist()))
    assert painted == listed


def test_static_movie_has_fixed_cells_and_no_events():
    """static=True: no divisions or deaths, the same labels every frame, only the noise changes."""
    m = simulate_movie(**SMALL, division_rate=0.1, death_rate=0.05, static=True, seed=2)
    assert not m.has_events and (m.lineage[:, 3] == 0).all()
    assert (m.labels == m.labels[0]).all() and m.labels[0].max() > 0
    assert not np.array_equal(m.images[0], m.images[1])


def test_bleaching_decays_exponentially_and_none_gives_no_trend():
    """Background-subtracted mean intensity falls as exp(-rate * t); without bleaching it has no
    trend."""
    rate = 0.03
    kw = dict(SMALL, static=True, seed=5)
    from tapkit.data.simulate import OFFSET

    t = np.arange(SMALL["n_frames"])
    bleached = simulate_movie(**kw, bleaching=rate).images.mean((1, 2)) - OFFSET
    slope, _ = np.polyfit(t, np.log(bleached), 1)
    assert slope == pytest.approx(-rate, rel=0.05)
    flat = simulate_movie(**kw).images.mean((1, 2)) - OFFSET
    slope0, _ = np.polyfit(t, np.log(flat), 1)
    assert abs(slope0) < 0.1 * rate


def test_drift_moves_the_whole_scene():
    """drift > 0 translates a static scene: labels change and their centre of mass moves."""
    m = simulate_movie(**SMALL, static=True, drift=1.0, seed=6)
    c0, c10 = (np.array(ndi.center_of_mass(m.labels[t] > 0)) for t in (0, 10))
    assert not np.array_equal(m.labels[0], m.labels[10]) and np.hypot(*(c10 - c0)) > 2


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(n_frames=1), "n_frames"),
        (dict(size=(16, 16)), "too small"),
        (dict(size="big"), "size"),
        (dict(division_rate=-0.1), "division_rate"),
        (dict(death_rate=float("nan")), "death_rate"),
        (dict(noise=100.0), "noise"),
        (dict(bleaching=2.0), "bleaching"),
        (dict(nucleus_radius=1.0), "nucleus_radius"),
        (dict(n_cells=10_000), "n_cells"),
        (dict(daughter_event_frames=-1), "daughter_event_frames"),
    ],
)
def test_bad_parameters_raise_input_error(kw, words):
    """Bad parameters raise InputError naming the parameter."""
    with pytest.raises(InputError, match=words):
        simulate_movie(**{**SMALL, **kw})
