"""Model files as a user handles them: open one by its kind, describe it, export weights. Torch-free at import.

:func:`load_model` gives a stylizer for an ``.onnx`` model (onnxruntime, :class:`fastnst.runtime.Stylizer`)
or for ``.safetensors``/``.ckpt`` weights (torch, :class:`fastnst.training.torch_stylizer.TorchStylizer`); torch is
imported only for weights. :func:`model_info` and :func:`info_lines` are ``fastnst info`` (style and
super-resolution models alike); :func:`export_model` with :class:`ExportOptions` is ``fastnst export`` (and its
``--web`` page). The ``--static`` size is checked by :func:`fastnst.checks.static_size`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastnst.checks import static_size
from fastnst.contract import IO_KINDS, META_VERIFIED, SR_TASK
from fastnst.errors import ConfigError, FastNSTError, InputError, ModelFormatError
from fastnst.options import check_options, option

ONNX_SUFFIXES = (".onnx",)
TORCH_SUFFIXES = (".ckpt", ".safetensors", ".pt", ".pth")


def model_kind(path: str | os.PathLike) -> str:
    """'onnx' or 'torch' by the file's suffix; InputError for a missing file or a folder, ModelFormatError
    for an unknown suffix."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"model '{path}' does not exist; check the path")
    if path.is_dir():
        raise InputError(f"model '{path}' is a folder; pass an .onnx, .safetensors or .ckpt file")
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    if suffix in TORCH_SUFFIXES:
        return "torch"
    raise ModelFormatError(f"model '{path}' has an unknown kind ('{suffix or 'no suffix'}'); pass an .onnx model "
                           f"from fastnst export, or .safetensors/.ckpt weights from fastnst train")


def load_model(path: str | os.PathLike, device: Any = "auto", threads: int | None = None,
               input_range: float | None = None, optimization: str | None = None) -> Any:
    """A stylizer for ``path``: onnxruntime for ``.onnx``, torch for ``.ckpt``/``.safetensors``.

    ``device`` is a provider choice for onnxruntime (see :func:`fastnst.runtime.resolve_providers`); for
    torch weights 'auto', 'cpu' or 'cuda'. ``input_range`` and ``optimization`` apply to ONNX models.
    """
    path = Path(path)
    if model_kind(path) == "onnx":
        from fastnst.runtime import Stylizer

        return Stylizer(path, providers=device, threads=threads, input_range=input_range, optimization=optimization)
    if input_range not in (None, 1, 1.0):
        raise ConfigError("--input-range applies to .onnx models; fastnst weights take pixels in [0, 1]")
    from fastnst.training.torch_stylizer import TorchStylizer

    return TorchStylizer(path, device if isinstance(device, str) else "auto", threads)


def model_info(model: str | os.PathLike | None = None) -> dict[str, Any]:
    """What ``fastnst info`` shows, as a JSON-able dict: metadata, signature, providers (``model`` None:
    the built-in styles' model, with ``builtin_styles``)."""
    builtin_styles = None
    if model is None:
        from fastnst.styles import builtin

        path = builtin.model_path()
        builtin_styles = builtin.describe()
    else:
        path = Path(model).expanduser()
    if model_kind(path) == "onnx":
        from fastnst.runtime import Model, Stylizer, Upscaler

        opened = Model(path, providers="cpu")
        info = (Upscaler(opened) if opened.task == SR_TASK else Stylizer(opened)).describe()
    else:
        from fastnst.runtime.session import decode_metadata
        from fastnst.training.weights import load_transformer

        net, meta = load_transformer(path)
        info = {"model": str(path), "size_bytes": path.stat().st_size, "io": "weights (torch)",
                "config": net.config, "parameters": sum(p.numel() for p in net.parameters()),
                "metadata": decode_metadata(meta)}
        try:
            from fastnst.runtime import available_providers

            info["providers_available"] = available_providers()
        except FastNSTError:
            pass
    if builtin_styles is not None:
        info["builtin_styles"] = builtin_styles
    return info


