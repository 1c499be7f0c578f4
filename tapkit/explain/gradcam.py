"""Grad-CAM for the time arrow: which regions of a frame pair made the model call the order?

For a pair in true order (t, t+1) the network gives logits (2,) per slot; slot 0 holding the earlier
frame is the correct answer. Grad-CAM (Selvaraju et al. 2017) on the dense projection features z
(2 frames x F channels, the layer used by the reference TAP code):

    g = d logit[slot 0] / d z            (2, F, Y, X)
    w[t, c] = sum_yx g[t, c]             per-channel weights ("sum", as the reference; or "mean")
    cam = | sum_{t, c} w[t, c] z[t, c] |  (Y, X)

`frames="pair"` (default) treats the pair's features as one stack of 2F channels: what stays the
same in both frames cancels and what changed (divisions, deaths, movement) stands out.
`frames="t"` uses only frame t's features, like the reference's default (`all_frames=False`).
The reference takes the absolute value, not the ReLU of the original Grad-CAM (`absolute=False`).
Figures of these results are in `tapkit.plot.gradcam`. Gradients are computed in float32 (no AMP):
per-pixel gradients of a spatially averaged logit are tiny and would underflow in float16.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from scipy import ndimage as ndi
from tqdm.auto import tqdm

from tapkit.ssl.features import model_device, pad_to_multiple, pool_multiple, tile_windows
from tapkit.data.movie import (
    DIVISION,
    InputError,
    Movie,
    as_movie,
    check_images,
    normalize as normalize_frames,
)

__all__ = [
    "gradcam",
    "top_regions",
    "event_enrichment",
    "gradcam_movie",
    "box_fractions",
    "event_mask",
    "max_regions",
]

Region = tuple[int, int, float]  # (y, x, score): centre of an inset and its smoothed Grad-CAM value


# ----------------------------------------------------------------------------------------------
# Grad-CAM
# ----------------------------------------------------------------------------------------------
def _pair_array(frame_t: Any, frame_t1: Any, normalize: bool) -> np.ndarray:
    """Validate two (Y, X) frames; return float32 (2, Y, X), percentile-normalised per frame as in
    training."""
    a, b = (
        np.asarray(f.detach().cpu() if isinstance(f, torch.Tensor) else f)
        for f in (frame_t, frame_t1)
    )
    if a.ndim != 2 or a.shape != b.shape:
        raise InputError(
            f"gradcam: expected two (Y, X) frames of the same shape, got {a.shape} and {b.shape}. "
            "Pass single frames, e.g. movie.images[t], movie.images[t + 1]."
        )
    pair = check_images(np.stack([a, b]), what="gradcam: frame pair")
    return normalize_frames(pair, per_frame=True) if normalize else pair


def _grads_and_features(
    model: torch.nn.Module, pair: np.ndarray, dev: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of logit[slot 0] w.r.t. z and z itself for one (2, y, x) pair: both (2, F, y, x) on
    the CPU."""
    x = torch.from_numpy(np.ascontiguousarray(pair))[None, :, None].to(dev)  # (1, 2, 1, y, x)
    # builds the graph even when the weights are frozen (requires_grad=False)
    x.requires_grad_(True)
    with torch.enable_grad():
        logits, z = model(x)  # (1, 2), (1, 2, F, y, x)
        (grad,) = torch.autograd.grad(logits[0, 0], z)
    return grad[0].float().cpu(), z[0].detach().float().cpu()


