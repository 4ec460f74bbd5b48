"""Image optimisation: Gatys style transfer, feature inversion, texture synthesis, DeepDream, scoring.

Every method here optimises the pixels of one image (RGB in [0, 1], NCHW) against a frozen
:class:`~fastnst.networks.vgg.VGGFeatures` network with the losses of :mod:`fastnst.losses`; no
Lightning, a plain loop. The library never prints: pass ``callback`` to see progress. Each public
function returns a PIL image; the ``*_result`` variants also return the final loss terms.

Speed (see scripts/bench_gatys.py): the loss network is truncated at the deepest layer used, its
weights never need gradients, activations run channels-last, content and style targets are
computed once per scale under ``torch.inference_mode``, and L-BFGS makes exactly one loss
evaluation per iteration.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fastnst.constants import (DEFAULT_VGG_NORMALIZE, GATYS_CONTENT_LAYERS, GATYS_STYLE_LAYERS, VGG_LAYERS,
                               VGG_NORMALIZE_CHOICES)
from fastnst.errors import ConfigError, FastNSTError, InputError, unknown_choice
from fastnst.image import load_rgb, resize, to_pil, to_tensor
from fastnst.losses import STYLE_STATS, PerceptualLoss
from fastnst.networks.vgg import VGGFeatures, check_arch, check_layers

ImageLike = Union[str, os.PathLike, bytes, Image.Image, np.ndarray, torch.Tensor]

OPTIMIZERS = ("lbfgs", "adam")
POOLINGS = ("max", "avg")
INIT_CHOICES = ("content", "noise", "style")

# Gatys defaults. Loss weights on the RMS-normalised loss network (fastnst.networks.vgg_normalize: one loss
# scale for every VGG weight set). Chosen: scripts/bench_quality.py / Gatys sweeps with the imported Caffe
# VGG19 on held-out photos, judged on the pictures: style 1 keeps the photo's objects and carries the
# style's texture (0.3 is subtler, 10 loses the content).
GATYS_CONTENT_WEIGHT = 1.0
GATYS_STYLE_WEIGHT = 1.0
GATYS_TV_WEIGHT = 0.0           # paper: no smoothness term
GATYS_ITERATIONS = 500          # reference implementation (neural-style -num_iterations 1000; 500 is most of the way)
GATYS_SIZE = 512                # reference implementation (neural-style -image_size 512)
LBFGS_HISTORY = 100             # reference implementation (neural-style / torch.optim.LBFGS default)
ADAM_LR = 0.04                  # reference implementation: neural-style's -learning_rate 10 on the 0-255 scale
# Inversion: Mahendran & Vedaldi normalise the feature loss by ||Φ0||²; TV keeps the result image-like.
INVERT_TV_WEIGHT = 0.5          # chosen: smooth results; natural photos have TV ≈ 0.002-0.01 here
INVERT_ITERATIONS = 200         # chosen: the feature loss flattens out by then at 256² with L-BFGS
TEXTURE_ITERATIONS = 300        # chosen: like Gatys, texture from noise needs a few hundred L-BFGS steps
# DeepDream: google/deepdream's notebook (reference implementation): 4 octaves of scale 1.4, 10 steps each,
# jitter 32 px, step 1.5 on 0-255 input with the gradient normalised by its mean absolute value.
DREAM_OCTAVES = 4
DREAM_OCTAVE_SCALE = 1.4
DREAM_ITERATIONS = 10
DREAM_JITTER = 32
DREAM_STEP = 1.5 / 255.0

# Per-eval callback: return True to stop early.
ProgressCallback = Callable[["Progress"], Union[bool, None]]


@dataclass
class Progress:
    """What a progress callback sees after each loss evaluation."""

    task: str                      # "gatys", "invert", "texture" or "dream"
    iteration: int                 # 1-based, counted over all scales/octaves
    total: int                     # iterations planned over all scales/octaves
    scale: int                     # 1-based scale (octave) index
    scales: int
    size: tuple[int, int]          # (width, height) being optimised
    terms: dict[str, float]        # loss terms of the image just evaluated
    seconds: float                 # since the optimisation started
    _image: Callable[[], Image.Image] = field(repr=False, default=lambda: Image.new("RGB", (1, 1)))

    def image(self) -> Image.Image:
        """The current image (as it would be saved), computed on request."""
        return self._image()


@dataclass
class OptimizationResult:
    """Result of an optimisation: the image, the loss terms of that image, and bookkeeping."""

    image: Image.Image
    terms: dict[str, float]
    iterations: int
    seconds: float
    sizes: list[tuple[int, int]]
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- helpers

def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """'auto'/None -> CUDA when available, else CPU; otherwise the named device (checked)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(str(device))
    except RuntimeError as exc:
        raise ConfigError(f"unknown device '{device}'; use cpu, cuda, cuda:N or auto") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' asked for but CUDA is not available here; use --device cpu")
    return dev


