import pytest
import torch

from fastnst.errors import ConfigError
from fastnst.losses import (ContentLoss, InversionLoss, PerceptualLoss, StyleLoss, TotalVariation, content_loss,
                            covariance_matrix, gram_matrix, inversion_loss, style_loss, style_targets,
                            total_variation)
from fastnst.networks.vgg import VGGFeatures


def test_gram_hand_computed():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    expected = torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 4.0  # F Fᵀ / (C·H·W)
    assert torch.allclose(gram_matrix(f)[0], expected)
    assert torch.allclose(gram_matrix(f.contiguous(memory_format=torch.channels_last))[0], expected)


def test_gram_symmetric_and_size_invariant():
    f = torch.rand(2, 5, 6, 7)
    g = gram_matrix(f)
    assert g.shape == (2, 5, 5) and torch.allclose(g, g.transpose(1, 2))
    tiled = f.repeat(1, 1, 3, 2)  # the same statistics over a 3×2 larger map
    assert torch.allclose(gram_matrix(tiled), g, atol=1e-6)


def test_covariance_removes_mean():
    f = torch.rand(1, 3, 4, 4)
    assert torch.allclose(covariance_matrix(f + 10.0), covariance_matrix(f), atol=1e-4)
    assert torch.allclose(covariance_matrix(torch.full((1, 3, 4, 4), 2.0)), torch.zeros(1, 3, 3))


def test_content_tv_style_hand_values():
    assert float(content_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]))) == pytest.approx(5.0)
    img = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).view(1, 1, 2, 2)
    assert float(total_variation(img)) == pytest.approx(1.0 + 4.0)
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    target = torch.zeros(1, 2, 2)
    g = torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 4.0
    expected = 2.0 * float((g ** 2).mean())
    assert float(style_loss({"a": f}, {"a": target}, {"a": 2.0})) == pytest.approx(expected)


@pytest.fixture(scope="module")
def vgg():
    return VGGFeatures(["relu1_2", "relu2_2", "relu3_3"], weights="random")


def test_perceptual_terms(vgg):
    loss = PerceptualLoss(vgg, "relu2_2", ["relu1_2", "relu3_3"], content_weight=2.0, style_weight=3.0,
                          tv_weight=0.5, style_layer_weights=[1.0, 0.0])
    style = torch.rand(1, 3, 24, 24)
    loss.set_style(style)
    out, content = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    terms = loss(out, content)
    assert set(terms) == {"content", "style", "tv", "total", "style/relu1_2", "style/relu3_3"}
    feats = vgg(out)
    expected_c = 2.0 * content_loss(feats["relu2_2"], vgg(content)["relu2_2"])
    assert torch.allclose(terms["content"], expected_c)
    tgt = gram_matrix(vgg(style)["relu1_2"])
    assert torch.allclose(terms["style"], 3.0 * ((gram_matrix(feats["relu1_2"]) - tgt) ** 2).mean())
    assert float(terms["style/relu3_3"]) == 0.0
    assert torch.allclose(terms["tv"], 0.5 * total_variation(out))
    assert torch.allclose(terms["total"], terms["content"] + terms["style"] + terms["tv"])


def test_content_features_only_as_deep_as_needed(vgg, monkeypatch):
    loss = PerceptualLoss(vgg, "relu1_2", ["relu3_3"])
    loss.set_style(torch.rand(1, 3, 16, 16))
    calls = []
    original = VGGFeatures.forward

    def spy(self, x, layers=None):
        calls.append((tuple(layers), x.requires_grad))
        return original(self, x, layers)

    monkeypatch.setattr(VGGFeatures, "forward", spy)
    loss(torch.rand(1, 3, 16, 16, requires_grad=True), torch.rand(1, 3, 16, 16))
    assert (("relu1_2",), False) in calls  # the content image: content layer only, no grad


