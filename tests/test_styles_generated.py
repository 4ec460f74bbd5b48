"""Code-generated style pictures: deterministic, right size, real texture, helpful errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fastnst.errors import ConfigError
from fastnst.styles.generated import NAMES, generate_style, names


@pytest.mark.parametrize("name", NAMES)
def test_each_style_is_deterministic_sized_and_textured(name):
    a = generate_style(name, size=96, seed=3)
    b = generate_style(name, size=96, seed=3)
    assert a.size == (96, 96) and a.mode == "RGB"
    arr = np.asarray(a, np.float32) / 255.0
    assert np.array_equal(arr, np.asarray(b, np.float32) / 255.0)
    # not flat: colour varies over the picture, and there is fine texture (neighbouring pixels differ)
    assert arr.std(axis=(0, 1)).mean() > 0.08
    assert np.abs(np.diff(arr, axis=1)).mean() > 0.02
    # colourful, not grey: a real spread between channels somewhere
    assert (arr.max(axis=2) - arr.min(axis=2)).mean() > 0.1


def test_seed_changes_the_picture_and_name_changes_it_too():
    a = np.asarray(generate_style("mosaic", size=64, seed=0), np.int16)
    b = np.asarray(generate_style("mosaic", size=64, seed=1), np.int16)
    c = np.asarray(generate_style("stained_glass", size=64, seed=0), np.int16)
    assert np.abs(a - b).mean() > 10
    assert np.abs(a - c).mean() > 10


def test_features_scale_with_size():
    # the same picture at two sizes: the small one looks like the large one downscaled
    big = generate_style("stained_glass", size=256, seed=0).resize((64, 64))
    small = generate_style("stained_glass", size=64, seed=0)
    other = generate_style("stained_glass", size=64, seed=5)
    d_same = np.abs(np.asarray(big, np.float32) - np.asarray(small, np.float32)).mean()
    d_other = np.abs(np.asarray(other, np.float32) - np.asarray(small, np.float32)).mean()
    assert d_same < 0.6 * d_other


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"did you mean 'stained_glass'\?.*valid: mosaic"):
        generate_style("stainedglass")


@pytest.mark.parametrize("kwargs", [{"size": 10}, {"size": 100000}, {"size": 64.0}, {"seed": -1}, {"size": True}])
def test_bad_size_or_seed(kwargs):
    with pytest.raises(ConfigError):
        generate_style("mosaic", **kwargs)


def test_names():
    assert names() == list(NAMES) and len(NAMES) >= 4
    assert {"mosaic", "stained_glass", "brushstrokes", "halftone"} <= set(NAMES)


def test_module_does_not_import_torch():
    import subprocess
    code = ("import sys; import fastnst.styles.generated as g; g.generate_style('halftone', size=64); "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
