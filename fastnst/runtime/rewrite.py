"""Exact ONNX graph rewrites that make a style network faster in onnxruntime (torch-free).

:func:`speed_up` applies the rewrites below to a ``ModelProto`` in place and records each in the metadata
entry :data:`META_REWRITES`, so a model is rewritten once: ``fastnst export`` does it before writing the
file (so every exported file carries them and the runtime does no work at load); the runtime does the
ones a file lacks for files exported before (when ``onnx`` is installed; see
:mod:`fastnst.runtime.session`). The results equal the original graph's up to float rounding (~1e-6 on
outputs in [0, 1]) for every image size, odd ones included: export verifies them against torch.

* **Split wide, thin convolutions.** A k×k convolution with few output channels (the network's last
  layer, 32 -> 3 channels, 9×9) is a poor matrix product for onnxruntime (3 rows, 2592-deep im2col):
  measured 33 GFLOP/s. It becomes a 1×k convolution to ``out·k`` channels (one per kernel row) and a
  grouped k×1 convolution with 0/1 weights that adds the rows up: 115-130 GFLOP/s, 3.5× faster
  (scripts/bench_infer.py, profile section).
* **Fold conditional instance norm.** Multi-style networks export instance norm as
  ``InstanceNormalization(x, 1, 0) * (style @ W) + (style @ B)``: two extra passes over the tensor.
  Instance norm treats every (image, channel) plane alone, so ``x`` reshaped to (1, N·C, H, W) takes the
  per-image scales and shifts as InstanceNormalization's own scale and bias, in one pass.
* **Polyphase up-sampling** (:func:`polyphase_upsampling`): nearest ×2 up-sampling, reflection pad and
  3×3 convolution as a 2×2 convolution to four phases of the small input, interleaved; exact for every
  size (the last row and column of odd sizes are computed apart). Measured on the 2-core AVX2 EPYC, one
  thread, built-in model: 1.27x faster at 1024², 1.20x at 512², and about half the memory touched by the
  first run (scripts/bench_infer.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fastnst.contract import META_REWRITES

REWRITES = ("split_thin_conv", "fold_conditional_norm", "polyphase_upsampling")
THIN_CHANNELS = 4  # chosen: up to this many output channels a k×k kernel is split (measured for 3)
MIN_SPLIT_KERNEL = 5  # chosen: 5×5 (fast preset) and 9×9 (johnson) end kernels gain 2-3.5×; 3×3 is left alone


def applied(model_or_metadata: Any) -> list[str]:
    """The rewrites a model (``onnx.ModelProto``) or its metadata (a mapping) records as applied."""
    if hasattr(model_or_metadata, "metadata_props"):
        value = next((p.value for p in model_or_metadata.metadata_props if p.key == META_REWRITES), "")
    else:
        value = model_or_metadata.get(META_REWRITES, "")
    return [r for r in value.split(",") if r]


def complete(metadata: Any) -> bool:
    """Whether a model's metadata records every rewrite of :data:`REWRITES` (nothing left to do at load)."""
    return set(REWRITES) <= set(applied(metadata))


def speed_up(model: Any, sizes_double: bool = False) -> list[str]:
    """Apply the rewrites ``model`` (onnx.ModelProto) does not record yet, in place; returns the names of those
    that changed the graph now.

    Any model may be passed: rewrites whose pattern is absent change nothing (third-party models included).
    ``sizes_double``: the caller vouches that every Resize with a sizes input doubles its input's size, up to
    one row or column (fastnst's own style networks; see :func:`polyphase_upsampling`).
    """
    done = applied(model)
    todo = [r for r in REWRITES if r not in done]
    if not todo:
        return []
    if any(a.type in (5, 10) for n in model.graph.node for a in n.attribute):  # GRAPH/GRAPHS: control flow
        return []  # names used inside subgraphs are not tracked here: leave such models as they are
    rewrite = {"split_thin_conv": split_thin_convolutions, "fold_conditional_norm": fold_conditional_norms,
               "polyphase_upsampling": lambda m: polyphase_upsampling(m, sizes_double=sizes_double)}
    changed = [name for name in todo if rewrite[name](model)]
    entries = [p for p in model.metadata_props if p.key == META_REWRITES]
    entry = entries[0] if entries else model.metadata_props.add()
    entry.key, entry.value = META_REWRITES, ",".join(r for r in REWRITES if r in done or r in todo)
    return changed


