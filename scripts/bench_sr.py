"""Measure super-resolution like Johnson et al. 2016 (section 4.2, Table 3) on held-out photos.

For each held-out photo (scripts/sr_photos.py: never in the training folder) the low-resolution input is
made exactly as in training (Gaussian blur sigma 1, bicubic down-sampling), then enlarged by bicubic
interpolation, the pixel-loss network and the perceptual-loss network (exported ONNX models, run with
fastnst.runtime.upscaler). Printed per photo and on average:

* PSNR (dB) and SSIM on the luminance (BT.601 Y), ignoring a border of `factor` pixels (the usual SR protocol);
* feature reconstruction loss: mean squared difference of relu2_2 activations of the imported Caffe VGG16
  (the loss the perceptual network was trained on, in the VGG's own units);
* sharpness: the output's mean gradient magnitude relative to the original's (1 = as sharp as the photo).

Also writes a picture sheet (rows: photos; columns: input (nearest), bicubic, pixel loss, perceptual
loss, original) of centre crops.

    python scripts/bench_sr.py --perceptual P.onnx --pixel Q.onnx --vgg-weights vgg16-caffe.safetensors \
        --sheet docs/images/sr-x4-sheet.jpg
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastnst.networks.sr import degrade  # noqa: E402
from fastnst.networks.vgg import VGGFeatures  # noqa: E402
from fastnst.runtime.upscaler import Upscaler  # noqa: E402
from sr_photos import held_out_photos  # noqa: E402

Y = np.array([0.299, 0.587, 0.114])


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ Y


def psnr(a: np.ndarray, b: np.ndarray, border: int) -> float:
    ya, yb = luminance(a)[border:-border, border:-border], luminance(b)[border:-border, border:-border]
    mse = np.mean((ya - yb) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse)) if mse > 0 else float("inf")


def ssim(a: np.ndarray, b: np.ndarray, border: int) -> float:
    from skimage.metrics import structural_similarity

    ya, yb = luminance(a)[border:-border, border:-border], luminance(b)[border:-border, border:-border]
    return float(structural_similarity(ya, yb, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def sharpness(out: np.ndarray, ref: np.ndarray) -> float:
    def grad(x: np.ndarray) -> float:
        y = luminance(x)
        return float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())

    return grad(out) / grad(ref)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--perceptual", required=True, help="ONNX model trained with --loss perceptual")
    p.add_argument("--pixel", default=None, help="ONNX model trained with --loss pixel (optional)")
    p.add_argument("--vgg-weights", required=True, help="VGG16 weights for the feature loss (the imported Caffe VGG16)")
    p.add_argument("--photos", nargs="+", default=None,
                   help="held-out photos to measure on (default: scripts/sr_photos.py's held-out set); none of them "
                        "may be a training photo of the models")
    p.add_argument("--sheet", default=None, help="write the picture sheet here (PNG or JPEG)")
    p.add_argument("--crop", type=int, default=160, help="side of the centre crops on the sheet (output pixels)")
    p.add_argument("--extra", action="append", default=[], metavar="LABEL=MODEL",
                   help="another ONNX model to measure (table only), e.g. a variant or an earlier checkpoint")
    args = p.parse_args()
    torch.set_num_threads(1)
    models = {"perceptual loss": Upscaler(args.perceptual, threads=1)}
    if args.pixel:
        models = {"pixel loss": Upscaler(args.pixel, threads=1), **models}
    for item in args.extra:
        label, _, path = item.partition("=")
        models[label] = Upscaler(path, threads=1)
    factors = {m.factor for m in models.values()}
    if len(factors) != 1:
        raise SystemExit(f"the models have different factors: {factors}")
    f = factors.pop()
    vgg = VGGFeatures(("relu2_2",), "vgg16", args.vgg_weights)
    methods = ["bicubic"] + list(models)
    rows = []
    sheet_rows = []
    photos = [Path(p) for p in args.photos] if args.photos else held_out_photos()
    for path in photos:
        hr = np.asarray(Image.open(path).convert("RGB"))
        hr = hr[: hr.shape[0] // f * f, : hr.shape[1] // f * f]
        hr_t = to_tensor(hr)
        with torch.no_grad():
            lr_t = degrade(hr_t, f)
            want = vgg(hr_t)["relu2_2"]
        lr = to_uint8(lr_t)
        outs = {"bicubic": to_uint8(torch.nn.functional.interpolate(lr_t, scale_factor=f, mode="bicubic",
                                                                    align_corners=False))}
        for name, model in models.items():
            outs[name] = model.upscale_array(lr, tile=0)
        for name in methods:
            out = outs[name]
            assert out.shape == hr.shape, (name, out.shape, hr.shape)
            with torch.no_grad():
                feat = float(torch.mean((vgg(to_tensor(out))["relu2_2"] - want) ** 2))
            rows.append((path.name, name, psnr(out, hr, f), ssim(out, hr, f), feat, sharpness(out, hr)))
        c = args.crop
        y0, x0 = (hr.shape[0] - c) // 2 // f * f, (hr.shape[1] - c) // 2 // f * f
        crop = lambda a: Image.fromarray(a[y0:y0 + c, x0:x0 + c])  # noqa: E731
        lr_crop = Image.fromarray(lr[y0 // f:(y0 + c) // f, x0 // f:(x0 + c) // f]).resize((c, c), Image.Resampling.NEAREST)
        sheet_rows.append([lr_crop] + [crop(outs[m]) for m in methods if m in ("bicubic", "pixel loss", "perceptual loss")]
                          + [crop(hr)])

    print(f"x{f} super-resolution on {len(photos)} held-out photos (PSNR/SSIM on Y, border {f} px; "
          f"feature loss: relu2_2 MSE of {Path(args.vgg_weights).name}; sharpness: gradient ratio to the original)\n")
    print("| photo | method | PSNR dB | SSIM | feature loss | sharpness |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.4f} | {r[4]:.1f} | {r[5]:.2f} |")
    for name in methods:
        sel = [r for r in rows if r[1] == name]
        print(f"| **mean** | **{name}** | **{np.mean([r[2] for r in sel]):.2f}** | **{np.mean([r[3] for r in sel]):.4f}** | "
              f"**{np.mean([r[4] for r in sel]):.1f}** | **{np.mean([r[5] for r in sel]):.2f}** |")
    if args.sheet:
        labels = ["input (nearest)"] + [m for m in methods if m in ("bicubic", "pixel loss", "perceptual loss")] + ["original"]
        c, pad, top = args.crop, 4, 18
        sheet = Image.new("RGB", (len(labels) * (c + pad) + pad, top + len(sheet_rows) * (c + pad) + pad), "white")
        draw = ImageDraw.Draw(sheet)
        for j, label in enumerate(labels):
            draw.text((pad + j * (c + pad) + 4, 3), label, fill=(0, 0, 0))
        for i, row in enumerate(sheet_rows):
            for j, im in enumerate(row):
                sheet.paste(im, (pad + j * (c + pad), top + pad + i * (c + pad)))
        out = Path(args.sheet)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() in (".jpg", ".jpeg"):
            sheet.save(out, quality=90)
        else:
            sheet.save(out, optimize=True)
        print(f"\nsheet: {out} ({out.stat().st_size // 1024} KB)")
    print(f"\ncommand: python {' '.join(shlex.quote(a) for a in sys.argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
