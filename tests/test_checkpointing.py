"""Checkpoints: written whole (the previous one kept), random states carried, truncated files told from foreign
ones, and a --resume file of another command, network, style or loss refused (fast: no Lightning run here;
kill -9 and full disks are in tests/test_faults.py)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fastnst.errors import CheckpointError, InputError, ModelFormatError
from fastnst.training import checkpointing as ck


class _Trainer(SimpleNamespace):
    """What CrashSafeCheckpoint uses of a Lightning Trainer: it writes a Lightning-like checkpoint dict."""

    def __init__(self, step: int = 0, hparams: dict | None = None) -> None:
        super().__init__(global_step=step, is_global_zero=True, strategy=SimpleNamespace(broadcast=lambda v, src: v))
        self.hparams = hparams or {"transformer_config": {"channels": [4, 8, 8]}}

    def save_checkpoint(self, path, weights_only=False):
        torch.save({"state_dict": {"w": torch.full((2,), float(self.global_step))}, "global_step": self.global_step,
                    "hyper_parameters": self.hparams, "optimizer_states": [{}]}, path)


def _step(path) -> int:
    return int(torch.load(path, weights_only=True)["global_step"])


def test_a_checkpoint_replaces_the_last_one_and_keeps_it_as_previous(tmp_path):
    cb = ck.CrashSafeCheckpoint(tmp_path, every_n_steps=2, every_minutes=0)
    trainer = _Trainer(step=0)
    cb.on_train_start(trainer, None)  # a fresh run: resumable from step 0
    assert _step(tmp_path / "last.ckpt") == 0 and not (tmp_path / "previous.ckpt").exists()
    for step in (1, 2, 3):
        trainer.global_step = step
        cb.on_train_batch_end(trainer, None, None, None, step)
    assert _step(tmp_path / "last.ckpt") == 2 and _step(tmp_path / "previous.ckpt") == 0  # step 3 was not due
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "previous.ckpt"]  # no temporary files
    trainer.global_step = 5
    assert cb.save(trainer, tmp_path / "final.ckpt") == tmp_path / "final.ckpt"  # another name: last untouched
    assert _step(tmp_path / "final.ckpt") == 5 and _step(tmp_path / "last.ckpt") == 2


def test_random_states_travel_with_the_checkpoint():
    cb = ck.CrashSafeCheckpoint("unused", every_n_steps=0, every_minutes=0)
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    state = cb.state_dict()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    restored = ck.CrashSafeCheckpoint("unused", every_n_steps=0, every_minutes=0)
    restored.load_state_dict(state)  # as Lightning does on resume; applied when training starts
    restored.on_train_start(_Trainer(step=7), None)  # step > 0: a resumed run writes nothing at its start
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_truncated_and_foreign_files_are_told_apart(tmp_path):
    trainer = _Trainer(step=4)
    cb = ck.CrashSafeCheckpoint(tmp_path, every_n_steps=0, every_minutes=0, keep_previous=False)
    good = cb.save(trainer)
    assert ck.load_checkpoint(good)["global_step"] == 4
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[:200])  # a torch zip whose end is missing
    with pytest.raises(CheckpointError, match=f"last good one is '{good}' \\(step 4\\)"):
        ck.load_checkpoint(cut)
    assert ck.last_good_checkpoint(tmp_path) == (4, good) and ck.resume_hint(tmp_path) == f"--resume {good}"
    assert ck.checkpoints_in(tmp_path) == [(4, good)]  # the cut file does not load
    foreign = tmp_path / "notes.ckpt"
    foreign.write_text("not a checkpoint")
    with pytest.raises(ModelFormatError, match="not a fastnst training checkpoint"):
        ck.load_checkpoint(foreign)
    good.unlink()
    with pytest.raises(CheckpointError, match="no other good checkpoint"):
        ck.load_checkpoint(cut)
    assert ck.resume_hint(tmp_path) == f"--resume {tmp_path / 'last.ckpt'}"


def test_resume_files_of_another_run_are_refused(tmp_path):
    config = {"channels": [4, 8, 8]}
    style = ck.CrashSafeCheckpoint(tmp_path / "style", every_n_steps=0, every_minutes=0)
    (tmp_path / "style").mkdir()
    path = style.save(_Trainer(step=3, hparams={"transformer_config": config, "style_sha256": "a" * 64,
                                                "arch": "custom", "style_name": "wave"}))
    assert ck.check_resume(path, config, "a" * 64) == path
    with pytest.raises(ModelFormatError, match="--arch"):
        ck.check_resume(path, {"channels": [8, 8, 8]}, "a" * 64)
    with pytest.raises(ModelFormatError, match="another style image \\('wave'\\)"):
        ck.check_resume(path, config, "b" * 64)
    with pytest.raises(ModelFormatError, match="not a fastnst train-sr checkpoint"):
        ck.check_sr_resume(path, {"factor": 4}, "perceptual")  # a style run's checkpoint
    with pytest.raises(InputError, match="does not exist"):
        ck.check_resume(tmp_path / "nothing.ckpt", config, "a" * 64)
    (tmp_path / "sr").mkdir()
    sr = ck.CrashSafeCheckpoint(tmp_path / "sr", every_n_steps=0, every_minutes=0).save(
        _Trainer(step=2, hparams={"sr_config": {"factor": 4}, "loss": "pixel"}))
    assert ck.check_sr_resume(sr, {"factor": 4}, "pixel") == sr
    with pytest.raises(ModelFormatError, match="--factor"):
        ck.check_sr_resume(sr, {"factor": 2}, "pixel")
    with pytest.raises(ModelFormatError, match="pass --loss pixel"):
        ck.check_sr_resume(sr, {"factor": 4}, "perceptual")
