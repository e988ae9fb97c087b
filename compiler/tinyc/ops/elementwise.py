"""Elementwise operators.

Binary (numpy broadcasting, inputs a and b): Add, Sub, Mul, Div, Max, Min, Pow, PRelu
(b is the slope).  Optional fused act_min/act_max.

Unary (input x): Relu and Clip are the identity followed by the node's clamp (Relu carries
act_min = 0, act_max = inf; Clip its min and max), so activation fusion can move that clamp into
the producer.  The rest: LeakyRelu (alpha), Sigmoid, Tanh, HardSigmoid (alpha, beta), HardSwish,
Exp, Log, Abs, Neg, Sqrt, Reciprocal, Floor, Ceil, Erf, Softplus, Elu (alpha), Selu (alpha,
gamma), Gelu (exact erf form).
Transcendentals run through the C library's float functions: their results agree with the
reference within the float tolerance (1e-4 absolute + 1e-4 relative), not bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

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
    elementwise_in_place,
    fmt_shape,
    register,
    shape_of,
)
from tinyc.ops.fast_s8 import optimize_s8
from tinyc.ops.quantized import (
    S8Kernel,
    act_range,
    emit_s8,
    evaluate_s8,
    int8_range_summary,
    is_int8,
    per_tensor,
)
from tinyc.quant import arith

BINARY: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "Add": ("TC_BIN_ADD", np.add),
    "Sub": ("TC_BIN_SUB", np.subtract),
    "Mul": ("TC_BIN_MUL", np.multiply),
    "Div": ("TC_BIN_DIV", np.divide),
    "Max": ("TC_BIN_MAX", np.maximum),
    "Min": ("TC_BIN_MIN", np.minimum),
    "Pow": ("TC_BIN_POW", np.power),
    "PRelu": ("TC_BIN_PRELU", lambda a, b: np.where(a < 0, a * b, a)),
}


def _infer_binary(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    a, b = shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])
    return [(tuple(np.broadcast_shapes(a, b)), graph.tensors[node.inputs[0]].dtype)]


BINARY_S8 = {
    "Add": ("tc_add_s8", "tc_add_s8_params_t", arith.add_params, arith.add_s8),
    "Sub": ("tc_sub_s8", "tc_add_s8_params_t", arith.sub_params, arith.sub_s8),
    "Mul": ("tc_mul_s8", "tc_mul_s8_params_t", arith.mul_params, arith.mul_s8),
}


def _strides(node: Node, graph: Graph) -> dict:
    a, b = shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])
    y = shape_of(graph, node.outputs[0])
    return {"rank": len(y), "shape": list(y), "a_strides": broadcast_strides(a, y),
            "b_strides": broadcast_strides(b, y)}


def _binary_s8(node: Node, graph: Graph) -> S8Kernel:
    if node.op not in BINARY_S8:
        raise UnsupportedOperator(f"{node.op} node '{node.name}': int8 {node.op} is not "
                                  f"supported (int8 {', '.join(BINARY_S8)} are)")
    function, params_type, make_params, reference = BINARY_S8[node.op]
    qa, qb, qy = (per_tensor(graph, t, node) for t in (*node.inputs, node.outputs[0]))
    lo, hi = act_range(node, graph)
    try:
        params = _strides(node, graph) | make_params(qa.s, qa.zp, qb.s, qb.zp, qy.s, qy.zp, lo,
                                                     hi)
    except ValueError:  # Add / Sub: the output rescaling must be a multiplier below 1
        raise UnsupportedOperator(
            f"{node.op} node '{node.name}': int8 output scale {qy.s:g} is too small for input "
            f"scales {qa.s:g} and {qb.s:g} (TFLite's int8 {node.op} needs it above "
            f"2 * max(input scales) / 2^{arith.ADD_LEFT_SHIFT}); requantize the model with a "
            "wider output range") from None
    portable = S8Kernel(function, "tc_elementwise_s8.c", "tc_elementwise_s8.h", params_type,
                        params, list(node.inputs), reference,
                        _binary_summary(node, graph) + int8_range_summary(lo, hi))
    return optimize_s8(portable, graph)


def _binary_summary(node: Node, graph: Graph) -> str:
    a, b = shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])
    y = shape_of(graph, node.outputs[0])
    dtype = graph.tensors[node.outputs[0]].dtype
    return (f"{node.op} {fmt_shape(a)}, {fmt_shape(b)} -> {fmt_shape(y)}"
            + (f" {dtype}" if dtype != "float32" else clamp_summary(node)))


def _evaluate_binary(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    if is_int8(graph, node.inputs[0]):
        return evaluate_s8(_binary_s8, node, inputs, graph)
    a, b = inputs
    if node.op == "Div" and np.issubdtype(a.dtype, np.integer):
        y = np.trunc(a / b).astype(a.dtype)  # ONNX integer division truncates
    else:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = BINARY[node.op][1](a, b).astype(a.dtype)
    return [apply_clamp(node, y)]


def _emit_binary(node: Node, graph: Graph) -> KernelCall:
    """Every binary kernel (float, int8, int8 table) walks the output front to back, reading
    element i of a dense operand just before writing element i: in place over either."""
    if is_int8(graph, node.inputs[0]):
        call = emit_s8(_binary_s8(node, graph), node)
    else:
        lo, hi = clamp_of(node)
        params = ({"op": BINARY[node.op][0]} | _strides(node, graph)
                  | {"act_min": lo, "act_max": hi})
        call = KernelCall("tc_binary_f32", ("tc_elementwise_f32.c",), "tc_elementwise_f32.h",
                          "tc_binary_f32_params_t", params,
                          [node.inputs[0], node.inputs[1], node.outputs[0]],
                          _binary_summary(node, graph))
    call.in_place = elementwise_in_place(node, graph)
    return call


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _elu(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x < 0, alpha * np.expm1(np.minimum(x, 0)), x)


UNARY: dict[str, tuple[str, Callable[[np.ndarray, dict], np.ndarray]]] = {
    "Relu": ("TC_UN_IDENTITY", lambda x, a: x),
    "Clip": ("TC_UN_IDENTITY", lambda x, a: x),
    "LeakyRelu": ("TC_UN_LEAKY_RELU", lambda x, a: np.where(x < 0, a["alpha"] * x, x)),
    "Sigmoid": ("TC_UN_SIGMOID", lambda x, a: 1.0 / (1.0 + np.exp(-x.astype(np.float64)))),
    "Tanh": ("TC_UN_TANH", lambda x, a: np.tanh(x)),
    "HardSigmoid": ("TC_UN_HARD_SIGMOID",
                    lambda x, a: np.clip(a["alpha"] * x + a["beta"], 0.0, 1.0)),
    "HardSwish": ("TC_UN_HARD_SWISH", lambda x, a: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)),
    "Exp": ("TC_UN_EXP", lambda x, a: np.exp(x)),
    "Log": ("TC_UN_LOG", lambda x, a: np.log(x)),
    "Abs": ("TC_UN_ABS", lambda x, a: np.abs(x)),
    "Neg": ("TC_UN_NEG", lambda x, a: np.negative(x)),
    "Sqrt": ("TC_UN_SQRT", lambda x, a: np.sqrt(x)),
    "Reciprocal": ("TC_UN_RECIPROCAL", lambda x, a: np.reciprocal(x)),
    "Floor": ("TC_UN_FLOOR", lambda x, a: np.floor(x)),
    "Ceil": ("TC_UN_CEIL", lambda x, a: np.ceil(x)),
    "Erf": ("TC_UN_ERF", lambda x, a: _erf(x)),
    "Softplus": ("TC_UN_SOFTPLUS", lambda x, a: np.logaddexp(0.0, x.astype(np.float64))),
    "Elu": ("TC_UN_ELU", lambda x, a: _elu(x.astype(np.float64), a["alpha"])),
    "Selu": ("TC_UN_SELU", lambda x, a: a["gamma"] * _elu(x.astype(np.float64), a["alpha"])),
    "Gelu": ("TC_UN_GELU", lambda x, a: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))),
}


def _infer_unary(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    x = graph.tensors[node.inputs[0]]
    return [(x.shape, x.dtype)]


def _fixed_output(node: Node, graph: Graph, scale: float, zero_point: int) -> None:
    """LOGISTIC and TANH have a fixed int8 output quantization in TFLite."""
    q = per_tensor(graph, node.outputs[0], node)
    if (q.s, q.zp) != (float(np.float32(scale)), zero_point):
        raise UnsupportedOperator(
            f"{node.op} node '{node.name}': int8 output quantized with scale {q.s:g}, zero point "
            f"{q.zp}; TFLite's int8 {node.op} needs scale {scale:g}, zero point {zero_point}")


def _unary_s8(node: Node, graph: Graph) -> S8Kernel:
    x, y = node.inputs[0], node.outputs[0]
    qx, qy = per_tensor(graph, x, node), per_tensor(graph, y, node)
    count = graph.tensors[x].size
    summary = f"{node.op} {fmt_shape(graph.tensors[x].shape)} int8"
    header, source = "tc_elementwise_s8.h", "tc_elementwise_s8.c"
    if node.op in ("Relu", "Clip"):
        lo, hi = act_range(node, graph)
        params = {"count": count} | arith.requantize_params(qx.s, qx.zp, qy.s, qy.zp, lo, hi)
        return S8Kernel("tc_requantize_s8", "tc_quantize_s8.c", "tc_quantize_s8.h",
                        "tc_requantize_s8_params_t", params, [x], arith.requantize_s8,
                        summary + int8_range_summary(lo, hi))
    if node.op == "LeakyRelu":
        params = {"count": count} | arith.leaky_relu_params(qx.s, qx.zp, node.attrs["alpha"],
                                                            qy.s, qy.zp)
        return S8Kernel("tc_leaky_relu_s8", source, header, "tc_leaky_relu_s8_params_t", params,
                        [x], arith.leaky_relu_s8, summary)
    if node.op == "Sigmoid":
        _fixed_output(node, graph, arith.LOGISTIC_OUTPUT_SCALE, arith.LOGISTIC_OUTPUT_ZERO_POINT)
        params = {"count": count} | arith.logistic_params(qx.s, qx.zp)
        return S8Kernel("tc_logistic_s8", source, header, "tc_logistic_s8_params_t", params,
                        [x], arith.logistic_s8, summary)
    if node.op == "Tanh":
        _fixed_output(node, graph, arith.TANH_OUTPUT_SCALE, arith.TANH_OUTPUT_ZERO_POINT)
        params = {"count": count} | arith.tanh_params(qx.s, qx.zp)
        return S8Kernel("tc_tanh_s8", source, header, "tc_tanh_s8_params_t", params, [x],
                        arith.tanh_s8, summary)
    if node.op == "HardSwish":
        params = {"count": count} | arith.hard_swish_params(qx.s, qx.zp, qy.s, qy.zp)
        return S8Kernel("tc_hard_swish_s8", source, header, "tc_hard_swish_s8_params_t",
                        params, [x], arith.hard_swish_s8, summary)
    raise UnsupportedOperator(f"{node.op} node '{node.name}': int8 {node.op} is not supported "
                              "(int8 Relu, Clip, LeakyRelu, Sigmoid, Tanh, HardSwish are)")


def _evaluate_unary(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    if is_int8(graph, node.inputs[0]):
        return evaluate_s8(_unary_s8, node, inputs, graph)
    x = inputs[0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        y = np.asarray(UNARY[node.op][1](x, node.attrs)).astype(x.dtype)
    return [apply_clamp(node, y)]


def _emit_unary(node: Node, graph: Graph) -> KernelCall:
    """Every unary kernel (float and int8) computes y[i] from x[i] front to back: in place."""
    if is_int8(graph, node.inputs[0]):
        call = emit_s8(_unary_s8(node, graph), node)
        call.in_place = elementwise_in_place(node, graph)
        return call
    x = graph.tensors[node.inputs[0]]
    lo, hi = clamp_of(node)
    a = node.attrs
    alpha = a.get("alpha", 0.0)
    beta = a.get("gamma", a.get("beta", 0.0))
    params = {"op": UNARY[node.op][0], "count": x.size, "alpha": alpha, "beta": beta,
              "act_min": lo, "act_max": hi}
    detail = "".join(f" {k}={a[k]:g}" for k in ("alpha", "beta", "gamma") if k in a)
    summary = f"{node.op}{detail} {fmt_shape(x.shape)}{clamp_summary(node)}"
    return KernelCall("tc_unary_f32", ("tc_elementwise_f32.c",), "tc_elementwise_f32.h",
                      "tc_unary_f32_params_t", params, [node.inputs[0], node.outputs[0]],
                      summary, in_place=elementwise_in_place(node, graph))


for _op in BINARY:
    register(_op, _infer_binary, _evaluate_binary, _emit_binary,
             traits=("binary", "elementwise", "fuses_clamp"))
for _op in UNARY:
    traits = ("unary", "elementwise", "fuses_clamp")
    if _op in ("Relu", "Clip"):
        traits += ("clamp_only",)
    register(_op, _infer_unary, _evaluate_unary, _emit_unary, traits=traits)
