"""``fastnst gatys|invert|texture|dream``: parse, call :func:`fastnst.optimize.run_job`, print.

Flags come from the job dataclasses of :mod:`fastnst.optimize.jobs`. Each step the library reports
(:class:`fastnst.optimize.Step`) goes to the one progress display (stderr), the summary to
stdout (``--json`` for a machine-readable one); Ctrl-C exits with 130 after naming the last
intermediate image. Errors raise FastNSTError, which :mod:`fastnst.cli` turns into one line and exit 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from fastnst.commands.common import Parser, Progress, add_options, chosen
from fastnst.errors import OptimizationInterrupted

EXIT_INTERRUPTED = 130


def _main(task: str, argv: list[str]) -> int:
    from fastnst import optimize as O

    cls = O.JOBS[task]
    p = Parser(prog=f"fastnst {task}", description=cls.DESCRIPTION)
    add_options(p, cls, skip=cls.SKIP, **cls.CLI)
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    args = p.parse_args(argv)
    progress = Progress(task)
    try:
        report = O.run_job(cls(**chosen(args, cls)), lambda s: progress.update(s.iteration, s.total, s.text()))
    except OptimizationInterrupted as exc:
        progress.close()
        print(f"fastnst: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    progress.close()
    print(json.dumps(report.summary(), indent=2) if args.json else report.text())
    return 0


def main_gatys(argv: list[str]) -> int:
    """``fastnst gatys --content C --style S [--style S2 ...] -o OUT``."""
    return _main("gatys", argv)


def main_texture(argv: list[str]) -> int:
    """``fastnst texture --style S -o OUT [--size 512 | --size 768x256]``."""
    return _main("texture", argv)


def main_invert(argv: list[str]) -> int:
    """``fastnst invert --image X --layer relu3_3 -o OUT`` (or ``--layers a,b,c [--grid]``)."""
    return _main("invert", argv)


def main_dream(argv: list[str]) -> int:
    """``fastnst dream --image X --layer relu4_3 -o OUT``."""
    return _main("dream", argv)


__all__: Sequence[str] = ("main_gatys", "main_invert", "main_texture", "main_dream")
