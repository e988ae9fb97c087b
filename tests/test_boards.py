"""Board descriptions, board support C code and the QEMU runner.

The firmware tests build small C programs with each board's own flags and sources, exactly as
the compiler does, and run the emulated ones in QEMU: console, exit code, host files, the
instruction counter (exact to its 40-instruction resolution on mps2 and repeatable), the fault
handler and the timeout. The real boards are linked and their memory maps checked; the STM32F4
UART console runs on QEMU's netduinoplus2 (qemu-f405: an STM32F405 with the same USART2, GPIO
and RCC addresses), and so does the nucleo-f446re firmware, whose PLL set-up QEMU cannot
complete (no RCC model): that exercises the clock-failure report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tinyc import emulator
from tinyc.boards import (
    Board,
    BoardError,
    host_board,
    list_boards,
    load_board,
)
from tinyc.emulator import FAULT_EXIT_CODE, QemuResult, run_qemu
from tinyc.errors import TinycError
from tinyc.resources import boards_dir

ARM_GCC = "arm-none-eabi-gcc"
QEMU_BOARDS = ["qemu-m3", "qemu-m4", "qemu-m7", "qemu-m55"]  # semihosting console
REAL_BOARDS = ["disco-l475vg-iot01a", "nucleo-f446re", "nucleo-f746zg", "nucleo-h743zi2",
               "nucleo-l4r5zi", "nucleo-u575zi-q"]
ALL_BOARDS = sorted([*REAL_BOARDS, *QEMU_BOARDS, "qemu-f405"])
WARNING_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]

needs_arm_gcc = pytest.mark.skipif(
    shutil.which(ARM_GCC) is None, reason=f"{ARM_GCC} not installed (make setup)"
)
needs_qemu = pytest.mark.skipif(
    shutil.which(emulator.QEMU_BINARY) is None, reason="qemu-system-arm not installed (make setup)"
)


# --- board files -------------------------------------------------------------------------------


def test_every_board_loads():
    boards = list_boards()
    assert [board.id for board in boards] == ALL_BOARDS
    for board in boards:
        assert load_board(board.id) == board
        assert board.linker_script_path.is_file()
        assert all(path.is_absolute() and path.is_file() for path in board.sources)
        assert (board.include_dirs[0] / "tinyc_board.h").is_file()
        assert board.emulated == board.id.startswith("qemu-")
        # Real boards: full speed set up by the firmware, cycle counter, PlatformIO id, probe.
        assert (board.clock_setup == "pll") == (not board.emulated)
        assert (board.counter.unit == "cycles") == (not board.emulated)
        assert (board.platformio is not None) == (not board.emulated)
        assert (board.openocd_target is not None) == (not board.emulated)
        if not board.emulated:
            assert board.clock_hz >= 80_000_000 and board.uart.tx is not None


def test_boards_command_lists_every_board():
    from helpers import tinyc

    listed = tinyc("boards", "--json")
    assert listed.code == 0, listed.stderr
    boards = {b["id"]: b for b in listed.json()["boards"]}
    assert sorted(boards) == ALL_BOARDS
    assert boards["nucleo-h743zi2"]["fast_ram"] == {"name": "DTCM", "origin": 0x20000000,
                                                    "size": 131072}
    assert boards["nucleo-l4r5zi"]["clock_hz"] == 120_000_000
    assert boards["nucleo-l4r5zi"]["platformio"] == "nucleo_l4r5zi"
    assert boards["qemu-f405"]["qemu"] == "netduinoplus2" and boards["qemu-m4"]["default"]
    text = tinyc("boards").stdout.splitlines()
    assert len(text) == 1 + len(ALL_BOARDS)
    assert text[2].startswith("nucleo-f446re       nucleo   cortex-m4   fpv4-sp-d16")


def test_alias_resolves():
    assert load_board("nucleo").id == "nucleo-f446re"
    assert load_board("nucleo") == load_board("nucleo-f446re")


def test_unknown_board_lists_the_available_ones():
    with pytest.raises(BoardError) as error:
        load_board("xyz")
    assert str(error.value) == (
        "unknown board 'xyz'; available: disco-l475vg-iot01a, nucleo-f446re (nucleo), "
        "nucleo-f746zg, nucleo-h743zi2, nucleo-l4r5zi (mlperf), nucleo-u575zi-q, qemu-f405, "
        "qemu-m3, qemu-m4, qemu-m55, qemu-m7"
    )


def test_flags_follow_the_board():
    m4 = load_board("qemu-m4")
    assert m4.cflags[:4] == ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
    assert "-DTINYC_BOARD_CLOCK_HZ=25000000u" in m4.cflags
    assert "--specs=rdimon.specs" in m4.ldflags
    assert "-Wl,--defsym=__stack_size__=16384" in m4.ldflags
    m3 = load_board("qemu-m3")
    assert m3.fpu is None
    assert m3.arch_flags == ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"]
    nucleo = load_board("nucleo")
    assert "--specs=nano.specs" in nucleo.ldflags
    assert [path.name for path in nucleo.sources] == [
        "startup_cortexm.c",
        "retarget_uart.c",
        "counter_dwt.c",
        "board.c",
    ]
    assert nucleo.flash.origin == 0x08000000 and nucleo.flash.size == 512 * 1024
    assert nucleo.ram.origin == 0x20000000 and nucleo.ram.size == 128 * 1024
    assert nucleo.qemu is None and nucleo.platformio is not None
    assert nucleo.defines == [
        "-DTINYC_BOARD_CLOCK_HZ=180000000u", "-DTINYC_MCU_STM32F446RE",
        "-DTINYC_BOARD_CLOCK_SETUP_PLL", "-DTINYC_UART_USART2", "-DTINYC_UART_BAUD=115200u",
        "-DTINYC_UART_TX_PORT=0", "-DTINYC_UART_TX_PIN=2", "-DTINYC_UART_RX_PORT=0",
        "-DTINYC_UART_RX_PIN=3", "-DTINYC_UART_AF=7",
    ]  # fmt: skip
    assert [path.name for path in m4.sources] == ["startup_cortexm.c", "counter_systick.c",
                                                   "board.c"]
    h7 = load_board("nucleo-h743zi2")
    assert (h7.fast_ram.name, h7.fast_ram.origin, h7.fast_ram.size) == ("DTCM", 0x20000000,
                                                                        128 * 1024)
    assert load_board("nucleo-l4r5zi").uart.tx.name == "PG7"
    assert load_board("qemu-f405").qemu.serial == 1


@pytest.fixture
def scratch_boards(tmp_path: Path) -> Path:
    """A boards folder holding a copy of qemu-m4.yaml (and an mps2/ folder) to break."""
    directory = tmp_path / "boards"
    (directory / "mps2").mkdir(parents=True)
    (directory / "mps2" / "mps2.ld").write_text("/* stand-in */\n")
    shutil.copy(boards_dir() / "qemu-m4.yaml", directory / "qemu-m4.yaml")
    return directory


def _rewrite(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["flash"].update(size=-4),
            "field 'flash.size' must be a positive integer",
        ),
        (
            lambda d: d["flash"].update(size="4M"),
            "field 'flash.size' must be a positive integer",
        ),
        (
            lambda d: d.pop("clock_hz"),
            "field 'clock_hz' is missing; it must be a positive integer",
        ),
        (
            lambda d: d.update(float_abi="hardest"),
            "field 'float_abi' must be one of hard, softfp, soft",
        ),
        (
            lambda d: d.update(fpu="none"),
            "field 'float_abi' must be soft when fpu is none",
        ),
        (
            lambda d: d.update(console="uart"),
            "field 'files' can be true only with console: semihosting",
        ),
        (
            lambda d: d["counter"].update(unit="seconds"),
            "field 'counter.unit' must be one of instructions, cycles, ns",
        ),
        (
            lambda d: d.update(files="yes"),
            "field 'files' must be true or false",
        ),
        (
            lambda d: d.update(id="qemu-m5"),
            "field 'id' must match the file name 'qemu-m4'",
        ),
        (
            lambda d: d["qemu"].update(machin="mps2-an386"),
            "unknown field 'qemu.machin' (known: machine, cpu, serial)",
        ),
        (
            lambda d: d["counter"].update(unit="cycles"),
            "field 'counter.unit' must be instructions with kind systick",
        ),
        (
            lambda d: d.update(clock_setup="pll"),
            "field 'clock_setup' must be none on an emulated board (QEMU has no PLL)",
        ),
        (
            lambda d: d.update(clock_setup="fast"),
            "field 'clock_setup' must be one of none, pll",
        ),
        (
            lambda d: d.pop("mcu"),
            "field 'mcu' is missing; it must be a part name (lower case, digits and '-')",
        ),
        (
            lambda d: d["uart"].update(tx="PZ2", rx="PA3", af=7),
            "field 'uart.tx' must be a pin like PA2 or PD9",
        ),
        (
            lambda d: d["uart"].update(tx="PA2", af=7),
            "field 'uart.rx' is missing; tx, rx and af go together",
        ),
        (
            lambda d: d["uart"].update(tx="PA2", rx="PA3", af=16),
            "field 'uart.af' must be an integer from 0 to 15",
        ),
        (
            lambda d: d["uart"].update(instance="usart2"),
            "field 'uart.instance' must be a name like USART2 or LPUART1",
        ),
        (
            lambda d: d.update(fast_ram={"origin": 0x20001000, "size": 4096, "name": "DTCM"}),
            "field 'fast_ram' must not overlap ram",
        ),
        (
            lambda d: d["qemu"].update(serial=9),
            "field 'qemu.serial' must be an integer from 0 to 7",
        ),
    ],
)
def test_bad_board_file_names_file_and_field(scratch_boards: Path, change, message: str):
    path = scratch_boards / "qemu-m4.yaml"
    _rewrite(path, change)
    with pytest.raises(BoardError) as error:
        load_board("qemu-m4", directory=scratch_boards)
    assert str(error.value) == f"{path}: {message}"


def test_missing_linker_script_is_reported(scratch_boards: Path):
    path = scratch_boards / "qemu-m4.yaml"
    _rewrite(path, lambda d: d.update(linker_script="an386.ld"))
    with pytest.raises(BoardError) as error:
        load_board("qemu-m4", directory=scratch_boards)
    assert str(error.value) == (
        f"{path}: field 'linker_script' names a file that does not exist: "
        f"{scratch_boards / 'mps2' / 'an386.ld'}"
    )


def test_broken_yaml_is_one_line(scratch_boards: Path):
    path = scratch_boards / "qemu-m4.yaml"
    path.write_text("id: qemu-m4\nflash: {origin: 0\n")
    with pytest.raises(BoardError) as error:
        load_board("qemu-m4", directory=scratch_boards)
    assert str(error.value).startswith(f"{path}: not valid YAML at line ")
    assert "\n" not in str(error.value)


def test_duplicate_alias_is_reported(scratch_boards: Path):
    _rewrite(scratch_boards / "qemu-m4.yaml", lambda d: d.update(aliases=["qemu"]))
    other = scratch_boards / "qemu-m4f.yaml"
    other.write_text(
        (scratch_boards / "qemu-m4.yaml").read_text().replace("id: qemu-m4", "id: qemu-m4f")
    )
    with pytest.raises(BoardError) as error:
        list_boards(directory=scratch_boards)
    assert str(error.value) == (
        f"{other}: name 'qemu' is already used by {scratch_boards / 'qemu-m4.yaml'}"
    )


def test_board_error_is_a_tinyc_error():
    assert issubclass(BoardError, TinycError)


# --- firmware ----------------------------------------------------------------------------------

# Exercises the console, host files, the exit code and the counter. A loop of K instructions per
# iteration (subs, K-2 nops, bne) runs N times between two board_counter() calls.
PROBE_C = r"""
#include <stdint.h>
#include <stdio.h>
#include "tinyc_board.h"

