"""The decoders of universal style transfer (fastnst.networks.decoders): shapes, mirror structure, files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fastnst.errors import ConfigError, InputError, ModelFormatError
from fastnst.networks.decoders import Decoder, block_convs, load_decoder, save_decoder
from fastnst.networks.vgg import VGGFeatures


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_a_decoder_inverts_its_layer_to_the_image_size(arch, level):
    vgg = VGGFeatures([f"relu{level}_1"], arch=arch, weights="random")
    x = torch.rand(2, 3, 40, 24)
    features = vgg(x)[f"relu{level}_1"]
    out = Decoder(level, arch, width=0.25)(features)
    assert out.shape == x.shape


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_the_decoder_mirrors_the_encoder(arch):
    """As many 3x3 convolutions as the encoder has up to relu4_1, three nearest up-samplings, no transposed conv."""
    decoder = Decoder(4, arch)
    convs = [m for m in decoder.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == sum(block_convs(arch)[:3]) + 1  # blocks 1-3 and conv4_1
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert convs[0].in_channels == 512 and convs[-1].out_channels == 3
    ups = [m for m in decoder.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 3 and all(u.mode == "nearest" for u in ups)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in decoder.modules())
    assert Decoder(4, arch, width=0.5)(torch.rand(1, 512, 3, 3)).shape == (1, 3, 24, 24)
    assert block_convs("vgg16")[:3] == [2, 2, 3] and block_convs("vgg19")[:3] == [2, 2, 4]


@pytest.mark.parametrize("bad", [dict(level=0), dict(level=5), dict(level=True), dict(arch="resnet"),
                                 dict(width=0.01), dict(width=4)])
def test_bad_settings(bad):
    with pytest.raises(ConfigError):
        Decoder(**{"level": 2, "arch": "vgg16", "width": 1.0, **bad})


def test_weights_round_trip_with_their_encoder(tmp_path):
    torch.manual_seed(0)
    decoder = Decoder(3, "vgg16", width=0.25).eval()
    encoder = {"arch": "vgg16", "normalize": "rms", "weights": "vgg16.safetensors", "sha256": "ab"}
    path = save_decoder(tmp_path / "d.safetensors", decoder, encoder, {"steps": 5})
    loaded, meta = load_decoder(path)
    assert loaded.config == decoder.config and meta["encoder"] == encoder and meta["steps"] == "5"
    x = torch.rand(1, 256, 5, 7)
    assert torch.equal(loaded(x), decoder(x))


def test_foreign_and_missing_files(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(InputError, match="does not exist"):
        load_decoder(tmp_path / "none.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ModelFormatError, match="not a fastnst decoder"):
        load_decoder(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelFormatError):
        load_decoder(tmp_path / "junk.safetensors")
