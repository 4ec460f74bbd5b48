"""Image to image style networks: what every stylizer shares, and the onnxruntime one. Torch-free.

:class:`StylizerBase` holds what does not depend on how the network runs: the per-call options checked once
(:class:`Settings`), input kinds and same-type return (:mod:`fastnst.runtime.roundtrip`), padding to the
network's stride, batches of same-sized images, the tile policy (automatic above :data:`AUTO_TILE_PIXELS`,
every tile normalised with whole-image instance-norm statistics, :mod:`fastnst.runtime.tiling`) and the
strength/colour finish (:func:`fastnst.image.finish`). :class:`Stylizer` runs an ``.onnx`` file on the one
engine object, :class:`fastnst.runtime.session.Model`; :class:`fastnst.training.torch_stylizer.TorchStylizer`
runs a weights file with torch behind the same interface.

Images of any size come back at exactly their input size: the network input is reflection-padded to the
network's stride and cropped back. It changes no global state of the host app (Pillow's
``Image.MAX_IMAGE_PIXELS`` included).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image

from fastnst import checks
from fastnst.constants import BUILTIN_DEFAULT_STYLE, BUILTIN_MODEL
from fastnst.contract import (INPUT_RANGES, LEGACY_INPUTS, META_ARCH, META_INPUT_RANGE, META_STYLES, OUTPUT_NAME,
                              STYLE_NAME, geometry, padded_size)
from fastnst.errors import ConfigError, InputError, ModelFormatError, TilingUnsupported
from fastnst.image import (ImageSource, finish, fit_long_side, from_nchw, resize_array, to_float, to_nchw,
                           to_uint8)
from fastnst.runtime.blend import StyleSpec, parse_style, style_feed
from fastnst.runtime.providers import ProviderSpec, short_name
from fastnst.runtime.rewrite import REWRITES, complete, speed_up
from fastnst.runtime.roundtrip import Canvas, Item, give_back, read
from fastnst.runtime.session import Model
from fastnst.runtime.tiling import (MIN_TILE, NormRewrite, ProgressFn, TileGrid, make_dynamic, plain_graph,
                                    reporting)

log = logging.getLogger(__name__)

# A file that lacks some exact rewrites of fastnst.runtime.rewrite (exported before them, or by another tool) is
# rewritten the first time it runs an image of this many (padded) pixels; the rewritten copy then runs every
# size, now and in later processes (kept in the cache folder: fastnst.runtime.session.Model.cached). Files
# written by fastnst export carry the rewrites and never pay this. Chosen: building the copy costs an onnx
# import and a session (about 1 s of CPU time on the 2-core EPYC); below this size one image does not repay it.
REWRITE_PIXELS = 768 * 768
# The cache key of that copy: the rewrites it holds (a new rewrite makes a new copy).
REWRITTEN = "rewritten-" + "+".join(REWRITES)
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


@dataclass(frozen=True, eq=False)
class Settings:
    """How images are stylised, checked: the per-call options of :meth:`StylizerBase.stylize`.

    Made by :meth:`StylizerBase.settings` (which checks them) or by a caller that checked them itself (the
    command line's options); the stylizer trusts them. ``style``: blend weights for this model
    (:func:`fastnst.runtime.blend.parse_style`; None: the first style).
    """

    strength: float = 1.0
    preserve_color: bool = False
    max_size: int | None = None
    tile: int | None = None
    overlap: int | None = None
    style: np.ndarray | None = None


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
        self.default_style: StyleSpec = None  # the style of a multi-style model when none is asked for (None: first)
        self.tiling_note = ""

    @property
    def providers(self) -> list[str]:
        """Where the network runs, in priority order."""
        raise NotImplementedError

    @property
    def device(self) -> str:
        """A short name of the provider the network runs on: 'cpu', 'cuda', 'tensorrt', ..."""
        return short_name(self.providers[0])

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

    def _tile_runner(self, src: np.ndarray, style: np.ndarray | None) -> Any:
        """The function each tile goes through: whole-image statistics when the rewrite works."""
        if self._tiler():
            h, w = src.shape[:2]
            if h * w <= STATS_PIXELS:
                small = src
            elif src.dtype == np.uint8:
                small = resize_array(src, _fit(w, h, STATS_PIXELS), Image.Resampling.BOX)
            else:
                small = resize_array(src, fit_long_side((w, h), max(_fit(w, h, STATS_PIXELS))))
            stats = self.norm_stats(small, style)
            del small
            return lambda t: self.run_tile(t, stats, style)
        if "no InstanceNormalization" in self.tiling_note:  # nothing to keep consistent: tiles run as they are
            return lambda t: self.run(t, style)
        raise TilingUnsupported(self.tiling_note)

    # -- the public entry points: options checked here, once -------------------------------------
    def settings(self, strength: float = 1.0, preserve_color: bool = False, max_size: int | None = None,
                 tile: int | None = None, overlap: int | None = None, style: StyleSpec = None) -> Settings:
        """The options of :meth:`stylize`, checked, as :class:`Settings` (the style parsed for this model).
        Raises ConfigError."""
        return Settings(strength=checks.number("strength", strength, 0.0, 1.0), preserve_color=bool(preserve_color),
                        max_size=checks.side("max_size", max_size, allow_none=True),
                        tile=checks.tile(tile, minimum=MIN_TILE, name="tile"),
                        overlap=checks.whole("overlap", overlap, minimum=0, allow_none=True),
                        style=parse_style(self.default_style if style is None else style, self.style_names))

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
        0 never, N (at least 16) uses N-pixel tiles (``overlap`` pixels of overlap). ``style``: for
        multi-style models, see :func:`parse_style`. Raises InputError for unreadable images, ConfigError
        for bad options.
        """
        return self.render(image, self.settings(strength, preserve_color, max_size, tile, overlap, style))

    def stylize_many(self, images: Iterable[ImageSource], batch_size: int = 1, **options: Any) -> list[Any]:
        """:meth:`stylize` for several images; a list in the same order. Consecutive same-sized,
        untiled images run ``batch_size`` at a time in one network call."""
        return list(self.stylize_iter(images, batch_size, **options))

    def stylize_iter(self, images: Iterable[ImageSource], batch_size: int = 1, **options: Any) -> Iterator[Any]:
        """Stylise a stream of images (e.g. video frames), yielding each result as soon as its batch
        is done; at most ``batch_size`` inputs are held at a time. Options as in :meth:`stylize`."""
        batch_size = checks.whole("batch_size", batch_size, maximum=MAX_BATCH)
        return self.render_iter(images, self.settings(**options), batch_size)

    def render(self, image: ImageSource, settings: Settings, progress: ProgressFn | None = None) -> Any:
        """:meth:`stylize` with options already checked (:class:`Settings`); a tiled image reports (tiles done,
        tiles, 'tiles') to ``progress`` after each tile."""
        return next(self.render_iter([image], settings, progress=progress))

    def render_iter(self, images: Iterable[ImageSource], settings: Settings, batch_size: int = 1,
                    progress: ProgressFn | None = None) -> Iterator[Any]:
        """:meth:`stylize_iter` with options already checked (:class:`Settings`, ``batch_size``)."""
        pending: list[Item] = []
        for image in images:
            pending.append(read(image, settings.max_size))
            if len(pending) >= batch_size:
                yield from self._render_batch(pending, settings, progress)
                pending = []
        if pending:
            yield from self._render_batch(pending, settings, progress)

    # -- rendering -------------------------------------------------------------------------------
    def _render_batch(self, items: list[Item], s: Settings, progress: ProgressFn | None = None) -> Iterator[Any]:
        styled: list[np.ndarray | None] = [None] * len(items)
        if s.strength > 0:
            plain = [i for i, it in enumerate(items) if not self._tile_size(it.src, s.tile)]
            groups: dict[tuple[int, ...], list[int]] = {}
            for i in plain:
                groups.setdefault(items[i].src.shape + (items[i].src.dtype.itemsize,), []).append(i)
            for idx in groups.values():
                for i, out in zip(idx, self.run_batch([items[i].src for i in idx], s.style)):
                    styled[i] = out
        for i, item in enumerate(items):
            yield self._render(item, styled[i], s, progress)
            items[i] = styled[i] = None  # type: ignore[call-overload]  # free as we go

    def _tile_size(self, src: np.ndarray, tile: int | None) -> int:
        h, w = src.shape[:2]
        size = (DEFAULT_TILE if h * w > AUTO_TILE_PIXELS else 0) if tile is None else tile
        size = size if size and (w > size or h > size) else 0
        if not size and h * w > AUTO_TILE_PIXELS:  # one piece: the memory estimate before the allocation
            checks.memory(checks.FORWARD_BYTES_PER_PIXEL * h * w, f"stylising {w}x{h} in one piece",
                          "leave --tile out (automatic tiling) or pass --tile 1024")
        return size

    def _render(self, item: Item, styled: np.ndarray | None, s: Settings, progress: ProgressFn | None = None) -> Any:
        src = item.src
        h, w = src.shape[:2]
        tile_size = self._tile_size(src, s.tile) if s.strength > 0 else 0
        if tile_size:
            try:
                run = self._tile_runner(src, s.style)
            except TilingUnsupported as exc:
                if s.tile is not None:
                    raise ConfigError(f"cannot tile '{self.path.name}' with whole-image statistics: {exc}; "
                                      f"pass --tile 0 to run it in one piece") from None
                log.warning("note: running untiled: %s", exc)
                tile_size = 0
        if tile_size:
            canvas = Canvas(item, w, h)
            grid = TileGrid(h, w, tile_size, s.overlap, self.stride)
            for y0, band in grid.bands(src, reporting(run, len(grid), progress)):
                canvas.put(y0, finish(src[y0:y0 + band.shape[0]], band, s.strength, s.preserve_color))
                del band
            return canvas.give_back()
        if styled is None and s.strength > 0:
            styled = self.run(src, s.style)
        rgb = to_float(src) if styled is None else finish(src, styled, s.strength, s.preserve_color)
        return give_back(rgb, item)

    def describe(self) -> dict[str, Any]:
        """Metadata, signature and providers as a JSON-able dict (for ``fastnst info``)."""
        raise NotImplementedError


class Stylizer(StylizerBase):
    """An exported style network run by onnxruntime.

    ``model_path``: an ``.onnx`` file written by ``fastnst export`` (float or uint8 convention, one
    or several styles), or a third-party model with one image input (N, 3, H, W) and one image
    output, e.g. the ONNX model zoo's fast_neural_style models (``input_range=255``); or such a file
    already opened as a :class:`fastnst.runtime.session.Model`. None (the default): the built-in styles'
    model shipped with fastnst (``fastnst.BUILTIN_MODEL``; ``style="mosaic"`` picks one of its styles,
    the default is ``pointillist``).
    ``providers``: 'auto' (default: TensorRT, CUDA, DirectML, CoreML, OpenVINO, whichever is
    installed first, then CPU), a name, a ``(name, options)`` pair or a list of them (see
    :func:`fastnst.runtime.providers.resolve_providers`). ``threads``: intra-op CPU threads (default:
    physical cores; capped at the CPUs this process may use). ``optimization``: onnxruntime graph
    optimisation level ('disable', 'basic', 'extended', 'all'; default 'all'). One session runs every
    image size; a file that lacks some exact rewrites of :mod:`fastnst.runtime.rewrite` is rewritten once
    (:meth:`session_for`).
    ``input_range``: 1 when the model takes pixels in [0, 1], 255 for 0..255 (default: the model's
    ``fastnst_input_range`` metadata, else 1).
    Raises InputError for a missing file, ModelFormatError for a file that is not ONNX, not an
    image-to-image model or a super-resolution model, ConfigError for unavailable providers or bad options.
    """

    def __init__(self, model_path: str | os.PathLike | Model | None = None,
                 providers: ProviderSpec | Sequence[ProviderSpec] | None = None, threads: int | None = None,
                 optimization: str | None = None, input_range: float | None = None) -> None:
        if model_path is None:
            model_path = builtin_model()
        if isinstance(model_path, Model):  # an opened file (its providers and threads are already chosen)
            self.model = model_path
            self.model.expect("style")
        else:
            self.model = Model(model_path, providers, threads, optimization, task="style")
        super().__init__(self.model.path, self.model.metadata)
        self._check_signature()
        self.input_range = self._input_range(input_range)
        if self.style_names and self.path.resolve() == BUILTIN_MODEL.resolve():
            self.default_style = BUILTIN_DEFAULT_STYLE
        self.legacy = bool({i.name for i in self.session.get_overridable_initializers()} & set(LEGACY_INPUTS))
        # a file without every exact rewrite: its rewritten copy from the cache folder when there is one
        self._rewrite = bool(self.static_size or self.legacy or not complete(self.metadata))
        if self._rewrite and self.model.cached(REWRITTEN):
            self._rewrite = False
            self._check_signature()
        # fixed-size third-party models and old fastnst models with tiling inputs: rewrite now when onnx is here
        if self._rewrite and (self.static_size or self.legacy):
            self._rewrite_now()

    @property
    def session(self) -> Any:
        """The onnxruntime session of the model (as stored, or with fixed sizes / old inputs lifted)."""
        return self.model.session

    @property
    def threads(self) -> int:
        """CPU threads in use (capped at the CPUs this process may use)."""
        return self.model.threads

    @property
    def providers(self) -> list[str]:
        """The providers the session actually uses, in priority order."""
        return self.model.providers

    # -- rewritten graphs --------------------------------------------------------------------------
    def _proto(self, required: bool = True) -> Any:
        try:
            return self.model.proto()
        except ModuleNotFoundError:
            if required:
                raise
            log.warning("note: the onnx package is not installed, so '%s' runs as stored (pip install onnx "
                        "lets fastnst lift fixed sizes and strip old tiling inputs)", self.path.name)
            return None

    def _prepare(self, model: Any) -> bool:
        """Rewrite a loaded model in memory: old tiling inputs stripped, fixed sizes lifted, and the exact
        rewrites of fastnst.runtime.rewrite the file lacks (files exported before them). True when the graph
        changed."""
        changed = plain_graph(model, self.output_name) if self.legacy else False
        changed |= make_dynamic(model, self.input_name, nhwc=self.io_kind == "uint8")
        changed |= bool(speed_up(model, sizes_double=META_ARCH in self.metadata))
        return changed

    def _rewrite_now(self) -> None:
        """Put the rewritten copy of the file in place of the stored graph (and keep it in the cache folder);
        without the onnx package the file runs as stored."""
        with self.model.lock:
            if not self._rewrite:
                return
            model = self._proto(required=False)
            if model is not None and self._prepare(model):
                self.model.replace(model, cache=REWRITTEN)
                self._check_signature()
            self._rewrite = False

    def session_for(self, height: int, width: int) -> Any:
        """The onnxruntime session that runs a padded ``height`` x ``width`` image: :attr:`session`. A file that
        lacks some exact rewrites is rewritten first when the image has REWRITE_PIXELS or more (see there)."""
        if self._rewrite and height * width >= REWRITE_PIXELS:
            self._rewrite_now()
        return self.session

    # -- the signature -----------------------------------------------------------------------------
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
        self.style_names = []
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

    # -- running -----------------------------------------------------------------------------------
    def _feeds(self, images: Sequence[np.ndarray], style: np.ndarray | None) -> dict[str, np.ndarray]:
        feeds = {self.input_name: self._feed(images)}
        weights = style_feed(style, self.style_names, len(images))
        if weights is not None:
            feeds[STYLE_NAME] = weights
        return feeds

    def run_batch(self, images: Sequence[np.ndarray], style: np.ndarray | None = None) -> list[np.ndarray]:
        """Stylise same-sized HxWx3 arrays in one onnxruntime call; a list of HxWx3 float32 results."""
        padded = [self._pad(im) for im in images]
        box = padded[0][1]
        self._check_size(*padded[0][0].shape[:2])
        feeds = self._feeds([p for p, _ in padded], style)
        y = self.session_for(*padded[0][0].shape[:2]).run([self.output_name], feeds)[0]
        return [self._back(y[i], box) for i in range(len(images))]

    # -- tiling ------------------------------------------------------------------------------------
    def _tiler(self) -> Any:
        """(stats session, tile session, NormRewrite), built on first use; False when the model cannot
        be rewritten (``tiling_note`` says why)."""
        return self.model.variant("tiling", self._tiling)

    def _tiling(self) -> Any:
        try:
            try:
                model = self._proto()
            except ModuleNotFoundError as exc:
                raise TilingUnsupported("the onnx package is not installed (pip install onnx)") from exc
            plain_graph(model, self.output_name)  # whether or not legacy: the tiler needs it plain
            self._prepare(model)
            rewrite = NormRewrite(model, self.output_name)
            # no memory arena for the once-per-image statistics pass: its memory goes back
            # before the tiles run (measured: bench_infer.py --only 8192)
            stats = self.model.open(rewrite.stats_model.SerializeToString(), arena=False)
            tile = self.model.open(rewrite.tile_model.SerializeToString())
            rewrite.stats_model = rewrite.tile_model = None  # the sessions hold what they need
            return stats, tile, rewrite
        except TilingUnsupported as exc:
            self.tiling_note = str(exc)
            return False

    def norm_stats(self, rgb: np.ndarray, style: np.ndarray | None = None) -> Any:
        """Instance-norm statistics of the network run on a whole HxWx3 image (for :meth:`run_tile`)."""
        stats_session, _, rewrite = self._tiler()
        padded, _ = self._pad(rgb)
        feeds = self._feeds([padded], style)
        wanted = {i.name for i in stats_session.get_inputs()}  # pruning may drop `style` from the stats model
        feeds = {k: v for k, v in feeds.items() if k in wanted}
        return rewrite.tile_feeds(stats_session.run(rewrite.stats_outputs, feeds))

    def run_tile(self, rgb: np.ndarray, stats: Any, style: np.ndarray | None = None) -> np.ndarray:
        """Stylise an HxWx3 tile normalised with ``stats`` (from :meth:`norm_stats`); float32 HxWx3."""
        _, tile_session, _ = self._tiler()
        padded, box = self._pad(rgb)
        feeds = {**self._feeds([padded], style), **stats}
        return self._back(tile_session.run([self.output_name], feeds)[0][0], box)

    def describe(self) -> dict[str, Any]:
        """Metadata, signature and providers as a JSON-able dict (for ``fastnst info``)."""
        info = self.model.describe(io=self.io_kind, input_range=int(self.input_range))
        if self.style_names:
            info["styles"] = list(self.style_names)
        return info


def builtin_model() -> Path:
    """The built-in styles' model shipped with fastnst (``fastnst.BUILTIN_MODEL``); InputError when the package
    was installed without it."""
    if not BUILTIN_MODEL.is_file():
        raise InputError(f"the built-in style model is missing ({BUILTIN_MODEL}); reinstall fastnst, "
                         f"or pass the path of a trained model")
    return BUILTIN_MODEL


def _fit(w: int, h: int, pixels: int) -> tuple[int, int]:
    """(width, height) scaled down to at most ``pixels`` pixels, aspect kept."""
    scale = min(1.0, (pixels / float(w * h)) ** 0.5)
    return max(1, int(w * scale)), max(1, int(h * scale))


_CACHE: dict[tuple[str, float, str], Stylizer] = {}
_CACHE_SIZE = 4  # chosen: a few models in an app; each holds its weights and an onnxruntime session


def stylize(image: ImageSource, model: str | os.PathLike | Stylizer | None = None, **options: Any) -> Any:
    """One call: stylise ``image`` with ``model`` (a path or a Stylizer; None: the built-in styles, see
    ``fastnst styles``) and return it in the kind it was given (see :meth:`Stylizer.stylize`).

        fastnst.stylize("photo.jpg").save("out.jpg")                      # the default built-in style
        fastnst.stylize(array, style="pointillist")                       # another built-in style
        fastnst.stylize("photo.jpg", "wave.onnx", strength=0.8)           # a trained model

    ``providers``, ``threads``, ``input_range`` and ``optimization`` go to the Stylizer (kept for the next call
    with the same model); the other options (``style``, ``strength``, ...) to :meth:`Stylizer.stylize`."""
    if isinstance(model, Stylizer):
        return model.stylize(image, **options)
    load = {k: options.pop(k) for k in ("providers", "threads", "input_range", "optimization") if k in options}
    path = builtin_model() if model is None else Path(model)
    key = (str(path.resolve()), path.stat().st_mtime if path.exists() else 0.0, repr(sorted(load.items())))
    stylizer = _CACHE.get(key)
    if stylizer is None:
        stylizer = Stylizer(path, **load)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = stylizer
    return stylizer.stylize(image, **options)


__all__ = ["Settings", "StylizerBase", "Stylizer", "stylize", "builtin_model", "REWRITE_PIXELS", "REWRITTEN",
           "AUTO_TILE_PIXELS", "DEFAULT_TILE",
           "STATS_PIXELS", "MAX_BATCH"]
