"""Operator definitions: one registration per IR operator.

An operator is defined once, by an `OpDef` that gives
  - `infer`:    output shapes and dtypes from the node and its inputs (shape inference);
  - `evaluate`: a NumPy reference of its exact semantics, given the node, its input values and
                the graph (for the tensors' quantization); used for constant folding and by
                the IR interpreter, which simulates a compiled model exactly in Python;
  - `emit`:     the C kernel call that implements it (None for operators that exist only at
                compile time, e.g. Shape, which constant folding must remove);
  - `traits`:   what passes may assume (e.g. "unary" elementwise, "fuses_clamp").
A kernel call also states what memory it needs besides its operands: scratch bytes, and the
inputs it can write its output over (`InPlace`, derived from the kernel's access order by
`elementwise_in_place` / `window_in_place`); the memory planner uses both.
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


@dataclass(frozen=True)
class InPlace:
    """The kernel may write its output over input `tensor` when that input dies at the node:
    with the output placed `shift` bytes from the input's start (or lower, unless `exact`), no
    byte the kernel writes is an input byte it has still to read.  shift <= 0, a multiple of
    ALIGNMENT, and above -(output bytes) (the two overlap)."""

    tensor: str
    shift: int
    exact: bool = False  # only exactly at `shift` (or not overlapping the input at all)


ALIGNMENT = 16  # of every arena offset (the planner's)


def itemsize(graph: Graph, name: str) -> int:
    """Bytes per element of a runtime tensor (0 for bit-packed ones, which have none)."""
    dtype = graph.tensors[name].dtype
    return 0 if dtype == "bin" else np.dtype(dtype).itemsize


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
    in_place: tuple[InPlace, ...] = ()  # inputs the output may overwrite


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


def in_place_shift(first_reads: np.ndarray, unit_bytes: int, group: int, rereads: bool
                   ) -> int | None:
    """The shift (InPlace) of a kernel that writes its output unit after unit (an element, an
    output pixel, a batch row), `unit_bytes` each, front to back, `group` units at a time, where
    unit j reads no input byte below first_reads[j].  rereads=False: a group's inputs are all
    read before any of its outputs is written (each unit's bytes are written after its reads);
    True: the kernel may still read a unit's inputs after writing part of its output (it
    accumulates in the output, or writes channel by channel).  Writing group [s, e) must then
    leave every input byte still to be read intact: output offset + e * unit_bytes <= input
    offset + the lowest byte read by unit e on (unit s on when rereads).  None when the output
    could not overlap the input at all."""
    units = len(first_reads)
    suffix = np.minimum.accumulate(np.asarray(first_reads, dtype=np.int64)[::-1])[::-1]
    starts = np.arange(0, units, group)
    ends = np.minimum(starts + group, units)
    pending = starts if rereads else ends
    inside = pending < units  # after the last group nothing is left to read
    if not inside.any():
        return 0
    shift = int(np.min(suffix[pending[inside]] - ends[inside] * unit_bytes))
    shift = min(0, shift) // ALIGNMENT * ALIGNMENT
    return shift if shift + units * unit_bytes > 0 else None


def elementwise_in_place(node: Node, graph: Graph) -> tuple[InPlace, ...]:
    """Elementwise kernels read element i of every input before writing element i, front to
    back: the output may overwrite any runtime input of its own shape (not a broadcast one)."""
    out = graph.tensors[node.outputs[0]]
    out_size = itemsize(graph, out.name)
    found = []
    for name in dict.fromkeys(node.inputs):
        t = graph.tensors.get(name) if name else None
        if t is None or t.is_const or t.shape != out.shape or not out_size:
            continue
        shift = in_place_shift(np.arange(t.size) * itemsize(graph, name), out_size, 1, False)
        if shift is not None:
            found.append(InPlace(name, shift))
    return tuple(found)


def window_in_place(x: str, graph: Graph, g: dict[str, int], channels: tuple[int, int],
                    out_itemsize: int, group: int, rereads: bool) -> tuple[InPlace, ...]:
    """Channels-last window kernels (convolution, pooling) that compute output pixels in order
    (batch, d, h, w), `group` at a time: g is the geometry (conv.spatial_params), channels the
    (input, output) channel counts.  The lowest input byte output pixel (n, d, h, w) reads is at
    the window's first tap clamped into the image (padding taps read nothing)."""
    in_c, out_c = channels
    n, od, oh, ow = np.meshgrid(np.arange(g["batch"]), np.arange(g["out_d"]),
                                np.arange(g["out_h"]), np.arange(g["out_w"]), indexing="ij")
    first = (
        n * (g["in_d"] * g["in_h"] * g["in_w"])
        + np.maximum(od * g["stride_d"] - g["pad_d"], 0) * (g["in_h"] * g["in_w"])
        + np.maximum(oh * g["stride_h"] - g["pad_h"], 0) * g["in_w"]
        + np.maximum(ow * g["stride_w"] - g["pad_w"], 0)
    ) * (in_c * itemsize(graph, x))
    shift = in_place_shift(first.reshape(-1), out_c * out_itemsize, group, rereads)
    return () if shift is None else (InPlace(x, shift),)


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
