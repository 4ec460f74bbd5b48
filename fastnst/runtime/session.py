"""One ONNX model file and its onnxruntime sessions: the one engine object of every model kind. Torch-free.

A :class:`Model` opens a file once: it checks that the file exists and loads, reads its metadata and
checks its task against :mod:`fastnst.contract` (a style model handed to the upscaler, or the reverse, is
named as such), and holds the resolved providers and session options. It knows nothing about pixels:
its inputs and outputs may be images or feature maps. The kinds build on it: :class:`fastnst.runtime.Stylizer`
(image to image, padding, tiling), :class:`fastnst.runtime.upscaler.Upscaler` (super-resolution) and any later
kind (a universal style model's encoder and decoders) add what is new about them, never a second session.

Sessions: :attr:`Model.session` runs the file as stored (built when the Model is made: its signature and
metadata come from it), or a rewritten copy of it that a kind put in its place (:meth:`Model.replace`).
:meth:`Model.variant` gives the session of another rewritten copy of the graph (the tiling statistics and
tile graphs), built on first use and kept. Only building a rewritten copy imports the ``onnx`` package
(about 0.8 s of CPU time on the 2-core EPYC): files written by ``fastnst export`` carry their rewrites, and
a copy rewritten at run time is kept in the cache folder (:meth:`Model.cached`, keyed by the file's
content), so a later process loads it as it is. A Model holds live sessions and is not pickled: a worker
process (e.g. of a dataset augmenter) opens its own from the path.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fastnst.contract import SR_TASK, UNIVERSAL_TASK, model_task
from fastnst.errors import ConfigError, FastNSTError, InputError, ModelFormatError
from fastnst.runtime.providers import (ProviderSpec, available_providers, is_auto, provider_name, resolve_providers,
                                       session_options)

log = logging.getLogger(__name__)

# What writes a model of each task, and what runs it (said when a file does not load or is of another task).
MAKERS: dict[str, str] = {"style": "fastnst export", SR_TASK: "fastnst train-sr",
                          UNIVERSAL_TASK: "fastnst export-universal"}
USES: dict[str, str] = {"style": "fastnst stylize", SR_TASK: "fastnst upscale",
                        UNIVERSAL_TASK: "fastnst stylize --universal-model"}


def _wrong_task(path: Path, task: str, wanted: str) -> ModelFormatError:
    if task == SR_TASK:
        return ModelFormatError(f"'{path}' is a super-resolution model; enlarge images with "
                                f"'fastnst upscale --model {path} ...', or pass a {wanted} model")
    return ModelFormatError(f"'{path}' is a {task} model, not a {wanted} model; use it with "
                            f"'{USES.get(task, 'fastnst info')}', or pass a model from '{MAKERS.get(wanted, 'fastnst')}'")


def decode_metadata(metadata: Mapping[str, str]) -> dict[str, Any]:
    """Model metadata sorted by key, JSON values ('[...]', '{...}') decoded."""
    out = {}
    for key, value in sorted(metadata.items()):
        try:
            out[key] = json.loads(value) if value[:1] in "[{" else value
        except (json.JSONDecodeError, TypeError):
            out[key] = value
    return out


def _varint(data: bytes | memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated protobuf varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _fields(data: bytes | memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each top-level field of a protobuf message; ValueError when the
    bytes are not one (truncated, or a wire type protobuf does not have)."""
    i, n = 0, len(data)
    while i < n:
        tag, i = _varint(data, i)
        number, kind = tag >> 3, tag & 7
        if kind == 0:
            value, i = _varint(data, i)
        elif kind in (1, 5):
            size = 8 if kind == 1 else 4
            value, i = data[i:i + size], i + size
        elif kind == 2:
            size, i = _varint(data, i)
            value, i = data[i:i + size], i + size
        else:
            raise ValueError(f"protobuf wire type {kind}")
        if number == 0 or i > n:
            raise ValueError("truncated or not protobuf")
        yield number, kind, value


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (ModelProto field 14: key 1, value 2), read from its bytes
    without the onnx package or a session; ValueError for a file that is not a protobuf message."""
    with open(path, "rb") as f:
        data = memoryview(f.read())
    out: dict[str, str] = {}
    graph = False
    for number, kind, value in _fields(data):
        graph = graph or (number == 7 and kind == 2)
        if number == 14 and kind == 2:
            entry = {k: bytes(v).decode("utf-8", "replace") for k, t, v in _fields(value) if t == 2}
            out[entry.get(1, "")] = entry.get(2, "")
    if not graph:
        raise ValueError("no graph in the file")
    return out


def signature(args: Sequence[Any]) -> list[dict[str, Any]]:
    """onnxruntime's input/output descriptions as JSON-able dicts (name, type, shape)."""
    return [{"name": a.name, "type": a.type, "shape": [d if isinstance(d, int) else str(d) for d in a.shape]}
            for a in args]


