"""Every figure a notebook draws (tapkit.plot.*), on small synthetic inputs, against what a learner
must be able to read:

- every labelled series is named in a legend (of its axes or of the figure), and an axes with
  several colours of data has at most one unlabelled colour (the data the axis labels describe);
- one colour per series in a figure: the same series in the same colour in every panel, two series
  never in the same colour (black and greys, the references, excepted); methods never in the event
  colours red / cyan;
- axis limits contain the data drawn (lines, points, bars);
- frames, frame pairs, epochs, steps and label budgets get whole-number ticks, without minor tick
  labels.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402

from conftest import make_tiny_movie  # noqa: E402
from tapkit.data.movie import DEATH, DIVISION  # noqa: E402
from tapkit.downstream.events.crops import CropPairs  # noqa: E402
from tapkit.plot import EVENT_COLORS  # noqa: E402
from tapkit.plot import calibration as plot_cal  # noqa: E402
from tapkit.plot import events as event_plots  # noqa: E402
from tapkit.plot import frames as viewer  # noqa: E402
from tapkit.plot import pretext as pretext_plots  # noqa: E402
from tapkit.plot import segmentation as seg_plots  # noqa: E402
from tapkit.plot import tap as tap_plots  # noqa: E402
from tapkit.plot.style import FALLBACK, HUES, NAMED, is_event_like, series_styles  # noqa: E402

# axis labels that count things
INTEGER_AXES = re.compile(r"frame|epoch|step|labelled|budget|time index")


@pytest.fixture(autouse=True)
def close_figures():
    """No figure outlives its test."""
    yield
    plt.close("all")


# --------------------------------------------------------------------------------------- the checks


def series_key(label: str) -> str:
    """A label without its annotations: 'tap (mean 0.12)' -> 'tap', 'seed 0 *' -> 'seed 0',
    'no event (30)' -> 'no event'."""
    previous = None
    while previous != label:
        previous, label = label, re.sub(r"\s*(\([^()]*\)|\*)\s*$", "", label)
    return label


def public(label: str) -> bool:
    """A label meant for a legend (matplotlib names unlabelled artists '_child0', '_nolegend_',
    ...)."""
    return bool(label) and not label.startswith("_")


def rgb(color) -> tuple:
    """A colour as a rounded RGB tuple."""
    return tuple(round(float(c), 3) for c in to_rgb(color))


def achromatic(color) -> bool:
    """Black, white or a grey: the colours of references (ground truth, chance, the paper)."""
    c = np.asarray(color)
    return float(c.max() - c.min()) < 0.05


def data_artists(ax) -> list[tuple[object, str, tuple]]:
    """(artist, label, colour) of every line, colour-mapped-free scatter and bar series of an axes
    (error bars out)."""
    error_parts = set()
    for container in ax.containers:
        bars = container.errorbar if isinstance(container, BarContainer) else container
        if isinstance(bars, ErrorbarContainer):
            error_parts |= {
                id(a)
                for part in bars.lines
                for a in (part if isinstance(part, tuple) else (part,))
                if a is not None
            }
    out = []
    for line in ax.get_lines():
        if id(line) not in error_parts and len(line.get_xdata()):
            out.append((line, line.get_label(), rgb(line.get_color())))
    for coll in ax.collections:
        if (
            isinstance(coll, PathCollection)
            and coll.get_array() is None
            and len(coll.get_offsets())
        ):
            out.append((coll, coll.get_label(), rgb(coll.get_facecolor()[0])))
    for container in ax.containers:
        if isinstance(container, BarContainer) and len(container.patches):
            out.append(
                (container, container.get_label(), rgb(container.patches[0].get_facecolor()))
            )
    return out


def legend_labels(ax) -> set[str]:
    """Labels shown in the axes' legend and in every figure legend."""
    legends = [ax.get_legend(), *ax.figure.legends]
    return {t.get_text() for lg in legends if lg is not None for t in lg.get_texts()}


