"""Style blends of a multi-style model: a style choice to the weights its ``style`` input takes. Torch-free.

A multi-style network (conditional instance norm) has a second input, ``style`` (:data:`fastnst.contract.STYLE_NAME`):
float32 blend weights (N, num_styles) summing to 1. :func:`parse_style` is the one parser of a style choice
(a name, an index, ``"a:0.7,b:0.3"``, a mapping or a vector) against a model's style names; callers parse once
and pass the weights on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np

from fastnst.errors import ConfigError, did_you_mean

StyleSpec = Union[None, str, int, Mapping[str, float], Sequence[float], np.ndarray]


def parse_style(spec: StyleSpec, names: Sequence[str]) -> np.ndarray | None:
    """Blend weights (float32, summing to 1) of a multi-style model's ``style`` input.

    ``spec``: None (the first style; None for a single-style model), a style name, an index (int or
    digits), ``"a:0.5,b:0.5"`` (names or indices with weights), a {name: weight} mapping, or a weight
    vector of length ``len(names)``. ``names`` are the model's style names; an empty list means a
    single-style model, which accepts only None. Raises ConfigError for unknown names (with a
    suggestion), out-of-range indices, negative or non-finite weights, an all-zero blend, a style for
    a single-style model, or a malformed string.
    """
    names = list(names)
    count = len(names)
    if spec is None:
        if count <= 1:
            return None
        out = np.zeros(count, np.float32)
        out[0] = 1.0
        return out
    if count <= 1:
        raise ConfigError("this model has a single style; leave out --style (style=None)")
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(names))

    def index_of(key: Any) -> int:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not 0 <= int(key) < count:
                raise ConfigError(f"style index {key} is out of range; this model has {count} styles ({listing})")
            return int(key)
        text = str(key).strip()
        if text in names:
            return names.index(text)
        if text.lstrip("-").isdigit():
            return index_of(int(text))
        raise ConfigError(f"unknown style '{text}'{did_you_mean(text, names)}; this model has: {listing}")

    weights = np.zeros(count, np.float64)
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        weights[index_of(spec)] = 1.0
    elif isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ConfigError(f"empty style; pass a name, an index or a blend such as '{names[0]}:0.5,{names[1]}:0.5'")
        if ":" not in text and "," not in text:
            weights[index_of(text)] = 1.0
        else:
            for part in text.split(","):
                key, sep, value = part.rpartition(":")
                if not sep or not key.strip():
                    raise ConfigError(f"a style blend is NAME:WEIGHT pairs separated by commas, got '{part.strip()}'")
                try:
                    w = float(value)
                except ValueError:
                    raise ConfigError(f"style weight '{value.strip()}' for '{key.strip()}' is not a number") from None
                weights[index_of(key)] += _check_weight(w, key.strip())
    elif isinstance(spec, Mapping):
        for key, w in spec.items():
            weights[index_of(key)] += _check_weight(w, str(key))
    else:
        try:
            vec = np.asarray(spec, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"style must be a name, an index, a blend string, a dict or a weight vector, "
                              f"not {type(spec).__name__}") from None
        if vec.shape != (count,):
            raise ConfigError(f"a style weight vector needs {count} values ({listing}), got shape {vec.shape}")
        for name, w in zip(names, vec):
            _check_weight(float(w), name)
        weights = vec.copy()
    total = float(weights.sum())
    if total <= 0:
        raise ConfigError("the style weights sum to zero; give at least one style a positive weight")
    return (weights / total).astype(np.float32)


def _check_weight(w: Any, name: str) -> float:
    try:
        w = float(w)
    except (TypeError, ValueError):
        raise ConfigError(f"style weight for '{name}' is not a number: {w!r}") from None
    if not np.isfinite(w) or w < 0:
        raise ConfigError(f"style weight for '{name}' must be a finite number >= 0, got {w}")
    return w


def style_feed(weights: np.ndarray | None, names: Sequence[str], n: int) -> np.ndarray | None:
    """The ``style`` input for a batch of ``n`` images: ``weights`` (None: the first style) repeated per image;
    None for a single-style model (no ``names``)."""
    if not names:
        return None
    if weights is None:
        weights = parse_style(None, names)
    return np.repeat(np.asarray(weights, np.float32)[None], n, axis=0)


__all__ = ["StyleSpec", "parse_style", "style_feed"]
