"""The float32 C kernels of runtime_c/ against numpy references (and PyTorch where installed).

All runtime_c/*.c are compiled once into a shared library with the host gcc and called through
ctypes; the parameter structs are mirrored once below (and their layout is checked against the
headers).  Every case is seeded and named after the edge it covers.  The references compute in
float64 from the same float32 inputs; the kernels accumulate in float32, so the bound is
|c - ref| <= 1e-5 + 1e-5 * |ref| unless a test states otherwise.  Data-movement kernels must
match bit for bit.  A further test compiles every kernel for Cortex-M4.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from dataclasses import dataclass, replace

import numpy as np
import pytest

from helpers import C_WARNINGS, RUNTIME, c_struct, cortex_m4_undefined_symbols, kernel_library
from tinyc.boards import FUSED_MAC_CORES, load_board
from tinyc.codegen import kernel_memory
from tinyc.ir import Graph, Node, Tensor
from tinyc.ops import REGISTRY
from tinyc.ops.conv import CONV_BLOCK, blocked_weights
from tinyc.ops.movement import merged_dims

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the torch cross-checks are skipped
    torch = None
    F = None

INF = math.inf
ATOL = 1e-5
RTOL = 1e-5
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

# --------------------------------------------------------------------------------------------
# ctypes mirrors of the parameter structs (the one place that knows their layout)
# --------------------------------------------------------------------------------------------

ConvParams = c_struct(
    "tc_conv_f32_params_t",
    "batch in_d in_h in_w in_c out_d out_h out_w out_c k_d k_h k_w stride_d stride_h stride_w "
    "dilation_d dilation_h dilation_w pad_d pad_h pad_w groups act_min:f act_max:f",
)
PoolParams = c_struct(
    "tc_pool_f32_params_t",
    "kind batch in_d in_h in_w c out_d out_h out_w k_d k_h k_w stride_d stride_h stride_w "
    "dilation_d dilation_h dilation_w pad_d pad_h pad_w pad_end_d pad_end_h pad_end_w "
    "count_include_pad act_min:f act_max:f",
)
GemmParams = c_struct(
    "tc_gemm_f32_params_t",
    "batch_rank batch_shape*4 a_batch_strides*4 b_batch_strides*4 m n k a_stride_m a_stride_k "
    "b_stride_k b_stride_n c_stride_m c_stride_n alpha:f beta:f act_min:f act_max:f",
)
BinaryParams = c_struct(
    "tc_binary_f32_params_t", "op rank shape*6 a_strides*6 b_strides*6 act_min:f act_max:f"
)
UnaryParams = c_struct(
    "tc_unary_f32_params_t", "op count alpha:f beta:f act_min:f act_max:f"
)
ReduceParams = c_struct(
    "tc_reduce_f32_params_t",
    "op rank in_shape*6 out_strides*6 out_count reduce_count act_min:f act_max:f",
)
SoftmaxParams = c_struct("tc_softmax_f32_params_t", "outer axis_len inner log")
StridedCopyParams = c_struct(
    "tc_strided_copy_params_t", "elem_size rank shape*6 in_strides*6 in_offset"
)
ConcatParams = c_struct("tc_concat_params_t", "elem_size outer num_inputs chunks:p")
PadParams = c_struct(
    "tc_pad_params_t",
    "elem_size mode rank in_shape*6 out_shape*6 pads_begin*6 value_bytes:u8*8",
)
STRUCTS = [
    ConvParams, PoolParams, GemmParams, BinaryParams, UnaryParams, ReduceParams,
    SoftmaxParams, StridedCopyParams, ConcatParams, PadParams,
]

# kernel name -> (params struct, number of pointer arguments after it)
KERNELS = {
    "tc_conv_f32": (ConvParams, 4),
    "tc_conv_blocked_f32": (ConvParams, 4),
    "tc_conv_pointwise_f32": (ConvParams, 4),
    "tc_depthwise_conv3x3_f32": (ConvParams, 4),
    "tc_depthwise_conv3x3_3d_f32": (ConvParams, 4),
    "tc_depthwise_conv_blocked_f32": (ConvParams, 4),
    "tc_conv_transpose_f32": (ConvParams, 4),
    "tc_pool_f32": (PoolParams, 2),
    "tc_gemm_f32": (GemmParams, 4),
    "tc_binary_f32": (BinaryParams, 3),
    "tc_unary_f32": (UnaryParams, 2),
    "tc_reduce_f32": (ReduceParams, 2),
    "tc_softmax_f32": (SoftmaxParams, 2),
    "tc_strided_copy": (StridedCopyParams, 2),
    "tc_concat": (ConcatParams, 2),
    "tc_pad": (PadParams, 2),
}

# The enums of the headers.
POOL_MAX, POOL_AVG = 0, 1
BIN_OPS = ["ADD", "SUB", "MUL", "DIV", "MAX", "MIN", "POW", "PRELU"]
UN_OPS = [
    "IDENTITY", "LEAKY_RELU", "SIGMOID", "TANH", "HARD_SIGMOID", "HARD_SWISH", "EXP", "LOG",
    "ABS", "NEG", "SQRT", "RECIPROCAL", "FLOOR", "CEIL", "ERF", "SOFTPLUS", "ELU", "SELU", "GELU",
]
REDUCE_OPS = ["SUM", "MEAN", "MAX", "MIN"]
PAD_MODES = ["constant", "reflect", "edge"]  # numpy's names, in the header's enum order


def make(cls: type[ctypes.Structure], **values) -> ctypes.Structure:
    """A params struct filled from keyword arguments; arrays may be shorter than the field
    (the rest stays 0), act_min / act_max default to -inf / +inf, everything else to 0."""
    params = cls()
    values.setdefault("act_min", -INF)
    values.setdefault("act_max", INF)
    for name, ctype in cls._fields_:
        if name not in values:
            continue
        value = values.pop(name)
        if issubclass(ctype, ctypes.Array):
            field = getattr(params, name)
            for i, v in enumerate(value):
                field[i] = v
        else:
            setattr(params, name, value)
    values.pop("act_min", None)
    values.pop("act_max", None)
    if values:
        raise TypeError(f"{cls.__name__} has no fields {sorted(values)}")
    return params


def ptr(array: np.ndarray | None) -> int | None:
    """The address of a C-contiguous array, or None (NULL)."""
    if array is None:
        return None
    assert array.flags.c_contiguous
    return array.ctypes.data


def dense_strides(shape) -> list[int]:
    """Row-major element strides."""
    strides, s = [], 1
    for n in reversed(shape):
        strides.append(s)
        s *= n
    return strides[::-1]


def assert_close(actual, expected, atol: float = ATOL, rtol: float = RTOL) -> None:
    """|actual - expected| <= atol + rtol * |expected| elementwise (equal infinities and NaN
    against NaN pass); on failure report the positions with actual and expected values."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    with np.errstate(invalid="ignore"):
        ok = np.abs(actual - expected) <= atol + rtol * np.abs(expected)
    ok |= (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    if not ok.all():
        bad = np.argwhere(~ok)
        lines = [f"{len(bad)} of {ok.size} elements outside {atol:g} + {rtol:g}*|ref|:"]
        for pos in bad[:10]:
            t = tuple(int(i) for i in pos)
            lines.append(f"  at {t}: got {actual[t]!r}, expected {expected[t]!r}")
        pytest.fail("\n".join(lines))


def assert_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    """Bit-for-bit equality, reporting the first differing positions."""
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    a = actual.view(np.uint8).reshape((*actual.shape, -1))
    e = expected.view(np.uint8).reshape((*expected.shape, -1))
    bad = np.argwhere((a != e).any(axis=-1))
    if len(bad):
        lines = [f"{len(bad)} of {actual.size} elements differ:"]
        for pos in bad[:10]:
            t = tuple(int(i) for i in pos)
            lines.append(f"  at {t}: got {actual[t]!r}, expected {expected[t]!r}")
        pytest.fail("\n".join(lines))


def uniform(rng: np.random.Generator, shape, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """float32 uniform in [lo, hi); always an array, also for shape ()."""
    return np.asarray(rng.uniform(lo, hi, size=shape), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# The library
# --------------------------------------------------------------------------------------------


LAYOUT_HEADERS = ["tc_conv_f32.h", "tc_pool_f32.h", "tc_gemm_f32.h", "tc_elementwise_f32.h",
                  "tc_reduce_f32.h", "tc_copy.h"]


@pytest.fixture(scope="session")
def lib(tmp_path_factory) -> ctypes.CDLL:
    return kernel_library(tmp_path_factory.mktemp("tc_kernels"), sorted(RUNTIME.glob("*.c")),
                          LAYOUT_HEADERS, STRUCTS, KERNELS)


def test_struct_mirrors_match_headers(lib):
    for cls in STRUCTS:
        c_layout = (ctypes.c_size_t * (1 + len(cls._fields_))).in_dll(lib, f"layout_{cls.__name__}")
        py_layout = [ctypes.sizeof(cls)] + [getattr(cls, f).offset for f, _ in cls._fields_]
        assert list(c_layout) == py_layout, f"{cls.__name__}: C {list(c_layout)} != {py_layout}"


# --------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvCase:
    x: tuple[int, int, int, int, int]  # N, D, H, W, C
    out_c: int
    k: tuple[int, int, int]
    stride: tuple[int, int, int] = (1, 1, 1)
    dil: tuple[int, int, int] = (1, 1, 1)
    pad: tuple[int, int, int] = (0, 0, 0)  # leading
    pad_end: tuple[int, int, int] = (0, 0, 0)  # trailing (conv) / also cropped (transpose)
    groups: int = 1
    bias: bool = True
    act: tuple[float, float] = (-INF, INF)
    out_pad: tuple[int, int, int] = (0, 0, 0)  # transpose only: extra trailing outputs

    def conv_out(self) -> tuple[int, ...]:
        return tuple(
            (i + p0 + p1 - d * (k - 1) - 1) // s + 1
            for i, p0, p1, d, k, s in zip(
                self.x[1:4], self.pad, self.pad_end, self.dil, self.k, self.stride, strict=True
            )
        )

    def transpose_out(self) -> tuple[int, ...]:
        return tuple(
            (i - 1) * s - p0 - p1 + d * (k - 1) + 1 + op
            for i, s, p0, p1, d, k, op in zip(
                self.x[1:4], self.stride, self.pad, self.pad_end, self.dil, self.k,
                self.out_pad, strict=True,
            )
        )

    def params(self, out: tuple[int, ...]) -> ctypes.Structure:
        n, d, h, w, c = self.x
        return make(
            ConvParams, batch=n, in_d=d, in_h=h, in_w=w, in_c=c, out_d=out[0], out_h=out[1],
            out_w=out[2], out_c=self.out_c, k_d=self.k[0], k_h=self.k[1], k_w=self.k[2],
            stride_d=self.stride[0], stride_h=self.stride[1], stride_w=self.stride[2],
            dilation_d=self.dil[0], dilation_h=self.dil[1], dilation_w=self.dil[2],
            pad_d=self.pad[0], pad_h=self.pad[1], pad_w=self.pad[2], groups=self.groups,
            act_min=self.act[0], act_max=self.act[1],
        )


def conv_ref(x, w, b, case: ConvCase) -> np.ndarray:
    """Direct convolution in float64: zero-pad x, then add one tap at a time as a matmul."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, cin = x.shape[0], x.shape[-1]
    out = case.conv_out()
    cig, cog = cin // case.groups, case.out_c // case.groups
    ext = [
        max(p + i, (o - 1) * s + d * (k - 1) + 1)
        for p, i, o, s, d, k in zip(
            case.pad, x.shape[1:4], out, case.stride, case.dil, case.k, strict=True
        )
    ]
    xp = np.zeros((n, *ext, cin))
    pd, ph, pw = case.pad
    xp[:, pd : pd + x.shape[1], ph : ph + x.shape[2], pw : pw + x.shape[3]] = x
    y = np.zeros((n, *out, case.out_c))
    (sd, sh, sw), (dd, dh, dw) = case.stride, case.dil
    for kd, kh, kw in np.ndindex(*case.k):
        patch = xp[
            :,
            kd * dd : kd * dd + (out[0] - 1) * sd + 1 : sd,
            kh * dh : kh * dh + (out[1] - 1) * sh + 1 : sh,
            kw * dw : kw * dw + (out[2] - 1) * sw + 1 : sw,
        ]
        for g in range(case.groups):
            wg = w[g * cog : (g + 1) * cog, kd, kh, kw, :]
            y[..., g * cog : (g + 1) * cog] += patch[..., g * cig : (g + 1) * cig] @ wg.T
    if b is not None:
        y += b
    return np.clip(y, *case.act)


def conv_data(case: ConvCase, w_shape, bias_len: int, seed: int):
    rng = np.random.default_rng(seed)
    x = uniform(rng, case.x)
    w = uniform(rng, w_shape)
    b = uniform(rng, (bias_len,)) if case.bias else None
    return x, w, b


# 21 channels: two 8-channel blocks of tc_conv_f32's blocked depthwise path and a 5-channel tail.
DEPTHWISE_BLOCKS = ConvCase((2, 4, 6, 5, 21), 21, (3, 3, 3), stride=(1, 2, 1), dil=(1, 1, 2),
                            pad=(1, 1, 2), pad_end=(1, 0, 2), groups=21, act=(-0.5, 0.75))

CONV_CASES = [
    pytest.param(ConvCase((2, 1, 1, 17, 3), 5, (1, 1, 3), pad=(0, 0, 1), pad_end=(0, 0, 1)),
                 id="conv1d"),
    pytest.param(ConvCase((1, 1, 9, 8, 4), 6, (1, 3, 3), pad=(0, 1, 1), pad_end=(0, 1, 1)),
                 id="conv2d"),
    pytest.param(ConvCase((2, 5, 6, 7, 3), 4, (3, 3, 2), pad=(1, 1, 0), pad_end=(1, 1, 1)),
                 id="conv3d"),
    pytest.param(ConvCase((2, 1, 11, 10, 3), 5, (1, 3, 3), stride=(1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1)), id="stride2_pad1"),
    pytest.param(ConvCase((1, 1, 12, 11, 3), 4, (1, 3, 3), dil=(1, 2, 2), pad=(0, 2, 2),
                          pad_end=(0, 2, 2)), id="dilation2"),
    pytest.param(ConvCase((1, 1, 7, 6, 4), 6, (1, 3, 3), pad=(0, 1, 1), pad_end=(0, 1, 1),
                          groups=2), id="groups2"),
    pytest.param(ConvCase((2, 1, 9, 9, 8), 8, (1, 3, 3), stride=(1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1), groups=8), id="depthwise_stride2"),
    pytest.param(ConvCase((1, 1, 6, 7, 4), 8, (1, 3, 3), pad=(0, 1, 1), pad_end=(0, 1, 1),
                          groups=4, dil=(1, 2, 1)), id="depthwise_multiplier2_dilation"),
    pytest.param(DEPTHWISE_BLOCKS, id="depthwise_3d_blocks_and_tail"),
    pytest.param(ConvCase((1, 1, 10, 9, 3), 4, (1, 3, 3), stride=(1, 2, 2), pad=(0, 0, 1),
                          pad_end=(0, 1, 2)), id="asymmetric_pad_same_upper"),
    pytest.param(ConvCase((1, 3, 5, 4, 2), 3, (2, 3, 3), pad=(1, 2, 0), pad_end=(0, 0, 2)),
                 id="asymmetric_pad_3d"),
    pytest.param(ConvCase((2, 1, 5, 6, 16), 7, (1, 1, 1)), id="pointwise_1x1"),
    pytest.param(ConvCase((1, 1, 4, 5, 3), 2, (1, 1, 1), stride=(1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1)), id="pointwise_1x1_window_in_padding"),
    pytest.param(ConvCase((1, 1, 5, 5, 33), 7, (1, 3, 3), pad=(0, 1, 1), pad_end=(0, 1, 1)),
                 id="channels33_out7"),
    pytest.param(ConvCase((1, 1, 6, 6, 3), 4, (1, 5, 5), pad=(0, 2, 2), pad_end=(0, 2, 2),
                          bias=False), id="kernel5_no_bias"),
    pytest.param(ConvCase((1, 1, 6, 6, 3), 4, (1, 3, 3), act=(0.0, 0.5)), id="fused_clamp"),
    pytest.param(ConvCase((1, 1, 3, 4, 2), 3, (1, 5, 5), pad=(0, 2, 2), pad_end=(0, 2, 2)),
                 id="kernel_larger_than_input"),
]


def run_conv(lib, case: ConvCase, seed: int):
    cig = case.x[4] // case.groups
    x, w, b = conv_data(case, (case.out_c, *case.k, cig), case.out_c, seed)
    out = case.conv_out()
    y = np.full((case.x[0], *out, case.out_c), np.nan, dtype=np.float32)
    lib.tc_conv_f32(ctypes.byref(case.params(out)), ptr(x), ptr(w), ptr(b), ptr(y))
    return x, w, b, y


def conv_graph(case: ConvCase) -> Graph:
    """The case's convolution as the compiler sees it: one channels-last Conv node "n0" with
    constant (zero) weights, 3-D shapes (a 2-D case has depth 1)."""
    y_shape = (case.x[0], *case.conv_out(), case.out_c)
    w_shape = (case.out_c, *case.k, case.x[4] // case.groups)
    attrs = {"kernel_shape": case.k, "strides": case.stride, "dilations": case.dil,
             "pads": (*case.pad, *case.pad_end), "group": case.groups, "channels_last": True}
    tensors = {"x": Tensor("x", case.x), "y": Tensor("y", y_shape),
               "w": Tensor("w", w_shape, data=np.zeros(w_shape, np.float32))}
    return Graph("g", tensors, [Node("Conv", "n0", ["x", "w"], ["y"], attrs)], ["x"], ["y"])


def compiler_kernel(case: ConvCase) -> str:
    """The C function the compiler emits for the case."""
    graph = conv_graph(case)
    return REGISTRY["Conv"].emit(graph.nodes[0], graph).function


def conv_in_place(lib, kernel: str, case: ConvCase, shift: int, x, w, b) -> np.ndarray:
    """kernel run with its output `shift` bytes (< 0) from its input in one arena (y at the
    arena's start, x above, the rest NaN): the output region afterwards."""
    x_at, y_size = -shift // 4, case.x[0] * int(np.prod(case.conv_out())) * case.out_c
    arena = np.full(max(x_at + x.size, y_size), np.nan, np.float32)
    arena[x_at:x_at + x.size] = x.reshape(-1)
    getattr(lib, kernel)(ctypes.byref(case.params(case.conv_out())), arena[x_at:].ctypes.data,
                         ptr(w), ptr(b), arena.ctypes.data)
    return arena[:y_size].reshape(case.x[0], *case.conv_out(), case.out_c)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv(lib, case):
    x, w, b, y = run_conv(lib, case, seed=1)
    assert_close(y, conv_ref(x, w, b, case))


@needs_torch
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_torch(lib, case):
    x, w, b, y = run_conv(lib, case, seed=2)
    xt = torch.from_numpy(x.astype(np.float64)).permute(0, 4, 1, 2, 3)
    (pd, ph, pw), (ed, eh, ew) = case.pad, case.pad_end
    xt = F.pad(xt, (pw, ew, ph, eh, pd, ed))
    wt = torch.from_numpy(w.astype(np.float64)).permute(0, 4, 1, 2, 3)
    bt = None if b is None else torch.from_numpy(b.astype(np.float64))
    ref = F.conv3d(xt, wt, bt, stride=case.stride, dilation=case.dil, groups=case.groups)
    ref = ref.permute(0, 2, 3, 4, 1).clamp(*case.act).numpy()
    assert_close(y, ref)


def test_depthwise_blocks_equal_single_channel_convolutions(lib):
    """The blocked depthwise path sums each channel's taps in the per-channel path's order: each
    channel equals a one-channel convolution of that channel, bit for bit."""
    x, w, b, y = run_conv(lib, DEPTHWISE_BLOCKS, seed=3)
    one = replace(DEPTHWISE_BLOCKS, x=(*DEPTHWISE_BLOCKS.x[:4], 1), out_c=1,
                              groups=1)
    for c in range(DEPTHWISE_BLOCKS.out_c):
        xc, wc, bc = (np.ascontiguousarray(v) for v in (x[..., c:c + 1], w[c:c + 1], b[c:c + 1]))
        yc = np.full((*y.shape[:-1], 1), np.nan, dtype=np.float32)
        lib.tc_conv_f32(ctypes.byref(one.params(one.conv_out())), ptr(xc), ptr(wc), ptr(bc),
                        ptr(yc))
        np.testing.assert_array_equal(y[..., c:c + 1], yc)


# tc_conv_blocked_f32 (groups 1): the cases above without groups, and 3-D ones around the EEG
# stem: one input channel (rows of taps as one run), partial last blocks (14, 20, 5 channels),
# dilation_w 2 (one run per tap), windows in the depth padding, a fused clamp.
BLOCKED_CASES = [p for p in CONV_CASES if p.values[0].groups == 1] + [
    pytest.param(ConvCase((1, 4, 9, 9, 1), 14, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1),
                          bias=False, act=(0.0, 6.0)), id="eeg_stem_in1_out14"),
    pytest.param(ConvCase((2, 3, 5, 6, 1), 20, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1)),
                 id="in1_out20_batch2"),
    pytest.param(ConvCase((1, 3, 5, 6, 8), 16, (3, 3, 3), stride=(2, 1, 2), pad=(1, 1, 1),
                          pad_end=(1, 1, 1)), id="in8_out16_stride2"),
    pytest.param(ConvCase((1, 2, 6, 9, 3), 5, (2, 2, 3), dil=(1, 2, 2), pad=(1, 2, 2),
                          pad_end=(1, 2, 2)), id="in3_out5_dilation2"),
    pytest.param(ConvCase((1, 1, 3, 3, 2), 8, (3, 3, 3), stride=(3, 1, 1), pad=(2, 1, 1),
                          pad_end=(3, 1, 1)), id="windows_in_depth_padding"),
]


@pytest.mark.parametrize("case", BLOCKED_CASES)
def test_conv_blocked_equals_conv(lib, case):
    """tc_conv_blocked_f32, given the compiler's weight layout (ops.conv.blocked_weights), sums
    in tc_conv_f32's order: the same outputs bit for bit (so within the reference's bound)."""
    x, w, b, y = run_conv(lib, case, seed=4)
    wb = blocked_weights(w)
    assert wb.shape == (-(-case.out_c // CONV_BLOCK), *case.k, case.x[4], CONV_BLOCK)
    yb = np.full_like(y, np.nan)
    lib.tc_conv_blocked_f32(ctypes.byref(case.params(case.conv_out())), ptr(x), ptr(wb), ptr(b),
                            ptr(yb))
    assert_equal(yb, y)
    assert_close(yb, conv_ref(x, w, b, case))


@pytest.mark.parametrize("case", [
    pytest.param(ConvCase((1, 1, 6, 7, 8), 8, (1, 3, 3), pad=(0, 1, 1), pad_end=(0, 1, 1)),
                 id="2d_in8_out8_pad1"),
    pytest.param(ConvCase((1, 3, 5, 5, 1), 8, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1)),
                 id="3d_in1_out8_stem"),
    pytest.param(ConvCase((1, 1, 5, 9, 16), 16, (1, 1, 1)), id="pointwise_in16_out16"),
])
def test_conv_blocked_in_place_at_the_compilers_shift(lib, case):
    """tc_conv_blocked_f32 (tc_conv_pointwise_f32 for the 1x1 case) writing over its own input
    at the shift the compiler declares for it (ops.conv: pixel pairs from even pixels on) gives
    the out-of-place outputs bit for bit."""
    (declared,) = kernel_memory(conv_graph(case))[1]["n0"]
    assert declared.tensor == "x" and declared.shift < 0
    kernel = compiler_kernel(case)
    assert kernel == ("tc_conv_pointwise_f32" if case.k == (1, 1, 1) else "tc_conv_blocked_f32")
    x, wt, b, expected = run_conv(lib, case, seed=5)
    wb = blocked_weights(wt)
    assert_equal(conv_in_place(lib, kernel, case, declared.shift, x, wb, b), expected)


@pytest.mark.parametrize("case", [
    pytest.param(ConvCase((2, 1, 5, 6, 16), 7, (1, 1, 1)), id="batch2_partial_block"),
    pytest.param(ConvCase((1, 1, 5, 9, 16), 16, (1, 1, 1), act=(0.0, 6.0)), id="odd_pixels"),
    pytest.param(ConvCase((1, 3, 4, 5, 8), 20, (1, 1, 1), bias=False), id="3d_no_bias"),
    pytest.param(ConvCase((1, 1, 1, 1, 3), 8, (1, 1, 1)), id="one_pixel"),
])
def test_conv_pointwise_equals_conv(lib, case):
    """tc_conv_pointwise_f32 pairs pixels across rows but sums each output as tc_conv_f32 does:
    the same outputs bit for bit."""
    x, w, b, y = run_conv(lib, case, seed=8)
    wb = blocked_weights(w)  # kept alive through the call
    yp = np.full_like(y, np.nan)
    lib.tc_conv_pointwise_f32(ctypes.byref(case.params(case.conv_out())), ptr(x), ptr(wb),
                              ptr(b), ptr(yp))
    assert_equal(yp, y)


@pytest.mark.parametrize(("stride", "pad", "function"), [
    (1, 0, "tc_conv_pointwise_f32"), (2, 0, "tc_conv_blocked_f32"),
    (1, 1, "tc_conv_blocked_f32"),
])
def test_compiler_picks_the_pointwise_kernel(stride, pad, function):
    case = ConvCase((1, 1, 9, 9, 8), 16, (1, 1, 1), stride=(1, stride, stride),
                    pad=(0, pad, pad), pad_end=(0, pad, pad))
    assert compiler_kernel(case) == function


@pytest.mark.parametrize(("in_c", "out_c", "groups", "function"), [
    (1, 14, 1, "tc_conv_blocked_f32"),  # the EEG stem: one input channel, a partial block
    (8, 16, 1, "tc_conv_blocked_f32"),
    (8, 12, 1, "tc_conv_blocked_f32"),  # the last block two-thirds full
    (8, 10, 1, "tc_conv_f32"),  # ... not
    (2, 9, 1, "tc_conv_blocked_f32"),  # few input channels: blocked whatever the waste
    (8, 4, 1, "tc_conv_f32"),  # less than a block
    (8, 16, 2, "tc_conv_f32"),  # groups
])
def test_compiler_picks_the_blocked_kernel_where_faster(in_c, out_c, groups, function):
    case = ConvCase((1, 4, 9, 9, in_c), out_c, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1),
                    groups=groups)
    assert compiler_kernel(case) == function


def test_blocked_weights_layout():
    """wb[blk, kd, kh, kw, ic, j] = w[8 * blk + j, kd, kh, kw, ic], zero past out_c."""
    w = np.arange(10 * 2 * 3 * 1 * 4, dtype=np.float32).reshape(10, 2, 3, 1, 4)
    wb = blocked_weights(w)
    assert wb.shape == (2, 2, 3, 1, 4, 8)
    assert wb[1, 1, 2, 0, 3, 1] == w[9, 1, 2, 0, 3] and wb[0, 0, 1, 0, 2, 5] == w[5, 0, 1, 0, 2]
    assert not wb[1, ..., 2:].any()


def conv_transpose_ref(x, w, b, case: ConvCase) -> np.ndarray:
    """Scatter form in float64: every tap adds x @ w into a full-size buffer at stride s, which
    is then cropped by the leading pads and out_*."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, cin = x.shape[0], x.shape[-1]
    out = case.transpose_out()
    cig, cog = cin // case.groups, case.out_c // case.groups
    ins = x.shape[1:4]
    ext = [
        max((i - 1) * s + d * (k - 1) + 1, p + o)
        for i, s, d, k, p, o in zip(ins, case.stride, case.dil, case.k, case.pad, out, strict=True)
    ]
    buf = np.zeros((n, *ext, case.out_c))
    (sd, sh, sw), (dd, dh, dw) = case.stride, case.dil
    for kd, kh, kw in np.ndindex(*case.k):
        sel = (
            slice(None),
            slice(kd * dd, kd * dd + (ins[0] - 1) * sd + 1, sd),
            slice(kh * dh, kh * dh + (ins[1] - 1) * sh + 1, sh),
            slice(kw * dw, kw * dw + (ins[2] - 1) * sw + 1, sw),
        )
        for g in range(case.groups):
            contrib = x[..., g * cig : (g + 1) * cig] @ w[g * cig : (g + 1) * cig, kd, kh, kw, :]
            buf[(*sel, slice(g * cog, (g + 1) * cog))] += contrib
    pd, ph, pw = case.pad
    y = buf[:, pd : pd + out[0], ph : ph + out[1], pw : pw + out[2]]
    if b is not None:
        y = y + b
    return np.clip(y, *case.act)


CONV_T_CASES = [
    pytest.param(ConvCase((2, 1, 1, 7, 3), 4, (1, 1, 3), stride=(1, 1, 2)), id="convT1d_stride2"),
    pytest.param(ConvCase((1, 1, 5, 6, 4), 3, (1, 3, 3), stride=(1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1), out_pad=(0, 1, 1)),
                 id="convT2d_stride2_pad1_output_padding1"),
    pytest.param(ConvCase((1, 1, 4, 5, 4), 6, (1, 3, 3), stride=(1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1), groups=2), id="convT_groups2"),
    pytest.param(ConvCase((1, 1, 4, 4, 4), 4, (1, 3, 3), stride=(1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1), groups=4, out_pad=(0, 1, 0)),
                 id="convT_depthwise"),
    pytest.param(ConvCase((1, 3, 3, 4, 2), 3, (2, 3, 3), stride=(2, 1, 2), dil=(1, 2, 1),
                          pad=(1, 2, 0), pad_end=(1, 2, 0)), id="convT3d_dilation2"),
    pytest.param(ConvCase((1, 1, 3, 3, 2), 3, (1, 4, 4), stride=(1, 2, 2), pad=(0, 2, 1),
                          pad_end=(0, 1, 2), bias=False, act=(-0.5, 0.5)),
                 id="convT_asymmetric_crop_no_bias_clamp"),
    pytest.param(ConvCase((1, 1, 3, 3, 5), 2, (1, 1, 1), stride=(1, 3, 3), out_pad=(0, 2, 2)),
                 id="convT_1x1_stride3_gaps"),
]


def run_conv_transpose(lib, case: ConvCase, seed: int):
    cog = case.out_c // case.groups
    x, w, b = conv_data(case, (case.x[4], *case.k, cog), case.out_c, seed)
    out = case.transpose_out()
    y = np.full((case.x[0], *out, case.out_c), np.nan, dtype=np.float32)
    lib.tc_conv_transpose_f32(ctypes.byref(case.params(out)), ptr(x), ptr(w), ptr(b), ptr(y))
    return x, w, b, y


@pytest.mark.parametrize("case", CONV_T_CASES)
def test_conv_transpose(lib, case):
    x, w, b, y = run_conv_transpose(lib, case, seed=3)
    assert_close(y, conv_transpose_ref(x, w, b, case))


@needs_torch
@pytest.mark.parametrize("case", CONV_T_CASES)
def test_conv_transpose_matches_torch(lib, case):
    if case.pad != case.pad_end:
        pytest.skip("torch's conv_transpose crops symmetrically")
    x, w, b, y = run_conv_transpose(lib, case, seed=4)
    xt = torch.from_numpy(x.astype(np.float64)).permute(0, 4, 1, 2, 3)
    wt = torch.from_numpy(w.astype(np.float64)).permute(0, 4, 1, 2, 3)
    bt = None if b is None else torch.from_numpy(b.astype(np.float64))
    ref = F.conv_transpose3d(
        xt, wt, bt, stride=case.stride, padding=case.pad, output_padding=case.out_pad,
        groups=case.groups, dilation=case.dil,
    )
    ref = ref.permute(0, 2, 3, 4, 1).clamp(*case.act).numpy()
    assert_close(y, ref)


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolCase:
    kind: int
    x: tuple[int, int, int, int, int]  # N, D, H, W, C
    k: tuple[int, int, int]
    stride: tuple[int, int, int]
    pad: tuple[int, int, int] = (0, 0, 0)
    pad_end: tuple[int, int, int] = (0, 0, 0)
    dil: tuple[int, int, int] = (1, 1, 1)
    ceil: bool = False
    include_pad: bool = False
    act: tuple[float, float] = (-INF, INF)

    def out(self) -> tuple[int, ...]:
        """Output extents as ONNX / PyTorch compute them; ceil mode adds a last window only if
        it starts inside the input or the leading padding."""
        dims = []
        for i, k, s, p0, p1, d in zip(
            self.x[1:4], self.k, self.stride, self.pad, self.pad_end, self.dil, strict=True
        ):
            span = i + p0 + p1 - d * (k - 1) - 1
            o = (-(-span // s) if self.ceil else span // s) + 1
            if self.ceil and (o - 1) * s >= i + p0:
                o -= 1
            dims.append(o)
        return tuple(dims)


def pool_ref(x: np.ndarray, case: PoolCase) -> np.ndarray:
    """Window by window, straight from the header's definition."""
    x = x.astype(np.float64)
    out = case.out()
    y = np.empty((x.shape[0], *out, x.shape[-1]))
    for pos in np.ndindex(*out):
        inside, counted = [], 1
        for ax in range(3):
            start = pos[ax] * case.stride[ax] - case.pad[ax]
            taps = [start + t * case.dil[ax] for t in range(case.k[ax])]
            n_in = x.shape[1 + ax]
            inside.append([i for i in taps if 0 <= i < n_in])
            counted *= sum(1 for i in taps if -case.pad[ax] <= i < n_in + case.pad_end[ax])
        win = x[:, inside[0]][:, :, inside[1]][:, :, :, inside[2]]
        if case.kind == POOL_MAX:
            val = win.max(axis=(1, 2, 3)) if win.size else np.full(x.shape[0::4], -INF)
        else:
            count = counted if case.include_pad else win.shape[1] * win.shape[2] * win.shape[3]
            val = win.sum(axis=(1, 2, 3)) / count
        y[:, pos[0], pos[1], pos[2], :] = val
    return np.clip(y, *case.act)


POOL_CASES = [
    pytest.param(PoolCase(POOL_MAX, (2, 1, 9, 8, 3), (1, 3, 3), (1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1)), id="max2d_k3_s2_pad1"),
    pytest.param(PoolCase(POOL_MAX, (1, 1, 11, 10, 4), (1, 3, 3), (1, 1, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1), dil=(1, 2, 2)), id="max2d_dilation2"),
    pytest.param(PoolCase(POOL_MAX, (1, 1, 8, 9, 2), (1, 3, 2), (1, 2, 2), pad=(0, 1, 0),
                          pad_end=(0, 1, 0), ceil=True), id="max2d_ceil_mode"),
    pytest.param(PoolCase(POOL_MAX, (2, 1, 1, 13, 3), (1, 1, 4), (1, 1, 3), pad=(0, 0, 1),
                          pad_end=(0, 0, 1), ceil=True, act=(-INF, 0.5)), id="max1d_ceil_clamp"),
    pytest.param(PoolCase(POOL_MAX, (1, 4, 5, 6, 3), (2, 2, 3), (2, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1)), id="max3d"),
    pytest.param(PoolCase(POOL_AVG, (2, 1, 9, 8, 3), (1, 3, 3), (1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1), include_pad=False),
                 id="avg2d_pad1_exclude_pad"),
    pytest.param(PoolCase(POOL_AVG, (2, 1, 9, 8, 3), (1, 3, 3), (1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1), include_pad=True),
                 id="avg2d_pad1_include_pad"),
    pytest.param(PoolCase(POOL_AVG, (1, 1, 8, 9, 4), (1, 3, 3), (1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1), ceil=True, include_pad=True),
                 id="avg2d_ceil_mode_include_pad"),
    pytest.param(PoolCase(POOL_AVG, (1, 1, 8, 9, 4), (1, 3, 3), (1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1), ceil=True, include_pad=False),
                 id="avg2d_ceil_mode_exclude_pad"),
    pytest.param(PoolCase(POOL_AVG, (1, 1, 7, 7, 2), (1, 2, 3), (1, 2, 2), pad=(0, 1, 0),
                          pad_end=(0, 0, 2), include_pad=True),
                 id="avg2d_asymmetric_pad_include_pad"),
    pytest.param(PoolCase(POOL_AVG, (1, 3, 4, 5, 3), (3, 2, 2), (1, 2, 2), pad=(1, 0, 1),
                          pad_end=(1, 0, 1), include_pad=False), id="avg3d"),
    pytest.param(PoolCase(POOL_AVG, (1, 1, 1, 10, 5), (1, 1, 3), (1, 1, 3), ceil=True,
                          include_pad=True), id="avg1d_ceil_mode_no_pad"),
    pytest.param(PoolCase(POOL_AVG, (2, 1, 4, 4, 6), (1, 4, 4), (1, 1, 1)), id="avg_global"),
]


def run_pool(lib, case: PoolCase, seed: int):
    x = uniform(np.random.default_rng(seed), case.x, -2.0, 2.0)
    out = case.out()
    n, d, h, w, c = case.x
    params = make(
        PoolParams, kind=case.kind, batch=n, in_d=d, in_h=h, in_w=w, c=c, out_d=out[0],
        out_h=out[1], out_w=out[2], k_d=case.k[0], k_h=case.k[1], k_w=case.k[2],
        stride_d=case.stride[0], stride_h=case.stride[1], stride_w=case.stride[2],
        dilation_d=case.dil[0], dilation_h=case.dil[1], dilation_w=case.dil[2],
        pad_d=case.pad[0], pad_h=case.pad[1], pad_w=case.pad[2], pad_end_d=case.pad_end[0],
        pad_end_h=case.pad_end[1], pad_end_w=case.pad_end[2],
        count_include_pad=int(case.include_pad), act_min=case.act[0], act_max=case.act[1],
    )
    y = np.full((n, *out, c), np.nan, dtype=np.float32)
    lib.tc_pool_f32(ctypes.byref(params), ptr(x), ptr(y))
    return x, y


@pytest.mark.parametrize("case", POOL_CASES)
def test_pool(lib, case):
    x, y = run_pool(lib, case, seed=5)
    assert_close(y, pool_ref(x, case))


def test_pool_ceil_mode_adds_positions():
    """The ceil-mode cases really have more outputs than the explicit pads alone give."""
    for param in POOL_CASES:
        case = param.values[0]
        if case.ceil:
            floor_case = PoolCase(**{**case.__dict__, "ceil": False})
            assert case.out() != floor_case.out(), param.id


@needs_torch
@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_matches_torch(lib, case):
    if case.pad != case.pad_end:
        pytest.skip("torch pools pad symmetrically")
    if case.kind == POOL_AVG and case.dil != (1, 1, 1):
        pytest.skip("torch's avg_pool has no dilation")
    x, y = run_pool(lib, case, seed=6)
    xt = torch.from_numpy(x.astype(np.float64)).permute(0, 4, 1, 2, 3)
    if case.kind == POOL_MAX:
        ref = F.max_pool3d(xt, case.k, case.stride, case.pad, case.dil, ceil_mode=case.ceil)
    else:
        ref = F.avg_pool3d(
            xt, case.k, case.stride, case.pad, ceil_mode=case.ceil,
            count_include_pad=case.include_pad,
        )
    ref = ref.permute(0, 2, 3, 4, 1).clamp(*case.act).numpy()
    assert_close(y, ref)


# --------------------------------------------------------------------------------------------
# GEMM
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GemmCase:
    m: int
    n: int
    k: int
    trans_a: bool = False  # A stored [K, M]
    trans_b: bool = False  # B stored [N, K]
    alpha: float = 1.0
    beta: float = 1.0
    bias: str | None = None  # None, "scalar", "row" [N], "column" [M], "full" [M, N]
    batch: tuple[int, ...] = ()
    a_batch: tuple[int, ...] | None = None  # A's batch shape (1 = broadcast), default batch
    b_batch: tuple[int, ...] | None = None
    act: tuple[float, float] = (-INF, INF)


GEMM_CASES = [
    pytest.param(GemmCase(5, 7, 9), id="matmul_row_major"),
    pytest.param(GemmCase(5, 7, 9, trans_a=True), id="transA"),
    pytest.param(GemmCase(6, 4, 11, trans_b=True), id="transB_linear"),
    pytest.param(GemmCase(3, 8, 5, trans_a=True, trans_b=True), id="transA_transB"),
    pytest.param(GemmCase(4, 6, 7, alpha=0.5, beta=-2.0, bias="full"), id="alpha_beta_bias_full"),
    pytest.param(GemmCase(4, 6, 7, alpha=-1.5), id="alpha_no_bias"),
    pytest.param(GemmCase(4, 6, 7, trans_b=True, alpha=2.0), id="alpha_no_bias_transB"),
    pytest.param(GemmCase(4, 6, 7, trans_b=True, bias="scalar", beta=0.25),
                 id="bias_scalar"),
    pytest.param(GemmCase(4, 6, 7, bias="row"), id="bias_row"),
    pytest.param(GemmCase(4, 6, 7, trans_b=True, bias="column", alpha=1.5), id="bias_column"),
    pytest.param(GemmCase(1, 10, 64, trans_b=True, bias="row", act=(0.0, INF)),
                 id="linear_vector_relu"),
    pytest.param(GemmCase(3, 4, 5, batch=(2, 3), a_batch=(1, 3), b_batch=(2, 1)),
                 id="batched_broadcast_stride0"),
    pytest.param(GemmCase(3, 4, 5, trans_b=True, batch=(2, 2, 1, 3), a_batch=(2, 1, 1, 3),
                          b_batch=(1, 2, 1, 1)), id="batched_rank4_transB"),
    pytest.param(GemmCase(2, 3, 0, bias="full"), id="k0_bias_only"),
]


@pytest.mark.parametrize("case", GEMM_CASES)
def test_gemm(lib, case: GemmCase):
    rng = np.random.default_rng(7)
    m, n, k, batch = case.m, case.n, case.k, case.batch
    a_batch = case.a_batch if case.a_batch is not None else batch
    b_batch = case.b_batch if case.b_batch is not None else batch
    a = uniform(rng, (*a_batch, *((k, m) if case.trans_a else (m, k))))
    b = uniform(rng, (*b_batch, *((n, k) if case.trans_b else (k, n))))
    c_shape = {None: None, "scalar": (), "row": (n,), "column": (m, 1), "full": (m, n)}
    c = None if case.bias is None else uniform(rng, c_shape[case.bias])

    def batch_strides(shape):
        strides = dense_strides(shape)[: len(batch)]
        return [0 if e == 1 else s for e, s in zip(shape, strides, strict=False)]

    a_sm, a_sk = (1, m) if case.trans_a else (k, 1)
    b_sk, b_sn = (1, k) if case.trans_b else (n, 1)
    c_sm, c_sn = {None: (0, 0), "scalar": (0, 0), "row": (0, 1), "column": (1, 0),
                  "full": (n, 1)}[case.bias]
    params = make(
        GemmParams, batch_rank=len(batch), batch_shape=batch,
        a_batch_strides=batch_strides(a.shape), b_batch_strides=batch_strides(b.shape),
        m=m, n=n, k=k, a_stride_m=a_sm, a_stride_k=a_sk, b_stride_k=b_sk, b_stride_n=b_sn,
        c_stride_m=c_sm, c_stride_n=c_sn, alpha=case.alpha, beta=case.beta,
        act_min=case.act[0], act_max=case.act[1],
    )
    y = np.full((*batch, m, n), np.nan, dtype=np.float32)
    lib.tc_gemm_f32(ctypes.byref(params), ptr(a), ptr(b), ptr(c), ptr(y))

    a_mat = a.astype(np.float64)
    b_mat = b.astype(np.float64)
    if case.trans_a:
        a_mat = np.swapaxes(a_mat, -1, -2)
    if case.trans_b:
        b_mat = np.swapaxes(b_mat, -1, -2)
    ref = case.alpha * (a_mat @ b_mat)
    if c is not None:
        ref = ref + case.beta * c.astype(np.float64)
    assert_close(y, np.clip(ref, *case.act))


# --------------------------------------------------------------------------------------------
# Elementwise
# --------------------------------------------------------------------------------------------


def broadcast_strides(shape, out_shape) -> list[int]:
    """Element strides of a dense array of `shape` read as `out_shape` (numpy broadcasting)."""
    padded = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    dense = dense_strides(padded)
    return [
        0 if e == 1 and o != 1 else s for e, o, s in zip(padded, out_shape, dense, strict=True)
    ]


def binary_params(op: str, a_shape, b_shape, act=(-INF, INF)):
    out_shape = np.broadcast_shapes(a_shape, b_shape)
    params = make(
        BinaryParams, op=BIN_OPS.index(op), rank=len(out_shape), shape=out_shape,
        a_strides=broadcast_strides(a_shape, out_shape),
        b_strides=broadcast_strides(b_shape, out_shape), act_min=act[0], act_max=act[1],
    )
    return params, out_shape


def binary_inputs(op: str, a_shape, b_shape, seed: int):
    rng = np.random.default_rng(seed)
    if op == "POW":  # positive bases keep powf real
        return uniform(rng, a_shape, 0.5, 2.0), uniform(rng, b_shape, -2.0, 2.0)
    if op == "DIV":  # divisors away from 0
        sign = np.where(rng.random(b_shape) < 0.5, -1.0, 1.0)
        b = np.asarray(sign * uniform(rng, b_shape, 0.25, 2.0), dtype=np.float32)
        return uniform(rng, a_shape, -3.0, 3.0), b
    return uniform(rng, a_shape, -3.0, 3.0), uniform(rng, b_shape, -3.0, 3.0)


def binary_ref(op: str, a, b) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return {
        "ADD": lambda: a + b,
        "SUB": lambda: a - b,
        "MUL": lambda: a * b,
        "DIV": lambda: a / b,
        "MAX": lambda: np.maximum(a, b),
        "MIN": lambda: np.minimum(a, b),
        "POW": lambda: np.power(a, b),
        "PRELU": lambda: np.where(a < 0, a * b, a + 0 * b),
    }[op]()


BROADCASTS = {
    "same_shape": ((2, 3, 4, 5), (2, 3, 4, 5)),
    "b_scalar": ((2, 3, 4, 5), ()),
    "a_scalar": ((), (3, 4, 5)),
    "b_per_channel": ((2, 3, 4, 5), (5,)),
    "a_per_channel": ((4, 1, 6), (3, 4, 5, 6)),
    "b_middle_axis": ((2, 3, 4, 5), (3, 1, 1)),
    "b_leading_axis": ((4, 5), (4, 1)),
    "both_broadcast": ((2, 1, 4, 1), (1, 3, 1, 5)),
    "rank6_both": ((2, 1, 3, 1, 2, 4), (1, 2, 1, 3, 2, 1)),
    "size1_last_dim": ((3, 4, 1), (3, 4, 1)),
}


@pytest.mark.parametrize("layout", list(BROADCASTS))
@pytest.mark.parametrize("op", BIN_OPS)
def test_binary(lib, op, layout):
    a_shape, b_shape = BROADCASTS[layout]
    a, b = binary_inputs(op, a_shape, b_shape, seed=8)
    params, out_shape = binary_params(op, a_shape, b_shape)
    y = np.full(out_shape, np.nan, dtype=np.float32)
    lib.tc_binary_f32(ctypes.byref(params), ptr(a), ptr(b), ptr(y))
    assert_close(y, binary_ref(op, a, b))


@pytest.mark.parametrize("layout", ["same_shape", "b_scalar", "b_per_channel", "b_middle_axis"])
@pytest.mark.parametrize("op", ["SUB", "DIV", "PRELU"])
def test_binary_in_place(lib, op, layout):
    """y is a's buffer (a has the output's shape)."""
    a_shape, b_shape = BROADCASTS[layout]
    a, b = binary_inputs(op, a_shape, b_shape, seed=9)
    ref = binary_ref(op, a, b)
    params, _ = binary_params(op, a_shape, b_shape)
    lib.tc_binary_f32(ctypes.byref(params), ptr(a), ptr(b), ptr(a))
    assert_close(a, ref)


def test_binary_in_place_into_b(lib):
    """y is b's buffer when b has the output's shape and a is broadcast."""
    a, b = binary_inputs("SUB", (5,), (3, 4, 5), seed=10)
    ref = binary_ref("SUB", a, b)
    params, _ = binary_params("SUB", (5,), (3, 4, 5))
    lib.tc_binary_f32(ctypes.byref(params), ptr(a), ptr(b), ptr(b))
    assert_close(b, ref)


@pytest.mark.parametrize("layout", ["same_shape", "b_per_channel", "both_broadcast"])
def test_binary_fused_clamp(lib, layout):
    a_shape, b_shape = BROADCASTS[layout]
    a, b = binary_inputs("ADD", a_shape, b_shape, seed=11)
    params, out_shape = binary_params("ADD", a_shape, b_shape, act=(0.0, 2.0))
    y = np.full(out_shape, np.nan, dtype=np.float32)
    lib.tc_binary_f32(ctypes.byref(params), ptr(a), ptr(b), ptr(y))
    assert_close(y, np.clip(binary_ref("ADD", a, b), 0.0, 2.0))


def test_binary_ieee_division(lib):
    a = np.array([1.0, -1.0, 0.0, 2.0], dtype=np.float32)
    b = np.array([0.0, 0.0, 0.0, -0.0], dtype=np.float32)
    params, _ = binary_params("DIV", a.shape, b.shape)
    y = np.zeros(4, dtype=np.float32)
    lib.tc_binary_f32(ctypes.byref(params), ptr(a), ptr(b), ptr(y))
    assert_close(y, np.array([INF, -INF, np.nan, -INF]), atol=0.0, rtol=0.0)


_erf = np.vectorize(math.erf)

# op -> (reference on float64, input range, alpha, beta)
UNARY = {
    "IDENTITY": (lambda x, a, b: x, (-4, 4), 0.0, 0.0),
    "LEAKY_RELU": (lambda x, a, b: np.where(x < 0, a * x, x), (-4, 4), 0.1, 0.0),
    "SIGMOID": (lambda x, a, b: 1 / (1 + np.exp(-x)), (-12, 12), 0.0, 0.0),
    "TANH": (lambda x, a, b: np.tanh(x), (-6, 6), 0.0, 0.0),
    "HARD_SIGMOID": (lambda x, a, b: np.clip(a * x + b, 0, 1), (-6, 6), 0.2, 0.5),
    "HARD_SWISH": (lambda x, a, b: x * np.clip(x / 6 + 0.5, 0, 1), (-6, 6), 0.0, 0.0),
    "EXP": (lambda x, a, b: np.exp(x), (-10, 10), 0.0, 0.0),
    "LOG": (lambda x, a, b: np.log(x), (0.01, 50), 0.0, 0.0),
    "ABS": (lambda x, a, b: np.abs(x), (-4, 4), 0.0, 0.0),
    "NEG": (lambda x, a, b: -x, (-4, 4), 0.0, 0.0),
    "SQRT": (lambda x, a, b: np.sqrt(x), (0, 50), 0.0, 0.0),
    "RECIPROCAL": (lambda x, a, b: 1 / x, (0.1, 10), 0.0, 0.0),
    "FLOOR": (lambda x, a, b: np.floor(x), (-4, 4), 0.0, 0.0),
    "CEIL": (lambda x, a, b: np.ceil(x), (-4, 4), 0.0, 0.0),
    "ERF": (lambda x, a, b: _erf(x), (-4, 4), 0.0, 0.0),
    "SOFTPLUS": (lambda x, a, b: np.logaddexp(0, x), (-20, 20), 0.0, 0.0),
    "ELU": (lambda x, a, b: np.where(x < 0, a * np.expm1(x), x), (-4, 4), 1.3, 0.0),
    "SELU": (
        lambda x, a, b: b * np.where(x < 0, a * np.expm1(x), x),
        (-4, 4), 1.6732632423543772, 1.0507009873554805,
    ),
    "GELU": (lambda x, a, b: 0.5 * x * (1 + _erf(x / math.sqrt(2))), (-5, 5), 0.0, 0.0),
}
assert list(UNARY) == UN_OPS
# Extremes every op with an unbounded domain must survive (overflow of exp, saturation).
EXTREMES = np.array([-100.0, -30.0, -1e-6, 0.0, 1e-6, 30.0, 100.0], dtype=np.float32)


def run_unary(lib, op, x, alpha, beta, act, out=None):
    params = make(UnaryParams, op=UN_OPS.index(op), count=x.size, alpha=alpha, beta=beta,
                  act_min=act[0], act_max=act[1])
    y = np.full_like(x, np.nan) if out is None else out
    lib.tc_unary_f32(ctypes.byref(params), ptr(x), ptr(y))
    return y


@pytest.mark.parametrize("op", UN_OPS)
def test_unary(lib, op):
    fn, (lo, hi), alpha, beta = UNARY[op]
    x = uniform(np.random.default_rng(12), (3, 7, 11), lo, hi)
    if op not in ("LOG", "SQRT", "RECIPROCAL"):
        x = np.concatenate([x.ravel(), EXTREMES])
    y = run_unary(lib, op, x, alpha, beta, (-INF, INF))
    # The reference is rounded to float32 first so that overflow (exp(100)) agrees.
    with np.errstate(over="ignore"):
        ref = fn(x.astype(np.float64), alpha, beta).astype(np.float32)
    assert_close(y, ref)


@pytest.mark.parametrize(
    ("op", "act"),
    [
        pytest.param("IDENTITY", (0.0, INF), id="relu"),
        pytest.param("IDENTITY", (0.0, 6.0), id="relu6"),
        pytest.param("IDENTITY", (-1.0, 1.0), id="hardtanh"),
        pytest.param("LEAKY_RELU", (-0.2, 2.0), id="leaky_relu_clamped"),
        pytest.param("TANH", (-0.5, 0.5), id="tanh_clamped"),
        pytest.param("GELU", (0.0, 1.0), id="gelu_clamped"),
    ],
)
def test_unary_with_clamp(lib, op, act):
    fn, _, alpha, beta = UNARY[op]
    x = uniform(np.random.default_rng(13), (257,), -8.0, 8.0)
    y = run_unary(lib, op, x, alpha, beta, act)
    assert_close(y, np.clip(fn(x.astype(np.float64), alpha, beta), *act))


def test_clamp_min_greater_than_max(lib):
    """act_min > act_max gives act_max everywhere: min(max(v, lo), hi), as ONNX Clip,
    numpy.clip and torch.clamp define it."""
    x = uniform(np.random.default_rng(13), (50,), -3.0, 3.0)
    y = run_unary(lib, "IDENTITY", x, 0.0, 0.0, (1.0, -1.0))
    assert_close(y, np.full(x.shape, -1.0), atol=0.0, rtol=0.0)


def test_unary_in_place(lib):
    fn, _, alpha, beta = UNARY["SIGMOID"]
    x = uniform(np.random.default_rng(14), (100,), -8.0, 8.0)
    ref = fn(x.astype(np.float64), alpha, beta)
    run_unary(lib, "SIGMOID", x, alpha, beta, (-INF, INF), out=x)
    assert_close(x, ref)


# --------------------------------------------------------------------------------------------
# Reduce and softmax
# --------------------------------------------------------------------------------------------

REDUCE_CASES = {
    "noncontiguous_axes_1_3": ((3, 4, 5, 6), (1, 3)),
    "noncontiguous_axes_0_2": ((3, 4, 5, 6), (0, 2)),
    "last_axis": ((3, 4, 37), (2,)),
    "first_axis": ((37, 3, 4), (0,)),
    "all_axes": ((3, 4, 5, 6), (0, 1, 2, 3)),
    "global_pool_dhw": ((2, 3, 4, 5, 6), (1, 2, 3)),
    "with_size1_dims": ((3, 1, 4, 1, 5), (1, 2, 4)),
    "rank6_alternating": ((2, 3, 2, 3, 2, 3), (0, 2, 4)),
}


@pytest.mark.parametrize("case", list(REDUCE_CASES))
@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce(lib, op, case):
    shape, axes = REDUCE_CASES[case]
    x = uniform(np.random.default_rng(15), shape, -2.0, 2.0)
    kept = [1 if d in axes else n for d, n in enumerate(shape)]
    out_strides = [0 if d in axes else s for d, s in enumerate(dense_strides(kept))]
    reduce_count = math.prod(shape[d] for d in axes)
    params = make(
        ReduceParams, op=REDUCE_OPS.index(op), rank=len(shape), in_shape=shape,
        out_strides=out_strides, out_count=math.prod(kept), reduce_count=reduce_count,
    )
    y = np.full(kept, np.nan, dtype=np.float32)
    lib.tc_reduce_f32(ctypes.byref(params), ptr(x), ptr(y))
    fn = {"SUM": np.sum, "MEAN": np.mean, "MAX": np.max, "MIN": np.min}[op]
    assert_close(y, fn(x.astype(np.float64), axis=axes, keepdims=True))


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_into_transposed_output(lib, op):
    """Non-dense out_strides: x [4, 5, 6, 3] reduced over axis 1 into y stored as [3, 6, 4]
    (kept dimensions that are neighbours in x are not neighbours in y, so must not merge)."""
    x = uniform(np.random.default_rng(16), (4, 5, 6, 3), -2.0, 2.0)
    params = make(
        ReduceParams, op=REDUCE_OPS.index(op), rank=4, in_shape=(4, 5, 6, 3),
        out_strides=(1, 0, 4, 24), out_count=72, reduce_count=5,
    )
    y = np.full((3, 6, 4), np.nan, dtype=np.float32)
    lib.tc_reduce_f32(ctypes.byref(params), ptr(x), ptr(y))
    fn = {"SUM": np.sum, "MEAN": np.mean, "MAX": np.max, "MIN": np.min}[op]
    assert_close(y, fn(x.astype(np.float64), axis=1).transpose(2, 1, 0))


def test_reduce_mean_clamped(lib):
    x = uniform(np.random.default_rng(16), (4, 6, 5))
    params = make(
        ReduceParams, op=REDUCE_OPS.index("MEAN"), rank=3, in_shape=(4, 6, 5),
        out_strides=(5, 0, 1), out_count=20, reduce_count=6, act_min=-0.1, act_max=0.1,
    )
    y = np.full((4, 1, 5), np.nan, dtype=np.float32)
    lib.tc_reduce_f32(ctypes.byref(params), ptr(x), ptr(y))
    assert_close(y, np.clip(x.astype(np.float64).mean(axis=1, keepdims=True), -0.1, 0.1))


def softmax_ref(x: np.ndarray, axis: int, log: bool) -> np.ndarray:
    x = x.astype(np.float64)
    z = x - x.max(axis=axis, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return z - lse if log else np.exp(z - lse)


@pytest.mark.parametrize("log", [0, 1], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, 1, 2], ids=["first_axis", "middle_axis", "last_axis"])
def test_softmax(lib, axis, log):
    shape = (3, 5, 4)
    # |x| up to 100: expf would overflow (past 88.7) without the max subtraction.
    x = uniform(np.random.default_rng(17), shape, -100.0, 100.0)
    params = make(
        SoftmaxParams, outer=math.prod(shape[:axis]), axis_len=shape[axis],
        inner=math.prod(shape[axis + 1 :]), log=log,
    )
    y = np.full(shape, np.nan, dtype=np.float32)
    lib.tc_softmax_f32(ctypes.byref(params), ptr(x), ptr(y))
    assert_close(y, softmax_ref(x, axis, bool(log)))


@pytest.mark.parametrize("log", [0, 1], ids=["softmax", "log_softmax"])
def test_softmax_in_place(lib, log):
    x = uniform(np.random.default_rng(18), (4, 10), -5.0, 5.0)
    ref = softmax_ref(x, 1, bool(log))
    params = make(SoftmaxParams, outer=4, axis_len=10, inner=1, log=log)
    lib.tc_softmax_f32(ctypes.byref(params), ptr(x), ptr(x))
    assert_close(x, ref)


# --------------------------------------------------------------------------------------------
# Data movement (bit-exact)
# --------------------------------------------------------------------------------------------

# Element types covering the kernels' element-size paths (1, 2, 4, 8 and an odd size).
DTYPES = {
    "f32": np.dtype(np.float32),
    "i8": np.dtype(np.int8),
    "i16": np.dtype(np.int16),
    "f64": np.dtype(np.float64),
    "v3": np.dtype("V3"),
}


def random_array(shape, dtype: np.dtype, seed: int) -> np.ndarray:
    raw = np.random.default_rng(seed).integers(0, 256, size=(*shape, dtype.itemsize))
    out = np.ascontiguousarray(raw.astype(np.uint8)).view(dtype).reshape(shape)
    if dtype.kind == "f":  # keep NaN payloads out of the comparison
        out[~np.isfinite(out)] = 0
    return out


def run_strided_copy(lib, x: np.ndarray, view: np.ndarray, merged: bool = False) -> np.ndarray:
    """Copy `view` (a numpy view into x) with tc_strided_copy, deriving offset and strides
    from the view itself (merged: over the fewer dimensions the compiler passes)."""
    es = x.itemsize
    offset = (view.__array_interface__["data"][0] - x.ctypes.data) // es
    shape, strides = list(view.shape), [s // es for s in view.strides]
    if merged:
        shape, strides = merged_dims(shape, strides)
    params = make(
        StridedCopyParams, elem_size=es, rank=len(shape), shape=shape, in_strides=strides,
        in_offset=offset,
    )
    y = np.zeros(view.shape, dtype=x.dtype)
    lib.tc_strided_copy(ctypes.byref(params), ptr(x), ptr(y))
    return y


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize(
    ("shape", "perm"),
    [
        pytest.param((2, 3, 4, 5), (0, 3, 1, 2), id="transpose4_nhwc_to_nchw"),
        pytest.param((2, 3, 4, 5), (0, 2, 3, 1), id="transpose4_nchw_to_nhwc"),
        pytest.param((2, 3, 2, 4, 3, 2), (5, 0, 4, 1, 3, 2), id="transpose6"),
        pytest.param((3, 4, 5), (0, 1, 2), id="identity_contiguous_rows"),
    ],
)
@pytest.mark.parametrize("merged", [False, True], ids=["raw", "merged"])
def test_strided_copy_transpose(lib, shape, perm, dtype, merged):
    """Rows, or columns where the input runs along the second-last dimension (NCHW -> NHWC);
    with the compiler's merged dimensions too."""
    x = random_array(shape, DTYPES[dtype], seed=19)
    y = run_strided_copy(lib, x, x.transpose(perm), merged)
    assert_equal(y, np.ascontiguousarray(x.transpose(perm)))


def testmerged_dims_make_nchw_to_nhwc_one_column_per_channel():
    assert merged_dims((1, 32, 32, 3), (3072, 32, 1, 1024)) == ([1024, 3], [1, 1024])
    assert merged_dims((2, 1, 5), (5, 7, 1)) == ([10], [1])


@pytest.mark.parametrize("dtype", ["f32", "i8", "v3"])
@pytest.mark.parametrize(
    "index",
    [
        pytest.param((slice(5, 0, -2), slice(1, 6), slice(None, None, -3)), id="negative_steps"),
        pytest.param((slice(None, None, -1), slice(None, None, -1), slice(None, None, -1)),
                     id="reverse_all"),
        pytest.param((slice(2, 3), slice(6, 1, -1), slice(1, 8, 2)), id="mixed_steps"),
        pytest.param((slice(1, 4), slice(0, 7), slice(2, 6)), id="contiguous_rows"),
    ],
)
@pytest.mark.parametrize("merged", [False, True], ids=["raw", "merged"])
def test_strided_copy_slice(lib, index, dtype, merged):
    x = random_array((6, 7, 8), DTYPES[dtype], seed=20)
    view = x[index]
    assert_equal(run_strided_copy(lib, x, view, merged), np.ascontiguousarray(view))


@pytest.mark.parametrize("dtype", ["f32", "i8", "v3"])
def test_concat_three_inputs_middle_axis(lib, dtype):
    dt = DTYPES[dtype]
    parts = [random_array((2, e, 4, 3), dt, seed=21 + i) for i, e in enumerate((3, 1, 5))]
    chunks = (ctypes.c_int32 * 3)(*[p[0].size for p in parts])
    params = make(ConcatParams, elem_size=parts[0].itemsize, outer=2, num_inputs=3,
                  chunks=ctypes.cast(chunks, ctypes.POINTER(ctypes.c_int32)))
    inputs = (ctypes.c_void_p * 3)(*[ptr(p) for p in parts])
    y = np.zeros((2, 9, 4, 3), dtype=parts[0].dtype)
    lib.tc_concat(ctypes.byref(params), ctypes.cast(inputs, ctypes.c_void_p), ptr(y))
    assert_equal(y, np.concatenate(parts, axis=1))


PAD_CASES = {
    "rank3": ((3, 4, 5), ((1, 2), (0, 3), (2, 1))),
    "rank1": ((6,), ((3, 4),)),
    "pad_wider_than_input": ((3, 2, 3), ((0, 0), (4, 5), (7, 3))),
    "rank6": ((2, 1, 2, 3, 1, 4), ((1, 0), (0, 0), (1, 1), (0, 2), (0, 0), (2, 1))),
    "outer_dims_only": ((3, 4, 5), ((2, 1), (1, 2), (0, 0))),
    "size1_dims_padded": ((1, 3, 1), ((2, 1), (1, 1), (0, 2))),
}


@pytest.mark.parametrize("dtype", ["f32", "i8", "f64"])
@pytest.mark.parametrize("case", list(PAD_CASES))
@pytest.mark.parametrize("mode", PAD_MODES)
def test_pad(lib, mode, case, dtype):
    shape, pads = PAD_CASES[case]
    dt = DTYPES[dtype]
    x = random_array(shape, dt, seed=26)
    value = np.array([-7], dtype=dt)
    expected = (
        np.pad(x, pads, mode="constant", constant_values=value[0])
        if mode == "constant" else np.pad(x, pads, mode=mode)
    )
    params = make(
        PadParams, elem_size=dt.itemsize, mode=PAD_MODES.index(mode), rank=len(shape),
        in_shape=shape, out_shape=expected.shape, pads_begin=[p[0] for p in pads],
        value_bytes=list(value.tobytes()),
    )
    y = np.zeros(expected.shape, dtype=dt)
    lib.tc_pad(ctypes.byref(params), ptr(x), ptr(y))
    assert_equal(y, expected)


# --------------------------------------------------------------------------------------------
# Cortex-M4 build
# --------------------------------------------------------------------------------------------

KERNEL_SOURCES = sorted(RUNTIME.glob("*.c"))


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
@pytest.mark.parametrize("source", KERNEL_SOURCES, ids=[p.name for p in KERNEL_SOURCES])
def test_compiles_for_cortex_m4(source, tmp_path):
    """Warning-free (including -Wdouble-promotion) for an FPU-single Cortex-M4, and
    self-contained: the object needs no other kernel file, only the C library."""
    undefined = cortex_m4_undefined_symbols(source, tmp_path) or []
    assert not [s for s in undefined if s.startswith("tc_")], undefined


# tc_depthwise_conv3x3_f32: plain depthwise 3x3, stride_w 1 or 2, every padding case of a row
# (windows cut at the top, bottom, left and right; rows and whole windows in the padding),
# interior runs of every length modulo the unrolling (3 at stride 1, 2 at stride 2), 3-D
# inputs made of independent slices, batches.
DEPTHWISE3X3_CASES = [
    pytest.param(ConvCase((1, 1, 16, 16, 16), 16, (1, 3, 3), pad=(0, 1, 1), pad_end=(0, 1, 1),
                          groups=16, act=(0.0, 6.0)), id="mobilenet_s1_relu6"),
    pytest.param(ConvCase((2, 1, 9, 9, 8), 8, (1, 3, 3), stride=(1, 2, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 1), groups=8), id="s2_pad1_batch2"),
    pytest.param(ConvCase((1, 1, 8, 8, 5), 5, (1, 3, 3), stride=(1, 2, 2), pad=(0, 0, 0),
                          pad_end=(0, 1, 1), groups=5), id="s2_same_upper"),
    pytest.param(ConvCase((1, 1, 7, 10, 3), 3, (1, 3, 3), groups=3, bias=False),
                 id="s1_valid_run8"),
    pytest.param(ConvCase((1, 1, 5, 11, 4), 4, (1, 3, 3), pad=(0, 2, 2), pad_end=(0, 2, 2),
                          groups=4), id="pad2_rows_in_padding"),
    pytest.param(ConvCase((1, 1, 2, 2, 6), 6, (1, 3, 3), stride=(1, 3, 1), pad=(0, 3, 1),
                          pad_end=(0, 3, 1), groups=6), id="whole_windows_in_padding"),
    pytest.param(ConvCase((1, 1, 6, 12, 7), 7, (1, 3, 3), stride=(1, 1, 2), pad=(0, 1, 1),
                          pad_end=(0, 1, 0), groups=7, act=(-0.5, 0.75)), id="s2_rows_s1"),
    pytest.param(ConvCase((1, 1, 3, 2, 2), 2, (1, 3, 3), pad=(0, 1, 1), pad_end=(0, 1, 1),
                          groups=2), id="narrower_than_kernel"),
    pytest.param(ConvCase((2, 3, 6, 7, 9), 9, (1, 3, 3), stride=(1, 2, 1), pad=(0, 1, 1),
                          pad_end=(0, 0, 1), groups=9), id="3d_slices_batch2"),
    pytest.param(ConvCase((1, 3, 5, 6, 4), 4, (1, 3, 3), stride=(2, 1, 1), pad=(1, 1, 1),
                          pad_end=(1, 1, 1), groups=4), id="3d_slices_in_depth_padding"),
    # 3-D windows (the EEG networks' k_d = 3 layers): depth slices added one after the
    # other, windows cut by the depth padding, depth stride 2, k_d 2, batches.
    pytest.param(ConvCase((1, 4, 6, 9, 16), 16, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1),
                          groups=16, act=(0.0, 6.0)), id="eeg_k3_pad1"),
    pytest.param(ConvCase((2, 5, 7, 8, 4), 4, (3, 3, 3), stride=(2, 2, 2), pad=(1, 1, 1),
                          pad_end=(1, 1, 0), groups=4), id="stride2_batch2"),
    pytest.param(ConvCase((1, 3, 5, 6, 3), 3, (2, 3, 3), pad=(0, 1, 1), pad_end=(1, 1, 1),
                          groups=3, bias=False), id="k2_depth_pad_end"),
    pytest.param(ConvCase((1, 2, 4, 6, 5), 5, (3, 3, 3), stride=(3, 1, 1), pad=(2, 1, 1),
                          pad_end=(3, 1, 1), groups=5), id="windows_in_depth_padding"),
]




@pytest.mark.parametrize("case", DEPTHWISE3X3_CASES)
def test_depthwise3x3_equals_conv(lib, case):
    """tc_depthwise_conv3x3_f32 (k_d 1) and _3d_f32 (a 3-D window's slices added to the row one
    after the other) sum in tc_conv_f32's order kd, kh, kw: the same outputs bit for bit."""
    x, w, b, y = run_conv(lib, case, seed=6)
    yd = np.full_like(y, np.nan)
    kernel = "tc_depthwise_conv3x3_3d_f32" if case.k[0] > 1 else "tc_depthwise_conv3x3_f32"
    getattr(lib, kernel)(ctypes.byref(case.params(case.conv_out())), ptr(x), ptr(w), ptr(b),
                         ptr(yd))
    assert_equal(yd, y)
    assert_close(yd, conv_ref(x, w, b, case))


def depthwise_case(x_shape, stride: int, pad: tuple[int, int]) -> ConvCase:
    """A 2-D depthwise 3x3 layer (ReLU6) on an NHWC input, stride and (begin, end) padding."""
    c = x_shape[-1]
    return ConvCase((x_shape[0], 1, *x_shape[1:]), c, (1, 3, 3), stride=(1, stride, stride),
                    pad=(0, pad[0], pad[0]), pad_end=(0, pad[1], pad[1]), groups=c,
                    act=(0.0, 6.0))


@pytest.mark.parametrize(("x_shape", "stride", "pad", "function"), [
    # channels in blocks of 8: the blocked kernel, except on long rows at stride 1
    ((1, 16, 16, 16), 1, (1, 1), "tc_depthwise_conv3x3_f32"),
    ((1, 48, 48, 8), 1, (1, 1), "tc_depthwise_conv3x3_f32"),
    ((1, 12, 12, 64), 1, (1, 1), "tc_depthwise_conv_blocked_f32"),
    ((1, 16, 16, 32), 2, (1, 1), "tc_depthwise_conv_blocked_f32"),
    ((1, 4, 4, 64), 1, (1, 1), "tc_depthwise_conv_blocked_f32"),
    ((1, 8, 8, 8), 1, (3, 3), "tc_depthwise_conv_blocked_f32"),
    # other channel counts: the 3x3 kernel where it applies and pays, else tc_conv_f32
    ((1, 16, 16, 12), 2, (1, 1), "tc_depthwise_conv3x3_f32"),
    ((1, 9, 9, 12), 2, (0, 1), "tc_depthwise_conv3x3_f32"),  # TensorFlow's SAME at stride 2
    ((1, 8, 8, 12), 1, (2, 2), "tc_depthwise_conv3x3_f32"),
    ((1, 4, 4, 60), 1, (1, 1), "tc_conv_f32"),  # rows too short to pay for the set-up
    ((1, 8, 8, 12), 2, (2, 2), "tc_conv_f32"),  # two padding columns at stride 2
    ((1, 8, 8, 12), 1, (3, 3), "tc_conv_f32"),
])
def test_compiler_picks_the_depthwise_kernel(x_shape, stride, pad, function):
    assert compiler_kernel(depthwise_case(x_shape, stride, pad)) == function


# tc_depthwise_conv_blocked_f32: pixel pairs and single pixels (odd widths, windows that differ
# at the edges), strides, dilation, 3-D windows in the depth padding, batch 2, blocks 1 to 3,
# a clamp, no bias.
DEPTHWISE_BLOCKED_CASES = [
    pytest.param(depthwise_case((1, 7, 9, 16), 1, (1, 1)), id="16ch_pad1_odd_width"),
    pytest.param(depthwise_case((2, 9, 8, 8), 2, (0, 1)), id="8ch_stride2_same_batch2"),
    pytest.param(ConvCase((1, 1, 6, 7, 24), 24, (1, 3, 3), dil=(1, 2, 2), pad=(0, 2, 2),
                          pad_end=(0, 2, 2), groups=24, bias=False), id="24ch_dilation2"),
    pytest.param(ConvCase((1, 4, 5, 6, 8), 8, (3, 3, 3), stride=(2, 1, 2), pad=(2, 1, 1),
                          pad_end=(2, 1, 1), groups=8, act=(-0.5, 0.75)),
                 id="3d_windows_in_depth_padding"),
    pytest.param(ConvCase((1, 1, 2, 2, 16), 16, (1, 3, 3), pad=(0, 3, 3), pad_end=(0, 3, 3),
                          groups=16), id="windows_wholly_in_padding"),
    pytest.param(ConvCase((2, 1, 1, 9, 8), 8, (1, 1, 5), pad=(0, 0, 2), pad_end=(0, 0, 2),
                          groups=8), id="1d_k5"),
]


@pytest.mark.parametrize("case", DEPTHWISE_BLOCKED_CASES)
def test_depthwise_blocked_equals_conv(lib, case):
    """tc_depthwise_conv_blocked_f32, given the compiler's layout (blocked_weights with one
    input channel per group), sums each output's valid taps in tc_conv_f32's order: the same
    outputs bit for bit."""
    assert compiler_kernel(case) == "tc_depthwise_conv_blocked_f32"
    x, w, b, y = run_conv(lib, case, seed=11)
    wb = blocked_weights(w)
    yb = np.full_like(y, np.nan)
    lib.tc_depthwise_conv_blocked_f32(ctypes.byref(case.params(case.conv_out())), ptr(x),
                                      ptr(wb), ptr(b), ptr(yb))
    assert_equal(yb, y)
    assert_close(yb, conv_ref(x, w, b, case))


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="no QEMU")
def test_depthwise_blocked_assembly_equals_c_on_qemu(tmp_path):
    """On the Cortex-M4 the blocked depthwise kernel's VLDM loops (dw_block_dot2 / _dot1) give
    the host build's C sums bit for bit (both multiply, then add): a model of such layers run on
    qemu-m4 and on the host."""
    from torch import nn

    from tinyc.firmware import open_project, run
    from tinyc.project import compile_model, sample_inputs, write_project

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU6(),  # pairs and a single pixel
        nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16),
        nn.Conv2d(16, 16, (1, 5), padding=(0, 2), groups=16, bias=False)).eval()
    path = tmp_path / "dw.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 16, 7, 9)), str(path))
    compiled = compile_model(path, load_board("qemu-m4"), input_shape="1x16x7x9")
    functions = [layer["function"] for layer in compiled.report["layers"]]
    assert functions.count("tc_depthwise_conv_blocked_f32") == 3, functions
    write_project(compiled, tmp_path / "p")
    project = open_project(tmp_path / "p")
    samples = sample_inputs([((1, 16, 7, 9), "float32")], 2)
    host, board = (run(project, samples, target).outputs for target in ("host", "board"))
    for h, q in zip(host, board, strict=True):
        np.testing.assert_array_equal(q[0], h[0])


