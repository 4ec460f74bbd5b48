"""Style blends of multi-style models (fastnst.runtime.blend): names, indices, weights, errors, the style input."""

from __future__ import annotations

import numpy as np
import pytest

from fastnst.errors import ConfigError
from fastnst.runtime.blend import parse_style, style_feed


def test_parse_style_errors():
    names = ["wave", "mosaic", "udnie"]
    assert parse_style(None, []) is None
    assert parse_style(None, names).tolist() == [1, 0, 0]
    assert parse_style("2", names).tolist() == [0, 0, 1]
    assert np.allclose(parse_style("wave:1,2:3", names), [0.25, 0, 0.75])
    for bad, match in (("wavy", "did you mean 'wave'"), (5, "out of range"), ("wave:-1,mosaic:1", ">= 0"),
                       ("wave:0", "sum to zero"), ({"wave": "x"}, "not a number"), ([1, 2], "needs 3 values"),
                       ("wave:abc", "not a number"), ("wave:0.5,:0.5", "NAME:WEIGHT"),
                       ([1, float("nan"), 0], "finite")):
        with pytest.raises(ConfigError, match=match):
            parse_style(bad, names)
    with pytest.raises(ConfigError, match="single style"):
        parse_style("wave", [])


def test_style_feed_repeats_the_weights_per_image():
    names = ["wave", "mosaic"]
    assert style_feed(None, [], 3) is None  # a single-style model has no style input
    first = style_feed(None, names, 2)
    assert first.dtype == np.float32 and first.tolist() == [[1, 0], [1, 0]]
    blend = style_feed(parse_style("wave:1,mosaic:3", names), names, 3)
    assert blend.shape == (3, 2) and np.allclose(blend, [[0.25, 0.75]] * 3)
