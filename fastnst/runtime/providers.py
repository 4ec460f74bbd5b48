"""Where and how onnxruntime runs: execution providers, session options and threads. Torch-free.

``onnxruntime`` itself is imported on first use (:func:`ort`), so importing this module is cheap. A provider
choice is 'auto' (the best installed), a short name ('cpu', 'cuda', ...), a full onnxruntime name, a
``(name, options)`` pair or a list of those; :func:`resolve_providers` turns it into onnxruntime's list with
the CPU provider as the fallback. Threads are checked by :func:`fastnst.checks.threads` (capped at
:func:`fastnst.checks.available_cpus`); the default is :func:`fastnst.checks.physical_cores`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Union

from fastnst import checks
from fastnst.errors import ConfigError, unknown_choice

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
# Execution providers: short names -> onnxruntime names; 'auto' takes the first installed of
# AUTO_ORDER, then CPU (the order onnxruntime's documentation recommends: TensorRT before CUDA).
PROVIDER_ALIASES: dict[str, str] = {
    "cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider", "directml": "DmlExecutionProvider", "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider", "openvino": "OpenVINOExecutionProvider", "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider", "qnn": "QNNExecutionProvider", "webgpu": "WebGpuExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}
AUTO_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "DmlExecutionProvider",
              "CoreMLExecutionProvider", "OpenVINOExecutionProvider")
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")

ProviderSpec = Union[str, tuple[str, Mapping[str, Any]]]


def ort() -> Any:
    """The onnxruntime module (MissingDependencyError when it is not installed)."""
    try:
        import onnxruntime
    except ModuleNotFoundError as exc:  # pragma: no cover - it is a base dependency
        from fastnst.errors import MissingDependencyError

        raise MissingDependencyError("running ONNX models", "base") from exc
    return onnxruntime


def available_providers() -> list[str]:
    """Execution providers that the installed onnxruntime offers (e.g. CUDA, CPU)."""
    return list(ort().get_available_providers())


def short_name(provider: str) -> str:
    """'CUDAExecutionProvider' -> 'cuda' (the alias), other names unchanged."""
    return next((k for k, v in PROVIDER_ALIASES.items() if v == provider), provider)


def provider_name(spec: ProviderSpec) -> str:
    """The onnxruntime name of a resolved provider entry (a name or a (name, options) pair)."""
    return spec if isinstance(spec, str) else spec[0]


def _full_name(name: str) -> str:
    """'cuda' / 'CUDA' / 'CUDAExecutionProvider' -> 'CUDAExecutionProvider'; ConfigError when unknown."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a provider is a name such as 'cpu' or 'CUDAExecutionProvider', got {name!r}")
    key = name.strip()
    if key.lower() in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[key.lower()]
    known = set(PROVIDER_ALIASES.values()) | set(available_providers())
    for full in known:
        if full.lower() == key.lower() or full.lower() == key.lower() + "executionprovider":
            return full
    raise unknown_choice("provider", key, ["auto", *PROVIDER_ALIASES, *sorted(known)])


def parse_provider(text: str) -> ProviderSpec:
    """A CLI provider ``NAME[:key=value,key=value]`` to a name or a (name, options) tuple."""
    name, sep, rest = text.partition(":")
    if not sep:
        return name.strip()
    options: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"provider options are key=value pairs separated by commas, got '{item}' in '{text}'")
        options[key.strip()] = value.strip()
    return name.strip(), options


def is_auto(device: Any) -> bool:
    """Whether a provider choice leaves the choice to fastnst (None or 'auto')."""
    return device is None or (isinstance(device, str) and device.strip().lower() == "auto")


def resolve_providers(device: ProviderSpec | Sequence[ProviderSpec] | None = None) -> list[ProviderSpec]:
    """onnxruntime's ``providers`` list for a provider choice.

    ``device``: None or 'auto' (the best installed: TensorRT, CUDA, DirectML, CoreML, OpenVINO, then
    CPU), a name ('cpu', 'cuda', 'CUDAExecutionProvider', ...), a ``(name, options)`` tuple, or a list of
    those. The CPU provider is appended as the fallback. A name onnxruntime here lacks raises
    ConfigError (never a silent CPU run); so do unknown names (with a suggestion) and options that
    are not a mapping.
    """
    available = available_providers()
    if is_auto(device):
        chosen: list[ProviderSpec] = [p for p in AUTO_ORDER if p in available]
        return chosen + ["CPUExecutionProvider"]
    items = [device] if isinstance(device, (str, tuple)) else list(device)  # type: ignore[arg-type]
    if not items:
        raise ConfigError("the provider list is empty; pass 'auto', 'cpu' or a provider name")
    out: list[ProviderSpec] = []
    for item in items:
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[1], Mapping):
                raise ConfigError(f"a provider with options is a (name, dict) pair, got {item!r}")
            name, options = _full_name(item[0]), {str(k): str(v) for k, v in item[1].items()}
        elif isinstance(item, str):
            name, options = _full_name(item), None
        else:
            raise ConfigError(f"a provider is a name or a (name, options) pair, got {type(item).__name__}")
        if name not in available:
            hint = (" install onnxruntime-gpu or" if name in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
                    else "")
            raise ConfigError(f"provider {short_name(name)}: this onnxruntime has no {name} (available: "
                              f"{', '.join(available)});{hint} use --provider cpu")
        out.append((name, options) if options is not None else name)
    if not any(provider_name(p) == "CPUExecutionProvider" for p in out):
        out.append("CPUExecutionProvider")
    return out


def check_threads(threads: int | None) -> int:
    """The intra-op thread count: None -> :func:`fastnst.checks.physical_cores`; otherwise
    :func:`fastnst.checks.threads` (capped at the CPUs available, with a logged note; zero, negative or
    fractional values raise ConfigError)."""
    return checks.threads(threads, "threads") or checks.physical_cores()


def session_options(threads: int | None = None, optimization: str | None = None, arena: bool = True) -> Any:
    """onnxruntime SessionOptions tuned for style networks on CPU.

    Threads = physical cores by default (onnxruntime's own default; hyper-threads share one core's
    FPUs), capped at the CPUs this process may use. ``optimization``: 'disable', 'basic', 'extended'
    or 'all' (default). Chosen, measured with scripts/bench_infer.py (tuning section): once the thin
    output convolution is split (fastnst.runtime.rewrite), 'all' (NCHWc layout) is the fastest level, and with
    polyphase up-sampling its peak memory is below the former default's. The memory arena stays on
    unless ``arena`` is false; memory-pattern planning is off (every image has another shape).
    """
    rt = ort()
    level = optimization or "all"
    if level not in OPTIMIZATION_LEVELS:
        raise unknown_choice("graph optimisation level", str(level), OPTIMIZATION_LEVELS)
    options = rt.SessionOptions()
    options.graph_optimization_level = {
        "disable": rt.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": rt.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": rt.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    options.intra_op_num_threads = check_threads(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = rt.ExecutionMode.ORT_SEQUENTIAL
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    if not arena:
        options.enable_cpu_mem_arena = False
    return options


__all__ = ["DEVICES", "PROVIDER_ALIASES", "AUTO_ORDER", "OPTIMIZATION_LEVELS", "ProviderSpec", "ort",
           "available_providers", "short_name", "provider_name", "parse_provider", "is_auto", "resolve_providers",
           "check_threads", "session_options"]
