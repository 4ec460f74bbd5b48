"""Style augmentation as a callable class for your own pipeline (Ray Data, ``datasets.map``). Torch-free.

``fastnst augment`` runs this class on every part of a job; the same class stylises batches in a pipeline of
yours, with the same draws (a row's style and strength come from the seed and the row's key alone)::

    from fastnst.augment import StyleAugmenter

    # Ray Data: one augmenter (and one onnxruntime session) per actor
    ds = ray.data.read_images("photos/", include_paths=True)
    ds = ds.map_batches(StyleAugmenter, fn_constructor_kwargs={"styles": "mosaic,halftone", "seed": 0,
                        "key_column": "path", "threads": 1}, concurrency=4, num_cpus=1, batch_size=16)

    # Hugging Face datasets: a batched map (the session is built on the first batch, in each process)
    ds = ds.map(StyleAugmenter(styles="mosaic:2,pointillist", strength="0.5,1"), batched=True, batch_size=16)

Each call takes a batch (a dict of columns: numpy arrays as Ray Data gives them, lists as ``datasets`` gives
them, or a pandas DataFrame) and returns it with three more columns: the stylised image
(``output_column``), the style name and the strength used. The stylised image has the kind of the input
image: a PIL image for a PIL image, a uint8/float array for an array (a stacked (N, H, W, 3) batch stays
stacked), ``{"bytes", "path"}`` (the ``datasets`` image encoding, in ``format``) for encoded bytes, a
``{bytes, path}`` dict or a path. A row's key is ``key_column``'s value, else a hash of its image (the same
picture gets the same draw wherever it is). A row whose image cannot be decoded raises InputError
(``on_error="raise"``) or is dropped with a warning (``on_error="skip"``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastnst.augment.draws import Draws, StrengthSpec, StylesSpec
from fastnst.augment.render import Renderer, check_pictures
from fastnst.errors import ConfigError, FastNSTError, InputError

log = logging.getLogger(__name__)

DEFAULT_FORMAT = "jpg"  # chosen: encoded outputs of a dataset (JPEG at quality 95, as photo datasets are)
DEFAULT_BATCH = 4  # images per network call; chosen: no gain beyond on a CPU (measured: same s/image at 1 and 4)
ON_ERROR = ("raise", "skip")


@dataclass
class Result:
    """One row's outcome: its key, the style and strength drawn, the stylised pixels (HxWx3 uint8) or why
    the row could not be read (``error``, one line; ``pixels`` None)."""

    key: str
    style: str
    strength: float
    pixels: np.ndarray | None = None
    error: str | None = None


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def content_key(value: Any) -> str:
    """A row key from its image alone: a hash of the encoded bytes, the path, or the pixels."""
    from PIL import Image

    digest = hashlib.blake2b(digest_size=16)
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path") or b""
    if isinstance(value, np.ndarray):
        digest.update(repr((value.shape, value.dtype.str)).encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, Image.Image):
        digest.update(repr((value.size, value.mode)).encode())
        digest.update(value.tobytes())
    elif isinstance(value, (bytes, bytearray, memoryview)):
        digest.update(bytes(value))
    else:
        digest.update(str(value).encode())
    return digest.hexdigest()


class StyleAugmenter:
    """Stylise a batch of rows, each with a style and strength drawn from ``seed`` and its key.

    ``styles``, ``strength``, ``seed``: as ``fastnst augment``'s --styles, --strength, --seed
    (:mod:`fastnst.augment.draws`). ``image_column``: the input images; ``key_column``: each row's identity
    (None: a hash of the image); ``output_column``, ``style_column``, ``strength_column``: the columns added.
    ``max_size``: downscale so the longer side is at most this many pixels. ``format``, ``quality``: the
    encoding of results given back as bytes. ``providers``, ``threads``: the onnxruntime session of this
    object (:class:`fastnst.runtime.Stylizer`; default: the CPU, all its cores); ``batch_size``: images per
    network call; ``on_error``: 'raise' or 'skip' for undecodable images. The sessions are opened on the first
    batch, so the object pickles small (Ray ships it to its actors, ``datasets`` to its processes). Raises
    ConfigError for bad options, InputError for a missing style file.
    """

    def __init__(self, styles: StylesSpec = None, strength: StrengthSpec = 1.0, seed: int = 0, *,
                 image_column: str = "image", key_column: str | None = None, output_column: str = "stylized_image",
                 style_column: str = "style", strength_column: str = "strength", max_size: int | None = None,
                 format: str = DEFAULT_FORMAT, quality: int = 95, providers: Any = "cpu", threads: int | None = None,
                 batch_size: int = DEFAULT_BATCH, on_error: str = "raise", draws: Draws | None = None,
                 pictures: dict[str, bytes] | None = None) -> None:
        from fastnst import checks
        from fastnst.image import output_format
        from fastnst.runtime.providers import check_threads
        from fastnst.runtime.stylizer import MAX_BATCH

        self.draws = draws if draws is not None else Draws.of(styles, strength, seed)
        self.pictures = pictures if pictures is not None else check_pictures(self.draws.choices)
        self.image_column, self.key_column = image_column, key_column
        self.output_column, self.style_column, self.strength_column = output_column, style_column, strength_column
        self.max_size = checks.side("max_size", max_size, allow_none=True)
        output_format("x", format)  # InputError for a format fastnst cannot write
        self.format, self.quality = format, checks.whole("quality", quality, maximum=100)
        self.providers = providers
        self.threads = None if threads is None else check_threads(threads)
        self.batch_size = checks.whole("batch_size", batch_size, maximum=MAX_BATCH)
        if on_error not in ON_ERROR:
            raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self._renderer: Renderer | None = None

    # -- pickling: settings travel, sessions do not ------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_renderer"] = None
        return state

    @property
    def renderer(self) -> Renderer:
        """The sessions of this object (opened on first use)."""
        if self._renderer is None:
            self._renderer = Renderer(self.providers, self.threads, self.batch_size, self.pictures)
        return self._renderer

    # -- the core: decoded rows in, results out ----------------------------------------------------
    def decode(self, value: Any) -> np.ndarray:
        """One image value (path, bytes, ``{bytes, path}``, PIL image or array) as HxWx3 uint8, EXIF-oriented,
        downscaled to ``max_size``. Raises InputError (or whatever a broken file makes the decoder raise)."""
        from fastnst.image import read_fitted
        from fastnst.sources import image_source

        source = value if isinstance(value, np.ndarray) else image_source(value)
        return np.asarray(read_fitted(source, self.max_size).rgb, dtype=np.uint8)

    def transform(self, values: Sequence[Any], keys: Sequence[str]) -> list[Result]:
        """Stylise the images ``values`` of the rows ``keys``: one :class:`Result` per row, same order. A row
        whose image cannot be decoded (or is too small for the network) gets its ``error``; nothing raises
        for one bad row."""
        picks = [self.draws.draw(str(k)) for k in keys]
        results = [Result(str(k), choice.name, s) for k, (choice, s) in zip(keys, picks)]
        good: list[int] = []
        images: list[np.ndarray] = []
        for i, value in enumerate(values):
            try:
                images.append(self.decode(value))
                good.append(i)
            except Exception as exc:  # noqa: BLE001 - a corrupt file may make any decoder error: one bad row
                results[i].error = one_line(exc)
        try:
            outs = self.renderer.render(images, [picks[i] for i in good])
        except InputError:  # some image the network cannot take: find it, keep the others
            outs = []
            for image, i in zip(images, good):
                try:
                    outs.append(self.renderer.render([image], [picks[i]])[0])
                except InputError as exc:
                    outs.append(None)
                    results[i].error = one_line(exc)
        for i, out in zip(good, outs):
            results[i].pixels = out
        return results

    # -- a pipeline's batch ------------------------------------------------------------------------
    def __call__(self, batch: Any) -> Any:
        """The batch with the stylised image, style and strength columns added (see the module docstring)."""
        frame = not isinstance(batch, Mapping)  # a pandas DataFrame
        if self.image_column not in batch:
            columns = ", ".join(map(str, batch.keys() if not frame else batch.columns))
            raise InputError(f"the batch has no column '{self.image_column}' (columns: {columns}); "
                             f"pass image_column=")
        column = batch[self.image_column]
        values = list(column)
        if self.key_column is not None:
            if self.key_column not in batch:
                raise InputError(f"the batch has no key column '{self.key_column}'; pass key_column=")
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in batch[self.key_column]]
        else:
            keys = [content_key(v) for v in values]
        results = self.transform(values, keys)
        bad = [r for r in results if r.error]
        if bad and self.on_error == "raise":
            raise InputError(f"row '{bad[0].key}' cannot be stylised: {bad[0].error} (on_error='skip' drops such rows)")
        for r in bad:
            log.warning("skipping row %s: %s", r.key, r.error)
        keep = [i for i, r in enumerate(results) if not r.error]
        outs = [self._give_back(values[i], results[i].pixels) for i in keep]
        new = {self.output_column: outs, self.style_column: [results[i].style for i in keep],
               self.strength_column: [results[i].strength for i in keep]}
        if frame:
            out = batch.iloc[keep].copy() if bad else batch.copy()
            for name, col in new.items():
                out[name] = col
            return out
        out = {name: _take(col, keep, len(results)) for name, col in batch.items()}
        if isinstance(column, np.ndarray):
            new[self.output_column] = _as_array(outs, column)
            new[self.style_column] = np.array(new[self.style_column], dtype=object)
            new[self.strength_column] = np.array(new[self.strength_column], dtype=np.float64)
        out.update(new)
        return out

    def _give_back(self, value: Any, pixels: np.ndarray) -> Any:
        """``pixels`` in the kind of the input image ``value``."""
        from PIL import Image

        from fastnst.image import encode_image, from_array, to_float

        if isinstance(value, np.ndarray):
            return to_float(pixels) if np.issubdtype(value.dtype, np.floating) else pixels
        if isinstance(value, Image.Image):
            return from_array(pixels)
        data = encode_image(from_array(pixels), self.format, quality=self.quality)
        return data if isinstance(value, (bytes, bytearray, memoryview)) else {"bytes": data, "path": None}


def _take(column: Any, keep: list[int], total: int) -> Any:
    """``column`` (a list or an array) restricted to the rows ``keep``."""
    if len(keep) == total:
        return column
    if isinstance(column, np.ndarray):
        return column[keep]
    return [column[i] for i in keep]


def _as_array(outs: list[Any], like: np.ndarray) -> np.ndarray:
    """Results as Ray Data's numpy column: stacked when the input was and every result has one shape,
    else an object array of arrays."""
    if like.dtype != object and outs and all(o.shape == outs[0].shape for o in outs):
        return np.stack(outs)
    arr = np.empty(len(outs), dtype=object)
    for i, o in enumerate(outs):
        arr[i] = o
    return arr


__all__ = ["StyleAugmenter", "Result", "content_key", "one_line", "DEFAULT_FORMAT", "DEFAULT_BATCH"]
