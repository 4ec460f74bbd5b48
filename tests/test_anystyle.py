"""fastnst.anystyle (``fastnst.generate``): built-in styles (feed-forward, torch-free), paintings and image paths
(Gatys)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fastnst
from fastnst.constants import CACHE_DIR_ENV
from fastnst.errors import ConfigError, InputError, OutputExistsError, PaintingUnavailableError
from fastnst.styles import builtin
from fastnst.styles import paintings as P
from tests.conftest import synthetic_rgb

TINY = {"channels": (4, 8, 8), "num_residual": 1, "end_kernel": 3}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny two-style network exported like the shipped one (styles named after two built-ins)."""
    from fastnst.training.export import export_onnx
    from fastnst.networks.transformer import ConditionalInstanceNorm2d, TransformerNet

    net = TransformerNet(**TINY, num_styles=2, style_names=["mosaic", "halftone"])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ConditionalInstanceNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.6 - 0.3)
    # verified in test_export
    return export_onnx(net.eval(), tmp_path_factory.mktemp("model") / "builtin.onnx", verify=False)


@pytest.fixture
def env(tmp_path, monkeypatch, tiny_model):
    monkeypatch.setattr(builtin, "MODEL_PATH", tiny_model)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(P.BASE_URL_ENV, "http://127.0.0.1:9/")  # no network in tests
    monkeypatch.chdir(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    synthetic_rgb(40, 30, seed=1).save(photos / "a.png")
    synthetic_rgb(24, 36, seed=2).save(photos / "b.jpg")
    (photos / "notes.txt").write_text("not an image")
    return tmp_path


def _arr(path):
    return np.asarray(Image.open(path).convert("RGB"), np.float32)


def test_file_with_builtin_style_and_resolution(env):
    out = fastnst.generate("photos/a.png", style="mosaic", resolution=64, output_dir="out")
    assert out == Path("out", "a-mosaic.png")  # output_dir as given, named <photo>-<style>.<photo's format>
    assert Image.open(out).size == (64, 48)  # long side = resolution (upscaled), aspect kept
    other = fastnst.generate("photos/a.png", style="halftone", resolution=64, output_dir="out")
    assert np.abs(_arr(out) - _arr(other)).mean() > 1  # the style input really selects the style


def test_folder_and_list(env):
    outs = fastnst.generate("photos", style="mosaic", output_dir="out")
    assert [o.name for o in outs] == ["a-mosaic.png", "b-mosaic.jpg"]  # images only, sorted, format kept
    assert Image.open(outs[0]).size == (40, 30) and Image.open(outs[1]).size == (24, 36)  # own size by default
    outs2 = fastnst.generate(["photos/b.jpg"], style="halftone", output_dir="out2", resolution=18, format="png")
    assert isinstance(outs2, list) and outs2[0].name == "b-halftone.png"
    assert Image.open(outs2[0]).size == (12, 18)


def test_folder_scan_is_stylize_s(env):
    """The same folder policy as fastnst stylize: sub-folders searched and mirrored, hidden entries skipped."""
    (env / "photos" / "old").mkdir()
    synthetic_rgb(20, 16, seed=3).save(env / "photos" / "old" / "a.png")
    synthetic_rgb(20, 16, seed=4).save(env / "photos" / ".hidden.png")
    outs = fastnst.generate("photos", style="mosaic", output_dir="out")
    assert sorted(o.relative_to("out").parts for o in outs) == [("a-mosaic.png",), ("b-mosaic.jpg",),
                                                               ("old", "a-mosaic.png")]
    assert Image.open(env / "out" / "old" / "a-mosaic.png").size == (20, 16)


def test_default_style_is_the_default_builtin(env):
    out = fastnst.generate("photos/a.png", output_dir=".")
    assert out.name == f"a-{builtin.DEFAULT_STYLE}.png"


def test_existing_output_refused_before_any_work(env):
    os.makedirs("out")
    Image.new("RGB", (4, 4)).save("out/b-mosaic.jpg")
    with pytest.raises(OutputExistsError):
        fastnst.generate("photos", style="mosaic", output_dir="out")
    assert sorted(os.listdir("out")) == ["b-mosaic.jpg"]  # a-mosaic.png was not written either
    outs = fastnst.generate("photos", style="mosaic", output_dir="out", overwrite=True)
    assert Image.open(outs[1]).size == (24, 36)


def test_unknown_style_lists_builtins_and_paintings_and_writes_nothing(env):
    with pytest.raises(ConfigError) as info:
        fastnst.generate("photos/a.png", style="mosiac", output_dir="newdir")
    msg = str(info.value)
    assert "\n" not in msg and "did you mean 'mosaic'" in msg
    assert "built-in: mosaic" in msg and "starry_night" in msg and "hubble" in msg
    assert not os.path.exists("newdir")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"resolution": 8}, ConfigError, "resolution must be at least 16"),
    ({"resolution": 10 ** 7}, ConfigError, "resolution must be at most"),
    ({"strength": 1.5}, ConfigError, "strength must be at most 1"),
    ({"iterations": 3}, ConfigError, "only apply to paintings"),
    ({"format": "gif"}, InputError, "unsupported output format"),
    ({"style": "missing.jpg"}, InputError, "'missing.jpg' does not exist"),
])
def test_bad_options(env, kwargs, error, match):
    kwargs = {"style": "mosaic", **kwargs}
    with pytest.raises(error, match=match):
        fastnst.generate("photos/a.png", output_dir="newdir", **kwargs)
    assert not os.path.exists("newdir")


