"""Where an optimisation starts: its input images (paths, PIL images, arrays, tensors), the image it starts
from (``init``) and the device it runs on."""

from __future__ import annotations

import os
from typing import Union

import numpy as np
import torch
from PIL import Image

from fastnst.errors import ConfigError, FastNSTError, unknown_choice
from fastnst.image import load_rgb, resize, to_pil, to_tensor
from fastnst.optimize.settings import INIT_CHOICES

ImageLike = Union[str, os.PathLike, bytes, Image.Image, np.ndarray, torch.Tensor]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """'auto'/None -> CUDA when available, else CPU; otherwise the named device (checked)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(str(device))
    except RuntimeError as exc:
        raise ConfigError(f"unknown device '{device}'; use cpu, cuda, cuda:N or auto") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' asked for but CUDA is not available here; use --device cpu")
    return dev


def as_pil(source: ImageLike, what: str) -> Image.Image:
    """``source`` as a PIL RGB image (a tensor (1, 3, H, W) in [0, 1] or anything :func:`fastnst.image.load_rgb`
    reads); errors name ``what`` ('content image', ...)."""
    if isinstance(source, torch.Tensor):
        return to_pil(source)
    try:
        return load_rgb(source)
    except FastNSTError as exc:
        raise type(exc)(f"{what}: {exc}") from None


def device_image(img: Image.Image, wh: tuple[int, int], device: torch.device) -> torch.Tensor:
    """``img`` resized to ``wh`` = (width, height) as a (1, 3, H, W) tensor on ``device``."""
    return to_tensor(resize(img, size=wh)).to(device)


def load_init(init: str | ImageLike) -> str | Image.Image:
    """Check ``init`` where it enters: a keyword of :data:`INIT_CHOICES` stays a string, anything else is loaded
    as an image; ConfigError (did you mean) for a string that can only be meant as an unknown keyword (no such
    file, no path separator, no suffix)."""
    if isinstance(init, str) and init in INIT_CHOICES:
        return init
    if isinstance(init, str) and not os.path.exists(init) and os.sep not in init and "." not in init:
        raise unknown_choice("init", init, INIT_CHOICES + ("PATH",))
    return as_pil(init, "init image")


def init_image(init: str | Image.Image, wh: tuple[int, int], content: Image.Image | None,
               style: Image.Image | None, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    """The starting image (1, 3, H, W) of size ``wh`` for ``init`` as :func:`load_init` returned it: white
    noise (Gatys), the content, the (first) style, or the given image, resized. The caller has refused the
    keywords it has no image for."""
    w, h = wh
    if init == "noise":
        return torch.rand((1, 3, h, w), generator=generator).to(device)  # Gatys: white noise
    start = content if init == "content" else style if init == "style" else init
    return device_image(start, wh, device)  # type: ignore[arg-type]
