"""The binary C kernels (runtime_c/tc_binary.h) against tinyc.binary's NumPy references and
against a float PyTorch convolution / max pool of +/-1 data, requiring exact equality (Larq
Compute Engine's test strategy), plus the compile-time helpers of tinyc.binary.

The binary sources are compiled with the host gcc into a library of their own (together with a
small shim exposing the header's inline helpers) and called through ctypes; the parameter
structs are mirrored once below and checked against the header.  Every case is seeded; channel
counts sweep the word boundaries (1, 3, 16, 31, 32, 33, 63, 64, 65, 128, 200); every failure
prints the position, the actual and the expected value.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from helpers import C_WARNINGS, RUNTIME, c_struct, kernel_library, random_window
from tinyc import binary as B

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the torch cross-checks are skipped
    torch = None
    F = None

SOURCES = ["tc_bitpack.c", "tc_bconv.c", "tc_bconv_fast.c", "tc_bfc.c", "tc_bmaxpool.c"]
ARM_CORES = {
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "cortex-m0": ["-mcpu=cortex-m0", "-mthumb"],
}
CHANNELS = [1, 3, 16, 31, 32, 33, 63, 64, 65, 128, 200]
INF = math.inf
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

# ------------------------------------------------------------------------------------------------
# ctypes mirrors of the parameter structs (the one place that knows their layout)
# ------------------------------------------------------------------------------------------------


_SPATIAL = ("in_d in_h in_w {c} out_d out_h out_w {o}k_d k_h k_w stride_d stride_h stride_w "
            "dilation_d dilation_h dilation_w pad_d pad_h pad_w")
BConvParams = c_struct(
    "tc_bconv_params_t",
    "batch " + _SPATIAL.format(c="in_c", o="out_c ")
    + " groups lead_d lead_h lead_w trail_d trail_h trail_w act_min:f act_max:f out_min out_max"
    + " out_shift",
)
BFcParams = c_struct("tc_bfc_params_t",
                     "batch in_c out_c act_min:f act_max:f out_min out_max out_shift")
BMaxPoolParams = c_struct("tc_bmaxpool_params_t", "batch " + _SPATIAL.format(c="c", o=""))
BitpackParams = c_struct("tc_bitpack_params_t", "outer channels threshold_f32:f threshold_s8")
BitunpackParams = c_struct("tc_bitunpack_params_t", "outer channels plus_s8 minus_s8")
STRUCTS = [BConvParams, BFcParams, BMaxPoolParams, BitpackParams, BitunpackParams]

P = ctypes.c_void_p
KERNELS = {
    "tc_bconv_s32": (BConvParams, 4), "tc_bconv_f32": (BConvParams, 6),
    "tc_bconv_s8": (BConvParams, 6), "tc_bconv_b1": (BConvParams, 6),
    "tc_bfc_s32": (BFcParams, 3), "tc_bfc_f32": (BFcParams, 5),
    "tc_bfc_s8": (BFcParams, 5), "tc_bfc_b1": (BFcParams, 5),
    "tc_bmaxpool_b1": (BMaxPoolParams, 2),
    "tc_bitpack_f32": (BitpackParams, 3), "tc_bitpack_s8": (BitpackParams, 4),
    "tc_bitunpack_f32": (BitunpackParams, 2), "tc_bitunpack_s8": (BitunpackParams, 2),
}

SHIM = """
#include "tc_binary.h"
int32_t shim_popcount(uint32_t v) { return tc_popcount_u32(v); }
uint32_t shim_bits_get(const uint32_t *v, int32_t bit, int32_t n) { return tc_bits_get(v, bit, n); }
"""


def make(cls: type[ctypes.Structure], values: dict) -> ctypes.Structure:
    """A params struct from a dict holding exactly its fields."""
    names = [f for f, _ in cls._fields_]
    assert set(values) == set(names), f"{cls.__name__}: {set(values) ^ set(names)}"
    return cls(**values)


def ptr(array: np.ndarray | None) -> int | None:
    """The address of a C-contiguous array, or None (NULL).  The caller keeps the array alive:
    never pass a temporary."""
    if array is None:
        return None
    assert array.flags.c_contiguous
    return array.ctypes.data


def assert_same(actual: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    """Exact equality (bit for bit for floats), reporting the first differing positions."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if actual.dtype.kind == "f":
        bad = np.argwhere(actual.view(np.uint32 if actual.itemsize == 4 else np.uint64)
                          != expected.astype(actual.dtype).view(
                              np.uint32 if actual.itemsize == 4 else np.uint64))
    else:
        bad = np.argwhere(actual != expected)
    if len(bad):
        lines = [f"{what}: {len(bad)} of {actual.size} elements differ:"]
        for pos in bad[:10]:
            t = tuple(int(i) for i in pos)
            lines.append(f"  at {t}: got {actual[t]!r}, expected {expected[t]!r}")
        pytest.fail("\n".join(lines))


@pytest.fixture(scope="session")
def lib(tmp_path_factory) -> ctypes.CDLL:
    build = tmp_path_factory.mktemp("tc_binary")
    shim = build / "shim.c"
    shim.write_text(SHIM)
    library = kernel_library(build, [*(RUNTIME / s for s in SOURCES), shim], ["tc_binary.h"],
                             STRUCTS, KERNELS)
    library.shim_popcount.argtypes = [ctypes.c_uint32]
    library.shim_popcount.restype = ctypes.c_int32
    library.shim_bits_get.argtypes = [P, ctypes.c_int32, ctypes.c_int32]
    library.shim_bits_get.restype = ctypes.c_uint32
    return library


