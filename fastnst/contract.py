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
    """'super-resolution' or 'style' from a model's metadata."""
    return SR_TASK if metadata.get(META_TASK) == SR_TASK else "style"
