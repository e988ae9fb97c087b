"""The int8 kernels of runtime_c/ (tc_*_s8) and their NumPy references against TFLite Micro.

Every case builds a single-operator int8 .tflite model here (flatbuffer object API from
ai_edge_litert's schema bindings, no TensorFlow): per-channel int8 weights with zero point 0,
int32 biases, asymmetric int8 activations, fused activations.  It runs the model in TFLite
Micro (the `tflite-micro` package: TFLM's reference kernels on x86), then runs
  - the C kernel, compiled into a shared library with the host gcc and called through ctypes
    with its parameters from tinyc.quant.arith, and
  - the NumPy reference from tinyc.quant.arith,
and requires both to equal TFLM's output byte for byte; a failure prints the first differing
positions with actual and expected values.  Cases are seeded and named after the edge they
cover.

What TFLM cannot run is checked C against NumPy bit for bit and both against an independent
float64 computation (within one quantization step, 1 LSB, where rounding is involved): 3-D
convolution and pooling (TFLM has no CONV_3D / 3-D pool kernels), and pooling with dilation or
count_include_pad (not in TFLite).  A softmax over an inner axis is compared with TFLM on the
transposed tensor.

Further tests pin every parameter derivation (scales where deriving a multiplier in float32
instead of double changes output bytes, found by search), check tc_requant.h's primitives
against arith's over the whole int32 range, the struct layouts, in-place use, and the
Cortex-M4 build.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from helpers import (
    C_FIELD_TYPES,
    RUNTIME,
    c_struct,
    cortex_m4_undefined_symbols,
    kernel_library,
)
from tinyc.quant import arith

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
flatbuffers = pytest.importorskip("flatbuffers")
tflm_runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

SOURCES = sorted(RUNTIME.glob("tc_*_s8.c"))
HEADERS = [*sorted(RUNTIME.glob("tc_*_s8.h")), RUNTIME / "tc_requant.h"]

# --------------------------------------------------------------------------------------------
# ctypes mirrors of the parameter structs (their layout is checked against the headers)
# --------------------------------------------------------------------------------------------

_SPATIAL = ("in_d in_h in_w {c} out_d out_h out_w {oc} k_d k_h k_w stride_d stride_h stride_w "
            "dilation_d dilation_h dilation_w pad_d pad_h pad_w")
_BROADCAST = "rank shape*6 a_strides*6 b_strides*6 "
Conv = c_struct("tc_conv_s8_params_t",
               "batch " + _SPATIAL.format(c="in_c", oc="out_c") + " groups input_offset "
               "output_offset act_min act_max per_channel multiplier:p shift:p")
FullyConnected = c_struct("tc_fully_connected_s8_params_t",
                         "batch in_features out_features input_offset output_offset act_min "
                         "act_max per_channel multiplier:p shift:p")
Add = c_struct("tc_add_s8_params_t",
              _BROADCAST + "input1_offset input2_offset output_offset left_shift "
              "input1_multiplier input1_shift input2_multiplier input2_shift output_multiplier "
              "output_shift act_min act_max")
Mul = c_struct("tc_mul_s8_params_t",
              _BROADCAST + "input1_offset input2_offset output_offset output_multiplier "
              "output_shift act_min act_max")
LeakyRelu = c_struct("tc_leaky_relu_s8_params_t",
                    "count input_zero_point output_zero_point multiplier_identity "
                    "shift_identity multiplier_alpha shift_alpha")
Logistic = c_struct("tc_logistic_s8_params_t",
                   "count input_zero_point input_range_radius input_multiplier input_left_shift")
HardSwish = c_struct("tc_hard_swish_s8_params_t",
                    "count input_zero_point output_zero_point output_multiplier "
                    "output_multiplier_exponent reluish_multiplier reluish_multiplier_exponent")
Quantize = c_struct("tc_quantize_s8_params_t", "count scale:f zero_point")
Dequantize = c_struct("tc_dequantize_s8_params_t", "count scale:f zero_point")
Requantize = c_struct("tc_requantize_s8_params_t",
                     "count input_zero_point output_zero_point multiplier shift act_min act_max")
Pool = c_struct("tc_pool_s8_params_t",
               "batch " + _SPATIAL.format(c="c", oc="") + " pad_end_d pad_end_h pad_end_w "
               "count_include_pad act_min act_max")
Mean = c_struct("tc_mean_s8_params_t",
               "outer reduce_len inner sum_offset output_offset multiplier shift")
Softmax = c_struct("tc_softmax_s8_params_t",
                  "outer depth inner input_multiplier input_left_shift diff_min")
STRUCTS = [Conv, FullyConnected, Add, Mul, LeakyRelu, Logistic, HardSwish, Quantize,
           Dequantize, Requantize, Pool, Mean, Softmax]

# kernel -> (params struct, pointer arguments after it)
KERNELS = {
    "tc_conv_s8": (Conv, 4), "tc_depthwise_conv_s8": (Conv, 4),
    "tc_fully_connected_s8": (FullyConnected, 4),
    "tc_add_s8": (Add, 3), "tc_sub_s8": (Add, 3), "tc_mul_s8": (Mul, 3),
    "tc_leaky_relu_s8": (LeakyRelu, 2), "tc_logistic_s8": (Logistic, 2),
    "tc_tanh_s8": (Logistic, 2), "tc_hard_swish_s8": (HardSwish, 2),
    "tc_quantize_s8": (Quantize, 2), "tc_dequantize_s8": (Dequantize, 2),
    "tc_requantize_s8": (Requantize, 2),
    "tc_max_pool_s8": (Pool, 2), "tc_avg_pool_s8": (Pool, 2),
    "tc_mean_s8": (Mean, 2), "tc_softmax_s8": (Softmax, 2),
}


def make(cls: type[ctypes.Structure], values: dict) -> tuple[ctypes.Structure, list]:
    """The struct filled from a params dict (C field names; every field must be given, none
    may be unknown).  Returns it with the ctypes arrays its pointers refer to."""
    names = [name for name, _ in cls._fields_]
    unknown = set(values) - set(names)
    missing = set(names) - set(values)
    assert not unknown and not missing, f"{cls.__name__}: unknown {unknown}, missing {missing}"
    params, keep = cls(), []
    for name, ctype in cls._fields_:
        value = values[name]
        if ctype is C_FIELD_TYPES["p"]:
            array = (ctypes.c_int32 * len(value))(*value)
            keep.append(array)
            setattr(params, name, ctypes.cast(array, ctype))
        elif issubclass(ctype, ctypes.Array):
            field = getattr(params, name)
            for i, v in enumerate(value):
                field[i] = v
        else:
            setattr(params, name, value)
    return params, keep


# Exported wrappers of tc_requant.h's static inline primitives, compiled into the test library.
PRIMITIVES_SHIM = """
#include "tc_requant.h"
#define MAP1(name, expr) void name(const int32_t *a, int32_t k, int32_t *y, int32_t n) \\
    { for (int32_t i = 0; i < n; ++i) { y[i] = (expr); } }
#define MAP2(name, expr) void name(const int32_t *a, const int32_t *b, int32_t *y, int32_t n) \\
    { for (int32_t i = 0; i < n; ++i) { y[i] = (expr); } }
MAP2(shim_srdhm, tc_sat_rounding_doubling_high_mul(a[i], b[i]))
MAP2(shim_rdbpot, tc_rounding_divide_by_pot(a[i], b[i]))
void shim_mbqm(const int32_t *x, const int32_t *m, const int32_t *s, int32_t *y, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        y[i] = tc_multiply_by_quantized_multiplier(x[i], m[i], s[i]);
    }
}
MAP1(shim_exp, tc_fp_exp_on_negative_values(a[i], k))
MAP1(shim_logistic, tc_fp_logistic(a[i], k))
MAP1(shim_tanh, tc_fp_tanh(a[i], k))
MAP1(shim_one_over, tc_fp_one_over_one_plus_x_for_x_in_0_1(a[i]) + 0 * k)
MAP1(shim_one_minus, tc_fp_one_minus_x_over_one_plus_x_for_x_in_0_1(a[i]) + 0 * k)
MAP1(shim_clz, tc_clz_u32((uint32_t)a[i]) + 0 * k)
MAP2(shim_srdhm16, tc_sat_rounding_doubling_high_mul_s16((int16_t)a[i], (int16_t)b[i]))
MAP2(shim_sdhm16, tc_sat_doubling_high_mul_s16((int16_t)a[i], (int16_t)b[i]))
MAP2(shim_rdbpot16, tc_rounding_divide_by_pot_s16((int16_t)a[i], b[i]))
MAP2(shim_lshift16, tc_saturating_left_shift_s16((int16_t)a[i], b[i]))
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> ctypes.CDLL:
    build = tmp_path_factory.mktemp("tc_kernels_s8")
    shim = build / "primitives_shim.c"
    shim.write_text(PRIMITIVES_SHIM)
    return kernel_library(build, [*SOURCES, shim], [h.name for h in HEADERS], STRUCTS, KERNELS)


def run_c(lib: ctypes.CDLL, kernel: str, values: dict, inputs: Sequence[np.ndarray | None],
          out_shape: Sequence[int], out_dtype=np.int8) -> np.ndarray:
    """Calls kernel(&params, inputs..., y) and returns y."""
    cls, _ = KERNELS[kernel]
    params, keep = make(cls, values)
    arrays = [None if a is None else np.ascontiguousarray(a) for a in inputs]
    y = np.zeros(out_shape, dtype=out_dtype)
    getattr(lib, kernel)(ctypes.byref(params),
                         *[None if a is None else a.ctypes.data for a in arrays], y.ctypes.data)
    del keep
    return y


