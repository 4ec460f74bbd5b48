"""Reduced precision on this CPU: what ``precision='auto'`` picks, what bfloat16 costs or saves, what it does to quality.

Sections (``--only``):

``speed``   VGG16 forward+backward (batch 4, 256²: float32, float32 channels-last, bfloat16 autocast) and one
            training step of fastnst's StyleTransferModule (fast and johnson presets, 256², batch 4) in float32
            and bfloat16 autocast, alternating; steps/s, medians and [min-max].
``curves``  the same training run twice from the same seed (real photos, real VGG16), float32 and bfloat16
            (``fastnst train --precision``); the loss curves side by side (CSV, a PNG plot), then both networks
            on held-out photos scored in float32 with the training's own loss network (content and style terms),
            and the pictures side by side (PNG).

The CPU line comes first (model, features, the automatic choice): on a CPU without AVX512-BF16/AMX, bfloat16
is emulated and slower, and ``auto`` keeps float32; the curves still show what bfloat16's rounding does to
training, which is the same on any CPU.

    .venv/bin/python scripts/bench_precision.py --only speed --steps 4
    .venv/bin/python scripts/bench_precision.py --only curves --photos /work/data/sets/photos \\
        --style /work/data/sets/paintings/GreatWave.jpg --held-out /work/data/sets/judge \\
        --vgg /work/data/vgg/vgg16-caffe.safetensors --steps 200 --image-size 128 --out /tmp/precision
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastnst.cpu import choose_precision, cpu  # noqa: E402


def spread(values: list[float], fmt: str = "{:.3f}") -> str:
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def section_speed(args) -> None:
    from fastnst.networks.vgg import VGGFeatures
    from fastnst.constants import JOHNSON_STYLE_LAYERS
    from bench_train import FastnstStep  # the step Lightning runs: training_step, backward, Adam

    x = torch.rand(4, 3, 256, 256)
    vgg = VGGFeatures(JOHNSON_STYLE_LAYERS, weights="random")

    def vgg_step(memory_format, bf16):
        inp = x.contiguous(memory_format=memory_format).requires_grad_(True)
        vgg.to(memory_format=memory_format)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            feats = vgg(inp)
        sum(f.float().pow(2).mean() for f in feats.values()).backward()

    variants = {"float32": lambda: vgg_step(torch.contiguous_format, False),
                "float32 channels-last": lambda: vgg_step(torch.channels_last, False),
                "bfloat16 autocast": lambda: vgg_step(torch.channels_last, True)}
    _alternate("VGG16 forward+backward to relu4_3, batch 4, 256²", variants, args.steps, "s/step")
    style = ROOT / "fastnst" / "assets" / "style-hubble.jpg"
    for arch in args.archs.split(","):
        steps = {p: FastnstStep(str(style), torch.device("cpu"), arch, p).step for p in ("32", "bf16")}
        batch = torch.rand(4, 3, 256, 256)
        _alternate(f"training step ({arch} preset, batch 4, 256², random VGG16)",
                   {"float32": lambda s=steps["32"]: s(batch), "bfloat16 autocast": lambda s=steps["bf16"]: s(batch)},
                   args.steps, "s/step", per_second=True)


def _alternate(title: str, variants: dict, steps: int, unit: str, per_second: bool = False) -> None:
    for fn in variants.values():  # warm-up: oneDNN builds its kernels on the first calls
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(steps):
        for name in (list(variants) if i % 2 == 0 else list(variants)[::-1]):
            t0 = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(next(iter(times.values())))
    print(f"\n{title}: {steps} alternating runs, median [min-max]; load average {_load()}")
    for name, ts in times.items():
        extra = f", {1 / statistics.median(ts):.2f} steps/s" if per_second else ""
        print(f"  {name:<24} {spread(ts)} {unit}{extra}, {base / statistics.median(ts):.2f}x float32")


def section_curves(args) -> None:
    import numpy as np
    from PIL import Image

    from fastnst.constants import JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS
    from fastnst.image import load_rgb, make_grid, resize
    from fastnst.models import load_model
    from fastnst.optimize.objective import score
    from fastnst.training.run import run_training

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for precision in ("fp32", "bf16"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run_training(args.style, args.photos, out / precision, steps=args.steps, image_size=args.image_size,
                                  batch_size=args.batch, arch=args.arch, vgg_weights=args.vgg, seed=0,
                                  num_workers=0, num_previews=0, precision=precision, overwrite=True,
                                  lr_schedule="cosine", trainer={"enable_progress_bar": False})
        runs[precision] = (result, time.perf_counter() - t0)
        print(f"  trained {precision}: {args.steps} steps in {runs[precision][1]:.0f} s", flush=True)
    curves = {p: _losses(r.metrics) for p, (r, _) in runs.items()}
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "fp32 total", "bf16 total", "fp32 content", "bf16 content", "fp32 style", "bf16 style"])
        for i in range(min(len(c) for c in curves.values())):
            a, b = curves["fp32"][i], curves["bf16"][i]
            w.writerow([i, a["total"], b["total"], a["content"], b["content"], a["style"], b["style"]])
    _plot(curves, out / "curves.png")
    print(f"\nloss curves ({args.arch}, {args.image_size}², batch {args.batch}, {args.steps} steps, seed 0, the same "
          f"photos in the same order): {out / 'curves.csv'}, {out / 'curves.png'}")
    n = min(len(c) for c in curves.values())
    for lo, hi in ((0, n // 10), (n // 2, n), (n - n // 10, n)):
        a = statistics.mean(curves["fp32"][i]["total"] for i in range(lo, hi))
        b = statistics.mean(curves["bf16"][i]["total"] for i in range(lo, hi))
        print(f"  steps {lo}-{hi - 1}: mean total loss float32 {a:.4f}, bfloat16 {b:.4f} ({b / a - 1:+.1%})")
    photos = sorted(p for p in Path(args.held_out).iterdir() if p.suffix.lower() in (".jpg", ".png"))
    scored = {p: [] for p in runs}
    pictures = []
    loss_settings = dict(net="vgg16", vgg_weights=args.vgg, content_layers=JOHNSON_CONTENT_LAYERS,
                         style_layers=JOHNSON_STYLE_LAYERS, content_weight=1.0, style_weight=1.0, precision="fp32",
                         vgg_normalize="rms")
    style_img = load_rgb(args.style)
    for photo in photos:
        img = resize(load_rgb(photo), long_edge=args.eval_size)
        row = [img]
        for precision, (result, _) in runs.items():
            styled = load_model(result.onnx, "cpu").stylize(img)
            row.append(styled)
            scored[precision].append(score(styled, img, style_img, device="cpu", **loss_settings))
        pictures += row
    make_grid(pictures, ncols=3).save(out / "held-out.png")
    print(f"\nheld-out photos ({len(photos)} from {args.held_out}, long side {args.eval_size}), each network's "
          f"stylisation scored in float32 with VGG16 (relu2_2 content, Johnson style layers, weights 1); "
          f"pictures (photo | float32 | bfloat16): {out / 'held-out.png'}")
    for term in ("content", "style"):
        a = [s[term] for s in scored["fp32"]]
        b = [s[term] for s in scored["bf16"]]
        print(f"  {term:<8} float32 {statistics.mean(a):.4f}, bfloat16 {statistics.mean(b):.4f} "
              f"({statistics.mean(b) / statistics.mean(a) - 1:+.1%}; per photo bf16/fp32 "
              f"{spread([y / x for x, y in zip(a, b)], '{:.3f}')})")
    for p, (_, seconds) in runs.items():
        print(f"  {p}: {args.steps / seconds:.2f} steps/s over the whole run")


def _losses(metrics: Path) -> list[dict[str, float]]:
    rows = []
    with open(metrics) as f:
        for r in csv.DictReader(f):
            if r.get("loss/total"):
                rows.append({"total": float(r["loss/total"]), "content": float(r["loss/content"]),
                             "style": float(r["loss/style"])})
    return rows


def _plot(curves: dict, path: Path) -> None:
    """A small line plot of the two total-loss curves (smoothed over 10 steps), drawn with Pillow."""
    import numpy as np
    from PIL import Image, ImageDraw

    w, h, pad = 640, 360, 40
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    smooth = {k: np.convolve([r["total"] for r in v], np.ones(10) / 10, mode="valid") for k, v in curves.items()}
    top = max(float(s.max()) for s in smooth.values())
    low = min(float(s.min()) for s in smooth.values())
    n = max(len(s) for s in smooth.values())
    for (name, s), colour in zip(smooth.items(), ("#1f77b4", "#d62728")):
        pts = [(pad + i * (w - 2 * pad) / max(1, n - 1), h - pad - (v - low) / max(1e-9, top - low) * (h - 2 * pad))
               for i, v in enumerate(s)]
        d.line(pts, fill=colour, width=2)
        d.text((w - pad - 120, pad + (0 if name == "fp32" else 14)), f"{name} total loss", fill=colour)
    d.rectangle([pad, pad, w - pad, h - pad], outline="black")
    d.text((pad, h - pad + 8), f"step 0 .. {n} (10-step mean); loss {low:.3g} .. {top:.3g}", fill="black")
    img.save(path)


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="speed,curves")
    ap.add_argument("--steps", type=int, default=4, help="speed: timed runs per variant; curves: training steps")
    ap.add_argument("--archs", default="fast,johnson")
    ap.add_argument("--arch", default="fast", help="curves: the preset trained")
    ap.add_argument("--photos", help="curves: training photos")
    ap.add_argument("--style", help="curves: the style picture")
    ap.add_argument("--held-out", help="curves: held-out photos to score the two networks on")
    ap.add_argument("--vgg", help="curves: VGG16 weights (.safetensors)")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--eval-size", type=int, default=384)
    ap.add_argument("--out", default="precision-bench")
    args = ap.parse_args()
    only = set(args.only.split(","))
    print(f"# {shlex.join([os.path.relpath(sys.executable)] + sys.argv)}")
    print(f"# CPU: {cpu().describe()}")
    print(f"# precision='auto' here: training and the Gatys family run in {choose_precision('auto', 'cpu')}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; {time.strftime('%Y-%m-%d %H:%M')}")
    warnings.filterwarnings("ignore", message=".*self.log.*")
    if "speed" in only:
        section_speed(args)
    if "curves" in only:
        section_curves(args)


if __name__ == "__main__":
    main()
