"""Style pictures made by code: deterministic from a seed, numpy + Pillow only (torch-free).

These are fastnst's own pictures (MIT, like the rest of the project), so they can be shipped, used
as training styles and shown anywhere. Every feature size is proportional to ``size``, so the
picture looks the same at any resolution; at the default 512 px a 256 px crop sees a dozen or more
repeats of the characteristic texture (tiles, leading, strokes, dots). :func:`cached_picture` keeps the
512 px picture of each in the cache folder for the methods that take a style picture (Gatys, training).
Pixels become 8-bit through :mod:`fastnst.image`'s helpers.

>>> from fastnst.styles.generated import generate_style, NAMES
>>> generate_style("stained_glass", size=512, seed=0).save("glass.png")
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fastnst.constants import CACHE_DIR_ENV, cache_dir
from fastnst.errors import ConfigError, InputError, unknown_choice
from fastnst.image import drawing_colour, from_array, hex_colours, save_image, to_array

#: Bumped whenever a drawing changes, so that cached pictures (:func:`cached_picture`) are made again.
VERSION = 1
#: Largest side generate_style accepts (a style picture has no use beyond this).
MAX_SIZE = 4096
#: Smallest side: below this the textures lose their structure.
MIN_SIZE = 64
#: Side of the cached picture that Gatys, training and the registry use (:func:`cached_picture`).
PICTURE_SIZE = 512


# ---------------------------------------------------------------------------------------------- helpers

def _noise(rng: np.random.Generator, size: int, cells: float, octaves: int = 1,
           persistence: float = 0.5) -> np.ndarray:
    """Smooth value noise (fractal sum of bicubic-upsampled random grids), HxW float32 in [0, 1]."""
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = max(1, int(round(cells * 2 ** o)))
        grid = rng.random((n + 3, n + 3), dtype=np.float32)
        img = Image.fromarray(grid, "F").resize((size, size), Image.Resampling.BICUBIC, box=(1, 1, n + 1, n + 1))
        out += amp * np.asarray(img, np.float32)
        total += amp
        amp *= persistence
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _ramp(values: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] (any shape) to colours by linear interpolation along ``palette`` (K x 3)."""
    k = len(palette) - 1
    x = np.clip(values, 0.0, 1.0) * k
    i = np.minimum(x.astype(np.int64), k - 1)
    t = (x - i)[..., None]
    return palette[i] * (1 - t) + palette[i + 1] * t


