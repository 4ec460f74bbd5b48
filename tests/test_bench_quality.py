"""The picture measures of scripts/bench_quality.py on images whose answer is known."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_SPEC = importlib.util.spec_from_file_location("bench_quality", Path(__file__).parents[1] / "scripts" /
                                               "bench_quality.py")
bq = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bq)


def _image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


def _photo(h: int = 64, w: int = 96) -> np.ndarray:
    """Left half a white wall, right half a textured dark-blue scene with edges."""
    rng = np.random.default_rng(0)
    img = np.zeros((h, w, 3))
    img[:, : w // 2] = 245
    img[:, w // 2:] = [30, 50, 120]
    img[h // 4: h // 2, w // 2 + 8: w - 8] = [200, 180, 40]
    img[:, w // 2:] += rng.normal(0, 8, (h, w - w // 2, 3))
    return img


def test_edge_correlation_is_one_for_the_photo_and_low_for_a_flat_image() -> None:
    photo = _image(_photo())
    assert bq.edge_correlation(photo, photo) == pytest.approx(1.0)
    assert abs(bq.edge_correlation(_image(np.full((64, 96, 3), 128.0)), photo)) < 1e-6


def test_bright_region_sees_pink_on_the_white_wall_only() -> None:
    photo = _photo()
    pink = photo.copy()
    pink[:, :48] = [250, 150, 220]  # the white wall turned pink
    grey = photo.copy()
    grey[:, :48] = [200, 200, 200]
    r_pink = bq.bright_region(_image(pink), _image(photo))
    r_grey = bq.bright_region(_image(grey), _image(photo))
    assert r_pink["bright_pink"] == pytest.approx(1.0)
    assert r_pink["bright_chroma"] > 25
    assert r_grey["bright_pink"] == 0.0 and r_grey["bright_chroma"] < 2
    dark = photo.copy()
    dark[:, :48] = [40, 40, 40]  # no near-white pixels: no verdict
    assert math.isnan(bq.bright_region(_image(dark), _image(dark))["bright_pink"])


def test_speckle_grows_with_pixel_noise_and_ignores_smooth_shading() -> None:
    y, x = np.mgrid[0:64, 0:64]
    smooth = np.stack([x * 3.0, y * 3.0, (x + y) * 1.5], -1)
    noisy = smooth + np.random.default_rng(1).normal(0, 20, smooth.shape)
    assert bq.speckle_energy(_image(smooth)) < 1.0
    assert bq.speckle_energy(_image(noisy)) > 100 * max(bq.speckle_energy(_image(smooth)), 1.0)


def test_lands_names_the_gatys_interval() -> None:
    at = {50: 3.0, 100: 2.0, 300: 1.0}
    assert bq._lands(2.5, at) == "50-100"
    assert bq._lands(4.0, at) == ">50"
    assert bq._lands(0.5, at) == "<300"
