"""Apply an exported style network with onnxruntime alone (no torch, lightning or datasets).

    import fastnst
    out = fastnst.stylize("photo.jpg", "wave.onnx")           # a PIL image, same size as the photo

    from fastnst.runtime import Stylizer
    stylizer = Stylizer("wave.onnx", providers="auto", threads=4)
    array_out = stylizer.stylize(frame)                         # HxWx3 uint8 in -> HxWx3 uint8 out
    outs = stylizer.stylize_many(frames, batch_size=4)          # a list, same order
    for out in stylizer.stylize_iter(camera_frames()): ...      # a stream of frames

This module imports only numpy, Pillow, onnxruntime and fastnst's torch-free helpers (constants, contract,
errors, fileio, image, tiling); the ``onnx`` package is imported only when a model must be rewritten
(tiling, a fixed-size third-party model, an old fastnst model with tiling inputs). It changes no
global state of the host app (Pillow's ``Image.MAX_IMAGE_PIXELS`` included).

Images of any size come back at exactly their input size: the network input is reflection-padded
to the network's stride and cropped back. Large images are processed in overlapping tiles blended
with feathered weights, one row of tiles at a time, every tile normalised with instance-norm
statistics of the whole image (see :mod:`fastnst.runtime.tiling`): this works for any model with
InstanceNormalization, fastnst's own or third-party Johnson-style models taking 0..255 pixels.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
from PIL import Image

from fastnst.contract import (INPUT_RANGES, LEGACY_INPUTS, META_ARCH, META_INPUT_RANGE, META_STYLES, OUTPUT_NAME,
                              STYLE_NAME, geometry, padded_size)
from fastnst.errors import ConfigError, InputError, ModelFormatError, did_you_mean, unknown_choice
from fastnst.image import (ImageSource, check_pixels, fit_long_side, from_nchw, preserve_colors, read_fitted, to_float,
                           to_nchw, to_uint8)
from fastnst.runtime.rewrite import polyphase_upsampling, speed_up
from fastnst.runtime.tiling import NormRewrite, TileGrid, TilingUnsupported, make_dynamic, plain_graph

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
# From this many (padded) pixels an image runs on a second session of the model, rewritten at load
# (fastnst.runtime.rewrite.polyphase_upsampling). Measured at 1024² (scripts/bench_infer.py): johnson 1.12x
# faster, peak RSS 660 instead of 1200 MiB; `fastnst stylize` with the built-in model faster and 417
# instead of 681 MiB, the ~0.08 s of building it (an onnx import and a session) included. Chosen:
# below about this size that cost is not repaid.
REWRITE_PIXELS = 768 * 768
# Images with more pixels than this are tiled automatically (tile=None). Chosen: a 1536x1024 photo
# still runs in one piece; johnson-preset peak RSS is ~0.9 GiB at 1 Mpx, ~1.4 GiB here (bench_infer.py).
AUTO_TILE_PIXELS = 1536 * 1024
DEFAULT_TILE = 1024  # chosen: large tiles amortise the overlap; a 1024² tile runs in < 1 GiB
# Tiling normalises every tile with instance-norm statistics of the whole image, computed on a copy
# downscaled to at most this many pixels. Chosen: 1 Mpx costs about one tile and keeps memory low.
# (Exact statistics would need one pass over all tiles per instance norm, because each layer's
# statistics depend on the layers before it normalised with whole-image statistics: 15 passes for
# the johnson preset. The downscaled copy keeps the seam error within the documented bound.)
STATS_PIXELS = 1024 * 1024
MAX_BATCH = 256  # stylize_many / stylize_iter batch_size bound (memory: a batch runs in one call)

# Execution providers: short names -> onnxruntime names; 'auto' takes the first installed of
# AUTO_ORDER, then CPU (the order onnxruntime's documentation recommends: TensorRT before CUDA).
PROVIDER_ALIASES: dict[str, str] = {
    "cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider", "directml": "DmlExecutionProvider", "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider", "openvino": "OpenVINOExecutionProvider", "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider", "qnn": "QNNExecutionProvider", "webgpu": "WebGpuExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}
AUTO_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "DmlExecutionProvider",
              "CoreMLExecutionProvider", "OpenVINOExecutionProvider")
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")

ProviderSpec = Union[str, tuple[str, Mapping[str, Any]]]
StyleSpec = Union[None, str, int, Mapping[str, float], Sequence[float], np.ndarray]

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


# ------------------------------------------------------------------------------------------ providers

def _provider_name(name: str) -> str:
    """'cuda' / 'CUDA' / 'CUDAExecutionProvider' -> 'CUDAExecutionProvider'; ConfigError when unknown."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a provider is a name such as 'cpu' or 'CUDAExecutionProvider', got {name!r}")
    key = name.strip()
    if key.lower() in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[key.lower()]
    known = set(PROVIDER_ALIASES.values()) | set(available_providers())
    for full in known:
        if full.lower() == key.lower() or full.lower() == key.lower() + "executionprovider":
            return full
    raise unknown_choice("provider", key, ["auto", *PROVIDER_ALIASES, *sorted(known)])


def parse_provider(text: str) -> ProviderSpec:
    """A CLI provider ``NAME[:key=value,key=value]`` to a name or a (name, options) tuple."""
    name, sep, rest = text.partition(":")
    if not sep:
        return name.strip()
    options: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"provider options are key=value pairs separated by commas, got '{item}' in '{text}'")
        options[key.strip()] = value.strip()
    return name.strip(), options


