"""Inference benchmark: torch eager vs onnxruntime, johnson vs fast preset, whole-process CLI, memory.

Prints, for each image size: ms/image for torch eager fp32 and onnxruntime fp32 (johnson preset),
onnxruntime fp32 (fast preset), FLOPs, the fraction of this machine's fp32 matrix-multiply
throughput measured in the same run, and peak RSS; then the whole-process wall time of
``fastnst stylize`` at 1024² (fast preset), peak RSS of 1024² untiled and 8192² tiled runs, and the
onnxruntime session-option measurements behind fastnst.runtime.session_options. Every timing and
RSS figure comes from a fresh Python process, so one measurement cannot inflate another's memory.

    .venv/bin/python scripts/bench_infer.py               # everything (about 10-15 minutes on 2 cores)
    .venv/bin/python scripts/bench_infer.py --sizes 256,512 --skip-8192
    .venv/bin/python scripts/bench_infer.py --only plain,browser,8192   # the plain-model figures (issue 9)

``plain``: export time of today's plain model vs the three-path model of commit LEGACY_COMMIT (its
code taken with ``git archive``), and load time and per-image time at 1024² of both files, in
onnxruntime directly and through fastnst's Stylizer (which strips the old extra paths at load).
``browser``: per-image time of a 512² image in headless Chromium with onnxruntime-web (wasm).
``8192``: peak RSS of ``fastnst stylize`` on an 8192² photo, tiled with whole-image statistics.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchutil  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

_CHILD_COMMON = """
import json, resource, sys, time, os
import numpy as np
sys.path.insert(0, {scripts!r})
from benchutil import best_time
def rss():
    # VmHWM: peak RSS of this address space (ru_maxrss would include the parent's peak: Linux keeps it
    # across fork+exec)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
"""

_TORCH_CHILD = _CHILD_COMMON + """
import torch
from fastnst.networks.transformer import build_transformer
torch.set_num_threads({threads})
net = build_transformer({preset!r}).eval()
x = torch.rand(1, 3, {size}, {size})
with torch.inference_mode():
    t = best_time(lambda: net(x), repeats={repeats}, warmup=1)
print(json.dumps({{"seconds": t, "rss": rss()}}))
"""

_ORT_CHILD = _CHILD_COMMON + """
import onnxruntime as ort
from fastnst.runtime import session_options
opts = session_options({threads})
for key, value in {options!r}.items():
    if key == "graph_optimization_level":
        value = getattr(ort.GraphOptimizationLevel, value)
    setattr(opts, key, value)
s = ort.InferenceSession({model!r}, opts, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).random((1, 3, {size}, {size}), dtype=np.float32)
t = best_time(lambda: s.run(["stylized"], {{"image": x}}), repeats={repeats}, warmup=1)
print(json.dumps({{"seconds": t, "rss": rss()}}))
"""

_CLI_CHILD = _CHILD_COMMON + """
from fastnst.cli import main
t0 = time.perf_counter()
code = main({argv!r})
print(json.dumps({{"seconds": time.perf_counter() - t0, "code": code, "rss": rss()}}))
"""


def child(template: str, **kw) -> dict:
    return benchutil.run_child(template.format(scripts=str(ROOT / "scripts"), **kw))


def export_models(folder: Path) -> dict[str, str]:
    """Random-weight johnson and fast networks exported with fastnst.export."""
    import torch

    from fastnst.export import export_onnx
    from fastnst.networks.transformer import build_transformer

    torch.manual_seed(0)
    paths = {}
    for preset in ("johnson", "fast"):
        paths[preset] = str(export_onnx(build_transformer(preset), folder / f"{preset}.onnx", overwrite=True))
    return paths


def write_photo(path: Path, size: int) -> None:
    """A smooth synthetic 'photo' (gradients and waves), written as JPEG."""
    import numpy as np
    from PIL import Image

    rows = []
    x = np.arange(size, dtype=np.float32)
    for y0 in range(0, size, 1024):  # in bands: an 8192² float image would need 800 MB
        y = np.arange(y0, min(size, y0 + 1024), dtype=np.float32)[:, None]
        r = 0.5 + 0.5 * np.sin(x[None, :] / 37.0 + y / 53.0)
        g = 0.5 + 0.5 * np.cos(y / 71.0) * np.ones_like(r)
        b = (x[None, :] + y) / (2.0 * size)
        rows.append((np.stack([r, g, b], -1) * 255).astype(np.uint8))
    Image.fromarray(np.concatenate(rows), "RGB").save(path, quality=90)


# ------------------------------------------------------------------------------------------ issue 9

LEGACY_COMMIT = "c5a210b"  # the last commit whose export wrote the three-path model (stats/tile inputs)

_EXPORT_CHILD = _CHILD_COMMON + """
if {src!r}:
    sys.path.insert(0, {src!r})  # before the current folder, which `python -c` puts first
