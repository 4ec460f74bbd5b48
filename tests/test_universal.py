"""The universal style model (fastnst.runtime.universal, fastnst stylize --style picture): the exact stage path
against the one-graph export, strength, blends, masks, tiles, video statistics, bad input, torch-free use."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from fastnst.cli import main
from fastnst.contract import CONTENT_NAME, OUTPUT_NAME, STRENGTH_NAME, STYLE_IMAGE_NAME
from fastnst.errors import ConfigError, InputError, ModelFormatError
from fastnst.image import to_nchw
from fastnst.runtime.universal import UniversalStylizer, parse_style_blend

from .conftest import synthetic_rgb


@pytest.fixture(scope="module")
def u(tiny_universal):
    return UniversalStylizer(tiny_universal[0], providers="cpu")


def _photo(w: int = 48, h: int = 40, seed: int = 0) -> np.ndarray:
    return np.asarray(synthetic_rgb(w, h, seed=seed))


def _graph(path, content: np.ndarray, style: np.ndarray, strength: float) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run([OUTPUT_NAME], {CONTENT_NAME: to_nchw([content]), STYLE_IMAGE_NAME: to_nchw([style]),
                                      STRENGTH_NAME: np.array([strength], np.float32)})[0]
    return out[0].transpose(1, 2, 0)


@pytest.mark.parametrize("strength", [0.0, 0.6, 1.0])
def test_the_exact_stages_give_the_one_graph_picture(u, tiny_universal, strength):
    """Stage by stage with float64 eigendecompositions = the exported graph's Newton-Schulz, to float rounding."""
    photo, style = _photo(48, 40), _photo(40, 32, seed=3)  # sizes the graph takes (multiples of 8)
    ours = u.stylize(photo.astype(np.float32) / 255, style=style, strength=strength, style_size=None)
    graph = np.clip(_graph(tiny_universal[0], photo, style, strength), 0, 1)
    assert ours.shape == graph.shape == (40, 48, 3)
    assert np.abs(ours - graph).max() < 2e-3


def test_strength_zero_is_the_photos_reconstruction_and_one_is_not(u):
    photo, style = _photo(), _photo(seed=5)
    zero = u.stylize(photo, style=style, strength=0.0)
    full = u.stylize(photo, style=style, strength=1.0)
    other = u.stylize(photo, style=_photo(seed=9), strength=0.0)
    assert np.array_equal(zero, other)  # no style at all: the same reconstruction whatever the style
    assert np.abs(zero.astype(int) - full.astype(int)).mean() > 2


def test_any_size_comes_back_at_its_size_in_its_kind(u):
    style = _photo(seed=2)
    for w, h in ((37, 29), (16, 16), (70, 18)):
        out = u.stylize(Image.fromarray(_photo(w, h)), style=style)
        assert isinstance(out, Image.Image) and out.size == (w, h)
    rgba = np.dstack([_photo(30, 20), np.full((20, 30), 128, np.uint8)])
    out = u.stylize(rgba, style=style)
    assert out.shape == (20, 30, 4) and out.dtype == np.uint8 and (out[..., 3] == 128).all()


def test_a_blend_of_one_style_is_that_style_and_blends_interpolate(u, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    synthetic_rgb(40, 40, seed=11).save(a)
    synthetic_rgb(40, 40, seed=12).save(b)
    photo = _photo()
    one = u.stylize(photo, style=str(a))
    assert np.array_equal(u.stylize(photo, style=[(str(a), 2.0)]), one)
    assert np.array_equal(u.stylize(photo, style=f"{a}:1"), one)
    mixed = u.stylize(photo, style=f"{a}:0.5,{b}:0.5").astype(int)
    assert mixed.tolist() != one.tolist() and mixed.tolist() != u.stylize(photo, style=str(b)).tolist()


def test_encoded_styles_are_reused(u, tmp_path):
    path = tmp_path / "s.png"
    synthetic_rgb(40, 40, seed=13).save(path)
    first = u.encode_style(str(path))
    assert u.encode_style(str(path)) is first  # cached by file, modification time and size
    assert u.encode_style(str(path), size=24) is not first
    photo = _photo()
    assert np.array_equal(u.stylize(photo, style=first), u.stylize(photo, style=str(path)))


def test_tiled_equals_untiled_within_a_bound(u):
    photo, style = _photo(96, 80, seed=1), _photo(seed=4)
    whole = u.stylize(photo, style=style, tile=0).astype(float)
    tiled = u.stylize(photo, style=style, tile=48, overlap=16).astype(float)
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).mean() < 6  # levels of 255: whole-image transforms, feathered seams


