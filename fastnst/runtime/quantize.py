"""Static int8 quantisation of an exported style network (QDQ format), calibrated on photos.

``quantize_model(model, out)`` writes a copy of a float ``.onnx`` model whose convolutions run in
int8 (QuantizeLinear/DequantizeLinear pairs that onnxruntime fuses into integer convolutions):
weights signed, per output channel; activations unsigned, with ranges measured by running the float
model on calibration photos (default: the content photos bundled in ``fastnst/assets``). Instance
norm, resizing and the output stay float. Inputs, outputs and metadata are kept;
``fastnst_precision`` becomes ``int8``.

Needs the ``onnx`` package and onnxruntime's quantisation tools (both base dependencies).

Measured on the 2-core AVX-512 (VNNI) development CPU, 1024², against fp32 as the runtime runs it
(scripts/bench_infer.py --only int8): johnson 1.12x faster, fast 0.87x, with the perceptual loss within
2.3% of fp32 (scripts/bench_int8.py, Caffe VGG16, held-out photos). Instance norm, padding and the
layout changes stay float, so the integer convolutions do not pay for the conversions around them:
that is below the 1.6x that a `fastnst export --int8` flag needs, so there is none; this module is
the tool to measure it on other CPUs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from fastnst.constants import ASSETS_DIR
from fastnst.contract import META_ARCH, META_PRECISION, STYLE_NAME, padded_size
from fastnst.errors import ConfigError, InputError, ModelFormatError
from fastnst.fileio import atomic_output, check_output
from fastnst.image import load_rgb, resize, to_nchw
from fastnst.runtime.rewrite import speed_up

# Chosen: calibration images are cropped to this square; activation ranges of a style network hardly
# depend on the size, and 384 px keeps calibration of the johnson preset under a minute on 2 cores.
CALIBRATION_SIDE = 384
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


def calibration_photos() -> list[Path]:
    """The content photos bundled with fastnst (used to calibrate when none are given)."""
    return sorted(ASSETS_DIR.glob("content-*.jpg"))


def _arrays(photos: Sequence[str | os.PathLike | np.ndarray], side: int) -> list[np.ndarray]:
    """Photos to float32 (1, 3, side, side) in [0, 1]: the short side scaled to ``side`` (a multiple of the
    stride), the centre square kept (one shape for all: the histogram calibrators stack them). Read with
    :func:`fastnst.image.load_rgb` (EXIF orientation, pixel cap; InputError for an unreadable photo)."""
    side = padded_size(side)
    out = []
    for photo in photos:
        img = load_rgb(photo)
        scale = side / min(img.size)
        w, h = max(side, round(img.width * scale)), max(side, round(img.height * scale))
        img = resize(img, size=(w, h))
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
        out.append(to_nchw([np.asarray(img)]))
    return out


class _Feeds:
    """onnxruntime's CalibrationDataReader protocol: each photo once per style (one-hot)."""

    def __init__(self, images: list[np.ndarray], input_name: str, num_styles: int) -> None:
        self._items = self._all(images, input_name, num_styles)

    @staticmethod
    def _all(images: list[np.ndarray], input_name: str, num_styles: int) -> Iterator[dict[str, np.ndarray]]:
        for x in images:
            for s in range(num_styles or 1):
                feeds = {input_name: x}
                if num_styles:
                    feeds[STYLE_NAME] = np.eye(1, num_styles, s, dtype=np.float32)
                yield feeds

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # pragma: no cover - only some calibrators call it
        raise NotImplementedError


def quantize_model(model: str | os.PathLike, out_path: str | os.PathLike, *,
                   photos: Sequence[str | os.PathLike | np.ndarray] | None = None, side: int = CALIBRATION_SIDE,
                   method: str = "minmax", per_channel: bool = True, op_types: Sequence[str] = ("Conv",),
                   exclude: Sequence[str] = (), overwrite: bool = False) -> Path:
    """Write an int8 (QDQ) copy of the float model ``model`` to ``out_path``; returns ``out_path``.

    ``photos``: calibration images (paths or HxWx3 uint8 arrays; default :func:`calibration_photos`),
    scaled and centre-cropped to ``side`` × ``side`` pixels. ``method``: 'minmax', 'percentile' or
    'entropy' activation ranges. Nodes of ``op_types`` are quantised (Conv weights per output channel
    with ``per_channel``) except those named in ``exclude``; everything else stays float. Raises
    InputError for a missing model or unreadable photo, ModelFormatError for a model that is not a float
    fastnst-style model, ConfigError for bad options, OutputExistsError when ``out_path`` exists and
    ``overwrite`` is false.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if method not in CALIBRATION_METHODS:
        from fastnst.errors import unknown_choice

        raise unknown_choice("calibration method", method, CALIBRATION_METHODS)
    if isinstance(side, bool) or not isinstance(side, int) or not 16 <= side <= 4096:
        raise ConfigError(f"calibration side must be a whole number of pixels from 16 to 4096, got {side!r}")
    src = Path(model)
    if not src.is_file():
        raise InputError(f"model '{src}' does not exist; check the path")
    out_path = check_output(out_path, overwrite, inputs=[src])
    try:
        proto = onnx.load(str(src))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and friends
        raise ModelFormatError(f"'{src}' is not an ONNX model ({type(exc).__name__})") from None
    inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    image = [i for i in inputs if i.name != STYLE_NAME]
    if len(image) != 1 or image[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ModelFormatError(f"'{src}' is not a float image model (inputs {[i.name for i in inputs]}); quantise "
                               f"a model written by fastnst export without --io uint8 or --fp16")
    style = [i for i in inputs if i.name == STYLE_NAME]
    num_styles = style[0].type.tensor_type.shape.dim[1].dim_value if style else 0
    images = _arrays(list(photos) if photos is not None else calibration_photos(), side)
    if not images:
        raise InputError("no calibration photos; pass photos=[...]")
    meta = {p.key: p.value for p in proto.metadata_props}
    speed_up(proto, sizes_double=META_ARCH in meta)  # the exact graph rewrites first (a model exported before them)
    meta = {p.key: p.value for p in proto.metadata_props}
    meta[META_PRECISION] = "int8"
    with atomic_output(out_path, overwrite) as target:
        quantize_static(proto, str(target), _Feeds(images, image[0].name, num_styles),
                        quant_format=QuantFormat.QDQ, op_types_to_quantize=list(op_types), per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=list(exclude),
                        calibrate_method={"minmax": CalibrationMethod.MinMax,
                                          "percentile": CalibrationMethod.Percentile,
                                          "entropy": CalibrationMethod.Entropy}[method],
                        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
        q = onnx.load(str(target))
        del q.metadata_props[:]
        for key, value in meta.items():
            entry = q.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save_model(q, str(target))
    return Path(out_path)