def test_depthwise_blocked_in_place_at_the_compilers_shift(lib):
    case = depthwise_case((1, 6, 7, 16), 1, (1, 1))
    (declared,) = kernel_memory(conv_graph(case))[1]["n0"]
    assert declared.tensor == "x" and declared.shift < 0
    x, w, b, expected = run_conv(lib, case, seed=12)
    out = conv_in_place(lib, "tc_depthwise_conv_blocked_f32", case, declared.shift, x,
                        blocked_weights(w), b)
    assert_equal(out, expected)


@pytest.mark.parametrize(("x_shape", "stride"), [((1, 8, 9, 12), 1), ((2, 9, 8, 12), 2),
                                                 ((1, 6, 7, 3), 1)])
def test_depthwise3x3_in_place_at_the_compilers_shift(lib, x_shape, stride):
    """tc_depthwise_conv3x3_f32 writes channel after channel, so the compiler lets it overwrite
    its input only at an exact shift of whole pixels: there it gives the out-of-place outputs
    bit for bit."""
    case = depthwise_case(x_shape, stride, (1, 1))
    (declared,) = kernel_memory(conv_graph(case))[1]["n0"]
    assert declared.exact and declared.shift < 0 and declared.shift % (4 * case.out_c) == 0
    assert compiler_kernel(case) == "tc_depthwise_conv3x3_f32"
    x, w, b, expected = run_conv(lib, case, seed=7)
    out = conv_in_place(lib, "tc_depthwise_conv3x3_f32", case, declared.shift, x, w, b)
    assert_equal(out, expected)


