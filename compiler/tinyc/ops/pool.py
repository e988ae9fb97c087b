"""MaxPool and AveragePool (1-D, 2-D, 3-D).

Canonical attributes: kernel_shape, strides, dilations, pads (leading then trailing),
ceil_mode (0/1), count_include_pad (AveragePool; 0/1), channels_last, optional act_min/act_max.
Global pooling is expressed as ReduceMean / ReduceMax over the spatial axes.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from tinyc.errors import UnsupportedOperator
from tinyc.ir import Graph, Node
from tinyc.ops import (
    InPlace,
    KernelCall,
    Shape,
    apply_clamp,
    clamp_of,
    clamp_summary,
    fmt_shape,
    itemsize,
    register,
    shape_of,
    window_in_place,
)
from tinyc.ops.conv import pad3, spatial_params, to_channels_first, to_channels_last
from tinyc.ops.quantized import (
    S8Kernel,
    act_range,
    emit_s8,
    evaluate_s8,
    int8_range_summary,
    is_int8,
    require_same_quant,
)
from tinyc.quant import arith


def pool_out_size(size: int, k: int, s: int, d: int, pb: int, pe: int, ceil_mode: int) -> int:
    span = size + pb + pe - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    out = math.ceil(span / s) + 1
    # The last window must start inside the input or its leading padding (ONNX, PyTorch).
    if (out - 1) * s >= size + pb:
        out -= 1
    return out


def _infer(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    a = node.attrs
    x = shape_of(graph, node.inputs[0])
    last = a["channels_last"]
    sp = x[1:-1] if last else x[2:]
    nsp = len(sp)
    out = [
        pool_out_size(sp[i], a["kernel_shape"][i], a["strides"][i], a["dilations"][i],
                      a["pads"][i], a["pads"][i + nsp], a["ceil_mode"])
        for i in range(nsp)
    ]
    shape = (x[0], *out, x[-1]) if last else (x[0], x[1], *out)
    return [(shape, graph.tensors[node.inputs[0]].dtype)]


def _box_mask(lo: list[int], hi: list[int], total: list[int]) -> np.ndarray:
    """1.0 where lo <= index < hi on every axis of a `total`-shaped grid, else 0.0."""
    axes = [((np.arange(n) >= a) & (np.arange(n) < b)).astype(np.float32)
            for a, b, n in zip(lo, hi, total, strict=True)]
    return functools.reduce(np.multiply.outer, axes)


def pool_nchw(x: np.ndarray, node: Node) -> np.ndarray:
    a = node.attrs
    nsp = x.ndim - 2
    ks, ss, ds, pads = a["kernel_shape"], a["strides"], a["dilations"], a["pads"]
    insp = x.shape[2:]
    out = [pool_out_size(insp[i], ks[i], ss[i], ds[i], pads[i], pads[i + nsp], a["ceil_mode"])
           for i in range(nsp)]
    # Pad far enough for every window, marking what is input, explicit padding, or beyond.
    extra = [max(0, (out[i] - 1) * ss[i] + ds[i] * (ks[i] - 1) + 1 - insp[i] - pads[i])
             for i in range(nsp)]
    widths = [(0, 0), (0, 0)] + [(pads[i], extra[i]) for i in range(nsp)]
    is_max = node.op == "MaxPool"
    xp = np.pad(x, widths, constant_values=-np.inf if is_max else 0.0)
    total = [pads[i] + insp[i] + extra[i] for i in range(nsp)]
    inside = _box_mask([pads[i] for i in range(nsp)],
                       [pads[i] + insp[i] for i in range(nsp)], total)
    explicit = _box_mask([0] * nsp, [pads[i] + insp[i] + pads[i + nsp] for i in range(nsp)], total)
    acc = np.full((*x.shape[:2], *out), -np.inf if is_max else 0.0, dtype=np.float32)
    count = np.zeros(out, np.float32)
    for tap in itertools.product(*(range(k) for k in ks)):
        window = tuple(slice(tap[i] * ds[i], tap[i] * ds[i] + (out[i] - 1) * ss[i] + 1, ss[i])
                       for i in range(nsp))
        patch = xp[(slice(None), slice(None), *window)]
        if is_max:
            acc = np.maximum(acc, patch)
        else:
            acc += patch
            mask = explicit if a["count_include_pad"] else inside
            count += mask[window]
    if is_max:
        return acc
    return (acc / count).astype(np.float32)


def _pool_s8(node: Node, graph: Graph) -> S8Kernel:
    """int8 pooling: input and output share their quantization (TFLite)."""
    if node.op == "AveragePool" and any(d != 1 for d in node.attrs["dilations"]):
        raise UnsupportedOperator(f"AveragePool node '{node.name}': int8 dilated average "
                                  "pooling is not supported")
    require_same_quant(node, graph, [node.inputs[0]])
    lo, hi = act_range(node, graph)
    params = _geometry(node, graph) | arith.pool_params(lo, hi)
    function, reference = (("tc_max_pool_s8", arith.max_pool_s8) if node.op == "MaxPool"
                           else ("tc_avg_pool_s8", arith.avg_pool_s8))
    return S8Kernel(function, "tc_pool_s8.c", "tc_pool_s8.h", "tc_pool_s8_params_t", params,
                    [node.inputs[0]], reference,
                    _summary(node, graph) + int8_range_summary(lo, hi),
                    in_place=_in_place(node, graph, params))


def _evaluate(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    if is_int8(graph, node.inputs[0]):
        return evaluate_s8(_pool_s8, node, inputs, graph)
    x = inputs[0]
    if node.attrs["channels_last"]:
        y = to_channels_last(pool_nchw(to_channels_first(x), node))
    else:
        y = pool_nchw(x, node)
    return [apply_clamp(node, np.ascontiguousarray(y, dtype=np.float32))]


def _geometry(node: Node, graph: Graph) -> dict[str, int]:
    """The window geometry shared by the float and int8 pool parameter structs."""
    a = node.attrs
    nsp = len(a["kernel_shape"])
    pe = pad3(a["pads"][nsp:], 0)
    return spatial_params(node, graph) | {
        "c": shape_of(graph, node.inputs[0])[-1],
        "pad_end_d": pe[0], "pad_end_h": pe[1], "pad_end_w": pe[2],
        "count_include_pad": a.get("count_include_pad", 0),
    }


def _in_place(node: Node, graph: Graph, geometry: dict[str, int]) -> tuple[InPlace, ...]:
    """Both pool kernels compute output pixels in order, each from its window, the float one
    accumulating in the output: in place at the shift window_in_place finds."""
    c = geometry["c"]
    return window_in_place(node.inputs[0], graph, geometry, (c, c),
                           itemsize(graph, node.outputs[0]), group=1, rereads=True)


def _summary(node: Node, graph: Graph) -> str:
    a = node.attrs
    x, y = shape_of(graph, node.inputs[0]), shape_of(graph, node.outputs[0])
    return (
        f"{node.op} {'x'.join(map(str, a['kernel_shape']))}"
        f" stride {'x'.join(map(str, a['strides']))} pads {list(a['pads'])}"
        + (" ceil_mode" if a["ceil_mode"] else "")
        + (" count_include_pad" if a.get("count_include_pad") else "")
        + f", {fmt_shape(x)} -> {fmt_shape(y)}"
    )


def _emit(node: Node, graph: Graph) -> KernelCall:
    assert node.attrs["channels_last"], "layout pass must run before code generation"
    if is_int8(graph, node.inputs[0]):
        return emit_s8(_pool_s8(node, graph), node)
    lo, hi = clamp_of(node)
    params = {"kind": "TC_POOL_MAX" if node.op == "MaxPool" else "TC_POOL_AVG"}
    params |= _geometry(node, graph) | {"act_min": lo, "act_max": hi}
    return KernelCall("tc_pool_f32", ("tc_pool_f32.c",), "tc_pool_f32.h", "tc_pool_f32_params_t",
                      params, [node.inputs[0], node.outputs[0]],
                      _summary(node, graph) + clamp_summary(node),
                      in_place=_in_place(node, graph, params))


for _op in ("MaxPool", "AveragePool"):
    register(_op, _infer, _evaluate, _emit, traits=("fuses_clamp", "spatial"))