class Model:
    """An ONNX model file with lazily built onnxruntime sessions.

    ``path``: the ``.onnx`` file. ``providers``, ``threads``, ``optimization``: see
    :func:`fastnst.runtime.providers.resolve_providers` and :func:`~fastnst.runtime.providers.session_options`.
    ``task``: the task the caller runs ('style', 'super-resolution'; None: any), checked against the file's
    metadata. Raises InputError for a missing file, ModelFormatError for an empty or unloadable file or
    another task, ConfigError for unavailable providers (or an explicitly chosen one that does not start)
    and bad options.
    """

    def __init__(self, path: str | os.PathLike, providers: ProviderSpec | Sequence[ProviderSpec] | None = None,
                 threads: int | None = None, optimization: str | None = None, task: str | None = None,
                 lazy: bool = False) -> None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"model '{path}' does not exist; check the path")
        maker = MAKERS.get(task or "style", "fastnst")
        if path.stat().st_size == 0:
            raise ModelFormatError(f"model '{path}' is empty (0 bytes); export it again with {maker}")
        self.path = path
        self.optimization = optimization or "all"
        self.options = session_options(threads, optimization)
        self.threads: int = self.options.intra_op_num_threads  # CPU threads in use (capped at the CPUs available)
        self.requested = providers
        self.resolved = resolve_providers(providers)
        self._maker = maker
        self._variants: dict[str, Any] = {}
        self._digest: str | None = None
        self.lock = threading.RLock()  # held while a session is built or replaced
        self._session: Any = None
        if lazy:  # the metadata from the file (no onnx import); the main session only when it is used
            try:
                self.metadata: dict[str, str] = read_metadata(path)
            except ValueError as exc:  # a truncated or foreign file
                raise ModelFormatError(f"'{path}' is not an ONNX model ({exc}); pass an .onnx file written by "
                                       f"{maker}") from None
        else:
            self._session = self.open(str(path))
            self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self.task = model_task(self.metadata)
        if task is not None:
            self.expect(task)
        if not lazy:
            self._check_providers()

    @property
    def session(self) -> Any:
        """The session of the file as stored (built on first use for a lazy Model)."""
        if self._session is None:
            with self.lock:
                if self._session is None:
                    self._session = self.open(str(self.path))
                    self._check_providers()
        return self._session

    def expect(self, task: str) -> None:
        """ModelFormatError (naming the file's task and what to do) unless the file is a ``task`` model."""
        if self.task != task:
            raise _wrong_task(self.path, self.task, task)

    # -- sessions ----------------------------------------------------------------------------------
    def open(self, model: str | bytes, arena: bool = True) -> Any:
        """An onnxruntime session of ``model`` (a path or serialised bytes) with this Model's providers and
        options (``arena`` False: without the CPU memory arena, for once-per-image passes)."""
        from fastnst.runtime.providers import ort

        options = self.options if arena else session_options(self.threads, self.optimization, arena=False)
        try:
            return ort().InferenceSession(model, options, providers=self.resolved)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelFormatError(f"'{self.path}' is not an ONNX model onnxruntime can load ({first}); "
                                   f"pass an .onnx file written by {self._maker}") from None

    def _check_providers(self) -> None:
        wanted = provider_name(self.resolved[0])
        used = self.session.get_providers()
        if wanted != used[0]:
            if not is_auto(self.requested):
                raise ConfigError(f"onnxruntime could not start {wanted} (missing libraries or device?); "
                                  f"use --provider cpu")
            log.info("note: %s did not start; running on %s", wanted, used[0])

    @property
    def providers(self) -> list[str]:
        """The providers the main session actually uses, in priority order."""
        return list(self.session.get_providers())

    def run(self, feeds: Mapping[str, Any], outputs: Sequence[str] | None = None) -> list[Any]:
        """The main session run on ``feeds`` (input name -> array: images or feature maps alike); the arrays of
        ``outputs`` (None: every output), in that order."""
        return self.session.run(None if outputs is None else list(outputs), dict(feeds))

    def proto(self) -> Any:
        """The file as an ``onnx.ModelProto`` (a fresh copy to rewrite; ModuleNotFoundError without ``onnx``)."""
        import onnx

        return onnx.load(str(self.path))

    def replace(self, proto: Any, cache: str | None = None) -> None:
        """Run ``proto`` (a rewritten copy of the file) as the main session from now on; with ``cache`` (a key
        naming the rewrite), also keep it in the cache folder for later processes (:meth:`cached`)."""
        data = proto.SerializeToString()
        self._session = self.open(data)
        if cache is not None:
            self.store(cache, data)

    # -- rewritten copies kept on disk ---------------------------------------------------------------
    def cache_path(self, key: str) -> Path:
        """Where the copy of this file rewritten as ``key`` says is kept: the cache folder, named by the
        file's content (SHA-256), so an edited or replaced file never meets a stale copy."""
        from fastnst.constants import cache_dir

        if self._digest is None:
            import hashlib

            digest = hashlib.sha256()
            with open(self.path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            self._digest = digest.hexdigest()[:32]
        return cache_dir() / "rewritten" / f"{self._digest}-{key}.onnx"

    def cached(self, key: str) -> bool:
        """Run the copy of this file rewritten as ``key`` says from the cache folder, if it is there (and
        loads); True when the main session now runs it."""
        path = self.cache_path(key)
        if not path.is_file():
            return False
        try:
            session = self.open(str(path))
        except ModelFormatError:  # a damaged copy: rewrite again
            log.debug("cached rewrite %s does not load; rewriting again", path)
            return False
        self._session = session
        return True

    def store(self, key: str, data: bytes) -> None:
        """Keep a rewritten copy (or a stage model built from the file) in the cache folder (written whole; a
        folder that cannot be written is logged and ignored: the copy is only a saving)."""
        from fastnst.fileio import atomic_output

        path = self.cache_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(path, overwrite=True) as tmp:
                Path(tmp).write_bytes(data)
        except (OSError, FastNSTError) as exc:
            log.debug("could not keep the rewritten model in %s: %s", path, exc)

    def variant(self, key: str, build: Callable[[], Any]) -> Any:
        """The session(s) ``build()`` makes for variant ``key``, made on first use and kept (thread-safe).

        ``build`` returns anything (a session, a tuple of sessions and helpers, or False for "no such
        variant"); it is called once per Model and key. Keys name what the variant is for ('rewritten',
        'tiling', ...); a later kind adds its own keys.
        """
        with self.lock:
            if key not in self._variants:
                self._variants[key] = build()
            return self._variants[key]

    # -- description -------------------------------------------------------------------------------
    def describe(self, **kind: Any) -> dict[str, Any]:
        """The file, what a kind says about it (``kind``), its signature (inputs, optional inputs: initialisers
        a caller may override, outputs), metadata and providers, as a JSON-able dict (``fastnst info``)."""
        return {"model": str(self.path), "size_bytes": self.path.stat().st_size, **kind,
                "inputs": signature(self.session.get_inputs()),
                "optional_inputs": signature(self.session.get_overridable_initializers()),
                "outputs": signature(self.session.get_outputs()),
                "metadata": decode_metadata(self.metadata), "providers_available": available_providers(),
                "providers_used": self.providers}


__all__ = ["Model", "MAKERS", "USES", "decode_metadata", "signature"]