@pytest.mark.skipif(shutil.which("arm-none-eabi-objdump") is None, reason="no arm toolchain")
@pytest.mark.parametrize("board_id", ["qemu-m4", "qemu-m7", "nucleo-h743zi2", "qemu-m55"])
def test_float_multiply_adds_fuse_only_where_the_fma_is_pipelined(board_id, tmp_path):
    """tc_mac_f32 is one VFMA on the Cortex-M7 (pipelined FMA) and a VMUL + VADD elsewhere
    (the M4's VFMA takes 3 cycles): compiled with the board's own flags, as a project is."""
    board = load_board(board_id)
    fused = board.core in FUSED_MAC_CORES
    assert ("-DTC_FUSED_MAC" in board.cflags) == fused
    obj = tmp_path / "tc_conv_f32.o"
    subprocess.run(["arm-none-eabi-gcc", *board.cflags, "-std=c99", "-O2", "-c",
                    f"-I{RUNTIME}", str(RUNTIME / "tc_conv_f32.c"), "-o", str(obj)], check=True)
    asm = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], capture_output=True,
                         text=True, check=True).stdout
    assert ("vfma.f32" in asm) == fused
    assert ("vmul.f32" in asm) != fused


@pytest.mark.skipif(shutil.which("arm-none-eabi-objdump") is None, reason="no arm toolchain")
@pytest.mark.parametrize("board_id", ["qemu-m4", "qemu-m7", "qemu-m55", "qemu-m3"])
def test_block_loads_compile_at_every_optimization_level(board_id, tmp_path):
    """block_dot1 / block_dot2's inline assembly (one VLDM per input value into s16-s23, the
    sums in s0-s15) compiles warning-free at every optimization level with the board's flags,
    and the optimized builds of cores with a single-precision FPU use it."""
    board = load_board(board_id)
    obj = tmp_path / "tc_conv_f32.o"
    for opt in ("-O0", "-O1", "-O2", "-O3", "-Os", "-Og", "-Og -fno-omit-frame-pointer"):
        result = subprocess.run(["arm-none-eabi-gcc", *C_WARNINGS, *board.cflags, *opt.split(),
                                 "-c", f"-I{RUNTIME}", str(RUNTIME / "tc_conv_f32.c"), "-o",
                                 str(obj)], capture_output=True, text=True)
        assert result.returncode == 0, f"{board_id} {opt}:\n{result.stderr}"
        asm = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], capture_output=True,
                             text=True, check=True).stdout
        fpu = "-mfloat-abi=hard" in board.cflags
        assert ("{s16-s23}" in asm) == (fpu and opt != "-O0"), (board_id, opt)


