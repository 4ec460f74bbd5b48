"""Apply a model to files: ``fastnst stylize`` and ``fastnst upscale`` as library functions. Torch-free.

Inputs are image files, folders, globs or ``-`` (standard input); the output is a file (one input), a
folder (created if missing) or ``-`` (standard output), planned by :func:`fastnst.outputs.plan`. Folder
policy: a folder input is searched with its sub-folders, hidden files and folders skipped
(:func:`fastnst.image.find_images`), and its sub-folders are mirrored in the output folder
(``photos/2024/a.jpg -o out/`` writes ``out/2024/a.jpg``). Every option is checked once, here, before the
first image, and handed to the engine as checked settings; then a problem with one image of a batch is
reported through ``on_item`` and the batch goes on (a single input raises instead). Each output is
written whole (temp file, rename). The library prints nothing: ``on_item(record)`` gets a
JSON-able dict per input (``data``: the encoded bytes for standard output), ``progress(done, total,
text)`` the progress, and the returned :class:`Report` the summary lines.
"""

from __future__ import annotations

import glob
import io
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastnst import checks
from fastnst.errors import ConfigError, FastNSTError, InputError
from fastnst.options import check_options, option
from fastnst.outputs import check_format, check_target, plan
from fastnst.runtime.providers import DEVICES, OPTIMIZATION_LEVELS
from fastnst.runtime.strokes import MAX_STROKE_SCALE, MIN_STROKE_SCALE
from fastnst.runtime.tiling import MIN_TILE

OnItem = Callable[[dict[str, Any]], None]
ProgressFn = Callable[[int, int, str], None]
MAX_UPSCALE_TILE = 4096  # upscale's input tiles (x8 makes 32768-px output tiles)
MAX_VIDEO_BATCH = 64
MAX_DEFLICKER = 0.95


@dataclass
class FileOptions:
    """Options of every command that turns image files into image files."""

    output: str = option("", "output file (one input), folder (several; created if missing), or - for stdout",
                         short="-o")
    max_size: int | None = option(None, "downscale so the longer side is at most N pixels", low=1)
    threads: int | None = option(None, "CPU threads (default: physical cores; capped at the CPUs this process "
                                 "may use)", low=1)
    format: str | None = option(None, "output format for folders and stdout: jpg, png, webp, ...")
    quality: int = option(95, "JPEG/WebP quality", low=1, high=100)
    overwrite: bool = option(False, "replace existing output files")


@dataclass
class StylizeOptions(FileOptions):
    """``fastnst stylize``: one source for its flags, defaults, choices and bounds."""

    model: str | None = option(None, ".onnx model (onnxruntime) or .safetensors/.ckpt weights from fastnst train "
                               "(torch); default: the built-in styles shipped with fastnst (see fastnst styles)",
                               short="-m")
    style: str | None = option(None, "multi-style models: a style name, an index, or a blend such as "
                               "'wave:0.7,mosaic:0.3' (default: the first style; without --model, the default "
                               "built-in style)", metavar="NAME|INDEX|NAME:W,NAME:W")
    strength: float = option(1.0, "0 = original, 1 = fully stylised", low=0.0, high=1.0)
    preserve_color: bool = option(False, "keep the photo's colours, take the style's luminance")
    tile: int | None = option(None, "tile size in pixels (default: 1024-px tiles above 1.6 Mpx; 0 = never tile)")
    provider: list[str] | None = option(None, "onnxruntime execution provider: auto (default: TensorRT, CUDA, "
                                        "DirectML, CoreML, OpenVINO when installed, else CPU), cpu, cuda, tensorrt, "
                                        "directml, coreml, openvino or a full name, with options e.g. "
                                        "cuda:device_id=1; repeat for a fallback list", metavar="NAME[:KEY=VALUE,...]")
    device: str | None = option(None, "shorthand for --provider (an error when unavailable)", choices=DEVICES)
    optimization: str | None = option(None, "onnxruntime graph optimisation level (default all, with the NCHWc "
                                      "layout: the fastest, measured)", choices=OPTIMIZATION_LEVELS)
    input_range: float | None = option(None, "pixel range the model takes: 1 ([0,1], fastnst models) or 255 "
                                       "(0..255, e.g. the ONNX model zoo's fast_neural_style models); default: "
                                       "the model's metadata, else 1", low=1, high=255)
    in_place: bool = option(False, "allow an output to be its own input (replaced atomically once stylised); "
                            "never another input")
    json: bool = option(False, "one JSON object per image on stdout")
    stroke_scale: float = option(1.0, "strokes S times larger (S > 1) or smaller (S < 1) at the same output size",
                                 low=MIN_STROKE_SCALE, high=MAX_STROKE_SCALE, metavar="S")
    sr_model: str | None = option(None, "with --stroke-scale > 1: a 'fastnst train-sr' .onnx model that brings the "
                                  "smaller stylisation back to size (sharper than resampling)")
    deflicker: float | None = option(None, "videos: flicker reduction, 0 (off) to 0.95 (default 0.6)",
                                     low=0.0, high=MAX_DEFLICKER)
    batch_size: int | None = option(None, "videos: frames per network call (default 4)", low=1, high=MAX_VIDEO_BATCH)