def _as_pil(source: ImageLike, what: str) -> Image.Image:
    if isinstance(source, torch.Tensor):
        return to_pil(source)
    try:
        return load_rgb(source)
    except FastNSTError as exc:
        raise type(exc)(f"{what}: {exc}") from None


def _parse_layers(layers: Sequence[str] | str, arch: str) -> tuple[str, ...]:
    return check_layers(layers, arch)


def _pools_before(layer: str, arch: str) -> int:
    names = VGG_LAYERS[arch]
    return sum(1 for n in names[:names.index(layer)] if n.startswith("pool"))


def min_side(layers: Sequence[str], arch: str) -> int:
    """Smallest image side for which every layer in ``layers`` keeps at least one position."""
    return 2 ** max(_pools_before(n, arch) for n in layers)


def fit_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(w, h) scaled so that the longer side is ``long_side`` (aspect kept, sides >= 1)."""
    w, h = size
    s = long_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def _check_size(wh: tuple[int, int], layers: Sequence[str], arch: str, what: str) -> None:
    need = min_side(layers, arch)
    if min(wh) < need:
        raise ConfigError(f"{what} {wh[0]}x{wh[1]} is too small for layer {max(layers, key=lambda n: VGG_LAYERS[arch].index(n))} "
                          f"(needs at least {need} pixels a side); use a larger size or shallower layers")


def _check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_nonneg(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not (v >= 0 and math.isfinite(v)):
        raise ConfigError(f"{name} must be zero or positive, got {value!r}")
    return v


def _to_device_image(img: Image.Image, wh: tuple[int, int], device: torch.device) -> torch.Tensor:
    return to_tensor(resize(img, size=wh)).to(device)


def _quantize(x: torch.Tensor) -> torch.Tensor:
    """The image exactly as it will be saved: clamped to [0, 1] and rounded to 8 bits."""
    return x.detach().clamp(0, 1).mul(255).round().div(255)


# YIQ (NTSC) luminance/chroma, used by neural-style's -original_colors (reference implementation).
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> YIQ (Y luminance, I/Q chroma)."""
    return torch.einsum("ij,njhw->nihw", _RGB2YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) YIQ -> RGB."""
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB2YIQ).to(x), x)


def keep_colors(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance of ``stylized`` with the chroma (YIQ I, Q) of ``content`` (resized to match)."""
    if content.shape[-2:] != stylized.shape[-2:]:
        content = F.interpolate(content, size=stylized.shape[-2:], mode="bilinear", align_corners=False)
    s, c = rgb_to_yiq(stylized), rgb_to_yiq(content)
    return yiq_to_rgb(torch.cat([s[:, :1], c[:, 1:]], dim=1)).clamp(0, 1)


