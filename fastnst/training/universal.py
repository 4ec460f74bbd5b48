"""Assemble trained decoders and their VGG encoder into one verified universal style model (``.onnx``).

``export_universal(decoders, vgg_weights, out_path)`` builds :class:`~fastnst.networks.universal.UniversalNet`
from ``fastnst train-decoder`` weights (one per level) and the VGG weights they were trained on (checked by
the sha256 each decoder recorded), exports it as one plain ONNX graph (opset :data:`fastnst.contract.OPSET`;
inputs ``content`` (1, 3, H, W) and ``style_image`` (1, 3, h, w), RGB floats in [0, 1], and ``strength`` (1,);
output ``stylized``; H and W multiples of 8; Newton-Schulz square roots, so any ONNX runtime runs it), stores
the weights in float16 (Cast nodes widen them at load) unless ``fp16=False``, and checks it against torch
(with the same rounded weights) under onnxruntime on several sizes before the file is moved into place.

The weights keep their torch names (``encoder.features.N.weight``, ``decoders.L.net.M.weight``): fastnst's runtime
(:mod:`fastnst.runtime.universal`) builds its stage graphs from them, laid out by the plans in
:mod:`fastnst.contract`. The metadata say what the file holds: the task, the encoder (architecture,
normalisation, weights file and sha256), the levels and decoder configurations, the ridge, the iterations, and
each decoder's training record (steps, images, data).
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastnst.constants import VERSION, WCT_NS_ITERATIONS, WCT_RIDGE, WCT_STYLE_RIDGE
from fastnst.contract import (CONTENT_NAME, LEVEL_LAYERS, META_ENCODER, META_EXPORTER, META_MIN_SIZE, META_PRECISION,
                              META_STRIDE, META_TASK, META_UNIVERSAL, META_VERIFIED, META_VERSION, OPSET, OUTPUT_NAME,
                              STRENGTH_NAME, STYLE_IMAGE_NAME, UNIVERSAL_LEVELS, UNIVERSAL_TASK)
from fastnst.errors import ConfigError, ExportError, InputError
from fastnst.fileio import atomic_output, check_output, sha256_file
from fastnst.networks.decoders import Decoder, load_decoder
from fastnst.networks.universal import Encoder, UniversalNet
from fastnst.networks.vgg import VGGFeatures

log = logging.getLogger(__name__)

UNIVERSAL_STRIDE = 8  # the encoder halves the image three times down to relu4_1
UNIVERSAL_MIN_SIZE = 16  # chosen: relu4_1 of 16 px is 2x2, the smallest map with a covariance
# (content height, width, style height, width): square, wide and tall, a style smaller and larger than the photo
VERIFY_SIZES: tuple[tuple[int, int, int, int], ...] = ((64, 48, 40, 56), (40, 72, 96, 64))
# Chosen: the float32 Newton-Schulz iteration in onnxruntime against the same in torch (float16 files: torch runs
# the same rounded weights). Measured: 4.5e-4 for the shipped model, up to 2.1e-3 for random tiny networks (less
# well conditioned features); a broken export differs by 0.1 or more. 5e-3 is 1.3 levels of 255.
FP32_TOLERANCE = FP16_TOLERANCE = 5e-3


def _decoders(paths: list[str | os.PathLike]) -> tuple[dict[int, Decoder], dict[str, Any], dict[int, dict[str, Any]]]:
    """{level: decoder}, their common encoder record and each one's metadata; ConfigError when they disagree."""
    decoders: dict[int, Decoder] = {}
    records: dict[int, dict[str, Any]] = {}
    encoder: dict[str, Any] | None = None
    for path in paths:
        decoder, meta = load_decoder(path)
        if decoder.level in decoders:
            raise ConfigError(f"two decoders of level {decoder.level} ({records[decoder.level]['file']} and {path}); "
                              f"pass one per level")
        if encoder is not None and meta["encoder"] != encoder:
            raise ConfigError(f"the decoders were trained on different encoders ({encoder} and {meta['encoder']}); "
                              f"train them on one")
        encoder = meta["encoder"]
        decoders[decoder.level] = decoder
        records[decoder.level] = {"file": Path(path).name, **{k: meta[k] for k in ("steps", "image_size", "batch_size",
                                                                                  "data", "lr") if k in meta}}
    missing = [level for level in UNIVERSAL_LEVELS if level not in decoders]
    if missing:
        raise ConfigError(f"no decoder of level {', '.join(map(str, missing))}; pass one decoder per level "
                          f"({', '.join(LEVEL_LAYERS[v] for v in UNIVERSAL_LEVELS)})")
    return decoders, encoder or {}, records


