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


def _evaluate_binary(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    a, b = inputs
    if node.op == "Div" and np.issubdtype(a.dtype, np.integer):
        y = np.trunc(a / b).astype(a.dtype)  # ONNX integer division truncates
    else:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = BINARY[node.op][1](a, b).astype(a.dtype)
    return [apply_clamp(node, y)]


def _emit_binary(node: Node, graph: Graph) -> KernelCall:
    a, b = shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])
    y = shape_of(graph, node.outputs[0])
    lo, hi = clamp_of(node)
    params = {
        "op": BINARY[node.op][0],
        "rank": len(y),
        "shape": list(y),
        "a_strides": broadcast_strides(a, y),
        "b_strides": broadcast_strides(b, y),
        "act_min": lo,
        "act_max": hi,
    }
    summary = f"{node.op} {fmt_shape(a)}, {fmt_shape(b)} -> {fmt_shape(y)}{clamp_summary(node)}"
    return KernelCall("tc_binary_f32", ("tc_elementwise_f32.c",), "tc_elementwise_f32.h",
                      "tc_binary_f32_params_t", params,
                      [node.inputs[0], node.inputs[1], node.outputs[0]], summary)


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


def _evaluate_unary(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    x = inputs[0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        y = np.asarray(UNARY[node.op][1](x, node.attrs)).astype(x.dtype)
    return [apply_clamp(node, y)]


def _emit_unary(node: Node, graph: Graph) -> KernelCall:
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
                      summary)


for _op in BINARY:
    register(_op, _infer_binary, _evaluate_binary, _emit_binary,
             traits=("binary", "elementwise", "fuses_clamp"))
for _op in UNARY:
    traits = ("unary", "elementwise", "fuses_clamp")
    if _op in ("Relu", "Clip"):
        traits += ("clamp_only",)
    register(_op, _infer_unary, _evaluate_unary, _emit_unary, traits=traits)
