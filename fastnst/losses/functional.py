"""The loss terms as tensor maths: style statistics, content, style, total variation, normalised inversion.

No network here (habit 3, kornia's ``total_variation()`` beside ``TotalVariation``): every function takes
features or images and returns tensors; :mod:`fastnst.losses.modules` wraps them as modules and
:mod:`fastnst.losses.perceptual` composes them on a loss network. Each function checks its inputs' shapes
(programming errors: ValueError naming the shape it expected).

Normalisation (chosen so that a weight means the same at any image size): :func:`gram_matrix` divides
F Fᵀ by C·H·W, so its entries are mean products of activations, independent of the image's size;
:func:`style_layer_losses` and :func:`content_loss` are means of squared differences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from fastnst.errors import ConfigError, unknown_choice

STYLE_STATS = ("gram", "covariance")  # gram: paper (Gatys et al.); covariance: mean-free Gram
# What a style layer's loss is measured against (see style_norm_factors): the loss network's reference photos
# (one scale for every VGG), the style's own statistics, or the distance from the content to the style.
STYLE_NORMS = ("reference", "style", "distance")


def check_shape(x: torch.Tensor, what: str, dims: int = 4, layout: str = "(N, C, H, W)") -> torch.Tensor:
    """``x`` if it is a tensor with ``dims`` dimensions, else ValueError naming ``what`` and ``layout``."""
    if not isinstance(x, torch.Tensor) or x.dim() != dims:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} must be a {dims}-d tensor {layout}, got {got}")
    return x


def _as_rows(f: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """(N, C, H, W) -> a free view: (N, HW, C) if channels_last else (N, C, HW); flag says which."""
    n, c, h, w = f.shape
    if f.is_contiguous(memory_format=torch.channels_last) and not f.is_contiguous():
        return f.permute(0, 2, 3, 1).reshape(n, h * w, c), True
    return f.reshape(n, c, h * w), False


# ----------------------------------------------------------------------------------------------- statistics

def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices G = F Fᵀ / (C·H·W) of features (N, C, H, W) -> (N, C, C). Symmetric, size-invariant.
    bfloat16/float16 features (under autocast) give a float32 Gram matrix, computed in float32."""
    n, c, h, w = check_shape(features, "features").shape
    if features.dtype in (torch.bfloat16, torch.float16):  # reduced-precision features (autocast): the Gram
        with torch.autocast(features.device.type, enabled=False):  # matrix in float32, as its targets are
            return gram_matrix(features.float())
    x, hwc = _as_rows(features)
    g = torch.bmm(x.transpose(1, 2), x) if hwc else torch.bmm(x, x.transpose(1, 2))
    return g / (c * h * w)


def covariance_matrix(features: torch.Tensor) -> torch.Tensor:
    """Like :func:`gram_matrix` after removing each channel's spatial mean (N, C, C)."""
    check_shape(features, "features")
    return gram_matrix(features - features.mean(dim=(2, 3), keepdim=True))


def style_statistic(features: torch.Tensor, stat: str = "gram") -> torch.Tensor:
    """The style statistic ``stat`` (one of :data:`STYLE_STATS`) of features (N, C, H, W) -> (N, C, C)."""
    if stat == "gram":
        return gram_matrix(features)
    if stat == "covariance":
        return covariance_matrix(features)
    raise unknown_choice("style statistic", stat, STYLE_STATS)


# ----------------------------------------------------------------------------------------------- content

def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Feature reconstruction loss: mean squared difference of activations (``target`` broadcasts)."""
    try:
        target = target.expand_as(features)
    except RuntimeError:
        raise ValueError(f"content target of shape {tuple(target.shape)} does not fit features of shape "
                         f"{tuple(features.shape)}") from None
    return F.mse_loss(features, target)


def inverse_energy(target: torch.Tensor) -> float:
    """1 / mean(target²), the inversion term's normaliser; ValueError for an all-zero target."""
    energy = float(target.detach().pow(2).mean())
    if not energy > 0:
        raise ValueError("the inversion target is all zeros; there is nothing to reconstruct")
    return 1.0 / energy


