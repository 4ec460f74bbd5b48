"""``fastnst stylize | export | info | demo``: apply, export and inspect trained style networks.

``stylize`` on an ``.onnx`` model uses onnxruntime only (torch is never imported); on ``.ckpt`` /
``.safetensors`` weights it runs the network with torch (weights-only loading). Per-image problems in
a batch are reported on stderr and skipped; the exit code is 0 only when every image succeeded.
Errors that stop everything raise FastNSTError (one line on stderr, exit code 2, via fastnst.cli).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from fastnst.errors import ConfigError, FastNSTError, InputError, ModelFormatError, OutputExistsError

ONNX_SUFFIXES = (".onnx",)
TORCH_SUFFIXES = (".ckpt", ".safetensors", ".pt", ".pth")
PROGRESS_MIN_IMAGES = 5  # chosen: below this a summary line is enough when stderr is not a terminal


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one FastNSTError line instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message} (see --help)")


# ------------------------------------------------------------------------------------------ models

def _model_kind(path: Path) -> str:
    """'onnx' or 'torch' by suffix (and by content for unknown suffixes)."""
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
    """A Stylizer for ``path``: onnxruntime for ``.onnx``, torch for ``.ckpt``/``.safetensors``.

    ``device`` is a provider choice for onnxruntime (see fastnst.runtime.resolve_providers); for torch
    weights 'auto', 'cpu' or 'cuda'.
    """
    path = Path(path)
    if _model_kind(path) == "onnx":
        from fastnst.runtime import Stylizer

        return Stylizer(path, providers=device, threads=threads, input_range=input_range, optimization=optimization)
    if input_range not in (None, 1, 1.0):
        raise ConfigError("--input-range applies to .onnx models; fastnst weights take pixels in [0, 1]")
    return _torch_stylizer(path, device if isinstance(device, str) else "auto", threads)


@contextlib.contextmanager
def _instance_norm_stats(mode: str, stats: list[Any]) -> Any:
    """Within the block every torch instance norm records its input's statistics (mode 'record',
    appended to ``stats``) or normalises with the next recorded ones (mode 'fixed')."""
    import torch
    import torch.nn.functional as F

    original = F.instance_norm
    queue = list(stats)

    def patched(x: Any, running_mean: Any = None, running_var: Any = None, weight: Any = None, bias: Any = None,
                use_input_stats: bool = True, momentum: float = 0.1, eps: float = 1e-5) -> Any:
        if mode == "record":
            xf = x.float()
            stats.append((xf.mean(dim=(2, 3), keepdim=True), xf.var(dim=(2, 3), unbiased=False, keepdim=True)))
            return original(x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)
        mean, var = queue.pop(0)
        y = (x - mean.to(x.dtype)) * torch.rsqrt(var.to(x.dtype) + eps)
        if weight is not None:
            y = y * weight[None, :, None, None]
        if bias is not None:
            y = y + bias[None, :, None, None]
        return y

    F.instance_norm = patched
    try:
        yield
    finally:
        F.instance_norm = original


def _torch_stylizer(path: Path, device: str, threads: int | None = None) -> Any:
    """A Stylizer-compatible object running the network with torch (tiling with whole-image statistics)."""
    import threading

    import torch

    from fastnst.export import _style_names
    from fastnst.contract import MIN_SIZE, STRIDE
    from fastnst.runtime import Stylizer, check_threads
    from fastnst.weights import load_transformer

    if device not in ("auto", "cpu", "cuda"):
        from fastnst.errors import unknown_choice

        raise unknown_choice("device", device, ("auto", "cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no CUDA device here; use --device cpu")
    if threads is not None:
        torch.set_num_threads(check_threads(threads))
    dev = torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    net, meta = load_transformer(path)
    net = net.to(dev).eval()
    multi = int(getattr(net, "num_styles", 1) or 1) > 1

    class TorchStylizer(Stylizer):
        """The network of a weights file run by torch, with the Stylizer interface."""

        def __init__(self) -> None:  # noqa: D401 - no onnxruntime session
            self.path, self.metadata, self.io_kind = path, dict(meta), "float"
            self.stride, self.min_size = STRIDE, max(MIN_SIZE, net.min_size)
            self.input_range, self.static_size, self.tiling_note = 1.0, None, ""
            self.style_names = _style_names(net) if multi else []
            self._lock = threading.Lock()

        @property
        def providers(self) -> list[str]:
            return [f"torch:{dev.type}"]

        @property
        def device(self) -> str:
            return dev.type

        def _tiler(self) -> Any:
            return True

        def _tensor(self, images: list[np.ndarray]) -> Any:
            padded = [self._pad(im) for im in images]
            x = torch.from_numpy(self._feed([p for p, _ in padded])).to(dev)
            return x, padded[0][1]

        def _net(self, x: Any, style: np.ndarray | None) -> Any:
            if not multi:
                return net(x)
            from fastnst.runtime import parse_style

            weights = parse_style(None, self.style_names) if style is None else style
            return net(x, torch.from_numpy(np.repeat(weights[None], x.shape[0], 0)).to(dev))

        def run_batch(self, images: Any, style: np.ndarray | None = None) -> list[np.ndarray]:
            x, box = self._tensor(list(images))
            with torch.inference_mode():
                y = self._net(x, style).float().cpu().numpy()
            return [self._back(y[i], box) for i in range(len(y))]

        def norm_stats(self, rgb: np.ndarray, style: np.ndarray | None = None) -> Any:
            x, _ = self._tensor([rgb])
            stats: list[Any] = []
            with torch.inference_mode(), _instance_norm_stats("record", stats):
                self._net(x, style)
            return stats

        def run_tile(self, rgb: np.ndarray, stats: Any, style: np.ndarray | None = None) -> np.ndarray:
            x, box = self._tensor([rgb])
            with torch.inference_mode(), _instance_norm_stats("fixed", stats):
                y = self._net(x, style).float().cpu().numpy()
            return self._back(y[0], box)

        def describe(self) -> dict[str, Any]:
            info = {"model": str(path), "size_bytes": path.stat().st_size, "io": "float (torch)",
                    "config": net.config, "metadata": dict(meta), "providers_used": self.providers}
            if self.style_names:
                info["styles"] = self.style_names
            return info

    return TorchStylizer()


# ------------------------------------------------------------------------------------------ inputs

def _expand_inputs(items: Sequence[str]) -> list[tuple[str, Path | None, str | None]]:
    """(display name, path or None for stdin, error or None) for every input item, in order."""
    from fastnst.image import IMAGE_EXTENSIONS

    out: list[tuple[str, Path | None, str | None]] = []
    for item in items:
        if item == "-":
            out.append(("<stdin>", None, None))
            continue
        path = Path(item).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                out.append((item, path, f"folder '{item}' has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})"))
            out += [(str(p), p, None) for p in files]
        elif path.exists():
            out.append((item, path, None))
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(item), recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                out.append((item, None, f"'{item}' matches no files"))
            out += [(str(p), p, None) for p in files]
        else:
            out.append((item, path, f"'{item}' does not exist; check the path"))
    return out


def _output_paths(inputs: list[tuple[str, Path | None, str | None]], output: str,
                  fmt: str | None) -> tuple[str, list[Path | None]]:
    """('file' | 'folder' | 'stdout', one output path per input (None for stdout))."""
    from fastnst.image import SAVE_FORMATS

    if output == "-":
        if len(inputs) != 1:
            raise ConfigError(f"-o - (stdout) takes exactly one input, got {len(inputs)}")
        return "stdout", [None]
    out = Path(output).expanduser()
    folder = out.is_dir() or output.endswith(("/", os.sep)) or len(inputs) > 1 or (
        not out.suffix and not out.exists())
    if not folder:
        if inputs[0][1] is None and not fmt and out.suffix.lower() not in SAVE_FORMATS:
            raise ConfigError(f"cannot tell the format of '{out}'; give it a suffix such as .jpg or pass --format")
        return "file", [out]
    if out.exists() and not out.is_dir():
        raise InputError(f"output '{out}' is a file, but {len(inputs)} inputs need a folder")
    paths: list[Path | None] = []
    seen: dict[Path, str] = {}
    for name, path, _ in inputs:
        stem = path.stem if path is not None else "stdin"
        suffix = ("." + fmt.lower().lstrip(".")) if fmt else (
            path.suffix.lower() if path is not None and path.suffix.lower() in SAVE_FORMATS else ".png")
        target = out / f"{stem}{suffix}"
        if target in seen:
            raise ConfigError(f"'{name}' and '{seen[target]}' would both be written to '{target}'; "
                              f"stylise them separately or rename one")
        seen[target] = name
        paths.append(target)
    return "folder", paths


def _check_folder(folder: Path) -> None:
    """Create the output folder if its parent exists; refuse an unwritable one before any work."""
    if not folder.exists():
        if not folder.parent.exists():
            raise InputError(f"output folder '{folder}' cannot be created: '{folder.parent}' does not exist")
        try:
            folder.mkdir()
        except OSError as exc:
            raise InputError(f"cannot create output folder '{folder}': {exc.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"output folder '{folder}' is not writable; choose another -o")


class _Progress:
    """A one-line progress bar on stderr (a terminal), or a line per ~10% (many images, no terminal)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.enabled = enabled and total > 1 and (self.tty or total >= PROGRESS_MIN_IMAGES)
        self._last_decile = -1

    def step(self, name: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        frac = self.done / self.total
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        if self.tty:
            bar = "#" * int(frac * 24)
            print(f"\r[{bar:<24}] {self.done}/{self.total} {elapsed:5.1f}s eta {eta:4.0f}s {Path(name).name[:30]:<30}",
                  end="", file=sys.stderr, flush=True)
        elif int(frac * 10) > self._last_decile:
            self._last_decile = int(frac * 10)
            print(f"{self.done}/{self.total} images ({elapsed:.1f} s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ stylize

_STYLIZE_EXAMPLES = """examples:
  fastnst stylize photo.jpg -o out.jpg                          (the default built-in style; fastnst styles lists them)
  fastnst stylize photo.jpg -o out.jpg --style 'mosaic:0.5,brushstrokes:0.5'
  fastnst stylize --model wave.onnx photo.jpg -o photo-wave.jpg
  fastnst stylize --model wave.onnx photos/ -o stylised/ --strength 0.8
  fastnst stylize --model wave.onnx 'holiday/*.png' -o out/ --preserve-color --json
  cat photo.jpg | fastnst stylize --model wave.onnx - -o - --format png > out.png
  fastnst stylize --model checkpoints/wave/wave.safetensors poster.tif -o poster-wave.tif --tile 1024
  fastnst stylize --model mosaic-9.onnx --input-range 255 big.jpg -o big-mosaic.jpg --tile 512
  fastnst stylize --model styles.onnx --style 'wave:0.7,mosaic:0.3' photo.jpg -o blend.jpg --provider cuda
"""


def _stylize_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fastnst stylize", description="Stylise images with a trained style network.",
                epilog=_STYLIZE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs, or - for stdin")
    p.add_argument("-m", "--model", default=None,
                   help=".onnx model (onnxruntime) or .safetensors/.ckpt weights from fastnst train (torch); "
                        "default: the built-in styles shipped with fastnst (see fastnst styles)")
    p.add_argument("-o", "--output", required=True,
                   help="output file (one input), folder (several; created if missing), or - for stdout")
    p.add_argument("--strength", type=float, default=1.0, help="0 = original, 1 = fully stylised (default 1)")
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours, take the style's luminance")
    p.add_argument("--max-size", type=int, default=None, help="downscale so the longer side is at most N pixels")
    p.add_argument("--tile", type=int, default=None,
                   help="tile size in pixels (default: 1024-px tiles above 1.6 Mpx; 0 = never tile)")
    p.add_argument("--provider", action="append", default=None, metavar="NAME[:KEY=VALUE,...]",
                   help="onnxruntime execution provider: auto (default: TensorRT, CUDA, DirectML, CoreML, OpenVINO "
                        "when installed, else CPU), cpu, cuda, tensorrt, directml, coreml, openvino or a full "
                        "name, with options e.g. cuda:device_id=1; repeat for a fallback list")
    p.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                   help="shorthand for --provider (auto, cpu or cuda; an error when unavailable)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: physical cores; capped at the CPUs this process may use)")
    p.add_argument("--optimization", default=None, choices=("disable", "basic", "extended", "all"),
                   help="onnxruntime graph optimisation level (default extended: all minus the memory-hungry "
                        "NCHWc layout)")
    p.add_argument("--style", default=None, metavar="NAME|INDEX|NAME:W,NAME:W",
                   help="multi-style models: a style name, an index, or a blend such as 'wave:0.7,mosaic:0.3' "
                        "(default: the first style; without --model, the default built-in style)")
    p.add_argument("--input-range", type=float, default=None, choices=(1.0, 255.0),
                   help="pixel range the model takes: 1 ([0,1], fastnst models) or 255 (0..255, e.g. the ONNX "
                        "model zoo's fast_neural_style models); default: the model's metadata, else 1")
    p.add_argument("--format", default=None, help="output format for folders and stdout: jpg, png, webp, ...")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100 (default 95)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--in-place", action="store_true",
                   help="allow an output to be its own input (replaced atomically once stylised); never another input")
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.add_argument("--stroke-scale", type=float, default=1.0, metavar="S",
                   help="strokes S times larger (S > 1) or smaller (S < 1) at the same output size, 0.25-4 (default 1)")
    p.add_argument("--sr-model", default=None, help="with --stroke-scale > 1: a 'fastnst train-sr' .onnx model "
                   "that brings the smaller stylisation back to size (sharper than resampling)")
    p.add_argument("--deflicker", type=float, default=None, help="videos: flicker reduction, 0 (off) to 0.95 (default 0.6)")
    p.add_argument("--batch-size", type=int, default=None, help="videos: frames per network call (default 4)")
    return p


