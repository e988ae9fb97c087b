"""Larq Compute Engine (LCE) custom operators in .tflite files, lowered onto tinyc's binary IR.

LCE's converter (`larq_compute_engine.convert_keras_model`, LCE 0.16) writes four custom
operators whose options are a flexbuffer map (custom_options_format FLEXBUFFERS).  Packed
tensors are int32 in the file, shaped like the logical tensor but with the last axis counting
32-bit words; LCE's packing is tinyc's (bit 1 = -1, channel c in bit c % 32 of word c // 32,
padding bits zero), so packed activations are the IR's "bin" tensors as they are.

  LceQuantize    x float32 [..., C] -> packed.  bit = x < 0 (float; sign(0) = +1, NaN +1), or
                 x < zero_point (int8).  -> SignPack, threshold 0 (int8: the zero point, which
                 SignPack derives from the real threshold 0).
  LceDequantize  packed -> float32 +1.0 / -1.0 (int8: zero_point +/- round(1 / scale),
                 saturated, which is the quantization of +/-1) -> Unpack.  C is the output's.
  LceBMaxPool2d  options filter_height, filter_width, stride_height, stride_width, padding
                 (TFLite Padding: 0 SAME, 1 VALID).  The AND of the window's words over the
                 taps inside the input (padding ignored) -> BinaryMaxPool.
  LceBconv2d     inputs: x packed [N, H, W, words(C_in)], filter int32
                 [C_out, KH, KW, words(C_in / groups)] (each tap's input channels packed on
                 their own), post_activation_multiplier float32 [C_out],
                 post_activation_bias float32 [C_out], output_threshold int32 [C_out] (absent
                 inputs are -1).  Options: channels_in, stride_height, stride_width,
                 dilation_height_factor, dilation_width_factor, padding (0 SAME, 1 VALID),
                 pad_values (1: pad with +1; 0: zero padding, which LCE computes by padding
                 with +1 and correcting), fused_activation_function (TFLite
                 ActivationFunctionType).  groups = words(C_in) / filter.shape[3].
                 With accum = popcount(x ^ w) summed over the K = KH * KW * C_in / groups taps
                 (padded taps read bits 0), the true dot product is dot = K - 2 * accum, and
                 the output is
                   packed (int32 output):  bit = accum > output_threshold[c]
                                         = dot < K - 2 * output_threshold[c]   (exact)
                   float32:  LCE computes  fl(fl(float(2 * accum) * m') + b')  with
                             m' = -m, b' = fl32(b + K * m evaluated in double) (m, b the
                             post_activation multiplier and bias; the fused activation clamps
                             2 * accum, i.e. the integer dot, before that), then for SAME zero
                             padding adds fl(-m * corr) (corr: the weights over the padded
                             taps) in a third rounding.
                 tinyc lowers the float output to BinaryConv's _f32 transform
                 fl(fl(float(dot) * m) + b): the same real value dot * m + b, rounded
                 differently.  Both are within 2^-23 * (4 * K * |m| + 2 * |b|) of it, so the
                 two differ by at most 2^-22 * (4 * K * |m| + 2 * |b|) per element (a few ulp
                 of the largest intermediate; measured on the fixtures in tests/test_lce.py).
                 The packed output path is integer and exact.

Refused, one line each naming the operator and the option: int8 outputs of LceBconv2d (LCE
rounds its float transform once more), a fused activation together with a non-trivial
multiplier or bias (LCE clamps the integer dot before scaling; tinyc's kernels clamp after),
packed output with SAME zero padding (LCE's own optimized kernels refuse it too), padding or
option values outside LCE's, and packed graph outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flatbuffers import flexbuffers

from tinyc import binary as B
from tinyc.frontends.tflite_frontend import (
    FUSED_CLAMPS,
    OperatorContext,
    converter,
    same_or_valid_pads,
)
from tinyc.ir import Graph
from tinyc.ops.binary import BINARY_OPS

QUANTIZE = "custom operator LceQuantize"
DEQUANTIZE = "custom operator LceDequantize"
BMAXPOOL = "custom operator LceBMaxPool2d"
BCONV = "custom operator LceBconv2d"
LCE_OPS = (QUANTIZE, DEQUANTIZE, BMAXPOOL, BCONV)

PADDINGS = {0: "SAME", 1: "VALID"}  # TFLite's Padding enum, which LCE's options use
BCONV_KEYS = ("channels_in", "stride_height", "stride_width", "dilation_height_factor",
              "dilation_width_factor", "padding", "pad_values", "fused_activation_function")
BMAXPOOL_KEYS = ("filter_height", "filter_width", "stride_height", "stride_width", "padding")


def custom_options(c: OperatorContext, keys: tuple[str, ...]) -> dict[str, int]:
    """The operator's flexbuffer options map, with every key in `keys` an integer."""
    raw = c.op.customOptions
    if raw is None or len(raw) == 0:
        c.unsupported("it has no custom options; the model is malformed")
    if c.op.customOptionsFormat != 0:
        c.unsupported(f"custom options format {c.op.customOptionsFormat} (LCE writes "
                      "flexbuffers, format 0)")
    try:
        options: Any = flexbuffers.Loads(np.asarray(raw, dtype=np.uint8).tobytes())
    except Exception as exc:  # flexbuffers raises several unrelated types for corrupt data
        c.unsupported(f"its custom options are not a readable flexbuffer "
                      f"({type(exc).__name__}); the model is malformed")
    if not isinstance(options, dict):
        c.unsupported("its custom options are not a flexbuffer map; the model is malformed")
    for key in keys:
        if not isinstance(options.get(key), int) or isinstance(options.get(key), bool):
            c.unsupported(f"its custom option '{key}' is missing or not an integer "
                          f"(got {options.get(key)!r})")
    return {key: int(options[key]) for key in keys}


