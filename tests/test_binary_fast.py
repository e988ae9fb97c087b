"""The fast binary convolutions (runtime_c/tc_bconv_fast.c) give the portable tc_bconv_*'s
outputs, on random layers of many shapes, on the host and on emulated Cortex-M3, M4 and M7.

One C program holds every case: its packed data, the portable kernel's operands and the fast
kernel's (laid out by tinyc.binary_fast, the very functions the compiler uses).  For each case
it runs both kernels with all four output transforms (_s32, _f32, _s8, _b1) and writes the
outputs to a file; every output must equal the NumPy reference (tinyc.binary.bconv_dot on the
+/-1 values, which tests/test_binary_kernels.py holds to PyTorch) exactly, so
fast == portable == reference, byte for byte.

Cases are seeded and named after the edge they cover: channel counts across the word boundaries
(1, 3, 31, 32, 33, 63, 64, 65, 100), output channels that leave a partial word of 32, strides,
dilations, asymmetric zero / one / minus-one padding (windows entirely in the padding
included), groups whose slices straddle words or are whole words (listed by the assembly), the
sparse kernel's in-place runs (whole blocks and ragged ends, of 1 and of 0 bits; one run per tap
with dilation along the width; input rows near its 16-bit position limit), depthwise
1-D/2-D/3-D, batch > 1, input padding bits set to garbage (they must be ignored), and inputs
whose window holds mostly 1 bits (the sparse kernel's complement path).  A failure names the
case, kernel and output.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from helpers import (
    C_WARNINGS,
    RUNTIME,
    random_window,
    run_harness_on_host,
    run_harness_on_qemu,
)
from tinyc import binary as B
from tinyc import binary_fast
from tinyc.codegen import c_value
from tinyc.emulator import QEMU_BINARY

SOURCES = ["tc_bconv.c", "tc_bconv_fast.c", "tc_bfc.c"]
QEMU_BOARDS = ["qemu-m4", "qemu-m7", "qemu-m3"]
# f32u / s8u: _f32 with no clamp, _s8 with the full int8 range (their own fast paths)
KINDS = ("s32", "f32", "f32u", "s8", "s8u", "b1")
SEED = 20251122
ACT = (-7.5, 40.0)  # _f32 clamp
NO_ACT = (-np.inf, np.inf)
OUT_RANGE = (-100, 90)  # _s8 clamp


@dataclass(frozen=True)
class Case:
    name: str
    x: tuple[int, ...]  # batch, then 1 to 3 spatial sizes
    in_c: int
    out_c: int
    k: tuple[int, ...]
    stride: tuple[int, ...] | None = None
    dil: tuple[int, ...] | None = None
    pad: tuple[int, ...] | None = None
    pad_end: tuple[int, ...] | None = None
    groups: int = 1
    pad_value: int = 0
    ones: float = 0.5  # probability of a 1 input bit

    def geometry(self) -> B.BConvGeometry:
        return B.conv_geometry(self.x[1:], self.in_c, self.out_c, self.k, self.stride, self.dil,
                               self.pad, self.pad_end, self.groups, self.pad_value)


NAMED = [
    Case("c32_o32_3x3_zero", (1, 5, 6), 32, 32, (3, 3), pad=(1, 1), pad_end=(1, 1)),
    Case("c64_o60_3x3_one", (1, 4, 5), 64, 60, (3, 3), pad=(1, 1), pad_end=(1, 1), pad_value=1),
    Case("c33_o90_3x3_minus_stride2", (2, 7, 6), 33, 90, (3, 3), stride=(2, 2), pad=(1, 0),
         pad_end=(1, 2), pad_value=-1),
    Case("c3_o26_3x3_dilated", (1, 9, 8), 3, 26, (3, 3), dil=(2, 2), pad=(2, 1), pad_end=(2, 2)),
    Case("c100_o31_1d", (1, 13), 100, 31, (5,), pad=(2,), pad_end=(2,), pad_value=1),
    Case("c31_o28_3d", (1, 3, 4, 4), 31, 28, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1)),
    Case("c66_o64_g2_cig33", (1, 5, 5), 66, 64, (3, 3), pad=(1, 1), pad_end=(1, 1), groups=2),
    Case("c192_o96_g3_cig64_words", (1, 4, 6), 192, 96, (3, 3), pad=(1, 1), pad_end=(1, 1),
         groups=3, ones=0.6),
    Case("c200_o64_g2_cig100", (1, 4, 4), 200, 64, (3, 3), pad=(1, 1), pad_end=(1, 1),
         groups=2, pad_value=1),
    Case("c63_o32_window_in_padding", (1, 2, 3), 63, 32, (3, 3), stride=(2, 2), pad=(3, 3),
         pad_end=(3, 3), pad_value=1),
    Case("c1_o32_3x3", (1, 6, 6), 1, 32, (3, 3), pad=(1, 1), pad_end=(1, 1)),
    Case("c128_o32_1x1", (2, 3, 3), 128, 32, (1, 1)),
    Case("c65_o60_mostly_ones", (1, 4, 4), 65, 60, (3, 3), pad=(1, 1), pad_end=(1, 1), ones=0.9),
    Case("c64_o64_all_ones", (1, 3, 3), 64, 64, (3, 3), pad=(1, 1), pad_end=(1, 1), ones=1.0),
    Case("c32_o32_rows_dilated3", (2, 11, 5), 32, 32, (3, 3), dil=(3, 1), pad=(3, 1),
         pad_end=(3, 1)),  # the row cache: rows 3 apart, slots replaced out of order
    Case("c96_o64_wide_rows", (2, 4, 13), 96, 64, (3, 3), pad=(1, 1), pad_end=(1, 1),
         pad_value=1),  # runs of 3 x 96 bits: whole blocks in place plus ragged ends
    Case("c52_o60_mostly_ones_runs", (1, 4, 9), 52, 60, (3, 3), stride=(1, 2), pad=(1, 1),
         pad_end=(1, 1), ones=0.8),  # 0-bit slices in place, strided interior windows
    Case("c32_o32_1d_long_row", (1, 1927), 32, 32, (3,), pad=(1,), pad_end=(1,)),
    # padded list lengths up to 65,518 and positions up to 63,593: at the 16-bit limit
    Case("c256_o64_3x3_deep_counts", (1, 3, 4), 256, 64, (3, 3), pad=(1, 1), pad_end=(1, 1)),
    # window counts S above 255: 16-bit lanes
    Case("c44_o64_g2_cig22_dilated_w", (2, 5, 9), 44, 64, (3, 3), dil=(1, 3), pad=(1, 3),
         pad_end=(1, 3), groups=2),  # one run per tap, partial nibbles
    Case("dw_c64_3x3_zero", (1, 6, 5), 64, 64, (3, 3), pad=(1, 1), pad_end=(1, 1), groups=64),
    Case("dw_c33_3x3_one_stride2", (2, 7, 7), 33, 33, (3, 3), stride=(2, 2), pad=(1, 1),
         pad_end=(1, 1), groups=33, pad_value=1),
    Case("dw_c5_3x3x3_minus", (1, 4, 4, 4), 5, 5, (3, 3, 3), pad=(1, 1, 1), pad_end=(1, 1, 1),
         groups=5, pad_value=-1),
    Case("dw_c100_1d_dilated", (1, 15), 100, 100, (5,), dil=(2,), pad=(4,), pad_end=(4,),
         groups=100),
    Case("dw_c40_5x5_one", (1, 6, 6), 40, 40, (5, 5), pad=(2, 2), pad_end=(2, 2),
         groups=40, pad_value=1),
]


def _random_cases(rng: np.random.Generator, count: int) -> list[Case]:
    cases = []
    for i in range(count):
        rank = int(rng.integers(1, 4))
        depthwise = i % 3 == 2
        in_c = int(rng.choice([1, 3, 16, 31, 32, 33, 48, 64, 65, 96]))
        groups = in_c if depthwise else int(rng.choice([g for g in (1, 1, 2, 3) if in_c % g == 0]))
        cog = 1 if depthwise else int(rng.choice([26, 28, 31, 32, 60]))
        k, stride, dil, pad, pad_end, sizes = random_window(rng, rank, {1: 10, 2: 6, 3: 4}[rank])
        cases.append(Case(f"random{i}", (int(rng.integers(1, 3)), *sizes), in_c, groups * cog,
                          k, stride, dil, pad, pad_end, groups,
                          int(rng.choice([0, 1, -1])), float(rng.choice([0.5, 0.3, 0.7]))))
    return cases


# --------------------------------------------------------------------------------------------
# Data and references
# --------------------------------------------------------------------------------------------


@dataclass
class Layer:
    case: Case
    geom: B.BConvGeometry | None  # None: a binary fully connected layer (family "sliced")
    family: str  # "sparse", "dw" or "sliced"
    params: dict
    arrays: dict[str, np.ndarray]  # C name suffix -> data
    expected: dict[str, np.ndarray]  # kind -> reference output


def make_layer(case: Case, seed: int) -> Layer:
    rng = np.random.default_rng(seed)
    geom = case.geometry()
    family = binary_fast.choose(geom)
    assert family is not None, f"{case.name}: no fast kernel for {geom}"
    x_bits = rng.random((case.x[0], *geom.in_shape, case.in_c)) < case.ones
    x = B.pack_bits(x_bits)
    x |= ~B.pack_bits(np.ones(case.in_c, bool))  # garbage padding bits: must be ignored
    w_real = rng.standard_normal((case.out_c, *geom.kernel, geom.cig)).astype(np.float32)
    w = B.pack_conv_weights(w_real)
    pad_corr = B.padding_correction(geom, w_real)
    dot = B.bconv_dot(B.bits_to_pm1(x_bits), B.bits_to_pm1(B.sign_bits(w_real)), geom)
    dot = dot[:, :geom.out_shape[0], :geom.out_shape[1], :geom.out_shape[2]]
    mul = rng.choice([0.5, -0.25, 0.37, 3.0, -1.5], case.out_c).astype(np.float32)
    bias = rng.choice([0.0, 0.5, -3.0, 1.25], case.out_c).astype(np.float32)
    thr = rng.integers(-geom.n_max - 1, geom.n_max + 2, case.out_c).astype(np.int32)
    thr[::3] = 0
    flip = rng.random(case.out_c) < 0.3
    fixed = B.requant_s8(mul, bias, 1.0, 0, geom.n_max, *OUT_RANGE)
    arrays = {"x": x, "w": w, "mul": mul, "bias": bias, "mul_s8": fixed.mul,
              "bias_s8": fixed.bias, "thr": thr, "flip": B.pack_flip(flip)}
    if pad_corr is not None:
        arrays["pad_corr"] = pad_corr
    if family == "dw":
        arrays["w_fast"] = binary_fast.depthwise_weights(w, geom)
        arrays["thr_class"], arrays["thr_planes"] = binary_fast.depthwise_thresholds(thr, w, geom)
    else:
        arrays["w_fast"] = binary_fast.sparse_weights(w, geom)
        arrays["wv"] = binary_fast.sparse_valid_ones(w, geom)
        arrays["thr_class"], arrays["thr_planes"] = binary_fast.sparse_thresholds(thr, w, geom)
    expected = {
        "s32": dot.astype(np.int32),
        "f32": B.transform_f32(dot, mul, bias, *ACT).astype(np.float32),
        "f32u": B.transform_f32(dot, mul, bias, *NO_ACT).astype(np.float32),
        "s8": B.transform_s8(dot, fixed.mul, fixed.bias, fixed.shift, *OUT_RANGE),
        "s8u": B.transform_s8(dot, fixed.mul, fixed.bias, fixed.shift),
        "b1": B.pack_bits(B.transform_b1(dot, thr, flip)).astype(np.uint32),
    }
    params = geom.c_params(case.x[0], act_min=ACT[0], act_max=ACT[1], out_min=OUT_RANGE[0],
                           out_max=OUT_RANGE[1], out_shift=fixed.shift)
    return Layer(case, geom, family, params, arrays, expected)


# tc_bfc_sliced_* and tc_bfc_list_* (binary fully connected / 1x1 convolution): rows, in_c,
# out_c, share of 1 bits; input channels across the blocks of 16 and the words of 32, output
# channels leaving a partial word, counts that reach the higher planes (in_c >= 32), the
# threshold clamps, every part of the last block of 16 input channels (pairs, 4, 8 and 16),
# the sliced _b1 path for in_c <= 30 (five planes in registers) up to its edge, and for the
# list: rows of every 1-bit count (ties at in_c / 2, all 0, all 1: lists of 0 and of in_c
# positions, odd lengths padded) over one and several input words.
FC_CASES = [(5, 1, 1, 0.5), (7, 14, 42, 0.5), (3, 16, 32, 0.9), (4, 17, 33, 0.1),
            (3, 30, 33, 0.9), (6, 31, 70, 0.5), (2, 42, 14, 0.5), (3, 64, 64, 0.3),
            (2, 100, 40, 0.7), (2, 300, 65, 0.5), (40, 14, 42, 0.5), (33, 32, 33, 0.5),
            (9, 33, 20, 0.0), (9, 33, 20, 1.0), (24, 64, 40, 0.5),
            (3, 20, 60, 0.5), (4, 6, 9, 0.5), (2, 40, 120, 0.5)]  # tails 16+4, 4+2, 8


def make_fc_layer(rows: int, in_c: int, out_c: int, ones: float, seed: int) -> Layer:
    rng = np.random.default_rng(seed)
    x_bits = rng.random((rows, in_c)) < ones
    x = B.pack_bits(x_bits)
    x |= ~B.pack_bits(np.ones(in_c, bool))  # garbage padding bits: must be ignored
    w = B.pack_bits(rng.random((out_c, in_c)) < 0.5)
    dot = B.bfc_dot_packed(x, w, in_c)
    mul = rng.choice([0.5, -0.25, 0.37, 3.0, -1.5], out_c).astype(np.float32)
    bias = rng.choice([0.0, 0.5, -3.0, 1.25], out_c).astype(np.float32)
    thr = rng.integers(-in_c - 3, in_c + 4, out_c).astype(np.int32)
    thr[::3] = 0
    flip = rng.random(out_c) < 0.3
    fixed = B.requant_s8(mul, bias, 1.0, 0, in_c, *OUT_RANGE)
    arrays = {"x": x, "w": w, "mul": mul, "bias": bias, "mul_s8": fixed.mul,
              "bias_s8": fixed.bias, "thr": thr, "flip": B.pack_flip(flip),
              "w_fast": binary_fast.sliced_fc_weights(w, in_c, out_c),
              "thr_planes": binary_fast.sliced_fc_thresholds(thr, in_c),
              "w_list": binary_fast.list_fc_weights(w, in_c, out_c),
              "wv": binary_fast.fc_weight_ones(w, in_c),
              "thr_list": binary_fast.list_fc_thresholds(thr, w, in_c)}
    expected = {
        "s32": dot.astype(np.int32),
        "f32": B.transform_f32(dot, mul, bias, *ACT).astype(np.float32),
        "f32u": B.transform_f32(dot, mul, bias, *NO_ACT).astype(np.float32),
        "s8": B.transform_s8(dot, fixed.mul, fixed.bias, fixed.shift, *OUT_RANGE),
        "s8u": B.transform_s8(dot, fixed.mul, fixed.bias, fixed.shift),
        "b1": B.pack_bits(B.transform_b1(dot, thr, flip)).astype(np.uint32),
    }
    params = {"batch": rows, "in_c": in_c, "out_c": out_c, "act_min": ACT[0],
              "act_max": ACT[1], "out_min": OUT_RANGE[0], "out_max": OUT_RANGE[1],
              "out_shift": fixed.shift}
    case = Case(f"fc_r{rows}_i{in_c}_o{out_c}", (rows,), in_c, out_c, (1,), ones=ones)
    return Layer(case, None, "sliced", params, arrays, expected)


def all_layers() -> list[Layer]:
    cases = NAMED + _random_cases(np.random.default_rng(SEED), 24)
    return ([make_layer(case, SEED + i) for i, case in enumerate(cases)]
            + [make_fc_layer(*fc, SEED + 100 + i) for i, fc in enumerate(FC_CASES)])


# --------------------------------------------------------------------------------------------
# The C program
# --------------------------------------------------------------------------------------------

C_TYPES = {np.dtype(np.uint32): "uint32_t", np.dtype(np.int32): "int32_t",
           np.dtype(np.uint16): "uint16_t", np.dtype(np.float32): "float"}


def _tables(kind: str, prefix: str) -> str:
    """The transform's table arguments of a _<kind> call."""
    real = f"{prefix}_mul, {prefix}_bias, "
    return {"s32": "", "f32": real, "s8": f"{prefix}_mul_s8, {prefix}_bias_s8, ",
            "b1": f"{prefix}_thr, {prefix}_flip, "}[kind]


