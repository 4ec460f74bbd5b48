"""Applying a model to files (fastnst.batch): inputs expanded, outputs planned, options checked once, a batch that
goes on past a bad image, the same pixels as the Python API."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import fastnst.runtime.blend as blend
import fastnst.runtime.stylizer as stylizer_module
from fastnst.batch import StylizeOptions, UpscaleOptions, expand_inputs, plan_outputs, stylize_files, upscale_files
from fastnst.errors import ConfigError, InputError
from fastnst.networks.sr import SRNet, sr_metadata
from fastnst.runtime import Stylizer
from tests.conftest import plain_onnx, synthetic_rgb


@pytest.fixture(scope="module")
def style_model(tmp_path_factory):
    """A plain ONNX file of a tiny random style network (TorchScript export: this module runs before
    test_faults, whose forked training must not inherit a dynamo export's autograd threads)."""
    from fastnst.networks.transformer import TransformerNet

    torch.manual_seed(10)
    net = TransformerNet(channels=(4, 8, 8), num_residual=1, end_kernel=3).eval()
    return plain_onnx(net, tmp_path_factory.mktemp("batch-style") / "tiny.onnx")


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    synthetic_rgb(40, 30, seed=1).save(folder / "a.png")
    synthetic_rgb(36, 28, seed=2).save(folder / "sub" / "b.jpg")
    (folder / "sub" / "c.png").write_bytes(b"not an image")
    return folder


def test_inputs_are_expanded_in_order(photos, tmp_path):
    items = expand_inputs([str(photos), str(photos / "a.png"), str(tmp_path / "*.none"), str(tmp_path / "gone.png"),
                           "-"])
    assert [i.relative.as_posix() if i.relative else None for i in items[:3]] == ["a.png", "sub/b.jpg", "sub/c.png"]
    assert items[3].path == photos / "a.png" and items[3].relative is None and items[3].problem is None
    assert "matches no files" in items[4].problem and "does not exist" in items[5].problem
    assert items[6].name == "<stdin>" and items[6].path is None
    with pytest.raises(InputError, match="does not exist"):  # a single bad input fails before any planning
        plan_outputs(items[5:6], StylizeOptions(output=str(tmp_path / "o.png")))


def test_a_batch_goes_on_and_matches_the_python_api(style_model, photos, tmp_path):
    records, steps = [], []
    out = tmp_path / "out"
    opts = StylizeOptions(model=str(style_model), output=str(out), strength=0.6, preserve_color=True)
    report = stylize_files([str(photos)], opts, on_item=records.append, progress=lambda d, t, _: steps.append((d, t)))
    assert (report.done, report.failed) == (2, 1) and "stylised 2 of 3 images" in report.lines[0]
    assert [r["output"] is None for r in records] == [False, False, True] and "c.png" in records[2]["input"]
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == ["a.png", "sub/b.jpg"]
    expected = Stylizer(style_model).stylize(photos / "a.png", strength=0.6, preserve_color=True)
    assert np.array_equal(np.asarray(Image.open(out / "a.png")), np.asarray(expected))


def test_options_are_checked_once_before_any_work(style_model, photos, tmp_path, monkeypatch):
    out = tmp_path / "o.png"
    for bad, match in (({"strength": 1.5}, "--strength"), ({"tile": 8}, "at least 16"), ({"max_size": 0}, "max-size"),
                       ({"format": "xyz"}, "unsupported output format"), ({"style": "wave"}, "single style")):
        with pytest.raises((ConfigError, InputError), match=match):
            stylize_files([str(photos / "a.png")], StylizeOptions(model=str(style_model), output=str(out), **bad))
        assert not out.exists()
    calls = []

    def counted(spec, names):
        calls.append(spec)
        return parse(spec, names)

    parse = blend.parse_style
    monkeypatch.setattr(blend, "parse_style", counted)
    monkeypatch.setattr(stylizer_module, "parse_style", counted)
    report = stylize_files([str(photos / "a.png"), str(photos / "sub" / "b.jpg")],
                           StylizeOptions(model=str(style_model), output=str(tmp_path / "two")))
    assert report.done == 2 and len(calls) == 1  # the style parsed once for the whole batch, not per image


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory):
    torch.manual_seed(9)
    net = SRNet(2, channels=8, num_residual=1).eval()
    return plain_onnx(net, tmp_path_factory.mktemp("batch-sr") / "x2.onnx", sr_metadata(net))


def test_upscale_files(sr_model, photos, tmp_path):
    report = upscale_files([str(photos / "a.png")], UpscaleOptions(model=str(sr_model), output=str(tmp_path / "b.png"),
                                                                    tile=16))
    assert report.lines[0].endswith("(80x60)") and Image.open(tmp_path / "b.png").size == (80, 60)
    for opts, match in (({"factor": 4}, "does not match"), ({"tile": 8}, "between 16 and"),
                        ({"output": "-"}, "stdin/stdout")):
        target = tmp_path / "c.png"
        with pytest.raises(ConfigError, match=match):
            upscale_files([str(photos / "a.png")], UpscaleOptions(**{"model": str(sr_model), "output": str(target),
                                                                     **opts}))
        assert not target.exists()


def test_a_single_tiled_image_reports_its_tiles(style_model, tmp_path):
    """A single large tiled image (6000x4000: 85 s) showed nothing until it ended."""
    photo = tmp_path / "big.png"
    synthetic_rgb(96, 64).save(photo)
    seen: list[tuple] = []
    stylize_files([str(photo)], StylizeOptions(model=str(style_model), output=str(tmp_path / "o.png"), tile=32),
                  progress=lambda d, t, text: seen.append((d, t, text)))
    total = seen[0][1]
    assert total >= 6 and seen == [(i, total, "tiles") for i in range(1, total + 1)]
    seen.clear()  # in a batch: images, with the fraction of a tiled image done
    shutil.copyfile(photo, tmp_path / "big2.png")
    stylize_files([str(photo), str(tmp_path / "big2.png")], StylizeOptions(model=str(style_model), output=str(tmp_path / "two"),
                                                           tile=32, overwrite=True),
                  progress=lambda d, t, text: seen.append((d, t, text)))
    assert seen[-1] == (2, 2, "images") and any(0 < d < 1 and "tile" in text for d, _, text in seen)


def test_upscale_without_a_model_uses_the_shipped_x4_model(photos, tmp_path, capsys):
    from fastnst import cli

    out = tmp_path / "big.png"
    assert cli.main(["upscale", str(photos / "a.png"), "-o", str(out), "--threads", "1"]) == 0  # no --model
    assert Image.open(out).size == (160, 120) and "x4" in capsys.readouterr().err  # the summary line
