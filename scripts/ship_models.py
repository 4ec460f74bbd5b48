"""Build fastnst's built-in styles: style pictures and training photos from packages, then package the model.

Developer tool (never imported by the package). Everything comes from this repository or from packages
installed with it; nothing is fetched.

    python scripts/ship_models.py prepare BUILD          # BUILD/styles, BUILD/content, BUILD/holdout
    fastnst train --style BUILD/styles/mosaic.png --style ... --data BUILD/content ...   (printed by prepare)
    python scripts/ship_models.py package RUN --seconds S --command "fastnst train ..."
    python scripts/ship_models.py rewrite                # the shipped model: exact rewrites it lacks
    python scripts/ship_models.py weights                # models/builtin.safetensors from the shipped model

``package`` copies RUN's exported ONNX model to fastnst/styles/models/builtin.onnx (with every exact graph
rewrite of fastnst.runtime.rewrite, so the runtime does no work at load; weights stored in float16 when
asked, computed in float32) and RUN's weights to models/builtin.safetensors (what ``fastnst train --from
builtin`` starts from), writes thumbnails, models/builtin.json (command, time, machine) and
fastnst/styles/ATTRIBUTION.md. ``rewrite`` applies the rewrites the shipped model lacks (the weights stay as
they are) and updates ``model_bytes`` in models/builtin.json. ``weights`` recovers models/builtin.safetensors
from the shipped ONNX model (its initialisers, with the thin-convolution split undone) and checks it: the
recovered weights, exported again by fastnst's own exporter, must give the shipped model's pictures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastnst.styles import builtin  # noqa: E402
from fastnst.styles.generated import generate_style  # noqa: E402

STYLE_SIZE = 512
GENERATED = ("mosaic", "stained_glass", "brushstrokes", "halftone", "pointillist")
# Training photos: colour and greyscale photos shipped by scikit-image and scikit-learn.
# Held out (never trained on; used for the sheet and the README picture): chelsea, coffee.
TRAIN_PHOTOS = {
    "astronaut": ("skimage", "astronaut.png"),
    "rocket": ("skimage", "rocket.jpg"),
    "motorcycle": ("skimage", "motorcycle_left.png"),
    "camera": ("skimage", "camera.png"),
    "coins": ("skimage", "coins.png"),
    "china": ("sklearn", "china.jpg"),
    "flower": ("sklearn", "flower.jpg"),
}
HOLDOUT_PHOTOS = {"chelsea": ("skimage", "chelsea.png"), "coffee": ("skimage", "coffee.png")}


def _package_file(package: str, name: str) -> Path:
    if package == "skimage":
        import skimage

        return Path(skimage.__file__).parent / "data" / name
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent / "images" / name


def _square(img: Image.Image, box: tuple[float, float, float, float] | None = None) -> Image.Image:
    """A centre square (or the fractional ``box``), resized to STYLE_SIZE."""
    w, h = img.size
    if box is None:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    else:
        img = img.crop((int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)))
    return img.resize((STYLE_SIZE, STYLE_SIZE), Image.Resampling.LANCZOS)


def style_pictures() -> dict[str, Image.Image]:
    """Every built-in style's picture, by name, in the registry's order."""
    pics: dict[str, Image.Image] = {}
    for name in builtin.names():
        if name in GENERATED:
            pics[name] = generate_style(name, size=STYLE_SIZE, seed=0)
        elif name == "hubble":
            pics[name] = _square(Image.open(_package_file("skimage", "hubble_deep_field.jpg")).convert("RGB"))
        elif name == "retina":  # inside the dark rim of the fundus photograph
            pics[name] = _square(Image.open(_package_file("skimage", "retina.jpg")).convert("RGB"),
                                 (0.22, 0.22, 0.78, 0.78))
        elif name == "brick":
            pics[name] = _square(Image.open(_package_file("skimage", "brick.png")).convert("RGB"))
        else:
            raise SystemExit(f"no recipe for built-in style '{name}'")
    return pics


def prepare(build: Path) -> None:
    for sub in ("styles", "content", "holdout"):
        (build / sub).mkdir(parents=True, exist_ok=True)
    for name, pic in style_pictures().items():
        pic.save(build / "styles" / f"{name}.png")
    for folder, photos in (("content", TRAIN_PHOTOS), ("holdout", HOLDOUT_PHOTOS)):
        for name, (package, file) in photos.items():
            img = Image.open(_package_file(package, file)).convert("RGB")
            img.save(build / folder / f"{name}.jpg", quality=95)
    styles = " ".join(f"--style {build / 'styles' / n}.png" for n in builtin.names())
    print(f"fastnst train {styles} --data {build / 'content'} ...")


def _thumbnail(img: Image.Image, size: int = 96) -> Image.Image:
    img = img.convert("RGB").copy()
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    return img


def _fp16_storage(src: Path, dst: Path) -> None:
    """Store float32 weight initialisers as float16 followed by a Cast to float32 (computation stays float32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    new_inits, casts = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= 16:
            half = numpy_helper.from_array(arr.astype(np.float16), init.name + "_fp16")
            new_inits.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "_cast"))
        else:
            new_inits.append(init)
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


