"""Flicker (fastnst.video.flicker): the two measures, the reduction on the input frames' optical flow, and their
bounds. Torch-free: the "stylised" frames are the input frames with fresh noise per frame (flicker by design)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from fastnst.errors import ConfigError  # noqa: E402
from fastnst.video import flicker  # noqa: E402
from tests.videoclips import panning_frames  # noqa: E402


def _flickering(frames, amount=12.0, seed=1):
    """Outputs that follow the input but change from frame to frame where the input does not."""
    rng = np.random.default_rng(seed)
    return [np.clip(f.astype(np.float32) + rng.normal(0, amount, f.shape), 0, 255).astype(np.uint8) for f in frames]


def test_flicker_lower_with_reduction():
    frames = panning_frames(8, noise=4.0)
    raw = _flickering(frames)
    before = flicker.measure_flicker(frames, raw)
    fixed = list(flicker.deflicker_frames(frames, raw, 0.6))
    after = flicker.measure_flicker(frames, fixed)
    assert before["pairs"] == after["pairs"] == 7
    assert after["warped_error"] < 0.8 * before["warped_error"], (before, after)
    assert after["static_change"] <= before["static_change"]


def test_stable_output_has_no_flicker_and_zero_strength_changes_nothing():
    frames = panning_frames(5)
    raw = _flickering(frames)
    assert flicker.measure_flicker(frames, frames[:1] * 5)["static_change"] == 0.0
    assert all(np.array_equal(a, b) for a, b in zip(flicker.deflicker_frames(frames, raw, 0.0), raw))
    first = next(flicker.deflicker_frames(frames, raw, 0.9))
    assert np.array_equal(first, raw[0])  # nothing to blend with yet


def test_float_outputs_are_measured_like_uint8():
    frames = panning_frames(4)
    raw = _flickering(frames)
    as_float = [r.astype(np.float32) / 255.0 for r in raw]
    a, b = flicker.measure_flicker(frames, raw), flicker.measure_flicker(frames, as_float)
    assert a["warped_error"] == pytest.approx(b["warped_error"], rel=1e-5)


def test_single_frame_and_size_change_give_no_pair():
    frames = panning_frames(1)
    result = flicker.measure_flicker(frames, frames)
    assert result["pairs"] == 0 and np.isnan(result["warped_error"]) and np.isnan(result["static_change"])
    motion = flicker.Motion()
    motion.update(panning_frames(1)[0])
    motion.update(panning_frames(1, size=(32, 24))[0])  # another size: the flow starts again
    assert motion.maps is None and motion.reliability is None


def test_reliability_is_a_weight_in_0_1():
    motion = flicker.Motion()
    for f in panning_frames(2):
        motion.update(f)
    assert motion.reliability is not None and motion.static is not None
    assert motion.reliability.min() >= 0.0 and motion.reliability.max() <= 1.0
    assert motion.reliability.shape == motion.static.shape == (48, 64)


@pytest.mark.parametrize("strength", [-0.1, 1.0, 1.5, float("nan")])
def test_strength_out_of_range(strength):
    with pytest.raises(ConfigError, match="between 0 \\(off\\) and 1 \\(exclusive\\)"):
        flicker.Deflicker(strength)
