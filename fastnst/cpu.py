"""The machine's CPU: its model, the instruction-set features that decide which number formats pay. Torch-free.

Reduced precision pays only where the CPU has the instructions for it: bfloat16 matrix products need
AVX512-BF16 or AMX (``amx_bf16``), int8 ones VNNI (``avx512_vnni`` / ``avx_vnni``) or AMX (``amx_int8``).
Elsewhere (an AVX2 CPU, for example) they are emulated, slower than float32, so fastnst keeps float32 there
(``precision='auto'``). :func:`cpu` reads the flags the kernel reports (``/proc/cpuinfo`` on Linux; on other
systems none are known, so float32);
``FASTNST_CPU_FLAGS`` (comma- or space-separated flags) replaces them, to try the choice logic of another
CPU or to force float32 (``FASTNST_CPU_FLAGS=none``).

Measured (scripts/bench_train.py, issue 20): on a 2-core Xeon with AMX, VGG16 forward+backward at batch 4,
256², takes 1.37 s in float32 and 0.29 s under bfloat16 autocast (4.8x); on the 2-core AVX2 EPYC without
AVX512-BF16 or AMX, bfloat16 autocast is slower than float32.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache

FLAGS_ENV = "FASTNST_CPU_FLAGS"
# The flags that matter here, as Linux names them (/proc/cpuinfo).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
SHOWN_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
               "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "bf16", "i8mm")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class CPU:
    """What :func:`cpu` found: the model name, the flags, where they came from."""

    model: str
    flags: frozenset[str]
    source: str  # "/proc/cpuinfo", "FASTNST_CPU_FLAGS" or "unknown"

    @property
    def bf16(self) -> bool:
        """Native bfloat16 matrix products (AVX512-BF16 or AMX)."""
        return any(f in self.flags for f in BF16_FLAGS)

    @property
    def int8(self) -> bool:
        """Native int8 dot products (VNNI or AMX)."""
        return any(f in self.flags for f in INT8_FLAGS)

    def describe(self) -> str:
        """One line: model, the relevant flags present, and what they allow."""
        shown = [f for f in SHOWN_FLAGS if f in self.flags]
        native = [name for name, ok in (("bf16", self.bf16), ("int8", self.int8)) if ok]
        return (f"{self.model}; {os.cpu_count()} logical CPUs; flags: {' '.join(shown) or 'none known'} "
                f"({self.source}); native reduced precision: {', '.join(native) or 'none (float32 only)'}")


def _parse_flags(text: str) -> frozenset[str]:
    return frozenset(f for f in text.replace(",", " ").lower().split() if f and f != "none")


@lru_cache(maxsize=None)
def _read(env: str | None) -> CPU:
    model, flags, source = platform.processor() or platform.machine() or "unknown CPU", frozenset(), "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware", "cpu model") and model in (platform.machine(), "unknown CPU", ""):
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags, source = _parse_flags(value), "/proc/cpuinfo"
    except OSError:  # not Linux: no flags known, so float32 (FASTNST_CPU_FLAGS can say otherwise)
        pass
    if env is not None:
        flags, source = _parse_flags(env), FLAGS_ENV
    return CPU(model, flags, source)


def cpu() -> CPU:
    """This machine's CPU (read once per process; ``FASTNST_CPU_FLAGS`` overrides the flags)."""
    return _read(os.environ.get(FLAGS_ENV))


def choose_precision(precision: str | None = "auto", device: str = "cpu") -> str:
    """'fp32' or 'bf16' for a torch job (training, the Gatys family) on ``device`` ('cpu', 'cuda', ...).

    ``precision``: 'auto' (None alike): bf16 on a CPU with native bfloat16 (:attr:`CPU.bf16`), float32 on
    any other CPU and on other devices (as before: pass 'bf16' to use it on a GPU); 'fp32' or 'bf16' force
    one (bf16 on a CPU without native support runs emulated, slower than float32). The caller has checked
    the name (:data:`PRECISIONS`).
    """
    if precision in ("fp32", "bf16"):
        return precision
    return "bf16" if str(device).split(":")[0] == "cpu" and cpu().bf16 else "fp32"


__all__ = ["CPU", "cpu", "choose_precision", "PRECISIONS", "BF16_FLAGS", "INT8_FLAGS", "FLAGS_ENV"]
