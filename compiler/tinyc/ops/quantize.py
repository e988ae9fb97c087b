"""Quantize and Dequantize: the boundaries between float32 and int8.

Quantize: x (float32, or int8 to requantize) -> y int8, with y's quantization:
  float32: y = clamp(round(x / scale) + zero_point), round half away from zero, as TFLite's
           AffineQuantize (ONNX QuantizeLinear rounds half to even: the two differ only on exact
           ties, by one step, which the ONNX verification tolerance covers);
  int8:    TFLite's Requantize, y = zp_y + MultiplyByQuantizedMultiplier(x - zp_x, s_x / s_y).
Dequantize: x int8 -> y float32 = scale * (x - zero_point), x's quantization, computed in float32.
Per-channel (de)quantization, and the dequantization of int32 (an ONNX QDQ bias), exist only
for constants, which constant folding evaluates.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedOperator
from tinyc.ir import Graph, Node, QuantParams
from tinyc.ops import KernelCall, Shape, elementwise_in_place, fmt_shape, register
from tinyc.ops.quantized import S8Kernel, emit_s8, evaluate_s8, is_int8, per_tensor, quant
from tinyc.quant import arith


def _channel_view(q: QuantParams, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    shape = [1] * ndim
    if q.per_channel:
        shape[q.axis] = -1
    return q.scale.reshape(shape), q.zero_point.reshape(shape)


def _kernel(node: Node, graph: Graph) -> S8Kernel:
    x, y = node.inputs[0], node.outputs[0]
    count = graph.tensors[x].size
    shape = fmt_shape(graph.tensors[x].shape)
    if node.op == "Dequantize":
        q = per_tensor(graph, x, node)
        return S8Kernel("tc_dequantize_s8", "tc_quantize_s8.c", "tc_quantize_s8.h",
                        "tc_dequantize_s8_params_t",
                        {"count": count} | arith.dequantize_params(q.s, q.zp), [x],
                        arith.dequantize_s8, f"Dequantize int8 -> float32 {shape}")
    qy = per_tensor(graph, y, node)
    if is_int8(graph, x):
        qx = per_tensor(graph, x, node)
        return S8Kernel("tc_requantize_s8", "tc_quantize_s8.c", "tc_quantize_s8.h",
                        "tc_requantize_s8_params_t",
                        {"count": count} | arith.requantize_params(qx.s, qx.zp, qy.s, qy.zp),
                        [x], arith.requantize_s8, f"Requantize int8 -> int8 {shape}")
    if graph.tensors[x].dtype != "float32":
        raise UnsupportedOperator(f"Quantize node '{node.name}': input is "
                                  f"{graph.tensors[x].dtype}")
    return S8Kernel("tc_quantize_s8", "tc_quantize_s8.c", "tc_quantize_s8.h",
                    "tc_quantize_s8_params_t",
                    {"count": count} | arith.quantize_params(qy.s, qy.zp), [x],
                    arith.quantize_s8, f"Quantize float32 -> int8 {shape}")


def _infer(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    shape = graph.tensors[node.inputs[0]].shape
    return [(shape, "float32" if node.op == "Dequantize" else "int8")]


def _evaluate(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    x = inputs[0]
    if node.op == "Dequantize" and (quant(graph, node.inputs[0], node).per_channel
                                    or not is_int8(graph, node.inputs[0])):
        scale, zp = _channel_view(quant(graph, node.inputs[0], node), x.ndim)
        return [(scale * (x.astype(np.int64) - zp).astype(np.float32)).astype(np.float32)]
    if node.op == "Quantize" and quant(graph, node.outputs[0], node).per_channel:
        scale, zp = _channel_view(quant(graph, node.outputs[0], node), x.ndim)
        q = np.round(x.astype(np.float32) / scale) + zp  # ONNX: half to even (constants only)
        return [np.clip(q, -128, 127).astype(np.int8)]
    return evaluate_s8(_kernel, node, inputs, graph)


def _emit(node: Node, graph: Graph) -> KernelCall:
    """(De/re)quantization computes y[i] from x[i] front to back: in place, a widening
    Dequantize with its output shifted down (ops.elementwise_in_place)."""
    call = emit_s8(_kernel(node, graph), node)
    call.in_place = elementwise_in_place(node, graph)
    return call


for _op in ("Quantize", "Dequantize"):
    register(_op, _infer, _evaluate, _emit, traits=("unary", "elementwise"))
