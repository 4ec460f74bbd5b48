"""Reading, converting, resizing and saving images; the only place pixels change representation.

Inside fastnst an image is RGB float32 in [0, 1], NCHW (a tensor of shape ``(1, 3, H, W)``).
This module imports without torch: the tensor helpers import it when called.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fastnst.constants import max_image_pixels
from fastnst.errors import InputError
from fastnst.fileio import atomic_output

if TYPE_CHECKING:  # pragma: no cover
    import torch

ImageSource = Union[str, os.PathLike, bytes, BinaryIO, Image.Image, np.ndarray]

# Suffixes fastnst reads when it scans a folder (all are formats Pillow decodes).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"})

# Output formats by suffix, and which of them keep an alpha channel.
SAVE_FORMATS: dict[str, str] = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                                 ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}
_PILLOW_LIMIT_LOCK = threading.Lock()


@dataclass
class ImageData:
    """A decoded image: RGB pixels, the alpha channel kept aside (or None), and the ICC profile."""

    rgb: Image.Image
    alpha: Image.Image | None = None
    icc_profile: bytes | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.rgb.size


def _name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return getattr(source, "name", "<image>")


def check_pixels(width: int, height: int, name: str = "image", max_pixels: int | None = None) -> None:
    """Refuse images above the pixel cap (decompression bombs) with an InputError."""
    cap = max_image_pixels() if max_pixels is None else max_pixels
    if width <= 0 or height <= 0:
        raise InputError(f"'{name}' has an empty size {width}x{height}; use a real image")
    if width * height > cap:
        raise InputError(f"'{name}' is {width}x{height} = {width * height:,} pixels, over the limit of "
                         f"{cap:,}; downscale it first or raise FASTNST_MAX_PIXELS if you trust the file")


def _open(source: ImageSource, name: str, max_pixels: int, max_size: int | None = None) -> Image.Image:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"'{path}' does not exist; check the path")
        if path.is_dir():
            raise InputError(f"'{path}' is a folder, not an image file")
        if path.stat().st_size == 0:
            raise InputError(f"'{path}' is empty (0 bytes); use a real image file")
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    # Our own cap is the policy, checked on the header's size before any pixel is decoded. Pillow's
    # global Image.MAX_IMAGE_PIXELS belongs to the host app and is left alone; only when Pillow's own
    # check refuses an image that our cap allows is it lifted, for that one open, under a lock.
    start = source.tell() if hasattr(source, "tell") and hasattr(source, "seek") else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                img = Image.open(source)
            except Image.DecompressionBombError:
                if start is None and not isinstance(source, (str, os.PathLike)):
                    raise
                if start is not None:
                    source.seek(start)  # type: ignore[union-attr]
                with _PILLOW_LIMIT_LOCK:
                    saved = Image.MAX_IMAGE_PIXELS
                    Image.MAX_IMAGE_PIXELS = None
                    try:
                        img = Image.open(source)
                    finally:
                        Image.MAX_IMAGE_PIXELS = saved
    except Image.DecompressionBombError as exc:  # fastnst's limit is the policy: quote it, not Pillow's
        raise InputError(f"'{name}' is too large to decode safely (over fastnst's limit of {max_pixels:,} pixels); "
                         f"downscale it first or raise FASTNST_MAX_PIXELS if you trust the file") from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"'{name}' is not an image Pillow can read; use PNG, JPEG, WebP, TIFF or BMP") from exc
    except OSError as exc:
        raise InputError(f"cannot read '{name}': {exc}") from exc
    check_pixels(*img.size, name=name, max_pixels=max_pixels)
    if max_size is not None and max(img.size) > max_size:
        try:  # JPEG: decode at 1/2, 1/4 or 1/8 scale, never below max_size (a huge canvas stays cheap)
            img.draft(img.mode if img.mode in ("RGB", "L", "CMYK", "YCbCr") else None, (max_size, max_size))
        except Exception:  # formats without draft mode decode at full size
            pass
    _check_decode_memory(img, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
    except Exception as exc:  # truncated / corrupt data surfaces only when decoding
        raise InputError(f"'{name}' is corrupt or truncated ({exc}); re-export or replace the file") from exc
    if max_size is not None and max(img.size) >= 2 * max_size and img.mode not in ("P", "PA", "1"):
        # Box-reduce by a whole factor right after decoding (still >= max_size): later conversions and
        # the final resize then work on a small image, not on copies of the full canvas.
        img = _reduce(img, max(img.size) // max_size)
    return img


# Bytes per pixel of Pillow's storage of a decoded image, by mode (multi-band 8-bit modes take 4 bytes).
_STORAGE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2, "I": 4, "F": 4}
_RGB_BYTES = 4  # an RGB image in Pillow
_STRIP_ROWS = 256  # rows converted or reduced at a time: a strip's copy, not the whole canvas's


def decode_bytes(img: Image.Image) -> int:
    """Peak bytes of decoding ``img`` (an opened, not yet loaded image) and making it RGB: Pillow's storage of its
    mode (channels and bit depth: 1 byte for L and P, 2 for 16-bit gray, 4 for RGB, RGBA, CMYK and 32-bit gray)
    plus one RGB copy and, with alpha, the alpha channel."""
    storage = _STORAGE_BYTES.get(img.mode, 4)
    alpha = 1 if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info else 0
    return img.width * img.height * (storage + _RGB_BYTES + alpha)


def _reduce(img: Image.Image, factor: int) -> Image.Image:
    """``img.reduce(factor)`` strip by strip (the same pixels): Pillow reduces an image with alpha through a
    premultiplied copy of the whole canvas, twice the memory of the decode itself. Modes reduce() does not take
    (16-bit gray) come back as they are, for :func:`_high_bit_to_l` to convert strip by strip."""
    info = dict(img.info)
    rows = factor * max(1, _STRIP_ROWS // factor)
    try:
        out = Image.new(img.mode, (-(-img.width // factor), -(-img.height // factor)))
        for y in range(0, img.height, rows):
            out.paste(img.crop((0, y, img.width, min(img.height, y + rows))).reduce(factor), (0, y // factor))
    except ValueError:  # modes reduce() does not take: resized later as before
        return img
    out.info.update(info)
    return out


def _check_decode_memory(img: Image.Image, name: str) -> None:
    """Refuse to decode an image whose pixels (by mode: channels and bit depth, :func:`decode_bytes`) would not
    fit in the memory available."""
    from fastnst import checks

    try:
        checks.memory(decode_bytes(img), f"decoding '{name}' ({img.width}x{img.height}, {img.mode})",
                      "downscale the file first (--max-size decodes JPEGs at a reduced size)")
    except InputError:
        raise
    except Exception as exc:  # ResourceError -> InputError for callers that skip unreadable images
        raise InputError(str(exc)) from None


def _from_array(arr: np.ndarray, name: str) -> Image.Image:
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            arr = to_uint8(arr)
        else:
            raise InputError(f"{name}: arrays must be uint8 (0-255) or float (0-1), got {arr.dtype}")
    if arr.ndim == 2:
        return Image.fromarray(arr, "L")
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        if arr.shape[2] == 1:
            return Image.fromarray(arr[:, :, 0], "L")
        return Image.fromarray(np.ascontiguousarray(arr), "RGB" if arr.shape[2] == 3 else "RGBA")
    raise InputError(f"{name}: expected an HxW, HxWx3 or HxWx4 array, got shape {arr.shape}")


def _high_bit_to_l(img: Image.Image) -> Image.Image:
    """16/32-bit integer or float grayscale to 8-bit L, strip by strip (a float copy of the whole canvas would
    take 8 bytes a pixel)."""
    out = np.empty((img.height, img.width), np.uint8)
    scale = 1.0
    if img.mode == "F":
        top = img.getextrema()[1]
        scale = 255.0 if top is not None and np.isfinite(top) and top <= 1.0 else 1.0
    for y in range(0, img.height, _STRIP_ROWS):
        arr = np.asarray(img.crop((0, y, img.width, min(img.height, y + _STRIP_ROWS)))).astype(np.float64)
        if img.mode == "F":
            strip = np.clip(np.nan_to_num(arr) * scale, 0, 255)
        else:  # I;16*, I: 16-bit data (PNG stores 16-bit gray as I / I;16)
            strip = np.clip(arr / 257.0, 0, 255)
        out[y:y + strip.shape[0]] = (strip + 0.5).astype(np.uint8)
    return Image.fromarray(out, "L")


def read_image(source: ImageSource, max_pixels: int | None = None, max_size: int | None = None) -> ImageData:
    """Decode ``source`` into RGB pixels, applying EXIF orientation and keeping alpha and ICC aside.

    ``source`` is a path, encoded bytes, a binary file, a PIL image, or a uint8 array (HxW, HxWx3,
    HxWx4; float arrays in [0, 1] are accepted too). Gray, palette, CMYK, 16-bit and RGBA images
    become RGB; the alpha channel (if any) is returned as mode ``L``.
    With ``max_size`` a file may be decoded smaller (JPEG draft mode, whole-factor reduction), never below
    ``max_size`` on its long side; the caller resizes to the exact size.
    Raises InputError for missing, empty, corrupt, unsupported or over-sized (bomb) inputs.
    """
    name = _name(source)
    cap = max_image_pixels() if max_pixels is None else max_pixels
    if isinstance(source, np.ndarray):
        img = _from_array(source, name)
        check_pixels(*img.size, name=name, max_pixels=cap)
    elif isinstance(source, Image.Image):
        img = source
        check_pixels(*img.size, name=name, max_pixels=cap)
    else:
        img = _open(source, name, cap, max_size)
    icc = img.info.get("icc_profile") or None
    try:
        img = ImageOps.exif_transpose(img) or img
    except Exception:  # a broken EXIF block must not make a good image unreadable
        pass
    alpha: Image.Image | None = None
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        img = _high_bit_to_l(img)
        mode = "L"
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("PA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        alpha = img.getchannel("A")
        rgb = img.convert("RGB")
    elif mode == "RGB":
        rgb = img
    else:  # L, 1, CMYK, YCbCr, LAB, HSV, ...
        try:
            rgb = img.convert("RGB")
        except (ValueError, OSError) as exc:
            raise InputError(f"'{name}' has image mode {mode}, which fastnst cannot convert to RGB") from exc
    return ImageData(rgb=rgb, alpha=alpha, icc_profile=icc)


def load_rgb(source: ImageSource, max_pixels: int | None = None) -> Image.Image:
    """``read_image(source).rgb``: the image as a PIL RGB image."""
    return read_image(source, max_pixels).rgb


def fit_long_side(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(width, height) ``size`` scaled so that its longer side is ``long_side`` (aspect kept, sides >= 1)."""
    w, h = int(size[0]), int(size[1])
    scale = long_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def resize(img: Image.Image, long_edge: int | None = None, size: tuple[int, int] | None = None,
           resample: int = Image.Resampling.BICUBIC) -> Image.Image:
    """Resize to ``size`` = (width, height), or so that the longer side is ``long_edge`` (aspect kept).

    With neither given the image is returned unchanged.
    """
    if size is not None:
        w, h = int(size[0]), int(size[1])
    elif long_edge is not None:
        if long_edge <= 0:
            raise InputError(f"size must be positive, got {long_edge}")
        w, h = fit_long_side(img.size, long_edge)
    else:
        return img
    if w <= 0 or h <= 0:
        raise InputError(f"size must be positive, got {w}x{h}")
    if (w, h) == img.size:
        return img
    return img.resize((w, h), resample)


