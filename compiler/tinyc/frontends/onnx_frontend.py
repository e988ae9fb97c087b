"""ONNX frontend (opsets 13 to 25): an onnx.ModelProto to tinyc IR.

Opsets 22-25 only widened the type lists (bfloat16, float8, int4) of the operators tinyc
supports; their float32 semantics are those of opset 21.

Each supported ONNX operator has one converter below, registered in CONVERTERS under the name
the ONNX specification gives it.  A converter reads the node's attributes and constant inputs,
resolves every default and opset difference (auto_pad into explicit pads, Clip's min/max inputs,
axes given as inputs, negative axes), and adds canonical IR nodes through the GraphBuilder.

QONNX (Brevitas's `export_qonnx`): the operators of the qonnx.custom_op.general domain have
their own registry, QONNX_CONVERTERS (see the QONNX section below for what each becomes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from tinyc.errors import TinycError, UnsupportedOperator
from tinyc.frontends.builder import GraphBuilder
from tinyc.ir import Graph, QuantParams
from tinyc.ops.movement import slice_length

MIN_OPSET, MAX_OPSET = 13, 25

ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT16: "int16",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.BOOL: "bool",
}


@dataclass
class BipolarWeights:
    """The constant output of a QONNX BipolarQuant whose scale is not 1: its +/-1 signs, and the
    scale (float32, broadcasting against the weights) that the Conv / Gemm / MatMul reading it
    applies after the layer instead, so that the layer stays binary."""

    signs: str
    scale: np.ndarray  # float32, the weights' shape


@dataclass
class ModelState:
    """What the conversion of one node leaves for later nodes."""

    bipolar: dict[str, BipolarWeights] = field(default_factory=dict)
    quantized: set[str] = field(default_factory=set)  # weights from a QONNX Quant (multi-bit)


class NodeContext:
    """One ONNX node being converted: attribute and constant-input access with clear errors."""

    def __init__(self, b: GraphBuilder, node: onnx.NodeProto, opset: int,
                 state: ModelState | None = None) -> None:
        self.b = b
        self.node = node
        self.opset = opset
        self.state = state or ModelState()
        self.name = node.name or f"{node.op_type}_{node.output[0]}"
        self.attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def attr(self, key: str, default=None):
        value = self.attrs.get(key, default)
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, onnx.TensorProto):
            return numpy_helper.to_array(value)
        return value

    def input(self, i: int) -> str:
        return self.node.input[i] if i < len(self.node.input) else ""

    def const_input(self, i: int, what: str) -> np.ndarray | None:
        """The value of optional input i, which must be a constant when present."""
        name = self.input(i)
        if not name:
            return None
        value = self.b.const(name)
        if value is None:
            self.unsupported(f"its {what} (input {i}) is computed at run time; tinyc needs it "
                             "constant (export with static shapes)")
        return value

    def unsupported(self, why: str):
        raise UnsupportedOperator(f"{self.node.op_type} node '{self.name}': {why}")

    def rank(self, i: int = 0) -> int:
        return len(self.b.shape(self.input(i)))

    def axis(self, value: int, rank: int | None = None) -> int:
        rank = self.rank() if rank is None else rank
        if not -rank <= value < rank:
            self.unsupported(f"axis {value} is out of range for rank {rank}")
        return value % rank

    def emit(self, op: str, inputs: list[str], attrs: dict, last: bool = True,
             quant: QuantParams | None = None) -> list[str]:
        """Add an IR node; the last node of a conversion writes the ONNX node's outputs.
        `quant` is the quantization of its (int8) output."""
        outputs = list(self.node.output) if last else None
        return self.b.add(op, self.name, inputs, attrs, outputs,
                          quant=None if quant is None else [quant])

    def quant_params(self, scale_index: int, zero_point_index: int, rank: int,
                     axis: int | None = None) -> QuantParams:
        """The quantization given by a (scale, zero point) input pair; int8 codes only.  The
        per-channel axis is the node's `axis` attribute unless given (QLinear operators fix
        it: the output-channel axis of their weights)."""
        scale = self.const_input(scale_index, "scale")
        zero_point = self.const_input(zero_point_index, "zero point")
        if zero_point is None:  # ONNX's default zero point is a uint8 0
            zero_point = np.zeros(1, np.uint8)
        if zero_point.dtype == np.uint8:
            # uint8 codes u with zero point z are the int8 codes u - 128 with zero point
            # z - 128 (the same real values): tinyc keeps every activation int8.
            zero_point = zero_point.astype(np.int64) - 128
        elif zero_point.dtype not in (np.int8, np.int32):
            self.unsupported(f"{zero_point.dtype} quantization (int8 and uint8 are supported)")
        if self.attr("block_size", 0):
            self.unsupported("blocked quantization (block_size)")
        scale = np.asarray(scale, np.float32).reshape(-1)
        zero_point = np.asarray(zero_point, np.int64).reshape(-1)
        if scale.size == 1:
            axis = None
        else:
            axis = self.axis(self.attr("axis", 1) if axis is None else axis, rank)
        return QuantParams(scale, np.broadcast_to(zero_point, scale.shape).copy(), axis)

    def set_quant(self, name: str, quant: QuantParams) -> None:
        """Record the quantization of an int8 tensor (it must agree with what it already has)."""
        tensor = self.b.graph.tensors[name]
        old = tensor.quant
        if old is not None and not (np.array_equal(old.scale, quant.scale)
                                    and np.array_equal(old.zero_point, quant.zero_point)):
            self.unsupported(f"tensor '{name}' is quantized with two different scales")
        tensor.quant = quant


Converter = Callable[[NodeContext], None]
CONVERTERS: dict[str, Converter] = {}
QONNX_CONVERTERS: dict[str, Converter] = {}


def converter(*names: str, registry: dict[str, Converter] = CONVERTERS
              ) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        for name in names:
            registry[name] = fn
        return fn

    return register


# ---- convolution and pooling -----------------------------------------------------------------
def _spatial_attrs(c: NodeContext, kernel: tuple[int, ...], transpose: bool = False) -> dict:
    nsp = len(kernel)
    strides = tuple(c.attr("strides", [1] * nsp))
    dilations = tuple(c.attr("dilations", [1] * nsp))
    pads = list(c.attr("pads", [0] * (2 * nsp)))
    auto_pad = c.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER") and not transpose:
        in_sp = c.b.shape(c.input(0))[2:]
        for i in range(nsp):
            out = -(-in_sp[i] // strides[i])
            total = max(0, (out - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - in_sp[i])
            small, large = total // 2, total - total // 2
            pads[i], pads[i + nsp] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    elif auto_pad == "VALID":
        pads = [0] * (2 * nsp)
    elif auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER"):
        c.unsupported(f"auto_pad {auto_pad}")
    return {"kernel_shape": tuple(kernel), "strides": strides, "dilations": dilations,
            "pads": tuple(pads), "channels_last": False}


def _constant_weights(c: NodeContext, i: int) -> str:
    """Input i, which must be a constant or the Dequantize of one (QDQ int8 weights)."""
    w = c.input(i)
    producer = c.b.graph.producer(w)
    dequantized = producer is not None and producer.op == "Dequantize" and \
        c.b.const(producer.inputs[0]) is not None
    if c.b.const(w) is None and not dequantized:
        c.unsupported("its weights are computed at run time; tinyc needs constant weights")
    return w


@converter("Conv")
def _conv(c: NodeContext) -> None:
    w = _constant_weights(c, 1)
    kernel = tuple(c.attr("kernel_shape", c.b.shape(w)[2:]))
    if len(kernel) not in (1, 2, 3):
        c.unsupported(f"{len(kernel)}-D convolution (1-D, 2-D and 3-D are supported)")
    attrs = _spatial_attrs(c, kernel) | {"group": c.attr("group", 1)}
    _layer(c, "Conv", [c.input(0), w], attrs, weight_axis=0, bias=c.input(2))


@converter("ConvTranspose")
def _conv_transpose(c: NodeContext) -> None:
    w = _constant_weights(c, 1)
    kernel = tuple(c.attr("kernel_shape", c.b.shape(w)[2:]))
    nsp = len(kernel)
    attrs = _spatial_attrs(c, kernel, transpose=True)
    attrs["group"] = c.attr("group", 1)
    attrs["output_padding"] = tuple(c.attr("output_padding", [0] * nsp))
    output_shape = c.attr("output_shape")
    auto_pad = c.attr("auto_pad", "NOTSET")
    in_sp = c.b.shape(c.input(0))[2:]
    s, d, op = attrs["strides"], attrs["dilations"], attrs["output_padding"]
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = list(output_shape)[-nsp:] if output_shape is not None else [
            in_sp[i] * s[i] for i in range(nsp)]
        pads, extra = [0] * (2 * nsp), [0] * nsp
        for i in range(nsp):
            total = s[i] * (in_sp[i] - 1) + op[i] + ((kernel[i] - 1) * d[i] + 1) - target[i]
            if total < 0:
                # A larger output than the input reaches: the extra trailing rows get no taps
                # (only the bias), exactly what output_padding means.
                extra[i], total = -total, 0
            lower = total // 2 if auto_pad != "SAME_LOWER" else total - total // 2
            pads[i], pads[i + nsp] = lower, total - lower
        attrs["pads"] = tuple(pads)
        attrs["output_padding"] = tuple(op[i] + extra[i] for i in range(nsp))
    c.emit("ConvTranspose", [c.input(0), w, c.input(2)], attrs)


@converter("MaxPool", "AveragePool")
def _pool(c: NodeContext) -> None:
    if len(c.node.output) > 1 and c.node.output[1]:
        c.unsupported("the Indices output of MaxPool")
    kernel = tuple(c.attr("kernel_shape"))
    attrs = _spatial_attrs(c, kernel)
    if c.attr("storage_order", 0):
        c.unsupported("storage_order=1")
    attrs |= {"ceil_mode": c.attr("ceil_mode", 0),
              "count_include_pad": c.attr("count_include_pad", 0)}
    c.emit(c.node.op_type, [c.input(0)], attrs)


@converter("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(c: NodeContext) -> None:
    op = "ReduceMean" if c.node.op_type == "GlobalAveragePool" else "ReduceMax"
    c.emit(op, [c.input(0)], {"axes": tuple(range(2, c.rank()))})


@converter("BatchNormalization")
def _batchnorm(c: NodeContext) -> None:
    if c.attr("training_mode", 0):
        c.unsupported("training_mode=1 (export the model in eval mode)")
    for i in range(1, 5):
        c.const_input(i, "statistics")
    c.emit("BatchNormalization", [c.input(i) for i in range(5)],
           {"epsilon": float(c.attr("epsilon", 1e-5)), "channels_last": False})


def _normalize(c: NodeContext, axes: tuple[int, ...], scale: str, bias: str
               ) -> tuple[str, str]:
    """y = (x - mean) / sqrt(var + epsilon) * scale + bias over `axes` (the biased variance, as
    ONNX and PyTorch define it) into the node's first output, in the IR's elementwise and
    reduction operators; returns (mean, sqrt(var + epsilon))."""
    # c.emit, but writing only `out` where given: c.emit(last=True) would give the last node
    # all of LayerNormalization's outputs (Y, Mean, InvStdDev)
    def op(name: str, inputs: list[str], attrs: dict | None = None, out: str | None = None
           ) -> str:
        return c.b.add(name, c.name, inputs, attrs or {}, None if out is None else [out])[0]

    x, y = c.input(0), c.node.output[0]
    eps = c.b.add_const(f"{c.name}_epsilon", np.array(c.attr("epsilon", 1e-5), np.float32))
    mean = op("ReduceMean", [x], {"axes": axes})
    d = op("Sub", [x, mean])
    var = op("ReduceMean", [op("Mul", [d, d])], {"axes": axes})
    std = op("Sqrt", [op("Add", [var, eps])])
    scaled = op("Mul", [op("Div", [d, std]), scale], out=None if bias else y)
    if bias:
        op("Add", [scaled, bias], out=y)
    return mean, std


@converter("LayerNormalization")
def _layer_norm(c: NodeContext) -> None:
    """Over the axes from `axis` on; the optional Mean and InvStdDev outputs as ONNX defines
    them (reduced axes kept as 1)."""
    c.const_input(1, "scale")
    c.const_input(2, "bias")
    axis = c.axis(c.attr("axis", -1))
    mean, std = _normalize(c, tuple(range(axis, c.rank())), c.input(1), c.input(2))
    outputs = [*c.node.output, "", ""]
    if outputs[1]:
        c.b.alias(outputs[1], mean)
    if outputs[2]:
        c.b.add("Reciprocal", c.name, [std], {}, [outputs[2]])


@converter("InstanceNormalization")
def _instance_norm(c: NodeContext) -> None:
    """Per sample and channel over the spatial axes of [N, C, ...]; scale and bias per channel."""
    per_channel = (-1,) + (1,) * (c.rank() - 2)
    scale, bias = (c.b.add_const(f"{c.name}_{what}",
                                 c.const_input(i, what).astype(np.float32).reshape(per_channel))
                   for i, what in ((1, "scale"), (2, "bias")))
    _normalize(c, tuple(range(2, c.rank())), scale, bias)


# ---- matrix products ---------------------------------------------------------------------------
@converter("Gemm")
def _gemm(c: NodeContext) -> None:
    attrs = {"alpha": float(c.attr("alpha", 1.0)), "beta": float(c.attr("beta", 1.0)),
             "transA": c.attr("transA", 0), "transB": c.attr("transB", 0)}
    _layer(c, "Gemm", [c.input(0), c.input(1)], attrs, weight_axis=0 if attrs["transB"] else 1,
           bias=c.input(2))


@converter("MatMul")
def _matmul(c: NodeContext) -> None:
    _layer(c, "MatMul", [c.input(0), c.input(1)], {}, weight_axis=-1)


def _layer(c: NodeContext, op: str, inputs: list[str], attrs: dict, weight_axis: int,
           bias: str = "") -> None:
    """Emit a Conv / Gemm / MatMul (inputs: data, weights; `weight_axis`: the weights' output
    channel axis).  Weights from a BipolarQuant with a scale s != 1 are taken as their +/-1
    signs, and s (per output channel) and the bias follow the layer as Mul and Add, which the
    binarize pass fuses into the binary layer's output transform."""
    bipolar = c.state.bipolar.get(inputs[1])
    if bipolar is None:
        # Multi-bit quantized weights make a real-valued layer even on a binary input.
        real = {"real_weights": True} if inputs[1] in c.state.quantized else {}
        c.emit(op, inputs + ([bias] if op != "MatMul" else []), attrs | real)
        return
    w_shape = c.b.shape(inputs[1])
    rows = np.moveaxis(bipolar.scale, weight_axis, 0).reshape(w_shape[weight_axis], -1)
    if not np.all(rows == rows[:, :1]):
        c.unsupported(f"the scale of its BipolarQuant weights {list(w_shape)} varies along "
                      "another axis than the output channels")
    scale = rows[:, 0]
    terms = rows.shape[1]  # +/-s terms summed per output
    if op == "Gemm" and bias and attrs["beta"] != 1.0:
        beta_bias = np.float32(attrs["beta"]) * c.const_input(2, "bias")
        bias = c.b.add_const(f"{c.name}_beta_bias", beta_bias.astype(np.float32))
    layer_inputs = inputs[:1] + [bipolar.signs] + ([""] if op != "MatMul" else [])
    y = c.emit(op, layer_inputs, attrs | ({"beta": 1.0} if op == "Gemm" else {}), last=False)[0]
    rank = len(c.b.shape(y))
    view = (1, scale.size, *[1] * (rank - 2)) if op == "Conv" else (scale.size,)
    s = c.b.add_const(f"{c.name}_weight_scale", scale.reshape(view).astype(np.float32))
    # The source's float layer sums terms +/-s: bit-identical to fl(dot * s) when every partial
    # sum is a float32; "exact" tells the binarize pass whether it may promise that.
    y = c.emit("Mul", [y, s], {"exact": _sums_exact(scale, terms)}, last=not bias)[0]
    if bias:
        b = c.b.const(bias)
        if op == "Conv" and b is not None:
            bias = c.b.add_const(f"{c.name}_bias_view", b.reshape(view))
        c.emit("Add", [y, bias], {})


