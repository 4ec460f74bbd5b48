"""fastnst.optimize.inversion: feature inversion reaches a lower feature loss; several layers share one network."""

from __future__ import annotations

import pytest

from fastnst.errors import ConfigError
from fastnst.networks import vgg as vgg_mod
from fastnst.optimize.inversion import inversion_grid, invert, invert_layers, invert_result
from tests.conftest import synthetic_rgb
from tests.optimize_fixtures import RANDOM, content  # noqa: F401 (fixtures)


def test_invert_reaches_lower_feature_loss_than_start(content, tmp_path):
    r = invert_result(content, "relu2_2", size=48, iterations=15, **RANDOM)
    assert r.terms["feature"] < 0.3 * r.extra["start_terms"]["feature"]
    assert r.image.size == (48, 32) and r.extra["layer"] == "relu2_2"
    other = tmp_path / "other.png"
    synthetic_rgb(48, 32, seed=7).save(other)
    r2 = invert_result(content, "relu3_1", init=str(other), size=48, iterations=8, **RANDOM)
    assert r2.terms["feature"] < r2.extra["start_terms"]["feature"]


def test_invert_layers_shares_one_network_and_counts_over_layers(content, monkeypatch):
    built = []
    original = vgg_mod.build_vgg
    monkeypatch.setattr("fastnst.optimize.inversion.build_vgg", lambda *a, **k: built.append(a[0]) or original(*a, **k))
    seen = []
    results = invert_layers(content, "relu1_2,relu2_1", size=32, iterations=2, callback=seen.append, **RANDOM)
    assert list(results) == ["relu1_2", "relu2_1"] and built == [("relu1_2", "relu2_1")]
    assert [(p.iteration, p.total, p.stage) for p in seen] == [
        (1, 4, "relu1_2 (1/2)"), (2, 4, "relu1_2 (1/2)"), (3, 4, "relu2_1 (2/2)"), (4, 4, "relu2_1 (2/2)")]
    grid = inversion_grid(content, results)
    assert grid.size[0] > 3 * 32 and grid.size[1] >= 21


@pytest.mark.parametrize("call, message", [
    (lambda img: invert(img, "relu1_2,relu2_1", **RANDOM), "invert takes one layer"),
    (lambda img: invert(img, "relu2_3", **RANDOM), "did you mean 'relu2_"),
    (lambda img: invert(img, "relu2_2", init="content", **RANDOM), "unknown init 'content'"),
    (lambda img: invert(img, "relu5_1", size=8, **RANDOM), "too small for layer relu5_1"),
    (lambda img: invert(img, "relu2_2", tv_weight=-1, **RANDOM), "tv weight must be at least 0"),
    (lambda img: invert_layers(img, "relu1_1,relu5_1", size=8, **RANDOM), "too small for layer relu5_1"),
])
def test_bad_options_before_any_work(content, call, message):
    with pytest.raises(ConfigError, match=message):
        call(content)