def info_lines(info: dict[str, Any]) -> list[str]:
    """:func:`model_info`'s dict as the lines ``fastnst info`` prints."""
    lines = [f"model      {info['model']} ({info['size_bytes'] / 1e6:.1f} MB, {info['io']})"]
    for s in info.get("builtin_styles") or []:
        lines.append(f"built-in   {s['name']}{' (default)' if s['default'] else ''}: {s['title']}; {s['licence']}")
    labels = {"inputs": ("input", ""), "optional_inputs": ("input", "  (optional; an old tiling input, unused)"),
              "outputs": ("output", "")}
    for key, (label, note) in labels.items():
        lines += [f"{label:<10} {sig['name']}: {sig['type']} {sig['shape']}{note}" for sig in info.get(key, [])]
    if info.get("styles"):
        lines.append(f"styles     {', '.join(f'{i}={n}' for i, n in enumerate(info['styles']))}")
    if "config" in info:
        lines.append(f"network    {json.dumps(info['config'])}")
    for key, value in info.get("metadata", {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"  {key:<28} {text if len(text) <= 100 else text[:97] + '...'}")
    if "providers_available" in info:
        lines.append(f"providers  available: {', '.join(info['providers_available'])}")
    return lines


# ------------------------------------------------------------------------------------------ export

@dataclass
class ExportOptions:
    """``fastnst export``: weights to a verified ONNX model (and optionally a browser page)."""

    output: str | None = option(None, "output .onnx (default: beside the weights)", short="-o")
    io: str = option("float", "float: RGB float32 [0,1] NCHW; uint8: RGB uint8 NHWC in and out", choices=IO_KINDS)
    fp16: bool = option(False, "half-precision weights (for GPU providers)")
    static: str | None = option(None, "fixed image size for runtimes that need one (e.g. OpenCV 4.x); the batch "
                                "stays dynamic", metavar="HxW")
    web: str | None = option(None, "also write a browser page (onnxruntime-web, copied from an npm install) with "
                             "the model", metavar="DIR")
    ort_dist: str | None = option(None, "onnxruntime-web's dist folder for --web (default: "
                                  "./node_modules/onnxruntime-web/dist)", metavar="PATH")
    no_verify: bool = option(False, "skip the onnxruntime-vs-torch comparison")
    overwrite: bool = option(False, "replace an existing output")


def _web_line(folder: Path, model: Path) -> str:
    from fastnst.web import site_size

    return (f"wrote {folder}/ (page, {model.name}, onnxruntime-web; {site_size(folder) / 1e6:.0f} MB); serve it "
            f"with: python -m http.server -d {folder}")


def export_model(weights: str | os.PathLike, options: ExportOptions | None = None) -> list[str]:
    """Export ``weights`` as :class:`ExportOptions` say; returns the lines that say what was written.

    With ``web`` and an ``.onnx`` model only the page is written. Problems with the options, the
    weights, the output's name, onnxruntime-web or the page's folder (a file it would replace without
    ``overwrite``) fail before torch is imported or anything is written.
    """
    opts = check_options(options or ExportOptions())
    weights = Path(weights).expanduser()
    if weights.is_dir():
        raise InputError(f"weights '{weights}' is a folder; pass the .safetensors or .ckpt file inside it")
    if not weights.is_file():
        raise InputError(f"weights '{weights}' do not exist; check the path")
    if opts.output is not None and not opts.output.strip():
        raise ConfigError("-o/--output is empty; give a file name such as wave.onnx (or leave -o out)")
    if opts.web is not None and weights.suffix.lower() == ".onnx":  # an exported model: only the page is written
        from fastnst.web import write_web

        if opts.output or opts.io != "float" or opts.fp16 or opts.static:
            raise ConfigError("with an .onnx model, --web copies it as it is; -o, --io, --fp16 and --static "
                              "apply to weights")
        return [_web_line(write_web(opts.web, [weights], opts.ort_dist, overwrite=opts.overwrite), weights)]
    static_size(opts.static)  # a bad size fails before torch is imported
    if opts.output is None:
        suffix = "-uint8" if opts.io == "uint8" else "-fp16" if opts.fp16 else ""
        suffix += f"-{opts.static.lower()}" if opts.static else ""
        output = weights.with_name(weights.stem + suffix + ".onnx")
    else:
        output = Path(opts.output).expanduser()
        if output.suffix.lower() not in ONNX_SUFFIXES:
            raise ConfigError(f"-o '{output}' must end in .onnx (fastnst export writes an ONNX model); "
                              f"for example -o {output.with_suffix('.onnx').name}")
    if opts.web is not None:  # the page's folder checked now: a file it would replace fails before the export
        from fastnst.web import plan_web

        plan_web(opts.web, [output], opts.ort_dist, overwrite=opts.overwrite)
    from fastnst.training.export import export_onnx

    t0 = time.perf_counter()
    path = export_onnx(weights, output, io=opts.io, fp16=opts.fp16, overwrite=opts.overwrite,
                       verify=not opts.no_verify, static=opts.static)
    lines = [f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {opts.io}{', fp16' if opts.fp16 else ''}"
             f"{', static ' + opts.static if opts.static else ''}"
             f"{', verified' if not opts.no_verify else ', NOT verified'}) in {time.perf_counter() - t0:.1f} s"]
    if opts.web is not None:
        from fastnst.web import write_web

        lines.append(_web_line(write_web(opts.web, [path], opts.ort_dist, overwrite=opts.overwrite), path))
    return lines


@dataclass
class ExportUniversalOptions:
    """``fastnst export-universal``: trained decoders and their encoder to the verified universal model."""

    vgg_weights: str | None = option(None, "the VGG .safetensors the decoders were trained on (its SHA-256 must "
                                     "match theirs); required")
    output: str | None = option(None, "the .onnx file to write; required", short="-o")
    fp32: bool = option(False, "store the weights as float32 (twice the size)")
    overwrite: bool = option(False, "replace an existing output")


def export_universal_model(decoders: list[str | os.PathLike], options: ExportUniversalOptions) -> list[str]:
    """Write the universal model of ``decoders`` (one ``fastnst train-decoder`` file per level) as
    :class:`ExportUniversalOptions` say; returns the lines that say what was written. Needs torch."""
    opts = check_options(options)
    if not opts.vgg_weights:
        raise ConfigError("--vgg-weights is required: the VGG .safetensors the decoders were trained on")
    if not opts.output:
        raise ConfigError("-o/--output is required: the universal model's .onnx file, such as universal.onnx")
    from fastnst.training.universal import export_universal  # torch: the train extra

    out = export_universal(decoders, opts.vgg_weights, Path(opts.output).expanduser(), fp16=not opts.fp32,
                           overwrite=opts.overwrite)
    return [f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, verified against torch); use it with fastnst "
            f"stylize PHOTO --style PAINTING --universal-model {out}"]


def verified_error(metadata: dict[str, str]) -> float | None:
    """The max |onnxruntime - torch| that export's verification found (None: not recorded)."""
    try:
        return float(metadata[META_VERIFIED])
    except (KeyError, TypeError, ValueError):
        return None


__all__ = ["model_kind", "load_model", "model_info", "info_lines", "ExportOptions", "export_model",
           "ExportUniversalOptions", "export_universal_model", "verified_error",
           "ONNX_SUFFIXES", "TORCH_SUFFIXES"]
