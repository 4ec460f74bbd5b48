"""Thin module forms of the loss terms of :mod:`fastnst.losses.functional` (one ``forward`` calling one function)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from fastnst.losses.functional import (content_loss, inverse_energy, layer_weights, style_layer_losses,
                                       total_variation)


class ContentLoss(nn.Module):
    """:func:`~fastnst.losses.functional.content_loss` summed over ``layers``: ``forward({layer: F}, {layer: T})``."""

    def __init__(self, layers: Sequence[str]) -> None:
        super().__init__()
        self.layers = tuple(layers)

    def forward(self, features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
        out = features[self.layers[0]].new_zeros(())
        for name in self.layers:
            out = out + content_loss(features[name], targets[name])
        return out


class InversionLoss(nn.Module):
    """:func:`~fastnst.losses.functional.inversion_loss` for one fixed target (its normaliser computed once)."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach())
        self.scale = inverse_energy(target)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return content_loss(features, self.target) * self.scale


class StyleLoss(nn.Module):
    """:func:`~fastnst.losses.functional.style_layer_losses` with fixed layers, layer weights (see
    :func:`~fastnst.losses.functional.layer_weights`), statistic and per-layer normalisers (``norms``, e.g.
    ``VGGFeatures.style_norms``; missing layers: 1). ``forward`` returns ``{layer: loss}``."""

    def __init__(self, layers: Sequence[str], weights: Mapping[str, float] | Sequence[float] | None = None,
                 stat: str = "gram", norms: Mapping[str, float] | None = None) -> None:
        super().__init__()
        self.layers, self.stat = tuple(layers), stat
        self.weights = layer_weights(self.layers, weights)
        self.norms = dict(norms or {})

    def forward(self, features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                item_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        per_layer = style_layer_losses(features, targets, self.weights, self.stat, item_weights=item_weights)
        return {name: value * self.norms.get(name, 1.0) for name, value in per_layer.items()}


class TotalVariation(nn.Module):
    """:func:`~fastnst.losses.functional.total_variation` as a module."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return total_variation(images)
