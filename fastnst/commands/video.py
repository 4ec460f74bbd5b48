"""``fastnst stylize clip.mp4 -o out.mp4``: the video branch of ``fastnst stylize`` (fastnst.video does the work).

Prints a progress bar with frames per second on stderr (a line per ~10% when stderr is not a
terminal) and, at the end, the flicker of the plain per-frame stylisation and of the written output.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastnst.errors import ConfigError, InputError

MAX_DEFLICKER = 0.95


class _FrameProgress:
    """``[#####     ] 120/300 frames  14.2 frames/s  eta 13 s`` on a terminal, else a line per ~10%."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._decile = -1

    def __call__(self, done: int, total: int, fps: float) -> None:
        frac = done / total if total else 0.0
        eta = (total - done) / fps if fps > 0 and total else 0.0
        if self.tty:
            bar = "#" * int(frac * 24)
            print(f"\r[{bar:<24}] {done}/{total} frames {fps:6.1f} frames/s eta {eta:4.0f} s", end="",
                  file=sys.stderr, flush=True)
        elif int(frac * 10) > self._decile:
            self._decile = int(frac * 10)
            print(f"{done}/{total} frames ({fps:.1f} frames/s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr, flush=True)


def main_video(args: Any, src: Path, make_stylizer: Callable[[], Any], style: Any = None) -> int:
    """Stylise the video ``src`` with the options of ``fastnst stylize`` (``args``); returns 0."""
    from fastnst.video import DEFAULT_BATCH, DEFAULT_DEFLICKER, check_video_output, probe, stylize_video

    if args.output == "-":
        raise ConfigError("a video cannot be written to stdout; give an output file such as -o out.mp4")
    deflicker = DEFAULT_DEFLICKER if getattr(args, "deflicker", None) is None else float(args.deflicker)
    if not 0.0 <= deflicker <= MAX_DEFLICKER:
        raise ConfigError(f"--deflicker must be between 0 (off) and {MAX_DEFLICKER}, got {deflicker}")
    batch = DEFAULT_BATCH if getattr(args, "batch_size", None) is None else int(args.batch_size)
    if not 1 <= batch <= 64:
        raise ConfigError(f"--batch-size must be between 1 and 64, got {batch}")
    if getattr(args, "max_size", None) is not None:
        raise ConfigError("--max-size applies to images; resize the video first (e.g. ffmpeg -vf scale=-2:720)")
    dst = Path(args.output).expanduser()
    if dst.is_dir():
        dst = dst / (src.stem + ".mp4")
    info = probe(src)  # unreadable / audio-only / no video: one line before any work
    check_video_output(src, dst, args.overwrite)
    stylizer = make_stylizer()
    progress = _FrameProgress()
    options: dict[str, Any] = {"strength": args.strength, "preserve_color": args.preserve_color, "tile": args.tile}
    if style is not None:
        options["style"] = style
    t0 = time.perf_counter()
    try:
        result = stylize_video(src, dst, stylizer, batch_size=batch, deflicker=deflicker, overwrite=args.overwrite,
                               progress=progress, **options)
    finally:
        progress.close()
    if result.frames == 0:  # pragma: no cover - stylize_video raises first
        raise InputError(f"'{src}' has no frames")
    seconds = time.perf_counter() - t0
    before, after = result.flicker_before, result.flicker
    print(f"stylised {result.frames} frames ({info.width}x{info.height}, {float(result.fps):.3g} fps"
          f"{', audio kept' if result.audio else ''}) in {seconds:.1f} s, {result.frames / seconds:.1f} frames/s "
          f"on {getattr(stylizer, 'device', 'cpu')} -> {dst}", file=sys.stderr)
    if result.frames > 1:
        label = f"flicker reduction {deflicker:g}" if deflicker > 0 else "no flicker reduction (--deflicker 0)"
        print(f"flicker (mean |change| of reliably tracked pixels, 0-1): {before['warped_error']:.4f} per-frame -> "
              f"{after['warped_error']:.4f} written ({label}); unchanged-input pixels: "
              f"{before['static_change']:.4f} -> {after['static_change']:.4f}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"input": str(src), "output": str(dst), "frames": result.frames, "fps": float(result.fps),
                          "seconds": round(seconds, 3), "flicker_before": before, "flicker": after}))
    return 0
