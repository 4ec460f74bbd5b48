"""Style images of a run: read at their training size (at most 512 px unless told), refused when missing or
tiny, and named after their files (distinct names for several, a short run name)."""

from __future__ import annotations

import pytest

from fastnst.errors import InputError
from fastnst.training.style_images import MAX_STYLE_SIZE, distinct_names, load_style_image, run_name, style_name
from tests.conftest import synthetic_rgb


def test_style_images_are_read_at_their_training_size(tmp_path):
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    synthetic_rgb(2 * MAX_STYLE_SIZE, MAX_STYLE_SIZE // 2).save(big)
    synthetic_rgb(40, 30).save(small)
    assert load_style_image(big).shape == (1, 3, MAX_STYLE_SIZE // 4, MAX_STYLE_SIZE)  # capped long side
    assert load_style_image(small).shape == (1, 3, 30, 40)  # small ones keep their size
    x = load_style_image(small, style_size=80)
    assert x.shape == (1, 3, 60, 80) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    with pytest.raises(InputError, match="after resizing"):
        load_style_image(small, style_size=20)  # 20x15: under 16 pixels
    with pytest.raises(InputError, match="does not exist"):
        load_style_image(tmp_path / "missing.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(InputError):
        load_style_image(tmp_path / "broken.png")


def test_names_of_styles_and_runs():
    assert style_name("art/wave.jpg") == "wave"
    assert distinct_names(["a/wave.jpg", "b/wave.png", "dots.png", "c/wave.gif"]) == ["wave", "wave_2", "dots",
                                                                                      "wave_3"]
    assert run_name(["wave"]) == "wave" and run_name(["wave", "dots"]) == "wave+dots"
    many = [f"painting{i}" for i in range(8)]
    assert run_name(many) == "painting0+7-more"  # a file name stays short
