"""Constants shared by every part of fastnst. Each value lives here once.

Importing this module is cheap: it uses only the standard library.
"""

from __future__ import annotations

import os
from pathlib import Path

# fastnst's version (the package's __version__; recorded in the files it writes)
VERSION = "0.1.0"

# fastnst's bundled photos and style pictures (licences in assets/ATTRIBUTION.md)
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
#: The built-in styles' model shipped in the package (public as ``fastnst.BUILTIN_MODEL``): one multi-style
#: ONNX file that ``fastnst stylize``, ``fastnst.stylize`` and ``Stylizer()`` use when no model is given.
BUILTIN_MODEL = Path(__file__).resolve().parent / "styles" / "models" / "builtin.onnx"
#: Its style when none is asked for (``fastnst styles`` lists them all).
BUILTIN_DEFAULT_STYLE = "pointillist"

# ImageNet statistics used to train torchvision's VGG weights (torchvision docs).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# VGG configurations (Simonyan & Zisserman 2014), as in torchvision.models.vgg: "M" is a pooling layer.
_VGG_CFG: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


def _layer_names(cfg: tuple[int | str, ...]) -> tuple[str, ...]:
    """Names of torchvision's ``features`` modules in order: conv1_1, relu1_1, ..., pool1, conv2_1, ..."""
    names: list[str] = []
    block, index = 1, 1
    for item in cfg:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return tuple(names)


VGG_LAYERS: dict[str, tuple[str, ...]] = {arch: _layer_names(cfg) for arch, cfg in _VGG_CFG.items()}
VGG16_LAYERS = VGG_LAYERS["vgg16"]
VGG19_LAYERS = VGG_LAYERS["vgg19"]
VGG_ARCHS: tuple[str, ...] = tuple(VGG_LAYERS)

# Loss layers. Johnson et al. 2016, section 4.2 (paper): content relu2_2 (their "relu2_2"),
# style relu1_2, relu2_2, relu3_3, relu4_3 of VGG-16.
JOHNSON_CONTENT_LAYERS: tuple[str, ...] = ("relu2_2",)
JOHNSON_STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
# Gatys et al. 2016 (paper): content conv4_2 (we tap after its ReLU, as most reference code does),
# style conv1_1 .. conv5_1 (after ReLU) of VGG-19.
GATYS_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
GATYS_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

# VGG weights: "imagenet" (torchvision hub cache), "random" (explicit, for tests/offline) or a file path.
VGG_WEIGHTS_ENV = "FASTNST_VGG_WEIGHTS"
VGG_WEIGHT_CHOICES: tuple[str, ...] = ("imagenet", "random")
# Loss-network normalisation (fastnst.networks.vgg_normalize): "rms" gives every weight set one loss
# scale (the default of every loss; chosen: scripts/bench_quality.py --balance), "mean" is Gatys et
# al.'s normalised VGG, "none" the raw features.
VGG_NORMALIZE_CHOICES: tuple[str, ...] = ("rms", "mean", "none")
DEFAULT_VGG_NORMALIZE = "rms"
# VGG pooling: max (reference implementation: neural-style, torchvision) or avg (the Gatys paper prefers it).
VGG_POOLINGS: tuple[str, ...] = ("max", "avg")

# Perceptual-loss weights of feed-forward training (fastnst train; the defaults of losses.PerceptualLoss), on
# the RMS-normalised loss network (one scale for every VGG weight set). Chosen on real VGG16 (Caffe) features
# by looking at cpu-quick previews (brushstrokes style, 6 photos): style 2 showed no content after 300 steps
# (content loss flat at 2.1 while style fell 96 -> 9), 0.5 only faint shapes after 600; 0.15 shows every
# photo's objects under the style's strokes by step 200. TV off, as pytorch/examples leaves it (the paper's
# values belong to its unnormalised loss). Not yet calibrated: bench_quality's checkerboard measure gives the
# cpu-quick network 3-18x the photo's spectral energy at period 2 (Gatys: 1-3x), so a TV term is the next
# thing to try.
JOHNSON_CONTENT_WEIGHT = 1.0
JOHNSON_STYLE_WEIGHT = 0.15
JOHNSON_TV_WEIGHT = 0.0

