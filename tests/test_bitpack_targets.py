"""tc_bitpack_s8 and tc_bitpack_f32 on the host and on emulated Cortex-M3 (portable C, soft
float), M4 and M7 (the DSP path of _s8: SSUB8 / SEL / USAD8 on four channels at once; the FPU's
compares for _f32) against tinyc.binary.pack_signs, exactly.

One C program packs every case with its scalar and its per-channel thresholds and writes the
words to a file.  Cases cover channel counts around the groups of four and the words of 32.
_s8: rows at odd byte offsets (unaligned word loads), the extreme values -128 and 127, and
thresholds at and beyond the int8 range (per channel: below -128 clamps to -128, above 127 goes
to the always mask; scalar: any int32).  _f32: zeros of both signs against zero thresholds of
both signs, the smallest subnormals, infinities and NaNs (NaN packs as +1).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from helpers import run_harness_on_host, run_harness_on_qemu
from tinyc import binary as B
from tinyc.codegen import c_value
from tinyc.emulator import QEMU_BINARY

SOURCES = ["tc_bitpack.c"]
QEMU_BOARDS = ["qemu-m4", "qemu-m7", "qemu-m3"]
CHANNELS = [1, 2, 3, 4, 5, 7, 14, 28, 31, 32, 33, 42, 63, 64, 65, 100]
SCALARS = [0, -5, 17, -128, -129, 127, 128, -100000, 100000]
SCALARS_F32 = [0.0, -0.0, 0.25, -1.5, float("inf"), float("-inf")]
SPECIAL_F32 = np.float32([0.0, -0.0, 1e-45, -1e-45, np.inf, -np.inf, np.nan, -np.nan, 0.25])
OUTER = 5


def _case(channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (OUTER, channels)).astype(np.int8)
    x.flat[::5] = -128
    x.flat[1::7] = 127
    t = rng.integers(-131, 132, channels)
    t[: min(channels, 4)] = (-129, 128, 300, -128)[: min(channels, 4)]
    return x, t


def _case_f32(channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + seed)
    x = rng.standard_normal((OUTER, channels)).astype(np.float32)
    x.flat[::3] = rng.choice(SPECIAL_F32, x.flat[::3].size)
    t = rng.standard_normal(channels).astype(np.float32)
    t[::4] = rng.choice(np.float32([0.0, -0.0, 0.25]), t[::4].size)
    return x, t


def _c_array(c_type: str, name: str, values: np.ndarray) -> str:
    text = (c_value(float(v)) if c_type == "float" else str(int(v)) for v in values)
    return f"static const {c_type} {name}[] = {{{', '.join(text)}}};\n"


def harness_source() -> str:
    decls, body = [], []
    for i, channels in enumerate(CHANNELS):
        x, t = _case(channels, i)
        decls.append(_c_array("int8_t", f"x{i}", np.append(np.int8(0), x)))  # rows from x + 1
        decls.append(_c_array("int8_t", f"t{i}", np.clip(t, -128, 127)))
        decls.append(_c_array("uint32_t", f"a{i}", B.pack_bits(t > 127)))
        decls.append(f"static tc_bitpack_params_t p{i} = {{{OUTER}, {channels}, 0.0f, 0}};\n")
        n = OUTER * B.words(channels) * 4
        for scalar in SCALARS:
            body.append(f"    p{i}.threshold_s8 = {scalar};")
            body.append(f"    tc_bitpack_s8(&p{i}, x{i} + 1, NULL, NULL, y);")
            body.append(f"    ok = ok && fwrite(y, 1, {n}, f) == {n};")
        body.append(f"    tc_bitpack_s8(&p{i}, x{i} + 1, t{i}, a{i}, y);")
        body.append(f"    ok = ok && fwrite(y, 1, {n}, f) == {n};")
        xf, tf = _case_f32(channels, i)
        decls.append(_c_array("float", f"xf{i}", xf.reshape(-1)))
        decls.append(_c_array("float", f"tf{i}", tf))
        for scalar in SCALARS_F32:
            body.append(f"    p{i}.threshold_f32 = {c_value(scalar)};")
            body.append(f"    tc_bitpack_f32(&p{i}, xf{i}, NULL, y);")
            body.append(f"    ok = ok && fwrite(y, 1, {n}, f) == {n};")
        body.append(f"    tc_bitpack_f32(&p{i}, xf{i}, tf{i}, y);")
        body.append(f"    ok = ok && fwrite(y, 1, {n}, f) == {n};")
    return (
        "#include <math.h>\n#include <stdint.h>\n#include <stdio.h>\n"
        '#include "tc_binary.h"\n'
        "#ifdef TC_TEST_HOST\nstatic void board_init(void) {}\n#else\n"
        '#include "tinyc_board.h"\n#endif\n\n'
        + "".join(decls)
        + f"\nstatic uint32_t y[{OUTER * B.words(max(CHANNELS))}];\n\n"
        "int main(void)\n{\n    board_init();\n    FILE *f = fopen(\"out.bin\", \"wb\");\n"
        "    int ok = f != NULL;\n    if (!ok) {\n        return 2;\n    }\n"
        + "\n".join(body)
        + "\n    fclose(f);\n    return ok ? 0 : 1;\n}\n"
    )


def check(raw: bytes, where: str) -> None:
    pos, failures = 0, []
    for i, channels in enumerate(CHANNELS):
        x, t = _case(channels, i)
        xf, tf = _case_f32(channels, i)
        for label, data, threshold in [
                *((f"_s8 scalar {s}", x.astype(np.int64), s) for s in SCALARS),
                ("_s8 per channel", x.astype(np.int64), t),
                *((f"_f32 scalar {s}", xf, np.float32(s)) for s in SCALARS_F32),
                ("_f32 per channel", xf, tf)]:
            want = B.pack_signs(data, threshold).reshape(-1)
            got = np.frombuffer(raw[pos:pos + want.nbytes], dtype="<u4")
            pos += want.nbytes
            bad = np.flatnonzero(got != want)
            if bad.size:
                failures.append(f"{channels} channels, {label} on {where}: words {bad[:4]} got "
                                f"{[hex(v) for v in got[bad[:4]]]} expected "
                                f"{[hex(v) for v in want[bad[:4]]]}")
    assert pos == len(raw), f"{where}: {len(raw)} bytes written, {pos} expected"
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    path = tmp_path_factory.mktemp("bitpack") / "harness.c"
    path.write_text(harness_source())
    return path


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not found")
def test_host(harness, tmp_path) -> None:
    check(run_harness_on_host(harness, SOURCES, tmp_path), "host")


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which(QEMU_BINARY)
                    is None, reason="arm-none-eabi-gcc or QEMU not installed (make setup)")
@pytest.mark.parametrize("board_id", QEMU_BOARDS)
def test_on_qemu(board_id, harness, tmp_path) -> None:
    check(run_harness_on_qemu(board_id, harness, SOURCES, tmp_path), board_id)
