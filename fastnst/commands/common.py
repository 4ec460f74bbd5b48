"""What every subcommand shares: the parser, flags built from option dataclasses, the progress display, and
running a :mod:`fastnst.batch` function over files with it (``stylize``, ``upscale``).

Torch-free. Flags come from the library's settings dataclasses (see :mod:`fastnst.options`), so a
command never repeats a default, a choice list or a bound.
"""

from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import json
import os
import sys
import time
import typing
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from fastnst.errors import ConfigError
from fastnst.options import base_type, check_value, duration, field_types, flag_name

QUIET_SECONDS = 2.0  # chosen: a job shorter than this needs no progress in a log, its summary line says it all
LOG_EVERY = 5.0  # chosen: off a terminal one progress line every few seconds (a 500-iteration Gatys: ~100 lines)
TTY_EVERY = 0.1  # chosen: a live bar redrawn at most ten times a second


def terminal_columns() -> int:
    """The terminal's width as shutil.get_terminal_size gives it ($COLUMNS, then the stdout terminal, then 80),
    without importing shutil (and with it bz2 and lzma) on every command's start."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter for descriptions with examples; the width comes from :func:`terminal_columns`."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width)


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one FastNSTError line (exit 2 via fastnst.cli), examples kept."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message} (see --help)")


def _converter(f: dataclasses.Field, hint: Any) -> Any:
    """A string -> value function for field ``f`` of type ``hint`` (lists are comma-separated)."""
    hint, _ = base_type(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:  # e.g. Sequence[str] | str: take the first concrete type
        hint = args[0]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (list, tuple) or origin in (list, tuple, collections.abc.Sequence):
        element = _converter(f, args[0]) if args else str
        return lambda text: [element(t.strip()) for t in text.split(",") if t.strip()]
    if hint in (int, float):
        def convert(text: str) -> Any:
            try:
                value = hint(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected {'a whole number' if hint is int else 'a number'}, "
                                                 f"got '{text}'") from None
            try:
                return check_value(f, value)
            except ConfigError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        convert.__name__ = hint.__name__
        return convert
    return str


def add_options(parser: argparse.ArgumentParser, cls: type, *, only: Iterable[str] | None = None,
                skip: Iterable[str] = (), **overrides: Any) -> None:
    """Add a flag for each command-line field of dataclass ``cls`` (``only``/``skip`` select by name).

    ``overrides`` maps a field name to a dict of add_argument keywords that replace the derived ones.
    Booleans become ``--flag`` (default False) or ``--flag/--no-flag`` (default True). Defaults stay
    unset on the namespace (None) so the dataclass default applies; help shows them.
    """
    hints, wanted, skipped = field_types(cls), set(only) if only is not None else None, set(skip)
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True) or f.name in skipped or (wanted is not None and f.name not in wanted):
            continue
        meta = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        hidden = shown is None or shown is False or shown == ""  # 0 and 0.0 are shown
        help_ = meta.get("help", "") + ("" if hidden else f" (default: {shown})")
        names = [n for n in (meta.get("short"), flag_name(f)) if n]
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": help_}
        if base_type(hints[f.name])[0] is bool:
            kw["action"] = argparse.BooleanOptionalAction if default else "store_true"
            kw["default"] = None if default else False
        else:
            kw["type"] = _converter(f, hints[f.name])
            kw["metavar"] = meta.get("metavar")
            if meta.get("choices"):
                kw["choices"] = meta["choices"]
        kw.update(overrides.get(f.name, {}))
        parser.add_argument(*names, **{k: v for k, v in kw.items() if v is not None or k == "default"})


def chosen(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` the user set on the command line (unset flags keep the dataclass default)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


class Progress:
    """The one progress display of fastnst (stderr), fed by the library's progress callbacks: ``update(done,
    total, text)`` after each unit of work (``done`` may be fractional), ``close()`` at the end.

    On a terminal a live bar (``\\r``, at most :data:`TTY_EVERY` apart) with the elapsed time and an ETA. Off a
    terminal (a log) plain lines, never ``\\r``: the first once the job has run :data:`QUIET_SECONDS` (quick jobs
    print nothing), then one every ``every`` seconds (:data:`LOG_EVERY`), and the last unit's line when any was
    shown. The ETA is the mean time per unit since the first report (set-up such as loading a network is not
    a unit) times the units left.

    ``timing=False`` leaves out the elapsed time and ETA (for a caller whose ``text`` says them, e.g. a resumed
    job that knows its own rate).
    """

    def __init__(self, label: str = "", stream: Any = None, every: float | None = None,
                 clock: Callable[[], float] = time.perf_counter, timing: bool = True) -> None:
        self.label, self.stream, self.clock, self.timing = label, stream or sys.stderr, clock, timing
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = (TTY_EVERY if self.tty else LOG_EVERY) if every is None else every
        self.start, self._last, self._open, self.lines = clock(), None, False, 0
        self._first: tuple[float, float] | None = None  # (time, units done) at the first report

    def line(self, done: float, total: int, text: str = "") -> str:
        """What ``update`` shows, without the bar: 'label 3/10 text | 12 s, ETA 28 s'."""
        now = self.clock()
        elapsed = now - self.start
        frac = min(1.0, max(0.0, done / total))
        count = f"{int(done)}/{total}"
        head = " ".join(p for p in (self.label, count, text) if p)
        if not self.timing:
            return head
        if frac >= 1:
            return f"{head} | {duration(elapsed)}"
        if self._first is not None and done > self._first[1] and now > self._first[0]:
            left = (now - self._first[0]) / (done - self._first[1]) * (total - done)
        else:
            left = elapsed / frac - elapsed if frac > 0 else None
        return f"{head} | {duration(elapsed)}, {'ETA unknown' if left is None else 'ETA ' + duration(left)}"

    def update(self, done: float, total: int, text: str = "") -> None:
        if total <= 0:
            return
        now, finished = self.clock(), done >= total
        if self._first is None:
            self._first = (now, done)
        if self.tty:
            if self._last is not None and now - self._last < self.every and not finished:
                return
            bar = "#" * int(min(1.0, done / total) * 20)
            self.stream.write(f"\r\033[K[{bar:<20}] {self.line(done, total, text)}")
            self._open = True
        else:
            due = (now - self.start >= QUIET_SECONDS) if self._last is None else (now - self._last >= self.every)
            if not (due or (finished and self.lines)):
                return
            self.stream.write(self.line(done, total, text) + "\n")
            self.lines += 1
        self._last = now
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def run_batch(function: Any, options: Any, inputs: list[str], as_json: bool = False) -> int:
    """Call a fastnst.batch function with a progress display; print per-file errors (and JSON), then the summary."""
    progress = Progress("")

    def show(record: dict[str, Any]) -> None:
        if "data" in record:
            sys.stdout.buffer.write(record.pop("data"))
            sys.stdout.buffer.flush()
        if "error" in record:
            progress.close()
            print(f"fastnst: error: {record['input']}: {record['error']}", file=sys.stderr, flush=True)
        if as_json:
            print(json.dumps(record), flush=True)

    try:
        report = function(inputs, options, on_item=show, progress=progress.update)
    finally:
        progress.close()
    print("\n".join(report.lines), file=sys.stderr)
    return 0 if report.failed == 0 else 2
