"""Helpers shared by the tests: running the real `tinyc` command, saving PyTorch models, a
CI-sized ONNX model, and building the runtime_c kernels with test harnesses (a ctypes library on
the host; a harness program on the host or on an emulated board)."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "runtime_c"
C_WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion"]


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


C_FIELD_TYPES = {"i": ctypes.c_int32, "f": ctypes.c_float, "p": ctypes.POINTER(ctypes.c_int32),
                 "u8": ctypes.c_uint8}


def c_struct(c_name: str, spec: str) -> type[ctypes.Structure]:
    """ctypes mirror of the C struct c_name.  spec lists its fields in order: `name` is an
    int32_t, `name:f` a float, `name:p` a const int32_t *, `name:u8` a uint8_t; `*N` makes an
    array of N (struct_layout_source checks the mirror against the header)."""
    fields = []
    for token in spec.split():
        decl, _, count = token.partition("*")
        name, _, kind = decl.partition(":")
        ctype = C_FIELD_TYPES[kind or "i"]
        fields.append((name, ctype * int(count) if count else ctype))
    return type(c_name, (ctypes.Structure,), {"_fields_": fields})


def struct_layout_source(headers: list[str], structs: list[type]) -> str:
    """C recording sizeof and every field offset of each ctypes mirror of a kernel struct
    (`layout_<Name>[]`), so a test can check the mirrors against the headers."""
    lines = ["#include <stddef.h>"] + [f'#include "{h}"' for h in headers]
    for cls in structs:
        items = [f"sizeof({cls.__name__})"] + [f"offsetof({cls.__name__}, {f})"
                                               for f, _ in cls._fields_]
        lines.append(f"const size_t layout_{cls.__name__}[] = {{{', '.join(items)}}};")
    return "\n".join(lines) + "\n"


def tiny_model(path: Path, seed: int = 0) -> Path:
    """Conv 3x3 + ReLU + MatMul on a 1x3x4x4 float input (2,048 MACs, 5 outputs): a CI-sized
    ONNX model, seeded."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
               for name, shape in (("w1", (4, 3, 3, 3)), ("b1", (4,)), ("w2", (64, 5)))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "w2"], ["y"], name="fc")]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def kernel_library(build: Path, sources: Sequence[Path], layout_headers: Sequence[str],
                   structs: Sequence[type], kernels: dict[str, tuple[type, int]]) -> ctypes.CDLL:
    """Compiles C sources (runtime_c kernels and any test shims) with the host gcc into one
    shared library in `build`, together with the layout of every ctypes struct mirror
    (struct_layout_source over layout_headers), and loads it. Each kernel name -> (params
    struct, number of pointer arguments after it) is given its ctypes signature. Skips the test
    without a host gcc; fails it, with gcc's message, if the sources do not compile."""
    if shutil.which("gcc") is None:
        pytest.skip("host gcc not found")
    layout = build / "layout.c"
    layout.write_text(struct_layout_source(list(layout_headers), list(structs)))
    out = build / "libkernels.so"
    cmd = ["gcc", "-O2", "-shared", "-fPIC", *C_WARNINGS, f"-I{RUNTIME}", *map(str, sources),
           str(layout), "-o", str(out), "-lm"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"building the kernels failed:\n{' '.join(cmd)}\n{result.stderr}")
    library = ctypes.CDLL(str(out))
    for name, (cls, n_ptrs) in kernels.items():
        fn = getattr(library, name)
        fn.argtypes = [ctypes.POINTER(cls)] + [ctypes.c_void_p] * n_ptrs
        fn.restype = None
    return library


def _compile(cmd: list[str]) -> None:
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr


def run_harness_on_host(harness: Path, sources: Sequence[str], folder: Path) -> bytes:
    """Builds a kernel test harness (a main() that writes out.bin) with runtime_c `sources` for
    the host, built as the firmware is (-O2, -DTC_TEST_HOST), runs it in `folder` and returns
    the bytes it wrote."""
    from tinyc.project import OPT_FLAGS

    exe = folder / "harness"
    cmd = ["gcc", *C_WARNINGS, OPT_FLAGS, "-DTC_TEST_HOST", f"-I{RUNTIME}", str(harness),
           *(str(RUNTIME / s) for s in sources), "-lm", "-o", str(exe)]
    _compile(cmd)
    ran = subprocess.run([str(exe)], cwd=folder, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    return (folder / "out.bin").read_bytes()


def run_harness_on_qemu(board_id: str, harness: Path, sources: Sequence[str],
                        folder: Path) -> bytes:
    """The same harness built with the board's flags and support files, run on the board's
    QEMU machine in `folder` (out.bin reaches the host by semihosting)."""
    from tinyc.boards import load_board
    from tinyc.emulator import run_qemu
    from tinyc.project import OPT_FLAGS

    board = load_board(board_id)
    elf = folder / "harness.elf"
    cmd = ["arm-none-eabi-gcc", *C_WARNINGS, OPT_FLAGS, *board.cflags,
           *(f"-I{d}" for d in board.include_dirs), f"-I{RUNTIME}", *board.ldflags,
           str(harness), *(str(RUNTIME / s) for s in sources), *map(str, board.sources),
           *board.ldlibs, "-o", str(elf)]
    _compile(cmd)
    result = run_qemu(board, elf, folder, timeout=120)
    assert result.returncode == 0, result.stderr
    return (folder / "out.bin").read_bytes()


def cortex_m4_undefined_symbols(source: Path, folder: Path) -> list[str] | None:
    """Compiles one runtime_c source for an FPU-single Cortex-M4 (-O2, warnings as errors; a
    warning fails the test with gcc's message) into `folder` and returns the symbols its object
    needs from elsewhere, or None when arm-none-eabi-nm is not installed."""
    obj = folder / (source.stem + ".o")
    cmd = ["arm-none-eabi-gcc", *C_WARNINGS, "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16",
           "-mfloat-abi=hard", "-O2", "-c", f"-I{RUNTIME}", str(source), "-o", str(obj)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"
    nm = shutil.which("arm-none-eabi-nm")
    if nm is None:
        return None
    return subprocess.run([nm, "--undefined-only", str(obj)], capture_output=True, text=True,
                          check=True).stdout.split()


def random_window(rng, rank: int, budget: int) -> tuple[tuple[int, ...], ...]:
    """(kernel, stride, dilation, pad_begin, pad_end, input sizes) of a random convolution over
    `rank` spatial axes: kernels 1-3, strides and dilations 1-2, each padding anything up to the
    dilated kernel, inputs of 1..budget per axis but never smaller than one window."""
    k = tuple(int(v) for v in rng.integers(1, 4, rank))
    stride = tuple(int(v) for v in rng.integers(1, 3, rank))
    dil = tuple(int(v) for v in rng.integers(1, 3, rank))
    pad = tuple(int(rng.integers(0, (kk - 1) * d + 1)) for kk, d in zip(k, dil, strict=True))
    pad_end = tuple(int(rng.integers(0, (kk - 1) * d + 1)) for kk, d in zip(k, dil, strict=True))
    sizes = tuple(max(int(rng.integers(1, budget + 1)), (kk - 1) * d + 1 - p0 - p1)
                  for kk, d, p0, p1 in zip(k, dil, pad, pad_end, strict=True))
    return k, stride, dil, pad, pad_end, sizes

