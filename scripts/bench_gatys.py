"""Benchmark Gatys style transfer on this machine with a random VGG19 (no downloads).

Prints, with the command line that made it:
1. seconds per L-BFGS loss evaluation (forward + backward to the pixels) at each size for a textbook
   PyTorch implementation (the official "Neural Transfer Using PyTorch" tutorial's structure: loss
   modules inside an nn.Sequential, NCHW, weights frozen), fastnst with direct convolutions
   (FASTNST_WINOGRAD=0) and fastnst as shipped (Winograd F(4x4,3x3) on the CPU), with the achieved
   GFLOP/s (direct-convolution FLOPs / time) as a fraction of the fp32 matmul throughput measured
   right before each timing;
2. the time for ``--scales 3`` to reach the loss that single-scale L-BFGS reaches in 300 iterations.

Usage: .venv/bin/python scripts/bench_gatys.py [--sizes 256,512] [--iterations 300] [--no-multiscale]
Run long benchmarks with output to a file, e.g. under ``flock /tmp/fastnst-bench.lock``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchutil  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

from fastnst import optimize as O  # noqa: E402
from fastnst.constants import VGG_LAYERS  # noqa: E402
from fastnst.image import to_tensor  # noqa: E402
from fastnst.networks.vgg import clear_vgg_cache  # noqa: E402


def photo(w: int, h: int, seed: int) -> Image.Image:
    """A deterministic photo-like test image: smooth shading, edges, some texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) / max(w, h)
    img = np.stack([0.5 + 0.4 * np.sin(6 * x + seed), 0.5 + 0.4 * np.cos(5 * y - seed), 0.3 + 0.5 * x * y], -1)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.03, 0.2)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 1, 3)
    img += rng.normal(0, 0.04, img.shape)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "RGB")


def conv_flops(arch: str, deepest: str, h: int, w: int) -> float:
    """Forward FLOPs (2 x multiply-adds) of the convolutions up to ``deepest`` for an h x w input."""
    flops, c_in = 0.0, 3
    for name in VGG_LAYERS[arch][:VGG_LAYERS[arch].index(deepest) + 1]:
        if name.startswith("conv"):
            c_out = (64, 128, 256, 512, 512)[int(name[4]) - 1]
            flops += 2 * h * w * c_in * c_out * 9
            c_in = c_out
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
    return flops


# --------------------------------------------------------------------------- textbook reference

def _gram(t: torch.Tensor) -> torch.Tensor:
    a, b, c, d = t.size()
    f = t.view(a * b, c * d)
    return torch.mm(f, f.t()).div(a * b * c * d)


class _ContentLoss(nn.Module):
    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(x, self.target)
        return x


class _StyleLoss(nn.Module):
    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = _gram(target).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(_gram(x), self.target)
        return x


