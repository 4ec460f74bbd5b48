"""Decoder training (fastnst.training.decoder, fastnst train-decoder): the loss falls, files, resume, checks."""

from __future__ import annotations

import pytest
import torch

from fastnst.cli import main
from fastnst.errors import ConfigError, ModelFormatError
from fastnst.networks.decoders import load_decoder
from fastnst.training.config import DecoderTrainConfig
from fastnst.training.decoder import DecoderModule

from .conftest import synthetic_rgb


def _config(**kw):
    base = dict(data="unused", level=2, vgg_weights="random", image_size=32, batch_size=2, width=0.25)
    return DecoderTrainConfig(**{**base, **kw}).check()


def test_reconstruction_loss_falls_in_a_few_steps():
    torch.manual_seed(0)
    module = DecoderModule.from_config(_config(lr=3e-3))
    opt = torch.optim.Adam(module.trainable().parameters(), lr=3e-3)
    images = torch.stack([torch.from_numpy(__import__("numpy").asarray(synthetic_rgb(32, 32, seed=s))).permute(2, 0, 1)
                          for s in range(2)]).float() / 255
    first = None
    for _ in range(40):
        terms = module.terms(images)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        first = first if first is not None else terms["total"].item()
    assert set(terms) == {"pixel", "feature", "total"}
    assert terms["total"].item() < 0.5 * first
    assert all(p.grad is None for p in module.encoder.parameters())  # the encoder stays frozen


def test_a_level_one_decoder_starts_from_the_least_squares_fit():
    """One linear convolution: the first step fits it in closed form (Adam alone crawled: 14-16 dB)."""
    import numpy as np

    module = DecoderModule.from_config(_config(level=1, width=1.0))
    module.train()
    images = torch.stack([torch.from_numpy(np.asarray(synthetic_rgb(32, 32, seed=s))).permute(2, 0, 1)
                          for s in range(2)]).float() / 255
    terms = module.terms(images)
    assert module.linear_fitted and terms["pixel"].item() < 1e-3  # ~30 dB on these images at once
    fresh = DecoderModule.from_config(_config(level=1, width=1.0)).eval()  # eval (previews): no fit
    assert not fresh.linear_fitted and fresh.terms(images)["pixel"].item() > 10 * terms["pixel"].item()


def test_weights_only_loss_terms():
    module = DecoderModule.from_config(_config(feature_weight=0.0))
    assert set(module.terms(torch.rand(1, 3, 32, 32))) == {"pixel", "total"}


@pytest.mark.parametrize("bad, match", [(dict(level=5), "level"), (dict(image_size=36, level=4), "multiple of 8"),
                                        (dict(pixel_weight=0.0, feature_weight=0.0), "nothing to train"),
                                        (dict(vgg_normalize="zca"), "normalisation"), (dict(width=8.0), "width")])
def test_bad_options_are_refused_before_any_work(bad, match):
    with pytest.raises(ConfigError, match=match):
        _config(**bad)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(5):
        synthetic_rgb(40, 40, seed=i).save(folder / f"{i}.png")
    return folder


def test_the_command_trains_saves_and_resumes(tmp_path, photos, capsys):
    args = ["train-decoder", "--level", "2", "--width", "0.25", "--data", str(photos), "--vgg-weights", "random",
            "--image-size", "32", "--batch-size", "2", "--num-workers", "0", "--num-previews", "1",
            "--preview-every", "0", "--out", str(tmp_path / "dec")]
    assert main(args + ["--steps", "3"]) == 0
    decoder, meta = load_decoder(tmp_path / "dec" / "decoder-relu2_1.safetensors")
    assert decoder.config == {"level": 2, "arch": "vgg16", "width": 0.25}
    assert meta["encoder"]["arch"] == "vgg16" and meta["encoder"]["normalize"] == "rms" and meta["steps"] == "3"
    assert main(args + ["--steps", "5", "--resume", str(tmp_path / "dec" / "last.ckpt")]) == 0
    assert load_decoder(tmp_path / "dec" / "decoder-relu2_1.safetensors")[1]["steps"] == "5"
    capsys.readouterr()
    other = [a if a != "2" else "3" for a in args]  # level 3 cannot continue a level-2 run
    assert main(other + ["--steps", "6", "--resume", str(tmp_path / "dec" / "last.ckpt")]) == 2
    assert "holds another decoder" in capsys.readouterr().err
