"""--stroke-scale: the output keeps its size and its dominant spatial frequency moves down as S grows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fastnst import cli
from fastnst.errors import ConfigError
from fastnst.networks.sr import SRNet, sr_metadata
from fastnst.networks.transformer import TransformerNet
from fastnst.runtime import Stylizer
from fastnst.runtime.strokes import ScaledStylizer, check_stroke_scale, stroke_frequency, with_stroke_scale
from fastnst.runtime.upscaler import Upscaler
from tests.conftest import plain_onnx, synthetic_rgb


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("strokes")
    torch.manual_seed(11)
    style = TransformerNet(channels=(4, 8, 8), num_residual=1, end_kernel=3).eval()
    sr = SRNet(2, channels=8, num_residual=1).eval()
    return plain_onnx(style, folder / "style.onnx"), plain_onnx(sr, folder / "x2.onnx", sr_metadata(sr))


def _noise(size: int = 96, seed: int = 0) -> np.ndarray:
    """White noise around mid-grey: the network's own texture ("strokes") dominates the output."""
    rng = np.random.default_rng(seed)
    return np.clip(128 + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)


def test_dominant_frequency_moves_with_scale(models):
    stylizer = Stylizer(models[0])
    src = _noise()
    freq = {s: stroke_frequency(ScaledStylizer(stylizer, s).stylize(src) if s != 1 else stylizer.stylize(src))
            for s in (0.5, 1.0, 2.0, 4.0)}
    # larger strokes -> lower spatial frequency, roughly in proportion (measured: 0.26, 0.23, 0.11, 0.055);
    # S < 1 is bounded by the Nyquist frequency: the plain output is already fine-grained
    assert freq[0.5] > 1.1 * freq[1.0]
    assert 1.5 < freq[1.0] / freq[2.0] < 2.7
    assert 1.4 < freq[2.0] / freq[4.0] < 2.7


def test_stroke_frequency_of_known_patterns():
    y, x = np.mgrid[0:64, 0:64]
    fine = (128 + 100 * np.sin(2 * np.pi * x / 4)).astype(np.uint8)
    coarse = (128 + 100 * np.sin(2 * np.pi * x / 16)).astype(np.uint8)
    assert stroke_frequency(fine) == pytest.approx(0.25, abs=0.03)
    assert stroke_frequency(coarse) == pytest.approx(1 / 16, abs=0.02)


def test_exact_size_kinds_and_sr_path(models):
    stylizer = Stylizer(models[0])
    photo = synthetic_rgb(101, 67, seed=4)
    for scale in (0.5, 1.5, 3.0):
        out = ScaledStylizer(stylizer, scale).stylize(photo)
        assert isinstance(out, Image.Image) and out.size == (101, 67)
    arr = np.asarray(photo)
    out = ScaledStylizer(stylizer, 2.0, Upscaler(models[1])).stylize(arr)
    assert out.dtype == np.uint8 and out.shape == arr.shape
    floats = ScaledStylizer(stylizer, 2.0).stylize(arr.astype(np.float32) / 255)
    assert floats.dtype == np.float32 and floats.shape == arr.shape
    # strength 0 gives the photo back
    same = ScaledStylizer(stylizer, 2.0).stylize(arr, strength=0.0)
    assert np.array_equal(same, arr)
    assert with_stroke_scale(stylizer, 1.0) is stylizer


def test_bad_scales(models, tmp_path, capsys):
    for bad in (0.1, 5, float("nan"), "x"):
        with pytest.raises(ConfigError, match="--stroke-scale must be"):
            check_stroke_scale(bad)
    src = tmp_path / "p.png"
    synthetic_rgb(40, 30).save(src)
    out = tmp_path / "o.png"
    for extra, message in ((["--stroke-scale", "9"], "--stroke-scale must be >= 0.25 and <= 4, got 9.0"),
                           (["--sr-model", str(models[1])], "--sr-model brings back a stylisation made at a smaller "
                                                            "size; it needs --stroke-scale > 1")):
        assert cli.main(["stylize", "--model", str(models[0]), str(src), "-o", str(out), *extra]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and err[0].startswith("fastnst: error:") and message in err[0], err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]  # nothing written, no temp file left
    assert cli.main(["stylize", "--model", str(models[0]), str(src), "-o", str(out), "--stroke-scale", "2",
                     "--sr-model", str(models[1])]) == 0
    assert Image.open(out).size == (40, 30)


def test_every_kind_comes_back_like_the_stylizer_gives_it(models):
    """The wrapper makes the stylizer's round trip: an RGBA array keeps its alpha, a gray one comes back in colour
    (before, the wrapper had its own reading and returned HxWx3, or refused HxW)."""
    scaled = ScaledStylizer(Stylizer(models[0]), 2.0)
    rgb = np.asarray(synthetic_rgb(50, 34, seed=6))
    rgba = np.dstack([rgb, np.full((34, 50), 123, np.uint8)])
    out = scaled.stylize(rgba, strength=0.7)
    assert out.shape == (34, 50, 4) and (out[:, :, 3] == 123).all()
    assert np.array_equal(out[:, :, :3], scaled.stylize(rgb, strength=0.7))
    assert scaled.stylize(rgb[:, :, 0]).shape == (34, 50, 3)
    assert np.array_equal(scaled.render(rgb, scaled.settings(strength=0.7)), scaled.stylize(rgb, strength=0.7))
    assert len(scaled.stylize_many([rgb, rgb[:20]], batch_size=2)) == 2
