"""The style images of a training run: read at their training size, and named.

A run's output files are named after its style image's file stem (``wave.jpg`` -> ``wave.safetensors``);
several styles get distinct names (repeated stems numbered) and the run is named 'a+b+c'.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from fastnst import image as fimage
from fastnst.errors import InputError

# Style image size when not given: keep its size, but at most this long side (chosen: Gram targets of
# a 512 px painting carry its brush strokes at the scale 256 px training crops see them; cheap once).
MAX_STYLE_SIZE = 512
# The smallest side a style image may have after resizing (the VGG's pooling stages need some pixels).
MIN_STYLE_SIDE = 16


def style_name(style: str | os.PathLike) -> str:
    """The style's name used for output files: the style image's file stem."""
    return Path(style).stem or "style"


def distinct_names(styles: Sequence[str | os.PathLike]) -> list[str]:
    """Distinct names for several style images: their file stems, repeated stems numbered (a, a_2)."""
    names: list[str] = []
    for style in styles:
        base = name = style_name(style)
        k = 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def run_name(names: Sequence[str]) -> str:
    """The name of a run's output files: the style's name, or 'a+b+c' for several (shortened when long)."""
    joined = "+".join(names)
    return joined if len(names) == 1 or len(joined) <= 48 else f"{names[0]}+{len(names) - 1}-more"


def load_style_image(style: str | os.PathLike, style_size: int | None = None) -> torch.Tensor:
    """Read the style image as (1, 3, H, W) in [0, 1]; long side ``style_size`` (None: at most 512).

    InputError when it does not exist, cannot be read or is under 16 pixels after resizing."""
    if not Path(style).is_file():
        raise InputError(f"style image '{style}' does not exist; pass --style PATH of a painting")
    img = fimage.load_rgb(style)
    if style_size is None:
        if max(img.size) > MAX_STYLE_SIZE:
            img = fimage.resize(img, long_edge=MAX_STYLE_SIZE)
    else:
        img = fimage.resize(img, long_edge=int(style_size))
    if min(img.size) < MIN_STYLE_SIDE:
        raise InputError(f"style image '{style}' is {img.width}x{img.height} pixels after resizing; "
                         f"use a larger image or --style-size")
    return fimage.to_tensor(img)


__all__ = ["MAX_STYLE_SIZE", "style_name", "distinct_names", "run_name", "load_style_image"]