def _padding(c: OperatorContext, options: dict[str, int]) -> str:
    padding = PADDINGS.get(options["padding"])
    if padding is None:
        c.unsupported(f"padding {options['padding']} (LCE writes 0 SAME or 1 VALID)")
    return padding


def _packed_input(c: OperatorContext, i: int = 0) -> str:
    name = c.input(i)
    if c.b.dtype(name) != "bin":
        c.unsupported(f"its input '{c.tensor(i).name}' is {c.tensor(i).type_name}, not the "
                      "bitpacked output of an LCE operator")
    return name


@converter(QUANTIZE)
def _lce_quantize(c: OperatorContext) -> None:
    x = c.input(0)
    if c.b.dtype(x) not in ("float32", "int8"):
        c.unsupported(f"its input is {c.tensor(0).type_name} (float32 or int8 expected)")
    c.emit("SignPack", [x], {"threshold": 0.0})


@converter(DEQUANTIZE)
def _lce_dequantize(c: OperatorContext) -> None:
    x = _packed_input(c)
    out = c.conv.model.tensor(int(c.op.outputs[0]))
    if out.dtype not in ("float32", "int8") or not out.shape:
        c.unsupported(f"its output is {out.type_name} {list(out.shape)} (float32 or int8)")
    if out.shape[-1] != c.b.shape(x)[-1] or B.words(out.shape[-1]) != c.tensor(0).shape[-1]:
        c.unsupported(f"its output has {out.shape[-1]} channels but its input packs "
                      f"{c.b.shape(x)[-1]}")
    c.emit("Unpack", [x], {"out_dtype": out.dtype})


@converter(BMAXPOOL)
def _lce_bmaxpool(c: OperatorContext) -> None:
    options = custom_options(c, BMAXPOOL_KEYS)
    x = _packed_input(c)
    shape = c.b.shape(x)
    if len(shape) != 4:
        c.unsupported(f"input of rank {len(shape)} (NHWC rank 4 expected)")
    kernel = (options["filter_height"], options["filter_width"])
    strides = (options["stride_height"], options["stride_width"])
    if min(*kernel, *strides) < 1:
        c.unsupported(f"filter {list(kernel)} stride {list(strides)} (positive sizes expected)")
    pads = same_or_valid_pads(c, shape[1:3], kernel, strides, (1, 1), _padding(c, options))
    c.emit("BinaryMaxPool", [x], {"kernel_shape": kernel, "strides": strides,
                                  "dilations": (1, 1), "pads": pads})


def _filter_bits(c: OperatorContext, cig: int) -> np.ndarray:
    """LCE's filter [C_out, KH, KW, words(cig)] (each tap packed on its own) as tinyc's
    BinaryConv weight words [C_out, words(KH * KW * cig)] (one bit stream per output channel,
    in (kh, kw, ic) order)."""
    t = c.tensor(1)
    if not t.is_const or t.dtype != "int32" or t.data.ndim != 4:
        c.unsupported(f"its filter '{t.name}' is not a constant int32 [C_out, KH, KW, words] "
                      "tensor (LCE 0.16 writes bitpacked filters)")
    if t.shape[3] != B.words(cig):
        c.unsupported(f"its filter packs {t.shape[3]} words per tap for {cig} input channels "
                      "per group")
    bits = B.unpack_bits(t.data.view(np.uint32), cig)  # [C_out, KH, KW, cig]
    return B.pack_bits(bits.reshape(bits.shape[0], -1))


def _vector(c: OperatorContext, i: int, role: str, dtype: str, out_c: int) -> np.ndarray:
    t = c.tensor(i) if c.has_input(i) else None
    if t is None or not t.is_const or t.dtype != dtype or t.data.shape != (out_c,):
        c.unsupported(f"its {role} input is not a constant {dtype} [{out_c}] tensor")
    return t.data


