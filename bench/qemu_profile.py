"""Instructions per function of a firmware run on QEMU, per call of the kernels that start a layer.

QEMU logs each translated block's instructions (-d in_asm) and each block it executes (-d exec,
with chaining off so that every execution is logged); instructions x executions, attributed to
functions by the ELF's symbol table, give exact counts like -icount, per function.  A call of one
of the `roots` (e.g. tc_bconv_sparse_f32) starts a new record, which every block until the next
root call is charged to, so the helpers a layer calls (the slice sums of the fast binary
convolution) are counted per layer.  The log is read from a FIFO as QEMU writes it: runs of tens
of millions of instructions take seconds, not disk.  A developer's tool: `make bench`
(bench/binary_micro.py) uses it for the inner loop of the binary convolution.
"""

from __future__ import annotations

import bisect
import os
import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tinyc.boards import Board
from tinyc.emulator import qemu_command
from tinyc.errors import TinycError

_INSN = re.compile(r"0x([0-9a-f]{8}):\s")
_EXEC = re.compile(r"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/([0-9a-f]+)/([0-9a-f]+)\]")


@dataclass
class RootCall:
    """One call of a root function and the instructions per function until the next one."""
    function: str
    counts: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Symbols:
    starts: list[int]
    ends: list[int]
    names: list[str]

    def name_at(self, address: int) -> str | None:
        i = bisect.bisect_right(self.starts, address) - 1
        return self.names[i] if i >= 0 and address < self.ends[i] else None


def _symbols(elf: Path) -> _Symbols:
    out = subprocess.run(["arm-none-eabi-nm", "-S", "--defined-only", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    rows = sorted((int(a, 16) & ~1, int(s, 16), n) for a, s, kind, n in
                  (line.split() for line in out.splitlines() if len(line.split()) == 4)
                  if kind in "tTwW")
    return _Symbols([a for a, _, _ in rows], [a + s for a, s, _ in rows], [n for _, _, n in rows])


def profile(board: Board, elf: Path, cwd: Path, roots: set[str], timeout: float = 300
            ) -> list[RootCall]:
    """The calls of `roots` in the run of `elf` on the emulated `board` (semihosting files
    relative to `cwd`), each with its instructions per function."""
    symbols = _symbols(elf)
    root_starts = {symbols.starts[i]: n for i, n in enumerate(symbols.names) if n in roots}
    calls: list[RootCall] = []
    blocks: dict[tuple[int, str], list[str | None]] = {}  # (pc, flags): function per instruction
    with tempfile.TemporaryDirectory(prefix="tinyc-prof-") as tmp:
        fifo = Path(tmp) / "log"
        os.mkfifo(fifo)
        command = qemu_command(board, elf.resolve())
        command[-2:-2] = ["-d", "in_asm,exec,nochain", "-D", str(fifo)]
        with subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as qemu, \
                open(fifo, encoding="utf-8", errors="replace") as log:
            pending: list[int] | None = None
            current: list[int] | None = None
            for line in log:
                if line.startswith("IN:"):
                    current = []
                elif current is not None and (m := _INSN.match(line)):
                    current.append(int(m.group(1), 16))
                elif current is not None and not line.strip():
                    pending, current = current, None
                elif m := _EXEC.match(line):
                    pc = int(m.group(1), 16)
                    key = (pc, m.group(2) + m.group(3))
                    if pending is not None:
                        blocks[key] = [symbols.name_at(a) for a in pending]
                        pending = None
                    if pc in root_starts:
                        calls.append(RootCall(root_starts[pc]))
                    if calls:
                        calls[-1].counts.update(name or "?" for name in blocks.get(key, []))
            try:
                qemu.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                qemu.kill()
                raise TinycError(f"QEMU did not finish within {timeout:g} s profiling {elf}") \
                    from None
    return calls
