"""Video containers: probe, decode and encode with PyAV (FFmpeg); the audio stream is copied unchanged.

Frames are HxWx3 uint8 RGB. Needs the ``video`` extra (``pip install 'fastnst[video]'``); PyAV is imported
only when a video is opened, so importing this module is cheap.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fastnst.errors import ConfigError, InputError, MissingDependencyError

# Output containers fastnst writes, by suffix: (PyAV format, video codecs in order of preference).
CONTAINERS: dict[str, tuple[str, tuple[str, ...]]] = {
    ".mp4": ("mp4", ("libx264", "h264", "mpeg4")),
    ".m4v": ("mp4", ("libx264", "h264", "mpeg4")),
    ".mov": ("mov", ("libx264", "h264", "mpeg4")),
    ".mkv": ("matroska", ("libx264", "h264", "mpeg4")),
    ".webm": ("webm", ("libvpx-vp9", "libvpx")),
    ".avi": ("avi", ("mpeg4", "mjpeg")),
}
VIDEO_EXTENSIONS = frozenset(CONTAINERS) | {".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp", ".ogv"}
CRF = 18  # libx264/libvpx quality: visually lossless for stylised frames


def require_av() -> Any:
    try:
        import av
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("video stylisation", "video") from exc
    return av


def is_video_path(path: str | os.PathLike) -> bool:
    """True when ``path`` has a video file suffix (.mp4, .mov, .mkv, .webm, .avi, ...)."""
    return Path(str(path)).suffix.lower() in VIDEO_EXTENSIONS


# Audio-only containers: routed to the video reader, which says that they hold no video.
AUDIO_EXTENSIONS = frozenset({".m4a", ".m4b", ".mp3", ".wav", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma"})
# ISO media brands that are still images (HEIF, AVIF), not movies.
_IMAGE_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis")


def is_media_file(path: str | os.PathLike, image_suffixes: frozenset[str] | set[str] = frozenset()) -> bool:
    """True when ``path`` is a video or audio container rather than an image: by its suffix, or, for a file whose
    suffix is none of ``image_suffixes``, by its first bytes (ISO media 'ftyp' other than HEIF/AVIF, Matroska and
    WebM, AVI and WAVE, Ogg, FLAC, MP3, FLV, MPEG program and transport streams). Reads at most 400 bytes."""
    suffix = Path(str(path)).suffix.lower()
    if suffix in VIDEO_EXTENSIONS or suffix in AUDIO_EXTENSIONS:
        return True
    if suffix in image_suffixes:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(400)
    except OSError:
        return False
    if head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    if head[:4] == b"RIFF":
        return head[8:12] in (b"AVI ", b"WAVE")
    if len(head) > 376 and head[0] == head[188] == 0x47:  # MPEG transport stream sync bytes
        return True
    return head.startswith((b"\x1aE\xdf\xa3", b"OggS", b"fLaC", b"ID3", b"FLV", b"\x00\x00\x01\xba",
                            b"\x00\x00\x01\xb3", b"\xff\xfb", b"\xff\xf3"))


@dataclass
class VideoInfo:
    """What :func:`probe` found: size, frame rate, frame count (0 when unknown), audio."""

    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    codec: str
    has_audio: bool
    audio_codec: str | None = None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def open_video(path: str | os.PathLike) -> Any:
    av = require_av()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"video '{path}' does not exist; check the path")
    try:
        return av.open(str(path))
    except av.FFmpegError as exc:
        raise InputError(f"'{path}' is not a readable video ({first_line(exc)}); pass an .mp4, .mov, .mkv, "
                         f".webm or .avi file") from None


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate, frame count and audio of a video file.

    Raises InputError for a missing or unreadable file, or one without a video stream (e.g. audio only).
    """
    with open_video(path) as container:
        return stream_info(container, Path(path))


