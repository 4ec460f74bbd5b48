"""Inference benchmark: torch eager vs onnxruntime, johnson vs fast preset, whole-process CLI, memory.

Prints, for each image size: ms/image for torch eager fp32 and onnxruntime fp32 (johnson preset),
onnxruntime fp32 (fast preset), FLOPs, the fraction of this machine's fp32 matrix-multiply
throughput measured in the same run, and peak RSS; then the whole-process wall time of
``fastnst stylize`` at 1024² (fast preset), peak RSS of 1024² untiled and 8192² tiled runs, and the
onnxruntime session-option measurements behind fastnst.runtime.session_options. Every timing and
RSS figure comes from a fresh Python process, so one measurement cannot inflate another's memory.

    .venv/bin/python scripts/bench_infer.py               # everything (about 10-15 minutes on 2 cores)
    .venv/bin/python scripts/bench_infer.py --sizes 256,512 --skip-8192
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
    """Random-weight johnson and fast networks exported with fastnst.export, plus a plain export."""
    import torch

    from fastnst.constants import ONNX_INPUT_NAME, ONNX_OPSET, ONNX_OUTPUT_NAME
    from fastnst.export import export_onnx
    from fastnst.networks.transformer import build_transformer

    torch.manual_seed(0)
    paths = {}
    for preset in ("johnson", "fast"):
        paths[preset] = str(export_onnx(build_transformer(preset), folder / f"{preset}.onnx", overwrite=True))
    # the same johnson network exported plainly (no tile path), to show the extra outputs cost nothing
    net = build_transformer("johnson").eval()
    dim = torch.export.Dim
    prog = torch.onnx.export(net, (torch.rand(1, 3, 64, 64),), dynamo=True, verbose=False, opset_version=ONNX_OPSET,
                             input_names=[ONNX_INPUT_NAME], output_names=[ONNX_OUTPUT_NAME], external_data=False,
                             dynamic_shapes=({0: dim("b", min=1, max=64), 2: dim("h", min=8, max=65536),
                                              3: dim("w", min=8, max=65536)},))
    prog.save(str(folder / "johnson-plain.onnx"), external_data=False)
    paths["johnson-plain"] = str(folder / "johnson-plain.onnx")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512,1024,2048")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0 = fastnst's default (physical cores)")
    parser.add_argument("--skip-8192", action="store_true")
    parser.add_argument("--skip-tuning", action="store_true")
    args = parser.parse_args()
    from fastnst.networks.transformer import build_transformer, count_flops
    from fastnst.runtime import _physical_cores

    threads = args.threads or _physical_cores()
    print(f"# {benchutil.command_line()}")
    print(f"# {os.cpu_count()} logical CPUs, {threads} threads; every figure from a fresh process")
    work = Path(tempfile.mkdtemp(prefix="fastnst-bench-"))
    t0 = time.perf_counter()
    models = export_models(work)
    print(f"# exported johnson/fast/johnson-plain in {time.perf_counter() - t0:.0f} s")
    gflops_before = benchutil.matmul_gflops()
    print(f"# fp32 matmul (torch, 2048², {threads} threads): {gflops_before:.1f} GFLOP/s")

    rows = []
    nets = {p: build_transformer(p) for p in ("johnson", "fast")}
    for size in [int(s) for s in args.sizes.split(",")]:
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
    print()
    benchutil.print_table(rows)

    if "1024" in args.sizes.split(","):
        plain = child(_ORT_CHILD, model=models["johnson-plain"], size=1024, threads=threads, repeats=args.repeats,
                      options={})
        ours = child(_ORT_CHILD, model=models["johnson"], size=1024, threads=threads, repeats=args.repeats, options={})
        print(f"\njohnson 1024², plain export (no tile path) {plain['seconds'] * 1e3:.0f} ms vs fastnst export "
              f"{ours['seconds'] * 1e3:.0f} ms (its stats and tile paths run on their 16x16 defaults)")

    # whole-process `fastnst stylize`, 1024² photo, fast preset
    photo = work / "photo1024.jpg"
    write_photo(photo, 1024)
    fastnst = str(Path(sys.executable).parent / "fastnst")
    walls = []
    for i in range(args.repeats):
        out = work / f"out{i}.jpg"
        t = time.perf_counter()
        subprocess.run([fastnst, "stylize", "--model", models["fast"], str(photo), "-o", str(out)], check=True,
                       capture_output=True)
        walls.append(time.perf_counter() - t)
    print(f"\nfastnst stylize 1024² photo, fast preset, whole process: best {min(walls):.2f} s "
          f"(runs: {', '.join(f'{w:.2f}' for w in walls)})")

    for preset in ("fast", "johnson"):
        r = child(_CLI_CHILD, argv=["stylize", "--model", models[preset], str(photo), "-o",
                                    str(work / f"rss-{preset}.jpg"), "--overwrite", "--tile", "0"])
        print(f"1024² untiled ({preset}), fastnst stylize in one process: peak RSS {r['rss']:.0f} MiB, "
              f"{r['seconds']:.1f} s")

    if not args.skip_8192:
        big = work / "photo8192.jpg"
        write_photo(big, 8192)
        r = child(_CLI_CHILD, argv=["stylize", "--model", models["fast"], str(big), "-o", str(work / "big.jpg"),
                                    "--overwrite"])
        print(f"8192² tiled (fast, 1024-px tiles), fastnst stylize in one process: peak RSS {r['rss']:.0f} MiB, "
              f"{r['seconds']:.0f} s, exit {r['code']}")

    if not args.skip_tuning:
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