def _initializers(graph: Any) -> dict[str, Any]:
    return {t.name: t for t in graph.initializer}


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _unique(graph: Any, base: str) -> str:
    names = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output} | \
            {i.name for i in graph.input}
    name, k = base, 0
    while name in names:
        k += 1
        name = f"{base}_{k}"
    return name


def split_thin_convolutions(model: Any) -> int:
    """Rewrite each k×k (k >= MIN_SPLIT_KERNEL) stride-1 Conv with at most THIN_CHANNELS outputs as
    a 1×k Conv to out·k channels plus a grouped k×1 Conv that sums the rows; returns how many."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = _initializers(g)
    out_nodes, count = [], 0
    for node in g.node:
        a = _attrs(node)
        w = inits.get(node.input[1]) if node.op_type == "Conv" and node.domain in ("", "ai.onnx") else None
        if (w is None or len(w.dims) != 4 or w.data_type != 1 or a.get("group", 1) != 1
                or any(s != 1 for s in a.get("strides", [1, 1])) or any(d != 1 for d in a.get("dilations", [1, 1]))
                or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or any(a.get("pads", [0] * 4))):
            out_nodes.append(node)
            continue
        o, c, kh, kw = w.dims
        if o > THIN_CHANNELS or kh != kw or kh < MIN_SPLIT_KERNEL:
            out_nodes.append(node)
            continue
        weight = numpy_helper.to_array(w)
        rows = weight.transpose(0, 2, 1, 3).reshape(o * kh, c, 1, kw)  # channel o*kh + r: row r of output o
        summer = np.zeros((o, kh, kh, 1), np.float32)
        summer[:, np.arange(kh), np.arange(kh), 0] = 1.0  # output o adds its kh row channels, row r shifted by r
        w_rows, w_sum, mid = (_unique(g, f"{node.input[1]}_rows"), _unique(g, f"{node.input[1]}_rowsum"),
                              _unique(g, f"{node.output[0]}_rows"))
        g.initializer.extend([numpy_helper.from_array(rows.astype(np.float32), w_rows),
                              numpy_helper.from_array(summer, w_sum)])
        out_nodes.append(helper.make_node("Conv", [node.input[0], w_rows], [mid], name=f"{node.name}_rows",
                                          kernel_shape=[1, kw]))
        out_nodes.append(helper.make_node("Conv", [mid, w_sum, *node.input[2:3]], list(node.output),
                                          name=f"{node.name}_rowsum", kernel_shape=[kh, 1], group=o))
        count += 1
    if count:
        del g.node[:]
        g.node.extend(out_nodes)
        _drop_unused_initializers(g)
    return count


def fold_conditional_norms(model: Any) -> int:
    """Rewrite ``InstanceNormalization(x, 1, 0) * Unsqueeze(s @ W) + Unsqueeze(s @ B)`` as one
    InstanceNormalization of x reshaped to (1, N·C, H, W) with the flattened products as its scale and
    bias, reshaped back; returns how many were folded."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = _initializers(g)
    producer, consumers, graph_outputs = _links(g)

    def product(name: str) -> str | None:
        """The MatMul output behind Unsqueeze(MatMul(style, table), axes 2,3) = ``name``, else None."""
        u = producer.get(name)
        if u is None or u.op_type != "Unsqueeze" or len(consumers.get(name, [])) != 1:
            return None
        m = producer.get(u.input[0])
        return u.input[0] if m is not None and m.op_type == "MatMul" and m.input[1] in inits else None

    def constant(name: str, value: float) -> bool:
        t = inits.get(name)
        return t is not None and bool(np.all(numpy_helper.to_array(t) == value))

    replace: dict[int, list[Any]] = {}  # id(IN node) -> new nodes; Mul/Add removed
    removed: set[int] = set()
    flat = _unique(g, "fastnst_flat")
    merged_shape = _unique(g, "fastnst_1nchw")
    for node in g.node:
        if node.op_type != "InstanceNormalization" or node.domain not in ("", "ai.onnx"):
            continue
        if not (constant(node.input[1], 1.0) and constant(node.input[2], 0.0)) or node.output[0] in graph_outputs:
            continue
        users = consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Mul":
            continue
        mul = users[0]
        gamma = product(next(i for i in mul.input if i != node.output[0]))
        adds = consumers.get(mul.output[0], [])
        if gamma is None or len(adds) != 1 or adds[0].op_type != "Add" or mul.output[0] in graph_outputs:
            continue
        add = adds[0]
        beta = product(next(i for i in add.input if i != mul.output[0]))
        if beta is None:
            continue
        k = len(replace)
        x = node.input[0]
        names = [_unique(g, f"fastnst_cin{k}_{j}") for j in range(5)]
        replace[id(node)] = [
            helper.make_node("Shape", [x], [names[0]], name=f"{node.name}_shape"),
            helper.make_node("Reshape", [x, merged_shape], [names[1]], name=f"{node.name}_merge"),
            helper.make_node("Reshape", [gamma, flat], [names[2]], name=f"{node.name}_scale"),
            helper.make_node("Reshape", [beta, flat], [names[3]], name=f"{node.name}_bias"),
            helper.make_node("InstanceNormalization", [names[1], names[2], names[3]], [names[4]], name=node.name,
                             epsilon=_attrs(node).get("epsilon", 1e-5)),
            helper.make_node("Reshape", [names[4], names[0]], list(add.output), name=f"{node.name}_split"),
        ]
        removed |= {id(mul), id(add)}
    if not replace:
        return 0
    g.initializer.extend([numpy_helper.from_array(np.array([-1], np.int64), flat),
                          numpy_helper.from_array(np.array([1, -1, 0, 0], np.int64), merged_shape)])
    return _splice(g, replace, removed)