def _groups(c: OperatorContext, channels_in: int) -> int:
    filter_words = c.tensor(1).shape[3] if len(c.tensor(1).shape) == 4 else 0
    total = B.words(channels_in)
    if filter_words < 1 or total % filter_words:
        c.unsupported(f"its filter packs {filter_words} words per tap, which does not divide "
                      f"the {total} words of {channels_in} input channels")
    groups = total // filter_words
    if groups > 1 and (channels_in % groups or (channels_in // groups) % B.WORD_BITS):
        c.unsupported(f"{groups} groups of {channels_in} input channels (LCE groups hold a "
                      "multiple of 32 channels)")
    return groups


@converter(BCONV)
def _lce_bconv2d(c: OperatorContext) -> None:
    options = custom_options(c, BCONV_KEYS)
    x = _packed_input(c)
    shape = c.b.shape(x)
    channels_in = options["channels_in"]
    if len(shape) != 4 or shape[-1] != channels_in:
        c.unsupported(f"channels_in {channels_in} but its input is {list(shape)}")
    out = c.conv.model.tensor(int(c.op.outputs[0]))
    groups = _groups(c, channels_in)
    w_shape = c.tensor(1).shape
    out_c, kernel = w_shape[0], (w_shape[1], w_shape[2])
    cig = channels_in // groups
    if out_c % groups:
        c.unsupported(f"{out_c} output channels in {groups} groups")
    strides = (options["stride_height"], options["stride_width"])
    dilations = (options["dilation_height_factor"], options["dilation_width_factor"])
    if min(*strides, *dilations) < 1:
        c.unsupported(f"stride {list(strides)} dilation {list(dilations)} (positive expected)")
    padding = _padding(c, options)
    if options["pad_values"] not in (0, 1):
        c.unsupported(f"pad_values {options['pad_values']} (LCE pads with 0 or 1)")
    pad_value = options["pad_values"] if padding == "SAME" else 0
    activation = c.conv.model.activation_names.get(options["fused_activation_function"], "?")
    if activation not in FUSED_CLAMPS:
        c.unsupported(f"fused_activation_function {activation} (RELU, RELU6 and RELU_N1_TO_1 "
                      "fuse)")
    weights = c.conv.add_const(None, f"{c.name}_weight_bits", _filter_bits(c, cig),
                               bin_shape=(out_c, kernel[0] * kernel[1] * cig))
    attrs = {"kernel_shape": kernel, "strides": strides, "dilations": dilations,
             "pads": same_or_valid_pads(c, shape[1:3], kernel, strides, dilations, padding),
             "group": groups, "pad_value": pad_value}
    taps = kernel[0] * kernel[1] * cig
    if out.type_name == "INT32":
        transform = _packed_transform(c, out_c, taps, pad_value, padding, activation)
        attrs |= {"out_dtype": "bin", "exact": True}
    elif out.type_name == "FLOAT32":
        transform, clamp = _float_transform(c, out_c, activation)
        attrs |= {"out_dtype": "float32", "exact": False} | clamp
    else:
        c.unsupported(f"{out.type_name} output (float32 and bitpacked int32 are supported; LCE's "
                      "int8 output rounds its float transform in an order tinyc does not "
                      "reproduce)")
    c.emit("BinaryConv", [x, weights, *transform], attrs)


def _packed_transform(c: OperatorContext, out_c: int, taps: int, pad_value: int,
                      padding: str, activation: str) -> list[str]:
    """(thr, flip) constants of the _b1 transform: bit = accum > t  <=>  dot < taps - 2 * t."""
    if padding == "SAME" and pad_value == 0:
        c.unsupported("bitpacked output with SAME zero padding (pad_values=0); LCE's optimized "
                      "kernels refuse it too (export with pad_values=1 or padding 'valid')")
    if activation != "NONE":
        c.unsupported(f"fused_activation_function {activation} with bitpacked output (the "
                      "thresholds already decide the sign)")
    t = _vector(c, 4, "output_threshold", "int32", out_c).astype(np.int64)
    limit = taps + 1
    thr = np.clip(taps - 2 * t, -limit, limit).astype(np.int32)
    flip = B.pack_flip(np.zeros(out_c, dtype=bool))
    return [c.conv.add_const(None, f"{c.name}_threshold", thr),
            c.conv.add_const(None, f"{c.name}_flip", flip, bin_shape=(out_c,))]


def _float_transform(c: OperatorContext, out_c: int, activation: str
                     ) -> tuple[list[str], dict[str, float]]:
    """(mul, bias) constants of the _f32 transform and its clamp: y = dot * m + b."""
    mul = _vector(c, 2, "post_activation_multiplier", "float32", out_c)
    bias = _vector(c, 3, "post_activation_bias", "float32", out_c)
    bounds = FUSED_CLAMPS[activation]
    clamp: dict[str, float] = {}
    if bounds is not None:
        if not (np.all(mul == 1) and np.all(bias == 0)):
            c.unsupported(f"fused_activation_function {activation} with a post-activation "
                          "multiplier or bias (LCE clamps the integer dot before scaling it; "
                          "tinyc's binary kernels clamp after)")
        clamp = {"act_min": bounds[0], "act_max": bounds[1]}
    return [c.conv.add_const(None, f"{c.name}_multiplier", mul.astype(np.float32)),
            c.conv.add_const(None, f"{c.name}_bias", bias.astype(np.float32))], clamp


def uses_lce(graph: Graph) -> bool:
    """True for a graph imported from a .tflite with LCE operators: only they lower to binary
    IR operators in the TFLite frontend."""
    return any(n.op in BINARY_OPS for n in graph.nodes)