def test_bad_inputs(env):
    with pytest.raises(InputError, match="does not exist"):
        fastnst.generate("nothere.jpg", style="mosaic")
    os.makedirs("empty")
    with pytest.raises(InputError, match="has no images"):
        fastnst.generate("empty", style="mosaic")
    with pytest.raises(ConfigError, match="would both be written"):
        os.makedirs("other")
        synthetic_rgb(20, 20).save("other/a.png")
        fastnst.generate(["photos/a.png", "other/a.png"], style="mosaic", output_dir="out")


def test_image_path_style_runs_gatys(env):
    synthetic_rgb(32, 32, seed=9).save("style.png")
    out = fastnst.generate("photos/a.png", style="style.png", resolution=32, output_dir="out",
                           iterations=2, vgg_weights="random")
    assert out.name == "a-style.png" and Image.open(out).size == (32, 24)
    with pytest.raises(ConfigError, match="unknown generate\\(\\) option 'style_weigth'"):
        fastnst.generate("photos/a.png", style="style.png", output_dir="out", style_weigth=1.0)
    with pytest.raises(ConfigError, match="strength applies to the built-in and universal models"):
        fastnst.generate("photos/a.png", style="style.png", output_dir="out", strength=0.5, method="gatys")
    with pytest.raises(ConfigError, match="unknown method 'gatsy'"):
        fastnst.generate("photos/a.png", style="style.png", output_dir="out", method="gatsy")


def test_painting_from_a_prefilled_cache_runs_gatys(env):
    painting = P.PAINTINGS["the_kiss"]  # not shipped: read from the cache
    target = P.cached_path(painting)
    target.parent.mkdir(parents=True)
    synthetic_rgb(*painting.expected_size, seed=4).save(target)
    outs = fastnst.generate(["photos/b.jpg"], style="the_kiss", resolution=24, output_dir="out",
                            iterations=1, vgg_weights="random")
    assert outs[0].name == "b-the_kiss.jpg" and Image.open(outs[0]).size == (16, 24)


def test_offline_painting_fails_in_one_line_and_writes_nothing(env):
    with pytest.raises(PaintingUnavailableError) as info:
        fastnst.generate("photos/a.png", style="the_scream", output_dir="newdir", vgg_weights="random")
    assert "--style PATH" in str(info.value) and "\n" not in str(info.value)
    assert not os.path.exists("newdir")


def test_builtin_path_needs_no_torch(env, tiny_model):
    code = (
        "import sys\n"
        "import fastnst\n"
        "from fastnst.styles import builtin\n"
        f"builtin.MODEL_PATH = __import__('pathlib').Path({str(tiny_model)!r})\n"
        "out = fastnst.generate('photos/a.png', style='halftone', resolution=32, output_dir='torchless')\n"
        "print(out)\n"
        "sys.exit(3 if 'torch' in sys.modules else 0)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=env)
    assert run.returncode == 0, run.stderr
    assert Image.open(env / "torchless" / "a-halftone.png").size == (32, 24)


def test_generate_is_a_lazy_public_name_in_the_base_install():
    """``import fastnst`` binds nothing eagerly; ``fastnst.generate`` is the function, also without torch."""
    code = ("import sys\n"
            "for name in ('torch', 'torchvision', 'pytorch_lightning', 'lightning'):\n"
            "    sys.modules[name] = None\n"
            "import fastnst\n"
            "assert 'fastnst.anystyle' not in sys.modules and 'generate' in fastnst.__all__\n"
            "import fastnst.anystyle\n"
            "assert fastnst.generate is fastnst.anystyle.generate\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_iterations_bound_is_the_shared_one(env):
    """One bound for iterations, constants.MAX_ITERATIONS (generate had its own, ten times lower)."""
    from fastnst.constants import MAX_ITERATIONS

    synthetic_rgb(32, 32, seed=9).save("style.png")
    with pytest.raises(ConfigError, match=f"iterations must be at most {MAX_ITERATIONS:,}, "):
        fastnst.generate("photos/a.png", style="style.png", iterations=MAX_ITERATIONS + 1)
    assert not os.path.exists("out")


def test_a_failure_during_the_work_leaves_no_output_folder(env):
    synthetic_rgb(32, 32, seed=9).save("style.png")
    open("bad.safetensors", "wb").write(b"not weights at all")
    with pytest.raises(fastnst.FastNSTError):
        fastnst.generate("photos", style="style.png", resolution=32, output_dir="newdir", iterations=1,
                         vgg_weights="bad.safetensors")
    assert not os.path.exists("newdir")
