"""Siamese temporal consistency (paper 004): the loss, the shared-weight step, the training
variants."""

import copy

import numpy as np
import pytest
import torch

from tapkit.data.movie import InputError
from tapkit.data.simulate import simulate_movie
from tapkit.downstream.segmentation import consistency, fit, masks
from tapkit.ssl.backbone import UNet


def small_net(seed=0):
    torch.manual_seed(seed)
    return UNet(1, 1, n_depth=2, base_filters=4)


def test_consistency_loss_is_zero_for_identical_predictions():
    p = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert float(consistency.consistency_loss(p, p.clone())) == pytest.approx(0.0, abs=1e-6)
    assert float(consistency.consistency_loss(p, 1 - p)) > 0.1
    with pytest.raises(InputError, match="kind"):
        consistency.consistency_loss(p, p, "l2")


def test_consistency_step_backpropagates_through_both_branches():
    net = small_net()
    x_a, x_b = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    grads = {}
    for branch in (
        "a",
        "b",
    ):  # gradient of the loss through one branch only, the other one detached
        net.zero_grad()
        p_a, p_b = torch.sigmoid(net(x_a)), torch.sigmoid(net(x_b))
        loss = consistency.consistency_loss(
            p_a if branch == "a" else p_a.detach(), p_b if branch == "b" else p_b.detach()
        )
        loss.backward()
        grads[branch] = net.out.weight.grad.clone()
    assert grads["a"].abs().sum() > 0 and grads["b"].abs().sum() > 0
    net.zero_grad()
    p_a, p_b = torch.sigmoid(net(x_a)), torch.sigmoid(net(x_b))
    consistency.consistency_loss(p_a, p_b).backward()
    # both branches, shared weights
    assert torch.allclose(net.out.weight.grad, grads["a"] + grads["b"], atol=1e-6)
    before = copy.deepcopy(net.state_dict())
    consistency.consistency_step(net, torch.optim.SGD(net.parameters(), lr=0.1), x_a, x_b)
    assert not torch.equal(before["out.weight"], net.state_dict()["out.weight"])
    # the BCE variant detaches the second frame: no gradient through branch b
    net.zero_grad()
    p_b = torch.sigmoid(net(x_b))
    loss = consistency.consistency_loss(
        torch.sigmoid(net(x_a)).detach().requires_grad_(), p_b, "bce"
    )
    loss.backward()
    assert net.out.weight.grad is None or net.out.weight.grad.abs().sum() == 0


def test_variants_start_from_the_same_weights_and_train_what_they_say():
    movie = simulate_movie(n_frames=8, size=(48, 48), seed=0, progress=False)
    images, m = fit.frame_inputs(movie), masks.task_masks(movie, "nuclei")
    net = small_net()
    out = consistency.train_variants(
        net,
        images=images,
        masks=m,
        labelled=np.array([0]),
        unlabelled=np.arange(6),
        rounds=1,
        steps_per_epoch=2,
        crop=32,
        batch_size=2,
        lr_segmentation=1e-3,
    )
    seg, alt, cons = (out[v][1] for v in ("segmentation only", "alternating", "consistency only"))
    assert (len(seg["segmentation"]), len(seg["consistency"])) == (6, 0)
    assert (len(alt["segmentation"]), len(alt["consistency"])) == (4, 2)
    assert (len(cons["segmentation"]), len(cons["consistency"])) == (0, 6)
    # the original is untouched
    assert all(torch.equal(a, b) for a, b in zip(small_net().parameters(), net.parameters()))
    with pytest.raises(InputError, match="variant"):
        consistency.train_variants(net, ("both",), images=images)
