"""``fastnst vgg import SRC -o OUT.safetensors``: loss-network weights from other frameworks.

Parses, calls :func:`fastnst.networks.vgg_import.import_vgg`, prints one summary line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from fastnst.commands.common import Parser
from fastnst.errors import ConfigError


def main(argv: Sequence[str]) -> int:
    from fastnst.networks.vgg_import import CONVENTIONS, IMPORT_HELP, import_vgg

    p = Parser(prog="fastnst vgg", description="Loss-network (VGG) weights.")
    sub = p.add_subparsers(dest="action", metavar="import", parser_class=Parser)
    imp = sub.add_parser("import", help="convert VGG16/VGG19 weights into fastnst's convention",
                         description=IMPORT_HELP,
                         formatter_class=argparse.HelpFormatter)  # the description wrapped
    imp.add_argument("source", help="the file to read")
    imp.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    imp.add_argument("--convention", choices=CONVENTIONS, default=None,
                     help="the source's input convention: caffe (BGR, 0-255, mean-subtracted: Caffe and Keras VGG) "
                          "or torchvision (RGB [0,1], ImageNet mean/std); detected where the file says, required "
                          "otherwise")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = p.parse_args(list(argv))
    if args.action != "import":
        raise ConfigError("fastnst vgg: name an action: fastnst vgg import SRC -o OUT.safetensors")
    print(import_vgg(args.source, args.output, convention=args.convention, overwrite=args.overwrite).summary())
    return 0
