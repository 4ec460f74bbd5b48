"""fastnst.losses.perceptual: PerceptualLoss composes the terms on a network passed in (duck-typed)."""

import pytest
import torch
from torch import nn

from fastnst.constants import JOHNSON_CONTENT_WEIGHT, JOHNSON_STYLE_WEIGHT, JOHNSON_TV_WEIGHT
from fastnst.errors import ConfigError
from fastnst.losses.functional import content_loss, gram_matrix, total_variation
from fastnst.losses.modules import ContentLoss, StyleLoss, TotalVariation
from fastnst.losses.perceptual import PerceptualLoss, style_targets
from fastnst.networks.vgg import VGGFeatures


class Toy(nn.Module):
    """A stand-in loss network: 'a' and 'b' are fixed 1x1 convolutions of the image, 'b' at half size."""

    def __init__(self, style_norms=None):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 1).requires_grad_(False)
        if style_norms is not None:
            self.style_norms = style_norms
        self.calls = []

    def forward(self, x, layers):
        self.calls.append(tuple(layers))
        a = torch.relu(self.conv(x))
        return {n: f for n, f in (("a", a), ("b", nn.functional.avg_pool2d(a, 2))) if n in layers}


@pytest.fixture(scope="module")
def vgg():
    return VGGFeatures(["relu1_2", "relu2_2", "relu3_3"], weights="random")


def test_defaults_are_trainings_calibrated_weights():
    from fastnst.options import defaults
    from fastnst.training.config import TrainConfig

    loss = PerceptualLoss(Toy(), ["a"], ["a", "b"])
    train = defaults(TrainConfig)
    assert (loss.content_weight, loss.style_weight, loss.tv_weight) == \
        (JOHNSON_CONTENT_WEIGHT, JOHNSON_STYLE_WEIGHT, JOHNSON_TV_WEIGHT) == \
        (train["content_weight"], train["style_weight"], train["tv_weight"])


def test_terms_on_vgg(vgg):
    loss = PerceptualLoss(vgg, "relu2_2", ["relu1_2", "relu3_3"], content_weight=2.0, style_weight=3.0,
                          tv_weight=0.5, style_layer_weights=[1.0, 0.0])
    style = torch.rand(1, 3, 24, 24)
    loss.set_style(style)
    out, content = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    terms = loss(out, content)
    assert set(terms) == {"content", "style", "tv", "total", "style/relu1_2", "style/relu3_3"}
    feats = vgg(out)
    assert torch.allclose(terms["content"], 2.0 * content_loss(feats["relu2_2"], vgg(content)["relu2_2"]))
    tgt = gram_matrix(vgg(style)["relu1_2"])
    assert torch.allclose(terms["style"], 3.0 * ((gram_matrix(feats["relu1_2"]) - tgt) ** 2).mean())
    assert float(terms["style/relu3_3"]) == 0.0
    assert torch.allclose(terms["tv"], 0.5 * total_variation(out))
    assert torch.allclose(terms["total"], terms["content"] + terms["style"] + terms["tv"])


def test_weights_scale_their_terms_linearly():
    style, out, content = torch.rand(1, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    terms = {}
    for k in (1.0, 3.0):
        loss = PerceptualLoss(Toy(), ["a"], ["a", "b"], content_weight=k, style_weight=2 * k, tv_weight=5 * k)
        loss.set_style(style)
        terms[k] = loss(out, content)
    for name in ("content", "style", "style/a", "style/b", "tv", "total"):
        assert float(terms[3.0][name]) == pytest.approx(3.0 * float(terms[1.0][name]), rel=1e-5), name


def test_gradients_vanish_at_the_targets():
    image = torch.rand(1, 3, 8, 8)
    loss = PerceptualLoss(Toy(), ["a"], ["a", "b"], content_weight=1.0, style_weight=1.0, tv_weight=0.0)
    loss.set_style(image)
    x = image.clone().requires_grad_(True)
    total = loss(x, image)["total"]
    total.backward()
    assert float(total.detach()) == pytest.approx(0.0, abs=1e-10) and float(x.grad.abs().max()) < 1e-6


def test_the_network_is_duck_typed_and_its_style_norms_scale_the_style_terms():
    style, out = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    plain = PerceptualLoss(Toy(), (), ["a", "b"], style_weight=1.0)
    normed = PerceptualLoss(Toy({"b": 10.0}), (), ["a", "b"], style_weight=1.0)
    for loss in (plain, normed):
        loss.set_style(style)
    p, n = plain(out), normed(out)
    assert torch.equal(p["style/a"], n["style/a"])
    assert float(n["style/b"]) == pytest.approx(10.0 * float(p["style/b"]), rel=1e-6)


def test_texture_has_no_content_term_and_zero_weights_skip_the_network():
    net = Toy()
    loss = PerceptualLoss(net, (), ["b"], style_weight=2.0)
    loss.set_style(torch.rand(1, 3, 8, 8))
    terms = loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    assert "content" not in terms and float(terms["style"]) > 0
    net.calls.clear()
    off = PerceptualLoss(net, ["a"], ["b"], content_weight=0.0, style_weight=0.0, tv_weight=0.0)
    terms = off(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    assert net.calls == [] and all(float(v) == 0 for v in terms.values())


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
    assert torch.equal(style_targets(vgg, [a, b], ["relu1_2"], blend=[3.0, 1.0])["relu1_2"],
                       loss.style_targets["relu1_2"])
    with pytest.raises(ConfigError, match="blend"):
        loss.set_style([a, b], blend=[1.0])
    with pytest.raises(ConfigError, match="not all zero"):
        loss.set_style([a, b], blend=[0.0, 0.0])


def test_targets_needed_and_layers_the_network_lacks_are_refused_by_it(vgg):
    loss = PerceptualLoss(vgg, "relu2_2", ["relu1_2"])
    with pytest.raises(RuntimeError, match="set_style"):
        loss.style_targets
    with pytest.raises(ConfigError, match="'relu2_1' was not requested"):
        PerceptualLoss(vgg, "relu2_2", ["relu2_1"]).set_style(torch.rand(1, 3, 16, 16))


def test_it_is_made_of_the_term_modules(vgg, monkeypatch):
    seen = []
    monkeypatch.setattr(TotalVariation, "forward", lambda self, x: seen.append(tuple(x.shape)) or total_variation(x))
    loss = PerceptualLoss(vgg, "relu2_2", ["relu1_2"], tv_weight=0.5)
    loss.set_style(torch.rand(1, 3, 16, 16))
    loss(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    assert seen == [(2, 3, 16, 16)]
    assert {type(m) for m in loss.modules()} >= {ContentLoss, StyleLoss, TotalVariation}
