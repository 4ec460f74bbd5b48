"""ONNX export: dynamic and odd sizes, parity with torch, metadata, uint8 variant, failure leaves nothing."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import fastnst.training.export as export_mod
from fastnst import cli
from fastnst.contract import INPUT_NAME, OPSET, OUTPUT_NAME
from fastnst.errors import ExportError, InputError, OutputExistsError
from fastnst.training.export import export_onnx
from fastnst.networks.transformer import TransformerNet
from fastnst.training.weights import save_transformer

TINY = {"channels": (4, 8, 8), "num_residual": 1, "end_kernel": 3}
META = {"style_name": "wave", "style_sha256": "ab" * 32, "content_weight": 1e5, "style_weight": 1e10,
        "style_layers": ["relu1_2", "relu2_2"], "steps": 7}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random network saved as safetensors, exported once as float and once as uint8."""
    torch.manual_seed(0)
    net = TransformerNet(**TINY).eval()
    with torch.no_grad():  # non-trivial instance-norm affine parameters
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    folder = tmp_path_factory.mktemp("export")
    weights = save_transformer(folder / "wave.safetensors", net, META)
    f32 = export_onnx(weights, folder / "wave.onnx")
    u8 = export_onnx(weights, folder / "wave-uint8.onnx", io="uint8")
    return net, weights, f32, u8


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_single_file_standard_ops_dynamic_axes(tiny):
    _, _, f32, _ = tiny
    assert sorted(p.name for p in f32.parent.iterdir() if p.name.startswith("wave.onnx")) == ["wave.onnx"]
    model = onnx.load(str(f32))
    assert all(op.domain in ("", "ai.onnx") for op in model.opset_import)
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) == OPSET  # the contract's
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}
    session = _session(f32)
    (inp,), out = session.get_inputs(), session.get_outputs()[0]
    assert (inp.name, out.name) == (INPUT_NAME, OUTPUT_NAME)
    assert inp.type == "tensor(float)" and inp.shape[1] == 3
    assert all(isinstance(d, str) for d in (inp.shape[0], inp.shape[2], inp.shape[3]))  # dynamic


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 64, 40), (1, 3, 101, 9)])
def test_parity_with_torch_at_odd_sizes(tiny, shape):
    net, _, f32, _ = tiny
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(shape[2]))
    with torch.inference_mode():
        ref = net(x).numpy()
    got = _session(f32).run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-4


def test_metadata(tiny):
    _, _, f32, _ = tiny
    meta = {p.key: p.value for p in onnx.load(str(f32)).metadata_props}
    assert meta["fastnst_version"] and meta["fastnst_exporter"].startswith("torch.onnx.export(")
    assert meta["style_name"] == "wave" and meta["style_sha256"] == "ab" * 32
    assert json.loads(meta["style_layers"]) == ["relu1_2", "relu2_2"] and json.loads(meta["steps"]) == 7
    assert json.loads(meta["content_weight"]) == 1e5
    assert json.loads(meta["fastnst_config"])["channels"] == [4, 8, 8]
    assert meta["fastnst_arch"] == "custom" and meta["fastnst_io"] == "float"
    assert "float32" in meta["fastnst_input"] and "NCHW" in meta["fastnst_input"]


def test_the_verification_travels_with_the_model(tiny, tmp_path):
    """The error export's verification measured is in the file, so the demo (and fastnst info) need not
    verify a second time; an unverified export says nothing."""
    from fastnst.models import verified_error

    meta = {p.key: p.value for p in onnx.load(str(tiny[2])).metadata_props}
    assert 0 <= verified_error(meta) <= 1e-4
    unverified = export_onnx(tiny[1], tmp_path / "unverified.onnx", verify=False)
    assert verified_error({p.key: p.value for p in onnx.load(str(unverified)).metadata_props}) is None


def test_uint8_variant(tiny):
    net, _, _, u8 = tiny
    session = _session(u8)
    inp = session.get_inputs()[0]
    assert inp.type == "tensor(uint8)" and inp.shape[3] == 3
    pixels = np.random.default_rng(0).integers(0, 256, (1, 45, 31, 3), dtype=np.uint8)
    out = session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]
    assert out.dtype == np.uint8 and out.shape == pixels.shape
    with torch.inference_mode():
        ref = net(torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255).permute(0, 2, 3, 1).numpy()
    assert np.abs(out.astype(np.float32) - np.round(ref * 255)).max() <= 1
    meta = {p.key: p.value for p in onnx.load(str(u8)).metadata_props}
    assert meta["fastnst_io"] == "uint8" and "NHWC" in meta["fastnst_input"]


@pytest.fixture(scope="module")
def variants(tiny, tmp_path_factory):
    """fp16 and fixed-size exports of the tiny network (float and uint8 come from `tiny`)."""
    _, weights, f32, u8 = tiny
    folder = tmp_path_factory.mktemp("variants")
    return {"float": f32, "uint8": u8, "fp16": export_onnx(weights, folder / "wave-fp16.onnx", fp16=True),
            "static": export_onnx(weights, folder / "wave-48x64.onnx", static="48x64")}


def test_every_variant_is_plain(variants):
    """One input, one output, no default-valued inputs, no extra paths: any ONNX runtime runs it."""
    for kind, path in variants.items():
        model = onnx.load(str(path))
        assert [i.name for i in model.graph.input] == [INPUT_NAME], kind
        assert [o.name for o in model.graph.output] == [OUTPUT_NAME], kind
        assert not {t.name for t in model.graph.initializer} & {INPUT_NAME}, kind
        assert not any(n.op_type == "InstanceNormalization" and n.input[0] == "stats_image" for n in model.graph.node)
        session = _session(path)
        assert session.get_overridable_initializers() == [], kind
        inp = session.get_inputs()[0]
        assert inp.type == ("tensor(uint8)" if kind == "uint8" else "tensor(float)"), kind
        assert session.get_outputs()[0].type == inp.type, kind  # no mixed conventions
    static = _session(variants["static"]).get_inputs()[0].shape
    assert static[1:] == [3, 48, 64] and isinstance(static[0], str)


