"""Image optimisation: Gatys style transfer, feature inversion, texture synthesis, DeepDream, scoring.

Every method here optimises the pixels of one image (RGB in [0, 1], NCHW) against a frozen
:class:`~fastnst.networks.vgg.VGGFeatures` network with the loss terms of :mod:`fastnst.losses`; no
Lightning, a plain loop. The library never prints: pass ``callback`` to see progress. Each public
function returns a PIL image; the ``*_result`` variants also return the final loss terms. The jobs at
the end (:class:`GatysJob`, ..., :func:`run_job`) are what ``fastnst gatys|invert|texture|dream`` run:
every option declared once, checked before any work, results written to files.

Speed (see scripts/bench_gatys.py): the loss network is truncated at the deepest layer used, its
weights never need gradients, activations run channels-last, content and style targets are
computed once per scale under ``torch.inference_mode``, and L-BFGS makes exactly one loss
evaluation per iteration.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fastnst.constants import (DEFAULT_VGG_NORMALIZE, GATYS_CONTENT_LAYERS, GATYS_STYLE_LAYERS, VGG_ARCHS,
                               VGG_LAYERS, VGG_NORMALIZE_CHOICES)
from fastnst.errors import ConfigError, FastNSTError, InputError, unknown_choice
from fastnst.image import fit_long_side, load_rgb, preserve_colors, resize, to_pil, to_tensor
from fastnst.losses import STYLE_STATS, InversionLoss, PerceptualLoss, TotalVariation
from fastnst.networks.vgg import VGGFeatures, check_arch, check_layers
from fastnst.options import check_options, flag_name, option

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
MAX_ITERATIONS = 1_000_000      # chosen: days of CPU time at 256 px; a larger count is a typo
MAX_STYLE_SCALE = 64.0          # chosen: a style image 64x the output's side is far past any useful stroke size
# Inversion: Mahendran & Vedaldi normalise the feature loss by ||Φ0||²; TV keeps the result image-like.
INVERT_TV_WEIGHT = 0.5          # chosen: smooth results; natural photos have TV ≈ 0.002-0.01 here
INVERT_ITERATIONS = 200         # chosen: the feature loss flattens out by then at 256² with L-BFGS
INVERT_LAYER = "relu3_3"        # chosen: a middle layer, where the reconstruction starts to lose detail
TEXTURE_ITERATIONS = 300        # chosen: like Gatys, texture from noise needs a few hundred L-BFGS steps
# DeepDream: google/deepdream's notebook (reference implementation): 4 octaves of scale 1.4, 10 steps each,
# jitter 32 px, step 1.5 on 0-255 input with the gradient normalised by its mean absolute value.
DREAM_OCTAVES = 4
DREAM_OCTAVE_SCALE = 1.4
DREAM_ITERATIONS = 10
DREAM_JITTER = 32
DREAM_STEP = 1.5 / 255.0
DREAM_LAYER = "relu4_3"         # chosen: object parts (eyes, wheels) on VGG, like the notebook's inception_4c

# Per-eval callback: return True to stop early.
ProgressCallback = Callable[["Progress"], Union[bool, None]]


def terms_text(terms: Mapping[str, float], detailed: bool = False) -> str:
    """Loss terms as ``total 1.2  content 0.3 ...`` (per-layer ``style/<layer>`` terms only when ``detailed``)."""
    return "  ".join(f"{k} {v:.4g}" for k, v in terms.items() if detailed or "/" not in k)


@dataclass
class Progress:
    """What a progress callback sees after each loss evaluation."""

    task: str                      # "gatys", "invert", "texture" or "dream"
    iteration: int                 # 1-based, counted over all scales/octaves (and layers of invert_layers)
    total: int                     # iterations planned over all scales/octaves
    scale: int                     # 1-based scale (octave) index
    scales: int
    size: tuple[int, int]          # (width, height) being optimised
    terms: dict[str, float]        # loss terms of the image just evaluated
    seconds: float                 # since the optimisation started
    _image: Callable[[], Image.Image] = field(repr=False, default=lambda: Image.new("RGB", (1, 1)))
    stage: str = ""                # what is being optimised, when there are several (a layer, a scale)

    def image(self) -> Image.Image:
        """The current image (as it would be saved), computed on request."""
        return self._image()

    def text(self) -> str:
        """One line for a progress display: the stage (or scale) and the loss terms."""
        stage = self.stage or (f"scale {self.scale}/{self.scales} {self.size[0]}x{self.size[1]}"
                               if self.scales > 1 else "")
        return f"{stage} {terms_text(self.terms)}".strip()


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


def _pools_before(layer: str, arch: str) -> int:
    names = VGG_LAYERS[arch]
    return sum(1 for n in names[:names.index(layer)] if n.startswith("pool"))


def min_side(layers: Sequence[str], arch: str) -> int:
    """Smallest image side for which every layer in ``layers`` keeps at least one position."""
    return 2 ** max(_pools_before(n, arch) for n in layers)


def check_size(wh: tuple[int, int], layers: Sequence[str], arch: str, what: str) -> None:
    """ConfigError when an image of ``wh`` = (width, height) is too small for the deepest of ``layers``."""
    need = min_side(layers, arch)
    if min(wh) < need:
        deepest = max(layers, key=lambda n: VGG_LAYERS[arch].index(n))
        raise ConfigError(f"{what} {wh[0]}x{wh[1]} is too small for layer {deepest} (needs at least {need} pixels "
                          f"a side); use a larger size or shallower layers")


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


def _check_optimizer(optimizer: str, iterations: Any) -> int:
    if optimizer not in OPTIMIZERS:
        raise unknown_choice("optimizer", optimizer, OPTIMIZERS)
    return _check_positive_int(iterations, "iterations")


def _to_device_image(img: Image.Image, wh: tuple[int, int], device: torch.device) -> torch.Tensor:
    return to_tensor(resize(img, size=wh)).to(device)


def _quantize(x: torch.Tensor) -> torch.Tensor:
    """The image exactly as it will be saved: clamped to [0, 1] and rounded to 8 bits."""
    return x.detach().clamp(0, 1).mul(255).round().div(255)


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


def clear_vgg_cache() -> None:
    """Forget the loss network :func:`build_vgg` keeps for the next call (benchmarks, memory)."""
    _VGG_CACHE.clear()



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



def _schedule(scales: int, long_side: int) -> list[int]:
    """Long sides of the scales, coarse to fine, each half the next."""
    return [max(1, round(long_side / 2 ** (scales - 1 - i))) for i in range(scales)]


# ----------------------------------------------------------------------------------------------- settings

_WEIGHTS_HELP = ("imagenet | random | PATH to a torchvision VGG state dict (default: $FASTNST_VGG_WEIGHTS or "
                 "imagenet; random is for tests only)")


@dataclass
class NetworkSettings:
    """The loss network of every method (defaults: see module constants)."""

    net: str = option("vgg19", "loss network (vgg19: paper)", choices=VGG_ARCHS)
    pooling: str = option("max", "VGG pooling (max, as neural-style; the Gatys paper prefers avg)", choices=POOLINGS)
    vgg_weights: Optional[str] = option(None, _WEIGHTS_HELP)
    vgg_normalize: Optional[str] = option(DEFAULT_VGG_NORMALIZE, "loss-network normalisation: rms (one loss scale "
                                          "for any VGG weights), mean (Gatys' normalised VGG; the bare flag) or "
                                          "none (raw features)", choices=VGG_NORMALIZE_CHOICES)
    normalize_images: Optional[str] = option(None, "folder of images for the normalisation statistics (default: "
                                             "fastnst's bundled photos); statistics are cached", metavar="DIR")


@dataclass
class GatysSettings(NetworkSettings):
    """Loss settings shared by :func:`gatys`, :func:`texture` and :func:`score`."""

    content_layers: Union[Sequence[str], str] = option(GATYS_CONTENT_LAYERS, "content layers (paper)")
    style_layers: Union[Sequence[str], str] = option(GATYS_STYLE_LAYERS, "style layers (paper)")
    style_layer_weights: Union[Sequence[float], Mapping[str, float], None] = option(
        None, "one weight per style layer (default: all 1, paper)")
    content_weight: float = option(GATYS_CONTENT_WEIGHT, "content loss weight", low=0)
    style_weight: float = option(GATYS_STYLE_WEIGHT, "style loss weight", low=0)
    tv_weight: float = option(GATYS_TV_WEIGHT, "total-variation weight (0: paper)", low=0)
    style_blend: Optional[Sequence[float]] = option(None, "weights, one per style image (default: equal)", low=0)
    style_scale: float = option(1.0, "style image long side relative to the output's (neural-style)", above=0)
    style_stat: str = option("gram", "style statistic (gram: paper)", choices=STYLE_STATS)

    def check(self) -> None:
        """Validate everything that does not need the images (before long work starts)."""
        check_arch(self.net)
        self.content_layers = check_layers(self.content_layers, self.net)
        self.style_layers = check_layers(self.style_layers, self.net)
        if self.pooling not in POOLINGS:
            raise unknown_choice("pooling", self.pooling, POOLINGS)
        if self.style_stat not in STYLE_STATS:
            raise unknown_choice("style statistic", self.style_stat, STYLE_STATS)
        self.content_weight = _check_nonneg(self.content_weight, "content weight")
        self.style_weight = _check_nonneg(self.style_weight, "style weight")
        self.tv_weight = _check_nonneg(self.tv_weight, "tv weight")
        self.style_scale = _check_nonneg(self.style_scale, "style scale")
        if not 0 < self.style_scale <= MAX_STYLE_SCALE:
            raise ConfigError(f"style scale must be above 0 and at most {MAX_STYLE_SCALE:g}, got {self.style_scale:g}")
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
        """Every layer the loss taps: content layers, then style layers."""
        return tuple(dict.fromkeys(tuple(self.content_layers) + tuple(self.style_layers)))


def _settings(settings: GatysSettings | None, overrides: Mapping[str, Any]) -> GatysSettings:
    """A fresh GatysSettings from ``settings`` (or the defaults) with keyword ``overrides`` applied."""
    names = [f.name for f in dataclasses.fields(GatysSettings)]
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise TypeError(f"unknown option '{unknown[0]}'")
    base = {n: getattr(settings, n) for n in names} if settings is not None else {}
    return GatysSettings(**{**base, **overrides})


class GatysLoss:
    """The Gatys objective on a frozen VGG: a :class:`~fastnst.losses.PerceptualLoss` (without its content
    term for texture synthesis, ``content=False``) plus per-scale targets, computed once."""

    def __init__(self, settings: GatysSettings, device: torch.device, vgg: VGGFeatures | None = None,
                 content: bool = True) -> None:
        self.settings = settings
        self.device = device
        content_layers = tuple(settings.content_layers) if content else ()
        layers = tuple(dict.fromkeys(content_layers + tuple(settings.style_layers)))
        self.vgg = vgg if vgg is not None else build_vgg(layers, settings.net, settings.vgg_weights,
                                                         settings.pooling, settings.vgg_normalize, device,
                                                         settings.normalize_images)
        self.loss = PerceptualLoss(self.vgg, content_layers, settings.style_layers,
                                   content_weight=settings.content_weight, style_weight=settings.style_weight,
                                   tv_weight=settings.tv_weight, style_layer_weights=settings.style_layer_weights,
                                   style_stat=settings.style_stat)
        self.content_features: dict[str, torch.Tensor] | None = None

    def set_targets(self, content: Image.Image | None, styles: Sequence[Image.Image], wh: tuple[int, int],
                    blend: Sequence[float] | None) -> None:
        """Targets for an output of size ``wh``: content resized to it, styles to style_scale x its long side."""
        with torch.no_grad():
            self.content_features = None
            if content is not None and self.loss.content is not None and self.settings.content_weight > 0:
                c = _to_device_image(content, wh, self.device).contiguous(memory_format=torch.channels_last)
                self.content_features = {k: v.clone() for k, v in self.loss.content_features(c).items()}
            if styles and self.settings.style_weight > 0:
                side = max(1, round(self.settings.style_scale * max(wh)))
                imgs = [to_tensor(resize(s, long_edge=side)).to(self.device) for s in styles]
                imgs = [i.contiguous(memory_format=torch.channels_last) for i in imgs]
                for img in imgs:
                    check_size((img.shape[-1], img.shape[-2]), self.settings.style_layers, self.settings.net,
                               "style image at --style-scale")
                self.loss.set_style(imgs, blend)

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.loss(x.contiguous(memory_format=torch.channels_last), content_features=self.content_features)


def _optimize_one_scale(task: str, x0: torch.Tensor, evaluate: Callable[[torch.Tensor], dict[str, torch.Tensor]],
                        optimizer: str, iterations: int, lr: float | None, callback: ProgressCallback | None,
                        tidy: Callable[[dict[str, float]], dict[str, float]], stage: str = "") -> OptimizationResult:
    """Optimise ``x0`` at its size, reporting each evaluation (terms through ``tidy``); the saved image's terms."""
    wh = (x0.shape[-1], x0.shape[-2])
    start = time.perf_counter()
    done = 0

    def report(terms: dict[str, float], cur: torch.Tensor) -> bool:
        nonlocal done
        done += 1
        if callback is None:
            return False
        return bool(callback(Progress(task, done, iterations, 1, 1, wh, tidy(terms), time.perf_counter() - start,
                                      lambda: to_pil(_quantize(cur)), stage)))

    x, _, stopped = _run_optimizer(x0, evaluate, optimizer, iterations, lr, report)
    final = _quantize(x)
    with torch.inference_mode():
        terms = tidy({k: float(v) for k, v in evaluate(final).items()})
    return OptimizationResult(to_pil(final), terms, done, time.perf_counter() - start, [wh], stopped)


