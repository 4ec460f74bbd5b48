"""A source split into parts, and the rows of one part. Torch-free (``pyarrow`` for parquet and hub sources).

A job's unit of work is a *part*: a run of consecutive rows of the source that becomes one output file (a
parquet source) or one group of image files (a folder source), committed whole. The parts are a function of
the source alone (its files, their row counts and row groups, and ``rows_per_part``), never of the engine
or the number of workers, so every engine writes the same files and a restart skips the finished ones.

A row's identity (its *key*, which seeds its draw) is its place in the source: ``sub/photo.jpg`` (the path
below a folder source) or ``data/train-0.parquet#17`` (row 17 of that file, named below the source's common
folder or, on the hub, inside the repository).

Sources are those of :func:`fastnst.sources.resolve_source`: a folder (its ``metadata.jsonl`` or
``metadata.csv``, Hugging Face's imagefolder format, gives more columns per image), local parquet files, or
a Hugging Face dataset id (its parquet files read through ``huggingface_hub``'s file system).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastnst.errors import ConfigError, InputError, MissingDependencyError
from fastnst.sources import (FOLDER, HUB, PARQUET, check_hub, hf_features, hub_error, resolve_source,
                             schema_image_column)

# Rows per part when not given: the source in about this many parts (work for as many workers) ...
TARGET_PARTS = 64
# ... but at least MIN and at most MAX rows (chosen: a 1000-image part of 512-px JPEGs is ~60 MB of parquet).
MIN_ROWS_PER_PART, MAX_ROWS_PER_PART = 16, 1000
METADATA_FILES = ("metadata.jsonl", "metadata.csv")  # Hugging Face imagefolder's per-image columns
FILE_NAME = "file_name"


def need_pyarrow(what: str) -> Any:
    """``pyarrow`` (the 'augment' extra), or MissingDependencyError naming ``what``."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ModuleNotFoundError:
        raise MissingDependencyError(what, "augment") from None
    return pyarrow


@dataclass(frozen=True)
class Part:
    """One unit of work. ``index`` numbers it in the job. Parquet and hub: rows ``start``..``stop`` of ``file``
    (a local path or an ``hf://`` URL) named ``name``. Folder: the images ``images`` (names below the source
    folder), their output names ``outputs`` and their metadata rows ``meta`` (JSON objects or None)."""

    index: int
    file: str | None = None
    name: str | None = None
    start: int = 0
    stop: int = 0
    images: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    meta: tuple[str | None, ...] = ()

    @property
    def rows(self) -> int:
        return len(self.images) if self.file is None else self.stop - self.start


@dataclass
class Plan:
    """A source resolved and split: its ``kind`` (folder, parquet, hub), ``root`` (a folder source's folder,
    absolute), the image ``column`` and input ``schema`` (parquet and hub), the ``parts``, the number of
    ``rows`` and the columns the input adds per row (``columns``)."""

    kind: str
    source: str
    root: str | None = None
    column: str | None = None
    schema: Any = None
    parts: list[Part] = field(default_factory=list)
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    split: str = "train"

    def fingerprint(self) -> str:
        """A hash of what the parts are (file names, row ranges): a resume must find the same."""
        digest = hashlib.sha256()
        for p in self.parts:
            digest.update(json.dumps([p.name, p.start, p.stop, p.images, p.outputs, p.meta]).encode())
        return digest.hexdigest()[:16]


def rows_per_part(total: int, wanted: int | None) -> int:
    """``wanted``, or about :data:`TARGET_PARTS` parts of MIN..MAX rows."""
    if wanted is not None:
        return int(wanted)
    return max(MIN_ROWS_PER_PART, min(MAX_ROWS_PER_PART, math.ceil(total / TARGET_PARTS)))


def plan_source(source: str, *, per_part: int | None = None, column: str | None = None, split: str = "train",
                format: str | None = None) -> Plan:
    """Resolve ``source`` (:func:`fastnst.sources.resolve_source`) and split it into parts.

    ``column``: the image column of a parquet or hub source (default: detected). ``format``: the output format
    of a folder source's images (default: each input's, as ``fastnst stylize`` does). Raises InputError for an
    empty, missing or unreadable source, ConfigError for clashing output names, MissingDependencyError without
    ``pyarrow`` for parquet and hub sources.
    """
    kind, found = resolve_source(source, flag="SOURCE")
    if kind == FOLDER:
        if column is not None:
            raise ConfigError("--column applies to parquet and hub sources; a folder's images are its files")
        return _plan_folder(source, found, per_part, format)
    need_pyarrow(f"augmenting {'parquet files' if kind == PARQUET else 'a Hugging Face dataset'}")
    if kind == HUB:
        files, names = hub_parquet_files(found, split)
    else:
        common = os.path.commonpath([os.path.dirname(f) for f in found])
        files, names = list(found), [Path(os.path.relpath(f, common)).as_posix() for f in found]
    return _plan_parquet(source, kind, files, names, per_part, column, split)