def test_static_and_fp16_variants_run(tiny, variants):
    net = tiny[0]
    x = torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        ref = net(x).numpy()
    got = _session(variants["static"]).run(None, {INPUT_NAME: x.numpy()})[0]
    assert np.abs(got - ref).max() <= 1e-4
    model = onnx.load(str(variants["fp16"]))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    try:
        got16 = _session(variants["fp16"]).run(None, {INPUT_NAME: x.numpy()})[0]
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"this onnxruntime has no CPU fp16 kernels for the graph: {exc}")
    assert got16.dtype == np.float32 and np.abs(got16 - ref).max() <= 2e-2


def test_other_runtimes_run_the_model(tiny, variants):
    """OpenCV DNN and tract load the plain model unchanged and agree with onnxruntime."""
    x = np.random.default_rng(1).random((1, 3, 48, 64), dtype=np.float32)
    ref = _session(variants["float"]).run(None, {INPUT_NAME: x})[0]
    ran = []
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        major = int(cv2.__version__.split(".")[0])
        path = variants["float"] if major >= 5 else variants["static"]  # OpenCV 4.x needs a fixed size
        net = cv2.dnn.readNetFromONNX(str(path))
        net.setInput(x)
        assert np.abs(net.forward() - ref).max() < 1e-4
        ran.append("opencv")
    try:
        import tract
    except ImportError:
        tract = None
    if tract is not None:
        model = tract.onnx().load(str(variants["float"]))
        model.set_input_fact(0, "1,3,48,64,f32")
        out = model.into_model().into_runnable().run([x])[0].to_numpy()
        assert np.abs(out - ref).max() < 1e-4
        ran.append("tract")
    if not ran:
        pytest.skip("neither opencv-python-headless nor tract is installed (pip install 'fastnst[dev]')")


def test_export_is_one_trace(tiny, tmp_path, monkeypatch):
    calls = []
    original = torch.onnx.export

    def counting(*args, **kwargs):
        calls.append(kwargs.get("dynamo"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", counting)
    export_onnx(tiny[1], tmp_path / "one.onnx", verify=False)
    assert calls == [True]


def test_uint8_and_float_models_agree_in_the_runtime(tiny):
    from fastnst.runtime import Stylizer
    from tests.conftest import synthetic_rgb

    s8, s32 = Stylizer(tiny[3]), Stylizer(tiny[2])
    assert (s8.io_kind, s32.io_kind) == ("uint8", "float") and s8.has_tile_path
    img = synthetic_rgb(53, 31)
    diff = np.abs(np.asarray(s8.stylize(img)).astype(int) - np.asarray(s32.stylize(img)).astype(int))
    assert diff.max() <= 1
    # tiling uses the float statistics and tile paths in both variants
    tiled8 = np.asarray(s8.stylize(img, tile=32, overlap=8)).astype(int)
    tiled32 = np.asarray(s32.stylize(img, tile=32, overlap=8)).astype(int)
    assert tiled8.shape == (31, 53, 3) and np.abs(tiled8 - tiled32).max() <= 1


@pytest.fixture
def cached_graph(tiny, monkeypatch):
    """Skip the (slow) tracing: _export_graph returns the already exported graph."""
    _, _, f32, _ = tiny
    model = onnx.load(str(f32))
    del model.metadata_props[:]
    monkeypatch.setattr(export_mod, "_export_graph", lambda module, example: (model, "cached"))


def test_failed_verification_writes_nothing(tiny, cached_graph, tmp_path, monkeypatch):
    _, weights, _, _ = tiny
    monkeypatch.setattr(export_mod, "FP32_TOLERANCE", 0.0)  # any rounding difference now fails
    with pytest.raises(ExportError, match="disagrees with torch"):
        export_onnx(weights, tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_untouched(tiny, cached_graph, tmp_path):
    _, weights, _, _ = tiny
    target = tmp_path / "wave.onnx"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        export_onnx(weights, target)
    assert target.read_bytes() == b"keep me"
    export_onnx(weights, target, overwrite=True)
    assert _session(target).get_inputs()[0].name == INPUT_NAME


def test_cli_export_and_bad_sources(tiny, cached_graph, tmp_path, capsys):
    _, weights, f32, _ = tiny
    assert cli.main(["export", str(weights), "-o", str(tmp_path / "m.onnx")]) == 0
    assert "verified" in capsys.readouterr().out
    assert cli.main(["export", str(f32), "-o", str(tmp_path / "x.onnx")]) == 2  # an ONNX model is no source
    assert "already an ONNX model" in capsys.readouterr().err
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 10)
    assert cli.main(["export", str(junk), "-o", str(tmp_path / "y.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fastnst: error:")
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.onnx").exists()
    with pytest.raises(InputError):
        export_onnx(tmp_path / "missing.safetensors", tmp_path / "z.onnx")
    for bad in ("64", "0x64", "axb", "64x99999"):
        assert cli.main(["export", str(weights), "--static", bad, "-o", str(tmp_path / "s.onnx")]) == 2
        assert "--static" in capsys.readouterr().err
    assert not (tmp_path / "s.onnx").exists()
