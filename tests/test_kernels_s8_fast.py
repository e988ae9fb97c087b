"""The optimized int8 kernels give the portable kernels' bytes, on random layers of many shapes.

One C program holds every case: its data, the portable kernel's parameters (tinyc.quant.arith)
and the optimized kernel's (tinyc.quant.fast, the very functions the compiler uses).  It runs
both kernels on each case and writes their outputs to a file.  The program is built and run
  - natively with the host gcc (the optimized kernels' portable C paths),
  - on QEMU for qemu-m4 and qemu-m7 (their ARMv7E-M DSP paths), and
  - on QEMU for qemu-m3 (a Cortex-M3: the portable paths on an Arm core without DSP),
and every output must equal the NumPy reference of the portable kernel (which
tests/test_kernels_s8.py holds to TFLite Micro) byte for byte, so optimized == portable == TFLM.

Cases are seeded and cover the edges of each kernel: channel counts that are not multiples of
4 (the gathering path, padded groups), pixel counts that leave a partial 4-pixel panel, odd and
even group counts (the unrolled loop and its tail), strides 1-3, dilation, asymmetric padding
that covers whole windows, batch > 1, per-tensor and per-channel scales, channels whose
requantization shift is >= 0 (the general path), fused clamps, and ADD / SUB in place; 70
seeded random convolution and depthwise layers (random_cases) go beside them.  A failure names
the case and prints the first differing positions.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from helpers import C_WARNINGS, RUNTIME, run_harness_on_host, run_harness_on_qemu
from tinyc.boards import load_board
from tinyc.codegen import c_value
from tinyc.emulator import QEMU_BINARY
from tinyc.quant import arith, fast

SOURCES = ["tc_conv_s8.c", "tc_fully_connected_s8.c", "tc_elementwise_s8.c",
           "tc_conv_fast_s8.c", "tc_fully_connected_fast_s8.c", "tc_elementwise_fast_s8.c"]
HEADERS = ["tc_conv_s8.h", "tc_fully_connected_s8.h", "tc_elementwise_s8.h",
           "tc_conv_fast_s8.h", "tc_fully_connected_fast_s8.h", "tc_elementwise_fast_s8.h"]
QEMU_BOARDS = ["qemu-m4", "qemu-m7", "qemu-m3"]
SEED = 20240605


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One kernel call: function, parameter struct (C field names; `arrays` names the fields
    that point to const arrays, with their C element type), arguments."""

    function: str
    params_type: str
    params: dict
    arrays: dict[str, str]
    args: list  # np.ndarray (const data), "y" (the output), "scratch", or "y_in" (in place)
    scratch: int = 0


@dataclass
class Case:
    name: str
    expected: np.ndarray  # NumPy reference of the portable kernel
    portable: Call
    fast: Call
    in_place: np.ndarray | None = None  # copied into y before the call ("y_in")
    extra: dict = field(default_factory=dict)


def _quant(rng, n_channels: int, per_channel: bool, big_multiplier: bool, accs: str = "small"):
    """Scales and zero points; big_multiplier makes some channels' real multiplier >= 1/2
    (requantization shift >= 0); accs "dim": channel 0's multiplier 2^-20 of the others' (a
    right shift past fast.NARROW_MAX_SHIFT: not narrow; _bias gives it a large bias); "huge":
    every other channel's 2^-22 (_bias gives them a huge one); "small_values": multipliers about
    0.1 to 10 and input zero point 0, for inputs and weights in [-8, 8] (outputs of shifts
    >= 0 in range)."""
    s_in = float(rng.uniform(0.01, 0.1))
    s_w = rng.uniform(0.002, 0.02, n_channels if per_channel else 1)
    s_out = float(rng.uniform(0.05, 0.5))
    if big_multiplier and len(s_w) > 1:  # the first half >= 1/2, the rest <= 1/4
        half = len(s_w) // 2
        s_out = s_in * float(s_w[half:].max()) * 4.0
        s_w[:half] *= 80.0
    elif big_multiplier:
        s_out = s_in * float(s_w[0]) * 0.7
    if accs == "dim":
        s_w[0] /= 1 << 20
    if accs == "huge":  # _bias's huge channels, with outputs in range
        s_w[::2] /= 1 << 22
    if accs == "small_values":  # about half the channels' multipliers >= 1/2, input zp 0
        return s_in, 0, s_w, s_in * float(np.median(s_w)) * 0.7, int(rng.integers(-128, 128))
    return s_in, int(rng.integers(-128, 128)), s_w, s_out, int(rng.integers(-128, 128))


def _act(rng, zp: int, full_range: bool = False) -> tuple[int, int]:
    """The clamp: the full range (always, with full_range: the output stages the records
    choose between), Relu or Relu6-like."""
    kind = rng.integers(3)
    if kind == 0 or full_range:
        return arith.INT8_MIN, arith.INT8_MAX
    if kind == 1:
        return max(arith.INT8_MIN, zp), arith.INT8_MAX  # Relu
    return max(arith.INT8_MIN, zp), min(arith.INT8_MAX, zp + 60)  # Relu6-like


def _bias(rng, n: int, accs: str = "small"):
    """A bias or None.  accs "huge": every other channel's of magnitude about 2^30, so that
    their records are not narrow (their accumulators may reach fast.NARROW_ACC); "dim": channel
    0's about 2^28.5 (its outputs not all 0)."""
    b = rng.integers(-(1 << 18), 1 << 18, n).astype(np.int32)
    if accs == "huge":
        b[::2] = rng.choice([-1, 1], b[::2].size) * rng.integers(1 << 30, (1 << 30) + (1 << 20),
                                                                 b[::2].size)
        return b
    if accs == "dim":
        b[0] = rng.choice([-1, 1]) * rng.integers(1 << 28, 1 << 29)
        return b
    if accs == "small_values":
        return b >> 12
    return None if rng.random() < 0.2 else b


