"""The model contract: what a fastnst model file is, in one place. Torch-free (standard library only).

An exported model (``fastnst export``, ``fastnst train-sr``) has one image input :data:`INPUT_NAME`
(multi-style networks one more, :data:`STYLE_NAME`: float32 (N, num_styles) blend weights), one output
:data:`OUTPUT_NAME`, opset :data:`OPSET`, and string metadata under the ``META_*`` keys below. The
weights files of ``fastnst train`` (``.safetensors``) carry the same ``META_CONFIG``/``META_ARCH``/
``META_VERSION`` keys. Images are padded to a multiple of :data:`STRIDE` and to at least
:data:`MIN_SIZE` pixels a side; :func:`padded_size` is that rule. Export writes these names, the
runtime, the tiler, the upscaler and the browser page read them.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastnst.constants import VGG_LAYERS

# ONNX interface.
INPUT_NAME = "image"
OUTPUT_NAME = "stylized"
STYLE_NAME = "style"  # multi-style models (conditional instance norm): blend weights (N, num_styles), float32
OPSET = 18

# Input conventions ("io"): float = RGB float32 [0,1] NCHW in and out; uint8 = RGB uint8 NHWC in and out.
IO_KINDS: tuple[str, ...] = ("float", "uint8")
INPUT_CONVENTIONS: dict[str, str] = {
    "float": "RGB float32 in [0,1], NCHW (batch, 3, height, width); output the same",
    "uint8": "RGB uint8 in 0..255, NHWC (batch, height, width, 3); output the same",
}
# Pixel range a model takes: fastnst models [0, 1]; third-party Johnson-style models (ONNX zoo) 0..255.
INPUT_RANGES: tuple[int, ...] = (1, 255)

# Geometry. Two stride-2 convolutions: sizes divisible by 4 down- and up-sample exactly (the tiler's
# tiles start on multiples of it too). The reflection padding of the 9x9 convolutions needs >= 5
# pixels; models promise 8 (a multiple of nothing smaller than the stride).
STRIDE = 4
MIN_SIZE = 8

# Metadata keys (onnx metadata_props; safetensors metadata for weights).
META_VERSION = "fastnst_version"
META_TRAINED_WITH = "fastnst_trained_with"  # the fastnst version that trained the weights
META_EXPORTER = "fastnst_exporter"
META_VERIFIED = "fastnst_verified_max_error"  # max |onnxruntime - torch| found by export's verification
META_IO = "fastnst_io"  # one of IO_KINDS
META_INPUT = "fastnst_input"  # the input convention in words (INPUT_CONVENTIONS)
META_STRIDE = "fastnst_stride"
META_MIN_SIZE = "fastnst_min_size"
META_PRECISION = "fastnst_precision"  # "float32" or "float16"
META_ARCH = "fastnst_arch"  # preset name or "custom"
META_CONFIG = "fastnst_config"  # JSON of the network's constructor arguments
META_STYLES = "fastnst_styles"  # JSON list of style names, one per column of the `style` input
META_INPUT_RANGE = "fastnst_input_range"  # "1" or "255" (INPUT_RANGES)
META_REWRITES = "fastnst_rewrites"  # exact graph rewrites export applied (fastnst.runtime.rewrite), comma-separated
# Super-resolution models (fastnst train-sr).
META_TASK = "fastnst_task"  # SR_TASK for super-resolution models; absent for style models
META_FACTOR = "fastnst_factor"  # the up-sampling factor, e.g. "4"
META_SR_CONFIG = "fastnst_sr_config"
SR_TASK = "super-resolution"
SR_FACTORS: tuple[int, ...] = (2, 4, 8)
# Universal style transfer (WCT): decoder weights (fastnst train-decoder) and the universal model file.
DECODER_TASK = "decoder"  # META_TASK of a decoder's .safetensors
UNIVERSAL_TASK = "universal"  # META_TASK of a universal model (.onnx)
META_DECODER_CONFIG = "fastnst_decoder_config"  # JSON: level, arch, width
META_ENCODER = "fastnst_encoder"  # JSON: the VGG encoder (arch, normalisation, weights file and sha256)
META_UNIVERSAL = "fastnst_universal"  # JSON: levels, decoder configs, ridge, Newton-Schulz iterations
CONTENT_NAME = "content"  # universal model inputs: content image, style image (N=1, 3, H, W floats in [0, 1])
STYLE_IMAGE_NAME = "style_image"
STRENGTH_NAME = "strength"  # (1,) float in [0, 1]: the WCT blend alpha, in feature space

# Inputs/outputs of models written by fastnst export before the file became plain (they had default
# values): the runtime strips them at load, so such files still run.
LEGACY_INPUTS: tuple[str, ...] = ("stats_image", "tile", "tile_stats")


def meta_int(metadata: Mapping[str, str], key: str, default: int) -> int:
    """Integer metadata entry ``key``, or ``default`` when it is missing or malformed."""
    try:
        return int(metadata.get(key, default) or default)
    except (TypeError, ValueError):
        return default


def geometry(metadata: Mapping[str, str]) -> tuple[int, int]:
    """(stride, min size) a model declares in ``metadata``; STRIDE and MIN_SIZE where it says nothing."""
    return max(meta_int(metadata, META_STRIDE, STRIDE), 1), max(meta_int(metadata, META_MIN_SIZE, MIN_SIZE), 1)


def padded_size(size: int, stride: int = STRIDE, min_size: int = MIN_SIZE) -> int:
    """The side a ``size``-pixel side is padded to: a multiple of ``stride``, at least ``min_size``."""
    return max(min_size, -(-size // stride) * stride)


def model_task(metadata: Mapping[str, str]) -> str:
    """'super-resolution', 'universal' or 'style' from a model's metadata."""
    task = metadata.get(META_TASK)
    return task if task in (SR_TASK, UNIVERSAL_TASK) else "style"


