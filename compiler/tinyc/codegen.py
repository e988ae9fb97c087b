"""Code generation: lowered IR + memory plan -> C sources, through the Jinja2 templates.

The generated C reads as if written by hand: one call per layer, the layer's name and its
resolved attributes in a comment above it, every parameter struct and weight array a named
`static const` / `const` object (so it stays in flash), and all mutable state in the arena the
caller passes in (the code is reentrant: two arenas, two independent instances).
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from tinyc import ops
from tinyc.errors import TinycError, UnsupportedOperator
from tinyc.ir import Graph
from tinyc.ops import ALIGNMENT, CArray, InPlace, KernelCall
from tinyc.ops.quantized import DerivedConst
from tinyc.planner import MemoryPlan
from tinyc.resources import templates_dir

C_TYPES = {
    "float32": "float",
    "int8": "int8_t",
    "uint8": "uint8_t",
    "int16": "int16_t",
    "uint16": "uint16_t",
    "int32": "int32_t",
    "int64": "int64_t",
    "bool": "uint8_t",
    "bin": "uint32_t",  # bit-packed +/-1 values (tinyc.ir); constants hold the uint32 words
    "uint32": "uint32_t",
}
C_RESERVED = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
    "typedef", "union", "unsigned", "void", "volatile", "while", "arena", "main",
}
COMMON_SOURCES = ("tc_common.h",)


@dataclass
class Constant:
    c_name: str
    tensor: str
    ctype: str
    shape: tuple[int, ...]
    values: list[str]
    nbytes: int


@dataclass
class Layer:
    index: int
    c_name: str
    node_name: str
    op: str
    summary: str
    function: str
    params_type: str | None
    params: list[tuple[str, str]]  # (field, C initializer)
    arrays: list[tuple[str, str, str]]  # (C name, C type, initializer) a struct points to
    args: list[str]
    macs: int
    output_shape: tuple[int, ...]
    weight_bytes: int = 0  # the constants this layer is the first to use (flash)


@dataclass
class Program:
    name: str
    prefix: str  # upper-case macro prefix
    layers: list[Layer]
    constants: list[Constant]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    arena_size: int
    headers: list[str]
    sources: list[str]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def weight_bytes(self) -> int:
        return sum(c.nbytes for c in self.constants)


class Namer:
    """Unique, valid C identifiers derived from model names ("/block1/conv/Conv" -> block1_conv)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, raw: str, fallback: str) -> str:
        name = re.sub(r"[^0-9a-zA-Z_]+", "_", raw).strip("_").lower()
        name = re.sub(r"_+", "_", name) or fallback
        if name[0].isdigit():
            name = f"{fallback}_{name}"
        if name in C_RESERVED or keyword.iskeyword(name):
            name = f"{name}_"
        base, i = name, 1
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name


def c_float(value: float) -> str:
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    text = repr(float(np.float32(value)))
    if "e" not in text and "." not in text and "inf" not in text:
        text += ".0"
    return f"{text}f"


def c_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return c_float(float(value))
    if isinstance(value, list | tuple):
        return "{" + ", ".join(c_value(v) for v in value) + "}"
    raise TypeError(f"no C spelling for {value!r}")


def _const_values(data: np.ndarray) -> tuple[str, list[str]]:
    dtype = str(data.dtype)
    if dtype not in C_TYPES:
        raise TinycError(f"constant of dtype {dtype} cannot be emitted")
    flat = data.reshape(-1)
    if dtype == "float32":
        return "float", [c_float(v) for v in flat.tolist()]
    if dtype == "uint32":  # packed bits: hex shows them
        return C_TYPES[dtype], [f"0x{int(v):08X}u" for v in flat.tolist()]
    return C_TYPES[dtype], [str(int(v)) for v in flat.tolist()]


RUNTIME_DTYPES = ("float32", "int8", "bin")


def _check_dtypes(graph: Graph) -> None:
    for node in graph.nodes:
        for t in node.inputs + node.outputs:
            tensor = graph.tensors.get(t)
            if tensor is not None and not tensor.is_const and tensor.dtype not in RUNTIME_DTYPES:
                raise UnsupportedOperator(
                    f"{node.op} node '{node.name}': tensor '{t}' is {tensor.dtype} at run time; "
                    "tinyc compiles float32, int8 and bit-packed binary activations"
                )


