"""Apply an exported super-resolution network with onnxruntime alone (no torch).

    from fastnst.runtime.upscaler import Upscaler
    big = Upscaler("sr-x4.onnx").upscale("photo.jpg")      # a PIL image, exactly 4x the photo's size

Models come from ``fastnst train-sr`` (metadata ``fastnst_task = super-resolution`` and
``fastnst_factor``). The SR network is purely local (batch norm is an affine map at inference), so
large images are cut into tiles with a margin of low-resolution context on every side; the margin is
cropped off after up-sampling and the result equals the untiled one. Only one tile is in the network at a time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from fastnst.constants import max_image_pixels
from fastnst.contract import INPUT_NAME, META_FACTOR, MIN_SIZE, SR_TASK, geometry, model_task
from fastnst.errors import ConfigError, InputError, ModelFormatError
from fastnst.image import ImageSource, from_nchw, read_fitted, to_nchw, to_uint8

# Low-resolution context around each tile (pixels). Chosen: the receptive-field radius of the paper's
# network (9x9 head, 4 residual blocks, up-sampling stages, 9x9 end) is 15 input pixels; 16 covers it.
TILE_MARGIN = 16
# Input tiles (low resolution) of at most this side. Chosen: a 256-px tile makes a 1024-px (x4) output
# tile, about 0.4 GiB of activations in the 64-channel last stage.
DEFAULT_TILE = 256


class Upscaler:
    """An exported fastnst super-resolution network run by onnxruntime.

    ``providers``/``threads`` as for :class:`fastnst.runtime.Stylizer`. Raises InputError for a missing
    file, ModelFormatError for a file that is not ONNX or not a super-resolution model (a style model
    is named as such).
    """

    def __init__(self, model_path: str | os.PathLike, providers: str | Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        from fastnst.runtime import _ort, resolve_providers, session_options

        path = Path(model_path)
        if not path.is_file():
            raise InputError(f"model '{path}' does not exist; check the path")
        try:
            self.session = _ort().InferenceSession(str(path), session_options(threads),
                                                   providers=resolve_providers(providers))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelFormatError(f"'{path}' is not an ONNX model onnxruntime can load ({first}); "
                                   f"pass an .onnx file written by fastnst train-sr") from None
        self.path = path
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        if model_task(self.metadata) != SR_TASK:
            raise ModelFormatError(f"'{path}' is a style model, not a super-resolution model; use it with "
                                   f"'fastnst stylize', or pass a model from 'fastnst train-sr'")
        try:
            self.factor = int(self.metadata[META_FACTOR])
        except (KeyError, ValueError):
            raise ModelFormatError(f"'{path}' lacks a valid '{META_FACTOR}' entry; export it again") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].type != "tensor(float)":
            raise ModelFormatError(f"'{path}' should take one float input '{INPUT_NAME}' (N, 3, H, W)")
        self.output_name = self.session.get_outputs()[0].name
        self.min_size = max(MIN_SIZE, geometry(self.metadata)[1])

    @property
    def device(self) -> str:
        return "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"

    def run(self, rgb: np.ndarray) -> np.ndarray:
        """Up-sample HxWx3 uint8 (each side ≥ min_size); returns (f·H)x(f·W)x3 float32 in [0, 1]."""
        y = self.session.run([self.output_name], {INPUT_NAME: to_nchw([rgb])})[0][0]
        return from_nchw(y)

    def check_size(self, width: int, height: int, factor: int | None = None) -> tuple[int, int]:
        """The output size for a ``width`` x ``height`` input; raises ConfigError (another ``factor`` than
        the model's) or InputError (input too small, output above the pixel cap)."""
        if factor is not None and int(factor) != self.factor:
            raise ConfigError(f"--factor {factor} does not match the model, which up-samples x{self.factor}; "
                              f"pass --factor {self.factor} or a x{factor} model")
        if min(width, height) < self.min_size:
            raise InputError(f"the input is {width}x{height} pixels, too small for the x{self.factor} model; "
                             f"it needs at least {self.min_size} pixels on each side")
        out_w, out_h = width * self.factor, height * self.factor
        cap = max_image_pixels()
        if out_w * out_h > cap:
            raise InputError(f"the output would be {out_w}x{out_h} = {out_w * out_h / 1e6:.0f} Mpx, above the cap of "
                             f"{cap / 1e6:.0f} Mpx; downscale the input (--max-size) or raise FASTNST_MAX_PIXELS")
        return out_w, out_h

    def upscale_array(self, rgb: np.ndarray, tile: int | None = DEFAULT_TILE, margin: int = TILE_MARGIN) -> np.ndarray:
        """Up-sample an HxWx3 uint8 array to (f·H)x(f·W)x3 uint8, in tiles of ``tile`` input pixels
        (None or 0: one piece) with ``margin`` pixels of context (cropped off after up-sampling)."""
        h, w = rgb.shape[:2]
        f = self.factor
        if not tile or (h <= tile and w <= tile):
            return to_uint8(self.run(rgb))
        if tile < 16:
            raise ConfigError(f"tile must be at least 16 input pixels, got {tile}")
        out = np.empty((h * f, w * f, 3), np.uint8)
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
                # context box (clipped at the image border), at least min_size on each side
                cy0, cx0 = max(0, y0 - margin), max(0, x0 - margin)
                cy1, cx1 = min(h, y1 + margin), min(w, x1 + margin)
                cy0, cx0 = max(0, min(cy0, cy1 - self.min_size)), max(0, min(cx0, cx1 - self.min_size))
                big = self.run(rgb[cy0:cy1, cx0:cx1])
                oy, ox = (y0 - cy0) * f, (x0 - cx0) * f
                out[y0 * f:y1 * f, x0 * f:x1 * f] = to_uint8(big[oy:oy + (y1 - y0) * f, ox:ox + (x1 - x0) * f])
        return out

    def upscale(self, image: ImageSource, factor: int | None = None, tile: int | None = DEFAULT_TILE,
                max_size: int | None = None) -> Image.Image:
        """Enlarge ``image`` (path, PIL image, bytes or HxWx3 uint8) exactly ``factor`` times.

        ``factor`` (optional) must equal the model's. ``max_size`` downscales the input first so its
        longer side is at most that. Alpha is enlarged bicubically, the ICC profile kept.
        """
        if max_size is not None and int(max_size) <= 0:
            raise ConfigError(f"max_size must be positive, got {max_size}")
        if tile is not None and int(tile) < 0:
            raise ConfigError(f"tile must be 0 (one piece) or a positive size, got {tile}")
        data = read_fitted(image, None if max_size is None else int(max_size))
        rgb, alpha = data.rgb, data.alpha
        out_w, out_h = self.check_size(rgb.width, rgb.height, factor)
        out = Image.fromarray(self.upscale_array(np.asarray(rgb), tile), "RGB")
        assert out.size == (out_w, out_h)
        if alpha is not None:
            out.putalpha(alpha.resize((out_w, out_h), Image.Resampling.BICUBIC))
        if data.icc_profile:
            out.info["icc_profile"] = data.icc_profile
        return out


__all__ = ["Upscaler", "DEFAULT_TILE", "TILE_MARGIN"]
