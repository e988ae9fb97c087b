"""Constants of the optimized int8 kernels, laid out ahead of time.

The optimized kernels (runtime_c/tc_conv_fast_s8.h: tc_conv_gemm_s8 and
tc_depthwise_conv_planar_s8; tc_fully_connected_fast_s8.h: tc_fully_connected_rows4_s8;
tc_elementwise_fast_s8.h: tc_add_lut_s8) compute exactly what the portable kernels compute,
from constants the compiler prepares here:

- `fold_bias`: the bias folded with the input zero point (bias + input_offset * sum of the
  channel's weights, wrapped to int32), so the kernels multiply raw int8 inputs;
- `requant_fields`: per output channel (one record when the weights have one scale) a
  tc_requant_channel_t (tc_requant.h): the multiplier, the 64-bit rounding constant
  2^30 + 2^(30 + r) of the one-step requantization (r = -shift) and the shift code;
- weight layouts: each kernel's weights in the order its inner loop reads them (see the
  function of each kernel).
- the parameter struct of each kernel, with the C field names, derived from the portable
  kernel's parameters (tinyc.quant.arith), and the scratch bytes the kernel needs.

Nothing here changes arithmetic: the NumPy references of the portable kernels remain the models
of the optimized ones, and tests/test_kernels_s8_fast.py runs both C versions against them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tinyc.quant.arith import Params, multiply_by_quantized_multiplier, wrap32

CHANNEL_TYPE = "tc_requant_channel_t"
GEMM_PIXELS = 6  # tc_conv_gemm_s8: output pixels per panel
FC_ROWS = 4  # tc_fully_connected_rows4_s8: output rows per pass
GATHER_COST = 100  # tc_conv_gemm_s8: instructions per pixel to gather a window (qemu-m4)
FRAME_MIN_EDGE_SHARE = 0.10  # tc_conv_gemm_s8, 2-D: when a frame pays (_frame_pays)
FRAME_MAX_RAM_SHARE = 0.25
NARROW_ACC = 1 << 30  # tc_requant_channel_t: the 32-bit form needs |acc| below this ...
NARROW_MAX_SHIFT = 22  # ... and a right shift of at most this (to carry the output offset)
# tc_depthwise_conv_planar_s8: accumulators per pass (whole rows, >= 1 row).  Each pass costs
# about 125 instructions around its loops; 128 rather than 64 (256 B more scratch) saves
# 64,000 on kws01 (one pass per channel instead of three) and 78,000 on vww01 (qemu-m4)
PLANAR_CHUNK = 128
PLANAR_STORE_CALL = 15  # tc_depthwise_conv_planar_s8: instructions per output stage call
# depthwise: extra scratch (planar: three more planes, _four_planes; channels-last: its
# frame, depthwise_cl_pays) at most this share of the layer's input and output bytes
DW_SCRATCH_MAX_RAM_SHARE = 0.25


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


# --------------------------------------------------------------------------------------------
# Requantization records
# --------------------------------------------------------------------------------------------


def channel_record(multiplier: int, shift: int, acc_bound: int,
                   output_offset: int) -> tuple[int, int, int, int]:
    """One tc_requant_channel_t: (multiplier, shift_code, narrow_round, narrow_shift) for
    accumulators of magnitude at most acc_bound; narrow (the Thumb-2 output stages' 32-bit
    form, tc_requant.h, the output offset riding in its rounding constant) where shift < 0,
    acc_bound < NARROW_ACC and -shift <= NARROW_MAX_SHIFT.  A channel of tiny scale whose every
    output is 0 (vww01 has many) gets multiplier 0 and r = 1, exact in both forms."""
    if shift >= 0:
        return int(multiplier), -1 - shift, 0, 0
    r = -shift
    if acc_bound < NARROW_ACC and acc_bound * multiplier + (1 << 30) < 1 << (30 + r):
        # no accumulator reaches half an output step: s = SRDHM(acc) stays within 2^(r-1) - 1
        return 0, 0, 2 * int(output_offset) + 1, 1
    if acc_bound >= NARROW_ACC or r > NARROW_MAX_SHIFT:
        return int(multiplier), r - 1, 0, 0
    return int(multiplier), r - 1, (2 * int(output_offset) + 1) << (r - 1), r


def acc_bounds(folded_bias: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per output channel, a bound on |accumulator| of a kernel summing raw int8 inputs times
    weights [out, ...] onto the folded bias: |bias| + 128 * sum |w|."""
    w = np.abs(weights.reshape(weights.shape[0], -1).astype(np.int64)).sum(axis=1)
    return np.abs(np.asarray(folded_bias, np.int64)) + 128 * w


