"""Argument bounds shared by the library and the CLI: checked before any long work or large allocation.

Every numeric option a user can give is bounded here: whole numbers and their ranges, threads (capped
at the CPUs this process may use, with a log line saying so: :func:`available_cpus` is fastnst's one
answer to "how many CPUs"), image sides against the pixel cap (:func:`fastnst.constants.max_image_pixels`),
fixed model sizes (``--static``) and memory estimates against the memory available.
Torch-free and cheap to import. Errors are :class:`~fastnst.errors.ConfigError` (an impossible value)
or :class:`~fastnst.errors.ResourceError` (a value this machine cannot hold), one line each.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from fastnst.constants import MAX_STATIC_SIDE, max_image_pixels
from fastnst.contract import MIN_SIZE
from fastnst.errors import ConfigError, ResourceError

log = logging.getLogger(__name__)

# Peak memory of one training step per pixel of one crop (transformer forward/backward + VGG16 taps up to
# relu4_3 of the output, relu2_2 of the input). Measured on the CPU with the random VGG: johnson 5.9-6.1 KB,
# fast 4.9 KB at 128-256 px; chosen 8 KB to cover Lightning/optimizer overhead and channels_last copies.
TRAIN_BYTES_PER_PIXEL = 8 * 1024
# Image optimisation (gatys/invert/texture/dream): VGG19 taps with gradients measured 2.8 KB/px; L-BFGS keeps
# its history (100 pairs of image-sized vectors = 2.4 KB/px). Chosen: 6 KB/px.
OPTIMIZE_BYTES_PER_PIXEL = 6 * 1024
# A forward pass without gradients (style image targets, stylising): VGG measured 0.6 KB/px; chosen 1 KB/px.
FORWARD_BYTES_PER_PIXEL = 1024
# Fraction of the available memory an estimate may use (the rest is for the process, the OS, other jobs).
MEMORY_FRACTION = 0.8
# Upper bound of a batch (no sensible style training uses more; larger values are typos).
MAX_BATCH_SIZE = 4096
# Data loader processes at most this many times the CPUs (each holds a copy of the dataset state).
MAX_WORKERS_PER_CPU = 2


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask (cgroup-pinned containers included), bounded by a
    cgroup CPU quota where the platform tells. The one CPU count of fastnst (threads, workers, torch)."""
    try:
        n = len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        n = os.cpu_count() or 1
    quota = _cgroup_cpus()
    return max(1, min(n, quota) if quota else n)


def physical_cores() -> int:
    """Physical cores among the CPUs available (hyper-threads share one core's FPUs): the default
    thread count of the onnxruntime engine (onnxruntime's own default)."""
    logical = available_cpus()
    try:
        siblings: set[str] = set()
        for cpu in os.sched_getaffinity(0):  # type: ignore[attr-defined]
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
                siblings.add(f.read().strip())
        return max(1, min(logical, len(siblings)))
    except (OSError, AttributeError):
        return logical


def _cgroup_cpus() -> int | None:
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory this process can still use (MemAvailable, bounded by a cgroup limit); None if unknown."""
    avail: int | None = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        avail = None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            room = int(limit) - used
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


# --------------------------------------------------------------------------------------------- numbers

def whole(name: str, value: Any, minimum: int = 1, maximum: int | None = None, allow_none: bool = False) -> Any:
    """``value`` as an int in [minimum, maximum]; ConfigError otherwise (bools and fractions refused)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, int)) and hasattr(value, "__index__"):
        value = value.__index__()  # numpy integers
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        word = "positive" if minimum == 1 else f"at least {minimum}"
        raise ConfigError(f"{name} must be {word}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:,}, got {value:,}")
    return value