def inside(values, limits, log: bool) -> bool:
    """All finite values within the limits (inclusive, a hair of tolerance); non-positive ones
    ignored on a log axis."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if log:
        v = v[v > 0]
    lo, hi = sorted(limits)
    tol = 1e-9 * max(1.0, abs(hi - lo))
    return bool(np.all((v >= lo - tol) & (v <= hi + tol)))


def check_limits(ax) -> None:
    """Every line, point and bar drawn in data coordinates lies inside the axes limits."""
    xlog, ylog = ax.get_xscale() == "log", ax.get_yscale() == "log"
    for artist, label, _ in data_artists(ax):
        if isinstance(artist, BarContainer):
            for p in artist.patches:
                xs, ys = (
                    (p.get_x(), p.get_x() + p.get_width()),
                    (p.get_y(), p.get_y() + p.get_height()),
                )
                assert inside(xs, ax.get_xlim(), xlog) and inside(ys, ax.get_ylim(), ylog), (
                    f"bar {label} outside"
                )
        elif isinstance(artist, PathCollection):
            xy = artist.get_offsets()
            assert inside(xy[:, 0], ax.get_xlim(), xlog) and inside(
                xy[:, 1], ax.get_ylim(), ylog
            ), f"{label} outside"
        # not axhline / axvline (axes-relative on one axis)
        elif artist.get_transform() == ax.transData:
            x, y = artist.get_xydata().T  # in numbers (bar names, dates converted)
            assert inside(x, ax.get_xlim(), xlog), (
                f"{ax.get_title()!r}: {label} x outside {ax.get_xlim()}"
            )
            assert inside(y, ax.get_ylim(), ylog), (
                f"{ax.get_title()!r}: {label} y outside {ax.get_ylim()}"
            )


def check_ticks(ax) -> None:
    """Axes that count frames / epochs / steps / budgets: whole-number major ticks and no minor tick
    labels."""
    for name, axis, limits in (("x", ax.xaxis, ax.get_xlim()), ("y", ax.yaxis, ax.get_ylim())):
        if not INTEGER_AXES.search(axis.get_label_text().lower()) or not axis.get_visible():
            continue
        lo, hi = sorted(limits)
        ticks = [t for t in axis.get_majorticklocs() if lo - 1e-9 <= t <= hi + 1e-9]
        if not len(axis.get_majorticklocs()):
            continue  # ticks taken away on purpose (an image panel whose label names its row)
        assert ticks, f"{axis.get_label_text()!r}: no ticks"
        assert all(abs(t - round(t)) < 1e-9 for t in ticks), (
            f"{axis.get_label_text()!r} ticks {ticks}"
        )
        minor = [
            t.get_text() for t in axis.get_minorticklabels() if t.get_visible() and t.get_text()
        ]
        assert not minor, f"{axis.get_label_text()!r}: minor tick labels {minor}"


def check_figure(fig, methods: bool = False) -> dict[str, tuple]:
    """Run every check on a drawn figure; returns {series: colour}. methods: its series are methods
    (no red / cyan)."""
    fig.canvas.draw()
    colors: dict[str, tuple] = {}
    for ax in fig.axes:
        artists = data_artists(ax)
        shown = legend_labels(ax)
        for _, label, _ in artists:
            if public(label):
                assert label in shown, (
                    f"{ax.get_title()!r}: series {label!r} is in no legend ({sorted(shown)})"
                )
        groups: dict[tuple, bool] = {}
        for _, label, color in artists:
            groups[color] = groups.get(color, False) or public(label)
        if len(groups) > 1:
            assert sum(not named for named in groups.values()) <= 1, (
                f"{ax.get_title()!r}: several unlabelled colours "
                f"{[c for c, n in groups.items() if not n]}"
            )
        for _, label, color in artists:
            if public(label):
                key = series_key(label)
                assert colors.setdefault(key, color) == color, f"{key!r} drawn in two colours"
                if methods and not achromatic(color):
                    assert not is_event_like(color), f"{key!r} in an event colour {color}"
        check_limits(ax)
        check_ticks(ax)
    chromatic = [(k, c) for k, c in colors.items() if not achromatic(c)]
    for i, (k1, c1) in enumerate(chromatic):
        for k2, c2 in chromatic[i + 1 :]:
            assert np.linalg.norm(np.subtract(c1, c2)) > 0.1, (
                f"{k1!r} and {k2!r} share a colour {c1}"
            )
    return colors


# ------------------------------------------------------------------------------------------- inputs


def toy_pairs(n: int = 60, size: int = 16, seed: int = 0) -> tuple[CropPairs, np.ndarray]:
    """Noise crop pairs; every third has a division square, every fifth a death square, in one of
    the two crops."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.3, 0.1, (n, 2, size, size)).astype(np.float32)
    masks = np.zeros((n, 2, size, size), np.uint8)
    for i in range(n):
        for every, code, side in ((3, DIVISION, 6), (5, DEATH, 4)):
            if i % every == 0:
                k, y, x = (
                    rng.integers(0, 2),
                    rng.integers(0, size - side),
                    rng.integers(0, size - side),
                )
                images[i, k, y : y + side, x : x + side] += 1.0
                masks[i, k, y : y + side, x : x + side] = code
    t = np.arange(n) % 8
    pairs = CropPairs(
        images, masks, t, np.zeros(n, np.int64), np.zeros(n, np.int64), movie_name="toy"
    )
    return pairs, (masks > 0).any(axis=(1, 2, 3)).astype(np.int64)