def _terms_out(terms: Mapping[str, float]) -> dict[str, float]:
    keys = ["total", "content", "style", "tv"] + sorted(k for k in terms if k.startswith("style/"))
    return {k: float(terms[k]) for k in keys if k in terms}


# ----------------------------------------------------------------------------------------------- Gatys

def gatys_result(content: ImageLike, style: ImageLike | Sequence[ImageLike], *,
                 settings: GatysSettings | None = None, init: str | ImageLike = "content",
                 optimizer: str = "lbfgs", iterations: int | Sequence[int] = GATYS_ITERATIONS,
                 lr: float | None = None, size: int | None = GATYS_SIZE, scales: int = 1, original_colors: bool = False,
                 seed: int = 0, device: str | torch.device | None = None,
                 callback: ProgressCallback | None = None, **loss_settings: Any) -> OptimizationResult:
    """Gatys et al. style transfer; like :func:`gatys` but returns the final loss terms too.

    ``iterations`` loss evaluations are made at each of ``scales`` scales (coarse to fine, each twice
    the previous, the finest with long side ``size``; ``None`` keeps the content's size); a list gives
    one count per scale. Loss settings are :class:`GatysSettings` fields, given as ``settings`` or as
    keywords. ``original_colors`` keeps the content's colours (:func:`fastnst.image.preserve_colors`).
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
    need = min_side(settings.layers(), settings.net)
    sizes = [fit_long_side(content_img.size, s) for s in _schedule(scales, long_side)]
    for wh, label in zip(sizes, ["coarsest scale"] + ["scale"] * (len(sizes) - 1)):
        if min(wh) < need:
            hint = " or fewer --scales" if scales > 1 else ""
            raise ConfigError(f"output {label} {wh[0]}x{wh[1]} is too small for the chosen layers (needs at least "
                              f"{need} pixels a side); use a larger --size{hint}")
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    loss = GatysLoss(settings, dev)
    content_t = to_tensor(content_img).to(dev) if original_colors else None
    total_its = sum(per_scale)
    start = time.perf_counter()
    x: torch.Tensor | None = None
    done_total = 0
    stopped = False

    def finish(t: torch.Tensor) -> torch.Tensor:
        if content_t is None:
            return _quantize(t)
        original = F.interpolate(content_t, size=t.shape[-2:], mode="bilinear", align_corners=False) \
            if content_t.shape[-2:] != t.shape[-2:] else content_t
        return _quantize(preserve_colors(original, t.clamp(0, 1), channel_axis=1))

    for k, wh in enumerate(sizes):
        loss.set_targets(content_img, styles, wh, blend)
        if x is None:
            x = _init_image(init_v, wh, content_img, styles[0], dev, gen)
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
    check_size(img.size, settings.layers(), settings.net, "image")
    dev = resolve_device(device)
    loss = GatysLoss(settings, dev)
    loss.set_targets(content_img, styles, img.size, blend)
    x = to_tensor(img).to(dev)
    with torch.inference_mode():
        return _terms_out({k: float(v) for k, v in loss(x).items()})


# ----------------------------------------------------------------------------------------------- inversion

def invert_result(image: ImageLike, layer: str = INVERT_LAYER, *, net: str = "vgg19", init: str | ImageLike = "noise",
                  iterations: int = INVERT_ITERATIONS, optimizer: str = "lbfgs", lr: float | None = None,
                  tv_weight: float = INVERT_TV_WEIGHT, size: int | None = 256, pooling: str = "max",
                  vgg_weights: str | os.PathLike | None = None, vgg_normalize: str | os.PathLike | None = None,
                  seed: int = 0, device: str | torch.device | None = None,
                  callback: ProgressCallback | None = None, vgg: VGGFeatures | None = None) -> OptimizationResult:
    """Reconstruct an image from one layer's activations (Mahendran & Vedaldi 2015).

    Minimises ||Φ(x) - Φ(image)||² / ||Φ(image)||² + tv_weight · TV(x) (:class:`~fastnst.losses.InversionLoss`
    and :class:`~fastnst.losses.TotalVariation`) from white noise (``init='noise'``) or from another image.
    The terms are ``feature`` (the normalised feature loss), ``tv`` and ``total``.
    """
    check_arch(net)
    (layer,) = check_layers([layer], net) if isinstance(layer, str) and "," not in layer else (None,)
    if layer is None:
        raise ConfigError("invert takes one layer; use --layers for several")
    iterations = _check_optimizer(optimizer, iterations)
    tv_weight = _check_nonneg(tv_weight, "tv weight")
    init_v = _load_init(init)
    if init_v in ("content", "style"):
        raise unknown_choice("init", str(init_v), ("noise", "PATH"))
    img = _as_pil(image, "image")
    wh = img.size if size is None else fit_long_side(img.size, _check_positive_int(size, "size"))
    check_size(wh, [layer], net, "image size")
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    if vgg is None:
        vgg = build_vgg([layer], net, vgg_weights, pooling, vgg_normalize, dev)
    target_img = _to_device_image(img, wh, dev).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # not inference_mode: the target is saved for backward by the loss
        target = vgg(target_img, layers=[layer])[layer].clone()
    if not float(target.pow(2).mean()) > 0:
        raise InputError(f"layer {layer} is all zeros for this image; nothing to reconstruct (try a shallower layer)")
    feature, tv = InversionLoss(target), TotalVariation()

    def evaluate(x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x.contiguous(memory_format=torch.channels_last)
        f = feature(vgg(x, layers=[layer])[layer])
        t = tv_weight * tv(x) if tv_weight > 0 else x.new_zeros(())
        return {"total": f + t, "feature": f, "tv": t}

    x0 = _init_image(init_v, wh, None, None, dev, gen)
    with torch.inference_mode():
        start_terms = {k: float(v) for k, v in evaluate(x0).items()}
    result = _optimize_one_scale("invert", x0, evaluate, optimizer, iterations, lr, callback, dict, layer)
    result.extra.update({"layer": layer, "start_terms": start_terms})
    return result


def invert(image: ImageLike, layer: str = INVERT_LAYER, **options: Any) -> Image.Image:
    """Feature inversion: an image whose ``layer`` activations match ``image``'s. See :func:`invert_result`."""
    return invert_result(image, layer, **options).image