def test_struct_mirrors_match_header(lib):
    for cls in STRUCTS:
        c_layout = (ctypes.c_size_t * (1 + len(cls._fields_))).in_dll(lib, f"layout_{cls.__name__}")
        py_layout = [ctypes.sizeof(cls)] + [getattr(cls, f).offset for f, _ in cls._fields_]
        assert list(c_layout) == py_layout, f"{cls.__name__}: C {list(c_layout)} != {py_layout}"


def test_c_params_fill_the_structs():
    geom = B.conv_geometry((4, 5), 33, 7, (3, 3), pads_begin=(1, 1), pads_end=(1, 1))
    assert set(geom.c_params(1)) == {f for f, _ in BConvParams._fields_}
    pool = B.pool_geometry((4, 5), 33, (2, 2))
    assert set(pool.c_params(1)) == {f for f, _ in BMaxPoolParams._fields_}


# ------------------------------------------------------------------------------------------------
# Helpers of the header
# ------------------------------------------------------------------------------------------------


def test_popcount_swar(lib):
    rng = np.random.default_rng(0)
    edge = [0, 1, 0x80000000, 0xFFFFFFFF, 0x55555555, 0xAAAAAAAA, 0x0F0F0F0F, 0x7FFFFFFF]
    for v in edge + [int(v) for v in rng.integers(0, 2**32, 2000, dtype=np.uint64)]:
        got = lib.shim_popcount(v)
        assert got == bin(v).count("1"), f"popcount({v:#010x}) = {got}"


def test_bits_get_reads_fields_across_words(lib):
    rng = np.random.default_rng(1)
    stream = rng.integers(0, 2**32, 4, dtype=np.uint64).astype(np.uint32)
    bits = B.unpack_bits(stream, 128)
    for start in range(0, 128):
        for n in (1, 5, 31, 32):
            if start + n > 128:
                continue
            got = lib.shim_bits_get(ptr(stream), start, n) & ((1 << n) - 1)
            expected = sum(int(b) << i for i, b in enumerate(bits[start:start + n]))
            assert got == expected, f"bits [{start}, {start + n}): {got:#x} != {expected:#x}"


# ------------------------------------------------------------------------------------------------
# Bit packing
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", CHANNELS)
def test_bitpack_f32(lib, channels):
    rng = np.random.default_rng(channels)
    x = rng.standard_normal((3, 2, channels)).astype(np.float32)
    x.flat[:: 7] = 0.0
    x.flat[1:: 11] = -0.0
    x.flat[2:: 13] = np.float32(-1e-45)  # the smallest negative subnormal: -1
    thr = rng.standard_normal(channels).astype(np.float32)
    for threshold, scalar in ((None, 0.0), (None, 0.25), (thr, 0.0)):
        p = make(BitpackParams, {"outer": 6, "channels": channels, "threshold_f32": scalar,
                                 "threshold_s8": 0})
        y = np.full((6, B.words(channels)), 0xDEADBEEF, dtype=np.uint32)
        lib.tc_bitpack_f32(ctypes.byref(p), ptr(x), ptr(threshold), ptr(y))
        expected = B.pack_signs(x.reshape(6, channels), scalar if threshold is None else thr)
        assert_same(y, expected, f"threshold {'per channel' if threshold is not None else scalar}")


@pytest.mark.parametrize("channels", CHANNELS)
def test_bitpack_s8_and_unpack_roundtrip(lib, channels):
    rng = np.random.default_rng(100 + channels)
    x = rng.integers(-128, 128, (4, channels), dtype=np.int8)
    x.flat[::5] = -128
    x.flat[1::7] = 127
    thr = rng.integers(-130, 131, channels)
    thr[:3] = (-129, 128, 300)[:channels]  # below -128: no bit; above 127: every bit
    thr8 = np.clip(thr, -128, 127).astype(np.int8)
    always = B.pack_bits(thr > 127)
    for threshold, mask, scalar in ((None, None, 0), (None, None, -5), (None, None, -128),
                                    (None, None, -129), (None, None, 127), (None, None, 128),
                                    (thr8, always, 0)):
        p = make(BitpackParams, {"outer": 4, "channels": channels, "threshold_f32": 0.0,
                                 "threshold_s8": scalar})
        y = np.full((4, B.words(channels)), 0xFFFFFFFF, dtype=np.uint32)
        lib.tc_bitpack_s8(ctypes.byref(p), ptr(x), ptr(threshold), ptr(mask), ptr(y))
        assert_same(y, B.pack_signs(x, scalar if threshold is None else thr),
                    f"pack s8 threshold {scalar if threshold is None else 'per channel'}")

    # Unpack ignores padding bits: set them all.
    packed = y | ~B.pack_bits(np.ones((4, channels), bool))
    q = make(BitunpackParams, {"outer": 4, "channels": channels, "plus_s8": 7, "minus_s8": -9})
    out_s8 = np.zeros((4, channels), dtype=np.int8)
    lib.tc_bitunpack_s8(ctypes.byref(q), ptr(packed), ptr(out_s8))
    bits = B.unpack_bits(y, channels)
    assert_same(out_s8, np.where(bits, -9, 7).astype(np.int8), "unpack s8")
    out_f32 = np.zeros((4, channels), dtype=np.float32)
    lib.tc_bitunpack_f32(ctypes.byref(q), ptr(packed), ptr(out_f32))
    assert_same(out_f32, B.bits_to_pm1(bits).astype(np.float32), "unpack f32")


