"""A training run: one job from a checked config to the files it leaves (what ``fastnst train`` and
``fastnst train-sr`` call).

:func:`run` runs any trainer (a :class:`~fastnst.training.modules.LossNetworkModule` subclass and its config
class): check every input before anything is written, decide the output folder (``--overwrite``,
``--resume``), fit with fastnst's loggers, previews and crash-safe checkpoints, then save
``<out>/<name>.safetensors`` and the verified ``<out>/<name>.onnx``. Checkpoints (``last.ckpt``, written
atomically by :class:`fastnst.training.checkpointing.CrashSafeCheckpoint`) resume exactly: weights, optimizer,
step, the position in the data order and the random states. :func:`run_training` and :func:`train` are the
style network's job; :func:`fastnst.training.sr.run_sr_training` super-resolution's.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from fastnst import checks
from fastnst.errors import ConfigError, FastNSTError, os_error
from fastnst.training.callbacks import PreviewCallback, ProgressLog
from fastnst.training.checkpointing import CrashSafeCheckpoint, resume_hint
from fastnst.training.config import TRAINER_DEFAULTS, RunConfig, TrainConfig
from fastnst.training.data import ContentDataModule
from fastnst.training.modules import LossNetworkModule, StyleTransferModule

log = logging.getLogger(__name__)


class _DropTips(logging.Filter):
    """Hide Lightning's advertising tips (e.g. for litlogger); keep its real messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropTips())


@dataclass
class TrainResult:
    """Where a training run left its files (``onnx`` None when not exported)."""

    weights: Path
    checkpoint: Path
    onnx: Path | None
    metrics: Path | None
    preview: Path | None
    steps: int
    interrupted: bool
    is_global_zero: bool

    def summary(self, next_step: str | None = None) -> list[str]:
        """Lines saying where the results are (``next_step``: a command with ``{onnx}``, shown with a model)."""
        lines = [f"previews:   {self.preview.parent}/ (latest {self.preview.name})"] if self.preview else []
        lines += [f"losses:     {self.metrics}"] if self.metrics else []
        lines += [f"checkpoint: {self.checkpoint}   (continue with --resume {self.checkpoint})",
                  f"weights:    {self.weights}"]
        if self.onnx:
            lines.append(f"onnx:       {self.onnx}")
            lines += [f"next:       {next_step.format(onnx=self.onnx)}"] if next_step else []
        return lines


def output_folder(config: RunConfig, default: Path, ckpt_path: Path | None, files: Sequence[str]) -> Path:
    """The run's output folder: ``config.out``, else the --resume file's folder, else ``default``.

    Refused (FastNSTError, nothing written) when it is a file, lies inside the data folder, or already holds
    one of ``files`` or a last.ckpt without ``resume`` or ``overwrite``."""
    from fastnst.outputs import check_run_folder

    out = Path(config.out if config.out is not None else ckpt_path.parent if ckpt_path is not None else default)
    out = out.expanduser()
    return check_run_folder(out, (*files, "last.ckpt"), keep=ckpt_path is not None or config.overwrite,
                            reads=Path(str(config.data)).expanduser(),
                            among=f"the data folder '{config.data}': previews and checkpoints would be written "
                                  f"among (and read as) training images",
                            held=f"'{out}' already holds a training run; pass {resume_hint(out)} to continue it, "
                                 f"--overwrite to start again, or another --out")


def make_loggers(out: Path, user: Any = None) -> list[Any]:
    """fastnst's CSV logger (``<out>/logs/version_*/metrics.csv``, first), then the user's logger(s), or
    TensorBoard when installed and none was given; ``user=False``: the CSV logger only."""
    from pytorch_lightning.loggers import CSVLogger

    loggers: list[Any] = [CSVLogger(save_dir=str(out), name="logs")]
    if user not in (None, True, False):
        loggers += list(user) if isinstance(user, (list, tuple)) else [user]
    elif user is None and any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(out), name="tensorboard"))
    return loggers