def invert_layers(image: ImageLike, layers: Sequence[str] | str, *, net: str = "vgg19", size: int | None = 256,
                  pooling: str = "max", vgg_weights: str | os.PathLike | None = None,
                  vgg_normalize: str | os.PathLike | None = None, device: str | torch.device | None = None,
                  callback: ProgressCallback | None = None, **options: Any) -> dict[str, OptimizationResult]:
    """Feature inversion of each of ``layers`` in turn, on one loss network: ``{layer: result}``.

    Every layer's size is checked before any work. Progress counts over all layers (``stage`` names the
    layer); a callback returning True stops them all. ``options``: those of :func:`invert_result`.
    """
    layers = check_layers(layers, net)
    img = _as_pil(image, "image")
    wh = img.size if size is None else fit_long_side(img.size, _check_positive_int(size, "size"))
    for name in layers:
        check_size(wh, [name], net, "image size")
    dev = resolve_device(device)
    vgg = build_vgg(layers, net, vgg_weights, pooling, vgg_normalize, dev)
    results: dict[str, OptimizationResult] = {}
    for i, name in enumerate(layers):
        def relay(p: Progress, i: int = i, name: str = name) -> bool:
            stage = f"{name} ({i + 1}/{len(layers)})" if len(layers) > 1 else name
            return bool(callback is not None and callback(dataclasses.replace(
                p, iteration=i * p.total + p.iteration, total=len(layers) * p.total, stage=stage)))

        results[name] = invert_result(img, name, net=net, size=size, pooling=pooling, device=dev, callback=relay,
                                      vgg=vgg, **options)
        if results[name].stopped_early:
            break
    return results


