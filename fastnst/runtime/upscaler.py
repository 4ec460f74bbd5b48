"""Apply an exported super-resolution network with onnxruntime alone (no torch).

    from fastnst.runtime.upscaler import Upscaler
    big = Upscaler().upscale("photo.jpg")                  # the shipped x4 model; a PIL image, exactly 4x the size
    big = Upscaler("sr-x4.onnx").upscale("photo.jpg")      # a model of one's own

The shipped model (:data:`BUILTIN_MODEL`, ``fastnst/assets/sr-x4.onnx``) is the x4 network of Johnson et al.
trained with the perceptual loss; ``fastnst/assets/ATTRIBUTION.md`` and ``docs/upscale.md`` say how it was made
and how it measures against bicubic interpolation.

Models come from ``fastnst train-sr`` (metadata ``fastnst_task = super-resolution`` and
``fastnst_factor``). The model runs on the one engine object (:class:`fastnst.runtime.session.Model`), the
image makes the same round trip as a stylised one (:mod:`fastnst.runtime.roundtrip`: a PIL image, path or
bytes in, a PIL image out; an array in, an array out). The SR network is purely local (batch norm is an
affine map at inference), so large images are cut into abutting tiles with a margin of low-resolution
context on every side (:meth:`fastnst.runtime.tiling.TileGrid.abutting`); the margin is cropped off after
up-sampling and the result equals the untiled one. Only one tile is in the network at a time.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from fastnst import checks
from fastnst.constants import ASSETS_DIR, max_image_pixels
from fastnst.contract import INPUT_NAME, META_FACTOR, MIN_SIZE, SR_TASK, geometry
from fastnst.errors import ConfigError, InputError, ModelFormatError
from fastnst.image import ImageSource, from_nchw, to_nchw, to_uint8
from fastnst.runtime.providers import short_name
from fastnst.runtime.roundtrip import Canvas, read
from fastnst.runtime.session import Model
from fastnst.runtime.tiling import MIN_TILE, ProgressFn, TileGrid, reporting

# Low-resolution context around each tile (pixels). Chosen: the receptive-field radius of the paper's
# network (9x9 head, 4 residual blocks, up-sampling stages, 9x9 end) is 15 input pixels; 16 covers it.
TILE_MARGIN = 16
# Input tiles (low resolution) of at most this side. Chosen: a 256-px tile makes a 1024-px (x4) output
# tile, about 0.4 GiB of activations in the 64-channel last stage.
DEFAULT_TILE = 256
#: The x4 super-resolution model shipped in the package (weights stored as float16, computed in float32).
BUILTIN_MODEL = ASSETS_DIR / "sr-x4.onnx"


def builtin_model_path() -> str:
    """The shipped x4 model; InputError when the package was installed without it."""
    if not BUILTIN_MODEL.is_file():
        raise InputError(f"the shipped super-resolution model is missing ({BUILTIN_MODEL}); reinstall fastnst, "
                         f"or pass --model PATH of a model from fastnst train-sr")
    return str(BUILTIN_MODEL)


class Upscaler:
    """An exported fastnst super-resolution network run by onnxruntime.

    ``model_path``: the ``.onnx`` file of ``fastnst train-sr`` (or it opened as a
    :class:`fastnst.runtime.session.Model`; None: the shipped x4 model, :data:`BUILTIN_MODEL`); ``providers``/``threads`` as for :class:`fastnst.runtime.Stylizer`.
    Raises InputError for a missing file, ModelFormatError for a file that is not ONNX or not a super-resolution
    model (a style model is named as such).
    """

    def __init__(self, model_path: str | os.PathLike | Model | None = None, providers: str | Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        if isinstance(model_path, Model):  # an opened file (its providers and threads are already chosen)
            self.model = model_path
            self.model.expect(SR_TASK)
        else:
            path = builtin_model_path() if model_path is None else model_path
            self.model = Model(path, providers, threads, task=SR_TASK)
        self.path, self.metadata = self.model.path, self.model.metadata
        try:
            self.factor = int(self.metadata[META_FACTOR])
        except (KeyError, ValueError):
            raise ModelFormatError(f"'{self.path}' lacks a valid '{META_FACTOR}' entry; export it again") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].type != "tensor(float)":
            raise ModelFormatError(f"'{self.path}' should take one float input '{INPUT_NAME}' (N, 3, H, W)")
        self.output_name = self.session.get_outputs()[0].name
        self.min_size = max(MIN_SIZE, geometry(self.metadata)[1])

    @property
    def session(self) -> Any:
        """The onnxruntime session of the model."""
        return self.model.session

    @property
    def device(self) -> str:
        """A short name of the provider the network runs on: 'cpu', 'cuda', ..."""
        return short_name(self.model.providers[0])

    def describe(self) -> dict[str, Any]:
        """Metadata, signature and providers as a JSON-able dict (for ``fastnst info``)."""
        return self.model.describe(io="float", input_range=1, factor=self.factor)

    def run(self, rgb: np.ndarray) -> np.ndarray:
        """Up-sample HxWx3 uint8 (each side ≥ min_size); returns (f·H)x(f·W)x3 float32 in [0, 1]."""
        y = self.model.run({INPUT_NAME: to_nchw([rgb])}, [self.output_name])[0][0]
        return from_nchw(y)

    # -- checks ----------------------------------------------------------------------------------
    def check_factor(self, factor: int | None) -> None:
        """ConfigError when ``factor`` (None: any) is not the model's."""
        if factor is not None and int(factor) != self.factor:
            raise ConfigError(f"--factor {factor} does not match the model, which up-samples x{self.factor}; "
                              f"pass --factor {self.factor} or a x{factor} model")

    def check_size(self, width: int, height: int, factor: int | None = None) -> tuple[int, int]:
        """The output size for a ``width`` x ``height`` input; raises ConfigError (another ``factor`` than
        the model's) or InputError (input too small, output above the pixel cap)."""
        self.check_factor(factor)
        if min(width, height) < self.min_size:
            raise InputError(f"the input is {width}x{height} pixels, too small for the x{self.factor} model; "
                             f"it needs at least {self.min_size} pixels on each side")
        out_w, out_h = width * self.factor, height * self.factor
        cap = max_image_pixels()
        if out_w * out_h > cap:
            raise InputError(f"the output would be {out_w}x{out_h} = {out_w * out_h:,} pixels, above the cap of "
                             f"{cap:,}; downscale the input (--max-size) or raise FASTNST_MAX_PIXELS")
        return out_w, out_h

    # -- up-sampling -----------------------------------------------------------------------------
    def _grid(self, height: int, width: int, tile: int | None, margin: int) -> TileGrid | None:
        """The tiles of a ``height`` x ``width`` input (None: it runs in one piece)."""
        if not tile or (height <= tile and width <= tile):
            return None
        return TileGrid.abutting(height, width, tile, margin, self.min_size, self.factor)

    def upscale_array(self, rgb: np.ndarray, tile: int | None = DEFAULT_TILE, margin: int = TILE_MARGIN) -> np.ndarray:
        """Up-sample an HxWx3 uint8 array to (f·H)x(f·W)x3 uint8, in tiles of ``tile`` input pixels
        (None or 0: one piece; else at least 16) with ``margin`` pixels of context (cropped off after
        up-sampling)."""
        if tile and tile < MIN_TILE:
            raise ConfigError(f"tile must be at least {MIN_TILE} input pixels, got {tile}")
        h, w = rgb.shape[:2]
        grid = self._grid(h, w, tile, margin)
        if grid is None:
            return to_uint8(self.run(rgb))
        out = np.empty((h * self.factor, w * self.factor, 3), np.uint8)
        for y0, band in grid.bands(rgb, self.run):
            out[y0:y0 + band.shape[0]] = to_uint8(band)
        return out

    def upscale(self, image: ImageSource, factor: int | None = None, tile: int | None = DEFAULT_TILE,
                max_size: int | None = None) -> Any:
        """Enlarge ``image`` exactly ``factor`` times; returned in the kind it was given (a path, PIL image or
        bytes -> a PIL image with its alpha enlarged bicubically and its ICC profile; an HxWx3 uint8 array ->
        an array).

        ``factor`` (optional) must equal the model's. ``max_size`` downscales the input first so its
        longer side is at most that. ``tile``: input tile side (0 or None: one piece; else at least 16).
        Raises ConfigError for bad options, InputError for unreadable or unsuitable images.
        """
        self.check_factor(factor)
        max_size = checks.side("max_size", max_size, allow_none=True)
        tile = checks.tile(tile, minimum=MIN_TILE, name="tile")
        return self.render(image, tile, max_size)

    def render(self, image: ImageSource, tile: int | None = DEFAULT_TILE, max_size: int | None = None,
               progress: ProgressFn | None = None) -> Any:
        """:meth:`upscale` with options already checked (the factor too, by :meth:`check_factor`); a tiled image
        reports (tiles done, tiles, 'tiles') to ``progress`` after each tile."""
        item = read(image, max_size)
        src = to_uint8(item.src)
        h, w = src.shape[:2]
        out_w, out_h = self.check_size(w, h)
        canvas = Canvas(item, out_w, out_h)
        grid = self._grid(h, w, tile, TILE_MARGIN)
        if grid is None:
            canvas.put(0, self.run(src))
        else:
            for y0, band in grid.bands(src, reporting(self.run, len(grid), progress)):
                canvas.put(y0, band)
        return canvas.give_back()


__all__ = ["Upscaler", "DEFAULT_TILE", "TILE_MARGIN"]
