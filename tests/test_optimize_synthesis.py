"""fastnst.optimize.synthesis: texture synthesis of any size lowers the style loss."""

from __future__ import annotations

import pytest

from fastnst.errors import ConfigError
from fastnst.optimize.synthesis import texture, texture_result
from tests.optimize_fixtures import RANDOM, style  # noqa: F401 (fixtures)


def test_texture_any_size_lowers_style_loss(style):
    seen = []
    r = texture_result(style, (56, 24), iterations=15, **RANDOM, callback=seen.append)
    assert r.image.size == (56, 24)
    assert "content" not in r.terms
    assert r.terms["style"] < 0.7 * seen[0].terms["style"]  # the result is the best image evaluated
    assert r.terms["style"] <= 1.01 * min(p.terms["style"] for p in seen)


def test_square_size_and_init_from_the_style(style):
    img = texture(style, 24, iterations=1, init="style", **RANDOM)
    assert img.size == (24, 24)


@pytest.mark.parametrize("args, kwargs, message", [
    (([],), {}, "give at least one style image"),  # was an IndexError
    ((None, (0, 20)), {}, "width must be positive"),
    ((None, "big"), {}, "size must be N or"),
    ((None,), {"init": "content"}, "unknown init 'content'"),
    ((None,), {"style_weight": 0}, "needs a positive style weight"),
    ((None, 8), {}, "too small for layer relu5_1"),
])
def test_bad_options(style, args, kwargs, message):
    args = (style,) + args[1:] if args[0] is None else args
    with pytest.raises(ConfigError, match=message):
        texture(*args, iterations=1, **RANDOM, **kwargs)