def test_depthwise3x3_3d_in_place_at_the_compilers_shift(lib):
    """3-D: each output row is written (set to 0, then each slice added) before its windows are
    all read, and the compiler's shift allows for that."""
    case = ConvCase((1, 4, 6, 8, 6), 6, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1), groups=6,
                    act=(0.0, 6.0))
    assert compiler_kernel(case) == "tc_depthwise_conv3x3_3d_f32"
    (declared,) = kernel_memory(conv_graph(case))[1]["n0"]
    assert declared.exact and declared.shift < 0 and declared.shift % (4 * 6) == 0
    x, w, b, expected = run_conv(lib, case, seed=10)
    out = conv_in_place(lib, "tc_depthwise_conv3x3_3d_f32", case, declared.shift, x, w, b)
    assert_equal(out, expected)


@pytest.mark.parametrize(("x_shape", "stride", "function"), [
    ((1, 8, 9, 16, 16), 1, "tc_depthwise_conv3x3_3d_f32"),  # the eeg3dcnn's block
    ((1, 4, 4, 8, 12), 2, "tc_conv_f32"),  # 4 output columns: the passes cost more
    ((1, 4, 4, 8, 16), 2, "tc_depthwise_conv_blocked_f32"),  # ... channels in blocks of 8
])
def test_compiler_picks_the_3d_depthwise_kernel(x_shape, stride, function):
    c = x_shape[-1]
    case = ConvCase(x_shape, c, (3, 3, 3), stride=(stride,) * 3, pad=(1, 1, 1),
                    pad_end=(1, 1, 1), groups=c)
    assert compiler_kernel(case) == function