def fold_bias(bias: np.ndarray | None, weights: np.ndarray, input_offset: int) -> np.ndarray:
    """bias + input_offset * sum of each output channel's weights (weights [out, ...]), int32
    wrap-around."""
    sums = weights.reshape(weights.shape[0], -1).astype(np.int64).sum(axis=1)
    b = np.zeros(weights.shape[0], np.int64) if bias is None else np.asarray(bias, np.int64)
    return wrap32(b + int(input_offset) * sums)


def requant_fields(p: Params, folded_bias: np.ndarray, weights: np.ndarray) -> Params:
    """The per_channel / bias / requant fields of an optimized kernel from a portable
    kernel's multiplier and shift (one record when per_channel is 0) and its weights
    [out, ...] (for the accumulators' bound)."""
    bounds = acc_bounds(folded_bias, weights)
    if not p["per_channel"]:
        bounds = bounds.max(keepdims=True)
    records = tuple(channel_record(int(m), int(s), int(b), int(p["output_offset"]))
                    for m, s, b in zip(p["multiplier"], p["shift"], bounds, strict=True))
    return {"per_channel": int(p["per_channel"]),
            "bias": tuple(int(b) for b in folded_bias.tolist()), "requant": records}


def requantize_fast(acc, record: Sequence[int]) -> np.ndarray:
    """NumPy model of tc_requantize: the one-step formula for shift < 0, the portable
    multiply_by_quantized_multiplier otherwise (acc: int32 values)."""
    multiplier, code = record[0], record[1]
    acc = np.asarray(acc, dtype=np.int64)
    if code < 0:
        return multiply_by_quantized_multiplier(acc, multiplier, -1 - code)
    rounding = (1 << 30) + (1 << (31 + code))
    q = rounding - (acc < 0) * (1 << 31) + acc * multiplier
    return (q >> 32) >> code


def requantize_narrow(acc, record: Sequence[int]) -> np.ndarray:
    """NumPy model of TC_STORE_S8 before it saturates: the requantized value plus the output
    offset, by a narrow record's 32-bit form (every step in int32, SMMLAR as
    ((ra << 32) + t * m + 2^31) >> 32)."""
    multiplier, _, narrow_round, narrow_shift = record
    t = wrap32(2 * np.asarray(acc, dtype=np.int64))
    h = wrap32(((narrow_round << 32) + t * multiplier + (1 << 31)) >> 32)
    return wrap32(h + (t >> 31)) >> narrow_shift


# --------------------------------------------------------------------------------------------
# tc_conv_gemm_s8
# --------------------------------------------------------------------------------------------


def fold_depth(p: Params) -> Params:
    """A 3-D convolution whose kernel spans one depth slice (k_d = 1, no depth padding, depth
    stride 1) is a 2-D convolution of every slice: the same parameters with the depth folded
    into the batch (the [batch, D, H, W, C] input is [batch * D, H, W, C] in memory).  Other
    layers are returned unchanged."""
    if p["in_d"] == 1 or p["k_d"] != 1 or p["pad_d"] != 0 or p["stride_d"] != 1:
        return p
    return p | {"batch": p["batch"] * p["in_d"], "in_d": 1, "out_d": 1}


def columns_as_rows(p: Params) -> Params:
    """A 2-D layer over a single column (in_w = out_w = k_w = 1, no padding along W: a 1-D
    convolution along H, as in streaming keyword models) is the same layer over a single row,
    H and W swapped: the [batch, H, 1, C] input is [batch, 1, H, C] in memory and the
    [.., k_h, 1, ..] kernel is [.., 1, k_h, ..].  The fast kernels walk rows: a column of H
    pixels would be H rows of one pixel each.  Other layers are returned unchanged."""
    if not (p["in_w"] == p["out_w"] == p["k_w"] == 1 and p["pad_w"] == 0 and p["in_h"] > 1):
        return p
    return _swapped_hw(p)


def _swapped_hw(p: Params) -> Params:
    """The geometry of params p with H and W swapped."""
    return p | {f"{name}_{a}": p[f"{name}_{b}"] for name in ("in", "out", "k", "stride",
                                                            "dilation", "pad")
                for a, b in (("h", "w"), ("w", "h"))}