FEATURES = ("tap", "mim", "mim-intensity", "contrastive", "random (frozen)")
ROWS_08 = [f"{f} · {h}" for f in FEATURES for h in ("linear", "conv")] + [
    "tap fine-tuned",
    "from scratch",
]


def dense_results(rows=ROWS_08, budgets=(1, 2, 5, "all"), pool: int = 20, n_runs: int = 2):
    """Fake DenseResult-like runs of notebook 08's rows (scores rise with the budget), for
    results_table."""
    from tapkit.downstream.segmentation.experiments import DenseResult

    rng = np.random.default_rng(0)
    out = []
    for k, row in enumerate(rows):
        for b in budgets:
            n = pool if b == "all" else int(b)
            for s in range(n_runs):
                base = 0.3 + 0.03 * k + 0.02 * np.log1p(n)
                scores = {
                    m: float(np.clip(base + rng.normal(0, 0.05), 0, 1))
                    for m in ("dice", "iou", "object_f1")
                }
                curve = list(np.clip(np.linspace(0.1, base, 5) + rng.normal(0, 0.02, 5), 0, 1))
                out.append(
                    DenseResult(
                        row,
                        b,
                        s,
                        np.arange(n),
                        scores,
                        lr=1e-3,
                        steps=40,
                        val_steps=[8, 16, 24, 32, 40],
                        val_curve=curve,
                        best_step=[8, 16, 24, 32, 40][int(np.argmax(curve))],
                        converged=s == 0,
                    )
                )
    return out


# -------------------------------------------------------------------------------------- notebook 08


def test_plot_histories_one_colour_per_variant_and_a_legend_naming_all():
    rng = np.random.default_rng(0)
    histories = {
        "segmentation only": {"segmentation": list(rng.random(12)), "consistency": []},
        "alternating": {"segmentation": list(rng.random(8)), "consistency": list(rng.random(4))},
        "consistency only": {"segmentation": [], "consistency": list(rng.random(12))},
    }
    fig = seg_plots.plot_histories(histories)
    colors = check_figure(fig)
    assert set(colors) == set(histories)
    figure_legend = {t.get_text() for t in fig.legends[0].get_texts()}
    assert figure_legend == set(histories)
    seg, cons = fig.axes[:2]
    by_label = lambda ax: {line.get_label(): rgb(line.get_color()) for line in ax.get_lines()}  # noqa: E731
    assert (
        by_label(seg)["alternating"] == by_label(cons)["alternating"] == rgb(NAMED["alternating"])
    )
    assert by_label(seg)["segmentation only"] == rgb(NAMED["segmentation only"])
    assert by_label(cons)["consistency only"] == rgb(NAMED["consistency only"])
    # said where it has no line
    assert "consistency only" in " ".join(t.get_text() for t in seg.texts)


