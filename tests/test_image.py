import io
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from fastnst import image
from fastnst.errors import InputError, OutputExistsError
from tests.conftest import synthetic_rgb


def test_read_png_roundtrip_tensor(image_file):
    data = image.read_image(image_file)
    assert data.rgb.mode == "RGB" and data.alpha is None and data.size == (48, 40)
    t = image.to_tensor(data.rgb)
    assert t.shape == (1, 3, 40, 48) and t.dtype == torch.float32
    assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    back = image.to_pil(t)
    assert np.array_equal(np.asarray(back), np.asarray(data.rgb))


def test_exif_orientation_applied(tmp_path):
    img = synthetic_rgb(30, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif)
    assert image.read_image(path).size == (20, 30)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16", "I", "F", "1"])
def test_modes_become_rgb(mode):
    img = synthetic_rgb(16, 12).convert("L")
    if mode == "P":
        img = synthetic_rgb(16, 12).convert("P")
    elif mode == "CMYK":
        img = synthetic_rgb(16, 12).convert("CMYK")
    elif mode in ("I;16", "I"):
        arr = (np.asarray(img).astype(np.uint16) * 257)
        img = Image.fromarray(arr) if mode == "I;16" else Image.fromarray(arr.astype(np.int32))
        assert img.mode.startswith(mode)
    elif mode == "F":
        img = Image.fromarray(np.asarray(img).astype(np.float32) / 255.0)
    elif mode == "1":
        img = img.convert("1")
    gray = np.asarray(synthetic_rgb(16, 12).convert("L")).astype(int)
    out = image.read_image(img).rgb
    assert out.mode == "RGB" and out.size == (16, 12)
    if mode in ("L", "I;16", "I", "F"):  # high-bit data scaled to 8 bits, not clipped
        assert np.abs(np.asarray(out)[:, :, 0].astype(int) - gray).max() <= 1


def test_rgba_alpha_kept_aside(tmp_path):
    img = synthetic_rgb(20, 10).convert("RGBA")
    alpha = Image.linear_gradient("L").resize((20, 10))
    img.putalpha(alpha)
    path = tmp_path / "a.png"
    img.save(path)
    data = image.read_image(path)
    assert data.rgb.mode == "RGB" and data.alpha is not None
    assert np.array_equal(np.asarray(data.alpha), np.asarray(alpha))
    out = tmp_path / "out.png"
    image.save_image(data.rgb, out, alpha=data.alpha)
    assert Image.open(out).mode == "RGBA"


def test_palette_transparency_gives_alpha():
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    assert image.read_image(img).alpha is not None


def test_arrays_accepted():
    arr = np.asarray(synthetic_rgb(9, 7))
    assert image.read_image(arr).size == (9, 7)
    assert image.read_image(arr[:, :, 0]).rgb.mode == "RGB"
    with pytest.raises(InputError):
        image.read_image(np.zeros((4, 4, 2), np.uint8))


@pytest.mark.parametrize("content,needle", [(b"", "empty"), (b"not an image at all", "not an image"),
                                            (None, "does not exist")])
def test_bad_files(tmp_path, content, needle):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=needle):
        image.read_image(path)


def test_truncated_file(tmp_path, image_file):
    data = image_file.read_bytes()
    path = tmp_path / "trunc.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        image.read_image(path)


def test_decompression_bomb_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 200)).save(path)
    monkeypatch.setenv("FASTNST_MAX_PIXELS", "50000")
    with pytest.raises(InputError, match="over the limit"):
        image.read_image(path)
    assert image.read_image(path, max_pixels=60000).size == (300, 200)


def test_resize():
    img = synthetic_rgb(40, 20)
    assert image.resize(img, long_edge=10).size == (10, 5)
    assert image.resize(img, long_edge=80).size == (80, 40)
    assert image.resize(img, size=(7, 9)).size == (7, 9)
    assert image.resize(img) is img
    with pytest.raises(InputError):
        image.resize(img, long_edge=0)


def test_save_is_atomic_and_refuses_overwrite(tmp_path, rgb_image):
    out = tmp_path / "x.jpg"
    image.save_image(rgb_image, out)
    before = out.read_bytes()
    with pytest.raises(OutputExistsError):
        image.save_image(rgb_image.rotate(90), out)
    assert out.read_bytes() == before
    image.save_image(image.to_tensor(rgb_image), out, overwrite=True, quality=50)
    assert out.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jpg"]  # no temp files left