def _sums_exact(scale: np.ndarray, terms: int) -> bool:
    """Whether every sum of up to `terms` values +/-s is a float32 for each s in `scale`:
    k * s is when k times the odd part of s's 24-bit significand stays below 2**24."""
    significand, _ = np.frexp(np.abs(scale.astype(np.float64)))
    for m in (significand * 2**24).astype(np.int64).tolist():
        odd = m // (m & -m) if m else 0  # m & -m: the lowest set bit
        if terms * odd >= 2**24:
            return False
    return True


# ---- elementwise ---------------------------------------------------------------------------------
@converter("Add", "Sub", "Mul", "Div", "Pow", "PRelu")
def _binary(c: NodeContext) -> None:
    if c.node.op_type == "Pow" and c.b.dtype(c.input(0)) != c.b.dtype(c.input(1)):
        exponent = c.b.const(c.input(1))
        if exponent is None:
            c.unsupported("a run-time exponent of another dtype than the base")
        base_dtype = c.b.dtype(c.input(0))
        c.emit("Pow", [c.input(0), c.b.add_const(f"{c.name}_exp", exponent.astype(base_dtype))],
               {})
        return
    c.emit(c.node.op_type, [c.input(0), c.input(1)], {})


# ---- the binary sign pattern (tinyc.nn.SignSTE: Less(x, T) -> Where(less, -1, +1)) -----------
@converter("Less", "Equal")
def _less(c: NodeContext) -> None:
    # Constant-folded (shape arithmetic), or a Less consumed by a sign Where.
    c.emit(c.node.op_type, [c.input(0), c.input(1)], {})