# -------------------------------------------------------------------------------------------- folders

def folder_metadata(root: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """A folder source's per-image columns (file name -> row, columns) from its metadata.jsonl or .csv."""
    for name in METADATA_FILES:
        path = root / name
        if not path.is_file():
            continue
        rows: list[dict[str, Any]] = []
        try:
            with open(path, encoding="utf-8", newline="") as f:
                if name.endswith(".csv"):
                    rows = list(csv.DictReader(f))
                else:
                    rows = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read '{path}': {exc}; fix it or remove it") from None
        if not all(isinstance(r, dict) and FILE_NAME in r for r in rows):
            raise InputError(f"'{path}' has a row without '{FILE_NAME}'; each row names its image in '{FILE_NAME}'")
        columns = list(dict.fromkeys(k for r in rows for k in r if k != FILE_NAME))
        return {Path(str(r[FILE_NAME])).as_posix(): {k: v for k, v in r.items() if k != FILE_NAME}
                for r in rows}, columns
    return {}, []


def _plan_folder(source: str, files: list[Path], per_part: int | None, format: str | None) -> Plan:
    from fastnst.outputs import Source, check_format, folder_targets

    root = Path(source).expanduser().resolve()
    names = [Path(os.path.relpath(Path(f).resolve(), root)).as_posix() for f in files]
    check_format(format)
    targets = folder_targets([Source(n, Path(n), Path(n)) for n in names], Path(), format,
                             clash="'{current}' and '{earlier}' would both be written to '{target}'; "
                                   "pass --format or rename one")
    outputs = [t.as_posix() for t in targets]
    metadata, columns = folder_metadata(root)
    size = rows_per_part(len(names), per_part)
    parts = []
    for index, start in enumerate(range(0, len(names), size)):
        chunk = names[start:start + size]
        meta = tuple(json.dumps(metadata[n], sort_keys=False) if n in metadata else None for n in chunk)
        parts.append(Part(index, images=tuple(chunk), outputs=tuple(outputs[start:start + size]), meta=meta))
    return Plan(FOLDER, source, str(root), parts=parts, rows=len(names), columns=columns)


# -------------------------------------------------------------------------------------- parquet, hub

def hub_parquet_files(repo_id: str, split: str) -> tuple[list[str], list[str]]:
    """The parquet files (``hf://`` URLs) of split ``split`` of hub dataset ``repo_id`` and their names in the
    repository: its own files when it is stored as parquet, else the hub's parquet conversion
    (``refs/convert/parquet``). InputError (one line) offline, for an unknown id or a missing split."""
    try:
        import datasets
        from huggingface_hub import HfFileSystem
    except ModuleNotFoundError:
        raise MissingDependencyError("augmenting a Hugging Face dataset", "augment") from None
    check_hub(repo_id)
    try:
        builder = datasets.load_dataset_builder(repo_id)
        files = [str(f) for f in (builder.config.data_files or {}).get(split, [])]
        if not files or not all(f.endswith(".parquet") for f in files):
            config = builder.config.name or "default"
            files = ["hf://" + f for f in sorted(HfFileSystem().glob(
                f"datasets/{repo_id}@~parquet/{config}/{split}/*.parquet"))]
    except Exception as exc:  # offline, unknown id, private, ...
        raise hub_error(repo_id, split, exc) from None
    if not files:
        raise InputError(f"Hugging Face dataset '{repo_id}' has no parquet files for split '{split}'; "
                         f"check --split")
    names = [f.split("/", 5)[-1] if f.startswith("hf://datasets/") else f for f in files]
    return files, names


def open_file(path: str) -> Any:
    """A binary file object of a local path or an ``hf://`` URL."""
    if path.startswith("hf://"):
        from huggingface_hub import HfFileSystem

        return HfFileSystem().open(path[len("hf://"):], "rb")
    return open(path, "rb")


def _plan_parquet(source: str, kind: str, files: list[str], names: list[str], per_part: int | None,
                  column: str | None, split: str) -> Plan:
    import pyarrow as pa
    import pyarrow.parquet as pq

    metas, schemas = [], []
    for path in files:
        try:
            with open_file(path) as f:
                pf = pq.ParquetFile(f)
                metas.append([pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)])
                schemas.append(pf.schema_arrow)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"cannot read parquet file '{path}': {str(exc).splitlines()[0][:200]}; "
                             f"check the file") from None
    for path, schema in zip(files[1:], schemas[1:]):
        if schema.names != schemas[0].names:
            raise InputError(f"'{path}' has other columns than '{files[0]}' ({', '.join(schema.names)} vs "
                             f"{', '.join(schemas[0].names)}); augment one dataset at a time")
    try:
        schema = pa.unify_schemas(schemas) if len(schemas) > 1 else schemas[0]
    except pa.ArrowException as exc:
        raise InputError(f"the parquet files' column types differ: {str(exc).splitlines()[0][:200]}") from None
    schema = schema.with_metadata(schemas[0].metadata)
    total = sum(sum(groups) for groups in metas)
    if total == 0:
        raise InputError(f"'{source}' has no rows; pass a dataset with images")
    image_column = schema_image_column(schema, column)
    size = rows_per_part(total, per_part)
    parts: list[Part] = []
    for path, name, groups in zip(files, names, metas):
        for start, stop in _ranges(groups, size):
            parts.append(Part(len(parts), file=path, name=name, start=start, stop=stop))
    return Plan(kind, source, column=image_column, schema=schema, parts=parts, rows=total,
                columns=[n for n in schema.names], split=split)


