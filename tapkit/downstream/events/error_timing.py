"""When and what does the event classifier get wrong? (paper 001, Chen et al. 2024, Figs. 3-4).

``error_timing`` counts true/false positives/negatives per time index of the test pairs and turns
each count into a *share*: the count at time t divided by the total of that category over the whole
movie, so that the curves of different categories are comparable distributions over time.
``worst_mistakes`` and ``plot_mistakes`` show the most confident wrong predictions as a gallery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tapkit.downstream.calibration import _numpy, check_labels, check_logits, check_probs, to_probs
from tapkit.data.movie import InputError

if TYPE_CHECKING:
    import matplotlib.figure

CATEGORIES = ("tp", "fp", "fn", "tn", "pos", "neg")
CATEGORY_NAMES = dict(tp="true positives", fp="false positives", fn="false negatives",
                      tn="true negatives", pos="ground-truth positives", neg="ground-truth negatives")


def _check_times(t: Any, n: int, n_frames: int | None) -> tuple[np.ndarray, int]:
    """Validate (N,) non-negative integer time indices; return them and the number of frames."""
    times = _numpy(t, "t")
    if times.ndim != 1 or len(times) != n:
        raise InputError(f"t: expected shape ({n},), one time index per prediction, got {times.shape}.")
    if not np.all(times == np.round(times)) or times.min() < 0:
        raise InputError("t: time indices must be non-negative integers (the frame of each crop pair).")
    times = times.astype(np.int64)
    n_frames = int(times.max()) + 1 if n_frames is None else int(n_frames)
    if times.max() >= n_frames:
        raise InputError(f"t: found time index {times.max()} but n_frames={n_frames}; raise n_frames.")
    return times, n_frames


def error_timing(t: Any, y_true: Any, y_pred: Any, n_frames: int | None = None) -> dict[str, np.ndarray]:
    """Per time index: counts of tp/fp/fn/tn/pos/neg and their shares (count at t / total over t)."""
    truth = check_labels(y_true, len(_numpy(y_true, "y_true")), what="y_true")
    pred = check_labels(y_pred, len(truth), what="y_pred")
    times, n_frames = _check_times(t, len(truth), n_frames)
    masks = dict(tp=(truth == 1) & (pred == 1), fp=(truth == 0) & (pred == 1),
                 fn=(truth == 1) & (pred == 0), tn=(truth == 0) & (pred == 0),
                 pos=truth == 1, neg=truth == 0)
    out: dict[str, np.ndarray] = {"t": np.arange(n_frames)}
    for key, m in masks.items():
        count = np.bincount(times[m], minlength=n_frames)  # (n_frames,)
        out[key] = count
        out[f"{key}_share"] = count / max(int(count.sum()), 1)
    return out


def plot_error_timing(timing: dict[str, np.ndarray], title: str | None = None) -> "matplotlib.figure.Figure":
    """Two panels like paper 001 Figs. 3 and 4: FP vs TP vs GT positives; FN vs TN vs GT negatives."""
    import matplotlib.pyplot as plt

    missing = [k for k in ("t",) + tuple(f"{c}_share" for c in CATEGORIES) if k not in timing]
    if missing:
        raise InputError(f"plot_error_timing: pass the dict returned by error_timing(); missing {missing}.")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharex=True)
    panels = ((("fp", "tab:red"), ("tp", "tab:green"), ("pos", "k")),
              (("fn", "tab:orange"), ("tn", "tab:blue"), ("neg", "k")))
    for ax, panel in zip(axes, panels):
        for key, color in panel:
            total = int(np.sum(timing[key]))
            ax.plot(timing["t"], 100 * timing[f"{key}_share"], color=color, marker=".",
                    ls="--" if key in ("pos", "neg") else "-", label=f"{CATEGORY_NAMES[key]} (n={total})")
        ax.set(xlabel="time index t of the pair", ylabel="% of the category's total")
        ax.legend(fontsize=8)
    axes[0].set_title("false positives over time")
    axes[1].set_title("false negatives over time")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _event_prob(probs_or_logits: Any, kind: str) -> np.ndarray:
    """P(event) (N,) from (N, 2) / (N,) probabilities or logits; kind 'auto' guesses."""
    if kind not in ("auto", "probs", "logits"):
        raise InputError(f"kind must be 'auto', 'probs' or 'logits', got {kind!r}.")
    arr = _numpy(probs_or_logits, "probs_or_logits").astype(np.float64)
    if kind == "auto":
        in_unit = arr.min() >= 0 and arr.max() <= 1
        kind = "probs" if in_unit and (arr.ndim == 1 or np.allclose(arr.sum(-1), 1, atol=1e-3)) else "logits"
    p = check_probs(arr) if kind == "probs" else to_probs(check_logits(arr))
    if p.ndim == 2 and p.shape[1] != 2:
        raise InputError(f"expected binary predictions (N,) or (N, 2), got {p.shape}.")
    return p if p.ndim == 1 else p[:, 1]


def worst_mistakes(probs_or_logits: Any, y_true: Any, k: int = 8, kind: str = "auto") -> dict[str, np.ndarray]:
    """Indices of the k most confident false positives (highest P(event)) and false negatives (lowest)."""
    p1 = _event_prob(probs_or_logits, kind)
    truth = check_labels(y_true, len(p1), what="y_true")
    pred = (p1 > 0.5).astype(np.int64)  # same rule as argmax of (N, 2); ties -> no event
    fp = np.flatnonzero((truth == 0) & (pred == 1))
    fn = np.flatnonzero((truth == 1) & (pred == 0))
    return dict(false_positives=fp[np.argsort(-p1[fp], kind="stable")][:k],
                false_negatives=fn[np.argsort(p1[fn], kind="stable")][:k])


def _draw_crop(ax: Any, image: np.ndarray, mask: np.ndarray | None, title: str) -> None:
    """One (S, S) crop in grey with the division (cyan) and death (magenta) mask contours."""
    ax.imshow(image, cmap="gray", vmin=float(np.percentile(image, 1)), vmax=float(np.percentile(image, 99.8)))
    if mask is not None:
        for code, color in ((1, "cyan"), (2, "magenta")):
            if (mask == code).any():
                ax.contour(mask == code, levels=[0.5], colors=color, linewidths=1)
    ax.set_title(title, fontsize=7)
    ax.set_axis_off()


def plot_mistakes(pairs: Any, idx: Any, probs: Any, ncols: int = 4, title: str | None = None) -> "matplotlib.figure.Figure":
    """Gallery of crop pairs: frame t and t+delta side by side, event-mask contours, P(event) on top.

    ``pairs`` is a ``tapkit.downstream.events.crops.CropPairs``; ``idx`` indexes into it; ``probs`` holds the
    event probability of each shown pair (same length as ``idx``). Contours: cyan = division,
    magenta = death.
    """
    import matplotlib.pyplot as plt

    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    p1 = _numpy(probs, "probs").reshape(-1) if len(idx) else np.zeros(0)
    if len(p1) != len(idx):
        raise InputError(f"plot_mistakes: got {len(idx)} indices but {len(p1)} probabilities; pass probs[idx].")
    if len(idx) and (idx.min() < 0 or idx.max() >= len(pairs.images)):
        raise InputError(f"plot_mistakes: indices must lie in 0..{len(pairs.images) - 1} (indices into pairs).")
    n_rows = max(1, int(np.ceil(len(idx) / ncols)))
    fig, axes = plt.subplots(n_rows, 2 * ncols, figsize=(2 * ncols * 1.3, n_rows * 1.6), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    delta = getattr(pairs, "delta", 1)
    for k, (i, p) in enumerate(zip(idx, p1)):
        row, col = divmod(k, ncols)
        masks = getattr(pairs, "masks", None)
        for j in range(2):
            t0 = int(pairs.t[i])
            label = f"#{i}  t={t0}" if j == 0 else f"t={t0 + delta}  P(event)={p:.2f}"
            _draw_crop(axes[row, 2 * col + j], pairs.images[i, j], None if masks is None else masks[i, j], label)
    if not len(idx):
        axes[0, 0].text(0, 0.5, "no mistakes of this kind", transform=axes[0, 0].transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_result_mistakes(result: Any, pairs: Any, which: str = "false_positives", k: int = 8) -> "matplotlib.figure.Figure":
    """The k most confident mistakes of a ``run_strategy`` result on its test split, as a gallery."""
    if which not in ("false_positives", "false_negatives"):
        raise InputError(f"which must be 'false_positives' or 'false_negatives', got {which!r}.")
    p1 = _event_prob(result.test_logits, "logits")
    sel = worst_mistakes(p1, result.test_labels, k=k, kind="probs")[which]
    title = f"{getattr(result, 'strategy', '')}: most confident {which.replace('_', ' ')}".strip(": ")
    return plot_mistakes(pairs, np.asarray(result.test_index)[sel], p1[sel], title=title)
