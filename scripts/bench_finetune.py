#!/usr/bin/env python3
"""A new style in minutes: held-out loss against CPU time for learning a style on the built-in network
(``fastnst train --from``: only the instance-norm scale and shift, or every weight) and from scratch.

  python scripts/bench_finetune.py --style painting.jpg --base builtin.safetensors \\
      --vgg16 vgg16-caffe.safetensors --data photos/ --modes norms all scratch --minutes 10 --out DIR

Each mode builds ``fastnst train``'s own module (:class:`fastnst.training.modules.StyleTransferModule` from a
checked :class:`~fastnst.training.config.TrainConfig`: ``from_model``/``finetune`` or the ``fast`` preset from
scratch), so the loss is exactly the command's; the loop is this script's, so that the clock can stop while the
network is judged. The clock is this process's CPU time (single-threaded by default), which does not move
when other jobs share the machine; wall time on an idle machine of this kind is about the same.

Every ``--eval-every`` CPU minutes the network is judged on held-out photos (scripts/bench_quality.py's judging
set, at 256 px) with the training loss (same VGG16, layers and weights, the style picture at the scale the
training crops saw it), next to Gatys' optimisation of the same loss after 50 and 100 L-BFGS iterations (Johnson
et al. Fig. 5; cached). Prints the curve as a table, writes it as JSON and a sheet of the final outputs; the
network's weights are written at every judgement (a stopped run keeps its latest).

Long runs from scratch (what it takes to reach Gatys@100 on this CPU): ``--modes scratch --arch johnson``,
``--style-weight W`` (default: the base network's), ``--decay-at 0.75`` (the learning rate drops to a tenth
after three quarters of the budget, as ``fastnst train --lr-schedule step`` does after three quarters of the steps).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_quality as bq  # noqa: E402
from fastnst.constants import JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS, cache_dir  # noqa: E402
from fastnst.image import resize, to_pil, to_tensor  # noqa: E402


class Crops:
    """Random crops of random scale (resized to ``size``, flipped) from the photos of a folder, kept in memory."""

    def __init__(self, folder: Path, long_side: int = 512, seed: int = 0) -> None:
        from fastnst.image import find_images, load_rgb

        self.images = []
        for f in find_images(folder, require=True):
            img = load_rgb(f)
            img.thumbnail((long_side, long_side))
            self.images.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
        self.gen = torch.Generator().manual_seed(seed)

    def batch(self, n: int, size: int) -> torch.Tensor:
        out = []
        for _ in range(n):
            img = self.images[int(torch.randint(len(self.images), (1,), generator=self.gen))]
            h, w = img.shape[1:]
            side = int(torch.randint(min(size, h, w), min(h, w) + 1, (1,), generator=self.gen))
            y = int(torch.randint(h - side + 1, (1,), generator=self.gen))
            x = int(torch.randint(w - side + 1, (1,), generator=self.gen))
            crop = img[None, :, y:y + side, x:x + side].float() / 255
            crop = torch.nn.functional.interpolate(crop, size=(size, size), mode="bilinear", antialias=True,
                                                   align_corners=False)
            out.append(crop.flip(-1) if bool(torch.rand((), generator=self.gen) < 0.5) else crop)
        return torch.cat(out).clamp_(0, 1)


def build(mode: str, args: argparse.Namespace, weights: dict[str, float]) -> Any:
    from fastnst.training.config import TrainConfig
    from fastnst.training.modules import StyleTransferModule

    mode, _, given = mode.partition("@")  # MODE@LR
    lr = float(given) if given else args.lr.get(mode, 1e-3)
    config = TrainConfig(style=args.style, data=str(args.data), vgg_weights=args.vgg16, style_size=args.style_size,
                         image_size=args.image_size, batch_size=args.batch_size, lr=lr, arch=args.arch,
                         from_model=None if mode == "scratch" else args.base,
                         finetune="all" if mode == "all" else "norms", **weights).check()
    return StyleTransferModule.from_config(config), lr


def judge(module: Any, photos: dict[str, Any], loss: Any) -> tuple[float, float, list[Any]]:
    """Mean total and style loss of the network's outputs on the judging photos, and the outputs."""
    net = module.transformer
    was = net.training
    net.eval()
    totals, styles, outs = [], [], []
    with torch.no_grad():
        for photo in photos.values():
            x = to_tensor(photo).contiguous(memory_format=torch.channels_last)
            y = net(x).float().contiguous()
            terms = loss(y, to_tensor(photo))
            totals.append(float(terms["total"]))
            styles.append(float(terms["style"]))
            outs.append(to_pil(y.clamp(0, 1)))
    net.train(was)
    return float(np.mean(totals)), float(np.mean(styles)), outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", required=True, help="the new style picture (not one of the judging styles)")
    ap.add_argument("--base", required=True, help="the built-in network's weights (.safetensors)")
    ap.add_argument("--vgg16", required=True)
    ap.add_argument("--data", type=Path, required=True, help="training photos (never the judging set)")
    ap.add_argument("--modes", nargs="+", default=["norms", "all", "scratch"], help="norms, all, scratch, each "
                    "optionally MODE@LR (several learning rates of one mode)")
    ap.add_argument("--lr", nargs="*", default=[], help="MODE=LR (default 1e-3 each)")
    ap.add_argument("--minutes", type=float, default=10.0, help="CPU minutes of training per mode")
    ap.add_argument("--eval-every", type=float, default=1.0, help="CPU minutes between judgements")
    ap.add_argument("--arch", default="fast", choices=("fast", "johnson"), help="the network from scratch")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--style-size", type=int, default=256, help="style long side at --image-size crops")
    ap.add_argument("--photos", nargs="*", default=["building", "horse", "messi5"])
    ap.add_argument("--size", type=int, default=bq.JUDGE_SIZE)
    ap.add_argument("--gatys-init", default="content", choices=("content", "noise"),
                    help="Gatys' start (content: fastnst gatys' default; noise: the paper's)")
    ap.add_argument("--style-weight", type=float, default=None,
                    help="style loss weight (default: the base network's, which --from builtin keeps)")
    ap.add_argument("--decay-at", type=float, default=None,
                    help="fraction of the budget after which the learning rate drops to a tenth (default: constant)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("finetune-out"))
    args = ap.parse_args()
    args.lr = {k: float(v) for k, v in (s.split("=") for s in args.lr)}
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    from fastnst.losses import PerceptualLoss
    from fastnst.training.weights import load_transformer

    base_meta = load_transformer(args.base)[1]
    weights = {k: float(json.loads(base_meta[k])) for k in ("content_weight", "style_weight", "tv_weight")
               if k in base_meta}
    if args.style_weight is not None:
        weights["style_weight"] = args.style_weight
    photos = bq.judge_photos(args.photos, args.size)
    picture = bq.load_picture(args.style)
    judge_side = round(args.style_size * args.size / args.image_size)  # the style as the crops saw it
    refs = {p: bq.gatys_reference(ph, picture, vgg=args.vgg16, weights=weights, style_side=judge_side,
                                  marks=(50, 100), cache=cache_dir() / "bench-quality", init=args.gatys_init)
            for p, ph in photos.items()}
    g50 = float(np.mean([r["50"]["total"] for r in refs.values()]))
    g100 = float(np.mean([r["100"]["total"] for r in refs.values()]))
    g100_style = float(np.mean([r["100"]["style"] for r in refs.values()]))
    crops = Crops(args.data)

    def save(module: Any, mode: str, step: int, cpu: float) -> None:
        """The network as it is now (overwritten at every judgement, so a stopped run keeps its latest)."""
        import copy

        from fastnst.training.weights import save_transformer

        net = copy.deepcopy(module.transformer).to(memory_format=torch.contiguous_format)
        save_transformer(args.out / f"{mode.replace('@', '-lr')}.safetensors", net,
                         {**weights, "style_size": round(args.style_size * args.size / args.image_size),
                          "steps": step, "cpu_minutes": round(cpu / 60, 2), "mode": mode}, overwrite=True)
    curves: dict[str, list[dict[str, float]]] = {}
    finals: dict[str, list[Any]] = {}
    for mode in args.modes:
        module, lr = build(mode, args, weights)
        vgg = module.loss.vgg
        judge_loss = PerceptualLoss(vgg, JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS, **weights)
        judge_loss.set_style(to_tensor(resize(picture, long_edge=judge_side)))
        module.on_fit_start()  # channels-last, Winograd VGG on the CPU: as fastnst train runs
        module.train()
        params = [p for p in module.transformer.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr)
        budget = args.minutes * 60
        cpu, step, next_eval, decayed = 0.0, 0, 0.0, False
        curve = []
        while True:
            if cpu >= next_eval or cpu >= budget:
                total, style, outs = judge(module, photos, judge_loss)
                curve.append({"cpu_min": cpu / 60, "step": step, "total": total, "style": style,
                              "vs_gatys100": total / g100, "style_vs_gatys100": style / g100_style})
                print(f"{mode} {cpu / 60:5.1f} CPU-min step {step}: held-out loss {total:.4g} "
                      f"({total / g100:.2f}x Gatys@100; style term {style / g100_style:.2f}x)", file=sys.stderr,
                      flush=True)
                next_eval += args.eval_every * 60
                save(module, mode, step, cpu)
                if cpu >= budget:
                    finals[mode] = outs
                    break
            if args.decay_at is not None and not decayed and cpu >= args.decay_at * budget:
                decayed = True
                for group in opt.param_groups:
                    group["lr"] = lr * 0.1
            t0 = time.process_time()
            x = crops.batch(args.batch_size, args.image_size).contiguous(memory_format=torch.channels_last)
            loss = module.terms(x, step)["total"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            cpu += time.process_time() - t0
        curves[mode] = curve
        print(f"{mode}: {step} steps, {cpu / max(step, 1):.2f} CPU-s per step, {len(params)} trainable tensors "
              f"({sum(p.numel() for p in params)} numbers), lr {lr:g}", file=sys.stderr, flush=True)
    cmd = "python scripts/bench_finetune.py " + " ".join(sys.argv[1:])
    print(f"\n$ {cmd}\n")
    print(f"held-out photos {', '.join(photos)} at {args.size}px; loss weights {weights}; Gatys (same loss) "
          f"50 its {g50:.4g}, 100 its {g100:.4g}\n")
    marks = sorted({round(c["cpu_min"], 1) for cs in curves.values() for c in cs})
    rows = []
    for mode, curve in curves.items():
        for c in curve:
            rows.append([mode, f"{c['cpu_min']:.1f}", c["step"], c["total"], c["vs_gatys100"], c["style_vs_gatys100"]])
    print(bq.table(rows, ["mode", "CPU min", "steps", "held-out loss", "x Gatys@100", "style x Gatys@100"]))
    first = {}
    for mode, curve in curves.items():
        hit = next((c for c in curve if c["total"] <= g100), None)
        first[mode] = hit["cpu_min"] if hit else math.nan
    print("\nCPU minutes to reach Gatys@100's loss: " + ", ".join(f"{m} {v:.1f}" for m, v in first.items()))
    (args.out / "curves.json").write_text(json.dumps({"command": cmd, "gatys50": g50, "gatys100": g100,
                                                      "weights": weights, "curves": curves, "marks": marks},
                                                     indent=1))
    sheet = [[ph] + [finals[m][i] for m in curves] for i, ph in enumerate(photos.values())]
    bq.contact_sheet(sheet).save(args.out / "finetune-sheet.png")


if __name__ == "__main__":
    main()
