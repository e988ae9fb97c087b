"""Constant folding, dead-node removal and view (Reshape) elimination."""

from __future__ import annotations

from tinyc import ops
from tinyc.ir import Graph


def fold_constants(graph: Graph) -> Graph:
    """Evaluate every node whose inputs are all constants; its outputs become constants.

    Dequantize is left alone: a dequantized constant is an int8 weight that fold_qdq hands to
    an int8 operator as it is (it folds the ones no int8 operator takes)."""
    kept = []
    for node in graph.nodes:
        values = [graph.const(t) for t in node.inputs if t]
        if node.op != "Dequantize" and node.inputs and all(v is not None for v in values) \
                and not any(graph.is_output(t) for t in node.outputs):
            results = ops.get(node).evaluate(node, [graph.const(t) for t in node.inputs], graph)
            for name, value in zip(node.outputs, results, strict=True):
                graph.set_const(name, value)
        else:
            kept.append(node)
    graph.nodes = kept
    graph.remove_unused_tensors()
    return graph


def remove_dead_nodes(graph: Graph) -> Graph:
    """Drop nodes none of whose outputs is used (by a node or as a graph output)."""
    changed = True
    while changed:
        used = set(graph.outputs)
        for node in graph.nodes:
            used.update(node.inputs)
        alive = [n for n in graph.nodes if any(t in used for t in n.outputs)]
        changed = len(alive) != len(graph.nodes)
        graph.nodes = alive
    graph.remove_unused_tensors()
    return graph


def eliminate_views(graph: Graph) -> Graph:
    """Remove Reshapes that change nothing and merge chains of Reshapes into one."""
    for node in list(graph.nodes):
        if node.op != "Reshape":
            continue
        src = graph.producer(node.inputs[0])
        if src is not None and src.op == "Reshape":
            node.inputs = [src.inputs[0]]
        x, y = node.inputs[0], node.outputs[0]
        same = graph.tensors[x].shape == graph.tensors[y].shape
        if same and not (graph.is_output(y) and (graph.is_output(x) or x in graph.inputs)):
            graph.nodes.remove(node)
            if graph.is_output(y):
                # Keep the output's name: the producer of x writes it directly.
                producer = graph.producer(x)
                producer.outputs = [y if t == x else t for t in producer.outputs]
                for consumer in graph.consumers(x):
                    consumer.inputs = [y if t == x else t for t in consumer.inputs]
            else:
                graph.replace_uses(y, x)
    return remove_dead_nodes(graph)


def is_identity_perm(perm: tuple[int, ...]) -> bool:
    return tuple(perm) == tuple(range(len(perm)))


def moves_only_unit_dims(shape: tuple[int, ...], perm: tuple[int, ...]) -> bool:
    """True when a Transpose keeps the order of all non-1 dimensions: memory is unchanged."""
    order = [p for p in perm if shape[p] != 1]
    return order == sorted(order)
