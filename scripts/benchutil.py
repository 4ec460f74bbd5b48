"""Shared helpers for the scripts/bench_*.py benchmarks (never imported by the package).

The machine drifts by about ±15% between runs, so every benchmark measures the fp32 matrix-multiply
throughput in the same run and reports ratios against it.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence


def command_line() -> str:
    """The command that ran this benchmark, for the report."""
    return " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable)] + sys.argv)


def best_time(fn: Callable[[], object], repeats: int = 3, warmup: int = 1, min_seconds: float = 0.0) -> float:
    """Best wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    start_all = time.perf_counter()
    runs = 0
    while runs < repeats or time.perf_counter() - start_all < min_seconds:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return best


def matmul_gflops(n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Measured fp32 matrix-multiply throughput in GFLOP/s (torch, all threads) on ``device``."""
    import torch

    device = torch.device(device)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)

    def mm() -> None:
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()

    seconds = best_time(mm, repeats=repeats, warmup=2)
    return 2 * n ** 3 / seconds / 1e9


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_child(code: str, env: dict[str, str] | None = None, timeout: float = 900) -> dict:
    """Run Python ``code`` in a fresh interpreter; it must print one JSON object as its last line.

    The child's peak RSS (MiB) and wall time (s) are added as ``peak_rss_mib`` and ``wall_s``.
    """
    wrapper = code + "\nimport resource as _r, json as _j\n"
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"child failed ({res.returncode}): {res.stderr[-2000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out.setdefault("wall_s", wall)
    return out


def child_peak_rss_mib() -> float:
    """Peak RSS of finished child processes (max over children), in MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def print_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> None:
    """Print ``rows`` (dicts) as an aligned text table."""
    if not rows:
        return
    columns = list(columns or rows[0].keys())

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
