"""Dataset augmentation benchmark (issue 22): ``fastnst augment`` on the local engine and on Ray Data.

Sections (``--only a,b``; default: all):

``install``  Ray's cost: the size of the ``ray`` package (and what ``ray[data]`` adds), ``import ray`` and
             ``ray.init()`` of a local Ray (fresh processes, median of 3).
``speed``    throughput (rows/s) and peak memory of whole ``fastnst augment`` processes on ``--images`` photos at
             each ``--sizes`` (parquet made from /work/data/sets/photos, centre-cropped to N², with labels): local
             (1 worker, all threads), local (2 worker processes x 1 thread) and ray (a local Ray, 2 actors x 1
             CPU), alternated over ``--rounds``. ``job rows/s`` is the job's own rate (engine start-up included,
             Ray's ``init`` not); ``wall s`` the whole command; ``peak MiB`` the largest sum of PSS over the
             command's process tree (driver, workers, Ray's daemons), sampled every 0.1 s. The outputs of every
             engine are compared byte for byte.
``cluster``  a two-node Ray cluster simulated on this machine (``ray.cluster_utils.Cluster``: a head with 0 CPUs,
             two worker nodes of 1 CPU each): the parts each node ran, and the output compared with the local
             engine's.
``figure``   (only when named) docs/images/augment-rows.jpg: eight rows of a job, photo above result, captioned
             with the style and strength each row drew.
``kill``     kill and restart: a ``fastnst augment`` process (local, then ray) is killed with SIGKILL once about
             40% of its parts are written, then the same command with ``--resume`` finishes it; the result is
             compared with an uninterrupted run, and leftover processes are counted.

    /work/main/.venv/bin/python scripts/bench_augment.py                    # everything, ~25 min on 2 idle cores
    /work/main/.venv/bin/python scripts/bench_augment.py --only speed --sizes 256 --images 100

Every table is preceded by the command that reproduces it. Needs the 'ray' extra (pip install -e '.[ray]').
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchutil  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PHOTOS = Path("/work/data/sets/photos")
SECTIONS = ("install", "speed", "cluster", "kill")
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
ENGINES = {"local 1x2": ["--engine", "local", "--workers", "1", "--threads", "2"],
           "local 2x1": ["--engine", "local", "--workers", "2", "--threads", "1"],
           "ray 2x1": ["--engine", "ray", "--workers", "2", "--threads", "1"]}
STYLES = "mosaic,pointillist,stained_glass"


# ------------------------------------------------------------------------------------------- helpers

def make_parquet(path: Path, count: int, size: int, stride: int = 1) -> Path:
    """``count`` photos (every ``stride``-th, cycling through /work/data/sets/photos), centre-cropped to size², as
    JPEG rows with labels."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    files = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    rows = []
    for i in range(count):
        file = files[(i * stride) % len(files)]
        img = Image.open(file).convert("RGB")
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        rows.append({"image": {"bytes": buf.getvalue(), "path": file.name}, "label": i % 10})
    features = {"image": {"_type": "Image"}, "label": {"dtype": "int64", "_type": "Value"}}
    schema = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.int64())],
                       metadata={b"huggingface": json.dumps({"info": {"features": features}}).encode()})
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=50)
    return path


def tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            digest.update(p.relative_to(folder).as_posix().encode())
            digest.update(p.read_bytes())
    return digest.hexdigest()[:12]


