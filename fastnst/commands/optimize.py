"""``fastnst gatys|invert|texture|dream``: parse, check, call one function of :mod:`fastnst.optimize`.

Progress goes to stderr (a live bar on a terminal, a line every 10% otherwise); the result summary
goes to stdout (``--json`` for a machine-readable one). Errors raise FastNSTError, which
:mod:`fastnst.cli` turns into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from fastnst.errors import ConfigError, InputError

EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one FastNSTError line instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message} (see --help)")


# ------------------------------------------------------------------------------------------- arguments

def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(t) for t in _csv(text)]
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers, got '{text}'") from None
    if not values:
        raise ConfigError(f"{what} is empty; give comma-separated numbers")
    return values


def _add_common(p: argparse.ArgumentParser, default_iterations: int, size_help: str, size_default: Any) -> None:
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp, ...)")
    p.add_argument("--net", default="vgg19", choices=("vgg19", "vgg16"), help="loss network (default vgg19: paper)")
    p.add_argument("--pooling", default="max", choices=("max", "avg"),
                   help="VGG pooling (default max, as neural-style; the Gatys paper prefers avg)")
    p.add_argument("--iterations", type=int, default=default_iterations,
                   help=f"loss evaluations (per scale/octave where there are several; default {default_iterations})")
    p.add_argument("--size", default=size_default, help=size_help)
    p.add_argument("--seed", type=int, default=0, help="random seed for noise and jitter (default 0)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)")
    p.add_argument("--vgg-weights", default=None,
                   help="imagenet | random | PATH to a torchvision VGG state dict (default: $FASTNST_VGG_WEIGHTS "
                        "or imagenet; random is for tests only)")
    p.add_argument("--vgg-normalize", nargs="?", const="mean", default=None, choices=("rms", "mean", "none"),
                   help="loss-network normalisation: rms (gatys/texture default: one loss scale for any VGG "
                        "weights), mean (Gatys' normalised VGG; the bare flag) or none (invert/dream default: "
                        "their losses are scale-free already)")
    p.add_argument("--normalize-images", metavar="DIR", default=None,
                   help="folder of images for the normalisation statistics (default: fastnst's bundled photos); "
                        "statistics are cached")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _add_optimizer(p: argparse.ArgumentParser) -> None:
    p.add_argument("--optimizer", default="lbfgs", choices=("lbfgs", "adam"), help="default lbfgs (paper)")
    p.add_argument("--lr", type=float, default=None, help="step size (Adam default 0.04; L-BFGS default 1)")


def _add_style_loss(p: argparse.ArgumentParser, *, texture: bool = False) -> None:
    from fastnst.optimize import GATYS_STYLE_WEIGHT, GATYS_TV_WEIGHT

    p.add_argument("--style", action="extend", nargs="+", required=True, metavar="S",
                   help="style image(s) or names (a painting such as starry_night, downloaded once; a generated "
                        "style such as mosaic); repeat or list several to blend them")
    p.add_argument("--style-layers", default="relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
                   help="comma-separated style layers (default: paper's relu1_1..relu5_1)")
    p.add_argument("--style-layer-weights", default=None, help="one weight per style layer (default: all 1)")
    p.add_argument("--style-weight", type=float, default=GATYS_STYLE_WEIGHT, help=f"default {GATYS_STYLE_WEIGHT:g}")
    p.add_argument("--tv-weight", type=float, default=GATYS_TV_WEIGHT, help=f"default {GATYS_TV_WEIGHT:g} (paper)")
    p.add_argument("--style-blend", default=None, help="comma-separated weights, one per style image")
    p.add_argument("--style-scale", type=float, default=1.0,
                   help="style image long side relative to the output's (default 1.0)")
    p.add_argument("--style-stat", default="gram", choices=("gram", "covariance"), help="default gram (paper)")
    p.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="also write OUTPUT-stem-NNNN.ext every N iterations (kept if interrupted)")


def _normalize_dir(args: argparse.Namespace, default: str = "none") -> str | None:
    """The VGG normalisation for build_vgg / GatysSettings: a choice name, or (mean over a user folder,
    for invert and dream) that folder."""
    if args.normalize_images and not os.path.isdir(args.normalize_images):
        raise InputError(f"--normalize-images '{args.normalize_images}' is not a folder")
    choice = args.vgg_normalize or default
    if args.normalize_images and default == "none":  # invert, dream: a folder means Gatys' mean over it
        if choice == "rms":
            raise ConfigError("--normalize-images with invert/dream takes --vgg-normalize mean (or no --vgg-normalize)")
        return args.normalize_images
    return choice


def _int_size(text: Any, flag: str = "--size") -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} must be a positive integer, got '{text}'") from None
    if value <= 0:
        raise ConfigError(f"{flag} must be a positive integer, got {value}")
    from fastnst import checks

    return checks.side(flag, value)  # its square under the pixel cap


def _prepare_output(args: argparse.Namespace, inputs: Sequence[Any], output: Any = None) -> Path:
    """Check the output before any work: not empty, a known image format, not one of the inputs (even with
    --overwrite), writable; also caps torch's threads at the CPUs available (fastnst.checks)."""
    from fastnst import checks
    from fastnst.fileio import check_output
    from fastnst.image import output_format

    output = args.output if output is None else output
    if not str(output).strip():
        raise ConfigError("-o/--output is empty; give an image file name such as out.png")
    output_format(output)  # out.xyz: refused now, not after the optimisation
    files = [i for i in inputs if isinstance(i, (str, os.PathLike)) and str(i) not in ("noise", "content", "style")]
    out = check_output(output, args.overwrite, inputs=files)
    _cap_threads(checks)
    return out


