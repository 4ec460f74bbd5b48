"""Video: a tiny synthetic clip (a panning crop of a bundled photo) round-trips frame count, rate, size
and audio through ``fastnst stylize clip.mp4 -o out.mp4``; flicker is lower with reduction than without;
bad videos fail with one line and leave nothing behind."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from fastnst import cli  # noqa: E402
from fastnst.networks.transformer import TransformerNet  # noqa: E402
from fastnst.runtime import Stylizer  # noqa: E402
from tests.conftest import plain_onnx  # noqa: E402
from fastnst.video import (Deflicker, deflicker_frames, measure_flicker, probe, read_frames,  # noqa: E402
                           stylize_video, write_frames)

ASSETS = Path(__file__).resolve().parent.parent / "fastnst" / "assets"
FPS = Fraction(12, 1)


def panning_frames(n: int = 6, size: tuple[int, int] = (64, 48), step: int = 3, noise: float = 3.0,
                   seed: int = 0) -> list[np.ndarray]:
    """A camera panning across a bundled photo, with a little sensor noise (the usual flicker source)."""
    photo = np.asarray(Image.open(ASSETS / "content-chelsea.jpg").convert("RGB"), np.float32)
    rng = np.random.default_rng(seed)
    w, h = size
    frames = []
    for i in range(n):
        crop = photo[20:20 + h, 10 + i * step:10 + i * step + w]
        frames.append(np.clip(crop + rng.normal(0, noise, crop.shape), 0, 255).astype(np.uint8))
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: Fraction = FPS, audio: bool = True) -> Path:
    """An mp4 with H.264 video and (optionally) a 440 Hz AAC tone as long as the video."""
    t = np.arange(int(16000 * len(frames) / fps)) / 16000.0
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return write_frames(path, frames, fps, crf=10, audio=(tone, 16000) if audio else None)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(7)
    net = TransformerNet(channels=(4, 8, 8), num_residual=1, end_kernel=3).eval()
    return plain_onnx(net, tmp_path_factory.mktemp("video") / "tiny.onnx")


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.mp4", panning_frames())


def test_synthetic_clip_round_trip(tmp_path):
    frames = panning_frames(5)
    path = write_frames(tmp_path / "plain.mkv", frames, FPS)
    info = probe(path)
    assert (info.width, info.height, info.fps) == (64, 48, FPS) and not info.has_audio
    back = list(read_frames(path))
    assert len(back) == 5
    assert np.abs(back[2].astype(int) - frames[2]).mean() < 4  # near-lossless encoding


def test_stylize_clip_keeps_count_rate_size_audio(model, clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert cli.main(["stylize", "--model", str(model), str(clip), "-o", str(out)]) == 0
    src, dst = probe(clip), probe(out)
    assert (dst.width, dst.height, dst.fps) == (src.width, src.height, src.fps) == (64, 48, FPS)
    assert len(list(read_frames(out))) == len(list(read_frames(clip))) == 6
    assert dst.has_audio and dst.audio_codec == "aac"
    assert abs(dst.duration - src.duration) < 0.2
    err = capsys.readouterr().err
    assert "flicker" in err and "6 frames" in err
    # odd sizes are kept exactly too (4:4:4 instead of 4:2:0, which needs even sides)
    odd = write_frames(tmp_path / "odd.mkv", [f[:47, :63] for f in panning_frames(3)], FPS)
    out2 = tmp_path / "odd-out.mkv"
    assert cli.main(["stylize", "--model", str(model), str(odd), "-o", str(out2)]) == 0
    assert (probe(out2).width, probe(out2).height) == (63, 47)
    assert len(list(read_frames(out2))) == 3


def test_flicker_lower_with_reduction(model):
    frames = panning_frames(8, noise=4.0)
    stylizer = Stylizer(model)
    raw = [(np.clip(stylizer.run(f), 0, 1) * 255 + 0.5).astype(np.uint8) for f in frames]
    before = measure_flicker(frames, raw)
    fixed = list(deflicker_frames(frames, raw, 0.6))
    after = measure_flicker(frames, fixed)
    assert before["pairs"] == after["pairs"] == 7
    assert after["warped_error"] < 0.8 * before["warped_error"], (before, after)
    # a perfectly stable output has no flicker; reduction off changes nothing
    assert measure_flicker(frames, frames[:1] * 8)["static_change"] == 0.0
    assert all(np.array_equal(a, b) for a, b in zip(deflicker_frames(frames, raw, 0.0), raw))


def test_stylize_video_reports_both_measures(model, clip, tmp_path):
    stylizer = Stylizer(model)
    on = stylize_video(clip, tmp_path / "on.mkv", stylizer, batch_size=3, deflicker=0.6)
    off = stylize_video(clip, tmp_path / "off.mkv", stylizer, batch_size=3, deflicker=0.0)
    assert on.frames == off.frames == 6 and on.audio
    assert on.flicker["warped_error"] < on.flicker_before["warped_error"]
    assert off.flicker["warped_error"] == pytest.approx(off.flicker_before["warped_error"])
    with pytest.raises(Exception, match="between 0"):
        Deflicker(1.0)


def test_bad_videos(model, clip, tmp_path, capsys):
    audio_only = tmp_path / "tone.mp4"
    with av.open(str(audio_only), "w") as out:
        aus = out.add_stream("aac", rate=16000)
        aus.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in list(aus.encode(frame)) + list(aus.encode()):
            out.mux(packet)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    garbage = tmp_path / "junk.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    cases = [(audio_only, "out.mp4", "no video stream"), (truncated, "out.mp4", "video"),
             (garbage, "out.mp4", "not a readable video"), (clip, "out.xyz", ""),
             (clip, "out.webm", "cannot take the audio")]  # WebM takes no AAC
    for src, name, message in cases:
        out = tmp_path / name
        rc = cli.main(["stylize", "--model", str(model), str(src), "-o", str(out)])
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("fastnst: error")]
        assert rc == 2 and len(err) == 1 and message in err[0], (src, err)
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    # an existing output is kept
    existing = tmp_path / "keep.mp4"
    existing.write_bytes(b"precious")
    assert cli.main(["stylize", "--model", str(model), str(clip), "-o", str(existing)]) == 2
    assert existing.read_bytes() == b"precious"
