"""TFLite frontend: a float32 `.tflite` flatbuffer to tinyc IR, read without TensorFlow.

The file is read with the flatbuffer bindings generated from TFLite's `schema.fbs` that ship in
the `ai_edge_litert` package (`schema_py_generated`, its object API), so only the flatbuffers
runtime is needed, never the TFLite interpreter.  One subgraph is supported.

Each supported builtin operator has one converter below, registered in CONVERTERS under the
name TFLite's schema gives it (`BuiltinOperator`).  A converter reads the operator's options
and constant inputs, resolves TFLite's conventions into the canonical IR attributes, and adds
IR nodes through the GraphBuilder.  The conventions resolved here:
  - TFLite is NHWC like tinyc's kernels: convolutions and pools become channels_last IR nodes,
    and no layout transposes are needed.  The CONV_2D filter [Co, KH, KW, Ci/g] already is the
    IR's channels_last Conv weight; the DEPTHWISE_CONV_2D filter [1, KH, KW, C*m] becomes
    [C*m, KH, KW, 1] with group = C (output channel c*m + j reads input channel c in both).
  - SAME padding as TFLite computes it: out = ceil(in / stride), total = max((out - 1) * stride
    + (k - 1) * dilation + 1 - in, 0), leading = total // 2 (the odd row goes at the end);
    VALID pads nothing.  TFLite's average pool divides by the taps inside the input, which is
    the IR's count_include_pad = 0.
  - fused_activation_function becomes the node's act_min/act_max clamp (RELU [0, inf),
    RELU6 [0, 6], RELU_N1_TO_1 [-1, 1]); TANH and SIGN_BIT are refused.
  - FULLY_CONNECTED flattens its input to [-1, K] as TFLite does and becomes Gemm with
    transB = 1 (weights [N, K]); keep_num_dims reshapes the result back.
Graph inputs and outputs keep their TFLite tensor names, other activations too; constants are
named after the first operator that reads them and their role ("conv_2d_0_filter"), because
TFLite's names for them are long ';'-joined lists of the fused TensorFlow ops.

float32 and int8 models are imported.  Every tensor is read by `read_tensor`, with its
quantization parameters, which become the IR tensor's QuantParams: an int8 operator is the same
IR operator on int8 tensors (int8 weights, int32 bias, per-channel weight scales on the output
channel axis).  `_check_activation` refuses other quantized activations (uint8, int16), and a
quantized constant feeding a float operator (a dynamic-range "hybrid" model) is refused where
an operator reads it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import numpy as np

from tinyc.errors import TinycError, UnsupportedOperator
from tinyc.frontends.builder import GraphBuilder
from tinyc.ir import Graph, QuantParams, packed_shape
from tinyc.ops.movement import slice_length

FILE_IDENTIFIER = b"TFL3"  # bytes 4..8 of every TFLite flatbuffer

# TFLite TensorType name -> the numpy dtype of its (little-endian) buffer.
TFLITE_DTYPES = {
    "FLOAT32": "<f4",
    "FLOAT16": "<f2",
    "INT32": "<i4",
    "INT64": "<i8",
    "INT16": "<i2",
    "INT8": "i1",
    "UINT8": "u1",
    "BOOL": "?",
}
QUANTIZED_DTYPES = ("int8", "uint8", "int16")
# Operators with a dynamic-range kernel: float activations, int8 weights (tc_hybrid.h).
HYBRID_OPS = ("CONV_2D", "FULLY_CONNECTED")

# fused_activation_function name -> the clamp it fuses (None: no clamp).
FUSED_CLAMPS: dict[str, tuple[float, float] | None] = {
    "NONE": None,
    "RELU": (0.0, math.inf),
    "RELU_N1_TO_1": (-1.0, 1.0),
    "RELU6": (0.0, 6.0),
}


def load_schema() -> ModuleType:
    """The generated TFLite schema module (imported on first use: ai-edge-litert is optional)."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise TinycError("reading .tflite files needs the ai-edge-litert package "
                         "(pip install 'tinyc[tflite]')") from None
    return schema_py_generated


def _enum_names(enum: type) -> dict[int, str]:
    """Value -> name of a flatbuffers enum class (BuiltinOperator, TensorType, ...)."""
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


