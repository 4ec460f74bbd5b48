"""Benchmark one training step: fastnst's StyleTransferModule vs a textbook eager PyTorch loop.

Both train the same TransformerNet against the same random VGG16 losses (relu2_2 content;
relu1_2, relu2_2, relu3_3, relu4_3 style) with Adam. The plain loop is written the textbook way
(pytorch/examples fast_neural_style): NCHW tensors, the full loss network run on the content batch
too, normalisation per batch. fastnst's step is exactly what Lightning calls: training_step, backward,
optimizer step. The two alternate step by step so machine drift hits both alike (this machine
drifts ±15%); the table reports the median step of each.

    .venv/bin/python scripts/bench_train.py                 # 128² and 256², batch 4, CPU
    .venv/bin/python scripts/bench_train.py --sizes 256 --steps 6 --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastnst.constants import IMAGENET_MEAN, IMAGENET_STD, JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS  # noqa: E402
from fastnst.networks.transformer import build_transformer, count_flops  # noqa: E402
from fastnst.networks.vgg import VGGFeatures  # noqa: E402
from fastnst.training.run import StyleTransferModule  # noqa: E402

import benchutil  # noqa: E402


def gram(y: torch.Tensor) -> torch.Tensor:
    b, ch, h, w = y.size()
    f = y.view(b, ch, w * h)
    return f.bmm(f.transpose(1, 2)) / (ch * h * w)


class PlainLoop:
    """The textbook step (pytorch/examples fast_neural_style/neural_style.py, adapted to [0,1] images)."""

    def __init__(self, style: torch.Tensor, device: torch.device, arch: str) -> None:
        self.net = build_transformer(arch).to(device)
        layers = JOHNSON_STYLE_LAYERS  # relu2_2 is among them: one VGG for everything
        self.vgg = VGGFeatures(layers, weights="random").to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), 1e-3)
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(-1, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(-1, 1, 1)
        self.vgg_raw = self.vgg.features  # the textbook VGG takes normalised input

        feats = self.features(self.normalize_batch(style))
        self.gram_style = [gram(f) for f in feats.values()]

    def normalize_batch(self, batch: torch.Tensor) -> torch.Tensor:
        return (batch - self.mean) / self.std

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for module, name in zip(self.vgg_raw, self.vgg.names):
            x = module(x)
            if name in JOHNSON_STYLE_LAYERS:
                out[name] = x
        return out

    def step(self, x: torch.Tensor) -> float:
        self.opt.zero_grad()
        y = self.net(x)
        y = self.normalize_batch(y)
        x = self.normalize_batch(x)
        features_y = self.features(y)
        features_x = self.features(x)
        content_loss = 1e5 * F.mse_loss(features_y["relu2_2"], features_x["relu2_2"])
        style_loss = 0.0
        for ft_y, gm_s in zip(features_y.values(), self.gram_style):
            gm_y = gram(ft_y)
            style_loss = style_loss + F.mse_loss(gm_y, gm_s.expand_as(gm_y))
        total = content_loss + 1e10 * style_loss
        total.backward()
        self.opt.step()
        return total.item()


class FastnstStep:
    """fastnst's step: StyleTransferModule.training_step + backward + Adam, as Lightning runs it."""

    def __init__(self, style_path: str, device: torch.device, arch: str, precision: str) -> None:
        self.module = StyleTransferModule.from_style(style_path, arch=arch, vgg_weights="random").to(device)
        self.module.on_fit_start()  # channels_last
        self.opt = self.module.configure_optimizers()
        self.precision = precision
        self.device = device

    def step(self, x: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            loss = self.module.training_step((x, torch.zeros(x.shape[0])), 0)
        loss.backward()
        self.opt.step()
        return loss.item()


class PeakRSS:
    """Peak resident memory above the starting level while a block runs (sampled every 5 ms)."""

    def __enter__(self) -> "PeakRSS":
        self.base = self.peak = self._rss()
        self._stop = False
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join()

    @property
    def delta_mib(self) -> float:
        return (self.peak - self.base) / 2**20


def _make(name: str, style: torch.Tensor, style_path: str, device: torch.device, args: argparse.Namespace):
    if name == "plain":
        return PlainLoop(style, device, args.arch).step
    return FastnstStep(style_path, device, args.arch, args.precision).step


def measure_memory(name: str, size: int, style_path: str, args: argparse.Namespace) -> float:
    """Peak memory of two steps of one variant, in a fresh process so the variants do not share an allocator."""
    if torch.device(args.device).type == "cuda":
        return float("nan")  # measured in-process from the CUDA allocator instead
    cmd = [sys.executable, __file__, "--child", name, "--sizes", str(size), "--batch", str(args.batch),
           "--arch", args.arch, "--device", args.device, "--precision", args.precision, "--style", style_path]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def child(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    style = _load_style(args.style, device)
    fn = _make(args.child, style, args.style, device, args)
    x = torch.rand(args.batch, 3, args.sizes[0], args.sizes[0], device=device)
    with PeakRSS() as rss:
        fn(x)
        fn(x)
    print(f"{rss.delta_mib:.1f}")


def _load_style(path: str, device: torch.device) -> torch.Tensor:
    from fastnst.image import load_rgb, to_tensor

    return to_tensor(load_rgb(path)).to(device)


def step_flops(arch: str, size: int, batch: int, content_full: bool) -> float:
    """FLOPs of one step: transformer fwd + bwd (2× fwd), VGG on the output to relu4_3 fwd + input-grad bwd
    (1× fwd), VGG on the content batch (to relu4_3 for the plain loop, to relu2_2 for fastnst)."""
    net = count_flops(build_transformer(arch), size, size)
    vgg_deep = count_flops(VGGFeatures(JOHNSON_STYLE_LAYERS, weights="random"), size, size)
    vgg_content = vgg_deep if content_full else count_flops(
        VGGFeatures(JOHNSON_CONTENT_LAYERS, weights="random"), size, size)
    return batch * (3 * net + 2 * vgg_deep + vgg_content)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per variant and size (after 1 warm-up)")
    ap.add_argument("--arch", default="johnson")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="32", choices=["32", "bf16"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--style", help=argparse.SUPPRESS)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=".*self.log.*")
    if args.child:
        child(args)
        return
    device = torch.device(args.device)
    torch.manual_seed(0)
    from fastnst.cpu import cpu

    print(f"CPU: {cpu().describe()}")  # first: figures of different machines are never one table
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"arch {args.arch}, batch {args.batch}, precision {args.precision}")
    peak = benchutil.matmul_gflops(device=str(device))
    print(f"measured fp32 matmul throughput: {peak:.1f} GFLOP/s (2048² @ 2048²)")
    with tempfile.TemporaryDirectory() as tmp:
        from PIL import Image
        import numpy as np

        style_path = os.path.join(tmp, "style.png")
        rng = np.random.default_rng(0)
        Image.fromarray((rng.random((256, 256, 3)) * 255).astype("uint8")).save(style_path)
        style = _load_style(style_path, device)

        header = (f"{'size':>5} {'variant':<8} {'img/s':>7} {'ms/step':>8} {'peak MiB':>9} "
                  f"{'GFLOP/step':>10} {'GFLOP/s':>8} {'of matmul':>9} {'speed-up':>8}")
        print("(peak MiB: resident memory added by two steps, each variant in a fresh process; "
              "GFLOP counts convolutions only)")
        print(header)
        for size in args.sizes:
            mem = {name: measure_memory(name, size, style_path, args) for name in ("plain", "fastnst")}
            variants = {name: _make(name, style, style_path, device, args) for name in ("plain", "fastnst")}
            x = torch.rand(args.batch, 3, size, size, device=device)
            times: dict[str, list[float]] = {k: [] for k in variants}
            for name, fn in variants.items():  # warm-up (oneDNN builds its kernels on the first calls)
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                fn(x)
                fn(x)
                if device.type == "cuda":
                    mem[name] = (torch.cuda.max_memory_allocated() - base) / 2**20
            for _ in range(args.steps):  # alternate: drift hits both alike
                for name, fn in variants.items():
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    t = time.perf_counter()
                    fn(x)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times[name].append(time.perf_counter() - t)
            med = {k: statistics.median(v) for k, v in times.items()}
            for name in variants:
                flops = step_flops(args.arch, size, args.batch, content_full=(name == "plain"))
                rate = flops / med[name] / 1e9
                print(f"{size:>5} {name:<8} {args.batch / med[name]:>7.2f} {med[name] * 1e3:>8.0f} "
                      f"{mem[name]:>9.0f} {flops / 1e9:>10.1f} {rate:>8.1f} {rate / peak:>9.0%} "
                      f"{med['plain'] / med[name]:>7.2f}x", flush=True)
            del variants
    print(f"max RSS of the process: {benchutil.peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
