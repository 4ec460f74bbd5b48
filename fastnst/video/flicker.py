"""Flicker: measure it and reduce it, with dense optical flow on the *input* frames (OpenCV's DIS flow).

A feed-forward network stylises each frame on its own, so small changes of the input (noise, compression,
motion) change the strokes from frame to frame. :class:`Deflicker` warps the previous *output* onto the
current frame with the flow of the inputs, and blends it in where the flow is reliable (where the warped
previous input matches the current input); occluded or badly tracked pixels keep the fresh stylisation.
:class:`FlickerMeter` measures what is left, in [0, 1] pixel units:

* ``warped_error``: mean |O_t - warp(O_{t-1})| over pixels whose flow is reliable (the short-term
  temporal error of Lai et al. 2018, "Learning Blind Video Temporal Consistency");
* ``static_change``: mean |O_t - O_{t-1}| where the input did not change (at most 2 levels of 255),
  which needs no optical flow.

:class:`Motion` (the flow between consecutive input frames) is computed once and shared by both. Needs the
``video`` extra (opencv-python-headless), imported only when a :class:`Motion` is made.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from fastnst.errors import ConfigError, MissingDependencyError

# Flicker reduction. Chosen: blending 60% of the warped previous output where the flow is reliable halved
# the warped error on both clips of scripts/bench_flicker.py (0.055 -> 0.028, 0.086 -> 0.041); ghosting is
# still to be judged by eye with a trained style. TOLERANCE: the input difference (0..255) at which a
# pixel counts as unreliable (occluded, cross-fading, badly tracked).
DEFAULT_DEFLICKER = 0.6
TOLERANCE = 24.0
STATIC_LEVELS = 2  # input change (0..255) below which a pixel counts as unchanged (static_change)


def require_cv2() -> Any:
    try:
        import cv2
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("flicker reduction and measurement", "video") from exc
    return cv2


def _flow(prev_gray: np.ndarray, gray: np.ndarray, dis: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sampling maps (map_x, map_y) that pull the previous frame onto the current one."""
    flow = dis.calc(gray, prev_gray, None)  # for each pixel of `gray`: where it was in `prev_gray`
    h, w = gray.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


class Motion:
    """Optical flow between consecutive *input* frames, shared by the deflicker and the meter."""

    def __init__(self) -> None:
        cv2 = require_cv2()
        self.cv2 = cv2
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.prev: np.ndarray | None = None
        self.prev_gray: np.ndarray | None = None
        self.maps: tuple[np.ndarray, np.ndarray] | None = None
        self.reliability: np.ndarray | None = None  # 1 = well tracked, 0 = occluded / out of frame
        self.static: np.ndarray | None = None  # input unchanged

    def update(self, frame: np.ndarray) -> None:
        cv2 = self.cv2
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if self.prev is None or self.prev.shape != frame.shape:
            self.maps = self.reliability = self.static = None
        else:
            assert self.prev_gray is not None
            mx, my = _flow(self.prev_gray, gray, self.dis)
            self.maps = (mx, my)
            warped_in = self.warp(self.prev)
            err = np.abs(warped_in.astype(np.float32) - frame.astype(np.float32)).mean(axis=2)
            h, w = gray.shape
            inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
            self.reliability = np.clip(1.0 - err / TOLERANCE, 0.0, 1.0) * inside
            diff = np.abs(frame.astype(np.int16) - self.prev.astype(np.int16)).max(axis=2)
            self.static = diff <= STATIC_LEVELS
        self.prev, self.prev_gray = frame, gray

    def warp(self, image: np.ndarray) -> np.ndarray:
        assert self.maps is not None
        return self.cv2.remap(image, self.maps[0], self.maps[1], self.cv2.INTER_LINEAR,
                              borderMode=self.cv2.BORDER_REPLICATE)


class FlickerMeter:
    """Accumulates ``warped_error`` and ``static_change`` (see the module docstring) over output frames.

    Call :meth:`update` with each output frame (HxWx3, uint8 or float in [0, 1]) after the shared motion
    has seen the matching input frame.
    """

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None
        self.warped_sum = self.warped_weight = 0.0
        self.static_sum = self.static_count = 0.0
        self.pairs = 0

    def update(self, motion: Motion, out: np.ndarray) -> None:
        cur = out.astype(np.float32) / (255.0 if out.dtype == np.uint8 else 1.0)
        if self.prev is not None and motion.maps is not None and self.prev.shape == cur.shape:
            assert motion.reliability is not None and motion.static is not None
            mask = (motion.reliability > 0.5).astype(np.float32)
            err = np.abs(cur - motion.warp(self.prev)).mean(axis=2)
            self.warped_sum += float((err * mask).sum())
            self.warped_weight += float(mask.sum())
            change = np.abs(cur - self.prev).mean(axis=2)
            self.static_sum += float(change[motion.static].sum())
            self.static_count += float(motion.static.sum())
            self.pairs += 1
        self.prev = cur

    @property
    def warped_error(self) -> float:
        return self.warped_sum / self.warped_weight if self.warped_weight else float("nan")

    @property
    def static_change(self) -> float:
        return self.static_sum / self.static_count if self.static_count else float("nan")


class Deflicker:
    """Blend the flow-warped previous output into the current output where the flow is reliable.

    ``strength`` in [0, 1): the weight of the warped previous output at fully reliable pixels (0: off).
    """

    def __init__(self, strength: float = DEFAULT_DEFLICKER) -> None:
        strength = float(strength)
        if not 0.0 <= strength < 1.0 or math.isnan(strength):
            raise ConfigError(f"the flicker reduction must be between 0 (off) and 1 (exclusive), got {strength}")
        self.strength = strength
        self.prev: np.ndarray | None = None

    def update(self, motion: Motion, out: np.ndarray) -> np.ndarray:
        """The flicker-reduced version of ``out`` (HxWx3 uint8), given the motion of its input frame."""
        if self.strength > 0 and self.prev is not None and motion.maps is not None and self.prev.shape == out.shape:
            assert motion.reliability is not None
            warped = motion.warp(self.prev).astype(np.float32)
            alpha = (self.strength * motion.reliability)[..., None]
            cur = out.astype(np.float32)
            out = np.clip(cur + alpha * (warped - cur) + 0.5, 0, 255).astype(np.uint8)
        self.prev = out
        return out


def measure_flicker(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> dict[str, float]:
    """``warped_error`` and ``static_change`` of output frames given their input frames (HxWx3 uint8)."""
    motion, meter = Motion(), FlickerMeter()
    for src, out in zip(inputs, outputs):
        motion.update(src)
        meter.update(motion, out)
    return {"warped_error": meter.warped_error, "static_change": meter.static_change, "pairs": meter.pairs}


def deflicker_frames(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray],
                     strength: float = DEFAULT_DEFLICKER) -> Iterator[np.ndarray]:
    """Flicker-reduced output frames (HxWx3 uint8) for stylised ``outputs`` of ``inputs``."""
    motion, deflicker = Motion(), Deflicker(strength)
    for src, out in zip(inputs, outputs):
        motion.update(src)
        yield deflicker.update(motion, out)