# ---- tensors ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point), per channel along `axis` when the
    arrays have more than one element."""

    scale: np.ndarray  # float32 [1] or [channels]
    zero_point: np.ndarray  # int64, same length
    axis: int


@dataclass(frozen=True)
class TfliteTensor:
    index: int
    name: str  # the TFLite name ('' when the file gives none)
    shape: tuple[int, ...]  # as stored: a dynamic batch (shape_signature -1) is stored as 1
    type_name: str  # TFLite TensorType name: FLOAT32, INT8, ...
    dtype: str  # numpy dtype name, or the lower-case TFLite name when numpy has none
    data: np.ndarray | None  # the value of a constant (a tensor whose buffer holds data)
    quant: Quantization | None

    @property
    def is_const(self) -> bool:
        return self.data is not None


class TfliteModel:
    """A parsed .tflite file: its one subgraph, tensors read on demand, operator names."""

    def __init__(self, path: Path, raw: bytes, schema: ModuleType, model: Any) -> None:
        self.path = path
        self.raw = raw
        self.schema = schema
        self.model = model
        self.subgraph = model.subgraphs[0]
        self.type_names = _enum_names(schema.TensorType)
        self.op_names = _enum_names(schema.BuiltinOperator)
        self.activation_names = _enum_names(schema.ActivationFunctionType)
        self.padding_names = _enum_names(schema.Padding)
        self._tensors: dict[int, TfliteTensor] = {}

    def tensor(self, index: int) -> TfliteTensor:
        if index not in self._tensors:
            self._tensors[index] = read_tensor(self, index)
        return self._tensors[index]

    def op_name(self, op: Any) -> str:
        """The operator's schema name ('CONV_2D'), or 'custom operator <code>' for custom ops."""
        code = self.model.operatorCodes[op.opcodeIndex]
        # Files older than schema v3a store the code only in deprecated_builtin_code (< 127).
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = self.op_names.get(builtin, f"builtin operator {builtin}")
        if name == "CUSTOM":
            custom = code.customCode.decode(errors="replace") if code.customCode else "?"
            return f"custom operator {custom}"
        return name


def read_tensor(model: TfliteModel, index: int) -> TfliteTensor:
    """Read tensor `index`: its name, shape, type, constant value and quantization parameters."""
    t = model.subgraph.tensors[index]
    name = t.name.decode(errors="replace") if t.name else ""
    shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
    type_name = model.type_names.get(t.type, f"type {t.type}")
    np_dtype = TFLITE_DTYPES.get(type_name)
    dtype = np.dtype(np_dtype).name if np_dtype else type_name.lower()
    where = f"{model.path}: tensor '{name}'"
    if t.sparsity is not None:
        raise TinycError(f"{where} is stored sparse; tinyc reads dense tensors only "
                         "(convert without sparsity)")
    if t.isVariable:
        raise TinycError(f"{where} is a variable (stateful model); tinyc compiles stateless "
                         "models only")
    data = None
    raw = _buffer_bytes(model, t.buffer)
    if raw is not None and len(raw) > 0:
        if np_dtype is None:
            raise TinycError(f"{where} is a {type_name} constant, which tinyc does not support")
        count = int(np.prod(shape, dtype=np.int64))
        if len(raw) != count * np.dtype(np_dtype).itemsize:
            raise TinycError(f"{where} has {len(raw)} bytes of data for shape {list(shape)} "
                             f"{type_name}; the model is malformed")
        data = np.frombuffer(raw, dtype=np_dtype).astype(dtype).reshape(shape)
    quant = None
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale) > 0:
        zero_point = q.zeroPoint if q.zeroPoint is not None else np.zeros(len(q.scale))
        quant = Quantization(np.asarray(q.scale, dtype=np.float32),
                             np.asarray(zero_point, dtype=np.int64), int(q.quantizedDimension))
    return TfliteTensor(index, name, shape, type_name, dtype, data, quant)


def _buffer_bytes(model: TfliteModel, index: int) -> bytes | None:
    """A buffer's bytes: inside the flatbuffer, or after it (offset/size, files over 2 GB)."""
    buffers = model.model.buffers or []
    if index >= len(buffers) or buffers[index] is None:
        return None
    buf = buffers[index]
    if buf.offset > 1:
        return model.raw[buf.offset:buf.offset + buf.size]
    if buf.data is None:
        return None
    return np.asarray(buf.data, dtype=np.uint8).tobytes()


def ir_quant(tensor: TfliteTensor) -> QuantParams | None:
    """The IR's quantization of a tensor (per channel only when there are several scales)."""
    q = tensor.quant
    if q is None:
        return None
    return QuantParams(q.scale, q.zero_point, q.axis if q.scale.size > 1 else None)


def _check_activation(model: TfliteModel, tensor: TfliteTensor) -> None:
    """Activations are float32, or int8 with quantization parameters."""
    if tensor.dtype == "int8":
        if tensor.quant is None:
            raise UnsupportedOperator(f"{model.path}: tensor '{tensor.name}' is int8 without "
                                      "quantization parameters; the model is malformed")
        if tensor.quant.scale.size != 1:
            raise UnsupportedOperator(f"{model.path}: activation '{tensor.name}' is quantized "
                                      "per channel; TFLite int8 activations are per tensor")
        return
    if tensor.dtype in QUANTIZED_DTYPES:
        raise UnsupportedOperator(
            f"{model.path}: tensor '{tensor.name}' is {tensor.dtype}; tinyc compiles float32 "
            "and int8 activations (int16 activation quantization is not supported)")
    if tensor.dtype != "float32":
        raise UnsupportedOperator(f"{model.path}: tensor '{tensor.name}' is {tensor.type_name}; "
                                  "tinyc imports float32 and int8 .tflite models")


