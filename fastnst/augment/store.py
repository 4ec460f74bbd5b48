"""The output folder of an augment job: what it holds, how a part is written whole, and how a job ends. Torch-free.

While a job runs, DEST holds the finished parts' files and a hidden state folder ``.fastnst-augment/``: the
job's identity (``job.json``: everything that decides the output) and one record per finished part
(``parts/00012.json``), written after the part's files, so a part is done exactly when its record exists.
Every file is written through a temporary file and renamed (:func:`fastnst.fileio.atomic_output`): a job
killed at any point leaves no partial file, and a restart with ``--resume`` redoes only the parts without a
record. When all parts are done the job writes ``metadata.jsonl`` (folder outputs: Hugging Face's
imagefolder format), ``errors.jsonl`` (the rows that could not be read) and ``augment.json`` (what was done,
with what), and removes the state folder. Nothing in these files depends on the engine, the workers or the
time, so a job gives the same bytes however it ran.

Output of a parquet or hub source: ``train-00000-of-00012.parquet``... (every input column, then the
stylised image, style and strength); of a folder: the images at the input's relative paths.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastnst.constants import VERSION
from fastnst.errors import ConfigError, InputError, OutputExistsError

STATE = ".fastnst-augment"
JOB = "job.json"
PARTS = "parts"
MANIFEST = "augment.json"
METADATA = "metadata.jsonl"
ERRORS = "errors.jsonl"
PARQUET_NAME = "{split}-{index:05d}-of-{count:05d}.parquet"
PARQUET_RE = re.compile(r"^[\w.-]+-\d{5}-of-\d{5}\.parquet$")
ROW_GROUP_ROWS = 100  # rows per parquet row group (datasets' size for image datasets)


def write_json(path: Path, data: Any, lines: bool = False) -> None:
    """``data`` as JSON (``lines``: one object per line) written whole (temp file, rename)."""
    from fastnst.fileio import atomic_output

    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in data) if lines else \
        json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: Path) -> Any:
    """A JSON file, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class Store:
    """The output folder ``dest`` of a job."""

    def __init__(self, dest: str | os.PathLike) -> None:
        self.dest = Path(dest)
        self.state = self.dest / STATE

    def record_path(self, index: int) -> Path:
        return self.state / PARTS / f"{index:05d}.json"

    # -- what is there ---------------------------------------------------------------------------------
    def saved_identity(self) -> dict[str, Any] | None:
        """The identity of the job that wrote DEST (unfinished: job.json; finished: augment.json), or None."""
        job = read_json(self.state / JOB)
        if isinstance(job, dict):
            return job
        manifest = read_json(self.dest / MANIFEST)
        return manifest.get("job") if isinstance(manifest, dict) else None

    @property
    def finished(self) -> bool:
        return (self.dest / MANIFEST).is_file() and not (self.state / JOB).is_file()

    def records(self) -> dict[int, dict[str, Any]]:
        """The records of the finished parts, by part index."""
        out: dict[int, dict[str, Any]] = {}
        folder = self.state / PARTS
        if folder.is_dir():
            for path in folder.glob("*.json"):
                record = read_json(path)
                if isinstance(record, dict) and isinstance(record.get("part"), int):
                    out[record["part"]] = record
        return out

    def check(self, identity: dict[str, Any], *, resume: bool, overwrite: bool, reads: Sequence[Path] = ()) -> str:
        """Check DEST before any work; returns 'new', 'resume', 'overwrite' or 'finished' (nothing to do).

        Refused (nothing written): DEST a file, its parent missing, DEST inside a folder it ``reads``, an
        existing DEST without ``resume``/``overwrite``, ``overwrite`` on a folder fastnst augment did not
        write, ``resume`` with other arguments. ``overwrite`` on an earlier job's folder removes that job's
        files (and only those) — after every other check, just before the new job starts (:meth:`clear`).
        """
        from fastnst.outputs import is_inside

        dest = self.dest
        if resume and overwrite:
            raise ConfigError("--resume continues a job, --overwrite starts it again; give one of them")
        if dest.exists() and not dest.is_dir():
            raise InputError(f"-o '{dest}' is a file; give a folder")
        for folder in reads:
            if is_inside(dest, folder) or (dest.exists() and is_inside(folder, dest)):
                raise InputError(f"-o '{dest}' is the source or overlaps it ('{folder}'); choose a folder "
                                 f"outside the source")
        if not dest.exists():
            if not dest.parent.is_dir():
                raise InputError(f"output folder '{dest}' cannot be created: '{dest.parent}' does not exist")
            return "new"
        saved = self.saved_identity()
        if not any(dest.iterdir()):
            return "new"
        if saved is None:
            if overwrite or resume:
                raise InputError(f"-o '{dest}' is not empty and was not written by fastnst augment; "
                                 f"{'--overwrite replaces only an earlier augment job' if overwrite else 'nothing to resume'}"
                                 f"; choose a new or empty folder")
            raise OutputExistsError(f"output folder '{dest}' exists and is not empty; choose a new or empty folder")
        if overwrite:
            return "overwrite"
        done = "a finished" if self.finished else "an unfinished"
        if not resume:
            hint = "pass --overwrite to make it again" if self.finished else \
                "pass --resume to finish it or --overwrite to start again"
            raise OutputExistsError(f"'{dest}' holds {done} augment job; {hint}")
        changed = [k for k in sorted(set(identity) | set(saved)) if identity.get(k) != saved.get(k)]
        if changed:
            raise ConfigError(f"'{dest}' holds {done} augment job made with other arguments ({', '.join(changed)} "
                              f"differ); resume with the same arguments, or pass --overwrite to start again")
        return "finished" if self.finished else "resume"

    def clear(self) -> None:
        """Remove the files an earlier job wrote in DEST (its parts, images, records, summary files)."""
        dest = self.dest
        names: list[str] = []
        metadata = dest / METADATA
        if metadata.is_file():
            with contextlib.suppress(OSError, ValueError):
                names += [json.loads(line)["file_name"] for line in metadata.read_text(encoding="utf-8").splitlines()
                          if line.strip()]
        for record in self.records().values():
            names += [row["file_name"] for row in record.get("metadata", [])]
            names += record.get("files", [])
        names += [p.name for p in dest.iterdir() if PARQUET_RE.match(p.name)]
        names += [MANIFEST, METADATA, ERRORS]
        for name in names:
            path = dest / name
            if path.is_file() and path.resolve().is_relative_to(dest.resolve()):
                path.unlink()
        shutil.rmtree(self.state, ignore_errors=True)
        for here, dirs, files in sorted(os.walk(dest), key=lambda t: -len(t[0])):  # empty sub-folders, deepest first
            if Path(here) != dest and not dirs and not files:
                with contextlib.suppress(OSError):
                    os.rmdir(here)

    # -- a job ----------------------------------------------------------------------------------------
    def start(self, identity: dict[str, Any]) -> None:
        """Create DEST and the state folder and record the job's identity (a fresh or resumed job)."""
        (self.state / PARTS).mkdir(parents=True, exist_ok=True)
        if read_json(self.state / JOB) != identity:
            write_json(self.state / JOB, identity)

    def finish(self, identity: dict[str, Any], records: Sequence[dict[str, Any]], summary: dict[str, Any]) -> None:
        """Write metadata.jsonl (folder outputs), errors.jsonl and augment.json from the part ``records`` (in part
        order), then remove the state folder and temporary files of killed workers."""
        from fastnst.fileio import remove_stale_temps

        if any("metadata" in r for r in records):
            write_json(self.dest / METADATA, [row for r in records for row in r["metadata"]], lines=True)
        write_json(self.dest / ERRORS, [e for r in records for e in r["errors"]], lines=True)
        write_json(self.dest / MANIFEST, {"fastnst": VERSION, **summary, "job": identity})
        shutil.rmtree(self.state, ignore_errors=True)
        for here, _, _ in os.walk(self.dest):
            remove_stale_temps(here, force=True)