def to_uint8(arr: np.ndarray, *, rounded: bool = True) -> np.ndarray:
    """Pixels in [0, 1] (float, clipped) to uint8 0..255, rounded (``rounded=False``: rounded down, as some
    generated style pictures were drawn); uint8 passes through. Never in place."""
    if arr.dtype == np.uint8:
        return arr
    scaled = np.multiply(arr, np.float32(255.0), dtype=np.float32)  # one new buffer, then in place (fewer page faults)
    if rounded:
        scaled += np.float32(0.5)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return scaled.astype(np.uint8)


def hex_colours(colours: Sequence[str]) -> np.ndarray:
    """``'#rrggbb'`` strings to float32 RGB rows in [0, 1], shape (K, 3)."""
    return np.array([[int(c[i:i + 2], 16) / 255.0 for i in (1, 3, 5)] for c in colours], np.float32)


def drawing_colour(rgb: np.ndarray, gain: float = 1.0) -> tuple[int, ...]:
    """One RGB colour in [0, 1] (clipped), times ``gain``, as the 0..255 integers (rounded down) that Pillow's
    ``ImageDraw`` takes as a fill."""
    return tuple(int(v) for v in np.clip(rgb, 0.0, 1.0) * 255 * gain)


def to_float(arr: np.ndarray) -> np.ndarray:
    """uint8 0..255 to float32 in [0, 1]; float arrays pass through unchanged."""
    if arr.dtype != np.uint8:
        return arr
    out = arr.astype(np.float32)
    out *= np.float32(1.0 / 255.0)
    return out


