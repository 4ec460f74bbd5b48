"""``fastnst styles``: list the built-in styles (name, source, licence) or write a sheet of one photo in each."""

from __future__ import annotations

from fastnst.commands.common import Parser, add_options, chosen

EXAMPLES = """examples:
  fastnst styles                                   list the built-in styles, their sources and licences
  fastnst styles --sheet photo.jpg -o sheet.png    the photo in every built-in style, in one picture
  fastnst styles --sheet photo.jpg -o sheet.jpg --size 384 --style mosaic --style halftone
"""


def main(argv: list[str]) -> int:
    from fastnst.styles.builtin import StylesOptions, styles_command

    p = Parser(prog="fastnst styles", description="List the built-in styles, or show one photo in each of them.",
               epilog=EXAMPLES)
    add_options(p, StylesOptions, style={"action": "append", "type": str})
    print("\n".join(styles_command(StylesOptions(**chosen(p.parse_args(argv), StylesOptions)))))
    return 0