def scratch_name(node: str) -> str:
    return f"{node}:scratch"


def kernel_memory(graph: Graph) -> tuple[dict[str, int], dict[str, tuple[InPlace, ...]]]:
    """Per node, the scratch bytes its kernel asks for and the inputs it can write its output
    over (the planner uses both)."""
    scratch, in_place = {}, {}
    for node in graph.nodes:
        opdef = ops.get(node)
        if opdef.emit is not None:
            call = opdef.emit(node, graph)
            scratch[node.name], in_place[node.name] = call.scratch_bytes, call.in_place
    return scratch, in_place


def build_program(graph: Graph, plan: MemoryPlan, name: str) -> Program:
    """Resolve every node to its kernel call and every tensor to a C expression."""
    _check_dtypes(graph)
    namer = Namer()
    namer.used.update({name, f"{name}_run"})
    constants: dict[str, Constant] = {}

    def operand(tensor: str) -> str:
        if tensor == "":
            return "NULL"
        t = graph.tensors[tensor]
        if t.is_const:
            if tensor not in constants:
                ctype, values = _const_values(t.data)
                constants[tensor] = Constant(namer(tensor, "weight"), tensor, ctype, t.shape,
                                             values, t.nbytes)
            return constants[tensor].c_name
        return f"ACT({C_TYPES[t.dtype]}, {plan.offsets[tensor]})"

    layers: list[Layer] = []
    headers: set[str] = set()
    sources: set[str] = set()
    for node in graph.nodes:
        opdef = ops.get(node)
        if opdef.emit is None:
            raise UnsupportedOperator(
                f"{node.op} node '{node.name}' computes a value at run time that tinyc needs "
                "to be constant (export the model with static shapes)"
            )
        call: KernelCall = opdef.emit(node, graph)
        c_name = namer(node.name, node.op.lower())
        bytes_before = sum(c.nbytes for c in constants.values())
        arrays, params = [], []
        for key, value in call.params.items():
            if isinstance(value, CArray):
                array_name = f"{c_name}_{key}"
                arrays.append((array_name, value.ctype, c_value(list(value.values))))
                params.append((key, array_name))
            else:
                params.append((key, c_value(value)))
        args = []
        for arg in call.args:
            if isinstance(arg, list):
                args.append("(const void *const[]){" + ", ".join(operand(a) for a in arg) + "}")
            elif isinstance(arg, DerivedConst):
                ctype, values = _const_values(arg.value)
                derived = Constant(namer(f"{c_name}_{arg.hint}", "weight"), f"{node.name} "
                                   f"({arg.hint}, kernel layout)", ctype, arg.value.shape,
                                   values, arg.value.nbytes)
                constants[derived.c_name] = derived
                args.append(derived.c_name)
            else:
                args.append(operand(arg))
        if call.scratch_bytes:  # the kernel's working memory, planned like an activation
            args.append(f"ACT(void, {plan.offsets[scratch_name(node.name)]})")
        if call.header:
            headers.add(call.header)
            sources.update(call.sources)
        layers.append(Layer(len(layers), c_name, node.name, node.op, call.summary, call.function,
                            call.params_type, params, arrays, args, ops.macs_of(node, graph),
                            graph.tensors[node.outputs[0]].shape,
                            sum(c.nbytes for c in constants.values()) - bytes_before))
    return Program(
        name=name,
        prefix=name.upper(),
        layers=layers,
        constants=list(constants.values()),
        inputs=[_io(graph, t, i, plan) for i, t in enumerate(graph.inputs)],
        outputs=[_io(graph, t, i, plan) for i, t in enumerate(graph.outputs)],
        arena_size=plan.arena_size,
        headers=sorted(headers),
        sources=sorted(sources),
    )


def _io(graph: Graph, tensor: str, index: int, plan: MemoryPlan) -> dict[str, Any]:
    t = graph.tensors[tensor]
    return {"index": index, "name": tensor, "shape": list(t.shape), "dtype": t.dtype,
            "ctype": C_TYPES[t.dtype], "count": t.size, "bytes": t.nbytes,
            "offset": plan.offsets[tensor]}


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["shape"] = lambda s: "[" + ",".join(str(d) for d in s) + "]"
    env.filters["comment"] = lambda s: str(s).replace("*/", "* /")
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(alignment=ALIGNMENT, **context)