def inversion_grid(image: ImageLike, results: Mapping[str, OptimizationResult]) -> Image.Image:
    """The image and its reconstructions side by side (at the reconstructions' size)."""
    from fastnst.image import make_grid

    shown = list(results.values())
    return make_grid([resize(_as_pil(image, "image"), size=shown[0].image.size)] + [r.image for r in shown])


# ----------------------------------------------------------------------------------------------- texture

def parse_size(size: Any, flag: str = "--size") -> int | tuple[int, int]:
    """An output size: a positive int N, or 'WxH' / (width, height); each side under the pixel cap."""
    from fastnst import checks

    text = str(size).lower()
    if isinstance(size, (tuple, list)) or "x" in text:
        parts = size if isinstance(size, (tuple, list)) else text.split("x", 1)
        if len(parts) != 2:
            raise ConfigError(f"{flag} must be N or WxH, got '{size}'")
        w, h = (parse_size(p, flag) for p in parts)
        checks.pixels(int(w), int(h), "the output", f"use a smaller {flag}")
        return int(w), int(h)
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} must be a positive integer, got '{size}'") from None
    if value <= 0 or isinstance(size, bool):
        raise ConfigError(f"{flag} must be a positive integer, got {size}")
    return checks.side(flag, value)  # its square under the pixel cap