def build_universal(decoders: list[str | os.PathLike], vgg_weights: str | os.PathLike) -> tuple[UniversalNet,
                                                                                              dict[str, str]]:
    """The universal network of ``decoders`` on ``vgg_weights`` (normalised as the decoders' encoder was) and
    the metadata its file carries. InputError/ConfigError when the weights are not the decoders' encoder."""
    nets, encoder, records = _decoders(list(decoders))
    arch = encoder.get("arch", "vgg16")
    if not Path(vgg_weights).is_file():
        raise InputError(f"VGG weights '{vgg_weights}' do not exist; pass the file the decoders were trained on "
                         f"({encoder.get('weights')})")
    sha = sha256_file(vgg_weights)
    if encoder.get("sha256") not in (None, sha):
        raise ConfigError(f"'{vgg_weights}' is not the encoder the decoders were trained on ({encoder.get('weights')}, "
                          f"sha256 {str(encoder.get('sha256'))[:12]}...); pass that file")
    vgg = VGGFeatures([LEVEL_LAYERS[max(UNIVERSAL_LEVELS)]], arch=arch, weights=str(vgg_weights),
                      normalize=encoder.get("normalize", "rms"))
    net = UniversalNet(Encoder(vgg.features, arch), nets, UNIVERSAL_LEVELS, WCT_RIDGE, WCT_NS_ITERATIONS).eval()
    meta = {META_TASK: UNIVERSAL_TASK, META_ENCODER: json.dumps(encoder),
            META_UNIVERSAL: json.dumps({"levels": list(UNIVERSAL_LEVELS), "ridge": WCT_RIDGE,
                                        "style_ridge": WCT_STYLE_RIDGE, "ns_iterations": WCT_NS_ITERATIONS,
                                        "decoders": {str(k): v.config for k, v in nets.items()},
                                        "training": {str(k): v for k, v in records.items()}}),
            META_STRIDE: str(UNIVERSAL_STRIDE), META_MIN_SIZE: str(UNIVERSAL_MIN_SIZE), META_VERSION: VERSION,
            META_EXPORTER: f"torch.onnx {torch.__version__}"}
    return net, meta


def _half_initializers(model: Any) -> None:
    """Store float32 initialisers of more than 16 values as float16, each followed by a Cast back to float32
    (the graph computes in float32; onnxruntime folds the casts at load)."""
    from onnx import TensorProto, helper, numpy_helper

    casts = []
    for init in model.graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) <= 16:
            continue
        name = init.name
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), name)
        init.CopyFrom(half)
        wide = f"{name}__float"
        casts.append(helper.make_node("Cast", [name], [wide], to=TensorProto.FLOAT, name=f"{name}__cast"))
        for node in model.graph.node:
            for i, inp in enumerate(node.input):
                if inp == name:
                    node.input[i] = wide
    nodes = casts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def _round_half(net: UniversalNet) -> None:
    """Round the network's weights to float16 and back (the torch reference of a float16 file)."""
    with torch.no_grad():
        for tensor in list(net.parameters()) + list(net.buffers()):
            if tensor.numel() > 16 and tensor.dtype == torch.float32:
                tensor.copy_(tensor.half().float())


def _export_bytes(net: UniversalNet) -> bytes:
    content, style, strength = torch.rand(1, 3, 32, 40), torch.rand(1, 3, 48, 32), torch.ones(1)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (content, style, strength), buf, dynamo=False, opset_version=OPSET,
                          input_names=[CONTENT_NAME, STYLE_IMAGE_NAME, STRENGTH_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={CONTENT_NAME: {2: "height", 3: "width"},
                                        STYLE_IMAGE_NAME: {2: "style_height", 3: "style_width"},
                                        OUTPUT_NAME: {2: "height", 3: "width"}},
                          do_constant_folding=True)
    return buf.getvalue()


def verify_universal(path: str | os.PathLike, net: UniversalNet, tolerance: float) -> float:
    """Max |onnxruntime - torch| over :data:`VERIFY_SIZES` (ExportError above ``tolerance``)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    gen = torch.Generator().manual_seed(0)
    for h, w, sh, sw in VERIFY_SIZES:
        content, style = torch.rand(1, 3, h, w, generator=gen), torch.rand(1, 3, sh, sw, generator=gen)
        for strength in (1.0, 0.5):
            s = torch.tensor([strength])
            with torch.no_grad():
                ref = net(content, style, s).numpy()
            got = session.run([OUTPUT_NAME], {CONTENT_NAME: content.numpy(), STYLE_IMAGE_NAME: style.numpy(),
                                              STRENGTH_NAME: s.numpy()})[0]
            worst = max(worst, float(np.abs(got - ref).max()))
    if not worst <= tolerance:
        raise ExportError(f"the exported universal model differs from torch by {worst:.2e} (> {tolerance:.0e}); "
                          f"nothing was written")
    return worst


def export_universal(decoders: list[str | os.PathLike], vgg_weights: str | os.PathLike,
                     out_path: str | os.PathLike, *, fp16: bool = True, overwrite: bool = False) -> Path:
    """Write the verified universal model of ``decoders`` (one ``fastnst train-decoder`` file per level) on
    ``vgg_weights`` to ``out_path`` (see the module). Nothing is written when anything fails."""
    import onnx

    out_path = Path(out_path)
    if out_path.suffix.lower() != ".onnx":
        raise ConfigError(f"the universal model is an ONNX file: name it .onnx, got '{out_path.name}'")
    check_output(out_path, overwrite, inputs=[*decoders, vgg_weights])
    net, meta = build_universal(decoders, vgg_weights)
    if fp16:
        _round_half(net)
    model = onnx.load_from_string(_export_bytes(net))
    if fp16:
        _half_initializers(model)
    meta[META_PRECISION] = "float16" if fp16 else "float32"
    with atomic_output(out_path, overwrite=overwrite) as tmp:
        for key, value in meta.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(tmp))
        onnx.checker.check_model(str(tmp))
        error = verify_universal(tmp, net, FP16_TOLERANCE if fp16 else FP32_TOLERANCE)
        entry = model.metadata_props.add()
        entry.key, entry.value = META_VERIFIED, f"{error:.3g}"
        onnx.save(model, str(tmp))
    log.info("verified %s: max |onnxruntime - torch| = %.2g", out_path.name, error)
    return out_path


__all__ = ["export_universal", "build_universal", "verify_universal", "UNIVERSAL_STRIDE", "UNIVERSAL_MIN_SIZE"]
