"""Perceptual losses built from terms: content, style, total variation and normalised inversion.

Each term is a function plus a thin module calling it (kornia's pairing); both check their inputs'
shapes and raise ValueError naming the shape they expected. :class:`PerceptualLoss` composes the
terms on a frozen :class:`~fastnst.networks.vgg.VGGFeatures` network; Gatys, texture synthesis and
feature inversion (:mod:`fastnst.optimize`) compose the terms they need.

Normalisation (chosen so that a weight means the same at any image size):
``gram_matrix`` divides F Fᵀ by C·H·W, so its entries are mean products of activations, independent
of the image's size; ``style_loss`` and ``content_loss`` are means of squared differences.
These match pytorch/examples' fast_neural_style, whose weights (content 1e5, style 1e10) carry over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fastnst.errors import ConfigError, unknown_choice
from fastnst.networks.vgg import VGGFeatures, check_layers

STYLE_STATS = ("gram", "covariance")


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


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices G = F Fᵀ / (C·H·W) of features (N, C, H, W) -> (N, C, C). Symmetric, size-invariant."""
    n, c, h, w = check_shape(features, "features").shape
    x, hwc = _as_rows(features)
    g = torch.bmm(x.transpose(1, 2), x) if hwc else torch.bmm(x, x.transpose(1, 2))
    return g / (c * h * w)


def covariance_matrix(features: torch.Tensor) -> torch.Tensor:
    """Like :func:`gram_matrix` after removing each channel's spatial mean (N, C, C)."""
    check_shape(features, "features")
    return gram_matrix(features - features.mean(dim=(2, 3), keepdim=True))


def style_statistic(features: torch.Tensor, stat: str = "gram") -> torch.Tensor:
    """The style statistic ``stat`` ('gram' or 'covariance') of features (N, C, H, W)."""
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


class ContentLoss(nn.Module):
    """Module form of :func:`content_loss`, summed over layers: ``forward({layer: F}, {layer: T})``."""

    def __init__(self, layers: Sequence[str]) -> None:
        super().__init__()
        self.layers = tuple(layers)

    def forward(self, features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
        out = features[self.layers[0]].new_zeros(())
        for name in self.layers:
            out = out + content_loss(features[name], targets[name])
        return out


def _inverse_energy(target: torch.Tensor) -> float:
    """1 / mean(target²), the inversion term's normaliser; ValueError for an all-zero target."""
    energy = float(target.detach().pow(2).mean())
    if not energy > 0:
        raise ValueError("the inversion target is all zeros; there is nothing to reconstruct")
    return 1.0 / energy


def inversion_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Normalised feature loss ||Φ - Φ₀||² / ||Φ₀||² (Mahendran & Vedaldi 2015), as means over elements."""
    return content_loss(features, target) * _inverse_energy(target)


class InversionLoss(nn.Module):
    """Module form of :func:`inversion_loss` for one fixed target (its normaliser computed once)."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach())
        self.scale = _inverse_energy(target)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return content_loss(features, self.target) * self.scale


# ----------------------------------------------------------------------------------------------- style

def style_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
               layer_weights: Mapping[str, float] | None = None, stat: str = "gram") -> torch.Tensor:
    """Σ_l w_l · mean((S(F_l) - T_l)²) over the layers of ``targets``; T_l is (1 or N, C, C)."""
    per_layer = style_layer_losses(features, targets, layer_weights, stat)
    return sum(per_layer.values(), features[next(iter(targets))].new_zeros(()))


