"""Where image data comes from: a folder, parquet files or a Hugging Face dataset id. Torch-free.

The one answer to "what does this data argument mean", shared by training (``fastnst train --data``,
:mod:`fastnst.training.data`) and dataset augmentation (``fastnst augment SOURCE``, :mod:`fastnst.augment`):

- ``"coco"``: COCO 2014 train images on the Hugging Face hub (:data:`COCO_HUB_ID`);
- any hub dataset id (``owner/name``) with an image column;
- a local folder of images, flat or nested (:func:`fastnst.image.find_images`);
- a local ``.parquet`` file, a folder of them, or a glob such as ``data/*.parquet``.

:func:`resolve_source` classifies the argument (local paths win over hub ids of the same spelling);
:func:`open_stream` opens a parquet or hub source as a streaming ``datasets`` dataset; the image column of a
dataset is found by its type first, then by its name, alike for a ``datasets`` dataset
(:func:`find_image_column`) and a parquet file's arrow schema (:func:`schema_image_column`).
``datasets`` and ``pyarrow`` are imported only inside the functions that need them.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from fastnst import image as fimage
from fastnst.errors import FastNSTError, InputError

# COCO 2014 train (82,783 images) as parquet shards on the Hugging Face hub. Johnson et al. 2016
# (paper, section 4.2) trained on the ~80k COCO 2014 training images resized to 256x256.
COCO_HUB_ID = "justram/COCO2014-Images"
PARQUET_SUFFIXES = (".parquet", ".pq")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Words in a column name that say it holds images (when no column is typed as an image).
IMAGE_WORDS = ("image", "img", "jpg", "jpeg", "png", "picture", "photo")

FOLDER, PARQUET, HUB = "folder", "parquet", "hub"
HUB_TIMEOUT = 5.0  # seconds to reach the hub before saying it cannot be reached (chosen)


def parquet_files(data: str) -> list[str] | None:
    """Local parquet files named by ``data`` (a file, a folder of them, or a glob), sorted, else None."""
    path = Path(data).expanduser()
    if path.is_file() and path.suffix.lower() in PARQUET_SUFFIXES:
        return [str(path.resolve())]
    if path.is_dir():
        files = sorted(str(p.resolve()) for p in path.rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES)
        return files or None
    if any(ch in data for ch in "*?["):
        files = sorted(os.path.abspath(p) for p in glob.glob(os.path.expanduser(data), recursive=True)
                       if p.lower().endswith(PARQUET_SUFFIXES))
        return files or None
    return None


def resolve_source(data: str, flag: str = "--data") -> tuple[str, Any]:
    """Classify ``data`` as ``("folder", [paths])``, ``("parquet", [files])`` or ``("hub", id)``.

    Raises InputError (naming ``flag``, the argument as the user wrote it) for a missing local path or a
    folder without images. Local paths win over hub ids of the same spelling.
    """
    data = str(data).strip()
    if not data:
        raise InputError(f"{flag} is empty; pass coco, a Hugging Face dataset id, a folder or parquet files")
    if data.lower() == "coco":
        return HUB, COCO_HUB_ID
    parquet = parquet_files(data)
    if parquet:
        return PARQUET, parquet
    path = Path(data).expanduser()
    if path.is_dir():
        files = fimage.find_images(path, require=False)
        if not files:
            raise InputError(f"data folder '{data}' has no images (looked for "
                             f"{', '.join(sorted(fimage.IMAGE_EXTENSIONS))}, also in sub-folders); "
                             f"point {flag} at a folder of photos")
        return FOLDER, files
    if path.is_file():
        raise InputError(f"{flag} '{data}' is a file; pass a folder of images, .parquet files, "
                         f"'coco' or a Hugging Face dataset id")
    # Hub ids are owner/name; anything else that is not on disk is a mistyped local path.
    looks_local = data.startswith((".", "/", "~")) or "\\" in data or data.count("/") != 1 or "*" in data
    if looks_local or not HUB_ID.match(data):
        raise InputError(f"data folder '{data}' does not exist; check the path "
                         f"(or pass 'coco' or a Hugging Face dataset id such as owner/name)")
    return HUB, data


def check_hub(source: str) -> None:
    """InputError (one line, within :data:`HUB_TIMEOUT`) when the Hugging Face hub cannot be reached, before
    ``datasets`` would retry for half a minute and log each retry. Skipped in offline mode (``HF_HUB_OFFLINE``:
    a cached copy is used) and behind a proxy (the proxy decides)."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on") or any(
            os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=HUB_TIMEOUT).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"cannot open Hugging Face dataset '{source}': the hub ({host}) cannot be reached "
                         f"({reason}); check your network, set HF_HUB_OFFLINE=1 to use a cached copy, or download "
                         f"it and pass a local folder or parquet files") from None


def hub_error(source: str, split: str, exc: BaseException) -> InputError:
    """The one-line InputError for a hub dataset that cannot be opened (offline, unknown id, private, no split)."""
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return InputError(f"cannot open Hugging Face dataset '{source}' (split '{split}'): {type(exc).__name__}: "
                      f"{first}; check the id and your network, or download it and pass a local folder or "
                      f"parquet files")