import torch
from fastnst.export import export_onnx
from fastnst.networks.transformer import build_transformer
torch.set_num_threads({threads})
torch.manual_seed(0)
net = build_transformer("johnson").eval()
t0 = time.perf_counter()
export_onnx(net, {out!r}, overwrite=True)
print(json.dumps({{"seconds": time.perf_counter() - t0, "rss": rss()}}))
"""

_LOAD_RUN_CHILD = _CHILD_COMMON + """
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
t = best_time(run, repeats={repeats}, warmup=1)
print(json.dumps({{"load": load, "seconds": t, "rss": rss()}}))
"""


def plain_vs_legacy(work: Path, threads: int, repeats: int) -> None:
    """Export time, load time and 1024² time: today's plain model vs the three-path model."""
    legacy_src = work / "legacy-src"
    legacy_src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", LEGACY_COMMIT, "fastnst"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(legacy_src)], input=archive, check=True)
    plain, legacy = str(work / "johnson-plain.onnx"), str(work / "johnson-legacy.onnx")
    code = _EXPORT_CHILD
    new = benchutil.run_child(code.format(scripts=str(ROOT / "scripts"), threads=threads, out=plain, src=""))
    old = benchutil.run_child(code.format(scripts=str(ROOT / "scripts"), threads=threads, out=legacy,
                                          src=str(legacy_src)))
    import onnx

    inputs = [i.name for i in onnx.load(legacy, load_external_data=False).graph.input]
    assert len(inputs) == 4, f"the legacy export has inputs {inputs}; expected image + 3 tiling inputs"
    print(f"\nexport johnson (with verification), fresh process: plain {new['seconds']:.1f} s, "
          f"three-path ({LEGACY_COMMIT}) {old['seconds']:.1f} s; files {os.path.getsize(plain) / 1e6:.1f} MB / "
          f"{os.path.getsize(legacy) / 1e6:.1f} MB")
    print(f"johnson 1024², best of {repeats} after a warm-up, fresh process each (load s, run ms, peak RSS MiB):")
    for rnd in range(2):  # interleaved twice: the machine drifts
        for via in ("ort", "fastnst"):
            for name, model in (("plain", plain), ("three-path", legacy)):
                r = child(_LOAD_RUN_CHILD, model=model, size=1024, threads=threads, repeats=repeats, via=via)
                print(f"  round {rnd + 1} {via:<8} {name:<11} load {r['load']:.2f} s  run {r['seconds'] * 1e3:6.0f} ms  "
                      f"{r['rss']:5.0f} MiB", flush=True)