def polyphase_upsampling(model: Any, sizes_double: bool = False, exact: bool = True) -> int:
    """Rewrite ×2 nearest up-sampling + reflection pad + 3×3 convolution as one 2×2 convolution to four
    phases on the edge-padded small input, interleaved by a stride-2 depthwise ConvTranspose with 0/1
    weights (it also aligns the phases: 3× faster than Slice, Concat and DepthToSpace); returns how many.

    2.25× fewer multiply-adds and no full-size Resize and Pad. The interleaved phases equal the original
    wherever the up-sampling doubles the size exactly. A Resize is taken as doubling when its scales are
    constant (1, 1, 2, 2), or, with ``sizes_double``, when it has a sizes input that the caller vouches is
    ``2h`` or ``2h - 1`` for an input of ``h`` (fastnst's own networks: they resize to the size of the
    matching stride-2 convolution's input). For such sizes-driven ones, ``exact`` (default) makes the
    rewrite hold for every size, odd ones included, so that it can be written into a model file: the
    phases are cropped to the target size, and its last row and column, the only ones where the reflection
    of an odd-sized up-sampled image differs from the edge padding of the small one, are computed by the
    original operators on two-row and two-column strips of the small input and scattered into place (about
    3% of the network's time at 1024² for the crop and the scatter, measured by scripts/bench_infer.py).
    ``exact=False`` leaves them out: equal only for images whose sides are multiples of the stride, as
    fastnst's runtime pads them.
    """
    from onnx import helper, numpy_helper

    g = model.graph
    inits = _initializers(g)
    producer, consumers, graph_outputs = _links(g)
    replace: dict[int, list[Any]] = {}
    removed: set[int] = set()
    constants: dict[str, tuple[str, list[int]]] = {}

    def const(key: str, value: list[int]) -> str:
        """The name of a shared int64 constant (added to the graph at the end)."""
        if key not in constants:
            constants[key] = (_unique(g, f"fastnst_poly_{key}"), value)
        return constants[key][0]

    for conv in g.node:
        w = inits.get(conv.input[1]) if conv.op_type == "Conv" and len(conv.input) > 1 else None
        if w is None or list(w.dims[2:]) != [3, 3] or w.data_type != 1:
            continue
        a = _attrs(conv)
        if (a.get("group", 1) != 1 or any(s != 1 for s in a.get("strides", [1, 1])) or any(a.get("pads", [0] * 4))
                or any(d != 1 for d in a.get("dilations", [1, 1]))
                or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
            continue
        pad = producer.get(conv.input[0])
        if pad is None or pad.op_type != "Pad" or _attrs(pad).get("mode") not in (b"reflect", "reflect"):
            continue
        pads = inits.get(pad.input[1]) if len(pad.input) > 1 else None
        if pads is None or numpy_helper.to_array(pads).tolist() != [0, 0, 1, 1, 0, 0, 1, 1] or \
                (len(pad.input) > 2 and pad.input[2]):
            continue
        resize = producer.get(pad.input[0])
        if resize is None or resize.op_type != "Resize":
            continue
        scales = inits.get(resize.input[2]) if len(resize.input) > 2 and resize.input[2] else None
        sized = len(resize.input) > 3 and bool(resize.input[3])
        doubling = scales is not None and numpy_helper.to_array(scales).tolist() == [1, 1, 2, 2]
        if not (doubling or (sized and sizes_double)):
            continue
        ra = _attrs(resize)
        if (ra.get("mode", b"nearest") not in (b"nearest", "nearest")
                or ra.get("coordinate_transformation_mode", b"half_pixel") not in (b"asymmetric", "asymmetric")
                or ra.get("nearest_mode", b"round_prefer_floor") not in (b"floor", "floor")):
            continue
        if any(len(consumers.get(t, [])) != 1 or t in graph_outputs for t in (resize.output[0], pad.output[0])):
            continue
        bias = None
        if len(conv.input) > 2 and conv.input[2]:
            if conv.input[2] not in inits:
                continue
            bias = numpy_helper.to_array(inits[conv.input[2]])
        weight = numpy_helper.to_array(w).astype(np.float64)
        co = weight.shape[0]
        # row (and column) taps of the two phases on the edge-padded input: phase 0 reads rows m, m+1
        # with (w0, w1 + w2), phase 1 rows m + 1, m + 2 with (w0 + w1, w2)
        taps = [np.array([[1, 0, 0], [0, 1, 1]], np.float64), np.array([[1, 1, 0], [0, 0, 1]], np.float64)]
        phases = [(p, q) for p in (0, 1) for q in (0, 1)]
        # channel 4·o + j: phase j = (p, q) of output channel o; phase (p, q) at (m, n) is the 2×2
        # convolution at (m + p, n + q) of the (H + 1) × (W + 1) result
        w2 = np.stack([np.einsum("ra,oiab,sb->oirs", taps[p], weight, taps[q]) for p, q in phases], axis=1)
        w2 = w2.reshape(4 * co, *w2.shape[2:])
        spread = np.zeros((4 * co, 1, 2, 2), np.float32)  # ConvTranspose: phase (p, q) -> pixel (2m + p, 2n + q)
        for j, (p, q) in enumerate(phases):
            spread[j::4, 0, 1 - p, 1 - q] = 1.0
        k = len(replace)
        names = {s: _unique(g, f"fastnst_poly{k}_{s}") for s in ("e", "w", "b", "o", "spread", "y")}
        g.initializer.extend([numpy_helper.from_array(w2.astype(np.float32), names["w"]),
                              numpy_helper.from_array(spread, names["spread"])])
        conv_inputs = [names["e"], names["w"]]
        if bias is not None:
            g.initializer.append(numpy_helper.from_array(np.repeat(bias, 4).astype(np.float32), names["b"]))
            conv_inputs.append(names["b"])
        whole = doubling or not exact  # the interleaved phases are the result
        nodes = [helper.make_node("Pad", [resize.input[0], const("edge", [0, 0, 1, 1, 0, 0, 1, 1])], [names["e"]],
                                  mode="edge", name=f"{conv.name}_edge"),
                 helper.make_node("Conv", conv_inputs, [names["o"]], kernel_shape=[2, 2], name=f"{conv.name}_phases"),
                 helper.make_node("ConvTranspose", [names["o"], names["spread"]],
                                  list(conv.output) if whole else [names["y"]], name=f"{conv.name}_interleave",
                                  kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], group=co)]
        if not whole:
            nodes += _exact_edges(g, conv, resize, names["y"], k, const)
        replace[id(conv)] = nodes
        removed |= {id(resize), id(pad)}
    if not replace:
        return 0
    g.initializer.extend(numpy_helper.from_array(np.array(v, np.int64), name) for name, v in constants.values())
    return _splice(g, replace, removed)


