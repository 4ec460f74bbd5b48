"""What a style name means (fastnst.styles.registry): kinds in order, names ignoring case/spaces/dashes, pictures
made or fetched only on demand, did-you-mean listing the names by kind."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fastnst.constants import CACHE_DIR_ENV
from fastnst.errors import ConfigError, InputError
from fastnst.styles import builtin, generated, paintings
from fastnst.styles import registry as R


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(paintings.BASE_URL_ENV, "http://127.0.0.1:9/")  # nothing listens there
    return tmp_path / "cache"


def _picture(path, size=(32, 32)):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
        path, format="PNG")
    return path


@pytest.mark.parametrize("spec, kind, name", [
    ("mosaic", R.BUILTIN, "mosaic"),
    ("Stained Glass", R.BUILTIN, "stained_glass"),
    ("hubble", R.BUILTIN, "hubble"),
    ("starry_night", R.PAINTING, "starry_night"),
    ("The-Great-Wave", R.PAINTING, "great_wave"),  # an alias, any case and dashes
    ("kiss", R.PAINTING, "the_kiss"),
    ("geometric", R.GENERATED, "geometric"),  # generated but not built in
])
def test_names_by_kind(spec, kind, name):
    style = R.lookup(spec)
    assert (style.kind, style.name, style.path) == (kind, name, None)
    assert style.feed_forward == (kind == R.BUILTIN)


def test_a_picture_lookup_means_the_picture_of_a_name():
    """Gatys and training need a picture: a built-in drawn by code is its generated picture; the others are no
    picture names at all."""
    assert (R.lookup("mosaic", picture=True).kind, R.lookup("mosaic", picture=True).name) == (R.GENERATED, "mosaic")
    assert R.lookup("starry_night", picture=True).kind == R.PAINTING
    with pytest.raises(ConfigError) as info:
        R.lookup("hubble", picture=True)
    assert "unknown style 'hubble'" in str(info.value) and "built-in" not in str(info.value)


def test_every_name_of_every_kind_is_known():
    for name in builtin.names():
        assert R.lookup(name).kind == R.BUILTIN
    for name in paintings.names():
        assert R.lookup(name).kind == R.PAINTING
    for name in generated.NAMES:
        assert R.lookup(name, picture=True).kind == R.GENERATED
    assert R.names()["built-in"] == builtin.names()
    assert R.names()["generated"] == [n for n in generated.NAMES if n not in builtin.names()]
    assert R.names(picture=True) == {"paintings": paintings.names(), "generated": list(generated.NAMES)}


def test_an_existing_file_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = _picture(tmp_path / "mosaic", (8, 8))  # a file called like a built-in style (no suffix)
    for picture in (False, True):
        style = R.lookup("mosaic", picture=picture)
        assert (style.kind, style.name, style.path) == (R.FILE, "mosaic", f.relative_to(tmp_path))
        assert style.picture() == style.path
    (tmp_path / "sub").mkdir()
    other = _picture(tmp_path / "sub" / "wave.png")
    assert R.lookup(other) == R.Style(R.FILE, "wave", other)  # named after its stem, not the painting 'wave'


def test_a_folder_never_shadows_a_name_but_a_path_to_it_reaches_the_reader(tmp_path, monkeypatch):
    """A folder called like a style does not hide the style (the old resolve_style returned the folder); a folder
    given as a path is a 'file' for the image reader to refuse ('is a folder')."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "starry_night").mkdir()
    (tmp_path / "mosaic").mkdir()
    assert R.lookup("starry_night", picture=True).kind == R.PAINTING
    assert R.lookup("mosaic").kind == R.BUILTIN
    style = R.lookup(tmp_path)
    assert (style.kind, style.path) == (R.FILE, tmp_path)
    assert R.resolve_style(tmp_path) == tmp_path


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="'.*nothere.jpg' does not exist; check the path, or give a style name such "
                                         "as mosaic or starry_night"):
        R.lookup(tmp_path / "nothere.jpg")
    with pytest.raises(InputError, match="does not exist"):
        R.resolve_style("sub/starry_night")  # a folder part: meant as a file, not the painting
    with pytest.raises(InputError, match="does not exist"):
        R.lookup("photo.ppm")  # an image suffix fastnst reads (image.IMAGE_EXTENSIONS)


def test_unknown_name_lists_every_name_by_kind_and_suggests_the_closest():
    with pytest.raises(ConfigError) as info:
        R.lookup("mosiac")
    msg = str(info.value)
    assert "\n" not in msg and "(did you mean 'mosaic'?)" in msg
    assert "built-in: mosaic, stained_glass" in msg and "paintings: starry_night" in msg
    assert "generated: geometric" in msg
    with pytest.raises(ConfigError) as info:
        R.resolve_style("stary_nigt")
    msg = str(info.value)
    assert "did you mean 'starry_night'?" in msg and "built-in" not in msg
    assert "generated: mosaic, stained_glass" in msg
    with pytest.raises(ConfigError, match="did you mean 'shipwreck_of_the_minotaur'"):
        R.lookup("shipwrek")  # close to an alias: the canonical name is suggested


def test_nothing_is_fetched_or_made_before_picture(cache):
    R.lookup("starry_night")
    R.lookup("halftone", picture=True)
    assert not cache.exists()


def test_generated_picture_is_made_offline_into_the_cache_once(cache):
    path = R.resolve_style("stained_glass")
    assert path == cache / "generated" / f"v{generated.VERSION}" / "stained_glass.png"
    with Image.open(path) as img:
        assert img.size == (generated.PICTURE_SIZE, generated.PICTURE_SIZE)
    mtime = path.stat().st_mtime_ns
    assert R.resolve_style("Stained-Glass") == path and path.stat().st_mtime_ns == mtime  # reused
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(generated.generate_style("stained_glass")))


def test_painting_picture_comes_from_the_cache(cache):
    painting = paintings.PAINTINGS["the_kiss"]
    target = paintings.cached_path(painting)
    target.parent.mkdir(parents=True)
    _picture(target, painting.expected_size)
    assert R.resolve_style("kiss") == target
    assert R.resolve_style("wave") == paintings.PAINTINGS["great_wave"].shipped_path  # shipped: no cache


def test_builtin_without_a_shipped_picture_says_so(cache):
    with pytest.raises(ConfigError, match="'retina' is a built-in style of the shipped model; its picture is not "
                                          "shipped"):
        R.lookup("retina").picture()
    assert R.lookup("halftone").picture() == generated.cached_picture("halftone")


def test_resolve_styles_keeps_the_shape(cache):
    assert R.resolve_styles(None) is None
    assert R.resolve_styles(["mosaic", "halftone"]) == [generated.cached_picture("mosaic"),
                                                         generated.cached_picture("halftone")]
    assert R.resolve_styles(("mosaic",)) == [generated.cached_picture("mosaic")]
    assert R.resolve_styles("mosaic") == generated.cached_picture("mosaic")


def test_module_imports_without_torch():
    code = ("import sys; import fastnst.styles.registry as r; r.lookup('mosaic'); "
            "sys.exit(1 if 'torch' in sys.modules or 'onnxruntime' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