def to_nchw(images: Sequence[np.ndarray], scale: float = 1.0) -> np.ndarray:
    """Same-sized HxWx3 arrays (uint8, or float in [0, 1]) to one float32 (N, 3, H, W) batch in [0, ``scale``]."""
    h, w = images[0].shape[:2]
    x = np.empty((len(images), 3, h, w), dtype=np.float32)
    for i, image in enumerate(images):
        factor = scale / 255.0 if image.dtype == np.uint8 else scale
        np.multiply(image.transpose(2, 0, 1), np.float32(factor), out=x[i])
    return x


def from_nchw(chw: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """One (3, H, W) image in [0, ``scale``] to float32 HxWx3 in [0, 1] (not clipped)."""
    out = np.ascontiguousarray(chw.transpose(1, 2, 0), dtype=np.float32)
    if scale != 1:
        out *= np.float32(1.0 / scale)
    return out


def read_fitted(source: ImageSource, max_size: int | None = None) -> ImageData:
    """:func:`read_image`, then downscaled (alpha too) so that the longer side is at most ``max_size``."""
    data = read_image(source, max_size=max_size)
    if max_size is not None and max(data.size) > max_size:
        data.rgb = resize(data.rgb, long_edge=max_size)
        if data.alpha is not None:
            data.alpha = data.alpha.resize(data.rgb.size, Image.Resampling.BICUBIC)
    return data


def to_array(img: Image.Image) -> np.ndarray:
    """PIL image (any mode) to float32 HxWx3 in [0, 1]."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.float32) / np.float32(255.0)


def from_array(arr: np.ndarray, *, rounded: bool = True) -> Image.Image:
    """HxWx3 float array in [0, 1] (clipped) or uint8 array to a PIL RGB image (``rounded``: see :func:`to_uint8`)."""
    return Image.fromarray(np.ascontiguousarray(to_uint8(arr, rounded=rounded)), "RGB")


def to_tensor(img: Image.Image | np.ndarray) -> "torch.Tensor":
    """PIL image or HxWx3 array to a float32 tensor of shape (1, 3, H, W) in [0, 1]."""
    import torch

    arr = to_array(img) if isinstance(img, Image.Image) else to_float(np.asarray(img))
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(tensor: "torch.Tensor") -> Image.Image:
    """Tensor (1, 3, H, W) or (3, H, W) in [0, 1] to a PIL RGB image (clamped and rounded)."""
    t = tensor.detach()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"to_pil takes one image, got a batch of {t.shape[0]}")
        t = t[0]
    arr = t.float().clamp(0, 1).mul(255).round().to("cpu", dtype=__import__("torch").uint8)
    return Image.fromarray(arr.permute(1, 2, 0).contiguous().numpy(), "RGB")


def round_to_8bit(tensor: "torch.Tensor") -> "torch.Tensor":
    """An image tensor in [0, 1] exactly as it will be saved: clamped to [0, 1] and rounded to 8-bit levels
    (float values k/255, the pixels :func:`to_pil` writes); detached, any shape."""
    return tensor.detach().clamp(0, 1).mul(255).round().div(255)


def find_images(folder: str | os.PathLike, *, recursive: bool = True, require: bool = True) -> list[Path]:
    """The image files in ``folder``: the one folder scanner of fastnst.

    Regular files with an :data:`IMAGE_EXTENSIONS` suffix (any case), hidden files and hidden
    folders skipped, sub-folders searched when ``recursive`` (symlinked folders followed once, so
    a link cycle cannot loop), sorted by path for a stable order. With ``require``, an empty
    result raises InputError naming the folder and the formats.
    """
    root = Path(folder)
    found: list[Path] = []
    seen: set[str] = set()
    for here, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        found += [Path(here) / n for n in files if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_EXTENSIONS
                  and os.path.isfile(os.path.join(here, n))]
    if require and not found:
        raise InputError(f"folder '{folder}' has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}"
                         f"{', also in sub-folders' if recursive else ''}); add some or pass another folder")
    return sorted(found)


# BT.601 luma: the Y of JPEG's YCbCr and of NTSC's YIQ alike (neural-style's -original_colors).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def preserve_colors(original: Any, styled: Any, channel_axis: int = -1) -> Any:
    """``styled``'s luminance with ``original``'s colours: the one "keep colours" of fastnst.

    Works on numpy arrays (HxWx3, ``channel_axis=-1``) and torch tensors (Nx3xHxW, ``channel_axis=1``)
    alike, RGB in [0, 1] (a uint8 ``original`` is scaled). Chroma is kept in BT.601 YCbCr (equally YIQ:
    both share Y and carry chroma linearly), so the result is ``original + (Y(styled) - Y(original))``
    on every channel, clipped to [0, 1]. Same shape as ``styled``.
    """
    if isinstance(original, np.ndarray) and original.dtype == np.uint8:
        original = original.astype(np.float32) * np.float32(1.0 / 255.0)
    if original.shape != styled.shape:
        raise ValueError(f"preserve_colors needs equal shapes, got {tuple(original.shape)} and {tuple(styled.shape)}")

    def luma(x: Any) -> Any:
        r, g, b = (x.select(channel_axis, i) if hasattr(x, "select") else np.take(x, i, axis=channel_axis)
                   for i in range(3))
        return LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b

    delta = luma(styled) - luma(original)
    delta = delta.unsqueeze(channel_axis) if hasattr(delta, "unsqueeze") else np.expand_dims(delta, channel_axis)
    out = original + delta
    return out.clamp(0, 1) if hasattr(out, "clamp") else np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def finish(original: np.ndarray, styled: np.ndarray, strength: float = 1.0, preserve_color: bool = False) -> np.ndarray:
    """The strength and colour options on ``styled``, a stylisation of ``original`` (HxWx3, same size): the one
    finish of every stylizer.

    ``preserve_color`` keeps the original's colours (:func:`preserve_colors`); ``strength`` < 1 blends in the
    original. A float32 ``styled`` in [0, 1] (a network's output) gives float32 (not clipped); a uint8 one
    (a stylisation already turned into pixels, as the stroke-scale wrapper's) gives uint8, blended in 0..255
    and rounded. ``original`` is uint8 or float in [0, 1].
    """
    if styled.dtype == np.uint8:
        if preserve_color:
            styled = to_uint8(preserve_colors(original, styled.astype(np.float32) / 255.0))
        if strength < 1.0:
            mix = original.astype(np.float32) * (1.0 - strength) + styled.astype(np.float32) * strength
            styled = np.clip(mix + 0.5, 0, 255).astype(np.uint8)
        return styled
    if preserve_color:
        styled = preserve_colors(original, styled)
    if strength < 1.0:
        orig = to_float(original) * np.float32(1.0 - strength)
        styled = styled * np.float32(strength)
        styled += orig
    return styled


def resize_array(arr: np.ndarray, size: tuple[int, int], resample: int = Image.Resampling.BICUBIC) -> np.ndarray:
    """An HxWx3 or HxW array (uint8, or float in [0, 1]) resized to ``size`` = (width, height) with Pillow's
    ``resample`` filter: uint8 stays uint8, floats come back float32 clipped to [0, 1] (resized per channel
    in 32-bit float, no 8-bit rounding). The same array when the size is already right."""
    if (arr.shape[1], arr.shape[0]) == tuple(size):
        return arr
    if arr.dtype == np.uint8:
        return np.asarray(Image.fromarray(arr, "RGB" if arr.ndim == 3 else "L").resize(size, resample))
    planes = [arr] if arr.ndim == 2 else [arr[:, :, c] for c in range(arr.shape[2])]
    out = [np.asarray(Image.fromarray(p.astype(np.float32, copy=False), "F").resize(size, resample)) for p in planes]
    return (out[0] if arr.ndim == 2 else np.stack(out, axis=2)).clip(0.0, 1.0).astype(np.float32)


# zlib's run-length strategy for PNG (OpenCV's imwrite default): on stylised photos the same size as Pillow's
# default (level 6) and 2.5-2.9x faster to write (0.37-0.42 s -> 0.14 s at 1024²);
# photos 0-4% larger; flat drawn graphics 1.2-1.8x larger (tens of KiB). Measured: scripts/bench_png.py.
PNG_ZLIB_STRATEGY = zlib.Z_RLE


def output_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The Pillow format name for ``path`` (or an explicit ``format`` such as 'png' or 'jpg')."""
    key = ("." + format.lower().lstrip(".")) if format else Path(path).suffix.lower()
    if key not in SAVE_FORMATS:
        raise InputError(f"unsupported output format '{key or Path(path).name}'; use one of "
                         f"{', '.join(sorted(SAVE_FORMATS))}")
    return SAVE_FORMATS[key]


def _prepare(img: Any, fmt: str, alpha: Image.Image | None, icc_profile: bytes | None,
             quality: int) -> tuple[Image.Image, dict[str, Any]]:
    if not isinstance(img, Image.Image):
        img = to_pil(img)
    if alpha is not None and fmt in _ALPHA_FORMATS:
        if alpha.size != img.size:
            alpha = alpha.resize(img.size, Image.Resampling.BILINEAR)
        img = img.convert("RGB").copy()
        img.putalpha(alpha)
    elif img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    params: dict[str, Any] = {}
    if icc_profile:
        params["icc_profile"] = icc_profile
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = int(quality)
    elif fmt == "PNG":
        params["compress_type"] = PNG_ZLIB_STRATEGY
    return img, params


def encode_image(img: Any, format: str = "png", *, alpha: Image.Image | None = None,
                 icc_profile: bytes | None = None, quality: int = 95) -> bytes:
    """Encode a PIL image or (1,3,H,W) tensor to bytes in ``format`` (for stdout or memory)."""
    fmt = output_format("x", format)
    img, params = _prepare(img, fmt, alpha, icc_profile, quality)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def save_image(img: Any, path: str | os.PathLike, *, overwrite: bool = False,
               alpha: Image.Image | None = None, icc_profile: bytes | None = None,
               quality: int = 95, format: str | None = None) -> Path:
    """Save a PIL image or (1,3,H,W) tensor atomically (temp file beside it, then rename).

    The format comes from the suffix unless ``format`` is given. ``alpha`` is re-attached where the
    format keeps transparency (PNG, WebP, TIFF). Raises OutputExistsError when ``path`` exists and
    ``overwrite`` is false; InputError for an unsupported format or an unwritable folder.
    """
    fmt = output_format(path, format)
    img, params = _prepare(img, fmt, alpha, icc_profile, quality)
    with atomic_output(path, overwrite=overwrite) as tmp:
        img.save(tmp, format=fmt, **params)
    return Path(path)


def make_grid(images: list[Image.Image], ncols: int | None = None, pad: int = 2,
              background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Paste images into a grid (row-major), each cell as large as the largest image."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    ncols = max(1, min(ncols or len(images), len(images)))
    nrows = -(-len(images) // ncols)
    cw = max(im.width for im in images)
    ch = max(im.height for im in images)
    grid = Image.new("RGB", (ncols * cw + (ncols + 1) * pad, nrows * ch + (nrows + 1) * pad), background)
    for i, im in enumerate(images):
        r, c = divmod(i, ncols)
        x = pad + c * (cw + pad) + (cw - im.width) // 2
        y = pad + r * (ch + pad) + (ch - im.height) // 2
        grid.paste(im.convert("RGB"), (x, y))
    return grid