def _exact_edges(g: Any, conv: Any, resize: Any, doubled: str, k: int, const: Callable[[str, list[int]], str]
                 ) -> list[Any]:
    """Nodes that crop the interleaved phases ``doubled`` (N, C, 2h, 2w) to the Resize's target size (H, W)
    and write its last row and last column as the original Resize -> reflection Pad -> Conv computes them.

    Nearest up-sampling from h to H = 2h or 2h - 1 (asymmetric, floor) takes row i from row i // 2, so the
    up-sampled image is the doubled one cropped; the edge padding of the phases reproduces its reflection
    everywhere except past the last row (column) of an odd H (W). Row H - 1 needs up-sampled rows H - 2 and
    H - 1 (the reflection repeats H - 2): small-input rows (H - 2) // 2 and (H - 1) // 2, gathered, resized
    across (the original Resize on a two-row strip), reflection-padded below and at the sides and convolved
    with the original weights. The last column likewise. Both are written for every size (for an even one
    they equal the phases there), so nothing depends on the parity at run time.
    """
    from onnx import helper

    x, sizes = resize.input[0], resize.input[3]
    conv_weights = [t for t in conv.input[1:3] if t]
    resize_attrs = {a.name: helper.get_attribute_value(a) for a in resize.attribute}
    t = {s: _unique(g, f"fastnst_poly{k}_{s}") for s in (
        "nc", "ht", "wt", "h1", "w1", "h2", "w2", "hw", "rows", "cols", "rows_at", "cols_at", "rstrip", "cstrip", "rsize", "csize", "rup",
        "cup", "rpad", "cpad", "rout", "cout", "crop", "hlast", "wlast", "rshape", "cshape", "ridx", "cidx", "yrow")}
    node = helper.make_node
    nodes = [
        node("Slice", [sizes, const("i0", [0]), const("i2", [2])], [t["nc"]]),
        node("Slice", [sizes, const("i2", [2]), const("i3", [3])], [t["ht"]]),
        node("Slice", [sizes, const("i3", [3]), const("i4", [4])], [t["wt"]]),
        node("Concat", [t["ht"], t["wt"]], [t["hw"]], axis=0),
    ]
    for axis, side, last, before, index, strip, size, up, padded, out, pads in (
            (2, "ht", "h1", "h2", "rows", "rstrip", "rsize", "rup", "rpad", "rout", [0, 0, 0, 1, 0, 0, 1, 1]),
            (3, "wt", "w1", "w2", "cols", "cstrip", "csize", "cup", "cpad", "cout", [0, 0, 1, 0, 0, 0, 1, 1])):
        target = [t["nc"], const("i2", [2]), t["wt"]] if axis == 2 else [t["nc"], t["ht"], const("i2", [2])]
        nodes += [
            node("Sub", [t[side], const("i1", [1])], [t[last]]),
            node("Sub", [t[side], const("i2", [2])], [t[before]]),
            node("Concat", [t[before], t[last]], [t[index + "_at"]], axis=0),
            node("Div", [t[index + "_at"], const("i2", [2])], [t[index]]),  # int64: floor for H >= 2
            node("Gather", [x, t[index]], [t[strip]], axis=axis),
            node("Concat", target, [t[size]], axis=0),
            node("Resize", [t[strip], "", "", t[size]], [t[up]], **resize_attrs),
            node("Pad", [t[up], const(f"pad{axis}", pads)], [t[padded]], mode="reflect"),
            node("Conv", [t[padded], *conv_weights], [t[out]], kernel_shape=[3, 3]),
        ]
    nodes += [
        node("Slice", [doubled, const("zeros", [0, 0]), t["hw"], const("hw_axes", [2, 3])], [t["crop"]]),
        node("Reshape", [t["h1"], const("one4", [1, 1, 1, 1])], [t["hlast"]]),
        node("Shape", [t["rout"]], [t["rshape"]]),
        node("Expand", [t["hlast"], t["rshape"]], [t["ridx"]]),
        node("ScatterElements", [t["crop"], t["ridx"], t["rout"]], [t["yrow"]], axis=2),
        node("Reshape", [t["w1"], const("one4", [1, 1, 1, 1])], [t["wlast"]]),
        node("Shape", [t["cout"]], [t["cshape"]]),
        node("Expand", [t["wlast"], t["cshape"]], [t["cidx"]]),
        node("ScatterElements", [t["yrow"], t["cidx"], t["cout"]], list(conv.output), axis=3),
    ]
    return nodes


