"""Any style onto photos in one call: :func:`generate` (public as ``fastnst.generate``), for notebooks.

>>> import fastnst
>>> fastnst.generate("photo.jpg", style="mosaic", resolution=768, output_dir="out")   # built-in, torch-free
PosixPath('out/photo-mosaic.jpg')
>>> fastnst.generate("photos/", style="starry_night", resolution=256, output_dir="out", iterations=200)
[PosixPath('out/a-starry_night.jpg'), PosixPath('out/b-starry_night.jpg')]

What the style means is the registry's answer (:func:`fastnst.styles.registry.lookup`): a built-in style
runs the shipped feed-forward model with onnxruntime (no torch needed, a fraction of a second per
photo); a painting (``starry_night``, ``great_wave``, ...; downloaded once), a generated style that is
not built in or any image file runs Gatys et al.'s optimisation (needs the ``train`` extra; minutes on a
CPU). Importing this module is cheap (standard library and fastnst's ground floor).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastnst import checks
from fastnst.constants import MAX_ITERATIONS
from fastnst.errors import ConfigError, InputError

if TYPE_CHECKING:  # pragma: no cover
    from fastnst.styles.registry import Style

log = logging.getLogger(__name__)

#: Smallest output long side generate() accepts (the networks need a few pixels per stride).
MIN_RESOLUTION = 16
#: Long side of a Gatys result when ``resolution`` is None: the photo's own, at most this
#: (reference implementation: neural-style's -image_size 512; optimisation cost grows with pixels).
GATYS_MAX_DEFAULT = 512
METHODS = ("auto", "gatys")  # generate(method=...): auto = the built-in or universal model; gatys on request

PathLike = str | os.PathLike


def _inputs(source: PathLike | Sequence[PathLike]) -> tuple[list[Path], bool, dict[Path, Path]]:
    """The image files to stylise, whether the caller gets a list back (folder or list input), and each
    folder-found file's sub-folder (mirrored below ``output_dir``). Folders: :func:`fastnst.image.find_images`."""
    from fastnst.image import find_images

    where: dict[Path, Path] = {}

    def folder(path: Path) -> list[Path]:
        found = find_images(path)
        where.update({f: f.parent.relative_to(path) for f in found})
        return found

    def one(item: PathLike) -> list[Path]:
        if not isinstance(item, (str, os.PathLike)):
            raise InputError(f"expected an image path, a folder or a list of paths, got {type(item).__name__}")
        path = Path(item)
        if path.is_dir():
            return folder(path)
        if not path.is_file():
            raise InputError(f"input '{path}' does not exist; check the path")
        return [path]

    if isinstance(source, (list, tuple)):
        if not source:
            raise InputError("the list of inputs is empty; give at least one image path")
        return [p for item in source for p in one(item)], True, where
    files = one(source)
    return files, Path(source).is_dir(), where


def _outputs(files: list[Path], style_name: str, output_dir: Path, format: str | None,
             overwrite: bool, where: dict[Path, Path]) -> list[Path]:
    """``<output_dir>/<sub-folder>/<stem>-<style><suffix>`` per file, checked (fastnst.outputs)."""
    from fastnst.outputs import Source, check_format, check_target, folder_targets

    check_format(format)  # InputError for an unknown format
    sources = [Source(str(f), f, where[f] / f.name if f in where else None) for f in files]
    outs = folder_targets(sources, output_dir, format, name="{stem}-{style}{suffix}", fields={"style": style_name},
                          clash="'{earlier}' and '{current}' would both be written to '{target}'; "
                                "rename one or stylise them in separate calls")
    for out in outs:
        if out.parent.is_dir():
            check_target(out, overwrite, inputs=files, known_format=False,
                         exists_hint="pass overwrite=True to replace it or choose another output_dir")
    return outs