def _tags(layer: Layer) -> tuple[str, ...]:
    """The kernels a layer's outputs come from, in the order _calls writes them."""
    return ("portable", "sliced", "list") if layer.family == "sliced" else ("portable",
                                                                             layer.family)


def _calls(layer: Layer, prefix: str, kind: str) -> tuple[str, ...]:
    """The calls of _tags(layer) writing to `out` (the portable kernel first); f32u and s8u call
    the _f32 and _s8 kernels with the unclamped parameters (<prefix>_pu)."""
    fn = kind.rstrip("u")
    y = {"s32": "(int32_t *)out", "f32": "(float *)out", "s8": "(int8_t *)out",
         "b1": "(uint32_t *)out"}[fn]
    pad = f"{prefix}_pad_corr" if "pad_corr" in layer.arrays else "NULL"
    head = f"&{prefix}_{'pu' if kind.endswith('u') else 'p'}, {prefix}_x"
    tables = _tables(fn, prefix)
    if layer.family == "sliced":
        sliced_tables = f"{prefix}_thr_planes, {prefix}_flip, " if fn == "b1" else tables
        list_tables = (f"{prefix}_thr_list, {prefix}_flip, " if fn == "b1"
                       else f"{prefix}_wv, {tables}")
        return (f"tc_bfc_{fn}({head}, {prefix}_w, {tables}{y});",
                f"tc_bfc_sliced_{fn}({head}, {prefix}_w_fast, {sliced_tables}{y});",
                f"tc_bfc_list_{fn}({head}, {prefix}_w_list, {list_tables}{y}, scratch);")
    portable = f"tc_bconv_{fn}({head}, {prefix}_w, {pad}, {tables}{y});"
    if fn == "b1":
        fast = (f"tc_bconv_{layer.family}_b1({head}, {prefix}_w_fast, {prefix}_thr_class, "
                f"{prefix}_thr_planes, {prefix}_flip, {y}"
                f"{', scratch' if layer.family == 'sparse' else ''});")
    elif layer.family == "dw":
        fast = f"tc_bconv_dw_{fn}({head}, {prefix}_w_fast, {pad}, {tables}{y});"
    else:
        fast = (f"tc_bconv_sparse_{fn}({head}, {prefix}_w_fast, {prefix}_wv, {pad}, "
                f"{tables}{y}, scratch);")
    return portable, fast


