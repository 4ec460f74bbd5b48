"""DeepDream (Mordvintsev et al. 2015): amplify what a layer sees, by gradient ascent, octave by octave."""

from __future__ import annotations

import os
import time
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from fastnst import checks
from fastnst.errors import ConfigError
from fastnst.image import fit_long_side, round_to_8bit, to_pil
from fastnst.networks.vgg import build_vgg, check_layers, min_side
from fastnst.optimize.inputs import ImageLike, as_pil, device_image, resolve_device
from fastnst.optimize.loop import OptimizationResult, ProgressCallback, Step
from fastnst.optimize.settings import (DREAM_ITERATIONS, DREAM_JITTER, DREAM_LAYER, DREAM_OCTAVE_SCALE, DREAM_OCTAVES,
                                       DREAM_SIZE, DREAM_STEP, DreamSettings, check_iterations, check_settings)


def dream_result(image: ImageLike, layer: str = DREAM_LAYER, *, net: str = "vgg19", octaves: int = DREAM_OCTAVES,
                 octave_scale: float = DREAM_OCTAVE_SCALE, iterations: int = DREAM_ITERATIONS,
                 step: float = DREAM_STEP, jitter: int = DREAM_JITTER, size: int | None = DREAM_SIZE,
                 pooling: str = "max", vgg_weights: str | os.PathLike | None = None,
                 vgg_normalize: str | os.PathLike | None = None, seed: int = 0,
                 device: str | torch.device | None = None,
                 callback: ProgressCallback | None = None) -> OptimizationResult:
    """DeepDream (Mordvintsev et al. 2015): gradient ascent on mean(Φ_layer(x)²), octave by octave.

    Octaves run from the smallest (the image shrunk ``octave_scale``^(octaves-1) times) to full size;
    the detail added at one octave is upscaled onto the next. Each step rolls the image by a random
    shift of up to ``jitter`` pixels, follows the gradient normalised by its mean absolute value
    times ``step``, and rolls back. Terms: ``activation`` (the objective, higher = stronger dream)
    and ``start_activation`` (the input's); ``extra`` holds the ``layer``.
    """
    (layer,) = check_layers([layer], net)
    check_settings(DreamSettings(octaves, octave_scale, step, jitter))
    iterations = check_iterations(iterations)
    img = as_pil(image, "image")
    wh = img.size if size is None else fit_long_side(img.size, checks.side("size", size))
    sizes = [fit_long_side(wh, max(1, round(max(wh) / octave_scale ** (octaves - 1 - i)))) for i in range(octaves)]
    need = min_side([layer], net)
    if min(sizes[0]) < need:
        raise ConfigError(f"the smallest octave {sizes[0][0]}x{sizes[0][1]} is too small for {layer} (needs "
                          f"{need} pixels a side); use fewer --octaves, a smaller --octave-scale or a larger --size")
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    vgg = build_vgg([layer], net, vgg_weights, pooling, vgg_normalize, dev)
    base = device_image(img, wh, dev)
    total = octaves * iterations
    start = time.perf_counter()
    done = 0
    detail = torch.zeros_like(base[..., :sizes[0][1], :sizes[0][0]])
    stopped = False

    def objective(x: torch.Tensor) -> torch.Tensor:
        return vgg(x.contiguous(memory_format=torch.channels_last), layers=[layer])[layer].pow(2).mean()

    def current(x: torch.Tensor) -> Any:
        return lambda: to_pil(round_to_8bit(x))

    for k, (w, h) in enumerate(sizes):
        octave_base = F.interpolate(base, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1) \
            if (w, h) != wh else base
        if detail.shape[-2:] != (h, w):
            detail = F.interpolate(detail, size=(h, w), mode="bicubic", align_corners=False)
        x = (octave_base + detail).clamp(0, 1)
        for _ in range(iterations):
            dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=gen).tolist() if jitter else (0, 0))
            xs = torch.roll(x, shifts=(dy, dx), dims=(2, 3)).requires_grad_(True)
            obj = objective(xs)
            (g,) = torch.autograd.grad(obj, xs)
            with torch.no_grad():
                g = torch.roll(g, shifts=(-dy, -dx), dims=(2, 3))
                x = (x + step * g / (g.abs().mean() + 1e-12)).clamp(0, 1)
            done += 1
            stage = f"{layer} scale {k + 1}/{octaves} {w}x{h}"
            if callback is not None and callback(Step("dream", done, total, k + 1, octaves, (w, h),
                                                      {"activation": float(obj.detach())},
                                                      time.perf_counter() - start, current(x), stage)):
                stopped = True
                break
        detail = x - octave_base
        if stopped:
            break
    final = round_to_8bit(x)
    if final.shape[-2:] != base.shape[-2:]:  # stopped early at a smaller octave
        final = round_to_8bit(F.interpolate(final, size=base.shape[-2:], mode="bicubic", align_corners=False))
    with torch.inference_mode():
        terms = {"activation": float(objective(final)), "start_activation": float(objective(base))}
    return OptimizationResult(to_pil(final), terms, done, time.perf_counter() - start, sizes, stopped,
                              {"layer": layer})


def dream(image: ImageLike, layer: str = DREAM_LAYER, **options: Any) -> Image.Image:
    """DeepDream on ``layer``. See :func:`dream_result`."""
    return dream_result(image, layer, **options).image
