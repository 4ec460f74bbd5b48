"""The torch-free runtime: exact sizes, alpha, EXIF, ICC, strength, colour, tiling, providers, bad models."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from fastnst.errors import ConfigError, InputError, ModelFormatError
from fastnst.training.export import export_onnx
from fastnst.networks.transformer import TransformerNet
from fastnst.image import preserve_colors
from fastnst.runtime import Stylizer
from fastnst.runtime.tiling import TileGrid
from tests.conftest import synthetic_rgb

# Documented seam error (README, tiling): mean |tiled - untiled| (in [0, 1] units) on a 264x200 image,
# 96-px tiles with a 32-px overlap, a random network (untrained instance norms amplify differences).
# Float in and out: 4.0014e-5 with the old in-file tile path, 4.0026e-5 with the runtime graph rewrite
# (the same up to float rounding); per-tile statistics give 0.07.
SEAM_ERROR = 4.1e-5


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(1)
    net = TransformerNet(channels=(4, 8, 8), num_residual=1, end_kernel=3).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    path = export_onnx(net, tmp_path_factory.mktemp("rt") / "tiny.onnx")
    return net, path


@pytest.fixture(scope="module")
def stylizer(model):
    return Stylizer(model[1], providers="cpu")


def test_import_and_run_without_torch(model, tmp_path):
    photo = tmp_path / "photo.jpg"
    synthetic_rgb(333, 517).save(photo)
    code = textwrap.dedent(f"""
        import sys
        for name in ("torch", "lightning", "pytorch_lightning", "datasets", "torchvision", "onnx"):
            sys.modules[name] = None  # any import of these now fails
        from fastnst.runtime import Stylizer
        out = Stylizer({str(model[1])!r}).stylize({str(photo)!r})
        print(out.size)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(333, 517)"


def test_exact_size_and_parity_with_torch(model, stylizer):
    net, _ = model
    img = synthetic_rgb(61, 47)  # odd, not a multiple of the stride
    out = stylizer.stylize(img)
    assert out.size == img.size and out.mode == "RGB"
    # the runtime pads to the stride at the bottom/right; torch on the same padded image agrees
    arr = np.asarray(img)
    padded = np.pad(arr, ((0, 1), (0, 3), (0, 0)), mode="reflect")
    with torch.inference_mode():
        ref = net(torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255)[0, :, :47, :61]
    ref = (ref.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.abs(np.asarray(out).astype(int) - ref).max() <= 1


def test_inputs_path_array_bytes(stylizer, tmp_path):
    img = synthetic_rgb(40, 30)
    path = tmp_path / "x.png"
    img.save(path)
    a = np.asarray(stylizer.stylize(path))
    b = np.asarray(stylizer.stylize(np.asarray(img)))
    c = np.asarray(stylizer.stylize(path.read_bytes()))
    assert a.shape == (30, 40, 3) and np.array_equal(a, b) and np.array_equal(a, c)


def test_alpha_icc_exif(stylizer, tmp_path):
    rgba = synthetic_rgb(40, 30).convert("RGBA")
    alpha = Image.fromarray(np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1)), "L")
    rgba.putalpha(alpha)
    out = stylizer.stylize(rgba)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out.getchannel("A")), np.asarray(alpha))

    icc = b"fake-icc-profile-bytes"
    path = tmp_path / "icc.png"
    synthetic_rgb(24, 20).save(path, icc_profile=icc)
    assert stylizer.stylize(path).info.get("icc_profile") == icc

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    path = tmp_path / "rotated.jpg"
    synthetic_rgb(40, 24).save(path, exif=exif)
    assert stylizer.stylize(path).size == (24, 40)


