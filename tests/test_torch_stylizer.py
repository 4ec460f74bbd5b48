"""TorchStylizer: a weights file run by torch behind the runtime's Stylizer interface (the same pixels as the
network, tiles normalised with the whole image's statistics held by that network alone, styles by name)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastnst.errors import ConfigError, InputError
from fastnst.networks.transformer import AffineInstanceNorm2d, ConditionalInstanceNorm2d, TransformerNet
from fastnst.training.torch_stylizer import TorchStylizer, torch_device
from fastnst.training.weights import save_transformer
from tests.conftest import synthetic_rgb

TINY = {"channels": (4, 8, 8), "num_residual": 1, "end_kernel": 3}



def _weights(tmp_path, num_styles=1, names=None):
    torch.manual_seed(5)
    net = TransformerNet(**TINY, num_styles=num_styles, style_names=names)
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():  # non-trivial norm scales and shifts, so that styles and statistics matter
        for m in net.modules():
            if isinstance(m, (AffineInstanceNorm2d, ConditionalInstanceNorm2d)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.2)
    return net.eval(), save_transformer(tmp_path / f"net{num_styles}.safetensors", net)


def _reference(net, pixels, style=None):
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    with torch.no_grad():
        return net(x, style)[0].permute(1, 2, 0).numpy()


def test_the_output_is_the_networks(tmp_path):
    net, path = _weights(tmp_path)
    s = TorchStylizer(path, device="cpu")
    pixels = np.asarray(synthetic_rgb(64, 48, seed=1), np.float32) / 255  # a multiple of the stride: no padding
    assert s.providers == ["torch:cpu"] and s.device == "cpu" and s.style_names == []
    assert np.array_equal(s.stylize(pixels, tile=0), _reference(net, pixels))
    odd = np.asarray(synthetic_rgb(37, 29, seed=2))  # uint8 in, uint8 out, the input's size
    out = s.stylize(odd, tile=0)
    assert out.dtype == np.uint8 and out.shape == odd.shape
    assert s.describe()["parameters"] == sum(p.numel() for p in net.parameters())


def test_tiles_use_the_whole_images_statistics_held_by_the_network(tmp_path, monkeypatch):
    net, path = _weights(tmp_path)
    s = TorchStylizer(path, device="cpu")
    assert s.has_tile_path
    pixels = np.asarray(synthetic_rgb(200, 152, seed=3), np.float32) / 255
    untiled = s.stylize(pixels, tile=0)
    seen = []
    original = F.instance_norm

    def check(module, args, output):  # inside every tile: nothing outside this network changed
        seen.append(F.instance_norm is original and module.statistics is not None)

    for m in s.net.modules():
        if isinstance(m, AffineInstanceNorm2d):
            m.register_forward_hook(check)
    seam = np.abs(s.stylize(pixels, tile=64, overlap=24) - untiled).mean()
    assert seen and all(seen)
    assert all(m.statistics is None for m in s.net.modules() if isinstance(m, AffineInstanceNorm2d))
    # each tile normalised by its own statistics instead: a visible patchwork (measured: 0.11 against 1e-3)
    monkeypatch.setattr(TorchStylizer, "run_tile", lambda self, rgb, stats, style=None: self.run(rgb, style))
    patchwork = np.abs(s.stylize(pixels, tile=64, overlap=24) - untiled).mean()
    assert seam < patchwork / 30, (seam, patchwork)


def test_styles_of_a_multi_style_file_by_name(tmp_path):
    net, path = _weights(tmp_path, 2, ["waves", "dots"])
    s = TorchStylizer(path, device="cpu")
    assert s.style_names == ["waves", "dots"] and s.describe()["styles"] == ["waves", "dots"]
    pixels = np.asarray(synthetic_rgb(48, 40, seed=4), np.float32) / 255
    dots = s.stylize(pixels, tile=0, style="dots")
    assert np.allclose(dots, _reference(net, pixels, torch.tensor([[0.0, 1.0]])), atol=1e-6)
    assert np.abs(dots - s.stylize(pixels, tile=0, style="waves")).max() > 1e-2
    big = np.asarray(synthetic_rgb(160, 120, seed=5), np.float32) / 255
    whole = s.stylize(big, tile=0, style="dots")
    assert np.abs(s.stylize(big, tile=64, overlap=24, style="dots") - whole).mean() < 0.002  # measured 7.6e-4
    assert np.abs(s.stylize(big, tile=64, overlap=24, style="waves") - whole).mean() > 0.02


def test_bad_files_and_devices(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        TorchStylizer(tmp_path / "missing.safetensors")
    with pytest.raises(ConfigError, match="unknown device"):
        torch_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            torch_device("cuda")
    assert torch_device("cpu") == torch.device("cpu")
