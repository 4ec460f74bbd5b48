"""Flicker of stylised video with and without fastnst's flicker reduction, on two clips made here:

* ``pan``: a camera panning across a bundled photo (fastnst/assets), with a little sensor noise;
* ``kenburns``: a slow zoom over one bundled photo cross-fading into another, H.264-compressed at a
  low quality (real compression artefacts) with an AAC tone as its sound track.

Each clip is stylised by ``fastnst.video.stylize_video`` with ``--deflicker 0`` and with the default
strength; the table shows the warped error (mean |O_t - warp(O_{t-1})| over reliably tracked pixels, 0-1)
and the change where the input did not change, of the plain per-frame stylisation and of the written
video, and the speed (frames/s). Also writes a picture: one frame, and the error maps before/after.

    python scripts/bench_flicker.py --model fastnst/styles/models/builtin.onnx --picture docs/images/flicker.jpg
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastnst.runtime import Stylizer  # noqa: E402
from fastnst.video import DEFAULT_DEFLICKER, Motion, probe, read_frames, stylize_video  # noqa: E402

ASSETS = ROOT / "fastnst" / "assets"


def pan_frames(n: int = 24, size: tuple[int, int] = (160, 120), noise: float = 3.0) -> list[np.ndarray]:
    photo = np.asarray(Image.open(ASSETS / "content-astronaut.jpg").convert("RGB"), np.float32)
    rng = np.random.default_rng(0)
    w, h = size
    frames = []
    for i in range(n):
        x = int(round(i * (photo.shape[1] - w) / (n - 1)))
        crop = photo[40:40 + h, x:x + w]
        frames.append(np.clip(crop + rng.normal(0, noise, crop.shape), 0, 255).astype(np.uint8))
    return frames


def kenburns_frames(n: int = 32, size: tuple[int, int] = (192, 128)) -> list[np.ndarray]:
    a = Image.open(ASSETS / "content-coffee.jpg").convert("RGB")
    b = Image.open(ASSETS / "content-rocket.jpg").convert("RGB")
    w, h = size
    frames = []
    for i in range(n):
        t = i / (n - 1)
        zoom = 1.0 - 0.25 * t  # the visible part shrinks: a slow zoom in
        cw, ch = a.width * zoom, a.height * zoom
        box = (10 * t, 8 * t, 10 * t + cw, 8 * t + ch)
        fa = np.asarray(a.resize((w, h), Image.Resampling.BICUBIC, box=box), np.float32)
        fb = np.asarray(b.resize((w, h), Image.Resampling.BICUBIC, box=box), np.float32)
        mix = np.clip((t - 0.6) / 0.3, 0, 1)  # cross-fade over the last third
        frames.append(((1 - mix) * fa + mix * fb + 0.5).astype(np.uint8))
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: Fraction, crf: int, audio: bool) -> Path:
    """An H.264 clip at quality ``crf``, with a 330 Hz AAC tone when ``audio``."""
    from fastnst.video import write_frames

    t = np.arange(int(22050 * len(frames) / fps)) / 22050.0
    tone = (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    return write_frames(path, frames, fps, overwrite=True, crf=crf, audio=(tone, 22050) if audio else None)


def error_map(inputs: list[np.ndarray], outputs: list[np.ndarray], t: int) -> np.ndarray:
    """|O_t - warp(O_{t-1})| (grey, 0-255, x4 gain) where the flow is reliable."""
    motion = Motion()
    motion.update(inputs[t - 1])
    motion.update(inputs[t])
    assert motion.reliability is not None
    err = np.abs(outputs[t].astype(np.float32) - motion.warp(outputs[t - 1]).astype(np.float32)).mean(axis=2)
    err *= motion.reliability > 0.5
    return np.clip(err * 4, 0, 255).astype(np.uint8)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a style model (.onnx)")
    p.add_argument("--deflicker", type=float, default=DEFAULT_DEFLICKER, help="reduction strength to compare with 0")
    p.add_argument("--picture", default=None, help="write a frame and its error maps before/after here (PNG)")
    p.add_argument("--keep", default=None, help="folder to keep the clips and stylised videos in")
    args = p.parse_args()
    stylizer = Stylizer(args.model, threads=1)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="fastnst-flicker-"))
    folder.mkdir(parents=True, exist_ok=True)
    clips = {"pan": write_clip(folder / "pan.mp4", pan_frames(), Fraction(12), crf=12, audio=False),
             "kenburns": write_clip(folder / "kenburns.mp4", kenburns_frames(), Fraction(12), crf=30, audio=True)}
    print(f"model {args.model}; warped error / unchanged-input change in 0-1 pixel units (lower = less flicker)\n")
    print("| clip | frames | deflicker | warped error per-frame | warped error written | unchanged per-frame | "
          "unchanged written | frames/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    picture_rows = []
    for name, clip in clips.items():
        info = probe(clip)
        results = {}
        for strength in (0.0, args.deflicker, 0.0, args.deflicker):  # interleaved: speed drifts on this machine
            r = stylize_video(clip, folder / f"{name}-{strength:g}.mp4", stylizer, deflicker=strength, overwrite=True)
            best = results.get(strength)
            if best is None or r.frames_per_second > best.frames_per_second:
                results[strength] = r
        for strength, r in results.items():
            print(f"| {name} {info.width}x{info.height}{' +audio' if info.has_audio else ''} | {r.frames} | {strength:g} | "
                  f"{r.flicker_before['warped_error']:.4f} | {r.flicker['warped_error']:.4f} | "
                  f"{r.flicker_before['static_change']:.4f} | {r.flicker['static_change']:.4f} | "
                  f"{r.frames_per_second:.1f} |")
        if args.picture:
            inputs = list(read_frames(clip))
            raw = list(read_frames(folder / f"{name}-0.mp4"))
            fixed = list(read_frames(folder / f"{name}-{args.deflicker:g}.mp4"))
            t = len(inputs) // 2
            grey = lambda a: np.repeat(a[..., None], 3, axis=2)  # noqa: E731
            picture_rows.append(np.concatenate([inputs[t], raw[t], grey(error_map(inputs, raw, t)),
                                                grey(error_map(inputs, fixed, t))], axis=1))
    if args.picture:
        width = max(r.shape[1] for r in picture_rows)
        rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in picture_rows]
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.picture, optimize=True, quality=90)  # PNG or JPEG
        print(f"\npicture: {args.picture} (per clip: input frame, stylised frame, |O_t - warp(O_t-1)| x4 "
              f"without and with reduction)")
    print(f"\nclips and outputs in {folder}\ncommand: python {' '.join(shlex.quote(a) for a in sys.argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