def test_s8_sign_threshold_is_exact():
    # real value s * (q - z) < alpha  <=>  q < ceil(z + alpha / s)
    for z, s, alpha in [(0, 0.1, 0.0), (-3, 0.05, 0.0), (10, 0.5, 1.0), (10, 0.5, -1.25),
                        (-128, 0.02, 0.3)]:
        t = B.s8_sign_threshold(z, s, alpha)
        for q in range(-128, 128):
            real_below = Fraction(s) * (q - z) < Fraction(alpha)
            assert (q < t) == real_below, (z, s, alpha, q, t)


# ------------------------------------------------------------------------------------------------
# Binary convolution
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BConvCase:
    x: tuple[int, ...]  # N, then 1 to 3 spatial sizes
    in_c: int
    out_c: int
    k: tuple[int, ...]
    stride: tuple[int, ...] | None = None
    dil: tuple[int, ...] | None = None
    pad: tuple[int, ...] | None = None  # leading
    pad_end: tuple[int, ...] | None = None  # trailing
    groups: int = 1
    pad_value: int = 0

    def geometry(self) -> B.BConvGeometry:
        return B.conv_geometry(self.x[1:], self.in_c, self.out_c, self.k, self.stride, self.dil,
                               self.pad, self.pad_end, self.groups, self.pad_value)

    def id(self) -> str:
        g = self.geometry()
        rank = len(self.k)
        text = f"{rank}d_c{self.in_c}_o{self.out_c}_k{'x'.join(map(str, self.k))}"
        if self.groups != 1:
            text += "_dw" if self.groups == self.in_c else f"_g{self.groups}"
        if max(g.strides) > 1:
            text += "_s" + "x".join(map(str, g.strides[3 - rank:]))
        if max(g.dilations) > 1:
            text += "_d" + "x".join(map(str, g.dilations[3 - rank:]))
        if max(g.pads_begin + g.pads_end) > 0:
            text += f"_p{''.join(map(str, g.pads_begin[3 - rank:]))}-" \
                    f"{''.join(map(str, g.pads_end[3 - rank:]))}"
            text += {0: "_zero", 1: "_one", -1: "_minus"}[self.pad_value]
        return text


