"""`make bench` (binary part): binary 3x3 convolutions against tinyc's int8 convolution of the
same shape, on the emulated Cortex-M4 (qemu-m4), in instructions per MAC.

For each shape (channels x spatial size, plain or depthwise) three models are compiled and
benchmarked per layer:
  binary: BinaryConv2d -> BatchNorm -> SignSTE -> BinaryConv2d (packed input) -> BatchNorm,
          once with the fast kernels (runtime_c/tc_bconv_fast.c: tc_bconv_sparse_* or, for
          depthwise, tc_bconv_dw_*) and once with the portable SWAR-popcount tc_bconv_*
          (tinyc.binary_fast.ENABLED off);
  int8:   Conv2d -> ReLU -> Conv2d, quantized by tinyc --quantize int8.
(For 1x1 shapes the fast binary kernel is tc_bfc_sliced_* or tc_bfc_list_*, as the compiler
chooses, and the portable one tc_bfc_*.)
The second convolution of each is compared (packed binary input vs int8 input; real output:
the BatchNorm is folded into the binary kernel's float transform).  The fast binary layer is
also measured with BatchNorm + sign after it (packed output: thresholds, the binary-to-binary
case).  The performance issue's
targets are at most 0.2 instructions per binary MAC and at least 10x fewer than int8; the
table marks each.  Counts are QEMU instructions (-icount shift=0), not cycles; MACs count one
+/-1 product each (32 per packed word) over the whole window, padded taps included, as for
int8.  The inputs are random (about half of the bits are 1): tc_bconv_sparse_* visits only
the minority bits of each window, so this is its slowest density.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from qemu_profile import profile
from torch import nn
from tqdm import tqdm

from tinyc import binary_fast
from tinyc.bench import bench_project
from tinyc.boards import load_board
from tinyc.firmware import Project, build, open_project, write_inputs
from tinyc.nn import BinaryConv2d, SignSTE
from tinyc.project import Quantization, compile_model, sample_inputs, write_project

TARGET_PER_MAC = 0.2
INNER_LOOP = "tc_bconv_hs_sum_t2"  # the carry-save slice sums of tc_bconv_sparse_* on Thumb-2
TARGET_RATIO = 10.0


@dataclass(frozen=True)
class Shape:
    channels: int
    size: int  # height = width
    depthwise: bool = False
    kernel: int = 3  # 1: pointwise (tc_bfc_sliced_* or tc_bfc_list_* / tc_bfc_*)

    @property
    def groups(self) -> int:
        return self.channels if self.depthwise else 1

    def label(self) -> str:
        kind = " dw" if self.depthwise else " 1x1" if self.kernel == 1 else ""
        return f"{self.channels}{kind}"


SHAPES = [Shape(32, 16), Shape(64, 16), Shape(128, 8), Shape(256, 8), Shape(64, 16, True),
          Shape(256, 8, True), Shape(32, 16, kernel=1), Shape(64, 16, kernel=1),
          Shape(128, 8, kernel=1)]


@dataclass(frozen=True)
class Cost:
    instructions: int
    macs: int
    function: str
    inner: int | None = None  # instructions of the inner loop alone (INNER_LOOP), if separate

    @property
    def per_mac(self) -> float:
        return self.instructions / self.macs


def _binary(s: Shape, packed_output: bool = False) -> nn.Module:
    c, k = s.channels, s.kernel
    layers = [BinaryConv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), SignSTE(),
              BinaryConv2d(c, c, k, padding=k // 2, groups=s.groups, input_is_binary=True),
              nn.BatchNorm2d(c)]
    # sign then a max pool (binary: the AND of packed words, no MACs) keeps the output packed
    tail = [SignSTE(), nn.MaxPool2d(2)] if packed_output else []
    return nn.Sequential(*layers, *tail).eval()


def _int8(s: Shape) -> nn.Module:
    c, k = s.channels, s.kernel
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(c, c, k, padding=k // 2, groups=s.groups)).eval()


def _inner_loop(project: Project, function: str) -> int | None:
    """Instructions of the fast binary convolution's slice sums (INNER_LOOP) in the last call of
    `function`, by qemu_profile; None when the kernel has no separate inner loop."""
    if not function.startswith("tc_bconv_sparse_"):
        return None
    with tempfile.TemporaryDirectory() as work:
        specs = [(tuple(i["shape"]), i["dtype"]) for i in project.report["inputs"]]
        write_inputs(project, sample_inputs(specs, 1), Path(work) / "input.bin")
        calls = profile(project.board, build(project, "board"), Path(work), {function})
    return calls[-1].counts[INNER_LOOP]


def _second_conv_cost(model: nn.Module, shape: tuple[int, ...], tmp: Path, name: str,
                      quantize: Quantization | None) -> Cost:
    path = tmp / f"{name}.pt"
    torch.save(model, str(path))
    compiled = compile_model(path, load_board("qemu-m4"), input_shape="x".join(map(str, shape)),
                             quantize=quantize)
    write_project(compiled, tmp / name)
    project = open_project(tmp / name)
    result = bench_project(project)
    layer = [layer for layer in result.layers if layer.macs > 0][-1]
    function = compiled.report["layers"][layer.index]["function"]
    return Cost(layer.count, layer.macs, function, _inner_loop(project, function))


def _measure(s: Shape, tmp: Path) -> tuple[Cost, Cost, Cost, Cost]:
    """(fast binary, portable binary, fast binary with packed output, int8) costs of the
    shape's second convolution."""
    torch.manual_seed(0)
    shape = (1, s.channels, s.size, s.size)
    calib = tmp / f"calib{s.label()}.npy"
    np.save(calib, np.random.default_rng(0).standard_normal((8, *shape)).astype(np.float32))
    model = _binary(s)
    name = f"bin{s.channels}{'dw' if s.depthwise else ''}k{s.kernel}"
    fast = _second_conv_cost(model, shape, tmp, name, None)
    binary_fast.ENABLED = False
    try:
        portable = _second_conv_cost(model, shape, tmp, name + "_portable", None)
    finally:
        binary_fast.ENABLED = True
    packed = _second_conv_cost(_binary(s, packed_output=True), shape, tmp, name + "_b1", None)
    int8 = _second_conv_cost(_int8(s), shape, tmp, f"int8_{name}", Quantization(calib))
    return fast, portable, packed, int8


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        for s in tqdm(SHAPES, desc="binary vs int8 conv on qemu-m4", leave=False):
            rows.append((s, *_measure(s, Path(tmp_name))))
    print(f"{'channels':>8} {'HxW':>6} {'binary MACs':>12} {'portable /MAC':>13} "
          f"{'fast /MAC':>9} {'inner /MAC':>10} {'speed-up':>8} {'int8 /MAC':>9} {'int8/fast':>9} "
          f"{'<= 0.2/MAC':>10} {'>= 10x':>7} {'b1 out /MAC':>11}  fast kernels")
    for s, fast, portable, packed, int8 in rows:
        ratio = int8.per_mac / fast.per_mac
        inner = "-" if fast.inner is None else f"{fast.inner / fast.macs:.3f}"
        print(f"{s.label():>8} {s.size:>3}x{s.size:<2} {fast.macs:>12,} {portable.per_mac:>13.3f} "
              f"{fast.per_mac:>9.3f} {inner:>10} {portable.per_mac / fast.per_mac:>7.1f}x "
              f"{int8.per_mac:>9.3f} {ratio:>8.1f}x "
              f"{'met' if fast.per_mac <= TARGET_PER_MAC else 'not met':>10} "
              f"{'met' if ratio >= TARGET_RATIO else 'not met':>7} {packed.per_mac:>11.3f}  "
              f"{fast.function}, {packed.function}")
    print("Instructions per MAC on qemu-m4 (QEMU -icount, exact); binary MACs count one +/-1 "
          "product each (32 per packed word); dw = depthwise; 1x1: pointwise (binary dense per "
          "pixel); inner: the slice sums alone (tc_bconv_sparse_*'s carry-save loop, "
          f"{INNER_LOOP}, counted by bench/qemu_profile.py).  The targets are judged on the "
          "real (float) output; 'b1 out' is the same layer followed by BatchNorm + sign, "
          "writing packed bits (binary to binary).")


if __name__ == "__main__":
    sys.exit(main())
