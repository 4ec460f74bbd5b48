"""``fastnst styles``: list the built-in styles (name, source, licence) or write a sheet of one photo in each.

Torch-free: the sheet runs the shipped ONNX model with onnxruntime.
"""

from __future__ import annotations

import argparse
import json

from fastnst.errors import ConfigError

_EXAMPLES = """examples:
  fastnst styles                                   list the built-in styles, their sources and licences
  fastnst styles --sheet photo.jpg -o sheet.png    the photo in every built-in style, in one picture
  fastnst styles --sheet photo.jpg -o sheet.jpg --size 384 --style mosaic --style halftone
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message}; see 'fastnst styles --help'")


def main(argv: list[str]) -> int:
    p = _Parser(prog="fastnst styles", description="List the built-in styles, or show one photo in each of them.",
                epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sheet", metavar="PHOTO", default=None, help="write PHOTO in every built-in style to -o")
    p.add_argument("-o", "--output", default=None, help="the sheet's file (.png, .jpg, ...)")
    p.add_argument("--size", type=int, default=256, help="long side of each tile in pixels (32-1024, default 256)")
    p.add_argument("--style", action="append", default=None, metavar="NAME",
                   help="only these styles (repeat the flag; default: all)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    args = p.parse_args(argv)

    from fastnst.styles import builtin

    if args.sheet is None:
        if args.output or args.style:
            raise ConfigError("-o and --style go with --sheet PHOTO; e.g. fastnst styles --sheet photo.jpg -o sheet.png")
        styles = builtin.describe()
        if args.json:
            print(json.dumps({"styles": styles, "model": str(builtin.MODEL_PATH),
                              "training": builtin.training_info()}, indent=2))
            return 0
        width = max(len(s["name"]) for s in styles) + len(" (default)")
        for s in styles:
            name = s["name"] + (" (default)" if s["default"] else "")
            print(f"{name:<{width}}  {s['title']}")
            print(f"{'':<{width}}  source:  {s['source']}" + (f"  <{s['url']}>" if s["url"] else ""))
            print(f"{'':<{width}}  licence: {s['licence']}")
        info = builtin.training_info()
        if info:
            print(f"\nall {len(styles)} styles are one network ({builtin.MODEL_PATH.name}, "
                  f"{info.get('model_bytes', 0) / 1e6:.1f} MB), trained for {info.get('steps')} steps in "
                  f"{info.get('seconds', 0) / 60:.0f} min on {info.get('machine')}; see {builtin.ATTRIBUTION_PATH}")
        print("use: fastnst stylize photo.jpg -o out.jpg --style NAME   (or a blend: --style 'a:0.5,b:0.5')")
        return 0

    if not args.output:
        raise ConfigError("--sheet needs -o FILE for the sheet, e.g. -o sheet.png")
    from fastnst.fileio import check_output
    from fastnst.image import output_format, save_image

    output_format(args.output)  # an unknown extension fails before any work
    out = check_output(args.output, args.overwrite, inputs=[args.sheet])
    sheet = builtin.style_sheet(args.sheet, size=args.size, styles=args.style)
    save_image(sheet, out, overwrite=args.overwrite, quality=90)
    print(out)
    return 0
