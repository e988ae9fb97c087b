"""`make demo`: a MobileNetV2-style network from PyTorch to verified C on the emulated Cortex-M4.

Saves the model from examples/models.py (seeded weights, BatchNorm statistics included) as
TorchScript, then runs the same tinyc commands a user would, printing each one:
compile (C project + memory plan), build (flash/RAM), verify (C on host and on QEMU against
torch) and bench (instructions per inference, per layer).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import torch

from models import build

BOARD = "qemu-m4"


def tinyc(*args: str) -> None:
    print(f"\n$ tinyc {shlex.join(args)}", flush=True)
    code = subprocess.run([sys.executable, "-m", "tinyc.cli", *args]).returncode
    if code != 0:
        sys.exit(code)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/demo")
    out.mkdir(parents=True, exist_ok=True)
    model, shape = build("mobilenetv2_tiny")
    path = out / "mobilenetv2_tiny.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(shape)), str(path))
    params = sum(p.numel() for p in model.parameters())
    print(f"demo model: MobileNetV2-style, {params:,} parameters, input {list(shape)}, "
          f"saved as {path}")
    project = str(out / "project")
    input_shape = "x".join(map(str, shape))
    tinyc("compile", str(path), "--board", BOARD, "--input-shape", input_shape, "-o", project)
    tinyc("build", project)
    tinyc("verify", str(path), "--board", BOARD, "--input-shape", input_shape, "--samples", "5")
    tinyc("bench", project)


if __name__ == "__main__":
    main()