def test_strength_and_preserve_color(stylizer):
    img = synthetic_rgb(48, 40)
    assert np.array_equal(np.asarray(stylizer.stylize(img, strength=0.0)), np.asarray(img))
    full = np.asarray(stylizer.stylize(img)).astype(np.float32)
    half = np.asarray(stylizer.stylize(img, strength=0.5)).astype(np.float32)
    assert np.abs(half - (full + np.asarray(img)) / 2).max() <= 1.0

    def chroma(a):
        a = np.asarray(a).astype(np.float32) / 255
        return np.stack([a @ np.array([-0.168736, -0.331264, 0.5]), a @ np.array([0.5, -0.418688, -0.081312])])

    kept = stylizer.stylize(img, preserve_color=True)
    assert np.abs(chroma(kept) - chroma(img)).mean() < 0.01
    assert np.abs(chroma(full.astype(np.uint8)) - chroma(img)).mean() > 0.03  # the style did change colours
    luma = np.asarray(kept).astype(np.float32) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(luma - full @ np.array([0.299, 0.587, 0.114])).mean() < 2.0
    assert preserve_colors(np.asarray(img), full / 255).dtype == np.float32


def test_max_size(stylizer):
    assert stylizer.stylize(synthetic_rgb(120, 60), max_size=50).size == (50, 25)


def test_tile_grid_identity_reassembles():
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (203, 157, 3), dtype=np.uint8)
    grid = TileGrid(203, 157, tile=64, overlap=16, stride=4)
    assert all(s % 4 == 0 for s, _ in grid.rows + grid.cols)
    assert grid.rows[-1][1] == 203 and grid.cols[-1][1] == 157
    rows = []
    for y0, band in grid.bands(src, lambda t: t.astype(np.float32) / 255):
        assert y0 == sum(len(r) for r in rows)
        rows.append(band.copy())
    out = np.concatenate(rows)
    assert out.shape == src.shape and np.abs(out * 255 - src).max() < 1e-3


def test_tiled_matches_untiled_within_seam_error(stylizer):
    img = synthetic_rgb(264, 200, seed=5)
    pixels = np.asarray(img).astype(np.float32) / 255  # float in, float out: no 8-bit rounding in the error
    untiled = stylizer.stylize(pixels, tile=0)
    tiled = stylizer.stylize(pixels, tile=96, overlap=32)
    assert tiled.shape == untiled.shape and tiled.dtype == np.float32
    assert np.abs(tiled - untiled).mean() < SEAM_ERROR
    as_uint8 = np.asarray(stylizer.stylize(img, tile=96, overlap=32)).astype(np.float32) / 255
    assert np.abs(as_uint8 - untiled).mean() < SEAM_ERROR + 1 / 255 / 4  # plus rounding to 8 bits
    # without whole-image statistics (per-tile instance norm) the same tiling is far off
    grid = TileGrid(200, 264, 96, 32, stylizer.stride)
    own = np.concatenate([band.copy() for _, band in grid.bands(np.asarray(img), stylizer.run)])
    assert np.abs(np.clip(own, 0, 1) - untiled).mean() > 5 * SEAM_ERROR


def test_providers_and_bad_models(model, tmp_path, monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(ConfigError, match="has no CUDAExecutionProvider"):
        Stylizer(model[1], providers="cuda")
    assert Stylizer(model[1], providers="auto").providers == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="did you mean"):
        Stylizer(model[1], providers="cdua")

    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 10)
    for bad in (empty, garbage):
        with pytest.raises(ModelFormatError):
            Stylizer(bad)
    with pytest.raises(InputError):
        Stylizer(tmp_path / "missing.onnx")

    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "other", [x], [y])
    other = tmp_path / "classifier.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(other))
    with pytest.raises(ModelFormatError, match="not an image-to-image style model"):
        Stylizer(other)


def test_bad_images_and_options(stylizer, tmp_path, monkeypatch):
    for name, data in (("zero.png", b""), ("text.jpg", b"hello"), ("trunc.png", None)):
        path = tmp_path / name
        if data is None:
            buf = io.BytesIO()
            synthetic_rgb(64, 64).save(buf, format="PNG")
            data = buf.getvalue()[: len(buf.getvalue()) // 2]
        path.write_bytes(data)
        with pytest.raises(InputError):
            stylizer.stylize(path)
    monkeypatch.setenv("FASTNST_MAX_PIXELS", "1000")
    with pytest.raises(InputError, match="over the limit"):
        stylizer.stylize(synthetic_rgb(40, 30))
    monkeypatch.delenv("FASTNST_MAX_PIXELS")
    for kwargs in ({"strength": 1.5}, {"max_size": 0}, {"tile": -1}):
        with pytest.raises(ConfigError):
            stylizer.stylize(synthetic_rgb(20, 20), **kwargs)