def _is_scalar(value: np.ndarray | None, expected: float) -> bool:
    return value is not None and value.size == 1 and float(value.reshape(-1)[0]) == expected


@converter("Where")
def _where(c: NodeContext) -> None:
    inputs = [c.input(i) for i in range(3)]
    if all(c.b.const(t) is not None for t in inputs):
        c.emit("Where", inputs, {})  # folded on the spot (e.g. sign of latent weights)
        return
    less = c.b.graph.producer(inputs[0])
    if (less is not None and less.op == "Less" and c.b.const(less.inputs[1]) is not None
            and c.b.dtype(less.inputs[0]) == "float32"
            and _is_scalar(c.b.const(inputs[1]), -1.0) and _is_scalar(c.b.const(inputs[2]), 1.0)):
        c.emit("Binarize", [less.inputs[0], less.inputs[1]], {})
        return
    c.unsupported("a run-time Where; tinyc takes Where only as the binary sign pattern "
                  "Less(x, T) -> Where(less, -1, +1) with a constant T (tinyc.nn.SignSTE)")


@converter("Max", "Min", "Sum")
def _variadic(c: NodeContext) -> None:
    op = {"Max": "Max", "Min": "Min", "Sum": "Add"}[c.node.op_type]
    inputs = list(c.node.input)
    if len(inputs) == 1:
        c.b.alias(c.node.output[0], inputs[0])
        return
    acc = inputs[0]
    for i, other in enumerate(inputs[1:], start=2):
        acc = c.emit(op, [acc, other], {}, last=i == len(inputs))[0]


