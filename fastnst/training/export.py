"""Export a trained TransformerNet to a verified, self-contained ONNX model.

``export_onnx(source, out_path)`` writes one ``.onnx`` file (no external data) with dynamic batch,
height and width, standard operators only (opset :data:`fastnst.contract.OPSET`), the input and
output names from :mod:`fastnst.contract`, and the training metadata as ``metadata_props``. The file
is checked with ``onnx.checker`` and compared with PyTorch under onnxruntime on several random sizes
(odd ones included) *before* it is moved into place: a model that fails is never left behind.

Two input conventions (``io``):

* ``"float"`` (default): RGB float32 in [0, 1], NCHW, output the same.
* ``"uint8"``: RGB uint8 NHWC in, uint8 NHWC out, so an app can feed decoded pixels directly.

``fp16=True`` stores the network in half precision (float32 inputs and outputs are kept; the casts
are inside the graph), meant for GPU execution providers. ``static="HxW"`` fixes the image size for
runtimes that need it (OpenCV 4.x).

The file is plain (design habit 12): one input ``image`` (multi-style networks: one more, ``style``,
float32 (N, num_styles) blend weights, no default values), one output ``stylized``, one trace.
Tiling with whole-image instance-norm statistics is done by the runtime, which rewrites the graph's
InstanceNormalization nodes at load (fastnst.runtime.tiling), so any instance-norm model can be tiled.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fastnst.checks import static_size
from fastnst.constants import VERSION
from fastnst.contract import (INPUT_CONVENTIONS, IO_KINDS, META_ARCH, META_CONFIG, META_EXPORTER, META_INPUT, META_IO,
                              META_MIN_SIZE, META_PRECISION, META_STRIDE, META_STYLES, META_TRAINED_WITH, META_VERIFIED,
                              META_VERSION, MIN_SIZE, OPSET, STRIDE)
from fastnst.contract import INPUT_NAME, OUTPUT_NAME, STYLE_NAME
from fastnst.errors import ConfigError, ExportError, InputError, unknown_choice
from fastnst.fileio import atomic_output, check_output
from fastnst.image import to_uint8
from fastnst.networks.transformer import TransformerNet, network_style_names
from fastnst.runtime.rewrite import speed_up

log = logging.getLogger(__name__)

# Parity tolerances (max abs difference, onnxruntime vs torch, output in [0, 1] units).
FP32_TOLERANCE = 1e-4  # issue 3 / design: float32 export must match torch to 1e-4
FP16_TOLERANCE = 2e-2  # chosen: half precision keeps ~3 decimal digits; observed ~3e-3 on random nets
UINT8_TOLERANCE = 1  # in 0..255 levels: rounding at a .5 boundary may flip by one level
# Verification sizes (batch, height, width): odd, even and rectangular, a batch of two included.
VERIFY_SIZES: tuple[tuple[int, int, int], ...] = ((1, 67, 45), (2, 32, 48), (1, 51, 77))
# The names, metadata keys and geometry live in fastnst.contract; everything the weights file carried is kept too.


class _ExportGraph(nn.Module):
    """The exported graph: the style network on ``image`` (and, for multi-style networks, ``style``).

    Input/output conventions (``io_kind``): "float" is RGB float32 [0, 1] NCHW in and out; "uint8" is
    RGB uint8 NHWC in and out (conversion, rounding and clamping inside the graph). ``half`` stores
    the network in float16 with float32 (or uint8) at the boundary: the casts are inside the graph.
    Nothing else is in the graph: tiling lives in the runtime (fastnst.runtime.tiling rewrites the graph).
    """

    def __init__(self, net: nn.Module, io_kind: str = "float", half: bool = False) -> None:
        super().__init__()
        self.net = copy.deepcopy(net)
        self.num_styles = int(getattr(net, "num_styles", 1) or 1)
        self.io_kind, self.half = io_kind, half
        self.static: tuple[int, int] | None = None
        if half:
            self.net.half()

    def _image(self, image: torch.Tensor) -> torch.Tensor:
        dtype = torch.float16 if self.half else torch.float32
        x = image.permute(0, 3, 1, 2).to(torch.float32) / 255.0 if self.io_kind == "uint8" else image
        return x.to(dtype)

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        y = y.to(torch.float32)
        if self.io_kind == "uint8":
            y = torch.round(y * 255.0).clamp(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1)
        return y

    def forward(self, image: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_styles > 1:
            weights = style.to(torch.float16 if self.half else torch.float32)  # type: ignore[union-attr]
            return self._out(self.net(self._image(image), weights))
        return self._out(self.net(self._image(image)))


def _load_source(source: str | os.PathLike | nn.Module) -> tuple[nn.Module, dict[str, str], str]:
    """The network (a CPU float32 copy in eval mode), its metadata and a display name.

    Besides TransformerNet, any module with TransformerNet's interface (``forward(x)`` or, with
    ``num_styles`` > 1, ``forward(x, style)``; optional ``config``, ``min_size``) is accepted.
    """
    if isinstance(source, TransformerNet):
        net = TransformerNet.from_config(source.config)
        net.load_state_dict({k: v.detach().to("cpu", torch.float32) for k, v in source.state_dict().items()})
        meta = {META_CONFIG: json.dumps(source.config), META_ARCH: source.preset or "custom"}
        return net.eval(), meta, "TransformerNet"
    if isinstance(source, nn.Module):
        net = copy.deepcopy(source).to("cpu", torch.float32).eval()
        config = getattr(source, "config", None)
        meta = {META_CONFIG: json.dumps(config if isinstance(config, dict) else {}), META_ARCH: "custom"}
        return net, meta, type(source).__name__
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"export_onnx takes a TransformerNet or a weights file, not {type(source).__name__}")
    from fastnst.training.weights import load_transformer

    path = Path(source)
    if path.suffix.lower() == ".onnx":
        raise InputError(f"'{path}' is already an ONNX model; export takes .safetensors or .ckpt weights")
    from fastnst.networks.sr import is_sr_file, load_sr

    if is_sr_file(path):  # a super-resolution network (fastnst train-sr): metadata fastnst_task, fastnst_factor
        net, meta = load_sr(path)
        return net.float().eval(), dict(meta), str(path)
    net, meta = load_transformer(path)
    return net.float().eval(), dict(meta), str(path)


def _export_graph(module: _ExportGraph, example: tuple[torch.Tensor, ...]) -> tuple[Any, str]:
    """Export with the dynamo exporter (fallback: TorchScript exporter) in one trace.

    Returns (ModelProto, exporter). Height and width are dynamic unless ``module.static`` is set.
    """
    import onnx

    nhwc = module.io_kind == "uint8"
    hdim, wdim = (1, 2) if nhwc else (2, 3)
    styled = module.num_styles > 1
    input_names = [INPUT_NAME] + ([STYLE_NAME] if styled else [])
    output_names = [OUTPUT_NAME]
    errors: list[str] = []
    try:
        batch = torch.export.Dim("batch", min=1, max=1024)
        if module.static:
            shapes: tuple[Any, ...] = ({0: batch},)
        else:
            height = torch.export.Dim("height", min=MIN_SIZE, max=65536)
            width = torch.export.Dim("width", min=MIN_SIZE, max=65536)
            shapes = ({0: batch, hdim: height, wdim: width},)
        if styled:
            shapes = shapes + ({0: batch},)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module, example, dynamo=True, verbose=False, opset_version=OPSET, input_names=input_names,
                output_names=output_names, external_data=False, dynamic_shapes=shapes, optimize=True)
        proto, exporter = program.model_proto, "torch.onnx.export(dynamo=True)"
    except Exception as exc:  # noqa: BLE001 - any exporter failure: try the legacy exporter
        errors.append(f"dynamo: {type(exc).__name__}: {_first_line(exc)}")
        log.warning("dynamo ONNX export failed (%s); falling back to the TorchScript exporter", errors[-1])
        try:
            buf = io.BytesIO()
            axes = {0: "batch"} if module.static else {0: "batch", hdim: "height", wdim: "width"}
            dynamic = {INPUT_NAME: axes, OUTPUT_NAME: axes}
            if styled:
                dynamic[STYLE_NAME] = {0: "batch"}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, example, buf, dynamo=False, opset_version=OPSET,
                                  input_names=input_names, output_names=output_names, dynamic_axes=dynamic)
            proto, exporter = onnx.load_from_string(buf.getvalue()), "torch.onnx.export(dynamo=False)"
        except Exception as exc2:  # noqa: BLE001
            errors.append(f"torchscript: {type(exc2).__name__}: {_first_line(exc2)}")
            raise ExportError("ONNX export failed: " + "; ".join(errors)) from None
    return proto, exporter


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _metadata(meta: dict[str, str], net: nn.Module, io_kind: str, fp16: bool, exporter: str) -> dict[str, str]:
    out = {str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in meta.items()}
    out.setdefault(META_TRAINED_WITH, out.get(META_VERSION, VERSION))
    config = getattr(net, "config", None)
    preset = getattr(net, "preset", None)
    out.update({
        META_VERSION: VERSION,
        META_EXPORTER: exporter,
        META_CONFIG: json.dumps(config if isinstance(config, dict) else {}),
        META_ARCH: preset or out.get(META_ARCH, "custom"),
        META_IO: io_kind,
        META_INPUT: INPUT_CONVENTIONS[io_kind],
        META_STRIDE: str(STRIDE),
        META_MIN_SIZE: str(max(int(getattr(net, "min_size", MIN_SIZE)), MIN_SIZE)),
        META_PRECISION: "float16" if fp16 else "float32",
    })
    if int(getattr(net, "num_styles", 1) or 1) > 1:
        out[META_STYLES] = json.dumps(network_style_names(net))
    else:
        out.pop(META_STYLES, None)
    return out


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _torch_ref(net: nn.Module, x: torch.Tensor, style: torch.Tensor | None) -> np.ndarray:
    with torch.inference_mode():
        return (net(x) if style is None else net(x, style)).numpy()


def verify_onnx(path: str | os.PathLike, net: nn.Module, io_kind: str = "float", fp16: bool = False,
                sizes: tuple[tuple[int, int, int], ...] = VERIFY_SIZES, seed: int = 0) -> float:
    """Check ``path`` with onnx.checker and against ``net`` under onnxruntime; returns the max abs error.

    The model must have exactly the inputs ``image`` (and ``style`` for multi-style networks) and the
    one output ``stylized``. Multi-style models are checked with one-hot and blended style weights.
    The error is in [0, 1] units (uint8 models: 0..255 levels). Raises ExportError when the checker
    fails, the signature is wrong or an error is above the tolerance.
    """
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"onnx.checker rejected the exported model: {_first_line(exc)}") from None
    model = onnx.load(str(path), load_external_data=False)
    num_styles = int(getattr(net, "num_styles", 1) or 1)
    expect_in = [INPUT_NAME] + ([STYLE_NAME] if num_styles > 1 else [])
    graph_inputs = [i.name for i in model.graph.input]
    if graph_inputs != expect_in or [o.name for o in model.graph.output] != [OUTPUT_NAME]:
        raise ExportError(f"exported model has inputs {graph_inputs} and outputs "
                          f"{[o.name for o in model.graph.output]}, expected {expect_in} and ['{OUTPUT_NAME}']")
    if {i.name for i in model.graph.initializer} & set(graph_inputs):
        raise ExportError("exported model gives an input a default value; inputs must be plain")
    del model
    try:
        session = _session(Path(path))
    except Exception as exc:  # noqa: BLE001
        if fp16:  # CPU onnxruntime may lack half-precision kernels: the checker's verdict stands
            log.warning("fp16 model not runnable on CPU onnxruntime (%s); parity not checked", _first_line(exc))
            return float("nan")
        raise ExportError(f"onnxruntime cannot load the exported model: {_first_line(exc)}") from None
    generator = torch.Generator().manual_seed(seed)
    tol = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
    worst = 0.0
    for batch, height, width in sizes:
        x = torch.rand(batch, 3, height, width, generator=generator)
        pixels = to_uint8(x.permute(0, 2, 3, 1).numpy()) if io_kind == "uint8" else None  # NHWC, as an app feeds
        if pixels is not None:  # the reference sees what the graph makes of those pixels
            x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
        feeds: dict[str, np.ndarray] = {}
        style = None
        if num_styles > 1:  # first image one-hot on the last style, the others a random blend
            style = torch.rand(batch, num_styles, generator=generator)
            style[0] = 0.0
            style[0, -1] = 1.0
            style = style / style.sum(dim=1, keepdim=True)
            feeds[STYLE_NAME] = style.numpy()
        ref = _torch_ref(net, x, style)
        shape = (batch, 3, height, width)
        if pixels is not None:
            feeds[INPUT_NAME] = pixels
            got = session.run([OUTPUT_NAME], feeds)[0].astype(np.int16)
            want = to_uint8(ref.transpose(0, 2, 3, 1)).astype(np.int16)
            err = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
            tolerance, what = UINT8_TOLERANCE, "uint8"
        else:
            feeds[INPUT_NAME] = x.numpy()
            got = session.run([OUTPUT_NAME], feeds)[0]
            err = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
            tolerance, what = tol, "float"
            worst = max(worst, err)
        if not np.isfinite(err) or err > tolerance:
            raise ExportError(f"exported model disagrees with torch ({what}) at {'x'.join(map(str, shape))}: "
                              f"max abs difference {err:.3g} > {tolerance:g}; the model was not written")
    return worst


def export_onnx(source: str | os.PathLike | nn.Module, out_path: str | os.PathLike, *, io: str = "float",
                fp16: bool = False, overwrite: bool = False, verify: bool = True,
                metadata: dict[str, Any] | None = None, static: str | tuple[int, int] | None = None,
                optimize: bool = True) -> Path:
    """Export ``source`` (a ``.safetensors``/``.ckpt`` path or a TransformerNet) to ``out_path``.

    The file has one input ``image`` (plus ``style``, float32 (N, num_styles) blend weights, for a
    multi-style network) and one output ``stylized``; standard operators; one trace. ``io`` is
    ``"float"`` (float32 NCHW in [0, 1]) or ``"uint8"`` (uint8 NHWC). ``fp16`` stores half precision
    weights. ``static`` ("HxW" or (h, w)) fixes the height and width for runtimes that need it (the
    batch stays dynamic). ``metadata`` adds or replaces string metadata entries. ``optimize`` (default)
    applies the exact graph rewrites of :mod:`fastnst.runtime.rewrite` (faster in onnxruntime; the same
    outputs up to float rounding); False writes the exporter's graph as it is. With ``verify``
    (default) the file is checked and compared with torch before it is moved into place. Returns
    ``out_path``. Raises InputError/ModelFormatError for a bad source, OutputExistsError when
    ``out_path`` exists and ``overwrite`` is false, ExportError when export or verification fails
    (nothing is written).
    """
    import onnx

    if io not in IO_KINDS:
        raise unknown_choice("--io convention", io, IO_KINDS)
    if fp16 and io == "uint8":
        raise ConfigError("--fp16 applies to float models; use --io float with --fp16")
    size = static_size(static)
    out_path = check_output(out_path, overwrite,  # never onto the weights it reads (even with --overwrite)
                              inputs=[source] if isinstance(source, (str, os.PathLike)) else [])
    net, meta, name = _load_source(source)
    if metadata:
        meta.update({str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in metadata.items()})
    module = _ExportGraph(net, io, half=fp16).eval()
    module.static = size
    h, w = size or (64, 64)
    image = torch.rand(1, 3, h, w)
    if io == "uint8":  # decoded pixels, NHWC
        image = torch.from_numpy(to_uint8(image.permute(0, 2, 3, 1).numpy())).contiguous()
    example: tuple[torch.Tensor, ...] = (image,)
    if module.num_styles > 1:
        example = (image, torch.full((1, module.num_styles), 1.0 / module.num_styles))
    log.info("exporting %s to %s (io=%s%s%s)", name, out_path, io, ", fp16" if fp16 else "",
             f", static {h}x{w}" if size else "")
    proto, exporter = _export_graph(module, example)
    # Intermediate shape annotations are optional; the exporter's symbolic ones (e.g. height + 2) make
    # tract's analysis fail (measured: tract 0.23 loads the model only without them).
    del proto.graph.value_info[:]
    if optimize:  # fastnst's own networks up-sample to the size of a stride-2 input: vouched for, and verified below
        speed_up(proto, sizes_double=isinstance(net, TransformerNet))
    for key, value in _metadata(meta, net, io, fp16, exporter).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "fastnst"
    proto.producer_version = VERSION
    proto.doc_string = f"fastnst style network ({INPUT_CONVENTIONS[io]})"
    sizes = ((1, h, w),) if size else VERIFY_SIZES
    with atomic_output(out_path, overwrite=overwrite) as tmp:
        onnx.save_model(proto, str(tmp))
        if verify:
            err = verify_onnx(tmp, net, io, fp16, sizes=sizes)
            log.info("verified %s: onnx.checker ok, max |onnxruntime - torch| = %.3g over %d sizes",
                     out_path.name, err, len(sizes))
            entry = proto.metadata_props.add()  # the finding travels with the file (fastnst info, demo)
            entry.key, entry.value = META_VERIFIED, f"{err:.3g}"
            onnx.save_model(proto, str(tmp))
    return Path(out_path)