def _scratch_bytes(layer: Layer) -> int:
    """The compiler's account of the fast kernels' working memory (none for dw)."""
    if layer.family == "sparse":
        return binary_fast.sparse_scratch_bytes(layer.geom)
    if layer.family == "sliced":
        return binary_fast.list_fc_scratch_bytes(layer.params["in_c"])
    return 0


def harness_source(layers: list[Layer]) -> str:
    decls: list[str] = []
    body: list[str] = []
    out_bytes = max(e.nbytes for layer in layers for e in layer.expected.values())
    scratch = max(_scratch_bytes(layer) for layer in layers)
    for i, layer in enumerate(layers):
        prefix = f"c{i}"
        for name, data in layer.arrays.items():
            flat = np.ascontiguousarray(data).reshape(-1)
            values = ", ".join(c_value(v.item()) for v in flat) if flat.dtype.kind == "f" \
                else ", ".join(str(int(v)) + ("u" if flat.dtype.kind == "u" else "")
                               for v in flat)
            decls.append(f"static const {C_TYPES[flat.dtype]} {prefix}_{name}[] = {{{values}}};\n")
        params_type = "tc_bfc_params_t" if layer.family == "sliced" else "tc_bconv_params_t"
        unclamped = {**layer.params, "act_min": NO_ACT[0], "act_max": NO_ACT[1],
                     "out_min": -128, "out_max": 127}
        for name, params in (("p", layer.params), ("pu", unclamped)):
            fields = ", ".join(f".{k} = {c_value(v)}" for k, v in params.items())
            decls.append(f"static const {params_type} {prefix}_{name} = {{{fields}}};\n")
        if layer.family != "dw":  # the kernel's own account of its scratch memory
            fn = "tc_bconv_sparse" if layer.family == "sparse" else "tc_bfc_list"
            body.append(f"    size = (uint32_t){fn}_scratch_size(&{prefix}_p);")
            body.append("    ok = ok && fwrite(&size, sizeof size, 1, f) == 1;")
        for kind in KINDS:
            n = layer.expected[kind].nbytes
            for call in _calls(layer, prefix, kind):
                body.append(f"    /* {layer.case.name} */")
                body.append("    memset(out, 0xA5, sizeof out);")
                body.append(f"    {call}")
                body.append(f"    ok = ok && fwrite(out, 1, {n}, f) == {n};")
    return (
        "#include <math.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n"
        '#include "tc_binary.h"\n'
        "#ifdef TC_TEST_HOST\nstatic void board_init(void) {}\n#else\n"
        '#include "tinyc_board.h"\n#endif\n\n'
        + "".join(decls)
        + f"\nstatic uint8_t out[{out_bytes}] __attribute__((aligned(8)));\n"
        f"static uint32_t scratch[{scratch // 4 + 1}];\n\n"
        "int main(void)\n{\n    board_init();\n    FILE *f = fopen(\"out.bin\", \"wb\");\n"
        "    int ok = f != NULL;\n    uint32_t size;\n    if (!ok) {\n        return 2;\n    }\n"
        + "\n".join(body)
        + "\n    fclose(f);\n    return ok ? 0 : 1;\n}\n"
    )


