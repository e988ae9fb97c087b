"""A binarized CNN on scikit-learn's 8x8 digits, from PyTorch training to the emulated Cortex-M4.

    .venv/bin/python examples/digits_bnn.py [OUTDIR]      (default out/digits_bnn)

Trains examples/bnn_models.py's DigitsBNN (tinyc.nn layers; every layer binary) for a few
epochs on the training split (1,437 images, seconds on a CPU), saves it as a pickled module,
compiles it with tinyc, runs the generated C natively and on QEMU's Cortex-M4 over the 360
held-out images, and prints the accuracy of PyTorch and of the C side by side.  They are equal
because the logits are bit-identical: the binary layers compute integer dot products, BatchNorm
+ sign are integer thresholds, and the last layer's fl(fl(dot * scale) + bias) is PyTorch's own
float arithmetic.  The same from the command line (the model's class lives in examples/):

    PYTHONPATH=examples tinyc verify OUTDIR/digits_bnn.pt --input-shape 1x1x8x8 \\
        --input OUTDIR/x_test.npy
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from bnn_models import accuracy, parameters, torch_logits, trained_digits_bnn

from tinyc.boards import load_board
from tinyc.firmware import open_project, run
from tinyc.project import compile_model, write_project

BOARD = "qemu-m4"
EPOCHS = 10


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/digits_bnn")
    out.mkdir(parents=True, exist_ok=True)
    model, (_, _, x_test, y_test) = trained_digits_bnn(EPOCHS)
    path = out / "digits_bnn.pt"
    torch.save(model, str(path))
    np.save(out / "x_test.npy", x_test)
    reference = torch_logits(model, x_test)
    print(f"DigitsBNN: {parameters(model):,} parameters, trained {EPOCHS} epochs; saved {path}")

    compiled = compile_model(path, load_board(BOARD), input_shape="1x1x8x8")
    write_project(compiled, out / "project")
    report = compiled.report
    storage = report["weight_storage"]
    print(f"compiled to {out / 'project'}: {len(report['layers'])} layers, weights "
          f"{report['weight_bytes']:,} B = {storage['mbit']:.4f} Mbit "
          f"({storage['binary_weights']:,} binary weights; the same network would take "
          f"{storage['int8_mbit']:.4f} Mbit in int8, {storage['float_mbit']:.4f} Mbit in "
          f"float), arena {report['arena_bytes']:,} B")

    project = open_project(out / "project")
    samples = [[x[None]] for x in x_test]
    results = {"host": run(project, samples, "host"), BOARD: run(project, samples, "board")}
    print(f"{len(x_test)} held-out images:")
    print(f"  PyTorch          accuracy {accuracy(reference, y_test):.2%}")
    for target, result in results.items():
        logits = np.stack([o[0].reshape(-1) for o in result.outputs])
        same = np.array_equal(logits, reference.reshape(logits.shape))
        print(f"  C on {target:<11} accuracy {accuracy(logits, y_test):.2%}, logits "
              f"{'bit-identical to' if same else 'DIFFERENT from'} PyTorch's")
        if not same:
            sys.exit(1)
    counts = results[BOARD].counts
    print(f"  {BOARD}: {counts[0]:,} {results[BOARD].unit} per inference")


if __name__ == "__main__":
    main()