def _conv_geometry(rng, in_hw, k, stride, dilation, pads):
    out = []
    for size, kk, s, d, (pb, pe) in zip(in_hw, k, stride, dilation, pads, strict=True):
        out.append((size + pb + pe - d * (kk - 1) - 1) // s + 1)
    return out


def conv_case(rng, name, batch, in_hw, in_c, out_c, k, stride=(1, 1), dilation=(1, 1),
              pads=((0, 0), (0, 0)), per_channel=True, big_multiplier=False,
              accs="small", full_range=False) -> Case:
    """A 2-D layer (in_hw, k, stride, dilation, pads over H, W) or a 3-D one (over D, H, W);
    the axes left out are a depth of 1 (stride, dilation and kernel 1, no padding)."""
    in_dhw, k, stride, dilation = ((1,) * (3 - len(v)) + tuple(v)
                                   for v in (in_hw, k, stride, dilation))
    pads = ((0, 0),) * (3 - len(pads)) + tuple(pads)
    out_dhw = _conv_geometry(rng, in_dhw, k, stride, dilation, pads)
    assert min(out_dhw) >= 1, name
    s_in, zp_in, s_w, s_out, zp_out = _quant(rng, out_c, per_channel, big_multiplier, accs)
    lo, hi = _act(rng, zp_out, full_range)
    p = {"batch": batch, "in_c": in_c, "out_c": out_c, "groups": 1}
    for i, axis in enumerate("dhw"):
        p |= {f"in_{axis}": in_dhw[i], f"out_{axis}": out_dhw[i], f"k_{axis}": k[i],
              f"stride_{axis}": stride[i], f"dilation_{axis}": dilation[i],
              f"pad_{axis}": pads[i][0]}
    p |= arith.conv_params(s_in, zp_in, s_w, s_out, zp_out, lo, hi)
    v = 9 if accs == "small_values" else 128
    x = rng.integers(-v, v, (batch, *in_dhw, in_c), dtype=np.int8)
    w = rng.integers(1 - v, v, (out_c, *k, in_c), dtype=np.int8)
    b = _bias(rng, out_c, accs)
    expected = arith.conv_s8(p, x, w, b)
    fp, fw, scratch = fast.conv_gemm(fast.columns_as_rows(p), w, b)  # as the compiler does
    portable = Call("tc_conv_s8", "tc_conv_s8_params_t", p,
                    {"multiplier": "int32_t", "shift": "int32_t"}, [x, w, b, "y"])
    optimized = Call(fast.conv_gemm_function(fp), "tc_conv_gemm_s8_params_t", fp,
                     _fast_arrays(), [x, fw, "y", "scratch"], scratch)
    return Case(name, expected, portable, optimized)


def depthwise_case(rng, name, batch, in_hw, c, k, stride=(1, 1), pads=((0, 0), (0, 0)),
                   per_channel=True, big_multiplier=False, accs="small",
                   full_range=False, planes=None, cl=False) -> Case:
    """A 2-D layer (in_hw, k, stride, pads over H, W) or a 3-D one (over D, H, W), as
    conv_case, for tc_depthwise_conv_planar_s8 (copying four channels per pass, planes 4,
    wherever c allows it, unless planes says otherwise) or, cl, tc_depthwise_conv_cl_s8."""
    in_dhw, k, stride = ((1,) * (3 - len(v)) + tuple(v) for v in (in_hw, k, stride))
    pads = ((0, 0),) * (3 - len(pads)) + tuple(pads)
    out_dhw = _conv_geometry(rng, in_dhw, k, stride, (1, 1, 1), pads)
    assert min(out_dhw) >= 1, name
    s_in, zp_in, s_w, s_out, zp_out = _quant(rng, c, per_channel, big_multiplier, accs)
    lo, hi = _act(rng, zp_out, full_range)
    p = {"batch": batch, "in_c": c, "out_c": c, "groups": c}
    for i, axis in enumerate("dhw"):
        p |= {f"in_{axis}": in_dhw[i], f"out_{axis}": out_dhw[i], f"k_{axis}": k[i],
              f"stride_{axis}": stride[i], f"dilation_{axis}": 1, f"pad_{axis}": pads[i][0]}
    p |= arith.conv_params(s_in, zp_in, s_w, s_out, zp_out, lo, hi)
    x = rng.integers(-128, 128, (batch, *in_dhw, c), dtype=np.int8)
    w = rng.integers(-127, 128, (*k, c), dtype=np.int8)
    b = _bias(rng, c, accs)
    expected = arith.depthwise_conv_s8(p, x, w, b)
    assert fast.depthwise_planar_eligible(p), name
    geometry = fast.columns_as_rows(p)
    if cl:
        fp, fw, scratch = fast.depthwise_cl(geometry, w, b)
    else:
        planes = planes or (4 if c % 4 == 0 else 1)
        fp, fw, scratch = fast.depthwise_planar(geometry, w, b, planes)
    function = f"tc_depthwise_conv_{'cl' if cl else 'planar'}_s8"
    portable = Call("tc_depthwise_conv_s8", "tc_conv_s8_params_t", p,
                    {"multiplier": "int32_t", "shift": "int32_t"}, [x, w, b, "y"])
    optimized = Call(function, f"{function}_params_t", fp, _fast_arrays(),
                     [x, fw, "y", "scratch"], scratch)
    return Case(name, expected, portable, optimized)


def fc_case(rng, name, batch, in_features, out_features, per_channel=True,
            big_multiplier=False) -> Case:
    s_in, zp_in, s_w, s_out, zp_out = _quant(rng, out_features, per_channel, big_multiplier)
    lo, hi = _act(rng, zp_out)
    p = {"batch": batch, "in_features": in_features, "out_features": out_features}
    p |= arith.fully_connected_params(s_in, zp_in, s_w, s_out, zp_out, lo, hi)
    x = rng.integers(-128, 128, (batch, in_features), dtype=np.int8)
    w = rng.integers(-127, 128, (out_features, in_features), dtype=np.int8)
    b = _bias(rng, out_features)
    expected = arith.fully_connected_s8(p, x, w, b)
    fp, fw, scratch = fast.fully_connected_rows4(p, w, b)
    portable = Call("tc_fully_connected_s8", "tc_fully_connected_s8_params_t", p,
                    {"multiplier": "int32_t", "shift": "int32_t"}, [x, w, b, "y"])
    optimized = Call("tc_fully_connected_rows4_s8", "tc_fully_connected_rows4_s8_params_t", fp,
                     _fast_arrays(), [x, fw, "y", "scratch"], scratch)
    return Case(name, expected, portable, optimized)


def add_case(rng, name, shape, sub=False, in_place=False, out_scale=None,
             full_range=False) -> Case:
    """out_scale: the output scale as a multiple of the larger input scale (else random):
    64 leaves a record that is not narrow (shift < -22), 1.5 * 2^-19 one with shift >= 0."""
    scales = rng.uniform(0.01, 0.2, 3)
    if out_scale is not None:
        scales[2] = out_scale * max(scales[0], scales[1])
    zps = rng.integers(-128, 128, 3)
    lo, hi = _act(rng, int(zps[2]), full_range)
    p = {"rank": len(shape), "shape": list(shape),
         "a_strides": _dense(shape), "b_strides": _dense(shape)}
    make = arith.sub_params if sub else arith.add_params
    p |= make(scales[0], zps[0], scales[1], zps[1], scales[2], zps[2], lo, hi)
    a = rng.integers(-128, 128, shape, dtype=np.int8)
    b = rng.integers(-128, 128, shape, dtype=np.int8)
    expected = (arith.sub_s8 if sub else arith.add_s8)(p, a, b)
    assert fast.add_lut_eligible(p)
    fp, t1, t2 = fast.add_lut(p, -1 if sub else 1)
    function = "tc_sub_s8" if sub else "tc_add_s8"
    first = "y_in" if in_place else a
    portable = Call(function, "tc_add_s8_params_t", p, {}, [first, b, "y"])
    optimized = Call("tc_add_lut_s8", "tc_add_lut_s8_params_t", fp, {}, [first, b, t1, t2, "y"])
    return Case(name, expected, portable, optimized, in_place=a if in_place else None)


def _dense(shape) -> list[int]:
    return [int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(len(shape))]


def _fast_arrays() -> dict[str, str]:
    return {"bias": "int32_t", "requant": fast.CHANNEL_TYPE}


def all_cases() -> list[Case]:
    rng = np.random.default_rng(SEED)
    cases = []
    # tc_conv_gemm_s8: channels multiple of 4 (direct path) and not (gathering path)
    for in_c in (1, 2, 3, 4, 5, 8, 12, 16, 17, 32):
        for k in ((1, 1), (3, 3)):
            pads = ((1, 1), (1, 1)) if k == (3, 3) else ((0, 0), (0, 0))
            out_c = int(rng.choice([1, 3, 4, 7, 8, 16]))
            cases.append(conv_case(rng, f"conv{k[0]}x{k[1]}_in{in_c}_out{out_c}", 1, (5, 6),
                                   in_c, out_c, k, pads=pads))
    cases += [
        conv_case(rng, "conv3x3_stride2_pads_end", 1, (9, 8), 16, 8, (3, 3), (2, 2),
                  pads=((0, 1), (0, 1))),
        conv_case(rng, "conv10x4_stride2_kws_like", 1, (13, 6), 1, 12, (10, 4), (2, 2),
                  pads=((4, 5), (1, 1))),
        conv_case(rng, "conv3x3_dilation2", 1, (9, 9), 8, 5, (3, 3), (1, 1), (2, 2),
                  pads=((2, 2), (2, 2))),
        conv_case(rng, "conv3x3_dilation2_in3", 1, (7, 9), 3, 4, (3, 3), (1, 2), (2, 1),
                  pads=((1, 2), (0, 1))),
        conv_case(rng, "conv1x1_stride2", 2, (7, 7), 16, 9, (1, 1), (2, 2)),
        conv_case(rng, "conv2x5_stride3_batch2", 2, (8, 11), 4, 6, (2, 5), (3, 3),
                  pads=((1, 0), (2, 2))),
        conv_case(rng, "conv3x3_window_in_padding", 1, (2, 2), 4, 3, (3, 3), (1, 1),
                  pads=((3, 3), (3, 3))),
        conv_case(rng, "conv1x1_per_tensor", 1, (3, 5), 8, 6, (1, 1), per_channel=False),
        conv_case(rng, "conv1x1_batch3_panels_across_images", 3, (3, 3), 12, 5, (1, 1)),
        conv_case(rng, "conv3x3_huge_bias", 1, (4, 5), 8, 6, (3, 3), pads=((1, 1), (1, 1)),
                  accs="huge", full_range=True),
        conv_case(rng, "conv3x3_dim_channel", 1, (4, 5), 8, 6, (3, 3), pads=((1, 1), (1, 1)),
                  accs="dim", full_range=True),
        conv_case(rng, "conv1x1_shift_ge_0_small_values", 1, (4, 6), 8, 12, (1, 1),
                  pads=((0, 0), (1, 1)), accs="small_values", full_range=True),
        conv_case(rng, "conv3x3_shift_ge_0", 1, (4, 5), 8, 6, (3, 3), pads=((1, 1), (1, 1)),
                  big_multiplier=True),
        conv_case(rng, "conv1x1_k_odd_groups_64", 1, (4, 3), 20, 5, (1, 1)),
        # tc_gemm_panel_full_t2 takes four groups per pass: counts 1 to 5 enter at each group
        *(conv_case(rng, f"conv1x1_groups{g}_full", 1, (3, 4), 4 * g, 3, (1, 1),
                    full_range=True) for g in range(1, 6)),
        conv_case(rng, "conv1x1_one_pixel", 1, (1, 1), 64, 10, (1, 1)),
        conv_case(rng, "conv3x3_in3_stride2_vww_like", 1, (12, 12), 3, 8, (3, 3), (2, 2),
                  pads=((0, 1), (0, 1))),
        conv_case(rng, "conv3x3_in3_copied_rows_pads", 2, (6, 7), 3, 5, (3, 3), (1, 1),
                  pads=((2, 1), (2, 2))),
        conv_case(rng, "conv3x3_in1_widened_pads", 2, (6, 7), 1, 5, (3, 3), (1, 1),
                  pads=((2, 1), (2, 2))),
        # rows copied whole from x (6 and 15 values: the word ending at the row's last value),
        # the last window ending at x's last byte
        conv_case(rng, "conv3x3_in2_copied_rows", 1, (10, 10), 2, 6, (3, 3)),
        conv_case(rng, "conv2x3_in5_copied_rows_edges", 1, (12, 11), 5, 7, (2, 3), (1, 1),
                  pads=((0, 1), (0, 0))),
        conv_case(rng, "conv2x5_in1_copied_rows", 2, (5, 9), 1, 3, (2, 5), (1, 2)),
        conv_case(rng, "conv3x2_in2_whole_rows", 1, (7, 6), 2, 6, (3, 2), (1, 2),
                  pads=((1, 1), (1, 1))),
        conv_case(rng, "conv1x4_in1_whole_rows_edges", 1, (3, 9), 1, 3, (1, 4), (1, 1),
                  pads=((0, 0), (3, 3))),
        # a single column (1-D along H) runs as a single row
        conv_case(rng, "conv5x1_column_as_row", 1, (16, 1), 8, 12, (5, 1),
                  pads=((2, 2), (0, 0))),
    ]
    # tc_conv_gemm_s8 in 3-D (windows read from the frame): the EEG stem (one input channel:
    # rows of 3 values copied), rows expanded straight from the frame (in_c % 4 == 0, or rows of
    # whole groups), dilated rows (a run per tap), depth padding, stride and dilation, a
    # 1-deep kernel with depth padding (not folded into the batch), batch 2 (the frame reloaded)
    pad1 = ((1, 1), (1, 1), (1, 1))
    cases += [
        conv_case(rng, "conv3d_3x3x3_in1_out14_eeg_stem", 1, (4, 9, 9), 1, 14, (3, 3, 3),
                  pads=pad1),
        conv_case(rng, "conv3d_3x3x3_in1_out20_eeg_stem", 1, (4, 9, 9), 1, 20, (3, 3, 3),
                  pads=pad1),
        conv_case(rng, "conv3d_3x3x3_in8_out16", 1, (4, 5, 6), 8, 16, (3, 3, 3), pads=pad1),
        conv_case(rng, "conv3d_3x3x3_in3_out16_gathered", 1, (3, 5, 5), 3, 16, (3, 3, 3),
                  pads=pad1),
        conv_case(rng, "conv3d_stride2_dilation_depth_pads_batch2", 2, (7, 6, 5), 4, 5,
                  (3, 2, 3), (2, 1, 2), (2, 1, 1), pads=((2, 1), (0, 1), (1, 1))),
        conv_case(rng, "conv3d_2x1x1_in5_depth_only", 1, (5, 3, 4), 5, 6, (2, 1, 1), (1, 1, 1),
                  pads=((1, 0), (0, 0), (0, 0)), per_channel=False),
        conv_case(rng, "conv3d_window_in_depth_padding", 1, (1, 3, 3), 2, 3, (3, 3, 3),
                  (3, 1, 1), pads=((2, 3), (1, 1), (1, 1))),
        conv_case(rng, "conv3d_in1_shift_ge_0", 1, (3, 4, 5), 1, 6, (3, 3, 3), pads=pad1,
                  big_multiplier=True),
        conv_case(rng, "conv3d_in2_k2_whole_row_groups", 2, (3, 4, 5), 2, 7, (2, 3, 2),
                  pads=((0, 1), (1, 1), (1, 0))),
        conv_case(rng, "conv3d_in3_dilation_w2_per_tap_copies", 1, (3, 5, 7), 3, 4, (2, 2, 3),
                  (1, 1, 2), (1, 2, 2), pads=((1, 0), (1, 1), (2, 2))),
        conv_case(rng, "conv3d_in8_dilation_w2_per_tap_groups", 1, (2, 4, 6), 8, 5, (2, 2, 2),
                  (1, 1, 1), (1, 1, 2), pads=((0, 1), (0, 1), (1, 1))),
        conv_case(rng, "conv3d_1x3x3_depth_padding", 1, (2, 4, 4), 4, 6, (1, 3, 3),
                  pads=((1, 1), (1, 1), (1, 1))),
    ]
    # tc_depthwise_conv_planar_s8 (3x3 strides 1 and 2 take the DSP 3x3 path)
    for c in (1, 3, 4, 8, 13):
        cases.append(depthwise_case(rng, f"dw3x3_c{c}", 1, (6, 5), c, (3, 3),
                                    pads=((1, 1), (1, 1))))
    cases.append(depthwise_case(rng, "dw3x3_c8_one_plane", 1, (6, 5), 8, (3, 3),
                                pads=((1, 1), (1, 1)), planes=1))
    cases.append(depthwise_case(rng, "dw3x3_batch2_four_planes", 2, (5, 7), 12, (3, 3),
                                pads=((1, 1), (1, 1)), full_range=True))
    # tall layers run transposed (kws01's 25x5): x and y walked across, a store per row
    cases += [
        depthwise_case(rng, "dw3x3_tall_transposed_kws_like", 2, (25, 5), 8, (3, 3),
                       pads=((1, 1), (1, 1)), full_range=True),
        depthwise_case(rng, "dw3x3_tall_transposed_one_plane", 1, (17, 3), 5, (3, 3), (2, 1),
                       pads=((1, 0), (0, 1)), full_range=True),
        depthwise_case(rng, "dw3x3_tall_transposed_shift_ge_0", 1, (20, 4), 4, (3, 3),
                       pads=((1, 1), (1, 1)), big_multiplier=True),
        depthwise_case(rng, "dw3x3_tall_transposed_clamp", 1, (30, 2), 4, (3, 3), (2, 2),
                       pads=((1, 1), (1, 1))),
    ]
    cases += [
        depthwise_case(rng, "dw3x3_stride2_pads_end", 1, (9, 8), 6, (3, 3), (2, 2),
                       pads=((0, 1), (0, 1))),
        depthwise_case(rng, "dw3x3_stride2_odd", 2, (7, 7), 5, (3, 3), (2, 2),
                       pads=((1, 1), (1, 1))),
        depthwise_case(rng, "dw3x3_stride2_odd_width", 1, (9, 9), 6, (3, 3), (2, 2),
                       pads=((1, 1), (1, 1))),
        depthwise_case(rng, "dw3x3_one_column", 1, (5, 1), 3, (3, 3), pads=((1, 1), (1, 1))),
        depthwise_case(rng, "dw3x3_stride2_one_column", 1, (6, 2), 5, (3, 3), (2, 2),
                       pads=((1, 1), (1, 1))),
        depthwise_case(rng, "dw3x3_stride3", 1, (10, 10), 4, (3, 3), (3, 3),
                       pads=((1, 1), (1, 1))),
        depthwise_case(rng, "dw3x3_stride_2x1", 1, (8, 6), 4, (3, 3), (2, 1),
                       pads=((1, 1), (1, 1))),
        depthwise_case(rng, "dw3x3_wide_rows", 1, (4, 70), 2, (3, 3), pads=((1, 1), (1, 1))),
        depthwise_case(rng, "dw3x3_per_tensor", 1, (5, 5), 7, (3, 3), pads=((1, 1), (1, 1)),
                       per_channel=False),
        depthwise_case(rng, "dw3x3_shift_ge_0", 1, (5, 6), 6, (3, 3), pads=((1, 1), (1, 1)),
                       big_multiplier=True),
        depthwise_case(rng, "dw3x3_huge_bias", 1, (5, 6), 6, (3, 3), pads=((1, 1), (1, 1)),
                       accs="huge", full_range=True),
        depthwise_case(rng, "dw3x3_dim_channel", 1, (5, 7), 6, (3, 3), pads=((1, 1), (1, 1)),
                       accs="dim", full_range=True),
        depthwise_case(rng, "dw5x5", 1, (7, 8), 5, (5, 5), pads=((2, 2), (2, 2))),
        depthwise_case(rng, "dw2x2_even_width", 1, (5, 5), 4, (2, 2), pads=((0, 1), (0, 1))),
        # single columns (1-D along H, streaming keyword models) run as single rows
        depthwise_case(rng, "dw3x1_sww_like", 1, (12, 1), 8, (3, 1)),
        depthwise_case(rng, "dw5x1_sww_column_as_row", 2, (28, 1), 9, (5, 1)),
        depthwise_case(rng, "dw3x1_column_stride2_pads", 1, (13, 1), 6, (3, 1), (2, 1),
                       pads=((1, 1), (0, 0))),
        depthwise_case(rng, "dw10x1", 1, (20, 1), 4, (10, 1)),
        depthwise_case(rng, "dw1x7_rows_of_four_and_rest", 1, (3, 17), 5, (1, 7),
                       pads=((0, 0), (3, 3))),
        depthwise_case(rng, "dw1x4", 1, (3, 9), 3, (1, 4), pads=((0, 0), (2, 1))),
        depthwise_case(rng, "dw3x3_window_in_padding", 1, (1, 2), 3, (3, 3),
                       pads=((2, 2), (3, 3))),
    ]
    # tc_depthwise_conv_planar_s8 in 3-D: the EEG blocks (3x3x3, padding 1 on every axis;
    # strides 1 and 2), batch 2 (the volume reloaded), asymmetric padding whose windows lie
    # partly or wholly in the depth padding, a depth stride alone, per-tensor scales, shifts
    # >= 0 (the general path), and kernels the 3x3 path does not take
    cases += [
        depthwise_case(rng, "dw3d_3x3x3_c42_eeg_stride1", 1, (4, 9, 9), 42, (3, 3, 3),
                       pads=pad1),
        depthwise_case(rng, "dw3d_3x3x3_c42_eeg_stride2", 1, (4, 9, 9), 42, (3, 3, 3),
                       (2, 2, 2), pads=pad1),
        depthwise_case(rng, "dw3d_3x3x3_c84_eeg_2x5x5", 1, (2, 5, 5), 84, (3, 3, 3),
                       pads=pad1),
        depthwise_case(rng, "dw3d_3x3x3_batch2_odd_c", 2, (3, 4, 5), 5, (3, 3, 3), pads=pad1),
        depthwise_case(rng, "dw3d_stride_2x1x2_pads_uneven", 2, (5, 6, 7), 3, (3, 3, 3),
                       (2, 1, 2), pads=((0, 1), (2, 1), (1, 0))),
        depthwise_case(rng, "dw3d_window_in_depth_padding", 1, (1, 3, 4), 4, (3, 3, 3),
                       (1, 1, 1), pads=((2, 2), (1, 1), (1, 1))),
        depthwise_case(rng, "dw3d_stride_d3_only", 1, (7, 3, 3), 6, (2, 3, 3), (3, 1, 1),
                       pads=((0, 1), (1, 1), (1, 1)), per_channel=False),
        depthwise_case(rng, "dw3d_shift_ge_0", 1, (3, 4, 4), 6, (3, 3, 3), pads=pad1,
                       big_multiplier=True),
        depthwise_case(rng, "dw3d_2x5x4_general", 1, (3, 6, 7), 3, (2, 5, 4), (1, 2, 1),
                       pads=((1, 0), (2, 2), (1, 2))),
        depthwise_case(rng, "dw3d_3x3x3_stride_w3", 1, (3, 5, 10), 2, (3, 3, 3), (1, 1, 3),
                       pads=pad1),
    ]
    # tc_depthwise_conv_cl_s8: the assembly pixel (every record narrow and per channel, the
    # full int8 range) from x (no padding: sww01's 1-D layers, one output pixel of 15 taps) and
    # from the frame (padding, windows past the input, 3-D, batch 2), and the C paths: a clamp,
    # per-tensor scales, records that are not narrow (shift >= 0, huge accumulators)
    full = {"full_range": True, "cl": True}
    cases += [
        depthwise_case(rng, "dwcl_1d_valid_sww", 1, (28, 1), 8, (5, 1), **full),
        depthwise_case(rng, "dwcl_1d_one_pixel_15_taps", 1, (15, 1), 16, (15, 1), **full),
        depthwise_case(rng, "dwcl_1d_stride2_valid", 2, (13, 1), 4, (3, 1), (2, 1), **full),
        depthwise_case(rng, "dwcl_3x3_pad1_framed", 1, (6, 5), 8, (3, 3),
                       pads=((1, 1), (1, 1)), **full),
        depthwise_case(rng, "dwcl_3x3_stride2_pads_end", 2, (9, 8), 12, (3, 3), (2, 2),
                       pads=((0, 1), (0, 1)), **full),
        depthwise_case(rng, "dwcl_3d_3x3x3_pad1", 2, (3, 4, 5), 8, (3, 3, 3), pads=pad1,
                       **full),
        depthwise_case(rng, "dwcl_3x3_valid_clamp", 1, (5, 6), 8, (3, 3), cl=True),
        depthwise_case(rng, "dwcl_per_tensor", 1, (5, 6), 4, (3, 3), pads=((1, 1), (1, 1)),
                       per_channel=False, **full),
        depthwise_case(rng, "dwcl_shift_ge_0", 1, (4, 4), 8, (3, 3), pads=((1, 1), (1, 1)),
                       big_multiplier=True, **full),
        depthwise_case(rng, "dwcl_huge_accs", 1, (4, 5), 8, (3, 3), accs="huge", **full),
    ]
    # tc_fully_connected_rows4_s8
    for in_f, out_f in ((1, 1), (3, 5), (4, 4), (5, 8), (8, 3), (13, 9), (64, 10), (65, 12),
                        (128, 128), (640, 16)):
        cases.append(fc_case(rng, f"fc_{in_f}x{out_f}", 1, in_f, out_f))
    cases += [
        fc_case(rng, "fc_batch3", 3, 20, 7),
        fc_case(rng, "fc_per_tensor", 2, 36, 11, per_channel=False),
        fc_case(rng, "fc_shift_ge_0", 1, 24, 9, big_multiplier=True),
    ]
    # tc_add_lut_s8
    cases += [
        add_case(rng, "add_1", (1,)),
        add_case(rng, "add_4d", (1, 5, 3, 16)),
        add_case(rng, "add_odd", (7, 11)),
        add_case(rng, "sub_odd", (3, 37), sub=True),
        add_case(rng, "add_in_place", (2, 9, 8), in_place=True),
        add_case(rng, "sub_in_place", (300,), sub=True, in_place=True),
        add_case(rng, "add_narrow_full_odd", (3, 5, 7), full_range=True),
        add_case(rng, "add_wide_record", (5, 13), out_scale=64.0),
        add_case(rng, "sub_wide_record_full", (2, 9), sub=True, out_scale=64.0,
                 full_range=True),
        add_case(rng, "add_shift_ge_0", (4, 4), out_scale=1.5 * 2.0 ** -19),
    ]
    return cases + random_cases(rng, convs=40, depthwise=30)


def _random_geometry(rng, dims: int, kernels, strides, dilations, size_max: int):
    """(in, k, stride, dilation, pads) of a random layer with at least one output position
    and no window in the padding alone, per axis of `dims`."""
    while True:
        k = tuple(int(rng.choice(kernels)) for _ in range(dims))
        stride = tuple(int(rng.choice(strides)) for _ in range(dims))
        dilation = tuple(int(rng.choice(dilations)) for _ in range(dims))
        pads = tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(dims))
        size = tuple(int(rng.integers(1, size_max)) for _ in range(dims))
        reach = [d * (kk - 1) + 1 for kk, d in zip(k, dilation, strict=True)]
        if all(a < r and s + a + b >= r for s, r, (a, b)
               in zip(size, reach, pads, strict=True)):
            return size, k, stride, dilation, pads