def conv_gemm_eligible(p: Params) -> bool:
    """2-D or 3-D convolution without groups."""
    return p["groups"] == 1


def conv_gemm(p: Params, w: np.ndarray, bias: np.ndarray | None
              ) -> tuple[Params, np.ndarray, int]:
    """(params, weights, scratch bytes) of tc_conv_gemm_s8 for a layer with tc_conv_s8
    parameters p, weights w [out_c, k_d, k_h, k_w, in_c] and bias [out_c] or None.

    Weights: [out_c, k_padded] int8, each output channel's O(D)HWI weights flattened (the order
    of the gathered window), with the kernel rows widened by zero taps (_widened_k_w) and
    zero-padded to a multiple of 4.  3-D layers and 2-D stems get a frame (_gemm_frame)."""
    out_c, in_c, k_w = p["out_c"], p["in_c"], p["k_w"]
    w = np.asarray(w, np.int8).reshape(out_c, p["k_d"], p["k_h"], k_w, in_c)
    k_w_fast = _widened_k_w(p)
    widened = np.zeros((*w.shape[:3], k_w_fast, in_c), np.int8)
    widened[..., :k_w, :] = w
    flat = widened.reshape(out_c, -1)
    k = flat.shape[1]
    k_padded = round_up(k, 4)
    weights = np.zeros((out_c, k_padded), np.int8)
    weights[:, :k] = flat
    params = {key: p[key] for key in (
        "batch", "in_d", "in_h", "in_w", "in_c", "out_d", "out_h", "out_w", "out_c", "k_d",
        "k_h", "stride_d", "stride_h", "stride_w", "dilation_d", "dilation_h", "dilation_w",
        "pad_d", "pad_h", "pad_w")}
    frame = _gemm_frame(p | {"k_w": k_w_fast})
    params |= {"k_w": k_w_fast, "k_padded": k_padded} | dict(zip(
        ("frame_d", "frame_h", "frame_w"), frame, strict=True)) | {
        "input_zero_point": -p["input_offset"], "output_offset": p["output_offset"],
        "act_min": p["act_min"], "act_max": p["act_max"]} | requant_fields(
        p, fold_bias(bias, flat, p["input_offset"]), flat)
    scratch = (k_padded * 2 * GEMM_PIXELS + (k_padded + 4 if in_c % 4 else 0)
               + (round_up(int(np.prod(frame)) * in_c, 4) + 4 if frame[0] else 0))
    return params, weights, scratch


def conv_gemm_function(params: Params) -> str:
    """tc_conv_gemm_1x1_s8 for the params of a 2-D 1x1 layer of stride 1 without padding on
    channels in whole groups of 4 (each panel straight from 6 consecutive pixels), else
    tc_conv_gemm_s8."""
    pointwise = (params["frame_d"] == 0 and params["k_h"] == params["k_w"] == 1
                 and params["stride_h"] == params["stride_w"] == 1
                 and params["pad_h"] == params["pad_w"] == 0 and params["in_c"] % 4 == 0)
    return "tc_conv_gemm_1x1_s8" if pointwise else "tc_conv_gemm_s8"


def _is_2d(p: Params) -> bool:
    return p["in_d"] == p["out_d"] == p["k_d"] == 1


def _widened_k_w(p: Params) -> int:
    """The kernel width tc_conv_gemm_s8 runs a 2-D layer with.  A kernel row of k_w * in_c
    values that is not a whole number of 4-value groups is copied into a buffer before it is
    expanded; widened with zero taps on the right it is expanded straight from the input.
    That pays where the widening adds no group to the window (3x3 on 1 channel: 9 values in
    3 groups, or 12), or where the row is too short to be copied whole (at most 4 values:
    gathered value by value, about GATHER_COST per pixel) and the extra groups, about 3.5
    instructions per output channel and pixel, cost less.  Longer rows are copied for about
    the cost of expanding them (measured on qemu-m4: vww01's 3x3 stem on 3 channels, 8 output
    channels, 1.118 M instructions widened to 3x4, 0.979 M not).  3-D layers copy their rows
    from the frame: never widened."""
    in_c, k_h, k_w = p["in_c"], p["k_h"], p["k_w"]
    if not in_c % 4 or p["dilation_w"] != 1 or not _is_2d(p):
        return k_w
    wider = next(n for n in range(k_w, k_w + 4) if n * in_c % 4 == 0)
    extra_groups = (round_up(k_h * wider * in_c, 4) - round_up(k_h * k_w * in_c, 4)) // 4
    if extra_groups == 0:
        return wider
    short = k_w * in_c <= 4
    return wider if short and 7 * p["out_c"] * extra_groups <= 2 * GATHER_COST else k_w