def check_outputs(raw: bytes, layers: list[Layer], where: str) -> None:
    pos = 0
    failures = []
    for layer in layers:
        if layer.family != "dw":
            size = int(np.frombuffer(raw[pos:pos + 4], dtype="<u4")[0])
            pos += 4
            if size != _scratch_bytes(layer):
                failures.append(f"{layer.case.name}: C scratch size {size}, compiler's "
                                f"{_scratch_bytes(layer)}")
        for kind in KINDS:
            want = layer.expected[kind].reshape(-1)
            for tag in _tags(layer):
                got = np.frombuffer(raw[pos:pos + want.nbytes], dtype=want.dtype)
                pos += want.nbytes
                bits = f"u{want.itemsize}"  # compare bit patterns (floats included)
                bad = np.flatnonzero(got.view(bits) != want.view(bits))
                if bad.size:
                    first = ", ".join(f"[{j}] got {got[j]!r} expected {want[j]!r}"
                                      for j in bad[:4])
                    failures.append(f"{layer.case.name} {tag} _{kind} on {where}: {bad.size} of "
                                    f"{want.size} differ: {first}")
    assert pos == len(raw), f"{where}: {len(raw)} bytes written, {pos} expected"
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def layers() -> list[Layer]:
    return all_layers()


@pytest.fixture(scope="module")
def harness(layers, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bconv_fast") / "harness.c"
    path.write_text(harness_source(layers))
    return path


def test_cases_cover_the_kernels_and_their_edges(layers) -> None:
    families = [layer.family for layer in layers]
    assert families.count("dw") >= 8 and families.count("sparse") >= 16
    assert families.count("sliced") == len(FC_CASES)
    sparse = [layer.geom for layer in layers if layer.family == "sparse"]
    assert any(g.cog % 32 for g in sparse) and any(g.cog > 32 for g in sparse)
    assert any(g.groups > 1 and g.cig % 32 for g in sparse)  # group slices inside words
    assert {g.pad_value for g in sparse} == {-1, 0, 1}
    assert any(max(g.strides) > 1 for g in sparse) and any(max(g.dilations) > 1 for g in sparse)
    assert any(layer.case.ones > 0.5 for layer in layers if layer.family == "sparse")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not found")
def test_host(harness, layers, tmp_path) -> None:
    check_outputs(run_harness_on_host(harness, SOURCES, tmp_path), layers, "host")


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which(QEMU_BINARY)
                    is None, reason="arm-none-eabi-gcc or QEMU not installed (make setup)")