def open_stream(kind: str, source: Any, split: str = "train") -> tuple[Any, str]:
    """A streaming ``datasets.IterableDataset`` of one undecoded image column, and the column's name.

    ``kind`` is "parquet" (``source`` = list of files) or "hub" (``source`` = dataset id). The image
    column is the one typed ``Image``; failing that, a binary or image-like column whose name says
    image. Raises InputError when the dataset cannot be opened or has no image column.
    """
    import datasets

    if kind != PARQUET:
        check_hub(source)
    else:
        check_parquet_files(source)
    quiet = logging.getLogger("datasets")  # its own error lines would come before fastnst's one line
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        if kind == PARQUET:
            ds = datasets.load_dataset("parquet", data_files=list(source), split="train", streaming=True)
        else:
            ds = datasets.load_dataset(source, split=split, streaming=True)
    except FastNSTError:
        raise
    except Exception as exc:  # offline, unknown id, private repo, missing split, bad file, ...
        if kind != PARQUET:
            raise hub_error(source, split, exc) from None
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot open parquet files: {type(exc).__name__}: {first}; check the files") from None
    finally:
        quiet.setLevel(level)
    column = find_image_column(ds)
    ds = ds.select_columns([column])
    ds = ds.cast_column(column, datasets.Image(decode=False))
    return ds, column


def check_parquet_files(files: Sequence[str]) -> None:
    """InputError naming the first of ``files`` whose parquet footer cannot be read (a damaged or foreign file)."""
    import pyarrow.parquet as pq

    for f in files:
        try:
            pq.read_schema(f)
        except Exception as exc:  # noqa: BLE001 - ArrowInvalid, OSError, ...
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise InputError(f"'{f}' is not a readable parquet file ({type(exc).__name__}: {first}); replace it or "
                             f"leave it out of --data") from None


def choose_image_column(typed: list[str], candidates: list[str], columns: list[str]) -> str:
    """The image column among ``columns``: the first of ``typed`` (columns typed as images) named image/img,
    else the first typed one, else the first of ``candidates`` (binary or string columns) whose name says
    image. InputError listing the columns when there is none."""
    if typed:
        return next((n for n in typed if n.lower() in ("image", "img")), typed[0])
    for name in candidates:
        if any(word in name.lower() for word in IMAGE_WORDS):
            return name
    raise InputError(f"the dataset has no image column (columns: {', '.join(columns)}); pass a dataset with images")


def find_image_column(ds: Any) -> str:
    """Name of the image column of a ``datasets`` dataset (Image feature first, then by name)."""
    import datasets

    features = ds.features
    if features is None:  # some streaming sources only know their columns after a first row
        try:
            first = next(iter(ds))
        except StopIteration:
            raise InputError("the dataset is empty; pass a source with images") from None
        typed = [name for name, value in first.items()
                 if isinstance(value, Image.Image) or (isinstance(value, dict) and "bytes" in value)]
        return choose_image_column(typed, list(first), list(first))
    typed = [name for name, f in features.items() if isinstance(f, datasets.Image)
             or (isinstance(f, dict) and isinstance(f.get("bytes"), datasets.Value))]  # {bytes, path}
    candidates = [name for name, f in features.items()
                  if isinstance(f, datasets.Value) and f.dtype in ("binary", "large_binary", "string")]
    return choose_image_column(typed, candidates, list(features))


def hf_features(schema: Any) -> dict[str, Any]:
    """The Hugging Face features a parquet file written by ``datasets`` records in its schema metadata
    (column -> feature dict; {} when there are none)."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return {}
    try:
        features = json.loads(raw).get("info", {}).get("features", {})
    except (ValueError, AttributeError):
        return {}
    return features if isinstance(features, dict) else {}


def schema_image_column(schema: Any, column: str | None = None) -> str:
    """The image column of a ``pyarrow`` schema: ``column`` when given (InputError when it is not there), else
    the column ``datasets`` recorded as an Image, or a ``{bytes, path}`` struct, then a binary or string column
    whose name says image."""
    import pyarrow as pa

    names = list(schema.names)
    if column is not None:
        if column not in names:
            raise InputError(f"the dataset has no column '{column}' (columns: {', '.join(names)}); check --column")
        kind = schema.field(column).type
        if not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_string(kind)
                or pa.types.is_large_string(kind) or (pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0)):
            raise InputError(f"column '{column}' holds {kind}, not images (encoded bytes, paths or {{bytes, path}}); "
                             f"check --column")
        return column
    features: Mapping[str, Any] = hf_features(schema)
    typed = [n for n in names if isinstance(features.get(n), dict) and features[n].get("_type") == "Image"]
    for field in schema:
        if field.name not in typed and pa.types.is_struct(field.type) and \
                field.type.get_field_index("bytes") >= 0:
            typed.append(field.name)
    candidates = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
                  or pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return choose_image_column(typed, candidates, names)


def image_source(value: Any) -> Any:
    """What :func:`fastnst.image.read_image` should read for one undecoded image value of a dataset
    (a ``{bytes, path}`` dict, bytes, a path or a PIL image)."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        if value.get("path"):
            return value["path"]
        raise InputError("an image entry has neither bytes nor a path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (str, Image.Image)):
        return value
    raise InputError(f"an image entry has an unexpected type {type(value).__name__}")


def describe(value: Any, index: int) -> str:
    """A row's name for messages: its path when it has one, else 'row N'."""
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    if isinstance(value, dict) and value.get("path"):
        return f"row {index} ({value['path']})"
    return f"row {index}"


__all__ = ["COCO_HUB_ID", "PARQUET_SUFFIXES", "FOLDER", "PARQUET", "HUB", "parquet_files", "resolve_source",
           "open_stream", "check_hub", "hub_error", "choose_image_column", "find_image_column", "hf_features",
           "schema_image_column", "image_source", "describe"]
