#!/usr/bin/env python3
"""Quality benchmark on held-out judging photos with the real (imported) VGG weights.

  # a trained model (.onnx, .safetensors or .ckpt; one style or several) against Gatys on the judging photos
  python scripts/bench_quality.py judge --model builtin.onnx --vgg16 vgg16-caffe.safetensors \\
      [--style NAME=PICTURE ...] [--photos building horse ...] [--out DIR] [--json FILE]

  # Gatys itself: speckle, edges, bright regions and the loss curve, per style picture and photo
  python scripts/bench_quality.py gatys --vgg19 vgg19-caffe.safetensors --style a.jpg b.jpg ... [--set k=v ...]

  # one loss scale: weighted style/content ratio at the first and last Gatys iteration, per weight set
  python scripts/bench_quality.py balance --vgg16 vgg16-caffe.safetensors --vgg19 vgg19-caffe.safetensors

  # picture measures only (bright regions, edges, speckle; no losses, no Gatys; torch not needed to run the
  # models): every built-in style and the shipped paintings on the universal model, on the judging photos
  python scripts/bench_quality.py bright [--photos building leuvenA ...] [--style NAME ...] [--out sheet.png]

  # Gatys at several style weights on one photo (a sheet)
  python scripts/bench_quality.py sweep --vgg19 vgg19-caffe.safetensors --style mosaic.png

From Python (the interface other scripts use; stable): ``score_model(model, styles, vgg16=...)`` returns one
row (a dict of measures) per style and photo, ``summarize(rows)`` one row per style, ``print_report(rows)``
the tables. The measures (all on the output at the judging size, default 256 px long side):

- ``net_total``/``net_style``/``net_content``: the perceptual loss of the output with the model's own loss
  (VGG16, Johnson's layers, the weights recorded in the model), and ``gatys_<N>_total``/``_style``: the same
  loss of Gatys' optimisation (same VGG, layers, weights, style picture at the training scale; init from the
  photo) after N L-BFGS iterations (default 50, 100, 300; Johnson et al. Fig. 5). ``vs_gatys100`` is
  net_total / gatys_100_total, ``style_vs_gatys100`` the same for the style term, ``lands`` where the network
  falls among the Gatys counts. The Gatys runs are cached (``--cache``; default ``~/.cache/fastnst/bench-quality``).
- ``edge``: Pearson correlation of the luminance gradient magnitude (Sobel, after a 1-px Gaussian blur) of the
  output with the photo's: 1 = the photo's edges are all there, 0 = the photo is gone.
- ``checker2``/``checker4``: spectral energy share at periods 2 and 4 (transposed-convolution and up-sampling
  artefacts), relative to the photo's (1 = as much as the photo).
- ``bright_chroma``: mean CIELAB chroma C* of the output where the photo is near-white (L* >= 70, C* <= 12:
  clouds, white walls), and ``bright_pink``: the share of those pixels that came out pink or magenta
  (C* >= 8, hue 290..40 deg). The Gatys result's values (``_gatys`` suffix) say how much colour the style
  itself puts there. NaN when the photo has less than 0.5% near-white pixels.
- ``speckle``: pixel-scale noise, the mean squared difference between the image and its 3x3 median (RGB,
  0..255 scale), relative to the photo's (1 = as grainy as the photo).

Runs single-threaded by default (``--threads``): on a shared 2-core machine OpenMP barriers of two threads
stall under load (measured 5-10x slower). Get the VGG weights offline: ``fastnst vgg import`` (README).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fastnst.constants import JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS, cache_dir  # noqa: E402
from fastnst.image import resize, to_pil, to_tensor  # noqa: E402

#: The judging set (held out: never trained or tuned on); scripts/build_datasets.py judge builds it.
JUDGE_DIR = Path(os.environ.get("FASTNST_JUDGE_DIR", "/work/data/sets/judge"))
#: Default judging photos: white walls (building), sky and snow (horse), an overcast sky (leuvenA), clouds in a
#: blue sky (home), a person (messi5).
DEFAULT_PHOTOS = ("building", "horse", "leuvenA", "home", "messi5")
JUDGE_SIZE = 256          # long side the model and Gatys run at (the networks' training crop size)
GATYS_MARKS = (50, 100, 300)
STYLE_SIDE = 512          # the training default: the style picture's long side, at most 512
CACHE_VERSION = 1         # bump when the Gatys reference changes meaning
# The built-in network's style names -> their pictures (scripts/train_on_device.py's BUILTIN_STYLES).
PAINTINGS_DIR = Path(os.environ.get("FASTNST_PAINTINGS_DIR", "/work/data/sets/paintings"))

ImageLike = Union[str, os.PathLike, Image.Image]
ModelLike = Union[str, os.PathLike, Callable[[Image.Image, Union[str, None]], Image.Image]]


# ------------------------------------------------------------------------------------------------ inputs

def judge_photos(names: Sequence[str] | None = None, size: int = JUDGE_SIZE) -> dict[str, Image.Image]:
    """The judging photos ``names`` (stems in :data:`JUDGE_DIR`, or file paths), resized to long side ``size``."""
    out: dict[str, Image.Image] = {}
    for name in names or DEFAULT_PHOTOS:
        path = Path(name) if Path(name).suffix else JUDGE_DIR / f"{name}.jpg"
        if not path.is_file():
            raise SystemExit(f"judging photo '{name}' not found ({path}); set FASTNST_JUDGE_DIR or pass files")
        out[path.stem] = resize(Image.open(path).convert("RGB"), long_edge=size)
    return out


def builtin_pictures() -> dict[str, str]:
    """The GPU-trained built-in network's style names -> their style pictures (files or generated names)."""
    from train_on_device import BUILTIN_NAMES, BUILTIN_STYLES

    return {n: str(PAINTINGS_DIR / s) if s.endswith(".jpg") else s for n, s in zip(BUILTIN_NAMES, BUILTIN_STYLES)}


