"""`make bench` (float part): cost of float32 models on the emulated Cortex-M4 and M7.

For each model and board: compile, run on QEMU with -icount (exact instruction counts, not
cycles), and print MACs, instructions per inference and per MAC, the arena, and flash (whole
firmware and the model alone).  Models: the three example networks and the MLPerf Tiny float
.tflite files in ../shared/models/mlperf_tiny/float (skipped when that folder is absent).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import models  # noqa: E402
from tinyc.bench import bench_project  # noqa: E402
from tinyc.boards import load_board  # noqa: E402
from tinyc.firmware import open_project  # noqa: E402
from tinyc.project import compile_model, write_project  # noqa: E402

MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny" / "float"
TFLITE = ["ic01_resnet8_cifar10_fp32.tflite", "vww01_mobilenetv1_025_96_fp32.tflite"]
BOARDS = ["qemu-m4", "qemu-m7"]


def model_files(tmp: Path) -> list[tuple[str, Path, str | None]]:
    files = []
    for name in ("small_cnn", "mobilenetv2_tiny", "eeg3dcnn"):
        model, shape = models.build(name)
        path = tmp / f"{name}.pt"
        torch.jit.save(torch.jit.trace(model, torch.zeros(shape)), str(path))
        files.append((name, path, "x".join(map(str, shape))))
    files += [(f.split("_")[0] + " fp32", MLPERF / f, None) for f in TFLITE
              if (MLPERF / f).exists()]
    return files


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = model_files(tmp)
        jobs = [(board, f) for board in BOARDS for f in files]
        for board_id, (name, path, shape) in tqdm(jobs, desc="float models", leave=False):
            project = tmp / f"{name.replace(' ', '_')}_{board_id}"
            write_project(compile_model(path, load_board(board_id), "model", shape), project)
            rows.append((name, board_id, bench_project(open_project(project))))
    print(f"{'model':<18} {'board':<8} {'MACs':>11} {'instructions':>13} {'instr/MAC':>9} "
          f"{'arena B':>9} {'flash B':>9} {'model flash B':>13} {'stack B':>8}")
    for name, board_id, r in rows:
        print(f"{name:<18} {board_id:<8} {r.macs:>11,} {r.per_inference:>13,} "
              f"{r.per_inference / max(r.macs, 1):>9.2f} {r.arena_bytes:>9,} "
              f"{r.sizes.flash_used:>9,} {r.model_flash:>13,} {r.stack_used:>8,}")
    print("qemu-m7 fuses the float multiply-adds (its FMA is pipelined), qemu-m4 does not (its "
          "VFMA takes 3 cycles): see tc_common.h.")
    print("Counts are QEMU instructions (-icount shift=0, SysTick, 40-instruction resolution), "
          "not cycles.")
    slowest_name, board_id, slowest = max(rows, key=lambda row: row[2].per_inference)
    print(f"\nper layer, {slowest_name} on {board_id}:")
    for layer in slowest.layers:
        per_mac = f"{layer.count / layer.macs:6.2f}" if layer.macs else "      "
        print(f"  {layer.index:>3} {layer.name[:30]:<30} {layer.op:<14} {layer.macs:>11,} "
              f"{layer.count:>13,} {per_mac}")


if __name__ == "__main__":
    main()