static uint64_t loop4(uint32_t n)
{
    uint64_t start = board_counter();
    __asm__ volatile("1:\n\tsubs %0, %0, #1\n\tnop\n\tnop\n\tbne 1b" : "+r"(n) : : "cc");
    return board_counter() - start;
}

static uint64_t loop7(uint32_t n)
{
    uint64_t start = board_counter();
    __asm__ volatile("1:\n\tsubs %0, %0, #1\n\tnop\n\tnop\n\tnop\n\tnop\n\tnop\n\tbne 1b"
                     : "+r"(n) : : "cc");
    return board_counter() - start;
}

int main(void)
{
    board_init();
    printf("hello from %s\n", board_counter_unit);
    FILE *in = fopen("input.txt", "r");
    char line[64] = "";
    if (in == NULL || fgets(line, sizeof line, in) == NULL) {
        return 1;
    }
    fclose(in);
    printf("read: %s", line);
    FILE *out = fopen("output.txt", "w");
    if (out == NULL) {
        return 1;
    }
    fprintf(out, "%.3f\n", 1.5 * (double)(line[0] - '0'));
    fclose(out);
    static const uint32_t counts[] = {100000u, 200000u, 250000u, 500000u};
    for (unsigned i = 0; i < 4; ++i) {
        printf("loop4 %lu %lu\n", (unsigned long)counts[i], (unsigned long)loop4(counts[i]));
        printf("loop7 %lu %lu\n", (unsigned long)counts[i], (unsigned long)loop7(counts[i]));
    }
    printf("stack %lu of %lu\n", (unsigned long)board_stack_used(),
           (unsigned long)board_stack_size());
    return 3;
}
"""

# With SysTick wrapping every 4096 ticks (163840 instructions) instead of every 2^24: a long
# loop crosses many wraps, and reads with interrupts masked across a wrap stay right.
WRAP_C = r"""
#include <stdint.h>
#include <stdio.h>
#include "tinyc_board.h"