# The photo set of scripts/build_datasets.py photos, as the attribution names it (its sources and licences are
# listed once, with the x4 super-resolution network that was trained on the same set)
PHOTO_SET = {"photos": "scripts/build_datasets.py photos: 249 images (35 photos from the Debian packages "
                       "lomiri-wallpapers-20.04, mate-backgrounds and plasma-workspace-wallpapers and from "
                       "scikit-image / scikit-learn, whole and as 768-px crops); every photo, its package and "
                       "licence: fastnst/assets/ATTRIBUTION.md (sr-x4.onnx)"}
JUDGE_SET = {"judge": "scripts/build_datasets.py judge: OpenCV sample photos (building, messi5, leuvenA, home, "
                      "...) and GCompris photos (horse, swans, red_panda, cheetah)"}


def package(run: Path, seconds: float, command: str, fp16: bool, machine: str, photo_set: bool = False,
            keep_thumbnails: bool = False) -> None:
    import onnx

    models = sorted(run.glob("*.onnx"))
    if len(models) != 1:
        raise SystemExit(f"expected one .onnx in {run}, found {[m.name for m in models]}")
    model = onnx.load(str(models[0]))
    meta = {p.key: p.value for p in model.metadata_props}
    names = json.loads(meta.get("fastnst_styles", "[]"))
    if names != builtin.names():
        raise SystemExit(f"the model's styles {names} are not the registry's {builtin.names()}")
    out = builtin.MODEL_PATH
    out.parent.mkdir(parents=True, exist_ok=True)
    rewritten = run / "builtin-rewritten.onnx"
    _rewrite(models[0], rewritten)
    if fp16:
        _fp16_storage(rewritten, out)
    else:
        shutil.copyfile(rewritten, out)
    builtin.THUMBNAIL_DIR.mkdir(parents=True, exist_ok=True)
    if not keep_thumbnails:  # the same style pictures: the shipped thumbnails stay
        for name, pic in style_pictures().items():
            _thumbnail(pic).save(builtin.THUMBNAIL_DIR / f"{name}.jpg", quality=85, optimize=True)
    info = {
        "command": command,
        "seconds": round(float(seconds)),
        "machine": machine,
        "steps": int(meta.get("steps", "0") or 0),
        "image_size": int(meta.get("image_size", "0") or 0),
        "batch_size": int(meta.get("batch_size", "0") or 0),
        "vgg_weights": meta.get("vgg_weights", ""),
        "content_weight": meta.get("content_weight", ""),
        "style_weight": meta.get("style_weight", ""),
        "tv_weight": meta.get("tv_weight", ""),
        "vgg_normalize": meta.get("vgg_normalize", ""),
        "style_scales": [round(v, 4) for v in json.loads(meta.get("style_scales", "[]"))],
        "code": os.environ.get("FASTNST_BUILD_CODE", ""),
        "weights_storage": "float16 (computed in float32)" if fp16 else "float32",
        "model_bytes": out.stat().st_size,
        "training_photos": PHOTO_SET if photo_set else {k: f"{p}: {f}" for k, (p, f) in TRAIN_PHOTOS.items()},
        "held_out_photos": JUDGE_SET if photo_set else {k: f"{p}: {f}" for k, (p, f) in HOLDOUT_PHOTOS.items()},
        "styles": builtin.names(),
    }
    builtin.INFO_PATH.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    weights = sorted(run.glob("*.safetensors"))
    if len(weights) != 1:
        raise SystemExit(f"expected one .safetensors in {run} (fastnst train --from builtin starts from it), "
                         f"found {[w.name for w in weights]}")
    shutil.copyfile(weights[0], builtin.WEIGHTS_PATH)
    write_attribution(info)
    print(f"{out} ({out.stat().st_size / 1e6:.2f} MB), {builtin.INFO_PATH}, {builtin.ATTRIBUTION_PATH}")


