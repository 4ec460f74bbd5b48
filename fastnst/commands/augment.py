"""``fastnst augment``: parse, call :func:`fastnst.augment.augment`, print. Torch-free."""

from __future__ import annotations

import sys

from fastnst.commands.common import Parser, Progress, add_options, chosen

EXAMPLES = """examples:
  fastnst augment photos/ -o stylized/                          (every built-in style, equally likely)
  fastnst augment photos.parquet -o stylized/ --styles mosaic,pointillist,stained_glass --strength 0.6,1
  fastnst augment data/*.parquet -o stylized/ --styles 'mosaic:3,halftone:1' --seed 7 --max-size 512
  fastnst augment owner/dataset -o stylized/ --split validation --column image
  fastnst augment photos.parquet -o stylized/ --engine ray                 (a local Ray, one worker per CPU)
  RAY_ADDRESS=10.0.0.5:6379 fastnst augment /shared/photos.parquet -o /shared/stylized/ --engine ray
  fastnst augment photos.parquet -o stylized/ --resume          (after a kill: finishes the job, same result)

A row's style and strength come from --seed and the row's identity (its path, or file#row), so a job gives
the same output on any engine and any number of workers. Rows that cannot be read are listed in
DEST/errors.jsonl; DEST/augment.json records what was done.
"""


def main(argv: list[str]) -> int:
    """``fastnst augment``; returns 0 when the job finished (unreadable rows are recorded, not fatal)."""
    from fastnst.augment import AugmentOptions, augment

    p = Parser(prog="fastnst augment", epilog=EXAMPLES,
               description="Stylise every image of a dataset (a folder, parquet files or a Hugging Face dataset), "
                           "each with a style and strength drawn per row, on this machine or a Ray cluster.")
    p.add_argument("source", metavar="SOURCE", help="a folder of images, parquet files (file, folder or glob), "
                                                    "or a Hugging Face dataset id")
    add_options(p, AugmentOptions, output={"required": True})
    args = p.parse_args(argv)
    progress = Progress("", timing=False)
    try:
        report = augment(args.source, options=AugmentOptions(**chosen(args, AugmentOptions)),
                         progress=progress.update)
    finally:
        progress.close()
    print("\n".join(report.lines), file=sys.stderr)
    return 0
