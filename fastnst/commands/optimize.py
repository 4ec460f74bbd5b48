"""``fastnst gatys|invert|texture|dream``: parse, call :func:`fastnst.optimize.run_job`, print.

Flags come from the job dataclasses of :mod:`fastnst.optimize.jobs`. Each step the library reports
(:class:`fastnst.optimize.Step`) goes to the one progress display (stderr), the summary to
stdout (``--json`` for a machine-readable one); Ctrl-C or SIGTERM keeps the current image (named
``OUT-interrupted-NNNN``), says so and exits with 130. ``gatys`` takes its content image positionally too
(``fastnst gatys photo.jpg --style s.jpg``), ``invert`` and ``dream`` their image. Errors raise FastNSTError, which :mod:`fastnst.cli` turns into one line and exit 2.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

from fastnst.commands.common import Parser, Progress, add_options, chosen
from fastnst.errors import ConfigError, OptimizationInterrupted

EXIT_INTERRUPTED = 130


def _main(task: str, argv: list[str]) -> int:
    from fastnst import optimize as O

    cls = O.JOBS[task]
    p = Parser(prog=f"fastnst {task}", description=cls.DESCRIPTION)
    if cls.POSITIONAL:  # `fastnst gatys photo.jpg --style s.jpg`, as `fastnst stylize photo.jpg` (the flag stays)
        p.add_argument("positional", nargs="?", metavar=cls.POSITIONAL.upper(),
                       help=f"the {cls.POSITIONAL} image (or --{cls.POSITIONAL})")
    add_options(p, cls, skip=cls.SKIP, **cls.CLI)
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    args = p.parse_args(argv)
    options = chosen(args, cls)
    given = getattr(args, "positional", None)
    if given is not None:
        if options.get(cls.POSITIONAL) not in (None, given):
            raise ConfigError(f"two {cls.POSITIONAL} images: '{given}' and --{cls.POSITIONAL} "
                              f"'{options[cls.POSITIONAL]}'; give one")
        options[cls.POSITIONAL] = given
    progress = Progress(task)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # kill PID: keep the current image, as Ctrl-C does
    try:
        report = O.run_job(cls(**options), lambda s: progress.update(s.iteration, s.total, s.text()))
    except OptimizationInterrupted as exc:
        progress.close()
        print(f"fastnst: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    progress.close()
    print(json.dumps(report.summary(), indent=2) if args.json else report.text())
    return 0


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main_gatys(argv: list[str]) -> int:
    """``fastnst gatys CONTENT --style S [--style S2 ...] -o OUT`` (or ``--content C``)."""
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