def _init_image(init: str | ImageLike, wh: tuple[int, int], content: Image.Image | None,
                style: Image.Image | None, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    w, h = wh
    if isinstance(init, str) and init == "noise":
        return torch.rand((1, 3, h, w), generator=generator).to(device)  # Gatys: white noise
    if isinstance(init, str) and init == "content":
        if content is None:
            raise ConfigError("--init content needs a content image")
        return _to_device_image(content, wh, device)
    if isinstance(init, str) and init == "style":
        if style is None:
            raise ConfigError("--init style needs a style image")
        return _to_device_image(style, wh, device)
    if isinstance(init, str) and not os.path.exists(init) and os.sep not in init and "." not in init:
        raise unknown_choice("init", init, INIT_CHOICES + ("PATH",))
    return _to_device_image(_as_pil(init, "init image"), wh, device)


def _load_init(init: str | ImageLike) -> str | Image.Image:
    """Validate ``init`` early: a keyword stays a string, anything else is loaded as an image."""
    if isinstance(init, str) and init in INIT_CHOICES:
        return init
    if isinstance(init, str) and not os.path.exists(init) and os.sep not in init and "." not in init:
        raise unknown_choice("init", init, INIT_CHOICES + ("PATH",))
    return _as_pil(init, "init image")


def _normalization(vgg_normalize: str | os.PathLike | None,
                   normalize_images: str | os.PathLike | None) -> tuple[str, str | None]:
    """(statistic, images folder or None for the bundled set) from the user's options.

    ``vgg_normalize`` is 'rms' (default of the losses), 'mean' (Gatys' normalised VGG), 'none', or, as
    before, a folder of images (meaning 'mean' over that folder)."""
    if vgg_normalize is None:
        return "none", None
    text = str(vgg_normalize)
    if text in VGG_NORMALIZE_CHOICES:
        return text, None if normalize_images is None else str(normalize_images)
    if os.path.isdir(text):
        return "mean", text
    raise unknown_choice("VGG normalisation", text, VGG_NORMALIZE_CHOICES + ("a folder of images",))


def build_vgg(layers: Sequence[str], net: str = "vgg19", vgg_weights: str | os.PathLike | None = None,
              pooling: str = "max", vgg_normalize: str | os.PathLike | None = DEFAULT_VGG_NORMALIZE,
              device: torch.device | str = "cpu", normalize_images: str | os.PathLike | None = None) -> VGGFeatures:
    """A channels-last :class:`VGGFeatures` for ``layers`` on ``device``, normalised as asked.

    On the CPU its 3x3 convolutions with >= 128 input channels run as Winograd F(4x4, 3x3)
    (:mod:`fastnst.networks.winograd`; ``FASTNST_WINOGRAD=0`` turns that off).

    ``vgg_normalize``: 'rms' (default: one loss scale for every weight set), 'mean' (Gatys' normalised
    VGG), 'none'; the statistics come from ``normalize_images`` (a folder; default fastnst's bundled
    photos) and are cached (see :mod:`fastnst.networks.vgg_normalize`). A folder given as
    ``vgg_normalize`` means 'mean' over it.
    """
    if pooling not in POOLINGS:
        raise unknown_choice("pooling", pooling, POOLINGS)
    from fastnst.networks import winograd
    from fastnst.networks.vgg import resolve_weights

    statistic, images = _normalization(vgg_normalize, normalize_images)
    fast = winograd.enabled(device)
    w = resolve_weights(vgg_weights)
    stamp = os.stat(w).st_mtime_ns if os.path.isfile(w) else None
    # a frozen network is reused by the next call with the same settings (not for user image folders)
    key = None if images is not None else (tuple(layers), net, w, stamp, pooling, str(torch.device(device)), fast,
                                           statistic)
    if key is not None and key in _VGG_CACHE:
        return _VGG_CACHE[key]
    vgg = VGGFeatures(layers, arch=net, weights=vgg_weights, pooling=pooling, normalize=statistic,
                      normalize_images=images)
    vgg = vgg.to(device=torch.device(device), memory_format=torch.channels_last)
    if fast:
        winograd.use_winograd(vgg.features)
    if key is not None:
        _VGG_CACHE.clear()  # keep one network: VGG19 is 80 MB
        _VGG_CACHE[key] = vgg
    return vgg


_VGG_CACHE: dict[tuple, VGGFeatures] = {}


class _Stop(Exception):
    pass


def _run_optimizer(x: torch.Tensor, evaluate: Callable[[torch.Tensor], dict[str, torch.Tensor]],
                   optimizer: str, iterations: int, lr: float | None,
                   report: Callable[[dict[str, float], torch.Tensor], bool]) -> tuple[torch.Tensor, int, bool]:
    """Minimise ``evaluate(x)['total']`` over the pixels of ``x`` for ``iterations`` loss evaluations.

    ``report(terms, x)`` runs after every evaluation; returning True stops. L-BFGS (no line search,
    one evaluation per iteration, as in neural-style) or Adam; pixels are clamped to [0, 1] after each
    step (as the PyTorch tutorial does), so the saved image is the one optimised (measured: without it
    a texture from noise ended at loss 0.29 while its clamped, saved image scored 2.9).
    Returns (the evaluated image with the lowest loss, evaluations done, stopped early).
    """
    x = x.detach().clone().contiguous().requires_grad_(True)
    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS([x], lr=1.0 if lr is None else lr, max_iter=1,
                                                       history_size=LBFGS_HISTORY, tolerance_grad=0.0,
                                                       tolerance_change=0.0)
    elif optimizer == "adam":
        opt = torch.optim.Adam([x], lr=ADAM_LR if lr is None else lr)
    else:
        raise unknown_choice("optimizer", optimizer, OPTIMIZERS)
    done = 0
    stop = False
    best_loss, best_x = math.inf, x.detach().clone()

    def closure() -> torch.Tensor:
        nonlocal done, stop, best_loss, best_x
        opt.zero_grad(set_to_none=True)
        terms = evaluate(x)
        total = terms["total"]
        if not torch.isfinite(total):
            raise FastNSTError("the loss became NaN or infinite; lower the loss weights or --lr "
                               f"(after {done} iterations)")
        if float(total.detach()) < best_loss:  # L-BFGS without line search can overshoot: keep the best
            best_loss, best_x = float(total.detach()), x.detach().clone()
        total.backward()
        done += 1
        if report({k: float(v.detach()) for k, v in terms.items()}, x):
            stop = True
        return total

    for _ in range(iterations):
        opt.step(closure)
        with torch.no_grad():  # keep pixels displayable: what is optimised is what gets saved
            x.clamp_(0, 1)
        if stop:
            break
    return best_x, done, stop


def _schedule(scales: int, long_side: int, min_long: int) -> list[int]:
    """Long sides of the scales, coarse to fine, each half the next (never below ``min_long``)."""
    sides = [max(min_long, round(long_side / 2 ** (scales - 1 - i))) for i in range(scales)]
    return sides


# ----------------------------------------------------------------------------------------------- Gatys

@dataclass
class GatysSettings:
    """Loss settings shared by :func:`gatys` and :func:`score` (defaults: see module constants)."""

    net: str = "vgg19"                                     # paper
    content_layers: Sequence[str] | str = GATYS_CONTENT_LAYERS   # paper
    style_layers: Sequence[str] | str = GATYS_STYLE_LAYERS       # paper
    style_layer_weights: Sequence[float] | Mapping[str, float] | None = None  # paper: equal
    content_weight: float = GATYS_CONTENT_WEIGHT
    style_weight: float = GATYS_STYLE_WEIGHT
    tv_weight: float = GATYS_TV_WEIGHT
    style_blend: Sequence[float] | None = None             # equal weights
    style_scale: float = 1.0                               # reference implementation (neural-style)
    pooling: str = "max"                                   # reference implementation (neural-style)
    style_stat: str = "gram"                               # paper
    vgg_weights: str | os.PathLike | None = None           # FASTNST_VGG_WEIGHTS or imagenet
    vgg_normalize: str | os.PathLike | None = DEFAULT_VGG_NORMALIZE  # chosen: one loss scale (vgg_normalize)
    normalize_images: str | os.PathLike | None = None      # bundled reference photos

    def check(self) -> None:
        """Validate everything that does not need the images (before long work starts)."""
        check_arch(self.net)
        self.content_layers = _parse_layers(self.content_layers, self.net)
        self.style_layers = _parse_layers(self.style_layers, self.net)
        if self.pooling not in POOLINGS:
            raise unknown_choice("pooling", self.pooling, POOLINGS)
        if self.style_stat not in STYLE_STATS:
            raise unknown_choice("style statistic", self.style_stat, STYLE_STATS)
        self.content_weight = _check_nonneg(self.content_weight, "content weight")
        self.style_weight = _check_nonneg(self.style_weight, "style weight")
        self.tv_weight = _check_nonneg(self.tv_weight, "tv weight")
        self.style_scale = _check_nonneg(self.style_scale, "style scale")
        if self.style_scale == 0:
            raise ConfigError("style scale must be positive, e.g. 0.5 or 1.0")
        if self.style_layer_weights is not None and not isinstance(self.style_layer_weights, Mapping):
            lw = [_check_nonneg(v, "style layer weight") for v in self.style_layer_weights]
            if len(lw) != len(self.style_layers):
                raise ConfigError(f"{len(lw)} style layer weights for {len(self.style_layers)} style layers "
                                  f"({', '.join(self.style_layers)}); give one per layer")
            self.style_layer_weights = lw
        if self.normalize_images is not None and not os.path.isdir(self.normalize_images):
            raise InputError(f"normalising images folder '{self.normalize_images}' does not exist; "
                             f"pass --normalize-images DIR with a few photos")
        _normalization(self.vgg_normalize, self.normalize_images)

    def check_blend(self, n_styles: int) -> list[float] | None:
        """Validate ``style_blend`` against the number of style images."""
        if self.style_blend is None:
            return None
        blend = [_check_nonneg(b, "style blend weight") for b in self.style_blend]
        if len(blend) != n_styles:
            raise ConfigError(f"{len(blend)} style blend weights for {n_styles} style images; give one per image")
        if sum(blend) <= 0:
            raise ConfigError("style blend weights must not all be zero")
        return blend

    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(tuple(self.content_layers) + tuple(self.style_layers)))