def resolve_providers(device: ProviderSpec | Sequence[ProviderSpec] | None = None) -> list[ProviderSpec]:
    """onnxruntime's ``providers`` list for a provider choice.

    ``device``: None or 'auto' (the best installed: TensorRT, CUDA, DirectML, CoreML, OpenVINO, then
    CPU), a name ('cpu', 'cuda', 'CUDAExecutionProvider', ...), a ``(name, options)`` tuple, or a list of
    those. The CPU provider is appended as the fallback. A name onnxruntime here lacks raises
    ConfigError (never a silent CPU run); so do unknown names (with a suggestion) and options that
    are not a mapping.
    """
    available = available_providers()
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        chosen: list[ProviderSpec] = [p for p in AUTO_ORDER if p in available]
        return chosen + ["CPUExecutionProvider"]
    items = [device] if isinstance(device, (str, tuple)) else list(device)
    if not items:
        raise ConfigError("the provider list is empty; pass 'auto', 'cpu' or a provider name")
    out: list[ProviderSpec] = []
    for item in items:
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[1], Mapping):
                raise ConfigError(f"a provider with options is a (name, dict) pair, got {item!r}")
            name, options = _provider_name(item[0]), {str(k): str(v) for k, v in item[1].items()}
        elif isinstance(item, str):
            name, options = _provider_name(item), None
        else:
            raise ConfigError(f"a provider is a name or a (name, options) pair, got {type(item).__name__}")
        if name not in available:
            short = next((k for k, v in PROVIDER_ALIASES.items() if v == name), name)
            hint = (" install onnxruntime-gpu or" if name in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
                    else "")
            raise ConfigError(f"provider {short}: this onnxruntime has no {name} (available: "
                              f"{', '.join(available)});{hint} use --provider cpu")
        out.append((name, options) if options is not None else name)
    if not any((p if isinstance(p, str) else p[0]) == "CPUExecutionProvider" for p in out):
        out.append("CPUExecutionProvider")
    return out


# ------------------------------------------------------------------------------------------ threads

def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; cgroup-pinned containers included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def _physical_cores() -> int:
    """Physical cores available to this process (hyper-threads share one core's FPUs)."""
    logical = usable_cpus()
    try:
        siblings: set[str] = set()
        for cpu in os.sched_getaffinity(0):
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
                siblings.add(f.read().strip())
        return max(1, min(logical, len(siblings)))
    except (OSError, AttributeError):
        return max(1, logical)


def check_threads(threads: int | None) -> int:
    """The intra-op thread count: None -> physical cores; positive ints above the usable CPUs are capped
    (with a logged note); zero, negative or non-integer values raise ConfigError."""
    if threads is None:
        return _physical_cores()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise ConfigError(f"threads must be a positive integer, got {threads!r}")
    if threads <= 0:
        raise ConfigError(f"threads must be positive, got {threads}")
    cpus = usable_cpus()
    if threads > cpus:
        log.warning("note: %d threads asked for, but this process may use %d CPUs; using %d", threads, cpus, cpus)
        return cpus
    return int(threads)


def session_options(threads: int | None = None, optimization: str | None = None) -> Any:
    """onnxruntime SessionOptions tuned for style networks on CPU.

    Threads = physical cores by default (onnxruntime's own default; hyper-threads share one core's
    FPUs), capped at the CPUs this process may use. ``optimization``: 'disable', 'basic', 'extended'
    or 'all' (default). Chosen, measured with scripts/bench_infer.py (tuning section): once the thin
    output convolution is split (fastnst.runtime.rewrite), 'all' (NCHWc layout) is the fastest level, and with
    polyphase up-sampling its peak memory is below the former default's. The memory arena stays on;
    memory-pattern planning is off (every image has another shape).
    """
    ort = _ort()
    level = optimization or "all"
    if level not in OPTIMIZATION_LEVELS:
        raise unknown_choice("graph optimisation level", str(level), OPTIMIZATION_LEVELS)
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    options.intra_op_num_threads = check_threads(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    return options


# ------------------------------------------------------------------------------------------ styles

def parse_style(spec: StyleSpec, names: Sequence[str]) -> np.ndarray | None:
    """Blend weights (float32, summing to 1) of a multi-style model's ``style`` input.

    ``spec``: None (the first style; None for a single-style model), a style name, an index (int or
    digits), ``"a:0.5,b:0.5"`` (names or indices with weights), a {name: weight} mapping, or a weight
    vector of length ``len(names)``. ``names`` are the model's style names; an empty list means a
    single-style model, which accepts only None. Raises ConfigError for unknown names (with a
    suggestion), out-of-range indices, negative or non-finite weights, an all-zero blend, a style for
    a single-style model, or a malformed string.
    """
    names = list(names)
    count = len(names)
    if spec is None:
        if count <= 1:
            return None
        out = np.zeros(count, np.float32)
        out[0] = 1.0
        return out
    if count <= 1:
        raise ConfigError("this model has a single style; leave out --style (style=None)")
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(names))

    def index_of(key: Any) -> int:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not 0 <= int(key) < count:
                raise ConfigError(f"style index {key} is out of range; this model has {count} styles ({listing})")
            return int(key)
        text = str(key).strip()
        if text in names:
            return names.index(text)
        if text.lstrip("-").isdigit():
            return index_of(int(text))
        raise ConfigError(f"unknown style '{text}'{did_you_mean(text, names)}; this model has: {listing}")

    weights = np.zeros(count, np.float64)
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        weights[index_of(spec)] = 1.0
    elif isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ConfigError(f"empty style; pass a name, an index or a blend such as '{names[0]}:0.5,{names[1]}:0.5'")
        if ":" not in text and "," not in text:
            weights[index_of(text)] = 1.0
        else:
            for part in text.split(","):
                key, sep, value = part.rpartition(":")
                if not sep or not key.strip():
                    raise ConfigError(f"a style blend is NAME:WEIGHT pairs separated by commas, got '{part.strip()}'")
                try:
                    w = float(value)
                except ValueError:
                    raise ConfigError(f"style weight '{value.strip()}' for '{key.strip()}' is not a number") from None
                weights[index_of(key)] += _check_weight(w, key.strip())
    elif isinstance(spec, Mapping):
        for key, w in spec.items():
            weights[index_of(key)] += _check_weight(w, str(key))
    else:
        try:
            vec = np.asarray(spec, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"style must be a name, an index, a blend string, a dict or a weight vector, "
                              f"not {type(spec).__name__}") from None
        if vec.shape != (count,):
            raise ConfigError(f"a style weight vector needs {count} values ({listing}), got shape {vec.shape}")
        for name, w in zip(names, vec):
            _check_weight(float(w), name)
        weights = vec.copy()
    total = float(weights.sum())
    if total <= 0:
        raise ConfigError("the style weights sum to zero; give at least one style a positive weight")
    return (weights / total).astype(np.float32)


