"""Stylise videos frame by frame with little flicker (torch-free: PyAV, OpenCV, numpy, onnxruntime).

    from fastnst.runtime import Stylizer
    from fastnst.video import stylize_video
    result = stylize_video("clip.mp4", "out.mp4", Stylizer("wave.onnx"))
    print(result.flicker_before, "->", result.flicker)

Frames are decoded with PyAV (FFmpeg), stylised ``batch_size`` at a time by any object with
:class:`fastnst.runtime.Stylizer`'s ``stylize_iter`` (single- or multi-style models, the stroke-scale
wrapper of :mod:`fastnst.runtime.strokes`), and encoded again: the frame rate (average rate; variable-rate
clips become constant-rate), the size and the audio (copied unchanged) are kept. The output is written
to a temporary file beside the target and renamed at the end: nothing partial is left behind.

Flicker. A feed-forward network stylises each frame on its own, so small changes of the input (noise,
compression, motion) change the strokes from frame to frame. :class:`Deflicker` warps the previous
*output* onto the current frame with dense optical flow computed on the *input* frames (OpenCV's DIS
flow), and blends it in where the flow is reliable (where the warped previous input matches the current
input); occluded or badly tracked pixels keep the fresh stylisation. :class:`FlickerMeter` measures
what is left, in [0, 1] pixel units:

* ``warped_error``: mean |O_t - warp(O_{t-1})| over pixels whose flow is reliable (the short-term
  temporal error of Lai et al. 2018, "Learning Blind Video Temporal Consistency");
* ``static_change``: mean |O_t - O_{t-1}| where the input did not change (at most 2 levels of 255),
  which needs no optical flow.

Needs the ``video`` extra: ``pip install 'fastnst[video]'`` (av, opencv-python-headless).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fastnst.constants import max_image_pixels
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
DEFAULT_BATCH = 4  # chosen: 4 frames per onnxruntime call keeps memory bounded at 1080p; not tuned for speed
MAX_BATCH = 64
# Flicker reduction. Chosen: blending 60% of the warped previous output where the flow is reliable halved
# the warped error on both clips of scripts/bench_flicker.py (0.055 -> 0.028, 0.086 -> 0.041); ghosting is
# still to be judged by eye with a trained style. TOLERANCE: the input difference (0..255) at which a
# pixel counts as unreliable (occluded, cross-fading, badly tracked).
DEFAULT_DEFLICKER = 0.6
TOLERANCE = 24.0
STATIC_LEVELS = 2  # input change (0..255) below which a pixel counts as unchanged (static_change)
CRF = 18  # libx264/libvpx quality: visually lossless for stylised frames


def _av() -> Any:
    try:
        import av
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("video stylisation", "video") from exc
    return av


def _cv2() -> Any:
    try:
        import cv2
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("flicker reduction and measurement", "video") from exc
    return cv2


def is_video_path(path: str | os.PathLike) -> bool:
    """True when ``path`` has a video file suffix (.mp4, .mov, .mkv, .webm, .avi, ...)."""
    return Path(str(path)).suffix.lower() in VIDEO_EXTENSIONS


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _open(path: str | os.PathLike) -> Any:
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"video '{path}' does not exist; check the path")
    try:
        return av.open(str(path))
    except av.FFmpegError as exc:
        raise InputError(f"'{path}' is not a readable video ({_first_line(exc)}); pass an .mp4, .mov, .mkv, "
                         f".webm or .avi file") from None


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate, frame count and audio of a video file.

    Raises InputError for a missing or unreadable file, or one without a video stream (e.g. audio only).
    """
    with _open(path) as container:
        return _info(container, Path(path))


def _info(container: Any, path: Path) -> VideoInfo:
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
    av = _av()
    with _open(path) as container:
        _info(container, Path(path))
        try:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise InputError(f"'{path}' cannot be decoded to the end ({_first_line(exc)}); the file may be "
                             f"truncated or damaged") from None


def write_frames(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float | Fraction,
                 overwrite: bool = False, *, crf: int | None = None,
                 audio: tuple[np.ndarray, int] | None = None) -> Path:
    """Encode HxWx3 uint8 frames into a video, atomically. For tests and tools.

    ``crf`` overrides the H.264/VP9 quality (default :data:`CRF`); ``audio`` = (mono float32 samples in
    [-1, 1], sample rate) adds an audio track (AAC, or Opus in .webm).
    """
    from fastnst.fileio import atomic_output

    av = _av()
    fmt, codec = _container(Path(path))
    frames = iter(frames)
    first = next(frames, None)
    with atomic_output(path, overwrite=overwrite) as tmp:
        with av.open(str(tmp), "w", format=fmt) as out:
            if first is None:
                return Path(path)
            stream = _video_stream(out, codec, Fraction(fps).limit_denominator(100000), first.shape[1],
                                   first.shape[0], crf)
            if audio is not None:  # every stream is added before the first packet is muxed
                _encode_audio(out, "libopus" if fmt == "webm" else "aac", *audio)
            for arr in itertools.chain([first], frames):
                _encode(out, stream, arr)
            for packet in stream.encode():
                out.mux(packet)
    return Path(path)