def random_cases(rng, convs: int, depthwise: int) -> list[Case]:
    """Seeded random layers beside the chosen ones: tc_conv_gemm_s8 (2-D and 3-D, 1-12 input
    channels, kernels 1-5, strides 1-3, dilation 1-2: windows read as runs inside the image and
    checked at its edges, framed or not) and the planar and channels-last depthwise kernels
    (images up to 39 wide: several passes of rows; tall ones transposed)."""
    cases = []
    for i in range(convs):
        dims = 3 if rng.random() < 0.3 else 2
        size, k, stride, dilation, pads = _random_geometry(
            rng, dims, (1, 2, 3, 4, 5), (1, 2, 3), (1, 1, 1, 2), 14 if dims == 2 else 7)
        cases.append(conv_case(
            rng, f"random_conv_{i}", int(rng.integers(1, 3)), size,
            int(rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 12])), int(rng.integers(1, 20)), k,
            stride, dilation, pads, per_channel=bool(rng.integers(0, 2)),
            full_range=bool(rng.integers(0, 2))))
    for i in range(depthwise):
        dims = 3 if rng.random() < 0.25 else 2
        size, k, stride, _, pads = _random_geometry(
            rng, dims, (1, 2, 3, 3, 3, 5), (1, 1, 2, 3), (1,), 40 if dims == 2 else 8)
        c = int(rng.choice([1, 2, 3, 4, 5, 8, 12, 16]))
        cl = c % 4 == 0 and rng.random() < 0.3
        planes = None if cl else (4 if c % 4 == 0 and rng.random() < 0.7 else 1)
        cases.append(depthwise_case(
            rng, f"random_dw_{i}", int(rng.integers(1, 3)), size, c, k, stride, pads,
            per_channel=bool(rng.integers(0, 2)), full_range=bool(rng.integers(0, 2)),
            planes=planes, cl=cl))
    return cases