static void spin4(uint32_t n)
{
    __asm__ volatile("1:\n\tsubs %0, %0, #1\n\tnop\n\tnop\n\tbne 1b" : "+r"(n) : : "cc");
}

int main(void)
{
    board_init();
    uint64_t start = board_counter();
    spin4(2000000u);
    printf("long %lu\n", (unsigned long)(board_counter() - start));
    for (int i = 0; i < 8; ++i) {
        __asm__ volatile("cpsid i" : : : "memory");
        uint64_t before = board_counter();
        spin4(30000u);
        uint64_t after = board_counter();
        __asm__ volatile("cpsie i" : : : "memory");
        printf("masked %lu %lu\n", (unsigned long)before, (unsigned long)after);
        spin4(7919u);
    }
    return 0;
}
"""

FAULT_C = r"""
#include "tinyc_board.h"
int main(void)
{
    board_init();
    __asm__ volatile("udf #0");
    return 0;
}
"""

STUCK_C = r"""
#include "tinyc_board.h"
int main(void)
{
    board_init();
    for (;;) {
        __asm__ volatile("");
    }
}
"""

# For the UART board on QEMU netduinoplus2: print through USART2, then leave QEMU with a
# semihosting exit (a real board would just halt).
UART_C = r"""
#include <stdint.h>
#include <stdio.h>
#include "tinyc_board.h"

