"""``fastnst export | export-universal | info``: parse, call one function of :mod:`fastnst.models`, print."""

from __future__ import annotations

import json

from fastnst.commands.common import Parser, add_options, chosen

EXPORT_EXAMPLES = """examples:
  fastnst export checkpoints/wave/wave.safetensors -o wave.onnx
  fastnst export checkpoints/wave/last.ckpt --io uint8 -o wave-uint8.onnx
  fastnst export checkpoints/wave/wave.safetensors --fp16 -o wave-fp16.onnx
  fastnst export checkpoints/wave/wave.safetensors --static 512x512 -o wave-512.onnx
  npm install onnxruntime-web && fastnst export wave.onnx --web site/   # then: python -m http.server -d site
"""


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


UNIVERSAL_EXAMPLES = """examples:
  fastnst export-universal decoder-relu1_1.safetensors decoder-relu2_1.safetensors \\
      decoder-relu3_1.safetensors decoder-relu4_1.safetensors --vgg-weights vgg16-caffe.safetensors -o universal.onnx
  fastnst stylize photo.jpg --style painting.jpg --universal-model universal.onnx
"""


def main_export_universal(argv: list[str]) -> int:
    """``fastnst export-universal DECODER... --vgg-weights W -o MODEL.onnx``: the one-graph universal model."""
    from fastnst.models import ExportUniversalOptions, export_universal_model

    p = Parser(prog="fastnst export-universal", epilog=UNIVERSAL_EXAMPLES, description="Assemble the universal "
               "(any-painting) style model from one decoder per level (fastnst train-decoder) and the VGG encoder "
               "they were trained on: one plain ONNX graph with two image inputs (content, style_image) and a "
               "strength, the whitening and colouring done by Newton-Schulz iterations (any ONNX runtime runs it); "
               "verified against torch; float16 weights unless --fp32.")
    p.add_argument("decoders", nargs="+", metavar="DECODER", help="decoder .safetensors files, one per level")
    add_options(p, ExportUniversalOptions)
    args = p.parse_args(argv)
    print("\n".join(export_universal_model(args.decoders, ExportUniversalOptions(**chosen(args,
                                                                                          ExportUniversalOptions)))))
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
