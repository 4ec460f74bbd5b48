"""Options declared once: a dataclass field carries its default, help, choices and bounds.

A settings dataclass (``GatysSettings``, ``StylizeOptions``, ...) declares each option with
:func:`option`; the library checks an instance with :func:`check_options` before long work starts,
and ``fastnst.commands.common.add_options`` builds the command-line flags from the same fields, so a
new option, its bounds and its help are one edit. Torch-free.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Sequence
from typing import Any

from fastnst.errors import ConfigError, unknown_choice


def option(default: Any = dataclasses.MISSING, help: str = "", *, choices: Sequence[str] | None = None,
           low: float | None = None, high: float | None = None, above: float | None = None,
           flag: str | None = None, short: str | None = None, metavar: str | None = None,
           cli: bool = True, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with command-line metadata.

    ``low``/``high`` are inclusive bounds, ``above`` an exclusive lower bound; ``choices`` the allowed
    strings; ``flag`` overrides the flag name (default ``--name-with-dashes``); ``cli=False`` keeps the
    field out of the command line.
    """
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "low": low, "high": high,
            "above": above, "flag": flag, "short": short, "metavar": metavar, "cli": cli}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag_name(f: dataclasses.Field) -> str:
    """The command-line flag of field ``f`` (``--content-weight`` for ``content_weight``)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of dataclass ``cls`` (string annotations evaluated)."""
    return typing.get_type_hints(cls)


def base_type(hint: Any) -> tuple[Any, bool]:
    """(the non-None type of ``hint``, whether None is allowed); lists/tuples give their element type's origin."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        rest = [a for a in args if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]
    return hint, optional


def check_value(f: dataclasses.Field, value: Any) -> Any:
    """``value`` checked against field ``f``'s choices and bounds; returns it (numbers as float/int)."""
    meta, name = f.metadata, flag_name(f)
    if value is None:
        return value
    if meta.get("choices") and isinstance(value, str):
        if value not in meta["choices"]:
            raise unknown_choice(name, value, meta["choices"])
        return value
    bounds = [meta.get(k) for k in ("low", "high", "above")]
    if all(b is None for b in bounds) or isinstance(value, (str, bytes)):
        return value
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    for v in values:
        try:
            number = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {v!r}") from None
        if isinstance(v, bool) or math.isnan(number) or math.isinf(number):
            raise ConfigError(f"{name} must be a finite number, got {v!r}")
        low, high, above = bounds
        if (low is not None and number < low) or (high is not None and number > high) or \
                (above is not None and number <= above):
            lo = f">= {low:g}" if low is not None else f"> {above:g}" if above is not None else ""
            hi = f"<= {high:g}" if high is not None else ""
            raise ConfigError(f"{name} must be {' and '.join(x for x in (lo, hi) if x)}, got {v}")
    return value


def check_options(obj: Any) -> Any:
    """Check every field of dataclass instance ``obj`` against its declared choices and bounds; returns ``obj``."""
    for f in dataclasses.fields(obj):
        check_value(f, getattr(obj, f.name))
    return obj


def defaults(cls: type) -> dict[str, Any]:
    """Field name -> default of dataclass ``cls`` (fields without a default are left out)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def duration(seconds: float) -> str:
    """A duration for people: '8 s', '3 min 05 s', '1 h 02 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