# ------------------------------------------------------------------ the universal model's networks, as layer plans
# One plan each for the VGG encoder and the decoders, read by the torch modules (fastnst.networks) and by the
# torch-free runtime that builds the stage graphs from a universal model's weights (fastnst.runtime.universal),
# so that both lay the same layers out under the same weight names.
UNIVERSAL_LEVELS: tuple[int, ...] = (4, 3, 2, 1)  # coarse to fine
LEVEL_LAYERS: dict[int, str] = {1: "relu1_1", 2: "relu2_1", 3: "relu3_1", 4: "relu4_1"}
VGG_BLOCK_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)


def vgg_block_convs(arch: str) -> list[int]:
    """Convolutions per VGG block of ``arch`` (vgg16: 2, 2, 3, 3, 3; vgg19: 2, 2, 4, 4, 4)."""
    counts: dict[int, int] = {}
    for name in VGG_LAYERS[arch]:
        if name.startswith("conv"):
            counts[int(name[4])] = counts.get(int(name[4]), 0) + 1
    return [counts[b] for b in sorted(counts)]


def encoder_plan(arch: str, layer: str) -> list[tuple]:
    """The VGG ``features`` modules up to ``layer``: ("conv", in, out) (3×3, zero padding 1), ("relu",),
    ("pool",) (2×2 max); the i-th entry is ``features.i``."""
    plan: list[tuple] = []
    cin = 3
    for name in VGG_LAYERS[arch][:VGG_LAYERS[arch].index(layer) + 1]:
        if name.startswith("conv"):
            cout = VGG_BLOCK_CHANNELS[int(name[4]) - 1]
            plan.append(("conv", cin, cout))
            cin = cout
        else:
            plan.append(("relu",) if name.startswith("relu") else ("pool",))
    return plan


def decoder_plan(level: int, arch: str, width: float) -> list[tuple]:
    """A decoder's ``net`` modules: the mirror of the encoder from relu{level}_1 back to RGB. ("pad",) (reflection,
    1 pixel), ("conv", in, out) (3×3, no padding), ("relu",), ("up",) (×2 nearest); ``width`` scales every
    channel count but the input (the encoder's) and the output (RGB)."""
    convs = vgg_block_convs(arch)
    ch = [max(8, round(c * width)) for c in VGG_BLOCK_CHANNELS]
    plan: list[tuple] = []
    cin = VGG_BLOCK_CHANNELS[level - 1]
    for block in range(level, 1, -1):
        plan += [("pad",), ("conv", cin, ch[block - 2]), ("relu",), ("up",)]  # mirrors of conv{block}_1, a pool
        cin = ch[block - 2]
        for _ in range(convs[block - 2] - 1):  # mirrors of conv{block-1}_2 ... conv{block-1}_k
            plan += [("pad",), ("conv", cin, cin), ("relu",)]
    return plan + [("pad",), ("conv", cin, 3)]  # mirror of conv1_1, no activation