def browser_time(work: Path, models: dict[str, str], size: int = 512, repeats: int = 3) -> None:
    """Per-image time of a size² image in headless Chromium with onnxruntime-web (wasm, 1 thread)."""
    sys.path.insert(0, str(ROOT))
    from tests.test_web import _browser, _ort_dist, run_page

    from fastnst.web import write_web

    if _browser() is None or _ort_dist() is None:
        print("\nbrowser: skipped (needs Chromium and onnxruntime-web; see tests/test_web.py)")
        return
    import numpy as np

    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8).ravel().tolist()
    for preset in ("fast", "johnson"):
        site = write_web(work / f"site-{preset}", [models[preset]], _ort_dist(), overwrite=True)
        r = run_page(site, {"model": Path(models[preset]).name, "width": size, "height": size, "pixels": pixels,
                            "repeats": repeats, "return_output": False}, timeout=600)
        if "error" in r:
            print(f"browser {preset}: error {r['error']}")
            continue
        print(f"\nbrowser (headless Chromium, onnxruntime-web {r['backend']}, {r['threads']} thread(s)), "
              f"{preset} {size}²: per image {', '.join(f'{t / 1e3:.2f}' for t in r['ms'])} s "
              f"(first includes warm-up)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512,1024,2048")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0 = fastnst's default (physical cores)")
    parser.add_argument("--skip-8192", action="store_true")
    parser.add_argument("--skip-tuning", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated sections: speed, cli, 8192, tuning, plain, "
                        "browser (default: all)")
    args = parser.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}

    def want(section: str) -> bool:
        return not only or section in only

    from fastnst.networks.transformer import build_transformer, count_flops
    from fastnst.runtime import _physical_cores

    threads = args.threads or _physical_cores()
    print(f"# {benchutil.command_line()}")
    print(f"# {os.cpu_count()} logical CPUs, {threads} threads; every figure from a fresh process")
    work = Path(tempfile.mkdtemp(prefix="fastnst-bench-"))
    t0 = time.perf_counter()
    models = export_models(work)
    print(f"# exported johnson/fast in {time.perf_counter() - t0:.0f} s")
    gflops_before = benchutil.matmul_gflops()
    print(f"# fp32 matmul (torch, 2048², {threads} threads): {gflops_before:.1f} GFLOP/s")

    if want("plain"):
        plain_vs_legacy(work, threads, args.repeats)
    if want("browser"):
        browser_time(work, models)

    rows = []
    nets = {p: build_transformer(p) for p in ("johnson", "fast")}
    for size in ([int(s) for s in args.sizes.split(",")] if want("speed") else []):
        reps = args.repeats if size <= 1024 else max(1, args.repeats - 1)
        flops = {p: count_flops(n, size, size) for p, n in nets.items()}
        te = child(_TORCH_CHILD, preset="johnson", size=size, threads=threads, repeats=reps)
        oj = child(_ORT_CHILD, model=models["johnson"], size=size, threads=threads, repeats=reps, options={})
        of = child(_ORT_CHILD, model=models["fast"], size=size, threads=threads, repeats=reps, options={})
        mm = benchutil.matmul_gflops() * 1e9  # measured again beside each size (drift)
        row = {"size": f"{size}²", "torch_johnson_ms": te["seconds"] * 1e3, "ort_johnson_ms": oj["seconds"] * 1e3,
               "ort_fast_ms": of["seconds"] * 1e3, "speedup_ort/torch": te["seconds"] / oj["seconds"],
               "fast/johnson": of["seconds"] / oj["seconds"],
               "GFLOP_johnson": flops["johnson"] / 1e9, "GFLOP_fast": flops["fast"] / 1e9,
               "matmul_frac_torch": flops["johnson"] / te["seconds"] / mm,
               "matmul_frac_ort_j": flops["johnson"] / oj["seconds"] / mm,
               "matmul_frac_ort_f": flops["fast"] / of["seconds"] / mm,
               "rss_torch_MiB": te["rss"], "rss_ort_j_MiB": oj["rss"], "rss_ort_f_MiB": of["rss"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if rows:
        print()
        benchutil.print_table(rows)

    # whole-process `fastnst stylize`, 1024² photo, fast preset
    photo = work / "photo1024.jpg"
    write_photo(photo, 1024)
    fastnst = str(Path(sys.executable).parent / "fastnst")
    walls = []
    for i in range(args.repeats if want("cli") else 0):
        out = work / f"out{i}.jpg"
        t = time.perf_counter()
        subprocess.run([fastnst, "stylize", "--model", models["fast"], str(photo), "-o", str(out)], check=True,
                       capture_output=True)
        walls.append(time.perf_counter() - t)
    if walls:
        print(f"\nfastnst stylize 1024² photo, fast preset, whole process: best {min(walls):.2f} s "
              f"(runs: {', '.join(f'{w:.2f}' for w in walls)})")

    for preset in (("fast", "johnson") if want("cli") else ()):
        r = child(_CLI_CHILD, argv=["stylize", "--model", models[preset], str(photo), "-o",
                                    str(work / f"rss-{preset}.jpg"), "--overwrite", "--tile", "0"])
        print(f"1024² untiled ({preset}), fastnst stylize in one process: peak RSS {r['rss']:.0f} MiB, "
              f"{r['seconds']:.1f} s")

    if not args.skip_8192 and want("8192"):
        big = work / "photo8192.jpg"
        write_photo(big, 8192)
        r = child(_CLI_CHILD, argv=["stylize", "--model", models["fast"], str(big), "-o", str(work / "big.jpg"),
                                    "--overwrite"])
        print(f"8192² tiled (fast, 1024-px tiles), fastnst stylize in one process: peak RSS {r['rss']:.0f} MiB, "
              f"{r['seconds']:.0f} s, exit {r['code']}")

    if not args.skip_tuning and want("tuning"):
        print("\nonnxruntime session options, johnson 1024² (ms, peak RSS MiB):")
        variants = {
            "fastnst default (extended opts, arena on, no mem pattern)": {},
            "all optimisations (adds the NCHWc layout)": {"graph_optimization_level": "ORT_ENABLE_ALL"},
            "arena off": {"enable_cpu_mem_arena": False},
            "mem pattern on": {"enable_mem_pattern": True},
            "basic optimisations only": {"graph_optimization_level": "ORT_ENABLE_BASIC"},
        }
        for name, options in variants.items():
            r = child(_ORT_CHILD, model=models["johnson"], size=1024, threads=threads, repeats=2, options=options)
            print(f"  {name:<48} {r['seconds'] * 1e3:7.0f} ms  {r['rss']:6.0f} MiB")
        for n in sorted({1, threads, os.cpu_count() or 1}):
            r = child(_ORT_CHILD, model=models["johnson"], size=1024, threads=n, repeats=2, options={})
            print(f"  {'intra-op threads = ' + str(n):<48} {r['seconds'] * 1e3:7.0f} ms  {r['rss']:6.0f} MiB")
    print(f"\n# fp32 matmul before/after: {gflops_before:.1f} / {benchutil.matmul_gflops():.1f} GFLOP/s; "
          f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
