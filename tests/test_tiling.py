"""Runtime graph rewrite for tiling (third-party 0..255 models, old models, models without instance
norm), multi-style models and the runtime API (return types, batches, streams, one-liner). Providers and
threads: test_providers.py; style blends: test_blend.py."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from torch import nn

import fastnst
from fastnst import cli
from fastnst.contract import INPUT_NAME, META_STYLES, OUTPUT_NAME, STYLE_NAME
from fastnst.errors import ConfigError, ModelFormatError
from fastnst.training.export import export_onnx
from fastnst.runtime import Stylizer
from fastnst.runtime.tiling import TileGrid
from tests.conftest import synthetic_rgb

SEAM_ERROR = 4.1e-5  # as tests/test_runtime.py: today's seam error on a random network


class ZooLike(nn.Module):
    """A small Johnson-style network taking and returning RGB 0..255, like the ONNX model zoo's
    fast_neural_style models (instance norms with affine parameters, stride-2 down/up-sampling)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3)
        self.n1 = nn.InstanceNorm2d(8, affine=True)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2)
        self.n2 = nn.InstanceNorm2d(8, affine=True)
        self.c3 = nn.Conv2d(8, 3, 3)
        with torch.no_grad():
            for n in (self.n1, self.n2):
                n.weight.uniform_(0.5, 1.5)
                n.bias.uniform_(-0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.n1(self.c1(F.pad(x / 255.0, (1, 1, 1, 1), mode="reflect"))))
        y = F.relu(self.n2(self.c2(F.pad(y, (1, 1, 1, 1), mode="reflect"))))
        y = F.interpolate(y, scale_factor=2.0, mode="nearest")
        return torch.sigmoid(self.c3(F.pad(y, (1, 1, 1, 1), mode="reflect"))) * 255.0


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """ZooLike exported the way the zoo's models are: fixed 64x64 size, names input1/output1, opset 11."""
    torch.manual_seed(3)
    net = ZooLike().eval()
    path = tmp_path_factory.mktemp("zoo") / "zoo.onnx"
    torch.onnx.export(net, torch.rand(1, 3, 64, 64) * 255, str(path), dynamo=False, opset_version=11,
                      input_names=["input1"], output_names=["output1"])
    return net, path


def test_third_party_0_255_model_tiles_seamlessly(zoo):
    net, path = zoo
    model = onnx.load(str(path))
    assert model.graph.input[0].type.tensor_type.shape.dim[2].dim_value == 64  # a fixed-size file
    s = Stylizer(path, providers="cpu", input_range=255)
    assert s.input_name == "input1" and s.static_size is None  # the fixed size was lifted at load
    pixels = np.asarray(synthetic_rgb(200, 152, seed=2)).astype(np.float32) / 255
    untiled = s.stylize(pixels, tile=0)
    with torch.inference_mode():  # the runtime feeds 0..255 and scales the output back to [0, 1]
        ref = net(torch.from_numpy(pixels * 255).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy() / 255
    assert np.abs(untiled - ref).max() < 1e-4
    tiled = s.stylize(pixels, tile=64, overlap=24)
    assert np.abs(tiled - untiled).mean() < SEAM_ERROR
    grid = TileGrid(152, 200, 64, 24, s.stride)  # per-tile statistics: a visible patchwork
    own = np.concatenate([b.copy() for _, b in grid.bands(pixels, s.run)])
    assert np.abs(np.clip(own, 0, 1) - untiled).mean() > 10 * SEAM_ERROR
    # the wrong range gives another picture (the option matters)
    assert np.abs(Stylizer(path, providers="cpu").stylize(pixels, tile=0) - untiled).mean() > 0.01


def test_cli_tiles_a_third_party_model(zoo, tmp_path, capsys):
    photo = tmp_path / "p.png"
    synthetic_rgb(150, 110).save(photo)
    out = tmp_path / "o.png"
    assert cli.main(["stylize", "-m", str(zoo[1]), str(photo), "-o", str(out), "--tile", "64",
                     "--input-range", "255"]) == 0
    assert Image.open(out).size == (150, 110)


def _legacy(plain_path, out_path):
    """A model shaped like those fastnst exported before the plain file: three extra inputs with
    default values (initialisers that are also graph inputs) and two extra outputs."""
    model = onnx.load(str(plain_path))
    g = model.graph
    small = np.zeros((1, 3, 16, 16), np.float32)
    for name, value in (("stats_image", small), ("tile", small), ("tile_stats", np.zeros((1, 4), np.float32))):
        g.initializer.append(numpy_helper.from_array(value, name))
        g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    g.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), "legacy_axes"))
    g.node.extend([helper.make_node("ReduceMean", ["stats_image", "legacy_axes"], ["norm_stats"], keepdims=0),
                   helper.make_node("Identity", ["tile"], ["stylized_tile"])])
    g.output.extend([helper.make_tensor_value_info("norm_stats", TensorProto.FLOAT, None),
                     helper.make_tensor_value_info("stylized_tile", TensorProto.FLOAT, None)])
    onnx.save(model, str(out_path))
    return out_path


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    torch.manual_seed(1)
    from fastnst.networks.transformer import TransformerNet

    net = TransformerNet(channels=(4, 8, 8), num_residual=1, end_kernel=3).eval()
    return net, export_onnx(net, tmp_path_factory.mktemp("plain") / "tiny.onnx")


