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
import sys
import time
import typing
from collections.abc import Iterable
from typing import Any, NoReturn

from fastnst.errors import ConfigError
from fastnst.options import base_type, check_value, field_types, flag_name

PROGRESS_MIN_IMAGES = 5  # chosen: below this a summary line is enough when stderr is not a terminal


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one FastNSTError line (exit 2 via fastnst.cli), examples kept."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
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
    """Progress on stderr: a live bar on a terminal, else a plain line per ~10% (never ``\\r`` in logs).

    ``update(done, total, text)`` after each unit of work; ``close()`` at the end. Shown only when
    ``total >= min_total`` (or on a terminal). ``timing=False`` leaves out the elapsed time and time left (for
    a caller whose ``text`` says them, e.g. a resumed job that knows its own rate).
    """

    def __init__(self, label: str = "", stream: Any = None, min_total: int = 1, timing: bool = True) -> None:
        self.label, self.stream, self.timing = label, stream or sys.stderr, timing
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_total, self.start, self._decile, self._open = min_total, time.perf_counter(), -1, False

    def update(self, done: int, total: int, text: str = "") -> None:
        if total <= 0 or (not self.tty and total < self.min_total):
            return
        frac = min(1.0, done / total)
        elapsed = time.perf_counter() - self.start
        eta = elapsed / max(frac, 1e-9) - elapsed
        line = f"{self.label}{' ' if self.label else ''}{done}/{total} {text}".rstrip()
        if self.tty:
            bar = "#" * int(frac * 20)
            clock = f" | {elapsed:.1f} s, {eta:.0f} s left" if self.timing else ""
            self.stream.write(f"\r\033[K[{bar:<20}] {line}{clock}")
            self._open = True
        elif int(frac * 10) > self._decile or done == total:
            self._decile = int(frac * 10)
            self.stream.write(f"{line} ({elapsed:.1f} s)\n" if self.timing else f"{line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def run_batch(function: Any, options: Any, inputs: list[str], as_json: bool = False) -> int:
    """Call a fastnst.batch function with a progress display; print per-file errors (and JSON), then the summary."""
    progress = Progress("", min_total=PROGRESS_MIN_IMAGES)

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