def test_plot_budget_table_twelve_rows_own_colours_and_budget_ticks():
    from tapkit.downstream.segmentation.tables import results_table

    table = results_table(dense_results())
    fig = seg_plots.plot_budget_table(table, "nuclei, all rows")
    colors = check_figure(fig, methods=True)
    assert set(colors) == set(ROWS_08) and len(set(colors.values())) == 12
    assert (
        colors["tap · linear"] != colors["tap fine-tuned"]
        and colors["tap · conv"] != colors["from scratch"]
    )
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels == ["1", "2", "5", "all (20)"], labels
    assert {t.get_text() for t in fig.legends[0].get_texts()} == set(ROWS_08)


def test_plot_budget_table_same_colours_in_every_figure():
    from tapkit.downstream.segmentation.tables import results_table

    frozen = [r for r in dense_results() if " · " in r.row]
    a = check_figure(seg_plots.plot_budget_table(results_table(frozen), "frozen"))
    b = check_figure(seg_plots.plot_budget_table(results_table(dense_results()), "all rows"))
    assert all(b[row] == color for row, color in a.items())


def test_plot_val_curves_seeds_and_steps():
    fig = seg_plots.plot_val_curves(dense_results(n_runs=3), 1, task="nuclei")
    check_figure(fig)
    assert fig.get_suptitle().startswith("nuclei")  # two tasks' figures are told apart


def test_plot_predictions_task_title_colour_bar_and_division_outline():
    rng = np.random.default_rng(0)
    frame = rng.normal(300, 50, (48, 48)).astype(np.float32)  # raw intensities
    true = np.zeros((48, 48), np.uint8)
    true[10:20, 10:20] = 1
    probs = {
        name: rng.random((48, 48)).astype(np.float32)
        for name in ("tap · conv, 1 fr.", "from scratch, 1 fr.")
    }
    fig = seg_plots.plot_predictions(frame, true, probs, task="divisions")
    check_figure(fig)
    assert "divisions" in fig._suptitle.get_text()
    assert any(ax.get_ylabel().startswith("P(pixel") for ax in fig.axes)  # the colour bar
    outlines = [c for ax in fig.axes for c in ax.collections if isinstance(c, ContourSet)]
    assert len(outlines) == 3
    assert all(rgb(c.get_edgecolor()[0]) == rgb(EVENT_COLORS[DIVISION]) for c in outlines)
    lo, hi = fig.axes[0].images[0].get_clim()
    assert 100 < lo < hi < 500  # the frame scaled to its own percentiles
    nuclei = seg_plots.plot_predictions(frame, true, probs, task="nuclei")
    assert not any(
        is_event_like(c.get_edgecolor()[0])
        for ax in nuclei.axes
        for c in ax.collections
        if isinstance(c, ContourSet)
    )
    check_figure(seg_plots.plot_predictions(frame, true, probs))  # without a task: still a figure


def test_plot_flicker_integer_frame_pairs():
    rng = np.random.default_rng(0)
    curves = {
        name: rng.random(5) * 0.2
        for name in (
            "before (pretrained)",
            "segmentation only",
            "alternating",
            "consistency only",
            "ground truth",
        )
    }
    fig = seg_plots.plot_flicker(curves, t0=20)
    colors = check_figure(fig, methods=True)
    assert len(colors) == 5
    assert [t for t in fig.axes[0].get_xticks() if 19.5 <= t <= 24.5] == [20, 21, 22, 23, 24]


def test_plot_flicker_maps_have_a_key():
    rng = np.random.default_rng(0)
    preds = {
        name: rng.random((4, 24, 24)) > 0.5
        for name in ("segmentation only", "alternating", "consistency only")
    }
    fig = seg_plots.plot_flicker_maps(preds, 1, t0=20)
    check_figure(fig)
    assert "frames 21 and 22" in fig.get_suptitle()  # movie frames, as plot_flicker's axis
    key = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"kept", "lost at t + 1", "gained at t + 1"} <= key
    assert not any(is_event_like(c) for c in seg_plots.FLICKER_COLORS.values() if not achromatic(c))