def _random_cases(seed: int, count: int) -> list[BConvCase]:
    """Seeded random geometries: every channel count of CHANNELS, ranks 1-3, strides and
    dilations 1-2, asymmetric pads, plain / grouped / depthwise, zero / one / minus-one padding."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        in_c = CHANNELS[i % len(CHANNELS)]
        rank = int(rng.integers(1, 4))
        divisors = [g for g in range(2, in_c + 1) if in_c % g == 0]
        kind = rng.choice(["plain", "grouped", "depthwise"], p=[0.5, 0.25, 0.25])
        groups = 1
        if kind == "depthwise":
            groups = in_c
        elif kind == "grouped" and divisors:
            groups = int(rng.choice(divisors[: max(1, len(divisors) // 2)]))
        cog = int(rng.choice([1, 2, 3])) if groups > 1 else int(rng.choice([1, 7, 32, 33, 40]))
        k, stride, dil, pad, pad_end, sizes = random_window(rng, rank, {1: 9, 2: 6, 3: 4}[rank])
        pad_value = int(rng.choice([0, 1, -1], p=[0.5, 0.35, 0.15]))
        batch = int(rng.integers(1, 3))
        cases.append(BConvCase((batch, *sizes), in_c, groups * cog, k, stride, dil, pad,
                               pad_end, groups, pad_value))
    return cases


NAMED_CASES = [
    BConvCase((1, 5, 6), 33, 7, (3, 3), pad=(1, 1), pad_end=(1, 1), pad_value=1),
    BConvCase((2, 4, 5, 6), 64, 33, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1)),
    BConvCase((1, 4, 4, 5), 16, 8, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1), pad_value=1),
    BConvCase((1, 9, 9), 3, 5, (3, 3), stride=(2, 2), pad=(1, 1), pad_end=(1, 1), pad_value=1),
    BConvCase((1, 10, 9), 32, 32, (3, 3), stride=(2, 2), pad=(0, 1), pad_end=(1, 2),
              pad_value=1),  # asymmetric, TF "same" upper
    BConvCase((1, 8, 7), 66, 4, (3, 3), pad=(1, 1), pad_end=(1, 1), groups=2),  # cig 33
    BConvCase((1, 5, 5), 200, 16, (3, 3), pad=(1, 1), pad_end=(1, 1), groups=8,
              pad_value=1),  # cig 25: group slices straddle words
    BConvCase((1, 5, 5), 192, 6, (3, 3), pad=(1, 1), pad_end=(1, 1), groups=3),  # cig 64 aligned
    BConvCase((1, 4, 6, 6), 33, 66, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1), groups=33,
              pad_value=1),  # depthwise, multiplier 2
    BConvCase((2, 7, 8), 64, 64, (3, 3), stride=(2, 2), dil=(1, 2), pad=(1, 2),
              pad_end=(1, 2), groups=64),  # depthwise, dilated, strided
    BConvCase((1, 17), 31, 5, (5,), pad=(2,), pad_end=(2,), pad_value=1),  # 1-D
    BConvCase((1, 3, 4), 35, 3, (5, 5), pad=(2, 2), pad_end=(2, 2),
              pad_value=1),  # kernel larger than the input
    BConvCase((1, 4, 5), 40, 3, (1, 1), stride=(2, 2), pad=(1, 1), pad_end=(1, 1),
              pad_value=1),  # 1x1 windows entirely in the padding
    BConvCase((1, 2, 2, 2), 128, 65, (1, 1, 1)),  # pointwise
]
CONV_CASES = NAMED_CASES + _random_cases(seed=7, count=33)
CONV_IDS = [c.id() for c in CONV_CASES]
assert len(set(CONV_IDS)) == len(CONV_IDS), "case ids must be unique"


@dataclass
class ConvRun:
    case: BConvCase
    geom: B.BConvGeometry
    x_pm1: np.ndarray  # [N, D, H, W, in_c] int8
    w_pm1: np.ndarray  # [out_c, kd, kh, kw, cig] int8
    x: np.ndarray  # packed
    w: np.ndarray  # packed
    corr: np.ndarray | None
    dot: np.ndarray  # the reference dot products

    @classmethod
    def create(cls, case: BConvCase, seed: int) -> ConvRun:
        rng = np.random.default_rng(seed)
        geom = case.geometry()
        x_pm1 = B.bits_to_pm1(rng.random((case.x[0], *geom.in_shape, case.in_c)) < 0.5)
        w_real = rng.standard_normal((case.out_c, *geom.kernel, geom.cig)).astype(np.float32)
        w_pm1 = B.bits_to_pm1(B.sign_bits(w_real))
        return cls(case, geom, x_pm1, w_pm1, B.pack_bits(B.pm1_to_bits(x_pm1)),
                   B.pack_conv_weights(w_real), B.padding_correction(geom, w_real),
                   B.bconv_dot(x_pm1, w_pm1, geom))

    def out_shape(self, packed: bool = False) -> tuple[int, ...]:
        last = B.words(self.case.out_c) if packed else self.case.out_c
        return (self.case.x[0], *self.geom.out_shape, last)

    def params(self, **kw) -> ctypes.Structure:
        return make(BConvParams, self.geom.c_params(self.case.x[0], **kw))


def torch_conv_pm1(run: ConvRun) -> np.ndarray:
    """conv3d in float64 of the +/-1 data, padded with the case's pad value: the dot products."""
    g = run.geom
    x = torch.from_numpy(run.x_pm1.astype(np.float64)).permute(0, 4, 1, 2, 3)
    pads = (g.pads_begin[2], g.pads_end[2], g.pads_begin[1], g.pads_end[1], g.pads_begin[0],
            g.pads_end[0])
    x = F.pad(x, pads, value=float(g.pad_value))
    w = torch.from_numpy(run.w_pm1.astype(np.float64)).permute(0, 4, 1, 2, 3)
    y = F.conv3d(x, w, stride=g.strides, dilation=g.dilations, groups=g.groups)
    return y.permute(0, 2, 3, 4, 1).numpy()


@needs_torch
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_bconv_s32_matches_reference_and_torch(lib, case):
    run = ConvRun.create(case, seed=1)
    assert_same(run.dot, torch_conv_pm1(run).astype(np.int32), "reference vs torch conv")
    y = np.full(run.out_shape(), -12345, dtype=np.int32)
    lib.tc_bconv_s32(ctypes.byref(run.params()), ptr(run.x), ptr(run.w), ptr(run.corr), ptr(y))
    assert_same(y, run.dot, "C vs reference")
    assert np.abs(y).max() <= run.geom.n_max


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_bconv_f32(lib, case):
    run = ConvRun.create(case, seed=2)
    rng = np.random.default_rng(3)
    mul = rng.uniform(-2, 2, case.out_c).astype(np.float32)
    bias = rng.uniform(-5, 5, case.out_c).astype(np.float32)
    act = (-INF, INF) if case.in_c % 2 else (-1.5, 6.0)
    y = np.full(run.out_shape(), np.nan, dtype=np.float32)
    p = run.params(act_min=act[0], act_max=act[1])
    lib.tc_bconv_f32(ctypes.byref(p), ptr(run.x), ptr(run.w), ptr(run.corr), ptr(mul), ptr(bias),
                     ptr(y))
    assert_same(y, B.transform_f32(run.dot, mul, bias, *act), "f32 output")


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_bconv_s8(lib, case):
    run = ConvRun.create(case, seed=4)
    rng = np.random.default_rng(5)
    # Multipliers of 1/2 and 1/4 make exact ties, rounded half up.
    mul = rng.choice([0.5, -0.25, 0.37, 3.0], case.out_c).astype(np.float32)
    bias = rng.choice([0.0, 0.5, -3.0, 1.25], case.out_c).astype(np.float32)
    lo, hi = (-128, 127) if case.in_c % 2 else (-20, 100)
    fixed = B.requant_s8(mul, bias, 1.0, 0, run.geom.n_max, lo, hi)
    y = np.zeros(run.out_shape(), dtype=np.int8)
    p = run.params(out_min=lo, out_max=hi, out_shift=fixed.shift)
    lib.tc_bconv_s8(ctypes.byref(p), ptr(run.x), ptr(run.w), ptr(run.corr), ptr(fixed.mul),
                    ptr(fixed.bias), ptr(y))
    assert_same(y, B.transform_s8(run.dot, fixed.mul, fixed.bias, fixed.shift, lo, hi),
                "s8 output")


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_bconv_b1(lib, case):
    run = ConvRun.create(case, seed=6)
    rng = np.random.default_rng(7)
    n = run.geom.n_max
    thr = rng.integers(-n - 1, n + 2, case.out_c).astype(np.int32)
    thr[::3] = 0
    flip = rng.random(case.out_c) < 0.3
    flip_words = B.pack_flip(flip)
    y = np.full(run.out_shape(packed=True), 0xA5A5A5A5, dtype=np.uint32)
    lib.tc_bconv_b1(ctypes.byref(run.params()), ptr(run.x), ptr(run.w), ptr(run.corr), ptr(thr),
                    ptr(flip_words), ptr(y))
    # Exact words: the padding bits of the output must be zero.
    assert_same(y, B.pack_bits(B.transform_b1(run.dot, thr, flip)), "packed output")