def _stitched(
    model: torch.nn.Module, pair: np.ndarray, dev: torch.device, tile: "int | None", overlap: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients and features (2, F, Y, X) of a whole pair; tiles (centres kept) when larger than
    `tile`."""
    ny, nx = pair.shape[1:]
    if tile is None or (ny <= tile and nx <= tile):
        return _grads_and_features(model, pair, dev)
    multiple = pool_multiple(model)
    padded = pad_to_multiple(pair, multiple)
    grad = feat = None
    for sy, sx, ky, kx in tile_windows(padded.shape[1:], tile, overlap, multiple):
        g, a = _grads_and_features(model, padded[:, sy, sx], dev)
        if grad is None:
            grad = torch.zeros(g.shape[:2] + padded.shape[1:])  # (2, F, Y', X')
            feat = torch.zeros_like(grad)
        grad[:, :, sy, sx][:, :, ky, kx] = g[:, :, ky, kx]
        feat[:, :, sy, sx][:, :, ky, kx] = a[:, :, ky, kx]
    return grad[..., :ny, :nx], feat[..., :ny, :nx]


def gradcam(
    model: torch.nn.Module,
    frame_t: Any,
    frame_t1: Any,
    absolute: bool = True,
    reduce: str = "sum",
    tile: "int | None" = None,
    overlap: int = 32,
    frames: str = "pair",
    normalize: bool = True,
    device: "str | torch.device | None" = None,
) -> np.ndarray:
    """Grad-CAM map (Y, X) of the correct time arrow for frames (t, t+1); |.| as the reference
    (ReLU if absolute=False)."""
    if reduce not in ("sum", "mean"):
        raise InputError(f"gradcam: reduce={reduce!r} must be 'sum' (as the reference) or 'mean'.")
    if frames not in ("pair", "t"):
        raise InputError(
            f"gradcam: frames={frames!r} must be 'pair' (features of both frames) or 't' "
            "(frame t only)."
        )
    pair = _pair_array(frame_t, frame_t1, normalize)  # (2, Y, X)
    dev = model_device(model, device)
    model = model.to(dev)
    was_training = model.training
    model.eval()
    try:
        grad, feat = _stitched(model, pair, dev, tile, overlap)  # (2, F, Y, X) each
    finally:
        model.train(was_training)
    weights = grad.sum(dim=(-2, -1)) if reduce == "sum" else grad.mean(dim=(-2, -1))  # (2, F)
    per_frame = torch.einsum("tc,tcyx->tyx", weights, feat)  # (2, Y, X)
    cam = per_frame.sum(0) if frames == "pair" else per_frame[0]  # (Y, X)
    cam = cam.abs() if absolute else cam.clamp(min=0)
    return cam.numpy().astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Top regions
# ----------------------------------------------------------------------------------------------
def _check_map(cam: Any, inset: int, border: int, what: str = "cam") -> np.ndarray:
    """Validate a (Y, X) map and the inset/border sizes; return it as float64."""
    arr = np.asarray(cam, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(
            f"{what}: expected a (Y, X) map, got shape {arr.shape}. For a movie pass one frame's "
            "map."
        )
    if not np.isfinite(arr).all():
        raise InputError(f"{what}: the map contains NaN/inf; replace them (np.nan_to_num) first.")
    if inset < 2 or border < 0:
        raise InputError(f"inset={inset} must be >= 2 and border={border} >= 0 (pixels).")
    if min(arr.shape) <= 2 * border:
        raise InputError(
            f"{what}: a {arr.shape} map leaves nothing inside a border of {border} px; "
            f"use a smaller inset (now {inset}) or border."
        )
    return arr


def top_regions(
    cam: Any,
    k: int = 8,
    inset: int = 48,
    border: "int | None" = None,
    smooth: "float | None" = None,
) -> list[Region]:
    """The k strongest peaks (y, x, score) of a Grad-CAM map, at least inset/2 apart and inset/2
    from the border.

    The map is smoothed (Gaussian, sigma = inset/8 unless `smooth` is given); peaks are local maxima
    (`scipy.ndimage.maximum_filter`), taken strongest first; each suppresses all candidates in the
    square of half-width inset/2 around it, so any two regions' centres differ by >= inset/2 in y or
    x.
    """
    border = inset // 2 if border is None else int(border)
    arr = _check_map(cam, inset, border)
    if k < 1:
        raise InputError(f"top_regions: k={k} must be >= 1.")
    sm = ndi.gaussian_filter(arr, sigma=inset / 8 if smooth is None else smooth)
    size = max(3, inset // 4 | 1)
    score = np.where(sm == ndi.maximum_filter(sm, size=size), sm, -np.inf)
    score[:border], score[score.shape[0] - border :] = -np.inf, -np.inf
    score[:, :border], score[:, score.shape[1] - border :] = -np.inf, -np.inf
    half, regions = (inset + 1) // 2, []
    for _ in range(k):
        y, x = np.unravel_index(int(np.argmax(score)), score.shape)
        if not np.isfinite(score[y, x]):
            break  # fewer than k peaks
        regions.append((int(y), int(x), float(sm[y, x])))
        score[max(0, y - half + 1) : y + half, max(0, x - half + 1) : x + half] = -np.inf
    return regions


# ----------------------------------------------------------------------------------------------
# Enrichment of events in the top regions
# ----------------------------------------------------------------------------------------------
def box_fractions(mask: np.ndarray, ys: np.ndarray, xs: np.ndarray, inset: int) -> np.ndarray:
    """Fraction of True pixels of `mask` (Y, X) in inset x inset boxes centred at (ys, xs), via an
    integral image."""
    sat = np.pad(mask.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # (Y+1, X+1)
    y0 = np.clip(np.asarray(ys) - inset // 2, 0, mask.shape[0])
    x0 = np.clip(np.asarray(xs) - inset // 2, 0, mask.shape[1])
    y1, x1 = np.minimum(y0 + inset, mask.shape[0]), np.minimum(x0 + inset, mask.shape[1])
    total = sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]
    return total / np.maximum((y1 - y0) * (x1 - x0), 1)


def _as_regions(
    cam_or_regions: Any, shape: tuple[int, ...], k: int, inset: int, border: int
) -> list[Region]:
    """A Grad-CAM map becomes its top-k regions; a list of (y, x[, score]) is used as it is."""
    if isinstance(cam_or_regions, (list, tuple)) and (
        len(cam_or_regions) == 0 or np.ndim(cam_or_regions[0]) == 1
    ):
        return [
            (int(r[0]), int(r[1]), float(r[2]) if len(r) > 2 else float("nan"))
            for r in cam_or_regions
        ]
    cam = np.asarray(cam_or_regions)
    if cam.shape != shape:
        raise InputError(
            f"event_enrichment: the map has shape {cam.shape} but the event mask {shape}; "
            "use the event mask of the same frame (e.g. movie.events[t])."
        )
    return top_regions(cam, k=k, inset=inset, border=border)


def event_enrichment(
    cam_or_regions: Any,
    event_mask: Any,
    inset: int = 48,
    k: int = 8,
    n_random: int = 1000,
    seed: int = 0,
    border: "int | None" = None,
) -> dict[str, Any]:
    """How much denser events are in the top-k Grad-CAM regions than in random regions of the same
    size.

    enrichment = mean event fraction of the top regions / mean event fraction of `n_random` random
    boxes (centres uniform over the same area, i.e. skipping the same border). 1 means "no better
    than chance"; NaN when the random boxes see no event pixels at all. `hit_rate` is the fraction
    of top regions holding any event pixel, `hit_rate_random` the same for random boxes.
    """
    mask = np.asarray(event_mask)
    if mask.ndim != 2:
        raise InputError(
            f"event_enrichment: event_mask must be one (Y, X) frame, got shape {mask.shape}; "
            "e.g. movie.events[t] > 0 or movie.events[t] == tapkit.DIVISION."
        )
    border = inset // 2 if border is None else int(border)
    _check_map(np.zeros(mask.shape), inset, border, what="event_enrichment")
    if n_random < 1:
        raise InputError(f"event_enrichment: n_random={n_random} must be >= 1.")
    regions, mask = _as_regions(cam_or_regions, mask.shape, k, inset, border), mask > 0
    rng = np.random.default_rng(seed)
    ry = rng.integers(border, mask.shape[0] - border, n_random)
    rx = rng.integers(border, mask.shape[1] - border, n_random)
    rand = box_fractions(mask, ry, rx, inset)
    top = box_fractions(
        mask, np.array([r[0] for r in regions], int), np.array([r[1] for r in regions], int), inset
    )
    frac_top = float(top.mean()) if len(top) else float("nan")
    frac_rand = float(rand.mean())
    return dict(
        enrichment=frac_top / frac_rand if frac_rand > 0 else float("nan"),
        frac_top=frac_top,
        frac_random=frac_rand,
        hit_rate=float((top > 0).mean()) if len(top) else float("nan"),
        hit_rate_random=float((rand > 0).mean()),
        region_fractions=top.tolist(),
        regions=regions,
        n_regions=len(regions),
    )


# ----------------------------------------------------------------------------------------------
# Several frame pairs of a movie
# ----------------------------------------------------------------------------------------------
def event_mask(movie: Movie, t: int, event_class: "int | None") -> "np.ndarray | None":
    """Events of the pair (t, t+1): `event_class` pixels (any event if None) in either frame."""
    if movie.events is None:
        return None
    ev = movie.events[t : t + 2]
    hit = ev > 0 if event_class is None else ev == event_class
    return hit.any(0)


def _pick_frames(movie: Movie, n_frames: int, event_class: "int | None") -> list[int]:
    """Evenly spaced t (pair t, t+1), among pairs that contain events when the movie has any."""
    candidates = np.arange(len(movie) - 1)
    if movie.events is not None:
        with_events = [t for t in candidates if event_mask(movie, int(t), event_class).any()]
        candidates = np.array(with_events) if with_events else candidates
    picks = np.linspace(0, len(candidates) - 1, min(n_frames, len(candidates))).round().astype(int)
    return sorted({int(candidates[i]) for i in picks})


def gradcam_movie(
    model: torch.nn.Module,
    movie: "Movie | np.ndarray",
    frames: "Sequence[int] | None" = None,
    n_frames: int = 4,
    k: int = 8,
    inset: int = 48,
    event_class: "int | None" = DIVISION,
    seed: int = 0,
    **gradcam_kw: Any,
) -> dict[str, Any]:
    """Grad-CAM on several pairs (t, t+1) and the event enrichment of their top-k regions, averaged
    over pairs.

    `frames` default: `n_frames` evenly spaced t among the pairs that hold events of `event_class`
    (DIVISION by default; None = any event). Returns frames, cams (n, Y, X), regions per pair,
    per-pair enrichment dicts and their means (`enrichment`, `hit_rate`, `hit_rate_random`).
    """
    movie = as_movie(movie)
    frames = (
        _pick_frames(movie, n_frames, event_class) if frames is None else [int(t) for t in frames]
    )
    bad = [t for t in frames if not 0 <= t < len(movie) - 1]
    if bad or not frames:
        raise InputError(
            f"gradcam_movie: frames {bad or frames} are not valid pair starts; use "
            f"0 <= t <= {len(movie) - 2}."
        )
    cams, regions, per_pair = [], [], []
    for t in tqdm(frames, desc="Grad-CAM", unit="pair"):
        cam = gradcam(model, movie.images[t], movie.images[t + 1], **gradcam_kw)
        cams.append(cam)
        regions.append(top_regions(cam, k=k, inset=inset))
        mask = event_mask(movie, t, event_class)
        if mask is not None:
            per_pair.append(event_enrichment(regions[-1], mask, inset=inset, k=k, seed=seed + t))
    means = {
        key: _nanmean([p[key] for p in per_pair])
        for key in ("enrichment", "hit_rate", "hit_rate_random")
    }
    return dict(frames=frames, cams=np.stack(cams), regions=regions, per_pair=per_pair, **means)


def _nanmean(values: Sequence[float]) -> float:
    """Mean of the finite values, NaN when there are none."""
    arr = np.asarray(values, dtype=float)
    return float(arr[np.isfinite(arr)].mean()) if np.isfinite(arr).any() else float("nan")


def max_regions(shape: tuple[int, int], inset: int) -> int:
    """How many top regions fit in a (Y, X) map: centres half an inset apart and from the border."""
    ny, nx = (max(0, n - inset) // max(1, inset // 2) + 1 for n in shape)
    return ny * nx
