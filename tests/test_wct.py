"""The exact whitening and colouring transform (fastnst.runtime.wct) against the formula, on random features."""

from __future__ import annotations

import numpy as np
import pytest

from fastnst.runtime.wct import Affine, FeatureStats, blend, colouring, transform, whitening


def _features(seed: int, c: int = 12, hw: tuple[int, int] = (20, 15)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(c, c))
    return (mix @ rng.normal(size=(c, hw[0] * hw[1]))).reshape(1, c, *hw).astype(np.float32) + rng.normal(size=(1, c, 1, 1))


def test_whitened_covariance_is_identity_and_coloured_covariance_is_the_styles():
    fc, fs = _features(0), _features(1, hw=(31, 9))
    c, s = FeatureStats.of(fc), FeatureStats.of(fs)
    flat = fc[0].reshape(12, -1).astype(np.float64)
    white = whitening(c, ridge=0.0) @ (flat - c.mean[:, None])
    assert np.allclose(np.cov(white), np.eye(12), atol=1e-4)
    out = transform(c, s, 1.0, ridge=0.0, colour=colouring(s, ridge=0.0))(fc)
    o = FeatureStats.of(out)
    assert np.allclose(o.cov, s.cov, atol=1e-4 * np.abs(s.cov).max()) and np.allclose(o.mean, s.mean, atol=1e-4)


def test_strength_zero_is_the_identity_and_a_blend_of_one_map_is_that_map():
    fc, fs = _features(2), _features(3)
    c, s = FeatureStats.of(fc), FeatureStats.of(fs)
    identity = transform(c, s, 0.0)
    assert np.allclose(identity(fc), fc, atol=1e-5)
    full = transform(c, s, 1.0)
    one = blend([full], [3.0])
    assert np.allclose(one.matrix, full.matrix) and np.allclose(one.bias, full.bias)
    half = blend([full, identity], [1, 1])
    assert np.allclose(half(fc), 0.5 * full(fc) + 0.5 * fc, atol=1e-4)


def test_the_colouring_of_a_known_covariance_is_its_square_root():
    stats = FeatureStats(np.zeros(3), np.diag([4.0, 9.0, 0.0]), 10)
    k = colouring(stats, ridge=0.0)
    assert np.allclose(k, np.diag([2.0, 3.0, 0.0]), atol=1e-5)


@pytest.mark.parametrize("flat", ["content", "style"])
def test_flat_features_give_finite_transforms(flat):
    f = _features(4)
    zero = np.ones_like(f) * 0.5
    c = FeatureStats.of(zero if flat == "content" else f)
    s = FeatureStats.of(zero if flat == "style" else f)
    out = transform(c, s, 1.0)(zero if flat == "content" else f)
    assert np.isfinite(out).all()
    if flat == "style":  # every pixel takes the style's (flat) value
        assert np.allclose(out, 0.5, atol=1e-2)


def test_video_statistics_mix():
    a, b = FeatureStats.of(_features(5)), FeatureStats.of(_features(6))
    m = a.mix(b, 0.25)
    assert np.allclose(m.mean, 0.75 * a.mean + 0.25 * b.mean) and np.allclose(m.cov, 0.75 * a.cov + 0.25 * b.cov)
    assert isinstance(transform(m, b), Affine)
