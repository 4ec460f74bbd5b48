"""``fastnst gatys|invert|texture|dream`` through the real dispatcher: outputs, summaries, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from fastnst import cli
from tests.conftest import synthetic_rgb

R = ["--vgg-weights", "random"]



@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synthetic_rgb(48, 32, seed=1).save("photo.png")
    synthetic_rgb(40, 40, seed=5).save("painting.jpg")
    synthetic_rgb(32, 32, seed=6).save("other.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    return tmp_path


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "expected an error line"
    return err[-1]


def test_gatys_writes_image_intermediates_and_json(files, capsys, monkeypatch):
    from fastnst.commands import common

    monkeypatch.setattr(common, "QUIET_SECONDS", 0.0)  # progress lines however fast the machine runs the 4 steps
    monkeypatch.setattr(common, "LOG_EVERY", 0.0)
    rc = cli.main(["gatys", "--content", "photo.png", "--style", "painting.jpg", "--style", "other.png",
                   "--style-blend", "2,1", "-o", "out.png", "--size", "48", "--iterations", "4",
                   "--save-every", "2", "--json", *R])
    assert rc == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["outputs"] == ["out.png"] and doc["iterations"] == 4 and doc["size"] == [48, 32]
    assert doc["intermediates"] == ["out-0002.png", "out-0004.png"]
    assert set(doc["loss"]) >= {"total", "content", "style", "tv", "style/relu5_1"}
    assert "gatys" in out.err and "style" in out.err  # progress on stderr with the terms
    assert Image.open("out.png").size == (48, 32)
    assert os.path.exists("out-0002.png") and os.path.exists("out-0004.png")


def test_gatys_plain_summary_and_options(files, capsys):
    rc = cli.main(["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "o.jpg", "--size", "48",
                   "--iterations", "2", "--scales", "2", "--optimizer", "adam", "--lr", "0.05", "--pooling", "avg",
                   "--style-stat", "covariance", "--original-colors", "--init", "noise", "--tv-weight", "1",
                   "--style-layer-weights", "1,1,1,1,2", "--style-scale", "0.8", "--net", "vgg16",
                   "--content-layers", "relu3_3", "--style-layers", "relu1_2,relu2_2,relu3_3,relu4_3,relu5_1", *R])
    assert rc == 0
    text = capsys.readouterr().out
    assert "wrote o.jpg (48x32) after 4 iterations" in text and "final: total" in text


def test_invert_layers_grid(files, capsys):
    rc = cli.main(["invert", "--image", "photo.png", "--layers", "relu1_2,relu2_2", "--grid", "-o", "inv.png",
                   "--size", "32", "--iterations", "4", *R])
    assert rc == 0
    assert "relu2_2: feature loss" in capsys.readouterr().out
    assert Image.open("inv-relu1_2.png").size == (32, 21)
    assert os.path.exists("inv-relu2_2.png")
    grid = Image.open("inv.png")
    assert grid.width > 3 * 32  # image + two reconstructions side by side
    rc = cli.main(["invert", "--image", "photo.png", "--layer", "relu2_1", "--init", "other.png", "-o", "one.png",
                   "--size", "32", "--iterations", "2", "--json", *R])
    assert rc == 0 and json.loads(capsys.readouterr().out)["outputs"] == ["one.png"]


def test_texture_any_size_and_dream(files, capsys):
    assert cli.main(["texture", "--style", "painting.jpg", "-o", "t.png", "--size", "72x24", "--iterations", "3",
                     *R]) == 0
    assert Image.open("t.png").size == (72, 24)
    assert "wrote t.png (72x24) after 3 iterations" in capsys.readouterr().out
    assert cli.main(["dream", "--image", "photo.png", "--layer", "relu3_1", "-o", "d.png", "--size", "40",
                     "--octaves", "2", "--iterations", "2", "--json", *R]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["layer"] == "relu3_1" and doc["iterations"] == 4
    assert doc["loss"]["activation"] > doc["loss"]["start_activation"]
    assert Image.open("d.png").size == (40, 27)


@pytest.mark.parametrize("args, message", [
    (["gatys", "--content", "missing.png", "--style", "painting.jpg", "-o", "x.png"], "does not exist"),
    (["gatys", "--content", "broken.jpg", "--style", "painting.jpg", "-o", "x.png"], "'broken.jpg'"),
    (["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "x.png", "--style-layers", "relu3_l"],
     "did you mean 'relu3_"),
    (["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "x.png", "--size", "0"],
     "--size must be a positive integer"),
    (["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "x.png", "--size", "8"], "too small"),
    (["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "x.png", "--iterations", "0"],
     "--iterations must be >= 1"),
    (["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "x.png", "--style-blend", "1,2"],
     "2 style blend weights for 1 style images"),
    (["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "x.png", "--init", "nosie"],
     "did you mean 'noise'"),
    (["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "nodir/x.png"], "does not exist"),
    (["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "x.png", "--vgg-normalize", "rsm"],
     "invalid choice"),
    (["invert", "--image", "photo.png", "-o", "x.png", "--vgg-normalize", "rms", "--normalize-images", "."],
     "takes --vgg-normalize mean"),
    (["gatys", "--content", "photo.png", "-o", "x.png"], "the following arguments are required: --style"),
    (["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "x.png", "--pooling", "mean"],
     "invalid choice"),
    (["invert", "--image", "photo.png", "--layer", "relu9_1", "-o", "x.png"], "unknown vgg19 layer 'relu9_1'"),
    (["invert", "--image", "photo.png", "--grid", "-o", "x.png"], "--grid needs --layers"),
    (["texture", "--style", "painting.jpg", "-o", "x.png", "--size", "0x20"], "--size must be a positive integer"),
    (["dream", "--image", "photo.png", "-o", "x.png", "--octaves", "9", "--size", "40"], "use fewer --octaves"),
    (["dream", "--image", "photo.png", "-o", "x.png", "--layer", "relu4_3x"], "did you mean 'relu4_3'"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(files, capsys, args, message):
    before = set(os.listdir("."))
    assert cli.main(args + R) == 2
    line = _err_line(capsys)
    assert line.startswith("fastnst: error:") and message in line, line
    assert set(os.listdir(".")) == before


def test_existing_output_needs_overwrite(files, capsys):
    Image.new("RGB", (5, 5)).save("out.png")
    mtime = os.path.getmtime("out.png")
    args = ["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "out.png", "--size", "32",
            "--iterations", "1", *R]
    assert cli.main(args) == 2
    assert "exists; pass --overwrite" in _err_line(capsys)
    assert os.path.getmtime("out.png") == mtime
    assert cli.main(args + ["--overwrite"]) == 0
    assert Image.open("out.png").size == (32, 21)
    Image.new("RGB", (5, 5)).save("run-0001.png")
    assert cli.main(["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "run.png", "--size", "32",
                     "--iterations", "1", "--save-every", "1", *R]) == 2
    assert "run-0001.png' exists" in _err_line(capsys)


def test_ctrl_c_keeps_last_intermediate_and_says_where(files, capsys, monkeypatch):
    from fastnst.commands.common import Progress

    calls = {"n": 0}
    original = Progress.update

    def interrupt_at_5(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        original(self, *args, **kwargs)

    monkeypatch.setattr(Progress, "update", interrupt_at_5)
    rc = cli.main(["gatys", "--content", "photo.png", "--style", "painting.jpg", "-o", "out.png", "--size", "32",
                   "--iterations", "20", "--save-every", "2", *R])
    assert rc == 130
    assert "the last intermediate image is out-0004.png" in _err_line(capsys)
    assert os.path.exists("out-0004.png") and not os.path.exists("out.png")


def test_gatys_takes_the_content_positionally(files, capsys):
    """`fastnst gatys photo.jpg --style ...` failed (--content required) while stylize takes a positional input."""
    args = ["--style", "painting.jpg", "--size", "32", "--iterations", "2", *R]
    assert cli.main(["gatys", "photo.png", "-o", "a.png", *args]) == 0
    assert cli.main(["gatys", "--content", "photo.png", "-o", "b.png", *args]) == 0
    assert Image.open("a.png").tobytes() == Image.open("b.png").tobytes()
    assert cli.main(["gatys", "photo.png", "--content", "other.png", "-o", "c.png", *args]) == 2
    assert "two content images" in _err_line(capsys)
    assert cli.main(["gatys", "-o", "c.png", *args]) == 2
    assert "--content is missing" in _err_line(capsys) and not os.path.exists("c.png")
    assert cli.main(["dream", "photo.png", "-o", "d.png", "--size", "40", "--iterations", "1", "--octaves", "1",
                     *R]) == 0


def test_sigterm_keeps_the_current_image_and_says_so(files):
    """Ctrl-C / SIGTERM during Gatys left nothing and said nothing."""
    import signal
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fastnst", "gatys", "photo.png", "--style", "painting.jpg",
                             "-o", "out.png", "--size", "32", "--iterations", "5000", "--save-every", "1",
                             "--vgg-normalize", "none", *R],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 240
        while not os.path.exists("out-0002.png") and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    kept = [p for p in os.listdir(".") if p.startswith("out-interrupted-")]
    assert len(kept) == 1 and f"kept the current image as {kept[0]}" in err.splitlines()[-1]
    assert Image.open(kept[0]).size == (32, 21) and not os.path.exists("out.png")
    assert not [p for p in os.listdir(".") if ".tmp" in p]


def test_real_entry_point(files):
    """The installed command as a user runs it (a subprocess: progress bar, summary, exit codes)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "fastnst", "gatys", "--content", "photo.png", "--style",
                          "painting.jpg", "-o", "cli.png", "--size", "32", "--iterations", "3", *R],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "wrote cli.png (32x21) after 3 iterations" in res.stdout
    assert "\r" not in res.stderr  # not a terminal: progress lines (when the run takes seconds), never \r
    res = subprocess.run([sys.executable, "-m", "fastnst", "gatys", "--content", "photo.png", "--style",
                          "painting.jpg", "-o", "cli.png", *R], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "exists" in res.stderr


@pytest.mark.parametrize("task", ["gatys", "invert", "texture", "dream"])
def test_every_job_option_is_a_flag_with_its_help(task, capsys):
    """Flags come from the job dataclass: a new field is a new flag, its help and default shown."""
    import dataclasses

    from fastnst.optimize import JOBS
    from fastnst.options import flag_name

    with pytest.raises(SystemExit) as info:
        cli.main([task, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for f in dataclasses.fields(JOBS[task]):
        if f.name not in JOBS[task].SKIP:
            assert flag_name(f) in text, f.name
    assert "--content-weight" not in text if task == "texture" else True
