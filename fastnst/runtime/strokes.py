"""Stroke size at inference: ``--stroke-scale S`` makes a style's strokes S times larger (S > 1) or
smaller (S < 1) at the same output size, for any style model, without retraining.

A feed-forward style network paints strokes of a fixed size *in pixels* (the size its training crops
saw them at), so on a large photo they look small. :class:`ScaledStylizer` stylises the photo at
1/S of its size and brings the result back to the photo's size: strokes scale by S. Bringing back a
small stylisation (S > 1) by plain resampling blurs it; with an ``upscaler`` (a super-resolution model
from ``fastnst train-sr``) it is enlarged by the network, which restores sharp edges, then resampled
(downwards only) to the exact size. S < 1 stylises a larger copy and shrinks the result with Lanczos.

Torch-free; wraps a :class:`fastnst.runtime.Stylizer` (or anything with its ``stylize`` and
``stylize_iter``) and keeps its interface, so image batches and video frames work the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from PIL import Image

from fastnst.constants import max_image_pixels
from fastnst.errors import ConfigError, InputError
from fastnst.image import fit_long_side, preserve_colors, read_fitted, to_uint8

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
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    shrink = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
    method = Image.Resampling.LANCZOS if shrink else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(rgb, "RGB").resize(size, method))


class ScaledStylizer:
    """A stylizer whose strokes are ``scale`` times larger, at the same output size.

    ``stylizer``: a :class:`fastnst.runtime.Stylizer` (or compatible). ``upscaler``: an optional
    :class:`fastnst.runtime.upscaler.Upscaler` used to bring back stylisations made at a smaller size
    (``scale`` > 1). Other attributes (``device``, ``style_names``, ...) are the wrapped stylizer's.
    """

    def __init__(self, stylizer: Any, scale: float, upscaler: Any = None) -> None:
        self.inner = stylizer
        self.scale = check_stroke_scale(scale)
        self.upscaler = upscaler

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    # -- one image ---------------------------------------------------------------------------------
    def back_to_size(self, styled: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """A stylisation (HxWx3 uint8) made at the scaled size, brought to (width, height)."""
        if self.upscaler is not None and styled.shape[1] < size[0]:
            styled = self.upscaler.upscale_array(styled)
        return _resize(styled, size)

    def _scaled(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        return _resize(rgb, scaled_size(w, h, self.scale))

    def _finish(self, original: np.ndarray, styled: np.ndarray, strength: float, preserve_color: bool) -> np.ndarray:
        """Strength and colour options applied at full size (as the runtime does); uint8."""
        if preserve_color:
            styled = to_uint8(preserve_colors(original, styled.astype(np.float32) / 255.0))
        if strength < 1.0:
            mix = original.astype(np.float32) * (1.0 - strength) + styled.astype(np.float32) * strength
            styled = np.clip(mix + 0.5, 0, 255).astype(np.uint8)
        return styled

    def stylize(self, image: Any, strength: float = 1.0, preserve_color: bool = False, max_size: int | None = None,
                tile: int | None = None, overlap: int | None = None, style: Any = None) -> Any:
        """As :meth:`fastnst.runtime.Stylizer.stylize`, with strokes ``scale`` times larger.

        Arrays (HxWx3 uint8 or float in [0, 1]) come back as arrays of the same dtype; anything else
        (path, PIL image, bytes) as a PIL image with the alpha and ICC profile kept.
        """
        return next(self.stylize_iter([image], 1, strength=strength, preserve_color=preserve_color,
                                      max_size=max_size, tile=tile, overlap=overlap, style=style))

    def stylize_iter(self, images: Iterable[Any], batch_size: int = 1, *, strength: float = 1.0,
                     preserve_color: bool = False, max_size: int | None = None, tile: int | None = None,
                     overlap: int | None = None, style: Any = None) -> Iterator[Any]:
        """:meth:`stylize` over a stream (e.g. video frames), ``batch_size`` scaled copies per network call."""
        strength = float(strength)
        if not 0.0 <= strength <= 1.0:
            raise ConfigError(f"strength must be between 0 and 1, got {strength}")
        items: list[tuple[np.ndarray, Any]] = []

        def prepared() -> Iterator[np.ndarray]:
            for image in images:
                rgb, extra = _read(image, max_size)
                items.append((rgb, extra))
                yield self._scaled(rgb)

        inner = self.inner.stylize_iter(prepared(), batch_size, tile=tile, overlap=overlap, style=style)
        for styled in inner:
            rgb, extra = items.pop(0)
            out = self.back_to_size(to_uint8(np.asarray(styled)[..., :3]), (rgb.shape[1], rgb.shape[0]))
            yield _give_back(self._finish(rgb, out, strength, preserve_color), extra)


def _read(image: Any, max_size: int | None) -> tuple[np.ndarray, Any]:
    """(HxWx3 uint8, how to give the result back) for an array, PIL image, path or bytes."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] < 3:
            raise InputError(f"expected an HxWx3 image array, got shape {image.shape}")
        rgb = to_uint8(image[..., :3])
        if max_size is not None and max(rgb.shape[:2]) > int(max_size):
            rgb = _resize(rgb, fit_long_side((rgb.shape[1], rgb.shape[0]), int(max_size)))
        return rgb, ("array", image.dtype)
    data = read_fitted(image, None if max_size is None else int(max_size))
    return np.asarray(data.rgb), ("pil", data.alpha, data.icc_profile)


def _give_back(rgb: np.ndarray, extra: Any) -> Any:
    if extra[0] == "array":
        return rgb if extra[1] == np.uint8 else rgb.astype(np.float32) / 255.0
    out = Image.fromarray(rgb, "RGB")
    _, alpha, icc = extra
    if alpha is not None:
        out.putalpha(alpha)
    if icc:
        out.info["icc_profile"] = icc
    return out


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
