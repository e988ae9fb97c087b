"""Layout: every spatial operator runs channels-last (N, D, H, W, C), decided once here.

`to_channels_last` wraps each channels-first Conv / ConvTranspose / pool in a pair of
Transposes (to channels-last before, back after) and permutes its constant weights.
`sink_transposes` then moves Transposes down through layout-agnostic operators (elementwise,
Concat, Softmax, reductions, Pad, Slice), composes adjacent ones, and turns the ones that move
only size-1 dimensions into Reshapes (free views).  Between two convolutions the pair cancels,
so in a CNN the only Transposes left are at the model's boundaries, where the model's inputs
and outputs keep the layout of the source framework (the user feeds the same tensor to the C
code as to PyTorch).
"""

from __future__ import annotations

import numpy as np

from tinyc import ops
from tinyc.ir import Graph, Node, QuantParams
from tinyc.passes.cleanup import (
    eliminate_views,
    fold_constants,
    is_identity_perm,
    moves_only_unit_dims,
    remove_dead_nodes,
)

AXIS_OPS = ("Concat", "Softmax", "LogSoftmax")
PERMUTABLE = ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "Pad", "Slice")


def _perms(rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(channels-first -> channels-last, channels-last -> channels-first) permutations."""
    return (0, *range(2, rank), 1), (0, rank - 1, *range(1, rank - 1))


def _transpose(graph: Graph, x: str, perm: tuple[int, ...], hint: str,
               out: str | None = None) -> tuple[Node, str]:
    """A Transpose node named `hint` reading x; its output is `out` or a new tensor."""
    shape = graph.tensors[x].shape
    name = graph.unique_name(hint)
    if out is None:
        out = graph.add_tensor(f"{name}_out", tuple(shape[p] for p in perm),
                               graph.tensors[x].dtype, graph.tensors[x].quant)
    return Node("Transpose", name, [x], [out], {"perm": tuple(perm)}), out


def to_channels_last(graph: Graph) -> Graph:
    for node in list(graph.nodes):
        if not ops.has_trait(node, "spatial") or node.attrs.get("channels_last", True):
            continue
        x, y = node.inputs[0], node.outputs[0]
        rank = len(graph.tensors[x].shape)
        first_to_last, last_to_first = _perms(rank)
        before, x_last = _transpose(graph, x, first_to_last, f"{node.name}_input_nhwc")
        y_t = graph.tensors[y]
        y_last = graph.add_tensor(f"{node.name}_nhwc", tuple(y_t.shape[p] for p in first_to_last),
                                  y_t.dtype, y_t.quant)
        after, _ = _transpose(graph, y_last, last_to_first, f"{node.name}_output_nchw", out=y)
        if node.op in ("Conv", "ConvTranspose"):
            node.inputs[1] = permuted_const(graph, node.inputs[1], first_to_last,
                                            f"{node.name}_weight")
        node.inputs[0], node.outputs[0] = x_last, y_last
        node.attrs["channels_last"] = True
        i = graph.nodes.index(node)
        graph.nodes[i:i + 1] = [before, node, after]
    graph.remove_unused_tensors()
    return graph


def permuted_const(graph: Graph, name: str, perm: tuple[int, ...], hint: str) -> str:
    """A new constant: `name` transposed by `perm`, its per-channel quantization axis moved
    along with the data."""
    t = graph.tensors[name]
    quant = t.quant
    if quant is not None and quant.per_channel:
        quant = QuantParams(quant.scale, quant.zero_point, perm.index(quant.axis))
    return graph.add_const(hint, np.transpose(t.data, perm), quant)


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


def _permute_attrs(node: Node, perm: tuple[int, ...]) -> None:
    """Rewrite node attributes given for the transposed tensor (axis a of t = axis perm[a] of x)
    so they apply to the untransposed tensor."""
    a = node.attrs
    r = len(perm)
    if node.op in AXIS_OPS:
        a["axis"] = perm[a["axis"]]
    elif node.op.startswith("Reduce"):
        a["axes"] = tuple(sorted(perm[i] for i in a["axes"]))
    elif node.op == "Pad":
        pads = [0] * (2 * r)
        for i in range(r):
            pads[perm[i]], pads[perm[i] + r] = a["pads"][i], a["pads"][i + r]
        a["pads"] = tuple(pads)
    elif node.op == "Slice":
        for key in ("starts", "ends", "steps"):
            values = [0] * r
            for i in range(r):
                values[perm[i]] = a[key][i]
            a[key] = tuple(values)


def _can_sink(graph: Graph, node: Node) -> tuple[int, ...] | None:
    """The common perm of the Transposes feeding `node`, if it can move below the node."""
    agnostic = ops.has_trait(node, "elementwise") or node.op in AXIS_OPS + PERMUTABLE
    if not agnostic:
        return None
    perm = None
    out_rank = len(graph.tensors[node.outputs[0]].shape)
    for t in node.inputs:
        if graph.const(t) is not None:
            continue
        src = graph.producer(t)
        if src is None or src.op != "Transpose" or len(graph.tensors[t].shape) != out_rank:
            return None
        if perm is not None and src.attrs["perm"] != perm:
            return None
        perm = src.attrs["perm"]
    return perm


def _sink(graph: Graph, node: Node, perm: tuple[int, ...]) -> None:
    inverse = _inverse(perm)
    rank = len(perm)
    new_inputs = []
    for t in node.inputs:
        value = graph.const(t)
        if value is not None:
            expanded = graph.add_const(f"{t}_rank{rank}", value.reshape(
                (1,) * (rank - value.ndim) + value.shape), graph.tensors[t].quant)
            new_inputs.append(permuted_const(graph, expanded, inverse, f"{t}_perm"))
        else:
            new_inputs.append(graph.producer(t).inputs[0])
    y = node.outputs[0]
    y_t = graph.tensors[y]
    y_inner = graph.add_tensor(f"{node.name}_out", tuple(y_t.shape[i] for i in inverse),
                               y_t.dtype, y_t.quant)
    _permute_attrs(node, perm)
    node.inputs, node.outputs = new_inputs, [y_inner]
    after, _ = _transpose(graph, y_inner, perm, f"{node.name}_transpose", out=y)
    graph.nodes.insert(graph.nodes.index(node) + 1, after)


def _simplify_transpose(graph: Graph, node: Node) -> bool:
    """Compose with a Transpose feeding it; drop it when it is the identity; make it a view
    when it moves only size-1 dimensions.  Returns True if the graph changed."""
    src = graph.producer(node.inputs[0])
    if src is not None and src.op == "Transpose":
        p1, p2 = src.attrs["perm"], node.attrs["perm"]
        node.inputs = [src.inputs[0]]
        node.attrs["perm"] = tuple(p1[i] for i in p2)
        return True
    x, y = node.inputs[0], node.outputs[0]
    if is_identity_perm(node.attrs["perm"]) or moves_only_unit_dims(
            graph.tensors[x].shape, node.attrs["perm"]):
        node.op, node.attrs = "Reshape", {"shape": graph.tensors[y].shape}
        return True
    return False


def sink_transposes(graph: Graph) -> Graph:
    changed = True
    while changed:
        changed = False
        for node in list(graph.nodes):
            if node not in graph.nodes:
                continue
            if node.op == "Transpose":
                changed |= _simplify_transpose(graph, node)
                continue
            perm = _can_sink(graph, node)
            if perm is not None:
                _sink(graph, node, perm)
                changed = True
        remove_dead_nodes(graph)
    fold_constants(graph)
    return eliminate_views(graph)
