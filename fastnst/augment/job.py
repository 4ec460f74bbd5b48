"""``fastnst augment``: stylise a whole dataset, as a library function (``fastnst.augment``). Torch-free.

Every option is checked here, once, before anything is written: the styles and strength (and style pictures
fetched), the source resolved and split into parts (:mod:`fastnst.augment.parts`), the output folder
checked (:class:`fastnst.augment.store.Store`), the engine ready (Ray connected). Then the parts that are not
yet written run on the engine (:mod:`fastnst.augment.engines`), progress goes to ``progress(done, total,
text)`` with rows/s and the time left, and the job ends by writing its summary files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastnst import checks
from fastnst.augment.augmenter import DEFAULT_BATCH, DEFAULT_FORMAT
from fastnst.augment.draws import Draws
from fastnst.augment.engines import ENGINES
from fastnst.errors import ConfigError, did_you_mean
from fastnst.options import check_options, option
from fastnst.runtime.providers import DEVICES
from fastnst.runtime.stylizer import MAX_BATCH

ProgressFn = Callable[[int, int, str], None]
ADDED = ("stylized_image", "style", "strength")  # the columns a job adds to each row


@dataclass
class AugmentOptions:
    """``fastnst augment``: one source for its flags, defaults, choices and bounds."""

    output: str = option("", "output folder (created; its parent must exist)", short="-o")
    styles: str | None = option(None, "styles to draw from, comma-separated: built-in names (fastnst styles), "
                                "NAME:WEIGHT for relative weights; (style pictures: image files or a folder of "
                                "them, once the universal model is in fastnst); default: every built-in style, "
                                "equally likely", metavar="NAME[:W],...")
    strength: str = option("1", "stylisation strength: a value, or a range LO,HI drawn per row", metavar="S|LO,HI")
    seed: int = option(0, "seed of the per-row draws (a row's style and strength come from the seed and the "
                       "row's identity alone)", low=0)
    engine: str = option("local", "local (this machine) or ray (Ray Data: a local Ray, or the cluster at "
                         "--address / $RAY_ADDRESS; pip install 'fastnst[ray]')", choices=ENGINES)
    workers: int | None = option(None, "parallel workers, each with its own model session (default: local 1; "
                                 "ray: the cluster's CPUs / --threads)", low=1)
    threads: int | None = option(None, "CPU threads per worker (default: local: the CPUs available / workers; "
                                 "ray: 1)", low=1)
    device: str = option("cpu", "onnxruntime device of each worker (cpu gives the same bits on every engine)",
                         choices=DEVICES)
    gpus: float | None = option(None, "ray: GPUs per worker (implies --device cuda)", above=0)
    address: str | None = option(None, "ray: the cluster's address HOST:PORT or ray://HOST:PORT (default: "
                                 "$RAY_ADDRESS, else a local Ray started for this job)")
    max_size: int | None = option(None, "downscale so the longer side is at most N pixels", low=1)
    format: str | None = option(None, "image format of the results: folder source: each input's (default), "
                                "parquet/hub: jpg (default); png, webp, ...")
    quality: int = option(95, "JPEG/WebP quality", low=1, high=100)
    column: str | None = option(None, "parquet/hub: the image column (default: detected)")
    split: str = option("train", "hub: the split to read")
    rows_per_part: int | None = option(None, "rows per output file and unit of work (default: the source in "
                                       "about 64 parts of 16..1000 rows)", low=1)
    batch_size: int = option(DEFAULT_BATCH, "images per network call", low=1, high=MAX_BATCH)
    resume: bool = option(False, "finish the unfinished job in the output folder (same arguments)")
    overwrite: bool = option(False, "replace an earlier augment job's output folder")


@dataclass
class Report:
    """What a job did: summary ``lines``, rows written and failed, parts run now, seconds, where parts ran."""

    lines: list[str] = field(default_factory=list)
    rows: int = 0
    failed: int = 0
    parts: int = 0
    seconds: float = 0.0
    workers: dict[str, int] = field(default_factory=dict)
    output: Path | None = None


class Tracker:
    """Rows done of ``total`` (``already`` done before this run), rows/s of this run and the time left."""

    def __init__(self, total: int, already: int, progress: ProgressFn | None) -> None:
        self.total, self.already, self.done, self.progress = total, already, already, progress
        self.start = time.perf_counter()

    def rows(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total, self.text())

    def rate(self) -> float:
        return (self.done - self.already) / max(time.perf_counter() - self.start, 1e-9)

    def text(self) -> str:
        rate = self.rate()
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        return f"rows, {rate:.1f} rows/s, {_duration(left)} left"


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _options(output: str | os.PathLike | None, options: AugmentOptions | None, kwargs: dict[str, Any]) -> AugmentOptions:
    opts = dataclasses.replace(options) if options is not None else AugmentOptions()
    names = {f.name for f in dataclasses.fields(AugmentOptions)}
    for key, value in kwargs.items():
        if key not in names:
            raise ConfigError(f"augment() got an unknown option '{key}'{did_you_mean(key, names)}")
        setattr(opts, key, value)
    if output is not None:
        opts.output = os.fspath(output)
    return check_options(opts)


def augment(source: str | os.PathLike, output: str | os.PathLike | None = None, options: AugmentOptions | None = None,
            *, progress: ProgressFn | None = None, **kwargs: Any) -> Report:
    """Stylise every image of ``source`` into ``output``, each with a style and strength drawn from the seed and
    the row's identity.

    ``source``: a folder of images (sub-folders included; its ``metadata.jsonl`` columns are kept), parquet
    files (a file, a folder or a glob) or a Hugging Face dataset id. ``output``: a new or empty folder; it gets
    parquet files (every input column plus ``stylized_image``, ``style``, ``strength``) for a parquet or hub
    source, or the images at their relative paths plus ``metadata.jsonl`` for a folder. ``options`` or keyword
    arguments: the fields of :class:`AugmentOptions` (``styles`` also takes a list or a {name: weight} dict,
    ``strength`` a number or a (low, high) pair). ``progress(done, total, text)`` is called as rows finish.

    A row whose image cannot be read is recorded in ``errors.jsonl`` and skipped. A job killed at any point
    and started again with ``resume=True`` finishes with the same files as an uninterrupted one. Raises
    ConfigError, InputError or OutputExistsError (nothing written), MissingDependencyError without the
    'augment' extra (parquet, hub) or the 'ray' extra (``engine='ray'``).
    """
    from fastnst.augment.engines import Job, cluster_size, connect_ray, need_ray, run_local, run_ray
    from fastnst.augment.parts import output_schema, plan_source
    from fastnst.augment.render import check_pictures
    from fastnst.augment.store import Store
    from fastnst.sources import FOLDER

    opts = _options(output, options, kwargs)
    if not opts.output.strip():
        raise ConfigError("-o/--output is empty; give the output folder")
    ray_only = [flag for flag, value in (("--gpus", opts.gpus), ("--address", opts.address)) if value is not None]
    if opts.engine != "ray" and ray_only:
        raise ConfigError(f"{ray_only[0]} applies to --engine ray")
    if opts.engine == "ray":
        need_ray()
    draws = Draws.of(opts.styles, opts.strength, opts.seed)
    pictures = check_pictures(draws.choices)
    plan = plan_source(os.fspath(source), per_part=opts.rows_per_part, column=opts.column, split=opts.split,
                       format=opts.format)
    taken = set(plan.columns) | ({"file_name"} if plan.kind == FOLDER else set())
    added = ADDED[1:] if plan.kind == FOLDER else ADDED
    clash = [name for name in added if name in taken]
    if clash:
        raise ConfigError(f"the source already has a column '{clash[0]}', which augment adds; rename it first")
    identity = {"parts": plan.fingerprint(), "kind": plan.kind, "column": plan.column, "split": plan.split,
                "draws": draws.identity(), "max_size": opts.max_size, "format": opts.format, "quality": opts.quality,
                "pictures": {k: hashlib.sha256(v).hexdigest()[:16] for k, v in sorted(pictures.items())}}
    dest = Path(opts.output).expanduser().resolve()
    # a folder the job reads (a folder of images or of parquet files): DEST must not be in it, nor it in DEST
    reads = [Path(os.fspath(source)).expanduser()] if plan.kind != "hub" and Path(os.fspath(source)).expanduser().is_dir() else []
    store = Store(dest)
    state = store.check(identity, resume=opts.resume, overwrite=opts.overwrite, reads=reads)
    if state == "finished":
        return Report([f"'{dest}' already holds this finished job; nothing to do"], output=dest)

    providers: Any = "cuda" if opts.gpus else opts.device
    ray, started = None, False
    workers, threads = opts.workers or 1, opts.threads
    if opts.engine == "ray":
        ray, started = connect_ray(opts.address)
    try:
        if ray is not None:
            cpus, gpus = cluster_size(ray)
            threads = threads or 1
            workers = opts.workers or max(1, cpus // threads)
            if workers * threads > cpus:
                raise ConfigError(f"the Ray cluster has {cpus} CPUs; {workers} workers x {threads} threads need "
                                  f"{workers * threads}; lower --workers or --threads")
            if opts.gpus and workers * opts.gpus > gpus:
                raise ConfigError(f"the Ray cluster has {gpus} GPUs; {workers} workers x {opts.gpus:g} GPUs need more; "
                                  f"lower --workers or --gpus")
        elif workers > 1 and threads is None:
            threads = max(1, checks.available_cpus() // workers)
        if state == "overwrite":
            store.clear()
        store.start(identity)
        records = {i: r for i, r in store.records().items() if i < len(plan.parts)}
        todo = [p for p in plan.parts if p.index not in records]
        job = Job(plan.kind, plan.root, plan.column, str(dest), draws, pictures, split=plan.split,
                  parts=len(plan.parts), schema=None if plan.kind == FOLDER else output_schema(plan, ADDED),
                  added=ADDED, max_size=opts.max_size,
                  format=opts.format or (None if plan.kind == FOLDER else DEFAULT_FORMAT), quality=opts.quality,
                  batch_size=opts.batch_size, providers=providers, threads=threads)
        already = sum(r["rows"] + r["failed"] for r in records.values())
        tracker = Tracker(plan.rows, already, progress)
        per_batch = ray is None and workers <= 1
        where: Counter[str] = Counter()

        def on_record(record: dict[str, Any]) -> None:
            worker = record.pop("worker", {})
            where[str(worker.get("where", "local"))] += 1
            records[record["part"]] = record
            if not per_batch:
                tracker.rows(record["rows"] + record["failed"])

        if ray is not None:
            run_ray(job, todo, workers, threads or 1, opts.gpus, on_record)
        else:
            run_local(job, todo, workers, on_record, tracker.rows if per_batch else None)
        ordered = [records[p.index] for p in plan.parts]
        rows, failed = sum(r["rows"] for r in ordered), sum(r["failed"] for r in ordered)
        styles: Counter[str] = Counter()
        for r in ordered:
            styles.update(r["styles"])
        summary = {"source": os.fspath(source), "kind": plan.kind, "rows_in": plan.rows, "rows": rows,
                   "failed": failed, "parts": len(plan.parts), "styles": dict(sorted(styles.items())),
                   "columns": ([*plan.columns, *ADDED] if plan.kind != FOLDER else ["file_name", *plan.columns, *added])}
        store.finish(identity, ordered, summary)
    finally:
        if started and ray is not None:
            ray.shutdown()
    seconds = time.perf_counter() - tracker.start
    engine = f"ray ({workers} workers x {threads or 1} threads" + (f" on {len(where)} nodes)" if len(where) > 1 else ")") \
        if opts.engine == "ray" else f"local ({workers} worker{'s' if workers > 1 else ''})"
    now = tracker.done - already
    lines = [f"augmented {now} rows in {seconds:.1f} s ({now / max(seconds, 1e-9):.1f} rows/s) on {engine}"
             + (f"; {already} rows were already done" if already else "") + f" -> {dest}"]
    if failed:
        lines.append(f"{failed} row{'s' if failed != 1 else ''} could not be read: see {dest / 'errors.jsonl'}")
    lines.append("styles: " + ", ".join(f"{k} {v}" for k, v in styles.most_common()))
    return Report(lines, rows, failed, len(todo), seconds, dict(where), dest)


__all__ = ["augment", "AugmentOptions", "Report", "Tracker", "ADDED"]