def stream_info(container: Any, path: Path) -> VideoInfo:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise InputError(f"'{path}' has no video stream ({', '.join(kinds)}); pass a video file")
    vs = container.streams.video[0]
    ctx = vs.codec_context
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    if not rate or rate <= 0:
        raise InputError(f"'{path}' has no usable frame rate; re-encode it (e.g. ffmpeg -i IN -r 30 OUT.mp4)")
    if not ctx.width or not ctx.height:
        raise InputError(f"'{path}' has a video stream without a frame size; the file may be damaged")
    duration = float(vs.duration * vs.time_base) if vs.duration and vs.time_base else (
        container.duration / 1e6 if container.duration else 0.0)
    audio = container.streams.audio[0] if container.streams.audio else None
    return VideoInfo(width=int(ctx.width), height=int(ctx.height), fps=Fraction(rate), frames=int(vs.frames or 0),
                     duration=duration, codec=str(ctx.name), has_audio=audio is not None,
                     audio_codec=str(audio.codec_context.name) if audio is not None else None)


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode every frame of the first video stream as HxWx3 uint8 RGB."""
    av = require_av()
    with open_video(path) as container:
        stream_info(container, Path(path))
        try:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise InputError(f"'{path}' cannot be decoded to the end ({first_line(exc)}); the file may be "
                             f"truncated or damaged") from None


def write_frames(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float | Fraction,
                 overwrite: bool = False, *, crf: int | None = None,
                 audio: tuple[np.ndarray, int] | None = None) -> Path:
    """Encode HxWx3 uint8 frames into a video, atomically. For tests and tools.

    ``crf`` overrides the H.264/VP9 quality (default :data:`CRF`); ``audio`` = (mono float32 samples in
    [-1, 1], sample rate) adds an audio track (AAC, or Opus in .webm).
    """
    from fastnst.fileio import atomic_output

    av = require_av()
    fmt, codec = container_codec(Path(path))
    frames = iter(frames)
    first = next(frames, None)
    with atomic_output(path, overwrite=overwrite) as tmp:
        with av.open(str(tmp), "w", format=fmt) as out:
            if first is None:
                return Path(path)
            stream = add_video_stream(out, codec, Fraction(fps).limit_denominator(100000), first.shape[1],
                                   first.shape[0], crf)
            if audio is not None:  # every stream is added before the first packet is muxed
                _encode_audio(out, "libopus" if fmt == "webm" else "aac", *audio)
            for arr in itertools.chain([first], frames):
                encode_frame(out, stream, arr)
            for packet in stream.encode():
                out.mux(packet)
    return Path(path)


def _encode_audio(out: Any, codec: str, samples: np.ndarray, rate: int) -> None:
    av = require_av()
    stream = out.add_stream(codec, rate=int(rate))
    stream.layout = "mono"
    samples = np.asarray(samples, dtype=np.float32)
    for k in range(0, len(samples), 1024):
        frame = av.AudioFrame.from_ndarray(samples[k:k + 1024][None], format="flt", layout="mono")
        frame.sample_rate, frame.pts = int(rate), k
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def container_codec(path: Path) -> tuple[str, str]:
    """(PyAV format, video codec) for an output path; ConfigError for an unsupported suffix."""
    av = require_av()
    suffix = path.suffix.lower()
    if suffix not in CONTAINERS:
        raise ConfigError(f"cannot write video to '{path.name}': use one of {', '.join(sorted(CONTAINERS))}")
    fmt, codecs = CONTAINERS[suffix]
    for codec in codecs:
        if codec in av.codecs_available:
            return fmt, codec
    raise ConfigError(f"this FFmpeg build has none of the encoders {', '.join(codecs)} for {suffix}; "
                      f"try another container, e.g. -o out.mkv")


def add_video_stream(out: Any, codec: str, fps: Fraction, width: int, height: int, crf: int | None = None) -> Any:
    crf = CRF if crf is None else int(crf)
    stream = out.add_stream(codec, rate=fps)
    stream.width, stream.height = int(width), int(height)
    odd = width % 2 or height % 2
    if codec in ("libx264", "h264"):
        # 4:2:0 needs even sides; odd sizes are kept exactly with 4:4:4 instead of being cropped
        stream.pix_fmt = "yuv444p" if odd else "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
    elif codec.startswith("libvpx"):
        stream.pix_fmt = "yuv444p" if odd and codec == "libvpx-vp9" else "yuv420p"
        stream.options = {"crf": str(crf + 12), "b": "0"}
    elif codec == "mjpeg":
        stream.pix_fmt = "yuvj444p"
    else:
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = max(1_000_000, int(width * height * float(fps) * 0.2))
    return stream


def encode_frame(out: Any, stream: Any, arr: np.ndarray) -> None:
    av = require_av()
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
    for packet in stream.encode(frame):
        out.mux(packet)
