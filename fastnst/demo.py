"""``fastnst demo``: the whole pipeline on the bundled photos — train briefly, export, verify, stylise.

:func:`run_demo` trains the fast network for a few dozen steps on ``fastnst/assets``'s photos, exports
and verifies the ONNX model (once: the verification travels in the model's metadata), and stylises
the photos with onnxruntime into ``<out>/stylized``. The result shows the pipeline, not a finished style.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastnst.constants import ASSETS_DIR
from fastnst.errors import InputError, OutputExistsError
from fastnst.options import check_options, option

log = logging.getLogger(__name__)

# Demo training settings, far shorter than configs/cpu-quick.yaml. Chosen: the fast preset, 96-px crops,
# batch 2, 40 steps; measured about 1.5 minutes for the whole demo on 2 shared CPU cores (60 steps at
# 128 px took 3.7 minutes).
DEMO_SETTINGS: dict[str, Any] = {"arch": "fast", "image_size": 96, "batch_size": 2, "steps": 40,
                                 "preview_every": 0, "checkpoint_every": 1000, "num_previews": 0,
                                 "num_workers": 0}


@dataclass
class DemoOptions:
    """``fastnst demo``'s options."""

    out: str = option("fastnst-demo", "output folder")
    vgg_weights: str | None = option(None, "imagenet | random | PATH (default: $FASTNST_VGG_WEIGHTS or imagenet)")
    steps: int = option(DEMO_SETTINGS["steps"], "training steps", low=1, high=100_000)
    image_size: int = option(DEMO_SETTINGS["image_size"], "training crop size", low=32, high=1024)
    overwrite: bool = option(False, "replace an earlier demo in --out")


@dataclass
class DemoResult:
    """Where the demo put its files, and what it measured."""

    weights: Path
    onnx: Path
    verified_error: float | None
    metrics: Path | None
    folder: Path
    stylized: list[Path]
    seconds: float

    def lines(self) -> list[str]:
        """The summary ``fastnst demo`` prints."""
        error = f"max |onnxruntime - torch| = {self.verified_error:.1e}" if self.verified_error is not None else "yes"
        out = [f"demo finished in {self.seconds:.0f} s", f"  trained weights  {self.weights}",
               f"  ONNX model       {self.onnx} (verified: {error})"]
        if self.metrics:
            out.append(f"  training log     {self.metrics}")
        out.append(f"  stylised photos  {self.folder}/ ({len(self.stylized)} images)")
        out.append(f"next: fastnst stylize --model {self.onnx} YOUR_PHOTO.jpg -o styled.jpg")
        return out


def demo_assets() -> tuple[list[Path], Path]:
    """(content photos, style image) shipped in fastnst/assets."""
    contents = sorted(ASSETS_DIR.glob("content-*.jpg"))
    styles = sorted(ASSETS_DIR.glob("style-*.jpg"))
    if not contents or not styles:
        raise InputError(f"the demo images are missing from '{ASSETS_DIR}'; reinstall fastnst")
    return contents, styles[0]


def run_demo(options: DemoOptions | None = None) -> DemoResult:
    """Train, export, verify and stylise into ``options.out``; see the module. A finished demo (or other
    files) in the folder needs ``overwrite``; the leftovers of a demo that failed half-way are redone."""
    opts = check_options(options or DemoOptions())
    out = Path(opts.out).expanduser()
    contents, style = demo_assets()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out '{out}' is a file; pass a folder")
    style_name = style.name.removeprefix("style-")
    own = {"photos", "model", "stylized", style_name}
    finished = (out / "stylized").is_dir() and any((out / "stylized").iterdir())
    foreign = out.is_dir() and any(p.name not in own for p in out.iterdir())
    if (finished or foreign) and not opts.overwrite:
        raise OutputExistsError(f"'{out}' already holds a demo; pass --overwrite or another --out" if finished else
                                f"'{out}' holds other files; pass --overwrite or another --out")
    if not out.parent.exists():
        raise InputError(f"cannot create '{out}': '{out.parent}' does not exist")
    from fastnst.networks.vgg import check_weights

    check_weights(opts.vgg_weights, "vgg16")  # missing or unreadable VGG weights: before anything is created

    from fastnst.image import save_image
    from fastnst.models import verified_error
    from fastnst.runtime import Stylizer
    from fastnst.training.run import run_training

    t0 = time.perf_counter()
    out.mkdir(exist_ok=True)
    photos = out / "photos"
    if photos.exists():
        shutil.rmtree(photos)
    photos.mkdir()
    for c in contents:
        shutil.copy2(c, photos / c.name.removeprefix("content-"))
    style_copy = out / style_name
    shutil.copy2(style, style_copy)
    settings = dict(DEMO_SETTINGS, steps=opts.steps, image_size=opts.image_size)
    log.info("training the '%s' network on %d photos for %d steps (%d-px crops) with style %s ...",
             settings["arch"], len(contents), settings["steps"], settings["image_size"], style_copy.name)
    result = run_training(style_copy, str(photos), out / "model", vgg_weights=opts.vgg_weights,
                          overwrite=True, enable_progress_bar=sys.stderr.isatty(), **settings)
    onnx_path = result.onnx
    if onnx_path is None:  # the automatic export failed (it was logged): export here, errors are fatal
        from fastnst.training.export import export_onnx

        onnx_path = export_onnx(result.weights, result.weights.with_suffix(".onnx"), overwrite=True)
    stylizer = Stylizer(onnx_path, providers="cpu")
    results = out / "stylized"
    results.mkdir(exist_ok=True)
    written = [save_image(stylizer.stylize(photo), results / f"{photo.stem}-{style_copy.stem}.jpg", overwrite=True)
               for photo in sorted(photos.iterdir())]
    return DemoResult(Path(result.weights), Path(onnx_path), verified_error(stylizer.metadata),
                      Path(result.metrics) if result.metrics else None, results, written, time.perf_counter() - t0)


__all__ = ["DemoOptions", "DemoResult", "run_demo", "demo_assets", "DEMO_SETTINGS"]