def _check_weight(w: Any, name: str) -> float:
    try:
        w = float(w)
    except (TypeError, ValueError):
        raise ConfigError(f"style weight for '{name}' is not a number: {w!r}") from None
    if not np.isfinite(w) or w < 0:
        raise ConfigError(f"style weight for '{name}' must be a finite number >= 0, got {w}")
    return w


# ------------------------------------------------------------------------------------------ images

@dataclass
class _Item:
    """One prepared input: RGB pixels (uint8 or float32 HxWx3), alpha, ICC and how to give it back."""

    src: np.ndarray
    alpha: Any  # PIL 'L' image, a numpy HxW array (array inputs) or None
    icc: bytes | None
    kind: str  # "pil" (PIL/path/bytes in) or "array"
    dtype: Any = None  # array inputs: the dtype to return
    channels: int = 3  # array inputs: 3 or 4 (gray HxW comes back as HxWx3)


def _prepare(image: ImageSource, max_size: int | None) -> _Item:
    """Decode/convert ``image`` to an _Item; arrays keep float precision."""
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
            src, alpha = _resize_array(src, alpha, max_size)
        return _Item(src, alpha, None, "array", image.dtype, channels)
    data = read_fitted(image, max_size)  # JPEG draft / early reduce: huge canvases stay cheap
    return _Item(np.asarray(data.rgb), data.alpha, data.icc_profile, "pil")


def _resize_array(src: np.ndarray, alpha: np.ndarray | None, long_edge: int) -> tuple[np.ndarray, np.ndarray | None]:
    size = fit_long_side((src.shape[1], src.shape[0]), long_edge)
    if src.dtype == np.uint8:
        out = np.asarray(Image.fromarray(src, "RGB").resize(size, Image.Resampling.BICUBIC))
    else:
        out = np.stack([np.asarray(Image.fromarray(src[:, :, c], "F").resize(size, Image.Resampling.BICUBIC))
                        for c in range(3)], axis=2).clip(0.0, 1.0).astype(np.float32)
    if alpha is not None:
        mode = "L" if alpha.dtype == np.uint8 else "F"
        alpha = np.asarray(Image.fromarray(alpha.astype(np.float32) if mode == "F" else alpha, mode)
                           .resize(size, Image.Resampling.BICUBIC)).astype(alpha.dtype)
    return out, alpha



# ------------------------------------------------------------------------------------------ stylizers