def make_callbacks(config: RunConfig, out: Path, previews: torch.Tensor | None,
                   options: dict[str, Any]) -> list[Callback]:
    """Crash-safe checkpoints and preview grids into ``out``, the user's callbacks, and plain progress lines
    (:class:`~fastnst.training.callbacks.ProgressLog`) when Lightning's bar is off; sets the bar's default in the
    Trainer ``options``: on only when stdout and stderr are terminals (a bar writes ``\\r`` lines into logs)."""
    user = options.get("callbacks") or []
    callbacks: list[Callback] = [CrashSafeCheckpoint(out, every_n_steps=config.checkpoint_every,
                                                     every_minutes=config.checkpoint_minutes),
                                 PreviewCallback(previews, out / "previews", config.preview_every)]
    callbacks += list(user) if isinstance(user, (list, tuple)) else [user]
    if options.get("enable_progress_bar") is None:  # Lightning's bar is written to stdout
        options["enable_progress_bar"] = all(getattr(s, "isatty", lambda: False)() for s in (sys.stdout, sys.stderr))
    if not options["enable_progress_bar"]:
        callbacks.append(ProgressLog(config.steps // 10 if config.steps else config.checkpoint_every // 10))
    return callbacks


def make_trainer(config: RunConfig, out: Path, options: dict[str, Any], loggers: list[Any],
                 callbacks: list[Callback], datamodule: ContentDataModule) -> pl.Trainer:
    """The Lightning Trainer of a run with the Trainer ``options`` (made before the output folder exists:
    a bad accelerator leaves nothing behind)."""
    kwargs: dict[str, Any] = dict(TRAINER_DEFAULTS, max_steps=config.steps or -1, max_epochs=config.epochs or -1,
                                  default_root_dir=str(out))
    kwargs.update(options, logger=loggers, callbacks=callbacks)
    kwargs["enable_checkpointing"] = False  # CrashSafeCheckpoint writes the checkpoints
    if type(datamodule).train_dataloader is ContentDataModule.train_dataloader:
        kwargs["use_distributed_sampler"] = False  # its ResumableSampler shards between ranks itself
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
            return pl.Trainer(**kwargs)
    except FastNSTError:
        raise
    except Exception as exc:  # MisconfigurationException, ValueError, RuntimeError: unavailable devices
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConfigError(f"bad trainer option: {first}; see --help (--trainer.accelerator, --trainer.devices)"
                          ) from None


def fit_module(module: LossNetworkModule, datamodule: ContentDataModule, config: RunConfig, out: Path,
               ckpt_path: Path | None, description: str) -> tuple[pl.Trainer, PreviewCallback]:
    """Fit ``module`` on ``datamodule`` with fastnst's loggers, previews and checkpoints into ``out``; ends
    with a resumable ``out/last.ckpt`` at the final step. Returns (trainer, preview callback)."""
    if torch.get_num_threads() > checks.available_cpus():  # torch's threads capped at the CPUs we may use
        torch.set_num_threads(checks.available_cpus())
    options = dict(config.trainer)  # the config stays as given
    loggers = make_loggers(out, options.pop("logger", None))
    callbacks = make_callbacks(config, out, datamodule.previews, options)
    trainer = make_trainer(config, out, options, loggers, callbacks, datamodule)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, out, "create the output folder") from None
    log.info("%s", description)
    with warnings.catch_warnings():
        # The frozen VGG stays in eval mode on purpose; resuming an iterable stream restarts its epoch.
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
        # Resume restores weights, optimizer and step exactly; the random crops simply continue afresh.
        warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
        except OSError as exc:  # disk full or permissions while writing logs, previews or checkpoints
            raise os_error(exc, out, "write into") from None
    callbacks[0].save(trainer, out / "last.ckpt")  # atomic; the previous one kept as previous.ckpt
    return trainer, callbacks[1]


def export_quietly(weights: Path, onnx_path: Path) -> Path | None:
    """Export ``weights`` to a verified ONNX model with fastnst.training.export; a failure is logged, never fatal
    (the weights are safe; ``fastnst export`` can redo it)."""
    try:
        from fastnst.training.export import export_onnx
    except ImportError as exc:  # fastnst.training.export or one of its dependencies (onnx, onnxscript) is missing
        log.warning("ONNX export skipped (%s); export later with 'fastnst export %s'", exc, weights)
        return None
    try:
        return Path(export_onnx(weights, onnx_path, overwrite=True))
    except Exception as exc:  # noqa: BLE001 - the trained weights are saved; export can be redone
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        log.warning("ONNX export failed (%s: %s); the weights are saved, retry with 'fastnst export %s'",
                    type(exc).__name__, first, weights)
        return None


def finish_run(trainer: pl.Trainer, module: LossNetworkModule, datamodule: ContentDataModule, config: RunConfig,
               out: Path, previews: PreviewCallback) -> TrainResult:
    """After fitting: warnings, the weights (:meth:`LossNetworkModule.save_weights` on rank zero), the ONNX
    model when ``config.export``; returns the :class:`TrainResult`."""
    last_ckpt = out / "last.ckpt"
    if trainer.interrupted:
        log.warning("training interrupted at step %d; resume with --resume %s", trainer.global_step, last_ckpt)
    if module.skipped_images or datamodule.skipped:
        log.warning("skipped %d unreadable images", module.skipped_images + datamodule.skipped)
    name = module.run_name
    weights_path, onnx_path = out / f"{name}.safetensors", None
    if trainer.is_global_zero:
        module.save_weights(weights_path, config, int(trainer.global_step))
        if config.export:
            onnx_path = export_quietly(weights_path, out / f"{name}.onnx")
    metrics = Path(trainer.loggers[0].log_dir) / "metrics.csv"
    return TrainResult(weights=weights_path, checkpoint=last_ckpt, onnx=onnx_path,
                       metrics=metrics if metrics.is_file() else None, preview=previews.last_path,
                       steps=int(trainer.global_step), interrupted=bool(trainer.interrupted),
                       is_global_zero=bool(trainer.is_global_zero))


def run(module_class: type[LossNetworkModule], config: Any = None, *args: Any, **options: Any) -> TrainResult:
    """Train ``module_class``'s network as ``config`` says; returns where the results are.

    ``config`` is an instance of ``module_class.config_class``, or its positional fields followed by keyword
    options (:meth:`~fastnst.training.config.RunConfig.build`). It is checked (and the module's own inputs
    prepared) before the data, the loss network or anything on disk is touched; the output folder is
    ``config.out``, else the ``--resume`` file's folder, else the module's default folder.
    """
    config = module_class.config_class.checked(config, *args, **options)
    module_class.prepare(config)
    # the files named on the command line first (--resume, --vgg-weights through the loss network), then the
    # data, whose scan may take a while and log skipped images
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = module_class.from_config(config)
    ckpt_path = module.check_resume(config.resume) if config.resume else None
    datamodule = ContentDataModule.from_config(config).check()
    out = output_folder(config, module.default_folder(config), ckpt_path, [f"{module.run_name}.safetensors"])
    description = (f"{module.describe(config, datamodule.describe())}, batch {config.batch_size}, "
                   + (f"{config.steps} steps" if config.steps is not None else f"{config.epochs} epochs"))
    trainer, previews = fit_module(module, datamodule, config, out, ckpt_path, description)
    return finish_run(trainer, module, datamodule, config, out, previews)


def run_training(config: TrainConfig | str | os.PathLike | Sequence[str | os.PathLike], *args: Any,
                 **options: Any) -> TrainResult:
    """Train a style network as ``config`` says; returns where the results are.

    ``config`` is a :class:`~fastnst.training.config.TrainConfig`, or (as for :func:`train`) the style followed by
    ``data``, ``out`` and keyword options. ``data`` is 'coco', a Hugging Face dataset id, a folder of images
    or parquet file(s); ``out`` defaults to ``checkpoints/<style name>`` (the ``resume`` file's folder when
    resuming). Defaults follow Johnson et al. 2016 (256² crops, batch 4, 40k steps, Adam 1e-3).

    Everything is checked before anything is written: FastNSTError for a missing or unreadable style
    image, a data source without usable images, unknown layers, bad sizes or weights, a missing or foreign
    ``resume`` file, unavailable VGG weights, or an ``out`` holding an earlier run (pass ``overwrite=True``
    or ``resume``). Writes ``out/last.ckpt``, ``out/<style>.safetensors``, ``out/<style>.onnx``,
    ``out/previews/step_*.png`` and ``out/logs/version_*/metrics.csv``.
    """
    return run(StyleTransferModule, config, *args, **options)


def train(style: str | os.PathLike | Sequence[str | os.PathLike], data: str = "coco",
          out: str | os.PathLike | None = None, **options: Any) -> Path:
    """Train a style network for ``style`` on ``data``; returns the path of the trained weights.

    ``options`` are the fields of :class:`~fastnst.training.config.TrainConfig` (``image_size``, ``steps``, ``arch``,
    ``vgg_weights``, ...) and any Lightning Trainer argument (``accelerator``, ``devices``, ``precision``,
    ``logger``, ``callbacks``).
    """
    return run_training(TrainConfig.build(style, data, out, **options)).weights


__all__ = ["TrainResult", "run", "run_training", "train", "output_folder", "make_loggers", "make_callbacks",
           "make_trainer", "fit_module", "export_quietly", "finish_run"]