def smooth_gradient(size: int = 512) -> Image.Image:
    """A style picture with no texture at all: a smooth sunset-coloured gradient (the hardest case for the balance
    of content and style: matching it means removing the photo's texture)."""
    y, x = (np.mgrid[0:size, 0:size] / size)[:, :, :, None]
    top = (1 - x) * np.array([0.98, 0.55, 0.25]) + x * np.array([0.95, 0.85, 0.5])
    img = (1 - y) * top + y * np.array([0.25, 0.2, 0.6])
    return Image.fromarray((img * 255 + 0.5).astype(np.uint8), "RGB")


def load_picture(spec: ImageLike) -> Image.Image:
    """A style picture: a PIL image, a file, 'gradient' (:func:`smooth_gradient`), 'skimage:NAME' (a picture
    scikit-image ships), or a style name fastnst knows (generated, painting)."""
    if isinstance(spec, Image.Image):
        return spec.convert("RGB")
    if str(spec) == "gradient":
        return smooth_gradient()
    if str(spec).startswith("skimage:"):
        import skimage

        spec = Path(skimage.__file__).parent / "data" / str(spec)[len("skimage:"):]
    if not Path(spec).is_file():
        from fastnst.styles.registry import resolve_style

        spec = resolve_style(str(spec))
    return Image.open(spec).convert("RGB")


# ------------------------------------------------------------------------------------------------ measures

def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), np.float64) / 255.0


