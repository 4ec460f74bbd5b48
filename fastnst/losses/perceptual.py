"""The perceptual loss: content, style and total-variation terms on a frozen loss network.

The network is passed in and duck-typed (this package imports no network): any module called as
``network(images, layers=[...])`` that returns ``{layer: features (N, C, H, W)}``, such as
:class:`fastnst.networks.vgg.VGGFeatures`; its optional ``style_norms`` (``{layer: factor}``, set by
:mod:`fastnst.networks.vgg_normalize`) multiply each layer's style loss, giving one loss scale for every
weight set. Layer names are checked where they enter (the training config, the optimisation settings,
the network's constructor); here they are trusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from fastnst.constants import JOHNSON_CONTENT_WEIGHT, JOHNSON_STYLE_WEIGHT, JOHNSON_TV_WEIGHT
from fastnst.errors import ConfigError
from fastnst.losses.functional import check_shape, style_statistic
from fastnst.losses.modules import ContentLoss, StyleLoss, TotalVariation


def _names(layers: Sequence[str] | str) -> tuple[str, ...]:
    return (layers,) if isinstance(layers, str) else tuple(layers)


@torch.no_grad()
def style_targets(network: nn.Module, images: torch.Tensor | Sequence[torch.Tensor], layers: Sequence[str],
                  stat: str = "gram", blend: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """``{layer: (1, C, C)}`` style statistics of one image (1, 3, H, W) or several, blended by ``blend``.

    Blending averages the statistics with weights ``blend`` (normalised to sum to one), which has the
    same gradients as the weighted sum of the per-style losses. ConfigError for no image, or blend
    weights that do not fit the images, are negative or all zero.
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
        feats = network(check_shape(img, "style image", layout="(1, 3, H, W)"), layers=layers)
        for name in layers:
            s = style_statistic(feats[name].float(), stat) * (b / total)
            targets[name] = s if name not in targets else targets[name] + s
    return {name: t.contiguous() for name, t in targets.items()}


class PerceptualLoss(nn.Module):
    """Content + style + total-variation terms on a frozen loss network (see the module doc).

    Call :meth:`set_style` once; then ``forward(output, content)`` returns a dict of weighted terms:
    ``content`` (absent when ``content_layers`` is empty: texture synthesis), ``style``, ``tv``,
    ``total`` and ``style/<layer>`` per style layer. The content image's features are computed without
    gradients and only as deep as the content layers need.

    Default weights: feed-forward training's (``fastnst train``), chosen on real VGG16 features of the
    RMS-normalised network (:data:`fastnst.constants.JOHNSON_CONTENT_WEIGHT` and its neighbours say how).
    Gatys' optimisation passes its own (:mod:`fastnst.optimize.settings`).
    """

    def __init__(self, vgg: nn.Module, content_layers: Sequence[str] | str, style_layers: Sequence[str] | str,
                 content_weight: float = JOHNSON_CONTENT_WEIGHT, style_weight: float = JOHNSON_STYLE_WEIGHT,
                 tv_weight: float = JOHNSON_TV_WEIGHT,
                 style_layer_weights: Mapping[str, float] | Sequence[float] | None = None,
                 style_stat: str = "gram") -> None:
        super().__init__()
        self.vgg = vgg
        self.content_layers = _names(content_layers)
        self.style_layers = _names(style_layers)
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
        (N,) scales each item's style term (see :func:`~fastnst.losses.functional.style_layer_losses`).
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
