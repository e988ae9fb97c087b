"""QDQ folding: float operators wrapped in Dequantize ... Quantize become int8 operators.

A QDQ model (onnxruntime's quantize_static, torchao's PT2E, torch.ao eager export) spells an
int8 operator as the float operator between DequantizeLinear on its inputs and QuantizeLinear
on its output.  `fold_qdq` rewrites every such float operator into the same IR operator on the
int8 tensors (weights stay int8 constants, the int32 bias is taken as it is; a float bias is
quantized to int32 with scale s_input * s_weight[c], as TFLite's converter does), so it runs
on TFLite's int8 kernels.  Data movement between a Dequantize and the next operator commutes
with it and moves ahead of it first.  Whatever no int8 operator takes stays float:
`check_float_fallback` refuses such operators in a quantized model unless the user allowed
float fallback, and reports them.
"""

from __future__ import annotations

import numpy as np

from tinyc import ops
from tinyc.errors import UnsupportedOperator
from tinyc.ir import Graph, Node, QuantParams
from tinyc.passes.cleanup import remove_dead_nodes

# Operators with an int8 kernel: their inputs (all but a bias) must come from Dequantize.
INT8_OPS = ("Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "AveragePool", "MaxPool",
            "ReduceMean", "Softmax", "Sigmoid", "Tanh", "HardSwish", "LeakyRelu", "Relu",
            "Clip", "Concat", "Pad", "Reshape", "Transpose", "Slice")
MOVES_DATA = ("Reshape", "Transpose", "Slice", "Expand")
BIAS_INPUT = {"Conv": 2, "Gemm": 2}
# Operators doing no arithmetic; a quantized model may keep them float without a fallback.
NO_ARITHMETIC = ("Quantize", "Dequantize", *MOVES_DATA, "Concat", "Pad")


def _dequantized(graph: Graph, name: str) -> str | None:
    """The int8 tensor that `name` is the Dequantize of, if it is one."""
    producer = graph.producer(name)
    if producer is None or producer.op != "Dequantize":
        return None
    source = producer.inputs[0]
    return source if graph.tensors[source].dtype in ("int8", "int32") else None


def _hoist_dequantize(graph: Graph) -> bool:
    """Dequantize -> Reshape/Transpose/Slice becomes Reshape/... -> Dequantize (on int8)."""
    changed = False
    for node in list(graph.nodes):
        if node.op not in MOVES_DATA:
            continue
        source = _dequantized(graph, node.inputs[0])
        if source is None or graph.tensors[source].dtype != "int8" or \
                graph.tensors[source].quant.per_channel:
            continue
        y = graph.tensors[node.outputs[0]]
        moved = graph.add_tensor(f"{node.name}_int8", y.shape, "int8", graph.tensors[source].quant)
        dq = Node("Dequantize", graph.unique_name(f"{node.name}_dequantize"), [moved], [y.name])
        node.inputs = [source]
        node.outputs = [moved]
        graph.nodes.insert(graph.nodes.index(node) + 1, dq)
        changed = True
    return changed


def _int8_bias(graph: Graph, node: Node, bias: str, x: str, w: str) -> str | None:
    """The int32 bias of an int8 Conv/Gemm: a dequantized int32 as it is, a float one
    quantized with scale s_x * s_w[c]."""
    source = _dequantized(graph, bias)
    if source is not None:
        return source if graph.tensors[source].dtype == "int32" else None
    value = graph.const(bias)
    if value is None:
        return None
    wq, xq = graph.tensors[w].quant, graph.tensors[x].quant
    scale = xq.s * wq.scale.astype(np.float64)
    q = np.round(value.astype(np.float64) / scale).astype(np.int32)
    return graph.add_const(f"{node.name}_bias_int32", q,
                           QuantParams(scale.astype(np.float32), np.zeros_like(wq.zero_point),
                                       0 if wq.per_channel else None))


def _fold_one(graph: Graph, node: Node) -> bool:
    out = node.outputs[0]
    consumers = graph.consumers(out)
    if (node.op not in INT8_OPS or len(consumers) != 1 or consumers[0].op != "Quantize"
            or graph.is_output(out)):
        return False
    inputs = []
    for i, t in enumerate(node.inputs):
        if not t:
            inputs.append("")
            continue
        if BIAS_INPUT.get(node.op) == i:
            bias = _int8_bias(graph, node, t, inputs[0], inputs[1])
            if bias is None:
                return False
            inputs.append(bias)
            continue
        source = _dequantized(graph, t)
        if source is None or graph.tensors[source].dtype != "int8":
            return False
        inputs.append(source)
    quantize = consumers[0]
    node.inputs = inputs
    node.outputs = [quantize.outputs[0]]
    graph.nodes.remove(quantize)
    return True


def _fold_requantize(graph: Graph) -> None:
    """Dequantize -> Quantize is a requantization int8 -> int8, or nothing when the two
    quantizations are the same."""
    for q in [n for n in graph.nodes if n.op == "Quantize"]:
        source = _dequantized(graph, q.inputs[0])
        if source is None or graph.tensors[source].dtype != "int8":
            continue
        a, b = graph.tensors[source].quant, graph.tensors[q.outputs[0]].quant
        same = (a.s, a.zp) == (b.s, b.zp)
        if same and not graph.is_output(q.outputs[0]):
            graph.nodes.remove(q)
            graph.replace_uses(q.outputs[0], source)
        else:
            q.inputs = [source]


def fold_qdq(graph: Graph) -> Graph:
    """Turn Dequantize -> float op -> Quantize into int8 ops; fold the dequantized constants
    no int8 operator took into float constants."""
    if not any(n.op in ("Quantize", "Dequantize") for n in graph.nodes):
        return graph
    while _hoist_dequantize(graph):
        pass
    for node in list(graph.nodes):
        if node in graph.nodes:
            _fold_one(graph, node)
    _fold_requantize(graph)
    remove_dead_nodes(graph)
    for node in list(graph.nodes):
        if node.op == "Dequantize" and graph.const(node.inputs[0]) is not None:
            value = ops.get(node).evaluate(node, [graph.const(node.inputs[0])], graph)[0]
            graph.set_const(node.outputs[0], value)
            graph.nodes.remove(node)
    graph.remove_unused_tensors()
    return graph


def float_fallback(graph: Graph) -> list[Node]:
    """In a quantized model, the operators doing float arithmetic (none in a fully int8 one)."""
    if not any(t.dtype == "int8" and not t.is_const for t in graph.tensors.values()):
        return []  # float activations throughout (int8 weights alone: a dynamic-range model)
    return [n for n in graph.nodes if n.op not in NO_ARITHMETIC
            and any(graph.tensors[t].dtype == "float32" for t in n.outputs)]


def check_float_fallback(graph: Graph, allow: bool) -> list[str]:
    """Refuse float operators in a quantized model unless allowed; returns their names."""
    fallen = float_fallback(graph)
    if fallen and not allow:
        first = fallen[0]
        more = f" and {len(fallen) - 1} more" if len(fallen) > 1 else ""
        raise UnsupportedOperator(
            f"{first.op} node '{first.name}'{more} would run in float32 inside a quantized "
            "model (no int8 form of it here); pass --allow-float-fallback to accept that")
    return [f"{n.op} '{n.name}'" for n in fallen]