def _settings(settings: GatysSettings | None, overrides: Mapping[str, Any]) -> GatysSettings:
    """A fresh GatysSettings from ``settings`` (or the defaults) with keyword ``overrides`` applied."""
    base = dict(settings.__dict__) if settings is not None else {}
    unknown = [k for k in overrides if k not in GatysSettings.__dataclass_fields__]
    if unknown:
        raise TypeError(f"unknown option '{unknown[0]}'")
    return GatysSettings(**{**base, **overrides})


class _GatysLoss:
    """PerceptualLoss plus per-scale targets (content features and style statistics, computed once)."""

    def __init__(self, settings: GatysSettings, device: torch.device, vgg: VGGFeatures | None = None) -> None:
        self.settings = settings
        self.device = device
        self.vgg = vgg if vgg is not None else build_vgg(settings.layers(), settings.net, settings.vgg_weights,
                                                         settings.pooling, settings.vgg_normalize, device,
                                                         settings.normalize_images)
        self.loss = PerceptualLoss(self.vgg, settings.content_layers, settings.style_layers,
                                   content_weight=settings.content_weight, style_weight=settings.style_weight,
                                   tv_weight=settings.tv_weight, style_layer_weights=settings.style_layer_weights,
                                   style_stat=settings.style_stat)
        self.content_features: dict[str, torch.Tensor] | None = None

    def set_targets(self, content: Image.Image | None, styles: Sequence[Image.Image], wh: tuple[int, int],
                    blend: Sequence[float] | None) -> None:
        """Targets for an output of size ``wh``: content resized to it, styles to style_scale x its long side."""
        with torch.no_grad():
            if content is not None and self.settings.content_weight > 0:
                c = _to_device_image(content, wh, self.device).contiguous(memory_format=torch.channels_last)
                self.content_features = {k: v.clone() for k, v in self.loss.content_features(c).items()}
            else:
                self.content_features = None
            if styles and self.settings.style_weight > 0:
                side = max(1, round(self.settings.style_scale * max(wh)))
                imgs = [to_tensor(resize(s, long_edge=side)).to(self.device).contiguous(memory_format=torch.channels_last)
                        for s in styles]
                for img, s in zip(imgs, styles):
                    _check_size((img.shape[-1], img.shape[-2]), self.settings.style_layers, self.settings.net,
                                "style image at --style-scale")
                self.loss.set_style(imgs, blend)

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.loss(x.contiguous(memory_format=torch.channels_last), content_features=self.content_features)