@pytest.mark.parametrize("board_id", QEMU_BOARDS)
def test_on_qemu(board_id, harness, layers, tmp_path) -> None:
    check_outputs(run_harness_on_qemu(board_id, harness, SOURCES, tmp_path), layers, board_id)


def test_layouts_are_the_documented_ones() -> None:
    """Spot checks of the fast kernels' constants against tc_binary.h."""
    fc = binary_fast.sliced_fc_weights(B.pack_bits(np.eye(33, 20, 3, dtype=bool)), 20, 33)
    assert fc.shape == (2, 32)  # words of 32 output channels, 20 input channels padded to 32
    assert fc[0, 3] == 1 and fc[0, 4] == 2 and fc[1].tolist() == [0] * 32  # oc 0: ic 3 ...
    # T = clamp(floor((in_c - thr) / 2) + 1, 0, in_c + 1) in bit planes: thr 5 -> 5, -100 -> 15,
    # 100 -> 0, 0 -> 8 (in_c 14, 4 planes)
    assert binary_fast.sliced_fc_thresholds(np.array([5, -100, 100, 0]), 14).tolist() == \
        [[0b0011, 0b0010, 0b0011, 0b1010]]
    geom = B.conv_geometry((3, 3), 2, 33, (1, 2), pads_begin=(0, 1), pads_end=(0, 0),
                           pad_value=1)
    w = np.ones((33, 1, 1, 2, 2), np.float32)
    w[5, 0, 0, 1, 0] = -1.0  # channel 5, tap 1, ic 0: position 1 * (2 + 1) + 0
    w[32, 0, 0, 0, 1] = -1.0  # channel 32 (second word of channels), tap 0, ic 1: position 1
    packed = B.pack_conv_weights(w)
    sparse = binary_fast.sparse_weights(packed, geom)
    assert sparse.shape == (1, 2, 6)  # groups, words of 32 output channels, 2 taps * (2 + 1)
    expected = np.zeros((1, 2, 6), np.uint32)  # positions 2 and 5: the zero padding words
    expected[0, 0, 3] = 1 << 5
    expected[0, 1, 1] = 1
    assert np.array_equal(sparse, expected)
    wv = binary_fast.sparse_valid_ones(packed, geom)
    lead, trail = geom.padding_classes()
    assert wv.shape == (1, lead[1] + 1 + trail[1], lead[2] + 1 + trail[2], 33)
    # class 0 along w: tap 0 in the padding (pad 1 on the left), tap 1 valid.  Channel 5's 1
    # bit sits at the valid tap 1; channel 32's at the padded tap 0.
    assert wv[0, 0, 0].tolist() == [1 if oc == 5 else 0 for oc in range(33)]
    assert wv[0, 0, 1].tolist() == [1 if oc in (5, 32) else 0 for oc in range(33)]  # interior
    dw_geom = B.conv_geometry((4,), 33, 33, (3,), groups=33)
    w_dw = np.ones((33, 1, 1, 3, 1), np.float32)
    w_dw[32, 0, 0, 2, 0] = -1.0
    dw = binary_fast.depthwise_weights(B.pack_conv_weights(w_dw), dw_geom)
    assert dw.tolist() == [[0, 0], [0, 0], [0, 1]]  # [taps, words of channels]
    # _b1 depthwise thresholds per padding class: T = clamp((n - thr) // 2 + 1, 0, n + 1), n the
    # class's valid taps (2 at the borders, 3 inside): thr 0, 3, -5 -> T 2, 0, 3 and 2, 1, 4
    dw3 = B.conv_geometry((4,), 3, 3, (3,), groups=3, pads_begin=(1,), pads_end=(1,))
    cls, planes = binary_fast.depthwise_thresholds(
        np.array([0, 3, -5]), B.pack_conv_weights(np.ones((3, 1, 1, 3, 1), np.float32)), dw3)
    assert cls.tolist() == [[[0, 1, 0]]]  # the two borders share a table
    assert planes.shape == (2, 1, 3)  # tables, words of channels, bit planes
    assert planes[0, 0].tolist() == [0b100, 0b101, 0] and planes[1, 0].tolist() == [2, 1, 4]
    # _b1 sparse thresholds per padding class, the same thr on 2 input channels (N 4 at the
    # borders, 6 inside; all weights +1: Wv 0): T 3, 1, 5 and 4, 2, 6; C0 = T + Wv and
    # C1 = Wv - T + N + 1 (2, 4, 0 and 3, 5, 1) in P = bit length of 2 * 3 * 2 + 1 planes
    conv = B.conv_geometry((4,), 2, 3, (3,), pads_begin=(1,), pads_end=(1,))
    cls, planes = binary_fast.sparse_thresholds(
        np.array([0, 3, -5]), B.pack_conv_weights(np.ones((3, 1, 1, 3, 2), np.float32)), conv)
    assert cls.tolist() == [[[0, 1, 0]]]
    assert planes.shape == (2, 2, 1, 1, 4)  # tables, b, groups, words of channels, planes
    assert planes[0, :, 0, 0].tolist() == [[0b111, 0b001, 0b100, 0], [0, 0b001, 0b010, 0]]
    assert planes[1, :, 0, 0].tolist() == [[0, 0b110, 0b101, 0], [0b111, 0b001, 0b010, 0]]