def _links(graph: Any) -> tuple[dict[str, Any], dict[str, list[Any]], set[str]]:
    """(producer of each tensor, consumers of each tensor, graph output names)."""
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    return producer, consumers, {o.name for o in graph.output}


def _splice(graph: Any, replace: dict[int, list[Any]], removed: set[int]) -> int:
    """Put each node's replacement (by id) in its place, drop ``removed``, reorder, prune; returns the count."""
    nodes = []
    for n in graph.node:
        if id(n) in replace:
            nodes.extend(replace[id(n)])
        elif id(n) not in removed:
            nodes.append(n)
    del graph.node[:]
    graph.node.extend(_topological(nodes, graph))
    _drop_unused_nodes_and_initializers(graph)
    return len(replace)


def _topological(nodes: list[Any], graph: Any) -> list[Any]:
    """``nodes`` in an order where every input is produced before it is used (stable)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, out = list(nodes), []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                out.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):  # a cycle or a missing input: leave the remainder as it was
            return out + rest
        pending = rest
    return out


def _drop_unused_nodes_and_initializers(graph: Any) -> None:
    needed = {o.name for o in graph.output}
    keep = []
    for n in reversed(list(graph.node)):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(n.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    _drop_unused_initializers(graph)


def _drop_unused_initializers(graph: Any) -> None:
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