def test_the_mask_keeps_the_photo_where_it_is_black(u):
    photo, style = _photo(64, 48), _photo(seed=6)
    mask = np.zeros((48, 64), np.float32)
    mask[:, 32:] = 1.0
    out = u.stylize(photo, style=style, mask=mask).astype(int)
    keep = u.stylize(photo, style=style, strength=0.0).astype(int)
    full = u.stylize(photo, style=style).astype(int)
    assert np.abs(out[:, :20] - keep[:, :20]).mean() < np.abs(out[:, :20] - full[:, :20]).mean()
    assert np.abs(out[:, 44:] - full[:, 44:]).mean() < np.abs(out[:, 44:] - keep[:, 44:]).mean()


def test_video_statistics_are_smoothed_over_frames(u):
    style = u.encode_style(_photo(seed=7))
    frames = [_photo(48, 40, seed=s) for s in (1, 2, 3)]
    alone = [u.stylize(f, style=style) for f in frames]
    smooth = list(u.stylize_iter(frames, style=style, smoothing=0.9))
    assert np.array_equal(smooth[0], alone[0])  # the first frame has no past
    assert not np.array_equal(smooth[2], alone[2])
    assert np.array_equal(list(u.stylize_iter(frames, style=style, smoothing=0.0))[2], alone[2])


@pytest.mark.parametrize("make", [
    lambda: np.zeros((40, 40, 3), np.uint8) + 90,              # one flat colour
    lambda: np.full((1, 1, 3), 200, np.uint8),                  # 1x1
    lambda: np.asarray(synthetic_rgb(40, 30, seed=2).convert("L")),  # greyscale
    lambda: np.dstack([_photo(30, 30), np.full((30, 30), 0, np.uint8)]),  # fully transparent
    lambda: _photo(3000, 20),                                   # long and thin
])
def test_odd_style_pictures_work(u, make):
    out = u.stylize(_photo(), style=make())
    assert out.shape == (40, 48, 3) and np.isfinite(out).all()


def test_bad_styles_and_options(u, tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(InputError):
        u.stylize(_photo(), style=str(tmp_path / "junk.jpg"))
    with pytest.raises(ConfigError, match="needs a style"):
        u.stylize(_photo())
    with pytest.raises(ConfigError, match="zero or positive and not all zero"):
        u.stylize(_photo(), style=[(_photo(seed=1), -1.0), (_photo(seed=2), 2.0)])
    with pytest.raises(ConfigError, match="not all zero"):
        u.stylize(_photo(), style=[(_photo(seed=1), 0.0)])
    with pytest.raises(ConfigError, match="strength"):
        u.stylize(_photo(), style=_photo(seed=1), strength=1.5)
    with pytest.raises(ConfigError, match="style-size"):
        u.stylize(_photo(), style=_photo(seed=1), style_size=5)
    with pytest.raises(ConfigError, match="needs a mask"):
        u.stylize(_photo(), style=_photo(seed=1), outside=_photo(seed=2))
    with pytest.raises(InputError):
        u.stylize(_photo(), style=_photo(seed=1), mask=np.zeros((4, 4, 4, 4)))
    with pytest.raises(ConfigError, match="not a number"):
        parse_style_blend("a.jpg:x,b.jpg:0.5")


def test_a_foreign_or_broken_model_file_is_refused(tmp_path, tiny_model):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelFormatError):
        UniversalStylizer(broken)
    with pytest.raises(ModelFormatError, match="not a universal model"):
        UniversalStylizer(tiny_model[0])


@pytest.fixture
def files(tmp_path):
    synthetic_rgb(56, 40, seed=1).save(tmp_path / "photo.png")
    synthetic_rgb(40, 40, seed=8).save(tmp_path / "painting.jpg")
    return tmp_path


def test_the_command_stylises_with_a_style_picture(files, tiny_universal, capsys):
    args = ["stylize", str(files / "photo.png"), "--style", str(files / "painting.jpg"), "--universal-model",
            str(tiny_universal[0]), "-o", str(files / "out.png")]
    assert main(args) == 0
    assert Image.open(files / "out.png").size == (56, 40)
    assert main(args) == 2 and "exists" in capsys.readouterr().err  # nothing existing lost
    Image.fromarray(np.tile(np.linspace(0, 255, 56).astype(np.uint8), (40, 1))).save(files / "mask.png")
    assert main(args[:-1] + [str(files / "masked.png"), "--mask", str(files / "mask.png"), "--strength", "0.7"]) == 0
    capsys.readouterr()
    assert main(args[:-1] + [str(files / "x.png"), "--stroke-scale", "2"]) == 2
    assert "--style-size" in capsys.readouterr().err
    assert main(["stylize", str(files / "photo.png"), "-o", str(files / "y.png"), "--mask", str(files / "mask.png")]) == 2
    assert "style picture" in capsys.readouterr().err
    assert not (files / "x.png").exists() and not (files / "y.png").exists()