def _terms_out(terms: Mapping[str, float]) -> dict[str, float]:
    keys = ["total", "content", "style", "tv"] + sorted(k for k in terms if k.startswith("style/"))
    return {k: float(terms[k]) for k in keys if k in terms}


def gatys_result(content: ImageLike, style: ImageLike | Sequence[ImageLike], *,
                 settings: GatysSettings | None = None, init: str | ImageLike = "content",
                 optimizer: str = "lbfgs", iterations: int | Sequence[int] = GATYS_ITERATIONS,
                 lr: float | None = None, size: int | None = GATYS_SIZE, scales: int = 1, original_colors: bool = False,
                 seed: int = 0, device: str | torch.device | None = None,
                 callback: ProgressCallback | None = None, **loss_settings: Any) -> OptimizationResult:
    """Gatys et al. style transfer; like :func:`gatys` but returns the final loss terms too.

    ``iterations`` loss evaluations are made at each of ``scales`` scales (coarse to fine, each twice
    the previous, the finest with long side ``size``; ``None`` keeps the content's size); a list gives
    one count per scale. Loss settings
    are :class:`GatysSettings` fields, given as ``settings`` or as keywords.
    """
    settings = _settings(settings, loss_settings)
    settings.check()
    scales = _check_positive_int(scales, "scales")
    if isinstance(iterations, (list, tuple)):
        if len(iterations) != scales:
            raise ConfigError(f"{len(iterations)} iteration counts for {scales} scales; give one per scale")
        per_scale = [_check_positive_int(n, "iterations") for n in iterations]
    else:
        per_scale = [_check_positive_int(iterations, "iterations")] * scales
    if optimizer not in OPTIMIZERS:
        raise unknown_choice("optimizer", optimizer, OPTIMIZERS)
    if lr is not None and not (float(lr) > 0 and math.isfinite(float(lr))):
        raise ConfigError(f"learning rate must be positive, got {lr}")
    styles_in = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles_in:
        raise ConfigError("give at least one style image")
    blend = settings.check_blend(len(styles_in))
    init_v = _load_init(init)
    content_img = _as_pil(content, "content image")
    styles = [_as_pil(s, "style image") for s in styles_in]
    if size is not None:
        _check_positive_int(size, "size")
    long_side = max(content_img.size) if size is None else int(size)
    layers = settings.layers()
    need = min_side(layers, settings.net)
    sides = _schedule(scales, long_side, 1)
    sizes = [fit_size(content_img.size, s) for s in sides]
    for wh, label in zip(sizes, ["coarsest scale"] + ["scale"] * (len(sizes) - 1)):
        if min(wh) < need:
            hint = " or fewer --scales" if scales > 1 else ""
            raise ConfigError(f"output {label} {wh[0]}x{wh[1]} is too small for the chosen layers (needs at least "
                              f"{need} pixels a side); use a larger --size{hint}")
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    loss = _GatysLoss(settings, dev)
    content_t = to_tensor(content_img).to(dev) if original_colors else None
    total_its = sum(per_scale)
    start = time.perf_counter()
    x: torch.Tensor | None = None
    done_total = 0
    stopped = False

    def finish(t: torch.Tensor) -> torch.Tensor:
        out = keep_colors(t.clamp(0, 1), content_t) if original_colors else t
        return _quantize(out)

    for k, wh in enumerate(sizes):
        loss.set_targets(content_img, styles, wh, blend)
        if x is None:
            x = _init_image(init_v if isinstance(init_v, str) else init_v, wh, content_img, styles[0], dev, gen)
        else:
            x = F.interpolate(x, size=(wh[1], wh[0]), mode="bicubic", align_corners=False)

        def report(terms: dict[str, float], cur: torch.Tensor, k: int = k, wh: tuple[int, int] = wh) -> bool:
            nonlocal done_total
            done_total += 1
            if callback is None:
                return False
            p = Progress("gatys", done_total, total_its, k + 1, len(sizes), wh, _terms_out(terms),
                         time.perf_counter() - start, lambda: to_pil(finish(cur.detach())))
            return bool(callback(p))

        x, _, stopped = _run_optimizer(x, loss, optimizer, per_scale[k], lr, report)
        if stopped:
            break
    assert x is not None
    final = finish(x)
    with torch.inference_mode():
        terms = _terms_out({k: float(v) for k, v in loss(final).items()})
    return OptimizationResult(to_pil(final), terms, done_total, time.perf_counter() - start, sizes, stopped)


