"""Helpers shared by the tests: running the real `tinyc` command, saving PyTorch models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def tinyc(*args: str | Path, cwd: Path | None = None, env: dict | None = None) -> CliResult:
    """Run `tinyc ARGS` as a user would (a separate process), capturing everything."""
    full_env = os.environ.copy() | {"PYTHONPATH": str(ROOT / "compiler")} | (env or {})
    proc = subprocess.run([sys.executable, "-m", "tinyc.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=full_env, timeout=600)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def save_torchscript(model, shape: tuple[int, ...], path: Path) -> Path:
    import torch

    torch.jit.save(torch.jit.trace(model, torch.zeros(shape)), str(path))
    return path


def struct_layout_source(headers: list[str], structs: list[type]) -> str:
    """C recording sizeof and every field offset of each ctypes mirror of a kernel struct
    (`layout_<Name>[]`), so a test can check the mirrors against the headers."""
    lines = ["#include <stddef.h>"] + [f'#include "{h}"' for h in headers]
    for cls in structs:
        items = [f"sizeof({cls.__name__})"] + [f"offsetof({cls.__name__}, {f})"
                                               for f, _ in cls._fields_]
        lines.append(f"const size_t layout_{cls.__name__}[] = {{{', '.join(items)}}};")
    return "\n".join(lines) + "\n"
