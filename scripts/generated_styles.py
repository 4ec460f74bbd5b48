"""Write fastnst's code-generated style pictures as PNGs into a folder (and optionally a contact sheet).

    python scripts/generated_styles.py OUT_DIR [--size 512] [--seed 0] [--sheet SHEET.png]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fastnst.image import make_grid, save_image
from fastnst.styles.generated import NAMES, generate_style


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", type=Path, help="also write all styles side by side (256 px each) here")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for name in NAMES:
        t0 = time.perf_counter()
        img = generate_style(name, size=args.size, seed=args.seed)
        save_image(img, args.out_dir / f"{name}.png", overwrite=True)
        images.append(img.resize((256, 256)))
        print(f"{name:15s} {time.perf_counter() - t0:5.2f} s  {args.out_dir / (name + '.png')}", file=sys.stderr)
    if args.sheet:
        save_image(make_grid(images, ncols=3), args.sheet, overwrite=True)
    print(f"python {' '.join(sys.argv)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
