"""Callbacks of a run: preview grids (start, interval, end; rank zero; once per step; TensorBoard too) and plain
progress lines (fast: fake trainers, no Lightning run)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import torch
from PIL import Image

from fastnst.training.callbacks import PreviewCallback, ProgressLog


class _Module:
    def __init__(self) -> None:
        self.calls = 0

    def preview_grid(self, images):
        self.calls += 1
        return Image.new("RGB", (images.shape[-1], images.shape[-2]), (10 * self.calls, 0, 0))


class _Board:
    def __init__(self) -> None:
        self.images = []

    def add_image(self, tag, tensor, step):
        self.images.append((tag, tuple(tensor.shape), step))


def _trainer(step=0, rank_zero=True, loggers=(), max_steps=-1):
    return SimpleNamespace(global_step=step, is_global_zero=rank_zero, loggers=list(loggers), max_steps=max_steps)


def test_previews_at_the_start_every_n_steps_and_at_the_end(tmp_path):
    board = _Board()
    cb = PreviewCallback(torch.rand(2, 3, 8, 12), tmp_path / "previews", every=3)
    module = _Module()
    trainer = _trainer(loggers=[SimpleNamespace(experiment=board), SimpleNamespace(experiment=None)])
    cb.on_train_start(trainer, module)
    for step in range(1, 8):
        trainer.global_step = step
        cb.on_train_batch_end(trainer, module, None, None, step)
    cb.on_train_end(trainer, module)
    names = sorted(p.name for p in (tmp_path / "previews").iterdir())
    assert names == ["step_000000.png", "step_000003.png", "step_000006.png", "step_000007.png"]
    assert module.calls == 4 and cb.last_path == tmp_path / "previews" / "step_000007.png"
    assert Image.open(cb.last_path).size == (12, 8)
    assert [s for _, _, s in board.images] == [0, 3, 6, 7] and board.images[0][1] == (3, 8, 12)
    cb.on_train_end(trainer, module)  # the same step again: not drawn twice
    assert module.calls == 4


def test_no_previews_off_rank_zero_or_without_images(tmp_path):
    module = _Module()
    PreviewCallback(torch.rand(1, 3, 8, 8), tmp_path / "a", every=1).on_train_start(_trainer(rank_zero=False), module)
    cb = PreviewCallback(None, tmp_path / "b", every=1)
    cb.on_train_start(_trainer(), module)
    cb.on_train_end(_trainer(step=5), module)
    assert module.calls == 0 and cb.last_path is None
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    only_ends = PreviewCallback(torch.rand(1, 3, 8, 8), tmp_path / "c", every=0)  # 0: start and end only
    only_ends.on_train_batch_end(_trainer(step=4), module, None, None, 4)
    assert module.calls == 0


def test_progress_lines_every_n_steps_and_at_the_last(caplog):
    log = ProgressLog(every=4)
    with caplog.at_level(logging.INFO, logger="fastnst.training.callbacks"):
        for step in range(1, 11):
            log.on_train_batch_end(_trainer(step=step, max_steps=10), None, {"loss": torch.tensor(0.5 * step)}, None, 0)
        log.on_train_batch_end(_trainer(step=12, rank_zero=False, max_steps=12), None, {"loss": torch.tensor(1.0)},
                               None, 0)
    lines = [r.getMessage() for r in caplog.records]
    assert [ln.split("  (")[0] for ln in lines] == ["step 4/10  loss 2", "step 8/10  loss 4", "step 10/10  loss 5"]
    assert all(", ETA " in ln for ln in lines[:2]) and lines[-1].endswith(" s)")  # the ETA of the steps left
    assert all("\r" not in ln for ln in lines)
    assert ProgressLog(every=0).every == 1  # a run shorter than 10 steps still logs each step
