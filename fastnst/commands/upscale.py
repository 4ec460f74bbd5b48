"""``fastnst upscale``: enlarge images x4 / x8 with a super-resolution model from ``fastnst train-sr``.

onnxruntime only (torch is never imported). Output size is exactly factor x input; large outputs are
made in tiles. Per-image problems in a batch are reported and skipped (exit code 2 at the end).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from fastnst.commands.stylize import _check_folder, _expand_inputs, _output_paths, _Parser, _Progress
from fastnst.errors import ConfigError, FastNSTError, InputError

_EXAMPLES = """examples:
  fastnst upscale --model sr-x4.onnx photo.jpg -o big.png
  fastnst upscale --model sr-x4.onnx photos/ -o enlarged/ --factor 4
  fastnst upscale --model sr-x8.onnx thumb.png -o poster.png --tile 128
"""
MAX_TILE = 4096


def main(argv: list[str]) -> int:
    """``fastnst upscale``; returns 0 when every image was enlarged, 2 otherwise."""
    from fastnst.fileio import check_output
    from fastnst.image import output_format, save_image
    from fastnst.upscaler import DEFAULT_TILE, Upscaler

    p = _Parser(prog="fastnst upscale", description="Enlarge images with a perceptual-loss super-resolution "
                "network (Johnson et al. 2016) trained by 'fastnst train-sr'.", epilog=_EXAMPLES,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("-m", "--model", required=True, help=".onnx model written by fastnst train-sr")
    p.add_argument("-o", "--output", required=True, help="output file (one input) or folder (several)")
    p.add_argument("--factor", type=int, default=None, help="expected factor (an error when the model's differs)")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE,
                   help=f"input tile size in pixels (default {DEFAULT_TILE}; 0 = one piece)")
    p.add_argument("--max-size", type=int, default=None, help="downscale inputs to at most N pixels on the long side first")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="onnxruntime device")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: physical cores)")
    p.add_argument("--format", default=None, help="output format for folders: png, jpg, webp, ...")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100 (default 95)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = p.parse_args(argv)
    if args.factor is not None and args.factor not in (2, 4, 8):
        raise ConfigError(f"--factor must be 2, 4 or 8, got {args.factor}")
    if args.tile is not None and not (args.tile == 0 or 16 <= args.tile <= MAX_TILE):
        raise ConfigError(f"--tile must be 0 (one piece) or between 16 and {MAX_TILE}, got {args.tile}")
    if args.max_size is not None and args.max_size <= 0:
        raise ConfigError(f"--max-size must be positive, got {args.max_size}")
    if not 1 <= args.quality <= 100:
        raise ConfigError(f"--quality must be between 1 and 100, got {args.quality}")
    if args.threads is not None and args.threads <= 0:
        raise ConfigError(f"--threads must be positive, got {args.threads}")
    if "-" in args.inputs or args.output == "-":
        raise ConfigError("fastnst upscale reads and writes files; stdin/stdout (-) is not supported")
    if args.format:
        output_format("x", args.format)
    inputs = _expand_inputs(args.inputs)
    mode, outputs = _output_paths(inputs, args.output, args.format)
    single = len(inputs) == 1
    if single and inputs[0][2]:
        raise InputError(inputs[0][2])
    if mode == "folder":
        _check_folder(Path(args.output).expanduser())
    else:
        assert outputs[0] is not None
        output_format(outputs[0], args.format)
        check_output(outputs[0], args.overwrite)
    upscaler = Upscaler(Path(args.model).expanduser(), providers=args.device, threads=args.threads)
    if args.factor is not None:
        upscaler.check_size(upscaler.min_size, upscaler.min_size, args.factor)  # factor mismatch: before any work

    progress = _Progress(len(inputs), enabled=not single)
    ok = failed = 0
    start = time.perf_counter()
    last: Any = None
    for (name, path, problem), out_path in zip(inputs, outputs):
        try:
            if problem:
                raise InputError(problem)
            assert out_path is not None and path is not None
            check_output(out_path, args.overwrite)
            image = upscaler.upscale(path, factor=args.factor, tile=args.tile, max_size=args.max_size)
            alpha = image.getchannel("A") if image.mode == "RGBA" else None
            rgb = image.convert("RGB") if alpha is not None else image
            save_image(rgb, out_path, overwrite=args.overwrite, alpha=alpha, icc_profile=image.info.get("icc_profile"),
                       quality=args.quality, format=args.format)
            last = image.size
            ok += 1
        except FastNSTError as exc:
            if single:
                raise
            failed += 1
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"fastnst: error: {name}: {message}", file=sys.stderr, flush=True)
        progress.step(name)
    progress.close()
    where = str(outputs[0]) if mode == "file" else args.output
    size = f" ({last[0]}x{last[1]})" if single and last else ""
    print(f"enlarged {ok} of {len(inputs)} image{'s' if len(inputs) != 1 else ''} x{upscaler.factor} in "
          f"{time.perf_counter() - start:.1f} s on {upscaler.device}" + (f"; {failed} failed" if failed else "")
          + f" -> {where}{size}", file=sys.stderr)
    return 0 if failed == 0 else 2