def _cap_threads(checks: Any) -> None:
    import torch

    cpus = checks.available_cpus()
    if torch.get_num_threads() > cpus:
        torch.set_num_threads(cpus)


def _check_memory(args: argparse.Namespace, side: int, what: str, flag: str = "--size", images: int = 1) -> None:
    """Refuse an optimisation whose estimated memory does not fit (side x side is the upper bound)."""
    from fastnst import checks

    device = "cuda" if str(args.device).startswith("cuda") else "cpu"
    checks.optimize_size(side, side, what, flag, device, images)
    scale = getattr(args, "style_scale", None)
    if scale is not None and what != "the style":  # the style image is resized to style_scale x the output
        if not 0 < scale <= 64:
            raise ConfigError(f"--style-scale must be above 0 and at most 64, got {scale:g}")
        style_side = max(1, int(round(side * scale)))
        checks.pixels(style_side, style_side, f"the style image at --style-scale {scale:g}",
                      "use a smaller --style-scale or --size")
        checks.memory(checks.FORWARD_BYTES_PER_PIXEL * style_side * style_side * max(1, len(args.style)),
                      f"the style image at {style_side} px", "use a smaller --style-scale or --size", device)


def _check_iterations(n: int) -> int:
    if n <= 0:
        raise ConfigError(f"--iterations must be at least 1, got {n}")
    return n


# ------------------------------------------------------------------------------------------- output

def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _terms_text(terms: dict[str, float], detailed: bool = False) -> str:
    keys = [k for k in terms if detailed or "/" not in k]
    return "  ".join(f"{k} {_fmt(terms[k])}" for k in keys)