def test_old_models_with_tiling_inputs_still_run(plain, tmp_path):
    old = _legacy(plain[1], tmp_path / "old.onnx")
    s_old, s_new = Stylizer(old, providers="cpu"), Stylizer(plain[1], providers="cpu")
    assert s_old.legacy and [i.name for i in s_old.session.get_inputs()] == [INPUT_NAME]
    assert s_old.session.get_overridable_initializers() == []  # stripped at load: no extra work per call
    img = synthetic_rgb(150, 120)
    assert np.array_equal(np.asarray(s_old.stylize(img)), np.asarray(s_new.stylize(img)))
    assert np.array_equal(np.asarray(s_old.stylize(img, tile=64)), np.asarray(s_new.stylize(img, tile=64)))


def test_model_without_instance_norm_tiles_as_is(tmp_path):
    conv = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Sigmoid()).eval()
    path = tmp_path / "conv.onnx"
    torch.onnx.export(conv, torch.rand(1, 3, 32, 32), str(path), dynamo=False, input_names=["image"],
                      output_names=["stylized"], dynamic_axes={"image": {2: "h", 3: "w"}, "stylized": {2: "h", 3: "w"}})
    s = Stylizer(path, providers="cpu")
    pixels = np.asarray(synthetic_rgb(100, 90)).astype(np.float32) / 255
    tiled = s.stylize(pixels, tile=32, overlap=8)  # no statistics to share: tiles run as they are
    assert not s.has_tile_path and "no InstanceNormalization" in s.tiling_note
    assert np.abs(tiled - s.stylize(pixels, tile=0)).max() < 1e-5


def test_bad_model_signatures(tmp_path):
    x = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])
    z = helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 3, 8, 8])
    two = helper.make_graph([helper.make_node("Add", ["a", "b"], ["c"])], "two", [x, y], [z])
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(two, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelFormatError, match="inputs 'a', 'b'"):
        Stylizer(path)
    photo = tmp_path / "p.png"
    synthetic_rgb(20, 20).save(photo)
    assert cli.main(["stylize", "-m", str(path), str(photo), "-o", str(tmp_path / "o.png")]) == 2
    assert not (tmp_path / "o.png").exists()


# ------------------------------------------------------------------------------------------ styles

class TwoStyle(nn.Module):
    """A toy multi-style network with conditional instance norm (the interface of TransformerNet with
    num_styles > 1): forward(x, style) with style (N, num_styles) blend weights."""

    num_styles = 2
    style_names = ["wave", "mosaic"]
    min_size = 8

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1, padding_mode="reflect")
        self.c2 = nn.Conv2d(6, 3, 3, padding=1, padding_mode="reflect")
        self.gamma = nn.Parameter(torch.rand(2, 6) + 0.5)
        self.beta = nn.Parameter(torch.rand(2, 6) - 0.5)

    @property
    def config(self):
        return {"style_names": self.style_names}

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        if style is None:
            style = torch.zeros(x.shape[0], 2)
            style[:, 0] = 1
        y = F.instance_norm(self.c1(x))
        y = y * (style @ self.gamma)[:, :, None, None] + (style @ self.beta)[:, :, None, None]
        return torch.sigmoid(self.c2(F.relu(y)))


@pytest.fixture(scope="module")
def two_style(tmp_path_factory):
    torch.manual_seed(4)
    net = TwoStyle().eval()
    return net, export_onnx(net, tmp_path_factory.mktemp("styles") / "two.onnx")


def test_multi_style_export_and_runtime(two_style):
    net, path = two_style
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == [INPUT_NAME, STYLE_NAME]
    assert [o.name for o in model.graph.output] == [OUTPUT_NAME]
    assert not {i.name for i in model.graph.initializer} & {INPUT_NAME, STYLE_NAME}
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta[META_STYLES]) == ["wave", "mosaic"]
    s = Stylizer(path, providers="cpu")
    assert s.style_names == ["wave", "mosaic"] and s.describe()["styles"] == ["wave", "mosaic"]
    pixels = np.asarray(synthetic_rgb(48, 40)).astype(np.float32) / 255
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None]

    def torch_out(w):
        with torch.inference_mode():
            return net(x, torch.tensor([w], dtype=torch.float32))[0].permute(1, 2, 0).numpy()

    assert np.abs(s.stylize(pixels, style="mosaic") - torch_out([0, 1])).max() < 1e-4
    assert np.abs(s.stylize(pixels, style=1) - torch_out([0, 1])).max() < 1e-4
    assert np.abs(s.stylize(pixels) - torch_out([1, 0])).max() < 1e-4  # no style: the first
    blend = s.stylize(pixels, style="wave:0.25,mosaic:0.75")
    assert np.abs(blend - torch_out([0.25, 0.75])).max() < 1e-4
    assert np.allclose(blend, s.stylize(pixels, style={"wave": 1, "mosaic": 3}), atol=1e-6)
    assert np.allclose(blend, s.stylize(pixels, style=np.array([0.25, 0.75])), atol=1e-6)
    # tiling rewrites the conditional instance norm too
    big = np.asarray(synthetic_rgb(160, 120, seed=7)).astype(np.float32) / 255
    assert np.abs(s.stylize(big, tile=64, overlap=24, style="mosaic")
                  - s.stylize(big, tile=0, style="mosaic")).mean() < SEAM_ERROR


