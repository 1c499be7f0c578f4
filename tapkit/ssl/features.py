"""Dense features of the shared encoder (`model.embed`, any pretext task) for whole frames, tiled
when large.

    movie (T, Y, X) --per-frame percentile normalisation--> tiles (N, 1, tile, tile)
        --model.embed (eval mode, no grad, AMP on CUDA)--> (N, F, tile, tile)
        --keep centres--> (T, F, Y, X)

Tiles start on multiples of 2**n_depth, so the U-Net's max-pooling grid is the same as for the
whole frame, and neighbouring tiles overlap by at least `2 * overlap` pixels; each output pixel is
taken from the tile where it lies farthest from the tile border ("keep the centre"). With an
`overlap` at least as large as the network's receptive-field radius the tiled features equal the
untiled ones up to float rounding.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from tapkit.runtime import autocast, pick_device
from tapkit.data.movie import InputError, Movie, check_images, normalize as normalize_frames
from tapkit.ssl.pretext import PretextModel
from tapkit.validate import whole

__all__ = [
    "embed",
    "calibrate_batchnorm",
    "prepare_frames",
    "pool_multiple",
    "tile_windows",
    "pad_to_multiple",
    "model_device",
]

# (source y, source x) in the frame, (keep y, keep x) in the tile
Window = tuple[slice, slice, slice, slice]


def pool_multiple(model: PretextModel) -> int:
    """2**n_depth of the model's U-Net: tiles must start on multiples of it."""
    return 2 ** int(model.config["n_depth"])


def model_device(
    model: torch.nn.Module, device: "str | torch.device | None" = None
) -> torch.device:
    """The device to run on: `device` if given (then the model moves there), else the model's
    own."""
    if device is not None:
        return pick_device(device, verbose=False)
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


def prepare_frames(movie_or_frames: "Movie | np.ndarray", normalize: bool = True) -> np.ndarray:
    """Validate a Movie, a (T, Y, X) stack or a single (Y, X) frame; return float32 (T, Y, X),
    normalised per frame."""
    data = movie_or_frames.images if isinstance(movie_or_frames, Movie) else movie_or_frames
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]  # a single frame -> (1, Y, X)
    arr = check_images(arr, what="embed: frames", min_frames=1)
    return normalize_frames(arr, per_frame=True) if normalize else arr


