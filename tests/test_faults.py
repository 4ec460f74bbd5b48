"""Fault injection: kill -9 and exact resume, full disks, unwritable folders, outputs equal to inputs,
hostile values. Every fault ends in one line on stderr and exit code 2 (or runs correctly); nothing
partial is left and nothing existing is lost.

A real small file system (tmpfs) is used for the full-disk cases where the test may mount one (root with
CAP_SYS_ADMIN); elsewhere ``OSError(ENOSPC)`` is injected at the same place. Immutable folders need root
(chattr +i); read-only ones need a non-root user (chmod): each case skips with its reason otherwise.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fastnst.cli import main
from fastnst.errors import CheckpointError, OutputError
from tests.conftest import synthetic_rgb

ROOT = os.geteuid() == 0


@pytest.fixture(autouse=True)
def fresh_cli_logging():
    """The CLI binds its log handler to the sys.stderr of its first call; give each test its own (capsys)."""
    import logging

    logger = logging.getLogger("fastnst")
    saved = logger.handlers[:]
    logger.handlers.clear()
    yield
    logger.handlers[:] = saved


# ------------------------------------------------------------------------------------------- helpers

def _err(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def _one_line_error(capsys, argv, words: str) -> str:
    """Run the CLI, expect exit 2 and exactly one 'fastnst: error:' line containing ``words``, no traceback."""
    rc = main([str(a) for a in argv])
    lines = _err(capsys)
    errors = [ln for ln in lines if ln.startswith("fastnst: error:")]
    assert rc == 2, lines
    assert len(errors) == 1 and words in errors[0], lines
    assert not any("Traceback" in ln for ln in lines), lines
    return errors[0]


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".fastnst-" in p.name and ".tmp" in p.name)


@pytest.fixture
def small_fs(tmp_path):
    """A 6 MB tmpfs (a real full disk) when this user may mount one, else None (the tests simulate ENOSPC)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = False
    if ROOT and shutil.which("mount"):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)],
                                 capture_output=True).returncode == 0
    try:
        yield mnt if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def locked_folder(tmp_path):
    """A folder nobody can create files in: immutable (root, chattr +i) or read-only (non-root, chmod)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if ROOT:
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)],
                                                        capture_output=True).returncode != 0:
            pytest.skip("running as root and this file system does not support chattr +i: no folder root cannot write")
        try:
            yield folder
        finally:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    else:
        folder.chmod(0o500)
        try:
            yield folder
        finally:
            folder.chmod(0o700)


# ------------------------------------------------------------------------------------------- training

STEPS = 10
EVERY = 3


@pytest.fixture
def run_setup(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(7):  # 6 for training (one preview held out): 3 batches of 2 per epoch
        synthetic_rgb(48, 40, seed=i).save(photos / f"{i}.png")
    style = tmp_path / "wave.png"
    synthetic_rgb(40, 40, seed=9).save(style)
    args = ["train", "--style", style, "--data", photos, "--image-size", "32", "--batch-size", "2", "--arch", "fast",
            "--vgg-weights", "random", "--num-workers", "0", "--num-previews", "1", "--preview-every", "0",
            "--export", "false", "--trainer.enable_progress_bar", "false", "--checkpoint-every", str(EVERY)]
    return [str(a) for a in args], tmp_path


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from fastnst.training.weights import load_transformer

    net, _ = load_transformer(folder / "wave.safetensors")
    return net.state_dict()


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_kill9_at_a_random_step_then_resume_ends_with_the_uninterrupted_weights(run_setup, capsys):
    args, tmp = run_setup
    rng = random.Random()  # random on purpose: each run kills somewhere else; the place is in the message
    if rng.random() < 0.5:
        where = f"{rng.randint(1, STEPS - 1)}:step"  # after a step (the last checkpoint is older)
    else:
        where = f"{EVERY * rng.randint(1, (STEPS - 1) // EVERY)}:save"  # mid-write: temp written, not renamed
    killed = tmp / "killed"
    # The run to kill is a fresh process (not a fork of this one: a fork after torch's autograd threads have
    # started, e.g. by an ONNX export earlier in the test session, breaks autograd in the child); it SIGKILLs
    # itself at the chosen place, exactly as kill -9 from outside would stop it.
    env = dict(os.environ, FASTNST_FAULT_KILL_AT_STEP=where, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "fastnst", *args, "--out", str(killed), "--steps", str(STEPS)],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600)
    assert proc.returncode == -9, (where, proc.returncode, proc.stderr[-2000:])
    assert not (killed / "wave.safetensors").exists()
    if where.endswith(":save"):
        assert _temps(killed), where  # the killed write's temporary file, never a partial last.ckpt
    # resume to the end: exactly where an uninterrupted run ends
    assert main(args + ["--out", str(killed), "--steps", str(STEPS), "--resume", str(killed / "last.ckpt")]) == 0, where
    assert main(args + ["--out", str(tmp / "whole"), "--steps", str(STEPS)]) == 0
    capsys.readouterr()
    assert _max_diff(_weights(killed), _weights(tmp / "whole")) <= 1e-6, where
    assert _temps(killed) == [], where  # the resumed run removed the killed run's temporary file


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_kill9_from_outside_at_a_random_moment(run_setup, attempt):
    """A real SIGKILL from another process at a random moment (after the first checkpoint)."""
    import signal
    import time

    args, tmp = run_setup
    out = tmp / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "fastnst", *args, "--steps", "24", "--checkpoint-every", "1"]
    proc = subprocess.Popen(cmd + ["--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "last.ckpt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 3.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    env_args = [a for a in cmd[3:]]
    assert main(env_args + ["--out", str(out), "--resume", str(out / "last.ckpt")]) == 0
    assert main(env_args + ["--out", str(tmp / "whole")]) == 0
    assert _max_diff(_weights(out), _weights(tmp / "whole")) <= 1e-6
    assert _temps(out) == []


def test_truncated_checkpoint_is_named_with_the_last_good_one(run_setup, capsys):
    args, tmp = run_setup
    out = tmp / "run"
    assert main(args + ["--out", str(out), "--steps", "4"]) == 0
    last = out / "last.ckpt"
    assert (out / "previous.ckpt").is_file()
    with open(last, "r+b") as f:  # a write cut short (full disk, power loss)
        f.truncate(last.stat().st_size // 2)
    capsys.readouterr()
    line = _one_line_error(capsys, args + ["--out", out, "--steps", "6", "--resume", last], "truncated or corrupt")
    assert "previous.ckpt" in line and "step 3" in line
    # the run-exists message points at the good checkpoint, not at the corrupt one
    line = _one_line_error(capsys, args + ["--out", out, "--steps", "6"], "already holds a training run")
    assert "previous.ckpt" in line
    from fastnst.training.checkpointing import load_checkpoint

    with pytest.raises(CheckpointError):
        load_checkpoint(last)
    # and the good one resumes
    assert main(args + ["--out", str(out), "--steps", "6", "--resume", str(out / "previous.ckpt")]) == 0


def test_disk_full_while_training_is_one_line_and_keeps_the_last_good_checkpoint(run_setup, small_fs, capsys,
                                                                                   monkeypatch):
    args, tmp = run_setup
    if small_fs is not None:  # a real 6 MB file system: the step-0 checkpoint fits, the next one does not
        out = small_fs / "run"
    else:
        out = tmp / "run"
        import pytorch_lightning as pl

        real = pl.Trainer.save_checkpoint
        calls = []

        def half_then_enospc(self, filepath, *a, **k):
            calls.append(filepath)
            real(self, filepath, *a, **k)
            if len(calls) >= 2:  # the second checkpoint: half written, then the disk is full
                with open(filepath, "r+b") as f:
                    f.truncate(os.path.getsize(filepath) // 2)
                raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(pl.Trainer, "save_checkpoint", half_then_enospc)
    _one_line_error(capsys, args + ["--out", out, "--steps", "8", "--checkpoint-every", "1"], "no space left")
    from fastnst.training.checkpointing import read_checkpoint

    assert read_checkpoint(out / "last.ckpt")["global_step"] == 0  # complete, under its real name
    assert _temps(out) == []


def test_unavailable_accelerator_is_one_line_and_leaves_no_folder(run_setup, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the accelerator is available")
    args, tmp = run_setup
    out = tmp / "run"
    for extra, words in ((["--trainer.accelerator", "cuda"], "bad trainer option"),
                         (["--trainer.accelerator", "gpu"], "bad trainer option"),
                         (["--trainer.devices", "abc"], "bad trainer option")):
        _one_line_error(capsys, args + ["--out", out, "--steps", "1"] + extra, words)
        assert not out.exists()


def test_training_into_a_locked_folder_is_one_line(run_setup, locked_folder, capsys):
    args, _ = run_setup
    _one_line_error(capsys, args + ["--out", locked_folder / "run", "--steps", "1"], "cannot create the output folder")


def test_training_into_an_immutable_out_names_that_folder(run_setup, locked_folder, capsys):
    """`train --out DIR` on an immutable DIR blamed '.' instead of DIR."""
    args, _ = run_setup
    line = _one_line_error(capsys, args + ["--out", locked_folder, "--steps", "1"], "permission denied")
    assert f"is '{locked_folder}' read-only" in line and "is '.'" not in line


@pytest.mark.parametrize("extra, words", [
    (["--image-size", "100000"], "at most 16,384"),
    (["--image-size", "8000"], "needs about"),
    (["--batch-size", "100000"], "at most 4,096"),
    (["--style-size", "100000"], "at most 16,384"),
    (["--num-workers", "100000"], "use at most"),
    (["--checkpoint-minutes", "-1"], "--checkpoint-minutes must be >= 0"),
    (["--image-size", "-5"], "--image-size must be >= 16"),
])
def test_hostile_training_values_fail_fast(run_setup, capsys, extra, words):
    args, tmp = run_setup
    _one_line_error(capsys, args + ["--out", tmp / "run", "--steps", "1"] + extra, words)
    assert not (tmp / "run").exists()


def test_training_output_cannot_be_the_data_folder(run_setup, capsys):
    args, tmp = run_setup
    _one_line_error(capsys, args + ["--out", tmp / "photos", "--steps", "1"], "inside the data folder")
    _one_line_error(capsys, args + ["--out", tmp / "photos" / "run", "--steps", "1"], "inside the data folder")


def test_resumable_sampler_is_the_same_order_wherever_it_starts():
    from fastnst.training.data import ResumableSampler

    whole = list(ResumableSampler(10, 3, seed=5))  # 3 batches of 3 per epoch
    second_epoch = ResumableSampler(10, 3, seed=5, start_batch=3)
    full = ResumableSampler(10, 3, seed=5)
    list(full)
    assert list(full) == list(second_epoch)  # epoch 2 from a fresh sampler equals epoch 2 of a running one
    mid = list(ResumableSampler(10, 3, seed=5, start_batch=1))
    assert mid == whole[3:]
    assert list(ResumableSampler(10, 3, seed=6)) != whole
    # two ranks split one permutation without overlap
    r0, r1 = (list(ResumableSampler(10, 2, seed=5, rank=r, world_size=2)) for r in (0, 1))
    assert not {i for i, _ in r0} & {i for i, _ in r1}


# ------------------------------------------------------------------------------------------- stylize, export

@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(("a.png", "b.png", "c.jpg")):
        synthetic_rgb(40, 32, seed=i).save(folder / name)
    return folder


def test_stylize_never_writes_onto_an_input(tiny_model, photos, tmp_path, capsys):
    onnx_path, _ = tiny_model
    a = photos / "a.png"
    before = a.read_bytes()
    os.link(a, tmp_path / "hard.png")
    for argv in ([a, "-o", a, "--overwrite"], [a, "-o", tmp_path / "hard.png", "--overwrite"],
                 [photos, "-o", photos, "--overwrite"], [photos, "-o", str(photos) + "/", "--overwrite"],
                 [photos / "b.png", a, "-o", photos, "--format", "png", "--overwrite"]):
        _one_line_error(capsys, ["stylize", "-m", onnx_path, *argv], "would replace it")
    assert a.read_bytes() == before
    # an output that does not resolve to an input is fine; an empty -o is refused
    _one_line_error(capsys, ["stylize", "-m", onnx_path, a, "-o", ""], "empty")
    # --in-place replaces each input with its result, atomically
    assert main(["stylize", "-m", str(onnx_path), str(photos), "-o", str(photos), "--in-place"]) == 0
    assert a.read_bytes() != before and Image.open(a).size == (40, 32) and _temps(photos) == []


def test_stylize_disk_full_mid_batch_goes_on_and_ends_with_its_summary(tiny_model, photos, tmp_path, capsys, monkeypatch,
                                                                      small_fs):
    onnx_path, _ = tiny_model
    if small_fs is not None:  # a real full disk: the second output cannot be written
        out = small_fs / "out"
        out.mkdir()
        (small_fs / "filler").write_bytes(b"\0" * (6 * 2**20 - 64 * 1024))
        big = photos / "b.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(big)
    else:
        out = tmp_path / "out"
        real = Image.Image.save

        def full_on_b(self, fp, *a, **k):
            if "b.png" in str(fp):
                real(self, fp, *a, **k)  # part of the file reaches the disk, then the disk is full
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, fp, *a, **k)

        monkeypatch.setattr(Image.Image, "save", full_on_b)
    rc = main(["stylize", "-m", str(onnx_path), str(photos), "-o", str(out)])
    lines = _err(capsys)
    assert rc == 2
    assert any("b.png" in ln and "no space left" in ln for ln in lines), lines
    assert "stylised 2 of 3 images" in lines[-1] and "1 failed" in lines[-1], lines
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.jpg"]  # nothing partial


def test_stylize_into_a_locked_folder_is_one_line(tiny_model, photos, locked_folder, capsys):
    onnx_path, _ = tiny_model
    _one_line_error(capsys, ["stylize", "-m", onnx_path, photos / "a.png", "-o", locked_folder / "x.png"], "")
    assert list(locked_folder.iterdir()) == []


def test_stylize_hostile_values(tiny_model, photos, capsys):
    onnx_path, _ = tiny_model
    a = photos / "a.png"
    for extra, words in ((["--tile", "100000"], "at most"), (["--max-size", "100000"], "at most"),
                         (["--tile", "3"], "at least 16")):
        _one_line_error(capsys, ["stylize", "-m", onnx_path, a, "-o", photos / "x.png", *extra], words)
    # a thread count above the CPUs is capped (and said), not obeyed
    assert main(["stylize", "-m", str(onnx_path), str(a), "-o", str(photos / "t.png"), "--threads", "100000"]) == 0
    assert any("using" in ln for ln in _err(capsys))


def test_stdin_is_named_in_errors(tiny_model, tmp_path, capsys, monkeypatch):
    import io

    onnx_path, _ = tiny_model

    class Stdin:
        buffer = io.BytesIO(b"not an image")

    monkeypatch.setattr(sys, "stdin", Stdin)
    _one_line_error(capsys, ["stylize", "-m", onnx_path, "-", "-o", tmp_path / "o.png"], "'<stdin>'")


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_tiny_images_onnxruntime_equals_torch(tiny_model, size):
    """1x1 to 4x4 images are padded to the network's minimum size (8) in both runtimes: no reflection pad ever
    sees a side smaller than itself (where onnxruntime and torch disagree); the results agree."""
    from fastnst.models import load_model

    onnx_path, weights = tiny_model
    rgb = np.random.default_rng(size).random((size, size, 3)).astype(np.float32)
    a = load_model(onnx_path, "cpu").stylize(rgb)
    b = load_model(weights, "cpu").stylize(rgb)
    assert a.shape == b.shape == (size, size, 3)
    assert float(np.abs(a - b).max()) <= 1e-5


def test_export_never_writes_onto_the_weights(tiny_model, tmp_path, capsys):
    _, weights = tiny_model
    w = tmp_path / "w.safetensors"
    shutil.copy(weights, w)
    before = w.read_bytes()
    os.link(w, tmp_path / "w-link.onnx")
    _one_line_error(capsys, ["export", w, "-o", w, "--overwrite"], "must end in .onnx")
    _one_line_error(capsys, ["export", w, "-o", tmp_path / "w-link.onnx", "--overwrite"], "would replace it")
    assert w.read_bytes() == before
    (tmp_path / "empty_dir").mkdir()
    _one_line_error(capsys, ["export", tmp_path / "empty_dir"], "is a folder")
    _one_line_error(capsys, ["export", w, "-o", ""], "empty")


def test_export_disk_full_is_one_line_and_leaves_nothing(tiny_model, tmp_path, capsys, monkeypatch):
    import onnx

    _, weights = tiny_model

    def full(proto, path, *a, **k):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(onnx, "save_model", full)
    out = tmp_path / "out"
    out.mkdir()
    _one_line_error(capsys, ["export", weights, "-o", out / "m.onnx", "--no-verify"], "no space left")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("config, words", [
    ("{not json", "not JSON"), ('{"channels": "abc"}', "channels"), ('{"nope": 1}', "unknown"),
    ('{"num_residual": 100000000}', "num_residual"), ('{"channels": [100000, 5, 5]}', "channels"),
])
def test_malformed_config_metadata_is_one_line(tiny_model, tmp_path, capsys, config, words):
    from safetensors import safe_open
    from safetensors.torch import save_file

    _, weights = tiny_model
    with safe_open(str(weights), "pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["fastnst_config"] = config
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    for argv in (["export", bad, "-o", tmp_path / "bad.onnx"], ["info", bad]):
        line = _one_line_error(capsys, argv, "malformed 'fastnst_config'")
        assert words in line
    assert not (tmp_path / "bad.onnx").exists()


# ------------------------------------------------------------------------------------------- gatys & co

@pytest.mark.parametrize("command", ["gatys", "texture", "invert", "dream"])
def test_optimisation_outputs_never_replace_inputs_and_are_checked_first(command, tmp_path, capsys):
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    synthetic_rgb(32, 32, seed=1).save(content)
    synthetic_rgb(32, 32, seed=2).save(style)
    os.link(content, tmp_path / "hard.png")
    base = {"gatys": ["--content", content, "--style", style], "texture": ["--style", style],
            "invert": ["--image", content], "dream": ["--image", content]}[command]
    argv = [command, *base, "--vgg-weights", "random", "--iterations", "1", "--size", "32"]
    target = style if command == "texture" else content
    before = target.read_bytes()
    _one_line_error(capsys, argv + ["-o", target, "--overwrite"], "would replace it")
    if command != "texture":
        _one_line_error(capsys, argv + ["-o", tmp_path / "hard.png", "--overwrite"], "would replace it")
    _one_line_error(capsys, argv + ["-o", tmp_path / "out.xyz"], "unsupported output format")
    _one_line_error(capsys, argv + ["-o", ""], "empty")
    _one_line_error(capsys, argv[:-2] + ["--size", "100000", "-o", tmp_path / "o.png"], "at most")
    if command in ("gatys", "texture"):  # the style image is resized to style-scale x the output
        _one_line_error(capsys, argv + ["--style-scale", "500", "-o", tmp_path / "o.png"], "<= 64")
        _one_line_error(capsys, argv[:-2] + ["--size", "512", "--style-scale", "40", "-o", tmp_path / "o.png"],
                        "over fastnst's limit")
    assert target.read_bytes() == before


def test_fileio_errors_are_outputerror_not_oserror(tmp_path):
    from fastnst.fileio import atomic_output

    with pytest.raises(OutputError, match="no space left"):
        with atomic_output(tmp_path / "x.bin") as tmp:
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_demo_leftovers_of_a_failed_run_do_not_block_the_retry(tmp_path, capsys, monkeypatch):
    import fastnst.training.run
    from fastnst.errors import InputError

    out = tmp_path / "demo"
    (out / "photos").mkdir(parents=True)
    (out / "model").mkdir()
    (out / "hubble.jpg").write_bytes(b"x")

    def reached(*a, **k):
        raise InputError("training reached")

    monkeypatch.setattr(fastnst.training.run, "run_training", reached)
    _one_line_error(capsys, ["demo", "--out", out, "--vgg-weights", "random"], "training reached")
    (out / "stylized").mkdir()
    (out / "stylized" / "a.jpg").write_bytes(b"x")
    _one_line_error(capsys, ["demo", "--out", out, "--vgg-weights", "random"], "already holds a demo")
    shutil.rmtree(out / "stylized")
    (out / "notes.txt").write_text("mine")
    _one_line_error(capsys, ["demo", "--out", out, "--vgg-weights", "random"], "holds other files")
    assert (out / "notes.txt").read_text() == "mine"


def test_cpu_devices_above_the_cpus_are_refused_before_any_process_starts(run_setup, capsys):
    from fastnst import checks

    if torch.cuda.is_available():
        pytest.skip("with CUDA, --trainer.devices counts GPUs (Lightning checks them)")
    args, tmp = run_setup
    n = checks.available_cpus() + 1  # small on purpose: were the check to regress, only n processes start
    _one_line_error(capsys, args + ["--out", tmp / "run", "--steps", "1", "--trainer.accelerator", "cpu",
                                    "--trainer.devices", str(n)], "use at most")
    assert not (tmp / "run").exists()


@pytest.mark.parametrize("minutes, expected", [(1e-9, [0, 1, 2, 3, 3]), (0.0, [0, 3])])
def test_checkpoints_follow_the_wall_clock_as_well_as_the_steps(run_setup, monkeypatch, minutes, expected):
    from fastnst.training.checkpointing import CrashSafeCheckpoint

    args, tmp = run_setup
    saved: list[int] = []
    real = CrashSafeCheckpoint.save

    def record(self, trainer, path=None):
        saved.append(int(trainer.global_step))
        return real(self, trainer, path)

    monkeypatch.setattr(CrashSafeCheckpoint, "save", record)
    argv = args + ["--out", str(tmp / "run"), "--steps", "3", "--checkpoint-every", "1000",
                   "--checkpoint-minutes", repr(minutes)]
    assert main(argv) == 0
    assert saved == expected  # step 0 (resumable from the start), the interval, the final one


def test_a_folder_this_user_cannot_enter_is_one_line(tiny_model, tmp_path):
    """Run as an unprivileged user (nobody, via setpriv, when the tests run as root; else as this user)."""
    onnx_path, _ = tiny_model
    locked = tmp_path / "locked"
    (locked / "sub").mkdir(parents=True)
    locked.chmod(0o700 if ROOT else 0o000)
    photo = tmp_path / "p.png"
    synthetic_rgb(40, 32).save(photo)
    prefix: list[str] = []
    if ROOT:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: no unprivileged user to run the command as")
        for p in (tmp_path, photo, Path(onnx_path).parent, onnx_path):
            p.chmod(p.stat().st_mode | 0o005)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = subprocess.run(prefix + [sys.executable, "-c", "import fastnst.cli"], capture_output=True,
                               text=True, timeout=60, cwd=tmp_path, env=dict(os.environ, HOME=str(tmp_path)))
        if probe.returncode != 0:  # e.g. the checkout lies under a folder only root may enter
            pytest.skip(f"the unprivileged user cannot import fastnst here: {probe.stderr.strip()[-120:]}")
    try:
        for argv in (["stylize", "-m", str(onnx_path), str(photo), "-o", str(locked / "sub" / "x.png")],
                     ["stylize", "-m", str(onnx_path), str(locked / "sub"), "-o", str(tmp_path / "out")],
                     ["info", str(locked / "m.onnx")]):
            proc = subprocess.run(prefix + [sys.executable, "-m", "fastnst", *argv], capture_output=True, text=True,
                                  timeout=120, env=dict(os.environ, HOME=str(tmp_path)))
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            assert proc.returncode == 2 and len(lines) == 1 and "permission denied" in lines[0], (argv, proc.stderr)
    finally:
        locked.chmod(0o700)


def test_unexpected_os_errors_become_one_line(monkeypatch, capsys):
    import fastnst.commands.models as models

    def denied(argv):
        raise PermissionError(errno.EACCES, "Permission denied", "/secret/x")

    monkeypatch.setattr(models, "main_info", denied)
    assert main(["info", "x.onnx"]) == 2
    lines = _err(capsys)
    assert len(lines) == 1 and "cannot access '/secret/x': permission denied" in lines[0]


def test_untiled_stylize_checks_memory_before_the_allocation(tiny_model, tmp_path, capsys, monkeypatch):
    from fastnst import checks

    onnx_path, _ = tiny_model
    big = tmp_path / "big.png"
    Image.new("RGB", (1600, 1200), (20, 120, 220)).save(big)
    monkeypatch.setattr(checks, "available_memory", lambda: 2**30)  # a 1 GB machine
    _one_line_error(capsys, ["stylize", "-m", onnx_path, big, "-o", tmp_path / "o.png", "--tile", "0"],
                    "in one piece needs about")
    assert not (tmp_path / "o.png").exists()


def test_max_size_decodes_early_and_keeps_the_orientation(tmp_path):
    from fastnst.image import read_image

    im = Image.new("RGB", (2400, 1200), (200, 10, 10))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    for name in ("big.jpg", "big.png"):
        im.save(tmp_path / name, exif=exif.tobytes())
        full = read_image(tmp_path / name)
        small = read_image(tmp_path / name, max_size=100)
        assert full.size == (1200, 2400)
        # decoded at 1/8 (JPEG draft) or box-reduced right after decoding, never below the asked size
        assert 100 <= max(small.size) < 400 and small.size[0] < small.size[1], (name, small.size)
