"""tc_bitpack_s8 on the host and on emulated Cortex-M3 (portable C), M4 and M7 (the DSP path:
SSUB8 / SEL on four channels at once) against tinyc.binary.pack_signs, exactly.

One C program packs every case with its scalar and its per-channel thresholds and writes the
words to a file.  Cases cover channel counts around the groups of four and the words of 32,
rows at odd byte offsets (unaligned word loads), the extreme values -128 and 127, and thresholds
at and beyond the int8 range (per channel: below -128 clamps to -128, above 127 goes to the
always mask; scalar: any int32).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from helpers import run_harness_on_host, run_harness_on_qemu
from tinyc import binary as B
from tinyc.emulator import QEMU_BINARY

SOURCES = ["tc_bitpack.c"]
QEMU_BOARDS = ["qemu-m4", "qemu-m7", "qemu-m3"]
CHANNELS = [1, 2, 3, 4, 5, 7, 14, 28, 31, 32, 33, 42, 63, 64, 65, 100]
SCALARS = [0, -5, 17, -128, -129, 127, 128, -100000, 100000]
OUTER = 5


def _case(channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (OUTER, channels)).astype(np.int8)
    x.flat[::5] = -128
    x.flat[1::7] = 127
    t = rng.integers(-131, 132, channels)
    t[: min(channels, 4)] = (-129, 128, 300, -128)[: min(channels, 4)]
    return x, t


def _c_array(c_type: str, name: str, values: np.ndarray) -> str:
    return f"static const {c_type} {name}[] = {{{', '.join(str(int(v)) for v in values)}}};\n"


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
    return (
        "#include <stdint.h>\n#include <stdio.h>\n"
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
        for label, threshold in [*((f"scalar {s}", s) for s in SCALARS), ("per channel", t)]:
            want = B.pack_signs(x.astype(np.int64), threshold).reshape(-1)
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