def test_save_failure_leaves_nothing(tmp_path, rgb_image, monkeypatch):
    out = tmp_path / "y.png"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    from fastnst.errors import OutputError

    with pytest.raises(OutputError, match="cannot write"):  # one line for the CLI, not a traceback
        image.save_image(rgb_image, out)
    assert list(tmp_path.iterdir()) == []


def test_save_bad_format_and_folder(tmp_path, rgb_image):
    with pytest.raises(InputError, match="unsupported output format"):
        image.save_image(rgb_image, tmp_path / "x.xyz")
    with pytest.raises(InputError, match="does not exist"):
        image.save_image(rgb_image, tmp_path / "missing" / "x.png")


def test_icc_profile_kept(tmp_path, rgb_image):
    fake_icc = b"\x00" * 128  # Pillow stores the bytes as given
    path = tmp_path / "icc.png"
    rgb_image.save(path, icc_profile=fake_icc)
    data = image.read_image(path)
    assert data.icc_profile == fake_icc
    out = tmp_path / "out.png"
    image.save_image(data.rgb, out, icc_profile=data.icc_profile)
    assert Image.open(out).info.get("icc_profile") == fake_icc


def test_encode_and_grid(rgb_image):
    png = image.encode_image(rgb_image, "png")
    assert Image.open(io.BytesIO(png)).size == rgb_image.size
    grid = image.make_grid([rgb_image, rgb_image.resize((10, 10)), rgb_image], ncols=2, pad=1)
    assert grid.size == (2 * 48 + 3, 2 * 40 + 3)


def test_image_module_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import fastnst, fastnst.image, fastnst.cli, fastnst.fileio, fastnst.errors, fastnst.constants\n"
            "print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_preserve_colors_is_one_method_for_numpy_and_torch():
    """Luma of the styled image, chroma of the original: equal to a full BT.601 YCbCr round trip."""
    import numpy as np
    import torch

    from fastnst.image import preserve_colors

    rng = np.random.default_rng(0)
    original, styled = rng.random((6, 7, 3), dtype=np.float32), rng.random((6, 7, 3), dtype=np.float32)
    to_ycc = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    ycc = np.concatenate([(styled @ to_ycc.T)[..., :1], (original @ to_ycc.T)[..., 1:]], axis=-1)
    expected = np.clip(ycc @ np.linalg.inv(to_ycc).T, 0, 1)
    got = preserve_colors(original, styled)
    assert got.dtype == np.float32 and np.abs(got - expected).max() < 1e-5
    as_uint8 = preserve_colors((original * 255).round().astype(np.uint8), styled)
    assert np.abs(as_uint8 - got).max() < 0.01
    nchw = preserve_colors(torch.from_numpy(original).permute(2, 0, 1)[None],
                           torch.from_numpy(styled).permute(2, 0, 1)[None], channel_axis=1)
    assert np.abs(nchw[0].permute(1, 2, 0).numpy() - got).max() < 1e-6
    assert np.abs(preserve_colors(original, original) - original).max() < 1e-6


def test_find_images_is_one_scanner_skipping_hidden_entries_and_link_cycles(tmp_path):
    import os

    import pytest

    from fastnst.errors import InputError
    from fastnst.image import find_images

    for rel in ("b.JPG", "a.png", "notes.txt", ".hidden.png", "sub/c.webp", ".cache/d.png", "sub/deeper/e.jpeg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    names = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    assert names == ["a.png", "b.JPG", "sub/c.webp", "sub/deeper/e.jpeg"]
    assert [p.name for p in find_images(tmp_path, recursive=False)] == ["a.png", "b.JPG"]
    with pytest.raises(InputError, match="has no images"):
        find_images(tmp_path / "folder.png")
    assert find_images(tmp_path / "folder.png", require=False) == []


def test_uint8_conversions_round_or_round_down():
    arr = np.array([[[0.0, 0.5, 1.0], [-0.2, 0.999, 1.7]]], np.float32)
    assert image.to_uint8(arr).tolist() == [[[0, 128, 255], [0, 255, 255]]]  # 127.5 and 254.7 round up
    assert image.to_uint8(arr, rounded=False).tolist() == [[[0, 127, 255], [0, 254, 255]]]  # rounded down
    assert np.asarray(image.from_array(arr, rounded=False)).tolist() == [[[0, 127, 255], [0, 254, 255]]]
    assert arr.tolist()[0][1][0] == pytest.approx(-0.2)  # never in place


def test_colours_for_pixels_and_drawing():
    pal = image.hex_colours(["#000000", "#ff8000", "#FFFFFF"])
    assert pal.dtype == np.float32 and pal.shape == (3, 3)
    assert pal[1].tolist() == pytest.approx([1.0, 128 / 255, 0.0])
    assert image.drawing_colour(pal[1]) == (255, 128, 0)
    assert image.drawing_colour(pal[1], 0.5) == (127, 64, 0)  # scaled, rounded down
    assert image.drawing_colour(np.array([1.3, -0.1, 0.2])) == (255, 0, 51)  # clipped to [0, 1] first


def _png16(path, arr, colour_type):
    """A 16-bit PNG written by hand (Pillow writes no 16-bit RGBA)."""
    import struct
    import zlib

    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
                     + chunk(b"IEND", b""))
    return path