@dataclass
class UpscaleOptions(FileOptions):
    """``fastnst upscale``: one source for its flags, defaults, choices and bounds."""

    model: str = option("", ".onnx model written by fastnst train-sr (default: the shipped x4 model)", short="-m")
    factor: int | None = option(None, "expected factor, 2, 4 or 8 (an error when the model's differs)", low=2, high=8)
    tile: int = option(256, "input tile size in pixels (0 = one piece)", low=0, high=MAX_UPSCALE_TILE)
    device: str = option("auto", "onnxruntime device", choices=DEVICES)


@dataclass
class Item:
    """One input: its display name, its path (None for standard input), why it cannot be read (or None),
    and its place below the folder it was found in (None for a file named directly); a
    :class:`fastnst.outputs.Source` to the planner."""

    name: str
    path: Path | None
    problem: str | None = None
    relative: Path | None = None

    def source(self) -> Any:
        """The path, or standard input as a named in-memory file (errors then say '<stdin>')."""
        if self.path is not None:
            return self.path
        data = io.BytesIO(sys.stdin.buffer.read())
        data.name = "<stdin>"
        return data


@dataclass
class Report:
    """What a run did: the summary lines and how many inputs failed."""

    lines: list[str] = field(default_factory=list)
    done: int = 0
    failed: int = 0


def expand_inputs(items: Sequence[str]) -> list[Item]:
    """One :class:`Item` per input image, in order: files, folders (searched with their sub-folders),
    globs and ``-``; what cannot be found becomes an Item with its ``problem``."""
    from fastnst.image import find_images

    out: list[Item] = []
    for item in items:
        if item == "-":
            out.append(Item("<stdin>", None))
            continue
        path = Path(item).expanduser()
        if path.is_dir():
            try:
                out += [Item(str(p), p, None, p.relative_to(path)) for p in find_images(path)]
            except InputError as exc:
                out.append(Item(item, path, str(exc)))
        elif path.exists():
            out.append(Item(item, path))
        elif glob.has_magic(item):
            files = [Path(m) for m in sorted(glob.glob(os.path.expanduser(item), recursive=True)) if Path(m).is_file()]
            out += [Item(str(p), p) for p in files] or [Item(item, None, f"'{item}' matches no files")]
        else:
            out.append(Item(item, path, f"'{item}' does not exist; check the path"))
    return out


def plan_outputs(items: list[Item], opts: FileOptions) -> tuple[str, list[Path | None]]:
    """('file' | 'folder' | 'stdout', one output path per item (None for stdout)), checked before any work
    (:func:`fastnst.outputs.plan`)."""
    if opts.output != "-" and len(items) == 1 and items[0].problem:
        raise InputError(items[0].problem)
    planned = plan(items, opts.output, format=opts.format, overwrite=opts.overwrite,
                   in_place=getattr(opts, "in_place", False))
    return planned.mode, planned.paths


def _check_common(opts: FileOptions, inputs: Sequence[str]) -> int | None:
    """The checks of every file command; returns the checked --max-size."""
    check_options(opts)
    max_size = checks.side("--max-size", opts.max_size, allow_none=True)  # bounded by the pixel cap (fastnst.checks)
    check_format(opts.format)  # unsupported format: InputError now, not per image
    if not opts.output.strip():
        raise ConfigError("-o/--output is empty; give a file or folder name, or - for stdout")
    if list(inputs).count("-") > 1:
        raise ConfigError("stdin (-) can be read only once")
    return max_size


