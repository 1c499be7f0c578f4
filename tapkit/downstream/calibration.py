"""Confidence calibration (Guo et al. 2017) as used in paper 001 (Chen et al. 2024, Fig. 5).

A classifier is *calibrated* when, among all pairs it gives an event probability of 0.8,
about 80 % really contain an event. We measure this with the expected calibration error (ECE)
and reliability diagrams, and fix it with *temperature scaling* (the diagrams are drawn by
`tapkit.plot.calibration`): one scalar T > 0 that divides the logits, fitted on the validation split
by minimising the negative log-likelihood (NLL). Dividing by T never changes which class is
predicted, so precision and recall stay the same.

Conventions
-----------
* ``probs`` is either ``(N,)`` -- the probability of class 1 (event) -- or ``(N, C)`` with rows
  summing to one. ``logits`` is ``(N,)`` (one binary logit, sigmoid) or ``(N, C)`` (softmax).
* ECE uses ``n_bins`` equal-width bins on [0, 1]; bin m holds confidences in
  ``[m / n_bins, (m + 1) / n_bins)`` and the last bin also holds 1.0.
  ``ECE = sum_m |B_m| / N * |acc(B_m) - conf(B_m)|`` (the l1 calibration error).
* ``confidence="top-label"`` (default, Guo et al.): the confidence is the probability of the
  predicted class and the accuracy is whether that prediction was right.
  ``confidence="class-1"`` (the paper's diagrams): the confidence is P(event) and the
  "accuracy" of a bin is the fraction of pairs in it that truly hold an event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import expit, log_softmax, softmax

from tapkit.data.movie import InputError

if TYPE_CHECKING:
    import torch

CONFIDENCES = ("top-label", "class-1")


# ----------------------------------------------------------------------------- validation


def as_numbers(x: Any, what: str) -> np.ndarray:
    """A numpy array, list or (GPU) torch tensor of finite numbers as a numpy array; InputError
    names `what`."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{what}: expected numbers, got dtype {arr.dtype}.")
    if arr.size == 0:
        raise InputError(
            f"{what}: is empty. Pass at least one prediction (check your split indices)."
        )
    if not np.isfinite(arr).all():
        raise InputError(f"{what}: contains NaN or inf values; check the model outputs.")
    return arr


def check_labels(labels: Any, n: int, n_classes: int = 2, what: str = "labels") -> np.ndarray:
    """Validate (N,) integer class labels in 0..n_classes-1 and return them as int64."""
    lab = as_numbers(labels, what)
    if lab.ndim != 1 or len(lab) != n:
        raise InputError(
            f"{what}: expected shape ({n},) to match the predictions, got {lab.shape}. "
            "Pass one label per prediction, e.g. result.test_labels for result.test_logits."
        )
    if not np.all(lab == np.round(lab)) or lab.min() < 0 or lab.max() >= n_classes:
        found = np.unique(lab)[:10].tolist()
        raise InputError(
            f"{what}: must be integer classes 0..{n_classes - 1} (0 = no event, 1 = event), "
            f"found values {found}. Convert event codes first, e.g. (labels > 0).astype(int)."
        )
    return lab.astype(np.int64)


def check_probs(probs: Any, what: str = "probs") -> np.ndarray:
    """Validate probabilities: (N,) class-1 probabilities or (N, C) rows summing to 1; float64."""
    p = as_numbers(probs, what).astype(np.float64)
    if p.ndim not in (1, 2) or (p.ndim == 2 and p.shape[1] < 2):
        raise InputError(f"{what}: expected shape (N,) or (N, C) with C >= 2, got {p.shape}.")
    if p.min() < 0 or p.max() > 1:
        raise InputError(
            f"{what}: probabilities must lie in [0, 1], found [{p.min():.3g}, {p.max():.3g}]. "
            "Did you pass logits? Convert them with tapkit.downstream.calibration.to_probs(logits)."
        )
    if p.ndim == 2 and not np.allclose(p.sum(1), 1.0, atol=1e-3):
        raise InputError(
            f"{what}: rows of an (N, C) probability array must sum to 1; use softmax first."
        )
    return p


def check_logits(logits: Any, what: str = "logits") -> np.ndarray:
    """Validate (N,) binary logits or (N, C) class logits and return them as float64."""
    z = as_numbers(logits, what).astype(np.float64)
    if z.ndim not in (1, 2) or (z.ndim == 2 and z.shape[1] < 2):
        raise InputError(f"{what}: expected shape (N,) or (N, C) with C >= 2, got {z.shape}.")
    return z


# ----------------------------------------------------------------------------- probabilities


def to_probs(logits: Any) -> np.ndarray:
    """Logits -> probabilities: sigmoid for (N,) binary logits, softmax for (N, C)."""
    z = check_logits(logits)
    return expit(z) if z.ndim == 1 else softmax(z, axis=1)


