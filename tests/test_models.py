"""Model files as a user handles them (fastnst.models): the kind by suffix, opening, ``info`` for every kind, the
checks of ``export`` before torch is imported."""

from __future__ import annotations

import pytest
import torch

from fastnst.contract import META_VERIFIED
from fastnst.errors import ConfigError, InputError, ModelFormatError
from fastnst.models import ExportOptions, export_model, info_lines, load_model, model_info, model_kind, verified_error
from fastnst.networks.sr import SRNet, sr_metadata
from fastnst.runtime import Stylizer
from tests.conftest import plain_onnx


def test_the_kind_comes_from_the_suffix(tmp_path):
    for name, kind in (("m.onnx", "onnx"), ("m.ONNX", "onnx"), ("w.safetensors", "torch"), ("w.ckpt", "torch")):
        (tmp_path / name).write_bytes(b"x")
        assert model_kind(tmp_path / name) == kind
    (tmp_path / "m.txt").write_bytes(b"x")
    with pytest.raises(ModelFormatError, match="unknown kind"):
        model_kind(tmp_path / "m.txt")
    with pytest.raises(InputError, match="is a folder"):
        model_kind(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        model_kind(tmp_path / "gone.onnx")


def test_load_model_by_kind(tiny_model):
    from fastnst.training.torch_stylizer import TorchStylizer

    assert isinstance(load_model(tiny_model[0], "cpu"), Stylizer)
    assert isinstance(load_model(tiny_model[1], "cpu"), TorchStylizer)
    with pytest.raises(ConfigError, match="--input-range applies to .onnx models"):
        load_model(tiny_model[1], "cpu", input_range=255)


def test_info_for_style_sr_and_weights(tiny_model, tmp_path):
    style = model_info(tiny_model[0])
    assert style["io"] == "float" and style["input_range"] == 1 and style["inputs"][0]["name"] == "image"
    lines = info_lines(style)
    assert lines[0].startswith(f"model      {tiny_model[0]}")
    assert any(line.startswith("input      image") for line in lines)
    torch.manual_seed(3)
    net = SRNet(2, channels=8, num_residual=1).eval()
    sr = model_info(plain_onnx(net, tmp_path / "x2.onnx", sr_metadata(net)))  # info shows any model kind
    assert sr["factor"] == 2 and sr["metadata"]["fastnst_task"] == "super-resolution"
    weights = model_info(tiny_model[1])
    assert weights["io"] == "weights (torch)" and weights["parameters"] > 0 and "config" in weights
    assert any(line.startswith("network    ") for line in info_lines(weights))


def test_export_refuses_bad_options_before_torch(tiny_model, tmp_path):
    for options, match in (({"static": "12x"}, "HEIGHTxWIDTH"), ({"static": "4x4000"}, "between 8 and"),
                           ({"output": " "}, "-o/--output is empty"), ({"io": "int4"}, "--io")):
        with pytest.raises(ConfigError, match=match):
            export_model(tiny_model[1], ExportOptions(**options))
    with pytest.raises(InputError, match="is a folder"):
        export_model(tmp_path)
    with pytest.raises(InputError, match="do not exist"):
        export_model(tmp_path / "gone.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_verified_error():
    assert verified_error({META_VERIFIED: "2.5e-06"}) == 2.5e-06
    assert verified_error({}) is None and verified_error({META_VERIFIED: "n/a"}) is None