def inversion_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Normalised feature loss ||Φ - Φ₀||² / ||Φ₀||² (Mahendran & Vedaldi 2015), as means over elements."""
    return content_loss(features, target) * inverse_energy(target)


# ----------------------------------------------------------------------------------------------- style

def style_layer_losses(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                       layer_weights: Mapping[str, float] | None = None,
                       stat: str = "gram", item_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-layer weighted style losses ``{layer: w_l · mean((S(F_l) - T_l)²)}`` over the layers of ``targets``.

    ``features``: ``{layer: (N, C, H, W)}``; ``targets``: ``{layer: (1 or N, C, C)}``; ``layer_weights``:
    ``{layer: w_l}`` (missing layers weigh 1). ``item_weights`` (N,) multiplies each batch item's term
    before the mean over the batch (multi-style training scales each item by its style's factor).
    """
    out = {}
    for name, target in targets.items():
        s = style_statistic(features[name], stat)
        check_shape(target, f"style target of {name}", 3, "(1 or N, C, C)")
        if target.shape[1:] != s.shape[1:] or target.shape[0] not in (1, s.shape[0]):
            raise ValueError(f"style target of {name} has shape {tuple(target.shape)}; the features give "
                             f"{tuple(s.shape)}")
        w = 1.0 if layer_weights is None else float(layer_weights.get(name, 1.0))
        if item_weights is None:
            out[name] = w * (s - target).pow(2).mean()
        else:
            out[name] = w * ((s - target).pow(2).flatten(1).mean(1) * item_weights.to(s.dtype)).mean()
    return out


def style_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
               layer_weights: Mapping[str, float] | None = None, stat: str = "gram") -> torch.Tensor:
    """Σ_l w_l · mean((S(F_l) - T_l)²): the sum of :func:`style_layer_losses`."""
    per_layer = style_layer_losses(features, targets, layer_weights, stat)
    return sum(per_layer.values(), features[next(iter(targets))].new_zeros(()))


def style_norm_factors(targets: Mapping[str, torch.Tensor], mode: str,
                       content_stats: Mapping[str, torch.Tensor] | None = None) -> dict[str, float] | None:
    """Per-layer factors on the style losses for the normalisation ``mode`` (one of :data:`STYLE_NORMS`).

    ``reference``: None (keep the loss network's own factors, ``VGGFeatures.style_norms``); ``style``:
    ``1 / mean(T_l²)``, each layer's loss relative to the style's own statistic energy; ``distance``:
    ``1 / mean((C_l - T_l)²)`` with ``content_stats`` C (the content image's statistics), so that each layer's
    loss is 1 at the content image, whatever the style's and the photo's statistics. ValueError when
    ``distance`` is asked without ``content_stats``.
    """
    if mode == "reference":
        return None
    if mode not in STYLE_NORMS:
        raise unknown_choice("style normalisation", mode, STYLE_NORMS)
    if mode == "distance" and content_stats is None:
        raise ValueError("the distance normalisation needs the content image's statistics")
    out = {}
    for name, target in targets.items():
        t = target.detach().float()
        energy = t.pow(2).mean() if mode == "style" else (content_stats[name].detach().float() - t).pow(2).mean()
        out[name] = 1.0 / max(float(energy), 1e-12)
    return out


def layer_weights(layers: Sequence[str], weights: Mapping[str, float] | Sequence[float] | None) -> dict[str, float]:
    """``{layer: weight}`` from a mapping, one weight per layer, or None (all 1: paper).

    The one check of style layer weights: ConfigError when a mapping names a layer not in ``layers``,
    when a sequence has not one weight per layer, or when a weight is negative.
    """
    if weights is None:
        return {name: 1.0 for name in layers}
    if isinstance(weights, Mapping):
        unknown = [k for k in weights if k not in layers]
        if unknown:
            raise unknown_choice("style layer", unknown[0], layers)
        out = {name: float(weights.get(name, 1.0)) for name in layers}
    else:
        weights = list(weights)
        if len(weights) != len(layers):
            raise ConfigError(f"{len(weights)} style layer weights for {len(layers)} style layers "
                              f"({', '.join(layers)}); give one weight per layer")
        out = {name: float(w) for name, w in zip(layers, weights)}
    if any(not w >= 0 for w in out.values()):
        raise ConfigError("style layer weights must be zero or positive")
    return out


# ----------------------------------------------------------------------------------------------- smoothness

def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels, horizontally plus vertically (N, C, H, W)."""
    check_shape(images, "images")
    dx = images[..., :, 1:] - images[..., :, :-1]
    dy = images[..., 1:, :] - images[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()