def gatys(content: ImageLike, style: ImageLike | Sequence[ImageLike], **options: Any) -> Image.Image:
    """Style transfer by optimising the pixels (Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style").

    ``content``/``style``: paths, PIL images, arrays or (1, 3, H, W) tensors in [0, 1]; ``style`` may be
    a list (blended by ``style_blend``). Options: see :func:`gatys_result` and :class:`GatysSettings`.
    Returns the stylised PIL image. Raises FastNSTError for bad inputs or options.
    """
    return gatys_result(content, style, **options).image


def score(image: ImageLike, content: ImageLike | None, style: ImageLike | Sequence[ImageLike] | None, *,
          settings: GatysSettings | None = None, device: str | torch.device | None = None,
          **loss_settings: Any) -> dict[str, float]:
    """Loss terms (total, content, style, tv, style/<layer>) of ``image`` for ``content`` and ``style``.

    The same terms :func:`gatys` reports and minimises, so any stylised image (a trained network's
    output, a Gatys result after N iterations) can be compared on one scale. Content is resized to
    the image's size; style to ``style_scale`` x its long side.
    """
    settings = _settings(settings, loss_settings)
    settings.check()
    img = _as_pil(image, "image")
    content_img = None if content is None else _as_pil(content, "content image")
    styles_in = [] if style is None else (list(style) if isinstance(style, (list, tuple)) else [style])
    styles = [_as_pil(s, "style image") for s in styles_in]
    blend = settings.check_blend(len(styles)) if styles else None
    _check_size(img.size, settings.layers(), settings.net, "image")
    dev = resolve_device(device)
    loss = _GatysLoss(settings, dev)
    loss.set_targets(content_img, styles, img.size, blend)
    x = to_tensor(img).to(dev)
    with torch.inference_mode():
        return _terms_out({k: float(v) for k, v in loss(x).items()})


# ----------------------------------------------------------------------------------------------- inversion

def invert_result(image: ImageLike, layer: str = "relu3_3", *, net: str = "vgg19", init: str | ImageLike = "noise",
                  iterations: int = INVERT_ITERATIONS, optimizer: str = "lbfgs", lr: float | None = None,
                  tv_weight: float = INVERT_TV_WEIGHT, size: int | None = 256, pooling: str = "max",
                  vgg_weights: str | os.PathLike | None = None, vgg_normalize: str | os.PathLike | None = None,
                  seed: int = 0, device: str | torch.device | None = None,
                  callback: ProgressCallback | None = None, vgg: VGGFeatures | None = None) -> OptimizationResult:
    """Reconstruct an image from one layer's activations (Mahendran & Vedaldi 2015).

    Minimises ||Φ(x) - Φ(image)||² / ||Φ(image)||² + tv_weight · TV(x) from white noise (``init='noise'``)
    or from another image. The terms are ``feature`` (the normalised feature loss), ``tv`` and ``total``.
    """
    check_arch(net)
    (layer,) = _parse_layers([layer], net) if isinstance(layer, str) and "," not in layer else (None,)
    if layer is None:
        raise ConfigError("invert takes one layer; use --layers for several")
    iterations = _check_positive_int(iterations, "iterations")
    tv_weight = _check_nonneg(tv_weight, "tv weight")
    if optimizer not in OPTIMIZERS:
        raise unknown_choice("optimizer", optimizer, OPTIMIZERS)
    init_v = _load_init(init)
    if init_v in ("content", "style"):
        raise unknown_choice("init", str(init_v), ("noise", "PATH"))
    img = _as_pil(image, "image")
    wh = img.size if size is None else fit_size(img.size, _check_positive_int(size, "size"))
    _check_size(wh, [layer], net, "image size")
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    if vgg is None:
        vgg = build_vgg([layer], net, vgg_weights, pooling, vgg_normalize, dev)
    target_img = _to_device_image(img, wh, dev).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # not inference_mode: the target is saved for backward by the loss
        target = vgg(target_img, layers=[layer])[layer].clone()
    norm = float(target.pow(2).mean())
    if norm <= 0:
        raise InputError(f"layer {layer} is all zeros for this image; nothing to reconstruct (try a shallower layer)")
    loss = PerceptualLoss(vgg, [layer], [layer], content_weight=1.0 / norm, style_weight=0.0, tv_weight=tv_weight)
    feats = {layer: target}

    def evaluate(x: torch.Tensor) -> dict[str, torch.Tensor]:
        t = loss(x.contiguous(memory_format=torch.channels_last), content_features=feats)
        return {"total": t["total"], "feature": t["content"], "tv": t["tv"]}

    x0 = _init_image(init_v, wh, None, None, dev, gen)
    start = time.perf_counter()
    done = 0

    def report(terms: dict[str, float], cur: torch.Tensor) -> bool:
        nonlocal done
        done += 1
        if callback is None:
            return False
        return bool(callback(Progress("invert", done, iterations, 1, 1, wh, terms, time.perf_counter() - start,
                                      lambda: to_pil(_quantize(cur)))))

    with torch.inference_mode():
        start_terms = {k: float(v) for k, v in evaluate(x0).items()}
    x, _, stopped = _run_optimizer(x0, evaluate, optimizer, iterations, lr, report)
    final = _quantize(x)
    with torch.inference_mode():
        terms = {k: float(v) for k, v in evaluate(final).items()}
    return OptimizationResult(to_pil(final), terms, done, time.perf_counter() - start, [wh], stopped,
                              {"layer": layer, "start_terms": start_terms})