# --------------------------------------------------------------------------------------------
# Single-operator int8 .tflite models and TFLM
# --------------------------------------------------------------------------------------------

TENSOR_TYPES = {np.dtype(np.int8): schema.TensorType.INT8,
                np.dtype(np.int32): schema.TensorType.INT32,
                np.dtype(np.float32): schema.TensorType.FLOAT32}
ACT = {"NONE": schema.ActivationFunctionType.NONE, "RELU": schema.ActivationFunctionType.RELU,
       "RELU6": schema.ActivationFunctionType.RELU6}
PADDING = {"SAME": schema.Padding.SAME, "VALID": schema.Padding.VALID}


@dataclass
class T:
    """A tensor of a test model: constant when data is given, else a model input (in order)."""

    shape: Sequence[int]
    scale: float | Sequence[float] | None = None  # None: not quantized
    zero_point: int = 0
    dtype: type = np.int8
    data: np.ndarray | None = None
    axis: int = 0  # quantized dimension of per-channel scales


def single_op_model(op: str, inputs: Sequence[T], output: T, options=None) -> bytes:
    """A .tflite flatbuffer with one operator; the inputs without data are the model inputs."""
    tensors, buffers = [], [schema.BufferT()]
    for i, spec in enumerate([*inputs, output]):
        t = schema.TensorT()
        t.name, t.shape, t.type = f"t{i}", list(spec.shape), TENSOR_TYPES[np.dtype(spec.dtype)]
        buffer = schema.BufferT()
        if spec.data is not None:
            raw = np.ascontiguousarray(spec.data, dtype=np.dtype(spec.dtype).newbyteorder("<"))
            buffer.data = np.frombuffer(raw.tobytes(), dtype=np.uint8)
        buffers.append(buffer)
        t.buffer = len(buffers) - 1
        if spec.scale is not None:
            scales = [float(s) for s in np.atleast_1d(np.asarray(spec.scale, np.float32))]
            q = schema.QuantizationParametersT()
            q.scale, q.zeroPoint = scales, [int(spec.zero_point)] * len(scales)
            q.quantizedDimension = spec.axis
            t.quantization = q
        tensors.append(t)
    code = schema.OperatorCodeT()
    code.builtinCode = getattr(schema.BuiltinOperator, op)
    code.deprecatedBuiltinCode, code.version = min(code.builtinCode, 127), 1
    operator = schema.OperatorT()
    operator.opcodeIndex, operator.outputs = 0, [len(inputs)]
    operator.inputs = list(range(len(inputs)))
    if options is not None:
        operator.builtinOptionsType = getattr(schema.BuiltinOptions,
                                              type(options).__name__[:-1])
        operator.builtinOptions = options
    sg = schema.SubGraphT()
    sg.tensors, sg.operators, sg.name = tensors, [operator], "main"
    sg.inputs = [i for i, spec in enumerate(inputs) if spec.data is None]
    sg.outputs = [len(inputs)]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.buffers = 3, [code], buffers
    model.subgraphs, model.description = [sg], "tinyc int8 kernel test"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def options(kind: str, **values):
    opts = getattr(schema, f"{kind}T")()
    for key, value in values.items():
        assert hasattr(opts, key), f"{kind} has no field {key}"
        setattr(opts, key, value)
    return opts


def tflm(model: bytes, *inputs: np.ndarray) -> np.ndarray:
    """The model's output from TFLite Micro."""
    interpreter = tflm_runtime.Interpreter.from_bytes(model, arena_size=1 << 22)
    for i, x in enumerate(inputs):
        interpreter.set_input(np.array(x, order="C"), i)  # keeps 0-d arrays 0-d
    interpreter.invoke()
    return np.array(interpreter.get_output(0))


def assert_same(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Byte-for-byte equality; on failure the first differing positions, actual, expected."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.size == expected.size, f"{what}: shape {actual.shape} != {expected.shape}"
    expected = expected.reshape(actual.shape)  # e.g. [N, 1, H, W, C] vs TFLite's [N, H, W, C]
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    a = actual.view(np.uint8).reshape(*actual.shape, -1)
    e = expected.view(np.uint8).reshape(*expected.shape, -1)
    bad = np.argwhere((a != e).any(axis=-1))
    if len(bad):
        lines = [f"{what}: {len(bad)} of {actual.size} elements differ"]
        for pos in bad[:8]:
            t = tuple(int(i) for i in pos)
            lines.append(f"  at {t}: got {actual[t]!r}, expected {expected[t]!r}")
        pytest.fail("\n".join(lines))


def check(c_out: np.ndarray, numpy_out: np.ndarray, reference: np.ndarray, what: str) -> None:
    """The C kernel and the NumPy reference both equal the reference (TFLM) exactly."""
    assert_same(c_out, reference, f"{what}: C kernel vs TFLM")
    assert_same(numpy_out, reference, f"{what}: NumPy reference vs TFLM")


# --------------------------------------------------------------------------------------------
# Data and geometry
# --------------------------------------------------------------------------------------------


def rand_int8(rng: np.random.Generator, shape, lo: int = -128, hi: int = 127) -> np.ndarray:
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64).astype(np.int8)


def rand_quant(rng: np.random.Generator, zero_point: int | None = None) -> tuple[float, int]:
    scale = float(np.float32(rng.uniform(0.01, 0.1)))
    return scale, int(rng.integers(-100, 101)) if zero_point is None else zero_point


def tflite_window(size: int, k: int, stride: int, dilation: int, padding: str
                  ) -> tuple[int, int, int]:
    """(out, pad_before, pad_after) as TFLite computes them (ComputePaddingHeightWidth)."""
    eff = (k - 1) * dilation + 1
    out = (size + stride - 1) // stride if padding == "SAME" else (size - eff + stride) // stride
    total = max((out - 1) * stride + eff - size, 0) if padding == "SAME" else 0
    return out, total // 2, total - total // 2


def spatial(in_dhw, k, stride, dilation, padding) -> tuple[dict, tuple[int, int, int]]:
    """The spatial fields of a conv / pool struct (3 axes d, h, w) and the trailing pads."""
    fields, ends = {}, []
    for axis, size, kk, s, d in zip("dhw", in_dhw, k, stride, dilation, strict=True):
        out, before, after = tflite_window(size, kk, s, d, padding)
        fields.update({f"in_{axis}": size, f"out_{axis}": out, f"k_{axis}": kk,
                       f"stride_{axis}": s, f"dilation_{axis}": d, f"pad_{axis}": before})
        ends.append(after)
    return fields, tuple(ends)


def output_quant_for(acc_real_std: float, rng: np.random.Generator, act: str = "NONE"
                     ) -> tuple[float, int]:
    """An output quantization that spreads values of this standard deviation over ~+-60 codes
    (some saturate, which exercises the clamps).  RELU6 outputs get the quantization TFLite's
    converter gives them, scale 6/255 and zero point -128 (the caller scales the real values
    to match, see RELU6_STD)."""
    if act == "RELU6":
        return float(np.float32(6.0 / 255.0)), -128
    return float(np.float32(acc_real_std / 60.0)), int(rng.integers(-40, 41))


RELU6_STD = 4.0  # real standard deviation given to pre-activation values fused with RELU6


# --------------------------------------------------------------------------------------------
# CONV_2D / DEPTHWISE_CONV_2D
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvCase:
    x: tuple[int, int, int, int]  # N, H, W, C (TFLite)
    out_c: int
    k: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    act: str = "NONE"
    per_channel: bool = True
    depthwise: bool = False
    groups: int = 1  # CONV_2D with filter [out_c, kh, kw, in_c / groups]
    input_zero_point: int | None = None
    bias: bool = True
    extreme: bool = False  # saturating inputs and weights, extreme zero points
    gain: bool = False  # small values, output scale < s_in * s_w: multipliers > 1 (left shifts)
    seed: int = 0


CONV_CASES = [
    pytest.param(ConvCase((1, 9, 9, 3), 7, (3, 3), stride=(2, 2)), id="stride2_same"),
    pytest.param(ConvCase((1, 8, 7, 5), 4, (3, 2), padding="VALID", seed=1), id="valid"),
    pytest.param(ConvCase((2, 5, 5, 19), 7, (1, 1), seed=2), id="pointwise_1x1_19to7"),
    pytest.param(ConvCase((1, 10, 10, 3), 3, (3, 3), dilation=(2, 2), seed=3), id="dilation2"),
    pytest.param(ConvCase((1, 6, 6, 7), 19, (3, 3), act="RELU", seed=4), id="relu_7to19"),
    pytest.param(ConvCase((1, 6, 5, 7), 3, (2, 3), act="RELU6", stride=(2, 1), seed=5),
                 id="relu6_stride_2x1"),
    pytest.param(ConvCase((1, 7, 7, 4), 5, (3, 3), per_channel=False, seed=6),
                 id="per_tensor_weights"),
    pytest.param(ConvCase((1, 5, 5, 3), 4, (3, 3), bias=False, seed=7), id="no_bias"),
    pytest.param(ConvCase((1, 12, 12, 64), 8, (5, 5), input_zero_point=-128, extreme=True,
                          seed=8), id="large_acc_1600_taps_zp_min"),
    pytest.param(ConvCase((1, 9, 9, 3), 3, (3, 3), stride=(2, 2), depthwise=True, seed=9),
                 id="dw_mult1_stride2_same"),
    pytest.param(ConvCase((1, 8, 8, 3), 6, (3, 3), depthwise=True, padding="VALID", seed=10),
                 id="dw_mult2_valid"),
    pytest.param(ConvCase((1, 11, 11, 7), 7, (3, 3), dilation=(2, 2), depthwise=True,
                          act="RELU6", seed=11), id="dw_dilation2_relu6_c7"),
    pytest.param(ConvCase((2, 6, 6, 19), 38, (5, 5), depthwise=True, act="RELU", seed=12),
                 id="dw_mult2_c19_relu"),
    pytest.param(ConvCase((1, 7, 7, 5), 5, (3, 3), depthwise=True, per_channel=False,
                          input_zero_point=127, extreme=True, seed=13),
                 id="dw_per_tensor_zp_max_extreme"),
    pytest.param(ConvCase((1, 6, 6, 3), 7, (3, 3), gain=True, seed=14),
                 id="multiplier_above_one"),
    pytest.param(ConvCase((1, 7, 7, 6), 4, (3, 3), groups=2, seed=16), id="groups2_6to4"),
    pytest.param(ConvCase((2, 5, 8, 9), 6, (1, 3), groups=3, stride=(1, 2), act="RELU",
                          seed=17), id="groups3_1x3_stride_1x2_relu"),
    pytest.param(ConvCase((1, 6, 6, 4), 8, (3, 3), depthwise=True, gain=True, seed=15),
                 id="dw_multiplier_above_one"),
]


def conv_case_data(case: ConvCase):
    """Quantized tensors, TFLM model and the full C params of one conv case."""
    rng = np.random.default_rng(case.seed)
    n, h, w, c = case.x
    s_in, zp_in = rand_quant(rng, case.input_zero_point)
    cig = 1 if case.depthwise else c // case.groups
    if case.extreme:
        x = np.where(rng.random(case.x) < 0.5, 127, -128).astype(np.int8)
        wq = np.where(rng.random((case.out_c, *case.k, cig)) < 0.5, 127, -127).astype(np.int8)
    else:
        x = rand_int8(rng, case.x)
        wq = rand_int8(rng, (case.out_c, *case.k, cig), -127, 127)
    w_scales = rng.uniform(0.002, 0.02, size=case.out_c if case.per_channel else 1)
    taps = case.k[0] * case.k[1] * cig
    real_std = math.sqrt(taps) * 73 * 80 * s_in * float(w_scales.mean())
    if case.act == "RELU6":
        w_scales *= RELU6_STD / real_std
    w_scales = w_scales.astype(np.float32)
    bias_scales = np.float32(s_in) * np.broadcast_to(w_scales, (case.out_c,))
    bias = rng.integers(-30000, 30001, size=case.out_c).astype(np.int32) if case.bias else None
    s_out, zp_out = output_quant_for(real_std, rng, case.act)
    if case.extreme:
        s_out, zp_out = float(np.float32(taps * 127 * 255 * s_in * float(w_scales.max()) / 200)), 0
    if case.gain:
        x = np.clip(zp_in + rng.integers(-3, 4, size=case.x), -128, 127).astype(np.int8)
        wq = rand_int8(rng, wq.shape, -3, 3)
        bias = rng.integers(-20, 21, size=case.out_c).astype(np.int32)
        s_out = float(np.float32(s_in * float(w_scales.min()) / 6))

    fields, _ = spatial((1, h, w), (1, *case.k), (1, *case.stride), (1, *case.dilation),
                        case.padding)
    out_shape = (n, fields["out_h"], fields["out_w"], case.out_c)
    act_min, act_max = arith.fused_activation_range(case.act, s_out, zp_out)
    p = {"batch": n, "in_c": c, "out_c": case.out_c,
         "groups": c if case.depthwise else case.groups,
         **fields,
         **arith.conv_params(s_in, zp_in, w_scales, s_out, zp_out, act_min, act_max)}

    if case.depthwise:  # TFLite layout [1, KH, KW, out_c]
        w_tfl = wq.reshape(case.out_c, *case.k).transpose(1, 2, 0)[None]
        axis = 3
        opts = options("DepthwiseConv2DOptions", padding=PADDING[case.padding],
                       strideH=case.stride[0], strideW=case.stride[1],
                       dilationHFactor=case.dilation[0], dilationWFactor=case.dilation[1],
                       depthMultiplier=case.out_c // c, fusedActivationFunction=ACT[case.act])
    else:
        w_tfl, axis = wq, 0
        opts = options("Conv2DOptions", padding=PADDING[case.padding], strideH=case.stride[0],
                       strideW=case.stride[1], dilationHFactor=case.dilation[0],
                       dilationWFactor=case.dilation[1], fusedActivationFunction=ACT[case.act])
    tensors = [T(case.x, s_in, zp_in),
               T(w_tfl.shape, w_scales, 0, data=w_tfl, axis=axis)]
    if bias is not None:
        tensors.append(T((case.out_c,), bias_scales, 0, np.int32, data=bias))
    model = single_op_model("DEPTHWISE_CONV_2D" if case.depthwise else "CONV_2D", tensors,
                            T(out_shape, s_out, zp_out), opts)
    w_kernel = w_tfl if case.depthwise else wq  # both kernels take TFLite's layouts
    return x, w_kernel, bias, p, model, out_shape


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv(lib, case: ConvCase):
    x, w, bias, p, model, out_shape = conv_case_data(case)
    expected = tflm(model, x)
    kernel = "tc_depthwise_conv_s8" if case.depthwise else "tc_conv_s8"
    reference = arith.depthwise_conv_s8 if case.depthwise else arith.conv_s8
    y_c = run_c(lib, kernel, p, [x, w, bias], out_shape)
    y_np = reference(p, x, w, bias).reshape(out_shape)
    check(y_c, y_np, expected, kernel)


# --------------------------------------------------------------------------------------------
# FULLY_CONNECTED
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "n_in", "n_out", "per_channel", "act", "zp_in", "seed"),
    [
        pytest.param(1, 19, 7, True, "NONE", None, 0, id="per_channel_19to7"),
        pytest.param(3, 32, 10, False, "NONE", None, 1, id="per_tensor_batch3"),
        pytest.param(2, 7, 3, True, "RELU", None, 2, id="per_channel_relu"),
        pytest.param(1, 16, 19, False, "RELU6", None, 3, id="per_tensor_relu6"),
        pytest.param(1, 8192, 4, True, "NONE", -128, 4, id="large_acc_8192_zp_min"),
        pytest.param(1, 1000, 5, False, "NONE", 127, 5, id="per_tensor_1000_zp_max"),
    ],
)
def test_fully_connected(lib, batch, n_in, n_out, per_channel, act, zp_in, seed):
    rng = np.random.default_rng(100 + seed)
    s_in, zp_in = rand_quant(rng, zp_in)
    x = rand_int8(rng, (batch, n_in))
    if n_in > 1000:  # push the accumulator towards its bound
        x = np.full((batch, n_in), 127 if zp_in < 0 else -128, dtype=np.int8)
    w = rand_int8(rng, (n_out, n_in), -127, 127)
    if n_in > 1000:
        w = np.abs(w).astype(np.int8) | np.int8(100)
    w_scales = rng.uniform(0.002, 0.02, size=n_out if per_channel else 1)
    real_std = math.sqrt(n_in) * 73 * 80 * s_in * float(w_scales.mean())
    if act == "RELU6":
        w_scales *= RELU6_STD / real_std
    w_scales = w_scales.astype(np.float32)
    bias = rng.integers(-30000, 30001, size=n_out).astype(np.int32)
    s_out, zp_out = output_quant_for(real_std, rng, act)
    if n_in > 1000:
        s_out = float(np.float32(n_in * 127 * 255 * s_in * float(w_scales.max()) / 100))
    act_min, act_max = arith.fused_activation_range(act, s_out, zp_out)
    p = {"batch": batch, "in_features": n_in, "out_features": n_out,
         **arith.fully_connected_params(s_in, zp_in, w_scales, s_out, zp_out, act_min, act_max)}
    bias_scales = (np.float32(s_in) * w_scales).astype(np.float32)
    model = single_op_model(
        "FULLY_CONNECTED",
        [T((batch, n_in), s_in, zp_in), T((n_out, n_in), w_scales, 0, data=w),
         T((n_out,), bias_scales, 0, np.int32, data=bias)],
        T((batch, n_out), s_out, zp_out),
        options("FullyConnectedOptions", fusedActivationFunction=ACT[act]))
    expected = tflm(model, x)
    y_c = run_c(lib, "tc_fully_connected_s8", p, [x, w, bias], (batch, n_out))
    check(y_c, arith.fully_connected_s8(p, x, w, bias), expected, "tc_fully_connected_s8")


# --------------------------------------------------------------------------------------------
# ADD / SUB / MUL with broadcasting
# --------------------------------------------------------------------------------------------


def broadcast_fields(a_shape, b_shape) -> dict:
    """rank / shape / a_strides / b_strides of the numpy-broadcast output (stride 0 where an
    operand is broadcast)."""
    out = np.broadcast_shapes(a_shape, b_shape)
    rank = len(out)

    def strides(shape):
        shape = (1,) * (rank - len(shape)) + tuple(shape)
        dense = [int(np.prod(shape[d + 1:])) for d in range(rank)]
        return [0 if shape[d] == 1 and out[d] != 1 else dense[d] for d in range(rank)]

    return {"rank": rank, "shape": list(out), "a_strides": strides(a_shape),
            "b_strides": strides(b_shape)}


BINARY_CASES = [
    pytest.param("ADD", (1, 4, 5, 7), (1, 4, 5, 7), "NONE", 0, id="add_same_shape"),
    pytest.param("ADD", (1, 4, 4, 7), (1, 1, 1, 7), "RELU", 1, id="add_broadcast_channel_relu"),
    pytest.param("ADD", (2, 3, 1, 5), (1, 1, 4, 1), "NONE", 2, id="add_broadcast_both"),
    pytest.param("ADD", (3, 19), (), "RELU6", 3, id="add_scalar_relu6"),
    pytest.param("ADD", (2, 1, 3, 1, 2, 3), (1, 2, 1, 4, 1, 3), "NONE", 4, id="add_rank6"),
    pytest.param("SUB", (1, 4, 5, 7), (1, 4, 5, 7), "NONE", 5, id="sub_same_shape"),
    pytest.param("SUB", (1, 1, 1, 7), (2, 3, 3, 7), "RELU", 6, id="sub_broadcast_a_relu"),
    pytest.param("MUL", (1, 4, 5, 7), (1, 4, 5, 7), "NONE", 7, id="mul_same_shape"),
    pytest.param("MUL", (1, 6, 6, 3), (1, 1, 1, 3), "RELU6", 8, id="mul_broadcast_relu6"),
    pytest.param("MUL", (4, 1, 7), (5, 1), "NONE", 9, id="mul_broadcast_both"),
]


@pytest.mark.parametrize(("op", "a_shape", "b_shape", "act", "seed"), BINARY_CASES)
def test_binary(lib, op, a_shape, b_shape, act, seed):
    rng = np.random.default_rng(200 + seed)
    (s1, z1), (s2, z2) = rand_quant(rng), rand_quant(rng)
    s2 = float(np.float32(s2 * rng.choice([0.3, 1.0, 2.5])))
    a, b = rand_int8(rng, a_shape), rand_int8(rng, b_shape)
    if op == "MUL":
        s_out, zp_out = output_quant_for(80 * 80 * s1 * s2, rng)
        fn = arith.mul_params
    else:
        s_out, zp_out = output_quant_for(80 * (s1 + s2), rng)
        fn = arith.add_params if op == "ADD" else arith.sub_params
    act_min, act_max = arith.fused_activation_range(act, s_out, zp_out)
    geometry = broadcast_fields(a_shape, b_shape)
    p = {**geometry, **fn(s1, z1, s2, z2, s_out, zp_out, act_min, act_max)}
    for key in ("shape", "a_strides", "b_strides"):
        p[key] = p[key] + [0] * (6 - len(p[key]))
    out_shape = tuple(geometry["shape"])
    kind = op.capitalize() + "Options"
    model = single_op_model(op, [T(a_shape, s1, z1), T(b_shape, s2, z2)],
                            T(out_shape, s_out, zp_out),
                            options(kind, fusedActivationFunction=ACT[act]))
    expected = tflm(model, a, b)
    kernel = f"tc_{op.lower()}_s8"
    y_c = run_c(lib, kernel, p, [a, b], out_shape)
    y_np = getattr(arith, f"{op.lower()}_s8")(p, a, b)
    check(y_c, y_np, expected, kernel)


# --------------------------------------------------------------------------------------------
# AVERAGE_POOL_2D / MAX_POOL_2D
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "x_shape", "k", "stride", "padding", "act", "seed"),
    [
        pytest.param("AVERAGE_POOL_2D", (1, 9, 9, 7), (3, 3), (2, 2), "SAME", "NONE", 0,
                     id="avg_partial_windows_same"),
        pytest.param("AVERAGE_POOL_2D", (2, 8, 6, 3), (2, 2), (2, 2), "VALID", "RELU", 1,
                     id="avg_valid_relu"),
        pytest.param("AVERAGE_POOL_2D", (1, 7, 7, 19), (4, 4), (3, 3), "SAME", "RELU6", 2,
                     id="avg_4x4_s3_same_relu6"),
        pytest.param("AVERAGE_POOL_2D", (1, 5, 5, 40), (5, 5), (1, 1), "VALID", "NONE", 3,
                     id="avg_global_40ch"),
        pytest.param("MAX_POOL_2D", (1, 9, 9, 7), (3, 3), (2, 2), "SAME", "NONE", 4,
                     id="max_partial_windows_same"),
        pytest.param("MAX_POOL_2D", (2, 8, 6, 3), (2, 2), (2, 2), "VALID", "RELU6", 5,
                     id="max_valid_relu6"),
    ],
)
def test_pool(lib, op, x_shape, k, stride, padding, act, seed):
    rng = np.random.default_rng(300 + seed)
    n, h, w, c = x_shape
    s, zp = rand_quant(rng)
    if act == "RELU6":  # both bounds of the clamp inside the int8 range: [-60, 40]
        s, zp = float(np.float32(0.06)), -60
    x = rand_int8(rng, x_shape)
    fields, ends = spatial((1, h, w), (1, *k), (1, *stride), (1, 1, 1), padding)
    act_min, act_max = arith.fused_activation_range(act, s, zp)
    p = {"batch": n, "c": c, **fields, "pad_end_d": ends[0], "pad_end_h": ends[1],
         "pad_end_w": ends[2], "count_include_pad": 0, **arith.pool_params(act_min, act_max)}
    out_shape = (n, fields["out_h"], fields["out_w"], c)
    model = single_op_model(op, [T(x_shape, s, zp)], T(out_shape, s, zp),
                            options("Pool2DOptions", padding=PADDING[padding],
                                    strideH=stride[0], strideW=stride[1], filterHeight=k[0],
                                    filterWidth=k[1], fusedActivationFunction=ACT[act]))
    expected = tflm(model, x)
    kernel = "tc_avg_pool_s8" if op.startswith("AVERAGE") else "tc_max_pool_s8"
    reference = arith.avg_pool_s8 if op.startswith("AVERAGE") else arith.max_pool_s8
    check(run_c(lib, kernel, p, [x], out_shape), reference(p, x), expected, kernel)


# --------------------------------------------------------------------------------------------
# MEAN
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_shape", "axes", "keep_dims", "same_quant", "seed"),
    [
        pytest.param((1, 7, 7, 19), (1, 2), True, False, 0, id="hw_keepdims"),
        pytest.param((2, 5, 6, 8), (1, 2), False, False, 1, id="hw_no_keepdims_batch2"),
        pytest.param((1, 4, 4, 16), (1, 2), True, True, 2, id="hw_same_quantization"),
        pytest.param((2, 9, 3), (1,), True, False, 3, id="middle_axis"),
        pytest.param((3, 2, 50), (2,), False, False, 4, id="last_axis"),
        pytest.param((1, 16, 16, 3), (1, 2), True, False, 5, id="hw_256_elements"),
    ],
)
def test_mean(lib, x_shape, axes, keep_dims, same_quant, seed):
    rng = np.random.default_rng(400 + seed)
    s_in, zp_in = rand_quant(rng)
    s_out, zp_out = (s_in, zp_in) if same_quant else rand_quant(rng)
    s_out = s_out if same_quant else float(np.float32(s_out * 0.5))
    x = rand_int8(rng, x_shape)
    lo, hi = min(axes), max(axes)
    outer = int(np.prod(x_shape[:lo]))
    n = int(np.prod(x_shape[lo:hi + 1]))
    inner = int(np.prod(x_shape[hi + 1:]))
    p = {"outer": outer, "reduce_len": n, "inner": inner,
         **arith.mean_params(s_in, zp_in, s_out, zp_out, n)}
    out_shape = tuple(1 if d in axes else s for d, s in enumerate(x_shape)) if keep_dims else \
        tuple(s for d, s in enumerate(x_shape) if d not in axes)
    model = single_op_model(
        "MEAN", [T(x_shape, s_in, zp_in),
                 T((len(axes),), None, dtype=np.int32, data=np.array(axes, np.int32))],
        T(out_shape, s_out, zp_out), options("ReducerOptions", keepDims=keep_dims))
    expected = tflm(model, x)
    y_c = run_c(lib, "tc_mean_s8", p, [x], out_shape)
    check(y_c, arith.mean_s8(p, x).reshape(out_shape), expected, "tc_mean_s8")


# --------------------------------------------------------------------------------------------
# SOFTMAX
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_shape", "scale", "beta", "seed"),
    [
        pytest.param((4, 10), 0.1, 1.0, 0, id="scale0.1_beta1"),
        pytest.param((3, 33), 0.05, 0.5, 1, id="scale0.05_beta0.5"),
        pytest.param((2, 17), 0.25, 2.0, 2, id="scale0.25_beta2"),
        pytest.param((1, 2, 3, 17), 0.01, 1.0, 3, id="scale0.01_4d"),
        pytest.param((2, 10), 4.0, 10.0, 4, id="huge_beta_scale_capped_multiplier"),
        pytest.param((5, 1000), 0.0625, 1.0, 5, id="depth1000"),
    ],
)
def test_softmax(lib, x_shape, scale, beta, seed):
    rng = np.random.default_rng(500 + seed)
    zp = int(rng.integers(-128, 128))
    x = rand_int8(rng, x_shape)
    depth = x_shape[-1]
    p = {"outer": int(np.prod(x_shape[:-1])), "depth": depth, "inner": 1,
         **arith.softmax_params(scale, beta)}
    model = single_op_model("SOFTMAX", [T(x_shape, scale, zp)],
                            T(x_shape, arith.SOFTMAX_OUTPUT_SCALE,
                              arith.SOFTMAX_OUTPUT_ZERO_POINT),
                            options("SoftmaxOptions", beta=beta))
    expected = tflm(model, x)
    y_c = run_c(lib, "tc_softmax_s8", p, [x], x_shape)
    check(y_c, arith.softmax_s8(p, x), expected, "tc_softmax_s8")


@pytest.mark.parametrize("depth", [300, 600, 2000, 4095])
def test_softmax_long_flat_rows(lib, depth):
    """Rows of values close together: the sum of exps reaches 2^9 from about 513 of them,
    and the final shift 32 to 34 (TFLM's int32 shift is undefined there: 127 on x86, -127 on
    Cortex-M).  The C takes the exact quotient, as the reference does: each output is about
    256 / depth steps, so -128 from a depth of 512 on."""
    rng = np.random.default_rng(520 + depth)
    x = rand_int8(rng, (2, depth), -3, 3)
    p = {"outer": 2, "depth": depth, "inner": 1, **arith.softmax_params(0.01, 1.0)}
    expected = arith.softmax_s8(p, x)
    assert_same(run_c(lib, "tc_softmax_s8", p, [x], x.shape), expected, "tc_softmax_s8")
    if depth >= 600:
        assert (expected == -128).all()
    else:
        assert (expected > -128).all()


def test_softmax_inner_axis_matches_tflm_on_transposed_input(lib):
    """Softmax over axis 1 of [2, 9, 5] ([outer, depth, inner] with inner = 5): TFLite only
    reduces the last axis, so TFLM runs on the transposed tensor."""
    rng = np.random.default_rng(510)
    x = rand_int8(rng, (2, 9, 5))
    p = {"outer": 2, "depth": 9, "inner": 5, **arith.softmax_params(0.08, 1.0)}
    xt = np.ascontiguousarray(x.transpose(0, 2, 1))
    model = single_op_model("SOFTMAX", [T(xt.shape, 0.08, 3)],
                            T(xt.shape, arith.SOFTMAX_OUTPUT_SCALE,
                              arith.SOFTMAX_OUTPUT_ZERO_POINT),
                            options("SoftmaxOptions", beta=1.0))
    expected = np.ascontiguousarray(tflm(model, xt).transpose(0, 2, 1))
    check(run_c(lib, "tc_softmax_s8", p, [x], x.shape), arith.softmax_s8(p, x), expected,
          "tc_softmax_s8 inner axis")


# --------------------------------------------------------------------------------------------
# Elementwise activations: every int8 input value
# --------------------------------------------------------------------------------------------

ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16)


def unary_params(kernel_params: dict) -> dict:
    return {"count": ALL_INT8.size, **kernel_params}


@pytest.mark.parametrize(("scale", "zp"), [(0.1, 0), (0.05, -20), (0.02, 100), (0.5, -128),
                                           (1.7e-3, 7)])
@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
def test_logistic_tanh(lib, op, scale, zp):
    if op == "LOGISTIC":
        out_q = (arith.LOGISTIC_OUTPUT_SCALE, arith.LOGISTIC_OUTPUT_ZERO_POINT)
        p = unary_params(arith.logistic_params(scale, zp))
    else:
        out_q = (arith.TANH_OUTPUT_SCALE, arith.TANH_OUTPUT_ZERO_POINT)
        p = unary_params(arith.tanh_params(scale, zp))
    model = single_op_model(op, [T(ALL_INT8.shape, scale, zp)], T(ALL_INT8.shape, *out_q))
    expected = tflm(model, ALL_INT8)
    kernel = f"tc_{op.lower()}_s8"
    check(run_c(lib, kernel, p, [ALL_INT8], ALL_INT8.shape),
          getattr(arith, f"{op.lower()}_s8")(p, ALL_INT8), expected, kernel)


@pytest.mark.parametrize(("s_in", "zp_in", "s_out", "zp_out"),
                         [(0.05, 0, 0.03, -50), (0.02, -100, 0.02, -100), (0.1, 30, 0.2, -120),
                          (0.3, -5, 0.05, 0), (0.004, 64, 0.002, -90)])
def test_hard_swish(lib, s_in, zp_in, s_out, zp_out):
    p = unary_params(arith.hard_swish_params(s_in, zp_in, s_out, zp_out))
    model = single_op_model("HARD_SWISH", [T(ALL_INT8.shape, s_in, zp_in)],
                            T(ALL_INT8.shape, s_out, zp_out))
    expected = tflm(model, ALL_INT8)
    check(run_c(lib, "tc_hard_swish_s8", p, [ALL_INT8], ALL_INT8.shape),
          arith.hard_swish_s8(p, ALL_INT8), expected, "tc_hard_swish_s8")


@pytest.mark.parametrize(("alpha", "s_in", "zp_in", "s_out", "zp_out"),
                         [(0.1, 0.05, 10, 0.04, -20), (0.2, 0.02, -128, 0.02, -128),
                          (0.01, 0.1, 60, 0.3, 0), (1.5, 0.03, 0, 0.05, 5)])
def test_leaky_relu(lib, alpha, s_in, zp_in, s_out, zp_out):
    p = unary_params(arith.leaky_relu_params(s_in, zp_in, alpha, s_out, zp_out))
    model = single_op_model("LEAKY_RELU", [T(ALL_INT8.shape, s_in, zp_in)],
                            T(ALL_INT8.shape, s_out, zp_out),
                            options("LeakyReluOptions", alpha=alpha))
    expected = tflm(model, ALL_INT8)
    check(run_c(lib, "tc_leaky_relu_s8", p, [ALL_INT8], ALL_INT8.shape),
          arith.leaky_relu_s8(p, ALL_INT8), expected, "tc_leaky_relu_s8")


@pytest.mark.parametrize(("s_in", "zp_in", "s_out", "zp_out"),
                         [(0.05, -10, 0.05, -10), (0.05, -10, 0.02, -128), (0.1, 50, 0.3, 20)])
def test_relu_requantizes(lib, s_in, zp_in, s_out, zp_out):
    act_min, act_max = arith.fused_activation_range("RELU", s_out, zp_out)
    p = unary_params(arith.requantize_params(s_in, zp_in, s_out, zp_out, act_min, act_max))
    model = single_op_model("RELU", [T(ALL_INT8.shape, s_in, zp_in)],
                            T(ALL_INT8.shape, s_out, zp_out))
    expected = tflm(model, ALL_INT8)
    check(run_c(lib, "tc_requantize_s8", p, [ALL_INT8], ALL_INT8.shape),
          arith.requantize_s8(p, ALL_INT8), expected, "tc_requantize_s8 as RELU")


@pytest.mark.parametrize(("scale", "zp"), [(0.05, -10), (0.03, -128), (0.1, 100)])
def test_relu6_clamps_without_requantizing(lib, scale, zp):
    p = unary_params(arith.relu6_params(scale, zp))
    model = single_op_model("RELU6", [T(ALL_INT8.shape, scale, zp)],
                            T(ALL_INT8.shape, scale, zp))
    expected = tflm(model, ALL_INT8)
    check(run_c(lib, "tc_requantize_s8", p, [ALL_INT8], ALL_INT8.shape),
          arith.requantize_s8(p, ALL_INT8), expected, "tc_requantize_s8 as RELU6")


# --------------------------------------------------------------------------------------------
# QUANTIZE / DEQUANTIZE
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scale", "zp"), [(0.05, 0), (0.02, -37), (0.1, 120), (0.0078125, -128)])
def test_quantize_float_to_int8(lib, scale, zp):
    rng = np.random.default_rng(600)
    ties = (np.arange(-300, 300) + 0.5).astype(np.float32) * np.float32(scale)
    values = np.concatenate([
        rng.normal(0, 4, 500).astype(np.float32), ties,
        np.array([0.0, -0.0, 1e4, -1e4, 1e6, -1e6], dtype=np.float32)])  # quotients < 2^31
    x = values.reshape(1, -1)
    p = {"count": x.size, **arith.quantize_params(scale, zp)}
    model = single_op_model("QUANTIZE", [T(x.shape, None, dtype=np.float32)],
                            T(x.shape, scale, zp))
    expected = tflm(model, x)
    check(run_c(lib, "tc_quantize_s8", p, [x], x.shape), arith.quantize_s8(p, x), expected,
          "tc_quantize_s8")


def test_quantize_saturates_where_tflm_is_undefined(lib):
    """Quotients outside int32 (and NaN) are undefined behaviour in TFLM's float -> int32 cast
    (on x86 it yields INT32_MIN + zero point, which even wraps for negative zero points);
    tc_quantize_s8 saturates instead, and NaN gives -128."""
    x = np.array([[1e30, -1e30, np.inf, -np.inf, np.nan, 3e9, -3e9]], dtype=np.float32)
    p = {"count": x.size, **arith.quantize_params(0.02, -37)}
    y_c = run_c(lib, "tc_quantize_s8", p, [x], x.shape)
    assert_same(y_c, arith.quantize_s8(p, x), "tc_quantize_s8 vs NumPy")
    assert y_c.tolist() == [[127, -128, 127, -128, -128, 127, -128]]


@pytest.mark.parametrize(("scale", "zp"), [(0.05, 0), (0.0123, -37), (3.7, 120)])
def test_dequantize(lib, scale, zp):
    p = unary_params(arith.dequantize_params(scale, zp))
    model = single_op_model("DEQUANTIZE", [T(ALL_INT8.shape, scale, zp)],
                            T(ALL_INT8.shape, None, dtype=np.float32))
    expected = tflm(model, ALL_INT8)
    check(run_c(lib, "tc_dequantize_s8", p, [ALL_INT8], ALL_INT8.shape, np.float32),
          arith.dequantize_s8(p, ALL_INT8), expected, "tc_dequantize_s8")


def test_in_place(lib):
    """The kernels documented as in-place give the same bytes with y == x (or y == a)."""
    rng = np.random.default_rng(610)
    x = rand_int8(rng, (4, 9, 6))

    def in_place(kernel, p, *inputs):
        buffer = np.array(inputs[0])
        cls, _ = KERNELS[kernel]
        params, keep = make(cls, p)
        args = [buffer.ctypes.data, *[a.ctypes.data for a in inputs[1:]], buffer.ctypes.data]
        getattr(lib, kernel)(ctypes.byref(params), *args)
        del keep
        return buffer

    p = {"count": x.size, **arith.requantize_params(0.05, 3, 0.03, -7, -100, 120)}
    assert_same(in_place("tc_requantize_s8", p, x),
                run_c(lib, "tc_requantize_s8", p, [x], x.shape), "requantize in place")
    p = {"outer": 4, "depth": 9, "inner": 6, **arith.softmax_params(0.1)}
    assert_same(in_place("tc_softmax_s8", p, x), run_c(lib, "tc_softmax_s8", p, [x], x.shape),
                "softmax in place")
    p = {"outer": 4, "reduce_len": 9, "inner": 6, **arith.mean_params(0.1, 4, 0.05, -2, 9)}
    assert_same(in_place("tc_mean_s8", p, x).reshape(-1)[:24],
                run_c(lib, "tc_mean_s8", p, [x], (24,)), "mean in place")
    b = rand_int8(rng, (1, 1, 6))
    p = {**broadcast_fields(x.shape, b.shape), **arith.add_params(0.1, 1, 0.2, -3, 0.15, 2)}
    for key in ("shape", "a_strides", "b_strides"):
        p[key] = p[key] + [0] * (6 - len(p[key]))
    assert_same(in_place("tc_add_s8", p, x, b), run_c(lib, "tc_add_s8", p, [x, b], x.shape),
                "add in place into a")


@pytest.mark.parametrize(("s_in", "zp_in", "s_out", "zp_out"),
                         [(0.05, -10, 0.02, 30), (0.02, 100, 0.08, -128), (0.3, 0, 0.3, 5),
                          (0.01, -128, 0.0031, 0)])
def test_quantize_int8_to_int8(lib, s_in, zp_in, s_out, zp_out):
    p = unary_params(arith.requantize_params(s_in, zp_in, s_out, zp_out))
    model = single_op_model("QUANTIZE", [T(ALL_INT8.shape, s_in, zp_in)],
                            T(ALL_INT8.shape, s_out, zp_out))
    expected = tflm(model, ALL_INT8)
    check(run_c(lib, "tc_requantize_s8", p, [ALL_INT8], ALL_INT8.shape),
          arith.requantize_s8(p, ALL_INT8), expected, "tc_requantize_s8 as QUANTIZE")


# --------------------------------------------------------------------------------------------
# Parameter derivations: scales where computing the ratios in float32 instead of double changes
# output bytes (found by search over these very inputs), so only the derivation TFLM really
# uses passes.  Inputs: every int8 value, or every pair of them for binary operators.
# --------------------------------------------------------------------------------------------

GRID = np.arange(-128, 128, dtype=np.int8)
WEIGHT_RAMP = np.concatenate([np.arange(1, 128), -np.arange(1, 128)]).astype(np.int8)  # 254


def _pinned_binary(op, s1, z1, s2, z2, so, zo):
    a, b = GRID.reshape(256, 1), GRID.reshape(1, 256)
    fn = {"ADD": arith.add_params, "SUB": arith.sub_params, "MUL": arith.mul_params}[op]
    p = {"rank": 2, "shape": [256, 256, 0, 0, 0, 0], "a_strides": [1, 0, 0, 0, 0, 0],
         "b_strides": [0, 1, 0, 0, 0, 0], **fn(s1, z1, s2, z2, so, zo)}
    model = single_op_model(op, [T(a.shape, s1, z1), T(b.shape, s2, z2)],
                            T((256, 256), so, zo), options(op.capitalize() + "Options"))
    return f"tc_{op.lower()}_s8", p, [a, b], getattr(arith, f"{op.lower()}_s8"), model


def _pinned_fully_connected(si, zi, sw, so, zo):
    x, w = GRID.reshape(256, 1), WEIGHT_RAMP.reshape(254, 1)
    p = {"batch": 256, "in_features": 1, "out_features": 254,
         **arith.fully_connected_params(si, zi, [sw], so, zo)}
    model = single_op_model("FULLY_CONNECTED", [T(x.shape, si, zi), T(w.shape, [sw], 0, data=w)],
                            T((256, 254), so, zo), options("FullyConnectedOptions"))
    return "tc_fully_connected_s8", p, [x, w, None], arith.fully_connected_s8, model


def _pinned_conv(si, zi, seed, so, zo):
    x, w = GRID.reshape(1, 16, 16, 1), WEIGHT_RAMP.reshape(254, 1, 1, 1)
    w_scales = np.random.default_rng(seed).uniform(0.001, 0.02, 254).astype(np.float32)
    fields, _ = spatial((1, 16, 16), (1, 1, 1), (1, 1, 1), (1, 1, 1), "VALID")
    p = {"batch": 1, "in_c": 1, "out_c": 254, "groups": 1, **fields,
         **arith.conv_params(si, zi, w_scales, so, zo)}
    model = single_op_model("CONV_2D", [T(x.shape, si, zi), T(w.shape, w_scales, 0, data=w)],
                            T((1, 16, 16, 254), so, zo),
                            options("Conv2DOptions", padding=PADDING["VALID"], strideH=1,
                                    strideW=1))
    return "tc_conv_s8", p, [x, w, None], arith.conv_s8, model


def _pinned_unary(op, si, zi, so, zo, kernel, params, reference, opts=None):
    x = GRID.reshape(16, 16)
    model = single_op_model(op, [T(x.shape, si, zi)], T(x.shape, so, zo), opts)
    return kernel, {"count": 256, **params}, [x], reference, model


def _pinned_mean(si, zi, so, zo, seed):
    x = np.random.default_rng(seed).integers(-128, 128, size=(1, 16, 16, 64)).astype(np.int8)
    p = {"outer": 1, "reduce_len": 256, "inner": 64, **arith.mean_params(si, zi, so, zo, 256)}
    axes = np.array([1, 2], np.int32)
    model = single_op_model("MEAN", [T(x.shape, si, zi), T((2,), None, 0, np.int32, axes)],
                            T((1, 1, 1, 64), so, zo), options("ReducerOptions", keepDims=True))
    return "tc_mean_s8", p, [x], arith.mean_s8, model


def _pinned_softmax(si, zi, beta, seed):
    x = np.random.default_rng(seed).integers(-128, 128, size=(64, 32)).astype(np.int8)
    p = {"outer": 64, "depth": 32, "inner": 1, **arith.softmax_params(si, beta)}
    model = single_op_model("SOFTMAX", [T(x.shape, si, zi)],
                            T(x.shape, arith.SOFTMAX_OUTPUT_SCALE,
                              arith.SOFTMAX_OUTPUT_ZERO_POINT),
                            options("SoftmaxOptions", beta=beta))
    return "tc_softmax_s8", p, [x], arith.softmax_s8, model


PINNED = {
    "add": lambda: _pinned_binary("ADD", 0.18600115180015564, -91, 0.018732013180851936, 10,
                                  0.18992404639720917, -95),
    "sub": lambda: _pinned_binary("SUB", 0.052793338894844055, -85, 0.1496523767709732, 88,
                                  0.11142982542514801, -108),
    "mul": lambda: _pinned_binary("MUL", 0.011716898530721664, 106, 0.006092143710702658, 119,
                                  0.0038227145560085773, 91),
    "fully_connected_per_tensor": lambda: _pinned_fully_connected(
        0.1771889328956604, 124, 0.005325482692569494, 0.3916286826133728, -5),
    "conv_per_channel": lambda: _pinned_conv(0.18017812073230743, -88, 444,
                                             0.2815985083580017, -48),
    "leaky_relu": lambda: _pinned_unary(
        "LEAKY_RELU", 0.08800319582223892, 94, 0.05580219253897667, 57, "tc_leaky_relu_s8",
        arith.leaky_relu_params(0.08800319582223892, 94, 0.17, 0.05580219253897667, 57),
        arith.leaky_relu_s8, options("LeakyReluOptions", alpha=0.17)),
    "hard_swish": lambda: _pinned_unary(
        "HARD_SWISH", 0.05256427079439163, 73, 0.00615697493776679, 5, "tc_hard_swish_s8",
        arith.hard_swish_params(0.05256427079439163, 73, 0.00615697493776679, 5),
        arith.hard_swish_s8),
    "quantize_int8": lambda: _pinned_unary(
        "QUANTIZE", 0.15184225142002106, -111, 0.08827096223831177, -102, "tc_requantize_s8",
        arith.requantize_params(0.15184225142002106, -111, 0.08827096223831177, -102),
        arith.requantize_s8),
    "mean": lambda: _pinned_mean(0.11098708212375641, 127, 0.08348852396011353, 102, 69),
    "softmax": lambda: _pinned_softmax(0.03580957278609276, 0, 1.6343624591827393, 917),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_parameter_derivation_matches_tflm(lib, name):
    kernel, p, inputs, reference, model = PINNED[name]()
    model_inputs = inputs[:2] if kernel in ("tc_add_s8", "tc_sub_s8", "tc_mul_s8") else \
        inputs[:1]  # the others' further inputs are constants in the model
    expected = tflm(model, *model_inputs)
    out_shape = expected.shape
    check(run_c(lib, kernel, p, inputs, out_shape), reference(p, *inputs), expected, name)


# --------------------------------------------------------------------------------------------
# Beyond TFLite: C vs NumPy exactly, both vs float64 within 1 LSB
# --------------------------------------------------------------------------------------------


def float_conv(xr: np.ndarray, wr: np.ndarray, br: np.ndarray, p: dict) -> np.ndarray:
    """Direct float64 convolution by definition (one output element at a time), independent of
    arith: x [N, D, H, W, C], w [OC, KD, KH, KW, C / groups]."""
    n, oc = p["batch"], p["out_c"]
    cig, cog = p["in_c"] // p["groups"], oc // p["groups"]
    y = np.zeros((n, p["out_d"], p["out_h"], p["out_w"], oc))
    for b, od, oh, ow, o in np.ndindex(*y.shape):
        g = o // cog
        total = br[o]
        for kd, kh, kw in np.ndindex(p["k_d"], p["k_h"], p["k_w"]):
            i = [od * p["stride_d"] - p["pad_d"] + kd * p["dilation_d"],
                 oh * p["stride_h"] - p["pad_h"] + kh * p["dilation_h"],
                 ow * p["stride_w"] - p["pad_w"] + kw * p["dilation_w"]]
            if all(0 <= v < p[f"in_{a}"] for v, a in zip(i, "dhw", strict=True)):
                total += xr[b, i[0], i[1], i[2], g * cig:(g + 1) * cig] @ wr[o, kd, kh, kw]
        y[b, od, oh, ow, o] = total
    return y


def assert_within_one_lsb(actual: np.ndarray, real: np.ndarray, scale: float, zp: int,
                          what: str) -> None:
    expected = np.clip(np.round(real / scale) + zp, -128, 127)
    diff = np.abs(actual.astype(np.int64) - expected)
    if diff.max() > 1:
        pos = tuple(int(i) for i in np.argwhere(diff > 1)[0])
        pytest.fail(f"{what}: {int((diff > 1).sum())} elements off by more than 1 LSB; first "
                    f"at {pos}: got {actual[pos]}, float64 says {real[pos] / scale + zp:.3f}")


@pytest.mark.parametrize(
    ("x_shape", "out_c", "k", "stride", "dilation", "padding", "groups"),
    [
        pytest.param((1, 5, 6, 7, 3), 4, (3, 3, 3), (1, 1, 1), (1, 1, 1), "SAME", 1,
                     id="conv3d_same"),
        pytest.param((2, 6, 5, 5, 4), 6, (2, 3, 1), (2, 1, 2), (1, 2, 1), "VALID", 2,
                     id="conv3d_groups2_strided_dilated"),
        pytest.param((1, 1, 1, 20, 6), 9, (1, 1, 5), (1, 1, 2), (1, 1, 1), "SAME", 3,
                     id="conv1d_groups3"),
    ],
)
def test_conv_beyond_tflite(lib, x_shape, out_c, k, stride, dilation, padding, groups):
    """The D axis (TFLM has no CONV_3D) and a 1-D layout, with groups, dilation and strides."""
    rng = np.random.default_rng(700)
    n, d, h, w, c = x_shape
    s_in, zp_in = rand_quant(rng)
    x = rand_int8(rng, x_shape)
    wq = rand_int8(rng, (out_c, *k, c // groups), -127, 127)
    w_scales = rng.uniform(0.002, 0.02, size=out_c).astype(np.float32)
    bias = rng.integers(-30000, 30001, size=out_c).astype(np.int32)
    taps = int(np.prod(k)) * c // groups
    s_out, zp_out = output_quant_for(math.sqrt(taps) * 73 * 80 * s_in * float(w_scales.mean()),
                                     rng)
    fields, _ = spatial((d, h, w), k, stride, dilation, padding)
    p = {"batch": n, "in_c": c, "out_c": out_c, "groups": groups, **fields,
         **arith.conv_params(s_in, zp_in, w_scales, s_out, zp_out)}
    out_shape = (n, fields["out_d"], fields["out_h"], fields["out_w"], out_c)
    y_c = run_c(lib, "tc_conv_s8", p, [x, wq, bias], out_shape)
    assert_same(y_c, arith.conv_s8(p, x, wq, bias), "tc_conv_s8 vs NumPy")
    real = float_conv((x.astype(np.float64) - zp_in) * s_in,
                      wq * w_scales.astype(np.float64)[:, None, None, None, None],
                      bias * (np.float64(np.float32(s_in)) * w_scales), p)
    assert_within_one_lsb(y_c, real, s_out, zp_out, "tc_conv_s8 vs float64")


def test_depthwise_conv3d_beyond_tflite(lib):
    rng = np.random.default_rng(710)
    x_shape, mult, k = (1, 4, 5, 5, 3), 2, (2, 3, 3)
    n, d, h, w, c = x_shape
    s_in, zp_in = rand_quant(rng)
    x = rand_int8(rng, x_shape)
    w_dw = rand_int8(rng, (*k, c * mult), -127, 127)
    w_scales = rng.uniform(0.002, 0.02, size=c * mult).astype(np.float32)
    s_out, zp_out = output_quant_for(math.sqrt(18) * 73 * 80 * s_in * 0.01, rng)
    fields, _ = spatial((d, h, w), k, (1, 2, 1), (1, 1, 1), "SAME")
    p = {"batch": n, "in_c": c, "out_c": c * mult, "groups": c, **fields,
         **arith.conv_params(s_in, zp_in, w_scales, s_out, zp_out)}
    out_shape = (n, fields["out_d"], fields["out_h"], fields["out_w"], c * mult)
    y_c = run_c(lib, "tc_depthwise_conv_s8", p, [x, w_dw, None], out_shape)
    assert_same(y_c, arith.depthwise_conv_s8(p, x, w_dw, None), "tc_depthwise_conv_s8 vs NumPy")
    # The same weights in tc_conv_s8's grouped layout [out_c, kd, kh, kw, 1] give the same bytes.
    w_grouped = np.ascontiguousarray(np.moveaxis(w_dw, -1, 0)[..., None])
    assert_same(run_c(lib, "tc_conv_s8", p, [x, w_grouped, None], out_shape), y_c,
                "tc_conv_s8 (groups = in_c) vs tc_depthwise_conv_s8")
    real = float_conv((x.astype(np.float64) - zp_in) * s_in,
                      w_grouped * w_scales.astype(np.float64)[:, None, None, None, None],
                      np.zeros(c * mult), p)
    assert_within_one_lsb(y_c, real, s_out, zp_out, "tc_depthwise_conv_s8 vs float64")


@pytest.mark.parametrize(
    ("kind", "x_shape", "k", "stride", "dilation", "padding", "count_include_pad"),
    [
        pytest.param("avg", (1, 5, 6, 7, 3), (2, 3, 3), (2, 2, 2), (1, 1, 1), "SAME", 0,
                     id="avg3d_partial_windows"),
        pytest.param("avg", (1, 1, 7, 7, 4), (1, 3, 3), (1, 2, 2), (1, 1, 1), "SAME", 1,
                     id="avg2d_count_include_pad"),
        pytest.param("max", (2, 4, 5, 6, 3), (2, 2, 3), (1, 2, 1), (1, 1, 2), "SAME", 0,
                     id="max3d_dilated"),
    ],
)
def test_pool_beyond_tflite(lib, kind, x_shape, k, stride, dilation, padding,
                            count_include_pad):
    rng = np.random.default_rng(720)
    n, d, h, w, c = x_shape
    x = rand_int8(rng, x_shape)
    fields, ends = spatial((d, h, w), k, stride, dilation, padding)
    p = {"batch": n, "c": c, **fields, "pad_end_d": ends[0], "pad_end_h": ends[1],
         "pad_end_w": ends[2], "count_include_pad": count_include_pad, **arith.pool_params()}
    out_shape = (n, fields["out_d"], fields["out_h"], fields["out_w"], c)
    kernel = f"tc_{kind}_pool_s8"
    y_c = run_c(lib, kernel, p, [x], out_shape)
    assert_same(y_c, getattr(arith, f"{kind}_pool_s8")(p, x), f"{kernel} vs NumPy")
    # float64 by definition: pad with NaN, take nanmax / nansum over the window.
    pads = [(0, 0)] + [(p[f"pad_{a}"], max(e, 0) + k_ * dl) for a, e, k_, dl in
                       zip("dhw", ends, k, dilation, strict=True)] + [(0, 0)]
    xp = np.pad(x.astype(np.float64), pads, constant_values=np.nan)
    real = np.zeros(out_shape)
    for b, od, oh, ow in np.ndindex(*out_shape[:4]):
        i0 = [od * stride[0], oh * stride[1], ow * stride[2]]
        win = xp[b, i0[0]:i0[0] + (k[0] - 1) * dilation[0] + 1:dilation[0],
                 i0[1]:i0[1] + (k[1] - 1) * dilation[1] + 1:dilation[1],
                 i0[2]:i0[2] + (k[2] - 1) * dilation[2] + 1:dilation[2]].reshape(-1, c)
        if kind == "max":
            real[b, od, oh, ow] = np.nanmax(win, axis=0)
        elif count_include_pad:
            real[b, od, oh, ow] = np.nansum(win, axis=0) / (k[0] * k[1] * k[2])
        else:
            real[b, od, oh, ow] = np.nanmean(win, axis=0)
    if kind == "max":
        assert_same(y_c, real.astype(np.int8), f"{kernel} vs float64")
    else:
        assert_within_one_lsb(y_c, real, 1.0, 0, f"{kernel} vs float64")


# --------------------------------------------------------------------------------------------
# Parameter functions and builds
# --------------------------------------------------------------------------------------------


def test_struct_mirrors_match_headers(lib):
    for cls in STRUCTS:
        c_layout = (ctypes.c_size_t * (1 + len(cls._fields_))).in_dll(lib, f"layout_{cls.__name__}")
        py_layout = [ctypes.sizeof(cls)] + [getattr(cls, f).offset for f, _ in cls._fields_]
        assert list(c_layout) == py_layout, f"{cls.__name__}: C {list(c_layout)} != {py_layout}"


def _shim(lib, name: str, *args) -> np.ndarray:
    """y[i] = shim(a[i], b[i], ...) for array arguments; a scalar argument is the k of the
    one-array shims."""
    arrays = [np.ascontiguousarray(a, dtype=np.int32) if np.ndim(a) else None for a in args]
    c_args = [ctypes.c_int32(int(a)) if arr is None else ctypes.c_void_p(arr.ctypes.data)
              for a, arr in zip(args, arrays, strict=True)]
    y = np.zeros(next(arr.size for arr in arrays if arr is not None), dtype=np.int32)
    getattr(lib, name)(*c_args, ctypes.c_void_p(y.ctypes.data), ctypes.c_int32(y.size))
    return y


def _int32s(rng: np.random.Generator, n: int, lo: int = arith.INT32_MIN,
            hi: int = arith.INT32_MAX) -> np.ndarray:
    """Uniform int32 values in [lo, hi] of every magnitude, plus the edges."""
    magnitude = rng.integers(0, 32, size=n)
    values = rng.integers(-(1 << 31), 1 << 31, size=n, dtype=np.int64) >> magnitude
    edges = np.array([lo, hi, 0, 1, -1, 1 << 30, -(1 << 30), (1 << 30) - 1, 2, -2])
    return np.clip(np.concatenate([edges, values]), lo, hi)


def test_fixed_point_primitives_c_equals_numpy(lib):
    """tc_requant.h and arith's primitives agree on 20,000 values per function across the whole
    int32 range (edge values included), beyond what the operator cases reach."""
    rng = np.random.default_rng(900)
    n = 20000
    a, b = _int32s(rng, n), _int32s(rng, n)
    assert_same(_shim(lib, "shim_srdhm", a, b), arith.srdhm(a, b).astype(np.int32), "srdhm")
    e = rng.integers(0, 32, size=a.size)
    assert_same(_shim(lib, "shim_rdbpot", a, e),
                arith.rounding_divide_by_pot(a, e).astype(np.int32), "rounding_divide_by_pot")
    multiplier = rng.integers(1 << 30, 1 << 31, size=a.size)
    shift = rng.integers(-31, 31, size=a.size)
    assert_same(_shim(lib, "shim_mbqm", a, multiplier, shift),
                arith.multiply_by_quantized_multiplier(a, multiplier, shift).astype(np.int32),
                "multiply_by_quantized_multiplier (left shifts wrap like TFLM's int32 multiply)")
    negative = -np.abs(_int32s(rng, n, -arith.INT32_MAX, arith.INT32_MAX))
    nonzero = _int32s(rng, n, -arith.INT32_MAX, arith.INT32_MAX)
    unit = np.abs(_int32s(rng, n, 0, arith.INT32_MAX))
    for bits in (0, 4, 5, 6):
        assert_same(_shim(lib, "shim_exp", negative, bits),
                    arith.exp_on_negative_values(negative, bits).astype(np.int32),
                    f"exp_on_negative_values Q{bits}")
    for bits in (4, 5):
        assert_same(_shim(lib, "shim_logistic", nonzero, bits),
                    arith.fixed_point_logistic(nonzero, bits).astype(np.int32), f"logistic Q{bits}")
        assert_same(_shim(lib, "shim_tanh", nonzero, bits),
                    arith.fixed_point_tanh(nonzero, bits).astype(np.int32), f"tanh Q{bits}")
    assert_same(_shim(lib, "shim_one_over", unit, 0),
                arith.one_over_one_plus_x_for_x_in_0_1(unit).astype(np.int32), "1 / (1 + x)")
    assert_same(_shim(lib, "shim_one_minus", unit, 0),
                arith.one_minus_x_over_one_plus_x_for_x_in_0_1(unit).astype(np.int32),
                "(1 - x) / (1 + x)")
    bits = np.frexp(np.abs(a.astype(np.float64)))[1]
    assert_same(_shim(lib, "shim_clz", a, 0),
                np.where(a < 0, 0, 32 - bits).astype(np.int32), "clz")
    a16, b16 = rng.integers(-32768, 32768, size=(2, n))
    a16[:4], b16[:4] = [-32768, -32768, 32767, 0], [-32768, 32767, -32768, 0]
    assert_same(_shim(lib, "shim_srdhm16", a16, b16), arith.srdhm16(a16, b16).astype(np.int32),
                "srdhm16")
    assert_same(_shim(lib, "shim_sdhm16", a16, b16), arith.sdhm16(a16, b16).astype(np.int32),
                "sdhm16")
    e16 = rng.integers(0, 32, size=n)
    assert_same(_shim(lib, "shim_rdbpot16", a16, e16),
                arith.rounding_divide_by_pot16(a16, e16).astype(np.int32),
                "rounding_divide_by_pot16")
    amounts = rng.integers(0, 31, size=n)
    assert_same(_shim(lib, "shim_lshift16", a16, amounts),
                np.clip(a16.astype(np.int64) << amounts, -32768, 32767).astype(np.int32),
                "saturating_left_shift16")


@pytest.mark.parametrize(
    ("real", "expected"),
    [
        (0.0, (0, 0)),
        (0.5, (1 << 30, 0)),
        (1.0, (1 << 30, 1)),
        (0.75, (1610612736, 0)),
        (1.0 - 2.0 ** -40, (1 << 30, 1)),  # rounds up to 2^31: halved, shift + 1
        (2.0 ** -33, (0, 0)),              # shift < -31 flushes to zero
        (3.0e-3, (1649267442, -8)),
    ],
)
def test_quantize_multiplier(real, expected):
    assert arith.quantize_multiplier(real) == expected


def test_multiply_by_quantized_multiplier_rounds_twice():
    """x * 2^30 * 2^-1 / 2^31 = x / 4.  TFLM rounds twice: SRDHM(x, 2^30) = x / 2 with ties up,
    then a rounding shift by 1 with ties away from zero.  x = 1: 0.5 -> 1 -> 0.5 -> 1 (a single
    rounding of 0.25 gives 0); x = -1: -0.5 -> 0 -> 0; x = +-3: +-1.5 -> 2 / -1 -> 1 / -1."""
    got = arith.multiply_by_quantized_multiplier(np.array([1, -1, 3, -3, 2, -2]), 1 << 30, -1)
    assert got.tolist() == [1, 0, 1, -1, 1, -1]


def test_params_field_names_match_structs():
    """Every params function returns only fields of its C struct."""
    fields = {cls: {name for name, _ in cls._fields_} for cls in STRUCTS}
    produced = {
        Conv: arith.conv_params(0.1, 3, [0.01, 0.02], 0.2, -4),
        FullyConnected: arith.fully_connected_params(0.1, 3, [0.01], 0.2, -4),
        Add: arith.add_params(0.1, 1, 0.2, 2, 0.3, 3),
        Mul: arith.mul_params(0.1, 1, 0.2, 2, 0.3, 3),
        LeakyRelu: arith.leaky_relu_params(0.1, 1, 0.2, 0.3, 3),
        Logistic: arith.logistic_params(0.1, 1),
        HardSwish: arith.hard_swish_params(0.1, 1, 0.05, 3),
        Quantize: arith.quantize_params(0.1, 1),
        Dequantize: arith.dequantize_params(0.1, 1),
        Requantize: arith.requantize_params(0.1, 1, 0.2, 3),
        Pool: arith.pool_params(),
        Mean: arith.mean_params(0.1, 1, 0.2, 3, 49),
        Softmax: arith.softmax_params(0.1),
    }
    for cls, params in produced.items():
        assert set(params) <= fields[cls], f"{cls.__name__}: {set(params) - fields[cls]}"


def test_headers_coexist_in_one_translation_unit(tmp_path):
    """Generated model code includes every kernel header: no name may clash, float ones too."""
    headers = sorted(RUNTIME.glob("tc_*.h"))
    source = tmp_path / "all.c"
    source.write_text("".join(f'#include "{h.name}"\n' for h in headers) + "int main(void)"
                      " { return 0; }\n")
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion",
           f"-I{RUNTIME}", "-c", str(source), "-o", str(tmp_path / "all.o")]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
@pytest.mark.parametrize("source", SOURCES, ids=[p.name for p in SOURCES])
def test_compiles_for_cortex_m4(source, tmp_path):
    """Warning-free for Cortex-M4 and self-contained (no other tc_ symbol needed)."""
    undefined = cortex_m4_undefined_symbols(source, tmp_path) or []
    assert not [s for s in undefined if s.startswith("tc_")], undefined
    assert not [s for s in undefined if s in ("roundf", "expf", "malloc", "__aeabi_d2f")], \
        undefined
