"""Exact graph rewrites (fastnst.runtime.rewrite): same outputs, thin wide convolutions split, conditional norms folded."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from fastnst.training.export import export_onnx
from fastnst.networks.transformer import TransformerNet
from fastnst.contract import META_REWRITES
from fastnst.runtime.rewrite import polyphase_upsampling, speed_up

TINY = {"channels": (4, 8, 8), "num_residual": 1, "end_kernel": 5}


@pytest.fixture(scope="module")
def plain_models(tmp_path_factory):
    """Tiny single- and multi-style models as the exporter wrote them before the rewrites."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("rewrite")
    out = {}
    for name, net in (("single", TransformerNet(**TINY)), ("multi", TransformerNet(**TINY, num_styles=3))):
        with torch.no_grad():
            for p in net.parameters():  # non-trivial norm tables
                p.add_(torch.rand_like(p) * 0.3)
        path = export_onnx(net.eval(), folder / f"{name}.onnx", verify=False, optimize=False)  # as before
        out[name] = onnx.load(str(path))
    return out


def _run(model, n=1, h=37, w=29, styles=0, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {"image": rng.random((n, 3, h, w), dtype=np.float32)}
    if styles:
        s = rng.random((n, styles)).astype(np.float32)
        feeds["style"] = s / s.sum(1, keepdims=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _ops(model):
    return [n.op_type for n in model.graph.node]


def test_thin_wide_convolution_is_split_with_the_same_output(plain_models):
    model = plain_models["single"]
    before = onnx.ModelProto()
    before.CopyFrom(model)
    after = onnx.ModelProto()
    after.CopyFrom(model)
    assert "split_thin_conv" in speed_up(after)
    onnx.checker.check_model(after, full_check=True)
    kernels = [next(a.ints for a in n.attribute if a.name == "kernel_shape") for n in after.graph.node
               if n.op_type == "Conv"]
    assert [5, 5] in [list(k) for k in _kernels(before)] and [5, 5] not in [list(k) for k in kernels]
    assert [1, 5] in [list(k) for k in kernels] and [5, 1] in [list(k) for k in kernels]
    for n, h, w in ((1, 37, 29), (2, 16, 24)):
        np.testing.assert_allclose(_run(after, n, h, w), _run(before, n, h, w), atol=1e-5)


def _kernels(model):
    return [next(a.ints for a in n.attribute if a.name == "kernel_shape") for n in model.graph.node
            if n.op_type == "Conv"]


def test_conditional_norm_is_folded_with_the_same_output_for_mixed_batches(plain_models):
    before = plain_models["multi"]
    after = onnx.ModelProto()
    after.CopyFrom(before)
    assert speed_up(after) == ["split_thin_conv", "fold_conditional_norm"]
    onnx.checker.check_model(after, full_check=True)
    norms = _ops(before).count("InstanceNormalization")
    assert _ops(after).count("InstanceNormalization") == norms
    assert _ops(after).count("Mul") <= _ops(before).count("Mul") - norms  # no scale pass after each norm
    for n in (1, 3):  # every image its own style blend
        np.testing.assert_allclose(_run(after, n, styles=3, seed=n), _run(before, n, styles=3, seed=n), atol=1e-5)


def test_rewrites_run_once_and_are_recorded(plain_models):
    model = onnx.ModelProto()
    model.CopyFrom(plain_models["single"])
    speed_up(model)
    once = model.SerializeToString()
    assert speed_up(model) == []
    assert model.SerializeToString() == once
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[META_REWRITES] == "split_thin_conv,fold_conditional_norm"


def test_export_writes_rewritten_files(tmp_path):
    torch.manual_seed(1)
    net = TransformerNet(**TINY, num_styles=2).eval()
    path = export_onnx(net, tmp_path / "m.onnx")  # verified against torch after the rewrite
    model = onnx.load(str(path))
    assert META_REWRITES in {p.key for p in model.metadata_props}
    assert [5, 5] not in [list(k) for k in _kernels(model)]


def test_polyphase_upsampling_equals_resize_pad_conv_on_stride_multiples(plain_models):
    before = plain_models["multi"]
    after = onnx.ModelProto()
    after.CopyFrom(before)
    assert polyphase_upsampling(after) == 0  # sizes-driven Resize: only when the caller vouches for doubling
    assert polyphase_upsampling(after, sizes_double=True) == 2
    onnx.checker.check_model(after, full_check=True)
    assert "Resize" not in _ops(after) and _ops(after).count("ConvTranspose") == 2
    for n, h, w in ((1, 36, 28), (2, 16, 24)):
        np.testing.assert_allclose(_run(after, n, h, w, styles=3), _run(before, n, h, w, styles=3), atol=1e-5)


def test_runtime_rewrites_old_files_at_load_with_the_same_result(plain_models, tmp_path):
    from fastnst.runtime import REWRITE_PIXELS, Stylizer

    path = tmp_path / "old.onnx"
    onnx.save_model(plain_models["single"], str(path))  # a file exported before the rewrites
    st = Stylizer(path, providers="cpu")
    side = (int(REWRITE_PIXELS ** 0.5) // 4 + 1) * 4  # a multiple of the stride: no padding
    assert st.session_for(side, side) is not st.session and st.session_for(64, 64) is st.session
    image = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
    got = st.stylize(image, tile=0)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = session.run(None, {"image": image.transpose(2, 0, 1)[None].copy()})[0]
    np.testing.assert_allclose(got, np.clip(ref[0].transpose(1, 2, 0), 0, 1), atol=1e-5)
