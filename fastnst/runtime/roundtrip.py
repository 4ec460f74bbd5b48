"""One image's round trip through an engine: read what the caller gave, give back the same kind. Torch-free.

Every image model kind (style, stroke scale, super-resolution) reads its input with :func:`read` and returns
its result with :func:`give_back` (whole) or a :class:`Canvas` (assembled band by band from tiles), so
"a PIL image in, a PIL image out; an array in, an array of the same dtype out" holds alike for all of them:

- a PIL image, a path, encoded bytes or a binary file -> a PIL RGB image, with the alpha channel put back
  (RGBA; resized when the result has another size) and the ICC profile in ``.info['icc_profile']``;
- a numpy array HxWx3 / HxWx4 / HxW, uint8 or float in [0, 1] -> an array of the same dtype (HxWx4 keeps
  its alpha, HxW comes back HxWx3); float arrays keep their precision through the network.

The pixel conversions themselves are :mod:`fastnst.image`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from fastnst.errors import InputError
from fastnst.image import ImageSource, check_pixels, fit_long_side, read_fitted, resize_array, to_float, to_uint8


@dataclass
class Item:
    """One prepared input: RGB pixels (uint8 or float32 HxWx3), alpha, ICC and how to give it back."""

    src: np.ndarray
    alpha: Any  # PIL 'L' image, a numpy HxW array (array inputs) or None
    icc: bytes | None
    kind: str  # "pil" (PIL/path/bytes in) or "array"
    dtype: Any = None  # array inputs: the dtype to return
    channels: int = 3  # array inputs: 3 or 4 (gray HxW comes back as HxWx3)


def read(image: ImageSource | Item, max_size: int | None = None) -> Item:
    """``image`` as an :class:`Item`, downscaled so that its longer side is at most ``max_size`` (checked by the
    caller). Arrays keep float precision; files are decoded by :func:`fastnst.image.read_fitted` (EXIF
    orientation, pixel cap, cheap JPEG draft for large reductions). An Item (read before, e.g. on a reader
    thread by :func:`fastnst.runtime.pipeline.overlapped`, with the same ``max_size``) passes through.
    Raises InputError."""
    if isinstance(image, Item):
        return image
    if isinstance(image, np.ndarray) and (image.dtype == np.uint8 or np.issubdtype(image.dtype, np.floating)):
        arr = image
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
            raise InputError(f"expected an HxW, HxWx3 or HxWx4 array, got shape {image.shape}")
        check_pixels(arr.shape[1], arr.shape[0], name="<array>")
        channels = 4 if arr.shape[2] == 4 else 3
        alpha = arr[:, :, 3].copy() if arr.shape[2] == 4 else None
        rgb = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]
        if arr.dtype == np.uint8:
            src = np.ascontiguousarray(rgb)
        else:
            if not np.isfinite(rgb).all():
                raise InputError("the image array has NaN or infinite values; pass pixels in [0, 1]")
            src = np.clip(rgb, 0.0, 1.0).astype(np.float32)
        if max_size is not None and max(src.shape[:2]) > max_size:
            size = fit_long_side((src.shape[1], src.shape[0]), max_size)
            src = resize_array(src, size)
            alpha = None if alpha is None else resize_array(alpha, size)
        return Item(src, alpha, None, "array", image.dtype, channels)
    data = read_fitted(image, max_size)  # JPEG draft / early reduce: huge canvases stay cheap
    return Item(np.asarray(data.rgb), data.alpha, data.icc_profile, "pil")


def _pixels(rgb: np.ndarray, item: Item) -> Any:
    """Finished HxWx3 pixels (float32 in [0, 1], not yet clipped, or uint8) in the item's pixel type: a PIL RGB
    image, a uint8 array, or a float32 array clipped to [0, 1]."""
    if item.kind == "pil":
        return Image.fromarray(to_uint8(rgb), "RGB")
    if item.dtype == np.uint8:
        return to_uint8(rgb)
    return np.clip(to_float(rgb), 0, 1)


def _attach(out: Any, item: Item) -> Any:
    """The alpha channel and ICC profile of ``item`` put back on ``out`` (the alpha resized to its size)."""
    if item.kind == "pil":
        if item.alpha is not None:
            alpha = item.alpha if item.alpha.size == out.size else item.alpha.resize(out.size, Image.Resampling.BICUBIC)
            out.putalpha(alpha)
        if item.icc:
            out.info["icc_profile"] = item.icc
        return out
    out = out.astype(item.dtype, copy=False)
    if item.channels == 4:
        alpha = item.alpha
        if alpha.shape != out.shape[:2]:
            alpha = resize_array(alpha, (out.shape[1], out.shape[0]), Image.Resampling.BICUBIC)
        out = np.concatenate([out, alpha[:, :, None].astype(item.dtype)], axis=2)
    return out


def give_back(rgb: np.ndarray, item: Item) -> Any:
    """The finished result ``rgb`` (HxWx3 float32 in [0, 1], not yet clipped, or uint8) in the kind ``item``
    came in (see the module)."""
    return _attach(_pixels(rgb, item), item)


class Canvas:
    """A result of ``width`` x ``height`` assembled band by band (tiled runs), in the kind ``item`` came in."""

    def __init__(self, item: Item, width: int, height: int) -> None:
        self.item = item
        if item.kind == "pil":
            self.out: Any = Image.new("RGB", (width, height))
        else:
            self.out = np.empty((height, width, 3), np.uint8 if item.dtype == np.uint8 else np.float32)

    def put(self, y0: int, rows: np.ndarray) -> None:
        """Finished rows ``y0 .. y0 + len(rows)`` (float32 in [0, 1], not yet clipped, or uint8)."""
        if self.item.kind == "pil":
            self.out.paste(_pixels(rows, self.item), (0, y0))
        else:
            self.out[y0:y0 + rows.shape[0]] = _pixels(rows, self.item)

    def give_back(self) -> Any:
        """The assembled result with the item's alpha and ICC profile."""
        return _attach(self.out, self.item)


__all__ = ["Item", "read", "give_back", "Canvas"]
