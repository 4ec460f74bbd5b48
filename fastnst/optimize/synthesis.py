"""Texture synthesis (Gatys, Ecker & Bethge 2015): an image of any size with a style's statistics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from fastnst import checks
from fastnst.errors import ConfigError, unknown_choice
from fastnst.networks.vgg import check_size
from fastnst.optimize.inputs import ImageLike, init_image, load_init, resolve_device
from fastnst.optimize.loop import OptimizationResult, ProgressCallback, optimize_one_scale
from fastnst.optimize.objective import GatysLoss, style_images, terms_out
from fastnst.optimize.settings import (TEXTURE_ITERATIONS, TEXTURE_SIZE, TEXTURE_TV_WEIGHT, GatysSettings,
                                       OptimizerSettings, check_iterations, check_settings, gatys_settings)


def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    """(width, height) from N (square) or (width, height), each side checked."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        side = checks.side("size", size)
        return side, side
    try:
        w, h = size  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ConfigError(f"size must be N or (width, height), got {size!r}") from None
    wh = (checks.side("width", w), checks.side("height", h))
    checks.pixels(*wh, "the texture")
    return wh


def texture_result(style: ImageLike | Sequence[ImageLike], size: int | tuple[int, int] = TEXTURE_SIZE, *,
                   settings: GatysSettings | None = None, iterations: int = TEXTURE_ITERATIONS,
                   optimizer: str = "lbfgs", lr: float | None = None, init: str | ImageLike = "noise",
                   seed: int = 0, device: str | torch.device | None = None,
                   callback: ProgressCallback | None = None, **loss_settings: Any) -> OptimizationResult:
    """Texture synthesis from the style and TV terms alone (Gatys, Ecker & Bethge 2015), any output size.

    ``size``: an int for a square texture or (width, height). The style image is resized so that its
    long side is ``style_scale`` x the output's long side. Content settings are ignored.
    """
    wh = _size(size)
    if settings is None:
        loss_settings.setdefault("tv_weight", TEXTURE_TV_WEIGHT)
    settings = gatys_settings(settings, loss_settings)
    if settings.style_weight <= 0:
        raise ConfigError("texture synthesis needs a positive style weight")
    check_size(wh, settings.style_layers, settings.net, "texture size")
    iterations = check_iterations(iterations)
    check_settings(OptimizerSettings(optimizer, lr))
    styles, blend = style_images(style, settings)
    init_v = load_init(init)
    if init_v == "content":
        raise unknown_choice("init", "content", ("noise", "style", "PATH"))
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    loss = GatysLoss(settings, dev, content=False)
    loss.set_targets(None, styles, wh, blend)
    x0 = init_image(init_v, wh, None, styles[0], dev, gen)
    return optimize_one_scale("texture", x0, loss, optimizer, iterations, lr, callback, terms_out)


def texture(style: ImageLike | Sequence[ImageLike], size: int | tuple[int, int] = TEXTURE_SIZE,
            **options: Any) -> Image.Image:
    """A texture of ``size`` with ``style``'s statistics. See :func:`texture_result`."""
    return texture_result(style, size, **options).image
