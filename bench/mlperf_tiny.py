"""`make bench` (int8 part): the MLPerf Tiny int8 models on the emulated Cortex-M4 and M7.

For each model and board: MACs, QEMU instructions per inference (-icount shift=0: exact,
repeatable, NOT cycles), instructions per MAC, tinyc's arena beside TFLM's arena for the same
model (the tflite-micro package's RecordingMicroAllocator: the total, as arena_used_bytes()
reports it, and its non-persistent head, the activations alone), flash (whole firmware and the
model alone), and the measured stack high-water mark.  The TFLM + CMSIS-NN instruction counts
are the ones measured on the same QEMU machine with the same method, as given in the project's
performance issue; the ratio column is tinyc / TFLM+CMSIS-NN.  Then the per-layer breakdown of
the slowest model on qemu-m4.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models" / "mlperf_tiny"

from tinyc.bench import BenchResult, bench_project  # noqa: E402
from tinyc.boards import load_board  # noqa: E402
from tinyc.firmware import open_project  # noqa: E402
from tinyc.project import compile_model, write_project  # noqa: E402

NAMES = ["ad01_fc_autoencoder_int8", "ic01_resnet8_cifar10_int8", "kws01_dscnn_int8",
         "vww01_mobilenetv1_025_96_int8", "sww01_str_ww_ref_model", "ic01_resnet_large_int8"]
# TFLM + CMSIS-NN on qemu-m4 (mps2-an386), instructions per inference (the performance issue).
TFLM_CMSIS_M4 = {"ic01_resnet8_cifar10_int8": 29.86e6, "kws01_dscnn_int8": 7.70e6,
                 "vww01_mobilenetv1_025_96_int8": 24.10e6, "ad01_fc_autoencoder_int8": 0.583e6}
BOARDS = ["qemu-m4", "qemu-m7"]


@contextlib.contextmanager
def captured_output(path: Path):
    """Capture what C++ code prints to file descriptors 1 and 2 (TFLM logs to stderr)."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "w") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            libc.fflush(None)
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


def tflm_arena(path: Path, tmp: Path) -> tuple[int, int]:
    """(arena total, non-persistent head) that TFLM allocates for the model, in bytes."""
    from tflite_micro.python.tflite_micro import runtime

    log = tmp / "tflm_allocations.txt"
    with captured_output(log):
        runtime.Interpreter.from_file(str(path)).print_allocations()
    text = log.read_text()
    total = int(re.search(r"Arena allocation total (\d+)", text).group(1))
    head = int(re.search(r"Arena allocation head (\d+)", text).group(1))
    return total, head


def main() -> None:
    if not MODELS.exists():
        sys.exit(f"{MODELS} not found: the MLPerf Tiny models live in ../shared beside the repo")
    results: dict[tuple[str, str], BenchResult] = {}
    arenas: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        jobs = [(name, board) for name in NAMES for board in BOARDS]
        for name, board in tqdm(jobs, desc="MLPerf Tiny int8 on QEMU", leave=False):
            path = MODELS / f"{name}.tflite"
            if name not in arenas:
                arenas[name] = tflm_arena(path, tmp)
            compiled = compile_model(path, load_board(board))
            write_project(compiled, tmp / f"{name}-{board}")
            results[name, board] = bench_project(open_project(tmp / f"{name}-{board}"))
    print(f"{'model':<14} {'board':<8} {'MACs':>11} {'instructions':>13} {'/MAC':>5} "
          f"{'vs TFLM+CMSIS':>13} {'arena':>8} {'TFLM arena':>10} {'TFLM head':>9} "
          f"{'flash':>9} {'model flash':>11} {'stack':>6}")
    for (name, board), r in results.items():
        short = name.split("_")[0]
        ratio = (f"{r.per_inference / TFLM_CMSIS_M4[name]:.2f}x"
                 if board == "qemu-m4" and name in TFLM_CMSIS_M4 else "")
        total, head = arenas[name]
        print(f"{short:<14} {board:<8} {r.macs:>11,} {r.per_inference:>13,} "
              f"{r.per_inference / r.macs:>5.2f} {ratio:>13} {r.arena_bytes:>8,} {total:>10,} "
              f"{head:>9,} {r.sizes.flash_used:>9,} {r.model_flash:>11,} {r.stack_used:>6,}")
    print("instructions: QEMU -icount shift=0 guest instructions (40-instruction resolution), "
          "not cycles; arena in bytes")
    slowest = max((k for k in results if k[1] == "qemu-m4"),
                  key=lambda k: results[k].per_inference)
    print(f"\nper layer, {slowest[0]} on qemu-m4:")
    for layer in results[slowest].layers:
        per_mac = f"{layer.count / layer.macs:6.2f}" if layer.macs else ""
        print(f"  {layer.index:>3} {layer.name[:32]:<32} {layer.op:<12} {layer.macs:>11,} "
              f"{layer.count:>13,} {per_mac}")


if __name__ == "__main__":
    main()