def _tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(args: list[str], kill_when: callable = None) -> dict:
    """Run a command; its wall time, peak PSS of its process tree (MiB), stderr, exit code. ``kill_when()`` True:
    SIGKILL the command (not its children)."""
    peak = [0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], sum(_pss_kib(p) for p in _tree_pids(proc.pid)))
            if kill_when is not None and kill_when():
                proc.send_signal(signal.SIGKILL)
                return
            stop.wait(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, err = proc.communicate()
    stop.set()
    thread.join()
    return {"wall": time.perf_counter() - t0, "peak_mib": peak[0] / 1024, "stderr": err, "rc": proc.returncode,
            "pgid": proc.pid}


def job_rate(stderr: str) -> tuple[float, float]:
    """(job seconds, rows/s) from the command's summary line."""
    m = re.search(r"augmented (\d+) rows in ([\d.]+) s \(([\d.]+) rows/s\)", stderr)
    return (float(m.group(2)), float(m.group(3))) if m else (float("nan"), float("nan"))


def augment_cmd(source: Path, dest: Path, extra: list[str]) -> list[str]:
    return [PY, "-m", "fastnst", "augment", str(source), "-o", str(dest), "--styles", STYLES, "--strength", "0.6,1",
            "--seed", "1", *extra]


def leftovers(pgid: int) -> int:
    """Processes still alive in the killed command's process group (e.g. Ray daemons)."""
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
    return len(out)


# ------------------------------------------------------------------------------------------ sections

def section_install() -> None:
    import importlib.util

    print("\n## Ray: install size and start-up\n")
    print(f"$ {benchutil.command_line()}")
    site = Path(importlib.util.find_spec("ray").origin).parent.parent
    size = sum(p.stat().st_size for p in (site / "ray").rglob("*") if p.is_file()) / 2**20
    code_import = "import time; t=time.perf_counter(); import ray, ray.data; print(time.perf_counter()-t)"
    code_init = ("import time, logging, ray; t=time.perf_counter(); ray.init(num_cpus=2, include_dashboard=False, "
                 "logging_level=logging.ERROR); print(time.perf_counter()-t); ray.shutdown()")
    def seconds(code: str) -> float:
        run = subprocess.run([PY, "-c", code], capture_output=True, text=True)
        try:
            return float(run.stdout.split()[-1])
        except (IndexError, ValueError):
            print(f"(a run failed: {run.stderr.strip().splitlines()[-1:] })")
            return float("nan")

    imports = [seconds(code_import) for _ in range(3)]
    inits = [seconds(code_init) for _ in range(3)]
    import ray

    benchutil.print_table([{"ray": ray.__version__, "package MiB": size, "import ray, ray.data s": statistics.median(imports),
                            "ray.init (local, 2 CPUs) s": statistics.median(inits)}])


def section_speed(work: Path, sizes: list[int], images: int, rounds: int) -> None:
    print(f"\n## Throughput and memory: {images} photos per size, {rounds} round(s), engines alternated\n")
    print(f"$ {benchutil.command_line()}")
    rows = []
    for size in sizes:
        source = make_parquet(work / f"photos-{size}.parquet", images, size)
        results: dict[str, list[dict]] = {name: [] for name in ENGINES}
        hashes: dict[str, set[str]] = {name: set() for name in ENGINES}
        for r in range(rounds):
            for name, extra in ENGINES.items():
                dest = work / f"out-{size}-{name.replace(' ', '')}-{r}"
                res = run_measured(augment_cmd(source, dest, extra))
                if res["rc"] != 0:
                    raise SystemExit(f"{name} failed: {res['stderr'][-2000:]}")
                res["job_s"], res["rate"] = job_rate(res["stderr"])
                results[name].append(res)
                hashes[name].add(tree_hash(dest))
                shutil.rmtree(dest)
        base = statistics.median(r["rate"] for r in results["local 1x2"])
        for name, runs in results.items():
            rate = statistics.median(r["rate"] for r in runs)
            rows.append({"size": f"{size}²", "engine": name, "job rows/s": rate, "vs local 1x2": rate / base,
                         "wall s": statistics.median(r["wall"] for r in runs),
                         "wall rows/s": images / statistics.median(r["wall"] for r in runs),
                         "peak MiB": max(r["peak_mib"] for r in runs), "output": ",".join(sorted(hashes[name]))})
    benchutil.print_table(rows)
    same = all(len({r["output"] for r in rows if r["size"] == size}) == 1 for size in {r["size"] for r in rows})
    print(f"\nthe same output on every engine (the 'output' hashes): {'yes' if same else 'NO'}")


def section_cluster(work: Path, images: int) -> None:
    import logging

    import ray
    from ray.cluster_utils import Cluster

    import fastnst

    print("\n## A two-node Ray cluster on this machine (head 0 CPUs, two worker nodes of 1 CPU)\n")
    print(f"$ {benchutil.command_line()}")
    source = make_parquet(work / "photos-cluster.parquet", images, 256)
    local = work / "cluster-local"
    fastnst.augment(source, local, styles=STYLES, strength="0.6,1", seed=1, threads=2, rows_per_part=10)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        t0 = time.perf_counter()
        report = fastnst.augment(source, work / "cluster-ray", styles=STYLES, strength="0.6,1", seed=1, engine="ray",
                                 rows_per_part=10)
        seconds = time.perf_counter() - t0
        workers = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
        names = {node: f"worker node {i + 1} ({node[:8]})" for i, node in enumerate(sorted(workers))}
        rows = [{"node": names.get(k, k[:8]), "parts": v} for k, v in sorted(report.workers.items())]
        benchutil.print_table(rows)
        same = tree_hash(local) == tree_hash(work / "cluster-ray")
        print(f"\n{report.parts} parts, {images} rows in {seconds:.1f} s on {len(report.workers)} nodes; "
              f"output identical to the local engine's: {'yes' if same else 'NO'}")
    finally:
        ray.shutdown()
        cluster.shutdown()


def section_kill(work: Path, images: int) -> None:
    print("\n## Kill and restart (SIGKILL at ~40% of the parts, then the same command with --resume)\n")
    print(f"$ {benchutil.command_line()}")
    source = make_parquet(work / "photos-kill.parquet", images, 256)
    whole = work / "kill-whole"
    subprocess.run(augment_cmd(source, whole, ["--rows-per-part", "10"]), env=ENV, check=True, capture_output=True)
    parts = -(-images // 10)
    rows = []
    for name in ("local 1x2", "ray 2x1"):
        dest = work / f"kill-{name.replace(' ', '')}"
        cmd = augment_cmd(source, dest, [*ENGINES[name], "--rows-per-part", "10"])
        state = dest / ".fastnst-augment" / "parts"
        killed = run_measured(cmd, kill_when=lambda: state.is_dir() and len(list(state.glob("*.json"))) >= 0.4 * parts)
        time.sleep(2)
        done_at_kill = len(list(state.glob("*.json"))) if state.is_dir() else 0
        left = leftovers(killed["pgid"])
        time.sleep(28)
        left_later = leftovers(killed["pgid"])
        partial = [p.name for p in dest.iterdir() if not p.name.startswith(".") and not p.name.endswith(".parquet")]
        resumed = run_measured(cmd + ["--resume"])
        rows.append({"engine": name, "parts at kill": f"{done_at_kill}/{parts}", "killed rc": killed["rc"],
                     "processes left (2 s, 30 s)": f"{left}, {left_later}", "summary files before resume": len(partial),
                     "resume rc": resumed["rc"], "resume s": resumed["wall"],
                     "same as uninterrupted": tree_hash(dest) == tree_hash(whole)})
        if left_later:
            subprocess.run(["kill", "-9", f"-{killed['pgid']}"], capture_output=True)
    benchutil.print_table(rows)


def section_figure(work: Path) -> None:
    """docs/images/augment-rows.jpg: eight rows of a job, each photo above its stylised row, captioned."""
    import io

    import pyarrow.parquet as pq
    from PIL import Image, ImageDraw

    import fastnst

    source = make_parquet(work / "photos-figure.parquet", 8, 192, stride=31)
    fastnst.augment(source, work / "figure", styles=STYLES, strength="0.6,1", seed=1)
    rows = [r for f in sorted((work / "figure").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    side, pad, text = 192, 4, 16
    sheet = Image.new("RGB", (len(rows) * (side + pad) - pad, 2 * side + pad + text), "white")
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        x = i * (side + pad)
        sheet.paste(Image.open(io.BytesIO(row["image"]["bytes"])).convert("RGB"), (x, 0))
        sheet.paste(Image.open(io.BytesIO(row["stylized_image"]["bytes"])).convert("RGB"), (x, side + pad))
        draw.text((x + 2, 2 * side + pad + 2), f"{row['style']} {row['strength']:.2f}", fill="black")
    out = ROOT / "docs" / "images" / "augment-rows.jpg"
    sheet.save(out, quality=88)
    print(f"\n## Figure\n\n$ {benchutil.command_line()}\nwrote {out.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections, comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--sizes", default="256,512", help="image sides for the speed section")
    parser.add_argument("--images", type=int, default=200, help="photos per run (default 200)")
    parser.add_argument("--rounds", type=int, default=1, help="alternated rounds per engine (speed)")
    parser.add_argument("--keep", default=None, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_augment-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# fastnst augment benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at the start")
    try:
        if "install" in only:
            section_install()
        if "speed" in only:
            section_speed(work, [int(s) for s in args.sizes.split(",")], args.images, args.rounds)
        if "cluster" in only:
            section_cluster(work, min(args.images, 100))
        if "kill" in only:
            section_kill(work, min(args.images, 100))
        if "figure" in only:  # only when named: it writes into docs/images
            section_figure(work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
