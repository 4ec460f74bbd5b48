"""Tiles for any image size (the one tiler of every model kind), and the graph rewrite that makes style tiles seamless.

Torch-free. A :class:`TileGrid` cuts an H×W image into tiles and assembles what a network makes of
them, one band of rows at a time (tile height × image width in float32), so peak memory grows with the
image width, not with its area. Two layouts:

- style networks: tiles of ``tile`` pixels that overlap by ``overlap`` pixels and start on multiples of
  the network's stride; each tile is stylised on its own and blended into the result with
  raised-cosine weights across each overlap (normalised by the weight sum);
- purely local networks (super-resolution, :meth:`TileGrid.abutting`): tiles that abut, each run with a
  margin of context that is cropped off afterwards, the output ``factor`` times the input's size; the
  result equals the untiled one.

Instance normalisation would make tiles disagree if each used its own statistics (a patchwork of
slightly different tones). :class:`NormRewrite` therefore rewrites any model's
InstanceNormalization nodes (with the ``onnx`` package) into two derived models: a *stats* model
that returns the mean and variance of every instance norm's input for a whole (downscaled) image,
and a *tile* model in which every instance norm is replaced by ``(x - mean) * inv_std * scale +
bias`` with ``mean`` and ``inv_std`` fed from outside. Tiles normalised with whole-image statistics
differ from an untiled run only within a few tens of pixels of their borders, where the feathering
hides it (URST, Chen et al. 2022, "thumbnail instance normalization", does the same). The model file
itself stays plain; the seam error is measured in tests/test_tiling.py and scripts/bench_infer.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastnst.contract import STRIDE
from fastnst.errors import TilingUnsupported

# Names of the tensors the rewrite adds (prefixed so they cannot clash with a model's own names).
_PREFIX = "fastnst_tiling_"

# Chosen: an eighth of the tile. With whole-image statistics the tiled result differs from the untiled
# one only within ~32 px of a tile border (measured on the fast preset); 128 px at 1024-px tiles hides it.
OVERLAP_FRACTION = 0.125
# Chosen: leaving the outer 30% of each overlap to the neighbouring tile cut the measured seam error
# 15-1000x (fast preset, 128-px tiles: 1.3e-3 -> 5e-6 at 64-px overlap).
EDGE_FRACTION = 0.3
# Smallest tile side a user may ask for (stylize's and upscale's --tile; a style tile is at least 4 strides).
MIN_TILE = 16
# progress(done, total, text): what a long job reports after each unit of work (the CLI's display draws it)
ProgressFn = Callable[[float, int, str], None]


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


def reporting(run: Callable[[np.ndarray], np.ndarray], total: int,
              progress: ProgressFn | None) -> Callable[[np.ndarray], np.ndarray]:
    """``run`` (one tile in, its result out) that reports (tiles done, ``total``, 'tiles') to ``progress`` after
    each tile; ``run`` itself when there is no ``progress``."""
    if progress is None:
        return run
    done = 0

    def counted(tile: np.ndarray) -> np.ndarray:
        nonlocal done
        out = run(tile)
        done += 1
        progress(done, total, "tiles")
        return out

    return counted


class TileGrid:
    """Tiles of an ``height``×``width`` image: ``tile`` pixels (rounded to ``stride``), ``overlap`` pixels.

    ``overlap`` defaults to OVERLAP_FRACTION of the tile. Tiles start on multiples of ``stride``.
    :meth:`abutting` makes the layout of purely local networks instead.
    """

    def __init__(self, height: int, width: int, tile: int, overlap: int | None = None, stride: int = STRIDE) -> None:
        tile = max(4 * stride, int(tile) // stride * stride)
        if overlap is None:
            overlap = int(tile * OVERLAP_FRACTION)
        overlap = max(stride, min(int(overlap) // stride * stride, tile // 2))
        self.height, self.width, self.tile, self.overlap = int(height), int(width), tile, overlap
        self.rows = _spans(self.height, tile, overlap, stride)
        self.cols = _spans(self.width, tile, overlap, stride)
        self.wy: list[np.ndarray] | None = _weights(self.rows)
        self.wx: list[np.ndarray] | None = _weights(self.cols)
        self.margin, self.min_context, self.factor = 0, 1, 1

    @classmethod
    def abutting(cls, height: int, width: int, tile: int, margin: int, min_context: int = 1,
                 factor: int = 1) -> TileGrid:
        """Tiles of a purely local network: ``tile`` pixels from the origin on, not overlapping, each run with
        ``margin`` pixels of context on every side (clipped at the border, at least ``min_context`` pixels a
        side); the network's output is ``factor`` times its input's size. Tiled equals untiled when
        ``margin`` covers the network's receptive field."""
        grid = cls.__new__(cls)
        grid.height, grid.width, grid.tile, grid.overlap = int(height), int(width), int(tile), 0
        grid.rows = [(y, min(grid.height, y + grid.tile)) for y in range(0, grid.height, grid.tile)]
        grid.cols = [(x, min(grid.width, x + grid.tile)) for x in range(0, grid.width, grid.tile)]
        grid.wy = grid.wx = None  # nothing to blend: every output pixel comes from one tile
        grid.margin, grid.min_context, grid.factor = int(margin), int(min_context), int(factor)
        return grid

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def _context(self, start: int, end: int, n: int) -> tuple[int, int]:
        """The span a tile runs on: ``margin`` pixels around it, clipped at 0 and ``n``, at least
        ``min_context`` long."""
        lo, hi = max(0, start - self.margin), min(n, end + self.margin)
        return max(0, min(lo, hi - self.min_context)), hi

    def bands(self, src: np.ndarray, run: Callable[[np.ndarray], np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(y0, rows)``: finished float32 rows ``y0 .. y0 + len(rows)`` of the assembled result.

        ``src`` is the H×W×3 image; ``run`` maps an h×w×3 piece to an (f·h)×(f·w)×3 float32 result (f the
        grid's ``factor``, 1 for style networks). Bands come in order and cover every output row exactly once;
        only one band is held at a time.
        """
        f, blend = self.factor, self.wy is not None and self.wx is not None
        acc: np.ndarray | None = None  # weighted sum of output rows f·acc_y0 .. f·acc_y0 + len(acc)
        wsum: np.ndarray | None = None
        acc_y0 = 0
        for r, (y, y_end) in enumerate(self.rows):
            rows = (y_end - acc_y0) * f
            new_acc = np.zeros((rows, self.width * f, 3), dtype=np.float32)
            new_w = np.zeros((rows, self.width), dtype=np.float32) if blend else None
            if acc is not None:
                new_acc[: acc.shape[0]] = acc
            if wsum is not None and new_w is not None:
                new_w[: wsum.shape[0]] = wsum
            acc, wsum = new_acc, new_w
            off = (y - acc_y0) * f
            cy0, cy1 = self._context(y, y_end, self.height)
            for c, (x, x_end) in enumerate(self.cols):
                cx0, cx1 = self._context(x, x_end, self.width)
                out = run(src[cy0:cy1, cx0:cx1])
                if cy0 != y or cx0 != x or cy1 != y_end or cx1 != x_end:  # the context margin is cropped off
                    oy, ox = (y - cy0) * f, (x - cx0) * f
                    out = out[oy:oy + (y_end - y) * f, ox:ox + (x_end - x) * f]
                if blend and wsum is not None:
                    weight = self.wy[r][:, None] * self.wx[c][None, :]  # type: ignore[index]
                    out *= weight[:, :, None]
                    acc[off:, x:x_end] += out
                    wsum[off:, x:x_end] += weight
                else:
                    acc[off:, x * f:x_end * f] = out
                del out
            done = (self.rows[r + 1][0] if r + 1 < len(self.rows) else y_end) - acc_y0
            finished = acc[:done * f]
            if wsum is not None:
                finished /= wsum[:done, :, None]
            yield acc_y0 * f, finished
            acc = acc[done * f:].copy()
            wsum = wsum[done:].copy() if wsum is not None else None
            acc_y0 += done


# ------------------------------------------------------------------------------------ graph rewrite

def _onnx() -> Any:
    try:
        import onnx
    except ModuleNotFoundError as exc:
        raise TilingUnsupported("the 'onnx' package is not installed (pip install onnx)") from exc
    return onnx


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def prune(graph: Any, outputs: list[str]) -> None:
    """Keep only the nodes, initialisers and inputs that ``outputs`` need (in place)."""
    keep_out = [o for o in graph.output if o.name in outputs]
    needed = set(outputs)
    kept = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
            for attr in node.attribute:  # values captured by subgraphs (If/Loop bodies)
                for sub in list(attr.g.node if attr.HasField("g") else []) + [n for g in attr.graphs for n in g.node]:
                    needed.update(i for i in sub.input if i)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    inits = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    inputs = [i for i in graph.input if i.name in needed]
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.output[:]
    graph.output.extend(keep_out)
    names = needed | {o for n in kept for o in n.output}
    vis = [v for v in graph.value_info if v.name in names]
    del graph.value_info[:]
    graph.value_info.extend(vis)


def plain_graph(model: Any, output: str) -> bool:
    """Strip everything but ``output``'s path (legacy tiling inputs/outputs). True when it changed."""
    before = (len(model.graph.node), len(model.graph.input), len(model.graph.output))
    prune(model.graph, [output])
    return before != (len(model.graph.node), len(model.graph.input), len(model.graph.output))


def make_dynamic(model: Any, image_input: str, nhwc: bool = False) -> bool:
    """Give a fixed-size model symbolic height and width (third-party models are often exported at
    224×224 although every operator takes any size). True when something changed."""
    changed = False
    hw = (1, 2) if nhwc else (2, 3)
    values = [v for v in model.graph.input if v.name == image_input] + list(model.graph.output)
    for value in values:
        dims = value.type.tensor_type.shape.dim
        if len(dims) != 4:
            continue
        for axis, label in zip(hw, ("height", "width")):
            if dims[axis].HasField("dim_value"):
                dims[axis].ClearField("dim_value")
                dims[axis].dim_param = f"{_PREFIX}{label}"
                changed = True
    if changed:
        del model.graph.value_info[:]  # inferred shapes of the fixed size would contradict
    return changed


@dataclass
class _Norm:
    x: str  # the InstanceNormalization's input
    eps: float
    index: int


class NormRewrite:
    """The stats and tile models derived from a model's InstanceNormalization nodes.

    ``stats_model`` maps the model's inputs to the mean and variance (N, C, 1, 1) of every instance
    norm's input (in graph order); ``tile_model`` takes the model's inputs plus ``mean_k`` and
    ``inv_std_k`` and normalises with them instead of the tile's own statistics. Use
    :meth:`tile_feeds` to turn stats outputs into tile-model feeds. Raises TilingUnsupported when the
    model has no InstanceNormalization (nothing to keep consistent; tiles would not need it) or the
    ``onnx`` package is missing.
    """

    def __init__(self, model: Any, output: str) -> None:
        onnx = _onnx()
        from onnx import TensorProto, helper

        model = _copy(model)
        opset = _opset(model)
        if opset < 5:
            raise TilingUnsupported(f"opset {opset} is too old to rewrite (needs 5 or later)")
        norms_nodes = [n for n in model.graph.node
                       if n.op_type == "InstanceNormalization" and n.domain in ("", "ai.onnx")]
        if not norms_nodes:
            raise TilingUnsupported("the model has no InstanceNormalization nodes")
        types = _elem_types(model)
        self.norms: list[_Norm] = []
        for k, node in enumerate(norms_nodes):
            eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
            self.norms.append(_Norm(node.input[0], float(eps), k))
        self.dtypes = [types.get(n.x) or types.get(node.input[1]) or TensorProto.FLOAT
                       for n, node in zip(self.norms, norms_nodes)]
        self.np_dtypes = [helper.tensor_dtype_to_np_dtype(t) for t in self.dtypes]
        self.output = output

        # Both models replace every instance norm by the same decomposition,
        #   y = (x - mean) * inv_std * scale + bias,
        # the stats model computing mean and inv_std from x (and returning mean and variance), the
        # tile model taking them as inputs. Decomposed in place, x dies as soon as (x - mean) exists:
        # extra consumers of x elsewhere in the graph would keep every norm's input alive (measured:
        # twice the memory of the plain model at 1 Mpx).
        self.stats_outputs = []
        self.tile_inputs: list[tuple[str, str]] = []
        self.stats_model = self._decompose(model, opset, from_graph=True)
        self.tile_model = self._decompose(model, opset, from_graph=False)
        prune(self.stats_model.graph, self.stats_outputs)
        prune(self.tile_model.graph, [output])
        onnx.checker.check_model(self.stats_model)
        onnx.checker.check_model(self.tile_model)

    def _decompose(self, model: Any, opset: int, from_graph: bool) -> Any:
        from onnx import TensorProto, helper, numpy_helper

        out = _copy(model)
        g = out.graph
        shape_name, axes_name = _PREFIX + "c11", _PREFIX + "axes"
        g.initializer.append(helper.make_tensor(shape_name, TensorProto.INT64, [3], [-1, 1, 1]))
        if opset >= 18:
            g.initializer.append(helper.make_tensor(axes_name, TensorProto.INT64, [2], [2, 3]))
        nodes = []
        k = 0
        for node in g.node:
            if node.op_type != "InstanceNormalization" or node.domain not in ("", "ai.onnx"):
                nodes.append(node)
                continue
            x, scale, bias = node.input[0], node.input[1], node.input[2]
            dtype, norm = self.dtypes[k], self.norms[k]
            t = [f"{_PREFIX}{'s' if from_graph else 't'}{k}_{j}" for j in range(10)]
            mean, inv = f"{_PREFIX}mean_{k}", f"{_PREFIX}inv_std_{k}"
            if from_graph:
                var, eps = f"{_PREFIX}var_{k}", f"{_PREFIX}eps_{k}"
                g.initializer.append(numpy_helper.from_array(np.array(norm.eps, dtype=self.np_dtypes[k]), eps))
                nodes += [
                    _reduce(helper, "ReduceMean", x, mean, opset, axes_name),
                    helper.make_node("Sub", [x, mean], [t[0]]),
                    helper.make_node("Mul", [t[0], t[0]], [t[5]]),
                    _reduce(helper, "ReduceMean", t[5], var, opset, axes_name),
                    helper.make_node("Add", [var, eps], [t[6]]),
                    helper.make_node("Sqrt", [t[6]], [t[7]]),
                    helper.make_node("Reciprocal", [t[7]], [inv]),
                ]
                for name in (mean, var):
                    g.output.append(helper.make_tensor_value_info(name, dtype, [None, None, 1, 1]))
                    self.stats_outputs.append(name)
            else:
                for name in (mean, inv):
                    g.input.append(helper.make_tensor_value_info(name, dtype, [None, None, 1, 1]))
                self.tile_inputs.append((mean, inv))
                nodes.append(helper.make_node("Sub", [x, mean], [t[0]]))
            nodes += [
                helper.make_node("Reshape", [scale, shape_name], [t[1]]),
                helper.make_node("Mul", [inv, t[1]], [t[2]]),  # (1, C, 1, 1): the small product first
                helper.make_node("Mul", [t[0], t[2]], [t[3]]),
                helper.make_node("Reshape", [bias, shape_name], [t[4]]),
                helper.make_node("Add", [t[3], t[4]], [node.output[0]]),
            ]
            k += 1
        del g.node[:]
        g.node.extend(nodes)
        return out

    def tile_feeds(self, stats: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Feeds of the tile model's statistics inputs from the stats model's outputs (batch 1)."""
        feeds = {}
        for norm, dtype, (mean_name, inv_name) in zip(self.norms, self.np_dtypes, self.tile_inputs):
            mean = np.asarray(stats[2 * norm.index][:1], dtype=np.float64)
            var = np.asarray(stats[2 * norm.index + 1][:1], dtype=np.float64)
            feeds[mean_name] = mean.astype(dtype)
            feeds[inv_name] = (1.0 / np.sqrt(var + norm.eps)).astype(dtype)
        return feeds


def _copy(model: Any) -> Any:
    clone = type(model)()
    clone.CopyFrom(model)
    return clone


def _reduce(helper: Any, op: str, x: str, out: str, opset: int, axes_name: str) -> Any:
    """A reduction over height and width (axes an input from opset 18, an attribute before)."""
    if opset >= 18:
        return helper.make_node(op, [x, axes_name], [out], keepdims=1)
    return helper.make_node(op, [x], [out], axes=[2, 3], keepdims=1)


def _elem_types(model: Any) -> dict[str, int]:
    """Element type of every tensor whose type onnx's shape inference can tell."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference is a convenience: fall back to the initialisers
        inferred = model
    types: dict[str, int] = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type:
            types[v.name] = v.type.tensor_type.elem_type
    for t in model.graph.initializer:
        types[t.name] = t.data_type
    return types
