"""EEG-style 3-D CNNs in three sizes, as float, int8, binarized and binarized with int8 real
layers, on the emulated Cortex-M4.

    .venv/bin/python examples/eeg_bnn.py [OUTDIR] [--sizes 6k,14k,25k]   (default out/eeg_bnn)

For each size of examples/bnn_models.py's EEGNet (inverted-residual, depthwise-separable 3-D
blocks; about 6k, 14k and 25k parameters) it trains the float network and the binarized one
(tinyc.nn binary convolutions in every block, real first and last layers) briefly on synthetic
EEG-like data, then compiles four variants with tinyc for qemu-m4:
  float   the float network;
  int8    the float network with `--quantize int8` (calibrated on training samples);
  binary  the binarized network (BatchNorm + sign as integer thresholds, packed activations);
  bin+i8  the binarized network with `--quantize int8`: the binary layers stay binary, the real
          ones (stem, residual adds, classifier) and the binary layers' real outputs become
          int8, so the residual stream takes a quarter of binary's float32 RAM.
Each is run natively on held-out samples (C accuracy) and benchmarked on QEMU as `tinyc bench`
does: flash taken by the model (code and weights, from the linker map), arena bytes, weight
storage and instructions per inference.  The data are synthetic (tinyc ships no EEG recording),
so the accuracies only show that the compiled models work, not what the architectures reach.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from bnn_models import EEG_SHAPE, EEG_SIZES, accuracy, eeg_data, parameters, trained_eeg

from tinyc.bench import bench_project
from tinyc.boards import load_board
from tinyc.firmware import open_project, run
from tinyc.project import Quantization, compile_model, write_project

BOARD = "qemu-m4"
INPUT_SHAPE = "x".join(map(str, EEG_SHAPE))


def measure(model: torch.nn.Module, out: Path, held_out: tuple[np.ndarray, np.ndarray],
            quantize: Quantization | None = None) -> dict:
    path = out / "model.pt"
    torch.save(model, str(path))
    compiled = compile_model(path, load_board(BOARD), input_shape=INPUT_SHAPE, quantize=quantize)
    write_project(compiled, out / "project")
    project = open_project(out / "project")
    x, y = held_out
    logits = run(project, [[s[None]] for s in x], "host").outputs
    bench = bench_project(project)
    return {"parameters": parameters(model), "accuracy": accuracy(
        np.stack([o[0].reshape(-1) for o in logits]), y),
        "mbit": compiled.report["weight_storage"]["mbit"], "flash": bench.model_flash,
        "arena": bench.arena_bytes, "instructions": bench.per_inference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="out/eeg_bnn", type=Path)
    parser.add_argument("--sizes", default=",".join(EEG_SIZES))
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    calibration_x, _ = eeg_data(64, seed=1)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.outdir) as tmp:
        np.save(Path(tmp) / "calibration.npy", calibration_x)
        int8 = Quantization(Path(tmp) / "calibration.npy")
        for size in args.sizes.split(","):
            fmodel, held_out = trained_eeg(size, binary=False)
            bmodel, _ = trained_eeg(size, binary=True)
            for variant, model, quantize in (("float", fmodel, None), ("int8", fmodel, int8),
                                             ("binary", bmodel, None), ("bin+i8", bmodel, int8)):
                out = args.outdir / f"{size}_{variant}"
                out.mkdir(exist_ok=True)
                rows.append((size, variant, measure(model, out, held_out, quantize)))
                print(f"  {size} {variant}: done", flush=True)
    print(f"\nEEGNet on {BOARD} (instructions per inference: QEMU -icount, exact; flash: the "
          "model's code and constants)")
    print(f"{'size':<5} {'variant':<7} {'params':>7} {'weights Mbit':>12} {'flash B':>9} "
          f"{'arena B':>8} {'instructions':>13} {'C accuracy*':>11}")
    for size, variant, m in rows:
        print(f"{size:<5} {variant:<7} {m['parameters']:>7,} {m['mbit']:>12.4f} "
              f"{m['flash']:>9,} {m['arena']:>8,} {m['instructions']:>13,} "
              f"{m['accuracy']:>11.1%}")
    print("* on held-out synthetic data, after a few epochs of training")


if __name__ == "__main__":
    main()
