"""The torch-free engine: every ONNX model fastnst runs, with onnxruntime alone (no torch, lightning or datasets).

    import fastnst
    out = fastnst.stylize("photo.jpg", "wave.onnx")           # a PIL image, same size as the photo

    from fastnst.runtime import Stylizer
    stylizer = Stylizer("wave.onnx", providers="auto", threads=4)
    array_out = stylizer.stylize(frame)                         # HxWx3 uint8 in -> HxWx3 uint8 out
    outs = stylizer.stylize_many(frames, batch_size=4)          # a list, same order
    for out in stylizer.stylize_iter(camera_frames()): ...      # a stream of frames

The rooms, from the bottom up:

- :mod:`~fastnst.runtime.providers`: execution providers, session options, threads;
- :mod:`~fastnst.runtime.session`: :class:`Model`, the one model/session object (contract check, metadata,
  sessions of rewritten variants built on first use);
- :mod:`~fastnst.runtime.roundtrip`: an image in, the same kind out (PIL/path/bytes, arrays of any dtype);
- :mod:`~fastnst.runtime.tiling`, :mod:`~fastnst.runtime.rewrite`: tiles for any image size with seamless
  instance norms; exact graph rewrites for speed (both rewrite graphs with the ``onnx`` package, imported
  only when a variant is built);
- :mod:`~fastnst.runtime.blend`: a multi-style model's style choice to blend weights;
- :mod:`~fastnst.runtime.stylizer`: :class:`Stylizer` (and the :class:`StylizerBase` a torch stylizer shares);
- :mod:`~fastnst.runtime.upscaler`, :mod:`~fastnst.runtime.strokes`: super-resolution and stroke size, on the
  same model object, round trip and tiler; :mod:`~fastnst.runtime.quantize`: int8 copies of a model.

This package face imports numpy, Pillow and fastnst's ground floor; onnxruntime is imported when a model is
opened. It changes no global state of the host app (Pillow's ``Image.MAX_IMAGE_PIXELS`` included).
"""

from __future__ import annotations

from fastnst.runtime.blend import StyleSpec, parse_style
from fastnst.runtime.providers import (AUTO_ORDER, DEVICES, OPTIMIZATION_LEVELS, PROVIDER_ALIASES, ProviderSpec,
                                       available_providers, check_threads, parse_provider, resolve_providers,
                                       session_options)
from fastnst.runtime.session import Model
from fastnst.runtime.stylizer import (AUTO_TILE_PIXELS, DEFAULT_TILE, REWRITE_PIXELS, Settings, Stylizer,
                                      StylizerBase, stylize)
from fastnst.runtime.upscaler import Upscaler

__all__ = ["Stylizer", "stylize", "Upscaler", "Model", "Settings", "StylizerBase", "available_providers",
           "resolve_providers", "parse_provider", "parse_style", "session_options", "check_threads", "StyleSpec",
           "ProviderSpec", "AUTO_TILE_PIXELS", "DEFAULT_TILE", "REWRITE_PIXELS", "AUTO_ORDER", "PROVIDER_ALIASES",
           "DEVICES", "OPTIMIZATION_LEVELS"]
