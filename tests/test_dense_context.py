"""Frame context for dense tasks: frames stacked with their neighbours, one encoder per frame, the same protocol."""

import numpy as np
import pytest
import torch

from tapkit.data.movie import InputError
from tapkit.downstream.segmentation import context, experiments, masks
from tapkit.downstream.segmentation.heads import fresh_encoder, make_pixel_head

from test_heads import tiny_tap


def test_stack_frames_puts_the_next_frame_beside_each_frame_and_repeats_the_last():
    x = torch.arange(4, dtype=torch.float32)[:, None, None, None].expand(
        4, 2, 3, 3
    )  # frame t holds the value t
    out = context.stack_frames(x, (0, 1))
    assert out.shape == (4, 4, 3, 3)
    assert out[:, :2, 0, 0].tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert out[:, 2:, 0, 0].tolist() == [
        [1, 1],
        [2, 2],
        [3, 3],
        [3, 3],
    ]  # t + 1, clamped at the end
    assert context.stack_frames(x, (0, -1))[0, 2, 0, 0] == 0  # clamped at the start


@pytest.mark.parametrize("offsets", [(), (1,), (1, 0)])
def test_stack_frames_refuses_offsets_without_the_frame_itself_first(offsets):
    with pytest.raises(InputError, match="first offset must be 0"):
        context.stack_frames(torch.zeros(3, 1, 2, 2), offsets)


def test_context_net_is_the_head_on_each_frames_features_side_by_side():
    tap = tiny_tap()
    enc = fresh_encoder(tap, 0).eval()
    head = make_pixel_head("linear", 2 * tap.n_features, 0)
    net = context.ContextSegmentationNet(enc, head).eval()
    x = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        z = torch.cat(
            [net.encoder.embed(x[:, :1]), net.encoder.embed(x[:, 1:])], 1
        )  # (N, 2F, Y, X)
        assert torch.allclose(net(x), head(z), atol=1e-5)
        swapped = net(x.flip(1))
    assert not torch.allclose(net(x), swapped)  # the head knows which frame is which


def test_scratch_context_sweep_trains_and_scores_runs_on_the_same_frames_as_the_single_frame_row():
    tap = tiny_tap()
    rng = np.random.default_rng(0)
    images = torch.rand(12, 1, 32, 32)
    target = np.zeros((12, 32, 32), np.uint8)
    target[:, 8:16, 8:16] = rng.random((12, 8, 8)) > 0.3
    split = masks.split_frames(12, 2, 2)
    train = dict(steps_end_to_end=4, n_evals=4, lr_grid=(1e-3,), crop=16, batch_size=2)
    single = experiments.end_to_end_sweep(
        "s", tap, images, target, split, [1], n_runs=2, pretrained=False, **train
    )
    pair = context.scratch_context_sweep("p", tap, images, target, split, [1], n_runs=2, **train)
    assert [r.steps for r in pair] == [4, 4] and len(pair[0].val_curve) == 4
    assert [r.frames.tolist() for r in pair] == [
        r.frames.tolist() for r in single
    ]  # paired: same labelled frames
    assert all(0 <= r.scores["dice"] <= 1 for r in pair)
