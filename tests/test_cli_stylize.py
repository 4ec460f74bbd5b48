"""``fastnst stylize / info / demo`` through the real entry point: batches, bad inputs, torch path."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fastnst import cli
from tests.conftest import synthetic_rgb


@pytest.fixture
def models(tiny_model):
    """(onnx model, safetensors weights) of one tiny random network (conftest's)."""
    return tiny_model


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    synthetic_rgb(333, 517).save(folder / "a.jpg")
    synthetic_rgb(40, 30, seed=1).save(folder / "b.png")
    (folder / "c.jpg").write_bytes(b"not an image at all")
    return folder


def _err_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_single_photo_exact_size(models, photos, tmp_path, capsys):
    out = tmp_path / "a-out.jpg"
    assert cli.main(["stylize", "--model", str(models[0]), str(photos / "a.jpg"), "-o", str(out)]) == 0
    assert Image.open(out).size == (333, 517)
    assert "stylised 1 of 1 image" in capsys.readouterr().err


def test_batch_with_a_corrupt_file(models, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["stylize", "--model", str(models[0]), str(photos), "-o", str(out), "--json"])
    assert code == 2
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png"]  # the good ones were written
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["input"].split(os.sep)[-1] for r in records] == ["a.jpg", "b.png", "c.jpg"]
    assert records[0]["size"] == [333, 517] and records[0]["device"] == "cpu" and records[0]["seconds"] > 0
    assert records[2]["output"] is None and "not an image" in records[2]["error"]
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert any(line.startswith("fastnst: error:") and "c.jpg" in line for line in err)
    assert "stylised 2 of 3 images" in err[-1] and "1 failed" in err[-1]


def test_folder_inputs_search_sub_folders_and_mirror_them(models, tmp_path, capsys):
    """A folder is searched with its sub-folders, hidden files and folders skipped, and the output folder
    mirrors its layout (two photos with one name in different sub-folders do not clash)."""
    src = tmp_path / "photos"
    (src / "2024" / "summer").mkdir(parents=True)
    (src / ".hidden").mkdir()
    synthetic_rgb(40, 30).save(src / "a.png")
    synthetic_rgb(36, 28, seed=1).save(src / "2024" / "b.jpg")
    synthetic_rgb(36, 28, seed=2).save(src / "2024" / "summer" / "a.png")
    synthetic_rgb(20, 20, seed=3).save(src / ".secret.png")
    synthetic_rgb(20, 20, seed=4).save(src / ".hidden" / "c.png")
    out = tmp_path / "out"
    assert cli.main(["stylize", "--model", str(models[0]), str(src), "-o", str(out)]) == 0
    written = sorted(p.relative_to(out).parts for p in out.rglob("*") if p.is_file())
    assert written == [("2024", "b.jpg"), ("2024", "summer", "a.png"), ("a.png",)]
    assert Image.open(out / "2024" / "summer" / "a.png").size == (36, 28)
    assert "stylised 3 of 3 images" in capsys.readouterr().err


def test_existing_outputs_kept_without_overwrite(models, photos, tmp_path, capsys):
    out = tmp_path / "a.png"
    out.write_bytes(b"precious")
    args = ["stylize", "--model", str(models[0]), str(photos / "b.png"), "-o", str(out)]
    assert cli.main(args) == 2
    assert out.read_bytes() == b"precious"
    assert "--overwrite" in _err_lines(capsys)[-1]
    assert cli.main(args + ["--overwrite"]) == 0
    assert Image.open(out).size == (40, 30)


