"""What a style name means: the one lookup for every style argument (``--style``, ``generate(style=...)``).

A style spec is one of four kinds, tried in this order:

* ``file``: an existing image file (``wave.jpg``);
* ``builtin``: a style of the shipped multi-style model (``mosaic``, ``hubble``; :mod:`fastnst.styles.builtin`),
  run feed-forward with onnxruntime alone;
* ``painting``: a named public-domain painting (``starry_night``, ``the-great-wave``; aliases too;
  :mod:`fastnst.styles.paintings`): the copy shipped with fastnst, or else downloaded once into the cache;
* ``generated``: a style picture drawn by code (``geometric``; :mod:`fastnst.styles.generated`), made once
  into the cache.

Names ignore case, spaces and dashes. Anything else that exists (a folder, say) counts as a file, so that
the image reader says what is wrong with it; a spec with a folder part or an image suffix that does not
exist is a missing file (InputError); any other spec is an unknown name (ConfigError listing the names by
kind and suggesting the closest, timm's ``_registry`` style).

Callers that need a style *picture* (Gatys, training, and any model that takes a style image) look up
with ``picture=True``: then a built-in style that is also a generated one means its generated picture, and
built-in styles without a shipped picture (``hubble``, ...) are not names. :meth:`Style.picture` gives the
file. Torch-free; nothing is downloaded or made until :meth:`Style.picture` is called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fastnst.errors import ConfigError, InputError, did_you_mean
from fastnst.image import IMAGE_EXTENSIONS
from fastnst.styles import builtin, generated, paintings

FILE = "file"
BUILTIN = "builtin"
PAINTING = "painting"
GENERATED = "generated"
#: The kinds, in the order a spec is tried.
KINDS: tuple[str, ...] = (FILE, BUILTIN, PAINTING, GENERATED)

StyleSpec = str | os.PathLike


@dataclass(frozen=True)
class Style:
    """What a style spec means: its ``kind`` (one of :data:`KINDS`) and ``name``.

    ``name`` is the canonical name (a painting's, whatever alias was given), or a file's stem; outputs are
    named after it. ``path``: the file as given (kind ``file`` only).
    """

    kind: str
    name: str
    path: Path | None = None

    @property
    def feed_forward(self) -> bool:
        """Whether the style runs on the shipped multi-style model (torch-free, a fraction of a second)."""
        return self.kind == BUILTIN

    @property
    def universal(self) -> bool:
        """Whether the style is a picture (a file, a painting, a generated picture): the universal model (and
        Gatys, and training) take it."""
        return self.kind != BUILTIN

    def picture(self, root: str | os.PathLike | None = None) -> Path:
        """The style picture file: the file as given, a painting's shipped copy or cached download (fetched now
        if needed) or a generated picture (made now if needed). ``root`` replaces the cache folder.

        Raises PaintingUnavailableError when a painting cannot be downloaded, ConfigError for a built-in style
        whose picture is not shipped.
        """
        if self.kind == FILE:
            assert self.path is not None
            return self.path
        if self.kind == PAINTING:
            return paintings.fetch_painting(paintings.PAINTINGS[self.name], root)
        if self.name in generated.NAMES:  # generated, or a built-in style drawn by the same code
            return generated.cached_picture(self.name, root)
        raise ConfigError(f"'{self.name}' is a built-in style of the shipped model; its picture is not shipped "
                          f"with fastnst; give an image file, a painting or a generated style "
                          f"({', '.join(names(picture=True)['generated'])})")


def _key(spec: StyleSpec) -> str:
    return str(spec).strip().lower().replace("-", "_").replace(" ", "_")


def names(picture: bool = False) -> dict[str, list[str]]:
    """Every style name a style argument accepts, by kind (``built-in``, ``paintings``, ``generated``).

    ``picture``: only the names that give a style picture (see :func:`lookup`); then every generated style is
    listed as one, else only those that are not also built in.
    """
    if picture:
        return {"paintings": paintings.names(), "generated": generated.names()}
    built = builtin.names()
    return {"built-in": built, "paintings": paintings.names(),
            "generated": [n for n in generated.NAMES if n not in built]}


def looks_like_path(spec: StyleSpec) -> bool:
    """Whether ``spec`` is meant as a file (it has a folder part or an image suffix) rather than a name."""
    text = str(spec)
    return os.sep in text or "/" in text or Path(text).suffix.lower() in IMAGE_EXTENSIONS


def unknown_style(spec: StyleSpec, picture: bool = False) -> ConfigError:
    """One-line ConfigError for an unknown style name: every valid name by kind, and the closest."""
    kinds = names(picture)
    every = [n for group in kinds.values() for n in group] + list(paintings.ALIASES)
    key = _key(spec)
    suggestion = did_you_mean(key, every)
    if suggestion and key not in every:
        close = suggestion.split("'")[1]
        if close in paintings.ALIASES and close not in paintings.PAINTINGS:
            suggestion = f" (did you mean '{paintings.ALIASES[close]}'?)"
    listing = "; ".join(f"{kind}: {', '.join(group)}" for kind, group in kinds.items() if group)
    return ConfigError(f"unknown style '{spec}'{suggestion}; give an image file or a name ({listing})")


def lookup(spec: StyleSpec, *, picture: bool = False) -> Style:
    """What ``spec`` means (see the module docstring); nothing is downloaded or made here.

    ``picture``: the caller needs a style picture (Gatys, training, a model that takes a style image).
    Raises InputError for a missing file, ConfigError for an unknown name.
    """
    path = Path(spec)
    if path.is_file():
        return Style(FILE, path.stem, path)
    key = _key(spec)
    if key in builtin.names() and not picture:
        return Style(BUILTIN, key)
    if key in paintings.ALIASES:
        return Style(PAINTING, paintings.ALIASES[key])
    if key in generated.NAMES:
        return Style(GENERATED, key)
    if path.exists():  # a folder or another non-file: the image reader says what is wrong with it
        return Style(FILE, path.stem, path)
    if looks_like_path(spec):
        examples = " or ".join(group[0] for group in list(names(picture).values())[:2])
        raise InputError(f"style image '{spec}' does not exist; check the path, or give a style name such as "
                         f"{examples}")
    raise unknown_style(spec, picture)


def picture_blend(spec: StyleSpec) -> list[tuple[Style, float]] | None:
    """The style pictures (and weights) that ``spec`` names for the universal model, or None when it names
    built-in styles (``mosaic``, ``mosaic:0.5,pointillist:0.5``) for the shipped feed-forward model.

    ``spec``: one style (a file, a painting, a generated picture) or a blend ``a.jpg:0.6,b.jpg:0.4``. A blend
    of built-in styles with pictures is refused (ConfigError: they run on different models); unknown names
    and missing files as :func:`lookup` says."""
    from fastnst.runtime.universal import parse_style_blend

    text = os.fspath(spec)
    parts = [(text, 1.0)] if Path(text).exists() else parse_style_blend(text)
    looked = []
    for part, weight in parts:
        if part.lstrip("-").isdigit():  # a built-in style's index
            looked.append((Style(BUILTIN, part), weight))
        else:
            looked.append((lookup(part), weight))
    kinds = {style.universal for style, _ in looked}
    if len(kinds) > 1:
        raise ConfigError(f"'{text}' mixes built-in styles with style pictures; blend built-in styles with built-in "
                          f"styles, or pictures with pictures")
    return looked if kinds == {True} else None


def resolve_style(spec: StyleSpec, root: str | os.PathLike | None = None) -> Path:
    """The style picture file for ``spec``: ``lookup(spec, picture=True).picture(root)``.

    An existing path is returned as it is; a painting is downloaded once into the cache; a generated style
    is made once into the cache. Raises InputError for a missing file, ConfigError for an unknown name,
    PaintingUnavailableError when a painting cannot be downloaded.
    """
    return lookup(spec, picture=True).picture(root)


def resolve_styles(specs: StyleSpec | list | tuple | None,
                   root: str | os.PathLike | None = None) -> list[Path] | Path | None:
    """:func:`resolve_style` over one spec or a list of them (None stays None), keeping the shape."""
    if specs is None:
        return None
    if isinstance(specs, (list, tuple)):
        return [resolve_style(s, root) for s in specs]
    return resolve_style(specs, root)
