"""The binarized EEG-style 3-D CNN validated as deployed, beside its float and int8 siblings.

    .venv/bin/python examples/eeg_validate.py [OUTDIR] [--size 14k] [--samples 1000]
                                                       (default out/eeg_validate; about a minute)

Trains examples/bnn_models.py's EEGNet of one size twice, as the float network and as the
binarized one (tinyc.nn binary convolutions in every block), on synthetic EEG-like data (band
power maps over a 9 x 9 electrode grid with a class-dependent pattern; tinyc ships no recording),
saves both as pickled modules, draws a fresh held-out set from the same generator and runs, as a
user would:

    PYTHONPATH=examples tinyc validate OUTDIR/eeg_binary.pt --input-shape 1x1x4x9x9 \\
        --data OUTDIR/x.npy --labels OUTDIR/y.npy --compare OUTDIR/eeg_float.pt \\
        --compare OUTDIR/eeg_float.pt@int8 --calibration OUTDIR/calibration.npy \\
        --on-target 16 --html OUTDIR/report.html

which compiles the three deployments (binary; float; the float network quantized to int8),
runs each one's C over every held-out sample and 16 of them on the emulated Cortex-M4 too, and
prints accuracy, calibration and agreement with each model's Python reference and with the first
(binary) build; report.html holds the same with the reliability diagrams and memory plans.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from bnn_models import EEG_SHAPE, EEG_SIZES, eeg_data, trained_eeg

EXAMPLES = Path(__file__).resolve().parent
INPUT_SHAPE = "x".join(map(str, EEG_SHAPE))
HELD_OUT_SEED = 7  # the training samples come from seed 0, the calibration ones from seed 1
ON_TARGET = 16


def prepare(outdir: Path, size: str = "14k", samples: int = 1000, epochs: int = 8,
            on_target: int = ON_TARGET) -> list[str]:
    """Train and save both networks and the data; return the `tinyc validate` arguments."""
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {name: outdir / f"{name}.npy" for name in ("x", "y", "calibration")}
    x, y = eeg_data(samples, seed=HELD_OUT_SEED)
    np.save(paths["x"], x)
    np.save(paths["y"], y)
    np.save(paths["calibration"], eeg_data(64, seed=1)[0])
    models = {}
    for variant in ("binary", "float"):
        model, _ = trained_eeg(size, binary=variant == "binary", epochs=epochs)
        models[variant] = outdir / f"eeg_{variant}.pt"
        torch.save(model, str(models[variant]))
    return ["validate", str(models["binary"]), "--input-shape", INPUT_SHAPE,
            "--data", str(paths["x"]), "--labels", str(paths["y"]),
            "--compare", str(models["float"]), "--compare", f"{models['float']}@int8",
            "--calibration", str(paths["calibration"]), "--on-target", str(on_target),
            "--html", str(outdir / "report.html")]


def run_tinyc(args: list[str]) -> int:
    """`tinyc ARGS` in a new process, with examples/ importable (the pickled models' class)."""
    path = os.pathsep.join(p for p in (str(EXAMPLES), os.environ.get("PYTHONPATH")) if p)
    print(f"$ PYTHONPATH=examples tinyc {shlex.join(args)}", flush=True)
    return subprocess.run([sys.executable, "-m", "tinyc.cli", *args],
                          env=os.environ | {"PYTHONPATH": path}).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="out/eeg_validate", type=Path)
    parser.add_argument("--size", choices=list(EEG_SIZES), default="14k")
    parser.add_argument("--samples", type=int, default=1000, help="held-out samples")
    args = parser.parse_args()
    sys.exit(run_tinyc(prepare(args.outdir, args.size, args.samples)))


if __name__ == "__main__":
    main()