def texture_result(style: ImageLike | Sequence[ImageLike], size: int | tuple[int, int] = 256, *,
                   settings: GatysSettings | None = None, iterations: int = TEXTURE_ITERATIONS,
                   optimizer: str = "lbfgs", lr: float | None = None, init: str | ImageLike = "noise",
                   seed: int = 0, device: str | torch.device | None = None,
                   callback: ProgressCallback | None = None, **loss_settings: Any) -> OptimizationResult:
    """Texture synthesis from the style and TV terms alone (Gatys, Ecker & Bethge 2015), any output size.

    ``size``: an int for a square texture or (width, height). The style image is resized so that its
    long side is ``style_scale`` x the output's long side. Content settings are ignored.
    """
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
    settings.check()
    if settings.style_weight <= 0:
        raise ConfigError("texture synthesis needs a positive style weight")
    check_size(wh, settings.style_layers, settings.net, "texture size")
    iterations = _check_optimizer(optimizer, iterations)
    styles_in = list(style) if isinstance(style, (list, tuple)) else [style]
    blend = settings.check_blend(len(styles_in))
    init_v = _load_init(init)
    if init_v == "content":
        raise unknown_choice("init", "content", ("noise", "style", "PATH"))
    styles = [_as_pil(s, "style image") for s in styles_in]
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    loss = GatysLoss(settings, dev, content=False)
    loss.set_targets(None, styles, wh, blend)
    x0 = _init_image(init_v, wh, None, styles[0], dev, gen)
    return _optimize_one_scale("texture", x0, loss, optimizer, iterations, lr, callback, _terms_out)


def texture(style: ImageLike | Sequence[ImageLike], size: int | tuple[int, int] = 256, **options: Any) -> Image.Image:
    """A texture of ``size`` with ``style``'s statistics. See :func:`texture_result`."""
    return texture_result(style, size, **options).image


# ----------------------------------------------------------------------------------------------- DeepDream

