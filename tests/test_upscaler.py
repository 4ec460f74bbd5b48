"""Super-resolution on the one engine (fastnst.runtime.upscaler): exact size, same kind back, tiles equal one piece,
checks before work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fastnst.contract import META_FACTOR
from fastnst.errors import ConfigError, InputError, ModelFormatError
from fastnst.networks.sr import SRNet, sr_metadata
from fastnst.runtime.upscaler import Upscaler
from tests.conftest import plain_onnx, synthetic_rgb


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    torch.manual_seed(8)
    net = SRNet(2, channels=8, num_residual=1).eval()
    return Upscaler(plain_onnx(net, tmp_path_factory.mktemp("up") / "x2.onnx", sr_metadata(net)), providers="cpu")


def test_same_kind_back_exactly_f_times_larger(up, tmp_path):
    img = synthetic_rgb(37, 23).convert("RGBA")
    img.putalpha(Image.linear_gradient("L").resize((37, 23)))
    path = tmp_path / "a.png"
    img.save(path, icc_profile=b"icc")
    big = up.upscale(path)
    assert isinstance(big, Image.Image) and big.mode == "RGBA" and big.size == (74, 46)
    assert big.info["icc_profile"] == b"icc"
    assert np.array_equal(np.asarray(big.getchannel("A")),
                          np.asarray(img.getchannel("A").resize((74, 46), Image.Resampling.BICUBIC)))
    rgb = np.asarray(img.convert("RGB"))
    arr = up.upscale(rgb)  # an array in, an array out
    assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and arr.shape == (46, 74, 3)
    assert np.array_equal(arr, np.asarray(big.convert("RGB"))) and np.array_equal(arr, up.upscale_array(rgb))


def test_tiles_equal_one_piece_in_every_kind(up):
    img = synthetic_rgb(70, 45, seed=3)
    whole = up.upscale(img, tile=0)
    tiled = up.upscale(img, tile=16)
    assert np.array_equal(np.asarray(whole), np.asarray(tiled))
    rgb = np.asarray(img)
    assert np.array_equal(up.upscale_array(rgb, tile=0), up.upscale_array(rgb, tile=24))


def test_checks_before_work(up, monkeypatch):
    assert up.factor == 2 and up.device == "cpu" and up.describe()["metadata"][META_FACTOR] == "2"
    with pytest.raises(ConfigError, match="--factor 4 does not match the model, which up-samples x2"):
        up.upscale(synthetic_rgb(20, 20), factor=4)
    up.check_factor(2)
    up.check_factor(None)
    with pytest.raises(InputError, match="too small"):
        up.upscale(synthetic_rgb(5, 20))
    for kwargs, match in (({"tile": 8}, "at least 16"), ({"max_size": 0}, "max_size must be positive")):
        with pytest.raises(ConfigError, match=match):
            up.upscale(synthetic_rgb(20, 20), **kwargs)
    with pytest.raises(ConfigError, match="at least 16"):
        up.upscale_array(np.zeros((40, 40, 3), np.uint8), tile=8)
    assert up.upscale(synthetic_rgb(40, 30), max_size=20).size == (40, 30)  # downscaled to 20x15 first
    monkeypatch.setenv("FASTNST_MAX_PIXELS", str(50 * 50))
    with pytest.raises(InputError, match="above the cap"):
        up.check_size(30, 30)
    monkeypatch.setenv("FASTNST_MAX_PIXELS", "10000")  # said '480x320 = 0 Mpx, above the cap of 0 Mpx'
    with pytest.raises(InputError, match=r"480x320 = 153,600 pixels, above the cap of 10,000;"):
        up.check_size(480 // up.factor, 320 // up.factor)


def test_a_style_model_is_named_as_such(tiny_model):
    with pytest.raises(ModelFormatError, match="is a style model, not a super-resolution model; use it with "
                                               "'fastnst stylize'"):
        Upscaler(tiny_model[0])


def test_shipped_x4_model_runs_out_of_the_box():
    from fastnst.runtime.upscaler import BUILTIN_MODEL

    up = Upscaler(providers="cpu", threads=1)  # no path: the model shipped in the package
    assert up.factor == 4 and str(up.path) == str(BUILTIN_MODEL)
    assert BUILTIN_MODEL.stat().st_size < 1_500_000  # float16 storage keeps the wheel small
    img = synthetic_rgb(24, 18, seed=5)
    big = up.upscale(img)
    assert big.size == (96, 72)
    # a residual over bicubic interpolation: close to it, not equal (it sharpens)
    bicubic = np.asarray(img.resize((96, 72), Image.Resampling.BICUBIC), np.float64)
    diff = np.abs(np.asarray(big, np.float64) - bicubic)
    assert 0.1 < diff.mean() < 12


def test_missing_shipped_model_is_one_clear_error(monkeypatch, tmp_path):
    from fastnst.runtime import upscaler

    monkeypatch.setattr(upscaler, "BUILTIN_MODEL", tmp_path / "gone.onnx")
    with pytest.raises(InputError, match="reinstall fastnst, or pass --model"):
        Upscaler()
