"""The built-in styles shipped in the package: one multi-style ONNX model and what each style is.

Torch-free (standard library only): ``fastnst stylize photo.jpg`` with no ``--model`` runs the
shipped model (``models/builtin.onnx``, conditional instance norm, one column of its ``style``
input per style) with onnxruntime alone.

Every style picture can be had offline and may be shipped: five are drawn by code in this
repository (:mod:`fastnst.styles.generated`, fastnst's own pictures under its MIT licence), the
others are public-domain or CC0 pictures that scikit-image ships in ``skimage/data``. The network
was trained with the imported Caffe VGG16 on photos that packages ship (never anything fetched);
``models/builtin.json`` records the exact command, its duration and the machine, and
``ATTRIBUTION.md`` (written by ``scripts/ship_models.py package``) lists it all for people.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastnst.constants import BUILTIN_DEFAULT_STYLE, BUILTIN_MODEL
from fastnst.errors import InputError, ModelFormatError, unknown_choice
from fastnst.options import check_options, option

STYLES_DIR = Path(__file__).resolve().parent
MODEL_PATH = BUILTIN_MODEL
# The same network's trained weights: what ``fastnst train --from builtin`` starts from (torch needed there).
WEIGHTS_PATH = STYLES_DIR / "models" / "builtin.safetensors"
INFO_PATH = STYLES_DIR / "models" / "builtin.json"
THUMBNAIL_DIR = STYLES_DIR / "thumbnails"
ATTRIBUTION_PATH = STYLES_DIR / "ATTRIBUTION.md"

_GENERATED_LICENCE = "MIT (drawn by fastnst's own code; no third-party material)"
_GENERATED_SOURCE = "fastnst.styles.generated.generate_style('{name}', size=512, seed=0)"


@dataclass(frozen=True)
class BuiltinStyle:
    """One built-in style: its name (as the model's ``fastnst_styles`` metadata spells it) and provenance."""

    name: str
    title: str
    source: str  # where the style picture comes from (how to make it again)
    licence: str
    author: str
    url: str = ""

    @property
    def thumbnail(self) -> Path:
        """A small JPEG of the style picture (shipped in the package)."""
        return THUMBNAIL_DIR / f"{self.name}.jpg"

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "title": self.title, "source": self.source, "licence": self.licence,
                "author": self.author, "url": self.url, "thumbnail": str(self.thumbnail)}


def _generated(name: str, title: str) -> BuiltinStyle:
    return BuiltinStyle(name, title, _GENERATED_SOURCE.format(name=name), _GENERATED_LICENCE, "fastnst developers")


# The order is the order of the model's style input columns (checked against the model's metadata).
BUILTIN_STYLES: tuple[BuiltinStyle, ...] = (
    _generated("mosaic", "Voronoi tile mosaic"),
    _generated("stained_glass", "Stained glass with dark leading"),
    _generated("brushstrokes", "Flow-field brush strokes"),
    _generated("halftone", "CMYK halftone dots"),
    _generated("pointillist", "Pointillist dabs"),
    BuiltinStyle("hubble", "Hubble eXtreme Deep Field",
                 "scikit-image 0.26 skimage/data/hubble_deep_field.jpg (centre square, 512 px)",
                 "public domain (NASA media guidelines)", "NASA, ESA",
                 "http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/"),
    BuiltinStyle("retina", "Fundus photograph of a normal left eye",
                 "scikit-image 0.26 skimage/data/retina.jpg (centre crop inside the dark rim, 512 px)",
                 "CC0 1.0 (public domain dedication)", "Wikimedia Commons (author named on the file page)",
                 "https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg"),
    BuiltinStyle("brick", "Brick wall (greyscale)",
                 "scikit-image 0.26 skimage/data/brick.png (512 px)",
                 "CC0 1.0 (CC0Textures, Bricks25)", "CC0Textures (ambientCG)",
                 "https://cc0textures.com/view.php?tex=Bricks25"),
)

#: The style ``fastnst stylize photo.jpg`` uses when neither --model nor --style is given.
DEFAULT_STYLE = BUILTIN_DEFAULT_STYLE


def names() -> list[str]:
    """The built-in style names, in the model's column order (what any style name means:
    :mod:`fastnst.styles.registry`)."""
    return [s.name for s in BUILTIN_STYLES]


def get_style(name: str) -> BuiltinStyle:
    """The built-in style ``name``; ConfigError (listing the names, suggesting the closest) when unknown."""
    for style in BUILTIN_STYLES:
        if style.name == name:
            return style
    raise unknown_choice("built-in style", name, names())


