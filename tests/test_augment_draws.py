"""Per-row draws of fastnst augment: reproducible from (seed, key), weighted, checked once."""

from __future__ import annotations

from collections import Counter

import pytest

from fastnst.augment.draws import Draws, parse_strength, parse_styles, uniforms
from fastnst.errors import ConfigError, InputError
from fastnst.styles import builtin


def test_default_styles_are_every_builtin_style():
    choices = parse_styles(None)
    assert [c.name for c in choices] == builtin.names() and all(c.builtin and c.weight == 1 for c in choices)


def test_a_draw_depends_only_on_seed_and_key():
    draws = Draws.of("mosaic,halftone,pointillist", "0.5,1", seed=3)
    again = Draws.of(["mosaic", "halftone", "pointillist"], (0.5, 1.0), seed=3)
    keys = [f"data/train.parquet#{i}" for i in range(50)]
    first = [(c.name, s) for c, s in map(draws.draw, keys)]
    assert first == [(c.name, s) for c, s in map(again.draw, reversed(keys))][::-1]  # any order, same draws
    assert first != [(c.name, s) for c, s in map(Draws.of("mosaic,halftone,pointillist", "0.5,1", 4).draw, keys)]
    assert all(0.5 <= s <= 1 and round(s, 3) == s for _, s in first)
    assert uniforms(0, "a") == (0.44217323266109315, 0.0744021793927744)  # pinned: a change needs DRAW_VERSION + 1


def test_weights_are_relative():
    draws = Draws.of("mosaic:3,halftone:1", 1.0)
    counts = Counter(draws.draw(str(i))[0].name for i in range(4000))
    assert 0.71 < counts["mosaic"] / 4000 < 0.79
    assert {s for _, s in map(draws.draw, "abc")} == {1.0}


@pytest.mark.parametrize("spec, match", [("mosiac", "did you mean 'mosaic'"), ("mosaic:0", "positive"),
                                         ("mosaic,mosaic", "twice"), (",", "empty"), ("no/such.jpg", "does not exist")])
def test_bad_styles(spec, match):
    with pytest.raises((ConfigError, InputError), match=match):
        parse_styles(spec)


@pytest.mark.parametrize("spec", ["1.5", "0.9,0.1", "a", "-0.1,1", (0.1, 0.2, 0.3)])
def test_bad_strength(spec):
    with pytest.raises(ConfigError, match="--strength"):
        parse_strength(spec)


def test_a_folder_of_style_images_is_one_style_per_picture(tmp_path):
    from tests.conftest import synthetic_rgb

    (tmp_path / "paintings").mkdir()
    for name in ("b.jpg", "a.png"):
        synthetic_rgb(16, 16).save(tmp_path / "paintings" / name)
    choices = parse_styles({str(tmp_path / "paintings"): 2.0, "mosaic": 1.0})
    assert [c.name.rsplit("/", 1)[-1] for c in choices] == ["a.png", "b.jpg", "mosaic"]
    assert [c.kind for c in choices] == ["file", "file", "builtin"] and choices[0].weight == 2.0
    assert choices[0].picture == str((tmp_path / "paintings" / "a.png").resolve())
