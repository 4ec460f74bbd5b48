"""fastnst.optimize.objective: the Gatys objective, and score() reporting the terms gatys minimises."""

from __future__ import annotations

import pytest
import torch

from fastnst.optimize.objective import GatysLoss, score, style_list, terms_out
from fastnst.optimize.settings import GatysSettings, gatys_settings
from fastnst.optimize.transfer import gatys_result
from tests.conftest import synthetic_rgb
from tests.optimize_fixtures import RANDOM, content, style  # noqa: F401 (fixtures)


def test_terms_out_orders_the_terms():
    got = terms_out({"style/relu2_1": 1, "tv": 2, "style/relu1_1": 3, "total": 4, "style": 5, "other": 6})
    assert list(got) == ["total", "style", "tv", "style/relu1_1", "style/relu2_1"]
    assert all(isinstance(v, float) for v in got.values())


def test_style_list():
    assert style_list(None) == [] and style_list("a.png") == ["a.png"] and style_list(("a", "b")) == ["a", "b"]


def test_score_matches_the_optimisers_loss(content, style):
    settings = dict(content_weight=3e4, style_weight=5e8, tv_weight=2.0, style_scale=0.8,
                    style_layer_weights=[1, 2, 1, 0.5, 1], pooling="avg")
    result = gatys_result(content, style, size=48, iterations=4, **RANDOM, **settings)
    scored = score(result.image, content, style, **RANDOM, **settings)
    assert scored.keys() == result.terms.keys()
    for k, v in result.terms.items():
        assert scored[k] == pytest.approx(v, rel=1e-4, abs=1e-7), k
    # and for an intermediate image: score of the tensor the optimiser evaluated equals what it reported
    seen_x = []
    gatys_result(content, style, size=48, iterations=2, **RANDOM, **settings,
                 callback=lambda p: seen_x.append((p.terms, p.image())))
    terms, img = seen_x[0]  # iteration 1 evaluates the init (the content, exactly representable in 8 bits)
    s = score(img, content, style, **RANDOM, **settings)
    assert s["total"] == pytest.approx(terms["total"], rel=1e-4)


def test_style_blend(content, style):
    other = synthetic_rgb(40, 40, seed=9)
    s_one = score(content, None, style, **RANDOM)
    s_blend_10 = score(content, None, [style, other], style_blend=[1, 0], **RANDOM)
    s_blend_01 = score(content, None, [style, other], style_blend=[0, 3], **RANDOM)
    s_other = score(content, None, other, **RANDOM)
    assert s_blend_10["style"] == pytest.approx(s_one["style"], rel=1e-5)
    assert s_blend_01["style"] == pytest.approx(s_other["style"], rel=1e-5)


def test_covariance_differs_from_gram_and_ignores_offsets(content, style):
    gram = score(content, None, style, style_stat="gram", **RANDOM)
    cov = score(content, None, style, style_stat="covariance", **RANDOM)
    assert cov["style"] != pytest.approx(gram["style"], rel=1e-3)
    # a style image's own statistic is zero loss
    assert score(style, None, style, style_stat="covariance", **RANDOM)["style"] == pytest.approx(0, abs=1e-6)


def test_gatys_loss_for_texture_has_no_content_term(style):
    settings = gatys_settings(GatysSettings(vgg_weights="random"), {})
    loss = GatysLoss(settings, torch.device("cpu"), content=False)
    assert loss.loss.content is None and loss.vgg.layers == settings.style_layers
    loss.set_targets(None, [style], (32, 32), None)
    terms = loss(torch.rand(1, 3, 32, 32))
    assert "content" not in terms and float(terms["style"]) > 0


def test_distance_normalisation_makes_each_style_layer_one_at_the_content(content, style):
    at_content = score(content, content, style, style_norm="distance", **RANDOM)
    layers = [k for k in at_content if k.startswith("style/")]
    assert layers and all(at_content[k] == pytest.approx(1.0, rel=1e-3) for k in layers)
    doubled = score(content, content, style, style_norm="distance", style_weight=2, **RANDOM)
    assert doubled["style"] == pytest.approx(2 * len(layers), rel=1e-3)
    own = score(style, content, style, style_norm="style", **RANDOM)
    assert own["style"] == pytest.approx(0, abs=1e-6)


def test_the_default_balance_is_the_same_for_any_style_picture(content):
    """Gatys' default normalisation is the content's distance to the style: at the photo every style layer's loss
    is 1 whether the style picture is a smooth gradient or fine noise; the default TV term is on."""
    import numpy as np
    from PIL import Image

    y = np.linspace(0, 1, 40)[:, None, None]
    gradient = Image.fromarray((255 * np.broadcast_to(y * [1.0, 0.6, 0.3], (40, 40, 3))).astype(np.uint8))
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    for name, picture in (("gradient", gradient), ("noise", noise)):
        terms = score(content, content, picture, **RANDOM)
        layers = [k for k in terms if k.startswith("style/")]
        assert all(terms[k] == pytest.approx(1.0, rel=1e-3) for k in layers), name
        assert terms["tv"] > 0