def style_layer_losses(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                       layer_weights: Mapping[str, float] | None = None,
                       stat: str = "gram", item_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-layer weighted style losses ``{layer: w_l · mean((S(F_l) - T_l)²)}``.

    ``item_weights`` (N,) multiplies each batch item's term before the mean over the batch (multi-style
    training scales each item by its style's factor).
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


def layer_weights(layers: Sequence[str], weights: Mapping[str, float] | Sequence[float] | None) -> dict[str, float]:
    """``{layer: weight}`` from a mapping, one weight per layer, or None (all 1); ConfigError when they do not fit."""
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
            raise ConfigError(f"{len(weights)} style layer weights for {len(layers)} style layers; "
                              f"give one weight per layer")
        out = {name: float(w) for name, w in zip(layers, weights)}
    if any(not w >= 0 for w in out.values()):
        raise ConfigError("style layer weights must be zero or positive")
    return out


@torch.no_grad()
def style_targets(vgg: VGGFeatures, images: torch.Tensor | Sequence[torch.Tensor], layers: Sequence[str],
                  stat: str = "gram", blend: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """``{layer: (1, C, C)}`` style statistics of one image (1, 3, H, W) or several, blended by ``blend``.

    Blending averages the statistics with weights ``blend`` (normalised to sum to one), which has the
    same gradients as the weighted sum of the per-style losses.
    """
    if isinstance(images, torch.Tensor):
        images = [images] if images.dim() == 4 and images.shape[0] == 1 else list(images.split(1))
    images = list(images)
    if not images:
        raise ConfigError("no style image given")
    blend = [1.0] * len(images) if blend is None else [float(b) for b in blend]
    if len(blend) != len(images):
        raise ConfigError(f"{len(blend)} blend weights for {len(images)} style images; give one per image")
    if any(not b >= 0 for b in blend) or sum(blend) <= 0:
        raise ConfigError("style blend weights must be zero or positive, and not all zero")
    total = sum(blend)
    targets: dict[str, torch.Tensor] = {}
    for img, b in zip(images, blend):
        feats = vgg(check_shape(img, "style image", layout="(1, 3, H, W)"), layers=layers)
        for name in layers:
            s = style_statistic(feats[name].float(), stat) * (b / total)
            targets[name] = s if name not in targets else targets[name] + s
    return {name: t.contiguous() for name, t in targets.items()}


class StyleLoss(nn.Module):
    """Module form of :func:`style_layer_losses` with fixed layers, layer weights, statistic and per-layer
    normalisers (``norms``, e.g. ``VGGFeatures.style_norms``). ``forward`` returns ``{layer: loss}``."""

    def __init__(self, layers: Sequence[str], weights: Mapping[str, float] | Sequence[float] | None = None,
                 stat: str = "gram", norms: Mapping[str, float] | None = None) -> None:
        super().__init__()
        if stat not in STYLE_STATS:
            raise unknown_choice("style statistic", stat, STYLE_STATS)
        self.layers, self.stat = tuple(layers), stat
        self.weights = layer_weights(self.layers, weights)
        self.norms = dict(norms or {})

    def forward(self, features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                item_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        per_layer = style_layer_losses(features, targets, self.weights, self.stat, item_weights=item_weights)
        return {name: value * self.norms.get(name, 1.0) for name, value in per_layer.items()}


# ----------------------------------------------------------------------------------------------- smoothness

def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels, horizontally plus vertically (N, C, H, W)."""
    check_shape(images, "images")
    dx = images[..., :, 1:] - images[..., :, :-1]
    dy = images[..., 1:, :] - images[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


class TotalVariation(nn.Module):
    """Module form of :func:`total_variation`."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return total_variation(images)


# ----------------------------------------------------------------------------------------------- composed

class PerceptualLoss(nn.Module):
    """Content + style + total-variation terms on a frozen :class:`VGGFeatures` network.

    Call :meth:`set_style` once; then ``forward(output, content)`` returns a dict of weighted terms:
    ``content`` (absent when ``content_layers`` is empty: texture synthesis), ``style``, ``tv``,
    ``total`` and ``style/<layer>`` per style layer. The content image's features are computed without
    gradients and only as deep as the content layers need.
    """

    def __init__(self, vgg: VGGFeatures, content_layers: Sequence[str] | str, style_layers: Sequence[str] | str,
                 content_weight: float = 1e5, style_weight: float = 1e10, tv_weight: float = 0.0,
                 style_layer_weights: Mapping[str, float] | Sequence[float] | None = None,
                 style_stat: str = "gram") -> None:
        # Default weights: pytorch/examples fast_neural_style (reference implementation, same normalisation).
        super().__init__()
        self.vgg = vgg
        self.content_layers = check_layers(content_layers, vgg.arch) if content_layers else ()
        self.style_layers = check_layers(style_layers, vgg.arch)
        for name in self.content_layers + self.style_layers:
            if name not in vgg.layers:
                raise ConfigError(f"layer '{name}' is not tapped by the given VGGFeatures ({', '.join(vgg.layers)})")
        for label, value in (("content", content_weight), ("style", style_weight), ("tv", tv_weight)):
            if not value >= 0:  # also rejects NaN
                raise ConfigError(f"the {label} weight must be zero or positive, got {value}")
        self.content_weight, self.style_weight = float(content_weight), float(style_weight)
        self.tv_weight = float(tv_weight)
        self.content = ContentLoss(self.content_layers) if self.content_layers else None
        # one loss scale for every weight set: the normalised network's style normalisers (vgg_normalize)
        self.style = StyleLoss(self.style_layers, style_layer_weights, style_stat, getattr(vgg, "style_norms", {}))
        self.tv = TotalVariation()
        self._has_style = False

    def set_style(self, images: torch.Tensor | Sequence[torch.Tensor], blend: Sequence[float] | None = None) -> None:
        """Compute the style targets from one image (1, 3, H, W) or several, blended by ``blend``
        (see :func:`style_targets`)."""
        for name, t in style_targets(self.vgg, images, self.style_layers, self.style.stat, blend).items():
            self.register_buffer(f"target_{name}", t)
        self._has_style = True

    @property
    def style_targets(self) -> dict[str, torch.Tensor]:
        """``{layer: target statistic (1, C, C)}`` set by :meth:`set_style`."""
        if not self._has_style:
            raise RuntimeError("call set_style() before computing style losses")
        return {name: getattr(self, f"target_{name}") for name in self.style_layers}

    @torch.no_grad()
    def content_features(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """Content-layer features of ``content`` (no gradients, only as deep as needed)."""
        return self.vgg(content, layers=self.content_layers)

    def forward(self, output: torch.Tensor, content: torch.Tensor | None = None,
                content_features: Mapping[str, torch.Tensor] | None = None,
                style_targets: Mapping[str, torch.Tensor] | None = None,
                style_item_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Weighted loss terms of ``output`` (N, 3, H, W) against ``content`` (or its precomputed features).

        ``style_targets`` ({layer: (1 or N, C, C)}) replaces the targets of :meth:`set_style` for this
        call (multi-style training gives each batch item its own style's targets); ``style_item_weights``
        (N,) scales each item's style term (see :func:`style_layer_losses`).
        """
        check_shape(output, "output", layout="(N, 3, H, W)")
        use_content = self.content is not None and self.content_weight > 0 and \
            (content is not None or content_features is not None)
        use_style = self.style_weight > 0 and (self._has_style or style_targets is not None)
        layers = tuple(dict.fromkeys((self.content_layers if use_content else ()) +
                                     (self.style_layers if use_style else ())))
        feats = self.vgg(output, layers=layers) if layers else {}
        zero = output.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        if self.content is not None:
            if use_content and content_features is None:
                content_features = self.content_features(content)
            terms["content"] = self.content_weight * self.content(feats, content_features) if use_content else zero
        s = zero
        if use_style:
            targets = self.style_targets if style_targets is None else style_targets
            for name, value in self.style(feats, targets, style_item_weights).items():
                terms[f"style/{name}"] = self.style_weight * value
                s = s + terms[f"style/{name}"]
        terms["style"] = s
        terms["tv"] = self.tv_weight * self.tv(output) if self.tv_weight > 0 else zero
        terms["total"] = terms.get("content", zero) + terms["style"] + terms["tv"]
        return terms
