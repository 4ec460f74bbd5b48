"""Gatys et al.'s style transfer: optimise the pixels against the Gatys objective, coarse to fine."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from fastnst import checks
from fastnst.errors import ConfigError
from fastnst.image import fit_long_side, preserve_colors, round_to_8bit, to_pil, to_tensor
from fastnst.networks.vgg import min_side
from fastnst.optimize.inputs import ImageLike, as_pil, init_image, load_init, resolve_device
from fastnst.optimize.loop import OptimizationResult, ProgressCallback, Step, minimize
from fastnst.optimize.objective import GatysLoss, style_images, terms_out
from fastnst.optimize.settings import (GATYS_ITERATIONS, GATYS_SIZE, MAX_SCALES, GatysSettings, OptimizerSettings,
                                       check_iterations, check_settings, gatys_settings)


def _schedule(scales: int, long_side: int) -> list[int]:
    """Long sides of the scales, coarse to fine, each half the next."""
    return [max(1, round(long_side / 2 ** (scales - 1 - i))) for i in range(scales)]


def gatys_result(content: ImageLike, style: ImageLike | Sequence[ImageLike], *,
                 settings: GatysSettings | None = None, init: str | ImageLike = "content",
                 optimizer: str = "lbfgs", iterations: int | Sequence[int] = GATYS_ITERATIONS,
                 lr: float | None = None, size: int | None = GATYS_SIZE, scales: int = 1, original_colors: bool = False,
                 seed: int = 0, device: str | torch.device | None = None,
                 callback: ProgressCallback | None = None, **loss_settings: Any) -> OptimizationResult:
    """Gatys et al. style transfer; like :func:`gatys` but returns the final loss terms too.

    ``iterations`` loss evaluations are made at each of ``scales`` scales (coarse to fine, each twice
    the previous, the finest with long side ``size``; ``None`` keeps the content's size); a list gives
    one count per scale. Loss settings are :class:`~fastnst.optimize.settings.GatysSettings` fields, given
    as ``settings`` or as keywords. ``original_colors`` keeps the content's colours
    (:func:`fastnst.image.preserve_colors`).
    """
    settings = gatys_settings(settings, loss_settings)
    scales = checks.whole("scales", scales, maximum=MAX_SCALES)
    if isinstance(iterations, (list, tuple)):
        if len(iterations) != scales:
            raise ConfigError(f"{len(iterations)} iteration counts for {scales} scales; give one per scale")
        per_scale = [check_iterations(n) for n in iterations]
    else:
        per_scale = [check_iterations(iterations)] * scales
    check_settings(OptimizerSettings(optimizer, lr))
    styles, blend = style_images(style, settings)
    init_v = load_init(init)
    content_img = as_pil(content, "content image")
    long_side = max(content_img.size) if size is None else checks.side("size", size)
    need = min_side(settings.layers(), settings.net)
    sizes = [fit_long_side(content_img.size, s) for s in _schedule(scales, long_side)]
    for wh, label in zip(sizes, ["coarsest scale"] + ["scale"] * (len(sizes) - 1)):
        if min(wh) < need:
            hint = " or fewer --scales" if scales > 1 else ""
            raise ConfigError(f"output {label} {wh[0]}x{wh[1]} is too small for the chosen layers (needs at least "
                              f"{need} pixels a side); use a larger --size{hint}")
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    loss = GatysLoss(settings, dev)
    content_t = to_tensor(content_img).to(dev) if original_colors else None
    total_its = sum(per_scale)
    start = time.perf_counter()
    x: torch.Tensor | None = None
    done_total = 0
    stopped = False

    def finish(t: torch.Tensor) -> torch.Tensor:
        if content_t is None:
            return round_to_8bit(t)
        original = F.interpolate(content_t, size=t.shape[-2:], mode="bilinear", align_corners=False) \
            if content_t.shape[-2:] != t.shape[-2:] else content_t
        return round_to_8bit(preserve_colors(original, t.clamp(0, 1), channel_axis=1))

    for k, wh in enumerate(sizes):
        loss.set_targets(content_img, styles, wh, blend)
        if x is None:
            x = init_image(init_v, wh, content_img, styles[0], dev, gen)
        else:
            x = F.interpolate(x, size=(wh[1], wh[0]), mode="bicubic", align_corners=False)

        def report(terms: dict[str, float], cur: torch.Tensor, k: int = k, wh: tuple[int, int] = wh) -> bool:
            nonlocal done_total
            done_total += 1
            if callback is None:
                return False
            p = Step("gatys", done_total, total_its, k + 1, len(sizes), wh, terms_out(terms),
                     time.perf_counter() - start, lambda: to_pil(finish(cur.detach())))
            return bool(callback(p))

        x, _, stopped = minimize(x, loss, optimizer, per_scale[k], lr, report)
        if stopped:
            break
    assert x is not None
    final = finish(x)
    with torch.inference_mode():
        terms = terms_out({k: float(v) for k, v in loss(final).items()})
    return OptimizationResult(to_pil(final), terms, done_total, time.perf_counter() - start, sizes, stopped)


def gatys(content: ImageLike, style: ImageLike | Sequence[ImageLike], **options: Any) -> Image.Image:
    """Style transfer by optimising the pixels (Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style").

    ``content``/``style``: paths, PIL images, arrays or (1, 3, H, W) tensors in [0, 1]; ``style`` may be
    a list (blended by ``style_blend``). Options: see :func:`gatys_result` and
    :class:`~fastnst.optimize.settings.GatysSettings`. Returns the stylised PIL image. Raises FastNSTError
    for bad inputs or options.
    """
    return gatys_result(content, style, **options).image
