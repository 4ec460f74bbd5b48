"""The video job (fastnst.video.job) and the package face: a tiny synthetic clip (a panning crop of a bundled
photo) keeps frame count, rate, size and audio through ``fastnst stylize clip.mp4 -o out.mp4``; both flicker
measures are reported; bad videos fail with one line and leave nothing behind. Containers: test_video_io.py;
flicker: test_video_flicker.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from fastnst import cli  # noqa: E402
from fastnst.constants import MAX_VIDEO_BATCH  # noqa: E402
from fastnst.errors import ConfigError  # noqa: E402
from fastnst.networks.transformer import TransformerNet  # noqa: E402
from fastnst.runtime import Stylizer  # noqa: E402
from fastnst.video import Deflicker, probe, read_frames, stylize_video, write_frames  # noqa: E402
from tests.conftest import plain_onnx  # noqa: E402
from tests.videoclips import FPS, panning_frames, write_clip  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(7)
    net = TransformerNet(channels=(4, 8, 8), num_residual=1, end_kernel=3).eval()
    return plain_onnx(net, tmp_path_factory.mktemp("video") / "tiny.onnx")


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.mp4", panning_frames())


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


def _audio_only(path):
    with av.open(str(path), "w", format="mp4") as out:
        aus = out.add_stream("aac", rate=16000)
        aus.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in list(aus.encode(frame)) + list(aus.encode()):
            out.mux(packet)
    return path


@pytest.mark.parametrize("name", ["audio_only.m4a", "sound"])  # by suffix, and by content (no suffix)
def test_media_are_routed_by_content_and_the_answer_fits_the_question(model, tmp_path, capsys, name):
    """`audio_only.m4a -o v.mp4` said "unsupported output format '.mp4'"."""
    src = _audio_only(tmp_path / name)
    assert cli.main(["stylize", "--model", str(model), str(src), "-o", str(tmp_path / "v.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no video stream (audio)" in err
    assert not (tmp_path / "v.mp4").exists()


def test_two_videos_into_a_folder_and_next_to_their_inputs(model, tmp_path, capsys):
    """Two videos into a folder said "'good.mp4' is not an image Pillow can read"."""
    a = write_clip(tmp_path / "a.mp4", panning_frames(3))
    b = write_clip(tmp_path / "b.mkv", panning_frames(3, seed=1), audio=False)
    assert cli.main(["stylize", "--model", str(model), str(a), str(b), "-o", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mkv"]
    assert len(list(read_frames(tmp_path / "out" / "b.mkv"))) == 3
    assert cli.main(["stylize", "--model", str(model), str(a)]) == 0  # no -o: next to it, named after the style
    assert probe(tmp_path / "a.tiny.mp4").has_audio and "a.tiny.mp4" in capsys.readouterr().err


def test_in_place_on_a_video_says_why(model, clip, capsys):
    """--in-place on a video was refused with "(even with --overwrite)": the answer to another question."""
    assert cli.main(["stylize", "--model", str(model), str(clip), "-o", str(clip), "--in-place"]) == 2
    err = capsys.readouterr().err
    assert "--in-place replaces images" in err and "even with" not in err


def test_batch_size_is_checked_against_the_one_bound(model, clip, tmp_path):
    stylizer = Stylizer(model)
    for bad in (0, MAX_VIDEO_BATCH + 1, 2.0, True):
        with pytest.raises(ConfigError, match=f"the video batch size must be from 1 to {MAX_VIDEO_BATCH}, got"):
            stylize_video(clip, tmp_path / "out.mp4", stylizer, batch_size=bad)
    assert stylize_video(clip, tmp_path / "out.mp4", stylizer, batch_size=MAX_VIDEO_BATCH, measure=False).frames == 6
    assert not list(tmp_path.glob("out.mp4.*"))


def test_the_face_re_exports_and_imports_neither_pyav_nor_opencv():
    code = ("import sys; import fastnst.video as v; import fastnst.video.io, fastnst.video.flicker, fastnst.video.job; "
            "assert v.stylize_video is fastnst.video.job.stylize_video and v.probe is fastnst.video.io.probe; "
            "assert v.Deflicker is fastnst.video.flicker.Deflicker; "
            "sys.exit(1 if {'av', 'cv2', 'torch'} & set(sys.modules) else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
