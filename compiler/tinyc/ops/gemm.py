"""Gemm (ONNX Gemm, torch Linear) and MatMul (numpy matmul broadcasting).

Gemm attributes: alpha, beta (float), transA, transB (0/1), optional act_min/act_max.
Inputs A [M, K] (or [K, M] with transA), B [K, N] (or [N, K] with transB), optional C
broadcastable to [M, N].  MatMul has no attributes beyond the optional clamp; 1-D operands follow
numpy (a vector is a row on the left, a column on the right).  Both lower to tc_gemm_f32, whose
strides absorb transposition and broadcasting without copies.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedOperator
from tinyc.ir import Graph, Node
from tinyc.ops import (
    KernelCall,
    Shape,
    apply_clamp,
    broadcast_strides,
    clamp_of,
    clamp_summary,
    fmt_shape,
    register,
    shape_of,
)
from tinyc.ops.fast_s8 import optimize_s8
from tinyc.ops.quantized import (
    DerivedConst,
    S8Kernel,
    act_range,
    emit_s8,
    evaluate_s8,
    int8_range_summary,
    is_hybrid,
    is_int8,
    per_tensor,
    quant,
)
from tinyc.quant import arith, hybrid

MAX_BATCH_DIMS = 4


def _gemm_dims(node: Node, graph: Graph) -> tuple[int, int, int]:
    a, b = shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])
    m, k = (a[1], a[0]) if node.attrs["transA"] else a
    n = b[0] if node.attrs["transB"] else b[1]
    return m, n, k


def _infer_gemm(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    m, n, _ = _gemm_dims(node, graph)
    return [((m, n), graph.tensors[node.inputs[0]].dtype)]


def _fully_connected_s8(node: Node, graph: Graph) -> S8Kernel:
    """int8 Gemm / MatMul with constant weights: TFLite's FULLY_CONNECTED (tc_fully_connected_s8,
    weights [N, K]; a [K, N] weight is re-laid at compile time).  An input [..., K] of more than
    two dimensions is its rows, as FULLY_CONNECTED takes it (a Linear applied per time step)."""
    a, b = node.inputs[0], node.inputs[1]
    w = graph.tensors[b]
    a_shape = shape_of(graph, a)
    if (w.data is None or len(w.shape) != 2 or node.attrs.get("transA", 0)
            or len(a_shape) < 2):
        raise UnsupportedOperator(f"{node.op} node '{node.name}': int8 matrix products need "
                                  "constant 2-D weights and an input of 2 or more dimensions "
                                  "(FULLY_CONNECTED)")
    if node.attrs.get("alpha", 1.0) != 1.0 or node.attrs.get("beta", 1.0) != 1.0:
        raise UnsupportedOperator(f"Gemm node '{node.name}': int8 Gemm with alpha/beta != 1")
    transposed = node.attrs.get("transB", 0)
    wq = quant(graph, b, node)
    if wq.per_channel and wq.axis != (0 if transposed else 1):
        raise UnsupportedOperator(f"{node.op} node '{node.name}': weights quantized along the "
                                  "input axis; int8 kernels take per-output-channel scales")
    weights = b if transposed else DerivedConst("weight_nk", np.ascontiguousarray(w.data.T))
    xq = per_tensor(graph, a, node)
    yq = per_tensor(graph, node.outputs[0], node)
    lo, hi = act_range(node, graph)
    m, k = int(np.prod(a_shape[:-1])), a_shape[-1]
    n = shape_of(graph, node.outputs[0])[-1]
    params = {"batch": m, "in_features": k, "out_features": n}
    params |= arith.fully_connected_params(xq.s, xq.zp, wq.scale, yq.s, yq.zp, lo, hi)
    portable = S8Kernel("tc_fully_connected_s8", "tc_fully_connected_s8.c",
                        "tc_fully_connected_s8.h", "tc_fully_connected_s8_params_t", params,
                        [a, weights, node.input(2)], arith.fully_connected_s8,
                        f"FullyConnected M={m} N={n} K={k} int8{int8_range_summary(lo, hi)}",
                        pointers=("multiplier", "shift"))
    return optimize_s8(portable, graph)


def _fully_connected_hybrid(node: Node, graph: Graph) -> S8Kernel:
    """Float input, int8 weights [N, K] (dynamic range): tc_fully_connected_hybrid."""
    a, b = node.inputs[0], node.inputs[1]
    w = graph.tensors[b]
    if (w.data is None or node.attrs.get("transA", 0) or not node.attrs.get("transB", 0)
            or node.attrs.get("alpha", 1.0) != 1.0 or len(shape_of(graph, a)) != 2):
        raise UnsupportedOperator(f"{node.op} node '{node.name}': int8 weights with float "
                                  "activations need FULLY_CONNECTED form ([N, K] weights)")
    wq = quant(graph, b, node)
    m, k = shape_of(graph, a)
    n = w.shape[0]
    lo, hi = clamp_of(node)
    params = {"batch": m, "in_features": k, "out_features": n,
              "per_channel": int(wq.per_channel),
              "weight_scale": tuple(float(s) for s in wq.scale), "act_min": lo, "act_max": hi}
    qmax = node.attrs.get("input_qmax", 0)  # PyTorch's dynamic quantization (tc_hybrid.h)
    if qmax:
        if np.any(wq.zero_point != 0):
            raise UnsupportedOperator(f"{node.op} node '{node.name}': dynamic quantized weights "
                                      "with a non-zero zero point (quantize them symmetrically)")
        sums = w.data.astype(np.int64).reshape(n, k).sum(axis=1)
        params |= {"input_qmax": qmax, "weight_sums": tuple(int(v) for v in sums)}
    scheme = f"PyTorch dynamic uint8 [0, {qmax}]" if qmax else "dynamic range"
    return S8Kernel("tc_fully_connected_hybrid", "tc_hybrid.c", "tc_hybrid.h",
                    "tc_fully_connected_hybrid_params_t", params, [a, b, node.input(2)],
                    hybrid.fully_connected_hybrid,
                    f"FullyConnected M={m} N={n} K={k}, int8 weights ({scheme})"
                    f"{clamp_summary(node)}", pointers=("weight_scale", "weight_sums"),
                    scratch_bytes=m * k if qmax else k)


def _evaluate_gemm(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    if is_int8(graph, node.inputs[0]):
        return evaluate_s8(_fully_connected_s8, node, inputs, graph)
    if is_hybrid(node, graph):
        return evaluate_s8(_fully_connected_hybrid, node, inputs, graph)
    a, b = inputs[0], inputs[1]
    at = a.T if node.attrs["transA"] else a
    bt = b.T if node.attrs["transB"] else b
    y = np.float32(node.attrs["alpha"]) * (at @ bt)
    if len(inputs) > 2 and inputs[2] is not None:
        y = y + np.float32(node.attrs["beta"]) * inputs[2]
    return [apply_clamp(node, y.astype(np.float32))]


def _emit_gemm(node: Node, graph: Graph) -> KernelCall:
    if is_int8(graph, node.inputs[0]):
        return emit_s8(_fully_connected_s8(node, graph), node)
    if is_hybrid(node, graph):
        return emit_s8(_fully_connected_hybrid(node, graph), node)
    m, n, k = _gemm_dims(node, graph)
    ta, tb = node.attrs["transA"], node.attrs["transB"]
    c = node.input(2)
    c_strides = broadcast_strides(shape_of(graph, c), (m, n)) if c else [0, 0]
    params = _params(m, n, k, node)
    params |= {
        "a_stride_m": 1 if ta else k, "a_stride_k": m if ta else 1,
        "b_stride_k": 1 if tb else n, "b_stride_n": k if tb else 1,
        "c_stride_m": c_strides[0], "c_stride_n": c_strides[1],
        "alpha": node.attrs["alpha"], "beta": node.attrs["beta"],
    }
    summary = (
        f"Gemm M={m} N={n} K={k}" + (" transA" if ta else "") + (" transB" if tb else "")
        + (f" alpha={node.attrs['alpha']:g}" if node.attrs["alpha"] != 1 else "")
        + (f" beta={node.attrs['beta']:g}" if c and node.attrs["beta"] != 1 else "")
        + f"{clamp_summary(node)}"
    )
    return _call(node, params, summary, [node.inputs[0], node.inputs[1], c, node.outputs[0]])


def _matmul_operands(node: Node, graph: Graph) -> tuple[Shape, Shape]:
    """Operand shapes with numpy's 1-D promotion applied: a vector is [1, K] or [K, 1]."""
    a, b = shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])
    a = (1, *a) if len(a) == 1 else a
    b = (*b, 1) if len(b) == 1 else b
    return a, b


