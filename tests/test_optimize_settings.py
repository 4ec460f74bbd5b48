"""fastnst.optimize.settings: defaults with their sources, settings checked once into checked objects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastnst.errors import ConfigError, InputError
from fastnst.optimize import settings as S
from fastnst.optimize.settings import DreamSettings, GatysSettings, OptimizerSettings, check_settings, gatys_settings


def test_every_default_names_its_source():
    """Habit 6: each default is "paper", "reference implementation" or "chosen" (its own comment or its block's)."""
    lines = Path(S.__file__).read_text().splitlines()
    missing = []
    for i, line in enumerate(lines):
        if not re.match(r"^[A-Z][A-Z_]* = [^(]", line):  # a constant that is not a tuple of choices
            continue
        said = line.partition("#")[2]
        j = i - 1
        while j >= 0 and (lines[j].startswith("#") or re.match(r"^[A-Z][A-Z_]* = ", lines[j])):
            said += " " + lines[j].partition("#")[2]
            j -= 1
        if not re.search(r"paper|reference implementation|chosen", said, re.I):
            missing.append(line.split(" =")[0])
    assert missing == []


def test_check_makes_checked_objects():
    s = GatysSettings(content_layers="relu4_2", style_layers="relu1_1, relu2_1", style_layer_weights=[2, 0.5])
    s.check()
    assert s.content_layers == ("relu4_2",) and s.style_layers == ("relu1_1", "relu2_1")
    assert s.style_layer_weights == {"relu1_1": 2.0, "relu2_1": 0.5}
    assert s.layers() == ("relu4_2", "relu1_1", "relu2_1")
    s.check()  # a checked object stays valid
    assert s.style_layer_weights == {"relu1_1": 2.0, "relu2_1": 0.5}


def test_gatys_settings_applies_keywords_and_refuses_unknown_ones():
    base = GatysSettings(style_weight=3.0)
    s = gatys_settings(base, {"tv_weight": 0.5})
    assert (s.style_weight, s.tv_weight) == (3.0, 0.5) and s is not base and isinstance(s.style_layers, tuple)
    with pytest.raises(TypeError, match="unknown option 'style_wieght'"):
        gatys_settings(None, {"style_wieght": 1})


@pytest.mark.parametrize("kwargs, message", [
    (dict(content_layers="relu4_9"), "did you mean 'relu4_"),
    (dict(net="vgg11"), "unknown loss network"),
    (dict(content_weight=-1), "--content-weight must be >= 0, got -1"),
    (dict(style_scale=100), r"--style-scale must be > 0 and <= 64"),
    (dict(style_blend=[1, -1]), "--style-blend must be >= 0"),
    (dict(pooling="min"), "unknown --pooling 'min'"),
    (dict(style_stat="gramm"), "did you mean 'gram'"),
    (dict(style_layer_weights=[1, 2]), "2 style layer weights for 5 style layers"),
    (dict(style_layer_weights={"relu9_1": 1}), "unknown style layer 'relu9_1'"),
    (dict(vgg_normalize="rsm"), "unknown VGG normalisation 'rsm'"),
])
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        GatysSettings(**kwargs).check()
    assert "\n" not in str(info.value)


def test_normalisation_folders(tmp_path):
    GatysSettings(vgg_normalize=str(tmp_path)).check()  # a folder as vgg_normalize: Gatys' mean over it
    GatysSettings(vgg_normalize="mean", normalize_images=str(tmp_path)).check()
    with pytest.raises(InputError, match="does not exist"):
        GatysSettings(normalize_images=str(tmp_path / "missing")).check()


def test_check_blend():
    s = GatysSettings(style_blend=[1, 3])
    assert s.check_blend(2) == [1.0, 3.0] and GatysSettings().check_blend(3) is None
    with pytest.raises(ConfigError, match="2 style blend weights for 3 style images"):
        s.check_blend(3)
    with pytest.raises(ConfigError, match="not all be zero"):
        GatysSettings(style_blend=[0, 0]).check_blend(2)


def test_check_settings_declared_bounds_and_whole_numbers():
    check_settings(DreamSettings())
    check_settings(OptimizerSettings("adam", 0.1))
    with pytest.raises(ConfigError, match="--octaves must be a whole number, got 2.5"):
        check_settings(DreamSettings(octaves=2.5))
    with pytest.raises(ConfigError, match="--octaves must be >= 1 and <= 32"):
        check_settings(DreamSettings(octaves=33))
    with pytest.raises(ConfigError, match="unknown --optimizer 'sgd'"):
        check_settings(OptimizerSettings("sgd"))
    with pytest.raises(ConfigError, match="--lr must be > 0"):
        check_settings(OptimizerSettings("lbfgs", 0))
