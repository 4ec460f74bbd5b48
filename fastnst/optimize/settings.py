"""What the image optimisations take: their defaults (each with its source) and settings, declared once.

The settings dataclasses declare every option with :func:`fastnst.options.option` (default, help, choices,
bounds); the public functions (:func:`~fastnst.optimize.transfer.gatys`, ...) and the jobs
(:mod:`fastnst.optimize.jobs`, whose fields are the command's flags) check them here, once, with
:func:`check_settings` (and the settings' own ``check``), then pass them on as checked objects.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from fastnst import checks
from fastnst.constants import (DEFAULT_VGG_NORMALIZE, GATYS_CONTENT_LAYERS, GATYS_STYLE_LAYERS, MAX_ITERATIONS,
                               VGG_ARCHS, VGG_NORMALIZE_CHOICES, VGG_POOLINGS)
from fastnst.cpu import PRECISIONS
from fastnst.errors import ConfigError, InputError
from fastnst.losses.functional import STYLE_NORMS, STYLE_STATS, layer_weights
from fastnst.networks.vgg import check_layers, normalization
from fastnst.options import check_value, field_types, flag_name, option

OPTIMIZERS = ("lbfgs", "adam")
INIT_CHOICES = ("content", "noise", "style")

# Gatys defaults. Loss weights on the RMS-normalised loss network (fastnst.networks.vgg_normalize: one loss
# scale for every VGG weight set). Chosen: scripts/bench_quality.py / Gatys sweeps with the imported Caffe
# VGG19 on held-out photos, judged on the pictures: style 1 keeps the photo's objects and carries the
# style's texture (0.3 is subtler, 10 loses the content).
# The style term is normalised by the content's distance to the style (each layer's style loss is 1 at the
# photo), so that one balance holds for any style picture: with the reference photos' scale a fine texture
# (halftone dots) erased the photo (edge correlation 0.02) while a painting kept it (0.77). TV against the
# pixel-scale colour speckle of L-BFGS; 300 iterations: the loss is within 1% of its best by then.
# Measured: scripts/bench_quality.py gatys, 6 style pictures x 3 held-out photos (docs/gatys.md).
GATYS_CONTENT_WEIGHT = 1.0
GATYS_STYLE_WEIGHT = 1.0
GATYS_TV_WEIGHT = 5.0           # chosen (paper: 0); speckle at or below the photo's own with little blur
GATYS_STYLE_NORM = "distance"   # chosen (earlier default: reference)
GATYS_ITERATIONS = 300          # chosen (reference implementation: 1000; earlier default 500)
GATYS_SIZE = 512                # reference implementation (neural-style -image_size 512)
LBFGS_HISTORY = 100             # reference implementation (neural-style / torch.optim.LBFGS default)
ADAM_LR = 0.04                  # reference implementation: neural-style's -learning_rate 10 on the 0-255 scale
MAX_LR = 1e6                    # chosen: a typo guard; steps of this size in [0, 1] pixels mean nothing
MAX_SCALES = 16                 # chosen: 2^15 times smaller than the output is below any layer's smallest input
MAX_STYLE_SCALE = 64.0          # chosen: a style image 64x the output's side is far past any useful stroke size
# Inversion: Mahendran & Vedaldi normalise the feature loss by ||Φ0||²; TV keeps the result image-like.
INVERT_TV_WEIGHT = 0.5          # chosen: smooth results; natural photos have TV ≈ 0.002-0.01 here
INVERT_ITERATIONS = 200         # chosen: the feature loss flattens out by then at 256² with L-BFGS
INVERT_SIZE = 256               # chosen: the size INVERT_ITERATIONS was judged at
INVERT_LAYER = "relu3_3"        # chosen: a middle layer, where the reconstruction starts to lose detail
TEXTURE_ITERATIONS = 300        # chosen: like Gatys, texture from noise needs a few hundred L-BFGS steps
TEXTURE_SIZE = 256              # chosen: a quick default; any size works (style_scale follows it)
TEXTURE_TV_WEIGHT = 0.0         # paper; Gatys' TV default is for style transfer (texture keeps what it had)
# DeepDream: google/deepdream's notebook (reference implementation): 4 octaves of scale 1.4, 10 steps each,
# jitter 32 px, step 1.5 on 0-255 input with the gradient normalised by its mean absolute value.
DREAM_OCTAVES = 4
DREAM_OCTAVE_SCALE = 1.4
DREAM_ITERATIONS = 10
DREAM_JITTER = 32
DREAM_STEP = 1.5 / 255.0
DREAM_LAYER = "relu4_3"         # chosen: object parts (eyes, wheels) on VGG, like the notebook's inception_4c
DREAM_SIZE = 512                # chosen: as GATYS_SIZE; the octaves start 1.4^3 = 2.7x smaller
MAX_OCTAVES = 32                # chosen: typo guards (32 octaves of 1.4 shrink an image 34,000 times)
MAX_OCTAVE_SCALE = 16.0
MAX_JITTER = 4096


def check_settings(settings: Any) -> Any:
    """Check every field of a settings dataclass against its declared choices and bounds (integer fields must
    be whole numbers: the Python API has no argparse to convert them); returns ``settings``."""
    hints = field_types(type(settings))
    for f in dataclasses.fields(settings):
        value = check_value(f, getattr(settings, f.name))
        if hints[f.name] is int and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
            raise ConfigError(f"{flag_name(f)} must be a whole number, got {value!r}")
    return settings


def check_iterations(iterations: Any) -> int:
    """An iteration count of a public function: a whole number in [1, MAX_ITERATIONS]."""
    return checks.whole("iterations", iterations, maximum=MAX_ITERATIONS)


def iterations_option(default: int) -> Any:
    """The ``iterations`` field of a job (loss evaluations per scale or octave)."""
    return option(default, "loss evaluations (per scale or octave where there are several)", low=1,
                  high=MAX_ITERATIONS)


_WEIGHTS_HELP = ("imagenet | random | PATH to a torchvision VGG state dict (default: $FASTNST_VGG_WEIGHTS or "
                 "imagenet; random is for tests only)")


@dataclass
class NetworkSettings:
    """The loss network of every method (defaults: see module constants)."""

    net: str = option("vgg19", "loss network (vgg19: paper)", choices=VGG_ARCHS)
    pooling: str = option("max", "VGG pooling (max, as neural-style; the Gatys paper prefers avg)",
                          choices=VGG_POOLINGS)
    vgg_weights: Optional[str] = option(None, _WEIGHTS_HELP)
    vgg_normalize: Optional[str] = option(DEFAULT_VGG_NORMALIZE, "loss-network normalisation: rms (one loss scale "
                                          "for any VGG weights), mean (Gatys' normalised VGG; the bare flag) or "
                                          "none (raw features)", choices=VGG_NORMALIZE_CHOICES)
    normalize_images: Optional[str] = option(None, "folder of images for the normalisation statistics (default: "
                                             "fastnst's bundled photos); statistics are cached", metavar="DIR")


@dataclass
class GatysSettings(NetworkSettings):
    """Loss settings shared by :func:`~fastnst.optimize.transfer.gatys`, :func:`~fastnst.optimize.synthesis.texture`
    and :func:`~fastnst.optimize.objective.score`."""

    content_layers: Union[Sequence[str], str] = option(GATYS_CONTENT_LAYERS, "content layers (paper)")
    style_layers: Union[Sequence[str], str] = option(GATYS_STYLE_LAYERS, "style layers (paper)")
    style_layer_weights: Union[Sequence[float], Mapping[str, float], None] = option(
        None, "one weight per style layer (default: all 1, paper)")
    content_weight: float = option(GATYS_CONTENT_WEIGHT, "content loss weight", low=0)
    style_weight: float = option(GATYS_STYLE_WEIGHT, "style loss weight", low=0)
    tv_weight: float = option(GATYS_TV_WEIGHT, "total-variation weight against pixel speckle (paper: 0)", low=0)
    style_blend: Optional[Sequence[float]] = option(None, "weights, one per style image (default: equal)", low=0)
    style_scale: float = option(1.0, "style image long side relative to the output's (neural-style)", above=0,
                                high=MAX_STYLE_SCALE)
    style_stat: str = option("gram", "style statistic (gram: paper)", choices=STYLE_STATS)
    precision: str = option("auto", "number format of the loss network: auto (bfloat16 autocast on a CPU with "
                                    "AVX512-BF16 or AMX, float32 elsewhere, as before), fp32 or bf16 (Gram "
                                    "matrices and targets stay float32)", choices=PRECISIONS)
    style_norm: str = option(GATYS_STYLE_NORM, "each style layer's loss relative to: reference (the loss "
                             "network's reference photos), style (the style's own statistics) or distance (the "
                             "content's distance to the style: one balance for any style picture)",
                             choices=STYLE_NORMS)

    def check(self) -> None:
        """Validate everything that does not need the images (before long work starts); layer names become
        checked tuples and style layer weights a checked ``{layer: weight}``."""
        self.content_layers = check_layers(self.content_layers, self.net)
        self.style_layers = check_layers(self.style_layers, self.net)
        for f in dataclasses.fields(self):  # vgg_normalize may also be a folder (below)
            if f.name != "vgg_normalize":
                check_value(f, getattr(self, f.name))
        if self.style_layer_weights is not None:
            self.style_layer_weights = layer_weights(self.style_layers, self.style_layer_weights)
        if self.normalize_images is not None and not os.path.isdir(self.normalize_images):
            raise InputError(f"normalising images folder '{self.normalize_images}' does not exist; "
                             f"pass --normalize-images DIR with a few photos")
        normalization(self.vgg_normalize, self.normalize_images)

    def check_blend(self, n_styles: int) -> list[float] | None:
        """``style_blend`` (its values checked by :meth:`check`) against the number of style images."""
        if self.style_blend is None:
            return None
        blend = [float(b) for b in self.style_blend]
        if len(blend) != n_styles:
            raise ConfigError(f"{len(blend)} style blend weights for {n_styles} style images; give one per image")
        if sum(blend) <= 0:
            raise ConfigError("style blend weights must not all be zero")
        return blend

    def layers(self) -> tuple[str, ...]:
        """Every layer the loss taps: content layers, then style layers."""
        return tuple(dict.fromkeys(tuple(self.content_layers) + tuple(self.style_layers)))


def gatys_settings(settings: GatysSettings | None, overrides: Mapping[str, Any]) -> GatysSettings:
    """A fresh, checked GatysSettings from ``settings`` (or the defaults) with keyword ``overrides`` applied."""
    names = [f.name for f in dataclasses.fields(GatysSettings)]
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise TypeError(f"unknown option '{unknown[0]}'")
    base = {n: getattr(settings, n) for n in names} if settings is not None else {}
    out = GatysSettings(**{**base, **overrides})
    out.check()
    return out


@dataclass
class OptimizerSettings:
    """The pixel optimiser of gatys, texture and invert."""

    optimizer: str = option("lbfgs", "lbfgs (paper) or adam", choices=OPTIMIZERS)
    lr: Optional[float] = option(None, f"step size (default: L-BFGS 1, Adam {ADAM_LR:g})", above=0, high=MAX_LR)


@dataclass
class DreamSettings:
    """DeepDream's octaves and steps (google/deepdream's notebook)."""

    octaves: int = option(DREAM_OCTAVES, "octaves (deepdream notebook)", low=1, high=MAX_OCTAVES)
    octave_scale: float = option(DREAM_OCTAVE_SCALE, "size ratio between octaves", above=1, high=MAX_OCTAVE_SCALE)
    step: float = option(DREAM_STEP, "step per iteration in [0,1] pixel units (1.5/255: deepdream notebook)",
                         above=0, high=1)
    jitter: int = option(DREAM_JITTER, "random shift in pixels", low=0, high=MAX_JITTER)
