"""int8 operators: one description drives both the C call and the exact NumPy simulation.

An IR operator is the same operator whether its tensors are float32 or int8; its OpDef
dispatches on the input's dtype.  For int8 the operator builds an `S8Kernel`: the kernel's C
function, its parameter struct as a dict (computed once, by tinyc.quant.arith, from the tensors'
scales and zero points exactly as TFLite Micro computes them), its operands, and the NumPy
reference of the same kernel.  `emit_s8` turns it into the C call and `evaluate_s8` runs the
reference with the very same parameters, so the Python simulation of a quantized graph and the
generated C agree bit for bit by construction (and the kernel tests hold both to TFLM).

Fused clamps stay real-valued in the IR (act_min/act_max); an int8 kernel receives them
quantized with the output's scale and zero point, as TFLite's CalculateActivationRangeQuantized
does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyc.errors import UnsupportedOperator
from tinyc.ir import Graph, Node, QuantParams
from tinyc.ops import CArray, InPlace, KernelCall, clamp_of
from tinyc.quant import arith

INT8_MIN, INT8_MAX = -128, 127


@dataclass(frozen=True)
class DerivedConst:
    """A constant an int8 kernel needs in its own layout (e.g. depthwise weights)."""

    hint: str
    value: np.ndarray = field(compare=False)


Operand = str | DerivedConst


@dataclass
class S8Kernel:
    function: str
    source: str  # runtime_c file
    header: str
    params_type: str
    params: dict[str, Any]  # the C struct, field by field (tuples for pointer fields)
    operands: list[Operand]  # C argument order, output excluded
    reference: Callable[..., np.ndarray]  # arith's NumPy model: reference(params, *operands)
    summary: str
    pointers: tuple[str, ...] = ()  # params fields that point to const arrays
    scratch_bytes: int = 0  # working memory the kernel needs (planned in the arena)
    in_place: tuple[InPlace, ...] = ()  # inputs the kernel can write its output over


def is_int8(graph: Graph, name: str) -> bool:
    return bool(name) and graph.tensors[name].dtype == "int8"


def is_hybrid(node: Node, graph: Graph) -> bool:
    """Float activations with int8 constant weights (a dynamic-range "hybrid" layer)."""
    return (graph.tensors[node.inputs[0]].dtype == "float32"
            and graph.tensors[node.inputs[1]].dtype == "int8")


def quant(graph: Graph, name: str, node: Node) -> QuantParams:
    q = graph.tensors[name].quant
    if q is None:
        raise UnsupportedOperator(f"{node.op} node '{node.name}': tensor '{name}' is int8 "
                                  "without quantization parameters")
    return q


def per_tensor(graph: Graph, name: str, node: Node) -> QuantParams:
    q = quant(graph, name, node)
    if q.scale.size != 1:
        raise UnsupportedOperator(f"{node.op} node '{node.name}': tensor '{name}' is quantized "
                                  "per channel where TFLite's int8 kernels need one scale")
    return q


def act_range(node: Node, graph: Graph) -> tuple[int, int]:
    """The node's real-valued clamp as an int8 range on its output's quantization."""
    lo, hi = clamp_of(node)
    q = per_tensor(graph, node.outputs[0], node)
    qmin = INT8_MIN if lo == float("-inf") else max(INT8_MIN, arith.quantize_value(lo, q.s, q.zp))
    qmax = INT8_MAX if hi == float("inf") else min(INT8_MAX, arith.quantize_value(hi, q.s, q.zp))
    return qmin, qmax


def require_same_quant(node: Node, graph: Graph, names: list[str]) -> None:
    """Operators that only move int8 data need their inputs and output quantized alike."""
    out = per_tensor(graph, node.outputs[0], node)
    for name in names:
        q = per_tensor(graph, name, node)
        if (q.s, q.zp) != (out.s, out.zp):
            raise UnsupportedOperator(
                f"{node.op} node '{node.name}': int8 input '{name}' (scale {q.s:g}, zero point "
                f"{q.zp}) and output (scale {out.s:g}, zero point {out.zp}) differ; tinyc's "
                "int8 data movement does not requantize")


def _value(node: Node, operand: Operand, inputs: list[Any]) -> np.ndarray | None:
    if isinstance(operand, DerivedConst):
        return operand.value
    if operand == "":
        return None
    return inputs[node.inputs.index(operand)]


_KERNELS: ContextVar[dict[str, S8Kernel] | None] = ContextVar("tinyc_s8_kernels", default=None)


@contextmanager
def kept_kernels(store: dict[str, S8Kernel]) -> Iterator[None]:
    """Within it, evaluate_s8 builds each node's kernel once and keeps it in `store` (by node
    name): for evaluating one graph that no longer changes many times, e.g. a reference run per
    sample, where building the parameters costs more than the arithmetic."""
    token = _KERNELS.set(store)
    try:
        yield
    finally:
        _KERNELS.reset(token)


def evaluate_s8(build: Callable[[Node, Graph], S8Kernel], node: Node, inputs: list[Any],
                graph: Graph) -> list[np.ndarray]:
    """The node's output by the NumPy reference of the kernel `build(node, graph)` describes."""
    store = _KERNELS.get()
    kernel = store.get(node.name) if store is not None else None
    if kernel is None:
        kernel = build(node, graph)
        if store is not None:
            store[node.name] = kernel
    values = [_value(node, operand, inputs) for operand in kernel.operands]
    y = kernel.reference(kernel.params, *values)
    out = graph.tensors[node.outputs[0]]
    return [np.asarray(y).reshape(out.shape).astype(out.dtype)]


def _c_array(values: Any) -> CArray:
    values = tuple(values)
    if any(isinstance(v, float | np.floating) for v in values):
        return CArray("float", tuple(float(v) for v in values))
    return CArray("int32_t", tuple(int(v) for v in values))


def emit_s8(kernel: S8Kernel, node: Node) -> KernelCall:
    params = {k: _c_array(v) if k in kernel.pointers else v for k, v in kernel.params.items()}
    args: list[Any] = [*kernel.operands, node.outputs[0]]
    return KernelCall(kernel.function, (kernel.source,), kernel.header, kernel.params_type,
                      params, args, kernel.summary, kernel.scratch_bytes, kernel.in_place)


def int8_range_summary(lo: int, hi: int) -> str:
    return "" if (lo, hi) == (INT8_MIN, INT8_MAX) else f", clamp [{lo}, {hi}]"