class StylizerBase:
    """What every stylizer shares: padding to the stride, tiling, strength, colours, batches and streams.

    A subclass runs the network: :meth:`run_batch`, :attr:`providers` and :meth:`describe`, and for
    tiles normalised with whole-image statistics :meth:`norm_stats`, :meth:`run_tile` and
    :meth:`_tiler`. :class:`Stylizer` (onnxruntime) and :class:`fastnst.training.torch_stylizer.TorchStylizer`
    (torch, for weights files) are the two. ``min_size`` raises the model's minimum side.
    """

    def __init__(self, path: str | os.PathLike, metadata: Mapping[str, str], min_size: int = 1) -> None:
        self.path = Path(path)
        self.metadata: dict[str, str] = dict(metadata)
        self.stride, self.min_size = geometry(self.metadata)
        self.min_size = max(self.min_size, int(min_size))
        self.io_kind, self.input_range = "float", 1.0
        self.static_size: tuple[int, int] | None = None
        self.style_names: list[str] = []
        self.tiling_note = ""
        self._lock = threading.Lock()

    @property
    def providers(self) -> list[str]:
        """Where the network runs, in priority order."""
        raise NotImplementedError

    @property
    def device(self) -> str:
        """A short name of the provider the network runs on: 'cpu', 'cuda', 'tensorrt', ..."""
        first = self.providers[0]
        return next((k for k, v in PROVIDER_ALIASES.items() if v == first), first)

    @property
    def has_tile_path(self) -> bool:
        """Whether tiles can be normalised with whole-image statistics (the graph rewrite works)."""
        return bool(self._tiler())

    # -- the network -----------------------------------------------------------------------------
    def _pad(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """Reflection padding to the model's stride, all after the image: the pixel grid of the strided
        convolutions stays anchored at the origin (tiles then see the same grid)."""
        h, w = rgb.shape[:2]
        bottom = padded_size(h, self.stride, self.min_size) - h
        right = padded_size(w, self.stride, self.min_size) - w
        if bottom or right:
            rgb = np.pad(rgb, ((0, bottom), (0, right), (0, 0)), mode="reflect")
        return rgb, (0, 0, h, w)

    def _feed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """HxWx3 arrays (uint8 or float32 [0, 1], same size) to the model's input layout and range."""
        if self.io_kind == "uint8":
            return np.stack([to_uint8(b) for b in batch])
        return to_nchw(batch, self.input_range)

    def _back(self, y: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """One output (model layout) to HxWx3 float32 in [0, 1] (not clipped), cropped to ``box``."""
        top, left, h, w = box
        if self.io_kind == "uint8":
            return to_float(y[top:top + h, left:left + w])
        return from_nchw(y[:, top:top + h, left:left + w], self.input_range)

    def _check_size(self, h: int, w: int) -> None:
        if self.static_size and (h, w) != tuple(self.static_size):
            sh, sw = self.static_size
            raise InputError(f"'{self.path.name}' takes only {sw}x{sh} images (a fixed-size model) and the padded "
                             f"image is {w}x{h}; install the onnx package (fastnst then lifts the fixed size) "
                             f"or resize the image")

    def run(self, rgb: np.ndarray, style: np.ndarray | None = None) -> np.ndarray:
        """Stylise one HxWx3 array (uint8, or float32 in [0, 1]); returns HxWx3 float32 in [0, 1].

        The array is reflection-padded to the network's stride (and minimum size) and cropped back.
        ``style``: blend weights from :func:`parse_style` (multi-style models; None = first style).
        """
        return self.run_batch([rgb], style)[0]

    def run_batch(self, images: Sequence[np.ndarray], style: np.ndarray | None = None) -> list[np.ndarray]:
        """Stylise same-sized HxWx3 arrays in one network call; a list of HxWx3 float32 results."""
        raise NotImplementedError

    # -- tiling ----------------------------------------------------------------------------------
    def _tiler(self) -> Any:
        """True-ish when tiles can be normalised with whole-image statistics (see :meth:`norm_stats`)."""
        return False

    def norm_stats(self, rgb: np.ndarray, style: np.ndarray | None = None) -> Any:
        """Instance-norm statistics of the network run on a whole HxWx3 image (for :meth:`run_tile`)."""
        raise NotImplementedError

    def run_tile(self, rgb: np.ndarray, stats: Any, style: np.ndarray | None = None) -> np.ndarray:
        """Stylise an HxWx3 tile normalised with ``stats`` (from :meth:`norm_stats`); float32 HxWx3."""
        raise NotImplementedError

    def _tile_runner(self, src: np.ndarray, style: np.ndarray | None, explicit: bool) -> Any:
        """The function each tile goes through: whole-image statistics when the rewrite works."""
        if self._tiler():
            h, w = src.shape[:2]
            if h * w <= STATS_PIXELS:
                small = src
            elif src.dtype == np.uint8:
                small = np.asarray(Image.fromarray(src, "RGB").resize(_fit(w, h, STATS_PIXELS), Image.Resampling.BOX))
            else:
                small = _resize_array(src, None, max(_fit(w, h, STATS_PIXELS)))[0]
            stats = self.norm_stats(small, style)
            del small
            return lambda t: self.run_tile(t, stats, style)
        if "no InstanceNormalization" in self.tiling_note:  # nothing to keep consistent: tiles run as they are
            return lambda t: self.run(t, style)
        raise TilingUnsupported(self.tiling_note)

    # -- the public entry points -----------------------------------------------------------------
    def stylize(self, image: ImageSource, strength: float = 1.0, preserve_color: bool = False,
                max_size: int | None = None, tile: int | None = None, overlap: int | None = None,
                style: StyleSpec = None) -> Any:
        """Stylise ``image`` and return it in the kind it was given.

        ``image``: a PIL image (-> a PIL image), a numpy array HxWx3 / HxWx4 / HxW, uint8 or float in
        [0, 1] (-> an array of the same dtype; HxWx4 keeps its alpha, HxW comes back HxWx3), or a path,
        encoded bytes or a binary file (-> a PIL image). The result has the input's size (after EXIF
        orientation and ``max_size``, which downscales so that the longer side is at most
        ``max_size``). PIL results carry alpha (RGBA) and ``.info['icc_profile']``.
        ``strength`` in [0, 1] blends stylised (1) and original (0); ``preserve_color`` keeps the
        original colours (YCbCr chroma). ``tile``: None tiles automatically above AUTO_TILE_PIXELS,
        0 never, N uses N-pixel tiles (``overlap`` pixels of overlap). ``style``: for multi-style
        models, see :func:`parse_style`. Raises InputError for unreadable images, ConfigError for bad
        options.
        """
        return next(self.stylize_iter([image], 1, strength=strength, preserve_color=preserve_color,
                                      max_size=max_size, tile=tile, overlap=overlap, style=style))

    def stylize_many(self, images: Iterable[ImageSource], batch_size: int = 1, **options: Any) -> list[Any]:
        """:meth:`stylize` for several images; a list in the same order. Consecutive same-sized,
        untiled images run ``batch_size`` at a time in one onnxruntime call."""
        return list(self.stylize_iter(images, batch_size, **options))

    def stylize_iter(self, images: Iterable[ImageSource], batch_size: int = 1, *, strength: float = 1.0,
                     preserve_color: bool = False, max_size: int | None = None, tile: int | None = None,
                     overlap: int | None = None, style: StyleSpec = None) -> Iterator[Any]:
        """Stylise a stream of images (e.g. video frames), yielding each result as soon as its batch
        is done; at most ``batch_size`` inputs are held at a time. Options as in :meth:`stylize`."""
        strength, max_size, tile, overlap = _check_options(strength, max_size, tile, overlap)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= MAX_BATCH:
            raise ConfigError(f"batch_size must be an integer from 1 to {MAX_BATCH}, got {batch_size!r}")
        weights = parse_style(style, self.style_names)
        pending: list[_Item] = []
        for image in images:
            pending.append(_prepare(image, max_size))
            if len(pending) >= batch_size:
                yield from self._render_batch(pending, strength, preserve_color, tile, overlap, weights)
                pending = []
        if pending:
            yield from self._render_batch(pending, strength, preserve_color, tile, overlap, weights)

    def _render_batch(self, items: list[_Item], strength: float, preserve_color: bool, tile: int | None,
                      overlap: int | None, style: np.ndarray | None) -> Iterator[Any]:
        styled: list[np.ndarray | None] = [None] * len(items)
        if strength > 0:
            plain = [i for i, it in enumerate(items) if not self._tile_size(it.src, tile)]
            groups: dict[tuple[int, ...], list[int]] = {}
            for i in plain:
                groups.setdefault(items[i].src.shape + (items[i].src.dtype.itemsize,), []).append(i)
            for idx in groups.values():
                for i, out in zip(idx, self.run_batch([items[i].src for i in idx], style)):
                    styled[i] = out
        for i, item in enumerate(items):
            yield self._render(item, styled[i], strength, preserve_color, tile, overlap, style)
            items[i] = styled[i] = None  # type: ignore[call-overload]  # free as we go

    def _tile_size(self, src: np.ndarray, tile: int | None) -> int:
        h, w = src.shape[:2]
        size = (DEFAULT_TILE if h * w > AUTO_TILE_PIXELS else 0) if tile is None else tile
        size = size if size and (w > size or h > size) else 0
        if not size and h * w > AUTO_TILE_PIXELS:  # one piece: the memory estimate before the allocation
            from fastnst import checks

            checks.memory(checks.FORWARD_BYTES_PER_PIXEL * h * w, f"stylising {w}x{h} in one piece",
                          "leave --tile out (automatic tiling) or pass --tile 1024")
        return size

    def _render(self, item: _Item, styled: np.ndarray | None, strength: float, preserve_color: bool,
                tile: int | None, overlap: int | None, style: np.ndarray | None) -> Any:
        src = item.src
        h, w = src.shape[:2]
        tile_size = self._tile_size(src, tile) if strength > 0 else 0
        if tile_size:
            try:
                run = self._tile_runner(src, style, explicit=tile is not None)
            except TilingUnsupported as exc:
                if tile is not None:
                    raise ConfigError(f"cannot tile '{self.path.name}' with whole-image statistics: {exc}; "
                                      f"pass --tile 0 to run it in one piece") from None
                log.warning("note: running untiled: %s", exc)
                tile_size = 0
        if tile_size:
            grid = TileGrid(h, w, tile_size, overlap, self.stride)
            if item.kind == "pil":
                out_img = Image.new("RGB", (w, h))
                for y0, band in grid.bands(src, run):
                    rows = _finish(src[y0:y0 + band.shape[0]], band, strength, preserve_color)
                    out_img.paste(Image.fromarray(to_uint8(rows), "RGB"), (0, y0))
                    del band, rows
                return self._give_back_pil(out_img, item)
            result = np.empty((h, w, 3), np.uint8 if item.dtype == np.uint8 else np.float32)
            for y0, band in grid.bands(src, run):
                rows = _finish(src[y0:y0 + band.shape[0]], band, strength, preserve_color)
                result[y0:y0 + band.shape[0]] = to_uint8(rows) if result.dtype == np.uint8 else np.clip(rows, 0, 1)
            return self._give_back_array(result, item)
        if styled is None and strength > 0:
            styled = self.run(src, style)
        rgb = _finish(src, styled, strength, preserve_color)
        if item.kind == "pil":
            return self._give_back_pil(Image.fromarray(to_uint8(rgb), "RGB"), item)
        return self._give_back_array(to_uint8(rgb) if item.dtype == np.uint8 else np.clip(rgb, 0, 1), item)

    @staticmethod
    def _give_back_pil(out: Image.Image, item: _Item) -> Image.Image:
        if item.alpha is not None:
            out.putalpha(item.alpha)
        if item.icc:
            out.info["icc_profile"] = item.icc
        return out

    @staticmethod
    def _give_back_array(rgb: np.ndarray, item: _Item) -> np.ndarray:
        out = rgb.astype(item.dtype, copy=False)
        if item.channels == 4:
            out = np.concatenate([out, item.alpha[:, :, None].astype(item.dtype)], axis=2)
        return out

    def describe(self) -> dict[str, Any]:
        """Metadata, signature and providers as a JSON-able dict (for ``fastnst info``)."""
        raise NotImplementedError


class Stylizer(StylizerBase):
    """An exported style network run by onnxruntime.

    ``model_path``: an ``.onnx`` file written by ``fastnst export`` (float or uint8 convention, one
    or several styles), or a third-party model with one image input (N, 3, H, W) and one image
    output, e.g. the ONNX model zoo's fast_neural_style models (``input_range=255``).
    ``providers``: 'auto' (default: TensorRT, CUDA, DirectML, CoreML, OpenVINO, whichever is
    installed first, then CPU), a name, a ``(name, options)`` pair or a list of them (see
    :func:`resolve_providers`). ``threads``: intra-op CPU threads (default: physical cores; capped at
    the CPUs this process may use). ``optimization``: onnxruntime graph optimisation level
    ('disable', 'basic', 'extended', 'all'; default 'all'). Large images run on a session of the model
    rewritten at load (:meth:`session_for`).
    ``input_range``: 1 when the model takes pixels in [0, 1], 255 for 0..255 (default: the model's
    ``fastnst_input_range`` metadata, else 1).
    Raises InputError for a missing file, ModelFormatError for a file that is not ONNX or not an
    image-to-image model, ConfigError for unavailable providers or bad options.
    """

    def __init__(self, model_path: str | os.PathLike, providers: ProviderSpec | Sequence[ProviderSpec] | None = None,
                 threads: int | None = None, optimization: str | None = None,
                 input_range: float | None = None) -> None:
        ort = _ort()
        path = Path(model_path)
        if not path.is_file():
            raise InputError(f"model '{path}' does not exist; check the path")
        if path.stat().st_size == 0:
            raise ModelFormatError(f"model '{path}' is empty (0 bytes); export it again with fastnst export")
        self.path = path
        self._optimization = optimization or "all"
        self._options = session_options(threads, optimization)
        self.threads: int = self._options.intra_op_num_threads  # CPU threads in use (capped at the usable CPUs)
        self._requested = providers
        self._providers = resolve_providers(providers)
        self.session = self._session(str(path))
        super().__init__(path, self.session.get_modelmeta().custom_metadata_map)
        self._check_signature()
        self.input_range = self._input_range(input_range)
        self._tiling: Any = None  # (stats session, tile session, NormRewrite) once built; False: unsupported
        self._rewritten: Any = None  # session of the model rewritten at load (session_for); False: none
        self.legacy = bool({i.name for i in self.session.get_overridable_initializers()} & set(LEGACY_INPUTS))
        # fixed-size third-party models and old fastnst models with tiling inputs: rewrite when onnx is here
        if self.static_size or self.legacy:
            model = self._load_proto(required=False)
            if model is not None:
                changed = self._prepare(model, polyphase=False)
                if changed:
                    self.session = self._session(model.SerializeToString())
                    self._check_signature()
        self._check_providers()

    # -- loading ---------------------------------------------------------------------------------
    def _session(self, model: str | bytes, arena: bool = True) -> Any:
        ort = _ort()
        options = self._options
        if not arena:
            options = session_options(self._options.intra_op_num_threads, optimization=self._optimization)
            options.enable_cpu_mem_arena = False
        try:
            return ort.InferenceSession(model, options, providers=self._providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelFormatError(f"'{self.path}' is not an ONNX model onnxruntime can load ({first}); "
                                   f"pass an .onnx file written by fastnst export") from None

    def _check_providers(self) -> None:
        wanted = self._providers[0] if isinstance(self._providers[0], str) else self._providers[0][0]
        used = self.session.get_providers()
        if wanted != used[0]:
            explicit = self._requested is not None and not (
                isinstance(self._requested, str) and self._requested.lower() == "auto")
            if explicit:
                raise ConfigError(f"onnxruntime could not start {wanted} (missing libraries or device?); "
                                  f"use --provider cpu")
            log.info("note: %s did not start; running on %s", wanted, used[0])

    def _load_proto(self, required: bool = True) -> Any:
        try:
            import onnx
        except ModuleNotFoundError:
            if required:
                raise
            log.warning("note: the onnx package is not installed, so '%s' runs as stored (pip install onnx "
                        "lets fastnst lift fixed sizes and strip old tiling inputs)", self.path.name)
            return None
        return onnx.load(str(self.path))

    def _prepare(self, model: Any, polyphase: bool) -> bool:
        """Rewrite a loaded model in memory: old tiling inputs stripped, fixed sizes lifted, the exact
        rewrites of fastnst.runtime.rewrite (files exported before them) and, with ``polyphase``, polyphase
        up-sampling (exact for images padded to the stride). True when the graph changed."""
        changed = plain_graph(model, self.output_name) if self.legacy else False
        changed |= make_dynamic(model, self.input_name, nhwc=self.io_kind == "uint8")
        changed |= bool(speed_up(model))
        if polyphase and self.stride % 4 == 0:
            changed |= bool(polyphase_upsampling(model, sizes_double=META_ARCH in self.metadata))
        return changed

    def session_for(self, height: int, width: int) -> Any:
        """The onnxruntime session that runs a padded ``height`` x ``width`` image: from REWRITE_PIXELS up,
        one of the model rewritten at load (polyphase up-sampling, fastnst.runtime.rewrite; built on first use),
        else :attr:`session`. Both give the same result for such images (up to float rounding)."""
        if height * width < REWRITE_PIXELS or height % self.stride or width % self.stride:
            return self.session
        with self._lock:
            if self._rewritten is None:
                model = self._load_proto(required=False)
                self._rewritten = self._session(model.SerializeToString()) \
                    if model is not None and self._prepare(model, polyphase=True) else False
        return self._rewritten or self.session

    def _check_signature(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        expect = ("expected an image input of shape (N, 3, H, W) float or (N, H, W, 3) uint8 (optionally a "
                  f"'{STYLE_NAME}' input of blend weights) and an image output")
        images = [i for i in inputs if i.name != STYLE_NAME]
        styles = [i for i in inputs if i.name == STYLE_NAME]
        if len(images) != 1 or not outputs:
            names = ", ".join(f"'{i.name}'" for i in inputs) or "none"
            raise ModelFormatError(f"'{self.path}' is not an image-to-image style model: inputs {names}; {expect}")
        inp = images[0]
        out = next((o for o in outputs if o.name == OUTPUT_NAME), outputs[0])
        shape = list(inp.shape)
        if len(shape) == 4 and inp.type == "tensor(float)" and shape[1] == 3:
            self.io_kind = "float"
            hw = shape[2:4]
        elif len(shape) == 4 and inp.type == "tensor(uint8)" and shape[3] == 3:
            self.io_kind = "uint8"
            hw = shape[1:3]
        else:
            raise ModelFormatError(f"'{self.path}' is not an image-to-image style model: input '{inp.name}' "
                                   f"{inp.type} {shape}; {expect}")
        if len(out.shape) != 4:
            raise ModelFormatError(f"'{self.path}' is not an image-to-image style model: output '{out.name}' "
                                   f"has shape {list(out.shape)}; {expect}")
        self.input_name, self.output_name = inp.name, out.name
        self.static_size = tuple(hw) if all(isinstance(d, int) and d > 0 for d in hw) else None
        self.style_names: list[str] = []
        if styles:
            names: list[str] = []
            try:
                names = [str(n) for n in json.loads(self.metadata.get(META_STYLES, "[]"))]
            except (json.JSONDecodeError, TypeError):
                names = []
            count = styles[0].shape[1] if len(styles[0].shape) == 2 else None
            if not names and isinstance(count, int):
                names = [f"style{i}" for i in range(count)]
            if not names or (isinstance(count, int) and count != len(names)):
                raise ModelFormatError(f"'{self.path}' has a '{STYLE_NAME}' input but no usable style list "
                                       f"(metadata '{META_STYLES}'); export it again with fastnst export")
            self.style_names = names

    def _input_range(self, value: float | None) -> float:
        if value is None:
            value = self.metadata.get(META_INPUT_RANGE, 1)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"input range must be 1 or 255, got {value!r}") from None
        if value not in INPUT_RANGES:
            raise ConfigError(f"input range must be 1 (pixels in [0, 1]) or 255 (0..255), got {value:g}")
        if self.io_kind == "uint8" and value != 255 and self.metadata.get(META_INPUT_RANGE) is None:
            return 255.0  # uint8 models take 0..255 by definition
        return value

    @property
    def providers(self) -> list[str]:
        """The providers the session actually uses, in priority order."""
        return list(self.session.get_providers())

    def _style_feed(self, style: np.ndarray | None, n: int) -> dict[str, np.ndarray]:
        if not self.style_names:
            return {}
        if style is None:
            style = parse_style(None, self.style_names)
        return {STYLE_NAME: np.repeat(np.asarray(style, np.float32)[None], n, axis=0)}

    def run_batch(self, images: Sequence[np.ndarray], style: np.ndarray | None = None) -> list[np.ndarray]:
        """Stylise same-sized HxWx3 arrays in one onnxruntime call; a list of HxWx3 float32 results."""
        padded = [self._pad(im) for im in images]
        box = padded[0][1]
        self._check_size(*padded[0][0].shape[:2])
        feeds = {self.input_name: self._feed([p for p, _ in padded]), **self._style_feed(style, len(images))}
        y = self.session_for(*padded[0][0].shape[:2]).run([self.output_name], feeds)[0]
        return [self._back(y[i], box) for i in range(len(images))]

    # -- tiling ----------------------------------------------------------------------------------
    def _tiler(self) -> Any:
        """(stats session, tile session, NormRewrite), built on first use; False when the model cannot
        be rewritten (``tiling_note`` says why)."""
        with self._lock:
            if self._tiling is None:
                try:
                    try:
                        model = self._load_proto()
                    except ModuleNotFoundError as exc:
                        raise TilingUnsupported("the onnx package is not installed (pip install onnx)") from exc
                    plain_graph(model, self.output_name)  # whether or not legacy: the tiler needs it plain
                    self._prepare(model, polyphase=True)  # tiles and the statistics image are padded to the stride
                    rewrite = NormRewrite(model, self.output_name)
                    # no memory arena for the once-per-image statistics pass: its memory goes back
                    # before the tiles run (measured: bench_infer.py --only 8192)
                    stats = self._session(rewrite.stats_model.SerializeToString(), arena=False)
                    tile = self._session(rewrite.tile_model.SerializeToString())
                    rewrite.stats_model = rewrite.tile_model = None  # the sessions hold what they need
                    self._tiling = (stats, tile, rewrite)
                except TilingUnsupported as exc:
                    self.tiling_note = str(exc)
                    self._tiling = False
        return self._tiling

    def norm_stats(self, rgb: np.ndarray, style: np.ndarray | None = None) -> Any:
        """Instance-norm statistics of the network run on a whole HxWx3 image (for :meth:`run_tile`)."""
        stats_session, _, rewrite = self._tiler()
        padded, _ = self._pad(rgb)
        feeds = {self.input_name: self._feed([padded]), **self._style_feed(style, 1)}
        wanted = {i.name for i in stats_session.get_inputs()}  # pruning may drop `style` from the stats model
        feeds = {k: v for k, v in feeds.items() if k in wanted}
        return rewrite.tile_feeds(stats_session.run(rewrite.stats_outputs, feeds))

    def run_tile(self, rgb: np.ndarray, stats: Any, style: np.ndarray | None = None) -> np.ndarray:
        """Stylise an HxWx3 tile normalised with ``stats`` (from :meth:`norm_stats`); float32 HxWx3."""
        _, tile_session, _ = self._tiler()
        padded, box = self._pad(rgb)
        feeds = {self.input_name: self._feed([padded]), **self._style_feed(style, 1), **stats}
        return self._back(tile_session.run([self.output_name], feeds)[0][0], box)

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
        info = {"model": str(self.path), "size_bytes": self.path.stat().st_size, "io": self.io_kind,
                "input_range": int(self.input_range), "inputs": sig(self.session.get_inputs()),
                "optional_inputs": sig(self.session.get_overridable_initializers()),
                "outputs": sig(self.session.get_outputs()),
                "metadata": meta, "providers_available": available_providers(),
                "providers_used": self.providers}
        if self.style_names:
            info["styles"] = list(self.style_names)
        return info


def _check_options(strength: float, max_size: int | None, tile: int | None,
                   overlap: int | None) -> tuple[float, int | None, int | None, int | None]:
    try:
        strength = float(strength)
    except (TypeError, ValueError):
        raise ConfigError(f"strength must be a number between 0 and 1, got {strength!r}") from None
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"strength must be between 0 and 1, got {strength}")
    if max_size is not None and int(max_size) <= 0:
        raise ConfigError(f"max_size must be positive, got {max_size}")
    if tile is not None and int(tile) < 0:
        raise ConfigError(f"tile must be 0 (off) or a positive size in pixels, got {tile}")
    if overlap is not None and int(overlap) < 0:
        raise ConfigError(f"overlap must be 0 or a positive number of pixels, got {overlap}")
    return (strength, None if max_size is None else int(max_size), None if tile is None else int(tile),
            None if overlap is None else int(overlap))


def _fit(w: int, h: int, pixels: int) -> tuple[int, int]:
    """(width, height) scaled down to at most ``pixels`` pixels, aspect kept."""
    scale = min(1.0, (pixels / float(w * h)) ** 0.5)
    return max(1, int(w * scale)), max(1, int(h * scale))


def _finish(src: np.ndarray, styled: np.ndarray | None, strength: float, preserve_color: bool) -> np.ndarray:
    """Colour transfer and strength blend of stylised rows with the original rows; float32 (unclipped)."""
    if styled is None or strength == 0.0:
        return to_float(src).copy()
    if preserve_color:
        styled = preserve_colors(src, styled)
    if strength < 1.0:
        orig = to_float(src) * np.float32(1.0 - strength)
        styled = styled * np.float32(strength)
        styled += orig
    return styled


_CACHE: dict[tuple[str, float, str], Stylizer] = {}
_CACHE_SIZE = 4  # chosen: a few models in an app; each holds its weights and an onnxruntime session


def stylize(image: ImageSource, model: str | os.PathLike | Stylizer, **options: Any) -> Any:
    """One call: stylise ``image`` with ``model`` (a path or a Stylizer) and return it in the kind it
    was given (see :meth:`Stylizer.stylize`). ``providers``, ``threads`` and ``input_range`` go to the
    Stylizer (kept for the next call with the same model); the other options to ``stylize``."""
    if isinstance(model, Stylizer):
        return model.stylize(image, **options)
    load = {k: options.pop(k) for k in ("providers", "threads", "input_range", "optimization") if k in options}
    path = Path(model)
    key = (str(path.resolve()), path.stat().st_mtime if path.exists() else 0.0, repr(sorted(load.items())))
    stylizer = _CACHE.get(key)
    if stylizer is None:
        stylizer = Stylizer(path, **load)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = stylizer
    return stylizer.stylize(image, **options)


__all__ = ["Stylizer", "stylize", "available_providers", "resolve_providers", "parse_provider", "parse_style",
           "session_options", "check_threads", "usable_cpus", "StylizerBase", "AUTO_TILE_PIXELS",
           "DEFAULT_TILE", "AUTO_ORDER", "PROVIDER_ALIASES"]
