"""Feature inversion (Mahendran & Vedaldi 2015): an image whose activations at a layer match another's."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from PIL import Image

from fastnst import checks
from fastnst.errors import ConfigError, InputError, unknown_choice
from fastnst.image import fit_long_side, make_grid, resize
from fastnst.losses import InversionLoss, TotalVariation
from fastnst.networks.vgg import VGGFeatures, build_vgg, check_layers, check_size
from fastnst.optimize.inputs import ImageLike, as_pil, device_image, init_image, load_init, resolve_device
from fastnst.optimize.loop import OptimizationResult, ProgressCallback, Step, optimize_one_scale
from fastnst.optimize.settings import (INVERT_ITERATIONS, INVERT_LAYER, INVERT_SIZE, INVERT_TV_WEIGHT,
                                       OptimizerSettings, check_iterations, check_settings)


def _invert(img: Image.Image, layer: str, wh: tuple[int, int], vgg: VGGFeatures, dev: torch.device,
            init: str | Image.Image, iterations: int, optimizer: str, lr: float | None, tv_weight: float,
            seed: int, callback: ProgressCallback | None) -> OptimizationResult:
    """:func:`invert_result` on checked values and a built network."""
    gen = torch.Generator().manual_seed(int(seed))
    target_img = device_image(img, wh, dev).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # not inference_mode: the target is saved for backward by the loss
        target = vgg(target_img, layers=[layer])[layer].clone()
    if not float(target.pow(2).mean()) > 0:
        raise InputError(f"layer {layer} is all zeros for this image; nothing to reconstruct (try a shallower layer)")
    feature, tv = InversionLoss(target), TotalVariation()

    def evaluate(x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x.contiguous(memory_format=torch.channels_last)
        f = feature(vgg(x, layers=[layer])[layer])
        t = tv_weight * tv(x) if tv_weight > 0 else x.new_zeros(())
        return {"total": f + t, "feature": f, "tv": t}

    x0 = init_image(init, wh, None, None, dev, gen)
    with torch.inference_mode():
        start_terms = {k: float(v) for k, v in evaluate(x0).items()}
    result = optimize_one_scale("invert", x0, evaluate, optimizer, iterations, lr, callback, dict, layer)
    result.extra.update({"layer": layer, "start_terms": start_terms})
    return result


def _checked(image: ImageLike, size: int | None, init: str | ImageLike, iterations: int, optimizer: str,
             lr: float | None, tv_weight: float) -> tuple[Image.Image, tuple[int, int], str | Image.Image, int, float]:
    """(image, output size, init, iterations, tv weight) checked; the optimiser settings too."""
    iterations = check_iterations(iterations)
    check_settings(OptimizerSettings(optimizer, lr))
    tv_weight = checks.number("tv weight", tv_weight, minimum=0)
    init_v = load_init(init)
    if init_v in ("content", "style"):
        raise unknown_choice("init", str(init_v), ("noise", "PATH"))
    img = as_pil(image, "image")
    wh = img.size if size is None else fit_long_side(img.size, checks.side("size", size))
    return img, wh, init_v, iterations, tv_weight


def invert_result(image: ImageLike, layer: str = INVERT_LAYER, *, net: str = "vgg19", init: str | ImageLike = "noise",
                  iterations: int = INVERT_ITERATIONS, optimizer: str = "lbfgs", lr: float | None = None,
                  tv_weight: float = INVERT_TV_WEIGHT, size: int | None = INVERT_SIZE, pooling: str = "max",
                  vgg_weights: str | os.PathLike | None = None, vgg_normalize: str | os.PathLike | None = None,
                  seed: int = 0, device: str | torch.device | None = None,
                  callback: ProgressCallback | None = None, vgg: VGGFeatures | None = None) -> OptimizationResult:
    """Reconstruct an image from one layer's activations (Mahendran & Vedaldi 2015).

    Minimises ||Φ(x) - Φ(image)||² / ||Φ(image)||² + tv_weight · TV(x) (:class:`~fastnst.losses.InversionLoss`
    and :class:`~fastnst.losses.TotalVariation`) from white noise (``init='noise'``) or from another image.
    The terms are ``feature`` (the normalised feature loss), ``tv`` and ``total``; ``extra`` holds the
    ``layer`` and the ``start_terms``. ``vgg``: a loss network tapping ``layer`` to use instead of
    :func:`~fastnst.networks.vgg.build_vgg`'s.
    """
    if not isinstance(layer, str) or "," in layer:
        raise ConfigError("invert takes one layer; use --layers for several")
    (layer,) = check_layers([layer], net)
    img, wh, init_v, iterations, tv_weight = _checked(image, size, init, iterations, optimizer, lr, tv_weight)
    check_size(wh, [layer], net, "image size")
    dev = resolve_device(device)
    if vgg is None:
        vgg = build_vgg([layer], net, vgg_weights, pooling, vgg_normalize, dev)
    return _invert(img, layer, wh, vgg, dev, init_v, iterations, optimizer, lr, tv_weight, seed, callback)


def invert(image: ImageLike, layer: str = INVERT_LAYER, **options: Any) -> Image.Image:
    """Feature inversion: an image whose ``layer`` activations match ``image``'s. See :func:`invert_result`."""
    return invert_result(image, layer, **options).image


def invert_layers(image: ImageLike, layers: Sequence[str] | str, *, net: str = "vgg19", size: int | None = INVERT_SIZE,
                  pooling: str = "max", vgg_weights: str | os.PathLike | None = None,
                  vgg_normalize: str | os.PathLike | None = None, device: str | torch.device | None = None,
                  callback: ProgressCallback | None = None, init: str | ImageLike = "noise",
                  iterations: int = INVERT_ITERATIONS, optimizer: str = "lbfgs", lr: float | None = None,
                  tv_weight: float = INVERT_TV_WEIGHT, seed: int = 0) -> dict[str, OptimizationResult]:
    """Feature inversion of each of ``layers`` in turn, on one loss network: ``{layer: result}``.

    Everything is checked before any work, every layer's size included. Progress counts over all layers
    (``stage`` names the layer); a callback returning True stops them all. The other options are those of
    :func:`invert_result`.
    """
    layers = check_layers(layers, net)
    img, wh, init_v, iterations, tv_weight = _checked(image, size, init, iterations, optimizer, lr, tv_weight)
    for name in layers:
        check_size(wh, [name], net, "image size")
    dev = resolve_device(device)
    vgg = build_vgg(layers, net, vgg_weights, pooling, vgg_normalize, dev)
    results: dict[str, OptimizationResult] = {}
    for i, name in enumerate(layers):
        def relay(p: Step, i: int = i, name: str = name) -> bool:
            stage = f"{name} ({i + 1}/{len(layers)})" if len(layers) > 1 else name
            return bool(callback is not None and callback(dataclasses.replace(
                p, iteration=i * p.total + p.iteration, total=len(layers) * p.total, stage=stage)))

        results[name] = _invert(img, name, wh, vgg, dev, init_v, iterations, optimizer, lr, tv_weight, seed, relay)
        if results[name].stopped_early:
            break
    return results


def inversion_grid(image: ImageLike, results: Mapping[str, OptimizationResult]) -> Image.Image:
    """The image and its reconstructions side by side (at the reconstructions' size)."""
    shown = list(results.values())
    return make_grid([resize(as_pil(image, "image"), size=shown[0].image.size)] + [r.image for r in shown])
