"""Tiny synthetic clips for the video tests: a camera panning across a bundled photo, with sensor noise."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from fastnst.constants import ASSETS_DIR

FPS = Fraction(12, 1)


def panning_frames(n: int = 6, size: tuple[int, int] = (64, 48), step: int = 3, noise: float = 3.0,
                   seed: int = 0) -> list[np.ndarray]:
    """A camera panning across a bundled photo, with a little sensor noise (the usual flicker source)."""
    photo = np.asarray(Image.open(ASSETS_DIR / "content-chelsea.jpg").convert("RGB"), np.float32)
    rng = np.random.default_rng(seed)
    w, h = size
    frames = []
    for i in range(n):
        crop = photo[20:20 + h, 10 + i * step:10 + i * step + w]
        frames.append(np.clip(crop + rng.normal(0, noise, crop.shape), 0, 255).astype(np.uint8))
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: Fraction = FPS, audio: bool = True) -> Path:
    """An mp4 with H.264 video and (optionally) a 440 Hz AAC tone as long as the video."""
    from fastnst.video import write_frames

    t = np.arange(int(16000 * len(frames) / fps)) / 16000.0
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return write_frames(path, frames, fps, crf=10, audio=(tone, 16000) if audio else None)