def _infer_matmul(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    a, b = _matmul_operands(node, graph)
    batch = np.broadcast_shapes(a[:-2], b[:-2])
    out: tuple[int, ...] = (*batch, a[-2], b[-1])
    if len(shape_of(graph, node.inputs[0])) == 1:
        out = out[:-2] + out[-1:]
    if len(shape_of(graph, node.inputs[1])) == 1:
        out = out[:-1]
    return [(out, graph.tensors[node.inputs[0]].dtype)]


def _evaluate_matmul(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    if is_int8(graph, node.inputs[0]):
        return evaluate_s8(_fully_connected_s8, node, inputs, graph)
    return [apply_clamp(node, np.matmul(inputs[0], inputs[1]).astype(np.float32))]


def _emit_matmul(node: Node, graph: Graph) -> KernelCall:
    if is_int8(graph, node.inputs[0]):
        return emit_s8(_fully_connected_s8(node, graph), node)
    a, b = _matmul_operands(node, graph)
    batch = tuple(np.broadcast_shapes(a[:-2], b[:-2]))
    if len(batch) > MAX_BATCH_DIMS:
        raise UnsupportedOperator(
            f"MatMul '{node.name}' has {len(batch)} batch dimensions; at most {MAX_BATCH_DIMS}"
        )
    m, k, n = a[-2], a[-1], b[-1]
    params = _params(m, n, k, node)
    params |= {
        "batch_rank": len(batch),
        "batch_shape": list(batch),
        "a_batch_strides": [s * m * k for s in broadcast_strides(a[:-2], batch)],
        "b_batch_strides": [s * k * n for s in broadcast_strides(b[:-2], batch)],
        "a_stride_m": k, "a_stride_k": 1, "b_stride_k": n, "b_stride_n": 1,
        "c_stride_m": 0, "c_stride_n": 0, "alpha": 1.0, "beta": 0.0,
    }
    summary = (f"MatMul {fmt_shape(shape_of(graph, node.inputs[0]))} x "
               f"{fmt_shape(shape_of(graph, node.inputs[1]))}{clamp_summary(node)}")
    return _call(node, params, summary, [node.inputs[0], node.inputs[1], "", node.outputs[0]])


def _params(m: int, n: int, k: int, node: Node) -> dict:
    lo, hi = clamp_of(node)
    return {"batch_rank": 0, "m": m, "n": n, "k": k, "act_min": lo, "act_max": hi}


def _call(node: Node, params: dict, summary: str, args: list) -> KernelCall:
    return KernelCall("tc_gemm_f32", ("tc_gemm_f32.c",), "tc_gemm_f32.h", "tc_gemm_f32_params_t",
                      params, args, summary)


def _macs_gemm(node: Node, graph: Graph) -> int:
    m, n, k = _gemm_dims(node, graph)
    return m * n * k


def _macs_matmul(node: Node, graph: Graph) -> int:
    a, _ = _matmul_operands(node, graph)
    return graph.tensors[node.outputs[0]].size * a[-1]


register("Gemm", _infer_gemm, _evaluate_gemm, _emit_gemm, traits=("fuses_clamp",),
         macs=_macs_gemm)
register("MatMul", _infer_matmul, _evaluate_matmul, _emit_matmul, traits=("fuses_clamp",),
         macs=_macs_matmul)
