"""Static int8 quantisation (fastnst.runtime.quantize): integer convolutions, same interface, output near fp32."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from fastnst.contract import META_PRECISION, META_REWRITES, STYLE_NAME
from fastnst.errors import ConfigError, InputError, ModelFormatError, OutputExistsError
from fastnst.training.export import export_onnx
from fastnst.networks.transformer import TransformerNet
from fastnst.runtime.quantize import calibration_photos, quantize_model
from fastnst.runtime import Stylizer

TINY = {"channels": (4, 8, 8), "num_residual": 1, "end_kernel": 3}


def _photos(n: int = 2, size: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    return [np.clip(np.stack([x, y, (x + y) / 2], -1) * 255 + rng.normal(0, 20, (size, size, 3)), 0, 255)
            .astype(np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("quantize")
    single = export_onnx(TransformerNet(**TINY).eval(), folder / "tiny.onnx", verify=False)
    multi = export_onnx(TransformerNet(**TINY, num_styles=2, style_names=["a", "b"]).eval(), folder / "multi.onnx",
                        verify=False)
    return folder, single, multi


def test_int8_model_has_integer_convolutions_and_the_same_interface(models):
    folder, single, _ = models
    out = quantize_model(single, folder / "tiny-int8.onnx", photos=_photos(), side=32)
    q = onnx.load(str(out))
    ops = [n.op_type for n in q.graph.node]
    assert ops.count("QuantizeLinear") >= ops.count("Conv") > 0
    weights = {t.name: t for t in q.graph.initializer}
    conv_weights = [n.input[1] for n in q.graph.node if n.op_type == "DequantizeLinear"
                    and n.input[0] in weights and weights[n.input[0]].data_type == onnx.TensorProto.INT8]
    # every convolution's weights in int8 (the thin last-row/column convolutions of polyphase up-sampling
    # share their weights, one copy)
    assert len(conv_weights) == len({q_in for n in q.graph.node if n.op_type == "Conv" for q_in in n.input[1:2]})
    meta = {p.key: p.value for p in q.metadata_props}
    src = {p.key: p.value for p in onnx.load(str(single)).metadata_props}
    assert meta[META_PRECISION] == "int8"
    assert meta[META_REWRITES]  # the exact rewrites come first
    mine = (META_PRECISION, META_REWRITES)
    assert {k: v for k, v in meta.items() if k not in mine} == {k: v for k, v in src.items() if k not in mine}
    image = _photos(1, 37)[0]  # odd size: the runtime pads and crops as for any model
    a = Stylizer(single, providers="cpu").stylize(image)
    b = Stylizer(out, providers="cpu").stylize(image)
    assert b.shape == a.shape == image.shape and b.dtype == np.uint8
    a, b = a.astype(float), b.astype(float)
    # int8 on a 4-channel random network: close to fp32 (errors well below the picture's own spread,
    # strongly correlated), not equal; a broken quantisation gives another picture (correlation ~0)
    assert np.abs(a - b).mean() < 0.5 * np.abs(a - a.mean()).mean()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9 and np.abs(a - b).mean() > 0


def test_multi_style_model_keeps_its_styles(models):
    folder, _, multi = models
    out = quantize_model(multi, folder / "multi-int8.onnx", photos=_photos(1), side=24, method="percentile")
    st = Stylizer(out, providers="cpu")
    assert st.style_names == ["a", "b"]
    assert [i.name for i in st.session.get_inputs()][1] == STYLE_NAME
    assert st.stylize(_photos(1, 24)[0], style="b").shape == (24, 24, 3)


def test_bad_input_leaves_nothing(models, tmp_path):
    folder, single, _ = models
    with pytest.raises(InputError):
        quantize_model(tmp_path / "missing.onnx", tmp_path / "q.onnx")
    with pytest.raises(ConfigError):
        quantize_model(single, tmp_path / "q.onnx", method="kl")
    with pytest.raises(ConfigError):
        quantize_model(single, tmp_path / "q.onnx", side=4)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelFormatError):
        quantize_model(bad, tmp_path / "q.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]
    existing = tmp_path / "existing.onnx"
    existing.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        quantize_model(single, existing, photos=_photos(1))
    assert existing.read_bytes() == b"keep"


def test_bundled_calibration_photos_exist():
    assert len(calibration_photos()) >= 3
