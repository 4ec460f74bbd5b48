"""Universal style transfer as one network (Li et al. 2017, "Universal Style Transfer via Feature Transforms"):
a frozen VGG encoder, one decoder per level, and the whitening and colouring transform between them.

:class:`UniversalNet` stylises a content image with any style image, coarse to fine: for each level L of
``levels`` (relu4_1, relu3_1, relu2_1, relu1_1) it encodes the current image to relu{L}_1, whitens the
features with the content's covariance, colours them with the style's (the style image encoded once to all
levels), blends with the content features by ``strength`` (α) in feature space and decodes back to an image,
which feeds the next level.

The square roots of the C×C covariances are computed with the coupled Newton-Schulz iteration (matrix
products only), so the network exports to one plain ONNX graph with two images and a strength in, an image
out, that any runtime runs (onnxruntime, the browser, OpenCV, tract). fastnst's own runtime runs the same
weights stage by stage with exact float64 eigendecompositions instead (:mod:`fastnst.runtime.universal`);
:func:`newton_schulz` converges to them (20 iterations: relative error ~1e-7 on photo features whose
covariance condition number is ~1e4; the ridge bounds it for flat images).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from fastnst.constants import IMAGENET_MEAN, IMAGENET_STD, VGG_LAYERS, WCT_NS_ITERATIONS, WCT_RIDGE, WCT_STYLE_RIDGE
from fastnst.contract import LEVEL_LAYERS, UNIVERSAL_LEVELS
from fastnst.networks.decoders import Decoder

LEVELS = UNIVERSAL_LEVELS


def newton_schulz(a: torch.Tensor, iterations: int = WCT_NS_ITERATIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """(A^½, A^-½) of a symmetric positive definite (C, C) matrix by the coupled Newton-Schulz iteration
    (Higham 2008, eq. 6.35), on A / trace(A) so that every eigenvalue is in (0, 1] and it converges."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    norm = torch.diagonal(a).sum() + 1e-12
    y, z = a / norm, eye
    for _ in range(int(iterations)):
        t = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ t, t @ z
    root = norm.sqrt()
    return y * root, z / root


def feature_moments(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (C, 1), covariance (C, C)) of features (1, C, H, W): the pixels as C-vectors (H·W >= 2)."""
    c = features.shape[1]
    flat = features.reshape(c, -1)
    mean = flat.mean(dim=1, keepdim=True)
    centred = flat - mean
    return mean, centred @ centred.t() / (flat.shape[1] - 1)


def whiten_colour(content: torch.Tensor, style: torch.Tensor, strength: torch.Tensor,
                  ridge: float = WCT_RIDGE, iterations: int = WCT_NS_ITERATIONS) -> torch.Tensor:
    """The WCT of one level: content features (1, C, H, W) whitened with (C_c + εI)^-½ (ε = ridge · trace/C),
    coloured with (C_s + ε_s I)^½ (ε_s = WCT_STYLE_RIDGE · trace/C) and the style's mean, blended with the content
    features by ``strength`` (1,)."""
    c = content.shape[1]
    mean_c, cov_c = feature_moments(content)
    mean_s, cov_s = feature_moments(style)
    eye = torch.eye(c, dtype=content.dtype, device=content.device)
    eps = ridge * torch.diagonal(cov_c).sum() / c + 1e-12
    eps_s = WCT_STYLE_RIDGE * torch.diagonal(cov_s).sum() / c + 1e-12
    _, whiten = newton_schulz(cov_c + eps * eye, iterations)
    colour, _ = newton_schulz(cov_s + eps_s * eye, iterations)  # a flat style: colour ~0, features -> its mean
    flat = content.reshape(c, -1)
    out = colour @ (whiten @ (flat - mean_c)) + mean_s
    out = strength * out + (1.0 - strength) * flat
    return out.reshape(content.shape)


class Encoder(nn.Module):
    """The frozen VGG cut at relu4_1 (or shallower), taking RGB in [0, 1]: ImageNet normalisation, then the
    convolutions. ``convs`` are the VGG's ``features`` modules up to the deepest layer needed."""

    def __init__(self, features: nn.Sequential, arch: str = "vgg16") -> None:
        super().__init__()
        self.arch = arch
        self.features = features
        self.names = VGG_LAYERS[arch][:len(features)]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """``{layer: activation}`` for ``layers`` (relu names), running only as deep as needed."""
        last = max(self.names.index(n) for n in layers)
        out: dict[str, torch.Tensor] = {}
        h = (x - self.mean) / self.std
        for i in range(last + 1):
            h = self.features[i](h)
            if self.names[i] in layers:
                out[self.names[i]] = h
        return out


class UniversalNet(nn.Module):
    """Content (1, 3, H, W), style (1, 3, h, w) in [0, 1] and strength (1,) -> stylised (1, 3, H, W) in [0, 1].

    H, W must be multiples of 2^(deepest level - 1) (8 for relu4_1); any style size of at least that works.
    ``decoders`` maps each level to its :class:`~fastnst.networks.decoders.Decoder`.
    """

    def __init__(self, encoder: Encoder, decoders: Mapping[int, Decoder], levels: Sequence[int] = LEVELS,
                 ridge: float = WCT_RIDGE, iterations: int = WCT_NS_ITERATIONS) -> None:
        super().__init__()
        self.encoder = encoder
        self.levels = tuple(int(v) for v in levels)
        self.decoders = nn.ModuleDict({str(level): decoders[level] for level in self.levels})
        self.ridge, self.iterations = float(ridge), int(iterations)
        self.requires_grad_(False)

    def forward(self, content: torch.Tensor, style: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        layers = [LEVEL_LAYERS[level] for level in self.levels]
        style_features = self.encoder(style, layers)
        x = content
        for level in self.levels:
            layer = LEVEL_LAYERS[level]
            features = self.encoder(x, [layer])[layer]
            features = whiten_colour(features, style_features[layer], strength, self.ridge, self.iterations)
            x = self.decoders[str(level)](features)
        return x.clamp(0.0, 1.0)


__all__ = ["UniversalNet", "Encoder", "LEVELS", "newton_schulz", "feature_moments", "whiten_colour"]
