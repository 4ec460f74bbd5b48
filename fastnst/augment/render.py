"""Stylising decoded rows with the styles drawn for them, on the one engine. Torch-free.

:class:`Renderer` holds the sessions of one worker: the shipped multi-style model
(:class:`fastnst.runtime.Stylizer` on :func:`fastnst.styles.builtin.model_path`, one column of its ``style``
input per built-in style) and, for style pictures, the universal (any-painting) model. Both are opened on
first use with the worker's providers and threads. Rows of one size and one style run together, at most
``batch_size`` per network call, in the order they came: the batches are a function of the rows alone, so
every engine computes the same thing (and onnxruntime's CPU kernels give the same bits for any batch size
or thread count: measured, see tests/test_augment.py).

**Style pictures (the extension point).** A style picture (an image file, a folder of them, a painting or
a generated style) needs the universal model. :func:`picture_model_factory` is the one place that says
whether this fastnst has one: it returns None until ``fastnst.runtime.universal`` exists; wiring that model
in means returning there a callable ``factory(providers, threads)`` whose result has
``render(images, picture, strengths) -> images`` (HxWx3 uint8 arrays in and out; ``picture`` the encoded
style image). Everything else (parsing, draws, records, both engines) already handles style pictures;
``tests/test_augment.py`` runs a job through a stand-in model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fastnst.augment.draws import StyleChoice
from fastnst.errors import ConfigError


class PictureModel(Protocol):
    """What a model that stylises with a style *picture* offers the augmenter."""

    def render(self, images: Sequence[np.ndarray], picture: bytes, strengths: Sequence[float]) -> list[np.ndarray]:
        """Stylise HxWx3 uint8 ``images`` with the encoded style image ``picture``; one strength per image."""
        ...


def picture_model_factory() -> Callable[[Any, int | None], PictureModel] | None:
    """The factory of the universal model, or None while this fastnst has none (see the module docstring)."""
    return None


def check_pictures(choices: Sequence[StyleChoice]) -> dict[str, bytes]:
    """The encoded style pictures of the picture styles among ``choices`` (name -> bytes; a painting is
    downloaded, a generated style made, once), read where the job starts so that workers on other machines
    need no shared path. ConfigError when there are picture styles and no universal model."""
    pictures = [c for c in choices if not c.builtin]
    if not pictures:
        return {}
    if picture_model_factory() is None:
        from fastnst.styles import builtin

        raise ConfigError(f"style '{pictures[0].name}' is a style picture ({pictures[0].kind}); style pictures need "
                          f"the universal (any-painting) model, which this version of fastnst does not have yet; "
                          f"use built-in styles: {', '.join(builtin.names())}")
    from fastnst.styles.registry import Style

    out: dict[str, bytes] = {}
    for choice in pictures:
        path = Path(choice.picture) if choice.picture else Style(choice.kind, choice.name).picture()
        out[choice.name] = path.read_bytes()
    return out


class Renderer:
    """The sessions of one worker and the batching of rows by size and style.

    ``providers``/``threads``: as :class:`fastnst.runtime.Stylizer` takes them (checked by the caller).
    ``pictures``: the encoded style pictures from :func:`check_pictures`. ``batch_size``: images per call.
    """

    def __init__(self, providers: Any = "cpu", threads: int | None = None, batch_size: int = 4,
                 pictures: dict[str, bytes] | None = None) -> None:
        self.providers, self.threads, self.batch_size = providers, threads, int(batch_size)
        self.pictures = dict(pictures or {})
        self._stylizer: Any = None
        self._picture_model: PictureModel | None = None
        self._weights: dict[str, np.ndarray | None] = {}

    @property
    def stylizer(self) -> Any:
        """The shipped multi-style model's :class:`fastnst.runtime.Stylizer` (opened on first use)."""
        if self._stylizer is None:
            from fastnst.runtime import Stylizer
            from fastnst.styles import builtin

            self._stylizer = Stylizer(builtin.model_path(), self.providers, self.threads)
        return self._stylizer

    @property
    def device(self) -> str:
        """Where the built-in model runs ('cpu', 'cuda', ...)."""
        return self.stylizer.device

    def _style_weights(self, name: str) -> np.ndarray | None:
        if name not in self._weights:
            from fastnst.runtime.blend import parse_style

            self._weights[name] = parse_style(name, self.stylizer.style_names)
        return self._weights[name]

    def _picture(self) -> PictureModel:
        if self._picture_model is None:
            factory = picture_model_factory()
            if factory is None:
                raise ConfigError("style pictures need the universal model, which this fastnst does not have")
            self._picture_model = factory(self.providers, self.threads)
        return self._picture_model

    def render(self, images: Sequence[np.ndarray], picks: Sequence[tuple[StyleChoice, float]]) -> list[np.ndarray]:
        """Stylise HxWx3 uint8 ``images``, each with its (style, strength) from ``picks``; HxWx3 uint8 results,
        same order and sizes."""
        out: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, (image, (choice, _)) in enumerate(zip(images, picks)):
            groups.setdefault((image.shape, choice.name), []).append(i)
        for (_, name), members in groups.items():
            choice = picks[members[0]][0]
            for start in range(0, len(members), self.batch_size):
                idx = members[start:start + self.batch_size]
                batch = [images[i] for i in idx]
                strengths = [picks[i][1] for i in idx]
                results = (self._builtin(batch, name, strengths) if choice.builtin
                           else self._picture().render(batch, self.pictures[name], strengths))
                for i, result in zip(idx, results):
                    out[i] = result
        return out  # type: ignore[return-value]

    def _builtin(self, batch: list[np.ndarray], name: str, strengths: list[float]) -> list[np.ndarray]:
        from fastnst.image import finish, to_uint8
        from fastnst.runtime.stylizer import AUTO_TILE_PIXELS, Settings

        stylizer, weights = self.stylizer, self._style_weights(name)
        h, w = batch[0].shape[:2]
        if h * w > AUTO_TILE_PIXELS:  # large images: the stylizer's own tiles, one image at a time
            return [stylizer.render(image, Settings(strength=s, style=weights)) for image, s in zip(batch, strengths)]
        if all(s == 0 for s in strengths):
            return [image.copy() for image in batch]
        styled = stylizer.run_batch(batch, weights)
        return [to_uint8(finish(image, out, s)) for image, out, s in zip(batch, styled, strengths)]


__all__ = ["Renderer", "PictureModel", "picture_model_factory", "check_pictures"]
