"""Data movement and shape operators.

Run-time operators (any element type):
  Reshape    attrs shape (static, resolved): a view; the planner gives the output the input's
             memory and no code runs.  Flatten, Squeeze, Unsqueeze and Identity become Reshape.
  Transpose  attrs perm
  Slice      attrs starts, ends, steps: one per axis, already clamped by the frontend
             (end = -1 with a negative step means "through index 0")
  Expand     attrs shape: the output shape (numpy broadcasting of the input)
  Concat     attrs axis (non-negative)
  Pad        attrs pads (leading pads of every axis, then trailing), mode
             ('constant' | 'reflect' | 'edge'), value (float)
Compile-time only (constant folding must remove them; code generation refuses them):
  Shape (start, end), Gather (axis), Cast (to), ConstantOfShape (value: a 1-element array),
  Range.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tinyc.errors import UnsupportedOperator
from tinyc.ir import Graph, Node
from tinyc.ops import (
    CArray,
    KernelCall,
    Shape,
    broadcast_strides,
    dense_strides,
    fmt_shape,
    register,
    shape_of,
)
from tinyc.ops.quantized import is_int8, per_tensor, require_same_quant
from tinyc.quant import arith


def _dtype(graph: Graph, name: str) -> str:
    return graph.tensors[name].dtype


def _elem_size(graph: Graph, name: str) -> int:
    return np.dtype(_dtype(graph, name)).itemsize


# ---- Reshape ---------------------------------------------------------------------------------
def _infer_reshape(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    return [(tuple(node.attrs["shape"]), _dtype(graph, node.inputs[0]))]


def _evaluate_reshape(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    return [inputs[0].reshape(node.attrs["shape"])]


def _emit_reshape(node: Node, graph: Graph) -> KernelCall:
    summary = (f"Reshape {fmt_shape(shape_of(graph, node.inputs[0]))} -> "
               f"{fmt_shape(node.attrs['shape'])}: same memory, no code")
    return KernelCall("", (), "", None, {}, [node.inputs[0], node.outputs[0]], summary)


# ---- strided copies: Transpose, Slice, Expand --------------------------------------------------
def merged_dims(shape: Sequence[int], strides: Sequence[int]) -> tuple[list[int], list[int]]:
    """The same row-major walk over fewer dimensions: extent-1 dimensions dropped, and each
    dimension merged into the one before it where that one's stride steps over it exactly
    (NCHW -> NHWC: H and W become one run of H * W pixels, read contiguously)."""
    dims = [(n, st) for n, st in zip(shape, strides, strict=True) if n != 1]
    merged: list[tuple[int, int]] = []
    for n, st in dims:
        if merged and merged[-1][1] == n * st:
            merged[-1] = (merged[-1][0] * n, st)
        else:
            merged.append((n, st))
    return [n for n, _ in merged], [st for _, st in merged]


def _strided_copy(node: Node, graph: Graph, in_strides: list[int], offset: int,
                  summary: str) -> KernelCall:
    shape, strides = merged_dims(shape_of(graph, node.outputs[0]), in_strides)
    params = {
        "elem_size": _elem_size(graph, node.inputs[0]),
        "rank": len(shape),
        "shape": shape,
        "in_strides": strides,
        "in_offset": offset,
    }
    return KernelCall("tc_strided_copy", ("tc_copy.c",), "tc_copy.h", "tc_strided_copy_params_t",
                      params, [node.inputs[0], node.outputs[0]], summary)


def _infer_transpose(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    x = shape_of(graph, node.inputs[0])
    return [(tuple(x[p] for p in node.attrs["perm"]), _dtype(graph, node.inputs[0]))]


def _evaluate_transpose(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    return [np.asarray(np.transpose(inputs[0], node.attrs["perm"]), order="C")]


def _emit_transpose(node: Node, graph: Graph) -> KernelCall:
    x = shape_of(graph, node.inputs[0])
    strides = dense_strides(x)
    perm = node.attrs["perm"]
    return _strided_copy(node, graph, [strides[p] for p in perm], 0,
                         f"Transpose perm {list(perm)} {fmt_shape(x)}")


def slice_length(start: int, end: int, step: int) -> int:
    return max(0, -(-(end - start) // step)) if step > 0 else max(0, -(-(start - end) // -step))


def _infer_slice(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    a = node.attrs
    shape = tuple(slice_length(s, e, st) for s, e, st in zip(a["starts"], a["ends"], a["steps"],
                                                               strict=True))
    return [(shape, _dtype(graph, node.inputs[0]))]


def _evaluate_slice(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    a = node.attrs
    index = tuple(slice(s, None if e < 0 else e, st)
                  for s, e, st in zip(a["starts"], a["ends"], a["steps"], strict=True))
    return [np.asarray(inputs[0][index], order="C")]


def _emit_slice(node: Node, graph: Graph) -> KernelCall:
    x = shape_of(graph, node.inputs[0])
    a = node.attrs
    strides = dense_strides(x)
    offset = sum(s * st for s, st in zip(a["starts"], strides, strict=True))
    in_strides = [step * st for step, st in zip(a["steps"], strides, strict=True)]
    return _strided_copy(node, graph, in_strides, offset,
                         f"Slice starts {list(a['starts'])} ends {list(a['ends'])} "
                         f"steps {list(a['steps'])} {fmt_shape(x)}")


def _infer_expand(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    x = shape_of(graph, node.inputs[0])
    return [(tuple(np.broadcast_shapes(x, tuple(node.attrs["shape"]))),
             _dtype(graph, node.inputs[0]))]


def _evaluate_expand(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    x = inputs[0]
    return [np.array(np.broadcast_to(x, np.broadcast_shapes(x.shape, node.attrs["shape"])),
                     order="C")]


def _emit_expand(node: Node, graph: Graph) -> KernelCall:
    x, y = shape_of(graph, node.inputs[0]), shape_of(graph, node.outputs[0])
    return _strided_copy(node, graph, broadcast_strides(x, y), 0,
                         f"Expand {fmt_shape(x)} -> {fmt_shape(y)}")


# ---- Concat, Pad --------------------------------------------------------------------------------
def _infer_concat(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    axis = node.attrs["axis"]
    shapes = [shape_of(graph, t) for t in node.inputs]
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return [(tuple(out), _dtype(graph, node.inputs[0]))]


def _evaluate_concat(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    return [np.concatenate(inputs, axis=node.attrs["axis"])]


def _emit_concat(node: Node, graph: Graph) -> KernelCall:
    if is_int8(graph, node.inputs[0]):
        require_same_quant(node, graph, list(node.inputs))
    axis = node.attrs["axis"]
    y = shape_of(graph, node.outputs[0])
    inner = int(np.prod(y[axis + 1:]))
    chunks = tuple(shape_of(graph, t)[axis] * inner for t in node.inputs)
    params = {
        "elem_size": _elem_size(graph, node.outputs[0]),
        "outer": int(np.prod(y[:axis])),
        "num_inputs": len(node.inputs),
        "chunks": CArray("int32_t", chunks),
    }
    summary = (f"Concat axis {axis} "
               + " + ".join(fmt_shape(shape_of(graph, t)) for t in node.inputs)
               + f" -> {fmt_shape(y)}")
    return KernelCall("tc_concat", ("tc_copy.c",), "tc_copy.h", "tc_concat_params_t", params,
                      [list(node.inputs), node.outputs[0]], summary)


def _infer_pad(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    x = shape_of(graph, node.inputs[0])
    pads = node.attrs["pads"]
    r = len(x)
    return [(tuple(x[i] + pads[i] + pads[i + r] for i in range(r)), _dtype(graph, node.inputs[0]))]


def _evaluate_pad(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    x = inputs[0]
    pads, mode = node.attrs["pads"], node.attrs["mode"]
    value = node.attrs["value"]
    if is_int8(graph, node.inputs[0]):
        q = per_tensor(graph, node.inputs[0], node)
        value = min(127, max(-128, arith.quantize_value(value, q.s, q.zp)))
    r = x.ndim
    # Negative pads crop: apply the crop first, then the (non-negative) padding.
    crop = tuple(slice(max(0, -pads[i]), x.shape[i] - max(0, -pads[i + r])) for i in range(r))
    widths = [(max(0, pads[i]), max(0, pads[i + r])) for i in range(r)]
    x = x[crop]
    if mode == "constant":
        y = np.pad(x, widths, mode="constant", constant_values=value)
    else:
        y = np.pad(x, widths, mode=mode)
    return [y.astype(inputs[0].dtype)]


def _emit_pad(node: Node, graph: Graph) -> KernelCall:
    x, y = shape_of(graph, node.inputs[0]), shape_of(graph, node.outputs[0])
    pads, mode = node.attrs["pads"], node.attrs["mode"]
    r = len(x)
    if min(pads) < 0:
        raise UnsupportedOperator(f"Pad '{node.name}' has negative pads {list(pads)}; "
                                  "tinyc supports cropping through Slice")
    dtype = np.dtype(_dtype(graph, node.inputs[0]))
    value = node.attrs["value"]
    if is_int8(graph, node.inputs[0]):  # the pad value is real: pad with its quantized code
        q = per_tensor(graph, node.inputs[0], node)
        value = min(127, max(-128, arith.quantize_value(value, q.s, q.zp)))
    value = np.array([value], dtype=dtype).tobytes().ljust(8, b"\0")
    params = {
        "elem_size": dtype.itemsize,
        "mode": {"constant": "TC_PAD_CONSTANT", "reflect": "TC_PAD_REFLECT",
                 "edge": "TC_PAD_EDGE"}[mode],
        "rank": r,
        "in_shape": list(x),
        "out_shape": list(y),
        "pads_begin": list(pads[:r]),
        "value_bytes": list(value),
    }
    summary = f"Pad {mode} pads {list(pads)} {fmt_shape(x)} -> {fmt_shape(y)}"
    return KernelCall("tc_pad", ("tc_copy.c",), "tc_copy.h", "tc_pad_params_t", params,
                      [node.inputs[0], node.outputs[0]], summary)


# ---- compile-time only -----------------------------------------------------------------------
def _infer_shape_op(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    rank = len(shape_of(graph, node.inputs[0]))
    start, end = node.attrs.get("start", 0), node.attrs.get("end", rank)
    return [((len(range(rank)[slice(start, end)]),), "int64")]


def _evaluate_shape_op(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    shape = np.array(inputs[0].shape, dtype=np.int64)
    return [shape[node.attrs.get("start", 0):node.attrs.get("end", len(shape))]]


def _infer_gather(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    x, idx = shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])
    axis = node.attrs["axis"]
    return [(x[:axis] + idx + x[axis + 1:], _dtype(graph, node.inputs[0]))]


def _evaluate_gather(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    x, idx = inputs
    axis = node.attrs["axis"]
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return [np.take(x, idx, axis=axis)]


def _infer_cast(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    return [(shape_of(graph, node.inputs[0]), node.attrs["to"])]


def _evaluate_cast(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    return [inputs[0].astype(node.attrs["to"])]


def _infer_const_of_shape(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    return [(tuple(node.attrs["shape"]), str(node.attrs["value"].dtype))]


def _evaluate_const_of_shape(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    return [np.full(node.attrs["shape"], node.attrs["value"].reshape(-1)[0])]


def _evaluate_range(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    start, limit, delta = (np.asarray(v).reshape(()) for v in inputs)
    return [np.arange(start, limit, delta, dtype=start.dtype)]


def _infer_range(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    values = [graph.const(t) for t in node.inputs]
    if any(v is None for v in values):
        raise UnsupportedOperator(f"Range '{node.name}' has run-time bounds; tinyc needs "
                                  "static shapes (export with fixed input sizes)")
    y = _evaluate_range(node, values, graph)[0]
    return [(y.shape, str(y.dtype))]


register("Reshape", _infer_reshape, _evaluate_reshape, _emit_reshape, traits=("view",))
register("Transpose", _infer_transpose, _evaluate_transpose, _emit_transpose)
register("Slice", _infer_slice, _evaluate_slice, _emit_slice)
register("Expand", _infer_expand, _evaluate_expand, _emit_expand)
register("Concat", _infer_concat, _evaluate_concat, _emit_concat)
register("Pad", _infer_pad, _evaluate_pad, _emit_pad)
register("Shape", _infer_shape_op, _evaluate_shape_op)
register("Gather", _infer_gather, _evaluate_gather)
register("Cast", _infer_cast, _evaluate_cast)
register("ConstantOfShape", _infer_const_of_shape, _evaluate_const_of_shape)
register("Range", _infer_range, _evaluate_range)
