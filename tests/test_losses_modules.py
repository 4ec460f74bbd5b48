"""fastnst.losses.modules: each module is its function (kornia's pairing), with what it fixes at construction."""

import pytest
import torch

from fastnst.losses.functional import (content_loss, gram_matrix, inversion_loss, style_layer_losses,
                                       total_variation)
from fastnst.losses.modules import ContentLoss, InversionLoss, StyleLoss, TotalVariation


def test_content_loss_sums_its_layers():
    feats = {"a": torch.rand(1, 2, 3, 3), "b": torch.rand(1, 4, 2, 2)}
    targets = {k: torch.rand_like(v) for k, v in feats.items()}
    expected = content_loss(feats["a"], targets["a"]) + content_loss(feats["b"], targets["b"])
    assert torch.allclose(ContentLoss(["a", "b"])(feats, targets), expected)
    assert torch.equal(ContentLoss(["b"])(feats, targets), content_loss(feats["b"], targets["b"]))


def test_inversion_loss_fixes_its_target_and_normaliser():
    target = torch.rand(1, 3, 4, 4, requires_grad=True)
    module = InversionLoss(target)
    f = torch.rand(1, 3, 4, 4)
    assert float(module(f)) == pytest.approx(float(inversion_loss(f, target).detach()), rel=1e-6)
    assert module.scale == pytest.approx(1.0 / float(target.detach().pow(2).mean()))
    assert dict(module.named_buffers()).keys() == {"target"} and not module.target.requires_grad


def test_style_loss_applies_layer_weights_statistic_and_norms():
    feats = {"a": torch.rand(2, 3, 4, 4), "b": torch.rand(2, 3, 4, 4)}
    targets = {k: gram_matrix(torch.rand(1, 3, 4, 4)) for k in feats}
    plain = style_layer_losses(feats, targets, stat="covariance")
    got = StyleLoss(["a", "b"], [2.0, 1.0], "covariance", norms={"b": 5.0})(feats, targets)
    assert torch.allclose(got["a"], 2.0 * plain["a"]) and torch.allclose(got["b"], 5.0 * plain["b"])
    assert StyleLoss(["a", "b"], {"b": 0.5}).weights == {"a": 1.0, "b": 0.5}


def test_total_variation_module():
    x = torch.rand(2, 3, 5, 6)
    assert torch.equal(TotalVariation()(x), total_variation(x))
