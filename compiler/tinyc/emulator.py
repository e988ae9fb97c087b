"""Running firmware on an emulated board (QEMU with semihosting and instruction counting).

QEMU runs with `-icount shift=0`: every guest instruction advances virtual time by exactly
1 ns, so runs are deterministic and the SysTick-based board_counter() counts instructions.
Semihosting (`target=native`) connects the firmware's stdio to QEMU's stdout/stderr, makes
fopen() reach host files relative to `cwd`, and turns main()'s return value into QEMU's exit
code. The firmware's fault handler exits with FAULT_EXIT_CODE instead of hanging.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tinyc.boards import Board
from tinyc.errors import TinycError

QEMU_BINARY = "qemu-system-arm"

FAULT_EXIT_CODE = 100
"""Exit code of firmware that took a HardFault (BOARD_EXIT_FAULT in tinyc_board.h)."""


@dataclass(frozen=True)
class QemuResult:
    """What a firmware run produced: QEMU's exit code (= main()'s return value) and output."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def faulted(self) -> bool:
        """True if the firmware crashed (its fault handler printed a line to stderr)."""
        return self.returncode == FAULT_EXIT_CODE


def qemu_command(board: Board, elf: Path) -> list[str]:
    """The qemu-system-arm command line that runs `elf` on `board`."""
    if board.qemu is None:
        raise TinycError(
            f"board '{board.id}' is not emulated; flash the firmware to a real board instead"
        )
    command = [QEMU_BINARY, "-M", board.qemu.machine]
    if board.qemu.cpu is not None:
        command += ["-cpu", board.qemu.cpu]
    command += [
        "-nographic",
        "-monitor",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        "shift=0",
        "-kernel",
        str(elf),
    ]
    return command


def run_qemu(board: Board, elf: Path, cwd: Path, timeout: float = 60) -> QemuResult:
    """Runs `elf` on the emulated `board` with semihosting file I/O relative to `cwd`.

    Raises TinycError if QEMU is not installed, the ELF does not exist, or the run takes longer
    than `timeout` seconds (the firmware is then most likely stuck in a loop).
    """
    if shutil.which(QEMU_BINARY) is None:
        raise TinycError(
            f"{QEMU_BINARY} not found; run `make setup` or apt-get install qemu-system-arm"
        )
    elf = Path(elf)
    if not elf.is_file():
        raise TinycError(f"firmware {elf} does not exist; build it first")
    if not Path(cwd).is_dir():
        raise TinycError(f"working directory {cwd} for the QEMU run does not exist")
    command = qemu_command(board, elf.resolve())
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise TinycError(
            f"QEMU did not finish within {timeout:g} s running {_display(elf)}; "
            "the firmware may be stuck"
        ) from error
    return QemuResult(
        returncode=completed.returncode,
        stdout=completed.stdout.decode("utf-8", errors="replace"),
        stderr=completed.stderr.decode("utf-8", errors="replace"),
    )


def _display(path: Path) -> str:
    """`path` relative to the current directory when it lies below it, else as given."""
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)