def test_choice_of_kernel() -> None:
    def geom(in_c, out_c, groups, k=(3, 3)):
        return B.conv_geometry((6, 6), in_c, out_c, k, groups=groups)

    assert binary_fast.choose(geom(64, 64, 64)) == "dw"
    assert binary_fast.choose(geom(64, 128, 64)) is None  # depth multiplier 2, cog 2
    assert binary_fast.choose(geom(64, 64, 1)) == "sparse"
    assert binary_fast.choose(geom(64, 40, 1)) is None  # 64 stored bits per 40 channels
    assert binary_fast.choose(geom(64, 32, 16)) is None  # 2 output channels per group
    assert binary_fast.choose(geom(8, 8, 8, k=(6, 6))) is None  # 36 taps
    assert binary_fast.choose(B.conv_geometry((3, 3), 8192, 32, (3, 3))) is None  # 16-bit list
    # an input row's padded lists: in_w * (cig + 2) + 4 <= 65535
    assert binary_fast.choose(B.conv_geometry((1927,), 32, 32, (3,))) == "sparse"
    assert binary_fast.choose(B.conv_geometry((1928,), 32, 32, (3,))) is None
    # 1x1 / dense, by the measured cost model: bit-sliced where many output channels share a
    # few inputs (or few outputs on a short last block: measured 461 against popcount's 513
    # for 24 -> 8), the minority-bit list for wide inputs, popcount for a wide classifier
    assert binary_fast.fc_kernel(14, 42, "b1") == "sliced"  # the EEG expand layers
    assert binary_fast.fc_kernel(32, 32, "f32") == "sliced"
    assert binary_fast.fc_kernel(84, 28, "s8") == "sliced"  # ... and projections (list -10%)
    assert binary_fast.fc_kernel(24, 8, "s8") == "sliced"  # the 6k EEG net's projection
    assert binary_fast.fc_kernel(128, 128, "f32") == "list"  # wide layers: -30% or more
    assert binary_fast.fc_kernel(256, 64, "b1") == "list"
    assert binary_fast.fc_kernel(256, 10, "f32") == "popcount"  # measured 2,073 vs 2,369
    assert binary_fast.fc_kernel(132, 10, "f32") == "sliced"  # measured 1,386 vs 1,493
    # the sums' cost follows the assembly's reads: 11-16 channels one block of 16, 17-26 a
    # block and parts, 27-32 a whole word
    assert binary_fast._sliced_sum_cost(13) == binary_fast._sliced_sum_cost(16)
    assert binary_fast._sliced_sum_cost(43) == binary_fast._sliced_sum_cost(48)
    assert binary_fast._sliced_sum_cost(16) < binary_fast._sliced_sum_cost(20) \
        < binary_fast._sliced_sum_cost(27) == binary_fast._sliced_sum_cost(32)
    assert binary_fast.fc_kernel(65536, 64, "b1") == "popcount"  # counts past 16 bit planes
    # the list pays for the code it adds: 30 instructions per byte, less where a 3x3 binary
    # convolution (tc_bconv_sparse_*) links its slice sums already
    one_layer = binary_fast.list_saving(64, 128, 128, "f32")  # 128 -> 128 channels, 8x8 pixels
    assert binary_fast.list_pays(one_layer, {"f32"}, sparse_linked=True)
    assert not binary_fast.list_pays(one_layer, {"f32"}, sparse_linked=False)
    assert not binary_fast.list_pays(one_layer, {"f32", "b1"}, sparse_linked=True)


CORES = {"cortex-m3": ["-mcpu=cortex-m3"],
         "cortex-m4": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
         "cortex-m7": ["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
         "cortex-m33": ["-mcpu=cortex-m33"], "cortex-m0": ["-mcpu=cortex-m0"]}
OPTIMIZATION = ["-O0", "-O1", "-O2", "-Os", "-Og", "-O2 -fno-omit-frame-pointer",
                "-Og -fno-omit-frame-pointer"]


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
@pytest.mark.parametrize("core", list(CORES))
def test_compiles_at_every_optimization_level(core, tmp_path) -> None:
    """The Thumb-2 carry-save block keeps 12 values in registers: every optimization level users
    may pick (-O0 takes the C version) must compile warning-free, with or without a frame
    pointer, and Cortex-M0 (no Thumb-2) takes the C version."""
    for opt in OPTIMIZATION:
        cmd = ["arm-none-eabi-gcc", *C_WARNINGS, "-mthumb", *CORES[core], *opt.split(),
               f"-I{RUNTIME}", "-c", str(RUNTIME / "tc_bconv_fast.c"), "-o", str(tmp_path / "x.o")]
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, f"{core} {opt}:\n{result.stderr}"
