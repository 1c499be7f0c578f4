"""Neighbouring frames as input of a dense task: one frame's features or images next to those of frame t + k.

Paper 000 segments dividing cells with TAP features but does not say from how many frames. A single
frame shows a mitotic nucleus; the frame after it also shows two daughters moving apart. Both the frozen
rows (features of t and t + 1 side by side, a head on 2F channels) and the from-scratch baseline (the same
encoder applied to each frame, shared weights, features side by side) can get the same context, so the
comparison stays fair. `scripts/dense_input_context.py` measures what it changes.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from tapkit.data.movie import InputError
from tapkit.downstream.segmentation.experiments import (
    END_TO_END,
    DenseResult,
    row_settings,
    run_cell,
)
from tapkit.downstream.segmentation.heads import (
    SegmentationNet,
    calibrate_encoder,
    fresh_encoder,
    make_pixel_head,
)
from tapkit.downstream.segmentation.masks import FrameSplit, check_validation


def stack_frames(x: torch.Tensor, offsets: Sequence[int] = (0, 1)) -> torch.Tensor:
    """(T, C, Y, X) -> (T, len(offsets) * C, Y, X): frame t's channels, then those of t + offset, clamped at the ends."""
    if len(offsets) == 0 or offsets[0] != 0:
        raise InputError(
            f"offsets={tuple(offsets)}: the first offset must be 0 (the frame the mask belongs to), "
            "e.g. (0, 1) for the frame and the next one."
        )
    t = torch.arange(len(x))
    return torch.cat([x[(t + k).clamp(0, len(x) - 1)] for k in offsets], dim=1)


class ContextSegmentationNet(SegmentationNet):
    """One encoder applied to each of k frames (shared weights), features side by side, one head:
    (N, k, Y, X) images -> (N, 1, Y, X) logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, k, Y, X) -> (N, 1, Y, X) logits."""
        n, k = x.shape[:2]
        z = self.encoder.embed(x.reshape(n * k, 1, *x.shape[2:]))  # (N k, F, Y, X)
        return self.head(z.reshape(n, k * z.shape[1], *z.shape[2:]))


def scratch_context_sweep(
    name: str,
    template: nn.Module,
    images: torch.Tensor,
    masks: np.ndarray,
    split: FrameSplit,
    budgets: Sequence,
    offsets: Sequence[int] = (0, 1),
    n_runs: int = 3,
    seed: int = 0,
    device: Any = "cpu",
    **train: Any,
) -> list[DenseResult]:
    """`experiments.end_to_end_sweep(pretrained=False)` with k frames in: a new encoder per run (the template's
    architecture) applied to each frame, a conv head on the k x F features; same protocol, lr grid and labelled frames."""
    check_validation(masks, split)
    settings = row_settings(END_TO_END, train)
    inputs = stack_frames(images, offsets)  # (T, k, Y, X)
    held_out = set(np.asarray(split.test).tolist())
    unlabelled = images[[t for t in range(len(images)) if t not in held_out]]  # (N, 1, Y, X)

    def make(s: int) -> tuple[nn.Module, Any]:
        head = make_pixel_head("conv", len(offsets) * template.n_features, s)
        net = ContextSegmentationNet(fresh_encoder(template, s), head)
        calibrate_encoder(
            net.encoder, unlabelled
        )  # BatchNorm statistics of single frames, as the encoder sees them
        return net, net.trainable()

    out: list[DenseResult] = []
    for budget in budgets:
        out += run_cell(
            name,
            budget,
            make,
            inputs,
            masks,
            split,
            n_runs,
            seed,
            device,
            settings,
            out[0].lr if out else None,
        )
    return out
