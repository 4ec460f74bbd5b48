"""Public-domain paintings: download once into a cache, check it, fail helpfully offline; the painting and
generated names in the CLI. (What a name means: test_styles_registry.py.)"""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from PIL import Image

from fastnst.constants import CACHE_DIR_ENV
from fastnst.errors import InputError, PaintingUnavailableError
from fastnst.styles import paintings as P
from fastnst.styles.paintings import PAINTINGS


def fetch(name):
    return P.fetch_painting(PAINTINGS[name])


def _picture(size, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local copy of Commons' upload tree (file:// URL) and an empty cache folder."""
    root = tmp_path / "mirror"
    root.mkdir()
    monkeypatch.setenv(P.BASE_URL_ENV, root.as_uri() + "/")
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))

    def put(name, content=None):
        painting = PAINTINGS[name]
        rel = painting.url("BASE/")[len("BASE/"):]
        from urllib.parse import unquote
        target = root / unquote(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            (content or _picture(painting.expected_size)).save(target, format="JPEG")
        return target
    return put


def _cache_files(tmp_path):
    """The style pictures in the cache (paintings and generated; the VGG statistics live there too)."""
    return sorted(p.name for sub in ("paintings", "generated") for p in (tmp_path / "cache" / sub).rglob("*")
                  if p.is_file())


def test_download_once_then_from_cache(mirror, tmp_path):
    source = mirror("impression_sunrise")
    path = fetch("impression_sunrise")
    assert path == tmp_path / "cache" / "paintings" / "impression_sunrise.jpg"
    with Image.open(path) as img:
        assert img.size == PAINTINGS["impression_sunrise"].expected_size
    assert _cache_files(tmp_path) == ["impression_sunrise.jpg"]  # no temporary file left behind
    source.unlink()  # the second call must not need the network
    assert fetch("impression_sunrise") == path


def test_prefilled_cache_needs_no_network(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(P.BASE_URL_ENV, "http://127.0.0.1:9/")  # nothing listens there
    painting = PAINTINGS["shipwreck_of_the_minotaur"]
    target = P.cached_path(painting)
    target.parent.mkdir(parents=True)
    _picture(painting.expected_size).save(target)
    assert fetch("shipwreck_of_the_minotaur") == target


def test_offline_is_one_line_with_url_and_local_file_hint(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(P.BASE_URL_ENV, "http://127.0.0.1:9/")
    with pytest.raises(PaintingUnavailableError) as info:
        fetch("the_scream")
    msg = str(info.value)
    assert "\n" not in msg
    assert PAINTINGS["the_scream"].url("http://127.0.0.1:9/") in msg
    assert "--style PATH" in msg and "commons.wikimedia.org/wiki/File:" in msg
    assert _cache_files(tmp_path) == []
    assert isinstance(info.value, InputError)  # the CLI maps it to exit code 2


def test_http_error_is_reported(mirror, tmp_path):
    with pytest.raises(PaintingUnavailableError, match="cannot download painting 'the_kiss'"):
        fetch("the_kiss")  # not in the mirror: file:// gives an error like a 404
    assert _cache_files(tmp_path) == []


@pytest.mark.parametrize("content, match", [
    (b"<html><body>Too many requests</body></html>", "not an image"),
    (Image.new("RGB", (1280, 1280)), "not the painting"),  # square: not the painting's proportions
    (Image.new("RGB", (64, 49)), "not the painting"),  # right proportions, far too small
])
def test_a_download_that_is_not_the_painting_is_rejected_and_not_cached(mirror, tmp_path, content, match):
    mirror("impression_sunrise", content)
    with pytest.raises(PaintingUnavailableError, match=match):
        fetch("impression_sunrise")
    assert _cache_files(tmp_path) == []


def test_oversized_download_is_cut_off(mirror, tmp_path, monkeypatch):
    mirror("impression_sunrise")
    monkeypatch.setattr(P, "MAX_DOWNLOAD_BYTES", 1000)
    with pytest.raises(PaintingUnavailableError, match="exceeds"):
        fetch("impression_sunrise")
    assert _cache_files(tmp_path) == []


def test_truncated_download_is_rejected(mirror, tmp_path):
    good = mirror("composition_vii")
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(PaintingUnavailableError):
        fetch("composition_vii")
    assert _cache_files(tmp_path) == []


def test_a_bad_cache_entry_is_replaced(mirror, tmp_path):
    mirror("the_kiss")
    target = P.cached_path(PAINTINGS["the_kiss"])
    target.parent.mkdir(parents=True)
    target.write_bytes(b"garbage")
    assert fetch("the_kiss") == target
    assert P.check_painting(target, PAINTINGS["the_kiss"]) == PAINTINGS["the_kiss"].expected_size


def test_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(P.CACHE_DIR_ENV, str(tmp_path / "c"))
    assert P.cache_dir() == tmp_path / "c"
    assert P.cached_path(PAINTINGS["the_kiss"]) == tmp_path / "c" / "paintings" / "the_kiss.jpg"
    monkeypatch.delenv(P.CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert P.cache_dir() == tmp_path / "x" / "fastnst"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert P.cache_dir() == tmp_path / "home" / ".cache" / "fastnst"


def test_commons_urls():
    # the thumbnail paths Commons uses (md5-sharded), as linked from many public pages
    assert PAINTINGS["starry_night"].url() == (
        "https://upload.wikimedia.org/wikipedia/commons/thumb/e/ea/Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg/"
        "1280px-Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg")
    assert PAINTINGS["la_grande_jatte"].url() == (
        "https://upload.wikimedia.org/wikipedia/commons/thumb/7/7d/A_Sunday_on_La_Grande_Jatte%2C_Georges_Seurat%2C_"
        "1884.jpg/1280px-A_Sunday_on_La_Grande_Jatte%2C_Georges_Seurat%2C_1884.jpg")


def test_registry_is_public_domain_and_complete():
    required = {"starry_night", "great_wave", "the_scream", "composition_vii", "shipwreck_of_the_minotaur"}
    assert required <= set(PAINTINGS)
    this_year = datetime.date.today().year
    for p in PAINTINGS.values():
        assert p.died <= this_year - 71, p.name  # life + 70 has passed
        first_year = int("".join(ch for ch in p.year if ch.isdigit())[:4])
        assert p.died <= this_year - 101 or first_year < 1929, p.name
        assert "public domain" in P.reason(p) and str(p.died) in P.reason(p)
        assert p.artist not in ("Pablo Picasso", "Leonid Afremov", "Francis Picabia")


def test_shipped_paintings_need_no_network_and_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(P.BASE_URL_ENV, "http://127.0.0.1:9/")  # nothing listens there

    def no_network(*args, **kwargs):
        raise AssertionError("a shipped painting was downloaded")
    monkeypatch.setattr(P.urllib.request, "urlopen", no_network)
    assert sorted(P.shipped_names()) == ["great_wave", "starry_night"]
    for name in P.shipped_names():
        painting = PAINTINGS[name]
        path = fetch(name)
        assert path == painting.shipped_path and path.parent == P.PICTURES_DIR
        w, h = P.check_painting(path, painting)  # the shipped copy is the painting, whole
        assert min(w, h) >= 440 and painting.shipped_source
    assert not (tmp_path / "cache").exists()


def test_the_shipped_copies_are_listed_with_their_licences():
    from fastnst.styles.builtin import ATTRIBUTION_PATH

    text = ATTRIBUTION_PATH.read_text(encoding="utf-8")
    for name in P.shipped_names():
        assert f"`pictures/{PAINTINGS[name].shipped}`" in text, name
    assert "GPL-3+" in text and "Apache-2.0" in text


# ------------------------------------------------------------------------------------ wired into the CLI

def test_cli_gatys_and_texture_take_painting_and_generated_names(mirror, tmp_path, monkeypatch, capsys):
    from fastnst import cli

    mirror("shipwreck_of_the_minotaur")
    monkeypatch.chdir(tmp_path)
    _picture((40, 32), seed=3).save("photo.png")
    rc = cli.main(["gatys", "--content", "photo.png", "--style", "shipwreck_of_the_minotaur", "--style", "mosaic", "-o", "g.png",
                   "--size", "40", "--iterations", "1", "--vgg-weights", "random"])
    assert rc == 0, capsys.readouterr().err
    assert Image.open("g.png").size == (40, 32)
    assert _cache_files(tmp_path) == ["mosaic.png", "shipwreck_of_the_minotaur.jpg"]
    rc = cli.main(["texture", "--style", "halftone", "-o", "t.png", "--size", "32", "--iterations", "1",
                   "--vgg-weights", "random"])
    assert rc == 0 and Image.open("t.png").size == (32, 32)


def test_cli_offline_painting_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys):
    from fastnst import cli

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(P.BASE_URL_ENV, "http://127.0.0.1:9/")
    monkeypatch.chdir(tmp_path)
    _picture((40, 32)).save("photo.png")
    rc = cli.main(["gatys", "--content", "photo.png", "--style", "the_scream", "-o", "g.png", "--size", "40",
                   "--iterations", "1", "--vgg-weights", "random"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "127.0.0.1:9" in err[0] and "--style PATH" in err[0]
    assert not (tmp_path / "g.png").exists() and _cache_files(tmp_path) == []
    rc = cli.main(["texture", "--style", "stary_night", "-o", "t.png", "--vgg-weights", "random"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "did you mean 'starry_night'" in err[0]


def test_cli_train_takes_a_generated_style_name(tmp_path, monkeypatch, capsys):
    from fastnst.cli import main

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    for i in range(2):
        _picture((40, 40), seed=i).save(tmp_path / "photos" / f"{i}.jpg")
    rc = main(["train", "--style", "pointillist", "--data", "photos", "--steps", "1", "--vgg-weights", "random",
               "--image-size", "32", "--style-size", "64", "--batch-size", "2", "--arch", "fast", "--num-workers", "0",
               "--num-previews", "1", "--export", "false"])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "checkpoints" / "pointillist" / "last.ckpt").is_file()  # named after the style