# --------------------------------------------------------------------------------------------
# The C program
# --------------------------------------------------------------------------------------------


def _c_array(name: str, ctype: str, values, align: bool = False) -> str:
    attr = " __attribute__((aligned(4)))" if align else ""
    body = c_value([c_value(v) for v in values]) if len(values) else "{0}"
    return f"static const {ctype} {name}[]{attr} = {body};\n"


C_TYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t",
           np.dtype(np.int32): "int32_t"}


def _emit_call(call: Call, prefix: str, decls: list[str]) -> str:
    fields = []
    for key, value in call.params.items():
        if key in call.arrays:
            array = f"{prefix}_{key}"
            decls.append(_c_array(array, call.arrays[key], list(value)))
            fields.append(f".{key} = {array}")
        else:
            fields.append(f".{key} = {c_value(value)}")
    decls.append(f"static const {call.params_type} {prefix}_p = {{{', '.join(fields)}}};\n")
    args = []
    for i, arg in enumerate(call.args):
        if isinstance(arg, str):
            args.append({"y": "(int8_t *)out", "y_in": "(int8_t *)out",
                         "scratch": "scratch"}[arg])
        elif arg is None:
            args.append("NULL")
        else:
            array = f"{prefix}_a{i}"
            data = np.ascontiguousarray(arg)
            decls.append(_c_array(array, C_TYPES[data.dtype], data.reshape(-1).tolist(),
                                  align=True))
            args.append(array)
    return f"{call.function}(&{prefix}_p, {', '.join(args)});"