@pytest.mark.parametrize("case", [c for c in NAMED_CASES if c.in_c % 32],
                         ids=lambda c: c.id())
def test_bconv_ignores_input_padding_bits(lib, case):
    run = ConvRun.create(case, seed=8)
    garbage = run.x | ~B.pack_bits(np.ones(case.in_c, bool))
    y = np.zeros(run.out_shape(), dtype=np.int32)
    lib.tc_bconv_s32(ctypes.byref(run.params()), ptr(garbage), ptr(run.w), ptr(run.corr), ptr(y))
    assert_same(y, run.dot, "input with padding bits set")


@pytest.mark.parametrize("pad_value", [1, -1])
def test_padding_correction_table_shape_and_interior(pad_value):
    case = BConvCase((1, 6, 7), 40, 5, (3, 3), stride=(1, 2), pad=(1, 1), pad_end=(2, 1),
                     pad_value=pad_value)
    geom = case.geometry()
    w = np.random.default_rng(0).standard_normal((5, *geom.kernel, 40))
    table = B.padding_correction(geom, w)
    lead, trail = geom.padding_classes()
    assert table.shape == (*(lp + 1 + t for lp, t in zip(lead, trail, strict=True)), 5)
    assert not table[lead[0], lead[1], lead[2]].any(), "interior class must be zero"
    # Top-left corner: padded taps are row 0 and column 0 of the 3x3 kernel.
    wsum = B.bits_to_pm1(w < 0).astype(np.int64).sum(-1)[:, 0]
    corner = wsum[:, 0, :].sum(-1) + wsum[:, 1:, 0].sum(-1)
    assert_same(table[0, 0, 0], (pad_value * corner).astype(np.int32), "corner class")
    assert B.padding_correction(B.conv_geometry((6, 7), 40, 5, (3, 3), pads_begin=(1, 1),
                                                pads_end=(1, 1)), w) is None


def test_bconv_accumulator_bounds(lib):
    """Largest |dot| of a 3x3x3 kernel over 4096 channels (N = 110592): all equal, all opposite,
    with one padding adding the padded taps' full weight sums."""
    case = BConvCase((1, 3, 3, 3), 4096, 2, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1),
                     pad_value=1)
    geom = case.geometry()
    x = np.zeros((1, 3, 3, 3, B.words(4096)), dtype=np.uint32)  # all +1
    w_real = np.ones((2, 3, 3, 3, 4096), dtype=np.float32)
    w_real[1] = -1.0
    w = B.pack_conv_weights(w_real)
    corr = B.padding_correction(geom, w_real)
    y = np.zeros((1, 3, 3, 3, 2), dtype=np.int32)
    lib.tc_bconv_s32(ctypes.byref(make(BConvParams, geom.c_params(1))), ptr(x), ptr(w), ptr(corr),
                     ptr(y))
    assert (y[..., 0] == geom.n_max).all() and (y[..., 1] == -geom.n_max).all(), y[0, 1, 1, 1]
    # float(dot) exact at N: mul 1, bias 0 gives the integer back.
    yf = np.zeros((1, 3, 3, 3, 2), dtype=np.float32)
    one, zero = np.ones(2, np.float32), np.zeros(2, np.float32)
    lib.tc_bconv_f32(ctypes.byref(make(BConvParams, geom.c_params(1))), ptr(x), ptr(w),
                     ptr(corr), ptr(one), ptr(zero), ptr(yf))
    assert_same(yf, y.astype(np.float32), "f32 at the accumulator bound")


# ------------------------------------------------------------------------------------------------
# Binary fully connected
# ------------------------------------------------------------------------------------------------

FC_OUT = [1, 5, 32, 33, 70]


