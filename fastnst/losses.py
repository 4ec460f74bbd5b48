"""Perceptual losses: content (feature reconstruction), style (Gram or covariance), total variation.

Functions first; the modules are thin. Every term is returned separately so it can be logged.

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


def _as_rows(f: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """(N, C, H, W) -> a free view: (N, HW, C) if channels_last else (N, C, HW); flag says which."""
    n, c, h, w = f.shape
    if f.is_contiguous(memory_format=torch.channels_last) and not f.is_contiguous():
        return f.permute(0, 2, 3, 1).reshape(n, h * w, c), True
    return f.reshape(n, c, h * w), False


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices G = F Fᵀ / (C·H·W) of features (N, C, H, W) -> (N, C, C). Symmetric, size-invariant."""
    n, c, h, w = features.shape
    x, hwc = _as_rows(features)
    g = torch.bmm(x.transpose(1, 2), x) if hwc else torch.bmm(x, x.transpose(1, 2))
    return g / (c * h * w)


def covariance_matrix(features: torch.Tensor) -> torch.Tensor:
    """Like :func:`gram_matrix` after removing each channel's spatial mean (N, C, C)."""
    return gram_matrix(features - features.mean(dim=(2, 3), keepdim=True))


def style_statistic(features: torch.Tensor, stat: str = "gram") -> torch.Tensor:
    """The style statistic ``stat`` ('gram' or 'covariance') of features (N, C, H, W)."""
    if stat == "gram":
        return gram_matrix(features)
    if stat == "covariance":
        return covariance_matrix(features)
    raise unknown_choice("style statistic", stat, STYLE_STATS)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Feature reconstruction loss: mean squared difference of activations."""
    return F.mse_loss(features, target.expand_as(features))


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
        w = 1.0 if layer_weights is None else float(layer_weights.get(name, 1.0))
        if item_weights is None:
            out[name] = w * (s - target).pow(2).mean()
        else:
            out[name] = w * ((s - target).pow(2).flatten(1).mean(1) * item_weights.to(s.dtype)).mean()
    return out


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels, horizontally plus vertically (N, C, H, W)."""
    dx = images[..., :, 1:] - images[..., :, :-1]
    dy = images[..., 1:, :] - images[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


class TotalVariation(nn.Module):
    """Module form of :func:`total_variation`."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return total_variation(images)


class PerceptualLoss(nn.Module):
    """Content + style + total-variation loss on a frozen :class:`VGGFeatures` network.

    Call :meth:`set_style` once; then ``forward(output, content)`` returns a dict of weighted terms:
    ``content``, ``style``, ``tv``, ``total`` and ``style/<layer>`` per style layer. The content
    image's features are computed without gradients and only as deep as the content layers need.
    """

    def __init__(self, vgg: VGGFeatures, content_layers: Sequence[str] | str, style_layers: Sequence[str] | str,
                 content_weight: float = 1e5, style_weight: float = 1e10, tv_weight: float = 0.0,
                 style_layer_weights: Mapping[str, float] | Sequence[float] | None = None,
                 style_stat: str = "gram") -> None:
        # Default weights: pytorch/examples fast_neural_style (reference implementation, same normalisation).
        super().__init__()
        self.vgg = vgg
        self.content_layers = check_layers(content_layers, vgg.arch)
        self.style_layers = check_layers(style_layers, vgg.arch)
        for name in self.content_layers + self.style_layers:
            if name not in vgg.layers:
                raise ConfigError(f"layer '{name}' is not tapped by the given VGGFeatures ({', '.join(vgg.layers)})")
        for label, value in (("content", content_weight), ("style", style_weight), ("tv", tv_weight)):
            if not value >= 0:  # also rejects NaN
                raise ConfigError(f"the {label} weight must be zero or positive, got {value}")
        if style_stat not in STYLE_STATS:
            raise unknown_choice("style statistic", style_stat, STYLE_STATS)
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        self.style_stat = style_stat
        self.style_layer_weights = self._layer_weights(style_layer_weights)
        self._has_style = False

    def _layer_weights(self, weights: Mapping[str, float] | Sequence[float] | None) -> dict[str, float]:
        if weights is None:
            return {name: 1.0 for name in self.style_layers}
        if isinstance(weights, Mapping):
            unknown = [k for k in weights if k not in self.style_layers]
            if unknown:
                raise unknown_choice("style layer", unknown[0], self.style_layers)
            out = {name: float(weights.get(name, 1.0)) for name in self.style_layers}
        else:
            weights = list(weights)
            if len(weights) != len(self.style_layers):
                raise ConfigError(f"{len(weights)} style layer weights for {len(self.style_layers)} style layers; "
                                  f"give one weight per layer")
            out = {name: float(w) for name, w in zip(self.style_layers, weights)}
        if any(not w >= 0 for w in out.values()):
            raise ConfigError("style layer weights must be zero or positive")
        return out

    @torch.no_grad()
    def set_style(self, images: torch.Tensor | Sequence[torch.Tensor], blend: Sequence[float] | None = None) -> None:
        """Compute the style targets from one image (1, 3, H, W) or several, blended by ``blend``.

        Blending averages the statistics with weights ``blend`` (normalised to sum to one), which
        has the same gradients as the weighted sum of the per-style losses.
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
            feats = self.vgg(img, layers=self.style_layers)
            for name in self.style_layers:
                s = style_statistic(feats[name].float(), self.style_stat) * (b / total)
                targets[name] = s if name not in targets else targets[name] + s
        for name, t in targets.items():
            self.register_buffer(f"target_{name}", t.contiguous())
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
        use_content = self.content_weight > 0 and (content is not None or content_features is not None)
        use_style = self.style_weight > 0 and (self._has_style or style_targets is not None)
        layers = tuple(dict.fromkeys((self.content_layers if use_content else ()) +
                                     (self.style_layers if use_style else ())))
        feats = self.vgg(output, layers=layers) if layers else {}
        zero = output.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        if use_content:
            if content_features is None:
                content_features = self.content_features(content)
            c = zero
            for name in self.content_layers:
                c = c + content_loss(feats[name], content_features[name])
            terms["content"] = self.content_weight * c
        else:
            terms["content"] = zero
        if use_style:
            targets = self.style_targets if style_targets is None else style_targets
            per_layer = style_layer_losses(feats, targets, self.style_layer_weights, self.style_stat,
                                           item_weights=style_item_weights)
            norms = getattr(self.vgg, "style_norms", {})  # one loss scale for every weight set (vgg_normalize)
            per_layer = {name: value * norms.get(name, 1.0) for name, value in per_layer.items()}
            s = zero
            for name, value in per_layer.items():
                weighted = self.style_weight * value
                terms[f"style/{name}"] = weighted
                s = s + weighted
            terms["style"] = s
        else:
            terms["style"] = zero
        terms["tv"] = self.tv_weight * total_variation(output) if self.tv_weight > 0 else zero
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms
