"""Post-training quantization of a lowered float graph to the TFLite int8 scheme.

`tinyc compile model.pt --quantize int8 --calibration calib.npy`:
  - calibration runs the float graph (the IR interpreter) over the calibration samples and
    records every activation's range: min/max, or the 0.01 / 99.99 percentiles ("percentile",
    which ignores rare outliers);
  - activations become per-tensor asymmetric int8: the range is widened to contain 0 (so zero
    padding is exact), scale = (max - min) / 255, zero point = round(-128 - min / scale);
  - weights of Conv / Gemm / MatMul become per-output-channel symmetric int8 (zero point 0,
    scale = max|w| / 127, values in [-127, 127]), biases int32 with scale s_input * s_weight;
  - operators whose int8 output quantization is fixed by TFLite's kernels get it (Softmax and
    Sigmoid 1/256 with zero point -128, Tanh 1/128 with 0); data movement (Reshape, Transpose,
    Slice, MaxPool, Pad) and AveragePool (TFLite's int8 average pooling does not requantize)
    keep their input's quantization; an Add / Sub output range too narrow for TFLite's
    rescaling (a multiplier below 1) is widened; Concat's inputs are requantized to the
    output's where they differ;
  - the model keeps float32 inputs and outputs: a Quantize follows each input and a
    Dequantize precedes each output;
  - an operator without an int8 kernel is refused, or with `allow_float_fallback` runs in
    float between a Dequantize and a Quantize, and is reported;
  - binary layers (tinyc.ops.binary) stay binary: SignPack packs the int8 tensor (its
    thresholds become integer ones, exact for the int8 values), a binary layer with a real
    output writes int8 through its output transform (calibrated range), Unpack writes the
    int8 codes of +1 / -1.  So a BNN's real first and last layers become int8.
The quantized graph runs in the IR interpreter with exactly the C kernels' arithmetic, which is
the reference `verify` holds the C to (bit for bit); the float model is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyc.errors import TinycError, UnsupportedOperator
from tinyc.interpret import trace_graph
from tinyc.ir import Graph, Node, QuantParams, Tensor
from tinyc.ops.binary import BINARY_OPS
from tinyc.quant import arith

METHODS = ("minmax", "percentile")
PERCENTILE = 99.99
WEIGHTED = ("Conv", "Gemm", "MatMul")
KEEPS_QUANT = ("Reshape", "Transpose", "Slice", "Expand", "MaxPool", "AveragePool", "Pad")
FIXED_OUTPUT = {
    "Softmax": (arith.SOFTMAX_OUTPUT_SCALE, arith.SOFTMAX_OUTPUT_ZERO_POINT),
    "Sigmoid": (arith.LOGISTIC_OUTPUT_SCALE, arith.LOGISTIC_OUTPUT_ZERO_POINT),
    "Tanh": (arith.TANH_OUTPUT_SCALE, arith.TANH_OUTPUT_ZERO_POINT),
}
INT8_OPS = (*WEIGHTED, "Add", "Sub", "Mul", "ReduceMean", "HardSwish",
            "LeakyRelu", "Relu", "Clip", "Concat", *KEEPS_QUANT, *FIXED_OUTPUT)


@dataclass
class Calibration:
    ranges: dict[str, tuple[float, float]]
    method: str
    samples: int


@dataclass
class QuantizedModel:
    graph: Graph
    calibration: Calibration
    float_fallback: list[str] = field(default_factory=list)


def calibrate(graph: Graph, samples: list[list[np.ndarray]], method: str = "minmax"
              ) -> Calibration:
    if method not in METHODS:
        raise TinycError(f"--calibration-method {method}: choose one of {', '.join(METHODS)}")
    if not samples:
        raise TinycError("calibration needs at least one sample")
    values: dict[str, list[np.ndarray]] = {}
    for sample in samples:
        for name, value in trace_graph(graph, sample).items():
            if graph.tensors[name].dtype == "float32" and not graph.tensors[name].is_const:
                values.setdefault(name, []).append(np.asarray(value, np.float64).reshape(-1))
    ranges = {}
    for name, chunks in values.items():
        data = np.concatenate(chunks)
        if not np.isfinite(data).all():
            raise TinycError(f"calibration: tensor '{name}' takes non-finite values; check the "
                             "calibration data")
        if method == "percentile":
            lo, hi = np.percentile(data, [100 - PERCENTILE, PERCENTILE])
        else:
            lo, hi = data.min(), data.max()
        ranges[name] = (float(lo), float(hi))
    return Calibration(ranges, method, len(samples))


def activation_quant(lo: float, hi: float) -> QuantParams:
    """Per-tensor asymmetric int8 covering [lo, hi] and 0.  A tensor that is zero on every
    calibration sample is held exactly by any scale: it gets [0, 1], not a tiny one that
    TFLite's Add / Sub and Softmax input rescaling cannot take."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        lo, hi = 0.0, 1.0
    scale = np.float32((hi - lo) / 255.0)
    zero_point = int(np.clip(round(-128 - lo / float(scale)), -128, 127))
    return QuantParams.per_tensor(float(scale), zero_point)


