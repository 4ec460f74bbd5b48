"""Stylise videos frame by frame with little flicker (torch-free: PyAV, OpenCV, numpy, onnxruntime).

    from fastnst.runtime import Stylizer
    from fastnst.video import stylize_video
    result = stylize_video("clip.mp4", "out.mp4", Stylizer("wave.onnx"))

* :mod:`fastnst.video.io`: containers: probe, decode, encode (PyAV), audio copied;
* :mod:`fastnst.video.flicker`: the flicker measure (:class:`FlickerMeter`) and its reduction
  (:class:`Deflicker`), both on the optical flow of the input frames (:class:`Motion`, OpenCV);
* :mod:`fastnst.video.job`: :func:`stylize_video`, the job that puts them together.

This face only re-exports; PyAV and OpenCV are imported when a video is opened or a flow computed. Needs
the ``video`` extra: ``pip install 'fastnst[video]'`` (av, opencv-python-headless).
"""

from __future__ import annotations

from fastnst.video.flicker import DEFAULT_DEFLICKER, Deflicker, FlickerMeter, Motion, deflicker_frames, measure_flicker
from fastnst.video.io import (AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, VideoInfo, is_media_file, is_video_path, probe,
                              read_frames, write_frames)
from fastnst.video.job import DEFAULT_BATCH, VideoResult, check_video_output, stylize_video

__all__ = ["stylize_video", "check_video_output", "probe", "read_frames", "write_frames", "measure_flicker",
           "deflicker_frames", "Deflicker", "FlickerMeter", "Motion", "VideoInfo", "VideoResult", "is_video_path",
           "is_media_file", "AUDIO_EXTENSIONS", "VIDEO_EXTENSIONS", "DEFAULT_BATCH", "DEFAULT_DEFLICKER"]
