"""Crash-safe training checkpoints: atomic, on a step interval and a wall-clock interval, checked on resume.

:class:`CrashSafeCheckpoint` replaces Lightning's ModelCheckpoint for fastnst runs. A checkpoint is written
to a temporary name in the output folder (never ``$TMPDIR``: a rename across file systems is a copy), flushed
to the disk (fsync), and only then renamed to ``last.ckpt``; the checkpoint it replaces is kept as
``previous.ckpt`` (a hard link made before the rename), so at every moment of a ``kill -9`` or a full disk the
folder holds complete checkpoints under their real names. The data position and random states are stored
too (:meth:`fastnst.training.data.ContentDataModule.state_dict`, :meth:`CrashSafeCheckpoint.state_dict`): resuming
from any checkpoint ends with the same weights as a run never interrupted.

:func:`load_checkpoint` reads a checkpoint with ``weights_only=True`` and tells a truncated or corrupt file
from a foreign one, naming the last good checkpoint in the folder (:func:`last_good_checkpoint`).
:func:`check_checkpoint` and the trainers' checks on it (:func:`check_resume`, :func:`check_sr_resume`) refuse a
``--resume`` file of another command, network, style or loss before anything is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from fastnst.training.config import DEFAULT_CHECKPOINT_MINUTES
from fastnst.errors import CheckpointError, FastNSTError, InputError, ModelFormatError, os_error
from fastnst.fileio import commit_temp, fsync_path, remove_stale_temps, temp_path

log = logging.getLogger(__name__)

LAST = "last.ckpt"
PREVIOUS = "previous.ckpt"
# Environment hook for the fault-injection tests: "STEP" kills the process with SIGKILL after that step's
# checkpoint decision, "STEP:save" in the middle of writing that step's checkpoint (temporary file written,
# not yet renamed). Never set outside tests.
FAULT_ENV = "FASTNST_FAULT_KILL_AT_STEP"


def _fault(step: int, where: str) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    at, _, phase = spec.partition(":")
    if at.isdigit() and int(at) == step and (phase or "step") == where:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class CrashSafeCheckpoint(Callback):
    """Write ``<folder>/last.ckpt`` every ``every_n_steps`` steps, every ``every_minutes`` minutes, at the
    start of a fresh run (step 0, so a run killed at any step can be resumed) and when asked (:meth:`save`).

    Args:
        folder: the run's output folder (temporary files are made there).
        every_n_steps: step interval (0: off).
        every_minutes: wall-clock interval in minutes (0: off).
        keep_previous: keep the replaced checkpoint as ``previous.ckpt``.
    """

    def __init__(self, folder: str | os.PathLike, every_n_steps: int = 1000,
                 every_minutes: float = DEFAULT_CHECKPOINT_MINUTES, keep_previous: bool = True) -> None:
        self.folder = Path(folder)
        self.every_n_steps = int(every_n_steps)
        self.every_seconds = float(every_minutes) * 60.0
        self.keep_previous = keep_previous
        self.last_path = self.folder / LAST
        self._last_step = -1
        self._last_time = time.monotonic()
        self._rng_to_restore: dict[str, Any] | None = None

    # -- when --------------------------------------------------------------------------------------

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            remove_stale_temps(self.folder, force=True)
        if self._rng_to_restore is not None:
            _set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None
        self._last_time = time.monotonic()
        if trainer.global_step == 0:  # a fresh run: resumable from its very first step
            self.save(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step:  # gradient accumulation: no new step yet
            return
        due = bool(self.every_n_steps and step % self.every_n_steps == 0)
        due = due or bool(self.every_seconds and time.monotonic() - self._last_time >= self.every_seconds)
        due = bool(trainer.strategy.broadcast(due, 0))  # the same decision on every rank
        if due:
            self.save(trainer)
        _fault(step, "step")

    # -- how ---------------------------------------------------------------------------------------

    def save(self, trainer: pl.Trainer, path: str | os.PathLike | None = None) -> Path:
        """Write a checkpoint atomically to ``path`` (default ``<folder>/last.ckpt``); all ranks call this."""
        final = Path(path) if path is not None else self.last_path
        tmp = temp_path(final)
        try:
            trainer.save_checkpoint(str(tmp), weights_only=False)
            if trainer.is_global_zero:
                _fault(trainer.global_step, "save")
                fsync_path(tmp)
                if self.keep_previous and final == self.last_path and final.exists():
                    _keep_previous(final, final.with_name(PREVIOUS))
                commit_temp(tmp, final)
        except OSError as exc:
            raise os_error(exc, final, "write checkpoint") from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._last_step = trainer.global_step
        self._last_time = time.monotonic()
        return final

    # -- random states travel with the checkpoint (restored when training starts) ---------------------

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _get_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._rng_to_restore = state_dict.get("rng")


def _keep_previous(current: Path, previous: Path) -> None:
    """Make ``previous`` the same file as ``current`` (hard link, atomically replacing it; copy if links fail)."""
    tmp = temp_path(previous)
    try:
        os.link(current, tmp)
    except OSError:
        import shutil

        shutil.copyfile(current, tmp)
    try:
        os.replace(tmp, previous)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _get_rng_state() -> dict[str, Any]:
    import numpy as np

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype("int64")),
                                                                        int(pos), int(has_gauss), float(gauss)],
                             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    with contextlib.suppress(Exception):
        torch.set_rng_state(state["torch"])
    with contextlib.suppress(Exception):
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, gauss))
    with contextlib.suppress(Exception):
        random.setstate(_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


# ------------------------------------------------------------------------------------------- reading

def _looks_truncated(path: Path) -> bool:
    """A file that began as a torch checkpoint (zip) but does not load: truncated or corrupt, not foreign."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return path.stat().st_size == 0 or head == b"PK\x03\x04"


