"""Tests for the TAP network (tapkit.ssl.tap) and the TAP loss (tapkit.ssl.tap)."""

import math

import pytest
import torch

from tapkit import InputError
from tapkit.ssl.tap import decorrelation_loss, tap_loss
from tapkit.ssl.backbone import UNet, count_parameters
from tapkit.ssl.tap import TAPNet, TimeArrowHead


def small_net(**kw) -> TAPNet:
    return TAPNet(
        **{
            **dict(n_depth=2, base_filters=4, n_features=8, backbone_features=8, head_features=8),
            **kw,
        }
    )


@pytest.mark.parametrize("shape", [(37, 53), (16, 16), (9, 70)])
def test_unet_keeps_any_size(shape):
    net = UNet(1, 5, n_depth=3, base_filters=4)
    y = net(torch.randn(2, 1, *shape))
    assert y.shape == (2, 5, *shape)


def test_tapnet_shapes_odd_size():
    net = small_net().eval()
    x = torch.randn(3, 2, 1, 37, 53)
    logits, z = net(x)
    assert logits.shape == (3, 2)
    assert z.shape == (3, 2, 8, 37, 53)
    assert net.embed(x[:, 0]).shape == (3, 8, 37, 53)
    with pytest.raises(InputError):
        net(torch.randn(2, 1, 16, 16))


def test_default_widths_and_parameter_count():
    net = TAPNet()
    convs = [m.out_channels for m in net.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert {32, 64, 128, 256} <= set(convs)
    assert net.backbone.out.out_channels == 32 and net.n_features == 32
    n = count_parameters(net)
    assert 1e6 < n < 3e6, n  # a 3-level U-Net with 32 base filters has ~1.9 M parameters


def test_config_rebuilds_and_seed_reproducible():
    a, b = small_net(seed=3), small_net(seed=3)
    rebuilt = TAPNet(**a.config)
    c = small_net(seed=4)
    for pa, pb, pr, pc in zip(a.parameters(), b.parameters(), rebuilt.parameters(), c.parameters()):
        assert torch.equal(pa, pb) and torch.equal(pa, pr)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("n_frames", [2, 3])
@pytest.mark.parametrize("train", [False, True])
def test_head_equivariant(n_frames, train):
    torch.manual_seed(0)
    net = small_net(head_depth=2)
    net.train(train)
    x = torch.randn(4, n_frames, 1, 24, 20)
    perm = torch.randperm(n_frames)
    while n_frames > 1 and torch.equal(perm, torch.arange(n_frames)):
        perm = torch.randperm(n_frames)
    logits, _ = net(x)
    logits_p, _ = net(x[:, perm])
    torch.testing.assert_close(logits_p, logits[:, perm], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(logits[:, 0], logits[:, 1])  # the head does distinguish the slots


def test_head_alone_swaps_logits():
    head = TimeArrowHead(6, features=10).eval()
    z = torch.randn(5, 2, 6, 7, 9)
    torch.testing.assert_close(head(z.flip(1)), head(z).flip(1))


def test_decorrelation_orthonormal_vs_identical():
    f, n, tau = 4, 16, 0.2
    eye = torch.zeros(f, n)
    # orthogonal channels (any length: they are normalised)
    eye[torch.arange(f), torch.arange(f) * 3] = 2.5
    z_orth = eye.reshape(1, f, 4, 4)
    expected_min = math.log(1 + (f - 1) * math.exp(-1 / tau))
    assert decorrelation_loss(z_orth, tau) == pytest.approx(expected_min, rel=1e-5)
    z_same = torch.randn(1, 1, 4, 4).expand(2, f, 4, 4)  # identical channels: uniform softmax
    assert decorrelation_loss(z_same, tau) == pytest.approx(math.log(f), rel=1e-5)
    z_rand = torch.randn(3, f, 4, 4)
    assert expected_min <= decorrelation_loss(z_rand, tau) <= math.log(f)


def test_tap_loss_combines_terms():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([0, 0])
    z = torch.randn(2, 2, 3, 5, 5)
    total, ce, decorr = tap_loss(logits, target, z, lam=0.5)
    expected_ce = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(1.0))) / 2
    assert ce.item() == pytest.approx(expected_ce, rel=1e-6)
    assert total.item() == pytest.approx(ce.item() + 0.5 * decorr.item(), rel=1e-6)
    with pytest.raises(InputError):
        tap_loss(logits, target[:1], z)


def test_loss_backpropagates_into_backbone():
    net = small_net()
    x = torch.randn(4, 2, 1, 16, 16)
    logits, z = net(x)
    total, _, _ = tap_loss(logits, torch.tensor([0, 1, 0, 1]), z)
    total.backward()
    assert net.backbone.down[0][0].weight.grad.abs().sum() > 0