def test_plot_task_masks():
    movie = make_tiny_movie()
    fig = seg_plots.plot_task_masks(
        movie.images[4],
        {
            "nuclei": (movie.labels[4] > 0).astype(np.uint8),
            "divisions": (movie.events[4] == DIVISION).astype(np.uint8),
        },
    )
    check_figure(fig)


# --------------------------------------------------------------------------------- notebooks 01, 09


@pytest.mark.parametrize("epochs", [1, 2, 5])
def test_plot_history_accuracy_axis_holds_low_values_and_epochs_are_whole(epochs):
    history = {
        "train_loss": list(np.linspace(0.7, 0.5, epochs)),
        "val_loss": list(np.linspace(0.72, 0.6, epochs)),
        "train_accuracy": list(np.linspace(0.45, 0.8, epochs)),
        "val_accuracy": list(np.linspace(0.2, 0.35, epochs)),
        "train_decorr": list(np.linspace(2.1, 2.0, epochs)),
        "val_decorr": list(np.linspace(2.1, 2.0, epochs)),
    }
    fig = tap_plots.plot_history(history)
    check_figure(fig)
    acc = fig.axes[1]
    assert acc.get_ylim()[0] <= 0 and acc.get_ylim()[1] >= 1


def test_plot_history_of_a_mim_model():
    history = {
        "train_loss": [0.3, 0.2],
        "val_loss": [0.35, 0.25],
        "train_psnr": [18.0, 21.0],
        "val_psnr": [17.0, 20.0],
    }
    check_figure(tap_plots.plot_history(history))


def test_plot_feature_maps_scales_a_raw_frame():
    """Notebook 09 passes raw intensities (hundreds): the frame must not be one white panel."""
    rng = np.random.default_rng(0)
    frame = (200 + 300 * (rng.random((32, 32)) > 0.7) + rng.normal(0, 10, (32, 32))).astype(
        np.float32
    )
    fig = pretext_plots.plot_feature_maps(frame, {"tap": torch.randn(6, 32, 32)}, n_channels=3)
    check_figure(fig)
    lo, hi = fig.axes[0].images[0].get_clim()
    assert frame.min() <= lo < hi <= frame.max()
    normalised = pretext_plots.plot_feature_maps(
        frame / 1000, {"tap": torch.randn(6, 32, 32)}, n_channels=3
    )
    assert normalised.axes[0].images[0].get_clim()[1] < 1


# -------------------------------------------------------------------------------------- notebook 07


def test_plot_budget_curves_of_07():
    rng = np.random.default_rng(0)
    rows = [
        f"{f} · {h}"
        for f in ("tap", "mim", "mim-intensity", "contrastive")
        for h in ("linear", "ResNet")
    ]
    curves = {
        "n_train": [32, 64, 200],
        **{r: rng.random((3, 2)) for r in rows + ["random (frozen) · linear"]},
    }
    fig = pretext_plots.plot_budget_curves(curves)
    colors = check_figure(fig, methods=True)
    assert len(set(colors.values())) == len(rows) + 1
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["32", "64", "200"]


def test_plot_pretext_table_has_a_legend():
    rng = np.random.default_rng(0)
    names = [
        "tap · linear",
        "tap · ResNet",
        "mim · linear",
        "mim · ResNet",
        "random (frozen) · linear",
        "end to end · ResNet",
    ]
    table = {
        n: {m: [0.9, rng.random()] for m in ("precision", "recall", "f1")}
        | {f"{m}_std": [0.01, 0.05] for m in ("precision", "recall", "f1")}
        for n in names
    }
    fig = pretext_plots.plot_pretext_table(table)
    colors = check_figure(fig, methods=True)
    assert set(colors) == set(names)
    assert {t.get_text() for t in fig.legends[0].get_texts()} == set(names)