int main(void)
{
    board_init();
    printf("uart says %d %s\n", 42, board_counter_unit);
    fflush(stdout);
    const uint32_t block[2] = {0x20026u, 5u};
    register uint32_t r0 __asm__("r0") = 0x20u;
    register const uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return 0;
}
"""


def build(board: Board, source: str, directory: Path, extra: tuple[str, ...] = ()) -> Path:
    """Compiles `source` with the board's flags and sources into directory/fw.elf."""
    directory.mkdir(parents=True, exist_ok=True)
    main_c = directory / "main.c"
    main_c.write_text(source)
    elf = directory / "fw.elf"
    command = [
        ARM_GCC,
        *WARNING_FLAGS,
        *board.cflags,
        *extra,
        *(f"-I{path}" for path in board.include_dirs),
        *board.ldflags,
        str(main_c),
        *(str(path) for path in board.sources),
        *board.ldlibs,
        "-o",
        str(elf),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == "", completed.stderr  # no warnings from the linker either
    return elf


@pytest.fixture(scope="module")
def probe_elves(tmp_path_factory) -> dict[str, Path]:
    """The probe program built for every board (shared by the run and memory-map tests)."""
    if shutil.which(ARM_GCC) is None:
        pytest.skip(f"{ARM_GCC} not installed (make setup)")
    root = tmp_path_factory.mktemp("probe")
    elves = {}
    for board in list_boards():
        # The probe uses host files; a UART board links it all the same (fopen fails there).
        elves[board.id] = build(board, PROBE_C, root / board.id)
    return elves


def _run_probe(board: Board, elf: Path, cwd: Path) -> QemuResult:
    cwd.mkdir()
    (cwd / "input.txt").write_text("7 from the host\n")
    result = run_qemu(board, elf, cwd, timeout=20)
    assert result.returncode == 3, result.stderr
    assert (cwd / "output.txt").read_text() == "10.500\n"
    return result


@needs_qemu
@pytest.mark.parametrize("board_id", QEMU_BOARDS)
def test_firmware_runs_on_qemu(board_id: str, probe_elves, tmp_path: Path):
    board = load_board(board_id)
    first = _run_probe(board, probe_elves[board_id], tmp_path / "first")
    second = _run_probe(board, probe_elves[board_id], tmp_path / "second")
    assert first.stdout.startswith("hello from instructions\nread: 7 from the host\n")
    assert first.stdout == second.stdout  # -icount makes the run deterministic

    # Counts are instructions, to the SysTick resolution (40 instructions on mps2, 31.25 on
    # mps3-an547, where the conversion rounds down): the loop body plus a constant overhead of
    # the two board_counter() calls, never more than one tick.
    tick = -(-1_000_000_000 // board.clock_hz)
    exact = 1_000_000_000 % board.clock_hz == 0
    low = 0 if exact else tick
    # Otherwise the conversion is a 64-bit division, inside the measured interval.
    overhead = 0 if exact else 200
    counts = {
        (int(k), int(n)): int(d)
        for k, n, d in re.findall(r"^loop(\d) (\d+) (\d+)$", first.stdout, re.MULTILINE)
    }
    assert len(counts) == 8
    for (per_iteration, iterations), measured in counts.items():
        expected = per_iteration * iterations
        assert expected - low <= measured <= expected + 2 * tick + overhead, (
            per_iteration, iterations, measured)
    for per_iteration in (4, 7):
        for small, large in ((100000, 200000), (250000, 500000)):
            grown = counts[per_iteration, large] - counts[per_iteration, small]
            assert abs(grown - per_iteration * (large - small)) <= tick

    used, size = map(int, re.search(r"^stack (\d+) of (\d+)$", first.stdout, re.M).groups())
    assert size == board.stack_size
    assert 0 < used < 4096


@needs_arm_gcc
@needs_qemu
def test_counter_survives_systick_wraps(tmp_path: Path):
    board = load_board("qemu-m4")
    elf = build(board, WRAP_C, tmp_path, extra=("-DTINYC_SYSTICK_RELOAD=4095",))
    result = run_qemu(board, elf, tmp_path, timeout=20)
    assert result.returncode == 0, result.stderr
    period = 4096 * 40
    long_run = int(re.search(r"^long (\d+)$", result.stdout, re.M).group(1))
    wraps = 4 * 2000000 // period
    # Each wrap runs the SysTick handler (a few instructions); a lost or doubled wrap would be
    # off by a whole period.
    assert 4 * 2000000 <= long_run <= 4 * 2000000 + wraps * 20 + 80
    masked = [
        (int(before), int(after))
        for before, after in re.findall(r"^masked (\d+) (\d+)$", result.stdout, re.M)
    ]
    assert len(masked) == 8
    for before, after in masked:
        assert 4 * 30000 <= after - before <= 4 * 30000 + 80
    # The handler could not run inside these intervals; some of them must have crossed a wrap
    # for the pending-interrupt path of board_counter() to have been exercised.
    assert sum(before // period != after // period for before, after in masked) >= 3


@needs_arm_gcc
@needs_qemu
def test_fault_ends_qemu_with_fault_code(tmp_path: Path):
    board = load_board("qemu-m4")
    result = run_qemu(board, build(board, FAULT_C, tmp_path), tmp_path, timeout=20)
    assert result.returncode == FAULT_EXIT_CODE and result.faulted
    assert re.match(
        r"tinyc: HardFault \(exception 0x00000003\) at pc=0x[0-9a-f]{8} lr=0x[0-9a-f]{8}\n",
        result.stderr,
    ), result.stderr


@needs_arm_gcc
@needs_qemu
def test_stuck_firmware_times_out(tmp_path: Path, monkeypatch):
    board = load_board("qemu-m4")
    build(board, STUCK_C, tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TinycError) as error:
        run_qemu(board, Path("fw.elf"), tmp_path, timeout=0.5)
    assert str(error.value) == (
        "QEMU did not finish within 0.5 s running fw.elf; the firmware may be stuck"
    )


def test_missing_qemu_is_reported(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(emulator.shutil, "which", lambda name: None)
    with pytest.raises(TinycError) as error:
        run_qemu(load_board("qemu-m4"), tmp_path / "fw.elf", tmp_path)
    assert str(error.value) == (
        "qemu-system-arm not found; run `make setup` or apt-get install qemu-system-arm"
    )


def test_real_board_cannot_be_emulated(tmp_path: Path):
    with pytest.raises(TinycError, match="not emulated"):
        emulator.qemu_command(load_board("nucleo"), tmp_path / "fw.elf")


def _sections(elf: Path) -> dict[str, tuple[int, int]]:
    """Allocated sections of an ELF: name -> (address, size)."""
    out = subprocess.run(
        ["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    sections = {}
    for name, size, address in re.findall(r"^(\.\S+)\s+(\d+)\s+(\d+)$", out, re.M):
        if int(address) != 0 or name == ".isr_vector":
            sections[name] = (int(address), int(size))
    return sections


def _symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(
        ["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    fields = (line.split() for line in out.splitlines())
    return {parts[2]: int(parts[0], 16) for parts in fields if len(parts) == 3}


@pytest.mark.parametrize("board_id", ALL_BOARDS)
def test_memory_map_matches_yaml(board_id: str, probe_elves):
    board = load_board(board_id)
    elf = probe_elves[board_id]
    sections = _sections(elf)
    assert sections[".isr_vector"][0] == board.flash.origin
    for name in (".isr_vector", ".text", ".rodata"):
        assert board.flash.contains(*sections[name]), name
    for name in (".data", ".bss"):
        assert board.ram.contains(*sections[name]), name
    symbols = _symbols(elf)
    assert symbols["_estack"] == board.ram.end
    assert symbols["__stack_start__"] == board.ram.end - board.stack_size
    assert symbols["tinyc_vector_table"] == board.flash.origin
    if board.fast_ram is not None:  # the linker script's FAST_RAM region is the YAML's
        assert symbols["__fast_ram_start__"] == board.fast_ram.origin
    else:
        assert "__fast_ram_start__" not in symbols


def _netduinoplus2(elf: Path, timeout: float) -> tuple[int | None, str]:
    """Runs `elf` on QEMU's netduinoplus2 with USART2 on stdout; (exit code or None if it was
    still running after `timeout` s, output)."""
    with open(elf.with_suffix(".out"), "w+") as out:
        process = subprocess.Popen(
            [emulator.QEMU_BINARY, "-M", "netduinoplus2", "-nographic", "-monitor", "none",
             "-serial", "null", "-serial", "stdio",  # USART1, USART2
             "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
             "-kernel", str(elf)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
        out.seek(0)
        return code, out.read()


@needs_arm_gcc
@needs_qemu
def test_uart_console_on_emulated_stm32(tmp_path: Path):
    elf = build(load_board("qemu-f405"), UART_C, tmp_path)
    code, output = _netduinoplus2(elf, timeout=20)
    assert code == 5, output
    assert output == "uart says 42 instructions\n"  # SysTick under QEMU: instructions


@needs_arm_gcc
@needs_qemu
def test_failed_clock_setup_is_reported(tmp_path: Path):
    # The nucleo-f446re firmware raises the clock with the PLL; QEMU's STM32F405 model has no
    # RCC, so HSIRDY never reads 1: the firmware falls back to the reset clock, names the step
    # on the console and halts (here: stays in wfi, so QEMU is stopped after the time-out).
    elf = build(load_board("nucleo"), UART_C, tmp_path)
    code, output = _netduinoplus2(elf, timeout=3)
    assert code is None
    assert output.replace("\r", "") == "tinyc: clock set-up failed: HSI\n"


@needs_arm_gcc
@needs_qemu
def test_vtor_and_counter_on_emulated_stm32(tmp_path: Path):
    # SysTick at QEMU's 168 MHz converts to instructions to within one tick (~6 instructions),
    # plus the conversion's 64-bit division (~150 instructions) inside the measured interval.
    source = PROBE_C.split("int main(void)")[0] + r"""
int main(void)
{
    board_init();
    printf("loop4 %lu\n", (unsigned long)loop4(250000u));
    printf("loop7 %lu\n", (unsigned long)loop7(100000u));
    fflush(stdout);
    const uint32_t block[2] = {0x20026u, 0u};
    register uint32_t r0 __asm__("r0") = 0x20u;
    register const uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return 0;
}
"""
    elf = build(load_board("qemu-f405"), source, tmp_path)
    code, output = _netduinoplus2(elf, timeout=20)
    assert code == 0, output
    four = int(re.search(r"^loop4 (\d+)$", output, re.M).group(1))
    seven = int(re.search(r"^loop7 (\d+)$", output, re.M).group(1))
    assert 1_000_000 - 6 <= four <= 1_000_000 + 200
    assert 700_000 - 6 <= seven <= 700_000 + 200


HOST_C = r"""
#include <stdio.h>
#include "tinyc_board.h"

int main(void)
{
    board_init();
    unsigned long long start = board_counter();
    volatile unsigned sum = 0;
    for (unsigned i = 0; i < 100000; ++i) {
        sum += i;
    }
    unsigned long long end = board_counter();
    printf("%s %d %lu\n", board_counter_unit, end > start, (unsigned long)board_stack_used());
    return 0;
}
"""


def test_host_board_builds_and_counts_ns(tmp_path: Path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    host = host_board()
    main_c = tmp_path / "main.c"
    main_c.write_text(HOST_C)
    exe = tmp_path / "host"
    subprocess.run(
        ["gcc", *WARNING_FLAGS, "-Wpedantic", *host.cflags,
         *(f"-I{path}" for path in host.include_dirs), str(main_c),
         *(str(path) for path in host.sources), *host.ldflags, *host.ldlibs, "-o", str(exe)],
        check=True,
    )  # fmt: skip
    assert subprocess.run([exe], capture_output=True, text=True, check=True).stdout == "ns 1 0\n"