class ProgressBar:
    """A one-line progress bar on stderr with the loss terms; plain lines when stderr is not a terminal."""

    def __init__(self, label: str, stream: Any = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last_step = -1
        self.t0 = time.perf_counter()

    def __call__(self, p: Any) -> None:
        frac = p.iteration / max(1, p.total)
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / max(frac, 1e-9) - elapsed
        scale = f" scale {p.scale}/{p.scales} {p.size[0]}x{p.size[1]}" if p.scales > 1 else ""
        rate = f"{elapsed / max(1, p.iteration):.2f}s/it"
        text = (f"{self.label}{scale} {p.iteration}/{p.total} "
                f"{_terms_text(p.terms)} | {rate} {int(eta) // 60}:{int(eta) % 60:02d} left")
        if self.tty:
            width = 20
            filled = int(round(frac * width))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r\033[K[{bar}] {text}")
            if p.iteration >= p.total:
                self.stream.write("\n")
            self.stream.flush()
        else:
            step = math.floor(frac * 10)
            if step != self.last_step or p.iteration == p.total:
                self.last_step = step
                self.stream.write(text + "\n")
                self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _numbered(out: Path, n: int) -> Path:
    return out.with_name(f"{out.stem}-{n:04d}{out.suffix}")


def _summary(args: argparse.Namespace, result: Any, outputs: list[str], task: str, **extra: Any) -> int:
    from fastnst.optimize import OptimizationResult

    assert isinstance(result, OptimizationResult)
    if args.json:
        doc = {"task": task, "outputs": outputs, "size": list(result.image.size), "iterations": result.iterations,
               "seconds": round(result.seconds, 3), "sizes": [list(s) for s in result.sizes],
               "loss": result.terms, **extra}
        print(json.dumps(doc, indent=2))
    else:
        w, h = result.image.size
        print(f"wrote {', '.join(outputs)} ({w}x{h}) after {result.iterations} iterations in {result.seconds:.1f} s")
        print(f"final: {_terms_text(result.terms, detailed=True)}")
    return 0


def _run_interruptible(run: Callable[[], Any], saved: list[Path], bar: ProgressBar) -> Any:
    try:
        return run()
    except KeyboardInterrupt:
        bar.close()
        if saved:
            print(f"fastnst: interrupted; the last intermediate image is {saved[-1]}", file=sys.stderr)
        else:
            print("fastnst: interrupted before any image was saved (use --save-every N to keep intermediate images)",
                  file=sys.stderr)
        raise _Interrupted() from None


class _Interrupted(Exception):
    """Ctrl-C during optimisation; the message has been printed."""


def _interruptible(main: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
    """Turn Ctrl-C during the optimisation into exit code 130 (after saying where the last image is)."""
    def wrapper(argv: list[str]) -> int:
        try:
            return main(argv)
        except _Interrupted:
            return EXIT_INTERRUPTED
    wrapper.__name__, wrapper.__doc__ = main.__name__, main.__doc__
    return wrapper


def _saver(out: Path, every: int, overwrite: bool, saved: list[Path],
           inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    from fastnst.image import save_image

    def callback(p: Any) -> None:
        inner(p)
        if every and p.iteration % every == 0:
            path = _numbered(out, p.iteration)
            save_image(p.image(), path, overwrite=True if overwrite else path in saved)
            saved.append(path)
    return callback


def _check_intermediates(out: Path, every: int, total: int, overwrite: bool) -> None:
    if every < 0:
        raise ConfigError(f"--save-every must be 0 (off) or positive, got {every}")
    if not every or overwrite:
        return
    for n in range(every, total + 1, every):
        if _numbered(out, n).exists():
            raise ConfigError(f"intermediate image '{_numbered(out, n)}' exists; pass --overwrite or choose another "
                              f"output name")


# ------------------------------------------------------------------------------------------- commands

@_interruptible
def main_gatys(argv: list[str]) -> int:
    """``fastnst gatys --content C --style S [--style S2 ...] -o OUT``."""
    from fastnst import optimize as O

    p = _Parser(prog="fastnst gatys", description="Style transfer by optimising the image (Gatys et al. 2016).")
    p.add_argument("--content", required=True, help="content image")
    _add_style_loss(p)
    p.add_argument("--content-layers", default="relu4_2", help="comma-separated content layers (default relu4_2: paper)")
    p.add_argument("--content-weight", type=float, default=O.GATYS_CONTENT_WEIGHT,
                   help=f"default {O.GATYS_CONTENT_WEIGHT:g}")
    p.add_argument("--init", default="content", help="content | noise | style | PATH (default content)")
    _add_optimizer(p)
    p.add_argument("--scales", type=int, default=1,
                   help="coarse-to-fine scales, each twice the previous size (default 1)")
    p.add_argument("--original-colors", action="store_true", help="keep the content's colours (luminance transfer)")
    _add_common(p, O.GATYS_ITERATIONS, "long side of the output in pixels (default 512)", O.GATYS_SIZE)
    args = p.parse_args(argv)

    from fastnst.image import save_image

    out = _prepare_output(args, [args.content, *args.style, args.init])
    iterations = _check_iterations(args.iterations)
    _check_memory(args, _int_size(args.size), "the image")
    if args.scales < 1:
        raise ConfigError(f"--scales must be at least 1, got {args.scales}")
    _check_intermediates(out, args.save_every, iterations * args.scales, args.overwrite)
    settings = _style_settings(O, args, content_layers=args.content_layers, content_weight=args.content_weight)
    args.style = _resolve_styles(args.style)
    bar = ProgressBar("gatys")
    saved: list[Path] = []
    cb = _saver(out, args.save_every, args.overwrite, saved, bar)
    result = _run_interruptible(lambda: O.gatys_result(
        args.content, args.style, settings=settings, init=args.init, optimizer=args.optimizer,
        iterations=iterations, lr=args.lr, size=_int_size(args.size), scales=args.scales,
        original_colors=args.original_colors, seed=args.seed, device=args.device, callback=cb), saved, bar)
    save_image(result.image, out, overwrite=args.overwrite)
    return _summary(args, result, [str(out)], "gatys",
                    intermediates=[str(s) for s in saved])


def _resolve_styles(styles: list[str]) -> list[str]:
    """Style files for --style values: files as given, painting names downloaded once, generated names made."""
    from fastnst.styles.paintings import resolve_style

    return [str(resolve_style(s)) for s in styles]


def _style_settings(O: Any, args: argparse.Namespace, content_layers: Any, content_weight: float) -> Any:
    """The checked loss settings of gatys and texture (texture: no content term) from parsed flags."""
    settings = O.GatysSettings(
        net=args.net, content_layers=content_layers, style_layers=args.style_layers,
        style_layer_weights=None if args.style_layer_weights is None else
        _floats(args.style_layer_weights, "--style-layer-weights"),
        content_weight=content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
        style_blend=None if args.style_blend is None else _floats(args.style_blend, "--style-blend"),
        style_scale=args.style_scale, pooling=args.pooling, style_stat=args.style_stat,
        vgg_weights=args.vgg_weights, vgg_normalize=_normalize_dir(args, O.DEFAULT_VGG_NORMALIZE),
        normalize_images=args.normalize_images)
    settings.check()
    settings.check_blend(len(args.style))
    return settings


@_interruptible
def main_texture(argv: list[str]) -> int:
    """``fastnst texture --style S -o OUT [--size 512 | --size 768x256]``."""
    from fastnst import optimize as O

    p = _Parser(prog="fastnst texture", description="Texture synthesis from style statistics (Gatys et al. 2015).")
    _add_style_loss(p, texture=True)
    p.add_argument("--init", default="noise", help="noise | style | PATH (default noise: paper)")
    _add_optimizer(p)
    _add_common(p, O.TEXTURE_ITERATIONS, "output size: N (square) or WxH (default 256)", "256")
    args = p.parse_args(argv)

    from fastnst import checks
    from fastnst.image import save_image

    out = _prepare_output(args, [*args.style, args.init])
    iterations = _check_iterations(args.iterations)
    text = str(args.size).lower()
    if "x" in text:
        w_s, _, h_s = text.partition("x")
        size: Any = (_int_size(w_s), _int_size(h_s))
        checks.pixels(size[0], size[1], "the texture", "use a smaller --size")
        _check_memory(args, max(size), "the texture")
    else:
        size = _int_size(text)
        _check_memory(args, size, "the texture")
    _check_intermediates(out, args.save_every, iterations, args.overwrite)
    settings = _style_settings(O, args, content_layers=args.style_layers, content_weight=0.0)
    args.style = _resolve_styles(args.style)
    bar = ProgressBar("texture")
    saved: list[Path] = []
    cb = _saver(out, args.save_every, args.overwrite, saved, bar)
    result = _run_interruptible(lambda: O.texture_result(
        args.style, size, settings=settings, iterations=iterations, optimizer=args.optimizer, lr=args.lr,
        init=args.init, seed=args.seed, device=args.device, callback=cb), saved, bar)
    save_image(result.image, out, overwrite=args.overwrite)
    return _summary(args, result, [str(out)], "texture", intermediates=[str(s) for s in saved])


@_interruptible
def main_invert(argv: list[str]) -> int:
    """``fastnst invert --image X --layer relu3_3 -o OUT`` (or ``--layers a,b,c [--grid]``)."""
    from fastnst import optimize as O

    p = _Parser(prog="fastnst invert",
                description="Reconstruct an image from one layer's activations (Mahendran & Vedaldi 2015).")
    p.add_argument("--image", required=True, help="image whose features are inverted")
    p.add_argument("--layer", default=None, help="layer to invert (default relu3_3)")
    p.add_argument("--layers", default=None,
                   help="several layers, comma-separated: writes OUTPUT-stem-LAYER.ext for each")
    p.add_argument("--grid", action="store_true",
                   help="with --layers: also write OUTPUT as the image and its reconstructions side by side")
    p.add_argument("--init", default="noise", help="noise | PATH: start from another image (default noise)")
    p.add_argument("--tv-weight", type=float, default=O.INVERT_TV_WEIGHT, help=f"default {O.INVERT_TV_WEIGHT:g}")
    _add_optimizer(p)
    _add_common(p, O.INVERT_ITERATIONS, "long side in pixels (default 256)", 256)
    args = p.parse_args(argv)

    from fastnst.fileio import check_output
    from fastnst.image import load_rgb, make_grid, resize, save_image
    from fastnst.networks.vgg import check_layers

    if args.layer and args.layers:
        raise ConfigError("give --layer or --layers, not both")
    if args.grid and not args.layers:
        raise ConfigError("--grid needs --layers a,b,c")
    layers = check_layers(args.layers or args.layer or "relu3_3", args.net)
    if not str(args.output).strip():
        raise ConfigError("-o/--output is empty; give an image file name such as out.png")
    out = Path(args.output)
    targets = [out.with_name(f"{out.stem}-{name}{out.suffix}") for name in layers] if args.layers else [out]
    if args.grid:
        targets.append(out)
    for t in targets:
        _prepare_output(args, [args.image, args.init], output=t)
    iterations = _check_iterations(args.iterations)
    size = _int_size(args.size)
    _check_memory(args, size, "the image")
    image = load_rgb(args.image)
    init = args.init if args.init == "noise" else load_rgb(args.init)
    normalize = _normalize_dir(args)
    for name in layers:
        O._check_size(O.fit_size(image.size, size), [name], args.net, "image size")
    dev = O.resolve_device(args.device)
    vgg = O.build_vgg(layers, args.net, args.vgg_weights, args.pooling, normalize, dev)
    results = []
    saved: list[Path] = []
    for i, name in enumerate(layers):
        bar = ProgressBar(f"invert {name}" + (f" ({i + 1}/{len(layers)})" if len(layers) > 1 else ""))
        r = _run_interruptible(lambda: O.invert_result(
            image, name, net=args.net, init=init, iterations=iterations, optimizer=args.optimizer, lr=args.lr,
            tv_weight=args.tv_weight, size=size, seed=args.seed, device=dev, callback=bar, vgg=vgg), saved, bar)
        results.append(r)
        if args.layers:
            save_image(r.image, targets[i], overwrite=args.overwrite)
            saved.append(targets[i])
    if not args.layers:
        save_image(results[0].image, out, overwrite=args.overwrite)
        saved.append(out)
    if args.grid:
        cells = [resize(image, size=results[0].image.size)] + [r.image for r in results]
        save_image(make_grid(cells), out, overwrite=args.overwrite)
        saved.append(out)
    if args.json:
        print(json.dumps({"task": "invert", "outputs": [str(s) for s in saved],
                          "layers": {name: {"loss": r.terms, "start_loss": r.extra["start_terms"],
                                            "iterations": r.iterations, "seconds": round(r.seconds, 3)}
                                     for name, r in zip(layers, results)}}, indent=2))
    else:
        for name, r in zip(layers, results):
            print(f"{name}: feature loss {_fmt(r.extra['start_terms']['feature'])} -> {_fmt(r.terms['feature'])} "
                  f"(tv {_fmt(r.terms['tv'])}) in {r.iterations} iterations, {r.seconds:.1f} s")
        print(f"wrote {', '.join(str(s) for s in saved)}")
    return 0


@_interruptible
def main_dream(argv: list[str]) -> int:
    """``fastnst dream --image X --layer relu4_3 -o OUT``."""
    from fastnst import optimize as O

    p = _Parser(prog="fastnst dream", description="DeepDream: amplify what a layer sees, octave by octave.")
    p.add_argument("--image", required=True, help="starting image")
    p.add_argument("--layer", default="relu4_3", help="layer whose activations are amplified (default relu4_3)")
    p.add_argument("--octaves", type=int, default=O.DREAM_OCTAVES, help=f"default {O.DREAM_OCTAVES} (deepdream notebook)")
    p.add_argument("--octave-scale", type=float, default=O.DREAM_OCTAVE_SCALE,
                   help=f"size ratio between octaves (default {O.DREAM_OCTAVE_SCALE})")
    p.add_argument("--step", type=float, default=O.DREAM_STEP,
                   help=f"step per iteration in [0,1] pixel units (default {O.DREAM_STEP:.4g} = 1.5/255)")
    p.add_argument("--jitter", type=int, default=O.DREAM_JITTER, help=f"random shift in pixels (default {O.DREAM_JITTER})")
    _add_common(p, O.DREAM_ITERATIONS, "long side in pixels (default 512)", 512)
    args = p.parse_args(argv)

    from fastnst.image import save_image

    out = _prepare_output(args, [args.image])
    iterations = _check_iterations(args.iterations)
    _check_memory(args, _int_size(args.size), "the image")
    if args.octaves < 1 or args.octaves > 32:
        raise ConfigError(f"--octaves must be between 1 and 32, got {args.octaves}")
    if abs(args.jitter) > 4096:
        raise ConfigError(f"--jitter must be at most 4096 pixels, got {args.jitter}")
    bar = ProgressBar(f"dream {args.layer}")
    result = _run_interruptible(lambda: O.dream_result(
        args.image, args.layer, net=args.net, octaves=args.octaves, octave_scale=args.octave_scale,
        iterations=iterations, step=args.step, jitter=args.jitter, size=_int_size(args.size),
        pooling=args.pooling, vgg_weights=args.vgg_weights, vgg_normalize=_normalize_dir(args), seed=args.seed,
        device=args.device, callback=bar), [], bar)
    save_image(result.image, out, overwrite=args.overwrite)
    return _summary(args, result, [str(out)], "dream", layer=args.layer)


__all__: Sequence[str] = ("main_gatys", "main_invert", "main_texture", "main_dream")