def test_blend_equals_weighted_average(vgg):
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 20, 12)
    loss = PerceptualLoss(vgg, "relu2_2", ["relu1_2"])
    loss.set_style([a, b], blend=[3.0, 1.0])
    expected = 0.75 * gram_matrix(vgg(a)["relu1_2"]) + 0.25 * gram_matrix(vgg(b)["relu1_2"])
    assert torch.allclose(loss.style_targets["relu1_2"], expected, atol=1e-6)
    with pytest.raises(ConfigError, match="blend"):
        loss.set_style([a, b], blend=[1.0])


def test_bad_settings(vgg):
    with pytest.raises(ConfigError, match="zero or positive"):
        PerceptualLoss(vgg, "relu2_2", ["relu1_2"], style_weight=-1)
    with pytest.raises(ConfigError, match="one weight per layer"):
        PerceptualLoss(vgg, "relu2_2", ["relu1_2"], style_layer_weights=[1, 2])
    with pytest.raises(ConfigError, match="not tapped"):
        PerceptualLoss(vgg, "relu2_1", ["relu1_2"])
    with pytest.raises(ConfigError, match="style statistic"):
        PerceptualLoss(vgg, "relu2_2", ["relu1_2"], style_stat="gramm")


def test_terms_check_their_input_shapes():
    with pytest.raises(ValueError, match=r"features must be a 4-d tensor \(N, C, H, W\), got \(3, 4\)"):
        gram_matrix(torch.rand(3, 4))
    with pytest.raises(ValueError, match=r"images must be a 4-d tensor"):
        TotalVariation()(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="does not fit features"):
        content_loss(torch.rand(1, 4, 5, 5), torch.rand(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"style target of a has shape \(1, 3, 3\)"):
        style_loss({"a": torch.rand(1, 4, 5, 5)}, {"a": torch.rand(1, 3, 3)})
    with pytest.raises(ValueError, match="all zeros"):
        inversion_loss(torch.rand(1, 2, 3, 3), torch.zeros(1, 2, 3, 3))


def test_the_tv_term_is_the_total_variation_module(vgg, monkeypatch):
    seen = []
    monkeypatch.setattr(TotalVariation, "forward", lambda self, x: seen.append(tuple(x.shape)) or total_variation(x))
    loss = PerceptualLoss(vgg, "relu2_2", ["relu1_2"], tv_weight=0.5)
    loss.set_style(torch.rand(1, 3, 16, 16))
    loss(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    assert seen == [(2, 3, 16, 16)]
    assert {type(m) for m in loss.modules()} >= {ContentLoss, StyleLoss, TotalVariation}


def test_inversion_term_equals_the_old_content_weight_one_over_norm(vgg):
    """Inversion used to run through the content term with weight 1/mean(Φ₀²); the composed term is that number."""
    target = vgg(torch.rand(1, 3, 16, 16))["relu2_2"]
    x = torch.rand(1, 3, 16, 16)
    old = PerceptualLoss(vgg, ["relu2_2"], ["relu2_2"], content_weight=1.0 / float(target.pow(2).mean()),
                         style_weight=0.0)(x, content_features={"relu2_2": target})["content"]
    feats = vgg(x)["relu2_2"]
    assert float(InversionLoss(target)(feats)) == float(old)
    assert float(inversion_loss(feats, target)) == pytest.approx(float(old), rel=1e-6)


def test_texture_loss_has_no_content_term_and_the_old_numbers(vgg):
    """Texture synthesis used a fake content layer with weight 0 and dropped 'content'; now it has no content term."""
    style, x = torch.rand(1, 3, 20, 20), torch.rand(1, 3, 16, 16)
    new = PerceptualLoss(vgg, (), ["relu1_2", "relu3_3"], style_weight=2.0, tv_weight=0.3)
    old = PerceptualLoss(vgg, ["relu1_2"], ["relu1_2", "relu3_3"], content_weight=0.0, style_weight=2.0,
                         tv_weight=0.3)
    for loss in (new, old):
        loss.set_style(style)
    got, want = new(x, x), old(x, x)
    want.pop("content")
    assert "content" not in got and got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in got)
    targets = style_targets(vgg, style, ["relu1_2", "relu3_3"])
    assert all(torch.equal(targets[k], new.style_targets[k]) for k in targets)