def to_lab(img: Image.Image) -> np.ndarray:
    """CIELAB (D65) of an sRGB image, HxWx3 (L* 0..100)."""
    c = _rgb(img)
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-d array (reflect borders)."""
    r = max(1, int(3 * sigma + 0.5))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    p = np.pad(x, r, mode="reflect")
    p = sum(k[i] * p[:, i:i + x.shape[1]] for i in range(2 * r + 1))
    return sum(k[i] * p[i:i + x.shape[0], :] for i in range(2 * r + 1))


def _gradient(y: np.ndarray) -> np.ndarray:
    p = np.pad(y, 1, mode="reflect")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return np.hypot(gx, gy)


def edge_correlation(output: Image.Image, photo: Image.Image) -> float:
    """Pearson correlation of the Sobel gradient magnitudes (luminance, 1-px blur) of ``output`` and ``photo``."""
    a, b = (_gradient(_blur(to_lab(im)[..., 0], 1.0)).ravel() for im in (output, photo.resize(output.size)))
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / max(math.sqrt((a * a).sum() * (b * b).sum()), 1e-30))


def checkerboard_energy(img: Image.Image) -> dict[int, float]:
    """Energy of the luminance spectrum at periods 2 and 4 (the frequencies of transposed-conv and
    up-sampling artefacts), horizontally and vertically, as a share of the total AC energy."""
    y = np.asarray(img.convert("L"), np.float64) / 255.0
    y = y - y.mean()
    spec = np.abs(np.fft.fft2(y)) ** 2
    h, w = y.shape
    total = spec.sum() - spec[0, 0]
    out = {}
    for period in (2, 4):
        fy, fx = round(h / period), round(w / period)
        e = 0.0
        for dy in (-1, 0, 1):  # a 3-bin neighbourhood around the peak (sizes need not divide evenly)
            for dx in (-1, 0, 1):
                e += spec[(fy + dy) % h, dx % w] + spec[dy % h, (fx + dx) % w] + spec[(fy + dy) % h, (fx + dx) % w]
        out[period] = float(e / max(total, 1e-30))
    return out


BRIGHT_L, BRIGHT_C = 70.0, 12.0       # near-white in the photo: L* >= 70 and chroma <= 12
# pink/magenta in the output: chroma >= 8 (visible on white; the old built-ins' faint pink clouds), hue 290..0..40
PINK_C, PINK_HUE = 8.0, (290.0, 40.0)
MIN_BRIGHT_SHARE = 0.005


def bright_mask(photo: Image.Image) -> np.ndarray:
    """Where ``photo`` is near-white (L* >= 70, C* <= 12): clouds, overcast sky, white walls, snow."""
    lab = to_lab(photo)
    return (lab[..., 0] >= BRIGHT_L) & (np.hypot(lab[..., 1], lab[..., 2]) <= BRIGHT_C)


def bright_region(output: Image.Image, photo: Image.Image) -> dict[str, float]:
    """``bright_chroma`` (mean C* of ``output`` where the photo is near-white) and ``bright_pink`` (share of
    those pixels that are pink/magenta in the output); NaN when the photo has too few near-white pixels."""
    mask = bright_mask(photo.resize(output.size))
    if mask.mean() < MIN_BRIGHT_SHARE:
        return {"bright_chroma": float("nan"), "bright_pink": float("nan")}
    lab = to_lab(output)[mask]
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    hue = np.degrees(np.arctan2(lab[:, 2], lab[:, 1])) % 360
    pink = (chroma >= PINK_C) & ((hue >= PINK_HUE[0]) | (hue <= PINK_HUE[1]))
    return {"bright_chroma": float(chroma.mean()), "bright_pink": float(pink.mean())}


def _median3(x: np.ndarray) -> np.ndarray:
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    h, w = x.shape[:2]
    return np.median(np.stack([p[i:i + h, j:j + w] for i in range(3) for j in range(3)]), axis=0)


def speckle_energy(img: Image.Image) -> float:
    """Mean squared difference between ``img`` and its 3x3 median filter (RGB, 0..255 scale): pixel-scale noise."""
    x = _rgb(img) * 255.0
    return float(((x - _median3(x)) ** 2).mean())


def image_measures(output: Image.Image, photo: Image.Image, photo_speckle: float | None = None,
                   photo_checker: Mapping[int, float] | None = None) -> dict[str, float]:
    """Every picture measure of ``output`` for ``photo`` (see the module doc), without losses."""
    checker_o = checkerboard_energy(output)
    checker_p = photo_checker or checkerboard_energy(photo.resize(output.size))
    speck_p = photo_speckle if photo_speckle is not None else speckle_energy(photo.resize(output.size))
    return {"edge": edge_correlation(output, photo),
            "checker2": checker_o[2] / max(checker_p[2], 1e-30), "checker4": checker_o[4] / max(checker_p[4], 1e-30),
            **bright_region(output, photo),
            "speckle": speckle_energy(output) / max(speck_p, 1e-30)}


# ------------------------------------------------------------------------------------------------ models

class _Runner:
    """A model as ``run(photo, style_name) -> PIL``, its style names and its loss settings (metadata)."""

    def __init__(self, model: ModelLike, threads: int) -> None:
        self.meta: dict[str, Any] = {}
        self.styles: list[str | None] = [None]
        self.name = getattr(model, "__name__", "model")
        if callable(model) and not isinstance(model, (str, os.PathLike)):
            self.run = model
            return
        path = Path(model)
        self.name = path.stem
        if path.suffix == ".onnx":
            from fastnst.runtime.stylizer import Stylizer

            st = Stylizer(path, threads=threads)
            self.meta = dict(st.model.metadata)
            names = json.loads(self.meta.get("fastnst_styles", "null") or "null")
            if names:
                self.styles = list(names)
            self.run = lambda img, style: st.stylize(img, style=style) if style else st.stylize(img)
        else:
            from fastnst.training.weights import load_transformer

            net, meta = load_transformer(path)
            self.meta = dict(meta)
            if net.num_styles > 1:
                self.styles = list(net.style_names)

            def run(img: Image.Image, style: str | None) -> Image.Image:
                x = to_tensor(img)
                with torch.no_grad():
                    y = net(x, net.style_weights(style, 1)) if net.num_styles > 1 else net(x)
                return to_pil(y.clamp(0, 1))
            self.run = run

    def weights(self) -> dict[str, float]:
        def get(key: str, default: float) -> float:
            value = self.meta.get(key)
            return float(json.loads(value)) if isinstance(value, str) else float(value) if value is not None \
                else default
        return {"content_weight": get("content_weight", 1.0), "style_weight": get("style_weight", 1.0),
                "tv_weight": get("tv_weight", 0.0)}

    def style_side(self) -> int | None:
        value = self.meta.get("style_size")
        try:
            return int(json.loads(value)) if isinstance(value, str) and value not in ("null", "") else None
        except ValueError:
            return None


# ------------------------------------------------------------------------------------------------ Gatys reference

def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.tobytes() if isinstance(p, Image.Image) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"|")
    return h.hexdigest()[:20]


def gatys_reference(photo: Image.Image, style: Image.Image, *, vgg: str, weights: Mapping[str, float],
                    style_side: int, marks: Sequence[int] = GATYS_MARKS, net: str = "vgg16",
                    layers: Mapping[str, Sequence[str]] | None = None, init: str = "content",
                    cache: Path | None = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Gatys' optimisation of ``photo`` (at its size) toward ``style`` (long side ``style_side``) with the loss
    ``weights`` (content/style/tv) on ``net`` (Johnson's VGG16 layers unless ``layers``): the loss terms of the
    best image after each of ``marks`` iterations and the images there. Cached in ``cache`` (None: no cache).
    ``extra``: further :func:`fastnst.optimize.gatys_result` options (they enter the cache key)."""
    from fastnst.optimize import gatys_result

    layers = dict(layers or {"content_layers": JOHNSON_CONTENT_LAYERS, "style_layers": JOHNSON_STYLE_LAYERS})
    style_img = resize(style, long_edge=style_side)
    marks = sorted(set(int(m) for m in marks))
    key = _digest(CACHE_VERSION, photo, style_img, Path(vgg).name, net, dict(weights), layers, init, marks,
                  dict(extra or {}))
    folder = cache / key if cache is not None else None
    if folder is not None and (folder / "result.json").is_file():
        res = json.loads((folder / "result.json").read_text())
        res["images"] = {int(m): Image.open(folder / f"gatys-{m}.png").convert("RGB") for m in res["marks"]}
        return res
    trace: list[dict[str, float]] = []
    images: dict[int, Image.Image] = {}
    best: list[Any] = [math.inf, None]

    def cb(step: Any) -> None:
        trace.append({k: float(v) for k, v in step.terms.items() if "/" not in k})
        if trace[-1]["total"] < best[0]:  # the image optimised in place: render the best one when it is best
            best[0], best[1] = trace[-1]["total"], step.image()
        if step.iteration in marks:
            images[step.iteration] = best[1]

    t0 = time.perf_counter()
    gatys_result(photo, style_img, net=net, vgg_weights=vgg, size=max(photo.size), iterations=marks[-1], init=init,
                 style_scale=style_side / max(photo.size), seed=0, callback=cb, **layers, **dict(weights),
                 **dict(extra or {}))
    seconds = time.perf_counter() - t0
    res: dict[str, Any] = {"marks": marks, "seconds": seconds, "trace": [t["total"] for t in trace]}
    for m in marks:
        upto = trace[:m]
        i = int(np.argmin([t["total"] for t in upto]))
        res[str(m)] = upto[i]
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for m, im in images.items():
            im.save(folder / f"gatys-{m}.png")
        (folder / "result.json").write_text(json.dumps(res))
    res["images"] = images
    return res


