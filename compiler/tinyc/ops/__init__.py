"""Operator definitions: one registration per IR operator.

An operator is defined once, by an `OpDef` that gives
  - `infer`:    output shapes and dtypes from the node and its inputs (shape inference);
  - `evaluate`: a NumPy reference of its exact semantics, given the node, its input values and
                the graph (for the tensors' quantization); used for constant folding and by
                the IR interpreter, which simulates a compiled model exactly in Python;
  - `emit`:     the C kernel call that implements it (None for operators that exist only at
                compile time, e.g. Shape, which constant folding must remove);
  - `traits`:   what passes may assume (e.g. "unary" elementwise, "fuses_clamp").
Adding an operator means: one frontend mapping, one OpDef here, one kernel in runtime_c, one
test.  The attribute conventions of each operator are documented beside its OpDef.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyc.errors import UnsupportedOperator
from tinyc.ir import Graph, Node

Shape = tuple[int, ...]


@dataclass(frozen=True)
class CArray:
    """A constant C array a parameter struct points to (emitted as its own static const)."""

    ctype: str
    values: tuple[int | float, ...]


@dataclass
class KernelCall:
    """One C call implementing one IR node."""

    function: str
    sources: tuple[str, ...]  # runtime_c files the call needs (besides headers)
    header: str  # the kernel family's header
    params_type: str | None
    params: dict[str, Any]
    args: list[str | list[str]]  # tensor names, '' for NULL, a list for a pointer array
    summary: str  # resolved attributes, for the comment above the call
    scratch_bytes: int = 0


@dataclass(frozen=True)
class OpDef:
    name: str
    infer: Callable[[Node, Graph], list[tuple[Shape, str]]]
    evaluate: Callable[[Node, list[Any], Graph], list[np.ndarray]]
    emit: Callable[[Node, Graph], KernelCall] | None = None
    traits: frozenset[str] = field(default_factory=frozenset)
    macs: Callable[[Node, Graph], int] | None = None  # multiply-accumulates per inference


REGISTRY: dict[str, OpDef] = {}

NO_CLAMP = (float("-inf"), float("inf"))


def register(
    name: str,
    infer: Callable[[Node, Graph], list[tuple[Shape, str]]],
    evaluate: Callable[[Node, list[Any], Graph], list[np.ndarray]],
    emit: Callable[[Node, Graph], KernelCall] | None = None,
    traits: Sequence[str] = (),
    macs: Callable[[Node, Graph], int] | None = None,
) -> None:
    assert name not in REGISTRY, f"operator {name} registered twice"
    REGISTRY[name] = OpDef(name, infer, evaluate, emit, frozenset(traits), macs)


def macs_of(node: Node, graph: Graph) -> int:
    opdef = REGISTRY.get(node.op)
    return opdef.macs(node, graph) if opdef is not None and opdef.macs is not None else 0


def get(node: Node) -> OpDef:
    try:
        return REGISTRY[node.op]
    except KeyError:
        raise UnsupportedOperator(
            f"operator {node.op} (node '{node.name}') is not supported by tinyc"
        ) from None


def has_trait(node: Node, trait: str) -> bool:
    opdef = REGISTRY.get(node.op)
    return opdef is not None and trait in opdef.traits


def clamp_of(node: Node) -> tuple[float, float]:
    """The fused output clamp of a node ([-inf, inf] when none is fused)."""
    return node.attrs.get("act_min", NO_CLAMP[0]), node.attrs.get("act_max", NO_CLAMP[1])


def apply_clamp(node: Node, y: np.ndarray) -> np.ndarray:
    lo, hi = clamp_of(node)
    if (lo, hi) == NO_CLAMP:
        return y
    return np.minimum(np.maximum(y, np.float32(lo)), np.float32(hi)).astype(y.dtype)


def clamp_summary(node: Node) -> str:
    lo, hi = clamp_of(node)
    if (lo, hi) == NO_CLAMP:
        return ""
    if (lo, hi) == (0.0, float("inf")):
        return ", fused Relu"
    return f", fused clamp [{lo:g}, {hi:g}]"


def shape_of(graph: Graph, name: str) -> Shape:
    return graph.tensors[name].shape


def dense_strides(shape: Sequence[int]) -> list[int]:
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    return strides


def broadcast_strides(in_shape: Sequence[int], out_shape: Sequence[int]) -> list[int]:
    """Element strides reading `in_shape` broadcast (numpy rules) to `out_shape`."""
    rank = len(out_shape)
    padded = [1] * (rank - len(in_shape)) + list(in_shape)
    strides = dense_strides(padded)
    return [0 if padded[i] == 1 else strides[i] for i in range(rank)]


def fmt_shape(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


# Importing the modules registers their operators.
from tinyc.ops import (  # noqa: E402, F401
    binary,
    conv,
    elementwise,
    gemm,
    movement,
    norm,
    pool,
    quantize,
    reduce,
)