def read_checkpoint(path: str | os.PathLike, what: str = "checkpoint") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` of a fastnst checkpoint; raises on anything else (no message)."""
    from fastnst.fileio import load_weights_only

    ckpt = load_weights_only(path, what)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError("not a Lightning checkpoint")
    return ckpt


def checkpoints_in(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint in ``folder`` that loads, newest step first."""
    found: list[tuple[int, Path]] = []
    folder = Path(folder)
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.ckpt")):
        try:
            ckpt = read_checkpoint(path)
        except Exception:
            continue
        found.append((int(ckpt.get("global_step", 0)), path))
    found.sort(key=lambda sp: (-sp[0], sp[1].name != LAST))
    return found


def last_good_checkpoint(folder: str | os.PathLike,
                         exclude: str | os.PathLike | None = None) -> tuple[int, Path] | None:
    """The (step, path) of the newest checkpoint in ``folder`` that loads (``exclude`` left out), or None."""
    for step, path in checkpoints_in(folder):
        if exclude is None or Path(path).resolve() != Path(exclude).resolve():
            return step, path
    return None


def load_checkpoint(path: str | os.PathLike, what: str = "--resume") -> dict[str, Any]:
    """Load a training checkpoint safely (weights only). A truncated or corrupt one raises CheckpointError
    naming the last good checkpoint in its folder; a file of another kind raises ModelFormatError."""
    path = Path(path)
    try:
        return read_checkpoint(path, what)
    except FastNSTError:
        raise
    except Exception:
        pass
    if _looks_truncated(path):
        good = last_good_checkpoint(path.parent, exclude=path)
        hint = (f"the last good one is '{good[1]}' (step {good[0]}): resume with --resume {good[1]}" if good
                else "no other good checkpoint is in that folder; start again with --overwrite")
        raise CheckpointError(f"{what} '{path}' is truncated or corrupt (an interrupted write or a full disk); {hint}")
    raise ModelFormatError(f"{what} '{path}' is not a fastnst training checkpoint (it does not load as a "
                           f"weights-only PyTorch checkpoint); pass the last.ckpt written by fastnst train")


def resume_hint(folder: str | os.PathLike) -> str:
    """What to pass to continue the run in ``folder``: its last.ckpt when that is good, else the last good one."""
    folder = Path(folder)
    good = last_good_checkpoint(folder)
    if good is None:
        return f"--resume {folder / LAST}"
    return f"--resume {good[1]}"


# ------------------------------------------------------------------------------------------- resuming

def check_checkpoint(path: str | os.PathLike, key: str, command: str) -> tuple[Path, dict[str, Any]]:
    """``path`` and its hyper-parameters when it is a resumable checkpoint of ``fastnst <command>`` (its
    hyper-parameters hold ``key``); InputError (missing), CheckpointError (truncated), ModelFormatError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"--resume checkpoint '{path}' does not exist; pass the last.ckpt of an earlier run")
    ckpt = load_checkpoint(path)  # truncated/corrupt: CheckpointError naming the last good one
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hparams, dict) or key not in hparams or "optimizer_states" not in ckpt:
        raise ModelFormatError(f"--resume '{path}' is not a fastnst {command} checkpoint; pass the last.ckpt "
                               f"written by fastnst {command}")
    return path, hparams


def check_resume(path: str | os.PathLike, transformer_config: dict[str, Any], style_sha256: Any) -> Path:
    """Check that ``path`` is a ``fastnst train`` checkpoint of this network and style; returns it.

    Raises InputError (missing) or ModelFormatError (foreign file, other architecture or style).
    """
    path, hparams = check_checkpoint(path, "transformer_config", "train")
    if dict(hparams["transformer_config"]) != dict(transformer_config):
        raise ModelFormatError(f"--resume '{path}' holds a '{hparams.get('arch', 'custom')}' network, not this "
                               f"run's; pass the same --arch as the run that wrote it")
    if hparams.get("style_sha256") and hparams["style_sha256"] != style_sha256:
        raise ModelFormatError(f"--resume '{path}' was trained on another style image "
                               f"('{hparams.get('style_name', '?')}'); pass the same --style")
    return path


def check_sr_resume(path: str | os.PathLike, sr_config: dict[str, Any], loss: str) -> Path:
    """Check that ``path`` is a ``fastnst train-sr`` checkpoint of this network and loss; returns it."""
    path, hparams = check_checkpoint(path, "sr_config", "train-sr")
    if dict(hparams["sr_config"]) != dict(sr_config):
        raise ModelFormatError(f"--resume '{path}' holds another network ({hparams['sr_config']}); pass the same "
                               f"--factor and network settings as the run that wrote it")
    if hparams.get("loss") != loss:
        raise ModelFormatError(f"--resume '{path}' was trained with the {hparams.get('loss')} loss; pass --loss "
                               f"{hparams.get('loss')}")
    return path
