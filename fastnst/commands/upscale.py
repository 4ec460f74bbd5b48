"""``fastnst upscale``: enlarge images x2/x4/x8 with a super-resolution model (fastnst.batch.upscale_files)."""

from __future__ import annotations

from fastnst.commands.common import Parser, add_options, chosen, run_batch

EXAMPLES = """examples:
  fastnst upscale photo.jpg                                      (the shipped x4 model; writes photo.x4.jpg)
  fastnst upscale --model sr-x4.onnx photo.jpg -o big.png
  fastnst upscale --model sr-x4.onnx photos/ -o enlarged/ --factor 4
  fastnst upscale --model sr-x8.onnx thumb.png -o poster.png --tile 128
"""


def main(argv: list[str]) -> int:
    """``fastnst upscale``; returns 0 when every image was enlarged, 2 otherwise."""
    from fastnst.batch import UpscaleOptions, upscale_files

    p = Parser(prog="fastnst upscale", description="Enlarge images x4 with the shipped perceptual-loss "
               "super-resolution network (Johnson et al. 2016), or one trained by 'fastnst train-sr'.",
               epilog=EXAMPLES)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    add_options(p, UpscaleOptions)
    args = p.parse_args(argv)
    return run_batch(upscale_files, UpscaleOptions(**chosen(args, UpscaleOptions)), args.inputs)