def dream_result(image: ImageLike, layer: str = DREAM_LAYER, *, net: str = "vgg19", octaves: int = DREAM_OCTAVES,
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
    (layer,) = check_layers([layer], net)
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
    wh = img.size if size is None else fit_long_side(img.size, _check_positive_int(size, "size"))
    sizes = [fit_long_side(wh, max(1, round(max(wh) / octave_scale ** (octaves - 1 - i)))) for i in range(octaves)]
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
            stage = f"{layer} scale {k + 1}/{octaves} {w}x{h}"
            if callback is not None and callback(Progress("dream", done, total, k + 1, octaves, (w, h),
                                                          {"activation": value}, time.perf_counter() - start,
                                                          lambda x=x: to_pil(_quantize(x)), stage)):
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




def dream(image: ImageLike, layer: str = DREAM_LAYER, **options: Any) -> Image.Image:
    """DeepDream on ``layer``. See :func:`dream_result`."""
    return dream_result(image, layer, **options).image


# ----------------------------------------------------------------------------------------------- jobs

class OptimizationInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_job`; the message says where the last intermediate image is."""


def _iterations(default: int) -> Any:
    return option(default, "loss evaluations (per scale or octave where there are several)", high=MAX_ITERATIONS)


def _side(default: Any, help: str = "long side of the output in pixels") -> Any:
    return option(default, help)


def _required(help: str) -> Any:
    return option("", help)


@dataclass
class RunOptions:
    """What every optimisation job takes besides its loss: output, randomness, device."""

    output: str = option("", "output image (.png, .jpg, .webp, ...)", short="-o")
    overwrite: bool = option(False, "replace existing output files")
    seed: int = option(0, "random seed for noise and jitter", low=0, high=2 ** 63 - 1)
    device: str = option("auto", "cpu, cuda, cuda:N or auto (auto: cuda if available)")

    TASK: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    CLI: ClassVar[dict[str, dict[str, Any]]] = {"output": {"required": True},
                                                "vgg_normalize": {"nargs": "?", "const": "mean"}}
    SKIP: ClassVar[tuple[str, ...]] = ()

    def inputs(self) -> list[Any]:
        """The input files (outputs must not replace them)."""
        return []

    def targets(self) -> list[Path]:
        """The files the job writes (checked before any work)."""
        return [Path(self.output)]

    def check(self) -> None:
        """Everything that can be checked before any work: options, sizes, memory, outputs."""
        from fastnst import checks
        from fastnst.outputs import check_target

        check_options(self)
        if not str(self.output).strip():
            raise ConfigError("-o/--output is empty; give an image file name such as out.png")
        for f in dataclasses.fields(self):
            if self.CLI.get(f.name, {}).get("required") and not getattr(self, f.name):
                raise ConfigError(f"{flag_name(f)} is missing; give the {f.metadata['help'].split(' (')[0]}")
        for target in self.targets():  # out.xyz: refused now, not after the optimisation
            check_target(target, self.overwrite, inputs=[i for i in self.inputs() if isinstance(i, (str, os.PathLike))
                                                          and str(i) not in INIT_CHOICES])
        if getattr(self, "iterations", 1) < 1:
            raise ConfigError(f"--iterations must be at least 1, got {getattr(self, 'iterations')}")
        w, h = _pair(parse_size(getattr(self, "size")))
        checks.optimize_size(w, h, "the image", "--size", self.device_kind())

    def device_kind(self) -> str:
        """'cuda' or 'cpu': whose memory the job's estimates are checked against."""
        return "cuda" if str(self.device).startswith("cuda") else "cpu"

    def execute(self, callback: ProgressCallback | None) -> dict[str, OptimizationResult]:
        """Run the optimisation(s): ``{name: result}``."""
        raise NotImplementedError

    def images(self, results: Mapping[str, OptimizationResult]) -> list[tuple[Path, Image.Image]]:
        """What to write where, once the results are in."""
        return [(Path(self.output), next(iter(results.values())).image)]


@dataclass
class OptimizerOptions:
    """The pixel optimiser of gatys, texture and invert."""

    optimizer: str = option("lbfgs", "lbfgs (paper) or adam", choices=OPTIMIZERS)
    lr: Optional[float] = option(None, f"step size (default: L-BFGS 1, Adam {ADAM_LR:g})", above=0, high=1e6)


@dataclass
class StyleJobOptions(RunOptions, OptimizerOptions, GatysSettings):
    """What gatys and texture share: style images (files or names), intermediate images."""

    style: list[str] = option(help="style image(s) or names (a painting such as starry_night, downloaded once; a "
                              "generated style such as mosaic); repeat or list several to blend them",
                              metavar="S", default_factory=list)
    save_every: int = option(0, "also write OUTPUT-stem-NNNN.ext every N iterations (kept if interrupted)",
                             low=0, metavar="N")

    CLI: ClassVar[dict[str, dict[str, Any]]] = {**RunOptions.CLI, "style": {
        "action": "extend", "nargs": "+", "type": str, "required": True}}

    def inputs(self) -> list[Any]:
        return [*self.style, getattr(self, "init", None)]

    def intermediate(self, n: int) -> Path:
        """The intermediate image written after ``n`` iterations."""
        out = Path(self.output)
        return out.with_name(f"{out.stem}-{n:04d}{out.suffix}")

    def check(self) -> None:
        from fastnst import checks

        super().check()
        GatysSettings.check(self)  # the loss settings' own checks (RunOptions.check comes first in the MRO)
        self.check_blend(len(self.style))
        side = max(1, int(round(max(_pair(parse_size(getattr(self, "size")))) * self.style_scale)))
        hint = "use a smaller --style-scale or --size"
        what = f"the style image at --style-scale {self.style_scale:g}"
        checks.pixels(side, side, what, hint)
        checks.memory(checks.FORWARD_BYTES_PER_PIXEL * side * side * len(self.style), f"the style image at {side} px",
                      hint, self.device_kind())
        total = getattr(self, "iterations") * getattr(self, "scales", 1)
        for n in range(self.save_every, total + 1, self.save_every) if self.save_every and not self.overwrite else ():
            if self.intermediate(n).exists():
                raise ConfigError(f"intermediate image '{self.intermediate(n)}' exists; pass --overwrite or choose "
                                  f"another output name")

    def resolved_styles(self) -> list[str]:
        """Style files for the ``style`` values: files as given, painting names downloaded once, generated made."""
        from fastnst.styles.paintings import resolve_style

        return [str(resolve_style(s)) for s in self.style]

    def settings(self) -> GatysSettings:
        """The loss settings of this job."""
        return GatysSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(GatysSettings)})


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return size if isinstance(size, tuple) else (size, size)


@dataclass
class GatysJob(StyleJobOptions):
    """``fastnst gatys``: style transfer by optimising the image (Gatys et al. 2016)."""

    content: str = _required("content image")
    init: str = option("content", "content | noise | style | PATH")
    iterations: int = _iterations(GATYS_ITERATIONS)
    size: int = _side(GATYS_SIZE)
    scales: int = option(1, "coarse-to-fine scales, each twice the previous size", low=1, high=16)
    original_colors: bool = option(False, "keep the content's colours (luminance transfer)")

    TASK: ClassVar[str] = "gatys"
    DESCRIPTION: ClassVar[str] = "Style transfer by optimising the image (Gatys et al. 2016)."
    CLI: ClassVar[dict[str, dict[str, Any]]] = {**StyleJobOptions.CLI, "content": {"required": True}}

    def inputs(self) -> list[Any]:
        return [self.content, *super().inputs()]

    def execute(self, callback: ProgressCallback | None) -> dict[str, OptimizationResult]:
        return {"gatys": gatys_result(self.content, self.resolved_styles(), settings=self.settings(), init=self.init,
                                      optimizer=self.optimizer, iterations=self.iterations, lr=self.lr,
                                      size=parse_size(self.size), scales=self.scales,
                                      original_colors=self.original_colors, seed=self.seed, device=self.device,
                                      callback=callback)}


@dataclass
class TextureJob(StyleJobOptions):
    """``fastnst texture``: texture synthesis from style statistics (Gatys et al. 2015)."""

    init: str = option("noise", "noise (paper) | style | PATH")
    iterations: int = _iterations(TEXTURE_ITERATIONS)
    size: str = _side("256", "output size: N (square) or WxH")

    TASK: ClassVar[str] = "texture"
    DESCRIPTION: ClassVar[str] = "Texture synthesis from style statistics (Gatys et al. 2015)."
    SKIP: ClassVar[tuple[str, ...]] = ("content_layers", "content_weight")

    def execute(self, callback: ProgressCallback | None) -> dict[str, OptimizationResult]:
        size = _pair(parse_size(self.size))
        return {"texture": texture_result(self.resolved_styles(), size, settings=self.settings(),
                                          iterations=self.iterations, optimizer=self.optimizer, lr=self.lr,
                                          init=self.init, seed=self.seed, device=self.device, callback=callback)}


@dataclass
class ImageJobOptions(RunOptions, NetworkSettings):
    """What invert and dream share: one image, raw features unless asked (their losses are scale-free)."""

    image: str = _required("image to start from / to invert")
    vgg_normalize: Optional[str] = option("none", "loss-network normalisation: none (their losses are scale-free "
                                          "already), mean (Gatys' normalised VGG; the bare flag; implied by "
                                          "--normalize-images) or rms", choices=VGG_NORMALIZE_CHOICES)

    CLI: ClassVar[dict[str, dict[str, Any]]] = {**RunOptions.CLI, "image": {"required": True}}

    def inputs(self) -> list[Any]:
        return [self.image]

    def normalization(self) -> str | None:
        """``vgg_normalize`` for :func:`build_vgg`: a folder given means Gatys' mean over it."""
        if self.normalize_images is None:
            return self.vgg_normalize
        if not os.path.isdir(self.normalize_images):
            raise InputError(f"--normalize-images '{self.normalize_images}' is not a folder")
        if self.vgg_normalize == "rms":
            raise ConfigError("--normalize-images with invert/dream takes --vgg-normalize mean (or no --vgg-normalize)")
        return self.normalize_images

    def check(self) -> None:
        super().check()
        self.normalization()


@dataclass
class InvertJob(ImageJobOptions, OptimizerOptions):
    """``fastnst invert``: reconstruct an image from one layer's activations (Mahendran & Vedaldi 2015)."""

    layer: Optional[str] = option(None, f"layer to invert (default {INVERT_LAYER})")
    layers: Optional[list[str]] = option(None, "several layers, comma-separated: writes OUTPUT-stem-LAYER.ext for each")
    grid: bool = option(False, "with --layers: also write OUTPUT as the image and its reconstructions side by side")
    init: str = option("noise", "noise | PATH: start from another image")
    tv_weight: float = option(INVERT_TV_WEIGHT, "total-variation weight", low=0)
    iterations: int = _iterations(INVERT_ITERATIONS)
    size: int = _side(256)

    TASK: ClassVar[str] = "invert"
    DESCRIPTION: ClassVar[str] = "Reconstruct an image from one layer's activations (Mahendran & Vedaldi 2015)."

    def inputs(self) -> list[Any]:
        return [self.image, self.init]

    def chosen_layers(self) -> tuple[str, ...]:
        """The layers to invert (checked)."""
        if self.layer and self.layers:
            raise ConfigError("give --layer or --layers, not both")
        if self.grid and not self.layers:
            raise ConfigError("--grid needs --layers a,b,c")
        return check_layers(self.layers or self.layer or INVERT_LAYER, self.net)

    def targets(self) -> list[Path]:
        out, names = Path(self.output), self.chosen_layers()
        if not self.layers:
            return [out]
        return [out.with_name(f"{out.stem}-{n}{out.suffix}") for n in names] + ([out] if self.grid else [])

    def execute(self, callback: ProgressCallback | None) -> dict[str, OptimizationResult]:
        init = self.init if self.init == "noise" else load_rgb(self.init)
        return invert_layers(load_rgb(self.image), self.chosen_layers(), net=self.net, size=parse_size(self.size),
                             pooling=self.pooling, vgg_weights=self.vgg_weights, vgg_normalize=self.normalization(),
                             device=self.device, callback=callback, init=init, iterations=self.iterations,
                             optimizer=self.optimizer, lr=self.lr, tv_weight=self.tv_weight, seed=self.seed)

    def images(self, results: Mapping[str, OptimizationResult]) -> list[tuple[Path, Image.Image]]:
        if not self.layers:
            return [(Path(self.output), results[self.chosen_layers()[0]].image)]
        out = [(t, r.image) for t, r in zip(self.targets(), results.values())]
        return out + ([(Path(self.output), inversion_grid(self.image, results))] if self.grid else [])


@dataclass
class DreamJob(ImageJobOptions):
    """``fastnst dream``: DeepDream, amplify what a layer sees, octave by octave."""

    layer: str = option(DREAM_LAYER, "layer whose activations are amplified")
    octaves: int = option(DREAM_OCTAVES, "octaves (deepdream notebook)", low=1, high=32)
    octave_scale: float = option(DREAM_OCTAVE_SCALE, "size ratio between octaves", above=1, high=16)
    step: float = option(DREAM_STEP, "step per iteration in [0,1] pixel units (1.5/255: deepdream notebook)",
                         above=0, high=1)
    jitter: int = option(DREAM_JITTER, "random shift in pixels", low=0, high=4096)
    iterations: int = _iterations(DREAM_ITERATIONS)
    size: int = _side(512)

    TASK: ClassVar[str] = "dream"
    DESCRIPTION: ClassVar[str] = "DeepDream: amplify what a layer sees, octave by octave."

    def execute(self, callback: ProgressCallback | None) -> dict[str, OptimizationResult]:
        return {"dream": dream_result(self.image, self.layer, net=self.net, octaves=self.octaves,
                                      octave_scale=self.octave_scale, iterations=self.iterations, step=self.step,
                                      jitter=self.jitter, size=parse_size(self.size), pooling=self.pooling,
                                      vgg_weights=self.vgg_weights, vgg_normalize=self.normalization(),
                                      seed=self.seed, device=self.device, callback=callback)}


JOBS: dict[str, type[RunOptions]] = {cls.TASK: cls for cls in (GatysJob, InvertJob, TextureJob, DreamJob)}


@dataclass
class JobReport:
    """What :func:`run_job` did: the files written, the results, the intermediate images."""

    task: str
    outputs: list[str]
    results: dict[str, OptimizationResult]
    intermediates: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        if self.task == "invert":
            return {"task": "invert", "outputs": self.outputs,
                    "layers": {name: {"loss": r.terms, "start_loss": r.extra["start_terms"],
                                      "iterations": r.iterations, "seconds": round(r.seconds, 3)}
                               for name, r in self.results.items()}}
        r = next(iter(self.results.values()))
        extra = {"layer": r.extra["layer"]} if self.task == "dream" else {"intermediates": self.intermediates}
        return {"task": self.task, "outputs": self.outputs, "size": list(r.image.size), "iterations": r.iterations,
                "seconds": round(r.seconds, 3), "sizes": [list(s) for s in r.sizes], "loss": r.terms, **extra}

    def text(self) -> str:
        """A short human-readable summary (the final loss terms included)."""
        if self.task == "invert":
            lines = [f"{name}: feature loss {r.extra['start_terms']['feature']:.4g} -> {r.terms['feature']:.4g} "
                     f"(tv {r.terms['tv']:.4g}) in {r.iterations} iterations, {r.seconds:.1f} s"
                     for name, r in self.results.items()]
            return "\n".join(lines + [f"wrote {', '.join(self.outputs)}"])
        r = next(iter(self.results.values()))
        w, h = r.image.size
        return (f"wrote {', '.join(self.outputs)} ({w}x{h}) after {r.iterations} iterations in {r.seconds:.1f} s\n"
                f"final: {terms_text(r.terms, detailed=True)}")


def run_job(job: RunOptions, callback: ProgressCallback | None = None) -> JobReport:
    """Check ``job`` (a :data:`JOBS` class) before any work, run it and write its images.

    ``save_every`` intermediate images are written as the optimisation goes. Ctrl-C raises
    :class:`OptimizationInterrupted` saying which intermediate image is the last.
    """
    from fastnst import checks
    from fastnst.image import save_image

    job.check()
    cpus = checks.available_cpus()
    if torch.get_num_threads() > cpus:  # the process may use fewer CPUs than the machine has
        torch.set_num_threads(cpus)
    saved: list[Path] = []
    every = getattr(job, "save_every", 0)

    def step(p: Progress) -> bool:
        stop = bool(callback(p)) if callback is not None else False
        if every and p.iteration % every == 0:
            path = job.intermediate(p.iteration)  # type: ignore[attr-defined]
            save_image(p.image(), path, overwrite=True if job.overwrite else path in saved)
            saved.append(path)
        return stop

    try:
        results = job.execute(step)
    except KeyboardInterrupt:
        raise OptimizationInterrupted(f"interrupted; the last intermediate image is {saved[-1]}" if saved else
                                      "interrupted before any image was saved (use --save-every N to keep "
                                      "intermediate images)") from None
    written = []
    for path, image in job.images(results):
        save_image(image, path, overwrite=job.overwrite)
        written.append(str(path))
    return JobReport(job.TASK, written, results, [str(s) for s in saved])