@pytest.mark.parametrize("in_c", CHANNELS)
def test_bfc_all_outputs(lib, in_c):
    for i, out_c in enumerate(FC_OUT):
        rng = np.random.default_rng(1000 * in_c + i)
        x_pm1 = B.bits_to_pm1(rng.random((3, in_c)) < 0.5)
        w_real = rng.standard_normal((out_c, in_c)).astype(np.float32)
        x, w = B.pack_bits(B.pm1_to_bits(x_pm1)), B.pack_fc_weights(w_real)
        x |= ~B.pack_bits(np.ones(in_c, bool))  # padding bits set: must be masked
        dot = B.bfc_dot(x_pm1, B.bits_to_pm1(w_real < 0))
        if torch is not None:
            ref = F.linear(torch.from_numpy(x_pm1.astype(np.float64)),
                           torch.from_numpy(B.bits_to_pm1(w_real < 0).astype(np.float64)))
            assert_same(dot, ref.numpy().astype(np.int32), "reference vs torch linear")
        mul = rng.uniform(-1, 1, out_c).astype(np.float32)
        mul[::2] = 0.5
        bias = rng.choice([0.0, 0.5, -2.5, 0.3], out_c).astype(np.float32)
        thr = rng.integers(-in_c - 1, in_c + 2, out_c).astype(np.int32)
        flip = rng.random(out_c) < 0.5
        base = {"batch": 3, "in_c": in_c, "out_c": out_c, "act_min": -INF, "act_max": INF,
                "out_min": -128, "out_max": 127, "out_shift": 0}
        p = make(BFcParams, base)
        y32 = np.zeros((3, out_c), np.int32)
        lib.tc_bfc_s32(ctypes.byref(p), ptr(x), ptr(w), ptr(y32))
        assert_same(y32, dot, f"s32, out_c {out_c}")
        pf = make(BFcParams, base | {"act_min": -3.0, "act_max": 2.0})
        yf = np.zeros((3, out_c), np.float32)
        lib.tc_bfc_f32(ctypes.byref(pf), ptr(x), ptr(w), ptr(mul), ptr(bias), ptr(yf))
        assert_same(yf, B.transform_f32(dot, mul, bias, -3.0, 2.0), f"f32, out_c {out_c}")
        fixed = B.requant_s8(mul, bias, 1.0, 0, in_c, -10, 127)
        ps = make(BFcParams, base | {"out_min": -10, "out_max": 127, "out_shift": fixed.shift})
        ys = np.zeros((3, out_c), np.int8)
        lib.tc_bfc_s8(ctypes.byref(ps), ptr(x), ptr(w), ptr(fixed.mul), ptr(fixed.bias),
                      ptr(ys))
        assert_same(ys, B.transform_s8(dot, fixed.mul, fixed.bias, fixed.shift, -10, 127),
                    f"s8, out_c {out_c}")
        flip_words = B.pack_flip(flip)
        yb = np.full((3, B.words(out_c)), 0xFFFFFFFF, np.uint32)
        lib.tc_bfc_b1(ctypes.byref(p), ptr(x), ptr(w), ptr(thr), ptr(flip_words), ptr(yb))
        assert_same(yb, B.pack_bits(B.transform_b1(dot, thr, flip)), f"b1, out_c {out_c}")


def test_bfc_s8_ties_round_half_up(lib):
    in_c = 8  # dots -8, -6, ..., 8; with mul 0.25 the odd quarters are exact ties
    x_pm1 = np.array([[1] * k + [-1] * (in_c - k) for k in range(in_c + 1)], dtype=np.int8)
    w = B.pack_fc_weights(np.ones((1, in_c)))
    x = B.pack_bits(B.pm1_to_bits(x_pm1))
    fixed = B.requant_s8(np.float32([0.25]), np.float32([0.0]), 1.0, 0, in_c)
    p = make(BFcParams, {"batch": in_c + 1, "in_c": in_c, "out_c": 1, "act_min": -INF,
                         "act_max": INF, "out_min": -128, "out_max": 127,
                         "out_shift": fixed.shift})
    y = np.zeros((in_c + 1, 1), np.int8)
    lib.tc_bfc_s8(ctypes.byref(p), ptr(x), ptr(w), ptr(fixed.mul), ptr(fixed.bias), ptr(y))
    # dot * 0.25 = -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2
    assert y[:, 0].tolist() == [-2, -1, -1, 0, 0, 1, 1, 2, 2]


def test_bfc_accumulator_bound_float_exact(lib):
    """N = 2^24, the limit for exact float outputs: dot = -2^24 survives the _f32 transform."""
    in_c = 2**24
    x = np.full((1, B.words(in_c)), 0xFFFFFFFF, np.uint32)  # all -1
    w = np.zeros((1, B.words(in_c)), np.uint32)  # all +1
    p = make(BFcParams, {"batch": 1, "in_c": in_c, "out_c": 1, "act_min": -INF, "act_max": INF,
                         "out_min": -128, "out_max": 127, "out_shift": 0})
    y = np.zeros((1, 1), np.float32)
    mul, bias = np.float32([1.0]), np.float32([0.0])
    lib.tc_bfc_f32(ctypes.byref(p), ptr(x), ptr(w), ptr(mul), ptr(bias), ptr(y))
    assert y[0, 0] == -(2.0**24)


# ------------------------------------------------------------------------------------------------
# Binary max pool
# ------------------------------------------------------------------------------------------------

POOL_GEOMS = [
    dict(in_shape=(6, 7), kernel=(2, 2)),
    dict(in_shape=(4, 5, 6), kernel=(3, 3, 3), strides=(1, 1, 1), pads_begin=(1, 1, 1),
         pads_end=(1, 1, 1)),
    dict(in_shape=(11,), kernel=(3,), strides=(2,), dilations=(2,), pads_begin=(1,),
         pads_end=(1,)),
    dict(in_shape=(7, 7), kernel=(3, 3), strides=(2, 2), pads_begin=(1, 0), pads_end=(2, 1)),
]