@pytest.mark.parametrize("content", [b"", b"GIF89a truncated", "half-png", b"plain text, no image"])
def test_bad_single_inputs(models, tmp_path, capsys, content):
    bad = tmp_path / "bad.png"
    if content == "half-png":
        good = tmp_path / "good.png"
        synthetic_rgb(64, 64).save(good)
        content = good.read_bytes()[:300]
    bad.write_bytes(content)
    out = tmp_path / "out.png"
    assert cli.main(["stylize", "--model", str(models[0]), str(bad), "-o", str(out)]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith("fastnst: error:")
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_over_pixel_limit_and_bad_outputs(models, photos, tmp_path, capsys, monkeypatch):
    model = str(models[0])
    monkeypatch.setenv("FASTNST_MAX_PIXELS", "5000")
    assert cli.main(["stylize", "--model", model, str(photos / "a.jpg"), "-o", str(tmp_path / "x.jpg")]) == 2
    assert re.search("over the limit|too large", _err_lines(capsys)[0])
    monkeypatch.delenv("FASTNST_MAX_PIXELS")
    # output folder that cannot be created / is a file
    assert cli.main(["stylize", "--model", model, str(photos), "-o", str(tmp_path / "no" / "such" / "dir")]) == 2
    assert "does not exist" in _err_lines(capsys)[0]
    afile = tmp_path / "afile"
    afile.write_bytes(b"x")
    assert cli.main(["stylize", "--model", model, str(photos / "a.jpg"), str(photos / "b.png"),
                     "-o", str(afile)]) == 2
    assert "is a file" in _err_lines(capsys)[0]
    if os.geteuid() != 0:  # root ignores permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert cli.main(["stylize", "--model", model, str(photos), "-o", str(locked)]) == 2
        assert "not writable" in _err_lines(capsys)[0]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_bad_models(models, photos, tmp_path, capsys):
    out = str(tmp_path / "o.jpg")
    photo = str(photos / "a.jpg")
    txt = tmp_path / "model.txt"
    txt.write_text("hello")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(os.urandom(256))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    evil = tmp_path / "evil.ckpt"
    with open(evil, "wb") as f:
        pickle.dump({"state_dict": {}, "x": Evil()}, f)
    for model, expect in ((txt, "unknown kind"), (garbage, "not an ONNX model"), (evil, "not a weights-only checkpoint"),
                          (tmp_path / "missing.onnx", "does not exist")):
        assert cli.main(["stylize", "--model", str(model), photo, "-o", out]) == 2
        err = _err_lines(capsys)
        assert len(err) == 1 and expect in err[0], err
    assert not (tmp_path / "pwned").exists() and not os.path.exists(out)


def test_torch_weights_match_onnx(models, photos, tmp_path, capsys):
    onnx_out, torch_out = tmp_path / "o.png", tmp_path / "t.png"
    photo = str(photos / "b.png")
    assert cli.main(["stylize", "--model", str(models[0]), photo, "-o", str(onnx_out)]) == 0
    assert cli.main(["stylize", "--model", str(models[1]), photo, "-o", str(torch_out), "--tile", "0"]) == 0
    a, b = np.asarray(Image.open(onnx_out)).astype(int), np.asarray(Image.open(torch_out)).astype(int)
    assert a.shape == b.shape == (30, 40, 3) and np.abs(a - b).max() <= 1


def test_stdin_stdout_without_torch(models, photos):
    code = ("import sys; sys.modules['torch'] = None; from fastnst.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    data = (photos / "b.png").read_bytes()
    result = subprocess.run([sys.executable, "-c", code, "stylize", "--model", str(models[0]), "-", "-o", "-",
                             "--format", "png"], input=data, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    from io import BytesIO

    assert Image.open(BytesIO(result.stdout)).size == (40, 30)


def test_info(models, capsys):
    assert cli.main(["info", str(models[0])]) == 0
    out = capsys.readouterr().out
    assert "image: tensor(float)" in out and "style_name" in out and "CPUExecutionProvider" in out
    assert cli.main(["info", str(models[0]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["metadata"]["style_name"] == "tiny" and info["io"] == "float"


@pytest.mark.slow
def test_demo_offline(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--vgg-weights", "random", "--out", str(out), "--steps", "2",
                     "--image-size", "32"]) == 0
    stylized = sorted((out / "stylized").iterdir())
    assert len(stylized) == 4 and all(Image.open(p).size == Image.open(out / "photos" /
                                      p.name.replace("-hubble", "")).size for p in stylized)
    assert "ONNX model" in capsys.readouterr().out
    assert cli.main(["demo", "--vgg-weights", "random", "--out", str(out)]) == 2  # no silent overwrite


# ------------------------------------------------------------------ habits of other tools (issue 21)

def test_without_o_the_result_goes_next_to_the_input_named_after_the_style(tmp_path, capsys):
    """-o was required; now `fastnst stylize photo.jpg` writes photo.pointillist.jpg (the default built-in style), says
    the name, and never replaces anything unasked."""
    photo = tmp_path / "photo.jpg"
    synthetic_rgb(48, 40).save(photo)
    assert cli.main(["stylize", str(photo)]) == 0
    out = tmp_path / "photo.pointillist.jpg"
    assert Image.open(out).size == (48, 40) and str(out) in _err_lines(capsys)[-1]
    before = out.read_bytes()
    assert cli.main(["stylize", str(photo)]) == 2  # a second run keeps the first result
    assert "exists" in _err_lines(capsys)[-1] and out.read_bytes() == before
    assert cli.main(["stylize", str(photo), "--style", "pointillist:0.5,halftone:0.5", "--format", "png"]) == 0
    assert (tmp_path / "photo.halftone+pointillist.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "photo.halftone+pointillist.png", "photo.jpg", "photo.pointillist.jpg"]


def test_without_o_a_folder_goes_to_a_sibling_folder_and_a_rerun_does_not_read_it(models, photos, tmp_path, capsys):
    assert cli.main(["stylize", "--model", str(models[0]), str(photos)]) == 2  # c.jpg is not an image
    out = tmp_path / "in.tiny"  # the model's style name
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png"]
    capsys.readouterr()
    assert cli.main(["stylize", "--model", str(models[0]), str(photos), "--skip-existing"]) == 2
    last = _err_lines(capsys)[-1]
    assert "stylised 0 of 3 images" in last and "2 skipped" in last and "1 failed" in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "in.tiny"]


def test_stdin_needs_o(models, photos, capsys):
    assert cli.main(["stylize", "--model", str(models[0]), "-"]) == 2
    assert "-o" in _err_lines(capsys)[-1]


def test_stylise_is_stylize(tmp_path):
    """The README said 'stylise', the CLI knew only 'stylize'."""
    photo = tmp_path / "photo.png"
    synthetic_rgb(40, 32).save(photo)
    assert cli.main(["stylise", str(photo), "-o", str(tmp_path / "a.png")]) == 0
    assert cli.main(["stylize", str(photo), "-o", str(tmp_path / "b.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))


def test_an_output_folder_inside_the_input_folder_is_never_read_as_input(models, tmp_path, capsys):
    """`stylize in/ -o in/sub/` worked once; the next run took in/sub/* as inputs and failed entirely."""
    src = tmp_path / "in"
    src.mkdir()
    synthetic_rgb(40, 30).save(src / "a.png")
    synthetic_rgb(36, 28, seed=1).save(src / "b.png")
    args = ["stylize", "--model", str(models[0]), str(src), "-o", str(src / "sub")]
    assert cli.main(args) == 0
    assert cli.main(args + ["--overwrite"]) == 0
    assert "stylised 2 of 2 images" in _err_lines(capsys)[-1]
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png")) == ["a.png", "b.png", "sub/a.png",
                                                                                   "sub/b.png"]


def test_skip_existing_resumes_an_interrupted_batch(models, tmp_path, capsys):
    """A rerun after an interrupted folder run reported one 'exists' error per finished file."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        synthetic_rgb(30 + i, 24, seed=i).save(src / f"p{i}.png")
    assert cli.main(["stylize", "--model", str(models[0]), str(src), "-o", str(out)]) == 0
    (out / "p1.png").unlink()  # the run was interrupted before p1
    kept = (out / "p0.png").stat().st_mtime_ns
    capsys.readouterr()
    assert cli.main(["stylize", "--model", str(models[0]), str(src), "-o", str(out), "--skip-existing"]) == 0
    last = _err_lines(capsys)[-1]
    assert "stylised 1 of 3 images" in last and "2 skipped (output exists)" in last and "error" not in last
    assert (out / "p1.png").is_file() and (out / "p0.png").stat().st_mtime_ns == kept
    assert cli.main(["stylize", "--model", str(models[0]), str(src), "-o", str(out), "--skip-existing",
                     "--overwrite"]) == 2


def test_stylize_imports_no_module_it_does_not_use(tmp_path):
    """`fastnst stylize photo.png` imports nothing beyond what it uses (one photo is mostly fixed costs): no
    socket/secrets/hashlib (temporary names), no difflib (only for "did you mean"), no shutil with its bz2 and
    lzma (argparse's terminal width), no video package for an image. Measured against what numpy, Pillow and
    onnxruntime import themselves."""
    synthetic_rgb(40, 30).save(tmp_path / "p.png")
    code = (
        "import sys, numpy, PIL.Image, PIL.PngImagePlugin, onnxruntime\n"
        "before = set(sys.modules)\n"
        "from fastnst.cli import main\n"
        f"code = main(['stylize', {str(tmp_path / 'p.png')!r}, '-o', {str(tmp_path / 'o.png')!r}])\n"
        "watch = {'socket', 'secrets', 'hashlib', 'difflib', 'shutil', 'bz2', 'lzma', 'fastnst.video',\n"
        "         'fastnst.video.io', 'fractions', 'torch', 'onnx'}\n"
        "print(code, sorted((set(sys.modules) - before) & watch))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "0 []"
    assert (tmp_path / "o.png").is_file()
