"""How fastnst writes PNG: zlib's run-length strategy (fastnst.image.PNG_ZLIB_STRATEGY) against Pillow's
default (zlib level 6, default strategy) and against level 1, by time and size, on the pictures fastnst
writes (photos stylised by the built-in network), the photos themselves, and a flat drawn graphic.

    .venv/bin/python scripts/bench_png.py --photos /work/data/sets/judge --sizes 512,1024 --repeats 5

Torch-free. Each image is encoded with the three settings in turn, ``--repeats`` rounds (interleaved); the
table gives the median milliseconds, the spread (min-max) and the size in KiB, and the ratio to Pillow's
default per image.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchutil  # noqa: E402
from fastnst.cpu import cpu  # noqa: E402
from fastnst.image import PNG_ZLIB_STRATEGY  # noqa: E402

SETTINGS = {
    "Pillow default (level 6)": {},
    "level 1": {"compress_level": 1},
    "run-length (fastnst)": {"compress_type": PNG_ZLIB_STRATEGY},
}


def drawn(side: int) -> Image.Image:
    """A flat graphic: rectangles and text on white (the worst case for run-length)."""
    img = Image.new("RGB", (side, side * 3 // 4), "white")
    draw = ImageDraw.Draw(img)
    for i in range(40):
        draw.rectangle([i * side // 50, i * side // 70, i * side // 50 + side // 5, i * side // 70 + side // 10],
                       fill=(i * 6, 100, 200 - i * 4))
        draw.text((10, i * 18), f"fastnst {i}", fill="black")
    return img


def pictures(photos: Path, sizes: list[int]) -> list[tuple[str, Image.Image]]:
    from fastnst.runtime import Stylizer

    stylizer = Stylizer(None)  # the built-in model, its default style
    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:3]
    out = []
    for size in sizes:
        for f in files:
            photo = Image.open(f).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
            out.append((f"{f.stem} {size}² stylised", stylizer.stylize(photo)))  # a PIL image in, a PIL image out
            out.append((f"{f.stem} {size}² photo", photo))
        out.append((f"drawn {size}x{size * 3 // 4}", drawn(size)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True, help="folder of held-out photos (the first 3 used)")
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"CPU: {cpu().describe()}; Pillow {Image.__version__}, zlib {zlib.ZLIB_RUNTIME_VERSION}")
    print(f"command: {benchutil.command_line()}\n")
    rows = pictures(args.photos, sizes)
    print(f"| image | {' | '.join(SETTINGS)} |")
    print(f"|---|{'---:|' * len(SETTINGS)}")
    for name, img in rows:
        times: dict[str, list[float]] = {k: [] for k in SETTINGS}
        size: dict[str, int] = {}
        for _ in range(args.repeats):
            for key, params in SETTINGS.items():
                buf = io.BytesIO()
                t = time.perf_counter()
                img.save(buf, format="PNG", **params)
                times[key].append(time.perf_counter() - t)
                size[key] = len(buf.getvalue())
        base_t, base_s = statistics.median(times["Pillow default (level 6)"]), size["Pillow default (level 6)"]
        cells = []
        for key in SETTINGS:
            med = statistics.median(times[key])
            cells.append(f"{med * 1000:.0f} ms [{min(times[key]) * 1000:.0f}–{max(times[key]) * 1000:.0f}] "
                         f"({med / base_t:.2f}×), {size[key] / 1024:.0f} KiB ({size[key] / base_s:.2f}×)")
        print(f"| {name} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