UNARY_ATTRS = {
    "LeakyRelu": {"alpha": 0.01},
    "HardSigmoid": {"alpha": 0.2, "beta": 0.5},
    "Elu": {"alpha": 1.0},
    "Selu": {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875},
}


@converter("Sigmoid", "Tanh", "HardSwish", "Exp", "Log", "Abs", "Neg", "Sqrt", "Reciprocal",
           "Floor", "Ceil", "Erf", "Softplus", "LeakyRelu", "HardSigmoid", "Elu", "Selu", "Gelu")
def _unary(c: NodeContext) -> None:
    attrs = {k: float(c.attr(k, v)) for k, v in UNARY_ATTRS.get(c.node.op_type, {}).items()}
    if c.node.op_type == "Gelu" and c.attr("approximate", "none") != "none":
        c.unsupported(f"approximate={c.attr('approximate')} (only the exact erf form)")
    c.emit(c.node.op_type, [c.input(0)], attrs)


@converter("Relu")
def _relu(c: NodeContext) -> None:
    c.emit("Relu", [c.input(0)], {"act_min": 0.0, "act_max": float("inf")})


@converter("Clip")
def _clip(c: NodeContext) -> None:
    lo = c.const_input(1, "min")
    hi = c.const_input(2, "max")
    attrs = {"act_min": float(lo.reshape(-1)[0]) if lo is not None else float("-inf"),
             "act_max": float(hi.reshape(-1)[0]) if hi is not None else float("inf")}
    c.emit("Clip", [c.input(0)], attrs)


# ---- reductions and softmax ---------------------------------------------------------------------
@converter("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum")
def _reduce(c: NodeContext) -> None:
    axes_from_input = c.node.op_type == "ReduceSum" or c.opset >= 18
    axes = c.const_input(1, "axes") if axes_from_input else c.attr("axes")
    rank = c.rank()
    if axes is None or len(axes) == 0:
        if c.attr("noop_with_empty_axes", 0):
            c.b.alias(c.node.output[0], c.input(0))
            return
        axes = range(rank)
    axes = tuple(sorted(c.axis(int(a)) for a in axes))
    keepdims = c.attr("keepdims", 1)
    reduced = c.emit(c.node.op_type, [c.input(0)], {"axes": axes}, last=bool(keepdims))
    if not keepdims:
        shape = tuple(d for i, d in enumerate(c.b.shape(c.input(0))) if i not in axes)
        c.emit("Reshape", reduced, {"shape": shape})


@converter("Softmax", "LogSoftmax")
def _softmax(c: NodeContext) -> None:
    c.emit(c.node.op_type, [c.input(0)], {"axis": c.axis(c.attr("axis", -1))})


# ---- shape and data movement ------------------------------------------------------------------
def _reshape_to(c: NodeContext, shape: tuple[int, ...]) -> None:
    c.emit("Reshape", [c.input(0)], {"shape": tuple(int(d) for d in shape)})


@converter("Reshape")
def _reshape(c: NodeContext) -> None:
    target = [int(d) for d in c.const_input(1, "target shape")]
    in_shape = c.b.shape(c.input(0))
    if not c.attr("allowzero", 0):
        target = [in_shape[i] if d == 0 else d for i, d in enumerate(target)]
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(in_shape)) // max(known, 1)
    if int(np.prod(target)) != int(np.prod(in_shape)):
        c.unsupported(f"cannot reshape {list(in_shape)} to {target}")
    _reshape_to(c, tuple(target))


@converter("Flatten")
def _flatten(c: NodeContext) -> None:
    shape = c.b.shape(c.input(0))
    axis = c.axis(c.attr("axis", 1), len(shape) + 1)
    _reshape_to(c, (int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))))


@converter("Squeeze")
def _squeeze(c: NodeContext) -> None:
    shape = c.b.shape(c.input(0))
    axes = c.const_input(1, "axes")
    if axes is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    axes = {c.axis(int(a)) for a in axes}
    _reshape_to(c, tuple(d for i, d in enumerate(shape) if i not in axes))


@converter("Unsqueeze")
def _unsqueeze(c: NodeContext) -> None:
    shape = list(c.b.shape(c.input(0)))
    axes = c.const_input(1, "axes")
    out_rank = len(shape) + len(axes)
    for a in sorted(c.axis(int(a), out_rank) for a in axes):
        shape.insert(a, 1)
    _reshape_to(c, tuple(shape))


