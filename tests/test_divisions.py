"""tapkit.data.divisions: division events derived from segmentation masks (no lineage), and their
figure."""

from __future__ import annotations

import dataclasses

import matplotlib
import numpy as np
import pytest

from tapkit import InputError, Movie
from tapkit.data.divisions import (
    Divisions,
    division_event_masks,
    divisions_from_masks,
    link_frames,
    track_masks,
    with_divisions,
)

matplotlib.use("Agg")

T, SHAPE = 5, (96, 128)


def _disk(frame: np.ndarray, y: float, x: float, r: float, value: int) -> None:
    yy, xx = np.indices(frame.shape)
    frame[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = value


def _masks() -> np.ndarray:
    """(5, 96, 128) labels, ids numbered per frame as in the HeLa subset (not track ids):

    id 1 at (20, 20) splits at t=3 into new ids 11, 12; id 2 at (20, 70) splits at t=3 keeping id 2
    on a shrunk daughter, new id 13 beside it; id 60 at (80, 50) vanishes at t=2, new ids 61, 62 on
    either side; a moving nucleus (id 30 + t); one entering at the right border at t=1 (id 40); a 3
    x 3 px fragment (id 50) inside the moving nucleus's place of t=2 at t=3.
    """
    lab = np.zeros((T,) + SHAPE, np.int32)
    for t in range(T):
        f = lab[t]
        if t < 3:
            _disk(f, 20, 20, 7, 1)
            _disk(f, 20, 70, 7, 2)
        else:
            _disk(f, 20, 20 - 5 - (t - 3), 4.5, 11)
            _disk(f, 20, 20 + 5 + (t - 3), 4.5, 12)
            _disk(f, 20, 70 - (t - 3), 4.5, 2)
            _disk(f, 20, 84 + (t - 3), 4.5, 13)
        if t < 2:
            _disk(f, 80, 50, 6, 60)
        else:
            _disk(f, 80, 38 - (t - 2), 4, 61)
            _disk(f, 80, 62 + (t - 2), 4, 62)
        _disk(f, 50, 20 + 3 * t, 7, 30 + t)
        if t >= 1:
            _disk(f, 80, 135 - 4 * t, 7, 40)  # a ~28 px sliver at t=1
    # inside the moving nucleus of t=2 (centre x=26), beside it at t=3 (x=29)
    lab[3, 50:53, 24:27] = 50
    return lab


EXPECTED = [(2, 60, (61, 62)), (3, 1, (11, 12)), (3, 2, (2, 13))]


def _movie(labels: np.ndarray) -> Movie:
    rng = np.random.default_rng(0)
    return Movie(images=(labels > 0) + 0.1 * rng.random(labels.shape), labels=labels, name="disks")


def test_link_frames_uses_the_smaller_objects_fraction():
    a, b = np.zeros((2, 16, 16), np.int32)
    a[2:12, 2:12] = 1  # 100 px
    b[2:12, 2:7] = 5  # left half: all of it inside (IoU would be 0.5)
    b[2:12, 11:14] = 6  # 10 of its 30 px overlap
    links = link_frames(a, b)
    assert [(i, j) for i, j, _ in links] == [(1, 5), (1, 6)]
    assert links[0][2] == pytest.approx(1.0) and links[1][2] == pytest.approx(1 / 3)
    assert [(i, j) for i, j, _ in link_frames(a, b, min_overlap=0.5)] == [(1, 5)]


def test_finds_exactly_the_divisions_of_the_hand_made_masks():
    found = divisions_from_masks(_masks())
    assert [(d.t, d.mother, d.daughters) for d in found.events] == EXPECTED
    assert [d.rule for d in found.events] == ["two new", "split", "shrink"]
    assert found.per_frame().tolist() == [0, 0, 1, 2, 0]
    assert found.params["min_area"] == 20 and len(found) == 3
    d = found.events[1]
    assert (d.y, d.x) == pytest.approx((20, 20))  # the mother's centroid in frame t-1


def test_tiny_fragment_is_rejected_only_by_min_area():
    """Without min_area the 9 px fragment is a second successor of the moving nucleus: a false
    division."""
    found = divisions_from_masks(_masks(), min_area=5)
    assert (3, 32, (33, 50)) in [(d.t, d.mother, d.daughters) for d in found.events]


def test_near_misses_are_not_divisions():
    """Two frames: a nucleus overlapping its moving neighbour's successor; a vanishing nucleus with
    one new nucleus and one grown from a fragment beside it; a steady nucleus with two new ones
    beside it."""
    lab = np.zeros((2, 48, 200), np.int32)
    disks = [
        (0, 20, 8, 1),
        (0, 36, 8, 2),
        (1, 20, 8, 5),
        (1, 30, 7, 6),  # 6 moved into 1's place, mostly 2's
        (0, 90, 7, 3),
        (1, 78, 4, 7),
        (1, 103, 4, 8),  # 3 vanishes; 7 is new, 8 grows from fragment 4
        (0, 160, 7, 9),
        (1, 160, 7, 9),
        (1, 147, 4, 10),
        (1, 173, 4, 11),
    ]  # 9 steady, 10 and 11 new
    for t, x, r, value in disks:  # (frame, x, radius, id), all at y = 24
        _disk(lab[t], 24, x, r, value)
    lab[0, 23:26, 101:104] = 4  # a 9 px fragment
    assert {(1, 5), (1, 6), (2, 6), (4, 8), (9, 9)} == {
        (a, b) for a, b, _ in link_frames(lab[0], lab[1])
    }
    assert divisions_from_masks(lab).events == []


def test_shrink_and_distance_parameters_matter():
    lab = _masks()
    # 154 -> 64 px
    assert (3, 2) not in [(d.t, d.mother) for d in divisions_from_masks(lab, shrink=0.7).events]
    near = divisions_from_masks(lab, max_distance=10)  # daughters 12-14 px from their mothers
    assert [(d.t, d.mother) for d in near.events] == [(3, 1)]


def test_event_masks_follow_the_lineage_convention():
    lab = _masks()
    found = divisions_from_masks(lab)
    ev = division_event_masks(lab, found, n_before=2, n_after=2)
    assert ev.dtype == np.uint8 and ev.shape == lab.shape
    on = {0: [60], 1: [1, 2, 60], 2: [1, 2, 61, 62], 3: [11, 12, 2, 13, 61, 62], 4: [11, 12, 2, 13]}
    expected = np.stack([np.isin(lab[t], on[t]) for t in range(T)]).astype(np.uint8)
    np.testing.assert_array_equal(ev, expected)
    ev1 = division_event_masks(lab, found, n_before=1, n_after=1)
    on1 = {0: [], 1: [60], 2: [1, 2, 61, 62], 3: [11, 12, 2, 13], 4: []}
    np.testing.assert_array_equal(
        ev1, np.stack([np.isin(lab[t], on1[t]) for t in range(T)]).astype(np.uint8)
    )


def test_tracks_follow_cells_whose_ids_change():
    lab = _masks()
    tracks, lineage = track_masks(lab, divisions_from_masks(lab))
    np.testing.assert_array_equal(tracks > 0, lab > 0)
    moving = {int(tracks[t][lab[t] == 30 + t][0]) for t in range(T)}
    assert len(moving) == 1  # ids 30 ... 34 are one cell
    rows = {int(r[0]): r.tolist() for r in lineage}
    assert rows[moving.pop()][1:] == [0, 4, 0]
    mother_b, daughter_b = int(tracks[2][lab[2] == 2][0]), int(tracks[3][lab[3] == 2][0])
    assert (
        daughter_b != mother_b
        and rows[daughter_b][1:] == [3, 4, mother_b]
        and rows[mother_b][1:] == [0, 2, 0]
    )


def test_with_divisions_copies_the_movie_with_events_and_lineage():
    movie = _movie(_masks())
    out = with_divisions(movie)
    assert movie.events is None and movie.lineage is None  # the original is untouched
    np.testing.assert_array_equal(
        out.events, division_event_masks(movie.labels, divisions_from_masks(movie.labels))
    )
    assert (out.lineage[:, 3] > 0).sum() == 6  # three mothers, two daughters each
    renamed = out.meta["divisions"]
    for d in renamed.events:  # ids of the copy's (track) labels
        assert (out.labels[d.t - 1] == d.mother).any() and all(
            (out.labels[d.t] == b).any() for b in d.daughters
        )
        assert set(out.lineage[out.lineage[:, 3] == d.mother, 0]) == set(d.daughters)


def test_with_divisions_needs_labels_and_no_events():
    movie = _movie(_masks())
    with pytest.raises(InputError, match="no labels.*read_tiff"):
        with_divisions(dataclasses.replace(movie, labels=None))
    with pytest.raises(InputError, match="already has events"):
        with_divisions(dataclasses.replace(movie, events=np.zeros(movie.shape, np.uint8)))
    with pytest.raises(InputError, match=r"\(T, Y, X\)"):
        divisions_from_masks(movie.labels[0])


def test_recovers_the_simulated_lineages_divisions():
    from tapkit.data.simulate import simulate_movie

    m = simulate_movie(n_frames=30, size=(128, 128), seed=1, progress=False)  # labels are track ids
    parents, counts = np.unique(m.lineage[m.lineage[:, 3] > 0, 3], return_counts=True)
    truth = {(int(m.lineage[m.lineage[:, 0] == p][0, 2]) + 1, int(p)) for p in parents[counts >= 2]}
    found = {(d.t, d.mother) for d in divisions_from_masks(m.labels).events}
    assert len(truth) >= 3 and len(truth & found) >= 0.8 * len(truth), (truth, found)
    assert len(found - truth) <= len(truth) // 2, (truth, found)


def test_plot_divisions_renders_k_divisions():
    import matplotlib.pyplot as plt

    from tapkit.plot.divisions import plot_divisions

    movie = _movie(_masks())
    found = divisions_from_masks(movie.labels)
    fig = plot_divisions(movie, found, k=2, size=32)
    assert len(fig.axes) == 4  # mother (t-1) over daughters (t) for each
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "t=1 id 60" and titles[2].startswith("t=2 id 61+62")
    assert len(plot_divisions(movie, found, k=10).axes) == 6  # no more than found
    with pytest.raises(InputError, match="nothing to show"):
        plot_divisions(movie, Divisions([], {}), k=3)
    plt.close("all")


def _cached_hela() -> Movie | None:
    from tapkit.data import datasets

    folder = datasets.cache_dir() / "hela-subset"
    if not all((folder / name.rsplit("/", 1)[1]).is_file() for name in datasets.HELA_MEMBERS):
        return None
    return datasets.hela_subset()


def test_hela_subset_gives_a_plausible_number_of_divisions():
    movie = _cached_hela()
    if movie is None:
        pytest.skip(
            "the HeLa subset is not cached (tapkit.data.datasets.hela_subset() fetches it once)"
        )
    found = divisions_from_masks(movie.labels)
    per_frame = found.per_frame()
    # 124 -> 195 nuclei in 20 frames of 30 min: a ~20 h cycle gives ~55 divisions, minus cells
    # entering
    assert 25 <= len(found) <= 80 and per_frame[0] == 0 and (per_frame[1:] > 0).mean() > 0.7, (
        per_frame
    )
    out = with_divisions(movie)
    assert out.has_events and (out.events > 0).mean() < 0.05
