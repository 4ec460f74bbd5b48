"""fastnst: fast neural style transfer.

Stylise a photo with a built-in style in one call (``fastnst.stylize("photo.jpg")``, torch-free; the
built-in styles' model is the file ``fastnst.BUILTIN_MODEL``), train Johnson et al.'s feed-forward
networks (``fastnst.train``), apply them with onnxruntime alone (``fastnst.Stylizer``), and run the
optimisation methods of Gatys et al. (``fastnst.gatys`` and its relatives); ``fastnst.generate`` puts any
style onto photos in one call; ``fastnst.augment`` stylises a whole dataset (locally or on a Ray cluster).
Importing this package is cheap:
the public names load their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from fastnst.constants import VERSION as __version__

# public name -> module that defines it (imported lazily so `import fastnst` stays light and torch-free)
_LAZY = {
    "train": "fastnst.training.run",
    "TrainConfig": "fastnst.training.config",
    "export_onnx": "fastnst.training.export",
    "Stylizer": "fastnst.runtime",
    "stylize": "fastnst.anystyle",
    "UniversalStylizer": "fastnst.runtime.universal",
    "gatys": "fastnst.optimize",
    "invert": "fastnst.optimize",
    "texture": "fastnst.optimize",
    "dream": "fastnst.optimize",
    "score": "fastnst.optimize",
    "generate": "fastnst.anystyle",
    "augment": "fastnst.augment",  # a callable package: fastnst.augment(...) and fastnst.augment.StyleAugmenter
    "FastNSTError": "fastnst.errors",
    "BUILTIN_MODEL": "fastnst.constants",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastnst' has no attribute '{name}'")
    try:
        value = importlib.import_module(module) if module == f"fastnst.{name}" else getattr(
            importlib.import_module(module), name)
    except ModuleNotFoundError as exc:  # e.g. fastnst.train in the torch-free base install
        from fastnst.errors import missing_dependency

        missing = missing_dependency(exc, f"fastnst.{name}")
        if missing is None:
            raise
        return _unavailable(name, missing)
    globals()[name] = value
    return value


def _unavailable(name: str, error: Exception) -> Any:
    """A stand-in for a public function whose extra is missing: ``help()``, ``dir()`` and ``import *`` work,
    calling it raises ``error`` (a MissingDependencyError saying which ``pip install`` fixes it)."""

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise error

    unavailable.__name__ = unavailable.__qualname__ = name
    unavailable.__doc__ = f"Unavailable in this install: {error}"
    return unavailable


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
