"""Loss terms for style transfer, in three rooms (torch; no network is imported here):

- :mod:`~fastnst.losses.functional`: the tensor maths (Gram/covariance statistics, content, style,
  total variation, normalised inversion, layer weights);
- :mod:`~fastnst.losses.modules`: thin module forms of those terms;
- :mod:`~fastnst.losses.perceptual`: :class:`PerceptualLoss`, the terms composed on a loss network that is
  passed in (:class:`fastnst.networks.vgg.VGGFeatures`), and :func:`style_targets`.

Training uses :class:`PerceptualLoss`; Gatys, texture synthesis and feature inversion
(:mod:`fastnst.optimize`) compose the terms they need.
"""

from fastnst.losses.functional import (STYLE_STATS, check_shape, content_loss, covariance_matrix, gram_matrix,
                                       inverse_energy, inversion_loss, layer_weights, style_layer_losses,
                                       style_loss, style_statistic, total_variation)
from fastnst.losses.modules import ContentLoss, InversionLoss, StyleLoss, TotalVariation
from fastnst.losses.perceptual import PerceptualLoss, style_targets

__all__ = ["STYLE_STATS", "ContentLoss", "InversionLoss", "PerceptualLoss", "StyleLoss", "TotalVariation",
           "check_shape", "content_loss", "covariance_matrix", "gram_matrix", "inverse_energy", "inversion_loss",
           "layer_weights", "style_layer_losses", "style_loss", "style_statistic", "style_targets",
           "total_variation"]
