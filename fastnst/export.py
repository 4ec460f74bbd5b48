"""Export a trained TransformerNet to a verified, self-contained ONNX model.

``export_onnx(source, out_path)`` writes one ``.onnx`` file (no external data) with dynamic batch,
height and width, standard operators only (opset :data:`fastnst.constants.ONNX_OPSET`), the input and
output names from :mod:`fastnst.constants`, and the training metadata as ``metadata_props``. The file
is checked with ``onnx.checker`` and compared with PyTorch under onnxruntime on several random sizes
(odd ones included) *before* it is moved into place: a model that fails is never left behind.

Two input conventions (``io``):

* ``"float"`` (default): RGB float32 in [0, 1], NCHW, output the same.
* ``"uint8"``: RGB uint8 NHWC in, uint8 NHWC out, so an app can feed decoded pixels directly.

``fp16=True`` stores the network in half precision (float32 inputs and outputs are kept; the casts
are inside the graph), meant for GPU execution providers.
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
import torch.nn.functional as F
from torch import nn

from fastnst import __version__
from fastnst.constants import ONNX_INPUT_NAME, ONNX_OPSET, ONNX_OUTPUT_NAME
from fastnst.errors import ConfigError, FastNSTError, InputError
from fastnst.fileio import atomic_output, check_output
from fastnst.networks.transformer import TransformerNet
from fastnst.tiling import NORM_STATS_NAME, STATS_INPUT_NAME, TILE_INPUT_NAME, TILE_OUTPUT_NAME, TILE_STATS_NAME

log = logging.getLogger(__name__)

IO_CHOICES = ("float", "uint8")
# Parity tolerances (max abs difference, onnxruntime vs torch, output in [0, 1] units).
FP32_TOLERANCE = 1e-4  # issue 3 / design: float32 export must match torch to 1e-4
FP16_TOLERANCE = 2e-2  # chosen: half precision keeps ~3 decimal digits; observed ~3e-3 on random nets
UINT8_TOLERANCE = 1  # in 0..255 levels: rounding at a .5 boundary may flip by one level
# Verification sizes (batch, height, width): odd, even and rectangular, a batch of two included.
VERIFY_SIZES: tuple[tuple[int, int, int], ...] = ((1, 67, 45), (2, 32, 48), (1, 51, 77))
STRIDE = 4  # two stride-2 convolutions: sizes divisible by 4 up-sample exactly by 2 at each stage

# metadata keys written into the model (besides everything the weights file carried)
META_VERSION = "fastnst_version"
META_EXPORTER = "fastnst_exporter"
META_IO = "fastnst_io"
META_INPUT = "fastnst_input"
META_STRIDE = "fastnst_stride"
META_MIN_SIZE = "fastnst_min_size"
META_PRECISION = "fastnst_precision"
META_ARCH = "fastnst_arch"
META_CONFIG = "fastnst_config"

INPUT_CONVENTIONS = {
    "float": "RGB float32 in [0,1], NCHW (batch, 3, height, width); output the same",
    "uint8": "RGB uint8 in 0..255, NHWC (batch, height, width, 3); output the same",
}


class ExportError(FastNSTError):
    """Export or its verification failed; no file was written."""


class _SwitchNorm(nn.Module):
    """Instance norm that can also record its statistics or use statistics given from outside.

    mode "plain": standard instance norm (exported as InstanceNormalization); "record": the same, also
    keeping the per-channel mean and variance of its input; "fixed": normalise with ``stats`` instead.
    """

    def __init__(self, norm: nn.InstanceNorm2d, offset: int) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps
        self.channels, self.offset = norm.num_features, offset
        self.mode = "plain"
        self.recorded: torch.Tensor | None = None
        self.stats: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, o = self.channels, self.offset
        if self.mode == "fixed":
            assert self.stats is not None
            mean = self.stats[:, o:o + c, None, None].to(x.dtype)
            var = self.stats[:, o + c:o + 2 * c, None, None].to(x.dtype)
            y = (x - mean) * torch.rsqrt(var + self.eps)
            return y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        if self.mode == "record":
            xf = x.float()
            self.recorded = torch.cat([xf.mean(dim=(2, 3)), xf.var(dim=(2, 3), unbiased=False)], dim=1)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


class _ExportGraph(nn.Module):
    """The exported graph: the style network on ``image`` plus two small extra paths used by tiling.

    Three independent copies of the network share the weights: ``image`` -> stylised image (the
    plain network); ``stats_image`` -> ``norm_stats``, the mean and variance of every instance norm,
    shape (N, K); ``tile`` normalised with ``tile_stats`` (1, K) -> stylised tile. The extra inputs
    have tiny default values, and onnxruntime runs every path on every call, so each path has its
    own input: plain use pays only for two 16x16 runs.
    """

    def __init__(self, net: TransformerNet, io_kind: str = "float", half: bool = False) -> None:
        super().__init__()
        self.net = copy.deepcopy(net)
        self.norms: list[_SwitchNorm] = []
        offset = 0
        for parent in list(self.net.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.InstanceNorm2d):
                    switch = _SwitchNorm(child, offset)
                    setattr(parent, name, switch)
                    self.norms.append(switch)
                    offset += 2 * child.num_features
        self.num_stats = offset
        self.io_kind, self.half = io_kind, half
        if half:
            self.net.half()

    def _set(self, mode: str, stats: torch.Tensor | None = None) -> None:
        for norm in self.norms:
            norm.mode, norm.stats, norm.recorded = mode, stats, None

    def forward(self, image: torch.Tensor, stats_image: torch.Tensor, tile: torch.Tensor,
                tile_stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dtype = torch.float16 if self.half else torch.float32
        self._set("plain")
        x = image.permute(0, 3, 1, 2).to(torch.float32) / 255.0 if self.io_kind == "uint8" else image
        y = self.net(x.to(dtype)).to(torch.float32)
        if self.io_kind == "uint8":
            y = torch.round(y * 255.0).clamp(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1)
        self._set("record")
        self.net(stats_image.to(dtype))
        stats = torch.cat([norm.recorded for norm in self.norms], dim=1)  # type: ignore[misc]
        self._set("fixed", tile_stats)
        t = self.net(tile.to(dtype)).to(torch.float32)
        self._set("plain")
        return y, stats, t


def _load_source(source: str | os.PathLike | TransformerNet) -> tuple[TransformerNet, dict[str, str], str]:
    """The network (a CPU float32 copy in eval mode), its metadata and a display name."""
    if isinstance(source, TransformerNet):
        net = TransformerNet.from_config(source.config)
        net.load_state_dict({k: v.detach().to("cpu", torch.float32) for k, v in source.state_dict().items()})
        meta = {META_CONFIG: json.dumps(source.config), META_ARCH: source.preset or "custom"}
        return net.eval(), meta, "TransformerNet"
    if isinstance(source, nn.Module):
        raise ConfigError(f"export_onnx takes a TransformerNet or a weights file, not {type(source).__name__}")
    from fastnst.weights import load_transformer

    path = Path(source)
    if path.suffix.lower() == ".onnx":
        raise InputError(f"'{path}' is already an ONNX model; export takes .safetensors or .ckpt weights")
    net, meta = load_transformer(path)
    return net.float().eval(), dict(meta), str(path)


TILE_DEFAULT_SIZE = 16  # the tile path's default input (16x16 zeros): negligible work when not used


def _export_graph(module: _ExportGraph, example: torch.Tensor) -> tuple[Any, str]:
    """Export with the dynamo exporter (fallback: TorchScript exporter). Returns (ModelProto, exporter)."""
    import onnx

    nhwc = module.io_kind == "uint8"
    hdim, wdim = (1, 2) if nhwc else (2, 3)
    tile = torch.rand(2, 3, 32, 40)
    stats = torch.cat([torch.zeros(1, module.num_stats // 2), torch.ones(1, module.num_stats // 2)], 1)
    args = (example, torch.rand(1, 3, 36, 28), tile, stats)
    input_names = [ONNX_INPUT_NAME, STATS_INPUT_NAME, TILE_INPUT_NAME, TILE_STATS_NAME]
    output_names = [ONNX_OUTPUT_NAME, NORM_STATS_NAME, TILE_OUTPUT_NAME]
    errors: list[str] = []
    try:
        batch = torch.export.Dim("batch", min=1, max=1024)
        height = torch.export.Dim("height", min=8, max=65536)
        width = torch.export.Dim("width", min=8, max=65536)
        tbatch = torch.export.Dim("tile_batch", min=1, max=1024)
        theight = torch.export.Dim("tile_height", min=8, max=65536)
        twidth = torch.export.Dim("tile_width", min=8, max=65536)
        sheight = torch.export.Dim("stats_height", min=8, max=65536)
        swidth = torch.export.Dim("stats_width", min=8, max=65536)
        shapes = ({0: batch, hdim: height, wdim: width}, {2: sheight, 3: swidth},
                  {0: tbatch, 2: theight, 3: twidth}, None)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module, args, dynamo=True, verbose=False, opset_version=ONNX_OPSET, input_names=input_names,
                output_names=output_names, external_data=False, dynamic_shapes=shapes, optimize=True)
        proto, exporter = program.model_proto, "torch.onnx.export(dynamo=True)"
    except Exception as exc:  # noqa: BLE001 - any exporter failure: try the legacy exporter
        errors.append(f"dynamo: {type(exc).__name__}: {_first_line(exc)}")
        log.warning("dynamo ONNX export failed (%s); falling back to the TorchScript exporter", errors[-1])
        try:
            buf = io.BytesIO()
            axes = {0: "batch", hdim: "height", wdim: "width"}
            taxes = {0: "tile_batch", 2: "tile_height", 3: "tile_width"}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, args, buf, dynamo=False, opset_version=ONNX_OPSET,
                                  input_names=input_names, output_names=output_names,
                                  dynamic_axes={ONNX_INPUT_NAME: axes, ONNX_OUTPUT_NAME: axes,
                                                TILE_INPUT_NAME: taxes, TILE_OUTPUT_NAME: taxes,
                                                STATS_INPUT_NAME: {2: "stats_height", 3: "stats_width"}})
            proto, exporter = onnx.load_from_string(buf.getvalue()), "torch.onnx.export(dynamo=False)"
        except Exception as exc2:  # noqa: BLE001
            errors.append(f"torchscript: {type(exc2).__name__}: {_first_line(exc2)}")
            raise ExportError("ONNX export failed: " + "; ".join(errors)) from None
    # The tile inputs get default values (initializers with the input's name): callers that feed only
    # `image` need not know about them, and onnxruntime lists them as overridable, not required.
    small = np.zeros((1, 3, TILE_DEFAULT_SIZE, TILE_DEFAULT_SIZE), np.float32)
    defaults = {STATS_INPUT_NAME: small, TILE_INPUT_NAME: small, TILE_STATS_NAME: stats.numpy()}
    for name, value in defaults.items():
        proto.graph.initializer.append(onnx.numpy_helper.from_array(value, name))
    return proto, exporter


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _metadata(meta: dict[str, str], net: TransformerNet, io_kind: str, fp16: bool, exporter: str) -> dict[str, str]:
    out = {str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in meta.items()}
    out.setdefault("fastnst_trained_with", out.get(META_VERSION, __version__))
    out.update({
        META_VERSION: __version__,
        META_EXPORTER: exporter,
        META_CONFIG: json.dumps(net.config),
        META_ARCH: net.preset or out.get(META_ARCH, "custom"),
        META_IO: io_kind,
        META_INPUT: INPUT_CONVENTIONS[io_kind],
        META_STRIDE: str(STRIDE),
        META_MIN_SIZE: str(max(net.min_size, 8)),
        META_PRECISION: "float16" if fp16 else "float32",
    })
    return out


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def verify_onnx(path: str | os.PathLike, net: TransformerNet, io_kind: str = "float", fp16: bool = False,
                sizes: tuple[tuple[int, int, int], ...] = VERIFY_SIZES, seed: int = 0) -> float:
    """Check ``path`` with onnx.checker and against ``net`` under onnxruntime; returns the max abs error.

    Every size is run through the main path and, with the statistics it reports, through the tile
    path. The error is in [0, 1] units (uint8 models: 0..255 levels on the main path). Raises
    ExportError when the checker fails or an error is above the tolerance.
    """
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"onnx.checker rejected the exported model: {_first_line(exc)}") from None
    try:
        session = _session(Path(path))
    except Exception as exc:  # noqa: BLE001
        if fp16:  # CPU onnxruntime may lack half-precision kernels: the checker's verdict stands
            log.warning("fp16 model not runnable on CPU onnxruntime (%s); parity not checked", _first_line(exc))
            return float("nan")
        raise ExportError(f"onnxruntime cannot load the exported model: {_first_line(exc)}") from None
    required = [i.name for i in session.get_inputs()]
    if required != [ONNX_INPUT_NAME]:
        raise ExportError(f"exported model requires inputs {required}, expected only '{ONNX_INPUT_NAME}'")
    generator = torch.Generator().manual_seed(seed)
    tol = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
    worst = 0.0

    def check(err: float, tolerance: float, what: str, shape: tuple[int, ...]) -> None:
        if not np.isfinite(err) or err > tolerance:
            raise ExportError(f"exported model disagrees with torch ({what}) at {'x'.join(map(str, shape))}: "
                              f"max abs difference {err:.3g} > {tolerance:g}; the model was not written")

    for batch, height, width in sizes:
        x = torch.rand(batch, 3, height, width, generator=generator)
        if io_kind == "uint8":
            x = (x * 255).round() / 255  # exactly representable pixel values
        with torch.inference_mode():
            ref = net(x).numpy()
        shape = (batch, 3, height, width)
        if io_kind == "uint8":
            feed = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
            got, stats = session.run([ONNX_OUTPUT_NAME, NORM_STATS_NAME],
                                     {ONNX_INPUT_NAME: feed, STATS_INPUT_NAME: x[:1].numpy()})
            got = got.astype(np.float32).transpose(0, 3, 1, 2)
            err = float(np.abs(got - np.round(ref * 255.0)).max()) if got.shape == ref.shape else float("inf")
            check(err, UINT8_TOLERANCE, "uint8 main path", shape)
        else:
            got, stats = session.run([ONNX_OUTPUT_NAME, NORM_STATS_NAME],
                                     {ONNX_INPUT_NAME: x.numpy(), STATS_INPUT_NAME: x[:1].numpy()})
            err = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
            check(err, tol, "main path", shape)
            worst = max(worst, err)
        # tile path with the image's own statistics == the plain network
        dummy = np.zeros((1, 8, 8, 3) if io_kind == "uint8" else (1, 3, 8, 8),
                         np.uint8 if io_kind == "uint8" else np.float32)  # onnxruntime wants every required input
        tiled = session.run([TILE_OUTPUT_NAME], {ONNX_INPUT_NAME: dummy, TILE_INPUT_NAME: x[:1].numpy(),
                                                 TILE_STATS_NAME: stats[:1]})[0]
        err = float(np.abs(tiled - ref[:1]).max()) if tiled.shape == ref[:1].shape else float("inf")
        check(err, tol, "tile path", shape)
        worst = max(worst, err)
    return worst


def export_onnx(source: str | os.PathLike | TransformerNet, out_path: str | os.PathLike, *, io: str = "float",
                fp16: bool = False, overwrite: bool = False, verify: bool = True,
                metadata: dict[str, Any] | None = None) -> Path:
    """Export ``source`` (a ``.safetensors``/``.ckpt`` path or a TransformerNet) to ``out_path``.

    ``io`` is ``"float"`` (float32 NCHW in [0, 1]) or ``"uint8"`` (uint8 NHWC). ``fp16`` stores half
    precision weights. ``metadata`` adds or replaces string metadata entries. With ``verify`` (default)
    the file is checked and compared with torch before it is moved into place. Returns ``out_path``.
    Raises InputError/ModelFormatError for a bad source, OutputExistsError when ``out_path`` exists and
    ``overwrite`` is false, ExportError when export or verification fails (nothing is written).
    """
    import onnx

    if io not in IO_CHOICES:
        from fastnst.errors import unknown_choice

        raise unknown_choice("--io convention", io, IO_CHOICES)
    if fp16 and io == "uint8":
        raise ConfigError("--fp16 applies to float models; use --io float with --fp16")
    out_path = check_output(out_path, overwrite)
    net, meta, name = _load_source(source)
    if metadata:
        meta.update({str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in metadata.items()})
    module = _ExportGraph(net, io, half=fp16).eval()
    example = torch.rand(1, 3, 64, 64)
    if io == "uint8":
        example = (example * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    log.info("exporting %s to %s (io=%s%s)", name, out_path, io, ", fp16" if fp16 else "")
    proto, exporter = _export_graph(module, example)
    for key, value in _metadata(meta, net, io, fp16, exporter).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "fastnst"
    proto.producer_version = __version__
    proto.doc_string = f"fastnst style network ({INPUT_CONVENTIONS[io]})"
    with atomic_output(out_path, overwrite=overwrite) as tmp:
        onnx.save_model(proto, str(tmp))
        if verify:
            err = verify_onnx(tmp, net, io, fp16)
            log.info("verified %s: onnx.checker ok, max |onnxruntime - torch| = %.3g over %d sizes",
                     out_path.name, err, len(VERIFY_SIZES))
    return Path(out_path)
