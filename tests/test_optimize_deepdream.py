"""fastnst.optimize.deepdream: DeepDream raises the layer's activation, octave by octave."""

from __future__ import annotations

import pytest

from fastnst.errors import ConfigError
from fastnst.optimize.deepdream import dream, dream_result
from tests.optimize_fixtures import RANDOM, content  # noqa: F401 (fixtures)


def test_dream_raises_activation(content):
    seen = []
    r = dream_result(content, "relu3_3", size=48, octaves=2, iterations=4, jitter=4, **RANDOM, callback=seen.append)
    assert r.sizes == [(34, 23), (48, 32)]
    assert r.image.size == (48, 32) and r.extra == {"layer": "relu3_3"}
    assert r.terms["activation"] > 1.2 * r.terms["start_activation"]
    assert [(p.iteration, p.scale, p.size) for p in seen] == [(i + 1, 1 + i // 4, r.sizes[i // 4]) for i in range(8)]
    assert seen[0].text().startswith("relu3_3 scale 1/2 34x23 activation")


def test_stopping_at_a_small_octave_still_returns_the_full_size(content):
    r = dream_result(content, "relu2_2", size=40, octaves=3, iterations=2, jitter=0, **RANDOM,
                     callback=lambda p: p.iteration >= 3)
    assert r.stopped_early and r.iterations == 3 and r.image.size == (40, 27)


@pytest.mark.parametrize("kwargs, message", [
    (dict(octaves=9, size=40), "use fewer --octaves"),
    (dict(octaves=2.5), "--octaves must be a whole number"),
    (dict(octave_scale=1.0), "--octave-scale must be > 1"),
    (dict(jitter=-1), "--jitter must be >= 0"),
    (dict(iterations=0), "iterations must be positive"),
    (dict(layer="relu4_3x"), "did you mean 'relu4_3'"),
])
def test_bad_options(content, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        dream(content, **RANDOM, **kwargs)