def test_the_base_install_stylises_with_a_style_picture_without_torch(files, tiny_universal):
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'torchvision', 'pytorch_lightning', 'lightning'):\n"
            "            raise ImportError('import of ' + name + ' halted')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import fastnst\n"
            f"out = fastnst.stylize({str(files / 'photo.png')!r}, style={str(files / 'painting.jpg')!r}, "
            f"universal_model={str(tiny_universal[0])!r}, strength=0.8)\n"
            "assert out.size == (56, 40), out.size\n"
            "assert 'torch' not in sys.modules\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


def test_export_universal_writes_a_verified_model_and_refuses_bad_outputs(tiny_universal, tmp_path, capsys):
    """``fastnst export-universal``: the decoders and their encoder become one verified file that the runtime
    runs; a wrong suffix or an existing file is one line, exit 2, nothing written or replaced."""
    _, vgg, decoders = tiny_universal
    out = tmp_path / "mine.onnx"
    argv = ["export-universal", *map(str, decoders), "--vgg-weights", str(vgg), "-o", str(out)]
    assert main(argv) == 0
    assert "verified against torch" in capsys.readouterr().out
    picture = UniversalStylizer(out, providers="cpu").stylize(_photo(), style=_photo(32, 32, seed=3))
    assert picture.shape == (40, 48, 3)
    before = out.read_bytes()
    assert main(argv) == 2 and "exists" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(argv[:-1] + [str(tmp_path / "mine.txt")]) == 2
    assert ".onnx" in capsys.readouterr().err and not (tmp_path / "mine.txt").exists()
    assert main(["export-universal", *map(str, decoders), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "--vgg-weights is required" in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()


def test_the_shipped_model_keeps_the_photo_and_takes_the_styles_colours():
    """The universal model in the wheel (real VGG16 encoder, trained decoders) on a small photo and a red-striped
    style: strength 0 gives the photo back (its low frequencies), the style's colours grow with the strength and
    the photo's layout gives way to the style as the strength rises (at 128 px the coarse level dominates)."""
    from fastnst.constants import ASSETS_DIR
    from fastnst.runtime.universal import DEFAULT_MODEL

    u = UniversalStylizer(DEFAULT_MODEL, providers="cpu")
    im = Image.open(ASSETS_DIR / "content-astronaut.jpg").convert("RGB")
    im.thumbnail((128, 128))
    photo = np.asarray(im)
    style = np.zeros((48, 48, 3), np.uint8)
    style[..., 0] = 40 + 160 * ((np.arange(48) // 6) % 2)[None, :]  # red and dark stripes, no green
    style[..., 2] = 60

    def layout(a):  # the photo's layout: a 16x16 grey thumbnail
        return np.asarray(Image.fromarray(a).convert("L").resize((16, 16), Image.Resampling.BOX), float).ravel()

    def redness(a):
        return float((a[..., 0].astype(float) - a[..., 1]).mean())

    outs = {a: u.stylize(photo, style=style, strength=a) for a in (0.0, 0.3, 1.0)}
    assert all(o.shape == photo.shape for o in outs.values())
    kept = {a: np.corrcoef(layout(o), layout(photo))[0, 1] for a, o in outs.items()}
    assert kept[0.0] > 0.9 and kept[0.3] > 0.6 and kept[1.0] < kept[0.3], kept
    assert redness(outs[1.0]) > redness(outs[0.3]) > redness(outs[0.0]) + 20


def test_stage_models_are_kept_in_the_cache_and_a_damaged_copy_is_rebuilt(tiny_universal, tmp_path, monkeypatch):
    """The first use builds the stage models from the file's weights and keeps them in the cache folder; a
    later stylizer (another process) opens them without building (no onnx); a damaged copy is built again."""
    from fastnst.runtime import universal as U

    monkeypatch.setenv("FASTNST_CACHE_DIR", str(tmp_path / "cache"))
    photo, style = _photo(), _photo(32, 32, seed=3)
    first = UniversalStylizer(tiny_universal[0], providers="cpu")
    expected = first.stylize(photo, style=style)
    kept = sorted((tmp_path / "cache").rglob(f"*{U.STAGE_CACHE}-*.onnx"))
    assert len(kept) == 2 + len(first.stages.levels)

    def no_build(self):
        raise AssertionError("built again although the cache holds the stage models")

    with monkeypatch.context() as m:
        m.setattr(U.Stages, "_stage_models", no_build)
        again = UniversalStylizer(tiny_universal[0], providers="cpu").stylize(photo, style=style)
    assert np.array_equal(again, expected)
    kept[0].write_bytes(b"damaged")
    rebuilt = UniversalStylizer(tiny_universal[0], providers="cpu").stylize(photo, style=style)
    assert np.array_equal(rebuilt, expected) and kept[0].stat().st_size > 100