def generate(input_image_path: PathLike | Sequence[PathLike], style: PathLike | None = None,
             resolution: int | None = None, output_dir: PathLike | None = None, *,
             strength: float = 1.0, overwrite: bool = False, format: str | None = None, method: str = "auto",
             iterations: int | None = None, device: str | None = None, **gatys_options: Any) -> Path | list[Path]:
    """Stylise ``input_image_path`` (an image file, a folder of images or a list of paths) and save it.

    A folder is searched with its sub-folders (hidden entries skipped) and its layout is mirrored below
    ``output_dir``, as ``fastnst stylize`` does.

    ``style``: a built-in style name (default: the default built-in; feed-forward, torch-free), a
    painting from the registry (``starry_night``, ... downloaded once into the cache), a generated
    style that is not built in, or an image file. ``method``: 'auto' runs built-in styles on the shipped
    feed-forward model and style pictures on the universal model (both torch-free; seconds); 'gatys' runs Gatys
    et al.'s optimisation on a style picture (needs the ``train`` extra; minutes on a CPU), as do Gatys'
    own options. ``resolution``: the output's long side in pixels (default: the photo's own;
    for Gatys the photo's own but at most 512). ``output_dir``: where results go (default: the
    current folder; created if missing), named ``<photo>-<style>.<ext>`` with the photo's format
    unless ``format`` is given. ``strength`` in [0, 1]: how much of the style (built-in and universal).
    Gatys only: ``iterations`` (default 500), ``device`` and any :class:`fastnst.optimize.GatysSettings`
    field (``vgg_weights=...``, ``style_weight=...``) as keywords.

    Returns the output path, or a list of them for a folder or list input. Everything is checked
    before any work (unknown style names list the valid ones and suggest the closest; existing
    outputs are refused unless ``overwrite``); each output is written whole (temp file, rename).
    """
    from fastnst.styles import builtin, registry

    if method not in METHODS:
        from fastnst.errors import unknown_choice

        raise unknown_choice("method", str(method), METHODS)
    files, many, where = _inputs(input_image_path)
    chosen = registry.lookup(builtin.DEFAULT_STYLE if style is None else style)
    resolution = checks.side("resolution", resolution, minimum=MIN_RESOLUTION, allow_none=True)
    strength = checks.number("strength", strength, 0.0, 1.0)
    gatys_asked = dict(gatys_options, **{k: v for k, v in (("iterations", iterations), ("device", device))
                                         if v is not None})
    use_gatys = not chosen.feed_forward and (method == "gatys" or bool(gatys_asked))
    if chosen.feed_forward and (gatys_asked or method == "gatys"):
        raise ConfigError(f"{', '.join(sorted(gatys_asked)) or 'method=gatys'} only apply to paintings and image "
                          f"styles (Gatys); '{chosen.name}' is a built-in feed-forward style")
    if use_gatys and strength != 1.0:
        raise ConfigError("strength applies to the built-in and universal models; for Gatys lower style_weight")
    settings = _gatys_settings(gatys_options) if use_gatys else None
    if iterations is not None:  # only reached for Gatys (checked above), so optimize is importable here
        iterations = checks.whole("iterations", iterations, maximum=MAX_ITERATIONS)
    out_dir = Path(output_dir) if output_dir is not None else Path(".")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output_dir '{out_dir}' is a file; give a folder")
    outs = _outputs(files, chosen.name, out_dir, format, overwrite, where)
    if chosen.feed_forward:
        model = builtin.model_path()  # InputError when the package lacks the model: before any output
        run = _builtin_runner(model, chosen.name, resolution, strength)
    elif use_gatys:
        run = _gatys_runner(chosen, resolution, iterations, device, settings)
    else:
        run = _universal_runner(chosen, resolution, strength)
    from fastnst.image import save_image

    written: list[Path] = []
    for f, out in zip(files, outs):
        rgb, alpha, icc = run(f)
        out.parent.mkdir(parents=True, exist_ok=True)  # only once there is a result (no empty folder on failure)
        written.append(save_image(rgb, out, overwrite=overwrite, alpha=alpha, icc_profile=icc, format=format))
        log.info("wrote %s", out)
    return written if many else written[0]


def is_picture_style(style: Any) -> bool:
    """Whether ``style`` is a style picture for the universal model: an image (PIL, array, bytes), encoded
    features, (style, weight) pairs, or a spec that names pictures (a file, a painting, a generated picture, or a
    blend of them); False for built-in style names (ConfigError/InputError for unknown names, missing files)."""
    from fastnst.styles.registry import picture_blend

    if style is None:
        return False
    if isinstance(style, (str, os.PathLike)):
        return picture_blend(style) is not None
    if isinstance(style, (list, tuple)):
        return all(is_picture_style(s) for s, _ in style) if all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in style) else False
    return True  # a PIL image, an array, bytes, a file object, encoded StyleFeatures