# ------------------------------------------------------------------------------------------------ scoring

def score_model(model: ModelLike, styles: Mapping[str, ImageLike] | ImageLike | None = None, *,
                vgg16: str, photos: Sequence[str] | None = None, size: int = JUDGE_SIZE,
                gatys_iterations: Sequence[int] = GATYS_MARKS, style_side: int | None = None,
                weights: Mapping[str, float] | None = None, cache: str | os.PathLike | None = "default",
                out_dir: str | os.PathLike | None = None, threads: int = 1,
                log: Callable[[str], None] | None = None, gatys_init: str = "content") -> list[dict[str, Any]]:
    """Score ``model`` on the judging photos: one row of measures per (style, photo), see the module doc.

    ``model``: an .onnx / .safetensors / .ckpt path, or a callable ``(photo, style_name) -> PIL image``.
    ``styles``: ``{style name: picture}`` (a file, a PIL image or a fastnst style name) for the styles to judge
    (a multi-style model's names; for the GPU-trained built-in network they default to its pictures), or one
    picture for a single-style model. ``weights``: the loss weights (default: the model's metadata, else content
    1, style 1, tv 0); ``style_side``: the style picture's long side (default: the model's ``style_size``, else
    min(512, the picture's)). ``out_dir``: write a sheet per style (photo | Gatys@100 | Gatys@300 | model).
    ``gatys_init``: where Gatys starts: content (fastnst gatys' default; the stronger reference) or noise (Gatys
    et al.'s white noise).
    """
    torch.set_num_threads(threads)
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    runner = _Runner(model, threads)
    if styles is None:
        if runner.styles == [None]:
            raise SystemExit("a single-style model needs its style picture (--style PICTURE)")
        known = builtin_pictures()
        styles = {n: known.get(n, n) for n in runner.styles}
    if not isinstance(styles, Mapping):
        styles = {runner.styles[0] if runner.styles != [None] else "style": styles}
    for name in styles:
        if runner.styles != [None] and name not in runner.styles:
            raise SystemExit(f"the model has no style '{name}' (it has {', '.join(map(str, runner.styles))})")
    w = dict(weights or runner.weights())
    cache_path = (cache_dir() / "bench-quality") if cache == "default" else (Path(cache) if cache else None)
    judged = judge_photos(photos, size)
    from fastnst.losses import PerceptualLoss
    from fastnst.networks.vgg import VGGFeatures

    vgg = VGGFeatures(tuple(dict.fromkeys(JOHNSON_CONTENT_LAYERS + JOHNSON_STYLE_LAYERS)), "vgg16", weights=vgg16,
                      normalize="rms")
    marks = sorted(set(int(m) for m in gatys_iterations))
    rows: list[dict[str, Any]] = []
    for sname, spec in styles.items():
        picture = load_picture(spec)
        side = style_side or runner.style_side() or min(STYLE_SIDE, max(picture.size))
        loss = PerceptualLoss(vgg, JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS, w["content_weight"],
                              w["style_weight"], w["tv_weight"])
        loss.set_style(to_tensor(resize(picture, long_edge=side)))
        sheet_rows = []
        for pname, photo in judged.items():
            t0 = time.perf_counter()
            out = runner.run(photo, sname if runner.styles != [None] else None)
            t_net = time.perf_counter() - t0
            with torch.no_grad():
                terms = loss(to_tensor(out), to_tensor(photo))
            ref = gatys_reference(photo, picture, vgg=vgg16, weights=w, style_side=side, marks=marks,
                                  cache=cache_path, init=gatys_init)
            row: dict[str, Any] = {"model": runner.name, "style": sname, "photo": pname, "size": size,
                                   "gatys_init": gatys_init,
                                   "net_total": float(terms["total"]), "net_style": float(terms["style"]),
                                   "net_content": float(terms.get("content", 0.0)), "net_seconds": t_net}
            for m in marks:
                row[f"gatys_{m}_total"] = ref[str(m)]["total"]
                row[f"gatys_{m}_style"] = ref[str(m)]["style"]
            ref_mark = 100 if 100 in marks else marks[len(marks) // 2]
            row["vs_gatys100"] = row["net_total"] / max(row[f"gatys_{ref_mark}_total"], 1e-30)
            row["style_vs_gatys100"] = row["net_style"] / max(row[f"gatys_{ref_mark}_style"], 1e-30)
            row["lands"] = _lands(row["net_total"], {m: row[f"gatys_{m}_total"] for m in marks})
            p_speck = speckle_energy(photo)
            p_check = checkerboard_energy(photo)
            row.update(image_measures(out, photo, p_speck, p_check))
            g = ref["images"][marks[-1]]
            row.update({f"{k}_gatys": v for k, v in image_measures(g, photo, p_speck, p_check).items()})
            row["gatys_seconds"] = ref["seconds"]
            rows.append(row)
            sheet_rows.append([photo, ref["images"][ref_mark], g, out])
            log(f"{runner.name} {sname} {pname}: net {row['net_total']:.4g} gatys{ref_mark} "
                f"{row[f'gatys_{ref_mark}_total']:.4g} edge {row['edge']:.2f} bright_pink {row['bright_pink']:.2f} "
                f"speckle {row['speckle']:.2f}")
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            contact_sheet(sheet_rows).save(Path(out_dir) / f"judge-{runner.name}-{sname}.png")
    return rows


def _lands(value: float, at: Mapping[int, float]) -> str:
    marks = sorted(at)
    if value >= at[marks[0]]:
        return f">{marks[0]}" if value > at[marks[0]] else f"={marks[0]}"
    if value <= at[marks[-1]]:
        return f"<{marks[-1]}"
    lo = max(m for m in marks if at[m] >= value)
    hi = min(m for m in marks if at[m] < value)
    return f"{lo}-{hi}"


def contact_sheet(rows: Sequence[Sequence[Image.Image]], tile: int | None = None) -> Image.Image:
    """Rows of images side by side (each resized to the first image's height of its row)."""
    rendered = []
    for row in rows:
        h = tile or row[0].size[1]
        rendered.append([im.resize((round(im.size[0] * h / im.size[1]), h)) for im in row])
    width = max(sum(im.size[0] for im in r) for r in rendered)
    sheet = Image.new("RGB", (width, sum(r[0].size[1] for r in rendered)), "white")
    y = 0
    for r in rendered:
        x = 0
        for im in r:
            sheet.paste(im, (x, y))
            x += im.size[0]
        y += r[0].size[1]
    return sheet


SUMMARY_KEYS = ("vs_gatys100", "style_vs_gatys100", "edge", "edge_gatys", "checker2", "checker4", "bright_chroma",
                "bright_chroma_gatys", "bright_pink", "bright_pink_gatys", "speckle", "speckle_gatys")


def summarize(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, style): the mean of each measure over the photos (NaNs left out), and where the
    network lands among the Gatys counts on most photos."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["style"]), []).append(r)
    out = []
    for (model, style), rs in groups.items():
        s: dict[str, Any] = {"model": model, "style": style, "photos": len(rs)}
        for k in SUMMARY_KEYS:
            vals = [float(r[k]) for r in rs if k in r and not math.isnan(float(r[k]))]
            s[k] = sum(vals) / len(vals) if vals else float("nan")
        lands = [r["lands"] for r in rs]
        s["lands"] = max(set(lands), key=lands.count)
        out.append(s)
    return out


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A markdown table."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.3g}"
        return str(v)
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h)) for i, h in enumerate(header)]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells])


