"""Train the networks fastnst ships, in one prepared run on a GPU: the universal model's decoders, the
built-in multi-style network and the x4 super-resolution network.

    python scripts/train_on_device.py --photos data/photos --paintings data/paintings \\
        --vgg16 vgg16-caffe-relu4_3-fp16.safetensors --vgg19 vgg19-caffe-relu4_1-fp16.safetensors --out OUT

Each network is fastnst's own module (``DecoderModule``, ``StyleTransferModule``, ``SuperResolutionModule``)
built from its checked config, so the losses are exactly those of ``fastnst train-decoder``, ``train`` and
``train-sr``; only the loop is this script's: the photos sit on the GPU (random crops, scales and flips drawn
there), bf16 autocast, channels-last, fused Adam with a cosine learning rate over a fixed wall-clock budget
per network. Results are written as each network finishes, in the formats the commands write, so a run cut
short still returns what it finished. ``--dry-run`` runs every job for a second on the CPU (the check before
spending device time). The figures of a run (steps, images/s, losses) are in OUT/log.json.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastnst.training.config import DecoderTrainConfig, SRTrainConfig, TrainConfig  # noqa: E402
from fastnst.training.decoder import DecoderModule  # noqa: E402
from fastnst.training.modules import StyleTransferModule  # noqa: E402
from fastnst.training.sr import SuperResolutionModule  # noqa: E402

# The built-in styles: real paintings (public domain) and the generated pictures that carry a style.
BUILTIN_STYLES = ("starry_night.jpg", "GreatWave.jpg", "cassat_summertime.jpg", "renoir-moulin_de_la_galette.jpg",
                  "HokusaiPoppies.jpg", "mosaic", "stained_glass", "pointillist")
BUILTIN_NAMES = ("starry_night", "great_wave", "summertime", "moulin", "poppies", "mosaic", "stained_glass",
                 "pointillist")


class Photos:
    """The training photos on the device; random crops of random scale, resized and flipped there."""

    def __init__(self, folder: Path, device: torch.device, long_side: int = 1024) -> None:
        self.images = []
        for f in sorted(folder.glob("*.jpg")):
            img = Image.open(f).convert("RGB")
            img.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
            self.images.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).to(device))
        if not self.images:
            raise SystemExit(f"no .jpg photos in {folder}")
        self.generator = torch.Generator().manual_seed(0)

    def batch(self, n: int, size: int) -> torch.Tensor:
        out = []
        for _ in range(n):
            img = self.images[int(torch.randint(len(self.images), (1,), generator=self.generator))]
            h, w = img.shape[1:]
            side = int(torch.randint(min(size, h, w), min(h, w) + 1, (1,), generator=self.generator))
            y = int(torch.randint(h - side + 1, (1,), generator=self.generator))
            x = int(torch.randint(w - side + 1, (1,), generator=self.generator))
            crop = img[None, :, y:y + side, x:x + side].float() / 255
            crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            if bool(torch.rand((), generator=self.generator) < 0.5):
                crop = crop.flip(-1)
            out.append(crop)
        return torch.cat(out).clamp_(0, 1).contiguous(memory_format=torch.channels_last)


def fit(name: str, module: Any, config: Any, photos: Photos, seconds: float, batch: int, size: int, lr: float,
        device: torch.device, log: dict[str, Any], save: Any) -> None:
    """Train ``module.trainable()`` on ``module.terms`` for ``seconds`` (cosine learning rate over the budget)."""
    module = module.to(device).to(memory_format=torch.channels_last)
    module.train()
    net = module.trainable()
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, fused=device.type == "cuda")
    amp = device.type == "cuda"
    record: dict[str, Any] = {"budget_s": seconds, "batch": batch, "size": size, "lr": lr, "curve": []}
    log[name] = record
    start, step, images, sums = time.perf_counter(), 0, 0, {}
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
        for group in opt.param_groups:  # cosine to 1% over the wall-clock budget
            group["lr"] = lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / seconds))))
        x = photos.batch(batch, size)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            terms = module.terms(x, step) if isinstance(module, StyleTransferModule) else module.terms(x)
        loss = terms["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        images += batch
        for k, v in terms.items():
            if "/" not in k:
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        if step % 100 == 0:
            record["curve"].append({"step": step, "s": round(time.perf_counter() - start, 1),
                                    **{k: round(v / 100, 6) for k, v in sums.items()}})
            print(name, record["curve"][-1], flush=True)
            sums = {}
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds_used = time.perf_counter() - start
    record.update(steps=step, images=images, seconds=round(seconds_used, 1),
                  images_per_s=round(images / max(seconds_used, 1e-9), 1))
    module.eval()
    save(module, config, step)
    print(f"{name}: {step} steps, {images} images, {record['images_per_s']} img/s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, required=True)
    ap.add_argument("--paintings", type=Path, required=True)
    ap.add_argument("--vgg16", required=True)
    ap.add_argument("--vgg19")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every time budget")
    ap.add_argument("--dry-run", action="store_true", help="a second per job on the CPU, tiny sizes")
    ap.add_argument("--only", default="", help="comma-separated job names")
    ap.add_argument("--deadline", type=float, default=480.0, help="seconds from the start by which the last job ends")
    a = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not a.dry_run else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    a.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fastnst-train-"))  # the results are packed into OUT (at most 8 files)
    log: dict[str, Any] = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                           "torch": torch.__version__}
    t0 = time.perf_counter()
    photos = Photos(a.photos, device, long_side=1024 if not a.dry_run else 96)
    log["photos"] = len(photos.images)
    small = a.dry_run
    size = lambda s: 32 if small else s  # noqa: E731
    reserve = 15.0  # seconds kept for saving and packing after a job

    def budget(seconds: float) -> float:
        left = a.deadline - (time.perf_counter() - t0) - reserve
        return 1.0 if small else max(0.0, min(seconds * a.scale, left))
    bs = lambda b: 2 if small else b  # noqa: E731
    common = dict(data=str(a.photos), num_workers=0, trainer={"accelerator": device.type})

    def decoder_job(net: str, level: int, seconds: float, batch: int, lr: float, width: float = 1.0,
                    tag: str = "") -> None:
        config = DecoderTrainConfig(**common, level=level, net=net, vgg_weights=a.vgg16 if net == "vgg16" else a.vgg19,
                                    width=width, image_size=size(256), batch_size=bs(batch), lr=lr).check()
        name = f"decoder-{tag or net}-{level}"

        def save(module: Any, c: Any, steps: int) -> None:
            module.save_weights(work / f"decoder-{tag or net}-{module.decoder.layer}.safetensors", c, steps)

        fit(name, DecoderModule.from_config(config), config, photos, budget(seconds), bs(batch), size(256), lr,
            device, log, save)

    def builtin_job(tag: str, style_weight: float, seconds: float) -> None:
        from fastnst.styles.registry import resolve_styles

        folder = work / "styles"  # each style picture under its built-in name (the network's style names)
        folder.mkdir(exist_ok=True)
        styles = []
        for spec, name in zip(BUILTIN_STYLES, BUILTIN_NAMES):
            src = Path(resolve_styles([str(a.paintings / spec) if spec.endswith(".jpg") else spec])[0])
            styles.append(str(shutil.copyfile(src, folder / f"{name}{src.suffix}")))
        config = TrainConfig(**common, style=styles, arch="fast", style_weight=style_weight, vgg_weights=a.vgg16,
                             image_size=size(256), batch_size=bs(16), lr=1e-3).check()
        StyleTransferModule.prepare(config)
        module = StyleTransferModule.from_config(config)

        def save(m: Any, c: Any, steps: int) -> None:
            m.save_weights(work / f"builtin-{tag}.safetensors", c, steps)

        fit(f"builtin-{tag}", module, config, photos, budget(seconds), bs(16), size(256), 1e-3, device, log, save)

    def sr_job(seconds: float) -> None:
        config = SRTrainConfig(**common, factor=4, loss="perceptual", skip="bicubic", vgg_weights=a.vgg16,
                               image_size=size(288) if not small else 32, batch_size=bs(16), lr=1e-3).check()

        def save(m: Any, c: Any, steps: int) -> None:
            m.save_weights(work / "sr-x4.safetensors", c, steps)

        fit("sr-x4", SuperResolutionModule.from_config(config), config, photos, budget(seconds), bs(16),
            config.image_size, 1e-3, device, log, save)

    jobs = [
        ("decoder-vgg16-4", lambda: decoder_job("vgg16", 4, 70, 16, 5e-4)),
        ("decoder-vgg16-3", lambda: decoder_job("vgg16", 3, 40, 16, 5e-4)),
        ("decoder-vgg16-2", lambda: decoder_job("vgg16", 2, 20, 16, 5e-4)),
        ("decoder-vgg16-1", lambda: decoder_job("vgg16", 1, 10, 16, 5e-4)),
        ("decoder-half-4", lambda: decoder_job("vgg16", 4, 30, 16, 5e-4, width=0.5, tag="half")),
        ("builtin-a", lambda: builtin_job("a", 0.5, 55)),
        ("builtin-b", lambda: builtin_job("b", 1.5, 55)),
        ("sr-x4", lambda: sr_job(30)),
        ("decoder-vgg19-4", lambda: decoder_job("vgg19", 4, 40, 16, 5e-4) if a.vgg19 else None),
    ]
    only = {j for j in a.only.split(",") if j}
    for name, job in jobs:
        if (only and name not in only) or budget(1.0) < 1.0:
            continue
        try:
            job()
        except Exception:  # noqa: BLE001 - one failed job must not cost the others
            log.setdefault("errors", {})[name] = traceback.format_exc()[-2000:]
            print(f"{name} FAILED\n{log['errors'][name]}", flush=True)
        pack(work, a.out, log, t0)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "curve"} if isinstance(v, dict) else v
                      for k, v in log.items() if k != "errors"}, indent=1))


def pack(work: Path, out: Path, log: dict[str, Any], t0: float) -> None:
    """Results as at most 8 files in ``out``: the vgg16 decoders in one tar, the rest one file each, the log."""
    decoders = sorted(work.glob("decoder-vgg16-*.safetensors"))
    if decoders:
        with tarfile.open(out / "decoders-vgg16.tar.tmp", "w") as tar:
            for f in decoders:
                tar.add(f, arcname=f.name)
        (out / "decoders-vgg16.tar.tmp").replace(out / "decoders-vgg16.tar")
    for f in work.glob("*.safetensors"):
        if not f.name.startswith("decoder-vgg16-"):
            shutil.copyfile(f, out / f.name)
    log["wall_s"] = round(time.perf_counter() - t0, 1)
    (out / "log.json").write_text(json.dumps(log, indent=1))


if __name__ == "__main__":
    main()