def _encode_audio(out: Any, codec: str, samples: np.ndarray, rate: int) -> None:
    av = _av()
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


def _container(path: Path) -> tuple[str, str]:
    """(PyAV format, video codec) for an output path; ConfigError for an unsupported suffix."""
    av = _av()
    suffix = path.suffix.lower()
    if suffix not in CONTAINERS:
        raise ConfigError(f"cannot write video to '{path.name}': use one of {', '.join(sorted(CONTAINERS))}")
    fmt, codecs = CONTAINERS[suffix]
    for codec in codecs:
        if codec in av.codecs_available:
            return fmt, codec
    raise ConfigError(f"this FFmpeg build has none of the encoders {', '.join(codecs)} for {suffix}; "
                      f"try another container, e.g. -o out.mkv")


def _video_stream(out: Any, codec: str, fps: Fraction, width: int, height: int, crf: int | None = None) -> Any:
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


def _encode(out: Any, stream: Any, arr: np.ndarray) -> None:
    av = _av()
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
    for packet in stream.encode(frame):
        out.mux(packet)


# ------------------------------------------------------------------------------------ flicker


def _flow(prev_gray: np.ndarray, gray: np.ndarray, dis: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sampling maps (map_x, map_y) that pull the previous frame onto the current one."""
    flow = dis.calc(gray, prev_gray, None)  # for each pixel of `gray`: where it was in `prev_gray`
    h, w = gray.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


class _Motion:
    """Optical flow between consecutive *input* frames, shared by the deflicker and the meter."""

    def __init__(self) -> None:
        cv2 = _cv2()
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

    def update(self, motion: _Motion, out: np.ndarray) -> None:
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

    def update(self, motion: _Motion, out: np.ndarray) -> np.ndarray:
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
    motion, meter = _Motion(), FlickerMeter()
    for src, out in zip(inputs, outputs):
        motion.update(src)
        meter.update(motion, out)
    return {"warped_error": meter.warped_error, "static_change": meter.static_change, "pairs": meter.pairs}


def deflicker_frames(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray],
                     strength: float = DEFAULT_DEFLICKER) -> Iterator[np.ndarray]:
    """Flicker-reduced output frames (HxWx3 uint8) for stylised ``outputs`` of ``inputs``."""
    motion, deflicker = _Motion(), Deflicker(strength)
    for src, out in zip(inputs, outputs):
        motion.update(src)
        yield deflicker.update(motion, out)


# ------------------------------------------------------------------------------------ stylize


@dataclass
class VideoResult:
    """What :func:`stylize_video` did. Flicker figures in [0, 1] pixel units (NaN for a single frame)."""

    path: Path
    frames: int
    fps: Fraction
    width: int
    height: int
    audio: bool
    seconds: float
    flicker: dict[str, float] = field(default_factory=dict)  # of the written output
    flicker_before: dict[str, float] = field(default_factory=dict)  # of the per-frame stylisation

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


ProgressFn = Callable[[int, int, float], None]  # (frames done, total frames or 0, frames per second)


def check_video_output(src: Path, dst: Path, overwrite: bool = False) -> tuple[str, str]:
    """Check an output video path before any work: container/codec available, writable, not the input."""
    from fastnst.outputs import check_target

    fmt_codec = _container(dst)
    check_target(dst, overwrite, inputs=[src], known_format=False)  # the container is the video's format
    return fmt_codec


def stylize_video(src: str | os.PathLike, dst: str | os.PathLike, stylizer: Any, *, batch_size: int = DEFAULT_BATCH,
                  deflicker: float = DEFAULT_DEFLICKER, measure: bool = True, overwrite: bool = False,
                  progress: ProgressFn | None = None, **options: Any) -> VideoResult:
    """Stylise every frame of ``src`` into ``dst`` with ``stylizer`` (anything with ``stylize_iter``).

    ``batch_size`` frames go through the network per call. ``deflicker`` is the flicker-reduction
    strength (0 = off; see :class:`Deflicker`). ``measure`` computes the flicker of the output and of
    the plain per-frame stylisation (the optical flow is shared). ``options`` go to ``stylize_iter``
    (``strength``, ``preserve_color``, ``style``, ``tile``). Audio is copied unchanged.

    Raises InputError (missing, unreadable, truncated video; no video stream; frames above the pixel
    cap), ConfigError (unsupported output suffix, bad options), OutputExistsError; the output appears
    only when complete.
    """
    av = _av()
    from fastnst.fileio import atomic_output

    src, dst = Path(src), Path(dst)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        raise ConfigError(f"the video batch size must be from 1 to {MAX_BATCH}, got {batch_size!r}")
    Deflicker(deflicker)  # range check
    fmt, codec = check_video_output(src, dst, overwrite)
    t0 = time.perf_counter()
    with _open(src) as container:
        info = _info(container, src)
        if info.width * info.height > max_image_pixels():
            raise InputError(f"'{src}' frames are {info.width}x{info.height}, above the pixel cap; downscale the video")
        vin = container.streams.video[0]
        ain = container.streams.audio[0] if container.streams.audio else None
        # the frame count is only an estimate when the container does not store it
        total = info.frames or int(round(info.duration * float(info.fps)))
        done = 0
        motion = _Motion() if (deflicker > 0 or measure) else None
        fixer = Deflicker(deflicker)
        meter_out, meter_raw = FlickerMeter(), FlickerMeter()
        with atomic_output(dst, overwrite=overwrite, inputs=[src]) as tmp:
            with av.open(str(tmp), "w", format=fmt) as out:
                vout = _video_stream(out, codec, info.fps, info.width, info.height)
                aout = None
                if ain is not None:
                    try:
                        aout = out.add_stream_from_template(ain)
                    except (ValueError, av.FFmpegError) as exc:
                        raise InputError(f"the {dst.suffix} container cannot take the audio of '{src.name}' "
                                         f"({info.audio_codec}: {_first_line(exc)}); write .mkv or .mp4 instead") from None
                try:
                    out.start_encoding()
                except (ValueError, av.FFmpegError) as exc:
                    raise InputError(f"the {dst.suffix} container cannot take these streams ({info.codec} video"
                                     f"{', ' + str(info.audio_codec) + ' audio' if ain is not None else ''}: "
                                     f"{_first_line(exc)}); write .mkv instead") from None

                def frames() -> Iterator[np.ndarray]:
                    streams = [vin] + ([ain] if ain is not None else [])
                    try:
                        for packet in container.demux(*streams):
                            if packet.stream.type == "audio":
                                if aout is not None and packet.dts is not None:
                                    packet.stream = aout
                                    out.mux(packet)
                                continue
                            for frame in packet.decode():
                                arr = frame.to_ndarray(format="rgb24")
                                pending.append(arr)
                                yield arr
                    except av.FFmpegError as exc:
                        raise InputError(f"'{src}' cannot be decoded to the end ({_first_line(exc)}); the file "
                                         f"may be truncated or damaged; nothing was written") from None

                pending: list[np.ndarray] = []  # input frames whose outputs have not come back yet
                for styled in stylizer.stylize_iter(frames(), batch_size, **options):
                    arr_in = pending.pop(0)
                    styled = _as_uint8(styled)
                    if motion is not None:
                        motion.update(arr_in)
                        if measure:
                            meter_raw.update(motion, styled)
                        styled = fixer.update(motion, styled)
                        if measure:
                            meter_out.update(motion, styled)
                    _encode(out, vout, styled)
                    done += 1
                    if progress is not None:
                        progress(done, max(total, done), done / max(time.perf_counter() - t0, 1e-9))
                if done == 0:
                    raise InputError(f"'{src}' has a video stream but no decodable frames; the file may be damaged")
                for packet in vout.encode():
                    out.mux(packet)
    flicker = {"warped_error": meter_out.warped_error, "static_change": meter_out.static_change} if measure else {}
    before = {"warped_error": meter_raw.warped_error, "static_change": meter_raw.static_change} if measure else {}
    return VideoResult(path=dst, frames=done, fps=info.fps, width=info.width, height=info.height,
                       audio=ain is not None, seconds=time.perf_counter() - t0, flicker=flicker, flicker_before=before)


def _as_uint8(image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return arr[..., :3]


__all__ = ["stylize_video", "probe", "read_frames", "write_frames", "measure_flicker", "deflicker_frames",
           "Deflicker", "FlickerMeter", "VideoInfo", "VideoResult", "is_video_path", "VIDEO_EXTENSIONS"]
