"""Apply a model to files: ``fastnst stylize`` and ``fastnst upscale`` as library functions. Torch-free.

Inputs are image files, folders, globs, videos or ``-`` (standard input); the output is a file (one input), a
folder (created if missing) or ``-`` (standard output), planned by :func:`fastnst.outputs.plan`; without an
output each result goes next to its input under a name that says the style (:func:`fastnst.outputs.beside`:
``photo.jpg`` -> ``photo.mosaic.jpg``). Media are routed by what the files hold: videos (and audio files,
which are refused as such) go to :mod:`fastnst.video`, one after another, images to the engine. An output
folder below a folder input is never read as input, and ``skip_existing`` leaves the results of an earlier,
interrupted run in place. Folder
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
import logging
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
from fastnst.outputs import beside, check_format, check_target, plan
from fastnst.runtime.providers import DEVICES, OPTIMIZATION_LEVELS
from fastnst.runtime.strokes import MAX_STROKE_SCALE, MIN_STROKE_SCALE
from fastnst.runtime.tiling import MIN_TILE

log = logging.getLogger(__name__)
OnItem = Callable[[dict[str, Any]], None]
ProgressFn = Callable[[int, int, str], None]
MAX_UPSCALE_TILE = 4096  # upscale's input tiles (x8 makes 32768-px output tiles)
MAX_VIDEO_BATCH = 64
MAX_DEFLICKER = 0.95


@dataclass
class FileOptions:
    """Options of every command that turns image files into image files."""

    output: str | None = option(None, "output file (one input), folder (several; created if missing), or - for "
                                "stdout (default: next to each input, named after it and the style: photo.mosaic.jpg)",
                                short="-o")
    max_size: int | None = option(None, "downscale so the longer side is at most N pixels", low=1)
    threads: int | None = option(None, "CPU threads (default: physical cores; capped at the CPUs this process "
                                 "may use)", low=1)
    format: str | None = option(None, "output format for folders and stdout: jpg, png, webp, ...")
    quality: int = option(95, "JPEG/WebP quality", low=1, high=100)
    overwrite: bool = option(False, "replace existing output files")
    skip_existing: bool = option(False, "leave inputs whose output exists (resume an interrupted batch)")


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
    style_size: int = option(512, "a style picture (universal model): its long side in pixels; larger gives "
                             "finer strokes", low=16, high=4096)
    mask: str | None = option(None, "a style picture (universal model): an image whose white part takes the style "
                              "and black part keeps the photo (resized to each photo)")
    universal_model: str | None = option(None, "the universal model for style pictures (default: the one shipped "
                                         "with fastnst)")
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


def expand_inputs(items: Sequence[str], exclude: Path | None = None) -> list[Item]:
    """One :class:`Item` per input image, in order: files, folders (searched with their sub-folders),
    globs and ``-``; what cannot be found becomes an Item with its ``problem``. Files that folders and globs
    find inside the folder ``exclude`` (the output folder) are left out: a run never reads its own results."""
    from fastnst.image import find_images
    from fastnst.outputs import is_inside

    def own(p: Path) -> bool:
        return exclude is not None and is_inside(p, exclude)

    out: list[Item] = []
    for item in items:
        if item == "-":
            out.append(Item("<stdin>", None))
            continue
        path = Path(item).expanduser()
        if path.is_dir():
            try:
                found = find_images(path)
            except InputError as exc:
                out.append(Item(item, path, str(exc)))
                continue
            # an output folder that is or holds the input folder is not left out: its images are the inputs, and
            # the output planner refuses results that would replace them
            kept = found if exclude is not None and is_inside(path, exclude) else [p for p in found if not own(p)]
            if len(kept) < len(found):
                log.info("not reading the output folder '%s' as input (%d files)", exclude, len(found) - len(kept))
            out += [Item(str(p), p, None, p.relative_to(path)) for p in kept] or [
                Item(item, path, f"folder '{item}' has no images outside the output folder '{exclude}'")]
        elif path.exists():
            out.append(Item(item, path))
        elif glob.has_magic(item):
            files = [Path(m) for m in sorted(glob.glob(os.path.expanduser(item), recursive=True))
                     if Path(m).is_file() and not own(Path(m))]
            out += [Item(str(p), p) for p in files] or [Item(item, None, f"'{item}' matches no files")]
        else:
            out.append(Item(item, path, f"'{item}' does not exist; check the path"))
    return out


def output_folder(opts: FileOptions) -> Path | None:
    """The folder results may be written into (an ``-o`` that is or will be a folder); None for stdout or none."""
    if not opts.output or opts.output == "-":
        return None
    out = Path(opts.output).expanduser()
    return out if out.is_dir() or opts.output.endswith(("/", os.sep)) or not out.suffix else None


def plan_outputs(items: list[Item], opts: FileOptions, label: str = "") -> tuple[str, list[Path | None]]:
    """('file' | 'folder' | 'stdout' | 'beside', one output path per item (None for stdout)), checked before any
    work (:func:`fastnst.outputs.plan`; without ``-o``, :func:`fastnst.outputs.beside` with ``label``)."""
    if opts.output != "-" and len(items) == 1 and items[0].problem:
        raise InputError(items[0].problem)
    keep = opts.overwrite or opts.skip_existing  # with skip_existing an existing result is left, per item
    if opts.output is None:
        planned = beside(items, label, format=opts.format, overwrite=keep)
    else:
        planned = plan(items, opts.output, format=opts.format, overwrite=keep,
                       in_place=getattr(opts, "in_place", False))
    return planned.mode, planned.paths


def _check_common(opts: FileOptions, inputs: Sequence[str]) -> int | None:
    """The checks of every file command; returns the checked --max-size."""
    check_options(opts)
    max_size = checks.side("--max-size", opts.max_size, allow_none=True)  # bounded by the pixel cap (fastnst.checks)
    check_format(opts.format)  # unsupported format: InputError now, not per image
    if opts.output is not None and not opts.output.strip():
        raise ConfigError("-o/--output is empty; give a file or folder name, or - for stdout (or leave -o out to "
                          "write next to each input)")
    if list(inputs).count("-") > 1:
        raise ConfigError("stdin (-) can be read only once")
    if opts.skip_existing and opts.overwrite:
        raise ConfigError("--skip-existing leaves existing outputs and --overwrite replaces them; give one of them")
    if opts.skip_existing and getattr(opts, "in_place", False):
        raise ConfigError("--skip-existing with --in-place would skip every input (each output exists: it is the "
                          "input); give one of them")
    return max_size


def run_files(items: list[Item], mode: str, outputs: list[Path | None], opts: FileOptions,
              work: Callable[[Any, Any], Any], device: str, on_item: OnItem | None = None,
              progress: ProgressFn | None = None, read: Callable[[Any], Any] | None = None
              ) -> tuple[int, int, float, Any, int]:
    """Run ``work`` (source, tile progress -> PIL image) on every item and write its result; (done, failed,
    seconds, last size, skipped).

    ``read`` (optional: source -> what ``work`` takes, e.g. decoded pixels) and the encoding and writing of
    results run on two worker threads, overlapped with ``work`` on the next and previous items
    (:func:`fastnst.runtime.pipeline.overlapped`); results are reported in order. A single item's error is
    raised; in a batch it is reported through ``on_item`` and the batch goes on. With ``skip_existing`` an item
    whose output exists is left (reported with ``skipped``). ``progress`` gets the images done (fractions within
    a tiled image) or, for one image, its tiles.
    """
    from fastnst.fileio import same_file
    from fastnst.image import encode_image, save_image
    from fastnst.runtime.pipeline import overlapped

    single, done, failed, skipped, last, start = len(items) == 1, 0, 0, 0, None, time.perf_counter()
    jobs: list[tuple[int, Item, Path | None]] = []
    for i, (item, out_path) in enumerate(zip(items, outputs)):
        if opts.skip_existing and out_path is not None and out_path.exists() and not item.problem:
            skipped += 1
            if on_item is not None:
                on_item({"input": item.name, "output": str(out_path), "skipped": "output exists"})
        else:
            jobs.append((i, item, out_path))

    def tiles(i: int) -> ProgressFn | None:
        if progress is None:
            return None
        if single:
            return progress
        return lambda d, t, text: progress(i + d / t, len(items), f"images (tile {int(d)}/{t})")

    def prepare(job: tuple[int, Item, Path | None]) -> tuple[int, bool, float, Any]:
        i, item, out_path = job
        t0 = time.perf_counter()
        if item.problem:
            raise InputError(item.problem)
        own = getattr(opts, "in_place", False) and item.path is not None and out_path is not None and \
            same_file(item.path, out_path)
        if out_path is not None and out_path.parent.exists():  # a new mirrored sub-folder holds nothing yet
            check_target(out_path, opts.overwrite or own, known_format=False)  # before the work, per image
        source = item.source()
        return i, own, t0, read(source) if read is not None else source

    def run(prepared: tuple[int, bool, float, Any]) -> tuple[bool, float, Any]:
        i, own, t0, source = prepared
        return own, t0, work(source, tiles(i))

    def write(job: tuple[int, Item, Path | None], result: tuple[bool, float, Any]) -> tuple[dict[str, Any], Any]:
        (_, item, out_path), (own, t0, image) = job, result
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
        record.update(size=list(image.size), seconds=round(time.perf_counter() - t0, 3), device=device)
        return record, image.size

    for (i, item, _), result, ok in overlapped(jobs, prepare, run, write):
        if ok:
            record, last = result
            done += 1
        else:
            if single or not isinstance(result, FastNSTError):
                raise result
            failed += 1
            record = {"input": item.name, "output": None,
                      "error": str(result).splitlines()[0] if str(result) else type(result).__name__}
        if on_item is not None:
            on_item(record)
        if progress is not None and not single:
            progress(i + 1, len(items), "images")
    return done, failed, time.perf_counter() - start, last, skipped


def _where(mode: str, outputs: list[Path | None], opts: FileOptions) -> str:
    """Where a run's results went, for its summary line (the name itself for one result)."""
    if mode == "stdout":
        return "stdout"
    if len(outputs) == 1 or mode == "file":
        return str(outputs[0])
    if mode == "beside":
        folders = sorted({str(p.parent) for p in outputs if p is not None})
        names = sorted({p.name for p in outputs if p is not None})
        return f"{folders[0]}/ ({len(outputs)} files)" if len(folders) == 1 else \
            f"next to the inputs ({names[0]}, ...)"
    return str(Path(opts.output or "."))