def parquet_name(split: str, index: int, count: int) -> str:
    """The output file of part ``index`` of ``count`` (Hugging Face's split-file naming: datasets reads the
    folder as split ``split``)."""
    return PARQUET_NAME.format(split=split, index=index, count=count)


class ParquetPart:
    """One output parquet file, written row group by row group into a temporary file, renamed at the end."""

    def __init__(self, path: Path, schema: Any) -> None:
        self.path, self.schema = path, schema
        self.pending: list[Any] = []
        self.count = 0
        self._writer: Any = None
        self._tmp: Path | None = None
        self._ctx: Any = None

    def __enter__(self) -> "ParquetPart":
        import pyarrow.parquet as pq

        from fastnst.fileio import atomic_output

        self._ctx = atomic_output(self.path, overwrite=True)
        self._tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(str(self._tmp), self.schema)
        return self

    def add(self, table: Any) -> None:
        """Rows to append (a pyarrow Table of the output schema); written in row groups of ROW_GROUP_ROWS."""
        self.pending.append(table)
        self.count += table.num_rows
        if sum(t.num_rows for t in self.pending) >= ROW_GROUP_ROWS:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        import pyarrow as pa

        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        whole = table.num_rows if final else table.num_rows - table.num_rows % ROW_GROUP_ROWS
        if whole:
            self._writer.write_table(table.slice(0, whole), row_group_size=ROW_GROUP_ROWS)
        self.pending = [table.slice(whole)] if whole < table.num_rows else []

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            if kind is None:
                self._flush(final=True)
            self._writer.close()
        finally:
            self._ctx.__exit__(kind, exc, tb)


__all__ = ["Store", "ParquetPart", "parquet_name", "write_json", "read_json", "STATE", "MANIFEST", "METADATA",
           "ERRORS", "ROW_GROUP_ROWS"]