def number(name: str, value: Any, minimum: float | None = None, maximum: float | None = None) -> float:
    """``value`` as a finite float in [minimum, maximum]; ConfigError otherwise."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:g}, got {value:g}")
    return value


def threads(value: Any, name: str = "--threads") -> int | None:
    """A thread count capped at the CPUs available (logged when capped); None stays None (the caller's
    default: :func:`physical_cores` for onnxruntime, torch's own for torch). ConfigError for zero, negative
    or fractional values."""
    if value is None:
        return None
    n = whole(name, value)
    cpus = available_cpus()
    if n > cpus:
        log.warning("%s %d is more than the %d CPUs available; using %d", name, n, cpus, cpus)
        return cpus
    return n


def workers(value: Any, name: str = "--num-workers") -> int | None:
    """Data loader processes: 0 or more, at most twice the CPUs available."""
    if value is None:
        return None
    cap = MAX_WORKERS_PER_CPU * available_cpus()
    n = whole(name, value, minimum=0)
    if n > cap:
        raise ConfigError(f"{name} {n} is more than this machine can feed ({available_cpus()} CPUs); "
                          f"use at most {cap}")
    return n


# ---------------------------------------------------------------------------------------------- pixels

def side(name: str, value: Any, minimum: int = 1, allow_none: bool = False) -> Any:
    """An image side in pixels: a whole number whose square stays under the pixel cap."""
    cap = max_image_pixels()
    return whole(name, value, minimum=minimum, maximum=math.isqrt(cap), allow_none=allow_none)


def pixels(width: int, height: int, what: str, hint: str = "use a smaller size") -> None:
    """Refuse ``width`` x ``height`` above the pixel cap (FASTNST_MAX_PIXELS)."""
    cap = max_image_pixels()
    if width * height > cap:
        raise ResourceError(f"{what} of {width}x{height} = {width * height:,} pixels is over fastnst's limit of "
                            f"{cap:,}; {hint} (or raise FASTNST_MAX_PIXELS)")


def memory(need: float, what: str, hint: str, device: str = "cpu") -> None:
    """Refuse work whose estimated peak memory ``need`` (bytes) does not fit what is available.

    On ``device`` 'cuda' the GPU's free memory is the budget (when torch is already imported and sees one).
    Unknown budgets pass.
    """
    budget: float | None
    if device.startswith("cuda"):
        budget = None
        torch = __import__("sys").modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            try:
                budget = float(torch.cuda.mem_get_info()[0])
            except Exception:  # pragma: no cover - driver trouble: let torch report it later
                budget = None
    else:
        avail = available_memory()
        budget = float(avail) if avail is not None else None
    if budget is not None and need > MEMORY_FRACTION * budget:
        where = "GPU memory" if device.startswith("cuda") else "memory"
        raise ResourceError(f"{what} needs about {_gb(need)}, but only {_gb(budget)} of {where} is available; "
                            f"{hint}")


def train_sizes(image_size: Any, batch_size: Any, style_size: Any = None, device: str = "cpu") -> tuple[int, int, Any]:
    """Bounds of ``fastnst train``'s sizes: the crop and style side under the pixel cap, the batch under
    :data:`MAX_BATCH_SIZE`, and one step's estimated memory under what is available. Returns them as ints."""
    image_size = side("--image-size", image_size, minimum=16)
    batch_size = whole("--batch-size", batch_size, maximum=MAX_BATCH_SIZE)
    style_size = side("--style-size", style_size, minimum=16, allow_none=True)
    pixels(image_size, image_size * batch_size, f"a batch of {batch_size} crops of {image_size}x{image_size}",
           "use a smaller --image-size or --batch-size")
    need = TRAIN_BYTES_PER_PIXEL * image_size * image_size * batch_size
    memory(need, f"a training step on {batch_size} crops of {image_size}x{image_size}",
           "use a smaller --image-size or --batch-size", device)
    if style_size is not None:
        memory(FORWARD_BYTES_PER_PIXEL * style_size * style_size,
               f"the style image at {style_size} px", "use a smaller --style-size", device)
    return image_size, batch_size, style_size


def optimize_size(width: int, height: int, what: str, flag: str = "--size", device: str = "cpu",
                  images: int = 1) -> None:
    """Bounds of an image optimisation at ``width`` x ``height``: pixel cap and memory estimate."""
    pixels(width, height, what, f"use a smaller {flag}")
    memory(OPTIMIZE_BYTES_PER_PIXEL * width * height * images, f"optimising {what} at {width}x{height}",
           f"use a smaller {flag}", device)


def static_size(value: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """A fixed model size (``fastnst export --static``): ``"HxW"`` (or a (height, width) pair) to a checked
    (height, width), each side between the contract's minimum and :data:`~fastnst.constants.MAX_STATIC_SIDE`;
    None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.lower().replace("*", "x").split("x")
        try:
            h, w = (int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"--static takes HEIGHTxWIDTH such as 512x768, got '{value}'") from None
    else:
        h, w = (int(v) for v in value)
    if not (MIN_SIZE <= h <= MAX_STATIC_SIDE and MIN_SIZE <= w <= MAX_STATIC_SIDE):
        raise ConfigError(f"--static sides must be between {MIN_SIZE} and {MAX_STATIC_SIDE}, got {h}x{w}")
    return h, w


def tile(value: Any, minimum: int = 0, name: str = "--tile") -> int | None:
    """A tile side: None (automatic), 0 (never tile) or a side between ``minimum`` and the pixel-cap side."""
    if value is None:
        return None
    n = whole(name, value, minimum=0)
    if 0 < n < minimum:
        raise ConfigError(f"{name} must be 0 (never tile) or at least {minimum} pixels, got {n}")
    return side(name, n, minimum=0)