def harness_source(cases: list[Case]) -> str:
    decls: list[str] = []
    body: list[str] = []
    out_size = max(c.expected.size for c in cases)
    scratch_size = max(c.fast.scratch for c in cases) + 16
    for i, case in enumerate(cases):
        n = case.expected.size
        for tag, call in (("portable", case.portable), ("fast", case.fast)):
            prefix = f"c{i}_{tag}"
            invocation = _emit_call(call, prefix, decls)
            body.append(f"    /* {case.name}: {tag} */")
            body.append("    memset(out, 0x5A, sizeof out);")
            body.append("    memset(scratch, 0xA5, sizeof scratch);")
            if case.in_place is not None:
                src = f"{prefix}_inplace"
                decls.append(_c_array(src, "int8_t", case.in_place.reshape(-1).tolist()))
                body.append(f"    memcpy(out, {src}, {n});")
            body.append(f"    {invocation}")
            body.append(f"    ok = ok && fwrite(out, 1, {n}, f) == {n};")
    for i, case in enumerate(cases):  # the kernels' own account of their scratch memory
        if case.fast.scratch:  # one size function per parameter struct
            size_fn = case.fast.params_type.removesuffix("_params_t") + "_scratch_size"
            body.append(f"    size = (uint32_t){size_fn}(&c{i}_fast_p);")
            body.append("    ok = ok && fwrite(&size, sizeof size, 1, f) == 1;")
    return (
        "#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n"
        + "".join(f'#include "{h}"\n' for h in HEADERS)
        + "#ifdef TC_TEST_HOST\nstatic void board_init(void) {}\n#else\n"
        "#include \"tinyc_board.h\"\n#endif\n\n"
        + "".join(decls)
        + f"\nstatic uint8_t out[{out_size}] __attribute__((aligned(16)));\n"
        f"static uint8_t scratch[{scratch_size}] __attribute__((aligned(16)));\n\n"
        "int main(void)\n{\n    board_init();\n    FILE *f = fopen(\"out.bin\", \"wb\");\n"
        "    int ok = f != NULL;\n    uint32_t size;\n    if (!ok) {\n        return 2;\n    }\n"
        + "\n".join(body)
        + "\n    fclose(f);\n    return ok ? 0 : 1;\n}\n"
    )


def check_outputs(raw: bytes, cases: list[Case], where: str) -> None:
    pos = 0
    failures = []
    for case in cases:
        n = case.expected.size
        want = case.expected.reshape(-1)
        for tag in ("portable", "fast"):
            got = np.frombuffer(raw[pos:pos + n], dtype=np.int8)
            pos += n
            bad = np.flatnonzero(got != want)
            if bad.size:
                first = ", ".join(f"[{j}] got {got[j]} expected {want[j]}" for j in bad[:4])
                failures.append(f"{case.name} ({tag}) on {where}: {bad.size} of {n} bytes "
                                f"differ: {first}")
    sizes = np.frombuffer(raw[pos:], dtype="<u4").tolist()
    planned = [case.fast.scratch for case in cases if case.fast.scratch]
    assert sizes == planned, f"{where}: C scratch sizes {sizes}, compiler's {planned}"
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return all_cases()


