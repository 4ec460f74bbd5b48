"""Training: the torch half's jobs (needs the [train] extra: torch, Lightning).

config (options and their checks, torch-free) and parser (their command line, torch-free); style_images and
data (what a run reads); modules (the Lightning modules), run (a run from config to files), sr
(super-resolution), callbacks and checkpointing; weights (safetensors files), export (verified ONNX) and
torch_stylizer (a weights file behind the runtime's Stylizer interface).

This face imports nothing heavy: ``import fastnst.training.config`` stays torch-free, and the names below
load their module on first use (``from fastnst.training import run_training``).
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it
_LAZY = {
    "TrainConfig": "fastnst.training.config",
    "SRTrainConfig": "fastnst.training.config",
    "RunConfig": "fastnst.training.config",
    "LossNetworkModule": "fastnst.training.modules",
    "StyleTransferModule": "fastnst.training.modules",
    "SuperResolutionModule": "fastnst.training.sr",
    "TrainResult": "fastnst.training.run",
    "run_training": "fastnst.training.run",
    "train": "fastnst.training.run",
    "run_sr_training": "fastnst.training.sr",
    "export_onnx": "fastnst.training.export",
    "TorchStylizer": "fastnst.training.torch_stylizer",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastnst.training' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