def _voronoi(rng: np.random.Generator, size: int, cell: float, jitter: float = 0.9,
             warp: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voronoi diagram of a jittered grid of seeds.

    Returns (cell id HxW int, distance to the cell's border HxW in pixels, seed positions Nx2 as y, x).
    ``warp`` displaces the lookup coordinates (dy, dx) so borders curve.
    """
    n = int(np.ceil(size / cell)) + 2  # one padding cell each side
    gy, gx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    off = 0.5 + (rng.random((2, n, n), dtype=np.float32) - 0.5) * jitter
    py = (gy - 1 + off[0]) * cell
    px = (gx - 1 + off[1]) * cell
    yy, xx = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32), indexing="ij")
    if warp is not None:
        yy, xx = yy + warp[0], xx + warp[1]
    cy = np.clip(np.floor(yy / cell).astype(np.int64) + 1, 1, n - 2)
    cx = np.clip(np.floor(xx / cell).astype(np.int64) + 1, 1, n - 2)
    cand_i, cand_d = [], []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            iy, ix = cy + dy, cx + dx
            cand_i.append(iy * n + ix)
            cand_d.append((py[iy, ix] - yy) ** 2 + (px[iy, ix] - xx) ** 2)
    d = np.stack(cand_d)
    idx = np.stack(cand_i)
    order = np.argsort(d, axis=0)[:2]
    i1 = np.take_along_axis(idx, order[:1], 0)[0]
    i2 = np.take_along_axis(idx, order[1:2], 0)[0]
    d1 = np.take_along_axis(d, order[:1], 0)[0]
    d2 = np.take_along_axis(d, order[1:2], 0)[0]
    pyf, pxf = py.ravel(), px.ravel()
    sep = np.sqrt((pyf[i1] - pyf[i2]) ** 2 + (pxf[i1] - pxf[i2]) ** 2)
    border = (d2 - d1) / (2 * np.maximum(sep, 1e-6))  # exact distance to the bisector
    return i1, border.astype(np.float32), np.stack([pyf, pxf], 1)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _paper(rng: np.random.Generator, size: int, colour: str, grain: float) -> np.ndarray:
    """A flat colour with a little fibrous grain."""
    base = hex_colours([colour])[0]
    fine = _noise(rng, size, size / 3.0) - 0.5
    coarse = _noise(rng, size, 6, octaves=2) - 0.5
    return base[None, None, :] * (1 + grain * (fine + 0.6 * coarse))[..., None]


# ---------------------------------------------------------------------------------------------- styles

MOSAIC_PALETTE = ["#14213d", "#1d4e89", "#2a9d8f", "#8ab17d", "#e9c46a", "#f4a261", "#e76f51", "#9b2226",
                  "#f1e3c8"]


def _mosaic(rng: np.random.Generator, size: int) -> Image.Image:
    """Small irregular tiles in swirling bands of Mediterranean colours, light grout between them."""
    s = size / 512
    ids, border, seeds = _voronoi(rng, size, cell=15 * s, jitter=0.85)
    # colour each tile by a smooth field sampled at its seed: bands that follow contours
    field = _noise(rng, size, 3, octaves=3, persistence=0.55)
    sy = np.clip(seeds[:, 0].astype(np.int64), 0, size - 1)
    sx = np.clip(seeds[:, 1].astype(np.int64), 0, size - 1)
    v = field[sy, sx]
    pal = hex_colours(MOSAIC_PALETTE)
    band = (v * 2.0 * len(pal)).astype(np.int64) % len(pal)  # palette twice over the field's range
    flip = rng.random(len(v)) < 0.07  # a few stray tiles of a neighbouring colour
    band = np.where(flip, (band + rng.integers(1, len(pal), len(v))) % len(pal), band)
    tile = pal[band] * (0.86 + 0.24 * rng.random((len(v), 1), dtype=np.float32))
    rgb = tile[ids]
    # bevel: tiles darken slightly towards their edges, and a fine surface grain
    bevel = 0.78 + 0.22 * _smoothstep(0.0, 4.0 * s, border)
    grain = 1 + 0.06 * (_noise(rng, size, size / 4.0) - 0.5)
    rgb = rgb * (bevel * grain)[..., None]
    grout_col = hex_colours(["#d8d0c0"])[0] * (0.9 + 0.1 * _noise(rng, size, size / 6.0))[..., None]
    g = _smoothstep(1.1 * s, 2.0 * s, border)[..., None]
    return from_array(rgb * g + grout_col * (1 - g))


GLASS_PALETTE = ["#9b111e", "#c41e3a", "#0f52ba", "#1c39bb", "#046307", "#1b8a5a", "#ffb000", "#e8731a",
                 "#6a0dad", "#008b8b", "#f6d55c"]


def _stained_glass(rng: np.random.Generator, size: int) -> Image.Image:
    """Irregular panes of saturated jewel colours, glowing from within, held by thick dark leading."""
    s = size / 512
    warp = ((_noise(rng, size, 4, octaves=2) - 0.5) * 36 * s, (_noise(rng, size, 4, octaves=2) - 0.5) * 36 * s)
    ids, border, seeds = _voronoi(rng, size, cell=52 * s, jitter=0.95, warp=warp)
    pal = hex_colours(GLASS_PALETTE)
    # neighbouring panes rarely share a colour: pick per pane, weighted towards the deep blues and reds
    weights = np.array([3, 2, 3, 3, 2, 2, 2, 1.5, 2, 1.5, 1], np.float64)
    choice = rng.choice(len(pal), size=len(seeds), p=weights / weights.sum())
    pane = pal[choice] * (0.8 + 0.35 * rng.random((len(seeds), 1), dtype=np.float32))
    rgb = pane[ids]
    # glass: brighter in the middle of each pane, mottled, with streaks
    glow = 0.7 + 0.45 * _smoothstep(0.0, 22.0 * s, border)
    mottle = 0.82 + 0.36 * _noise(rng, size, 22, octaves=3, persistence=0.6)
    light = 0.85 + 0.3 * _noise(rng, size, 2)  # light falling unevenly across the window
    rgb = rgb * (glow * mottle * light)[..., None]
    rgb = rgb + 0.25 * (_smoothstep(0.55, 1.0, _noise(rng, size, 30)) * _smoothstep(8 * s, 18 * s, border))[..., None]
    lead = hex_colours(["#17120e"])[0]
    lw = 3.2 * s  # half the leading's width
    g = _smoothstep(lw, lw + 1.4 * s, border)[..., None]
    # a faint highlight on the lead's edge
    edge = np.exp(-((border - lw * 0.55) / (0.9 * s)) ** 2)[..., None] * 0.16
    out = rgb * g + (lead + edge) * (1 - g)
    return from_array(out)


BRUSH_PALETTE = ["#0d1b4c", "#1f3a93", "#2e64a8", "#5b8fc9", "#a7c7e7", "#f3e9c6", "#f2c84b", "#e09f2f",
                 "#3d7a55", "#16324f"]


def _brushstrokes(rng: np.random.Generator, size: int) -> Image.Image:
    """Thousands of short curved strokes following a smooth swirling field, in night blues and golds."""
    s = size / 512
    ss = 2  # supersampling for smooth stroke edges
    big = size * ss
    angle = _noise(rng, size, 2.5, octaves=2, persistence=0.45) * 4 * np.pi
    colour_field = _noise(rng, size, 2.2, octaves=3, persistence=0.5)
    pal = hex_colours(BRUSH_PALETTE)
    base = _ramp(colour_field, pal)
    canvas = from_array(base * 0.85, rounded=False).resize((big, big))
    draw = ImageDraw.Draw(canvas)

    n = int(11000 * s * s)
    pos = rng.random((n, 2)) * size  # y, x
    steps = 9
    step_len = rng.uniform(2.2, 3.6, n) * s
    pts = np.empty((n, 2 * steps + 1, 2))
    pts[:, steps] = pos
    for direction, rng_steps in ((1, range(steps + 1, 2 * steps + 1)), (-1, range(steps - 1, -1, -1))):
        p = pos.copy()
        for k in rng_steps:
            iy = np.clip(p[:, 0].astype(np.int64), 0, size - 1)
            ix = np.clip(p[:, 1].astype(np.int64), 0, size - 1)
            a = angle[iy, ix]
            p = p + direction * step_len[:, None] * np.stack([np.sin(a), np.cos(a)], 1)
            pts[:, k] = p
    iy = np.clip(pos[:, 0].astype(np.int64), 0, size - 1)
    ix = np.clip(pos[:, 1].astype(np.int64), 0, size - 1)
    col = _ramp(np.clip(colour_field[iy, ix] + rng.normal(0, 0.05, n), 0, 1), pal)
    col = np.clip(col * rng.uniform(0.88, 1.12, (n, 1)) + rng.normal(0, 0.03, (n, 3)), 0, 1)
    width = rng.uniform(3.0, 6.5, n) * s * ss
    length = rng.integers(steps // 2, steps + 1, n)  # strokes of different lengths
    for i in range(n):
        seg = pts[i, steps - length[i]: steps + length[i] + 1] * ss
        xy = [(float(x), float(y)) for y, x in seg]
        c = col[i]
        w = max(1, int(round(width[i])))
        draw.line(xy, fill=drawing_colour(c, 0.72), width=w + int(2 * ss * s), joint="curve")
        draw.line(xy, fill=drawing_colour(c), width=w, joint="curve")
        hl = drawing_colour(c * 1.12 + 0.08)
        hw = max(1, w // 3)
        draw.line([(x - 0.3 * w, y - 0.3 * w) for x, y in xy], fill=hl, width=hw, joint="curve")
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


HALFTONE_PALETTE = ["#f7f0df", "#ffd23f", "#ee4266", "#540d6e", "#3bceac", "#0ead69", "#1a659e"]


def _halftone(rng: np.random.Generator, size: int) -> Image.Image:
    """Cyan, magenta, yellow and black dot screens at the classic angles, dot size from a bold picture."""
    s = size / 512
    src = _ramp(_noise(rng, size, 2.5, octaves=2, persistence=0.4), hex_colours(HALFTONE_PALETTE))
    shade = _noise(rng, size, 3.5)
    src = src * (0.8 + 0.3 * shade)[..., None]
    cmy = 1 - np.clip(src, 0, 1)
    k = np.clip(cmy.min(axis=2) - 0.35, 0, 1) / 0.65
    cmy = cmy - cmy.min(axis=2, keepdims=True) * 0.7
    inks = [(cmy[..., 0], 15, "#00a3e0"), (cmy[..., 1], 75, "#e6007e"), (cmy[..., 2], 0, "#ffe600"), (k, 45, "#1b1b1b")]
    pitch = 11.0 * s
    yy, xx = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32), indexing="ij")
    out = _paper(rng, size, "#f8f4e8", 0.05)
    for amount, deg, ink in inks:
        th = np.deg2rad(deg)
        u = xx * np.cos(th) + yy * np.sin(th)
        v = -xx * np.sin(th) + yy * np.cos(th)
        cu = (np.floor(u / pitch) + 0.5) * pitch
        cv = (np.floor(v / pitch) + 0.5) * pitch
        dist = np.sqrt((u - cu) ** 2 + (v - cv) ** 2)
        # sample the channel at the dot centre (back to image coordinates)
        cx = np.clip((cu * np.cos(th) - cv * np.sin(th)).astype(np.int64), 0, size - 1)
        cy = np.clip((cu * np.sin(th) + cv * np.cos(th)).astype(np.int64), 0, size - 1)
        r = 0.6 * pitch * np.sqrt(np.clip(amount[cy, cx], 0, 1))
        mask = 1 - _smoothstep(-0.7 * s, 0.7 * s, dist - r)
        out = out * (1 - mask[..., None] * (1 - hex_colours([ink])[0]))
    return from_array(out)


GEOMETRIC_PALETTE = ["#d62828", "#f77f00", "#fcbf49", "#003049", "#1d70a2", "#2a9d8f", "#6a4c93", "#111111"]


def _geometric(rng: np.random.Generator, size: int) -> Image.Image:
    """A dense abstract composition in the manner of 1920s Bauhaus painting: concentric circles,
    black lines, triangles, arcs and small chequers on a warm, grainy ground."""
    s = size / 512
    ss = 2
    big = size * ss
    ground = _ramp(_noise(rng, size, 2, octaves=2), hex_colours(["#efe4cc", "#e8d5b0", "#f3ead7", "#d9c6a0"]))
    canvas = from_array(ground).resize((big, big), Image.Resampling.BICUBIC).convert("RGBA")
    pal = hex_colours(GEOMETRIC_PALETTE)

    def colour(alpha: int = 235) -> tuple[int, int, int, int]:
        c = pal[rng.integers(len(pal))] * rng.uniform(0.85, 1.05)
        return (*drawing_colour(c), alpha)

    def layer() -> tuple[Image.Image, ImageDraw.ImageDraw]:
        im = Image.new("RGBA", (big, big), (0, 0, 0, 0))
        return im, ImageDraw.Draw(im)

    u = ss * s
    for _ in range(4):  # layers, so shapes overlap translucently
        im, d = layer()
        for _ in range(5):  # translucent colour planes
            cx, cy = rng.uniform(0, big, 2)
            w, h = rng.uniform(60, 200, 2) * u
            rot = rng.uniform(0, np.pi)
            corners = [(-w, -h), (w, -h), (w, h), (-w, h)]
            poly = [(cx + x * np.cos(rot) - y * np.sin(rot), cy + x * np.sin(rot) + y * np.cos(rot))
                    for x, y in corners]
            d.polygon(poly, fill=colour(90))
        for _ in range(4):  # concentric circles
            cx, cy = rng.uniform(0, big, 2)
            r = rng.uniform(18, 80) * u
            rings = int(rng.integers(1, 5))
            for j in range(rings):
                rr = r * (1 - j / (rings + 0.5))
                d.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=colour(230))
            if rng.random() < 0.5:
                d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(17, 17, 17, 255), width=int(3 * u))
        for _ in range(3):  # triangles
            cx, cy = rng.uniform(0, big, 2)
            r = rng.uniform(25, 90) * u
            a0 = rng.uniform(0, 2 * np.pi)
            tri = [(cx + r * np.cos(a0 + k * 2.1 + rng.uniform(-0.3, 0.3)),
                    cy + r * np.sin(a0 + k * 2.1 + rng.uniform(-0.3, 0.3))) for k in range(3)]
            d.polygon(tri, fill=colour(225))
        for _ in range(2):  # chequers
            x0, y0 = rng.uniform(0, big, 2)
            cell = rng.uniform(7, 14) * u
            nx, ny = rng.integers(3, 7, 2)
            a, b = colour(240), (17, 17, 17, 240) if rng.random() < 0.6 else colour(240)
            for i in range(nx):
                for j in range(ny):
                    d.rectangle([x0 + i * cell, y0 + j * cell, x0 + (i + 1) * cell, y0 + (j + 1) * cell],
                                fill=a if (i + j) % 2 else b)
        for _ in range(3):  # arcs
            cx, cy = rng.uniform(0, big, 2)
            r = rng.uniform(30, 120) * u
            start = rng.uniform(0, 360)
            d.arc([cx - r, cy - r, cx + r, cy + r], start, start + rng.uniform(60, 200),
                  fill=colour(255), width=int(rng.uniform(2, 6) * u))
        for _ in range(7):  # straight black lines, some thick
            x0, y0 = rng.uniform(0, big, 2)
            a = rng.uniform(0, np.pi)
            L = rng.uniform(60, 300) * u
            wdt = int(rng.choice([1.5, 2.5, 4, 7]) * u)
            d.line([(x0, y0), (x0 + L * np.cos(a), y0 + L * np.sin(a))], fill=(17, 17, 17, 255), width=max(1, wdt))
        canvas = Image.alpha_composite(canvas, im)
    out = canvas.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    grain = 1 + 0.05 * (_noise(rng, size, size / 3.0) - 0.5)
    return from_array(to_array(out) * grain[..., None])


POINTILLIST_PALETTE = ["#1b3a6b", "#2f6fb0", "#6fb1e0", "#bfe3f0", "#fff1b5", "#ffc857", "#f08a4b", "#c8553d",
                       "#5c9e52", "#2d6a4f"]


def _pointillist(rng: np.random.Generator, size: int) -> Image.Image:
    """A field of small dabs of pure colour, neighbouring hues and complementary sparks side by side."""
    s = size / 512
    ss = 2
    big = size * ss
    field = _noise(rng, size, 2.5, octaves=3, persistence=0.5)
    pal = hex_colours(POINTILLIST_PALETTE)
    canvas = from_array(_paper(rng, size, "#efe6d2", 0.04)).resize((big, big))
    draw = ImageDraw.Draw(canvas)
    n = int(20000 * s * s)
    pos = rng.random((n, 2)) * size
    iy = np.clip(pos[:, 0].astype(np.int64), 0, size - 1)
    ix = np.clip(pos[:, 1].astype(np.int64), 0, size - 1)
    v = field[iy, ix] * (len(pal) - 1)
    idx = np.clip(np.round(v + rng.normal(0, 0.55, n)).astype(np.int64), 0, len(pal) - 1)  # neighbouring hues
    spark = rng.random(n) < 0.08
    idx = np.where(spark, (idx + len(pal) // 2) % len(pal), idx)  # complementary sparks
    col = np.clip(pal[idx] * rng.uniform(0.9, 1.1, (n, 1)), 0, 1)
    rad = rng.uniform(3.2, 5.0, n) * s * ss
    elong = rng.uniform(1.0, 1.5, n)
    for i in range(n):
        x, y = pos[i, 1] * ss, pos[i, 0] * ss
        rx, ry = rad[i] * elong[i], rad[i]
        draw.ellipse([x - rx, y - ry, x + rx, y + ry], fill=drawing_colour(col[i]))
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


_STYLES: dict[str, Callable[[np.random.Generator, int], Image.Image]] = {
    "mosaic": _mosaic,
    "stained_glass": _stained_glass,
    "brushstrokes": _brushstrokes,
    "halftone": _halftone,
    "geometric": _geometric,
    "pointillist": _pointillist,
}

#: The generated styles' names, in a stable order.
NAMES: tuple[str, ...] = tuple(_STYLES)

#: One line per style, for listings.
DESCRIPTIONS: dict[str, str] = {name: " ".join((fn.__doc__ or "").split("\n\n")[0].split())
                                for name, fn in _STYLES.items()}


def names() -> list[str]:
    """The generated styles' names."""
    return list(NAMES)


def generate_style(name: str, size: int = 512, seed: int = 0) -> Image.Image:
    """Make the generated style picture ``name`` as a ``size`` x ``size`` RGB PIL image.

    The same (name, size, seed) gives the same pixels. Raises ConfigError for an unknown name
    (with the closest suggestion), a size outside [MIN_SIZE, MAX_SIZE] or a negative seed.
    """
    fn = _STYLES.get(name)
    if fn is None:
        raise unknown_choice("generated style", name, NAMES)
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ConfigError(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE}, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    img = fn(rng, size)
    if img.size != (size, size):  # resampling rounding never changes the size, but be exact
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return img.convert("RGB")


def cached_picture(name: str, root: str | os.PathLike | None = None) -> Path:
    """The cached :data:`PICTURE_SIZE` px picture of generated style ``name`` (seed 0), made on first use (offline).

    It lives in ``<cache>/generated/v<VERSION>/<name>.png`` (``root`` replaces the cache folder). Raises
    ConfigError for an unknown name, InputError when the cache folder cannot be made.
    """
    if name not in NAMES:
        raise unknown_choice("generated style", name, NAMES)
    target = Path(root or cache_dir()) / "generated" / f"v{VERSION}" / f"{name}.png"
    if target.is_file():
        with contextlib.suppress(Exception):
            with Image.open(target) as img:
                if img.size == (PICTURE_SIZE, PICTURE_SIZE):
                    return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the cache folder {target.parent} ({exc.strerror}); "
                         f"set {CACHE_DIR_ENV} to a writable folder") from None
    save_image(generate_style(name, size=PICTURE_SIZE, seed=0), target, overwrite=True)
    return target
