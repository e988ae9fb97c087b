"""Reductions (ReduceMean, ReduceMax, ReduceMin, ReduceSum) and Softmax / LogSoftmax.

Reduce attributes: axes (tuple of non-negative axes, sorted; the frontend resolves "all axes"
and opset differences), optional act_min/act_max.  The reduced axes stay in the output with
size 1 (keepdims); a frontend that must drop them adds a Reshape, which is free.
GlobalAveragePool and GlobalMaxPool arrive as ReduceMean / ReduceMax over the spatial axes.
Softmax attributes: axis (non-negative), opset-13 semantics (normalise along that one axis),
optional beta (softmax(beta * x), TFLite's; int8 only, float frontends multiply first).
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedOperator
from tinyc.ir import Graph, Node
from tinyc.ops import (
    KernelCall,
    Shape,
    apply_clamp,
    clamp_of,
    clamp_summary,
    dense_strides,
    fmt_shape,
    register,
    shape_of,
)
from tinyc.ops.quantized import S8Kernel, emit_s8, evaluate_s8, is_int8, per_tensor
from tinyc.quant import arith

REDUCE = {
    "ReduceSum": ("TC_REDUCE_SUM", np.sum),
    "ReduceMean": ("TC_REDUCE_MEAN", np.mean),
    "ReduceMax": ("TC_REDUCE_MAX", np.max),
    "ReduceMin": ("TC_REDUCE_MIN", np.min),
}


def _infer_reduce(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    x = graph.tensors[node.inputs[0]]
    axes = node.attrs["axes"]
    return [(tuple(1 if i in axes else d for i, d in enumerate(x.shape)), x.dtype)]


def _outer_inner(shape: tuple[int, ...], first: int, last: int) -> dict[str, int]:
    """A tensor viewed as [outer, axes first..last, inner]."""
    return {"outer": int(np.prod(shape[:first])), "inner": int(np.prod(shape[last + 1:]))}


def _mean_s8(node: Node, graph: Graph) -> S8Kernel:
    axes = node.attrs["axes"]
    if node.op != "ReduceMean" or list(axes) != list(range(axes[0], axes[-1] + 1)):
        raise UnsupportedOperator(f"{node.op} node '{node.name}': int8 reductions are MEAN over "
                                  "adjacent axes")
    x = shape_of(graph, node.inputs[0])
    qx, qy = per_tensor(graph, node.inputs[0], node), per_tensor(graph, node.outputs[0], node)
    count = int(np.prod([x[a] for a in axes]))
    params = _outer_inner(x, axes[0], axes[-1]) | {"reduce_len": count}
    params |= arith.mean_params(qx.s, qx.zp, qy.s, qy.zp, count)
    return S8Kernel("tc_mean_s8", "tc_reduce_s8.c", "tc_reduce_s8.h", "tc_mean_s8_params_t",
                    params, [node.inputs[0]], arith.mean_s8,
                    f"ReduceMean axes {list(axes)} {fmt_shape(x)} -> "
                    f"{fmt_shape(shape_of(graph, node.outputs[0]))} int8")


def _evaluate_reduce(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    if is_int8(graph, node.inputs[0]):
        return evaluate_s8(_mean_s8, node, inputs, graph)
    x = inputs[0]
    y = REDUCE[node.op][1](x, axis=tuple(node.attrs["axes"]), keepdims=True)
    return [apply_clamp(node, np.asarray(y).astype(x.dtype))]


def _emit_reduce(node: Node, graph: Graph) -> KernelCall:
    if is_int8(graph, node.inputs[0]):
        return emit_s8(_mean_s8(node, graph), node)
    x = shape_of(graph, node.inputs[0])
    axes = node.attrs["axes"]
    kept = [1 if i in axes else d for i, d in enumerate(x)]
    out_strides = [0 if i in axes else s for i, s in enumerate(dense_strides(kept))]
    lo, hi = clamp_of(node)
    params = {
        "op": REDUCE[node.op][0],
        "rank": len(x),
        "in_shape": list(x),
        "out_strides": out_strides,
        "out_count": int(np.prod(kept)),
        "reduce_count": int(np.prod([x[i] for i in axes])),
        "act_min": lo,
        "act_max": hi,
    }
    summary = (f"{node.op} axes {list(axes)} {fmt_shape(x)} -> "
               f"{fmt_shape(shape_of(graph, node.outputs[0]))}{clamp_summary(node)}")
    return KernelCall("tc_reduce_f32", ("tc_reduce_f32.c",), "tc_reduce_f32.h",
                      "tc_reduce_f32_params_t", params, [node.inputs[0], node.outputs[0]],
                      summary)


def _infer_same(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    x = graph.tensors[node.inputs[0]]
    return [(x.shape, x.dtype)]


def _softmax_s8(node: Node, graph: Graph) -> S8Kernel:
    q = per_tensor(graph, node.outputs[0], node)
    fixed = (float(np.float32(arith.SOFTMAX_OUTPUT_SCALE)), arith.SOFTMAX_OUTPUT_ZERO_POINT)
    if node.op != "Softmax" or (q.s, q.zp) != fixed:
        raise UnsupportedOperator(
            f"{node.op} node '{node.name}': int8 softmax needs its output quantized with scale "
            "1/256 and zero point -128, as TFLite's")
    x = shape_of(graph, node.inputs[0])
    axis = node.attrs["axis"]
    if x[axis] > arith.SOFTMAX_MAX_DEPTH:
        raise UnsupportedOperator(
            f"{node.op} node '{node.name}': int8 softmax over {x[axis]} values; TFLite's int8 "
            f"arithmetic sums a row's exps in Q12, which overflows beyond "
            f"{arith.SOFTMAX_MAX_DEPTH}: leave this Softmax in float")
    qx = per_tensor(graph, node.inputs[0], node)
    params = _outer_inner(x, axis, axis) | {"depth": x[axis]}
    beta = node.attrs.get("beta", 1.0)
    try:
        params |= arith.softmax_params(qx.s, beta)
    except ValueError:  # TFLite rescales the input differences with a multiplier above 1
        raise UnsupportedOperator(
            f"{node.op} node '{node.name}': int8 input scale {qx.s:g} (beta {beta:g}) is too "
            "small for TFLite's int8 softmax, which needs beta * scale above 2^-26") from None
    return S8Kernel("tc_softmax_s8", "tc_reduce_s8.c", "tc_reduce_s8.h", "tc_softmax_s8_params_t",
                    params, [node.inputs[0]], arith.softmax_s8,
                    f"Softmax axis {axis} {fmt_shape(x)} int8")


def _evaluate_softmax(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    if is_int8(graph, node.inputs[0]):
        return evaluate_s8(_softmax_s8, node, inputs, graph)
    x = inputs[0].astype(np.float64) * node.attrs.get("beta", 1.0)
    axis = node.attrs["axis"]
    shifted = x - x.max(axis=axis, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    y = shifted - log_sum if node.op == "LogSoftmax" else np.exp(shifted - log_sum)
    return [y.astype(np.float32)]


def _emit_softmax(node: Node, graph: Graph) -> KernelCall:
    if is_int8(graph, node.inputs[0]):
        return emit_s8(_softmax_s8(node, graph), node)
    if node.attrs.get("beta", 1.0) != 1.0:
        raise UnsupportedOperator(f"Softmax node '{node.name}': float softmax with beta != 1")
    x = shape_of(graph, node.inputs[0])
    axis = node.attrs["axis"]
    params = {
        "outer": int(np.prod(x[:axis])),
        "axis_len": x[axis],
        "inner": int(np.prod(x[axis + 1:])),
        "log": int(node.op == "LogSoftmax"),
    }
    summary = f"{node.op} axis {axis} {fmt_shape(x)}"
    return KernelCall("tc_softmax_f32", ("tc_softmax_f32.c",), "tc_reduce_f32.h",
                      "tc_softmax_f32_params_t", params, [node.inputs[0], node.outputs[0]],
                      summary)


for _op in REDUCE:
    register(_op, _infer_reduce, _evaluate_reduce, _emit_reduce, traits=("fuses_clamp",))
for _op in ("Softmax", "LogSoftmax"):
    register(_op, _infer_same, _evaluate_softmax, _emit_softmax)