@pytest.mark.parametrize("channels", CHANNELS)
def test_bmaxpool(lib, channels):
    for i, spec in enumerate(POOL_GEOMS):
        geom = B.BPoolGeometry(channels=channels, strides=spec.get("strides", spec["kernel"]),
                               dilations=spec.get("dilations", (1,) * len(spec["kernel"])),
                               pads_begin=spec.get("pads_begin", (0,) * len(spec["kernel"])),
                               pads_end=spec.get("pads_end", (0,) * len(spec["kernel"])),
                               in_shape=spec["in_shape"], kernel=spec["kernel"])
        rng = np.random.default_rng(10 * channels + i)
        x_pm1 = B.bits_to_pm1(rng.random((2, *geom.in_shape, channels)) < 0.7)
        x = B.pack_bits(B.pm1_to_bits(x_pm1))
        y = np.full((2, *geom.out_shape, B.words(channels)), 0x5A5A5A5A, np.uint32)
        lib.tc_bmaxpool_b1(ctypes.byref(make(BMaxPoolParams, geom.c_params(2))), ptr(x), ptr(y))
        ref = B.bmaxpool(x_pm1, geom)
        assert_same(y, B.pack_bits(B.pm1_to_bits(ref)), f"geometry {i}")
        if torch is not None:
            xt = torch.from_numpy(x_pm1.astype(np.float64)).permute(0, 4, 1, 2, 3)
            pads = (geom.pads_begin[2], geom.pads_end[2], geom.pads_begin[1], geom.pads_end[1],
                    geom.pads_begin[0], geom.pads_end[0])
            xt = F.pad(xt, pads, value=-math.inf)
            yt = F.max_pool3d(xt, geom.kernel, geom.strides, dilation=geom.dilations)
            assert_same(ref, yt.permute(0, 2, 3, 4, 1).numpy().astype(np.int8),
                        f"reference vs torch, geometry {i}")


def test_bmaxpool_window_all_padding_gives_minus_one(lib):
    geom = B.pool_geometry((2,), 40, (1,), strides=(2,), pads_begin=(1,), pads_end=(1,))
    x = np.zeros((1, 1, 1, 2, 2), np.uint32)  # all +1
    y = np.zeros((1, *geom.out_shape, 2), np.uint32)
    lib.tc_bmaxpool_b1(ctypes.byref(make(BMaxPoolParams, geom.c_params(1))), ptr(x), ptr(y))
    assert y[0, 0, 0, 0].tolist() == [0xFFFFFFFF, 0xFF], "window in the padding: -1, tail zero"
    assert_same(y, B.bmaxpool_packed(x, geom), "reference")


# ------------------------------------------------------------------------------------------------
# Compile-time helpers: packing layout, thresholds
# ------------------------------------------------------------------------------------------------


def test_pack_bits_layout():
    bits = np.zeros(70, bool)
    bits[[0, 31, 32, 69]] = True
    assert B.pack_bits(bits).tolist() == [0x80000001, 0x1, 0x20]
    assert B.unpack_bits(B.pack_bits(bits), 70).tolist() == bits.tolist()
    assert B.pack_signs(np.float32([0.0, -0.0, -1e-45, 1.0, -2.0])).tolist() == [0b10100]


def test_conv_weights_are_one_bit_stream_per_output_channel():
    w = -np.ones((2, 1, 1, 3, 33), np.float32)  # 3 taps of 33 bits: 99 bits, 4 words per row
    w[1, 0, 0, 1, 0] = 1.0  # row 1: bit 33 (tap 1, channel 0) clear
    packed = B.pack_conv_weights(w)
    assert packed.shape == (2, 4)
    assert packed[0].tolist() == [0xFFFFFFFF] * 3 + [0x7]
    assert packed[1].tolist() == [0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF, 0x7]
    torch_layout = np.moveaxis(w, -1, 1).reshape(2, 33, 3)  # [out, cig, kw]
    assert_same(B.conv_weight_channels_last(torch_layout), w, "torch -> canonical layout")


def _exact_bits(mul, bias, n, threshold=0.0):
    dots = np.arange(-n, n + 1)
    return np.array([[Fraction(float(m)) * int(d) + Fraction(float(b)) < Fraction(float(threshold))
                      for m, b in zip(mul, bias, strict=True)] for d in dots])


def test_sign_thresholds_exact_including_ties_and_zero_scale():
    n = 20
    mul = np.float32([1.5, -2.0, 0.0, 0.0, 0.5, -0.5, 1e-30, 3.0, -3.0, 0.1])
    bias = np.float32([3.0, 3.0, 1.0, -1.0, -2.0, -2.0, 0.0, -1e6, -1e6, 0.3])
    thr, flip = B.sign_thresholds(mul, bias, n)
    dots = np.arange(-n, n + 1)[:, None]
    assert_same(B.transform_b1(dots, thr, flip), _exact_bits(mul, bias, n), "thresholds")
    # Ties give +1: 0.5 * 4 - 2 == 0 and -0.5 * -4 - 2 == 0.
    assert not B.transform_b1(np.array([[4]]), thr[4:5], flip[4:5]).any()
    assert not B.transform_b1(np.array([[-4]]), thr[5:6], flip[5:6]).any()
    assert (np.abs(thr) <= n + 1).all()
    # A per-channel threshold (RSign of the next layer) folds in exactly too.
    t = np.float32([0.25] * len(mul))
    thr2, flip2 = B.sign_thresholds(mul, bias, n, t)
    assert_same(B.transform_b1(dots, thr2, flip2), _exact_bits(mul, bias, n, 0.25), "thr 0.25")
    with pytest.raises(ValueError):
        B.sign_thresholds(np.float32([np.nan]), np.float32([0]), n)


