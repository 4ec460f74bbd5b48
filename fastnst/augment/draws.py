"""Which style and strength each row gets: drawn from the seed and the row's identity. Torch-free.

A row's draw is a pure function of ``(seed, key)``: two uniform numbers from a BLAKE2b hash of the seed and
the row's key pick a style (by weight) and a strength (uniform in the range). The same row therefore gets
the same style on any machine, with any engine and any number of workers, and a resumed job draws exactly
what an uninterrupted one would.

Styles (``--styles``) are looked up in the one style registry (:func:`fastnst.styles.registry.lookup`):

- a built-in style name (``mosaic``; ``fastnst styles`` lists them) runs the shipped multi-style model;
- an image file, a folder of image files (each file one style, with the folder's weight), a painting
  name or a generated style name is a *style picture*: it needs the universal (any-painting) model, see
  :mod:`fastnst.augment.render`;
- ``NAME:WEIGHT`` gives a weight (default 1); weights are relative (``mosaic:3,halftone:1`` draws
  mosaic three times as often).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastnst.errors import ConfigError

# In the hash input: a change of the drawing scheme changes this number (old outputs stay explainable).
DRAW_VERSION = 1
# Strengths drawn from a range are rounded to this many decimals (the recorded value is the one used).
STRENGTH_DECIMALS = 3
BUILTIN = "builtin"  # fastnst.styles.registry.BUILTIN (kept as text here: the registry is imported lazily)

StylesSpec = str | os.PathLike | Sequence[str | os.PathLike] | Mapping[str, float] | None
StrengthSpec = float | str | Sequence[float]


@dataclass(frozen=True)
class StyleChoice:
    """One style a row may get: the ``name`` rows record, the registry ``kind`` ('builtin', 'file',
    'painting', 'generated'), its relative ``weight``, and for a style picture its file (``picture``,
    absolute; made or downloaded when the job is checked)."""

    name: str
    kind: str
    weight: float = 1.0
    picture: str | None = None

    @property
    def builtin(self) -> bool:
        """Whether the style runs on the shipped multi-style model (else it is a style picture)."""
        return self.kind == BUILTIN


def _split_weight(item: str) -> tuple[str, float]:
    """'name:2.5' -> ('name', 2.5); 'name' -> ('name', 1.0). A colon followed by no number is part of the name."""
    head, sep, tail = item.rpartition(":")
    if sep and head:
        try:
            return head.strip(), float(tail)
        except ValueError:
            pass
    return item.strip(), 1.0


def _items(spec: StylesSpec) -> list[tuple[str, float]]:
    if isinstance(spec, Mapping):
        return [(str(k), float(v)) for k, v in spec.items()]
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if Path(text).exists():  # a path that holds a comma is still one path
            return [(text, 1.0)]
        return [_split_weight(t) for t in text.split(",") if t.strip()]
    return [_split_weight(os.fspath(t)) if not Path(os.fspath(t)).exists() else (os.fspath(t), 1.0) for t in spec]


def parse_styles(spec: StylesSpec = None) -> tuple[StyleChoice, ...]:
    """The styles of ``spec`` (see the module docstring), in a fixed order; None means every built-in style,
    equally likely. Raises ConfigError for an unknown name (with a suggestion), a bad weight, a style listed
    twice or an empty list; InputError for a missing file or a folder without images. Style pictures are
    not made or downloaded here (:func:`fastnst.augment.render.check_pictures` does it)."""
    from fastnst.image import find_images
    from fastnst.styles import builtin, registry

    if spec is None:
        return tuple(StyleChoice(name, BUILTIN) for name in builtin.names())
    choices: list[StyleChoice] = []
    for name, weight in _items(spec):
        if not name:
            continue
        if not math.isfinite(weight) or weight <= 0:
            raise ConfigError(f"style weight must be a positive number, got '{name}:{weight:g}'")
        path = Path(name).expanduser()
        if path.is_dir():  # each picture of the folder is one style, named folder/file as given
            for file in find_images(path):
                rel = file.relative_to(path).as_posix()
                choices.append(StyleChoice(f"{name.rstrip('/')}/{rel}", registry.FILE, weight, str(file.resolve())))
            continue
        style = registry.lookup(name)
        if style.kind == registry.FILE:
            choices.append(StyleChoice(name, style.kind, weight, str(Path(name).expanduser().resolve())))
        else:
            choices.append(StyleChoice(style.name, style.kind, weight))
    if not choices:
        raise ConfigError("--styles is empty; give style names (fastnst styles lists them), e.g. mosaic,halftone")
    seen: set[str] = set()
    for choice in choices:
        if choice.name in seen:
            raise ConfigError(f"style '{choice.name}' is listed twice in --styles; give each once (weights: NAME:W)")
        seen.add(choice.name)
    return tuple(choices)


def parse_strength(spec: StrengthSpec) -> tuple[float, float]:
    """A strength (``0.8``) or a range (``"0.5,1"``, ``(0.5, 1)``) as (low, high), each in [0, 1], low <= high.
    Raises ConfigError."""
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.replace(":", ",").split(",") if p.strip()]
    elif isinstance(spec, (int, float)) and not isinstance(spec, bool):
        parts = [spec]
    else:
        parts = list(spec) if isinstance(spec, Sequence) else [spec]
    try:
        values = [float(p) for p in parts]
    except (TypeError, ValueError):
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values) or values[0] > values[1]:
        raise ConfigError(f"--strength must be a number in [0, 1] or a range LO,HI with 0 <= LO <= HI <= 1, "
                          f"got {spec!r}")
    return values[0], values[1]


def uniforms(seed: int, key: str) -> tuple[float, float]:
    """Two numbers in [0, 1) from a hash of (seed, key): the same on every machine and Python version."""
    digest = hashlib.blake2b(f"fastnst-augment/{DRAW_VERSION}/{seed}/{key}".encode(), digest_size=16).digest()
    return (int.from_bytes(digest[:8], "little") / 2.0**64, int.from_bytes(digest[8:], "little") / 2.0**64)


@dataclass(frozen=True)
class Draws:
    """The per-row draws of a job: the styles to choose from, the strength range and the seed (checked)."""

    choices: tuple[StyleChoice, ...]
    strength: tuple[float, float] = (1.0, 1.0)
    seed: int = 0

    @classmethod
    def of(cls, styles: StylesSpec = None, strength: StrengthSpec = 1.0, seed: int = 0) -> "Draws":
        """The draws of user-facing options, checked (see :func:`parse_styles`, :func:`parse_strength`)."""
        from fastnst import checks

        return cls(parse_styles(styles), parse_strength(strength), checks.whole("--seed", seed, minimum=0))

    def draw(self, key: str) -> tuple[StyleChoice, float]:
        """The style and strength of the row whose identity is ``key``."""
        u_style, u_strength = uniforms(self.seed, key)
        total = math.fsum(c.weight for c in self.choices)
        target, running = u_style * total, 0.0
        choice = self.choices[-1]
        for candidate in self.choices:
            running += candidate.weight
            if target < running:
                choice = candidate
                break
        low, high = self.strength
        if low == high:
            return choice, low
        return choice, min(high, max(low, round(low + (high - low) * u_strength, STRENGTH_DECIMALS)))

    @property
    def pictures(self) -> list[StyleChoice]:
        """The style-picture choices (those that need the universal model)."""
        return [c for c in self.choices if not c.builtin]

    def identity(self) -> dict[str, Any]:
        """What decides the draws, as JSON (recorded in a job's folder; a resume must match it)."""
        return {"styles": [[c.name, c.weight] for c in self.choices], "strength": list(self.strength),
                "seed": self.seed, "draw_version": DRAW_VERSION}


__all__ = ["StyleChoice", "Draws", "parse_styles", "parse_strength", "uniforms", "DRAW_VERSION"]