class _Normalization(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return (img - self.mean) / self.std


def textbook_closure(content: torch.Tensor, style: torch.Tensor):
    """The PyTorch tutorial's model building and closure, with Gatys' VGG19 layers (taps after ReLU)."""
    import torchvision

    torch.manual_seed(0)
    cnn = torchvision.models.vgg19().features.eval()
    content_layers, style_layers = ["relu4_2"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    model = nn.Sequential(_Normalization())
    cls, sls = [], []
    for name, layer in zip(VGG_LAYERS["vgg19"], cnn.children()):
        if isinstance(layer, nn.ReLU):
            layer = nn.ReLU(inplace=False)
        model.add_module(name, layer)
        if name in content_layers:
            cl = _ContentLoss(model(content))
            model.add_module(f"content_{name}", cl)
            cls.append(cl)
        if name in style_layers:
            sl = _StyleLoss(model(style))
            model.add_module(f"style_{name}", sl)
            sls.append(sl)
        if name == "relu5_1":
            break
    model.eval()
    model.requires_grad_(False)
    x = content.clone().requires_grad_(True)

    def closure() -> float:
        with torch.no_grad():
            x.clamp_(0, 1)
        model(x)
        loss = 1e9 * sum(s.loss for s in sls) + 1e4 * sum(c.loss for c in cls)
        loss.backward()
        x.grad = None
        return float(loss.detach())

    return closure


def fastnst_closure(content: Image.Image, style: Image.Image, size: int, winograd: bool):
    os.environ["FASTNST_WINOGRAD"] = "1" if winograd else "0"
    clear_vgg_cache()
    settings = O.GatysSettings(vgg_weights="random")
    settings.check()
    loss = O.GatysLoss(settings, torch.device("cpu"))
    loss.set_targets(content, [style], (size, size), None)
    x = to_tensor(content.resize((size, size))).requires_grad_(True)

    def closure() -> float:
        t = loss(x)
        t["total"].backward()
        x.grad = None
        return float(t["total"].detach())

    return closure


def per_eval(sizes: list[int], repeats: int) -> list[dict]:
    rows = []
    for size in sizes:
        content, style = photo(size, size, 1), photo(size, size, 2)
        ct, st = to_tensor(content), to_tensor(style)
        impls = {"textbook (tutorial)": textbook_closure(ct, st),
                 "fastnst direct conv": fastnst_closure(content, style, size, winograd=False),
                 "fastnst (winograd)": fastnst_closure(content, style, size, winograd=True)}
        flops = 2 * conv_flops("vgg19", "relu5_1", size, size)  # forward + gradient to the input
        base = None
        for name, fn in impls.items():
            fn()  # warm-up
            best, gf = float("inf"), 0.0
            for _ in range(repeats):  # matmul throughput right before each timing: the machine drifts
                g = benchutil.matmul_gflops(1024, repeats=3)
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                if dt < best:
                    best, gf = dt, g
            base = base or best
            rows.append({"size": f"{size}x{size}", "implementation": name, "s/eval": best,
                         "speedup": base / best, "GFLOP/s": flops / best / 1e9, "matmul GFLOP/s": gf,
                         "fraction of matmul": flops / best / 1e9 / gf})
        del impls
    return rows


def multiscale(size: int, iterations: int, scales: int) -> list[dict]:
    """Single-scale L-BFGS for ``iterations`` at size², then ``--scales`` until it reaches the same loss.

    Besides wall time (which drifts with the machine's load), the cost is counted in full-size
    evaluations (each evaluation weighted by its pixel count), which does not depend on the load.
    """
    content, style = photo(size, size, 1), photo(size, size, 2)
    os.environ["FASTNST_WINOGRAD"] = "1"
    common = dict(vgg_weights="random", size=size, seed=0)
    curve: list[float] = []

    def track(p: O.Step) -> None:
        curve.append(p.terms["total"])
        if p.iteration % 25 == 0:
            print(f"  single scale {p.iteration}/{p.total}: loss {p.terms['total']:.4g}, {p.seconds:.0f} s",
                  file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    single = O.gatys_result(content, style, iterations=iterations, scales=1, **common, callback=track)
    single_time = time.perf_counter() - t0
    target = min(curve)
    reached: dict[str, float] = {}
    cost = [0.0]

    def stop_at_target(p: O.Step) -> bool:
        cost[0] += p.size[0] * p.size[1] / (size * size)
        if p.scale == p.scales and p.terms["total"] <= target:
            reached.update(seconds=p.seconds, iteration=p.iteration)
            return True
        return False

    t0 = time.perf_counter()
    multi = O.gatys_result(content, style, iterations=iterations, scales=scales, **common, callback=stop_at_target)
    multi_time = reached.get("seconds", time.perf_counter() - t0)
    return [
        {"run": f"single scale, {iterations} iterations", "sizes": str(single.sizes), "seconds": single_time,
         "full-size evals": float(iterations), "target loss (best)": target, "time ratio": 1.0, "cost ratio": 1.0},
        {"run": f"--scales {scales} until loss <= target", "sizes": str(multi.sizes), "seconds": multi_time,
         "full-size evals": cost[0], "target loss (best)": target, "time ratio": multi_time / single_time,
         "cost ratio": cost[0] / iterations,
         "reached": f"yes, at iteration {int(reached['iteration'])}" if reached else "NO"},
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--scales", type=int, default=3)
    p.add_argument("--multiscale-size", type=int, default=512)
    p.add_argument("--no-multiscale", action="store_true")
    args = p.parse_args()
    print(f"$ {benchutil.command_line()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, random VGG19, Gatys layers "
          f"(content relu4_2, style relu1_1..relu5_1)")
    print(f"fp32 matmul throughput at start: {benchutil.matmul_gflops():.0f} GFLOP/s\n")
    rows = per_eval([int(s) for s in args.sizes.split(",")], args.repeats)
    benchutil.print_table(rows)
    sys.stdout.flush()
    if not args.no_multiscale:
        print()
        benchutil.print_table(multiscale(args.multiscale_size, args.iterations, args.scales))
    print(f"\nfp32 matmul throughput at end: {benchutil.matmul_gflops():.0f} GFLOP/s; "
          f"peak RSS {benchutil.peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