def invert(image: ImageLike, layer: str = "relu3_3", **options: Any) -> Image.Image:
    """Feature inversion: an image whose ``layer`` activations match ``image``'s. See :func:`invert_result`."""
    return invert_result(image, layer, **options).image


# ----------------------------------------------------------------------------------------------- texture

def texture_result(style: ImageLike | Sequence[ImageLike], size: int | tuple[int, int] = 256, *,
                   settings: GatysSettings | None = None, iterations: int = TEXTURE_ITERATIONS,
                   optimizer: str = "lbfgs", lr: float | None = None, init: str | ImageLike = "noise",
                   seed: int = 0, device: str | torch.device | None = None,
                   callback: ProgressCallback | None = None, **loss_settings: Any) -> OptimizationResult:
    """Texture synthesis from the style loss alone (Gatys, Ecker & Bethge 2015), any output size.

    ``size``: an int for a square texture or (width, height). The style image is resized so that its
    long side is ``style_scale`` x the output's long side.
    """
    loss_settings.setdefault("content_weight", 0.0)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        wh = (_check_positive_int(size, "size"), int(size))
    else:
        try:
            wh = (int(size[0]), int(size[1]))  # type: ignore[index]
        except (TypeError, ValueError, IndexError):
            raise ConfigError(f"size must be N or (width, height), got {size!r}") from None
        _check_positive_int(wh[0], "width")
        _check_positive_int(wh[1], "height")
    settings = _settings(settings, loss_settings)
    settings.content_weight = 0.0
    settings.check()
    if settings.style_weight <= 0:
        raise ConfigError("texture synthesis needs a positive style weight")
    _check_size(wh, settings.style_layers, settings.net, "texture size")
    iterations = _check_positive_int(iterations, "iterations")
    if optimizer not in OPTIMIZERS:
        raise unknown_choice("optimizer", optimizer, OPTIMIZERS)
    styles_in = list(style) if isinstance(style, (list, tuple)) else [style]
    blend = settings.check_blend(len(styles_in))
    init_v = _load_init(init)
    if init_v == "content":
        raise unknown_choice("init", "content", ("noise", "style", "PATH"))
    styles = [_as_pil(s, "style image") for s in styles_in]
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    settings.content_layers = settings.style_layers[:1]
    loss = _GatysLoss(settings, dev)
    loss.set_targets(None, styles, wh, blend)
    x0 = _init_image(init_v, wh, None, styles[0], dev, gen)
    start = time.perf_counter()
    done = 0

    def evaluate(x: torch.Tensor) -> dict[str, torch.Tensor]:
        t = loss(x)
        t.pop("content", None)
        return t

    def report(terms: dict[str, float], cur: torch.Tensor) -> bool:
        nonlocal done
        done += 1
        if callback is None:
            return False
        return bool(callback(Progress("texture", done, iterations, 1, 1, wh, _terms_out(terms),
                                      time.perf_counter() - start, lambda: to_pil(_quantize(cur)))))

    x, _, stopped = _run_optimizer(x0, evaluate, optimizer, iterations, lr, report)
    final = _quantize(x)
    with torch.inference_mode():
        terms = _terms_out({k: float(v) for k, v in evaluate(final).items()})
    return OptimizationResult(to_pil(final), terms, done, time.perf_counter() - start, [wh], stopped)


def texture(style: ImageLike | Sequence[ImageLike], size: int | tuple[int, int] = 256, **options: Any) -> Image.Image:
    """A texture of ``size`` with ``style``'s statistics. See :func:`texture_result`."""
    return texture_result(style, size, **options).image


