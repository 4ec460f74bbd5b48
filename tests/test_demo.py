"""The demo: its assets, its refusals before any work, and its pipeline (training stood in for by the tiny
session model, so the test stays fast; the real demo runs in tests/test_cli_stylize.py, marked slow)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from fastnst import demo
from fastnst.errors import InputError, OutputExistsError


def test_the_demo_images_ship_with_fastnst():
    contents, style = demo.demo_assets()
    assert len(contents) >= 2 and all(p.is_file() and p.name.startswith("content-") for p in contents)
    assert style.is_file() and style.name.startswith("style-")


def test_the_demo_refuses_what_it_would_overwrite_before_any_work(tmp_path, monkeypatch):
    import fastnst.training.run

    monkeypatch.setattr(fastnst.training.run, "run_training", lambda *a, **k: pytest.fail("training started"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        demo.run_demo(demo.DemoOptions(out=str(tmp_path / "file")))
    with pytest.raises(InputError, match="does not exist"):
        demo.run_demo(demo.DemoOptions(out=str(tmp_path / "no" / "demo")))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(OutputExistsError, match="holds other files"):
        demo.run_demo(demo.DemoOptions(out=str(tmp_path / "mine")))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_the_demo_checks_the_vgg_weights_before_it_creates_its_folder(tmp_path, monkeypatch):
    """A failed `fastnst demo` (no VGG weights) left fastnst-demo/ behind."""
    from fastnst.errors import WeightsUnavailableError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "vgg.safetensors").write_bytes(b"not weights")
    for weights, error in ((str(tmp_path / "missing.pth"), WeightsUnavailableError),
                           (str(tmp_path / "vgg.safetensors"), Exception)):
        with pytest.raises(error):
            demo.run_demo(demo.DemoOptions(vgg_weights=weights))
        assert not (tmp_path / "fastnst-demo").exists()


def test_the_pipeline_trains_then_stylises_every_photo(tmp_path, monkeypatch, tiny_model):
    import fastnst.training.run
    from fastnst.training.run import TrainResult

    onnx, weights = tiny_model
    calls = []

    def fake_training(style, data, out, **options):  # what training leaves: weights and the verified model
        calls.append((Path(style), Path(data), Path(out), options))
        Path(out).mkdir(parents=True)
        return TrainResult(weights=Path(shutil.copy(weights, out)), checkpoint=Path(out) / "last.ckpt",
                           onnx=Path(shutil.copy(onnx, out)), metrics=None, preview=None, steps=options["steps"],
                           interrupted=False, is_global_zero=True)

    monkeypatch.setattr(fastnst.training.run, "run_training", fake_training)
    out = tmp_path / "demo"
    result = demo.run_demo(demo.DemoOptions(out=str(out), steps=3, image_size=48, vgg_weights="random"))
    (style, data, model, options), = calls
    assert style.parent == out and data == out / "photos" and model == out / "model"
    assert options["steps"] == 3 and options["image_size"] == 48 and options["arch"] == demo.DEMO_SETTINGS["arch"]
    assert options["vgg_weights"] == "random" and options["overwrite"] is True
    photos = sorted((out / "photos").iterdir())
    assert len(result.stylized) == len(photos) == len(demo.demo_assets()[0])
    for photo, styled in zip(photos, sorted(result.stylized)):
        assert Image.open(styled).size == Image.open(photo).size
    assert result.verified_error is not None  # read from the model's metadata, not measured again
    lines = result.lines()
    assert lines[2].startswith(f"  ONNX model       {result.onnx} (verified: max |onnxruntime - torch| =")
    assert lines[-1] == f"next: fastnst stylize --model {result.onnx} YOUR_PHOTO.jpg -o styled.jpg"
    with pytest.raises(OutputExistsError, match="already holds a demo"):
        demo.run_demo(demo.DemoOptions(out=str(out)))
