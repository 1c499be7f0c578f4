"""Frame context for dense tasks: frames stacked with their neighbours, one encoder per frame, the
same protocol."""

import numpy as np
import pytest
import torch

from tapkit.data.movie import InputError
from tapkit.downstream.segmentation import experiments, masks
from tapkit.downstream.segmentation.fit import stack_frames
from tapkit.downstream.segmentation.heads import (
    ContextSegmentationNet,
    fresh_encoder,
    make_pixel_head,
)

from test_heads import tiny_tap


def test_stack_frames_puts_the_next_frame_beside_each_frame_and_repeats_the_last():
    # frame t holds the value t
    x = torch.arange(4, dtype=torch.float32)[:, None, None, None].expand(4, 2, 3, 3)
    out = stack_frames(x, (0, 1))
    assert out.shape == (4, 4, 3, 3)
    assert out[:, :2, 0, 0].tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert out[:, 2:, 0, 0].tolist() == [
        [1, 1],
        [2, 2],
        [3, 3],
        [3, 3],
    ]  # t + 1, clamped at the end
    assert stack_frames(x, (0, -1))[0, 2, 0, 0] == 0  # clamped at the start


@pytest.mark.parametrize("offsets", [(), (1,), (1, 0)])
def test_stack_frames_refuses_offsets_without_the_frame_itself_first(offsets):
    with pytest.raises(InputError, match="first offset must be 0"):
        stack_frames(torch.zeros(3, 1, 2, 2), offsets)


def test_context_net_is_the_head_on_each_frames_features_side_by_side():
    tap = tiny_tap()
    enc = fresh_encoder(tap, 0).eval()
    head = make_pixel_head("linear", 2 * tap.n_features, 0)
    net = ContextSegmentationNet(enc, head).eval()
    x = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        # (N, 2F, Y, X)
        z = torch.cat([net.encoder.embed(x[:, :1]), net.encoder.embed(x[:, 1:])], 1)
        assert torch.allclose(net(x), head(z), atol=1e-5)
        swapped = net(x.flip(1))
    assert not torch.allclose(net(x), swapped)  # the head knows which frame is which


# Numbers of the tiny case below measured with the code before end_to_end_sweep took `offsets` (the
# pair row was a copy of it in context.py, commit 5952da5), in float32 on one torch thread (the
# numbers of a seed depend on the thread count, runtime.deterministic): per run (test Dice,
# validation curve, sum of the example map).
BEFORE = {
    "single": [
        (0.082073, [0.088547, 0.089704, 0.090468, 0.089453], 530.997),
        (0.083006, [0.087583, 0.085714, 0.078171, 0.079027], 529.705),
    ],
    "pair": [
        (0.0, [0.0, 0.0, 0.0, 0.0], 441.329),
        (0.032, [0.028369, 0.0, 0.0, 0.0], 475.945),
    ],
}


def test_the_frame_pair_sweep_trains_and_scores_runs_on_the_same_frames_as_the_single_frame_row(
    monkeypatch,
):
    monkeypatch.setenv("TAPKIT_CPU_BF16", "0")  # float32, as BEFORE was measured
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        check_pair_and_single_rows()
    finally:
        torch.set_num_threads(threads)


def check_pair_and_single_rows() -> None:
    """The one-frame and pair from-scratch rows on a tiny case: paired frames, BEFORE's numbers."""
    tap = tiny_tap()
    images = torch.rand(12, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    target = np.zeros((12, 32, 32), np.uint8)
    target[:, 8:16, 8:16] = np.random.default_rng(0).random((12, 8, 8)) > 0.3
    split = masks.split_frames(12, 2, 2)
    train = dict(steps_end_to_end=4, n_evals=4, lr_grid=(1e-3,), crop=16, batch_size=2)
    single = experiments.end_to_end_sweep(
        "s", tap, images, target, split, [1], n_runs=2, pretrained=False, **train
    )
    pair = experiments.end_to_end_sweep(
        "p", tap, images, target, split, [1], n_runs=2, pretrained=False, offsets=(0, 1), **train
    )
    assert [r.steps for r in pair] == [4, 4] and len(pair[0].val_curve) == 4
    # paired: same labelled frames
    assert [r.frames.tolist() for r in pair] == [r.frames.tolist() for r in single]
    for name, runs in [("single", single), ("pair", pair)]:  # the same numbers as before the merge
        for r, (test_dice, curve, example) in zip(runs, BEFORE[name]):
            assert r.scores["dice"] == pytest.approx(test_dice, abs=1e-6)
            assert r.val_curve == pytest.approx(curve, abs=1e-6)
            assert float(r.example.astype(np.float64).sum()) == pytest.approx(example, abs=0.01)


def test_end_to_end_sweep_refuses_offsets_without_the_frame_itself_first():
    split = masks.split_frames(12, 2, 2)
    target = np.ones((12, 8, 8), np.uint8)
    with pytest.raises(InputError, match="first offset must be 0"):
        experiments.end_to_end_sweep(
            "s", tiny_tap(), torch.zeros(12, 1, 8, 8), target, split, [1], offsets=(1,)
        )
