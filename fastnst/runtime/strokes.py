"""Stroke size at inference: ``--stroke-scale S`` makes a style's strokes S times larger (S > 1) or
smaller (S < 1) at the same output size, for any style model, without retraining.

A feed-forward style network paints strokes of a fixed size *in pixels* (the size its training crops
saw them at), so on a large photo they look small. :class:`ScaledStylizer` stylises the photo at
1/S of its size and brings the result back to the photo's size: strokes scale by S. Bringing back a
small stylisation (S > 1) by plain resampling blurs it; with an ``upscaler`` (a super-resolution model
from ``fastnst train-sr``) it is enlarged by the network, which restores sharp edges, then resampled
(downwards only) to the exact size. S < 1 stylises a larger copy and shrinks the result with Lanczos.

Torch-free; wraps a :class:`fastnst.runtime.Stylizer` (or any :class:`fastnst.runtime.stylizer.StylizerBase`)
and keeps its interface, so image batches and video frames work the same way. The image makes the
stylizer's round trip (:mod:`fastnst.runtime.roundtrip`) and gets its finish (:func:`fastnst.image.finish`);
the stylisation itself is made, and brought back to size, in 8-bit pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image

from fastnst import checks
from fastnst.constants import max_image_pixels
from fastnst.errors import ConfigError, InputError
from fastnst.image import ImageSource, finish, resize_array, to_uint8
from fastnst.runtime.roundtrip import Item, give_back, read
from fastnst.runtime.stylizer import MAX_BATCH, Settings

MIN_STROKE_SCALE = 0.25
MAX_STROKE_SCALE = 4.0  # beyond 4x the stylised copy is 1/16 of the pixels: too little detail left
MIN_SIDE = 16  # smallest side the scaled copy is stylised at


def check_stroke_scale(scale: float) -> float:
    """``scale`` as a float within [MIN_STROKE_SCALE, MAX_STROKE_SCALE]; ConfigError otherwise."""
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise ConfigError(f"--stroke-scale must be a number, got {scale!r}") from None
    if not MIN_STROKE_SCALE <= scale <= MAX_STROKE_SCALE or math.isnan(scale):
        raise ConfigError(f"--stroke-scale must be between {MIN_STROKE_SCALE} and {MAX_STROKE_SCALE}, got {scale}")
    return scale


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The size a ``width`` x ``height`` image is stylised at for stroke scale ``scale``."""
    sw, sh = max(MIN_SIDE, round(width / scale)), max(MIN_SIDE, round(height / scale))
    if sw * sh > max_image_pixels():
        raise InputError(f"--stroke-scale {scale:g} would stylise a {sw}x{sh} copy, above the pixel cap; use a "
                         f"larger stroke scale or a smaller image (--max-size)")
    return sw, sh


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 resized to (width, height): Lanczos when shrinking, bicubic when enlarging."""
    shrink = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
    return resize_array(rgb, size, Image.Resampling.LANCZOS if shrink else Image.Resampling.BICUBIC)


class ScaledStylizer:
    """A stylizer whose strokes are ``scale`` times larger, at the same output size.

    ``stylizer``: a :class:`fastnst.runtime.Stylizer` (or any StylizerBase). ``upscaler``: an optional
    :class:`fastnst.runtime.upscaler.Upscaler` used to bring back stylisations made at a smaller size
    (``scale`` > 1). Other attributes (``device``, ``style_names``, ``settings``, ...) are the wrapped
    stylizer's.
    """

    def __init__(self, stylizer: Any, scale: float, upscaler: Any = None) -> None:
        self.inner = stylizer
        self.scale = check_stroke_scale(scale)
        self.upscaler = upscaler

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def back_to_size(self, styled: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """A stylisation (HxWx3 uint8) made at the scaled size, brought to (width, height)."""
        if self.upscaler is not None and styled.shape[1] < size[0]:
            styled = self.upscaler.upscale_array(styled)
        return _resize(styled, size)

    # -- the stylizer interface ----------------------------------------------------------------------
    def stylize(self, image: ImageSource, strength: float = 1.0, preserve_color: bool = False,
                max_size: int | None = None, tile: int | None = None, overlap: int | None = None,
                style: Any = None) -> Any:
        """As :meth:`fastnst.runtime.Stylizer.stylize`, with strokes ``scale`` times larger (same options,
        same kinds back)."""
        return self.render(image, self.inner.settings(strength, preserve_color, max_size, tile, overlap, style))

    def stylize_many(self, images: Iterable[ImageSource], batch_size: int = 1, **options: Any) -> list[Any]:
        """:meth:`stylize` for several images; a list in the same order."""
        return list(self.stylize_iter(images, batch_size, **options))

    def stylize_iter(self, images: Iterable[ImageSource], batch_size: int = 1, **options: Any) -> Iterator[Any]:
        """:meth:`stylize` over a stream (e.g. video frames), ``batch_size`` scaled copies per network call."""
        batch_size = checks.whole("batch_size", batch_size, maximum=MAX_BATCH)
        return self.render_iter(images, self.inner.settings(**options), batch_size)

    def render(self, image: ImageSource, settings: Settings, progress: Any = None) -> Any:
        """:meth:`stylize` with options already checked (``progress``: tiles, as the wrapped stylizer reports)."""
        return next(self.render_iter([image], settings, progress=progress))

    def render_iter(self, images: Iterable[ImageSource], settings: Settings, batch_size: int = 1,
                    progress: Any = None) -> Iterator[Any]:
        """:meth:`stylize_iter` with options already checked: the scaled copies are stylised by the wrapped
        stylizer (tiles and style as ``settings`` say), brought back to size, then finished at full size."""
        items: list[tuple[Item, np.ndarray]] = []

        def scaled() -> Iterator[np.ndarray]:
            for image in images:
                item = read(image, settings.max_size)
                rgb = to_uint8(item.src)
                items.append((item, rgb))
                yield _resize(rgb, scaled_size(rgb.shape[1], rgb.shape[0], self.scale))

        plain = replace(settings, strength=1.0, preserve_color=False, max_size=None)
        for styled in self.inner.render_iter(scaled(), plain, batch_size, progress=progress):
            item, rgb = items.pop(0)
            out = self.back_to_size(to_uint8(np.asarray(styled)[..., :3]), (rgb.shape[1], rgb.shape[0]))
            yield give_back(finish(rgb, out, settings.strength, settings.preserve_color), item)


def with_stroke_scale(stylizer: Any, scale: float = 1.0, sr_model: Any = None, providers: Any = None,
                      threads: int | None = None) -> Any:
    """``stylizer`` itself for scale 1 (and no ``sr_model``), else a :class:`ScaledStylizer`; ``sr_model``
    is the path of a ``fastnst train-sr`` ONNX model (used when scale > 1)."""
    scale = check_stroke_scale(scale)
    if sr_model is not None and scale <= 1.0:
        raise ConfigError("--sr-model brings back a stylisation made at a smaller size; it needs --stroke-scale > 1")
    if scale == 1.0:
        return stylizer
    upscaler = None
    if sr_model is not None:
        from fastnst.runtime.upscaler import Upscaler

        upscaler = Upscaler(sr_model, providers=providers if isinstance(providers, str) else None, threads=threads)
    return ScaledStylizer(stylizer, scale, upscaler)


def stroke_frequency(image: Any) -> float:
    """Spectral centroid of an image's luminance (cycles per pixel, 0..0.71): the power-weighted mean
    spatial frequency. Larger strokes move it down. ``image``: HxWx3 (uint8 or float) or a PIL image."""
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, np.float64)
    if arr.ndim == 3:
        arr = arr[..., :3] @ np.array([0.299, 0.587, 0.114])
    arr = arr - arr.mean()
    h, w = arr.shape
    window = np.outer(np.hanning(h), np.hanning(w))  # no spurious edges from the image borders
    power = np.abs(np.fft.fft2(arr * window)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    radius = np.sqrt(fx ** 2 + fy ** 2)
    power[0, 0] = 0.0
    total = power.sum()
    return float((radius * power).sum() / total) if total > 0 else 0.0


__all__ = ["ScaledStylizer", "with_stroke_scale", "check_stroke_scale", "scaled_size", "stroke_frequency",
           "MIN_STROKE_SCALE", "MAX_STROKE_SCALE"]
