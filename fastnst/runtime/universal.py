"""Universal style transfer with onnxruntime alone: any painting onto any photo, any size (Li et al. 2017).

    from fastnst.runtime.universal import UniversalStylizer
    u = UniversalStylizer()                                  # the shipped model (DEFAULT_MODEL)
    out = u.stylize("photo.jpg", style="painting.jpg")       # a PIL image, the photo's size
    starry = u.encode_style("starry.jpg")                    # encode a style once, use it for many photos
    outs = [u.stylize(p, style=starry, strength=0.8) for p in photos]
    u.stylize(photo, style=[("a.jpg", 0.6), ("b.jpg", 0.4)])  # a blend of styles
    u.stylize(photo, style="a.jpg", mask=mask_image)         # the style where the mask is white

The model file is one plain ONNX graph (``fastnst export-universal``; the Newton-Schulz version of the
transform, for any runtime). This runtime runs the same weights stage by stage instead: from the file's
initialisers it builds, on first use, one small graph per stage (the encoder to relu4_1; each decoder followed
by the encoder to the next level; the last decoder), laid out by the plans of :mod:`fastnst.contract`, and does
the whitening and colouring between the stages exactly, in float64 (:mod:`fastnst.runtime.wct`). That is what
makes the rest possible:

- **any size**: the transforms of every level are computed on a copy of at most STATS_PIXELS (1 Mpx), then the
  image runs through all stages tile by tile with those transforms (overlap, feathered blending; the one tiler
  of :mod:`fastnst.runtime.tiling`); below AUTO_TILE_PIXELS an image runs in one piece with its own statistics;
- **a style encoded once** (:meth:`UniversalStylizer.encode_style`, also cached by file and size), blends of
  styles (interpolation of the transformed features, as in the paper), a mask for spatial control;
- **video**: ``smoothing`` averages the content statistics over frames so the transform does not flicker.

Torch-free: numpy, Pillow, onnxruntime and onnx (to read the weights and build the stage graphs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from fastnst import checks
from fastnst.constants import WCT_RIDGE, WCT_STYLE_RIDGE
from fastnst.contract import (LEVEL_LAYERS, META_ENCODER, META_UNIVERSAL, OPSET, UNIVERSAL_LEVELS, UNIVERSAL_TASK,
                              decoder_plan, encoder_plan)
from fastnst.errors import ConfigError, InputError, ModelFormatError
from fastnst.image import ImageSource, fit_long_side, read_fitted, resize_array, to_float, to_nchw
from fastnst.runtime.providers import ProviderSpec
from fastnst.runtime.roundtrip import Canvas, Item, give_back, read
from fastnst.runtime.session import Model
from fastnst.runtime.stylizer import AUTO_TILE_PIXELS, STATS_PIXELS, Settings, StylizerBase
from fastnst.runtime.tiling import ProgressFn, TileGrid, reporting
from fastnst.runtime.wct import Affine, FeatureStats, blend, colouring, transform

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "styles" / "models" / "universal.onnx"
DEFAULT_STYLE_SIZE = 512  # chosen: the style image's long side (sets the stroke scale), as the paper's examples
MIN_STYLE_SIZE, MAX_STYLE_SIZE = 16, 4096  # relu4_1 of 16 px is 2x2; beyond 4096 px a style only costs time
DEFAULT_STRENGTH = 1.0  # the paper's full transform; lower keeps more of the photo (α, in feature space)
STYLE_CACHE = 16  # chosen: encoded styles kept per stylizer (each ~1 MB: four covariances and colourings)
UNIVERSAL_TILE = 768  # chosen: the deepest stage holds ~10 feature maps of 64 channels at full size per tile


@dataclass
class StyleFeatures:
    """A style image encoded once: per level, the statistics of its features and their colouring matrix."""

    name: str
    size: tuple[int, int]
    stats: dict[int, FeatureStats]
    colour: dict[int, np.ndarray] = field(repr=False)


@dataclass(eq=False)
class UniversalChoice:
    """What :meth:`UniversalStylizer.settings` checked: styles and their weights, α, mask and video smoothing."""

    styles: list[StyleFeatures]
    weights: list[float]
    strength: float
    mask: np.ndarray | None = None  # HxW float32 in [0, 1]: 1 takes the style, 0 keeps the photo (or `outside`)
    outside: list[StyleFeatures] | None = None
    smoothing: float = 0.0
    levels: tuple[int, ...] = UNIVERSAL_LEVELS


StyleArg = Union[str, os.PathLike, ImageSource, StyleFeatures, Sequence[Any]]


# ------------------------------------------------------------------------------------------------ stage graphs

def _stage_model(steps: list[tuple[str, Any]], inputs: str, outputs: list[tuple[str, str]], weights: dict[str, Any],
                 channels: int) -> bytes:
    """A plain ONNX model of ``steps`` (kind, weight prefix or None) from input ``inputs`` (N, channels, H, W);
    ``outputs``: (tensor after step k, output name) pairs, given as (str(k), name)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, used = [], [], set()
    x = inputs
    reflect = helper.make_tensor("pad_reflect_1", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1])
    scales = helper.make_tensor("up_scales_2", TensorProto.FLOAT, [4], [1.0, 1.0, 2.0, 2.0])
    inits += [reflect, scales]
    out_of = {}
    for k, (kind, prefix) in enumerate(steps):
        y = f"t{k}"
        if kind in ("normalize",):
            for name in ("encoder.mean", "encoder.std"):
                if name not in used:
                    inits.append(numpy_helper.from_array(weights[name], name))
                    used.add(name)
            nodes += [helper.make_node("Sub", [x, "encoder.mean"], [f"{y}s"]),
                      helper.make_node("Div", [f"{y}s", "encoder.std"], [y])]
        elif kind in ("conv", "conv_pad"):
            for suffix in ("weight", "bias"):
                name = f"{prefix}.{suffix}"
                if name not in used:
                    inits.append(numpy_helper.from_array(weights[name], name))
                    used.add(name)
            pads = [1, 1, 1, 1] if kind == "conv_pad" else [0, 0, 0, 0]
            nodes.append(helper.make_node("Conv", [x, f"{prefix}.weight", f"{prefix}.bias"], [y], kernel_shape=[3, 3],
                                          pads=pads))
        elif kind == "relu":
            nodes.append(helper.make_node("Relu", [x], [y]))
        elif kind == "pool":
            nodes.append(helper.make_node("MaxPool", [x], [y], kernel_shape=[2, 2], strides=[2, 2]))
        elif kind == "pad":
            nodes.append(helper.make_node("Pad", [x, "pad_reflect_1"], [y], mode="reflect"))
        elif kind == "up":  # torch's Upsample(scale_factor=2, mode="nearest")
            nodes.append(helper.make_node("Resize", [x, "", "up_scales_2"], [y], mode="nearest",
                                          coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
        else:  # pragma: no cover - the plans name no other kind
            raise ModelFormatError(f"unknown stage step {kind}")
        out_of[str(k)] = y
        x = y
    graph_outputs = []
    for k, name in outputs:
        nodes.append(helper.make_node("Identity", [out_of[k]], [name]))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "stage", [helper.make_tensor_value_info(
        inputs, TensorProto.FLOAT, ["n", channels, "h", "w"])], graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fastnst")
    return model.SerializeToString()


def _encoder_steps(arch: str, layer: str) -> list[tuple[str, Any]]:
    steps: list[tuple[str, Any]] = [("normalize", None)]
    for i, step in enumerate(encoder_plan(arch, layer)):
        steps.append(("conv_pad", f"encoder.features.{i}") if step[0] == "conv" else (step[0], None))
    return steps


def _decoder_steps(level: int, config: dict[str, Any]) -> list[tuple[str, Any]]:
    plan = decoder_plan(level, config["arch"], float(config["width"]))
    return [("conv", f"decoders.{level}.net.{j}") if step[0] == "conv" else (step[0], None)
            for j, step in enumerate(plan)]


STAGE_CACHE = "universal-stage-v1"  # cache key prefix of the stage models (bump when _stage_model changes)


class Stages:
    """The stage sessions of a universal model, built from its weights on first use (onnx needed) and kept in
    the cache folder (:meth:`fastnst.runtime.session.Model.cache_path`, keyed by the file's content)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        try:
            info = json.loads(model.metadata[META_UNIVERSAL])
            self.encoder = json.loads(model.metadata[META_ENCODER])
            self.levels = tuple(int(v) for v in info["levels"])
            self.decoders = {int(k): v for k, v in info["decoders"].items()}
            self.ridge = float(info.get("ridge", WCT_RIDGE))
            self.style_ridge = float(info.get("style_ridge", WCT_STYLE_RIDGE))
            self.arch = str(self.encoder.get("arch", "vgg16"))
            if set(self.levels) - set(self.decoders) or not self.levels:
                raise ValueError("a level without a decoder")
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelFormatError(f"'{model.path}' says it is a universal model but its metadata are unusable "
                                   f"({exc}); export it again with fastnst export-universal") from None
        self._lock = threading.Lock()
        self._sessions: dict[str, Any] | None = None
        from fastnst.runtime.providers import ort

        self._run_options = ort().RunOptions()
        self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def channels(self, level: int) -> int:
        return [s for s in encoder_plan(self.arch, LEVEL_LAYERS[level]) if s[0] == "conv"][-1][2]

    def sessions(self) -> dict[str, Any]:
        """{'style': all levels of a style image, 'first': image -> features of the first level, 'L': decoder of
        level L then the encoder of the next level (the last: the image)} (built once)."""
        with self._lock:
            if self._sessions is None:
                self._sessions = self._build()
            return self._sessions

    def run(self, name: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run stage ``name``; its memory arena gives back what the run took when it ends (six sessions each
        keeping its own peak held 5 GiB after a 1024² image; measured at 512²: 897 instead of 1681 MiB at the same
        speed; no arena at all: 720 MiB but 1.3x slower)."""
        return self.sessions()[name].run(None, feeds, self._run_options)

    def _build(self) -> dict[str, Any]:
        """The stage sessions, from the stage models kept in the cache folder when a run before built them (no
        onnx import, no graph building: the second run of a process starts faster), else built and kept."""
        keys = ["style", "first", *map(str, self.levels)]
        paths = {k: self.model.cache_path(f"{STAGE_CACHE}-{k}") for k in keys}
        if all(p.is_file() for p in paths.values()):
            try:
                return {k: self.model.open(str(p)) for k, p in paths.items()}
            except ModelFormatError:  # a damaged copy: build them again
                log.debug("cached stage models of %s do not load; building them again", self.model.path)
        out = {}
        for key, data in self._stage_models().items():
            out[key] = self.model.open(data)
            self.model.store(f"{STAGE_CACHE}-{key}", data)
        return out

    def _stage_models(self) -> dict[str, bytes]:
        """The serialised stage models, built from the file's weights (needs onnx)."""
        from onnx import numpy_helper

        proto = self.model.proto()
        weights = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in proto.graph.initializer}
        _alias_shared_weights(proto.graph, weights)
        del proto
        missing = [n for n in ("encoder.mean", "encoder.std") if n not in weights]
        if missing:
            raise ModelFormatError(f"'{self.model.path}' lacks the weights '{missing[0]}'; export it again")
        deepest = LEVEL_LAYERS[max(self.levels)]
        enc_all = _encoder_steps(self.arch, deepest)
        names = ["normalize"] + [s for s in _layer_names(self.arch, deepest)]
        style_outputs = [(str(names.index(LEVEL_LAYERS[lv])), f"level{lv}") for lv in self.levels]
        out: dict[str, bytes] = {}
        try:
            out["style"] = _stage_model(enc_all, "image", style_outputs, weights, 3)
            first = self.levels[0]
            enc = _encoder_steps(self.arch, LEVEL_LAYERS[first])
            out["first"] = _stage_model(enc, "image", [(str(len(enc) - 1), "features")], weights, 3)
            for i, level in enumerate(self.levels):
                steps = _decoder_steps(level, self.decoders[level])
                if i + 1 < len(self.levels):
                    steps += _encoder_steps(self.arch, LEVEL_LAYERS[self.levels[i + 1]])
                out[str(level)] = _stage_model(steps, "features", [(str(len(steps) - 1), "out")], weights,
                                               self.channels(level))
        except KeyError as exc:
            raise ModelFormatError(f"'{self.model.path}' lacks the weights {exc}; export it again with fastnst "
                                   f"export-universal") from None
        return out


def _alias_shared_weights(graph: Any, weights: dict[str, np.ndarray]) -> None:
    """Name every convolution's weight and bias as its module does. The exporter stores equal constants once
    (e.g. two all-zero biases of a fresh network share one initialiser and an Identity node), so a name can be
    missing; each Conv node still says which initialiser, through Cast and Identity nodes, it reads."""
    source = {n.output[0]: n.input[0] for n in graph.node if n.op_type in ("Cast", "Identity")}

    def origin(name: str) -> str:
        for _ in range(8):
            if name in weights or name not in source:
                break
            name = source[name]
        return name

    for node in graph.node:
        if node.op_type != "Conv" or len(node.input) < 3:
            continue
        weight, bias = (origin(name) for name in node.input[1:3])
        if weight.endswith(".weight") and bias in weights:
            weights.setdefault(weight[:-len("weight")] + "bias", weights[bias])


def _layer_names(arch: str, layer: str) -> list[str]:
    from fastnst.constants import VGG_LAYERS

    return VGG_LAYERS[arch][:VGG_LAYERS[arch].index(layer) + 1]


# ------------------------------------------------------------------------------------------------ the stylizer

class UniversalStylizer(StylizerBase):
    """Any style image onto any image, with a universal model run by onnxruntime (see the module).

    ``model_path``: a universal ``.onnx`` file (default: the shipped :data:`DEFAULT_MODEL`) or an opened
    :class:`~fastnst.runtime.session.Model`; ``providers``, ``threads``, ``optimization`` as for
    :class:`fastnst.runtime.Stylizer`. Raises InputError / ModelFormatError for a missing or unsuitable file.
    """

    def __init__(self, model_path: str | os.PathLike | Model | None = None,
                 providers: ProviderSpec | Sequence[ProviderSpec] | None = None, threads: int | None = None,
                 optimization: str | None = None) -> None:
        if isinstance(model_path, Model):
            model = model_path
            model.expect(UNIVERSAL_TASK)
        else:
            path = Path(model_path) if model_path is not None else DEFAULT_MODEL
            if model_path is None and not path.is_file():
                raise InputError(f"the universal model '{path}' is missing from this install; reinstall fastnst or "
                                 f"pass --universal-model PATH")
            model = Model(path, providers, threads, optimization, task=UNIVERSAL_TASK, lazy=True)
        super().__init__(model.path, model.metadata)
        self.model = model
        self.stages = Stages(model)
        self._styles: OrderedDict[tuple, StyleFeatures] = OrderedDict()
        self._state: dict[int, FeatureStats] = {}  # video: the running content statistics per level

    @property
    def providers(self) -> list[str]:
        """The providers the stage sessions use, in priority order."""
        return list(self.stages.sessions()["first"].get_providers())

    # -- styles ----------------------------------------------------------------------------------------
    def encode_style(self, image: ImageSource, size: int | None = DEFAULT_STYLE_SIZE) -> StyleFeatures:
        """Encode a style picture once: its features' statistics and colouring matrices at every level.

        ``image``: a path, PIL image, bytes or array (greyscale and alpha are fine: alpha is composited on white);
        ``size``: its long side (the stroke scale; None: as it is, at most MAX_STYLE_SIZE). A flat or tiny
        picture works (tiny ones are enlarged to MIN_STYLE_SIZE). Encoded files are cached (by path,
        modification time and size). Raises InputError for something that is not an image."""
        size = checks.side("--style-size", size, minimum=MIN_STYLE_SIZE, allow_none=True)
        if size is not None and size > MAX_STYLE_SIZE:
            raise ConfigError(f"--style-size must be at most {MAX_STYLE_SIZE}, got {size}")
        key = _style_key(image, size)
        if key is not None and key in self._styles:
            self._styles.move_to_end(key)
            return self._styles[key]
        rgb, name = _style_pixels(image, size)
        outputs = self.stages.run("style", {"image": to_nchw([rgb])})
        stats, colour = {}, {}
        for level, features in zip(self.stages.levels, outputs):
            stats[level] = FeatureStats.of(features)
            colour[level] = colouring(stats[level], self.stages.style_ridge)
        features = StyleFeatures(name, (rgb.shape[1], rgb.shape[0]), stats, colour)
        if key is not None:
            self._styles[key] = features
            while len(self._styles) > STYLE_CACHE:
                self._styles.popitem(last=False)
        return features

    def _styles_of(self, style: StyleArg, size: int | None) -> tuple[list[StyleFeatures], list[float]]:
        """One style, or a blend: a list of (style, weight) pairs or a 'a.jpg:0.6,b.jpg:0.4' string."""
        if style is None:
            raise ConfigError("the universal model needs a style image: pass style=PATH (or --style painting.jpg)")
        if isinstance(style, StyleFeatures):
            return [style], [1.0]
        if isinstance(style, (list, tuple)) and style and all(isinstance(s, (list, tuple)) and len(s) == 2
                                                              for s in style):
            pairs = [(s, float(w)) for s, w in style]
        elif isinstance(style, str) and ("," in style or _weighted(style)) and not Path(style).exists():
            pairs = parse_style_blend(style)
        else:
            pairs = [(style, 1.0)]
        weights = [w for _, w in pairs]
        if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"style blend weights must be zero or positive and not all zero, got {weights}")
        return [s if isinstance(s, StyleFeatures) else self.encode_style(s, size) for s, _ in pairs], weights

    # -- options, checked once ---------------------------------------------------------------------------
    def settings(self, strength: float = DEFAULT_STRENGTH, preserve_color: bool = False, max_size: int | None = None,
                 tile: int | None = None, overlap: int | None = None, style: StyleArg = None,
                 style_size: int | None = DEFAULT_STYLE_SIZE, mask: ImageSource | None = None,
                 outside: StyleArg = None, smoothing: float = 0.0) -> Settings:
        """The options of :meth:`stylize`, checked; the style(s) encoded. The strength is the transform's α
        (feature space), so the pixels are not blended again."""
        from fastnst.runtime.tiling import MIN_TILE

        alpha = checks.number("strength", strength, 0.0, 1.0)
        styles, weights = self._styles_of(style, style_size)
        other = self._styles_of(outside, style_size)[0] if outside is not None else None
        if other is not None and mask is None:
            raise ConfigError("a style outside the mask needs a mask: pass mask=IMAGE (--mask)")
        choice = UniversalChoice(styles, weights, alpha, _mask_array(mask) if mask is not None else None, other,
                                 checks.number("smoothing", smoothing, 0.0, 0.99), self.stages.levels)
        return Settings(strength=1.0, preserve_color=bool(preserve_color),
                        max_size=checks.side("max_size", max_size, allow_none=True),
                        tile=checks.tile(tile, minimum=MIN_TILE, name="tile"),
                        overlap=checks.whole("overlap", overlap, minimum=0, allow_none=True), style=choice)

    def stylize(self, image: ImageSource, style: StyleArg = None, strength: float = DEFAULT_STRENGTH,
                preserve_color: bool = False, max_size: int | None = None, tile: int | None = None,
                overlap: int | None = None, style_size: int | None = DEFAULT_STYLE_SIZE,
                mask: ImageSource | None = None, outside: StyleArg = None) -> Any:
        """Stylise ``image`` with ``style`` and return it in the kind it was given (as
        :meth:`fastnst.runtime.Stylizer.stylize`).

        ``style``: an image (path, PIL, array, bytes), a :class:`StyleFeatures` from :meth:`encode_style`, a list
        of (style, weight) pairs or a ``"a.jpg:0.6,b.jpg:0.4"`` string (a blend). ``strength`` (α in [0, 1]):
        how much of the style, in feature space at every level (0: the photo as the decoders reconstruct it).
        ``style_size``: the style's long side in pixels (larger: finer strokes). ``mask``: an image of the
        photo's size (resized otherwise); white takes the style, black keeps the photo, or takes ``outside``
        (a second style). ``preserve_color`` keeps the photo's colours. Raises InputError / ConfigError."""
        return self.render(image, self.settings(strength, preserve_color, max_size, tile, overlap, style,
                                                style_size, mask, outside))

    def stylize_iter(self, images: Iterable[ImageSource], batch_size: int = 1, smoothing: float = 0.9,
                     **options: Any) -> Iterator[Any]:
        """Stylise a stream (video frames): the style encoded once, the content statistics of each level averaged
        over frames (``smoothing``: the weight of the past, 0 = each frame on its own) so the transform does not
        flicker. ``batch_size`` is accepted for the stylizers' common interface (frames run one by one)."""
        checks.whole("batch_size", batch_size, maximum=256)
        return self.render_iter(images, self.settings(smoothing=smoothing, **options), batch_size)

    def render_iter(self, images: Iterable[ImageSource], settings: Settings, batch_size: int = 1,
                    progress: ProgressFn | None = None) -> Iterator[Any]:
        self._state = {}
        for image in images:
            yield self._render(read(image, settings.max_size), None, settings, progress)
        self._state = {}

    # -- the network ----------------------------------------------------------------------------------
    def _maps(self, level: int, stats: FeatureStats, choice: UniversalChoice) -> tuple[Affine, Affine | None]:
        """The level's transform (and the one outside the mask), from the content statistics ``stats``."""
        def of(styles: list[StyleFeatures], weights: list[float], alpha: float) -> Affine:
            maps = [transform(stats, s.stats[level], alpha, self.stages.ridge, colour=s.colour[level]) for s in styles]
            return maps[0] if len(maps) == 1 else blend(maps, weights)

        inside = of(choice.styles, choice.weights, choice.strength)
        if choice.mask is None:
            return inside, None
        if choice.outside is not None:
            return inside, of(choice.outside, [1.0] * len(choice.outside), choice.strength)
        c = stats.mean.shape[0]
        return inside, Affine(np.eye(c, dtype=np.float32), np.zeros(c, np.float32))

    def _chain(self, x: np.ndarray, choice: UniversalChoice, maps: dict[int, tuple[Affine, Affine | None]] | None,
               mask: np.ndarray | None) -> tuple[np.ndarray, dict[int, tuple[Affine, Affine | None]]]:
        """Run an NCHW image through every stage: with ``maps`` (tiles) or with the transforms of its own
        statistics (smoothed over frames when ``choice.smoothing``); returns the image and the maps used."""
        features = self.stages.run("first", {"image": x})[0]
        used = {}
        for level in choice.levels:
            if maps is None:
                stats = FeatureStats.of(features)
                if choice.smoothing and level in self._state:
                    stats = self._state[level].mix(stats, 1.0 - choice.smoothing)
                if choice.smoothing:
                    self._state[level] = stats
                used[level] = self._maps(level, stats, choice)
            else:
                used[level] = maps[level]
            inside, outside = used[level]
            if outside is None or mask is None:
                features = inside(features)
            else:
                m = _mask_at(mask, features.shape[2], features.shape[3])
                features = m * inside(features) + (1.0 - m) * outside(features)
            features = self.stages.run(str(level), {"features": features.astype(np.float32, copy=False)})[0]
        return features, used

    def _run(self, src: np.ndarray, choice: UniversalChoice, maps: Any = None) -> tuple[np.ndarray, Any]:
        """HxWx3 (or HxWx4: the mask as the 4th channel) -> HxWx3 float32 in [0, 1] (not clipped), and the
        transforms used. Padded to the stride (reflection, after the image) and cropped back."""
        h, w = src.shape[:2]
        padded, _ = self._pad(src)
        mask = padded[..., 3].astype(np.float32) if padded.shape[2] == 4 else None
        y, used = self._chain(to_nchw([padded[..., :3]]), choice, maps, mask)
        return np.transpose(y[0, :, :h, :w], (1, 2, 0)), used

    def run_batch(self, images: Sequence[np.ndarray], style: Any = None) -> list[np.ndarray]:
        return [self._run(im, style)[0] for im in images]

    def _render(self, item: Item, styled: np.ndarray | None, s: Settings, progress: ProgressFn | None = None) -> Any:
        choice: UniversalChoice = s.style
        src = item.src
        h, w = src.shape[:2]
        if choice.mask is not None:
            m = resize_array(choice.mask, (w, h), Image.Resampling.BILINEAR) if choice.mask.shape != (h, w) \
                else choice.mask
            work = np.concatenate([to_float(src), m[:, :, None].astype(np.float32)], axis=2)
        else:
            work = src
        size = (UNIVERSAL_TILE if h * w > AUTO_TILE_PIXELS else 0) if s.tile is None else s.tile
        if size and (w > size or h > size):
            small = work if h * w <= STATS_PIXELS else resize_array(
                work if work.dtype == np.uint8 else np.clip(work, 0, 1), _fit(w, h, STATS_PIXELS))
            _, maps = self._run(small, choice)
            del small
            canvas = Canvas(item, w, h)
            grid = TileGrid(h, w, size, s.overlap, self.stride)
            for y0, band in grid.bands(work, reporting(lambda t: self._run(t, choice, maps)[0], len(grid), progress)):
                canvas.put(y0, _finish(src[y0:y0 + band.shape[0]], band, s.preserve_color))
            return canvas.give_back()
        out, _ = self._run(work, choice)
        return give_back(_finish(src, out, s.preserve_color), item)

    def describe(self) -> dict[str, Any]:
        return self.model.describe(io="float", kind="universal", levels=list(self.stages.levels),
                                   encoder=self.stages.encoder)