def _gemm_frame(p: Params) -> tuple[int, int, int]:
    """(frame_d, frame_h, frame_w) of tc_conv_gemm_s8 for params p (k_w: the kernel width it
    runs, _widened_k_w): the extent of the padded input it copies every image into, so that
    no window needs a bounds check, or (0, 0, 0).  3-D layers take one: their inputs are small
    and most of their windows touch the padding (the EEG stem, 4 x 9 x 9 with padding 1: 70 %);
    2-D layers where _frame_pays, the others read x itself."""
    if _is_2d(p) and not _frame_pays(p):
        return 0, 0, 0
    return _frame_extent(p, "d"), _frame_extent(p, "h"), _frame_extent(p, "w")


def _frame_extent(p: Params, axis: str) -> int:
    """The frame's extent along axis: the padded input, or as far as the windows reach."""
    return max(p[f"pad_{axis}"] + p[f"in_{axis}"],
               (p[f"out_{axis}"] - 1) * p[f"stride_{axis}"]
               + (p[f"k_{axis}"] - 1) * p[f"dilation_{axis}"] + 1)


def _inside(p: Params, axis: str) -> int:
    """How many output positions along axis (h or w) have their whole window inside the
    input."""
    extent = (p[f"k_{axis}"] - 1) * p[f"dilation_{axis}"]
    starts = (o * p[f"stride_{axis}"] - p[f"pad_{axis}"] for o in range(p[f"out_{axis}"]))
    return sum(start >= 0 and start + extent < p[f"in_{axis}"] for start in starts)


def _frame_pays(p: Params) -> bool:
    """A 2-D layer takes a frame where its windows are gathered value by value at the edges
    (in_c not a multiple of 4: the stems), at least FRAME_MIN_EDGE_SHARE of them touch the
    padding and the frame is at most FRAME_MAX_RAM_SHARE of the layer's input and output
    bytes (measured on qemu-m4: kws01's stem, 52% edge windows, frame 8% of its tensors:
    -82k instructions, arena +416 B; ic01's, 12% and 18%: -160k, arena unchanged; vww01's, 4%
    and 61%, would cost 14 KiB of arena for -78k)."""
    if p["in_c"] % 4 == 0:
        return False
    windows = p["out_h"] * p["out_w"]
    edge = 1 - _inside(p, "h") * _inside(p, "w") / windows
    frame = _frame_extent(p, "h") * _frame_extent(p, "w") * p["in_c"]
    tensors = p["batch"] * (p["in_h"] * p["in_w"] * p["in_c"] + windows * p["out_c"])
    return edge >= FRAME_MIN_EDGE_SHARE and frame <= FRAME_MAX_RAM_SHARE * tensors


# --------------------------------------------------------------------------------------------
# tc_depthwise_conv_planar_s8
# --------------------------------------------------------------------------------------------


def depthwise_planar_eligible(p: Params) -> bool:
    """2-D or 3-D depthwise convolution with depth multiplier 1 and no dilation."""
    return (p["out_c"] == p["in_c"]
            and p["dilation_d"] == p["dilation_h"] == p["dilation_w"] == 1)


def _four_planes(p: Params, plane_bytes: int) -> bool:
    """Four channels copied per pass where the channels come in fours and the three extra
    planes are at most DW_SCRATCH_MAX_RAM_SHARE of the layer's input and output bytes
    (measured on qemu-m4: kws01's depthwise layers, 25x5x64, 3 x 378 B against 16,000 B:
    261,160 -> 232,064 instructions each, arena 9,232 -> 9,808 B; vww01's 6x6x128 ones
    160,520 -> 142,040, arena unchanged; its first, 48x48x8, would add 15,000 B to the
    arena's peak)."""
    return (p["in_c"] % 4 == 0
            and 3 * plane_bytes <= DW_SCRATCH_MAX_RAM_SHARE * _tensor_bytes(p))


