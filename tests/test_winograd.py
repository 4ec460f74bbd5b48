"""Winograd F(4x4, 3x3) convolution: same outputs and input gradients as nn.Conv2d, in VGG too."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fastnst.networks import winograd
from fastnst.networks.vgg import VGGFeatures


@pytest.mark.parametrize("c, k, h, w", [(128, 64, 16, 16), (130, 7, 17, 21), (128, 32, 13, 40)])
def test_matches_conv2d_forward_and_input_gradient(c, k, h, w):
    torch.manual_seed(0)
    conv = nn.Conv2d(c, k, 3, padding=1).requires_grad_(False)
    fast = winograd.WinogradConv2d(conv)
    x = torch.randn(2, c, h, w).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    y_ref, y = conv(x), fast(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(y_ref)
    (gx_ref,) = torch.autograd.grad(y_ref, x, g)
    (gx,) = torch.autograd.grad(y, x, g)
    assert (y - y_ref).abs().max() <= 3e-5 * y_ref.abs().max()
    assert (gx - gx_ref).abs().max() <= 3e-5 * gx_ref.abs().max()
    y.relu_()  # VGG's in-place ReLU must be allowed on the output


def test_small_maps_fall_back_to_direct_convolution():
    conv = nn.Conv2d(128, 8, 3, padding=1).requires_grad_(False)
    x = torch.randn(1, 128, 4, 4)
    assert torch.equal(winograd.WinogradConv2d(conv)(x), conv(x))


def test_vgg_with_winograd_matches_plain():
    plain = VGGFeatures(["relu3_1", "relu4_2"], arch="vgg19", weights="random")
    fast = VGGFeatures(["relu3_1", "relu4_2"], arch="vgg19", weights="random")
    replaced = winograd.use_winograd(fast.features)
    assert [fast.names[i] for i in replaced] == ["conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4", "conv4_1", "conv4_2"]
    x = torch.rand(1, 3, 64, 72, requires_grad=True)
    a, b = plain(x), fast(x)
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=1e-4, atol=1e-4 * float(a[name].detach().abs().max()))
    assert not winograd.enabled("cuda")


def test_bf16_autocast_runs_like_plain_vgg():
    """--trainer.precision bf16-mixed: under CPU autocast the Winograd layers get bfloat16 activations
    (this crashed with 'expected scalar type Float but found BFloat16')."""
    plain = VGGFeatures(["relu3_3"], arch="vgg16", weights="random")
    fast = VGGFeatures(["relu3_3"], arch="vgg16", weights="random")
    assert winograd.use_winograd(fast.features)
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = plain(x)["relu3_3"], fast(x)["relu3_3"]
    assert b.dtype == a.dtype and torch.allclose(a.float(), b.float(), atol=0.02 * float(a.detach().float().abs().max()))
    (g,) = torch.autograd.grad(b.float().sum(), x)
    assert torch.isfinite(g).all() and g.abs().max() > 0