def _finish(src: np.ndarray, styled: np.ndarray, preserve_color: bool) -> np.ndarray:
    from fastnst.image import finish

    return finish(src, styled, 1.0, preserve_color)


def _fit(w: int, h: int, pixels: int) -> tuple[int, int]:
    scale = min(1.0, (pixels / float(w * h)) ** 0.5)
    return max(1, int(w * scale)), max(1, int(h * scale))


def _mask_at(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """The mask (H, W) averaged down to a feature map's (1, 1, h, w)."""
    small = np.asarray(Image.fromarray(mask.astype(np.float32), "F").resize((w, h), Image.Resampling.BOX))
    return np.clip(small, 0.0, 1.0)[None, None].astype(np.float32)


def _mask_array(mask: ImageSource) -> np.ndarray:
    """A mask image (path, PIL, array, bytes) as HxW float32 in [0, 1] (its luminance; alpha ignored)."""
    if isinstance(mask, np.ndarray):
        arr = mask.astype(np.float32)
        if arr.ndim == 3:
            arr = arr[..., :3].mean(axis=2)
        if arr.ndim != 2 or not np.isfinite(arr).all():
            raise InputError(f"a mask array is HxW (or HxWxC) with finite values, got shape {mask.shape}")
        return np.clip(arr / (255.0 if mask.dtype == np.uint8 else 1.0), 0.0, 1.0)
    data = read_fitted(mask, None)
    return np.asarray(data.rgb.convert("L"), np.float32) / 255.0


def _style_key(image: Any, size: int | None) -> tuple | None:
    """A cache key for a style given as a file (path, modification time, bytes, size) or array (its hash)."""
    if isinstance(image, (str, os.PathLike)) and Path(image).is_file():
        st = Path(image).stat()
        return ("file", str(Path(image).resolve()), st.st_mtime_ns, st.st_size, size)
    if isinstance(image, np.ndarray):
        return ("array", image.shape, str(image.dtype), hashlib.sha1(np.ascontiguousarray(image)).hexdigest(), size)
    return None


def _style_pixels(image: Any, size: int | None) -> tuple[np.ndarray, str]:
    """A style picture as HxWx3 float32 in [0, 1]: alpha composited on white, long side ``size`` (None: as it is,
    at most MAX_STYLE_SIZE), at least MIN_STYLE_SIZE on its short side."""
    name = Path(image).name if isinstance(image, (str, os.PathLike)) else type(image).__name__
    if isinstance(image, np.ndarray):
        item = read(image)
        rgb = to_float(item.src)
        if item.alpha is not None:
            a = to_float(np.asarray(item.alpha))[:, :, None] if np.asarray(item.alpha).ndim == 2 else 1.0
            rgb = rgb * a + (1.0 - a)
        pil = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
    else:
        data = read_fitted(image, None if size is None else max(size, MIN_STYLE_SIZE))
        pil = data.rgb
        if data.alpha is not None:
            white = Image.new("RGB", pil.size, (255, 255, 255))
            white.paste(pil, mask=data.alpha)
            pil = white
    w, h = pil.size
    long_side = min(size if size is not None else max(w, h), MAX_STYLE_SIZE)
    target = fit_long_side((w, h), long_side)
    if min(target) < MIN_STYLE_SIZE:  # tiny or very thin: enlarge so that relu4_1 has a few pixels
        scale = MIN_STYLE_SIZE / min(target)
        target = (max(MIN_STYLE_SIZE, round(target[0] * scale)), max(MIN_STYLE_SIZE, round(target[1] * scale)))
    if target != (w, h):
        pil = pil.resize(target, Image.Resampling.LANCZOS if target[0] < w else Image.Resampling.BICUBIC)
    return np.asarray(pil, np.float32) / 255.0, name


def _weighted(text: str) -> bool:
    head, sep, tail = text.rpartition(":")
    if not sep or not head:
        return False
    try:
        float(tail)
    except ValueError:
        return False
    return True


def parse_style_blend(text: str) -> list[tuple[str, float]]:
    """``"a.jpg:0.6,b.jpg:0.4"`` -> [("a.jpg", 0.6), ("b.jpg", 0.4)] (a part without a weight weighs 1).
    ConfigError for a malformed weight."""
    pairs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        head, sep, tail = part.rpartition(":")
        if sep and head and _weighted(part):
            pairs.append((head, float(tail)))
        elif sep and head:
            raise ConfigError(f"style weight '{tail}' for '{head}' is not a number; a blend is "
                              f"'a.jpg:0.6,b.jpg:0.4'")
        else:
            pairs.append((part, 1.0))
    if not pairs:
        raise ConfigError("empty style; pass a style image, e.g. --style painting.jpg")
    return pairs


_CACHE: dict[tuple, UniversalStylizer] = {}


def universal_stylizer(path: str | os.PathLike | None = None, **load: Any) -> UniversalStylizer:
    """A cached :class:`UniversalStylizer` per model file and load options (a few kept per process)."""
    p = Path(path) if path is not None else DEFAULT_MODEL
    key = (str(p.resolve()), p.stat().st_mtime if p.exists() else 0.0, repr(sorted(load.items())))
    if key not in _CACHE:
        if len(_CACHE) >= 2:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = UniversalStylizer(p, **load)
    return _CACHE[key]


__all__ = ["UniversalStylizer", "StyleFeatures", "UniversalChoice", "DEFAULT_MODEL", "DEFAULT_STYLE_SIZE",
           "DEFAULT_STRENGTH", "parse_style_blend", "universal_stylizer"]