def _rows_3x3_cost(width: int, stride: int) -> int:
    """tc_planar_rows_3x3_t2's instructions for one output row of `width` (qemu-m4): about 12
    around the row, 22 (stride 1) or 25 per pair of outputs, 14 for an odd last one."""
    return 12 + (22 if stride == 1 else 25) * (width // 2) + 14 * (width % 2)


def _planar_transposes(p: Params) -> bool:
    """A 2-D 3x3 layer runs transposed where its columns, as rows, cost less than its rows,
    with a store call (about PLANAR_STORE_CALL instructions) per row then: kws01's 25x5
    layers, 25 rows of 5 at 70 each against 5 of 25 at 290 + 15."""
    if not (_is_2d(p) and p["k_h"] == p["k_w"] == 3 and max(p["stride_h"], p["stride_w"]) <= 2):
        return False
    rows = p["out_h"] * _rows_3x3_cost(p["out_w"], p["stride_w"])
    columns = p["out_w"] * (_rows_3x3_cost(p["out_h"], p["stride_h"]) + PLANAR_STORE_CALL)
    return columns < rows


def _tensor_bytes(p: Params) -> int:
    """The input and output bytes of a depthwise layer (int8, as many channels out as in)."""
    return p["batch"] * p["in_c"] * sum(
        p[f"{side}_d"] * p[f"{side}_h"] * p[f"{side}_w"] for side in ("in", "out"))


def depthwise_planar(p: Params, w: np.ndarray, bias: np.ndarray | None,
                     planes: int | None = None) -> tuple[Params, np.ndarray, int]:
    """(params, weights, scratch bytes) of tc_depthwise_conv_planar_s8 for a layer with
    tc_depthwise_conv_s8 parameters p and weights w [k_d, k_h, k_w, c] (TFLite's layout with
    the depth in front; 2-D layers: k_d = 1).

    Weights: [c, groups, 4] int8: a channel's kernel rows zero-padded to an even length (the
    pairs the SMLADs read), flattened, zero-padded to whole groups of 4, each group in sxtb16
    order (v0 v2 v1 v3: the kernel expands a word into two int16 pairs in natural order).  The
    plane is the padded input volume of one channel (plane_d = 1 for 2-D layers); `planes` of
    them (1 or 4, None: as _four_planes decides) are filled per pass.  A 2-D 3x3 layer of
    many short rows runs transposed (_planar_transposes): the params and weights describe it
    with H and W swapped, and x_col, x_gap, y_col, y_row walk x and y across."""
    c = p["out_c"]
    wc = np.asarray(w, np.int8).reshape(p["k_d"], p["k_h"], p["k_w"], c).transpose(3, 0, 1, 2)
    steps = {"x_col": c, "x_gap": 0, "y_col": c, "y_row": p["out_w"] * c}
    if _planar_transposes(p):  # the layer with H and W swapped: wc [c, kd, kw, kh]
        steps = {"x_col": p["in_w"] * c, "x_gap": c - p["in_h"] * p["in_w"] * c,
                 "y_col": p["out_w"] * c, "y_row": c}
        p, wc = _swapped_hw(p), wc.transpose(0, 1, 3, 2)
    kd, kh, kw = p["k_d"], p["k_h"], p["k_w"]
    k_pairs = (kw + 1) // 2
    rows = np.zeros((c, kd, kh, 2 * k_pairs), np.int8)
    rows[..., :kw] = wc
    groups = round_up(kd * kh * 2 * k_pairs, 4) // 4
    flat = np.zeros((c, groups * 4), np.int8)
    flat[:, :rows[0].size] = rows.reshape(c, -1)
    weights = flat.reshape(c, groups, 4)[:, :, [0, 2, 1, 3]]
    plane = {f"plane_{a}": _frame_extent(p, a) for a in "dhw"}
    chunk_rows = max(1, min(p["out_h"], PLANAR_CHUNK // p["out_w"]))
    volume = plane["plane_d"] * plane["plane_h"] * plane["plane_w"]
    plane_bytes = round_up(volume + 2, 2) * 2
    if planes is None:
        planes = 4 if _four_planes(p, plane_bytes) else 1
    params = _depthwise_params(p, plane | {"k_pairs": k_pairs, "chunk_rows": chunk_rows,
                                           "planes": planes} | steps, wc, bias)
    scratch = planes * plane_bytes + groups * 8 + chunk_rows * p["out_w"] * 4
    return params, weights, scratch


def _depthwise_params(p: Params, own: Params, wc: np.ndarray, bias: np.ndarray | None
                      ) -> Params:
    """The parameter struct of either fast depthwise kernel: the geometry, c, the kernel's
    `own` fields, then the zero points, the clamp and the requantization records, with the
    bias folded with the input zero point over the weights wc [c, ...]."""
    geometry = {key: p[key] for key in (
        "batch", "in_d", "in_h", "in_w", "out_d", "out_h", "out_w", "k_d", "k_h", "k_w",
        "stride_d", "stride_h", "stride_w", "pad_d", "pad_h", "pad_w")}
    return geometry | {"c": p["out_c"]} | own | {
        "input_zero_point": -p["input_offset"], "output_offset": p["output_offset"],
        "act_min": p["act_min"], "act_max": p["act_max"]} | requant_fields(
            p, fold_bias(bias, wc, p["input_offset"]), wc)


# --------------------------------------------------------------------------------------------
# tc_add_lut_s8
# --------------------------------------------------------------------------------------------


def add_lut_eligible(p: Params) -> bool:
    """Both inputs dense with the output's shape (no broadcasting)."""
    shape = p["shape"][:p["rank"]]
    dims = [i for i, n in enumerate(shape) if n > 1]  # a size-1 dimension's stride is moot
    dense = [int(np.prod(shape[i + 1:], dtype=np.int64)) for i in dims]
    return ([p["a_strides"][i] for i in dims] == dense == [p["b_strides"][i] for i in dims])


def add_lut(p: Params, sign: int) -> tuple[Params, np.ndarray, np.ndarray]:
    """(params, table1, table2) of tc_add_lut_s8 for tc_add_s8 parameters p (sign +1) or
    tc_sub_s8 parameters (sign -1).  table_i[u] is input i's rescaled value s_i for the int8
    value whose byte is u (negated for SUB's second input), as tc_add_s8 computes it, doubled
    where the output record is narrow (the kernel's 32-bit form takes t = 2 (s1 + s2))."""
    values = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int64)
    left = 1 << p["left_shift"]
    t1 = multiply_by_quantized_multiplier((values + p["input1_offset"]) * left,
                                          p["input1_multiplier"], p["input1_shift"])
    t2 = sign * multiply_by_quantized_multiplier((values + p["input2_offset"]) * left,
                                                 p["input2_multiplier"], p["input2_shift"])
    count = int(np.prod(p["shape"][:p["rank"]], dtype=np.int64))
    record = channel_record(p["output_multiplier"], p["output_shift"],
                            int(np.abs(t1).max() + np.abs(t2).max()), p["output_offset"])
    params = {"count": count, "output_offset": p["output_offset"], "act_min": p["act_min"],
              "act_max": p["act_max"], "output": record}
    scale = 2 if record[3] > 0 else 1
    return params, (scale * t1).astype(np.int32), (scale * t2).astype(np.int32)


# --------------------------------------------------------------------------------------------
# tc_fully_connected_rows4_s8
# --------------------------------------------------------------------------------------------


def fully_connected_rows4(p: Params, w: np.ndarray, bias: np.ndarray | None
                          ) -> tuple[Params, np.ndarray, int]:
    """(params, weights, scratch bytes) of tc_fully_connected_rows4_s8 for a layer with
    tc_fully_connected_s8 parameters p, weights w [out_features, in_features] and bias.

    Weights: the rows zero-padded to k_padded (a multiple of 4); blocks of 4 rows interleaved
    by groups of 4 values ([k_padded / 4][4 rows][4]), then the remaining rows as they are."""
    n, k = p["out_features"], p["in_features"]
    rows = np.asarray(w, np.int8).reshape(n, k)
    k_padded = round_up(k, 4)
    padded = np.zeros((n, k_padded), np.int8)
    padded[:, :k] = rows
    full = n // FC_ROWS * FC_ROWS
    blocks = padded[:full].reshape(-1, FC_ROWS, k_padded // 4, 4).transpose(0, 2, 1, 3)
    weights = np.concatenate([blocks.reshape(-1), padded[full:].reshape(-1)])
    params = {"batch": p["batch"], "in_features": k, "out_features": n, "k_padded": k_padded,
              "output_offset": p["output_offset"], "act_min": p["act_min"],
              "act_max": p["act_max"]} | requant_fields(
                  p, fold_bias(bias, rows, p["input_offset"]), rows)
    return params, weights, k_padded * 2


# --------------------------------------------------------------------------------------------
# tc_depthwise_conv_cl_s8
# --------------------------------------------------------------------------------------------

# The instructions of both depthwise kernels on qemu-m4, fitted to the 14 depthwise layers of
# sww01, kws01 and vww01 measured with each kernel (planar within 12%, channels-last within 8%):
# planar per channel, per input value of the channel, per output (the 3x3 path of
# tc_planar_rows_3x3_t2, else per output and per output and tap); channels-last per output,
# per output and tap, per byte of its frame.
PLANAR_PER_CHANNEL = 244
PLANAR_PER_INPUT = 4.2
PLANAR_PER_OUTPUT_3X3 = 21
PLANAR_PER_OUTPUT = 19
PLANAR_PER_OUTPUT_TAP = 3.1
CL_PER_OUTPUT = 13.3
CL_PER_OUTPUT_TAP = 3.25
CL_PER_FRAME_BYTE = 2


def _planar_cost(p: Params, taps: int) -> float:
    inputs = p["batch"] * p["in_d"] * p["in_h"] * p["in_w"]
    outputs = p["batch"] * p["out_d"] * p["out_h"] * p["out_w"]
    path_3x3 = p["k_h"] == 3 and p["k_w"] in (3, 4) and p["stride_w"] <= 2
    per_output = (PLANAR_PER_OUTPUT_3X3 if path_3x3
                  else PLANAR_PER_OUTPUT + PLANAR_PER_OUTPUT_TAP * taps)
    return p["in_c"] * (PLANAR_PER_CHANNEL + PLANAR_PER_INPUT * inputs + per_output * outputs)


def _cl_frame(p: Params) -> dict[str, int]:
    """tc_depthwise_conv_cl_s8's frame_d/h/w: the padded image (_frame_extent per axis) where
    there is padding or the windows reach past the input, else zeros (windows read x)."""
    extent = {a: _frame_extent(p, a) for a in "dhw"}
    framed = any(extent[a] > p[f"in_{a}"] for a in "dhw")
    return {f"frame_{a}": extent[a] if framed else 0 for a in "dhw"}


def _cl_frame_bytes(p: Params) -> int:
    """The bytes of tc_depthwise_conv_cl_s8's frame (one image), 0 without one."""
    return int(np.prod(list(_cl_frame(p).values()))) * p["in_c"]


def depthwise_cl_pays(p: Params) -> bool:
    """tc_depthwise_conv_cl_s8 rather than the planar kernel: channels in fours, a frame (if
    any) of at most DW_SCRATCH_MAX_RAM_SHARE of the layer's tensors, and fewer instructions by
    the cost model above (the planar kernel's set-up per channel not repaid by few outputs:
    sww01's 1-D layers, 1,212,560 -> 1,024,560 instructions; vww01's last two would gain 40k
    but need frames larger than their tensors)."""
    if p["in_c"] % 4 != 0:
        return False
    frame = _cl_frame_bytes(p)  # one image's, as the scratch holds it
    if frame > DW_SCRATCH_MAX_RAM_SHARE * _tensor_bytes(p):
        return False
    taps = p["k_d"] * p["k_h"] * p["k_w"]
    outputs = p["batch"] * p["out_d"] * p["out_h"] * p["out_w"]
    cl = (p["in_c"] * outputs * (CL_PER_OUTPUT + CL_PER_OUTPUT_TAP * taps)
          + CL_PER_FRAME_BYTE * p["batch"] * frame)  # each image copied in
    return cl < _planar_cost(p, taps)


def depthwise_cl(p: Params, w: np.ndarray, bias: np.ndarray | None
                 ) -> tuple[Params, np.ndarray, int]:
    """(params, weights, scratch bytes) of tc_depthwise_conv_cl_s8 for a layer with
    tc_depthwise_conv_s8 parameters p and weights w [k_d, k_h, k_w, c].

    Weights: [c / 4, taps, 4] int8, each group of four channels' taps in (k_d, k_h, k_w) order.
    A layer with padding, or whose windows reach past the input, gets a frame (the padded
    image, _frame_extent per axis)."""
    c = p["out_c"]
    taps = p["k_d"] * p["k_h"] * p["k_w"]
    wc = np.asarray(w, np.int8).reshape(taps, c)
    weights = wc.reshape(taps, c // 4, 4).transpose(1, 0, 2)
    params = _depthwise_params(p, _cl_frame(p), wc.T, bias)
    return params, weights, 4 * taps + round_up(_cl_frame_bytes(p), 4)
