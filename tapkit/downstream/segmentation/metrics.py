"""Scores of dense binary predictions: soft Dice (the loss), Dice and IoU of masks, object matching,
flicker.

Soft Dice is the V-Net form 2 sum(p t) / (sum p^2 + sum t^2): it equals the Dice of binary masks and
is exactly 1 for two identical soft predictions (so the consistency loss 1 - soft Dice is 0 for
them). Objects are connected components per frame (scipy.ndimage.label), matched one-to-one by IoU
(scipy.optimize.linear_sum_assignment) with IoU >= 0.5 a hit, as in the StarDist / CTC detection
scores.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage, optimize

EPS = 1e-6


def soft_dice(p: torch.Tensor, t: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Soft Dice of probabilities p and targets t (any equal shapes), over all elements: a scalar in
    [0, 1]."""
    p, t = p.float(), t.float()
    return (2 * (p * t).sum() + eps) / ((p * p).sum() + (t * t).sum() + eps)


def soft_dice_loss(p: torch.Tensor, t: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """1 - soft Dice: 0 when p equals t."""
    return 1 - soft_dice(p, t, eps)


def _binary(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two boolean arrays of the same shape (ValueError otherwise)."""
    pred, true = np.asarray(pred) > 0, np.asarray(true) > 0
    if pred.shape != true.shape:
        raise ValueError(
            f"prediction {pred.shape} and ground truth {true.shape} must have the same shape."
        )
    return pred, true


def dice(pred: np.ndarray, true: np.ndarray) -> float:
    """Dice (= pixel F1) of two binary masks pooled over all pixels; 1.0 when both are empty."""
    pred, true = _binary(pred, true)
    total = pred.sum() + true.sum()
    return 1.0 if total == 0 else float(2 * (pred & true).sum() / total)


def iou(pred: np.ndarray, true: np.ndarray) -> float:
    """Intersection over union (Jaccard) of two binary masks; 1.0 when both are empty."""
    pred, true = _binary(pred, true)
    union = (pred | true).sum()
    return 1.0 if union == 0 else float((pred & true).sum() / union)


def match_frame(pred: np.ndarray, true: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of the connected components of one (Y, X)
    frame."""
    lp, n_p = ndimage.label(pred)
    lt, n_t = ndimage.label(true)
    if n_p == 0 or n_t == 0:
        return 0, n_p, n_t
    overlap = np.zeros((n_t + 1, n_p + 1), np.int64)  # (true id, pred id) pixel counts
    np.add.at(overlap, (lt.ravel(), lp.ravel()), 1)
    inter = overlap[1:, 1:]
    union = overlap[1:, :].sum(1, keepdims=True) + overlap[:, 1:].sum(0, keepdims=True) - inter
    scores = inter / union  # (n_t, n_p) IoU
    rows, cols = optimize.linear_sum_assignment(-scores)
    tp = int((scores[rows, cols] >= threshold).sum())
    return tp, n_p - tp, n_t - tp


def object_scores(pred: np.ndarray, true: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Object precision, recall and F1 (and counts) of binary (Y, X) or (T, Y, X) masks, frames
    matched separately."""
    pred, true = _binary(pred, true)
    frames = zip(pred.reshape(-1, *pred.shape[-2:]), true.reshape(-1, *true.shape[-2:]))
    tp, fp, fn = np.sum([match_frame(p, t, threshold) for p, t in frames], axis=0).tolist()
    precision = tp / (tp + fp) if tp + fp else float(fn == 0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def stable_regions(
    labels: np.ndarray, events: "np.ndarray | None" = None, margin: int = 2
) -> np.ndarray:
    """Per consecutive pair (t, t+1): pixels of cells present in both frames and in no event, grown
    by `margin` px.

    labels (T, Y, X) instance ids (the same id = the same cell in both frames), events (T, Y, X) or
    None. Returns (T - 1, Y, X) bool: where a good segmentation should not change from t to t + 1.
    """
    labels = np.asarray(labels)
    out = np.zeros((len(labels) - 1,) + labels.shape[1:], bool)
    for t in range(len(labels) - 1):
        ids = np.intersect1d(np.unique(labels[t]), np.unique(labels[t + 1]))
        if events is not None:
            busy = np.union1d(
                np.unique(labels[t][events[t] > 0]), np.unique(labels[t + 1][events[t + 1] > 0])
            )
            ids = np.setdiff1d(ids, busy)
        ids = ids[ids > 0]
        region = np.isin(labels[t], ids) | np.isin(labels[t + 1], ids)
        out[t] = ndimage.binary_dilation(region, iterations=margin) if margin else region
    return out


def flicker(pred: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Temporal flicker per pair: 1 - Dice(pred[t], pred[t+1]) inside regions[t]; (T - 1,) in
    [0, 1].

    pred (T, Y, X) binary predictions of consecutive frames, regions (T - 1, Y, X) from
    `stable_regions`.
    """
    pred = np.asarray(pred) > 0
    if regions.shape != (len(pred) - 1,) + pred.shape[1:]:
        raise ValueError(
            f"regions {regions.shape} must be (T - 1, Y, X) for predictions {pred.shape}."
        )
    return np.array([1 - dice(pred[t] & r, pred[t + 1] & r) for t, r in enumerate(regions)])
