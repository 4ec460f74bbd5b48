"""Lightning callbacks of a training run: preview grids and plain progress lines.

(Checkpoints: :class:`fastnst.training.checkpointing.CrashSafeCheckpoint`.) The library never prints: progress
without a terminal goes to the ``fastnst`` logger as plain lines, never ``\\r`` bars into a log file.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from fastnst import image as fimage

log = logging.getLogger(__name__)


class PreviewCallback(Callback):
    """Saves ``<folder>/step_XXXXXX.png`` every ``every`` steps, at the start and at the end (rank zero only).

    The module needs a ``preview_grid(images) -> PIL.Image`` method. ``last_path`` is the latest grid.
    """

    def __init__(self, images: torch.Tensor | None, folder: Path, every: int) -> None:
        self.images = images
        self.folder = Path(folder)
        self.every = int(every)
        self.last_path: Path | None = None
        self._last_step = -1

    def _save(self, trainer: pl.Trainer, module: Any) -> None:
        step = trainer.global_step
        if self.images is None or not trainer.is_global_zero or step == self._last_step:
            return
        self._last_step = step
        grid = module.preview_grid(self.images)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.last_path = fimage.save_image(grid, self.folder / f"step_{step:06d}.png", overwrite=True)
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_image"):  # TensorBoard
                experiment.add_image("previews", fimage.to_tensor(grid)[0], step)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, pl_module)  # step 0 (or the resumed step): the starting point

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self.every > 0 and trainer.global_step % self.every == 0:
            self._save(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, pl_module)


class ProgressLog(Callback):
    """Log ``step N  loss X  (T s)`` every ``every`` steps and at the last step (rank zero only): the
    progress display of runs without a terminal (CI logs, ``nohup``), one plain line each."""

    def __init__(self, every: int) -> None:
        self.every = max(1, int(every))
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if trainer.is_global_zero and (step % self.every == 0 or step == trainer.max_steps):
            loss = outputs["loss"].item() if isinstance(outputs, dict) else float("nan")
            log.info("step %d  loss %.4g  (%.1f s)", step, loss, time.perf_counter() - self._t0)
