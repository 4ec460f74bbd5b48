"""Exact graph rewrites (fastnst.runtime.rewrite): same outputs, thin wide convolutions split, conditional norms folded,
polyphase up-sampling exact for every size (odd ones included), files that lack rewrites rewritten once."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from fastnst.training.export import export_onnx
from fastnst.networks.transformer import TransformerNet
from fastnst.contract import META_REWRITES
from fastnst.runtime.rewrite import REWRITES, complete, polyphase_upsampling, speed_up

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
    assert speed_up(after) == ["split_thin_conv", "fold_conditional_norm"]  # sizes-driven Resize not vouched for
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
    assert meta[META_REWRITES] == "split_thin_conv,fold_conditional_norm,polyphase_upsampling" and complete(meta)


def test_a_file_with_some_rewrites_gets_only_the_missing_ones(plain_models):
    """A file exported before polyphase up-sampling was written into files records the first two: the third
    is applied, the others are not done twice."""
    model = onnx.ModelProto()
    model.CopyFrom(plain_models["multi"])
    split_thin_and_fold = REWRITES[:2]
    assert speed_up(model) == list(split_thin_and_fold)
    entry = next(p for p in model.metadata_props if p.key == META_REWRITES)
    entry.value = ",".join(split_thin_and_fold)  # as export wrote it before
    assert not complete({META_REWRITES: entry.value})
    convs = _ops(model).count("Conv")
    assert speed_up(model, sizes_double=True) == ["polyphase_upsampling"]
    assert _ops(model).count("ConvTranspose") == 2 and _ops(model).count("Conv") > convs
    assert next(p.value for p in model.metadata_props if p.key == META_REWRITES) == ",".join(REWRITES)


def test_export_writes_rewritten_files(tmp_path):
    torch.manual_seed(1)
    net = TransformerNet(**TINY, num_styles=2).eval()
    path = export_onnx(net, tmp_path / "m.onnx")  # verified against torch after the rewrites, odd sizes included
    model = onnx.load(str(path))
    assert complete({p.key: p.value for p in model.metadata_props})
    assert [5, 5] not in [list(k) for k in _kernels(model)]
    assert _ops(model).count("ConvTranspose") == 2  # polyphase up-sampling in the file


def test_polyphase_upsampling_equals_resize_pad_conv_for_every_size(plain_models):
    before = plain_models["multi"]
    after = onnx.ModelProto()
    after.CopyFrom(before)
    assert polyphase_upsampling(after) == 0  # sizes-driven Resize: only when the caller vouches for doubling
    assert polyphase_upsampling(after, sizes_double=True) == 2
    onnx.checker.check_model(after, full_check=True)
    assert "Resize" in _ops(after)  # the two-row and two-column strips of the last row and column
    assert _ops(after).count("ConvTranspose") == 2
    # odd, even, tiny (the network's minimum, 5 px at the 1/4 stage = 2 px) and mixed sides, batches
    for n, h, w in ((1, 36, 28), (2, 16, 24), (1, 37, 29), (1, 5, 5), (1, 6, 7), (2, 33, 34), (1, 63, 64)):
        np.testing.assert_allclose(_run(after, n, h, w, styles=3), _run(before, n, h, w, styles=3), atol=1e-5)


def test_polyphase_upsampling_without_the_edges_is_exact_on_stride_multiples_only(plain_models):
    before = plain_models["single"]
    even = onnx.ModelProto()
    even.CopyFrom(before)
    assert polyphase_upsampling(even, sizes_double=True, exact=False) == 2
    assert "ScatterElements" not in _ops(even)
    np.testing.assert_allclose(_run(even, 1, 36, 28), _run(before, 1, 36, 28), atol=1e-5)
    assert _run(even, 1, 37, 29).shape != _run(before, 1, 37, 29).shape  # odd sides come out doubled


def test_runtime_rewrites_old_files_once_and_keeps_the_copy(plain_models, tmp_path, monkeypatch):
    from fastnst.runtime import REWRITE_PIXELS, Stylizer
    from fastnst.runtime.stylizer import REWRITTEN

    monkeypatch.setenv("FASTNST_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "old.onnx"
    onnx.save_model(plain_models["single"], str(path))  # a file exported before the rewrites
    st = Stylizer(path, providers="cpu")
    stored = st.session
    assert st.session_for(64, 64) is stored  # small: the file as it is
    side = (int(REWRITE_PIXELS ** 0.5) // 4 + 1) * 4
    rewritten = st.session_for(side, side)
    assert rewritten is not stored and st.session is rewritten and st.session_for(64, 64) is rewritten
    assert st.model.cache_path(REWRITTEN).is_file()
    image = np.random.default_rng(0).random((side - 3, side - 1, 3), dtype=np.float32)
    got = st.stylize(image, tile=0)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    padded = np.pad(image, ((0, 3), (0, 1), (0, 0)), mode="reflect")  # the stylizer pads to the stride
    ref = session.run(None, {"image": padded.transpose(2, 0, 1)[None].copy()})[0][0, :, :side - 3, :side - 1]
    np.testing.assert_allclose(got, np.clip(ref.transpose(1, 2, 0), 0, 1), atol=1e-5)
    # a later process (here: a new Stylizer) loads the kept copy at once, for every size, without onnx
    again = Stylizer(path, providers="cpu")
    assert again.session_for(64, 64) is again.session and not again._rewrite
    np.testing.assert_allclose(again.stylize(image, tile=0), got, atol=1e-6)
    path.write_bytes(path.read_bytes() + b"")  # same content, same copy; another file, another copy
    other = tmp_path / "other.onnx"
    onnx.save_model(plain_models["multi"], str(other))
    assert Stylizer(other, providers="cpu")._rewrite