def _axis_windows(
    n: int, tile: int, overlap: int, multiple: int
) -> list[tuple[int, int, int, int]]:
    """Per axis: (start, stop) of each tile and (keep_from, keep_to) in frame coordinates."""
    if n <= tile:
        return [(0, n, 0, n)]
    step = (tile - 2 * overlap) // multiple * multiple
    starts = list(range(0, n - tile, step)) + [(n - tile) // multiple * multiple]
    starts = sorted(set(starts))
    cuts = [0] + [(starts[i] + tile + starts[i + 1]) // 2 for i in range(len(starts) - 1)] + [n]
    return [(s, min(s + tile, n), cuts[i], cuts[i + 1]) for i, s in enumerate(starts)]


def tile_windows(shape: tuple[int, int], tile: int, overlap: int, multiple: int) -> list[Window]:
    """Tiles covering a (Y, X) frame: (src_y, src_x) slices of the frame, (keep_y, keep_x) slices
    inside the tile.

    An axis longer than `tile` must be a multiple of `multiple` (pad with `pad_to_multiple` first).
    """
    if tile < multiple or tile % multiple:
        raise InputError(
            f"tile={tile} must be a positive multiple of {multiple} (2**n_depth of the U-Net), "
            f"e.g. tile={max(multiple, tile // multiple * multiple) or multiple}."
        )
    if overlap < 0 or tile - 2 * overlap < multiple:
        raise InputError(
            f"overlap={overlap} is too large for tile={tile}: need 0 <= 2 * overlap <= tile - "
            f"{multiple}. Use a bigger tile or a smaller overlap (e.g. overlap={tile // 8})."
        )
    if any(n > tile and n % multiple for n in shape):
        raise InputError(
            f"tile_windows: frame size {tuple(shape)} must be padded to multiples of {multiple} "
            "before tiling; use tapkit.ssl.features.pad_to_multiple(frames, multiple)."
        )
    wins = []
    for ys, ye, ky0, ky1 in _axis_windows(shape[0], tile, overlap, multiple):
        for xs, xe, kx0, kx1 in _axis_windows(shape[1], tile, overlap, multiple):
            wins.append(
                (slice(ys, ye), slice(xs, xe), slice(ky0 - ys, ky1 - ys), slice(kx0 - xs, kx1 - xs))
            )
    return wins


def pad_to_multiple(frames: np.ndarray, multiple: int) -> np.ndarray:
    """Pad (..., Y, X) at the bottom/right to multiples of `multiple` exactly as the U-Net does
    (reflect)."""
    ny, nx = frames.shape[-2:]
    py, px = (-ny) % multiple, (-nx) % multiple
    if not (py or px):
        return frames
    mode = "reflect" if (py < ny and px < nx) else "edge"
    return np.pad(frames, [(0, 0)] * (frames.ndim - 2) + [(0, py), (0, px)], mode=mode)


def _jobs(
    n_frames: int, windows: list[Window], batch_size: int
) -> Iterator[list[tuple[int, Window]]]:
    """Batches of (frame index, window) work items, frame by frame."""
    items = [(t, w) for t in range(n_frames) for w in windows]
    for i in range(0, len(items), batch_size):
        yield items[i : i + batch_size]


def _check_embed_args(model: Any, tile: int, overlap: int, batch_size: int) -> None:
    """Raise InputError for arguments that cannot work, before any computation."""
    if not isinstance(model, PretextModel):
        raise InputError(
            f"embed: expected a pretrained encoder (a tapkit PretextModel such as TAPNet), got "
            f"{type(model).__name__}. Load one with tapkit.ssl.trainer.load_model(path) or "
            "tapkit.course.get_tap_model(cfg)."
        )
    if model.in_channels != 1:
        raise InputError(
            f"embed: the model reads {model.in_channels} channels, but embed feeds single-channel "
            "(T, Y, X) frames; use a model trained with in_channels=1."
        )
    whole(1, example=256, where="embed: ")("tile", tile)
    whole(1, example=8, where="embed: ")("batch_size", batch_size)
    whole(0, example=32, where="embed: ")("overlap", overlap)


def embed(
    model: PretextModel,
    movie_or_frames: "Movie | np.ndarray",
    tile: int = 256,
    overlap: int = 32,
    batch_size: int = 4,
    device: "str | torch.device | None" = None,
    normalize: bool = True,
    frames: "Sequence[int] | None" = None,
    progress: bool = True,
) -> np.ndarray:
    """Dense projection features (T, F, Y, X) float32 of whole frames, tiled with overlap when
    larger than `tile`."""
    _check_embed_args(model, tile, overlap, batch_size)
    multiple = pool_multiple(model)
    tile_windows((tile, tile), tile, overlap, multiple)  # checks tile and overlap before any work
    images = prepare_frames(movie_or_frames, normalize=normalize)  # (T, Y, X)
    if frames is not None:
        idx = np.atleast_1d(np.asarray(frames, dtype=int))
        if idx.size == 0 or idx.min() < -len(images) or idx.max() >= len(images):
            raise InputError(
                f"embed: frames={list(idx)} must be indices into the {len(images)} frames."
            )
        images = images[idx]
    n_t, ny, nx = images.shape
    tiled = ny > tile or nx > tile
    if tiled:
        # same padding the U-Net applies to a whole frame
        images = pad_to_multiple(images, multiple)
    windows = tile_windows(images.shape[1:], tile, overlap, multiple)
    dev = model_device(model, device)
    model = model.to(dev)
    was_training = model.training
    model.eval()  # batch norm uses its running statistics
    out = np.empty((n_t, model.n_features) + images.shape[1:], dtype=np.float32)  # (T, F, Y', X')
    try:
        with (
            torch.inference_mode(),
            tqdm(total=n_t, desc="embed", unit="frame", disable=not progress) as bar,
        ):
            for batch in _jobs(n_t, windows, batch_size):
                x = torch.from_numpy(np.stack([images[t, sy, sx] for t, (sy, sx, _, _) in batch]))
                with autocast(dev):
                    z = model.embed(x[:, None].to(dev))  # (N, F, y, x)
                z = z.float().cpu().numpy()
                for (t, (sy, sx, ky, kx)), zi in zip(batch, z):
                    out[t, :, sy, sx][:, ky, kx] = zi[:, ky, kx]
                done = [t for t, w in batch if w is windows[-1]]
                bar.update(len(done))
    finally:
        model.train(was_training)
    return np.ascontiguousarray(out[:, :, :ny, :nx])


@torch.no_grad()
def calibrate_batchnorm(
    model: torch.nn.Module,
    images: "np.ndarray | torch.Tensor",
    batch_size: int = 32,
    device: "str | torch.device | None" = None,
) -> torch.nn.Module:
    """Give a NEW encoder the BatchNorm statistics of real crops: images (N, 1, Y, X) through
    `model.embed`; eval mode.

    A newly initialised network in eval mode normalises with mean 0 and variance 1, so with
    PyTorch's default init its activations shrink layer by layer (frozen random features about 1e-3
    wide, lost in bfloat16). With the exact mean and variance of the data at every BatchNorm, each
    layer is normalised as in a trained network:
    the fair frozen random baseline. No labels, no gradients, no weight changes.
    """
    dev = model_device(model, device)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    x = torch.as_tensor(
        np.asarray(images, dtype=np.float32) if not isinstance(images, torch.Tensor) else images
    )
    if x.ndim != 4 or x.shape[1] != 1 or len(x) < 2:
        raise InputError(
            f"calibrate_batchnorm: images must be (N, 1, Y, X) with N >= 2, got {tuple(x.shape)}."
        )
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: the exact statistics over all batches
    model.to(dev).train()
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        if len(chunk) > 1:  # batch norm needs two samples
            model.embed(chunk.to(dev).float())
    for m in norms:
        m.momentum = 0.1
    return model.eval()