def write_attribution(info: dict) -> None:
    minutes = info["seconds"] / 60
    lines = [
        "# Built-in styles",
        "",
        "fastnst ships one multi-style network (conditional instance norm, Dumoulin et al. 2017) in",
        "`fastnst/styles/models/builtin.onnx`; every style below is one column of its `style` input.",
        "The style pictures can all be had offline: five are drawn by fastnst's own code",
        "(`fastnst.styles.generated`, MIT like the rest of fastnst), three are public-domain or CC0",
        "pictures shipped by scikit-image 0.26 (`skimage/data`, licences as stated in its `_fetchers.py`).",
        "",
        "| name | picture | source | licence | author |",
        "|---|---|---|---|---|",
    ]
    for s in builtin.BUILTIN_STYLES:
        src = f"[{s.source}]({s.url})" if s.url else f"`{s.source}`"
        default = " (default)" if s.name == builtin.DEFAULT_STYLE else ""
        lines.append(f"| `{s.name}`{default} | {s.title} | {src} | {s.licence} | {s.author} |")
    photos = ", ".join(f"{k} ({v})" for k, v in info["training_photos"].items())
    held = ", ".join(f"{k} ({v})" for k, v in info["held_out_photos"].items())
    lines += [
        "",
        "## How the model was made",
        "",
        "All styles were trained together, in one run, by this command (the style pictures were written",
        "by `python scripts/ship_models.py prepare BUILD`; the training photos are listed below):",
        "",
        "```",
        info["command"],
        "```",
        "",
        f"- time: {info['seconds']} s ({minutes:.0f} min) on {info['machine']}",
        f"- {info['steps']} steps, batch {info['batch_size']}, {info['image_size']} px crops; loss network: "
        f"VGG16 with the original (Caffe) ImageNet weights imported by `fastnst vgg import` ({info['vgg_weights']})",
        f"- loss weights: content {info['content_weight']}, style {info['style_weight']}, TV {info['tv_weight']}; "
        f"loss-network normalisation: {info['vgg_normalize'] or 'none'}; per-style scales {info['style_scales']}",
        f"- code: {info['code'] or 'this repository'}",
        f"- model file: {info['model_bytes'] / 1e6:.2f} MB, weights stored as {info['weights_storage']}",
        f"- training photos (shipped by packages, nothing fetched): {photos}",
        f"- held out (never trained on; used for the sheets and measures): {held}",
        "",
        "scikit-learn's china.jpg and flower.jpg are CC BY 2.0 (danielbuechele, vultilion on Flickr); they",
        "were only used as training photos and are not shipped by fastnst.",
        "",
    ]
    # keep the hand-maintained sections (generated styles, paintings registry) from their marker on
    marker = "<!-- Maintained by hand from here on"
    old = builtin.ATTRIBUTION_PATH.read_text(encoding="utf-8") if builtin.ATTRIBUTION_PATH.is_file() else ""
    kept = old[old.find(marker):] if marker in old else ""
    builtin.ATTRIBUTION_PATH.write_text("\n".join(lines) + ("\n" + kept if kept else ""), encoding="utf-8")


def _rewrite(src: Path, dst: Path) -> list[str]:
    """Write ``src`` with the exact graph rewrites it lacks (fastnst.runtime.rewrite) to ``dst``; returns those
    that changed the graph."""
    import onnx

    from fastnst.runtime.rewrite import speed_up

    model = onnx.load(str(src))
    done = speed_up(model, sizes_double=True)  # a fastnst style network: it up-samples to the stride-2 input's size
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return done


def rewrite_shipped() -> None:
    """The shipped model with the rewrites it lacks, in place; model_bytes in builtin.json updated."""
    out = builtin.MODEL_PATH
    tmp = out.with_suffix(".rewriting.onnx")
    done = _rewrite(out, tmp)
    tmp.replace(out)
    info = json.loads(builtin.INFO_PATH.read_text(encoding="utf-8"))
    info["model_bytes"] = out.stat().st_size
    builtin.INFO_PATH.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    print(f"{out}: {', '.join(done) or 'nothing to do'} ({out.stat().st_size / 1e6:.2f} MB)")


# metadata of the shipped ONNX model that describes the training (kept in the recovered weights' metadata)
_TRAINING_META = ("content_layers", "style_layers", "content_weight", "style_weight", "tv_weight", "vgg_weights",
                  "vgg_normalize", "image_size", "batch_size", "lr", "steps", "style_scales", "style_sha256",
                  "style_name", "fastnst_trained_with")


