"""One image's round trip through an engine (fastnst.runtime.roundtrip): read any kind, give back the same kind."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fastnst.errors import InputError
from fastnst.runtime.roundtrip import Canvas, give_back, read
from tests.conftest import synthetic_rgb

ICC = b"fake icc profile"


def _rgba_png(tmp_path):
    img = synthetic_rgb(30, 20).convert("RGBA")
    img.putalpha(Image.linear_gradient("L").resize((30, 20)))
    path = tmp_path / "a.png"
    img.save(path, icc_profile=ICC)
    return path, img


def test_files_come_back_as_pil_images_with_alpha_and_icc(tmp_path):
    path, original = _rgba_png(tmp_path)
    item = read(path)
    assert item.kind == "pil" and item.src.dtype == np.uint8 and item.src.shape == (20, 30, 3) and item.icc == ICC
    out = give_back(item.src.astype(np.float32) / 255, item)
    assert out.mode == "RGBA" and out.info["icc_profile"] == ICC
    assert np.array_equal(np.asarray(out), np.asarray(original))
    bigger = give_back(np.zeros((40, 60, 3), np.float32), item)  # a result of another size (upscaling)
    assert bigger.size == (60, 40) and bigger.getchannel("A").size == (60, 40)
    assert read(io.BytesIO(path.read_bytes())).kind == "pil"


def test_arrays_come_back_as_arrays_of_their_dtype():
    u8 = np.asarray(synthetic_rgb(30, 20))
    item = read(u8)
    assert item.kind == "array" and item.src is not u8 and np.array_equal(item.src, u8)
    assert give_back(item.src, item).dtype == np.uint8
    f64 = u8 / 255.0
    item = read(f64)
    assert item.src.dtype == np.float32  # float precision kept (no 8-bit rounding)
    back = give_back(item.src + 0.5, item)  # out-of-range results are clipped
    assert back.dtype == np.float64 and back.max() == 1.0
    rgba = np.dstack([u8, np.full((20, 30), 9, np.uint8)])
    four = give_back(read(rgba).src, read(rgba))
    assert four.shape == (20, 30, 4) and (four[:, :, 3] == 9).all()
    assert give_back(read(u8[:, :, 0]).src, read(u8[:, :, 0])).shape == (20, 30, 3)  # gray in, colour out


def test_max_size_and_bad_arrays():
    u8 = np.asarray(synthetic_rgb(60, 40))
    rgba = np.dstack([u8, np.full((40, 60), 200, np.uint8)])
    small = read(rgba, max_size=30)
    assert small.src.shape == (20, 30, 3) and small.alpha.shape == (20, 30)
    assert read(u8.astype(np.float32) / 255, max_size=30).src.dtype == np.float32
    for bad, match in ((np.zeros((4, 4, 2), np.uint8), "HxWx3"), (np.full((4, 4, 3), np.nan, np.float32), "NaN")):
        with pytest.raises(InputError, match=match):
            read(bad)


@pytest.mark.parametrize("kind", ["pil", "uint8", "float32"])
def test_a_canvas_assembles_bands_like_the_whole(kind):
    rgb = np.asarray(synthetic_rgb(30, 20)).astype(np.float32) / 255
    source = {"pil": synthetic_rgb(30, 20), "uint8": np.asarray(synthetic_rgb(30, 20)), "float32": rgb}[kind]
    item = read(source)
    canvas = Canvas(item, 30, 20)
    for y0 in range(0, 20, 7):
        canvas.put(y0, rgb[y0:y0 + 7])
    whole, bands = give_back(rgb, item), canvas.give_back()
    assert type(whole) is type(bands) and np.array_equal(np.asarray(whole), np.asarray(bands))
