"""Photos that installed packages ship, split into SR training photos and held-out test photos.

Used by scripts/bench_sr.py and to prepare a training folder:
    python scripts/sr_photos.py OUT_FOLDER      # copies the training photos (RGB PNG) into OUT_FOLDER
The held-out photos (HELD_OUT) are never copied: the benchmark measures on them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image

# scikit-image data photos (natural images; grey ones converted to RGB for training variety)
TRAIN_SKIMAGE = ("astronaut.png", "motorcycle_left.png", "motorcycle_right.png", "ihc.png", "retina.jpg",
                 "hubble_deep_field.jpg", "camera.png", "brick.png", "grass.png", "gravel.png", "moon.png",
                 "coins.png")
TRAIN_SKLEARN = ("flower.jpg",)
# held out: never in the training folder (the bundled fastnst/assets copies of chelsea/coffee/rocket neither)
HELD_OUT = (("skimage", "chelsea.png"), ("skimage", "coffee.png"), ("skimage", "rocket.jpg"),
            ("sklearn", "china.jpg"))


def _folder(kind: str) -> Path:
    if kind == "skimage":
        import skimage

        return Path(os.path.dirname(skimage.__file__)) / "data"
    import sklearn.datasets

    return Path(os.path.dirname(sklearn.datasets.__file__)) / "images"


def train_photos() -> list[Path]:
    return [_folder("skimage") / n for n in TRAIN_SKIMAGE] + [_folder("sklearn") / n for n in TRAIN_SKLEARN]


def held_out_photos() -> list[Path]:
    return [_folder(kind) / name for kind, name in HELD_OUT]


def write_train_folder(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in train_photos():
        target = out / (path.stem + ".png")
        Image.open(path).convert("RGB").save(target)
        written.append(target)
    return written


if __name__ == "__main__":
    files = write_train_folder(Path(sys.argv[1]))
    print(f"{len(files)} training photos in {sys.argv[1]}; held out: {', '.join(p.name for p in held_out_photos())}")