def event_probability(x: Any, kind: str = "probs") -> np.ndarray:
    """P(event) (N,) from (N,) / (N, 2) probabilities (kind='probs') or logits ('logits'); 'auto'
    guesses."""
    if kind not in ("auto", "probs", "logits"):
        raise InputError(f"kind must be 'auto', 'probs' or 'logits', got {kind!r}.")
    arr = as_numbers(x, kind if kind != "auto" else "probs_or_logits").astype(np.float64)
    if kind == "auto":
        in_unit = arr.min() >= 0 and arr.max() <= 1
        kind = (
            "probs"
            if in_unit and (arr.ndim == 1 or np.allclose(arr.sum(-1), 1, atol=1e-3))
            else "logits"
        )
    p = check_probs(arr) if kind == "probs" else to_probs(check_logits(arr))
    if p.ndim == 2 and p.shape[1] != 2:
        raise InputError(f"expected binary predictions (N,) or (N, 2), got {p.shape}.")
    return p if p.ndim == 1 else p[:, 1]


def _confidence_and_hit(
    p: np.ndarray, lab: np.ndarray, confidence: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample confidence and 'accuracy' (0/1) under the chosen convention."""
    if confidence not in CONFIDENCES:
        raise InputError(f"confidence must be one of {CONFIDENCES}, got {confidence!r}.")
    if confidence == "class-1":
        if p.ndim == 2 and p.shape[1] != 2:
            raise InputError(
                "confidence='class-1' needs binary predictions: (N,) or (N, 2) probabilities."
            )
        return (p if p.ndim == 1 else p[:, 1]), (lab == 1).astype(np.float64)
    full = np.stack([1 - p, p], axis=1) if p.ndim == 1 else p
    pred = full.argmax(1)  # ties go to class 0, like torch.max / torchmetrics
    return full.max(1), (pred == lab).astype(np.float64)


# ----------------------------------------------------------------------------- metrics


def calibration_bins(
    probs: Any, labels: Any, n_bins: int = 15, confidence: str = "top-label"
) -> dict:
    """Equal-width binning: per bin the mean confidence, the accuracy and the count
    (see module doc)."""
    if int(n_bins) < 1:
        raise InputError(f"n_bins must be a positive integer, got {n_bins}.")
    p = check_probs(probs)
    lab = check_labels(labels, len(p), n_classes=2 if p.ndim == 1 else p.shape[1])
    conf, hit = _confidence_and_hit(p, lab, confidence)
    idx = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)  # (N,) bin of each sample
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    safe = np.maximum(count, 1)
    return dict(
        edges=np.linspace(0.0, 1.0, n_bins + 1),
        confidence=np.bincount(idx, weights=conf, minlength=n_bins) / safe,
        accuracy=np.bincount(idx, weights=hit, minlength=n_bins) / safe,
        count=count.astype(np.int64),
    )


def expected_calibration_error(
    probs: Any, labels: Any, n_bins: int = 15, confidence: str = "top-label"
) -> float:
    """ECE: count-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    b = calibration_bins(probs, labels, n_bins=n_bins, confidence=confidence)
    weight = b["count"] / b["count"].sum()
    return float(np.sum(weight * np.abs(b["accuracy"] - b["confidence"])))


def negative_log_likelihood(logits: Any, labels: Any) -> float:
    """Mean negative log-likelihood (cross-entropy) of the true labels under the logits."""
    z = check_logits(logits)
    lab = check_labels(labels, len(z), n_classes=2 if z.ndim == 1 else z.shape[1])
    if z.ndim == 1:
        z = np.stack([np.zeros_like(z), z], axis=1)  # sigmoid(z) == softmax([0, z])[1]
    return float(-log_softmax(z, axis=1)[np.arange(len(z)), lab].mean())


# ----------------------------------------------------------------------------- temperature scaling


def apply_temperature(logits: Any, temperature: float) -> np.ndarray:
    """Divide the logits by the temperature T > 0 (T > 1 softens, T < 1 sharpens)."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise InputError(f"temperature must be a positive number, got {temperature}.")
    return check_logits(logits) / float(temperature)


def _nll_torch(log_t: "torch.Tensor", z: "torch.Tensor", lab: "torch.Tensor") -> "torch.Tensor":
    """NLL of logits z / exp(log_t); z is (N,) binary or (N, C)."""
    import torch.nn.functional as F

    scaled = z / log_t.exp()
    if z.ndim == 1:
        return F.binary_cross_entropy_with_logits(scaled, lab.to(z.dtype))
    return F.cross_entropy(scaled, lab)


def fit_temperature(
    val_logits: Any,
    val_labels: Any,
    max_iter: int = 100,
    bounds: tuple[float, float] = (0.01, 100.0),
) -> float:
    """Fit one temperature T on validation logits by minimising NLL (LBFGS on log T, so T > 0).

    The result is clipped to ``bounds`` (perfectly separated validation data would otherwise
    push T to 0) and falls back to T = 1 if fitting did not lower the validation NLL.
    """
    import torch

    z_np = check_logits(val_logits, "val_logits")
    lab_np = check_labels(
        val_labels, len(z_np), 2 if z_np.ndim == 1 else z_np.shape[1], "val_labels"
    )
    z = torch.as_tensor(z_np, dtype=torch.float64)  # tiny problem: CPU float64 on any machine
    lab = torch.as_tensor(lab_np)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=int(max_iter), line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = _nll_torch(log_t, z, lab)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(np.clip(np.exp(log_t.item()), *bounds)) if np.isfinite(log_t.item()) else 1.0
    with torch.no_grad():
        before = _nll_torch(torch.zeros((), dtype=torch.float64), z, lab).item()
        after = _nll_torch(torch.tensor(np.log(t), dtype=torch.float64), z, lab).item()
    return t if after <= before else 1.0


def prior_shift(logits: Any, train_prior: float = 0.5, target_prior: float = 0.5) -> np.ndarray:
    """Move logits from the class-1 frequency seen in training to the one met in use (Bayes' rule).

    A head trained on a *balanced* set (train_prior=0.5) over-predicts events on data where only a
    fraction target_prior of pairs hold one; adding log-odds(target) - log-odds(train) to the event
    logit fixes this bias, which no temperature can (dividing by T keeps P = 0.5 where it is).
    """
    for name, prior in (("train_prior", train_prior), ("target_prior", target_prior)):
        if not 0 < prior < 1:
            raise InputError(f"prior_shift: {name} must lie strictly between 0 and 1, got {prior}.")
    z = check_logits(logits).copy()
    if z.ndim == 2 and z.shape[1] != 2:
        raise InputError(f"prior_shift: needs binary logits (N,) or (N, 2), got {z.shape}.")
    shift = np.log(target_prior / (1 - target_prior)) - np.log(train_prior / (1 - train_prior))
    if z.ndim == 1:
        return z + shift
    z[:, 1] += shift  # (N, 2): only the event logit moves
    return z


def calibration_report(
    val_logits: Any,
    val_labels: Any,
    test_logits: Any,
    test_labels: Any,
    n_bins: int = 15,
    confidence: str = "top-label",
) -> dict[str, float]:
    """Fit T on validation logits; ECE and NLL before/after on the val and test splits."""
    z_test = check_logits(test_logits, "test_logits")
    check_labels(
        test_labels, len(z_test), 2 if z_test.ndim == 1 else z_test.shape[1], "test_labels"
    )
    t = fit_temperature(val_logits, val_labels)
    report: dict[str, float] = {"temperature": t}
    for split, z, lab in (("val", val_logits, val_labels), ("test", test_logits, test_labels)):
        for when, temp in (("before", 1.0), ("after", t)):
            scaled = apply_temperature(z, temp)
            report[f"{split}_ece_{when}"] = expected_calibration_error(
                to_probs(scaled), lab, n_bins=n_bins, confidence=confidence
            )
            report[f"{split}_nll_{when}"] = negative_log_likelihood(scaled, lab)
    return report


# ----------------------------------------------------------------------------- human in the loop


def triage(probs: Any, threshold: float = 0.1, labels: Any = None) -> dict[str, float]:
    """Send every pair with P(event) >= threshold to a person; predict how many events slip through.

    With calibrated probabilities the expected number of missed events is the sum of P(event)
    over the pairs nobody looks at -- an estimate that needs no labels. With ``labels`` the true
    count and the recall of the review queue are reported as well.
    """
    p1 = event_probability(probs)
    if not 0 <= threshold <= 1:
        raise InputError(f"triage: threshold must be in [0, 1], got {threshold}.")
    review = p1 >= threshold
    out = dict(
        threshold=float(threshold),
        n_review=int(review.sum()),
        fraction_review=float(review.mean()),
        expected_missed=float(p1[~review].sum()),
    )
    if labels is not None:
        lab = check_labels(labels, len(p1))
        out["missed"] = int(((lab == 1) & ~review).sum())
        out["recall"] = float(((lab == 1) & review).sum() / max(int((lab == 1).sum()), 1))
    return out


def pairs_to_check(probs: Any, labels: Any, recall: float = 0.9) -> dict[str, float]:
    """How many pairs (most likely first) a person must check to find ``recall`` of all events."""
    p1 = event_probability(probs)
    lab = check_labels(labels, len(p1))
    if not 0 < recall <= 1:
        raise InputError(f"pairs_to_check: recall must be in (0, 1], got {recall}.")
    n_pos = int(lab.sum())
    if n_pos == 0:
        raise InputError(
            "pairs_to_check: the labels hold no events (class 1), so recall is undefined."
        )
    order = np.argsort(-p1, kind="stable")  # most likely event first
    found = np.cumsum(lab[order])
    n = int(np.searchsorted(found, int(np.ceil(recall * n_pos))) + 1)
    return dict(
        recall=float(recall),
        n_check=n,
        fraction_check=n / len(p1),
        threshold=float(p1[order[n - 1]]),
    )