def test_cli_style_option(two_style, tmp_path, capsys):
    photo = tmp_path / "p.png"
    synthetic_rgb(40, 32).save(photo)
    assert cli.main(["stylize", "-m", str(two_style[1]), str(photo), "-o", str(tmp_path / "a.png"),
                     "--style", "wave:0.5,mosaic:0.5"]) == 0
    capsys.readouterr()
    assert cli.main(["stylize", "-m", str(two_style[1]), str(photo), "-o", str(tmp_path / "b.png"),
                     "--style", "mosiac"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'mosaic'" in err[0] and not (tmp_path / "b.png").exists()


def test_style_for_a_single_style_model(plain):
    with pytest.raises(ConfigError, match="single style"):
        Stylizer(plain[1]).stylize(synthetic_rgb(20, 20), style="wave")


# ------------------------------------------------------------------------------------------ API

def test_returns_what_it_was_given(plain):
    s = Stylizer(plain[1], providers="cpu")
    img = synthetic_rgb(37, 29)
    u8 = np.asarray(img)
    assert isinstance(s.stylize(img), Image.Image)
    out = s.stylize(u8)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == (29, 37, 3)
    assert np.array_equal(out, np.asarray(s.stylize(img)))
    f64 = s.stylize(u8 / 255.0)
    assert f64.dtype == np.float64 and f64.shape == (29, 37, 3) and 0 <= f64.min() and f64.max() <= 1
    assert np.abs(f64 * 255 - out).max() <= 1.0
    rgba = np.dstack([u8, np.full((29, 37), 77, np.uint8)])
    out4 = s.stylize(rgba)
    assert out4.shape == (29, 37, 4) and (out4[:, :, 3] == 77).all()
    assert s.stylize(u8[:, :, 0]).shape == (29, 37, 3)  # gray in: colour out
    assert s.stylize(u8, max_size=20).shape == (16, 20, 3)


def test_batches_and_streams(plain):
    s = Stylizer(plain[1], providers="cpu")
    frames = [np.asarray(synthetic_rgb(40, 32, seed=i)) for i in range(5)] + [np.asarray(synthetic_rgb(24, 24))]
    single = [s.stylize(f) for f in frames]
    batched = s.stylize_many(frames, batch_size=3)
    assert len(batched) == 6 and all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(batched, single))
    seen = []

    def source():
        for i, f in enumerate(frames):
            seen.append(i)
            yield f

    stream = s.stylize_iter(source(), batch_size=2)
    first = next(stream)
    assert seen == [0, 1] and np.abs(first.astype(int) - single[0]).max() <= 1  # lazy: one batch at a time
    assert len(list(stream)) == 5
    with pytest.raises(ConfigError, match="batch_size"):
        s.stylize_many(frames, batch_size=0)


def test_one_liner(plain, tmp_path):
    photo = tmp_path / "p.jpg"
    synthetic_rgb(30, 20).save(photo)
    out = fastnst.stylize(photo, plain[1])
    assert isinstance(out, Image.Image) and out.size == (30, 20)
    assert fastnst.stylize(np.asarray(out), str(plain[1]), strength=0.0).shape == (20, 30, 3)
    assert "stylize" in fastnst.__all__


def test_pillow_global_limit_untouched(plain, tmp_path, monkeypatch):
    before = Image.MAX_IMAGE_PIXELS
    photo = tmp_path / "p.png"
    synthetic_rgb(30, 20).save(photo)
    Stylizer(plain[1]).stylize(photo)
    assert Image.MAX_IMAGE_PIXELS == before
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a host app's strict limit is not ours to enforce
    assert Stylizer(plain[1]).stylize(photo).size == (30, 20)
    assert Image.MAX_IMAGE_PIXELS == 100


def test_without_onnx_tiling_is_refused_or_skipped_with_a_note(plain, tmp_path):
    """The onnx package is a base dependency; an app without it still runs models, untiled."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import sys, logging
        sys.modules["onnx"] = None
        import numpy as np
        from fastnst.errors import ConfigError
        from fastnst.runtime import Stylizer
        logging.basicConfig(level=logging.INFO)
        s = Stylizer({str(plain[1])!r})
        x = np.zeros((64, 80, 3), np.uint8)
        try:
            s.stylize(x, tile=32)
        except ConfigError as e:
            print("refused:", e)
        import fastnst.runtime.stylizer as rt
        rt.AUTO_TILE_PIXELS, rt.DEFAULT_TILE = 100, 32
        print("auto:", s.stylize(x).shape)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout and "pip install onnx" in result.stdout
    assert "auto: (64, 80, 3)" in result.stdout and "running untiled" in result.stderr