def print_report(rows: Sequence[Mapping[str, Any]], marks: Sequence[int] = GATYS_MARKS) -> None:
    """The per-photo table and the per-style summary of :func:`score_model`'s rows, as markdown."""
    marks = sorted(marks)
    head = ["style", "photo", "net"] + [f"gatys{m}" for m in marks] + ["lands", "style/g100", "edge", "edge g",
                                                                      "chk2", "bright C", "C g", "pink", "pink g",
                                                                      "speckle", "speckle g"]
    body = [[r["style"], r["photo"], r["net_total"]] + [r[f"gatys_{m}_total"] for m in marks] +
            [r["lands"], r["style_vs_gatys100"], r["edge"], r["edge_gatys"], r["checker2"], r["bright_chroma"],
             r["bright_chroma_gatys"], r["bright_pink"], r["bright_pink_gatys"], r["speckle"],
             r["speckle_gatys"]] for r in rows]
    print(table(body, head))
    print()
    summary = summarize(rows)
    print(table([[s["model"], s["style"], s["photos"]] + [s[k] for k in SUMMARY_KEYS] + [s["lands"]]
                 for s in summary], ["model", "style", "photos"] + list(SUMMARY_KEYS) + ["lands"]))


def _command() -> str:
    return "python scripts/bench_quality.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _style_specs(specs: Sequence[str], multi: bool) -> dict[str, str] | str | None:
    """``--style`` values: NAME[=PICTURE] ... for a multi-style model (default pictures: the built-in network's),
    one PICTURE for a single-style model."""
    if not specs:
        return None
    if not multi:
        if len(specs) != 1:
            raise SystemExit("a single-style model takes one --style PICTURE")
        return specs[0]
    out = {}
    for s in specs:
        name, _, pic = s.partition("=")
        out[name] = pic or builtin_pictures().get(name, name)
    return out