# ---- operator context -------------------------------------------------------------------------
class OperatorContext:
    """One TFLite operator being converted: options and inputs with clear errors."""

    def __init__(self, conv: Converting, op: Any, index: int) -> None:
        self.conv = conv
        self.b = conv.b
        self.op = op
        self.op_name = conv.model.op_name(op)
        self.name = f"{self.op_name.lower()}_{index}"
        self.options = op.builtinOptions
        self.out_tensor = conv.model.tensor(int(op.outputs[0])).name if len(op.outputs) else "?"

    # -- errors and options
    def unsupported(self, why: str) -> NoReturn:
        raise UnsupportedOperator(f"{self.op_name} (output tensor '{self.out_tensor}'): {why}")

    def option(self, key: str, default: Any = None) -> Any:
        value = getattr(self.options, key, None) if self.options is not None else None
        return default if value is None else value

    # -- inputs
    def has_input(self, i: int) -> bool:
        return i < len(self.op.inputs) and int(self.op.inputs[i]) >= 0

    def tensor(self, i: int) -> TfliteTensor:
        return self.conv.model.tensor(int(self.op.inputs[i]))

    def input(self, i: int, role: str = "") -> str:
        """The IR name of input i ('' when absent); a constant is added on first use, named
        after this operator and its role."""
        if not self.has_input(i):
            return ""
        index = int(self.op.inputs[i])
        name = self.conv.names.get(index)
        if name is not None:
            return name
        t = self.tensor(i)
        if not t.is_const:
            self.unsupported(f"its input '{t.name}' is read before any operator writes it; "
                             "the model is malformed")
        return self.conv.add_const(index, f"{self.name}_{role or f'input{i}'}",
                                   self.weight(i, role or "input"), ir_quant(t))

    @property
    def quantized(self) -> bool:
        """True for an int8 operator (its first input is an int8 activation)."""
        return self.has_input(0) and self.tensor(0).dtype == "int8"

    def weight(self, i: int, role: str) -> np.ndarray:
        """The value of constant input i: float32 for float operators; for int8 operators the
        stored integers (int8 weights, int32 bias), whose scales the IR tensor carries."""
        t = self.tensor(i)
        hybrid = self.op_name in HYBRID_OPS and t.dtype == "int8" and role in ("filter",
                                                                               "weights")
        if (self.quantized or hybrid) and t.is_const and t.dtype in ("int8", "int32"):
            if t.quant is None:
                self.unsupported(f"its {role} '{t.name}' is {t.dtype} without quantization "
                                 "parameters")
            return t.data
        return self.float_const(i, role)

    def float_const(self, i: int, role: str) -> np.ndarray:
        """The value of constant input i, which float operators need as float32."""
        t = self.tensor(i)
        if not t.is_const:
            self.unsupported(f"its {role} is computed at run time; tinyc needs constant "
                             f"{role}s")
        if t.dtype != "float32":
            self.unsupported(
                f"its {role} tensor '{t.name}' is {t.dtype} while its activations are float32 (a "
                "dynamic-range quantized 'hybrid' model); tinyc imports float32 models (int8 "
                "ones with the int8 support)")
        return t.data

    def const_input(self, i: int, what: str, required: bool = True) -> np.ndarray | None:
        """The value of input i, which must be a constant (None when absent and optional)."""
        if not self.has_input(i):
            if required:
                self.unsupported(f"its {what} input is missing")
            return None
        t = self.tensor(i)
        value = t.data if t.is_const else self.b.const(self.conv.names.get(t.index, ""))
        if value is None:
            self.unsupported(f"its {what} '{t.name}' is computed at run time; tinyc needs it "
                             "constant")
        return value

    def shape(self, i: int = 0) -> tuple[int, ...]:
        t = self.tensor(i)
        return t.shape if t.is_const else self.b.shape(self.input(i))

    def rank(self, i: int = 0) -> int:
        return len(self.shape(i))

    def axis(self, value: int, rank: int | None = None) -> int:
        rank = self.rank() if rank is None else rank
        if not -rank <= value < rank:
            self.unsupported(f"axis {value} is out of range for rank {rank}")
        return value % rank

    # -- outputs
    def output(self, i: int = 0) -> str:
        return self.conv.names[int(self.op.outputs[i])]

    def emit(self, op: str, inputs: list[str], attrs: dict, last: bool = True) -> list[str]:
        """Add an IR node; the last node of a conversion writes the TFLite operator's output
        (with its quantization)."""
        if not last:
            return self.b.add(op, self.name, inputs, attrs)
        count = len(self.op.outputs)
        quant = [ir_quant(self.conv.model.tensor(int(self.op.outputs[i]))) for i in range(count)]
        return self.b.add(op, self.name, inputs, attrs, [self.output(i) for i in range(count)],
                          quant=quant)

    def clamp(self) -> dict[str, float]:
        """The fused_activation_function as act_min/act_max attributes ({} when NONE)."""
        code = self.option("fusedActivationFunction", 0)
        kind = self.conv.model.activation_names.get(code, str(code))
        if kind not in FUSED_CLAMPS:
            self.unsupported(f"fused activation {kind} (RELU, RELU6 and RELU_N1_TO_1 fuse)")
        bounds = FUSED_CLAMPS[kind]
        return {} if bounds is None else {"act_min": bounds[0], "act_max": bounds[1]}


