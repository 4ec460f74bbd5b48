"""int8 against fp32: speed at 1024² and perceptual loss with real VGG16 weights on held-out photos.

For each float model and quantisation variant (fastnst.runtime.quantize, calibrated on the bundled content
photos), prints the per-image time of fp32 and int8 at ``--speed-size`` (alternating fresh processes,
median [min-max]) and the perceptual loss of both outputs (content relu2_2 + style relu1_2..relu4_3 with
the model's own weights, imported Caffe VGG16, rms-normalised: the training loss) on scikit-learn's
china.jpg and flower.jpg (held out: nothing trains on them), against the model's style picture.

    .venv/bin/python scripts/bench_int8.py --vgg16 vgg16-caffe.safetensors \
        --model cq2/brushstrokes.onnx:brushstrokes --model builtin:mosaic,halftone

``--model PATH:STYLE[,STYLE]`` names the generated style pictures (fastnst.styles.generated) the model
was trained on; ``builtin`` is the shipped multi-style model (each listed style evaluated on its column).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {  # name -> quantize_model keyword arguments
    "conv, minmax": {},
    "conv, percentile": {"method": "percentile"},
    "conv but first/last, minmax": {"exclude": "ends"},
    "conv+pad+relu+resize+add, minmax": {"op_types": ("Conv", "Pad", "Relu", "Resize", "Add")},
}

_TIME_CHILD = """
import json, time, numpy as np, onnxruntime as ort
from fastnst.runtime import session_options
s = ort.InferenceSession({model!r}, session_options(), providers=["CPUExecutionProvider"])
feeds = {{"image": np.random.default_rng(0).random((1, 3, {size}, {size}), dtype=np.float32)}}
for i in s.get_inputs()[1:]:
    feeds[i.name] = np.eye(1, i.shape[1], dtype=np.float32)
s.run(None, feeds)
t = []
for _ in range({repeats}):
    t0 = time.perf_counter(); s.run(None, feeds); t.append(time.perf_counter() - t0)
print(json.dumps(min(t)))
"""


def time_model(model: str, size: int, repeats: int) -> float:
    res = subprocess.run([sys.executable, "-c", _TIME_CHILD.format(model=model, size=size, repeats=repeats)],
                         capture_output=True, text=True, check=True, cwd=str(ROOT))
    return json.loads(res.stdout.strip().splitlines()[-1])


def spread(v: list[float], fmt: str = "{:.0f}") -> str:
    if not v:
        return "-"
    return f"{fmt.format(statistics.median(v))} [{fmt.format(min(v))}-{fmt.format(max(v))}]"


def conv_ends(model: str) -> list[str]:
    """Names of the first and the last Conv node (the ones touching pixels)."""
    import onnx

    convs = [n.name for n in onnx.load(model, load_external_data=False).graph.node if n.op_type == "Conv"]
    return [convs[0], convs[-1]] if convs else []


def main() -> None:
    import torch
    from PIL import Image

    from fastnst.constants import JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS
    from fastnst.image import resize, to_tensor
    from fastnst.losses import PerceptualLoss
    from fastnst.networks.vgg import VGGFeatures
    from fastnst.runtime.quantize import quantize_model
    from fastnst.runtime import Stylizer
    from fastnst.styles.builtin import model_path
    from fastnst.styles.generated import generate_style

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vgg16", required=True)
    p.add_argument("--model", action="append", required=True, help="PATH:STYLE[,STYLE] or builtin:STYLE[,STYLE]")
    p.add_argument("--size", type=int, default=512, help="long side of the photos for the loss")
    p.add_argument("--style-size", type=int, default=320, help="style picture side (the built-ins' training)")
    p.add_argument("--speed-size", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--variants", default=";".join(VARIANTS), help="names separated by semicolons")
    args = p.parse_args()
    torch.set_num_threads(2)
    from sklearn.datasets import load_sample_image

    photos = {n: resize(Image.fromarray(load_sample_image(f"{n}.jpg")), long_edge=args.size)
              for n in ("china", "flower")}
    vgg = VGGFeatures(tuple(dict.fromkeys(JOHNSON_CONTENT_LAYERS + JOHNSON_STYLE_LAYERS)), "vgg16",
                      weights=args.vgg16, normalize="rms")
    work = Path(tempfile.mkdtemp(prefix="fastnst-int8-"))
    print(f"$ {' '.join(shlex.quote(a) for a in [sys.executable] + sys.argv)}\n")
    rows = []
    for spec in args.model:
        path, _, styles = spec.rpartition(":")
        path = str(model_path()) if path == "builtin" else path
        for vname in args.variants.split(";"):
            kw = dict(VARIANTS[vname])
            if kw.get("exclude") == "ends":
                kw["exclude"] = conv_ends(path)
            q = work / f"{Path(path).stem}-{len(rows)}.onnx"
            quantize_model(path, q, **kw)
            fp, iq = Stylizer(path, providers="cpu"), Stylizer(str(q), providers="cpu")
            deltas, losses = [], []
            for style in styles.split(","):
                meta = fp.metadata
                weight = float(json.loads(meta.get("style_weight", "0.15")))
                if fp.style_names:
                    scales = json.loads(meta.get("style_scales", "[]")) or [1.0] * len(fp.style_names)
                    weight *= scales[fp.style_names.index(style)]
                loss = PerceptualLoss(vgg, JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS, 1.0, weight, 0.0)
                loss.set_style(to_tensor(generate_style(style, size=512).resize((args.style_size,) * 2)))
                for name, photo in photos.items():
                    kw_style = {"style": style} if fp.style_names else {}
                    with torch.no_grad():
                        a = float(loss(to_tensor(fp.stylize(photo, **kw_style)), to_tensor(photo))["total"])
                        b = float(loss(to_tensor(iq.stylize(photo, **kw_style)), to_tensor(photo))["total"])
                    losses.append((a, b))
                    deltas.append(b / a - 1)
            times: dict[str, list[float]] = {"fp32": [], "int8": []}
            for rnd in range(args.rounds):
                for kind in (("fp32", "int8") if rnd % 2 == 0 else ("int8", "fp32")):
                    times[kind].append(time_model(path if kind == "fp32" else str(q), args.speed_size, args.repeats))
            speed = [a / b for a, b in zip(times["fp32"], times["int8"])]
            rows.append([Path(path).name, vname, styles, spread([a for a, _ in losses], "{:.4g}"),
                         spread([b for _, b in losses], "{:.4g}"), spread(deltas, "{:+.1%}"),
                         spread([t * 1e3 for t in times["fp32"]]), spread([t * 1e3 for t in times["int8"]]),
                         spread(speed, "{:.2f}x")])
            print(" | ".join(rows[-1]), flush=True)
    header = ["model", "variant", "styles", "loss fp32", "loss int8", "int8 vs fp32 loss",
              f"fp32 ms {args.speed_size}²", "int8 ms", "speed-up"]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
