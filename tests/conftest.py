"""Shared fixtures: small synthetic images written to tmp_path. Everything is offline and tiny."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The tests use tiny tensors: one torch thread avoids OpenMP barriers stalling when other processes
    share the 2 cores (measured 5x faster on a busy machine, no slower on an idle one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def own_cache(tmp_path_factory):
    """fastnst's cache folder (rewritten models, stage models, VGG statistics) is the session's own: tests
    never read what an earlier run or the user left in ~/.cache, and never write there."""
    import os

    before = os.environ.get("FASTNST_CACHE_DIR")
    os.environ["FASTNST_CACHE_DIR"] = str(tmp_path_factory.mktemp("fastnst-cache"))
    yield
    if before is None:
        os.environ.pop("FASTNST_CACHE_DIR", None)
    else:
        os.environ["FASTNST_CACHE_DIR"] = before


def synthetic_rgb(width: int = 48, height: int = 40, seed: int = 0) -> Image.Image:
    """A smooth colourful image with some texture (deterministic)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(x / 5.0 + seed)
    g = 0.5 + 0.5 * np.cos(y / 7.0 - seed)
    b = (x + y) / float(width + height)
    arr = np.stack([r, g, b], axis=-1) + rng.normal(0, 0.03, (height, width, 3))
    return Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8), "RGB")


@pytest.fixture
def rgb_image() -> Image.Image:
    return synthetic_rgb()


@pytest.fixture
def image_file(tmp_path):
    """Path of a small PNG photo-like image."""
    path = tmp_path / "photo.png"
    synthetic_rgb(48, 40).save(path)
    return path


@pytest.fixture
def style_file(tmp_path):
    """Path of a small JPEG 'painting' (a different synthetic pattern)."""
    path = tmp_path / "style.jpg"
    synthetic_rgb(40, 40, seed=3).save(path, quality=95)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """(verified .onnx model, .safetensors weights) of one tiny random style network, made once per run."""
    from fastnst.training.export import export_onnx
    from fastnst.networks.transformer import TransformerNet
    from fastnst.training.weights import save_transformer

    torch.manual_seed(2)
    net = TransformerNet(channels=(4, 8, 8), num_residual=1, end_kernel=3).eval()
    folder = tmp_path_factory.mktemp("tiny-model")
    weights = save_transformer(folder / "tiny.safetensors", net, {"style_name": "tiny"})
    return export_onnx(weights, folder / "tiny.onnx"), weights


def plain_onnx(net, path, metadata=None):
    """A quick plain ONNX file of ``net`` (TorchScript exporter, dynamic batch/height/width, input
    'image', output 'stylized', string ``metadata``) for tests that only need a model to run;
    fastnst.training.export (dynamo, verified) is tested in test_export.py / test_sr.py."""
    import io
    import warnings

    import onnx

    buf = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.rand(1, 3, 32, 32),), buf, dynamo=False, opset_version=18,
                          input_names=["image"], output_names=["stylized"],
                          dynamic_axes={"image": axes, "stylized": axes})
    model = onnx.load_from_string(buf.getvalue())
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save_model(model, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_universal(tmp_path_factory):
    """(universal .onnx, vgg .safetensors, [decoder files]) of a tiny random universal model (VGG16 cut at relu4_1,
    decoders of width 1/8), exported and verified once per run."""
    from safetensors.torch import save_file

    from fastnst.fileio import sha256_file
    from fastnst.networks.decoders import Decoder, save_decoder
    from fastnst.networks.vgg import VGGFeatures
    from fastnst.training.universal import export_universal

    folder = tmp_path_factory.mktemp("tiny-universal")
    vgg = VGGFeatures(["relu4_1"], arch="vgg16", weights="random")
    vgg_path = folder / "vgg16-cut.safetensors"
    save_file({f"features.{k}": v.contiguous() for k, v in vgg.features.state_dict().items()}, str(vgg_path))
    record = {"arch": "vgg16", "normalize": "rms", "weights": vgg_path.name, "sha256": sha256_file(vgg_path)}
    torch.manual_seed(5)
    decoders = [save_decoder(folder / f"decoder-{level}.safetensors", Decoder(level, "vgg16", 0.125).eval(), record,
                             {"steps": 1}) for level in (1, 2, 3, 4)]
    return export_universal(decoders, vgg_path, folder / "universal.onnx"), vgg_path, decoders