def model_path() -> Path:
    """The shipped multi-style ONNX model; InputError when the package was installed without it."""
    from fastnst.runtime.stylizer import builtin_model

    return builtin_model()


def weights_path() -> Path:
    """The shipped network's weights (``fastnst train --from builtin``); InputError when not installed."""
    if not WEIGHTS_PATH.is_file():
        raise InputError(f"the built-in network's weights are not installed ({WEIGHTS_PATH}); reinstall fastnst, "
                         f"or pass --from PATH of a .safetensors written by fastnst train")
    return WEIGHTS_PATH


@lru_cache(maxsize=1)
def training_info() -> dict[str, Any]:
    """What made the shipped model: command, seconds, steps, machine, VGG weights ({} when not recorded)."""
    if not INFO_PATH.is_file():
        return {}
    try:
        info = json.loads(INFO_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"'{INFO_PATH}' is not readable JSON ({exc}); reinstall fastnst") from None
    return info if isinstance(info, dict) else {}


def describe() -> list[dict[str, str]]:
    """One dict per built-in style (name, title, source, licence, author, url, thumbnail), plus 'default'."""
    return [dict(s.as_dict(), default="yes" if s.name == DEFAULT_STYLE else "") for s in BUILTIN_STYLES]


# ------------------------------------------------------------------------------------------- sheet

MAX_SHEET_TILE = 1024  # largest tile side of a sheet (a sheet of 9 tiles stays under ~10 Mpx)
MIN_SHEET_TILE = 32