@converter("Identity", "Dropout")
def _identity(c: NodeContext) -> None:
    if len(c.node.output) > 1 and c.node.output[1]:
        c.unsupported("the mask output of Dropout")
    c.b.alias(c.node.output[0], c.input(0))


@converter("Transpose")
def _transpose(c: NodeContext) -> None:
    perm = c.attr("perm") or list(reversed(range(c.rank())))
    c.emit("Transpose", [c.input(0)], {"perm": tuple(perm)})


@converter("Slice")
def _slice(c: NodeContext) -> None:
    shape = c.b.shape(c.input(0))
    rank = len(shape)
    starts = c.const_input(1, "starts")
    ends = c.const_input(2, "ends")
    axes = c.const_input(3, "axes")
    steps = c.const_input(4, "steps")
    axes = range(len(starts)) if axes is None else [c.axis(int(a)) for a in axes]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    full_start, full_end, full_step = [0] * rank, list(shape), [1] * rank
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        dim = shape[a]
        s, e = int(s), int(e)
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
        full_start[a], full_end[a], full_step[a] = s, e, st
    attrs = {"starts": tuple(full_start), "ends": tuple(full_end), "steps": tuple(full_step)}
    if all(slice_length(s, e, st) == d and st == 1
           for s, e, st, d in zip(full_start, full_end, full_step, shape, strict=True)):
        c.b.alias(c.node.output[0], c.input(0))
        return
    c.emit("Slice", [c.input(0)], attrs)


@converter("Concat")
def _concat(c: NodeContext) -> None:
    # Empty inputs (zero extent on the axis) contribute nothing; ONNX allows them.
    inputs = [t for t in c.node.input if int(np.prod(c.b.shape(t))) > 0] or [c.input(0)]
    c.emit("Concat", inputs, {"axis": c.axis(c.attr("axis"))})


