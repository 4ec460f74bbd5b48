"""Video containers (fastnst.video.io): encode, probe and decode round trips, audio tracks, suffixes and codecs,
missing or unreadable files in one line."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")

from fastnst.errors import ConfigError, InputError, OutputExistsError  # noqa: E402
from fastnst.video import io  # noqa: E402
from tests.videoclips import FPS, panning_frames, write_clip  # noqa: E402


def test_synthetic_clip_round_trip(tmp_path):
    frames = panning_frames(5)
    path = io.write_frames(tmp_path / "plain.mkv", frames, FPS)
    info = io.probe(path)
    assert (info.width, info.height, info.fps) == (64, 48, FPS) and not info.has_audio
    back = list(io.read_frames(path))
    assert len(back) == 5 and back[0].dtype == np.uint8 and back[0].shape == (48, 64, 3)
    assert np.abs(back[2].astype(int) - frames[2]).mean() < 4  # near-lossless encoding


def test_audio_track_and_duration(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", panning_frames(6))
    info = io.probe(path)
    assert info.has_audio and info.audio_codec == "aac" and info.codec in ("h264", "mpeg4")
    assert info.duration == pytest.approx(6 / 12, abs=0.1)


def test_odd_sizes_are_kept(tmp_path):
    path = io.write_frames(tmp_path / "odd.mp4", [f[:47, :63] for f in panning_frames(2)], Fraction(25, 2))
    info = io.probe(path)
    assert (info.width, info.height, info.fps) == (63, 47, Fraction(25, 2))


@pytest.mark.parametrize("name, video", [("a.MP4", True), ("b.webm", True), ("c.ogv", True), ("d.png", False),
                                         ("mp4", False)])
def test_is_video_path(name, video):
    assert io.is_video_path(name) is video


def test_container_codec_by_suffix(tmp_path):
    assert io.container_codec(tmp_path / "x.mkv")[0] == "matroska"
    assert io.container_codec(tmp_path / "x.avi") == ("avi", "mpeg4")
    with pytest.raises(ConfigError, match="cannot write video to 'x.mpg': use one of .avi, .m4v, .mkv, .mov"):
        io.container_codec(tmp_path / "x.mpg")  # read, but not written


def test_missing_unreadable_and_existing(tmp_path):
    with pytest.raises(InputError, match="video '.*nothere.mp4' does not exist"):
        io.probe(tmp_path / "nothere.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 50)
    with pytest.raises(InputError, match="is not a readable video"):
        list(io.read_frames(junk))
    with pytest.raises(OutputExistsError):
        io.write_frames(junk, panning_frames(1), FPS)
    assert junk.read_bytes().startswith(b"\x00not a video")


def test_first_line_is_short():
    assert io.first_line(ValueError("one\ntwo")) == "one"
    assert io.first_line(ValueError("")) == "ValueError"
    assert len(io.first_line(ValueError("x" * 500))) == 200
