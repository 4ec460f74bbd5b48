"""The stylise-a-video job: decode, stylise in batches, reduce flicker, encode; audio and frame rate kept.

    from fastnst.runtime import Stylizer
    from fastnst.video import stylize_video
    result = stylize_video("clip.mp4", "out.mp4", Stylizer("wave.onnx"))
    print(result.flicker_before, "->", result.flicker)

Frames are decoded with PyAV (:mod:`fastnst.video.io`), stylised ``batch_size`` at a time by any object with
:class:`fastnst.runtime.Stylizer`'s ``stylize_iter`` (single- or multi-style models, the stroke-scale wrapper
of :mod:`fastnst.runtime.strokes`), made steadier by :mod:`fastnst.video.flicker` and encoded again: the frame
rate (average rate; variable-rate clips become constant-rate), the size and the audio (copied unchanged)
are kept. The output is written to a temporary file beside the target and renamed at the end: nothing
partial is left behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fastnst.constants import MAX_VIDEO_BATCH, max_image_pixels
from fastnst.errors import ConfigError, InputError
from fastnst.image import to_uint8
from fastnst.video.flicker import DEFAULT_DEFLICKER, Deflicker, FlickerMeter, Motion
from fastnst.video.io import (add_video_stream, container_codec, encode_frame, first_line, open_video,
                              require_av, stream_info)

DEFAULT_BATCH = 4  # chosen: 4 frames per onnxruntime call keeps memory bounded at 1080p; not tuned for speed


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

    fmt_codec = container_codec(dst)
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
    av = require_av()
    from fastnst.fileio import atomic_output

    src, dst = Path(src), Path(dst)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_VIDEO_BATCH:
        raise ConfigError(f"the video batch size must be from 1 to {MAX_VIDEO_BATCH}, got {batch_size!r}")
    Deflicker(deflicker)  # range check
    fmt, codec = check_video_output(src, dst, overwrite)
    t0 = time.perf_counter()
    with open_video(src) as container:
        info = stream_info(container, src)
        if info.width * info.height > max_image_pixels():
            raise InputError(f"'{src}' frames are {info.width}x{info.height}, above the pixel cap; downscale the video")
        vin = container.streams.video[0]
        ain = container.streams.audio[0] if container.streams.audio else None
        # the frame count is only an estimate when the container does not store it
        total = info.frames or int(round(info.duration * float(info.fps)))
        done = 0
        motion = Motion() if (deflicker > 0 or measure) else None
        fixer = Deflicker(deflicker)
        meter_out, meter_raw = FlickerMeter(), FlickerMeter()
        with atomic_output(dst, overwrite=overwrite, inputs=[src]) as tmp:
            with av.open(str(tmp), "w", format=fmt) as out:
                vout = add_video_stream(out, codec, info.fps, info.width, info.height)
                aout = None
                if ain is not None:
                    try:
                        aout = out.add_stream_from_template(ain)
                    except (ValueError, av.FFmpegError) as exc:
                        raise InputError(f"the {dst.suffix} container cannot take the audio of '{src.name}' "
                                         f"({info.audio_codec}: {first_line(exc)}); write .mkv or .mp4 "
                                         f"instead") from None
                try:
                    out.start_encoding()
                except (ValueError, av.FFmpegError) as exc:
                    raise InputError(f"the {dst.suffix} container cannot take these streams ({info.codec} video"
                                     f"{', ' + str(info.audio_codec) + ' audio' if ain is not None else ''}: "
                                     f"{first_line(exc)}); write .mkv instead") from None

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
                        raise InputError(f"'{src}' cannot be decoded to the end ({first_line(exc)}); the file "
                                         f"may be truncated or damaged; nothing was written") from None

                pending: list[np.ndarray] = []  # input frames whose outputs have not come back yet
                for styled in stylizer.stylize_iter(frames(), batch_size, **options):
                    arr_in = pending.pop(0)
                    styled = to_uint8(np.asarray(styled))[..., :3]
                    if motion is not None:
                        motion.update(arr_in)
                        if measure:
                            meter_raw.update(motion, styled)
                        styled = fixer.update(motion, styled)
                        if measure:
                            meter_out.update(motion, styled)
                    encode_frame(out, vout, styled)
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