def stylize(image: Any, model: str | os.PathLike | Any = None, *, style: Any = None, **options: Any) -> Any:
    """One call: stylise ``image`` and return it in the kind it was given (a PIL image for a path).

    - ``fastnst.stylize("photo.jpg")``: the default built-in style (torch-free, a fraction of a second);
    - ``style="pointillist"`` (or a blend ``"mosaic:0.5,pointillist:0.5"``): built-in styles;
    - ``style="painting.jpg"`` / a PIL image / an array / ``[("a.jpg", 0.6), ("b.jpg", 0.4)]``: any painting,
      through the universal model (:class:`fastnst.runtime.universal.UniversalStylizer`; torch-free, seconds);
      ``strength``, ``style_size``, ``mask``, ``preserve_color`` as it takes them;
    - ``model="wave.onnx"`` (a path or a Stylizer): a trained model (``style``: its style name or blend).

    ``providers``, ``threads``, ``optimization`` (and ``input_range`` for trained models) choose how the model
    runs; models are kept for the next call. Raises InputError / ConfigError."""
    from fastnst.runtime import stylizer as runtime

    if model is not None:
        return runtime.stylize(image, model, **({"style": style} if style is not None else {}), **options)
    if is_picture_style(style):
        from fastnst.runtime.universal import universal_stylizer

        load = {k: options.pop(k) for k in ("providers", "threads", "optimization") if k in options}
        return universal_stylizer(options.pop("universal_model", None), **load).stylize(image, style=style, **options)
    from fastnst.styles import builtin

    return runtime.stylize(image, builtin.model_path(), style=builtin.DEFAULT_STYLE if style is None else style,
                           **options)


def _builtin_runner(model: Path, style_name: str, resolution: int | None, strength: float) -> Any:
    from fastnst import runtime

    return _file_runner(lambda source: runtime.stylize(source, model, style=style_name, strength=strength),
                        resolution)


def _universal_runner(style: Style, resolution: int | None, strength: float) -> Any:
    from fastnst.runtime.universal import universal_stylizer

    stylizer = universal_stylizer()
    settings = stylizer.settings(strength, style=style.picture())  # the style encoded once, for every photo
    return _file_runner(lambda source: stylizer.render(source, settings), resolution)


def _file_runner(stylize_one: Any, resolution: int | None) -> Any:
    """A photo file -> (RGB PIL image, alpha, ICC) through ``stylize_one`` (a PIL image or path in, PIL out)."""
    from fastnst.image import fit_long_side, read_image, resize

    def run(path: Path) -> tuple[Any, Any, Any]:
        if resolution is None:
            source: Any = path  # the runtime reads it (EXIF orientation, alpha, ICC kept)
        else:
            data = read_image(path)
            checks.pixels(*fit_long_side(data.size, resolution), f"'{path}' at resolution {resolution}")
            source = resize(data.rgb, long_edge=resolution)
            if data.alpha is not None:
                source = source.copy()
                source.putalpha(data.alpha.resize(source.size))
            if data.icc_profile:
                source.info["icc_profile"] = data.icc_profile
        out = stylize_one(source)
        alpha = out.getchannel("A") if out.mode == "RGBA" else None
        return (out.convert("RGB") if alpha is not None else out), alpha, out.info.get("icc_profile")
    return run


def _optimize() -> Any:
    try:
        from fastnst import optimize
    except ImportError as exc:
        from fastnst.errors import MissingDependencyError

        raise MissingDependencyError(f"stylising with a painting or an image ({exc.name} is missing)") from None
    return optimize


def _gatys_settings(options: dict[str, Any]) -> Any:
    """Checked GatysSettings from generate()'s extra keywords (unknown keywords: did-you-mean)."""
    import dataclasses

    O = _optimize()
    fields = [f.name for f in dataclasses.fields(O.GatysSettings)]
    for key in options:
        if key not in fields:
            from fastnst.errors import unknown_choice

            raise unknown_choice("generate() option", key, ["iterations", "device", *fields])
    settings = O.GatysSettings(**options)
    settings.check()
    return settings


def _gatys_runner(style: Style, resolution: int | None, iterations: int | None, device: str | None,
                  settings: Any) -> Any:
    from fastnst.image import read_image

    O = _optimize()
    style_path = style.picture()  # downloads a painting once (after every check above)
    kwargs: dict[str, Any] = {"settings": settings, "device": device}
    if iterations is not None:
        kwargs["iterations"] = iterations

    def run(path: Path) -> tuple[Any, Any, Any]:
        data = read_image(path)
        size = resolution if resolution is not None else min(max(data.size), GATYS_MAX_DEFAULT)
        image = O.gatys(data.rgb, style_path, size=size, **kwargs)
        return image, None, data.icc_profile
    return run
