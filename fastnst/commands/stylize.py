"""``fastnst stylize | export | info | demo``: parse, call one library function (fastnst.batch, fastnst.models,
fastnst.demo), print. ``stylize`` on an ``.onnx`` model never imports torch."""

from __future__ import annotations

import json
import sys
from typing import Any

from fastnst.commands.common import Parser, Progress, add_options, chosen

PROGRESS_MIN_IMAGES = 5  # chosen: below this a summary line is enough when stderr is not a terminal
STYLIZE_EXAMPLES = """examples:
  fastnst stylize photo.jpg -o out.jpg                          (the default built-in style; fastnst styles lists them)
  fastnst stylize photo.jpg -o out.jpg --style 'mosaic:0.5,brushstrokes:0.5'
  fastnst stylize --model wave.onnx photo.jpg -o photo-wave.jpg
  fastnst stylize --model wave.onnx photos/ -o stylised/ --strength 0.8   (sub-folders are mirrored in stylised/)
  fastnst stylize --model wave.onnx 'holiday/*.png' -o out/ --preserve-color --json
  cat photo.jpg | fastnst stylize --model wave.onnx - -o - --format png > out.png
  fastnst stylize --model checkpoints/wave/wave.safetensors poster.tif -o poster-wave.tif --tile 1024
  fastnst stylize --model mosaic-9.onnx --input-range 255 big.jpg -o big-mosaic.jpg --tile 512
  fastnst stylize --model styles.onnx --style 'wave:0.7,mosaic:0.3' photo.jpg -o blend.jpg --provider cuda
  fastnst stylize --model wave.onnx clip.mp4 -o clip-wave.mp4 --deflicker 0.6
"""
EXPORT_EXAMPLES = """examples:
  fastnst export checkpoints/wave/wave.safetensors -o wave.onnx
  fastnst export checkpoints/wave/last.ckpt --io uint8 -o wave-uint8.onnx
  fastnst export checkpoints/wave/wave.safetensors --fp16 -o wave-fp16.onnx
  fastnst export checkpoints/wave/wave.safetensors --static 512x512 -o wave-512.onnx
  npm install onnxruntime-web && fastnst export wave.onnx --web site/   # then: python -m http.server -d site
"""


def run_files(function: Any, options: Any, inputs: list[str], as_json: bool = False) -> int:
    """Call a fastnst.batch function with a progress display; print per-file errors (and JSON), then the summary."""
    progress = Progress("", min_total=PROGRESS_MIN_IMAGES)

    def show(record: dict[str, Any]) -> None:
        if "data" in record:
            sys.stdout.buffer.write(record.pop("data"))
            sys.stdout.buffer.flush()
        if "error" in record:
            progress.close()
            print(f"fastnst: error: {record['input']}: {record['error']}", file=sys.stderr, flush=True)
        if as_json:
            print(json.dumps(record), flush=True)

    try:
        report = function(inputs, options, on_item=show, progress=progress.update)
    finally:
        progress.close()
    print("\n".join(report.lines), file=sys.stderr)
    return 0 if report.failed == 0 else 2


def main_stylize(argv: list[str]) -> int:
    """``fastnst stylize``; returns 0 when every image was stylised, 2 otherwise."""
    from fastnst.batch import StylizeOptions, stylize_files

    p = Parser(prog="fastnst stylize", description="Stylise images (or a video) with a trained style network.",
               epilog=STYLIZE_EXAMPLES)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs, a video, or - for stdin")
    add_options(p, StylizeOptions, output={"required": True}, provider={"action": "append", "type": str})
    args = p.parse_args(argv)
    return run_files(stylize_files, StylizeOptions(**chosen(args, StylizeOptions)), args.inputs, args.json)


def main_export(argv: list[str]) -> int:
    """``fastnst export WEIGHTS [-o MODEL.onnx] [--web DIR]``: write and verify an ONNX model (and a page)."""
    from fastnst.models import ExportOptions, export_model

    p = Parser(prog="fastnst export", epilog=EXPORT_EXAMPLES, description="Export trained weights to a verified "
               "ONNX model (checked with onnx.checker and compared with torch on several sizes): one input 'image', "
               "one output 'stylized', standard operators, so any ONNX runtime runs it.")
    p.add_argument("weights", help=".safetensors or .ckpt written by fastnst train (with --web also an .onnx model)")
    add_options(p, ExportOptions)
    args = p.parse_args(argv)
    print("\n".join(export_model(args.weights, ExportOptions(**chosen(args, ExportOptions)))))
    return 0


def main_info(argv: list[str]) -> int:
    """``fastnst info [MODEL]``: metadata, input/output signature and available providers."""
    from fastnst.models import info_lines, model_info

    p = Parser(prog="fastnst info", description="Show a model's metadata, signature and the available providers.")
    p.add_argument("model", nargs="?", default=None,
                   help=".onnx model, or .safetensors/.ckpt weights (default: the built-in styles' model)")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)
    info = model_info(args.model)
    print(json.dumps(info, indent=2, default=str) if args.json else "\n".join(info_lines(info)))
    return 0


def main_demo(argv: list[str]) -> int:
    """``fastnst demo``: train briefly on the bundled photos, export, verify, stylise into ./fastnst-demo/."""
    from fastnst.demo import DemoOptions, run_demo

    p = Parser(prog="fastnst demo", description="Train a style network briefly on the bundled demo photos, "
               "export and verify it, and stylise the photos: the whole pipeline in about a minute on a CPU.",
               epilog="examples:\n  fastnst demo\n  fastnst demo --vgg-weights random   # offline: untrained "
                      "VGG, the output shows the pipeline, not a style\n")
    add_options(p, DemoOptions)
    print("\n".join(run_demo(DemoOptions(**chosen(p.parse_args(argv), DemoOptions))).lines()))
    return 0
