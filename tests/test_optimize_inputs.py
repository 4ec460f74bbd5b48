"""fastnst.optimize.inputs: input images, the start image and the device."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from fastnst.errors import ConfigError, InputError
from fastnst.image import to_tensor
from fastnst.optimize.inputs import as_pil, device_image, init_image, load_init, resolve_device
from tests.conftest import synthetic_rgb


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_as_pil_reads_every_kind_and_names_what_failed(tmp_path):
    img = synthetic_rgb(12, 8)
    img.save(tmp_path / "a.png")
    for source in (img, str(tmp_path / "a.png"), to_tensor(img)):
        assert as_pil(source, "style image").tobytes() == img.tobytes()
    with pytest.raises(InputError, match="^style image: .*does not exist"):
        as_pil(str(tmp_path / "missing.png"), "style image")


def test_load_init_keeps_keywords_loads_images_and_suggests(tmp_path):
    assert load_init("noise") == "noise"
    synthetic_rgb(12, 8).save(tmp_path / "start.png")
    assert isinstance(load_init(str(tmp_path / "start.png")), Image.Image)
    with pytest.raises(ConfigError, match="unknown init 'nosie' \\(did you mean 'noise'"):
        load_init("nosie")
    with pytest.raises(InputError, match="^init image: "):
        load_init(str(tmp_path / "missing.png"))


def test_init_image():
    content, style = synthetic_rgb(20, 10, seed=1), synthetic_rgb(16, 16, seed=2)
    cpu = torch.device("cpu")
    a = init_image("noise", (8, 6), None, None, cpu, torch.Generator().manual_seed(3))
    b = init_image("noise", (8, 6), None, None, cpu, torch.Generator().manual_seed(3))
    assert a.shape == (1, 3, 6, 8) and torch.equal(a, b)
    gen = torch.Generator()
    assert torch.equal(init_image("content", (8, 6), content, style, cpu, gen), device_image(content, (8, 6), cpu))
    assert torch.equal(init_image("style", (8, 6), content, style, cpu, gen), device_image(style, (8, 6), cpu))
    assert torch.equal(init_image(style, (8, 6), content, None, cpu, gen), device_image(style, (8, 6), cpu))