def test_decoding_memory_is_what_the_mode_costs(tmp_path):
    """A 16000² 16-bit RGBA PNG of 8.9 MB with --max-size 64 peaked at 2.07 GB (8 bytes a pixel: a premultiplied
    copy of the whole canvas), 16-bit gray at 22 bytes a pixel (float copies); the estimate ignored the mode."""
    n = 2000
    rgba = _png16(tmp_path / "rgba16.png", np.zeros((n, n, 4), np.uint16), 6)
    gray = _png16(tmp_path / "gray16.png", np.zeros((n, n), np.uint16), 0)
    code = ("import resource, sys\nfrom fastnst.image import read_image\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "read_image(sys.argv[1], max_size=64)\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024 / %d)" % (n * n))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for path in (rgba, gray):
        res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                             timeout=120)
        assert res.returncode == 0, res.stderr
        per_pixel = float(res.stdout)
        with Image.open(path) as opened:
            assert per_pixel <= image.decode_bytes(opened) / n ** 2 + 0.5, (path.name, per_pixel)
        assert per_pixel < 7, (path.name, per_pixel)  # was 8.2 and 22 bytes a pixel
    with Image.open(rgba) as a, Image.open(gray) as g:
        assert image.decode_bytes(a) == n * n * 9 and image.decode_bytes(g) == n * n * 6


def test_reduced_decoding_is_the_same_pixels_strip_by_strip():
    img = synthetic_rgb(301, 517, seed=4).convert("RGBA")
    img.putalpha(Image.fromarray((np.arange(301 * 517) % 251).reshape(517, 301).astype(np.uint8)))
    for factor in (2, 3, 7):
        assert np.array_equal(np.asarray(image._reduce(img, factor)), np.asarray(img.reduce(factor)))
    gray = Image.fromarray((np.arange(300 * 310) * 7 % 65536).reshape(310, 300).astype(np.uint16))
    expected = np.clip(np.asarray(gray).astype(np.float64) / 257.0 + 0.5, 0, 255.5).astype(np.uint8)
    assert np.array_equal(np.asarray(image._high_bit_to_l(gray)), expected)


def test_png_is_written_losslessly_fast_and_no_larger_than_pillows_default(tmp_path):
    """PNG goes out with zlib's run-length strategy (fastnst.image.PNG_ZLIB_STRATEGY, 2.5-2.9x faster to write
    than Pillow's default: scripts/bench_png.py): the pixels come back exactly, alpha included, and a
    textured picture like a stylised photo is no larger than Pillow's default writes it (zlib level 1, the
    other fast choice, is 5% larger here)."""
    rng = np.random.default_rng(0)
    textured = Image.fromarray(rng.integers(0, 256, (96, 96, 3), np.uint8)).resize((384, 384),
                                                                                     Image.Resampling.BICUBIC)
    ours = image.save_image(textured, tmp_path / "t.png")
    assert np.array_equal(np.asarray(Image.open(ours)), np.asarray(textured))
    default, level1 = io.BytesIO(), io.BytesIO()
    textured.save(default, format="PNG")
    textured.save(level1, format="PNG", compress_level=1)
    assert ours.stat().st_size <= len(default.getvalue()) * 1.01 < len(level1.getvalue())
    alpha = Image.fromarray(rng.integers(0, 256, (384, 384), np.uint8))
    with_alpha = image.save_image(textured, tmp_path / "a.png", alpha=alpha)
    back = Image.open(with_alpha)
    assert back.mode == "RGBA" and np.array_equal(np.asarray(back)[..., 3], np.asarray(alpha))
