"""Running firmware on an emulated board (QEMU with semihosting and instruction counting).

QEMU runs with `-icount shift=0`: every guest instruction advances virtual time by exactly
1 ns, so runs are deterministic and the SysTick-based board_counter() counts instructions.
Semihosting (`target=native`) connects the firmware's stdio to QEMU's stdout/stderr, makes
fopen() reach host files relative to `cwd`, and turns main()'s return value into QEMU's exit
code. The firmware's fault handler exits with FAULT_EXIT_CODE instead of hanging.

SerialQemu runs the serial benchmark firmware instead, with the board's UART on a
pseudo-terminal: the same path as a real board's /dev/ttyACM0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
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


_PTY_LINE = re.compile(r"char device redirected to (\S+) \(label serial(\d+)\)")


class SerialQemu:
    """The firmware running on an emulated board with the board's UART on a pseudo-terminal, so
    that `tinyc bench --port` (or any serial program) drives it as it would a real board.

    QEMU runs with -icount shift=0 (deterministic, counts are instructions) and semihosting on;
    the UART is the board's qemu.serial-th -serial (the others are null). Use as a context
    manager, or call stop(); `port` is the pseudo-terminal, e.g. /dev/pts/3. With
    `start_paused`, QEMU starts with the CPU stopped (-S): the port exists but nobody answers,
    which tests use to stand for a device that does not respond.
    """

    def __init__(self, board: Board, elf: Path, start_paused: bool = False,
                 timeout: float = 10) -> None:
        if shutil.which(QEMU_BINARY) is None:
            raise TinycError(
                f"{QEMU_BINARY} not found; run `make setup` or apt-get install qemu-system-arm"
            )
        if board.qemu is None:
            raise TinycError(f"board '{board.id}' is not emulated; it has a real serial port")
        elf = Path(elf)
        if not elf.is_file():
            raise TinycError(f"firmware {elf} does not exist; build it first")
        command = [QEMU_BINARY, "-M", board.qemu.machine]
        if board.qemu.cpu is not None:
            command += ["-cpu", board.qemu.cpu]
        command += ["-nographic", "-monitor", "none"]
        for _ in range(board.qemu.serial):
            command += ["-serial", "null"]
        command += ["-serial", "pty", "-semihosting-config", "enable=on,target=native",
                    "-icount", "shift=0", "-kernel", str(elf.resolve())]
        if start_paused:
            command.append("-S")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        self.port = self._wait_for_port(board.qemu.serial, timeout)

    def _wait_for_port(self, index: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _PTY_LINE.search(self.output())
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                self.stop()
                raise TinycError(f"QEMU exited with code {self.process.returncode} before "
                                 f"opening the serial port: {self.output().strip()[-200:]}")
            time.sleep(0.02)
        self.stop()
        raise TinycError(f"QEMU did not open a serial port within {timeout:g} s")

    def output(self) -> str:
        """What QEMU printed so far (its own messages and semihosting output)."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")

    def stop(self) -> None:
        """Ends QEMU (the port disappears); harmless when it has already ended."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def __enter__(self) -> SerialQemu:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()