# Upper bound of an optimisation's iteration count (gatys, texture, invert, dream; fastnst.generate's Gatys).
# Chosen: days of CPU time at 256 px, so a larger count is a typo; the looser of the two bounds there were
# (generate had 100,000), so that no call that ran before is refused.
MAX_ITERATIONS = 1_000_000

# Super-resolution network settings (fastnst.networks.sr): its normalisation (paper: batch) and whether it
# learns a residual over the bicubic enlargement (paper: none).
SR_NORMS: tuple[str, ...] = ("batch", "none")
SR_SKIPS: tuple[str, ...] = ("none", "bicubic")

# Cache folder for downloads and computed statistics (paintings, VGG normalisation): this variable
# overrides the default under the user's cache folder. (The model file's names and keys: fastnst.contract.)
CACHE_DIR_ENV = "FASTNST_CACHE_DIR"


def cache_dir() -> Path:
    """fastnst's cache folder: $FASTNST_CACHE_DIR, else $XDG_CACHE_HOME/fastnst, else ~/.cache/fastnst."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "fastnst"

# Decompression-bomb guard: images above this many pixels are refused (256 Mpx, i.e. 16384 x 16384).
# Chosen: large prints (8192 x 8192 = 67 Mpx) pass with room; a bomb of 50000 x 50000 does not.
MAX_IMAGE_PIXELS_ENV = "FASTNST_MAX_PIXELS"
DEFAULT_MAX_IMAGE_PIXELS = 16384 * 16384

# A fixed model size (fastnst export --static HxW): each side at most this (the pixel cap's side).
MAX_STATIC_SIDE = 16384


def max_image_pixels() -> int:
    """The pixel cap in force: ``FASTNST_MAX_PIXELS`` when set to a positive integer, else the default."""
    value = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return DEFAULT_MAX_IMAGE_PIXELS

# Largest number of video frames per network call (``fastnst stylize clip.mp4 --batch-size``, ``stylize_video``).
# Chosen: a typo guard; 64 frames of 1080p are about 1.6 GB of float32 input already.
MAX_VIDEO_BATCH = 64

# Universal style transfer (WCT, fastnst.runtime.universal / fastnst.networks.universal).
# Chosen: the whitening ridge relative to the covariance's mean eigenvalue (trace / C). Pictures made with
# 1e-4, 1e-2 and 1e-1 on held-out photos and paintings look the same (1e-1 a little smoother); 1e-2 bounds
# the smallest eigenvalue / trace at 1e-2 / C (2e-5 at relu4_1), which the float32 Newton-Schulz iteration of
# the one-graph export resolves (1e-4 does not: rank-deficient covariances of small images, e.g. 96x64 px with
# 96 feature pixels at relu4_1 for C = 512, then came out different from the exact path).
WCT_RIDGE = 1e-2
# Chosen: the colouring ridge, relative as above. A style covariance computed in float32 from fewer feature
# pixels than channels (a small style image) has negative rounding-noise eigenvalues, on which the Newton-Schulz
# square root diverges; 1e-3 lifts them above the noise (~1e-7 of the trace) and adds at most 3% of the RMS
# feature in directions the style does not use (the exact path adds the same, so both give one picture).
WCT_STYLE_RIDGE = 1e-3
# Chosen: Newton-Schulz iterations of the one-graph export. Measured on photo features (relu1_1..relu4_1):
# 10 iterations leave 5-21% relative error against float64 eigendecompositions, 20 leave < 1e-4; 25 keep a
# margin for the ridge-bounded worst case (smallest eigenvalue / trace ~ 1e-2 / C: ~17 iterations).
WCT_NS_ITERATIONS = 25
