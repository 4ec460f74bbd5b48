"""Overlapping tiles with feathered blending, streamed one row of tiles at a time.

Torch-free (numpy only). A :class:`TileGrid` cuts an H×W image into tiles of ``tile`` pixels that
overlap by ``overlap`` pixels and start on multiples of the network's stride; each tile is stylised
on its own and blended into the result with raised-cosine weights across each overlap (normalised
by the weight sum). Only one band of rows (tile height × image width) is held in float32 at a time,
so peak memory grows with the image width, not with its area.

Instance normalisation would make tiles disagree if each used its own statistics (a patchwork of
slightly different tones). Models written by ``fastnst export`` therefore carry a second path in the
same graph: ``norm_stats`` reports the statistics of every instance norm for ``stats_image`` (the
downscaled whole image), and ``tile``/``tile_stats`` run a tile normalised with them. Tiles then differ from an
untiled run only within a few tens of pixels of their borders, where the feathering hides it; the
seam error is measured in tests/test_runtime.py and scripts/bench_infer.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

# Extra inputs/outputs of exported models for tiling with whole-image statistics (fastnst.export).
# `tile` and `tile_stats` have default values, so plain callers feed only the image.
STATS_INPUT_NAME = "stats_image"  # input: a float32 NCHW image in [0, 1] (downscaled whole image)
NORM_STATS_NAME = "norm_stats"  # output: mean and variance of every instance norm on it, (1, K)
TILE_INPUT_NAME = "tile"  # input: a float32 NCHW tile in [0, 1]
TILE_STATS_NAME = "tile_stats"  # input: (1, K) statistics the tile is normalised with
TILE_OUTPUT_NAME = "stylized_tile"  # output: the stylised tile, float32 NCHW

# Chosen: an eighth of the tile. With whole-image statistics the tiled result differs from the untiled
# one only within ~32 px of a tile border (measured on the fast preset); 128 px at 1024-px tiles hides it.
OVERLAP_FRACTION = 0.125
# Chosen: leaving the outer 30% of each overlap to the neighbouring tile cut the measured seam error
# 15-1000x (fast preset, 128-px tiles: 1.3e-3 -> 5e-6 at 64-px overlap).
EDGE_FRACTION = 0.3


def _spans(n: int, tile: int, overlap: int, stride: int) -> list[tuple[int, int]]:
    """(start, end) of the tiles along an axis of ``n`` pixels.

    Starts are multiples of ``stride`` so that every tile sees the strided convolutions on the same
    pixel grid as the whole image; the last tile reaches the border (it may be up to stride-1 larger).
    """
    if n <= tile:
        return [(0, n)]
    step = tile - overlap
    count = -(-(n - tile) // step) + 1
    last = (n - tile) // stride * stride
    starts = sorted({round(i * last / (count - 1) / stride) * stride for i in range(count)})
    return [(s, s + tile) for s in starts[:-1]] + [(starts[-1], n)]


def _ramp(length: int) -> np.ndarray:
    """Weights rising from ~0 to ~1 over ``length`` samples: ~0 over the outer EDGE_FRACTION (where a
    tile's own border effects live), then a raised cosine."""
    margin = int(length * EDGE_FRACTION)
    inner = max(1, length - 2 * margin)
    t = np.clip((np.arange(length, dtype=np.float64) + 0.5 - margin) / inner, 0.0, 1.0)
    return np.maximum(0.5 - 0.5 * np.cos(np.pi * t), 1e-6).astype(np.float32)


def _weights(spans: list[tuple[int, int]]) -> list[np.ndarray]:
    """1-D blending weights of each tile: ramps across the overlaps with its neighbours, 1 elsewhere."""
    out = []
    for i, (s, e) in enumerate(spans):
        w = np.ones(e - s, dtype=np.float32)
        if i > 0:  # leading edge: overlap with the previous tile
            ov = min(spans[i - 1][1] - s, e - s)
            w[:ov] *= _ramp(ov)
        if i + 1 < len(spans):  # trailing edge: overlap with the next tile
            ov = min(e - spans[i + 1][0], e - s)
            w[e - s - ov:] *= _ramp(ov)[::-1]
        out.append(w)
    return out


class TileGrid:
    """Tiles of an ``height``×``width`` image: ``tile`` pixels (rounded to ``stride``), ``overlap`` pixels.

    ``overlap`` defaults to OVERLAP_FRACTION of the tile. Tiles start on multiples of ``stride``.
    """

    def __init__(self, height: int, width: int, tile: int, overlap: int | None = None, stride: int = 4) -> None:
        tile = max(4 * stride, int(tile) // stride * stride)
        if overlap is None:
            overlap = int(tile * OVERLAP_FRACTION)
        overlap = max(stride, min(int(overlap) // stride * stride, tile // 2))
        self.height, self.width, self.tile, self.overlap = int(height), int(width), tile, overlap
        self.rows = _spans(self.height, tile, overlap, stride)
        self.cols = _spans(self.width, tile, overlap, stride)
        self.wy = _weights(self.rows)
        self.wx = _weights(self.cols)

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def bands(self, src: np.ndarray, run: Callable[[np.ndarray], np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(y0, rows)``: finished float32 rows ``y0 .. y0 + len(rows)`` of the blended result.

        ``src`` is the H×W×3 image; ``run`` maps an h×w×3 tile to an h×w×3 float32 result.
        Bands come in order and cover every row exactly once; only one band is held at a time.
        """
        acc: np.ndarray | None = None  # weighted sum of rows acc_y0 .. acc_y0 + len(acc)
        wsum: np.ndarray | None = None
        acc_y0 = 0
        for r, (y, y_end) in enumerate(self.rows):
            rows = y_end - acc_y0
            new_acc = np.zeros((rows, self.width, 3), dtype=np.float32)
            new_w = np.zeros((rows, self.width), dtype=np.float32)
            if acc is not None and wsum is not None:
                new_acc[: acc.shape[0]] = acc
                new_w[: wsum.shape[0]] = wsum
            acc, wsum = new_acc, new_w
            off = y - acc_y0
            for c, (x, x_end) in enumerate(self.cols):
                out = run(src[y:y_end, x:x_end])
                weight = self.wy[r][:, None] * self.wx[c][None, :]
                out *= weight[:, :, None]
                acc[off:, x:x_end] += out
                wsum[off:, x:x_end] += weight
                del out
            done = (self.rows[r + 1][0] if r + 1 < len(self.rows) else y_end) - acc_y0
            finished = acc[:done]
            finished /= wsum[:done, :, None]
            yield acc_y0, finished
            acc, wsum = acc[done:].copy(), wsum[done:].copy()
            acc_y0 += done
