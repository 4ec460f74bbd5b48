"""Stylise a whole dataset, on one machine or a Ray cluster: style augmentation, reproducible and resumable.

    import fastnst
    fastnst.augment("photos.parquet", "stylized/", styles="mosaic,pointillist,stained_glass", seed=0)

    from fastnst.augment import StyleAugmenter      # the same stylisation inside your own pipeline
    ds = ds.map_batches(StyleAugmenter, fn_constructor_kwargs={"styles": "mosaic"}, concurrency=4)

The rooms: :mod:`~fastnst.augment.draws` (which style and strength a row gets), :mod:`~fastnst.augment.render`
(rows through the one engine, the style-picture extension point), :mod:`~fastnst.augment.augmenter` (the
callable class), :mod:`~fastnst.augment.parts` (a source split into parts), :mod:`~fastnst.augment.store`
(the output folder, resumable), :mod:`~fastnst.augment.engines` (local and Ray) and
:mod:`~fastnst.augment.job` (:func:`augment`, the options, checked once). Torch-free: the base install
augments folders; parquet files and hub datasets need the ``augment`` extra (pyarrow, datasets), the Ray
engine the ``ray`` extra. Importing this package imports none of them.

This package is callable: ``fastnst.augment(...)`` is :func:`fastnst.augment.job.augment`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from fastnst.augment.augmenter import Result, StyleAugmenter
from fastnst.augment.draws import Draws, StyleChoice, parse_strength, parse_styles
from fastnst.augment.job import AugmentOptions, Report, augment


class _CallablePackage(types.ModuleType):
    """``fastnst.augment`` is both this package and its main function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Report:
        return augment(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage

__all__ = ["augment", "AugmentOptions", "Report", "StyleAugmenter", "Result", "Draws", "StyleChoice",
           "parse_styles", "parse_strength"]
