"""Whitening and colouring transforms of feature maps (Li et al. 2017, "Universal Style Transfer via Feature
Transforms"), in numpy: torch-free, exact (float64 eigendecompositions of C×C covariances, C <= 512).

The transform of one level is affine in the features: with the content's mean m_c and whitening matrix
W_c = (C_c + εI)^(-1/2), and the style's mean m_s and colouring matrix K_s = C_s^(1/2),

    f' = α (K_s W_c (f - m_c) + m_s) + (1 - α) f  =  A f + b,

so a level is one C×C matrix and a bias (a 1×1 convolution), computed once from statistics and applied to
any number of pixels or tiles. Blending styles interpolates the transformed features (the paper's style
interpolation), i.e. blends the affine maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fastnst.constants import WCT_RIDGE as RIDGE
from fastnst.constants import WCT_STYLE_RIDGE as STYLE_RIDGE


@dataclass(frozen=True)
class FeatureStats:
    """Mean (C,) and covariance (C, C) of a feature map's C-dimensional pixels, in float64."""

    mean: np.ndarray
    cov: np.ndarray
    count: int

    @classmethod
    def of(cls, features: np.ndarray) -> "FeatureStats":
        """Statistics of features shaped (C, H, W) or (1, C, H, W)."""
        f = np.asarray(features)
        if f.ndim == 4:
            f = f[0]
        c = f.shape[0]
        flat = f.reshape(c, -1).astype(np.float64)
        n = flat.shape[1]
        mean = flat.mean(axis=1)
        centred = flat - mean[:, None]
        cov = centred @ centred.T / max(n - 1, 1)
        return cls(mean, cov, n)

    def mix(self, other: "FeatureStats", weight: float) -> "FeatureStats":
        """(1 - weight) * self + weight * other: a running average (the content statistics of video frames)."""
        w = float(weight)
        return FeatureStats((1 - w) * self.mean + w * other.mean, (1 - w) * self.cov + w * other.cov,
                            self.count + other.count)


def _eigh(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sym = (cov + cov.T) / 2
    values, vectors = np.linalg.eigh(sym)
    return np.clip(values, 0.0, None), vectors


def _ridged(stats: FeatureStats, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and vectors of C + εI, ε = ``ridge`` · trace(C)/C (1e-12 at least: a flat image)."""
    c = stats.cov.shape[0]
    eps = ridge * float(np.trace(stats.cov)) / c + 1e-12
    values, vectors = _eigh(stats.cov)
    return values + eps, vectors


def whitening(stats: FeatureStats, ridge: float = RIDGE) -> np.ndarray:
    """(C_c + εI)^(-1/2) with ε = ridge · trace(C_c)/C (ε > 0 even for a flat image)."""
    values, vectors = _ridged(stats, ridge)
    return (vectors / np.sqrt(values)) @ vectors.T


def colouring(stats: FeatureStats, ridge: float = STYLE_RIDGE) -> np.ndarray:
    """(C_s + ε_s I)^(1/2), ε_s = ridge · trace(C_s)/C (negative rounding noise clipped first; a flat style
    gives ~zero: every pixel gets the style's mean)."""
    values, vectors = _ridged(stats, ridge)
    return (vectors * np.sqrt(values)) @ vectors.T


@dataclass(frozen=True)
class Affine:
    """One level's transform f -> A f + b (float32, A: (C, C), b: (C,))."""

    matrix: np.ndarray
    bias: np.ndarray

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Apply to features shaped (N, C, H, W) (float32)."""
        n, c, h, w = features.shape
        flat = features.reshape(n, c, h * w)
        out = np.matmul(self.matrix, flat) + self.bias[None, :, None]
        return out.reshape(n, c, h, w).astype(np.float32, copy=False)


def transform(content: FeatureStats, style: FeatureStats, strength: float = 1.0, ridge: float = RIDGE,
              colour: np.ndarray | None = None) -> Affine:
    """The WCT of one level as an affine map, blended with the identity by ``strength`` (α in [0, 1]).
    ``colour``: the style's :func:`colouring` matrix when it is already known (a style used many times)."""
    a = float(strength)
    t = (colouring(style) if colour is None else colour) @ whitening(content, ridge)
    c = t.shape[0]
    matrix = a * t + (1.0 - a) * np.eye(c)
    bias = a * (style.mean - t @ content.mean)
    return Affine(matrix.astype(np.float32), bias.astype(np.float32))


def blend(maps: Sequence[Affine], weights: Sequence[float]) -> Affine:
    """Σ w_i · map_i with weights summing to one: interpolation of the transformed features."""
    w = np.asarray(weights, np.float64)
    w = w / w.sum()
    matrix = sum(wi * m.matrix.astype(np.float64) for wi, m in zip(w, maps))
    bias = sum(wi * m.bias.astype(np.float64) for wi, m in zip(w, maps))
    return Affine(np.asarray(matrix, np.float32), np.asarray(bias, np.float32))


__all__ = ["FeatureStats", "Affine", "whitening", "colouring", "transform", "blend", "RIDGE", "STYLE_RIDGE"]