def cmd_judge(args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = []
    weights = {k: v for k, v in (("content_weight", args.content_weight), ("style_weight", args.style_weight),
                                 ("tv_weight", args.tv_weight)) if v is not None}
    for model in args.model:
        r = _Runner(model, args.threads)
        w = {**r.weights(), **weights}
        rows += score_model(model, _style_specs(args.style, r.styles != [None]), vgg16=args.vgg16, photos=args.photos, size=args.size,
                            gatys_iterations=args.gatys_iterations, style_side=args.style_size, weights=w,
                            cache=args.cache or "default", out_dir=args.out, threads=args.threads,
                            gatys_init=args.gatys_init)
    print(f"\n$ {_command()}\n")
    print_report(rows, args.gatys_iterations)
    if args.json:
        Path(args.json).write_text(json.dumps({"command": _command(), "rows": rows}, indent=1, default=float))


# ------------------------------------------------------------------------------------------------ Gatys settings

def score_gatys(styles: Mapping[str, ImageLike], settings: Mapping[str, Mapping[str, Any]], *, vgg19: str,
                photos: Sequence[str] | None = None, size: int = JUDGE_SIZE, iterations: int = 300,
                cache: str | os.PathLike | None = "default", out_dir: str | os.PathLike | None = None,
                threads: int = 1, log: Callable[[str], None] | None = None,
                images: dict[tuple[str, str, str], Image.Image] | None = None) -> list[dict[str, Any]]:
    """Gatys (VGG19, the paper's layers) under each of ``settings`` ({label: gatys_result options}) for every
    style picture and photo: the picture measures of the result and where its loss flattens (the first
    iteration whose best loss is within 1% of the final best). One row per (setting, style, photo);
    ``images`` (when given) receives each result under (setting, style, photo)."""
    torch.set_num_threads(threads)
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    cache_path = (cache_dir() / "bench-quality") if cache == "default" else (Path(cache) if cache else None)
    judged = judge_photos(photos, size)
    rows = []
    from fastnst.constants import GATYS_CONTENT_LAYERS, GATYS_STYLE_LAYERS

    layers = {"content_layers": GATYS_CONTENT_LAYERS, "style_layers": GATYS_STYLE_LAYERS}
    for sname, spec in styles.items():
        picture = load_picture(spec)
        sheet = []
        for pname, photo in judged.items():
            line = [photo]
            for label, opts in settings.items():
                opts = dict(opts)
                w = {k: float(opts.pop(k)) for k in ("content_weight", "style_weight", "tv_weight") if k in opts}
                side = int(opts.pop("style_side", max(photo.size)))
                its = int(opts.pop("iterations", iterations))
                ref = gatys_reference(photo, picture, vgg=vgg19, weights=w, style_side=side,
                                      marks=sorted({50, 100, its} & set(range(1, its + 1))), net="vgg19",
                                      layers=layers, init=opts.pop("init", "content"), cache=cache_path, extra=opts)
                img = ref["images"][its]
                best = np.minimum.accumulate(np.asarray(ref["trace"]))
                flat = int(np.argmax(best <= best[-1] * 1.01)) + 1
                row = {"setting": label, "style": sname, "photo": pname, "total": ref[str(its)]["total"],
                       "content": ref[str(its)].get("content", 0.0), "style_loss": ref[str(its)]["style"],
                       "flat_at": flat, "seconds": ref["seconds"], **image_measures(img, photo)}
                rows.append(row)
                line.append(img)
                if images is not None:
                    images[(label, sname, pname)] = img
                log(f"{label} {sname} {pname}: edge {row['edge']:.2f} speckle {row['speckle']:.2f} flat at {flat}")
            sheet.append(line)
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            contact_sheet([[resize(picture, long_edge=max(sheet[0][0].size))] + [Image.new(
                "RGB", sheet[0][0].size, "white")] * (len(sheet[0]) - 1)] + sheet).save(
                Path(out_dir) / f"gatys-{sname}.png")
    return rows


def _parse_setting(text: str) -> tuple[str, dict[str, Any]]:
    """``label:key=value,key=value`` -> (label, options); values parsed as JSON where they can be."""
    label, _, rest = text.partition(":")
    opts: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        try:
            opts[k.strip()] = json.loads(v)
        except ValueError:
            opts[k.strip()] = v
    return label, opts


def cmd_gatys(args: argparse.Namespace) -> None:
    styles = {Path(s.split(":")[-1]).stem: s for s in args.style}
    settings = dict(_parse_setting(s) for s in (args.set or ["default:"]))
    images: dict[tuple[str, str, str], Image.Image] = {}
    rows = score_gatys(styles, settings, vgg19=args.vgg19, photos=args.photos, size=args.size,
                       iterations=args.iterations, cache=args.cache or "default", out_dir=args.out,
                       threads=args.threads, images=images)
    if args.sheet:  # a row per style picture: the picture, then each photo's result under each setting
        photos = list(dict.fromkeys(r["photo"] for r in rows))
        height = min(im.size[1] for im in images.values())
        from PIL import ImageOps

        lines = [[ImageOps.fit(load_picture(spec), (height, height))]
                 + [images[(label, sname, p)] for p in photos for label in settings]
                 for sname, spec in styles.items()]
        contact_sheet(lines, tile=height).save(args.sheet, quality=88)
        print(f"sheet: {args.sheet} (a row per style picture: the picture, then for each of {', '.join(photos)} "
              f"the result of {', '.join(settings)})", file=sys.stderr)
    print(f"\n$ {_command()}\n")
    keys = ["total", "content", "style_loss", "flat_at", "edge", "speckle", "checker2", "bright_chroma", "bright_pink"]
    print(table([[r["setting"], r["style"], r["photo"]] + [r[k] for k in keys] for r in rows],
                ["setting", "style", "photo"] + keys))
    print()
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["setting"], r["style"]), []).append(r)
    print(table([[s, st] + [float(np.nanmean([r[k] for r in rs])) for k in keys] for (s, st), rs in groups.items()],
                ["setting", "style (mean over photos)"] + keys))
    if args.json:
        Path(args.json).write_text(json.dumps({"command": _command(), "rows": rows}, indent=1, default=float))