# ----------------------------------------------------------------------------------------------- DeepDream

def dream_result(image: ImageLike, layer: str = "relu4_3", *, net: str = "vgg19", octaves: int = DREAM_OCTAVES,
                 octave_scale: float = DREAM_OCTAVE_SCALE, iterations: int = DREAM_ITERATIONS,
                 step: float = DREAM_STEP, jitter: int = DREAM_JITTER, size: int | None = 512,
                 pooling: str = "max", vgg_weights: str | os.PathLike | None = None,
                 vgg_normalize: str | os.PathLike | None = None, seed: int = 0,
                 device: str | torch.device | None = None,
                 callback: ProgressCallback | None = None) -> OptimizationResult:
    """DeepDream (Mordvintsev et al. 2015): gradient ascent on mean(Φ_layer(x)²), octave by octave.

    Octaves run from the smallest (the image shrunk ``octave_scale``^(octaves-1) times) to full size;
    the detail added at one octave is upscaled onto the next. Each step rolls the image by a random
    shift of up to ``jitter`` pixels, follows the gradient normalised by its mean absolute value
    times ``step``, and rolls back. Terms: ``activation`` (the objective, higher = stronger dream).
    """
    check_arch(net)
    (layer,) = _parse_layers([layer], net)
    octaves = _check_positive_int(octaves, "octaves")
    iterations = _check_positive_int(iterations, "iterations")
    jitter = _check_positive_int(jitter, "jitter", 0)
    octave_scale = float(octave_scale)
    if not (octave_scale > 1.0 and math.isfinite(octave_scale)):
        raise ConfigError(f"octave scale must be greater than 1, got {octave_scale}")
    step = float(step)
    if not (step > 0 and math.isfinite(step)):
        raise ConfigError(f"step must be positive, got {step}")
    img = _as_pil(image, "image")
    wh = img.size if size is None else fit_size(img.size, _check_positive_int(size, "size"))
    sizes = [fit_size(wh, max(1, round(max(wh) / octave_scale ** (octaves - 1 - i)))) for i in range(octaves)]
    need = min_side([layer], net)
    if min(sizes[0]) < need:
        raise ConfigError(f"the smallest octave {sizes[0][0]}x{sizes[0][1]} is too small for {layer} (needs "
                          f"{need} pixels a side); use fewer --octaves, a smaller --octave-scale or a larger --size")
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    vgg = build_vgg([layer], net, vgg_weights, pooling, vgg_normalize, dev)
    base = _to_device_image(img, wh, dev)
    total = octaves * iterations
    start = time.perf_counter()
    done = 0
    detail = torch.zeros_like(base[..., :sizes[0][1], :sizes[0][0]])
    first = last = None
    stopped = False

    def objective(x: torch.Tensor) -> torch.Tensor:
        return vgg(x.contiguous(memory_format=torch.channels_last), layers=[layer])[layer].pow(2).mean()

    for k, (w, h) in enumerate(sizes):
        octave_base = F.interpolate(base, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1) \
            if (w, h) != wh else base
        if detail.shape[-2:] != (h, w):
            detail = F.interpolate(detail, size=(h, w), mode="bicubic", align_corners=False)
        x = (octave_base + detail).clamp(0, 1)
        for _ in range(iterations):
            dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=gen).tolist() if jitter else (0, 0))
            xs = torch.roll(x, shifts=(dy, dx), dims=(2, 3)).requires_grad_(True)
            obj = objective(xs)
            (g,) = torch.autograd.grad(obj, xs)
            with torch.no_grad():
                g = torch.roll(g, shifts=(-dy, -dx), dims=(2, 3))
                x = (x + step * g / (g.abs().mean() + 1e-12)).clamp(0, 1)
            done += 1
            value = float(obj.detach())
            first = value if first is None else first
            last = value
            if callback is not None and callback(Progress("dream", done, total, k + 1, octaves, (w, h),
                                                          {"activation": value}, time.perf_counter() - start,
                                                          lambda x=x: to_pil(_quantize(x)))):
                stopped = True
                break
        detail = x - octave_base
        if stopped:
            break
    final = _quantize(x)
    if final.shape[-2:] != base.shape[-2:]:  # stopped early at a smaller octave
        final = _quantize(F.interpolate(final, size=base.shape[-2:], mode="bicubic", align_corners=False))
    with torch.inference_mode():
        terms = {"activation": float(objective(final)), "start_activation": float(objective(base))}
    return OptimizationResult(to_pil(final), terms, done, time.perf_counter() - start, sizes, stopped,
                              {"layer": layer})


def dream(image: ImageLike, layer: str = "relu4_3", **options: Any) -> Image.Image:
    """DeepDream on ``layer``. See :func:`dream_result`."""
    return dream_result(image, layer, **options).image