def test_plot_pooled_pca_axis_labels_and_event_colours():
    pairs, labels = toy_pairs()
    rng = np.random.default_rng(0)
    points = {"tap": rng.normal(size=(len(labels), 2)), "mim": rng.normal(size=(len(labels), 2))}
    events = pretext_plots.event_classes(pairs)
    assert set(np.unique(events)) == {0, DIVISION, DEATH}
    fig = pretext_plots.plot_pooled_pca(points, labels, events=events)
    colors = check_figure(fig)
    assert colors["division"] == rgb(EVENT_COLORS[DIVISION]) and colors["death"] == rgb(
        EVENT_COLORS[DEATH]
    )
    for ax in fig.axes:
        assert ax.get_xlabel().startswith("PC 1") and ax.get_ylabel().startswith("PC 2")
    # as notebook 07 calls it today
    plain = check_figure(pretext_plots.plot_pooled_pca(points, labels))
    assert not any(is_event_like(c) for k, c in plain.items() if k != "no event")


def test_plot_reconstructions_show_the_mask():
    from tapkit.ssl.mim import random_mask

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 16, 16, generator=g)
    mask = random_mask(2, 16, 4, 0.5, g)
    fig = pretext_plots.plot_reconstructions(
        {"mim": (x, mask, torch.rand(2, 1, 16, 16, generator=g))}, n=2
    )
    check_figure(fig)
    for row in range(2):
        masked_input, prediction, truth = fig.axes[3 * row : 3 * row + 3]
        assert len(masked_input.images) == 2  # the input and the tint of its hidden pixels
        assert any(isinstance(c, ContourSet) for c in prediction.collections)
    assert "hidden pixels (mask)" in {t.get_text() for t in fig.legends[0].get_texts()}


def test_plot_task_batches():
    g = torch.Generator().manual_seed(0)
    batches = {
        "tap": {"x": torch.rand(2, 2, 1, 16, 16, generator=g), "y": torch.tensor([0, 1])},
        "mim": {
            "x": torch.rand(2, 1, 16, 16, generator=g),
            "mask": (torch.rand(2, 1, 16, 16, generator=g) > 0.5).float(),
        },
        "contrastive": {
            "view1": torch.rand(2, 1, 16, 16, generator=g),
            "view2": torch.rand(2, 1, 16, 16, generator=g),
            "mask": (torch.rand(2, 1, 16, 16, generator=g) > 0.5).float(),
        },
    }
    check_figure(pretext_plots.plot_task_batches(batches))


# -------------------------------------------------------------------------------- notebooks 03 - 06


def test_event_figures_of_03():
    pairs, labels = toy_pairs()
    check_figure(event_plots.plot_event_sizes(pairs, threshold=20))
    check_figure(event_plots.plot_threshold_sweep(pairs, thresholds=(1, 10, 20, 40)))
    check_figure(event_plots.criteria_gallery(pairs, n=4, threshold=20))
    rows = [
        {
            "criterion": c,
            **{f"{p}_positives": n for p, n in zip(("train", "val", "test"), (10 + i, 4, 4))},
        }
        for i, c in enumerate(("any-both", "any-either", "size-either"))
    ]
    check_figure(event_plots.plot_dataset_table(rows))


def test_plot_budget_curve_of_04_never_red():
    rng = np.random.default_rng(0)
    curve = {
        "n_train": [20, 40, 80, 160],
        "budgets": [20, 40, 80, 160],
        **{s: rng.random((4, 3)) for s in ("A0", "A1", "B0", "B1", "C0", "C1")},
    }
    fig = event_plots.plot_budget_curve(curve)
    colors = check_figure(fig, methods=True)
    assert len(set(colors.values())) == 6
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["20", "40", "80", "160"]