def _ranges(groups: Sequence[int], size: int) -> Iterator[tuple[int, int]]:
    """Row ranges of one file: whole row groups gathered up to ``size`` rows; a larger group in slices."""
    start = stop = 0
    for rows in groups:
        if rows > size:
            if stop > start:
                yield start, stop
            for s in range(stop, stop + rows, size):
                yield s, min(s + size, stop + rows)
            start = stop = stop + rows
            continue
        if stop - start + rows > size and stop > start:
            yield start, stop
            start = stop
        stop += rows
    if stop > start:
        yield start, stop


def read_parquet_part(part: Part, batch_size: int) -> Iterator[tuple[list[str], Any]]:
    """The rows of a parquet or hub part, in order: (keys, pyarrow RecordBatch) of at most ``batch_size`` rows."""
    import pyarrow.parquet as pq

    with open_file(part.file) as f:  # type: ignore[arg-type]
        pf = pq.ParquetFile(f)
        groups, first, offset = [], None, 0
        for g in range(pf.metadata.num_row_groups):
            rows = pf.metadata.row_group(g).num_rows
            if offset + rows > part.start and offset < part.stop:
                groups.append(g)
                first = offset if first is None else first
            offset += rows
        row = first or 0
        for batch in pf.iter_batches(batch_size=batch_size, row_groups=groups, use_threads=False):
            lo, hi = max(part.start - row, 0), min(part.stop - row, batch.num_rows)
            if hi > lo:
                piece = batch.slice(lo, hi - lo)
                yield [f"{part.name}#{row + lo + i}" for i in range(piece.num_rows)], piece
            row += batch.num_rows
            if row >= part.stop:
                break


def output_schema(plan: Plan, added: Sequence[str]) -> Any:
    """The schema of a parquet job's output files: every input column, then the stylised image (``{bytes,
    path}``, as ``datasets`` writes an Image), the style and the strength (names ``added``); the Hugging
    Face features recorded in the metadata so that ``datasets`` reads the new column as an Image."""
    import pyarrow as pa

    image, style, strength = added
    fields = list(plan.schema) + [pa.field(image, pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                                  pa.field(style, pa.string()), pa.field(strength, pa.float64())]
    metadata = {k: v for k, v in (plan.schema.metadata or {}).items() if k != b"pandas"}
    features = hf_features(plan.schema)
    if not features:
        try:
            import datasets

            features = datasets.Features.from_arrow_schema(plan.schema.remove_metadata()).to_dict()
        except ModuleNotFoundError:  # without datasets: the new image column reads as a {bytes, path} struct
            features = {}
    if features:
        features.update({image: {"_type": "Image"}, style: {"dtype": "string", "_type": "Value"},
                         strength: {"dtype": "float64", "_type": "Value"}})
        metadata[b"huggingface"] = json.dumps({"info": {"features": features}}).encode()
    return pa.schema(fields, metadata=metadata)


__all__ = ["Part", "Plan", "plan_source", "rows_per_part", "read_parquet_part", "output_schema", "open_file",
           "hub_parquet_files", "folder_metadata", "need_pyarrow", "TARGET_PARTS", "MIN_ROWS_PER_PART",
           "MAX_ROWS_PER_PART"]