# ------------------------------------------------------------------------------------------------ balance, sweep

def cmd_balance(args: argparse.Namespace) -> None:
    """Weighted style / weighted content at the first and last evaluation of a Gatys run from noise,
    with the default weights and normalisation, for every weight set given (and random)."""
    from fastnst.optimize import GATYS_CONTENT_WEIGHT, GATYS_STYLE_WEIGHT, gatys_result

    photos = judge_photos(args.photos, args.size)
    style = load_picture(args.style or "brushstrokes")
    sets = [("vgg16", "random"), ("vgg19", "random")]
    if args.vgg16:
        sets.append(("vgg16", args.vgg16))
    if args.vgg19:
        sets.append(("vgg19", args.vgg19))
    rows = []
    summary: dict[tuple[str, str, str], list[float]] = {}
    for normalize in args.normalize:
        for net, weights in sets:
            for pname, photo in photos.items():
                trace: list[dict[str, float]] = []
                layers = {} if net == "vgg19" else {"content_layers": JOHNSON_CONTENT_LAYERS,
                                                     "style_layers": JOHNSON_STYLE_LAYERS}
                t0 = time.perf_counter()
                gatys_result(photo, style, net=net, vgg_weights=weights, size=args.size, iterations=args.iterations,
                             init="noise", vgg_normalize=normalize, seed=0,
                             callback=lambda p: trace.append({k: float(v) for k, v in p.terms.items()}), **layers)
                r0 = trace[0]["style"] / max(trace[0]["content"], 1e-30)
                r1 = trace[-1]["style"] / max(trace[-1]["content"], 1e-30)
                label = "random" if weights == "random" else Path(weights).name
                summary.setdefault((normalize, net, "first"), []).append(r0)
                summary.setdefault((normalize, net, "last"), []).append(r1)
                rows.append([normalize, net, label, pname, r0, r1, f"{time.perf_counter() - t0:.0f}s"])
    print(f"\n$ {_command()}\n")
    print(f"Gatys from noise, {args.iterations} L-BFGS iterations at {args.size}px, default weights "
          f"(content {GATYS_CONTENT_WEIGHT:g}, style {GATYS_STYLE_WEIGHT:g}); ratio = weighted style / weighted content\n")
    print(table(rows, ["normalise", "net", "weights", "photo", "ratio first", "ratio last", "time"]))
    for (normalize, net, moment), values in summary.items():
        print(f"  {normalize:5s} {net} {moment:5s}: {min(values):.3g} .. {max(values):.3g}  "
              f"({max(values) / min(values):.1f}x)")


def cmd_sweep(args: argparse.Namespace) -> None:
    """Gatys at several style weights on one judging photo: a sheet (photo | one result per weight)."""
    from fastnst.optimize import gatys_result

    photo = judge_photos([args.photo], args.size)[Path(args.photo).stem]
    style = load_picture(args.style)
    results, rows = [photo], []
    for w in args.style_weights:
        t0 = time.perf_counter()
        r = gatys_result(photo, style, size=args.size, iterations=args.iterations, style_weight=w,
                         vgg_weights=args.vgg19, seed=0)
        results.append(r.image)
        rows.append([w, r.terms["content"], r.terms["style"], f"{time.perf_counter() - t0:.0f}s"])
    contact_sheet([results]).save(args.out)
    print(f"\n$ {_command()}\n")
    print(table(rows, ["style weight", "content (weighted)", "style (weighted)", "time"]))
    print(f"\nsheet: {args.out}")