def weights_from_onnx(path: Path) -> tuple[dict, dict[str, str]]:
    """The TransformerNet state dict and configuration of a fastnst style model (.onnx), exactly as trained:
    the initialisers named ``net.<key>``; a convolution that split_thin_convolutions rewrote (``<key>_rows``,
    a 1xk convolution to out*k channels) is put back to its out x in x k x k weight."""
    import onnx
    import torch
    from onnx import numpy_helper

    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    from fastnst.networks.transformer import TransformerNet

    net = TransformerNet.from_config(json.loads(meta["fastnst_config"]))
    state = {}
    for key, tensor in net.state_dict().items():
        name = f"net.{key}"
        if name in inits:
            value = inits[name]
        elif f"{name}_fp16" in inits:  # float16 storage (package --fp16)
            value = inits[f"{name}_fp16"].astype(np.float32)
        elif f"{name}_rows" in inits:
            rows = inits[f"{name}_rows"]  # (out*k, in, 1, k): channel o*k + r is row r of output o
            o, c, kh, kw = tensor.shape
            value = rows.reshape(o, kh, c, kw).transpose(0, 2, 1, 3)
        else:
            raise SystemExit(f"{path}: no initialiser for {key}")
        if tuple(value.shape) != tuple(tensor.shape):
            raise SystemExit(f"{path}: {key} has shape {value.shape}, the network {tuple(tensor.shape)}")
        state[key] = torch.from_numpy(np.array(value, dtype=np.float32))  # a writable copy
    net.load_state_dict(state)
    return net, {k: meta[k] for k in _TRAINING_META if k in meta}


def recover_weights(photos: list[Path] | None = None) -> None:
    """models/builtin.safetensors from models/builtin.onnx, checked against the shipped model's pictures."""
    import tempfile

    from fastnst.image import load_rgb, resize
    from fastnst.runtime import Stylizer
    from fastnst.training.export import export_onnx
    from fastnst.training.weights import save_transformer

    net, meta = weights_from_onnx(builtin.MODEL_PATH)
    info = json.loads(builtin.INFO_PATH.read_text(encoding="utf-8"))
    command = shlex.split(info.get("command", ""))
    if "--style-size" in command:  # what --from builtin trains a new style at by default
        meta["style_size"] = command[command.index("--style-size") + 1]
    meta["recovered_from"] = f"{builtin.MODEL_PATH.name} (scripts/ship_models.py weights)"
    with tempfile.TemporaryDirectory() as tmp:
        weights = save_transformer(Path(tmp) / "builtin.safetensors", net, meta)
        again = Path(tmp) / "again.onnx"
        export_onnx(weights, again)
        shipped, exported = Stylizer(builtin.MODEL_PATH), Stylizer(again)
        photos = photos or sorted((ROOT / "fastnst" / "assets").glob("content-*.jpg"))
        worst = 0.0
        for photo in photos:
            img = resize(load_rgb(photo), long_edge=256)
            for name in builtin.names():
                a = np.asarray(shipped.stylize(img, style=name), np.float32)
                b = np.asarray(exported.stylize(img, style=name), np.float32)
                worst = max(worst, float(np.abs(a - b).max()))
        if worst > 1.0:
            raise SystemExit(f"the recovered weights give other pictures (up to {worst:g} levels); not written")
        shutil.copyfile(weights, builtin.WEIGHTS_PATH)
    print(f"{builtin.WEIGHTS_PATH} ({builtin.WEIGHTS_PATH.stat().st_size / 1e6:.2f} MB): every style on "
          f"{len(photos)} photos within {worst:g} of 255 levels of the shipped model")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare")
    a.add_argument("build", type=Path)
    b = sub.add_parser("package")
    b.add_argument("run", type=Path)
    b.add_argument("--seconds", type=float, required=True)
    b.add_argument("--command", required=True)
    b.add_argument("--fp16", action="store_true")
    b.add_argument("--machine", default=f"{platform.machine()} CPU, {os.cpu_count()} cores (shared)")
    b.add_argument("--photo-set", action="store_true", help="trained on scripts/build_datasets.py photos (not the "
                                                             "7 sample photos of prepare)")
    b.add_argument("--keep-thumbnails", action="store_true", help="keep the shipped thumbnails (same pictures; "
                                                                   "no scikit-image needed)")
    sub.add_parser("rewrite")
    sub.add_parser("weights")
    args = p.parse_args()
    if args.cmd == "prepare":
        prepare(args.build)
    elif args.cmd == "weights":
        recover_weights()
    elif args.cmd == "rewrite":
        rewrite_shipped()
    else:
        package(args.run, args.seconds, args.command, args.fp16, args.machine, args.photo_set, args.keep_thumbnails)


if __name__ == "__main__":
    main()