def test_plot_val_curves_and_results_of_04():
    def run(seed, converged):
        steps = [10, 20, 30, 40]
        f1 = list(np.linspace(0.2, 0.6, 4) + 0.05 * seed)
        return SimpleNamespace(
            seed=seed,
            converged=converged,
            lr=1e-3,
            history={"val_step": steps, "val_f1": f1, "best_step": 40, "best_val_f1": f1[-1]},
        )

    results = {s: [run(i, i != 1) for i in range(3)] for s in ("A0", "A1", "B1")}
    check_figure(event_plots.plot_val_curves(results))
    table = {
        s: {m: [0.9, 0.5] for m in ("precision", "recall")}
        | {f"{m}_std": [0.02, 0.1] for m in ("precision", "recall")}
        for s in ("A0", "A1", "B0", "B1")
    }
    check_figure(event_plots.plot_results(table))


def test_error_timing_and_mistakes_of_05():
    from tapkit.downstream.events.error_timing import error_timing

    rng = np.random.default_rng(0)
    t = rng.integers(0, 12, 300)
    y_true = (rng.random(300) < 0.3).astype(int)
    y_pred = np.where(rng.random(300) < 0.8, y_true, 1 - y_true)
    check_figure(event_plots.plot_error_timing(error_timing(t, y_true, y_pred), title="A1"))
    pairs, labels = toy_pairs()
    result = SimpleNamespace(
        test_logits=rng.normal(size=(20, 2)),
        test_labels=labels[:20],
        test_index=np.arange(20),
        strategy="A1",
    )
    check_figure(event_plots.plot_result_mistakes(result, pairs, "false_positives", k=4))


def test_calibration_figures_of_06():
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.3).astype(int)
    logits = np.stack([np.zeros(400), 3 * (labels - 0.5) + rng.normal(0, 1.5, 400)], axis=1)
    from tapkit.downstream.calibration import to_probs

    check_figure(plot_cal.reliability_diagram(to_probs(logits), labels, n_bins=10))
    check_figure(
        plot_cal.plot_calibration(
            {"linear": (logits, labels, 1.5), "resnet": (logits, labels, 0.8)}, n_bins=10
        )
    )


# ------------------------------------------------------------------------- notebooks 00, 02, 04, 09


@pytest.mark.parametrize("overlay", ["events", "labels", None])
def test_show_frames(overlay):
    check_figure(viewer.show_frames(make_tiny_movie(), overlay=overlay))


def test_plot_top_regions():
    from tapkit.plot.gradcam import plot_top_regions

    movie = make_tiny_movie()
    cam = np.random.default_rng(0).random((64, 64))
    check_figure(
        plot_top_regions(
            movie.images[3],
            movie.images[4],
            cam,
            [(20, 20, 1.0), (44, 44, 0.5)],
            events=movie.events[3] == DIVISION,
            inset=16,
        )
    )


def test_plot_divisions():
    from tapkit.data.divisions import divisions_from_masks
    from tapkit.plot.divisions import plot_divisions

    movie = make_tiny_movie()
    found = divisions_from_masks(movie.labels)
    assert len(found)
    check_figure(plot_divisions(movie, found, k=2, size=32))


def test_movie_check_figures_of_09():
    from tapkit.data.inspect import check_movie, estimate_nucleus_size, recommend_binning
    from tapkit.plot.inspect import plot_checks, plot_nucleus_size

    movie = make_tiny_movie()
    check_figure(plot_checks(check_movie(movie), movie))
    size = estimate_nucleus_size(movie, 2)
    check_figure(plot_nucleus_size(movie, size, recommend_binning(size.radius)))


# -------------------------------------------------------------------------------------- the palette


def test_palette_never_uses_event_colours_and_is_fixed():
    for dark, light in HUES.values():
        assert not is_event_like(dark) and not is_event_like(light)
    assert not any(is_event_like(c) for c in FALLBACK)
    assert not any(is_event_like(c) for c in NAMED.values())
    many = [f"method {i}" for i in 14 * [0]] + [f"method {i}" for i in range(14)] + ROWS_08
    styles = series_styles(many)
    colours = [s["color"] for s in styles.values()]
    assert len(colours) == len(set(colours)) == 26
    # the same in every figure
    assert series_styles(["mim · conv"])["mim · conv"] == styles["mim · conv"]
    # strategy A0 = tap features, linear head
    assert series_styles(["A0"])["A0"]["color"] == HUES["tap"][1]
