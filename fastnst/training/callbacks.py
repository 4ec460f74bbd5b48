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
from fastnst.options import duration

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


LOG_SECONDS = 30.0  # chosen: off a terminal a training run says how it goes at least twice a minute


class ProgressLog(Callback):
    """Log ``step N/TOTAL  loss X  (T s, ETA ...)`` every ``every`` steps, at least every ``seconds`` and at the
    last step (rank zero only): the progress display of runs without a terminal (CI logs, ``nohup``), one plain
    line each. The ETA is the time per step since the first one this run made, times the steps left."""

    def __init__(self, every: int, seconds: float = LOG_SECONDS) -> None:
        self.every, self.seconds = max(1, int(every)), seconds
        self._t0 = self._last = time.perf_counter()
        self._first: tuple[float, int] | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step, now, total = trainer.global_step, time.perf_counter(), trainer.max_steps
        if self._first is None:
            self._first = (now, step)
        due = step % self.every == 0 or now - self._last >= self.seconds
        if trainer.is_global_zero and (due or step == total):
            loss = outputs["loss"].item() if isinstance(outputs, dict) else float("nan")
            eta = ""
            if total and total > 0 and step < total and step > self._first[1]:
                eta = f", ETA {duration((now - self._first[0]) / (step - self._first[1]) * (total - step))}"
            log.info("step %d%s  loss %.4g  (%s%s)", step, f"/{total}" if total and total > 0 else "", loss,
                     duration(now - self._t0), eta)
            self._last = now
