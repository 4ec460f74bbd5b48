"""The Gatys objective (content + style + TV on a frozen VGG) that style transfer and texture synthesis
minimise, and :func:`score`, which reports its terms for any image."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from PIL import Image

from fastnst.cpu import choose_precision
from fastnst.errors import ConfigError
from fastnst.image import resize, to_tensor
from fastnst.losses import PerceptualLoss
from fastnst.losses.functional import style_norm_factors, style_statistic
from fastnst.networks.vgg import VGGFeatures, build_vgg, check_size
from fastnst.optimize.inputs import ImageLike, as_pil, device_image, resolve_device
from fastnst.optimize.settings import GatysSettings, gatys_settings


def terms_out(terms: Mapping[str, float]) -> dict[str, float]:
    """The reported terms, in order: total, content, style, tv, then style/<layer> sorted."""
    keys = ["total", "content", "style", "tv"] + sorted(k for k in terms if k.startswith("style/"))
    return {k: float(terms[k]) for k in keys if k in terms}


class GatysLoss:
    """The Gatys objective on a frozen VGG: a :class:`~fastnst.losses.PerceptualLoss` (without its content
    term for texture synthesis, ``content=False``) plus per-scale targets, computed once.

    ``settings`` are checked (:meth:`GatysSettings.check`); ``vgg`` defaults to :func:`build_vgg`'s for them.
    """

    def __init__(self, settings: GatysSettings, device: torch.device, vgg: VGGFeatures | None = None,
                 content: bool = True) -> None:
        self.settings = settings
        self.device = device
        content_layers = tuple(settings.content_layers) if content else ()
        layers = tuple(dict.fromkeys(content_layers + tuple(settings.style_layers)))
        self.vgg = vgg if vgg is not None else build_vgg(layers, settings.net, settings.vgg_weights,
                                                         settings.pooling, settings.vgg_normalize, device,
                                                         settings.normalize_images)
        self.loss = PerceptualLoss(self.vgg, content_layers, settings.style_layers,
                                   content_weight=settings.content_weight, style_weight=settings.style_weight,
                                   tv_weight=settings.tv_weight, style_layer_weights=settings.style_layer_weights,
                                   style_stat=settings.style_stat)
        self.content_features: dict[str, torch.Tensor] | None = None
        # bfloat16 autocast for the image's pass (targets are computed in float32); see fastnst.cpu
        self.bf16 = choose_precision(settings.precision, device.type) == "bf16"

    def set_targets(self, content: Image.Image | None, styles: Sequence[Image.Image], wh: tuple[int, int],
                    blend: Sequence[float] | None) -> None:
        """Targets for an output of size ``wh``: content resized to it, styles to style_scale x its long side."""
        with torch.no_grad():
            self.content_features = None
            if content is not None and self.loss.content is not None and self.settings.content_weight > 0:
                c = device_image(content, wh, self.device).contiguous(memory_format=torch.channels_last)
                self.content_features = {k: v.clone() for k, v in self.loss.content_features(c).items()}
            if styles and self.settings.style_weight > 0:
                side = max(1, round(self.settings.style_scale * max(wh)))
                imgs = [to_tensor(resize(s, long_edge=side)).to(self.device) for s in styles]
                imgs = [i.contiguous(memory_format=torch.channels_last) for i in imgs]
                for img in imgs:
                    check_size((img.shape[-1], img.shape[-2]), self.settings.style_layers, self.settings.net,
                               "style image at --style-scale")
                self.loss.set_style(imgs, blend)
                self.loss.style.norms = self._style_norms(content, wh)

    def _style_norms(self, content: Image.Image | None, wh: tuple[int, int]) -> dict[str, float]:
        """The style layers' factors of ``settings.style_norm`` at output size ``wh`` (texture synthesis, with no
        content, measures 'distance' against the reference photos)."""
        base = dict(getattr(self.vgg, "style_norms", {}) or {})
        mode = self.settings.style_norm
        stats = None
        if mode == "distance":
            if content is None:
                return base
            c = device_image(content, wh, self.device).contiguous(memory_format=torch.channels_last)
            feats = self.vgg(c, layers=self.settings.style_layers)
            stats = {k: style_statistic(feats[k].float(), self.settings.style_stat) for k in self.settings.style_layers}
        factors = style_norm_factors(self.loss.style_targets, mode, stats)
        return base if factors is None else factors

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x.contiguous(memory_format=torch.channels_last)
        if not self.bf16:
            return self.loss(x, content_features=self.content_features)
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            terms = self.loss(x, content_features=self.content_features)
        return {k: v.float() for k, v in terms.items()}


def style_list(style: ImageLike | Sequence[ImageLike] | None) -> list[ImageLike]:
    """``style`` as a list: one image, several (a list or tuple), or none."""
    return [] if style is None else list(style) if isinstance(style, (list, tuple)) else [style]


def style_images(style: ImageLike | Sequence[ImageLike], settings: GatysSettings) -> tuple[list[Image.Image],
                                                                                            list[float] | None]:
    """The style image(s) of gatys and texture, loaded (at least one), and their blend weights (checked)."""
    styles_in = style_list(style)
    if not styles_in:
        raise ConfigError("give at least one style image")
    blend = settings.check_blend(len(styles_in))
    return [as_pil(s, "style image") for s in styles_in], blend


def score(image: ImageLike, content: ImageLike | None, style: ImageLike | Sequence[ImageLike] | None, *,
          settings: GatysSettings | None = None, device: str | torch.device | None = None,
          **loss_settings: Any) -> dict[str, float]:
    """Loss terms (total, content, style, tv, style/<layer>) of ``image`` for ``content`` and ``style``.

    The same terms :func:`~fastnst.optimize.transfer.gatys` reports and minimises, so any stylised image
    (a trained network's output, a Gatys result after N iterations) can be compared on one scale. Content
    is resized to the image's size; style to ``style_scale`` x its long side.
    """
    settings = gatys_settings(settings, loss_settings)
    img = as_pil(image, "image")
    content_img = None if content is None else as_pil(content, "content image")
    styles = [as_pil(s, "style image") for s in style_list(style)]
    blend = settings.check_blend(len(styles)) if styles else None
    check_size(img.size, settings.layers(), settings.net, "image")
    dev = resolve_device(device)
    loss = GatysLoss(dataclasses.replace(settings, precision="fp32"), dev)  # scores are always float32
    loss.set_targets(content_img, styles, img.size, blend)
    x = to_tensor(img).to(dev)
    with torch.inference_mode():
        return terms_out({k: float(v) for k, v in loss(x).items()})
