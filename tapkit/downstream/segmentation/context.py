"""Neighbouring frames as input of a dense task: one frame's features or images next to those of
frame t + k.

Paper 000 segments dividing cells with TAP features but does not say from how many frames. A single
frame shows a mitotic nucleus; the frame after it also shows two daughters moving apart. Both the
frozen rows (features of t and t + 1 side by side, a head on 2F channels) and the from-scratch
baseline (the same encoder applied to each frame, shared weights, features side by side) can get the
same context, so the comparison stays fair. `scripts/dense_input_context.py` measures what it
changes.

The pieces live with their kind: `fit.stack_frames` (the inputs), `heads.ContextSegmentationNet`
(the network) and `experiments.end_to_end_sweep(offsets=...)` (the sweep, the one-frame row's code);
this module names the from-scratch pair row notebook 08 and the script run.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from tapkit.downstream.segmentation.experiments import DenseResult, end_to_end_sweep

# (re-exported: notebook 08 calls context.stack_frames)
from tapkit.downstream.segmentation.fit import stack_frames  # noqa: F401
from tapkit.downstream.segmentation.masks import FrameSplit


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
    """`experiments.end_to_end_sweep(pretrained=False)` with k frames in: a new encoder per run
    (the template's architecture) applied to each frame, a conv head on the k x F features; same
    protocol, lr grid and labelled frames."""
    return end_to_end_sweep(
        name, template, images, masks, split, budgets, n_runs, seed, False, device, offsets, **train
    )
