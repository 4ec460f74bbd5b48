"""The engines that run a job's parts: ``local`` (this process, or a few processes) and ``ray`` (Ray Data).

Both run the same :class:`PartWorker` on the same parts: a worker holds one :class:`StyleAugmenter` (one
onnxruntime session, its threads set to the worker's CPUs), reads a part's rows, stylises them in batches
and writes the part whole, then its record. The engines differ only in where workers live:

- ``local``: one worker in this process (``workers=1``), or a pool of spawned processes;
- ``ray``: ``ray.init()`` joins the cluster at ``address`` (or ``RAY_ADDRESS``) or starts a local one; the
  parts become a Ray Data dataset whose ``map_batches`` runs a fixed pool of actors, one worker each
  (``num_cpus`` = its threads, ``num_gpus`` when asked, then on onnxruntime's CUDA provider). A part, not a
  row, is what Ray Data moves: each part is written and recorded by the actor that ran it, so every output
  file is committed whole and a restart skips finished parts; inside a part, rows go through the model as
  numpy batches. On a cluster DEST (and a local source) must be a path every node sees (a shared file system).

Torch-free; ``ray`` is imported only by the ray engine (the ``ray`` extra).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fastnst.augment.augmenter import Result, StyleAugmenter
from fastnst.augment.draws import Draws
from fastnst.augment.parts import Part, read_parquet_part
from fastnst.augment.store import ParquetPart, Store, parquet_name, write_json
from fastnst.errors import ConfigError, FastNSTError, MissingDependencyError

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
CONNECT_TIMEOUT = 5.0  # seconds to reach a Ray cluster's address before saying it is unreachable (chosen)

OnRecord = Callable[[dict[str, Any]], None]
OnRows = Callable[[int], None]


@dataclass
class Job:
    """Everything a worker needs, checked and resolved to absolute paths (it pickles, for processes and actors)."""

    kind: str
    root: str | None
    column: str | None
    dest: str
    draws: Draws
    pictures: dict[str, bytes]
    split: str = "train"
    parts: int = 0
    schema: Any = None  # the output parquet schema
    added: tuple[str, str, str] = ("stylized_image", "style", "strength")
    max_size: int | None = None
    format: str | None = None
    quality: int = 95
    batch_size: int = 4
    providers: Any = "cpu"
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def augmenter(self) -> StyleAugmenter:
        from fastnst.augment.augmenter import DEFAULT_FORMAT

        return StyleAugmenter(draws=self.draws, pictures=self.pictures, max_size=self.max_size,
                              format=self.format or DEFAULT_FORMAT, quality=self.quality, providers=self.providers,
                              threads=self.threads, batch_size=self.batch_size)


class PartWorker:
    """Runs parts of ``job``: one augmenter (sessions opened on the first part) and the output folder."""

    def __init__(self, job: Job, where: str = "local") -> None:
        self.job, self.where = job, where
        self.augmenter = job.augmenter()
        self.store = Store(job.dest)

    def run(self, part: Part, on_rows: OnRows | None = None) -> dict[str, Any]:
        """Stylise and write ``part``, then its record; returns the record (``on_rows(n)`` after each batch)."""
        t0 = time.perf_counter()
        errors: list[dict[str, str]] = []
        styles: dict[str, int] = {}
        record: dict[str, Any] = {"part": part.index}
        if part.file is None:
            record["metadata"], record["files"] = self._folder(part, errors, styles, on_rows)
        else:
            self._parquet(part, errors, styles, on_rows)
        record.update(rows=part.rows - len(errors), failed=len(errors), errors=errors,
                      styles=dict(sorted(styles.items())))
        write_json(self.store.record_path(part.index), record)
        record["worker"] = {"where": self.where, "host": socket.gethostname(), "pid": os.getpid(),
                            "seconds": round(time.perf_counter() - t0, 3)}
        return record

    def _count(self, results: list[Result], errors: list[dict[str, str]], styles: dict[str, int]) -> None:
        for r in results:
            if r.error:
                errors.append({"key": r.key, "error": r.error})
            else:
                styles[r.style] = styles.get(r.style, 0) + 1

    def _folder(self, part: Part, errors: list, styles: dict, on_rows: OnRows | None) -> tuple[list, list]:
        from fastnst.image import from_array, save_image

        job, root, dest = self.job, Path(self.job.root or "."), Path(self.job.dest)
        metadata: list[dict[str, Any]] = []
        files: list[str] = []
        size = job.batch_size * 4  # rows decoded at a time (a few network calls' worth)
        for start in range(0, len(part.images), size):
            names = part.images[start:start + size]
            results = self.augmenter.transform([str(root / n) for n in names], list(names))
            self._count(results, errors, styles)
            for r, out, meta in zip(results, part.outputs[start:start + size], part.meta[start:start + size]):
                if r.error:
                    continue
                target = dest / out
                target.parent.mkdir(parents=True, exist_ok=True)
                save_image(from_array(r.pixels), target, overwrite=True, quality=job.quality, format=job.format)
                row = {"file_name": out, **(json.loads(meta) if meta else {})}
                row.update({job.added[1]: r.style, job.added[2]: r.strength})
                metadata.append(row)
                files.append(out)
            if on_rows is not None:
                on_rows(len(names))
        return metadata, files

    def _parquet(self, part: Part, errors: list, styles: dict, on_rows: OnRows | None) -> None:
        import pyarrow as pa

        from fastnst.image import encode_image, from_array

        job = self.job
        fmt = job.format or self.augmenter.format
        path = Path(job.dest) / parquet_name(job.split, part.index, job.parts)
        with ParquetPart(path, job.schema) as out:
            for keys, batch in read_parquet_part(part, job.batch_size * 4):
                values = batch.column(job.column).to_pylist()
                results = self.augmenter.transform(values, keys)
                self._count(results, errors, styles)
                keep = [i for i, r in enumerate(results) if not r.error]
                if keep:
                    table = pa.Table.from_batches([batch]).take(keep)
                    images = [{"bytes": encode_image(from_array(results[i].pixels), fmt, quality=job.quality),
                               "path": None} for i in keep]
                    columns = {job.added[0]: images, job.added[1]: [results[i].style for i in keep],
                               job.added[2]: [results[i].strength for i in keep]}
                    arrays = list(table.columns) + [pa.array(columns[n], job.schema.field(n).type) for n in job.added]
                    out.add(pa.Table.from_arrays(arrays, schema=job.schema))
                if on_rows is not None:
                    on_rows(len(keys))


# ------------------------------------------------------------------------------------------- local

_WORKER: PartWorker | None = None


def _init_process(job: Job) -> None:
    global _WORKER
    _WORKER = PartWorker(job, "process")


def _run_in_process(part: Part) -> dict[str, Any]:
    assert _WORKER is not None
    return _WORKER.run(part)


def run_local(job: Job, parts: Iterable[Part], workers: int, on_record: OnRecord,
              on_rows: OnRows | None = None) -> None:
    """Run ``parts`` here: in this process (``workers`` 1, progress per batch through ``on_rows``) or in a pool
    of ``workers`` spawned processes (progress per part). ``on_record`` gets each part's record."""
    parts = list(parts)
    if workers <= 1 or len(parts) <= 1:
        worker = PartWorker(job)
        for part in parts:
            on_record(worker.run(part, on_rows))
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(min(workers, len(parts)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_process, initargs=(job,))
    try:
        pending = {pool.submit(_run_in_process, part) for part in parts}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_record(future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------------------------- ray

def need_ray() -> Any:
    """The ``ray`` module (with Ray Data), or MissingDependencyError naming the 'ray' extra."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ModuleNotFoundError:
        raise MissingDependencyError("--engine ray", "ray") from None
    return ray


def _reachable(address: str) -> None:
    """ConfigError (one line) when nothing answers at ``address`` (host:port, ray://host:port) within
    CONNECT_TIMEOUT: ``ray.init`` itself would retry for minutes."""
    target = address.split("://", 1)[-1].rstrip("/")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address '{address}' is not HOST:PORT (e.g. 10.0.0.5:6379 or ray://10.0.0.5:10001)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot reach the Ray cluster at '{address}' ({reason}); start it (ray start --head) "
                          f"or check --address / RAY_ADDRESS") from None


def connect_ray(address: str | None) -> tuple[Any, bool]:
    """Ray, initialised: the running session if this process has one, else the cluster at ``address`` (or
    ``$RAY_ADDRESS``; 'auto' finds one started on this machine with ``ray start``), else a local Ray started
    now. Returns (ray, whether this call started the connection, to end it later). Raises
    MissingDependencyError without the 'ray' extra, ConfigError for an unreachable address."""
    ray = need_ray()
    if ray.is_initialized():
        return ray, False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address not in ("auto", "local"):
        _reachable(address)
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if not address or address == "local":
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address if address != "local" else None, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot connect to Ray{f' at {address!r}' if address else ''}: "
                          f"{str(exc).strip().splitlines()[0][:200]}; check --address / RAY_ADDRESS") from None
    return ray, True


def cluster_size(ray: Any) -> tuple[int, int]:
    """(CPUs, GPUs) of the Ray cluster."""
    resources = ray.cluster_resources()
    return int(resources.get("CPU", 0)), int(resources.get("GPU", 0))


class RayPartWorker:
    """The Ray Data actor: a :class:`PartWorker` built once per actor, one part per call."""

    def __init__(self, job: Job) -> None:
        import ray

        self.worker = PartWorker(job, ray.get_runtime_context().get_node_id())

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        records = [json.dumps(self.worker.run(Part(**json.loads(text)))) for text in batch["part"]]
        return {"record": np.array(records, dtype=object)}


def run_ray(job: Job, parts: Iterable[Part], workers: int, threads: int, gpus: float | None,
            on_record: OnRecord) -> None:
    """Run ``parts`` on the connected Ray cluster through Ray Data: a pool of ``workers`` actors of ``threads``
    CPUs (and ``gpus`` GPUs) each; ``on_record`` gets each part's record as it finishes."""
    import ray.data

    parts = list(parts)
    if not parts:
        return
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # fastnst shows its own progress (rows/s, ETA)
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    items = [{"part": json.dumps(asdict(p))} for p in parts]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    pool = ray.data.ActorPoolStrategy(size=max(1, min(workers, len(parts))))
    ds = ds.map_batches(RayPartWorker, fn_constructor_args=(job,), batch_size=1, batch_format="numpy", compute=pool,
                        num_cpus=threads, num_gpus=gpus if gpus else None)
    try:
        for row in ds.iter_rows():
            on_record(json.loads(row["record"]))
    except FastNSTError:
        raise
    except Exception as exc:  # a worker's error, wrapped by Ray: its own one-line message
        cause = getattr(exc, "cause", None) or exc
        if isinstance(cause, FastNSTError):
            raise FastNSTError(str(cause).splitlines()[0]) from None
        text = str(cause).strip().splitlines()
        raise FastNSTError(f"the Ray job failed: {type(cause).__name__}: {text[0][:200] if text else ''}") from None


__all__ = ["Job", "PartWorker", "run_local", "run_ray", "connect_ray", "cluster_size", "need_ray", "ENGINES",
           "RayPartWorker"]