def test_sign_thresholds_from_function_reproduce_float32_batch_norm():
    rng = np.random.default_rng(3)
    out_c, n = 64, 27 * 40
    scale = rng.uniform(0.01, 1, out_c).astype(np.float32)
    gamma = rng.uniform(-2, 2, out_c).astype(np.float32)
    gamma[:4] = 0.0
    beta = rng.uniform(-3, 3, out_c).astype(np.float32)
    mean = rng.uniform(-20, 20, out_c).astype(np.float32)
    var = rng.uniform(0.5, 30, out_c).astype(np.float32)

    def bn(dots: np.ndarray) -> np.ndarray:  # float32, step by step, as a framework would
        y = dots.astype(np.float32) * scale
        return (y - mean) / np.sqrt(var + np.float32(1e-5)) * gamma + beta

    thr, flip = B.sign_thresholds_from_function(bn, n, out_c)
    dots = np.arange(-n, n + 1, dtype=np.int32)[:, None] * np.ones(out_c, np.int32)
    assert_same(B.transform_b1(dots, thr, flip), bn(dots) < 0, "function thresholds")
    with pytest.raises(ValueError, match="step"):
        B.sign_thresholds_from_function(lambda d: np.cos(d.astype(np.float64)), 10, 2)


def test_fold_batch_norm_and_requant():
    mul, bias = B.fold_batch_norm(np.float32([2.0]), np.float32([1.0]), np.float32([3.0]),
                                  np.float32([3.0]), 1.0, scale=np.float32([0.5]))
    assert mul.tolist() == [0.5] and bias.tolist() == [-2.0]  # a = 1: 0.5 * dot + (1 - 3)
    fixed = B.requant_s8(mul, bias, 0.25, -3, 100)  # 2 * dot - 11
    assert fixed.shift == 23  # (2 * 100 + 10.5) * 2^23 < 2^31 <= (2 * 100 + 10.5) * 2^24
    assert fixed.mul.tolist() == [2 << 23] and fixed.bias.tolist() == [(-11 << 23) + (1 << 22)]


def test_requant_s8_is_round_half_up_within_its_bound():
    """The fixed-point _s8 transform against exact rational arithmetic: round half up of
    dot * m + b, clamped, wherever that value is farther than the stated bound from a tie."""
    rng = np.random.default_rng(11)
    n_max = 1134
    dots = np.arange(-n_max, n_max + 1)[:, None]
    mul = rng.uniform(-0.4, 0.4, 24).astype(np.float32)
    mul[:4] = (0.25, -0.5, 0.125, 0.0)  # exact ties at every other dot
    bias = rng.uniform(-60, 60, 24).astype(np.float32)
    bias[4:6] = (1e9, -1e9)  # constant channels: clipped, costing the others no precision
    fixed = B.requant_s8(mul, bias, 0.5, 3, n_max, -100, 120)
    assert fixed.shift >= 20
    got = B.transform_s8(dots, fixed.mul, fixed.bias, fixed.shift, -100, 120).astype(np.int64)
    r = dots * (mul.astype(np.float64) / 0.5) + (bias.astype(np.float64) / 0.5 + 3)
    want = np.clip(np.floor(r + 0.5), -100, 120)
    bound = (n_max + 1) * 2.0 ** -(fixed.shift + 1)
    near_tie = np.abs(r + 0.5 - np.round(r + 0.5)) <= bound
    assert (got[:, :4] == want[:, :4]).all()  # dyadic constants: exact, ties included
    assert (got[~near_tie] == want[~near_tie]).all()
    assert (got[:, 4] == 120).all() and (got[:, 5] == -100).all()
    with pytest.raises(ValueError, match="exceeds 2"):
        B.requant_s8(np.float32([1e9]), np.float32([0.0]), 1.0, 0, n_max)


# ------------------------------------------------------------------------------------------------
# Cortex-M builds
# ------------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
@pytest.mark.parametrize("core", sorted(ARM_CORES))
@pytest.mark.parametrize("source", SOURCES)
def test_compiles_for_cortex_m(source, core, tmp_path):
    """Warning-free for Cortex-M4F and M0, self-contained, and no popcount library call."""
    obj = tmp_path / (Path(source).stem + ".o")
    cmd = ["arm-none-eabi-gcc", *C_WARNINGS, *ARM_CORES[core], "-O2", "-c", f"-I{RUNTIME}",
           str(RUNTIME / source), "-o", str(obj)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"
    nm = shutil.which("arm-none-eabi-nm")
    if nm is not None:
        undefined = subprocess.run([nm, "--undefined-only", str(obj)], capture_output=True,
                                   text=True, check=True).stdout.split()
        assert not [s for s in undefined if s.startswith("tc_") or "popcount" in s], undefined
