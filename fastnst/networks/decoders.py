"""Decoders of universal style transfer (Li et al. 2017, "Universal Style Transfer via Feature Transforms",
section 3.1): each inverts the frozen VGG encoder from one layer (relu1_1 ... relu4_1) back to an RGB image.

A decoder mirrors the encoder up to its layer: 3×3 convolutions with reflection padding and ReLU, in the
encoder's channel widths (``width`` scales them), ×2 nearest up-sampling where the encoder max-pools (no
transposed convolutions: no checkerboard), and a last 3×3 convolution to RGB without activation (images are
[0, 1]; the output is not clamped, so the loss sees every error). ``fastnst train-decoder`` trains one to
reconstruct photos (:mod:`fastnst.training.decoder`); the universal model holds one per level.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastnst.constants import VGG_ARCHS
from fastnst.contract import (DECODER_TASK, LEVEL_LAYERS, META_DECODER_CONFIG, META_ENCODER, META_TASK, decoder_plan,
                              vgg_block_convs)
from fastnst.errors import ConfigError, InputError, ModelFormatError, unknown_choice

DECODER_LEVELS = (1, 2, 3, 4)
MIN_WIDTH, MAX_WIDTH = 0.125, 2.0  # chosen bounds of the width factor (8..1024 channels)


def block_convs(arch: str) -> list[int]:
    """Convolutions per VGG block of ``arch`` (see :func:`fastnst.contract.vgg_block_convs`)."""
    return vgg_block_convs(arch)


def _module(step: tuple) -> nn.Module:
    if step[0] == "pad":
        return nn.ReflectionPad2d(1)
    if step[0] == "conv":
        return nn.Conv2d(step[1], step[2], 3)
    return nn.ReLU(inplace=True) if step[0] == "relu" else nn.Upsample(scale_factor=2, mode="nearest")


class Decoder(nn.Module):
    """Features of relu{level}_1 (N, C, H/2^(level-1), W/2^(level-1)) of ``arch`` -> image (N, 3, H, W).

    ``width`` scales the channels of every layer but the input (the encoder's) and the output (RGB).
    Raises ConfigError for an unknown level or architecture or a width outside [0.125, 2].
    """

    def __init__(self, level: int = 4, arch: str = "vgg16", width: float = 1.0) -> None:
        super().__init__()
        if isinstance(level, bool) or level not in DECODER_LEVELS:
            raise ConfigError(f"decoder level must be one of {', '.join(map(str, DECODER_LEVELS))}, got {level}")
        if arch not in VGG_ARCHS:
            raise unknown_choice("encoder", arch, VGG_ARCHS)
        if not MIN_WIDTH <= float(width) <= MAX_WIDTH:
            raise ConfigError(f"decoder width must be between {MIN_WIDTH} and {MAX_WIDTH}, got {width}")
        self.level, self.arch, self.width = int(level), arch, float(width)
        self.net = nn.Sequential(*(_module(step) for step in decoder_plan(self.level, arch, self.width)))

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments (recorded in weights files and models)."""
        return {"level": self.level, "arch": self.arch, "width": self.width}

    @property
    def layer(self) -> str:
        """The encoder layer this decoder inverts (relu{level}_1)."""
        return LEVEL_LAYERS[self.level]

    @property
    def stride(self) -> int:
        """How much the encoder shrinks an image to this decoder's input (2^(level-1))."""
        return 2 ** (self.level - 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


@torch.no_grad()
def fit_linear(decoder: Decoder, features: torch.Tensor, images: torch.Tensor) -> float:
    """Set a level-1 decoder (one reflection-padded 3×3 convolution: linear) to the least-squares solution that
    maps ``features`` (N, 64, H, W) to ``images`` (N, 3, H, W); returns the fit's mean squared error.

    Chosen: gradient descent on this one linear layer converges slowly (the relu1_1 features are strongly
    correlated: 14-16 dB after 1,500 Adam steps), the least-squares solution reconstructs held-out photos at
    ~40 dB; training then fine-tunes it with the paper's loss."""
    import torch.nn.functional as F

    if decoder.level != 1:
        raise ConfigError("only a level-1 decoder is linear")
    conv = decoder.net[1]
    cols = F.unfold(F.pad(features.double(), (1, 1, 1, 1), mode="reflect"), 3)  # (N, 64*9, H*W)
    x = torch.cat([cols.transpose(1, 2).reshape(-1, cols.shape[1]), cols.new_ones(cols.shape[0] * cols.shape[2], 1)], 1)
    y = images.double().reshape(images.shape[0], 3, -1).transpose(1, 2).reshape(-1, 3)
    solution = torch.linalg.lstsq(x.cpu(), y.cpu()).solution  # (64*9 + 1, 3)
    conv.weight.copy_(solution[:-1].t().reshape(conv.weight.shape).to(conv.weight))
    conv.bias.copy_(solution[-1].to(conv.bias))
    return float(((x.cpu() @ solution - y.cpu()) ** 2).mean())


def save_decoder(path: str | os.PathLike, decoder: Decoder, encoder: dict[str, Any],
                 metadata: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write ``decoder``'s weights (safetensors, no pickle) with its configuration, the ``encoder`` it inverts
    (arch, normalisation, weights file and sha256) and ``metadata``."""
    from safetensors.torch import save_file

    from fastnst.fileio import atomic_output

    meta = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    meta.update({META_TASK: DECODER_TASK, META_DECODER_CONFIG: json.dumps(decoder.config),
                 META_ENCODER: json.dumps(encoder)})
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in decoder.state_dict().items()}
    with atomic_output(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_decoder(path: str | os.PathLike) -> tuple[Decoder, dict[str, Any]]:
    """A decoder written by :func:`save_decoder` (``fastnst train-decoder``), in eval mode, and its metadata
    (``encoder`` parsed). InputError for a missing file, ModelFormatError for anything else."""
    from fastnst.fileio import read_safetensors

    path = Path(path)
    if not path.is_file():
        raise InputError(f"decoder '{path}' does not exist; pass a .safetensors file written by fastnst train-decoder")
    state, meta = read_safetensors(path, "pass a .safetensors file written by fastnst train-decoder")
    if meta.get(META_TASK) != DECODER_TASK or META_DECODER_CONFIG not in meta:
        raise ModelFormatError(f"'{path}' is not a fastnst decoder; pass a .safetensors file written by "
                               f"fastnst train-decoder")
    try:
        config = json.loads(meta[META_DECODER_CONFIG])
        decoder = Decoder(int(config["level"]), str(config["arch"]), float(config["width"]))
        decoder.load_state_dict(state)
        encoder = json.loads(meta.get(META_ENCODER, "{}"))
    except (ValueError, KeyError, TypeError, RuntimeError, ConfigError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ModelFormatError(f"'{path}' does not hold a usable decoder ({first}); train it again") from None
    return decoder.eval(), {**meta, "encoder": encoder}


__all__ = ["Decoder", "DECODER_LEVELS", "LEVEL_LAYERS", "block_convs", "fit_linear", "save_decoder", "load_decoder"]