def _summary(verb: str, done: int, failed: int, total: int, seconds: float, device: str, where: str,
             what: str = "", skipped: int = 0) -> str:
    return (f"{verb} {done} of {total} image{'s' if total != 1 else ''}{what} in {seconds:.1f} s on {device}"
            + (f"; {skipped} skipped (output exists)" if skipped else "")
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


def style_label(stylizer: Any, style: Any) -> str:
    """What names a result of ``stylizer`` with checked blend weights ``style`` (None: the model's default): the
    style names blended ('mosaic', 'mosaic+halftone'), else the model's style name or file name."""
    names = list(getattr(stylizer, "style_names", []) or [])
    if names:
        if style is None:
            default = getattr(stylizer, "default_style", None)
            return str(default) if default in names else names[0]
        return "+".join(n for n, w in zip(names, style) if float(w) > 0)
    meta = getattr(stylizer, "metadata", {}) or {}
    return str(meta.get("style_name") or Path(str(getattr(stylizer, "path", "styled"))).stem)


def split_media(items: list[Item]) -> tuple[list[Item], list[Item]]:
    """(images, videos): files that hold video or audio (by suffix, or by content when the suffix is not an
    image's) go to the video reader, which says when one has no video stream."""
    from fastnst.image import IMAGE_EXTENSIONS

    maybe = [it for it in items if it.path is not None and not it.problem and it.path.suffix.lower() not in
             IMAGE_EXTENSIONS]
    if not maybe:  # all images by their suffix: the video package (PyAV's wrapper, fractions) stays unimported
        return list(items), []
    from fastnst.video.io import is_media_file

    videos = [it for it in maybe if it.path.is_file() and is_media_file(it.path, IMAGE_EXTENSIONS)]
    return [it for it in items if it not in videos], videos


def stylize_files(inputs: Sequence[str], options: StylizeOptions | None = None, *, on_item: OnItem | None = None,
                  progress: ProgressFn | None = None) -> Report:
    """``fastnst stylize``: stylise ``inputs`` (images and videos) as :class:`StylizeOptions` say; see the module."""
    opts = options or StylizeOptions()
    max_size = _check_common(opts, inputs)
    tile = checks.tile(opts.tile, minimum=MIN_TILE)
    if opts.provider and opts.device:
        raise ConfigError("--device is a shorthand for --provider; give one of them")
    if opts.output == "-" and opts.json:
        raise ConfigError("--json writes to stdout, and so does -o -; use one of them")
    items, videos = split_media(expand_inputs(inputs, exclude=output_folder(opts)))
    style_spec = opts.style
    pictures = _style_pictures(opts)  # style pictures: the universal model, torch-free
    if pictures is None and (opts.mask is not None or opts.universal_model is not None):
        raise ConfigError("--mask and --universal-model go with a style picture (--style painting.jpg)")
    if pictures is not None and videos and opts.mask is not None:
        raise ConfigError("--mask applies to images, not to videos")
    model_path: Path | None = None
    if pictures is None and opts.model is None:  # the built-in multi-style model; its default style unless --style says otherwise
        from fastnst.styles import builtin

        model_path = builtin.model_path()
        style_spec = builtin.DEFAULT_STYLE if style_spec is None else style_spec
    elif pictures is None:
        model_path = Path(opts.model).expanduser()
    if videos:
        _check_videos(videos, items, opts)
    mode, outputs = plan_outputs(items, opts) if items and opts.output is not None else ("beside", [])
    extra: dict[str, Any] = {}
    if pictures is not None:  # the style pictures encoded here, once for every input
        stylizer = _load_universal(opts)
        style_spec = pictures if len(pictures) > 1 else pictures[0][0]
        settings = stylizer.settings(opts.strength, opts.preserve_color, max_size, tile, style=style_spec,
                                     style_size=opts.style_size, mask=opts.mask)
        label = "+".join(path.stem for path, _ in pictures)
        extra = {"style_size": opts.style_size}
    else:
        assert model_path is not None
        stylizer = _load_stylizer(opts, model_path)
        from fastnst.runtime.blend import parse_style
        from fastnst.runtime.stylizer import Settings

        # checked above, once; the style parsed for this model (a bad --style fails before any image is read)
        settings = Settings(strength=float(opts.strength), preserve_color=bool(opts.preserve_color),
                            max_size=max_size, tile=tile, style=parse_style(style_spec, stylizer.style_names))
        label = style_label(stylizer, settings.style)
    if items and opts.output is None:
        mode, outputs = plan_outputs(items, opts, label)
    report = Report()
    targets = [_video_target(video, opts, label, len(videos) + len(items)) for video in videos]
    for video, target in zip(videos, targets):  # every video's output checked before the first one runs
        if not (opts.skip_existing and target.exists()):
            from fastnst.video import check_video_output

            check_video_output(Path(video.name).expanduser(), target, opts.overwrite)
    for video, target in zip(videos, targets):
        _stylize_video(video, target, opts, stylizer, style_spec, on_item, progress, report, extra)
    if not items:
        return report

    def work(source: Any, tiles: ProgressFn | None) -> Any:
        return stylizer.render(source, settings, progress=tiles)

    def read(source: Any) -> Any:  # decoding on the reader thread, overlapped with the network
        from fastnst.runtime.roundtrip import read as read_image

        return read_image(source, max_size)

    done, failed, seconds, _, skipped = run_files(items, mode, outputs, opts, work, stylizer.device, on_item,
                                                  progress, read=read)
    report.lines.append(_summary("stylised", done, failed, len(items), seconds, stylizer.device,
                                 _where(mode, outputs, opts), skipped=skipped))
    report.done, report.failed = report.done + done, report.failed + failed
    return report


def _style_pictures(opts: StylizeOptions) -> list[tuple[Path, float]] | None:
    """The style pictures (files; paintings fetched, generated pictures made) and weights of ``--style`` when it
    names pictures for the universal model, else None (a built-in style, or --model's own styles)."""
    if opts.model is not None or opts.style is None:
        return None
    from fastnst.styles.registry import picture_blend

    looked = picture_blend(opts.style)
    if looked is None:
        return None
    if opts.stroke_scale != 1.0 or opts.sr_model is not None:
        raise ConfigError("--stroke-scale applies to built-in and trained style models; for a style picture, "
                          "--style-size sets the stroke size (smaller: larger strokes)")
    return [(style.picture(), weight) for style, weight in looked]


def _load_universal(opts: StylizeOptions) -> Any:
    from fastnst.runtime.providers import parse_provider
    from fastnst.runtime.universal import UniversalStylizer

    providers: Any = [parse_provider(p) for p in opts.provider] if opts.provider else (opts.device or "auto")
    return UniversalStylizer(opts.universal_model, providers, opts.threads, opts.optimization)


def _check_videos(videos: list[Item], images: list[Item], opts: StylizeOptions) -> None:
    """What a run with videos cannot do, said before any work."""
    if getattr(opts, "in_place", False):
        raise ConfigError("--in-place replaces images; a video is written to a new file (-o out.mp4, or leave -o "
                          "out to write it next to the input)")
    if opts.output == "-":
        raise ConfigError("a video cannot be written to stdout; give an output file such as -o out.mp4")
    if opts.max_size is not None:
        raise ConfigError("--max-size applies to images; resize the video first (e.g. ffmpeg -vf scale=-2:720)")
    count = len(videos) + len(images)
    if opts.output is not None and count > 1:
        out = Path(opts.output).expanduser()
        if out.exists() and not out.is_dir() or (out.suffix and not out.exists() and not opts.output.endswith("/")):
            raise InputError(f"output '{out}' is a file, but {count} inputs need a folder")
    for video in videos:
        from fastnst.video import probe

        probe(video.path)  # unreadable, audio only, no video stream: one line before any work


def _video_target(video: Item, opts: StylizeOptions, label: str, count: int) -> Path:
    """Where a video's result goes: ``-o`` (a file for one input, else a folder, created), or next to it."""
    from fastnst.outputs import ensure_folder, label_name
    from fastnst.video.io import CONTAINERS

    src = Path(video.name).expanduser()
    suffix = src.suffix.lower() if src.suffix.lower() in CONTAINERS else ".mp4"
    if opts.output is None:
        return src.with_name(f"{src.stem}.{label_name(label)}{suffix}")
    dst = Path(opts.output).expanduser()
    if dst.is_dir() or count > 1:
        ensure_folder(dst)
        return dst / (src.stem + suffix)
    return dst


def _stylize_video(item: Item, dst: Path, opts: StylizeOptions, stylizer: Any, style: Any,
                   on_item: OnItem | None, progress: ProgressFn | None, report: Report,
                   extra: dict[str, Any] | None = None) -> None:
    from fastnst.video import DEFAULT_BATCH, DEFAULT_DEFLICKER, check_video_output, probe, stylize_video

    deflicker = DEFAULT_DEFLICKER if opts.deflicker is None else float(opts.deflicker)
    src = Path(item.name).expanduser()
    if opts.skip_existing and dst.exists():
        report.lines.append(f"skipped {src}: output {dst} exists")
        return
    info = probe(src)
    check_video_output(src, dst, opts.overwrite)
    options: dict[str, Any] = {"strength": opts.strength, "preserve_color": opts.preserve_color, "tile": opts.tile}
    if style is not None:
        options["style"] = style
    options.update(extra or {})
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
    report.lines += lines
    report.done += 1


def upscale_files(inputs: Sequence[str], options: UpscaleOptions, *, on_item: OnItem | None = None,
                  progress: ProgressFn | None = None) -> Report:
    """``fastnst upscale``: enlarge ``inputs`` with a super-resolution model as :class:`UpscaleOptions` say
    (without ``-o``: ``photo.x4.png`` next to each input)."""
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
    items = expand_inputs(inputs, exclude=output_folder(opts))
    if opts.output is not None:
        mode, outputs = plan_outputs(items, opts)
    upscaler = Upscaler(Path(opts.model).expanduser() if opts.model else None, providers=opts.device,
                        threads=opts.threads)
    upscaler.check_factor(opts.factor)  # factor mismatch: before any work
    if opts.output is None:
        mode, outputs = plan_outputs(items, opts, f"x{upscaler.factor}")

    def work(source: Any, tiles: ProgressFn | None) -> Any:
        return upscaler.render(source, tile=opts.tile, max_size=max_size, progress=tiles)

    done, failed, seconds, last, skipped = run_files(items, mode, outputs, opts, work, upscaler.device, on_item,
                                                     progress)
    line = _summary("enlarged", done, failed, len(items), seconds, upscaler.device, _where(mode, outputs, opts),
                    f" x{upscaler.factor}", skipped)
    size = f" ({last[0]}x{last[1]})" if len(items) == 1 and last else ""
    return Report([line + size], done, failed)


__all__ = ["FileOptions", "StylizeOptions", "UpscaleOptions", "Item", "Report", "expand_inputs", "output_folder",
           "plan_outputs", "run_files", "split_media", "style_label", "stylize_files", "upscale_files"]
