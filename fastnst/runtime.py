"""Apply an exported style network with onnxruntime alone (no torch, lightning or datasets).

    from fastnst.runtime import Stylizer
    out = Stylizer("wave.onnx").stylize("photo.jpg")        # a PIL image, same size as the photo
    out.save("photo-wave.jpg")

This module imports only numpy, Pillow, onnxruntime and fastnst's torch-free helpers (constants,
errors, fileio, image), so an app can embed a model with ``pip install fastnst`` (base install).

Images of any size come back at exactly their input size: the network input is reflection-padded
to the network's stride and cropped back. Large images are processed in overlapping tiles blended
with feathered weights, one row of tiles at a time, so memory stays bounded (see :mod:`fastnst.tiling`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from fastnst.constants import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME
from fastnst.errors import ConfigError, InputError, ModelFormatError
from fastnst.image import ImageSource, read_image, resize
from fastnst.tiling import (NORM_STATS_NAME, STATS_INPUT_NAME, TILE_INPUT_NAME, TILE_OUTPUT_NAME,
                            TILE_STATS_NAME, TileGrid)

DEVICES = ("auto", "cpu", "cuda")
# Images with more pixels than this are tiled automatically (tile=None). Chosen: a 1536x1024 photo
# still runs in one piece; johnson-preset peak RSS is ~0.9 GiB at 1 Mpx, ~1.4 GiB here (bench_infer.py).
AUTO_TILE_PIXELS = 1536 * 1024
DEFAULT_TILE = 1024  # chosen: large tiles amortise the overlap; a 1024² tile runs in < 1 GiB
# Tiling normalises every tile with instance-norm statistics of the whole image, computed on a copy
# downscaled to at most this many pixels. Chosen: 1 Mpx costs about one tile and keeps memory low.
STATS_PIXELS = 1024 * 1024
DEFAULT_STRIDE = 4  # two stride-2 convolutions (metadata 'fastnst_stride' overrides)
DEFAULT_MIN_SIZE = 8

# BT.601 full-range RGB <-> YCbCr (JPEG File Interchange Format).
_RGB_TO_Y = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_RGB_TO_CB = np.array([-0.168736, -0.331264, 0.5], dtype=np.float32)
_RGB_TO_CR = np.array([0.5, -0.418688, -0.081312], dtype=np.float32)


def _ort() -> Any:
    try:
        import onnxruntime
    except ModuleNotFoundError as exc:  # pragma: no cover - it is a base dependency
        from fastnst.errors import MissingDependencyError

        raise MissingDependencyError("running ONNX models", "base") from exc
    return onnxruntime


def available_providers() -> list[str]:
    """Execution providers that the installed onnxruntime offers (e.g. CUDA, CPU)."""
    return list(_ort().get_available_providers())


def resolve_providers(device: str | Sequence[str] | None = None) -> list[str]:
    """Provider list for ``device``: 'auto' (CUDA if onnxruntime has it, else CPU), 'cpu' or 'cuda'.

    A list of onnxruntime provider names is passed through. Asking for 'cuda' where onnxruntime has
    no CUDA provider raises ConfigError (never a silent CPU run).
    """
    available = available_providers()
    if device is not None and not isinstance(device, str):
        missing = [p for p in device if p not in available]
        if missing:
            raise ConfigError(f"onnxruntime here lacks {', '.join(missing)}; available: {', '.join(available)}")
        return list(device)
    device = (device or "auto").lower()
    if device not in DEVICES:
        from fastnst.errors import unknown_choice

        raise unknown_choice("device", device, DEVICES)
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda":
        if not has_cuda:
            raise ConfigError("--device cuda: this onnxruntime has no CUDA provider (available: "
                              f"{', '.join(available)}); install onnxruntime-gpu or use --device cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto" and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _physical_cores() -> int:
    """Physical cores available to this process (hyper-threads share one core's FPUs)."""
    try:
        logical = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        logical = os.cpu_count() or 1
    try:
        siblings: set[str] = set()
        for cpu in os.sched_getaffinity(0):
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
                siblings.add(f.read().strip())
        return max(1, min(logical, len(siblings)))
    except (OSError, AttributeError):
        return max(1, logical)


def session_options(threads: int | None = None, low_memory: bool = True) -> Any:
    """onnxruntime SessionOptions tuned for style networks on CPU.

    Threads = physical cores (onnxruntime's own default; hyper-threads share one core's FPUs).
    ``low_memory`` (default): extended graph optimisations without the NCHWc layout transform.
    Chosen, measured with scripts/bench_infer.py (johnson preset, 1024², 2 cores, best of 3 runs in
    fresh processes): all optimisations 8.54 s / 1335 MiB peak RSS, extended 8.80 s / 911 MiB; fast
    preset 2.01 s / 655 MiB vs 2.13 s / 508 MiB: 3-5% slower for 25-32% less memory. The memory arena
    stays on (off: 12.1 s, 910 MiB); memory-pattern planning is off (every image has another shape).
    """
    ort = _ort()
    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED if low_memory
                                        else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    options.intra_op_num_threads = int(threads) if threads else _physical_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    return options


def _pad_amounts(size: int, stride: int, min_size: int) -> tuple[int, int]:
    """Padding (before, after) to a multiple of ``stride``; all after, so the pixel grid of the
    strided convolutions stays anchored at the image origin (tiles then see the same grid)."""
    target = max(min_size, -(-size // stride) * stride)
    return 0, target - size


class Stylizer:
    """An exported fastnst style network run by onnxruntime.

    ``model_path`` is an ``.onnx`` file written by ``fastnst export`` (float or uint8 convention).
    ``providers``: None or 'auto' (CUDA when available, else CPU), 'cpu', 'cuda', or a list of
    onnxruntime provider names. ``threads``: CPU threads (default: physical cores). ``low_memory``
    (default True) skips onnxruntime's NCHWc layout transform: 3-5% slower, 25-32% less memory.
    Raises InputError for a missing file, ModelFormatError for a file
    that is not ONNX or not a style network, ConfigError for an unavailable device.
    """

    def __init__(self, model_path: str | os.PathLike, providers: str | Sequence[str] | None = None,
                 threads: int | None = None, low_memory: bool = True) -> None:
        ort = _ort()
        path = Path(model_path)
        if not path.is_file():
            raise InputError(f"model '{path}' does not exist; check the path")
        if path.stat().st_size == 0:
            raise ModelFormatError(f"model '{path}' is empty (0 bytes); export it again with fastnst export")
        wanted = resolve_providers(providers)
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads, low_memory), providers=wanted)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelFormatError(f"'{path}' is not an ONNX model onnxruntime can load ({first}); "
                                   f"pass an .onnx file written by fastnst export") from None
        if "CUDAExecutionProvider" in wanted[:1] and "CUDAExecutionProvider" not in self.session.get_providers():
            if providers is not None and str(providers).lower() == "cuda":
                raise ConfigError("--device cuda: onnxruntime could not start its CUDA provider "
                                  "(missing CUDA/cuDNN libraries?); use --device cpu")
        self.path = path
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.io_kind = self._check_signature()
        self.stride = int(self.metadata.get("fastnst_stride", DEFAULT_STRIDE) or DEFAULT_STRIDE)
        self.min_size = int(self.metadata.get("fastnst_min_size", DEFAULT_MIN_SIZE) or DEFAULT_MIN_SIZE)
        overridable = {i.name for i in self.session.get_overridable_initializers()}
        out_names = {o.name for o in self.session.get_outputs()}
        # models from fastnst export carry a tile path normalised with whole-image statistics
        self.has_tile_path = ({STATS_INPUT_NAME, TILE_INPUT_NAME, TILE_STATS_NAME} <= overridable
                              and {TILE_OUTPUT_NAME, NORM_STATS_NAME} <= out_names)

    @property
    def providers(self) -> list[str]:
        """The providers the session actually uses, in priority order."""
        return list(self.session.get_providers())

    @property
    def device(self) -> str:
        """'cuda' or 'cpu': where the network runs."""
        return "cuda" if self.providers[0] == "CUDAExecutionProvider" else "cpu"

    def _check_signature(self) -> str:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        expect = (f"expected one input '{ONNX_INPUT_NAME}' of shape (N, 3, H, W) float or (N, H, W, 3) uint8 "
                  f"and output '{ONNX_OUTPUT_NAME}'")
        if len(inputs) != 1 or not outputs:
            raise ModelFormatError(f"'{self.path}' is not a fastnst style model: {len(inputs)} inputs; {expect}")
        inp, out = inputs[0], outputs[0]
        shape = list(inp.shape)
        if inp.name != ONNX_INPUT_NAME or out.name != ONNX_OUTPUT_NAME or len(shape) != 4:
            raise ModelFormatError(f"'{self.path}' is not a fastnst style model: input '{inp.name}' "
                                   f"{shape}, output '{out.name}'; {expect}")
        if inp.type == "tensor(float)" and shape[1] == 3:
            return "float"
        if inp.type == "tensor(uint8)" and shape[3] == 3:
            return "uint8"
        raise ModelFormatError(f"'{self.path}' is not a fastnst style model: input {inp.type} {shape}; {expect}")

    # -- the network ----------------------------------------------------------------------------
    def _pad(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        h, w = rgb.shape[:2]
        top, bottom = _pad_amounts(h, self.stride, self.min_size)
        left, right = _pad_amounts(w, self.stride, self.min_size)
        if top or bottom or left or right:
            rgb = np.pad(rgb, ((top, bottom), (left, right), (0, 0)), mode="reflect")
        return rgb, (top, left, h, w)

    def _feed(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 to the model's input layout (uint8 NHWC or float32 NCHW)."""
        if self.io_kind == "uint8":
            return np.ascontiguousarray(rgb)[None]
        x = np.empty((1, 3) + rgb.shape[:2], dtype=np.float32)
        np.multiply(rgb.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=x[0])
        return x

    def run(self, rgb: np.ndarray) -> np.ndarray:
        """Stylise one HxWx3 uint8 array; returns HxWx3 float32 in [0, 1] of the same size.

        The array is reflection-padded to the network's stride (and minimum size) and cropped back.
        """
        padded, (top, left, h, w) = self._pad(rgb)
        y = self.session.run([ONNX_OUTPUT_NAME], {ONNX_INPUT_NAME: self._feed(padded)})[0][0]
        if self.io_kind == "uint8":
            out = y[top:top + h, left:left + w].astype(np.float32)
            out *= np.float32(1.0 / 255.0)
            return out
        return np.ascontiguousarray(y[:, top:top + h, left:left + w].transpose(1, 2, 0))

    def norm_stats(self, rgb: np.ndarray) -> np.ndarray:
        """Instance-norm statistics (1, K) of the network run on a whole HxWx3 uint8 image."""
        padded, _ = self._pad(rgb)
        x = np.empty((1, 3) + padded.shape[:2], dtype=np.float32)
        np.multiply(padded.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=x[0])
        return self.session.run([NORM_STATS_NAME], {ONNX_INPUT_NAME: self._dummy, STATS_INPUT_NAME: x})[0][:1]

    def run_tile(self, rgb: np.ndarray, stats: np.ndarray) -> np.ndarray:
        """Stylise an HxWx3 uint8 tile normalised with ``stats`` (from :meth:`norm_stats`); float32 HxWx3."""
        padded, (top, left, h, w) = self._pad(rgb)
        x = np.empty((1, 3) + padded.shape[:2], dtype=np.float32)
        np.multiply(padded.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=x[0])
        y = self.session.run([TILE_OUTPUT_NAME], {ONNX_INPUT_NAME: self._dummy, TILE_INPUT_NAME: x,
                                                  TILE_STATS_NAME: stats})[0][0]
        return np.ascontiguousarray(y[:, top:top + h, left:left + w].transpose(1, 2, 0))

    @property
    def _dummy(self) -> np.ndarray:
        """A minimal image for the main input while only the tile path is wanted."""
        n = max(self.min_size, 8)
        return self._feed(np.zeros((n, n, 3), np.uint8))

    # -- the public entry point -----------------------------------------------------------------
    def stylize(self, image: ImageSource, strength: float = 1.0, preserve_color: bool = False,
                max_size: int | None = None, tile: int | None = None, overlap: int | None = None) -> Image.Image:
        """Stylise ``image`` (a PIL image, a path, encoded bytes or an HxWx3 uint8 array).

        Returns a PIL image of the input's size (after EXIF orientation; after ``max_size``, which
        downscales so that the longer side is at most ``max_size``). Alpha is re-attached (RGBA) and
        the ICC profile kept in ``.info['icc_profile']``. ``strength`` in [0, 1] blends stylised
        (1) and original (0); ``preserve_color`` keeps the original colours (YCbCr chroma) and takes
        the stylised luminance. ``tile``: None tiles automatically above AUTO_TILE_PIXELS, 0 never,
        N uses N-pixel tiles. Raises InputError for unreadable images, ConfigError for bad options.
        """
        strength = float(strength)
        if not 0.0 <= strength <= 1.0:
            raise ConfigError(f"strength must be between 0 and 1, got {strength}")
        if max_size is not None and int(max_size) <= 0:
            raise ConfigError(f"max_size must be positive, got {max_size}")
        if tile is not None and int(tile) < 0:
            raise ConfigError(f"tile must be 0 (off) or a positive size in pixels, got {tile}")
        data = read_image(image)
        rgb_img, alpha, icc = data.rgb, data.alpha, data.icc_profile
        if max_size is not None and max(rgb_img.size) > int(max_size):
            rgb_img = resize(rgb_img, long_edge=int(max_size))
            if alpha is not None:
                alpha = alpha.resize(rgb_img.size, Image.Resampling.BICUBIC)
        w, h = rgb_img.size
        if tile is None:
            tile_size = DEFAULT_TILE if w * h > AUTO_TILE_PIXELS else 0
        else:
            tile_size = int(tile)
        tiled = bool(tile_size) and (w > tile_size or h > tile_size) and strength > 0
        stats = None
        if tiled and self.has_tile_path:
            small = rgb_img if w * h <= STATS_PIXELS else rgb_img.resize(
                _fit(w, h, STATS_PIXELS), Image.Resampling.BOX)
            stats = self.norm_stats(np.asarray(small))
            del small
        src = np.asarray(rgb_img)
        del rgb_img, data  # the decoded copy is no longer needed (large images: bounded memory)
        if tiled:
            run = self.run if stats is None else (lambda t: self.run_tile(t, stats))
            grid = TileGrid(h, w, tile_size, overlap, self.stride)
            out = Image.new("RGB", (w, h))
            for y0, band in grid.bands(src, run):
                styled = _finish(src[y0:y0 + band.shape[0]], band, strength, preserve_color)
                out.paste(Image.fromarray(styled, "RGB"), (0, y0))
                del band, styled
        else:
            out = Image.fromarray(_finish(src, self.run(src) if strength > 0 else None, strength,
                                          preserve_color), "RGB")
        if alpha is not None:
            out.putalpha(alpha)
        if icc:
            out.info["icc_profile"] = icc
        return out

    def describe(self) -> dict[str, Any]:
        """Metadata, signature and providers as a JSON-able dict (for ``fastnst info``)."""
        def sig(args: Any) -> list[dict[str, Any]]:
            return [{"name": a.name, "type": a.type, "shape": [d if isinstance(d, int) else str(d) for d in a.shape]}
                    for a in args]

        meta = {}
        for key, value in sorted(self.metadata.items()):
            try:
                meta[key] = json.loads(value) if value[:1] in "[{" else value
            except (json.JSONDecodeError, TypeError):
                meta[key] = value
        return {"model": str(self.path), "size_bytes": self.path.stat().st_size, "io": self.io_kind,
                "inputs": sig(self.session.get_inputs()),
                "optional_inputs": sig(self.session.get_overridable_initializers()),
                "outputs": sig(self.session.get_outputs()),
                "metadata": meta, "providers_available": available_providers(),
                "providers_used": self.providers}


def _fit(w: int, h: int, pixels: int) -> tuple[int, int]:
    """(width, height) scaled down to at most ``pixels`` pixels, aspect kept."""
    scale = min(1.0, (pixels / float(w * h)) ** 0.5)
    return max(1, int(w * scale)), max(1, int(h * scale))


def _finish(src: np.ndarray, styled: np.ndarray | None, strength: float, preserve_color: bool) -> np.ndarray:
    """Colour transfer and strength blend of stylised rows with the original rows; returns uint8."""
    if styled is None or strength == 0.0:
        return np.array(src, dtype=np.uint8, copy=True)
    if preserve_color:
        styled = preserve_colors(src, styled)
    if strength < 1.0:
        orig = src.astype(np.float32)
        orig *= np.float32((1.0 - strength) / 255.0)
        styled = styled * np.float32(strength)
        styled += orig
    styled = np.clip(styled, 0.0, 1.0, out=styled if styled.flags.writeable else None)
    return (styled * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)


def preserve_colors(original: np.ndarray, styled: np.ndarray) -> np.ndarray:
    """Luminance of ``styled`` with the chroma of ``original`` (BT.601 YCbCr); float32 HxWx3 in [0, 1].

    ``original`` is uint8 HxWx3 (or float in [0, 1]); ``styled`` float32 HxWx3 in [0, 1].
    """
    orig = original.astype(np.float32)
    if original.dtype == np.uint8:
        orig *= np.float32(1.0 / 255.0)
    y = styled @ _RGB_TO_Y
    cb = orig @ _RGB_TO_CB
    cr = orig @ _RGB_TO_CR
    out = np.empty_like(styled, dtype=np.float32)
    out[..., 0] = y + 1.402 * cr
    out[..., 1] = y - 0.344136 * cb - 0.714136 * cr
    out[..., 2] = y + 1.772 * cb
    return np.clip(out, 0.0, 1.0, out=out)


__all__ = ["Stylizer", "available_providers", "resolve_providers", "session_options", "preserve_colors",
           "AUTO_TILE_PIXELS", "DEFAULT_TILE"]