def cmd_bright(args: argparse.Namespace) -> None:
    """Picture measures of the built-in styles (shipped model) and of paintings (universal model) on the judging
    photos: the near-white regions above all (bright_chroma, bright_pink), edges and speckle."""
    from fastnst.runtime import Stylizer
    from fastnst.runtime.universal import universal_stylizer
    from fastnst.styles import builtin, paintings
    from fastnst.styles.registry import resolve_style

    photos = judge_photos(args.photos, args.size)
    st = Stylizer(args.model or builtin.model_path())
    names = args.style or (st.style_names + paintings.shipped_names())
    rows, sheet = [], [[photo for photo in photos.values()]]
    for name in names:
        line = []
        for pname, photo in photos.items():
            if name in st.style_names:
                out, model = st.stylize(photo, style=name), "built-in" if not args.model else Path(args.model).name
            else:
                out, model = universal_stylizer().stylize(photo, style=resolve_style(name)), "universal"
            rows.append({"style": name, "model": model, "photo": pname, **image_measures(out, photo)})
            line.append(out)
        sheet.append(line)
    print(f"\n$ {_command()}\n")
    keys = ["bright_chroma", "bright_pink", "edge", "speckle"]
    photo_chroma = {p: bright_region(im, im)["bright_chroma"] for p, im in photos.items()}
    print("near-white share of each photo: " + ", ".join(f"{p} {bright_mask(im).mean():.1%} (C* {photo_chroma[p]:.1f})"
                                                          for p, im in photos.items()) + "\n")
    print(table([[r["style"], r["model"], r["photo"]] + [r[k] for k in keys] for r in rows],
                ["style", "model", "photo"] + keys))
    print()
    by_style: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_style.setdefault(r["style"], []).append(r)
    print(table([[n, rs[0]["model"]] + [float(np.nanmean([r[k] for r in rs])) for k in keys]
                 for n, rs in by_style.items()], ["style (mean over photos)", "model"] + keys))
    if args.out:
        contact_sheet([list(col) for col in zip(*sheet)]).save(args.out)  # a row per photo, a column per style
        print(f"\nsheet: {args.out} (a row per photo: the photo, then {', '.join(names)})")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": _command(), "rows": rows}, indent=1, default=float))


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("judge", "model"):  # 'model': the earlier name of judge
        j = sub.add_parser(name, help="a trained model against Gatys on the judging photos")
        j.add_argument("--model", required=True, nargs="+", help=".onnx, .safetensors or .ckpt (several: one table)")
        j.add_argument("--style", nargs="*", default=[],
                       help="PICTURE (single-style model) or NAME[=PICTURE] ... (multi-style; default: all its styles)")
        j.add_argument("--vgg16", required=True)
        j.add_argument("--photos", nargs="*", default=None, help=f"judging photo names or files (default: "
                                                                 f"{' '.join(DEFAULT_PHOTOS)})")
        j.add_argument("--size", type=int, default=JUDGE_SIZE)
        j.add_argument("--style-size", type=int, default=None, help="style picture long side (default: the "
                                                                    "model's style_size, else min(512, its own))")
        j.add_argument("--gatys-iterations", type=int, nargs="+", default=list(GATYS_MARKS))
        j.add_argument("--gatys-init", default="content", choices=("content", "noise"))
        j.add_argument("--content-weight", type=float, default=None)
        j.add_argument("--style-weight", type=float, default=None)
        j.add_argument("--tv-weight", type=float, default=None)
        j.add_argument("--cache", default=None, help="Gatys cache folder (default ~/.cache/fastnst/bench-quality)")
        j.add_argument("--out", default=None, help="folder for the sheets")
        j.add_argument("--json", default=None, help="write the rows as JSON")
    g = sub.add_parser("gatys", help="Gatys settings: speckle, edges, bright regions, where the loss flattens")
    g.add_argument("--vgg19", required=True)
    g.add_argument("--style", nargs="+", required=True, help="style pictures (files or fastnst style names)")
    g.add_argument("--set", nargs="*", default=None,
                   help="LABEL:key=value,... gatys options per setting (default: one setting 'default:')")
    g.add_argument("--photos", nargs="*", default=None)
    g.add_argument("--size", type=int, default=JUDGE_SIZE)
    g.add_argument("--iterations", type=int, default=300)
    g.add_argument("--cache", default=None)
    g.add_argument("--out", default=None)
    g.add_argument("--sheet", default=None, help="one sheet of every style picture and result (.jpg/.png)")
    g.add_argument("--json", default=None)
    b = sub.add_parser("balance")
    b.add_argument("--vgg16"), b.add_argument("--vgg19")
    b.add_argument("--style", default=None, help="style picture (default: fastnst's generated brushstrokes)")
    b.add_argument("--photos", nargs="*", default=None)
    b.add_argument("--size", type=int, default=192)
    b.add_argument("--iterations", type=int, default=50)
    b.add_argument("--normalize", nargs="+", default=["rms"], help="rms, mean and/or none")
    br = sub.add_parser("bright", help="bright regions, edges and speckle of the built-in styles and the paintings")
    br.add_argument("--photos", nargs="*", default=None)
    br.add_argument("--model", default=None, help="a multi-style model to measure instead of the built-in one")
    br.add_argument("--style", nargs="*", default=None, help="built-in names, paintings or pictures (default: "
                                                             "every built-in style and shipped painting)")
    br.add_argument("--size", type=int, default=JUDGE_SIZE)
    br.add_argument("--out", default=None, help="a sheet (.png/.jpg)")
    br.add_argument("--json", default=None)
    w = sub.add_parser("sweep")
    w.add_argument("--vgg19", required=True)
    w.add_argument("--style", required=True)
    w.add_argument("--photo", default="building")
    w.add_argument("--style-weights", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    w.add_argument("--size", type=int, default=JUDGE_SIZE)
    w.add_argument("--iterations", type=int, default=150)
    w.add_argument("--out", default="gatys-sweep.png")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"$ {_command()}", file=sys.stderr)
    {"judge": cmd_judge, "model": cmd_judge, "gatys": cmd_gatys, "balance": cmd_balance,
     "sweep": cmd_sweep, "bright": cmd_bright}[args.cmd](args)


if __name__ == "__main__":
    main()