@converter("Pad")
def _pad(c: NodeContext) -> None:
    mode = c.attr("mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        c.unsupported(f"mode '{mode}'")
    pads = [int(p) for p in c.const_input(1, "pads")]
    value = c.const_input(2, "constant value")
    axes = c.const_input(3, "axes")
    rank = c.rank()
    if axes is not None:
        full = [0] * (2 * rank)
        n = len(axes)
        for i, a in enumerate(axes):
            a = c.axis(int(a))
            full[a], full[a + rank] = pads[i], pads[i + n]
        pads = full
    value = 0.0 if value is None or value.size == 0 else float(value.reshape(-1)[0])
    c.emit("Pad", [c.input(0)], {"pads": tuple(pads), "mode": mode, "value": value})


def _nearest_source(out: int, size: int, scale: float, coords: str, rounding: str
                    ) -> np.ndarray | None:
    """The input index ONNX Resize (mode nearest) reads for each of `out` outputs along an
    axis of `size`, or None for a coordinate mode or rounding tinyc does not know."""
    x = np.arange(out, dtype=np.float64)
    transforms = {
        "half_pixel": (x + 0.5) / scale - 0.5,
        "pytorch_half_pixel": (x + 0.5) / scale - 0.5 if out > 1 else 0.0 * x,
        "asymmetric": x / scale,
        "tf_half_pixel_for_nn": (x + 0.5) / scale,
        "align_corners": x * (size - 1) / (out - 1) if out > 1 else 0.0 * x,
    }
    roundings = {"round_prefer_floor": lambda v: np.ceil(v - 0.5),
                 "round_prefer_ceil": lambda v: np.floor(v + 0.5),
                 "floor": np.floor, "ceil": np.ceil}
    if coords not in transforms or rounding not in roundings:
        return None
    return np.clip(roundings[rounding](transforms[coords]), 0, size - 1).astype(np.int64)


@converter("Resize", "Upsample")
def _resize(c: NodeContext) -> None:
    """Nearest-neighbour resizing by whole factors (the usual `F.interpolate(scale_factor=k)`
    upsampling): every input element repeated k times along each axis, written as Reshape ->
    Expand -> Reshape (so float and int8 alike, the quantization kept).  Other modes and
    factors are refused."""
    shape = c.b.shape(c.input(0))
    mode = c.attr("mode", "nearest")
    if mode != "nearest":
        c.unsupported(f"mode '{mode}' (tinyc resizes by nearest neighbour, by whole factors)")
    if c.attr("axes") is not None:
        c.unsupported("the axes attribute")
    first_scale = 1 if c.node.op_type == "Upsample" or c.opset < 11 else 2
    scales = c.const_input(first_scale, "scales")
    sizes = c.const_input(3, "sizes") if first_scale == 2 else None
    if sizes is not None and sizes.size:
        out = [int(v) for v in sizes]
        scales = np.array(out, np.float64) / np.array(shape, np.float64)
    elif scales is not None and scales.size == len(shape):
        out = [int(np.floor(d * float(k))) for d, k in zip(shape, scales, strict=True)]
    else:
        c.unsupported("neither sizes nor scales for every axis")
    coords = c.attr("coordinate_transformation_mode", "half_pixel" if first_scale == 2
                    else "asymmetric")
    rounding = c.attr("nearest_mode", "round_prefer_floor" if first_scale == 2 else "floor")
    for axis, (size, o, scale) in enumerate(zip(shape, out, scales, strict=True)):
        source = _nearest_source(o, size, float(scale), coords, rounding)
        if o % size or source is None or not np.array_equal(source, np.arange(o) // (o // size)):
            c.unsupported(f"axis {axis} goes from {size} to {o} with coordinate mode '{coords}' "
                          f"and rounding '{rounding}'; tinyc resizes by whole factors, each input "
                          "element repeated")
    factors = [o // d for d, o in zip(shape, out, strict=True)]
    spread = tuple(v for d in shape for v in (d, 1))
    x = c.emit("Reshape", [c.input(0)], {"shape": spread}, last=False)[0]
    x = c.emit("Expand", [x], {"shape": tuple(v for d, k in zip(shape, factors, strict=True)
                                              for v in (d, k))}, last=False)[0]
    c.emit("Reshape", [x], {"shape": tuple(out)})


@converter("Expand")
def _expand(c: NodeContext) -> None:
    shape = tuple(int(d) for d in c.const_input(1, "shape"))
    c.emit("Expand", [c.input(0)], {"shape": shape})


@converter("Shape")
def _shape(c: NodeContext) -> None:
    # Shapes are static in tinyc, so Shape is a constant even of a run-time tensor.
    shape = np.array(c.b.shape(c.input(0)), dtype=np.int64)
    c.b.add_const(c.node.output[0], shape[c.attr("start", 0):c.attr("end", len(shape))])


@converter("Gather")
def _gather(c: NodeContext) -> None:
    c.emit("Gather", [c.input(0), c.input(1)], {"axis": c.axis(c.attr("axis", 0))})


@converter("Cast")
def _cast(c: NodeContext) -> None:
    to = ONNX_DTYPES.get(c.attr("to"))
    if to is None:
        c.unsupported(f"cast to ONNX type {c.attr('to')}")
    if to == c.b.dtype(c.input(0)) or (to == "uint8" and c.b.dtype(c.input(0)) == "int8"
                                       and c.b.quant(c.input(0)) is not None):
        # (tinyc holds uint8-quantized activations as int8 codes - 128: the same values)
        c.b.alias(c.node.output[0], c.input(0))
        return
    c.emit("Cast", [c.input(0)], {"to": to})


@converter("ConstantOfShape")
def _constant_of_shape(c: NodeContext) -> None:
    shape = tuple(int(d) for d in c.const_input(0, "shape"))
    value = c.attr("value")
    value = np.zeros(1, np.float32) if value is None else value
    c.b.add_const(c.node.output[0], np.full(shape, value.reshape(-1)[0], dtype=value.dtype))


@converter("Range")
def _range(c: NodeContext) -> None:
    c.emit("Range", [c.input(0), c.input(1), c.input(2)], {})


@converter("Constant")
def _constant(c: NodeContext) -> None:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in c.attrs:
            value = c.attr(key)
            dtype = np.float32 if "float" in key else np.int64
            c.b.add_const(c.node.output[0], np.asarray(value, dtype=None if key == "value"
                                                       else dtype))
            return
    c.unsupported("a Constant without a numeric value")


# ---- quantization: QDQ (QuantizeLinear, DequantizeLinear) and QOperator (QLinear*) ----------
@converter("QuantizeLinear")
def _quantize_linear(c: NodeContext) -> None:
    q = c.quant_params(1, 2, c.rank())
    if q.per_channel:
        c.unsupported("per-channel quantization of an activation")
    c.emit("Quantize", [c.input(0)], {}, quant=q)


@converter("DequantizeLinear")
def _dequantize_linear(c: NodeContext) -> None:
    x = c.input(0)
    q = c.quant_params(1, 2, c.rank())
    value = c.b.const(x)
    if value is not None and value.dtype == np.uint8:  # uint8 constant: int8 codes - 128
        x = c.b.add_const(f"{x}_int8", (value.astype(np.int16) - 128).astype(np.int8))
    c.set_quant(x, q)
    c.b.add("Dequantize", c.name, [x], {}, list(c.node.output), fold=False)


def _qlinear_input(c: NodeContext, index: int, scale: int, zero_point: int,
                   axis: int | None = None) -> str:
    """An int8 operand of a QLinear operator, its quantization recorded on the tensor
    (`axis`: the per-channel axis of a weight operand)."""
    x = c.input(index)
    if c.b.dtype(x) != "int8":
        c.unsupported(f"operand '{x}' is {c.b.dtype(x)} (int8 is supported)")
    c.set_quant(x, c.quant_params(scale, zero_point, len(c.b.shape(x)), axis))
    return x


@converter("QLinearConv")
def _qlinear_conv(c: NodeContext) -> None:
    x = _qlinear_input(c, 0, 1, 2)
    w = _qlinear_input(c, 3, 4, 5, axis=0)
    if c.b.const(w) is None:
        c.unsupported("its weights are computed at run time; tinyc needs constant weights")
    kernel = tuple(c.attr("kernel_shape", c.b.shape(w)[2:]))
    attrs = _spatial_attrs(c, kernel) | {"group": c.attr("group", 1)}
    q = c.quant_params(6, 7, c.rank())
    bias = c.input(8)
    c.emit("Conv", [x, w, bias], attrs, quant=q)


@converter("QLinearMatMul")
def _qlinear_matmul(c: NodeContext) -> None:
    a = _qlinear_input(c, 0, 1, 2)
    b = _qlinear_input(c, 3, 4, 5, axis=-1)
    c.emit("MatMul", [a, b], {}, quant=c.quant_params(6, 7, c.rank()))


@converter("QGemm")
def _qgemm(c: NodeContext) -> None:
    a = _qlinear_input(c, 0, 1, 2)
    b = _qlinear_input(c, 3, 4, 5, axis=0 if c.attr("transB", 0) else 1)
    if not c.input(7):
        c.unsupported("a float output (QGemm without y_scale)")
    attrs = {"alpha": float(c.attr("alpha", 1.0)), "beta": 1.0,
             "transA": c.attr("transA", 0), "transB": c.attr("transB", 0)}
    c.emit("Gemm", [a, b, c.input(6)], attrs, quant=c.quant_params(7, 8, c.rank()))


@converter("QLinearAdd", "QLinearMul")
def _qlinear_binary(c: NodeContext) -> None:
    a = _qlinear_input(c, 0, 1, 2)
    b = _qlinear_input(c, 3, 4, 5)
    op = "Add" if c.node.op_type == "QLinearAdd" else "Mul"
    c.emit(op, [a, b], {}, quant=c.quant_params(6, 7, c.rank()))


@converter("QLinearGlobalAveragePool")
def _qlinear_global_average_pool(c: NodeContext) -> None:
    if c.attr("channels_last", 0):
        c.unsupported("channels_last=1")
    x = _qlinear_input(c, 0, 1, 2)
    c.emit("ReduceMean", [x], {"axes": tuple(range(2, c.rank()))},
           quant=c.quant_params(3, 4, c.rank()))


@converter("QLinearAveragePool")
def _qlinear_average_pool(c: NodeContext) -> None:
    if c.attr("channels_last", 0):
        c.unsupported("channels_last=1")
    x = _qlinear_input(c, 0, 1, 2)
    kernel = tuple(c.attr("kernel_shape"))
    attrs = _spatial_attrs(c, kernel) | {"ceil_mode": c.attr("ceil_mode", 0),
                                         "count_include_pad": c.attr("count_include_pad", 0)}
    c.emit("AveragePool", [x], attrs, quant=c.quant_params(3, 4, c.rank()))


@converter("QLinearSigmoid", "QLinearLeakyRelu")
def _qlinear_unary(c: NodeContext) -> None:
    x = _qlinear_input(c, 0, 1, 2)
    if c.node.op_type == "QLinearSigmoid":
        c.emit("Sigmoid", [x], {}, quant=c.quant_params(3, 4, c.rank()))
    else:
        c.emit("LeakyRelu", [x], {"alpha": float(c.attr("alpha", 0.01))},
               quant=c.quant_params(3, 4, c.rank()))


@converter("DynamicQuantLinear")
def _dynamic_quant_linear(c: NodeContext) -> None:
    """tinyc.DynamicQuantLinear(x [M, K], w int8 [N, K], w_scale, w_zero_point[, bias]),
    attribute input_qmax (127 with reduce_range, else 255): PyTorch's quantize_dynamic Linear
    as the PyTorch frontend writes it (ONNX has no operator with fbgemm's arithmetic)."""
    w = c.input(1)
    if c.b.const(w) is None or c.b.dtype(w) != "int8":
        c.unsupported("its weights must be constant int8 codes")
    c.set_quant(w, c.quant_params(2, 3, 2, axis=0))
    attrs = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1,
             "input_qmax": int(c.attr("input_qmax"))}
    c.emit("Gemm", [c.input(0), w, c.input(4)], attrs)


# Operators of other domains: Microsoft's contrib operators that onnxruntime's QOperator format
# writes, and tinyc's own (written by the PyTorch frontend).
CONTRIB_OPS = ("QGemm", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
               "QLinearAveragePool", "QLinearSigmoid", "QLinearLeakyRelu")
DOMAIN_OPS = {"com.microsoft": CONTRIB_OPS, "tinyc": ("DynamicQuantLinear",)}


# ---- QONNX (Brevitas's export_qonnx) -------------------------------------------------------------
# The qonnx.custom_op.general operators (onnx.brevitas is its older name), semantics as qonnx's
# executor computes them:
#   BipolarQuant(x, s):  y = s * (x >= 0 ? +1 : -1)  (sign(0) = +1, as tinyc's Binarize; only
#     NaN differs: -1 in qonnx, +1 in tinyc)
#     on constant weights: +/-1 weights, s applied after the layer (_layer) unless s == 1;
#     on a run-time tensor: Binarize(x, 0) (followed by a Mul when s != 1);
#   Quant(x, s, z, b) on constant weights: y = s * (round(clip(x / s + z)) - z) folded, in
#     float32 as qonnx computes it, so the layer is a float layer with quantized weights.
# Not taken: Quant of a run-time tensor (activation quantization; qonnx's float arithmetic is
# not what int8 kernels compute: half-to-even rounding, float requantization) and every other
# QONNX operator (Trunc, IntQuant, FloatQuant, MultiThreshold, ...).
QONNX_DOMAINS = ("qonnx.custom_op.general", "onnx.brevitas")
QONNX_ROUNDING = ("ROUND", "HALF_EVEN")  # np.round in qonnx: half to even
MOVES_WEIGHTS = ("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")


def is_qonnx(model: onnx.ModelProto) -> bool:
    """Whether the model contains QONNX operators (onnxruntime cannot run it)."""
    return any(n.domain in QONNX_DOMAINS for n in model.graph.node)


def _qonnx_converter(node: onnx.NodeProto) -> Converter:
    fn = QONNX_CONVERTERS.get(node.op_type)
    if fn is None:
        raise UnsupportedOperator(
            f"QONNX operator {node.op_type} (node '{node.name}') is not supported by tinyc; it "
            f"takes {' and '.join(sorted(QONNX_CONVERTERS))} (Brevitas binary weights and "
            "activations, quantized constant weights)")
    return fn


def _follow_weights(b: GraphBuilder, node: onnx.NodeProto, fn: Converter, opset: int,
                    state: ModelState) -> None:
    """After `node` moved QONNX weights (the Transpose before a MatMul in the TorchScript
    export), carry what the layer reading them needs: that they are Quant weights, or (scaled
    BipolarQuant) their signs and scale, moved by the same node."""
    if not node.input or node.op_type not in MOVES_WEIGHTS or b.const(node.output[0]) is None:
        return
    if node.input[0] in state.quantized:
        state.quantized.add(node.output[0])
    source = state.bipolar.get(node.input[0])
    if source is None:
        return
    moved = []
    for i, value in enumerate((source.signs, b.add_const(f"{node.output[0]}_scale_of",
                                                         source.scale))):
        twin = onnx.NodeProto()
        twin.CopyFrom(node)
        twin.input[0] = value
        twin.output[0] = b.graph.unique_name(f"{node.output[0]}_{('signs', 'scale')[i]}")
        fn(NodeContext(b, twin, opset, state))
        moved.append(twin.output[0])
    state.bipolar[node.output[0]] = BipolarWeights(moved[0], b.const(moved[1]))


def _qonnx_scale(c: NodeContext) -> np.ndarray:
    scale = c.const_input(1, "scale")
    if scale is None:
        c.unsupported("it has no scale input")
    return np.asarray(scale, np.float32)


@converter("BipolarQuant", registry=QONNX_CONVERTERS)
def _bipolar_quant(c: NodeContext) -> None:
    x = c.input(0)
    scale = _qonnx_scale(c)
    unit = bool(np.all(scale == 1.0))
    value = c.b.const(x)
    if value is not None:
        signs = np.where(value >= 0, np.float32(1), np.float32(-1))
        c.b.add_const(c.node.output[0], (signs * scale).astype(np.float32))
        if not unit:
            c.state.bipolar[c.node.output[0]] = BipolarWeights(
                c.b.add_const(f"{c.name}_signs", signs), np.broadcast_to(scale, signs.shape))
        return
    if c.b.dtype(x) != "float32":
        c.unsupported(f"a {c.b.dtype(x)} input (float32 is supported)")
    zero = c.b.add_const(f"{c.name}_threshold", np.zeros((), np.float32))
    signs = c.emit("Binarize", [x, zero], {}, last=unit)
    if not unit:
        c.emit("Mul", [signs[0], c.b.add_const(f"{c.name}_scale", scale)], {})


@converter("Quant", registry=QONNX_CONVERTERS)
def _quant(c: NodeContext) -> None:
    value = c.b.const(c.input(0))
    bits = c.const_input(3, "bit width")
    width = float(bits.reshape(-1)[0]) if bits is not None and bits.size == 1 else None
    if width is None or width != int(width) or not 2 <= width <= 32:
        c.unsupported("its bit width is not one integer from 2 to 32")
    if value is None:
        c.unsupported(f"{width:g}-bit quantization of a run-time tensor (an activation "
                      "quantizer); tinyc takes QONNX Quant on constant weights only: export "
                      "activations binary (SignedBinaryActPerTensorConst) or float")
    rounding = c.attr("rounding_mode", "ROUND").upper()
    if rounding not in QONNX_ROUNDING:
        c.unsupported(f"rounding_mode {rounding} (ROUND is supported)")
    scale = _qonnx_scale(c)
    zero_point = np.asarray(c.const_input(2, "zero point"), np.float32)
    signed, narrow, width = bool(c.attr("signed", 1)), bool(c.attr("narrow", 0)), int(width)
    low = -(2 ** (width - 1)) + narrow if signed else 0
    high = 2 ** (width - 1) - 1 if signed else 2**width - 1 - narrow
    codes = np.round(np.clip(value.astype(np.float32) / scale + zero_point, low, high))
    c.b.add_const(c.node.output[0], ((codes - zero_point) * scale).astype(np.float32))
    c.state.quantized.add(c.node.output[0])


# ---- model loading -----------------------------------------------------------------------------
def _opset(model: onnx.ModelProto, path: str) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    raise TinycError(f"{path}: the model declares no default-domain opset; is it ONNX?")


def _input_shape(value: onnx.ValueInfoProto, override: tuple[int, ...] | None,
                 path: str) -> tuple[int, ...]:
    dims = value.type.tensor_type.shape.dim
    if override is not None:
        if len(override) != len(dims) and dims:
            raise TinycError(f"--input-shape {'x'.join(map(str, override))} has rank "
                             f"{len(override)} but model input '{value.name}' has rank {len(dims)}")
        return override
    shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    if shape and shape[0] is None and all(d is not None for d in shape[1:]):
        shape[0] = 1  # a symbolic batch dimension: microcontrollers run one sample at a time
    if any(d is None for d in shape):
        spelled = "x".join("?" if d is None else str(d) for d in shape)
        raise TinycError(f"{path}: input '{value.name}' has dynamic shape {spelled}; "
                         "give its shape with --input-shape (e.g. 1x3x32x32)")
    return tuple(shape)


def load_onnx_model(path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf raises several unrelated types for a corrupt file
        raise TinycError(f"{path}: not a readable ONNX model ({type(exc).__name__}); "
                         "check the file") from None


def convert(model: onnx.ModelProto, path: str = "model.onnx",
            input_shapes: dict[str, tuple[int, ...]] | None = None,
            name: str = "model") -> Graph:
    """Convert an ONNX model into tinyc IR.  `input_shapes` overrides graph input shapes."""
    opset = _opset(model, path)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise TinycError(f"{path}: opset {opset} is not supported (tinyc reads opsets "
                         f"{MIN_OPSET}-{MAX_OPSET}); re-export with opset_version=17")
    g = model.graph
    b = GraphBuilder(name)
    initializers = {t.name for t in g.initializer}
    for t in g.initializer:
        b.add_const(t.name, numpy_helper.to_array(t))
    overrides = input_shapes or {}
    real_inputs = [v for v in g.input if v.name not in initializers]
    for v in real_inputs:
        elem = v.type.tensor_type.elem_type
        dtype = ONNX_DTYPES.get(elem)
        if dtype is None:
            raise TinycError(f"{path}: input '{v.name}' has ONNX element type {elem}, which "
                             "tinyc does not support")
        override = overrides.get(v.name)
        if override is None and len(real_inputs) == 1 and "" in overrides:
            override = overrides[""]
        b.add_input(v.name, _input_shape(v, override, path), dtype)
    state = ModelState()
    for node in g.node:
        if node.domain in QONNX_DOMAINS:
            _qonnx_converter(node)(NodeContext(b, node, opset, state))
            continue
        if (node.domain not in ("", "ai.onnx")
                and node.op_type not in DOMAIN_OPS.get(node.domain, ())):
            raise UnsupportedOperator(f"operator {node.domain}.{node.op_type} (node "
                                      f"'{node.name}') is not supported by tinyc")
        fn = CONVERTERS.get(node.op_type)
        if fn is None:
            raise UnsupportedOperator(f"operator {node.op_type} (node '{node.name}') is not "
                                      "supported by tinyc")
        fn(NodeContext(b, node, opset, state))
        _follow_weights(b, node, fn, opset, state)
    return b.finish([o.name for o in g.output])