def _stdin() -> Any:
    """Standard input as a named in-memory file (errors then say '<stdin>', not '<image>')."""
    import io

    data = io.BytesIO(sys.stdin.buffer.read())
    data.name = "<stdin>"
    return data


def main_stylize(argv: list[str]) -> int:
    """``fastnst stylize``; returns 0 when every image was stylised, 2 otherwise."""
    from fastnst.fileio import check_output
    from fastnst.image import encode_image, output_format, save_image

    args = _stylize_parser().parse_args(argv)
    if not 0.0 <= args.strength <= 1.0:
        raise ConfigError(f"--strength must be between 0 and 1, got {args.strength}")
    if args.max_size is not None and args.max_size <= 0:
        raise ConfigError(f"--max-size must be positive, got {args.max_size}")
    if args.tile is not None and args.tile < 0:
        raise ConfigError(f"--tile must be 0 (never) or a positive size, got {args.tile}")
    from fastnst import checks

    checks.side("--max-size", args.max_size, allow_none=True)  # bounded by the pixel cap (fastnst.checks)
    checks.tile(args.tile, minimum=16)
    if not 1 <= args.quality <= 100:
        raise ConfigError(f"--quality must be between 1 and 100, got {args.quality}")
    if args.threads is not None and args.threads <= 0:
        raise ConfigError(f"--threads must be positive, got {args.threads}")
    if args.provider and args.device:
        raise ConfigError("--device is a shorthand for --provider; give one of them")
    from fastnst.runtime import parse_provider

    providers: Any = [parse_provider(p) for p in args.provider] if args.provider else (args.device or "auto")
    if isinstance(providers, list) and len(providers) == 1 and providers[0] == "auto":
        providers = "auto"
    if args.format:
        output_format("x", args.format)  # unsupported format: InputError now, not per image
    if not args.output.strip():
        raise ConfigError("-o/--output is empty; give a file or folder name, or - for stdout")
    if args.output == "-" and args.json:
        raise ConfigError("--json writes to stdout, and so does -o -; use one of them")
    if args.inputs.count("-") > 1:
        raise ConfigError("stdin (-) can be read only once")

    inputs = _expand_inputs(args.inputs)
    style_spec = args.style
    if args.model is None:  # the built-in multi-style model; its default style unless --style says otherwise
        from fastnst.styles import builtin

        model_path = builtin.model_path()
        style_spec = builtin.DEFAULT_STYLE if style_spec is None else style_spec
    else:
        model_path = Path(args.model).expanduser()
    from fastnst.strokes import with_stroke_scale
    from fastnst.video import is_video_path

    def make_stylizer() -> Any:
        from fastnst.contract import SR_TASK, model_task

        model = load_model(model_path, providers, args.threads, args.input_range, args.optimization)
        if model_task(getattr(model, "metadata", None) or {}) == SR_TASK:
            raise ModelFormatError(f"'{model_path}' is a super-resolution model; enlarge images with "
                                   f"'fastnst upscale --model {model_path} ...', or pass a style model")
        return with_stroke_scale(model, args.stroke_scale, args.sr_model, providers, args.threads)

    if len(inputs) == 1 and is_video_path(inputs[0][0]):  # a video: frames in batches, flicker reduction
        if inputs[0][2]:
            raise InputError(inputs[0][2])
        from fastnst.commands.video import main_video

        return main_video(args, Path(inputs[0][0]).expanduser(), make_stylizer, style_spec)
    mode, outputs = _output_paths(inputs, args.output, args.format)
    single = len(inputs) == 1
    if single and inputs[0][2]:
        raise InputError(inputs[0][2])
    from fastnst.fileio import check_batch_outputs, same_file

    check_batch_outputs([(p, o) for (_, p, _), o in zip(inputs, outputs)], in_place=args.in_place)
    if mode == "folder":
        _check_folder(Path(args.output).expanduser())
    elif mode == "file":
        fmt_path = outputs[0]
        assert fmt_path is not None
        output_format(fmt_path, args.format)
        check_output(fmt_path, args.overwrite, in_place=args.in_place, inputs=[inputs[0][1]])
    stylizer = make_stylizer()
    from fastnst.runtime import parse_style

    style = parse_style(style_spec, stylizer.style_names)  # a bad --style fails before any image is read

    progress = _Progress(len(inputs), enabled=not single)
    ok = failed = 0
    start = time.perf_counter()
    for (name, path, problem), out_path in zip(inputs, outputs):
        t0 = time.perf_counter()
        try:
            if problem:
                raise InputError(problem)
            own = args.in_place and path is not None and out_path is not None and same_file(path, out_path)
            if out_path is not None:
                check_output(out_path, args.overwrite or own)  # before the work, per image
            source: Any = _stdin() if path is None else path
            image = stylizer.stylize(source, strength=args.strength, preserve_color=args.preserve_color,
                                     max_size=args.max_size, tile=args.tile, style=style)
            alpha = image.getchannel("A") if image.mode == "RGBA" else None
            rgb = image.convert("RGB") if alpha is not None else image
            icc = image.info.get("icc_profile")
            if out_path is None:
                data = encode_image(rgb, args.format or "png", alpha=alpha, icc_profile=icc, quality=args.quality)
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            else:
                save_image(rgb, out_path, overwrite=args.overwrite or own, alpha=alpha, icc_profile=icc,
                           quality=args.quality, format=args.format)
            ok += 1
            seconds = time.perf_counter() - t0
            if args.json:
                print(json.dumps({"input": name, "output": str(out_path) if out_path else "-",
                                  "size": list(image.size), "seconds": round(seconds, 3),
                                  "device": stylizer.device}), flush=True)
        except FastNSTError as exc:
            if single:
                raise
            failed += 1
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if progress.enabled and progress.tty:
                print(file=sys.stderr)
            print(f"fastnst: error: {name}: {message}", file=sys.stderr, flush=True)
            if args.json:
                print(json.dumps({"input": name, "output": None, "error": message}), flush=True)
        progress.step(name)
    progress.close()
    total = time.perf_counter() - start
    where = "stdout" if mode == "stdout" else str(outputs[0] if mode == "file" else Path(args.output))
    summary = (f"stylised {ok} of {len(inputs)} image{'s' if len(inputs) != 1 else ''} in {total:.1f} s "
               f"on {stylizer.device}" + (f"; {failed} failed" if failed else "") + f" -> {where}")
    print(summary, file=sys.stderr)
    return 0 if failed == 0 else 2


