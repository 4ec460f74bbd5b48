"""``fastnst stylize``: parse, call :func:`fastnst.batch.stylize_files`, print. On an ``.onnx`` model or the
built-in styles it never imports torch."""

from __future__ import annotations

from fastnst.commands.common import Parser, add_options, chosen, run_batch

EXAMPLES = """examples:
  fastnst stylize photo.jpg                                     (writes photo.pointillist.jpg: the default built-in style)
  fastnst stylize photo.jpg --style pointillist -o out.jpg      (fastnst styles lists the built-in styles)
  fastnst stylize photo.jpg -o out.jpg --style 'mosaic:0.5,brushstrokes:0.5'
  fastnst stylize --model wave.onnx photo.jpg -o photo-wave.jpg
  fastnst stylize --model wave.onnx photos/ -o stylised/ --strength 0.8   (sub-folders are mirrored in stylised/)
  fastnst stylize --model wave.onnx 'holiday/*.png' -o out/ --preserve-color --json
  cat photo.jpg | fastnst stylize --model wave.onnx - -o - --format png > out.png
  fastnst stylize --model checkpoints/wave/wave.safetensors poster.tif -o poster-wave.tif --tile 1024
  fastnst stylize --model mosaic-9.onnx --input-range 255 big.jpg -o big-mosaic.jpg --tile 512
  fastnst stylize --model styles.onnx --style 'wave:0.7,mosaic:0.3' photo.jpg -o blend.jpg --provider cuda
  fastnst stylize --model wave.onnx clip.mp4 -o clip-wave.mp4 --deflicker 0.6
  fastnst stylize photos/ -o styled/ --skip-existing             (resume an interrupted batch)
"""


def main(argv: list[str]) -> int:
    """``fastnst stylize``; returns 0 when every image was stylised, 2 otherwise."""
    from fastnst.batch import StylizeOptions, stylize_files

    p = Parser(prog="fastnst stylize", description="Stylise images and videos with a built-in style or a trained "
               "style network (also spelt 'fastnst stylise').", epilog=EXAMPLES)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs, videos, or - for stdin")
    add_options(p, StylizeOptions, provider={"action": "append", "type": str})
    args = p.parse_args(argv)
    return run_batch(stylize_files, StylizeOptions(**chosen(args, StylizeOptions)), args.inputs, args.json)