def add_output_quant(quant: QuantParams, s_a: float, s_b: float) -> QuantParams:
    """The output quantization of an int8 Add / Sub: TFLite's kernels rescale both inputs to
    2 max(s_a, s_b) / 2^20 and that sum to the output, a multiplier that must stay below 1, so
    the output scale must exceed 2 max(s_a, s_b) / 2^20.  A narrower calibrated range (an
    output far smaller than its operands, such as the difference of two nearly equal tensors;
    an all-zero one already has [0, 1], activation_quant) is widened to twice that bound,
    keeping the zero point: the values it held stay exact."""
    bound = 2.0 * max(s_a, s_b) / (1 << arith.ADD_LEFT_SHIFT)
    if quant.s > bound:
        return quant
    return QuantParams.per_tensor(float(np.float32(2.0 * bound)), quant.zp)


def weight_quant(w: np.ndarray, axis: int) -> tuple[np.ndarray, QuantParams]:
    """Per-channel symmetric int8 along `axis`."""
    moved = np.moveaxis(w.astype(np.float64), axis, 0).reshape(w.shape[axis], -1)
    scale = (np.abs(moved).max(axis=1) / 127.0).astype(np.float32)
    scale = np.where(scale > 0, scale, np.float32(1.0))
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, QuantParams(scale, np.zeros(scale.shape, np.int64), axis)