@pytest.fixture(scope="module")
def harness(cases, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fast_s8") / "harness.c"
    path.write_text(harness_source(cases))
    return path


@pytest.mark.parametrize("stem, framed", [
    # (in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride, pad_h, pad_w)
    ((49, 10, 1, 25, 5, 64, 10, 4, 2, 4, 1), True),  # kws01: 52% of its windows at an edge
    ((32, 32, 3, 32, 32, 16, 3, 3, 1, 1, 1), True),  # ic01: 12%, frame 18% of its tensors
    ((96, 96, 3, 48, 48, 8, 3, 3, 2, 0, 0), False),  # vww01: 4%, frame 61% of its tensors
    ((12, 12, 4, 12, 12, 8, 3, 3, 1, 1, 1), False),  # in_c % 4 == 0: taps straight from x
])
def test_2d_stems_take_a_frame_where_it_pays(stem, framed) -> None:
    in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride, pad_h, pad_w = stem
    p = {"batch": 1, "in_c": in_c, "out_c": out_c, "groups": 1, "in_d": 1, "out_d": 1,
         "k_d": 1, "stride_d": 1, "dilation_d": 1, "pad_d": 0, "in_h": in_h, "in_w": in_w,
         "out_h": out_h, "out_w": out_w, "k_h": k_h, "k_w": k_w, "stride_h": stride,
         "stride_w": stride, "dilation_h": 1, "dilation_w": 1, "pad_h": pad_h, "pad_w": pad_w}
    p |= arith.conv_params(0.1, 0, np.full(out_c, 0.01), 0.2, 0, -128, 127)
    params, _, _ = fast.conv_gemm(p, np.zeros((out_c, k_h, k_w, in_c), np.int8), None)
    assert (params["frame_d"] > 0) == framed


def _depthwise_3x3(in_h: int, in_w: int, c: int, stride: int, pad_w: int = 1) -> dict:
    """The params of a 2-D 3x3 depthwise layer with padding 1 on top (pad_w on the left) and
    as many outputs as a padding of 1 on both sides gives."""
    out_h, out_w = (in_h - 1) // stride + 1, (in_w - 1) // stride + 1
    p = {"batch": 1, "in_c": c, "out_c": c, "groups": c, "in_d": 1, "out_d": 1, "k_d": 1,
         "stride_d": 1, "dilation_d": 1, "pad_d": 0, "in_h": in_h, "in_w": in_w,
         "out_h": out_h, "out_w": out_w, "k_h": 3, "k_w": 3, "stride_h": stride,
         "stride_w": stride, "dilation_h": 1, "dilation_w": 1, "pad_h": 1, "pad_w": pad_w}
    return p | arith.conv_params(0.1, 0, np.full(c, 0.01), 0.2, 0, -128, 127)


@pytest.mark.parametrize("layer, planes", [
    # (in_h, in_w, c, stride): 3x3 depthwise, padding 1
    ((25, 5, 64, 1), 4),  # kws01: 3 x 378 B of planes against 16,000 B of tensors
    ((6, 6, 128, 1), 4),  # vww01's late layers
    ((48, 48, 8, 1), 1),  # vww01's first: 15,000 B against 36,864 B
    ((25, 5, 42, 1), 1),  # channels not in fours
])
def test_depthwise_copies_four_channels_where_it_pays(layer, planes) -> None:
    in_h, in_w, c, stride = layer
    p = _depthwise_3x3(in_h, in_w, c, stride)
    params, _, scratch = fast.depthwise_planar(p, np.zeros((3, 3, c), np.int8), None)
    plane = fast.round_up((in_h + 2) * (in_w + 2) + 2, 2) * 2  # int16, two of slack
    assert params["planes"] == planes
    # + weights, + accumulators (the rows as run: kws01's transposed)
    assert scratch == planes * plane + 3 * 8 + params["chunk_rows"] * params["out_w"] * 4


@pytest.mark.parametrize("layer, transposed", [
    # (in_h, in_w, stride): 3x3 depthwise on 8 channels, padding 1
    ((25, 5, 1), True),  # kws01: 25 rows of 5 outputs cost more than 5 rows of 25
    ((5, 25, 1), False),
    ((6, 6, 1), False),  # vww01's square layers
    ((48, 48, 2), False),
    ((40, 2, 2), True),
])
def test_tall_depthwise_layers_run_transposed(layer, transposed) -> None:
    in_h, in_w, stride = layer
    p = _depthwise_3x3(in_h, in_w, 8, stride, pad_w=0)
    out_h, out_w = p["out_h"], p["out_w"]
    w = np.arange(72, dtype=np.int8).reshape(3, 3, 8)  # [k_h, k_w, c]
    params, weights, _ = fast.depthwise_planar(p, w, None)
    steps = (params["x_col"], params["x_gap"], params["y_col"], params["y_row"])
    if not transposed:
        assert (params["in_h"], params["pad_h"], params["k_pairs"]) == (in_h, 1, 2)
        assert steps == (8, 0, 8, out_w * 8)
        return
    assert (params["in_h"], params["in_w"], params["out_h"], params["out_w"]) == (
        in_w, in_h, out_w, out_h)
    assert (params["pad_h"], params["pad_w"]) == (0, 1)
    assert steps == (in_w * 8, 8 - in_h * in_w * 8, out_w * 8, 8)  # down x's columns
    # channel 1's kernel transposed: its view's row 0 is the layer's column 0
    rows = weights[1].reshape(-1, 4)[:, [0, 2, 1, 3]].reshape(-1)  # sxtb16 order undone
    assert list(rows[:4]) == [w[0, 0, 1], w[1, 0, 1], w[2, 0, 1], 0]


@pytest.mark.parametrize("layer, cl", [
    # (batch, in_h, in_w, c, k_h, k_w, stride, pad_h, pad_w): the cost model and the frame's RAM
    ((1, 1, 28, 128, 1, 5, 1, 0, 0), True),  # sww01: 24 outputs per channel, no padding
    ((1, 1, 15, 128, 1, 15, 1, 0, 0), True),  # sww01's last: one output per channel
    ((1, 25, 5, 64, 3, 3, 1, 1, 1), False),  # kws01: 125 outputs per channel repay the planes
    ((1, 3, 3, 256, 3, 3, 1, 1, 1), False),  # vww01's last: cheaper, but a 6,400 B frame
    ((1, 1, 28, 42, 1, 5, 1, 0, 0), False),  # channels not in fours
    # a 4,096 B frame (one image's, whatever the batch) against 5,376 B, a quarter of the
    # tensors of three images; one image's tensors alone would be too few
    ((3, 1, 28, 128, 1, 5, 1, 0, 2), True),
    ((1, 1, 28, 128, 1, 5, 1, 0, 2), False),
])
def test_depthwise_kernel_choice(layer, cl) -> None:
    batch, in_h, in_w, c, k_h, k_w, stride, pad_h, pad_w = layer
    out_h = (in_h + 2 * pad_h - k_h) // stride + 1
    out_w = (in_w + 2 * pad_w - k_w) // stride + 1
    p = {"batch": batch, "in_c": c, "out_c": c, "groups": c, "in_d": 1, "out_d": 1, "k_d": 1,
         "stride_d": 1, "pad_d": 0, "in_h": in_h, "in_w": in_w, "out_h": out_h, "out_w": out_w,
         "k_h": k_h, "k_w": k_w, "stride_h": stride, "stride_w": stride, "pad_h": pad_h,
         "pad_w": pad_w, "dilation_d": 1, "dilation_h": 1, "dilation_w": 1}
    assert fast.depthwise_cl_pays(p) == cl


def test_cases_are_varied(cases) -> None:
    names = [c.name for c in cases]
    assert len(set(names)) == len(names)
    records = [r for c in cases if "requant" in c.fast.params for r in c.fast.params["requant"]]
    assert min(r[1] for r in records) < 0 <= max(r[1] for r in records)  # both requantizations
    assert {r[3] > 0 for r in records if r[1] >= 0} == {False, True}  # narrow or not
    full = [{"narrow" if r[3] else "wide" if r[1] >= 0 else "left" for r in f["requant"]}
            for c in cases if (f := c.fast.params).get("act_min") == -128
            and f["act_max"] == 127 and c.fast.function == "tc_conv_gemm_s8"]
    assert {"narrow", "wide"} in full and {"narrow", "left"} in full  # the panels' mixed path
    panels = [c for c in cases if c.fast.function == "tc_conv_gemm_s8"]
    assert any(c.expected.size // c.fast.params["out_c"] % fast.GEMM_PIXELS for c in panels)
    pointwise = [c for c in cases if c.fast.function == "tc_conv_gemm_1x1_s8"]
    assert any(c.expected.size // c.fast.params["out_c"] % fast.GEMM_PIXELS for c in pointwise)
    assert any(c.fast.params["batch"] > 1 for c in pointwise)  # panels across images
    # tc_gemm_panel_full_t2 (every channel shift < 0, clamp [-128, 127]): per-channel and
    # per-tensor records, odd and even numbers of groups, a single group
    full = [c.fast.params for c in panels + pointwise
            if (c.fast.params["act_min"], c.fast.params["act_max"]) == (-128, 127)
            and min(r[3] for r in c.fast.params["requant"]) >= 0]
    assert {f["per_channel"] for f in full} == {0, 1}
    assert {f["k_padded"] // 4 % 2 for f in full} == {0, 1}
    assert any(f["k_padded"] == 4 for f in full)
    in_c = [(c.fast.params["in_c"], c.fast.params["k_w"], c.portable.params["k_w"])
            for c in panels if not c.fast.params["frame_d"]]  # read from x
    assert any(c % 4 == 0 for c, _, _ in in_c)  # taps straight from x
    assert any(c % 4 and k * c % 4 == 0 for c, k, k0 in in_c if k == k0)  # whole rows
    assert any(k > k0 for _, k, k0 in in_c)  # widened kernels
    assert any(k * c % 4 for c, k, _ in in_c)  # gathered windows (at the edges)
    copied = {(k * c + 3) // 4 for c, k, _ in in_c if k * c % 4 and k * c > 4}
    assert copied >= {2, 3, 4}  # rows copied whole from x, as 2, 3 and 4 words
    framed = [c.fast.params for c in panels if c.fast.params["frame_d"]]
    runs = [(d["in_c"] * (d["k_w"] if d["dilation_w"] == 1 else 1), d["dilation_w"] > 1)
            for d in framed]
    assert {(run % 4 == 0, dilated) for run, dilated in runs} == {
        (True, False), (True, True), (False, False), (False, True)}  # expanded / copied runs
    assert any(d["k_d"] == 1 for d in framed)
    flat = [d["frame_d"] > 0 for c in panels
            if (d := c.fast.params)["in_d"] == d["out_d"] == d["k_d"] == 1]
    assert set(flat) == {False, True}  # 2-D layers read x, stems with wide padding a frame
    planar = [c.fast.params for c in cases if c.fast.function == "tc_depthwise_conv_planar_s8"]
    volumes = [(d["k_d"] > 1, d["k_h"] == 3 and d["k_pairs"] == 2 and d["stride_w"] <= 2)
               for d in planar]
    assert set(volumes) == {(False, False), (False, True), (True, False), (True, True)}
    assert {d["chunk_rows"] < d["out_h"] for d in planar} == {False, True}  # passes of rows
    transposed = [d for d in planar if d["x_gap"] < 0]
    assert {d["planes"] for d in transposed} == {1, 4}  # rows run down the layer's columns
    assert {d["stride_w"] for d in transposed} == {1, 2}


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not found")
def test_host_portable_paths(harness, cases, tmp_path) -> None:
    check_outputs(run_harness_on_host(harness, SOURCES, tmp_path), cases, "host")


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which(QEMU_BINARY)
                    is None, reason="arm-none-eabi-gcc or QEMU not installed (make setup)")
@pytest.mark.parametrize("board_id", QEMU_BOARDS)
def test_on_qemu(board_id, harness, cases, tmp_path) -> None:
    check_outputs(run_harness_on_qemu(board_id, harness, SOURCES, tmp_path), cases, board_id)


def test_one_step_requantization_matches_two_roundings() -> None:
    """fast.requantize_fast (the NumPy model of tc_requantize) equals
    multiply_by_quantized_multiplier for accumulators over the whole int32 range, the edges
    and rounding ties included, for every shift from -31 to 30."""
    rng = np.random.default_rng(SEED)
    edges = np.array([arith.INT32_MIN, arith.INT32_MIN + 1, -(1 << 30), -1, 0, 1, 1 << 30,
                      arith.INT32_MAX - 1, arith.INT32_MAX], dtype=np.int64)
    for shift in range(-31, 31):
        for multiplier in (1 << 30, (1 << 30) + 1, int(rng.integers(1 << 30, 1 << 31)),
                           (1 << 31) - 1):
            acc = np.concatenate([edges, rng.integers(arith.INT32_MIN, arith.INT32_MAX,
                                                      2000, endpoint=True)])
            if shift < 0:  # values landing on ties of both rounding steps
                r = -shift
                ties = (rng.integers(-(1 << 20), 1 << 20, 200) << r) + (1 << (r - 1))
                acc = np.concatenate([acc, arith.wrap32(ties)])
            record = fast.channel_record(multiplier, shift, 1 << 31, 0)
            want = arith.multiply_by_quantized_multiplier(acc, multiplier, shift)
            got = fast.requantize_fast(acc, record)
            bad = np.flatnonzero(got != want)
            assert bad.size == 0, (shift, multiplier, acc[bad[:3]], got[bad[:3]],
                                   want[bad[:3]])


def test_narrow_requantization_matches_two_roundings() -> None:
    """fast.requantize_narrow (the NumPy model of TC_STORE_S8's 32-bit form, and of
    tc_requantize_narrow) equals multiply_by_quantized_multiplier plus the output offset for
    accumulators of magnitude below NARROW_ACC, the edges and rounding ties included, for every
    right shift up to NARROW_MAX_SHIFT and the offsets' extremes.  Larger accumulators, larger
    right shifts or shifts >= 0 are not narrow."""
    rng = np.random.default_rng(SEED)
    limit = fast.NARROW_ACC - 1
    edges = np.array([-limit, -limit + 1, -(1 << 29), -1, 0, 1, 1 << 29, limit - 1, limit],
                     dtype=np.int64)
    for r in range(1, fast.NARROW_MAX_SHIFT + 1):
        for multiplier in (1 << 30, (1 << 30) + 1, int(rng.integers(1 << 30, 1 << 31)),
                           (1 << 31) - 1):
            ties = (rng.integers(-(1 << 20), 1 << 20, 200) << r) + (1 << (r - 1))
            acc = np.concatenate([edges, rng.integers(-limit, limit, 2000, endpoint=True),
                                  ties[np.abs(ties) <= limit]])
            want = arith.multiply_by_quantized_multiplier(acc, multiplier, -r)
            for offset in (-128, -1, 0, 127):
                record = fast.channel_record(multiplier, -r, limit, offset)
                assert record[3] == r  # narrow
                got = fast.requantize_narrow(acc, record)
                bad = np.flatnonzero(got != want + offset)
                assert bad.size == 0, (r, multiplier, offset, acc[bad[:3]], got[bad[:3]])
    assert fast.channel_record(1 << 30, -3, fast.NARROW_ACC, 0)[3] == 0
    assert fast.channel_record(1 << 30, -fast.NARROW_MAX_SHIFT - 1, limit, 0)[3] == 0
    assert fast.channel_record(1 << 30, 2, 1, 0)[3] == 0


def test_channels_of_tiny_scale_requantize_to_zero() -> None:
    """A channel whose accumulators (|acc| <= bound) never reach half an output step gets the
    record of multiplier 0: both NumPy models then equal multiply_by_quantized_multiplier,
    which is 0 there, up to the largest such bound; one more and the record is ordinary."""
    rng = np.random.default_rng(SEED)
    for r in (1, 5, 22, 23, 26, 31):
        for multiplier in (1 << 30, int(rng.integers(1 << 30, 1 << 31)), (1 << 31) - 1):
            bound = ((1 << (30 + r)) - (1 << 30) - 1) // multiplier
            if bound >= fast.NARROW_ACC:
                continue
            record = fast.channel_record(multiplier, -r, bound, 5)
            assert record == (0, 0, 11, 1)
            edges = np.clip([-bound, -bound + 1, -1, 0, 1, bound - 1, bound], -bound, bound)
            acc = np.concatenate([edges, rng.integers(-bound, bound, 500, endpoint=True)])
            want = arith.multiply_by_quantized_multiplier(acc, multiplier, -r)
            assert not want.any()
            assert np.array_equal(fast.requantize_fast(acc, record), want)
            assert np.array_equal(fast.requantize_narrow(acc, record), want + 5)
            assert fast.channel_record(multiplier, -r, bound + 1, 5)[0] == multiplier


def test_layouts_are_documented_ones() -> None:
    """Spot checks of the weight layouts against the header comments."""
    w = np.arange(2 * 3 * 3 * 5, dtype=np.int64).reshape(2, 3, 3, 5) % 100
    p = {"out_c": 2, "in_c": 5, "batch": 1, "in_d": 1, "in_h": 3, "in_w": 3, "out_d": 1,
         "out_h": 1, "out_w": 1, "k_d": 1, "k_h": 3, "k_w": 3, "stride_d": 1, "stride_h": 1,
         "stride_w": 1, "dilation_d": 1, "dilation_h": 1, "dilation_w": 1, "pad_d": 0,
         "pad_h": 0, "pad_w": 0, "groups": 1, "input_offset": 3, "output_offset": 0,
         "act_min": -128, "act_max": 127, "per_channel": 1, "multiplier": (1 << 30, 1 << 30),
         "shift": (-3, 2)}
    params, weights, scratch = fast.conv_gemm(p, w.astype(np.int8), None)
    # rows of 3 taps x 5 channels: copied whole (15 values), not widened (4 taps would add 3
    # groups); the 45 values padded to 48 with zero weights
    assert params["k_w"] == 3 and params["k_padded"] == 48 and weights.shape == (2, 48)
    assert np.array_equal(weights[:, :45].reshape(2, 3, 3, 5), w) and not weights[:, 45:].any()
    assert params["bias"] == tuple(3 * int(s) for s in w.reshape(2, -1).sum(axis=1))
    assert scratch == 48 * 12 + 48 + 4  # panel (6 pixels) + gathering buffer (in_c % 4) + slack
    # rows of 3 taps x 1 channel are widened to 4 taps: still 3 groups, expanded straight
    one, one_weights, _ = fast.conv_gemm(p | {"in_c": 1}, w[..., :1].astype(np.int8), None)
    assert one["k_w"] == 4 and one["k_padded"] == 12
    widened = one_weights.reshape(2, 3, 4)
    assert np.array_equal(widened[:, :, :3], w[..., 0]) and not widened[:, :, 3].any()
    dilated, _, _ = fast.conv_gemm(p | {"in_c": 1, "dilation_w": 2}, w[..., :1].astype(np.int8),
                                   None)
    assert (dilated["k_w"], dilated["k_padded"]) == (3, 12)  # a run per tap: not widened
    assert params["requant"][1] == (1 << 30, -3, 0, 0)  # shift 2: the general path
    # shift -3: narrow, (2 * offset + 1) * 2^(r - 1) with offset 0
    assert params["requant"][0] == (1 << 30, 2, 4, 3)
    # 3-D, the EEG stem: rows not widened; the 4x9x9 input framed by its padding
    stem = p | {"in_c": 1, "in_d": 4, "in_h": 9, "in_w": 9, "out_d": 4, "out_h": 9, "out_w": 9,
                "k_d": 3, "pad_d": 1, "pad_h": 1, "pad_w": 1}
    sp, sw, s_scratch = fast.conv_gemm(stem, np.ones((2, 3, 3, 3, 1), np.int8), None)
    assert (sp["k_w"], sp["k_padded"], sw.shape) == (3, 28, (2, 28)) and not sw[:, 27:].any()
    assert (sp["frame_d"], sp["frame_h"], sp["frame_w"]) == (6, 11, 11)
    assert s_scratch == 28 * 12 + (28 + 4) + (728 + 4)  # panel, gathering buffer, frame + slack
    # depthwise 3x3x3 on 2 channels: rows of 3 taps padded to 4, groups in sxtb16 order
    dw = stem | {"in_c": 2, "out_c": 2, "groups": 2, "per_channel": 0, "multiplier": (1 << 30,),
                 "shift": (-1,)}
    taps = np.arange(1, 55, dtype=np.int8).reshape(3, 3, 3, 2)  # [k_d, k_h, k_w, c]
    dp, dw_weights, dw_scratch = fast.depthwise_planar(dw, taps, None)
    assert dw_weights.shape == (2, 9, 4) and dp["k_pairs"] == 2
    assert list(dw_weights[1, 0]) == [2, 6, 4, 0]  # channel 1, row (0, 0): taps 2, 4, 6, 0
    assert (dp["plane_d"], dp["plane_h"], dp["plane_w"]) == (6, 11, 11)
    assert dw_scratch == (726 + 2) * 2 + 9 * 8 + 9 * 9 * 4  # plane, weights, all 9 rows of sums
    fc = {"batch": 1, "in_features": 6, "out_features": 5, "input_offset": 0,
          "output_offset": 0, "act_min": -128, "act_max": 127, "per_channel": 0,
          "multiplier": (1 << 30,), "shift": (-1,)}
    rows = np.arange(30, dtype=np.int8).reshape(5, 6)
    fparams, fw, _ = fast.fully_connected_rows4(fc, rows, None)
    assert fparams["k_padded"] == 8 and fw.size == 5 * 8
    assert list(fw[:16]) == [0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21]
    assert list(fw[32:]) == [24, 25, 26, 27, 28, 29, 0, 0]
    # shift -1: code 0, narrow with (2 * 0 + 1) * 2^0 and r = 1
    assert fparams["requant"] == ((1 << 30, 0, 1, 1),)


FAST_SOURCES = ["tc_conv_fast_s8.c", "tc_fully_connected_fast_s8.c", "tc_elementwise_fast_s8.c"]
CORES = {"cortex-m4": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
         "cortex-m7": ["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
         "cortex-m33": ["-mcpu=cortex-m33"], "cortex-m55": ["-mcpu=cortex-m55"],
         "cortex-m0": ["-mcpu=cortex-m0"]}
OPTIMIZATION = ["-O0", "-O1", "-O2", "-O3", "-Os", "-Og", "-O2 -fno-omit-frame-pointer",
                "-Og -fno-omit-frame-pointer"]


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
@pytest.mark.parametrize("core", list(CORES))
def test_compiles_at_every_optimization_level(core, tmp_path) -> None:
    """The inline assembly of the DSP paths needs up to 13 registers: every optimization level
    users may pick (and -O0, which takes the portable paths) must compile warning-free."""
    for opt in OPTIMIZATION:
        for source in FAST_SOURCES:
            cmd = ["arm-none-eabi-gcc", *C_WARNINGS, "-mthumb", *CORES[core], *opt.split(),
                   f"-I{RUNTIME}", "-c", str(RUNTIME / source), "-o", str(tmp_path / "x.o")]
            result = subprocess.run(cmd, capture_output=True, text=True)
            assert result.returncode == 0, f"{core} {opt} {source}:\n{result.stderr}"


KWS = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny" / \
    "kws01_dscnn_int8.tflite"


@pytest.mark.skipif(not KWS.exists(), reason="the MLPerf Tiny models are not beside the repo")
def test_compiler_selects_optimized_kernels(monkeypatch) -> None:
    """Every layer of KWS takes an optimized kernel, its scratch is planned in the arena, and
    switching the optimized kernels off gives the portable ones and the same simulation."""
    from tinyc.interpret import run_graph
    from tinyc.ops import fast_s8
    from tinyc.project import compile_model, input_specs, sample_inputs

    board = load_board("qemu-m4")
    compiled = compile_model(KWS, board)
    functions = {layer["function"] for layer in compiled.report["layers"]}
    assert {"tc_conv_gemm_s8", "tc_depthwise_conv_planar_s8",
            "tc_fully_connected_rows4_s8"} <= functions
    assert not functions & {"tc_conv_s8", "tc_depthwise_conv_s8", "tc_fully_connected_s8"}
    scratch = [b for b in compiled.report["memory_plan"]
               if any(t.endswith(":scratch") for t in b["tensors"])]
    assert len(scratch) == sum(layer["function"] in functions - {"tc_avg_pool_s8",
                                                                  "tc_softmax_s8", ""}
                               for layer in compiled.report["layers"]) == 10
    sample = sample_inputs(input_specs(compiled.graph), 1)[0]
    simulated = run_graph(compiled.graph, sample)[0]
    monkeypatch.setattr(fast_s8, "ENABLED", False)
    portable = compile_model(KWS, board)
    assert {layer["function"] for layer in portable.report["layers"]} & {
        "tc_conv_s8", "tc_depthwise_conv_s8", "tc_fully_connected_s8"}
    assert not {layer["function"] for layer in portable.report["layers"]} & functions - {
        "tc_avg_pool_s8", "tc_softmax_s8", ""}
    assert np.array_equal(simulated, run_graph(portable.graph, sample)[0])