def run_files(items: list[Item], mode: str, outputs: list[Path | None], opts: FileOptions,
              work: Callable[[Any], Any], device: str, on_item: OnItem | None = None,
              progress: ProgressFn | None = None) -> tuple[int, int, float, Any]:
    """Run ``work`` (source -> PIL image) on every item and write its result; (done, failed, seconds, last size).

    A single item's error is raised; in a batch it is reported through ``on_item`` and the batch goes on.
    """
    from fastnst.fileio import same_file
    from fastnst.image import encode_image, save_image

    single, done, failed, last, start = len(items) == 1, 0, 0, None, time.perf_counter()
    for i, (item, out_path) in enumerate(zip(items, outputs)):
        t0 = time.perf_counter()
        try:
            if item.problem:
                raise InputError(item.problem)
            own = getattr(opts, "in_place", False) and item.path is not None and out_path is not None and \
                same_file(item.path, out_path)
            if out_path is not None and out_path.parent.exists():  # a new mirrored sub-folder holds nothing yet
                check_target(out_path, opts.overwrite or own, known_format=False)  # before the work, per image
            image = work(item.source())
            alpha = image.getchannel("A") if image.mode == "RGBA" else None
            rgb = image.convert("RGB") if alpha is not None else image
            icc = image.info.get("icc_profile")
            record: dict[str, Any] = {"input": item.name, "output": str(out_path) if out_path else "-"}
            if out_path is None:
                record["data"] = encode_image(rgb, opts.format or "png", alpha=alpha, icc_profile=icc,
                                              quality=opts.quality)
            else:
                out_path.parent.mkdir(parents=True, exist_ok=True)  # a mirrored sub-folder, once there is a result
                save_image(rgb, out_path, overwrite=opts.overwrite or own, alpha=alpha, icc_profile=icc,
                           quality=opts.quality, format=opts.format)
            done, last = done + 1, image.size
            record.update(size=list(image.size), seconds=round(time.perf_counter() - t0, 3), device=device)
        except FastNSTError as exc:
            if single:
                raise
            failed += 1
            record = {"input": item.name, "output": None,
                      "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
        if on_item is not None:
            on_item(record)
        if progress is not None and not single:
            progress(i + 1, len(items), "images")
    return done, failed, time.perf_counter() - start, last


def _summary(verb: str, done: int, failed: int, total: int, seconds: float, device: str, where: str,
             what: str = "") -> str:
    return (f"{verb} {done} of {total} image{'s' if total != 1 else ''}{what} in {seconds:.1f} s on {device}"
            + (f"; {failed} failed" if failed else "") + f" -> {where}")


def _load_stylizer(opts: StylizeOptions, model_path: Path) -> Any:
    """The model (a super-resolution model is refused by the engine) with the stroke scale wrapped around it."""
    from fastnst.models import load_model
    from fastnst.runtime.providers import parse_provider
    from fastnst.runtime.strokes import with_stroke_scale

    providers: Any = [parse_provider(p) for p in opts.provider] if opts.provider else (opts.device or "auto")
    if isinstance(providers, list) and len(providers) == 1 and providers[0] == "auto":
        providers = "auto"
    model = load_model(model_path, providers, opts.threads, opts.input_range, opts.optimization)
    return with_stroke_scale(model, opts.stroke_scale, opts.sr_model, providers, opts.threads)


def stylize_files(inputs: Sequence[str], options: StylizeOptions | None = None, *, on_item: OnItem | None = None,
                  progress: ProgressFn | None = None) -> Report:
    """``fastnst stylize``: stylise ``inputs`` (or one video) as :class:`StylizeOptions` say; see the module."""
    opts = options or StylizeOptions()
    max_size = _check_common(opts, inputs)
    tile = checks.tile(opts.tile, minimum=MIN_TILE)
    if opts.provider and opts.device:
        raise ConfigError("--device is a shorthand for --provider; give one of them")
    if opts.output == "-" and opts.json:
        raise ConfigError("--json writes to stdout, and so does -o -; use one of them")
    items = expand_inputs(inputs)
    style_spec = opts.style
    if opts.model is None:  # the built-in multi-style model; its default style unless --style says otherwise
        from fastnst.styles import builtin

        model_path = builtin.model_path()
        style_spec = builtin.DEFAULT_STYLE if style_spec is None else style_spec
    else:
        model_path = Path(opts.model).expanduser()
    from fastnst.video import is_video_path

    if len(items) == 1 and is_video_path(items[0].name):  # a video: frames in batches, flicker reduction
        return _stylize_video(items[0], opts, lambda: _load_stylizer(opts, model_path), style_spec, on_item, progress)
    mode, outputs = plan_outputs(items, opts)
    stylizer = _load_stylizer(opts, model_path)
    from fastnst.runtime.blend import parse_style
    from fastnst.runtime.stylizer import Settings

    # checked above, once; the style parsed for this model (a bad --style fails before any image is read)
    settings = Settings(strength=float(opts.strength), preserve_color=bool(opts.preserve_color), max_size=max_size,
                        tile=tile, style=parse_style(style_spec, stylizer.style_names))

    def work(source: Any) -> Any:
        return stylizer.render(source, settings)

    done, failed, seconds, _ = run_files(items, mode, outputs, opts, work, stylizer.device, on_item, progress)
    where = "stdout" if mode == "stdout" else str(outputs[0] if mode == "file" else Path(opts.output))
    return Report([_summary("stylised", done, failed, len(items), seconds, stylizer.device, where)], done, failed)


def _stylize_video(item: Item, opts: StylizeOptions, make_stylizer: Callable[[], Any], style: Any,
                   on_item: OnItem | None, progress: ProgressFn | None) -> Report:
    from fastnst.video import DEFAULT_BATCH, DEFAULT_DEFLICKER, check_video_output, probe, stylize_video

    if item.problem:
        raise InputError(item.problem)
    if opts.output == "-":
        raise ConfigError("a video cannot be written to stdout; give an output file such as -o out.mp4")
    if opts.max_size is not None:
        raise ConfigError("--max-size applies to images; resize the video first (e.g. ffmpeg -vf scale=-2:720)")
    deflicker = DEFAULT_DEFLICKER if opts.deflicker is None else float(opts.deflicker)
    src, dst = Path(item.name).expanduser(), Path(opts.output).expanduser()
    if dst.is_dir():
        dst = dst / (src.stem + ".mp4")
    info = probe(src)  # unreadable / audio-only / no video: one line before any work
    check_video_output(src, dst, opts.overwrite)
    stylizer = make_stylizer()
    options: dict[str, Any] = {"strength": opts.strength, "preserve_color": opts.preserve_color, "tile": opts.tile}
    if style is not None:
        options["style"] = style
    frames = None if progress is None else (lambda d, t, fps: progress(d, t, f"frames {fps:.1f} frames/s"))
    t0 = time.perf_counter()
    result = stylize_video(src, dst, stylizer, batch_size=opts.batch_size or DEFAULT_BATCH, deflicker=deflicker,
                           overwrite=opts.overwrite, progress=frames, **options)
    seconds = time.perf_counter() - t0
    before, after = result.flicker_before, result.flicker
    lines = [f"stylised {result.frames} frames ({info.width}x{info.height}, {float(result.fps):.3g} fps"
             f"{', audio kept' if result.audio else ''}) in {seconds:.1f} s, {result.frames / seconds:.1f} frames/s "
             f"on {getattr(stylizer, 'device', 'cpu')} -> {dst}"]
    if result.frames > 1:
        label = f"flicker reduction {deflicker:g}" if deflicker > 0 else "no flicker reduction (--deflicker 0)"
        lines.append(f"flicker (mean |change| of reliably tracked pixels, 0-1): {before['warped_error']:.4f} "
                     f"per-frame -> {after['warped_error']:.4f} written ({label}); unchanged-input pixels: "
                     f"{before['static_change']:.4f} -> {after['static_change']:.4f}")
    if on_item is not None:
        on_item({"input": str(src), "output": str(dst), "frames": result.frames, "fps": float(result.fps),
                 "seconds": round(seconds, 3), "flicker_before": before, "flicker": after})
    return Report(lines, 1, 0)


def upscale_files(inputs: Sequence[str], options: UpscaleOptions, *, on_item: OnItem | None = None,
                  progress: ProgressFn | None = None) -> Report:
    """``fastnst upscale``: enlarge ``inputs`` with a super-resolution model as :class:`UpscaleOptions` say."""
    from fastnst.contract import SR_FACTORS
    from fastnst.runtime.upscaler import Upscaler

    max_size = _check_common(options, inputs)
    opts = options
    if opts.factor is not None and opts.factor not in SR_FACTORS:
        raise ConfigError(f"--factor must be {', '.join(map(str, SR_FACTORS[:-1]))} or {SR_FACTORS[-1]}, "
                          f"got {opts.factor}")
    if 0 < opts.tile < MIN_TILE:
        raise ConfigError(f"--tile must be 0 (one piece) or between {MIN_TILE} and {MAX_UPSCALE_TILE}, got {opts.tile}")
    if "-" in inputs or opts.output == "-":
        raise ConfigError("fastnst upscale reads and writes files; stdin/stdout (-) is not supported")
    items = expand_inputs(inputs)
    mode, outputs = plan_outputs(items, opts)
    upscaler = Upscaler(Path(opts.model).expanduser() if opts.model else None, providers=opts.device,
                        threads=opts.threads)
    upscaler.check_factor(opts.factor)  # factor mismatch: before any work

    def work(source: Any) -> Any:
        return upscaler.render(source, tile=opts.tile, max_size=max_size)

    done, failed, seconds, last = run_files(items, mode, outputs, opts, work, upscaler.device, on_item, progress)
    where = str(outputs[0]) if mode == "file" else opts.output
    line = _summary("enlarged", done, failed, len(items), seconds, upscaler.device, where, f" x{upscaler.factor}")
    size = f" ({last[0]}x{last[1]})" if len(items) == 1 and last else ""
    return Report([line + size], done, failed)


__all__ = ["FileOptions", "StylizeOptions", "UpscaleOptions", "Item", "Report", "expand_inputs", "plan_outputs",
           "run_files", "stylize_files", "upscale_files"]