Converter = Callable[[OperatorContext], None]
CONVERTERS: dict[str, Converter] = {}


def converter(*names: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        for name in names:
            CONVERTERS[name] = fn
        return fn

    return register


# ---- convolution and pooling ------------------------------------------------------------------
def same_or_valid_pads(c: OperatorContext, in_sp: tuple[int, ...], kernel: tuple[int, ...],
                       strides: tuple[int, ...], dilations: tuple[int, ...],
                       padding: str | None = None) -> tuple[int, ...]:
    """Explicit pads (leading of every spatial axis, then trailing) for TFLite's padding
    ("SAME" / "VALID"; None reads the operator's builtin padding option)."""
    if padding is None:
        padding = c.conv.model.padding_names.get(c.option("padding", 0))
    nsp = len(in_sp)
    if padding == "VALID":
        return (0,) * (2 * nsp)
    if padding != "SAME":
        c.unsupported(f"padding {padding}")
    lead, trail = [], []
    for size, k, s, d in zip(in_sp, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        lead.append(total // 2)
        trail.append(total - total // 2)
    return (*lead, *trail)


def _require_nhwc(c: OperatorContext) -> tuple[int, ...]:
    shape = c.shape(0)
    if len(shape) != 4:
        c.unsupported(f"input of rank {len(shape)} (NHWC rank 4 expected)")
    return shape


def _window_attrs(c: OperatorContext, x: tuple[int, ...], w: np.ndarray) -> dict[str, object]:
    """The IR Conv window attributes (channels-last) of CONV_2D / DEPTHWISE_CONV_2D with an
    [*, KH, KW, *] filter w on the NHWC input shape x."""
    kernel = (w.shape[1], w.shape[2])
    strides = (c.option("strideH", 1), c.option("strideW", 1))
    dilations = (c.option("dilationHFactor", 1), c.option("dilationWFactor", 1))
    return {"kernel_shape": kernel, "strides": strides, "dilations": dilations,
            "pads": same_or_valid_pads(c, x[1:3], kernel, strides, dilations),
            "channels_last": True}


@converter("CONV_2D")
def _conv_2d(c: OperatorContext) -> None:
    x = _require_nhwc(c)
    w = c.weight(1, "filter")  # [Co, KH, KW, Ci/g]: the IR channels_last layout
    if w.ndim != 4 or x[-1] % w.shape[-1]:
        c.unsupported(f"filter {list(w.shape)} does not fit input {list(x)}")
    attrs = _window_attrs(c, x, w) | {"group": x[-1] // w.shape[-1]}
    c.emit("Conv", [c.input(0), c.input(1, "filter"), c.input(2, "bias")], attrs | c.clamp())


@converter("DEPTHWISE_CONV_2D")
def _depthwise_conv_2d(c: OperatorContext) -> None:
    x = _require_nhwc(c)
    w = c.weight(1, "filter")  # [1, KH, KW, C * multiplier]
    channels = x[-1]
    if w.ndim != 4 or w.shape[0] != 1 or w.shape[-1] % channels:
        c.unsupported(f"filter {list(w.shape)} does not fit input {list(x)}")
    # The multiplier is the filter's, not depth_multiplier (some converters leave that at 1).
    attrs = _window_attrs(c, x, w) | {"group": channels}
    quant = ir_quant(c.tensor(1))
    if quant is not None and quant.per_channel:  # the channel axis 3 moves to 0
        quant = QuantParams(quant.scale, quant.zero_point, 0)
    filt = c.conv.add_const(None, f"{c.name}_filter", np.transpose(w, (3, 1, 2, 0)), quant)
    c.emit("Conv", [c.input(0), filt, c.input(2, "bias")], attrs | c.clamp())


@converter("AVERAGE_POOL_2D", "MAX_POOL_2D")
def _pool_2d(c: OperatorContext) -> None:
    x = _require_nhwc(c)
    kernel = (c.option("filterHeight", 1), c.option("filterWidth", 1))
    strides = (c.option("strideH", 1), c.option("strideW", 1))
    attrs = {"kernel_shape": kernel, "strides": strides, "dilations": (1, 1),
             "pads": same_or_valid_pads(c, x[1:3], kernel, strides, (1, 1)),
             "ceil_mode": 0, "count_include_pad": 0, "channels_last": True}
    op = "AveragePool" if c.op_name == "AVERAGE_POOL_2D" else "MaxPool"
    c.emit(op, [c.input(0)], attrs | c.clamp())


# ---- matrix products --------------------------------------------------------------------------
@converter("FULLY_CONNECTED")
def _fully_connected(c: OperatorContext) -> None:
    if c.option("weightsFormat", 0) != 0:
        c.unsupported("shuffled weights (weights_format SHUFFLED4x16INT8)")
    x_shape, w_shape = c.shape(0), c.shape(1)
    if len(w_shape) != 2:
        c.unsupported(f"weights of shape {list(w_shape)} ([N, K] expected)")
    n, k = w_shape
    size = int(np.prod(x_shape, dtype=np.int64))
    if size % k:
        c.unsupported(f"input {list(x_shape)} does not flatten to rows of {k}")
    m = size // k
    x = c.input(0)
    if x_shape != (m, k):  # TFLite flattens the input to [-1, K]
        x = c.emit("Reshape", [x], {"shape": (m, k)}, last=False)[0]
    out_shape = (*x_shape[:-1], n) if c.option("keepNumDims", False) else (m, n)
    attrs = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1} | c.clamp()
    y = c.emit("Gemm", [x, c.input(1, "weights"), c.input(2, "bias")], attrs,
               last=out_shape == (m, n))
    if out_shape != (m, n):
        c.emit("Reshape", y, {"shape": out_shape})


@converter("BATCH_MATMUL")
def _batch_matmul(c: OperatorContext) -> None:
    operands = []
    for i, flag in ((0, "adjX"), (1, "adjY")):
        t = c.input(i, "ab"[i])
        if c.option(flag, False):
            rank = c.rank(i)
            perm = (*range(rank - 2), rank - 1, rank - 2)
            t = c.emit("Transpose", [t], {"perm": perm}, last=False)[0]
        operands.append(t)
    c.emit("MatMul", operands, {})


# ---- elementwise ------------------------------------------------------------------------------
BINARY_OPS = {"ADD": "Add", "SUB": "Sub", "MUL": "Mul", "DIV": "Div", "MAXIMUM": "Max",
              "MINIMUM": "Min", "POW": "Pow", "PRELU": "PRelu"}


@converter(*BINARY_OPS)
def _binary(c: OperatorContext) -> None:
    second = "alpha" if c.op_name == "PRELU" else "b"
    c.emit(BINARY_OPS[c.op_name], [c.input(0, "a"), c.input(1, second)], c.clamp())


@converter("ADD_N")
def _add_n(c: OperatorContext) -> None:
    count = len(c.op.inputs)
    acc = c.input(0, "input0")
    if count == 1:
        c.b.alias(c.output(), acc)
        return
    for i in range(1, count):
        acc = c.emit("Add", [acc, c.input(i, f"input{i}")], {}, last=i == count - 1)[0]


@converter("SQUARED_DIFFERENCE")
def _squared_difference(c: OperatorContext) -> None:
    d = c.emit("Sub", [c.input(0, "a"), c.input(1, "b")], {}, last=False)[0]
    c.emit("Mul", [d, d], {})


UNARY_OPS = {"LOGISTIC": "Sigmoid", "TANH": "Tanh", "HARD_SWISH": "HardSwish", "EXP": "Exp",
             "LOG": "Log", "ABS": "Abs", "SQRT": "Sqrt", "NEG": "Neg", "FLOOR": "Floor",
             "CEIL": "Ceil"}


@converter(*UNARY_OPS)
def _unary(c: OperatorContext) -> None:
    c.emit(UNARY_OPS[c.op_name], [c.input(0)], {})


@converter("LEAKY_RELU")
def _leaky_relu(c: OperatorContext) -> None:
    c.emit("LeakyRelu", [c.input(0)], {"alpha": float(c.option("alpha", 0.0))})


@converter("ELU")
def _elu(c: OperatorContext) -> None:
    c.emit("Elu", [c.input(0)], {"alpha": 1.0})


@converter("GELU")
def _gelu(c: OperatorContext) -> None:
    if c.option("approximate", False):
        c.unsupported("approximate=true (only the exact erf form)")
    c.emit("Gelu", [c.input(0)], {})


@converter("RSQRT")
def _rsqrt(c: OperatorContext) -> None:
    root = c.emit("Sqrt", [c.input(0)], {}, last=False)
    c.emit("Reciprocal", root, {})


@converter("SQUARE")
def _square(c: OperatorContext) -> None:
    x = c.input(0)
    c.emit("Mul", [x, x], {})


RELU_CLAMPS = {"RELU": (0.0, math.inf), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0),
               "RELU_0_TO_1": (0.0, 1.0)}


@converter(*RELU_CLAMPS)
def _relu(c: OperatorContext) -> None:
    lo, hi = RELU_CLAMPS[c.op_name]
    c.emit("Relu" if hi == math.inf else "Clip", [c.input(0)], {"act_min": lo, "act_max": hi})


# ---- reductions and softmax -------------------------------------------------------------------
REDUCE_OPS = {"MEAN": "ReduceMean", "SUM": "ReduceSum", "REDUCE_MAX": "ReduceMax",
              "REDUCE_MIN": "ReduceMin"}


@converter(*REDUCE_OPS)
def _reduce(c: OperatorContext) -> None:
    shape = c.shape(0)
    axes = tuple(sorted({c.axis(int(a)) for a in c.const_input(1, "axes").reshape(-1)}))
    if not axes:  # TFLite reduces nothing
        c.b.alias(c.output(), c.input(0))
        return
    keep = bool(c.option("keepDims", False))
    reduced = c.emit(REDUCE_OPS[c.op_name], [c.input(0)], {"axes": axes}, last=keep)
    if not keep:  # the IR keeps the reduced axes as size 1
        c.emit("Reshape", reduced, {"shape": tuple(d for i, d in enumerate(shape)
                                                   if i not in axes)})


@converter("SOFTMAX", "LOG_SOFTMAX")
def _softmax(c: OperatorContext) -> None:
    x = c.input(0)
    beta = float(c.option("beta", 1.0))
    if c.op_name == "SOFTMAX" and beta != 1.0 and not c.quantized:  # softmax(beta * x)
        scale = c.conv.add_const(None, f"{c.name}_beta", np.array(beta, dtype=np.float32))
        x = c.emit("Mul", [x, scale], {}, last=False)[0]
    op = "Softmax" if c.op_name == "SOFTMAX" else "LogSoftmax"
    attrs = {"axis": c.rank() - 1}
    if c.quantized and beta != 1.0:  # int8 softmax takes beta into its input multiplier
        attrs["beta"] = beta
    c.emit(op, [x], attrs)


# ---- shape and data movement ------------------------------------------------------------------
def _reshape_to(c: OperatorContext, shape: tuple[int, ...]) -> None:
    c.emit("Reshape", [c.input(0)], {"shape": tuple(int(d) for d in shape)})


@converter("RESHAPE")
def _reshape(c: OperatorContext) -> None:
    in_shape = c.shape(0)
    if c.has_input(1):
        target = [int(d) for d in c.const_input(1, "new shape").reshape(-1)]
    elif c.option("newShape") is not None:
        target = [int(d) for d in c.option("newShape")]
    else:
        target = list(c.conv.model.tensor(int(c.op.outputs[0])).shape)
    size = int(np.prod(in_shape, dtype=np.int64))
    if target.count(-1) == 1:
        known = int(np.prod([d for d in target if d != -1], dtype=np.int64))
        target[target.index(-1)] = size // max(known, 1)
    if int(np.prod(target, dtype=np.int64)) != size or min(target, default=0) < 0:
        c.unsupported(f"cannot reshape {list(in_shape)} to {target}")
    _reshape_to(c, tuple(target))


@converter("SQUEEZE")
def _squeeze(c: OperatorContext) -> None:
    shape = c.shape(0)
    dims = c.option("squeezeDims")
    if dims is None or len(dims) == 0:
        axes = {i for i, d in enumerate(shape) if d == 1}
    else:
        axes = {c.axis(int(a)) for a in dims}
    if any(shape[a] != 1 for a in axes):
        c.unsupported(f"squeezing axes {sorted(axes)} of shape {list(shape)}")
    _reshape_to(c, tuple(d for i, d in enumerate(shape) if i not in axes))


@converter("EXPAND_DIMS")
def _expand_dims(c: OperatorContext) -> None:
    shape = list(c.shape(0))
    axis = c.const_input(1, "axis").reshape(-1)
    if axis.size != 1:
        c.unsupported(f"axis {axis.tolist()} (one axis expected)")
    shape.insert(c.axis(int(axis[0]), len(shape) + 1), 1)
    _reshape_to(c, tuple(shape))


@converter("CONCATENATION")
def _concatenation(c: OperatorContext) -> None:
    if c.clamp():  # TFLite's kernel refuses it too
        c.unsupported("a fused activation (TFLite's CONCATENATION kernel has none)")
    inputs = [c.input(i, f"input{i}") for i in range(len(c.op.inputs))]
    c.emit("Concat", inputs, {"axis": c.axis(c.option("axis", 0))})


def _pads(c: OperatorContext) -> tuple[int, ...]:
    """TFLite paddings [rank, 2] (before, after) as the IR's leading-then-trailing pads."""
    paddings = c.const_input(1, "paddings").astype(np.int64)
    rank = c.rank()
    if paddings.shape != (rank, 2):
        c.unsupported(f"paddings of shape {list(paddings.shape)} for rank {rank}")
    return tuple(int(p) for p in (*paddings[:, 0], *paddings[:, 1]))


@converter("PAD", "PADV2")
def _pad(c: OperatorContext) -> None:
    value = c.const_input(2, "constant value", required=False) if c.op_name == "PADV2" else None
    value = 0.0 if value is None else float(value.reshape(-1)[0])
    c.emit("Pad", [c.input(0)], {"pads": _pads(c), "mode": "constant", "value": value})


@converter("MIRROR_PAD")
def _mirror_pad(c: OperatorContext) -> None:
    mode = _enum_names(c.conv.model.schema.MirrorPadMode).get(c.option("mode", 0))
    if mode != "REFLECT":
        c.unsupported(f"mode {mode} (REFLECT is supported)")
    c.emit("Pad", [c.input(0)], {"pads": _pads(c), "mode": "reflect", "value": 0.0})


@converter("TRANSPOSE")
def _transpose(c: OperatorContext) -> None:
    perm = tuple(c.axis(int(p)) for p in c.const_input(1, "permutation").reshape(-1))
    if sorted(perm) != list(range(c.rank())):
        c.unsupported(f"permutation {list(perm)} for rank {c.rank()}")
    c.emit("Transpose", [c.input(0)], {"perm": perm})


def _emit_slice(c: OperatorContext, starts: list[int], ends: list[int], steps: list[int],
                out_shape: tuple[int, ...]) -> None:
    """A Slice (none when it keeps everything in order), then a Reshape to `out_shape`."""
    shape = c.shape(0)
    sliced = tuple(slice_length(s, e, st) for s, e, st in zip(starts, ends, steps, strict=True))
    if 0 in sliced:
        c.unsupported(f"an empty slice of shape {list(sliced)}")
    x = c.input(0)
    if any((s, e, st) != (0, d, 1) for s, e, st, d in zip(starts, ends, steps, shape,
                                                         strict=True)):
        attrs = {"starts": tuple(starts), "ends": tuple(ends), "steps": tuple(steps)}
        x = c.emit("Slice", [x], attrs, last=sliced == out_shape)[0]
        if sliced == out_shape:
            return
    elif out_shape == shape:
        c.b.alias(c.output(), x)
        return
    c.emit("Reshape", [x], {"shape": out_shape})


@converter("STRIDED_SLICE")
def _strided_slice(c: OperatorContext) -> None:
    if c.option("ellipsisMask", 0) or c.option("newAxisMask", 0):
        c.unsupported("ellipsis_mask / new_axis_mask (slice with plain indices)")
    if c.option("offset", False):
        c.unsupported("offset=true")
    shape = c.shape(0)
    begin = [int(v) for v in c.const_input(1, "begin").reshape(-1)]
    end = [int(v) for v in c.const_input(2, "end").reshape(-1)]
    strides = c.const_input(3, "strides", required=False)
    strides = [1] * len(begin) if strides is None else [int(v) for v in strides.reshape(-1)]
    if not len(begin) == len(end) == len(strides) <= len(shape):
        c.unsupported(f"begin/end/strides of lengths {len(begin)}/{len(end)}/{len(strides)} "
                      f"for rank {len(shape)}")
    begin_mask, end_mask = c.option("beginMask", 0), c.option("endMask", 0)
    shrink_mask = c.option("shrinkAxisMask", 0)
    starts, ends, steps = [0] * len(shape), list(shape), [1] * len(shape)
    for a, (b, e, st) in enumerate(zip(begin, end, strides, strict=True)):
        dim = shape[a]
        if st == 0:
            c.unsupported(f"stride 0 on axis {a}")
        lo, hi = (0, dim) if st > 0 else (-1, dim - 1)  # valid [start, end] for the direction
        if begin_mask >> a & 1:
            b = lo if st > 0 else hi
        elif b < 0:
            b += dim
        b = min(max(b, lo), hi)
        if shrink_mask >> a & 1:  # take index b and drop the axis
            if not 0 <= b < dim:
                c.unsupported(f"index {b} is out of range on axis {a} of size {dim}")
            starts[a], ends[a], steps[a] = b, b + 1, 1
            continue
        if end_mask >> a & 1:
            e = hi if st > 0 else lo
        elif e < 0:
            e += dim
        starts[a], ends[a], steps[a] = b, min(max(e, lo), hi), st
    out_shape = tuple(slice_length(s, e, st)
                      for a, (s, e, st) in enumerate(zip(starts, ends, steps, strict=True))
                      if not shrink_mask >> a & 1)
    _emit_slice(c, starts, ends, steps, out_shape)


@converter("SLICE")
def _slice(c: OperatorContext) -> None:
    shape = c.shape(0)
    begin = [int(v) for v in c.const_input(1, "begin").reshape(-1)]
    size = [int(v) for v in c.const_input(2, "size").reshape(-1)]
    if not len(begin) == len(size) == len(shape):
        c.unsupported(f"begin/size of lengths {len(begin)}/{len(size)} for rank {len(shape)}")
    ends = [d if n == -1 else b + n for b, n, d in zip(begin, size, shape, strict=True)]
    if any(not 0 <= b <= e <= d for b, e, d in zip(begin, ends, shape, strict=True)):
        c.unsupported(f"begin {begin} size {size} is outside shape {list(shape)}")
    out_shape = tuple(e - b for b, e in zip(begin, ends, strict=True))
    _emit_slice(c, begin, ends, [1] * len(shape), out_shape)


@converter("QUANTIZE", "DEQUANTIZE")
def _quantize(c: OperatorContext) -> None:
    t = c.tensor(0)
    if c.op_name == "DEQUANTIZE" and t.is_const:
        c.unsupported(f"dequantizing the {t.dtype} constant '{t.name}' (float16 or "
                      "dynamic-range quantized weights); export the model with float32 weights")
    c.emit("Quantize" if c.op_name == "QUANTIZE" else "Dequantize", [c.input(0)], {})


# ---- model loading ----------------------------------------------------------------------------
def load_tflite_model(path: Path) -> TfliteModel:
    """Parse a .tflite file; refuse what is not a single-subgraph TFLite flatbuffer."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TinycError(f"{path}: cannot read the file ({exc.strerror})") from None
    if len(raw) < 8 or raw[4:8] != FILE_IDENTIFIER:
        raise TinycError(f"{path}: not a TFLite flatbuffer (no '{FILE_IDENTIFIER.decode()}' file "
                         "identifier); check the file")
    schema = load_schema()
    try:
        model = schema.ModelT.InitFromPackedBuf(raw, 0)
    except Exception as exc:  # flatbuffers raises several unrelated types for a corrupt file
        raise TinycError(f"{path}: corrupt TFLite flatbuffer ({type(exc).__name__}); "
                         "check the file") from None
    count = len(model.subgraphs or [])
    if count != 1:
        raise TinycError(f"{path}: the model has {count} subgraphs (control flow or several "
                         "signatures); tinyc imports models with exactly one subgraph")
    return TfliteModel(path, raw, schema, model)


class Converting:
    """The state of one conversion: the builder and the IR name of every TFLite tensor."""

    def __init__(self, model: TfliteModel, b: GraphBuilder) -> None:
        self.model = model
        self.b = b
        self.names: dict[int, str] = {}
        self.reserved: set[str] = set()

    def name_activations(self) -> None:
        """Activations keep their TFLite names (graph inputs and outputs first, made unique)."""
        sg = self.model.subgraph
        order = [int(i) for i in sg.inputs] + [int(i) for i in sg.outputs]
        order += [int(i) for op in sg.operators or [] for i in op.outputs]
        for index in order:
            if index in self.names or self.model.tensor(index).is_const:
                continue
            base = self.model.tensor(index).name or f"tensor_{index}"
            name, k = base, 0
            while name in self.reserved:
                k += 1
                name = f"{base}_{k}"
            self.names[index] = name
            self.reserved.add(name)

    def add_const(self, index: int | None, hint: str, value: np.ndarray,
                  quant: QuantParams | None = None,
                  bin_shape: tuple[int, ...] | None = None) -> str:
        """Add a constant (for TFLite tensor `index`, or a derived one when None); with
        `bin_shape`, `value` is the packed words of a bin constant of that logical shape."""
        name, k = hint, 0
        while name in self.reserved or name in self.b.graph.tensors:
            k += 1
            name = f"{hint}_{k}"
        if bin_shape is None:
            self.b.add_const(name, value, quant)
        else:
            self.b.graph.add_packed_const(name, value, bin_shape)
        if index is not None:
            self.names[index] = name
        return name


def _input_shape(tensor: TfliteTensor, override: tuple[int, ...] | None) -> tuple[int, ...]:
    if override is None:
        return tensor.shape
    override = tuple(int(d) for d in override)
    if len(override) != len(tensor.shape):
        raise TinycError(f"--input-shape {'x'.join(map(str, override))} has rank {len(override)} "
                         f"but model input '{tensor.name}' has rank {len(tensor.shape)}")
    return override


def convert_tflite(path: Path, name: str = "model",
                   input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Convert a float32 .tflite model into tinyc IR.

    `input_shapes` overrides graph input shapes by name ('' names the only input)."""
    model = load_tflite_model(path)
    sg = model.subgraph
    b = GraphBuilder(name)
    conv = Converting(model, b)
    conv.name_activations()
    overrides = input_shapes or {}
    static = True  # every shape is the one the file declares, so it is checked
    for index in (int(i) for i in sg.inputs):
        t = model.tensor(index)
        _check_activation(model, t)
        override = overrides.get(t.name)
        if override is None and len(sg.inputs) == 1:
            override = overrides.get("")
        shape = _input_shape(t, override)
        static = static and shape == t.shape
        b.add_input(conv.names[index], shape, t.dtype, ir_quant(t))
    for index, op in enumerate(sg.operators or []):
        c = OperatorContext(conv, op, index)
        fn = CONVERTERS.get(c.op_name)
        if fn is None:
            what = c.op_name if c.op_name.startswith("custom ") else f"operator {c.op_name}"
            raise UnsupportedOperator(f"{what} (output tensor '{c.out_tensor}') is not "
                                      "supported by tinyc")
        for out in op.outputs:
            if not (c.op_name in lce.LCE_OPS and model.tensor(int(out)).type_name == "INT32"):
                _check_activation(model, model.tensor(int(out)))  # LCE's packed int32: "bin"
        fn(c)
        for i, out in enumerate(int(o) for o in op.outputs):
            declared = model.tensor(out).shape
            got = b.shape(c.output(i))
            if b.dtype(c.output(i)) == "bin":  # the file declares the packed words
                got = packed_shape(got)
            if static and declared and got != declared:
                raise TinycError(f"{c.op_name} (output tensor '{c.out_tensor}'): tinyc computes "
                                 f"shape {list(got)} but the model declares {list(declared)}; "
                                 "the model is malformed")
    outputs = []
    for index in (int(i) for i in sg.outputs):
        if index not in conv.names:  # a constant output
            outputs.append(conv.add_const(index, model.tensor(index).name or "output",
                                          model.tensor(index).data))
        else:
            outputs.append(conv.names[index])
        if b.dtype(outputs[-1]) == "bin":
            raise UnsupportedOperator(f"{path}: model output '{outputs[-1]}' is bitpacked; "
                                      "tinyc writes float32 or int8 outputs (end the model with "
                                      "LceDequantize)")
    return b.finish(outputs)


# LCE's custom operators register their converters in CONVERTERS (frontends/lce.py).
from tinyc.frontends import lce  # noqa: E402
