"""Built-in styles: the registry, the shipped model (torch-free), `fastnst styles`, `--sheet`, `fastnst info`
and `fastnst stylize` without --model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from fastnst import cli
from fastnst.contract import META_STYLES
from fastnst.errors import ConfigError
from fastnst.styles import builtin, paintings
from tests.conftest import synthetic_rgb

ROOT = Path(__file__).resolve().parents[1]
ALLOWED_LICENCES = ("MIT", "CC0", "public domain")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    synthetic_rgb(72, 56, seed=3).save(path)
    return path


def test_registry_is_complete_and_free_to_ship():
    names = builtin.names()
    assert len(names) >= 6 and len(set(names)) == len(names)
    assert builtin.DEFAULT_STYLE in names
    for style in builtin.BUILTIN_STYLES:
        assert style.source and style.title and style.author
        assert style.licence.startswith(ALLOWED_LICENCES), style
        thumb = Image.open(style.thumbnail)
        assert max(thumb.size) <= 128 and style.thumbnail.stat().st_size < 20_000
    assert builtin.get_style("halftone").name == "halftone"
    with pytest.raises(ConfigError, match="did you mean 'mosaic'"):
        builtin.get_style("mosiac")


def test_shipped_model_is_small_and_matches_the_registry():
    path = builtin.model_path()
    assert path.stat().st_size < 4_000_000  # the wheel stays small
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta[META_STYLES]) == builtin.names()
    assert [i.name for i in model.graph.input] == ["image", "style"]
    info = builtin.training_info()
    assert info["styles"] == builtin.names() and info["seconds"] > 0 and info["command"].startswith("fastnst train")
    assert "vgg16" in info["vgg_weights"] and info["model_bytes"] == path.stat().st_size
    attribution = builtin.ATTRIBUTION_PATH.read_text(encoding="utf-8")
    for name in builtin.names():
        assert f"`{name}`" in attribution
    assert info["command"] in attribution


def test_package_data_ships_the_model_and_thumbnails():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for pattern in ("styles/models/*", "styles/thumbnails/*", "styles/ATTRIBUTION.md"):
        assert pattern in text


def test_stylize_without_model_or_torch(tmp_path, photo):
    """A fresh process in which torch cannot be imported: the default built-in style, then a blend."""
    out, blend = tmp_path / "out.png", tmp_path / "blend.png"
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch fails\n"
        "from fastnst.cli import main\n"
        f"assert main(['stylize', {str(photo)!r}, '-o', {str(out)!r}]) == 0\n"
        f"assert main(['stylize', {str(photo)!r}, '-o', {str(blend)!r}, '--style', 'mosaic:0.5,halftone:0.5']) == 0\n"
        "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    src = np.asarray(Image.open(photo).convert("RGB"), np.float32)
    got = np.asarray(Image.open(out).convert("RGB"), np.float32)
    assert got.shape == src.shape
    assert np.abs(got - src).mean() > 10  # visibly stylised, not the photo
    assert np.abs(np.asarray(Image.open(blend).convert("RGB"), np.float32) - got).mean() > 1


def test_default_style_equals_naming_it(tmp_path, photo, capsys):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    assert cli.main(["stylize", str(photo), "-o", str(a)]) == 0
    assert cli.main(["stylize", str(photo), "-o", str(b), "--style", builtin.DEFAULT_STYLE]) == 0
    other = next(n for n in builtin.names() if n != builtin.DEFAULT_STYLE)
    assert cli.main(["stylize", str(photo), "-o", str(c), "--style", other]) == 0
    pa, pb, pc = (np.asarray(Image.open(p), np.float32) for p in (a, b, c))
    assert np.array_equal(pa, pb) and np.abs(pa - pc).mean() > 1


def test_python_api_uses_the_builtin_styles_without_a_model(photo):
    """`fastnst.stylize("photo.jpg")` and `Stylizer()` raised TypeError (missing 'model'); the built-in model's
    path was private (fastnst.styles.builtin.MODEL_PATH)."""
    import fastnst
    from fastnst.runtime import Stylizer

    assert fastnst.BUILTIN_MODEL == builtin.MODEL_PATH and fastnst.BUILTIN_MODEL.is_file()
    default = fastnst.stylize(str(photo))
    assert isinstance(default, Image.Image) and default.size == Image.open(photo).size
    named = fastnst.stylize(str(photo), fastnst.BUILTIN_MODEL, style=builtin.DEFAULT_STYLE)
    assert np.array_equal(np.asarray(default), np.asarray(named))
    array = np.asarray(Image.open(photo).convert("RGB"))
    other = fastnst.stylize(array, style="mosaic")
    assert other.shape == array.shape and other.dtype == np.uint8
    assert np.abs(other.astype(np.float32) - np.asarray(default, np.float32)).mean() > 1
    stylizer = Stylizer()
    assert stylizer.style_names == builtin.names()
    assert np.array_equal(stylizer.stylize(array), np.asarray(default))


@pytest.mark.parametrize("style", ["mosiac", "99", "mosaic:-1", "mosaic:0,halftone:0"])
def test_bad_builtin_style_exits_2_and_writes_nothing(tmp_path, photo, capsys, style):
    out = tmp_path / "out.png"
    assert cli.main(["stylize", str(photo), "-o", str(out), "--style", style]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastnst: error: ") and err.count("\n") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [photo]


def test_styles_lists_names_sources_and_licences(capsys):
    assert cli.main(["styles"]) == 0
    out = capsys.readouterr().out
    for style in builtin.BUILTIN_STYLES:
        assert style.name in out and style.licence in out
    assert f"{builtin.DEFAULT_STYLE} (default)" in out
    assert cli.main(["styles", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in data["styles"]] == builtin.names()


def test_sheet_has_the_photo_in_every_style(tmp_path, photo, capsys):
    out = tmp_path / "sheet.png"
    assert cli.main(["styles", "--sheet", str(photo), "-o", str(out), "--size", "64"]) == 0
    sheet = Image.open(out)
    n = len(builtin.names()) + len(paintings.shipped_names()) + 1  # and the shipped paintings (universal model)
    ncols = n if n <= 4 else int(np.ceil(n ** 0.5))
    assert sheet.width == ncols * (64 + 4) + 4  # 64 x 50 tiles, 4 px apart
    tile = np.asarray(sheet, dtype=np.float32)[4:54]
    last = (n - 1) % ncols  # the last tile of the first row ...
    first_row = [tile[:, 4 + i * 68: 68 + i * 68] for i in range(ncols)]
    assert np.abs(first_row[last] - first_row[0]).mean() > 10  # ... is the photo stylised, not the photo
    # a subset, and the refusals: an existing output, an unknown style, a bad size, the photo itself
    sub = tmp_path / "two.jpg"
    assert cli.main(["styles", "--sheet", str(photo), "-o", str(sub), "--size", "64",
                     "--style", "mosaic", "--style", "starry_night"]) == 0  # a built-in and a painting
    assert Image.open(sub).width == 3 * (64 + 4) + 4
    capsys.readouterr()
    before = out.read_bytes()
    for argv in (["-o", str(out)], ["-o", str(tmp_path / "x.png"), "--style", "mosiac"],
                 ["-o", str(tmp_path / "z.png"), "--style", "missing.jpg"],
                 ["-o", str(tmp_path / "y.png"), "--size", "5000"], ["-o", str(photo), "--overwrite"]):
        assert cli.main(["styles", "--sheet", str(photo), "--size", "64", *argv]) == 2, argv
        assert capsys.readouterr().err.count("\n") == 1
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png", "sheet.png", "two.jpg"]


def test_info_without_a_model_shows_the_builtins(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "builtin.onnx" in out
    for name in builtin.names():
        assert f"built-in   {name}" in out
