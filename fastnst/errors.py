"""Errors for users: each message says what is wrong and what to do, on one line.

The CLI maps every :class:`FastNSTError` to one line on stderr and exit code 2. The library raises
them and never prints or exits.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable


class FastNSTError(Exception):
    """Base class: a problem with the user's input, options or environment (not a bug)."""

    exit_code = 2


class InputError(FastNSTError):
    """A missing, unreadable, corrupt or unsupported input file, or an impossible input value."""


class ConfigError(FastNSTError):
    """An impossible option: unknown layer or preset name, non-positive size, negative weight, ..."""


class OutputExistsError(FastNSTError):
    """The output exists and overwriting was not asked for."""


class WeightsUnavailableError(FastNSTError):
    """Loss-network weights cannot be loaded (offline, missing or wrong file)."""


class ModelFormatError(FastNSTError):
    """A model file of the wrong kind (not ONNX / not a fastnst checkpoint / wrong signature)."""


class MissingDependencyError(FastNSTError):
    """An optional extra is not installed."""

    def __init__(self, what: str, extra: str = "train") -> None:
        super().__init__(f"{what} needs the '{extra}' extra, which is not installed; "
                         f"install it with: pip install 'fastnst[{extra}]'")
        self.extra = extra


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix for the closest choice, or '' when none is close."""
    # Best similarity ratio first; ties go to the longest common prefix, then the later choice (relu2_3 -> relu2_2).
    scored = [(difflib.SequenceMatcher(None, name, c).ratio(), len(os.path.commonprefix([name, c])), i, c)
              for i, c in enumerate(choices)]
    best = max(scored, default=None)
    return f" (did you mean '{best[3]}'?)" if best and best[0] >= 0.6 else ""


def unknown_choice(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """A ConfigError for an unknown name, listing the valid ones and suggesting the closest."""
    choices = list(choices)
    return ConfigError(f"unknown {kind} '{name}'{did_you_mean(name, choices)}; "
                       f"valid: {', '.join(choices)}")