# ------------------------------------------------------------------------------------------ export

def main_export(argv: list[str]) -> int:
    """``fastnst export WEIGHTS [-o MODEL.onnx] [--web DIR]``: write and verify an ONNX model (and a page)."""
    p = _Parser(prog="fastnst export", description="Export trained weights to a verified ONNX model "
                "(checked with onnx.checker and compared with torch on several sizes): one input 'image', one "
                "output 'stylized', standard operators, so any ONNX runtime runs it.",
                epilog="examples:\n  fastnst export checkpoints/wave/wave.safetensors -o wave.onnx\n"
                       "  fastnst export checkpoints/wave/last.ckpt --io uint8 -o wave-uint8.onnx\n"
                       "  fastnst export checkpoints/wave/wave.safetensors --fp16 -o wave-fp16.onnx\n"
                       "  fastnst export checkpoints/wave/wave.safetensors --static 512x512 -o wave-512.onnx\n"
                       "  npm install onnxruntime-web && fastnst export wave.onnx --web site/   "
                       "# then: python -m http.server -d site\n",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", help=".safetensors or .ckpt written by fastnst train (with --web also an .onnx model)")
    p.add_argument("-o", "--output", default=None, help="output .onnx (default: beside the weights)")
    p.add_argument("--io", default="float", choices=("float", "uint8"),
                   help="float: RGB float32 [0,1] NCHW (default); uint8: RGB uint8 NHWC in and out")
    p.add_argument("--fp16", action="store_true", help="half-precision weights (for GPU providers)")
    p.add_argument("--static", default=None, metavar="HxW",
                   help="fixed image size for runtimes that need one (e.g. OpenCV 4.x); the batch stays dynamic")
    p.add_argument("--web", default=None, metavar="DIR",
                   help="also write a browser page (onnxruntime-web, copied from an npm install) with the model")
    p.add_argument("--ort-dist", default=None, metavar="PATH",
                   help="onnxruntime-web's dist folder for --web (default: ./node_modules/onnxruntime-web/dist)")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime-vs-torch comparison")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = p.parse_args(argv)
    weights = Path(args.weights).expanduser()
    if weights.is_dir():
        raise InputError(f"weights '{weights}' is a folder; pass the .safetensors or .ckpt file inside it")
    if not weights.is_file():
        raise InputError(f"weights '{weights}' do not exist; check the path")
    if args.output is not None and not args.output.strip():
        raise ConfigError("-o/--output is empty; give a file name such as wave.onnx (or leave -o out)")
    if args.web is not None:
        from fastnst.web import find_ort_dist

        find_ort_dist(args.ort_dist, Path(args.web).expanduser())  # missing onnxruntime-web: fail before work
        if weights.suffix.lower() == ".onnx":  # an exported model: only the page is written
            if args.output or args.io != "float" or args.fp16 or args.static:
                raise ConfigError("with an .onnx model, --web copies it as it is; -o, --io, --fp16 and --static "
                                  "apply to weights")
            from fastnst.web import write_web

            folder = write_web(args.web, [weights], args.ort_dist, overwrite=args.overwrite)
            print(f"wrote {folder}/ (page, {weights.name}, onnxruntime-web); serve it with: "
                  f"python -m http.server -d {folder}")
            return 0
    if args.static is not None:
        from fastnst.export import parse_static

        parse_static(args.static)  # a bad size fails before torch is imported
    if args.output is None:
        suffix = "-uint8" if args.io == "uint8" else "-fp16" if args.fp16 else ""
        suffix += f"-{args.static.lower()}" if args.static else ""
        output = weights.with_name(weights.stem + suffix + ".onnx")
    else:
        output = Path(args.output).expanduser()
    from fastnst.export import export_onnx

    t0 = time.perf_counter()
    path = export_onnx(weights, output, io=args.io, fp16=args.fp16, overwrite=args.overwrite,
                       verify=not args.no_verify, static=args.static)
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({size:.1f} MB, {args.io}{', fp16' if args.fp16 else ''}"
          f"{', static ' + args.static if args.static else ''}"
          f"{', verified' if not args.no_verify else ', NOT verified'}) in {time.perf_counter() - t0:.1f} s")
    if args.web is not None:
        from fastnst.web import write_web

        folder = write_web(args.web, [path], args.ort_dist, overwrite=args.overwrite)
        print(f"wrote {folder}/ (page, {path.name}, onnxruntime-web); serve it with: python -m http.server -d {folder}")
    return 0


# ------------------------------------------------------------------------------------------ info

def main_info(argv: list[str]) -> int:
    """``fastnst info [MODEL]``: metadata, input/output signature and available providers."""
    p = _Parser(prog="fastnst info", description="Show a model's metadata, signature and the available providers.")
    p.add_argument("model", nargs="?", default=None,
                   help=".onnx model, or .safetensors/.ckpt weights (default: the built-in styles' model)")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)
    builtin_styles = None
    if args.model is None:
        from fastnst.styles import builtin

        path = builtin.model_path()
        builtin_styles = builtin.describe()
    else:
        path = Path(args.model).expanduser()
    if _model_kind(path) == "onnx":
        from fastnst.runtime import Stylizer

        info = Stylizer(path, providers="cpu").describe()
    else:
        from fastnst.weights import load_transformer

        net, meta = load_transformer(path)
        info = {"model": str(path), "size_bytes": path.stat().st_size, "io": "weights (torch)",
                "config": net.config, "parameters": sum(p.numel() for p in net.parameters()),
                "metadata": {k: _maybe_json(v) for k, v in sorted(meta.items())}}
        try:
            from fastnst.runtime import available_providers

            info["providers_available"] = available_providers()
        except FastNSTError:
            pass
    if builtin_styles is not None:
        info["builtin_styles"] = builtin_styles
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"model      {info['model']} ({info['size_bytes'] / 1e6:.1f} MB, {info['io']})")
    for s in builtin_styles or []:
        mark = " (default)" if s["default"] else ""
        print(f"built-in   {s['name']}{mark}: {s['title']}; {s['licence']}")
    labels = {"inputs": ("input", ""), "optional_inputs": ("input", "  (optional; an old tiling input, unused)"),
              "outputs": ("output", "")}
    for key, (label, note) in labels.items():
        for sig in info.get(key, []):
            print(f"{label:<10} {sig['name']}: {sig['type']} {sig['shape']}{note}")
    if info.get("styles"):
        print(f"styles     {', '.join(f'{i}={n}' for i, n in enumerate(info['styles']))}")
    if "config" in info:
        print(f"network    {json.dumps(info['config'])}")
    for key, value in info.get("metadata", {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        print(f"  {key:<28} {text if len(text) <= 100 else text[:97] + '...'}")
    if "providers_available" in info:
        print(f"providers  available: {', '.join(info['providers_available'])}")
    return 0


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value) if value[:1] in "[{" else value
    except (json.JSONDecodeError, TypeError):
        return value


# ------------------------------------------------------------------------------------------ demo

# Demo training settings, far shorter than configs/cpu-quick.yaml: the result shows the pipeline,
# not a finished style. Chosen: the fast preset, 96-px crops, batch 2, 40 steps; measured about
# 1.5 minutes for the whole demo on 2 shared CPU cores (60 steps at 128 px took 3.7 minutes).
DEMO_SETTINGS: dict[str, Any] = {"arch": "fast", "image_size": 96, "batch_size": 2, "steps": 40,
                                 "preview_every": 0, "checkpoint_every": 1000, "num_previews": 0,
                                 "num_workers": 0}


def demo_assets() -> tuple[list[Path], Path]:
    """(content photos, style image) shipped in fastnst/assets."""
    folder = Path(__file__).resolve().parent.parent / "assets"
    contents = sorted(folder.glob("content-*.jpg"))
    styles = sorted(folder.glob("style-*.jpg"))
    if not contents or not styles:
        raise InputError(f"the demo images are missing from '{folder}'; reinstall fastnst")
    return contents, styles[0]


def main_demo(argv: list[str]) -> int:
    """``fastnst demo``: train briefly on the bundled photos, export, verify, stylise into ./fastnst-demo/."""
    p = _Parser(prog="fastnst demo", description="Train a style network briefly on the bundled demo photos, "
                "export and verify it, and stylise the photos: the whole pipeline in about a minute on a CPU.",
                epilog="examples:\n  fastnst demo\n  fastnst demo --vgg-weights random   # offline: untrained "
                       "VGG, the output shows the pipeline, not a style\n",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="fastnst-demo", help="output folder (default ./fastnst-demo)")
    p.add_argument("--vgg-weights", default=None,
                   help="imagenet | random | PATH (default: $FASTNST_VGG_WEIGHTS or imagenet)")
    p.add_argument("--steps", type=int, default=DEMO_SETTINGS["steps"],
                   help=f"training steps (default {DEMO_SETTINGS['steps']})")
    p.add_argument("--image-size", type=int, default=DEMO_SETTINGS["image_size"],
                   help=f"training crop size (default {DEMO_SETTINGS['image_size']})")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")
    args = p.parse_args(argv)
    if args.steps <= 0:
        raise ConfigError(f"--steps must be positive, got {args.steps}")
    out = Path(args.out).expanduser()
    contents, style = demo_assets()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out '{out}' is a file; pass a folder")
    # A finished demo (stylised photos written) or files of someone else need --overwrite; the leftovers of a
    # demo that failed or was killed half-way (photos/, the style copy, model/) are simply redone.
    own = {"photos", "model", "stylized", style.name.removeprefix("style-")}
    finished = (out / "stylized").is_dir() and any((out / "stylized").iterdir())
    foreign = out.is_dir() and any(p.name not in own for p in out.iterdir())
    if (finished or foreign) and not args.overwrite:
        raise OutputExistsError(f"'{out}' already holds a demo; pass --overwrite or another --out" if finished else
                                f"'{out}' holds other files; pass --overwrite or another --out")
    if not out.parent.exists():
        raise InputError(f"cannot create '{out}': '{out.parent}' does not exist")

    from fastnst.export import verify_onnx
    from fastnst.image import save_image
    from fastnst.runtime import Stylizer
    from fastnst.training import run_training
    from fastnst.weights import load_transformer

    t0 = time.perf_counter()
    out.mkdir(exist_ok=True)
    photos = out / "photos"
    if photos.exists():
        shutil.rmtree(photos)
    photos.mkdir()
    for c in contents:
        shutil.copy2(c, photos / c.name.removeprefix("content-"))
    shutil.copy2(style, out / style.name.removeprefix("style-"))
    style_copy = out / style.name.removeprefix("style-")
    settings = dict(DEMO_SETTINGS, steps=args.steps, image_size=args.image_size)
    print(f"training the '{settings['arch']}' network on {len(contents)} photos for {settings['steps']} steps "
          f"({settings['image_size']}-px crops) with style {style_copy.name} ...", file=sys.stderr, flush=True)
    result = run_training(style_copy, str(photos), out / "model", vgg_weights=args.vgg_weights,
                          overwrite=True, enable_progress_bar=sys.stderr.isatty(), **settings)
    onnx_path = result.onnx
    if onnx_path is None:  # the automatic export failed (it was logged): export here, errors are fatal
        from fastnst.export import export_onnx

        onnx_path = export_onnx(result.weights, result.weights.with_suffix(".onnx"), overwrite=True)
    net, _ = load_transformer(result.weights)
    err = verify_onnx(onnx_path, net)
    stylizer = Stylizer(onnx_path, providers="cpu")
    results = out / "stylized"
    results.mkdir(exist_ok=True)
    written = []
    for photo in sorted(photos.iterdir()):
        image = stylizer.stylize(photo)
        written.append(save_image(image, results / f"{photo.stem}-{style_copy.stem}.jpg", overwrite=True))
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    print(f"  trained weights  {result.weights}")
    print(f"  ONNX model       {onnx_path} (verified: max |onnxruntime - torch| = {err:.1e})")
    print(f"  training log     {result.metrics}" if result.metrics else "", end="\n" if result.metrics else "")
    print(f"  stylised photos  {results}/ ({len(written)} images)")
    print(f"next: fastnst stylize --model {onnx_path} YOUR_PHOTO.jpg -o styled.jpg")
    return 0
