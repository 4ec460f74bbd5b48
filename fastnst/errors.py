"""Errors for users: each message says what is wrong and what to do, on one line.

The CLI maps every :class:`FastNSTError` to one line on stderr and exit code 2. The library raises
them and never prints or exits.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable


class FastNSTError(Exception):
    """Base class: a problem with the user's input, options or environment (not a bug)."""


class InputError(FastNSTError):
    """A missing, unreadable, corrupt or unsupported input file, or an impossible input value."""


class PaintingUnavailableError(InputError):
    """A named painting cannot be had: offline, server error, or the download is not the painting."""


class ConfigError(FastNSTError):
    """An impossible option: unknown layer or preset name, non-positive size, negative weight, ..."""


class OutputExistsError(FastNSTError):
    """The output exists and overwriting was not asked for."""


class OutputError(FastNSTError):
    """An output cannot be written: disk full, permission denied, read-only or immutable folder."""


class ResourceError(FastNSTError):
    """A request that would exhaust the machine: too many pixels, too much memory, too many threads."""


class TilingUnsupported(FastNSTError):
    """A model whose instance norms cannot be rewritten for seamless tiles (the message says why). The
    runtime turns it into a ConfigError for an explicit tile size and runs untiled (with a note) otherwise."""


class CheckpointError(FastNSTError):
    """A truncated or corrupt training checkpoint (the message names the last good one, when any)."""


class WeightsUnavailableError(FastNSTError):
    """Loss-network weights cannot be loaded (offline, missing or wrong file)."""


class ModelFormatError(FastNSTError):
    """A model file of the wrong kind (not ONNX / not a fastnst checkpoint / wrong signature)."""


class UnsafePickleError(ModelFormatError):
    """A PyTorch file that only a full unpickle (which can run code) would load: fastnst never loads it."""


class ExportError(FastNSTError):
    """ONNX export or its verification failed; no file was written."""


class OptimizationInterrupted(KeyboardInterrupt):
    """Ctrl-C during an image optimisation job (:func:`fastnst.optimize.run_job`); the message says where the
    last intermediate image is. A KeyboardInterrupt, not a FastNSTError: the command exits 130, as for Ctrl-C."""


class MissingDependencyError(FastNSTError):
    """An optional extra (or, for ``extra='base'``, a base dependency) is not installed."""

    def __init__(self, what: str, extra: str = "train") -> None:
        fix = "pip install --force-reinstall fastnst" if extra == "base" else f"pip install 'fastnst[{extra}]'"
        need = "a base dependency of fastnst that is missing" if extra == "base" else f"the '{extra}' extra"
        super().__init__(f"{what} needs {need}, which is not installed; install it with: {fix}")
        self.extra = extra


# top-level module of a dependency -> the extra that installs it ("base": the plain install has it)
EXTRA_OF_MODULE = {"torch": "train", "torchvision": "train", "pytorch_lightning": "train", "lightning": "train",
                   "lightning_fabric": "train", "onnxscript": "train", "datasets": "train", "safetensors": "train",
                   "jsonargparse": "train", "yaml": "train", "av": "video", "cv2": "video",
                   "pyarrow": "augment", "huggingface_hub": "augment", "ray": "ray",
                   "onnx": "base", "onnxruntime": "base", "numpy": "base", "PIL": "base"}


def missing_dependency(exc: ModuleNotFoundError, what: str) -> MissingDependencyError | None:
    """The MissingDependencyError for ``exc`` when it names a known dependency of fastnst, else None (a bug)."""
    extra = EXTRA_OF_MODULE.get((exc.name or "").split(".")[0])
    return MissingDependencyError(what, extra) if extra else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix for the closest choice, or '' when none is close."""
    import difflib  # only on an error: not with the module

    # Best similarity ratio first; ties go to the longest common prefix, then the later choice (relu2_3 -> relu2_2).
    scored = [(difflib.SequenceMatcher(None, name, c).ratio(), len(os.path.commonprefix([name, c])), i, c)
              for i, c in enumerate(choices)]
    best = max(scored, default=None)
    return f" (did you mean '{best[3]}'?)" if best and best[0] >= 0.6 else ""


def unknown_choice(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """A ConfigError for an unknown name, listing the valid ones and suggesting the closest."""
    choices = list(choices)
    return ConfigError(f"unknown {kind} '{name}'{did_you_mean(name, choices)}; "
                       f"valid: {', '.join(choices)}")


_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}
_DENIED = {errno.EACCES, errno.EPERM}


def os_error(exc: OSError, path: str | os.PathLike | None = None, action: str = "write") -> FastNSTError:
    """A one-line :class:`OutputError` for an OSError met while writing ``path`` (disk full, denied, ...).

    Other errors keep their message (``strerror``) on the same single line.
    """
    where = f"'{path}'" if path is not None else (f"'{exc.filename}'" if exc.filename else "the output")
    if path is None:
        folder = "the output folder"
    elif os.path.isdir(path):  # writing into a folder (a training run's --out): that folder, not its parent
        folder = f"'{os.fspath(path)}'"
    else:
        folder = f"'{os.path.dirname(os.fspath(path)) or '.'}'"
    if exc.errno in _NO_SPACE:
        return OutputError(f"cannot {action} {where}: no space left on the device; free some space or "
                           f"choose an output on another disk (nothing partial was kept)")
    if exc.errno in _DENIED:
        if action == "access":
            return OutputError(f"cannot access {where}: permission denied (a folder on the way that this user "
                               f"cannot enter or read?); check the permissions or choose another path")
        return OutputError(f"cannot {action} {where}: permission denied (is {folder} read-only, immutable or "
                           f"owned by another user?); choose another output path")
    if exc.errno == errno.EROFS:
        return OutputError(f"cannot {action} {where}: the file system is read-only; choose another output path")
    reason = exc.strerror or str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return OutputError(f"cannot {action} {where}: {reason}; check the output path and the disk")
