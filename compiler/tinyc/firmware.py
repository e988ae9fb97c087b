"""Build a generated project and run it: on the board's emulator or natively on the host.

Targets (Makefile): board (main.c, the test harness), profile, serial (serial.c, the serial
benchmark firmware for real boards), host and serial-host (native builds). Both runs below use
the same main.c: samples go in through input.bin and come out of output.bin
(semihosting on QEMU), and the firmware prints one line per inference with the counter delta:
`tinyc: sample N COUNT`, plus `tinyc: layer I NAME COUNT` lines in profile builds.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyc.boards import Board, load_board
from tinyc.emulator import run_qemu
from tinyc.errors import TinycError
from tinyc.project import REPORT

TARGETS = {"board": ("all", "build/firmware.elf"),
           "profile": ("profile", "build/profile/firmware.elf"),
           "serial": ("serial", "build/serial/firmware.elf"),
           "host": ("host", "build/host/firmware"),
           "serial-host": ("serial-host", "build/serial-host/firmware")}
HOST_TARGETS = ("host", "serial-host")
FLASH_SECTIONS = (".isr_vector", ".text", ".rodata", ".ARM.extab", ".ARM.exidx",
                  ".preinit_array", ".init_array", ".fini_array", ".data")
RAM_SECTIONS = (".data", ".bss", ".heap", ".stack")
FIRMWARE_NAMES = {"board": "test harness firmware", "profile": "profiling firmware",
                  "serial": "serial benchmark firmware"}
LINK_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


@dataclass
class Project:
    outdir: Path
    report: dict[str, Any]
    board: Board


@dataclass
class SizeInfo:
    text: int  # code + constants in flash (.text, .rodata, tables)
    data: int  # initialised RAM (its image is in flash too)
    bss: int  # zeroed RAM, the arena included
    stack: int  # reserved stack
    flash_used: int
    ram_used: int


class FirmwareTooLarge(TinycError):
    """The linker found the image larger than the board's memory.  `overflow` maps each region
    of the linker script (FLASH, RAM, ...) to the bytes it is short of; `sizes` are what the
    image needs, from the linker map (written even when the link fails)."""

    def __init__(self, project: Project, target: str, overflow: dict[str, int],
                 sizes: SizeInfo) -> None:
        self.overflow = overflow
        self.sizes = sizes
        board = project.board
        linker = ", ".join(f"region {r} overflowed by {n:,} B" for r, n in overflow.items())
        super().__init__(f"{project.outdir}: the {FIRMWARE_NAMES.get(target, target)} does not "
                         f"fit {board.id}: it needs flash {sizes.flash_used:,} of "
                         f"{board.flash.size:,} B, RAM {sizes.ram_used:,} of {board.ram.size:,} B "
                         f"(the linker: {linker})")


@dataclass
class RunResult:
    outputs: list[list[np.ndarray]]  # per sample, per model output
    counts: list[int]  # counter per inference
    layer_counts: list[tuple[str, int]]  # profile builds: per layer, summed over samples
    unit: str
    stdout: str


def open_project(outdir: Path, board: str | None = None) -> Project:
    outdir = Path(outdir)
    try:
        report = json.loads((outdir / REPORT).read_text())
    except (OSError, ValueError):
        raise TinycError(f"{outdir}: not a tinyc output folder (no readable {REPORT}); run "
                         "`tinyc compile MODEL -o DIR` first") from None
    chosen = load_board(board or report["board"])
    if chosen.id != report["board"]:
        raise TinycError(f"{outdir} was compiled for {report['board']}, not {chosen.id}; "
                         f"recompile with --board {chosen.id}")
    return Project(outdir, report, chosen)


def _tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise TinycError(f"{name} not found; {hint}")
    return path


def build(project: Project, target: str = "board") -> Path:
    make_target, artifact = TARGETS[target]
    _tool("make", "install make (apt-get install make)")
    if target not in HOST_TARGETS:
        _tool("arm-none-eabi-gcc", "run `make setup` or apt-get install gcc-arm-none-eabi "
              "libnewlib-arm-none-eabi")
    result = subprocess.run(["make", "-C", str(project.outdir), make_target],
                            capture_output=True, text=True)
    if result.returncode != 0:
        overflow = {m.group(1): int(m.group(2))
                    for m in LINK_OVERFLOW.finditer(result.stderr + result.stdout)}
        if overflow:
            linker_map = (project.outdir / artifact).with_suffix(".map")
            sizes = size_info(project, map_sections(linker_map))
            raise FirmwareTooLarge(project, target, overflow, sizes)
        lines = (result.stderr + result.stdout).splitlines()
        first = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")
        raise TinycError(f"building {project.outdir} ({make_target}) failed: {first.strip()}")
    return project.outdir / artifact


def size(project: Project, elf: Path) -> SizeInfo:
    tool = _tool("arm-none-eabi-size", "run `make setup`")
    out = subprocess.run([tool, "-A", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    sections = {m.group(1): int(m.group(2))
                for m in re.finditer(r"^(\.\S+)\s+(\d+)\s+\d+", out, re.MULTILINE)}
    return size_info(project, sections)


def map_sections(map_file: Path) -> dict[str, int]:
    """Output-section sizes from a GNU ld map file: `.name  0xADDRESS  0xSIZE`, the address and
    size on the next line when the name is long."""
    text = map_file.read_text()
    lines = text[text.find("Linker script and memory map"):].splitlines()
    sections = {}
    for i, line in enumerate(lines):
        if not line.startswith("."):
            continue
        tokens = line.split()
        if len(tokens) == 1 and i + 1 < len(lines):
            tokens += lines[i + 1].split()
        if len(tokens) >= 3 and tokens[1].startswith("0x") and tokens[2].startswith("0x"):
            sections[tokens[0]] = int(tokens[2], 16)
    return sections


def size_info(project: Project, sections: dict[str, int]) -> SizeInfo:
    """Flash and RAM use from output-section sizes (the stack: its section, else the board's)."""
    flash = sum(sections.get(s, 0) for s in FLASH_SECTIONS)
    stack = sections.get(".stack", project.board.stack_size)
    data = sections.get(".data", 0)
    bss = sections.get(".bss", 0)
    ram = data + bss + sections.get(".heap", 0) + stack
    return SizeInfo(flash - data, data, bss, stack, flash, ram)


def _decode(project: Project, raw: bytes) -> list[list[np.ndarray]]:
    outputs = project.report["outputs"]
    per_sample = sum(o["bytes"] for o in outputs)
    if per_sample == 0 or len(raw) % per_sample:
        raise TinycError(f"the firmware wrote {len(raw)} output bytes, not a multiple of "
                         f"{per_sample}")
    samples = []
    for start in range(0, len(raw), per_sample):
        values, pos = [], start
        for o in outputs:
            chunk = raw[pos:pos + o["bytes"]]
            values.append(np.frombuffer(chunk, dtype=o["dtype"]).reshape(o["shape"]).copy())
            pos += o["bytes"]
        samples.append(values)
    return samples


def write_inputs(project: Project, samples: list[list[np.ndarray]], path: Path) -> None:
    """The input file the firmware reads: each sample's inputs in order, as the model takes them."""
    expected = [(i["shape"], i["dtype"]) for i in project.report["inputs"]]
    with open(path, "wb") as f:
        for sample in samples:
            for value, (shape, dtype) in zip(sample, expected, strict=True):
                f.write(np.ascontiguousarray(value, dtype=dtype).reshape(shape).tobytes())


def run(project: Project, samples: list[list[np.ndarray]], target: str = "board",
        timeout: float = 120) -> RunResult:
    """Build (if needed) and run the firmware on `samples`; returns outputs and counters."""
    if target != "host" and not project.board.emulated:
        raise TinycError(f"{project.board.id} is a real board: tinyc cannot run it here; use "
                         "`tinyc bench --port` on the device, or --board qemu-m4")
    if target != "host" and not project.board.files:
        raise TinycError(f"{project.board.id} has no semihosting file access to feed inputs; "
                         "check and time it over its UART instead: tinyc bench OUTDIR --port "
                         "(see README, 'Real boards')")
    exe = build(project, target)
    with tempfile.TemporaryDirectory(prefix="tinyc-run-") as tmp:
        work = Path(tmp)
        write_inputs(project, samples, work / "input.bin")
        if target == "host":
            try:
                proc = subprocess.run([str(exe.resolve())], cwd=work, capture_output=True,
                                      text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise TinycError(f"the host build did not finish within {timeout:.0f} s") from None
            code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        else:
            res = run_qemu(project.board, exe.resolve(), work, timeout=timeout)
            code, stdout, stderr = res.returncode, res.stdout, res.stderr
        if code != 0:
            detail = (stderr.strip() or stdout.strip()).splitlines()
            raise TinycError(f"the firmware exited with code {code}"
                             + (f": {detail[-1]}" if detail else ""))
        raw = (work / "output.bin").read_bytes()
    counts = [int(m.group(1)) for m in re.finditer(r"^tinyc: sample \d+ (\d+)$", stdout,
                                                    re.MULTILINE)]
    layers = [(m.group(1), int(m.group(2))) for m in
              re.finditer(r"^tinyc: layer \d+ (\S+) (\d+)$", stdout, re.MULTILINE)]
    unit_match = re.search(r"unit (\S+)", stdout)
    unit = unit_match.group(1) if unit_match else "?"
    return RunResult(_decode(project, raw), counts, layers, unit, stdout)


@dataclass
class Firmware:
    """A built firmware image and its sizes."""

    target: str  # "board" (main.c test harness) | "serial" (serial benchmark firmware)
    elf: Path
    sizes: SizeInfo


def build_firmwares(project: Project, tool: str = "make") -> list[Firmware]:
    """Builds both firmware images (test harness and serial benchmark firmware) with `make` or
    with PlatformIO's offline environments; refuses images that do not fit the board."""
    targets = ("board", "serial")
    if tool == "platformio":
        from tinyc import platformio

        elves = platformio.build(project, targets)
    else:
        elves = {target: build(project, target) for target in targets}
    board = project.board
    firmwares = []
    for target in targets:
        info = size(project, elves[target])
        if info.flash_used > board.flash.size or info.ram_used > board.ram.size:
            raise TinycError(f"{elves[target]} does not fit {board.id}: flash "
                             f"{info.flash_used:,} of {board.flash.size:,} B, RAM "
                             f"{info.ram_used:,} of {board.ram.size:,} B")
        firmwares.append(Firmware(target, elves[target], info))
    return firmwares