class _Quantizer:
    """Builds the quantized graph node by node (the float graph is not modified)."""

    def __init__(self, graph: Graph, calibration: Calibration, allow_fallback: bool) -> None:
        self.src = graph
        self.cal = calibration
        self.allow = allow_fallback
        self.g = Graph(graph.name, {}, [], list(graph.inputs), list(graph.outputs))
        self.int8: dict[str, str] = {}  # float tensor -> its int8 version
        self.float: dict[str, str] = {}  # float tensor name -> float tensor available
        self.fallback: list[str] = []

    # -- tensors
    def quant_of(self, name: str) -> QuantParams:
        if name not in self.cal.ranges:
            raise TinycError(f"calibration recorded no values for tensor '{name}'")
        return activation_quant(*self.cal.ranges[name])

    def new_int8(self, name: str, quant: QuantParams) -> str:
        t = self.src.tensors[name]
        new = self.g.unique_name(f"{name}_int8")
        self.g.tensors[new] = Tensor(new, t.shape, "int8", None, quant)
        return new

    def as_int8(self, name: str, quant: QuantParams | None = None) -> str:
        """The int8 version of a float tensor (quantized at run time if only float exists);
        with `quant`, requantized to it where it differs."""
        src = self.src.tensors[name]
        if src.is_const:
            q = quant or activation_quant(float(src.data.min()), float(src.data.max()))
            data = arith.quantize_s8(arith.quantize_params(q.s, q.zp), src.data)
            return self.g.add_const(f"{name}_int8", data, q)
        if name not in self.int8:
            out = self.new_int8(name, quant or self.quant_of(name))
            self.node("Quantize", f"{name}_quantize", [self.float[name]], [out])
            self.int8[name] = out
        current = self.int8[name]
        have = self.g.tensors[current].quant
        if quant is not None and (have.s, have.zp) != (quant.s, quant.zp):
            out = self.new_int8(name, quant)
            self.node("Quantize", f"{name}_requantize", [current], [out])
            return out
        return current

    def as_float(self, name: str) -> str:
        if self.src.tensors[name].is_const:
            return self.copy_const(name)
        if name not in self.float:
            t = self.src.tensors[name]
            self.g.tensors[name] = Tensor(name, t.shape, "float32")
            self.node("Dequantize", f"{name}_dequantize", [self.int8[name]], [name])
            self.float[name] = name
        return self.float[name]

    def copy_const(self, name: str) -> str:
        if name not in self.g.tensors:
            self.g.tensors[name] = self.src.tensors[name]
        return name

    def node(self, op: str, hint: str, inputs: list[str], outputs: list[str],
             attrs: dict | None = None) -> None:
        self.g.nodes.append(Node(op, self.g.unique_name(hint), inputs, outputs, attrs or {}))

    # -- operators
    def weighted(self, node: Node) -> None:
        x, w_name = node.inputs[0], node.inputs[1]
        w = self.src.tensors[w_name]
        if w.data is None:
            raise UnsupportedOperator(f"{node.op} node '{node.name}': weights computed at run "
                                      "time cannot be quantized")
        if node.op == "Conv":
            axis = 0
        elif node.op == "Gemm":
            if node.attrs["transA"] or node.attrs["alpha"] != 1 or node.attrs["beta"] != 1:
                raise UnsupportedOperator(f"Gemm node '{node.name}': int8 Gemm needs transA=0, "
                                          "alpha=beta=1")
            axis = 0 if node.attrs["transB"] else 1
        else:
            axis = w.data.ndim - 1
        xi = self.as_int8(x)
        wq_data, wq = weight_quant(w.data, axis)
        w_new = self.g.add_const(f"{w_name}_int8", wq_data, wq)
        inputs = [xi, w_new]
        if node.input(2):
            b = self.src.tensors[node.input(2)].data
            s_in = self.g.tensors[xi].quant.s
            scale = (np.float64(s_in) * wq.scale.astype(np.float64))
            if b is None or b.size not in (1, scale.size):
                raise UnsupportedOperator(f"{node.op} node '{node.name}': its bias cannot be "
                                          "quantized (a per-output-channel constant is needed)")
            bq = np.round(np.broadcast_to(b.reshape(-1), scale.shape) / scale).astype(np.int32)
            inputs.append(self.g.add_const(f"{node.input(2)}_int32", bq,
                                           QuantParams(scale.astype(np.float32),
                                                       np.zeros(scale.shape, np.int64), 0)))
        out = self.new_int8(node.outputs[0], self.quant_of(node.outputs[0]))
        self.g.nodes.append(Node(node.op, node.name, inputs, [out], dict(node.attrs)))
        self.int8[node.outputs[0]] = out

    def int8_op(self, node: Node) -> None:
        if node.op in KEEPS_QUANT:
            inputs = [self.as_int8(node.inputs[0])]
            quant = self.g.tensors[inputs[0]].quant
        else:
            y = node.outputs[0]
            quant = (QuantParams.per_tensor(*FIXED_OUTPUT[node.op]) if node.op in FIXED_OUTPUT
                     else self.quant_of(y))
            shared = quant if node.op == "Concat" else None
            inputs = [self.as_int8(t, shared) for t in node.inputs]
            if node.op in ("Add", "Sub"):
                quant = add_output_quant(quant, *(self.g.tensors[t].quant.s for t in inputs))
        out = self.new_int8(node.outputs[0], quant)
        self.g.nodes.append(Node(node.op, node.name, inputs, [out], dict(node.attrs)))
        self.int8[node.outputs[0]] = out

    def binary_op(self, node: Node) -> None:
        inputs = []
        for t in node.inputs:
            src = self.src.tensors[t] if t else None
            if src is None or src.is_const or src.dtype == "bin":
                if src is not None:
                    self.g.tensors.setdefault(t, src)
                inputs.append(t)
            else:  # the real input of SignPack
                inputs.append(self.as_int8(t))
        y = node.outputs[0]
        attrs = dict(node.attrs)
        if self.src.tensors[y].dtype == "bin":
            self.g.tensors[y] = self.src.tensors[y]
            out = y
        else:
            quant = activation_quant(-1.0, 1.0) if node.op == "Unpack" else self.quant_of(y)
            out = self.new_int8(y, quant)
            attrs["out_dtype"] = "int8"
            self.int8[y] = out
        self.g.nodes.append(Node(node.op, node.name, inputs, [out], attrs))

    def float_op(self, node: Node) -> None:
        if not self.allow:
            raise UnsupportedOperator(
                f"{node.op} node '{node.name}' has no int8 kernel; pass --allow-float-fallback "
                "to run it in float32 inside the quantized model")
        inputs = [self.as_float(t) if t else "" for t in node.inputs]
        for out in node.outputs:
            self.g.tensors[out] = self.src.tensors[out]
            self.float[out] = out
        self.g.nodes.append(Node(node.op, node.name, inputs, list(node.outputs),
                                 dict(node.attrs)))
        self.fallback.append(f"{node.op} '{node.name}'")

    def run(self) -> Graph:
        for name in self.src.inputs:
            self.g.tensors[name] = self.src.tensors[name]
            self.float[name] = name
        for node in self.src.nodes:
            if node.op in BINARY_OPS:
                self.binary_op(node)
            elif self.src.tensors[node.inputs[0]].dtype != "float32":
                self.float_op(node)
            elif node.op in WEIGHTED:
                self.weighted(node)
            elif node.op in INT8_OPS:
                self.int8_op(node)
            else:
                self.float_op(node)
        for name in self.src.outputs:
            if name in self.float:
                continue
            t = self.src.tensors[name]
            self.g.tensors[name] = Tensor(name, t.shape, t.dtype)
            self.node("Dequantize", f"{name}_dequantize", [self.int8[name]], [name])
        self.g.remove_unused_tensors()
        self.g.verify()
        return self.g


def quantize_graph(graph: Graph, calibration: Calibration, allow_float_fallback: bool = False
                   ) -> QuantizedModel:
    """The int8 version of a lowered float graph (see the module docstring)."""
    q = _Quantizer(graph, calibration, allow_float_fallback)
    return QuantizedModel(q.run(), calibration, q.fallback)
