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

from fastnst.constants import VGG_ARCHS, VGG_LAYERS
from fastnst.contract import DECODER_TASK, META_DECODER_CONFIG, META_ENCODER, META_TASK
from fastnst.errors import ConfigError, InputError, ModelFormatError, unknown_choice

DECODER_LEVELS = (1, 2, 3, 4)
LEVEL_LAYERS = {1: "relu1_1", 2: "relu2_1", 3: "relu3_1", 4: "relu4_1"}
BLOCK_CHANNELS = (64, 128, 256, 512)  # VGG's channels per block
MIN_WIDTH, MAX_WIDTH = 0.125, 2.0  # chosen bounds of the width factor (8..1024 channels)


def block_convs(arch: str) -> list[int]:
    """Convolutions per VGG block of ``arch`` (vgg16: 2, 2, 3, 3, 3; vgg19: 2, 2, 4, 4, 4)."""
    counts: dict[int, int] = {}
    for name in VGG_LAYERS[arch]:
        if name.startswith("conv"):
            counts[int(name[4])] = counts.get(int(name[4]), 0) + 1
    return [counts[b] for b in sorted(counts)]


def _conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


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
        convs = block_convs(arch)
        ch = [max(8, round(c * self.width)) for c in BLOCK_CHANNELS]
        layers: list[nn.Module] = []
        cin = BLOCK_CHANNELS[self.level - 1]  # the encoder's channels at relu{level}_1
        for block in range(self.level, 1, -1):
            layers += _conv(cin, ch[block - 2])  # mirror of conv{block}_1
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))  # mirror of pool{block-1}
            cin = ch[block - 2]
            for _ in range(convs[block - 2] - 1):  # mirrors of conv{block-1}_2 ... conv{block-1}_k
                layers += _conv(cin, cin)
        layers += _conv(cin, 3, relu=False)  # mirror of conv1_1
        self.net = nn.Sequential(*layers)

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


__all__ = ["Decoder", "DECODER_LEVELS", "LEVEL_LAYERS", "block_convs", "save_decoder", "load_decoder"]
