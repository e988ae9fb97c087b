"""`make bench` (binary part): binary 3x3 convolution against tinyc's int8 convolution of the
same shape, on the emulated Cortex-M4 (qemu-m4), in instructions per MAC.

For each shape (channels x spatial size) two models are compiled and benchmarked per layer:
  binary: BinaryConv2d -> BatchNorm -> SignSTE -> BinaryConv2d (packed input) -> BatchNorm
  int8:   Conv2d -> ReLU -> Conv2d, quantized by tinyc --quantize int8
The second convolution of each is compared (packed binary input vs int8 input).  The
performance issue's target is at most 0.2 instructions per binary MAC and at least 10x fewer
than int8; this script prints the measured ratios (counts are QEMU instructions, not cycles).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tinyc.bench import bench_project
from tinyc.boards import load_board
from tinyc.firmware import open_project
from tinyc.nn import BinaryConv2d, SignSTE
from tinyc.project import Quantization, compile_model, write_project

SHAPES = [(32, 16), (64, 16), (128, 8), (256, 8)]  # (channels, height = width)
TARGET_PER_MAC = 0.2


def _binary(c: int) -> nn.Module:
    return nn.Sequential(BinaryConv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), SignSTE(),
                         BinaryConv2d(c, c, 3, padding=1, input_is_binary=True),
                         nn.BatchNorm2d(c)).eval()


def _int8(c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(c, c, 3, padding=1)).eval()


def _second_conv_cost(model: nn.Module, shape: tuple[int, ...], tmp: Path, name: str,
                      quantize: Quantization | None) -> tuple[int, int]:
    path = tmp / f"{name}.pt"
    torch.save(model, str(path))
    compiled = compile_model(path, load_board("qemu-m4"), input_shape="x".join(map(str, shape)),
                             quantize=quantize)
    write_project(compiled, tmp / name)
    result = bench_project(open_project(tmp / name))
    convs = [layer for layer in result.layers if layer.macs > 0]
    layer = convs[-1]
    return layer.count, layer.macs


def main() -> None:
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for c, hw in tqdm(SHAPES, desc="binary vs int8 conv on qemu-m4", leave=False):
            shape = (1, c, hw, hw)
            calib = tmp / f"calib{c}.npy"
            np.save(calib, np.random.default_rng(0).standard_normal((8, *shape)).astype(
                np.float32))
            b_count, b_macs = _second_conv_cost(_binary(c), shape, tmp, f"bin{c}", None)
            q_count, q_macs = _second_conv_cost(_int8(c), shape, tmp, f"int8_{c}",
                                                Quantization(calib))
            rows.append((c, hw, b_macs, b_count, q_macs, q_count))
    print(f"{'channels':>8} {'HxW':>6} {'MACs':>11} {'binary instr':>13} {'/MAC':>6} "
          f"{'int8 instr':>12} {'/MAC':>6} {'int8/binary':>11} {'target /MAC':>11}")
    for c, hw, b_macs, b_count, q_macs, q_count in rows:
        b, q = b_count / b_macs, q_count / q_macs
        met = "met" if b <= TARGET_PER_MAC and q / b >= 10 else "not met"
        print(f"{c:>8} {hw:>3}x{hw:<2} {b_macs:>11,} {b_count:>13,} {b:>6.3f} {q_count:>12,} "
              f"{q:>6.3f} {q / b:>10.1f}x {met:>11}")
    print("binary MACs count one +/-1 product each (32 per packed word); QEMU instructions.")


if __name__ == "__main__":
    sys.exit(main())