def style_sheet(photo: Any, size: int = 256, styles: list[str] | None = None, model: Any = None) -> Any:
    """One photo in every built-in style and every painting shipped with fastnst: a labelled grid (PIL image),
    the original first.

    ``photo``: a path, bytes or PIL image; ``size``: the long side of each tile in pixels
    (32..1024); ``styles``: a subset of the names (default: all); a painting or a picture file
    (``starry_night``, ``wave.jpg``) runs on the universal model; ``model``: a Stylizer or path of a
    multi-style model to use instead of the built-in one (then the default is its styles alone). Torch-free.
    Raises InputError for an unreadable photo, ConfigError for an unknown style or a size out of range.
    """
    from PIL import Image, ImageDraw, ImageFont

    from fastnst.errors import ConfigError
    from fastnst.image import IMAGE_EXTENSIONS, load_rgb, resize
    from fastnst.runtime import Stylizer
    from fastnst.styles import paintings

    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SHEET_TILE <= size <= MAX_SHEET_TILE:
        raise ConfigError(f"the sheet's tile size must be a whole number from {MIN_SHEET_TILE} to "
                          f"{MAX_SHEET_TILE}, got {size!r}")
    stylizer = model if isinstance(model, Stylizer) else Stylizer(model if model is not None else model_path())
    if styles is None:
        chosen = list(stylizer.style_names) + (paintings.shipped_names() if model is None else [])
    else:
        chosen = list(styles)
    if not chosen:
        raise ConfigError("the model has a single style; a sheet needs a multi-style model")
    pictures = {}  # name -> style picture (the universal model) for every name that is not one of the model's
    for name in chosen:
        key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
        if name in stylizer.style_names:
            continue
        if Path(name).is_file():
            pictures[name] = Path(name)
        elif key in paintings.ALIASES:
            pictures[name] = paintings.fetch_painting(paintings.PAINTINGS[paintings.ALIASES[key]])
        elif "/" in str(name) or Path(name).suffix.lower() in IMAGE_EXTENSIONS:
            raise InputError(f"style image '{name}' does not exist; check the path, or give a style name")
        else:
            raise unknown_choice("style", name, stylizer.style_names + paintings.names())
    img = photo.convert("RGB") if isinstance(photo, Image.Image) else load_rgb(photo)
    img = resize(img, long_edge=size)
    if pictures:
        from fastnst.runtime.universal import universal_stylizer

        universal = universal_stylizer()
    tiles = [("original", img)] + [(n, universal.stylize(img, style=pictures[n]) if n in pictures
                                     else stylizer.stylize(img, style=n)) for n in chosen]
    try:
        font: Any = ImageFont.load_default(size=max(10, size // 16))
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        font = ImageFont.load_default()
    label_h = max(14, size // 16) + 8
    pad = 4
    ncols = len(tiles) if len(tiles) <= 4 else math.ceil(len(tiles) ** 0.5)  # one row, else about square
    nrows = -(-len(tiles) // ncols)
    w, h = img.size
    sheet = Image.new("RGB", (ncols * (w + pad) + pad, nrows * (h + label_h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (name, tile) in enumerate(tiles):
        x = pad + (i % ncols) * (w + pad)
        y = pad + (i // ncols) * (h + label_h + pad)
        sheet.paste(tile.convert("RGB"), (x, y))
        draw.text((x + 2, y + h + 3), name, fill=(0, 0, 0), font=font)
    return sheet


@dataclass
class StylesOptions:
    """``fastnst styles``: list the built-in styles, or write a sheet of one photo in each."""

    sheet: str | None = option(None, "write PHOTO in every built-in style and shipped painting to -o",
                               metavar="PHOTO")
    output: str | None = option(None, "the sheet's file (.png, .jpg, ...)", short="-o")
    size: int = option(256, "long side of each tile in pixels", low=MIN_SHEET_TILE, high=MAX_SHEET_TILE)
    style: list[str] | None = option(None, "only these styles: built-in names, paintings or style pictures "
                                           "(repeat the flag; default: all built-in and shipped)", metavar="NAME")
    overwrite: bool = option(False, "replace an existing output file")
    json: bool = option(False, "print the list as JSON")


def listing(as_json: bool = False) -> list[str]:
    """The lines ``fastnst styles`` prints: each style's title, source and licence, and how the model was made."""
    styles = describe()
    if as_json:
        return [json.dumps({"styles": styles, "model": str(MODEL_PATH), "training": training_info(),
                            "paintings": painting_list()}, indent=2)]
    width = max(len(s["name"]) for s in styles) + len(" (default)")
    lines = []
    for s in styles:
        lines += [f"{s['name'] + (' (default)' if s['default'] else ''):<{width}}  {s['title']}",
                  f"{'':<{width}}  source:  {s['source']}" + (f"  <{s['url']}>" if s["url"] else ""),
                  f"{'':<{width}}  licence: {s['licence']}"]
    info = training_info()
    if info:
        lines.append(f"\nall {len(styles)} styles are one network ({MODEL_PATH.name}, "
                     f"{info.get('model_bytes', 0) / 1e6:.1f} MB), trained for {info.get('steps')} steps in "
                     f"{info.get('seconds', 0) / 60:.0f} min on {info.get('machine')}; see {ATTRIBUTION_PATH}")
    lines.append("use: fastnst stylize photo.jpg -o out.jpg --style NAME   (or a blend: --style 'a:0.5,b:0.5')")
    lines.append("\npaintings (any style picture runs on the universal model; seconds, torch-free):")
    known = painting_list()
    pw = max(len(p["name"]) for p in known)
    for p in known:
        where = "shipped with fastnst" if p["shipped"] else "downloaded once from Wikimedia Commons"
        lines.append(f"  {p['name']:<{pw}}  {p['title']}, {p['artist']} ({p['year']}); {where}")
    lines.append("use: fastnst stylize photo.jpg -o out.jpg --style starry_night   (or --style painting.jpg)")
    return lines


def painting_list() -> list[dict[str, Any]]:
    """The named paintings (:mod:`fastnst.styles.paintings`): name, title, artist, year, whether shipped."""
    from fastnst.styles import paintings

    shipped = set(paintings.shipped_names())
    return [{"name": p.name, "title": p.title, "artist": p.artist, "year": p.year, "shipped": p.name in shipped,
             "source": p.shipped_source if p.name in shipped else p.page} for p in paintings.PAINTINGS.values()]


def styles_command(options: StylesOptions) -> list[str]:
    """``fastnst styles``: the listing, or (``sheet``) the sheet written to ``output``; the lines to print."""
    from fastnst.errors import ConfigError

    opts = check_options(options)
    if opts.sheet is None:
        if opts.output or opts.style:
            raise ConfigError("-o and --style go with --sheet PHOTO; "
                              "e.g. fastnst styles --sheet photo.jpg -o sheet.png")
        return listing(opts.json)
    if not opts.output:
        raise ConfigError("--sheet needs -o FILE for the sheet, e.g. -o sheet.png")
    from fastnst.fileio import check_output
    from fastnst.image import output_format, save_image

    output_format(opts.output)  # an unknown extension fails before any work
    out = check_output(opts.output, opts.overwrite, inputs=[opts.sheet])
    sheet = style_sheet(opts.sheet, size=opts.size, styles=opts.style)
    return [str(save_image(sheet, out, overwrite=opts.overwrite, quality=90))]
