"""`tinyc compile`: model file -> IR -> passes -> memory plan -> a self-contained C project.

The output folder is written completely in a temporary sibling folder and moved into place
only when everything succeeded, so a failed compile never leaves a half-written project that
looks valid.  An existing folder is replaced only if it is empty or a previous tinyc output.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyc import __version__
from tinyc.boards import Board
from tinyc.codegen import Program, build_program, kernel_memory, render
from tinyc.errors import TinycError
from tinyc.frontends import LoadedModel, load_model
from tinyc.ir import Graph, clone
from tinyc.passes.quantization import check_float_fallback
from tinyc.pipeline import lower
from tinyc.planner import MemoryPlan, plan_memory
from tinyc.resources import runtime_dir

OPT_FLAGS = "-O2"
REPORT = "report.json"
SAMPLE_SEED = 0


@dataclass
class Compiled:
    model: LoadedModel
    graph: Graph  # lowered
    plan: MemoryPlan
    program: Program
    board: Board
    report: dict[str, Any]


def input_specs(graph: Graph) -> list[tuple[tuple[int, ...], str]]:
    return [(graph.tensors[t].shape, graph.tensors[t].dtype) for t in graph.inputs]


def sample_inputs(specs: list[tuple[tuple[int, ...], str]], count: int,
                  seed: int = SAMPLE_SEED) -> list[list[np.ndarray]]:
    """Seeded random inputs, one array per (shape, dtype): standard normal for float, uniform
    over the whole range for integers."""
    rng = np.random.default_rng(seed)

    def one(shape: tuple[int, ...], dtype: str) -> np.ndarray:
        if np.issubdtype(np.dtype(dtype), np.integer):
            info = np.iinfo(dtype)
            return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        return rng.standard_normal(shape).astype(dtype)

    return [[one(shape, dtype) for shape, dtype in specs] for _ in range(count)]


def runtime_files(names: list[str]) -> list[str]:
    """The runtime files `names` and every runtime header they include, transitively."""
    found: list[str] = []
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.append(name)
        text = (runtime_dir() / name).read_text()
        pending += [inc for inc in re.findall(r'#include "([^"]+)"', text)
                    if (runtime_dir() / inc).is_file()]
    return sorted(found)


def _board_sources(board: Board) -> dict[str, Path]:
    """Project-relative path -> source file, for every board file the project carries."""
    files: dict[str, Path] = {}
    for header in sorted(board.common_dir.glob("*.h")):
        files[f"board/{header.name}"] = header
    for src in board.sources:
        files[f"board/{src.name}"] = src
    files[f"board/{board.linker_script}"] = board.linker_script_path
    for script in sorted(board.common_dir.glob("*.ld")):
        files[f"board/{script.name}"] = script
    files["board/host_board.c"] = board.common_dir.parent / "host" / "board.c"
    return files


def _relative_ldflags(board: Board) -> list[str]:
    mapping = {str(board.linker_script_path): f"board/{board.linker_script}",
               f"-L{board.common_dir}": "-Lboard"}
    return [mapping.get(flag, flag) for flag in board.ldflags]


def fit_errors(report: dict[str, Any], board: Board) -> list[str]:
    """Why the model cannot fit `board`, judged before linking (weights and arena only)."""
    problems = []
    flash_need = report["weight_bytes"]
    if flash_need > board.flash.size:
        problems.append(f"weights need {flash_need:,} bytes of flash, {board.id} has "
                        f"{board.flash.size:,}")
    ram_need = report["arena_bytes"] + board.stack_size
    if ram_need > board.ram.size:
        problems.append(f"arena {report['arena_bytes']:,} + stack {board.stack_size:,} = "
                        f"{ram_need:,} bytes of RAM, {board.id} has {board.ram.size:,}")
    return problems


# Operators whose input 1 is a weight tensor (when constant): the unit of the storage comparison.
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "BinaryConv", "BinaryDense")
BINARY_LAYERS = ("BinaryConv", "BinaryDense")
MBIT = 1_000_000  # bits; BNN papers give model sizes in Mbit


def storage_equivalents(node, graph: Graph) -> tuple[int, int]:
    """(float bits, int8 bits) the layer's constants would take as a float32 or an int8
    layer.  A weighted layer (WEIGHTED_OPS) of W weights and C output channels is W float32
    weights plus one float32 per channel (bias, or BatchNorm folded into one) when it has any
    other constant, or W int8 weights plus one int32 bias per channel (TFLite's scheme; the
    requantization multipliers live in the kernel's parameters, not counted).  A binary layer's
    scale, BatchNorm and thresholds are that one per-channel value too.  Other constants count
    32 or 8 bits per value."""
    consts = [graph.tensors[t] for t in node.inputs if t and graph.tensors[t].is_const]
    if node.op in WEIGHTED_OPS and len(node.inputs) > 1 and graph.tensors[node.inputs[1]].is_const:
        weights = graph.tensors[node.inputs[1]].size
        others = [t for t in consts if t.name != node.inputs[1]]
        channels = graph.tensors[node.outputs[0]].shape[-1 if node.op != "Conv" or
                                                         node.attrs.get("channels_last") else 1]
        per_channel = channels if others else 0
        return 32 * (weights + per_channel), 8 * weights + 32 * per_channel
    values = sum(t.size for t in consts)
    return 32 * values, 8 * values


def weight_storage(program: Program, graph: Graph | None) -> tuple[list[dict[str, Any]],
                                                                    dict[str, Any]]:
    """Per layer and in total: the bits of weights the generated C stores (packed binary
    weights at 1 bit each, padding bits of their last words included), beside what the same
    layer takes in int8 and float (storage_equivalents), in bits and Mbit."""
    per_layer = []
    for i, layer in enumerate(program.layers):
        entry: dict[str, Any] = {"weight_bits": 8 * layer.weight_bytes}
        if graph is not None:
            node = graph.nodes[i]
            entry["weight_bits_float"], entry["weight_bits_int8"] = \
                storage_equivalents(node, graph)
            if node.op in BINARY_LAYERS:
                entry["binary_weights"] = graph.tensors[node.inputs[1]].size
        per_layer.append(entry)
    totals: dict[str, Any] = {"bits": sum(e["weight_bits"] for e in per_layer)}
    if graph is not None:
        totals["int8_bits"] = sum(e["weight_bits_int8"] for e in per_layer)
        totals["float_bits"] = sum(e["weight_bits_float"] for e in per_layer)
        totals["binary_weights"] = sum(e.get("binary_weights", 0) for e in per_layer)
    for key in [k for k in totals if k.endswith("bits")]:
        totals[key.replace("bits", "mbit")] = totals[key] / MBIT
    return per_layer, totals


def make_report(plan: MemoryPlan, program: Program, board: Board,
                model: LoadedModel, source: Path, graph: Graph | None = None) -> dict[str, Any]:
    """report.json; with the lowered `graph`, also each layer's int8 and float storage."""
    storage, storage_totals = weight_storage(program, graph)
    layers = []
    for layer, bits in zip(program.layers, storage, strict=True):
        layers.append({
            "index": layer.index, "name": layer.c_name, "node": layer.node_name, "op": layer.op,
            "function": layer.function, "summary": layer.summary, "macs": layer.macs,
            "output_shape": list(layer.output_shape), "live_bytes": plan.live_bytes(layer.index),
            **bits,
        })
    peak_layer, peak_bytes = plan.peak()
    params = sum(int(np.prod(c.shape)) for c in program.constants)
    return {
        "generator": "tinyc",
        "version": __version__,
        "model": str(source),
        "format": model.kind,
        "reference": model.reference_name,
        "name": program.name,
        "board": board.id,
        "layers": layers,
        "parameters": params,
        "macs": sum(layer.macs for layer in program.layers),
        "binary_macs": sum(layer.macs for layer in program.layers if layer.op in BINARY_LAYERS),
        "weight_bytes": program.weight_bytes,
        "weight_storage": storage_totals,
        "arena_bytes": plan.arena_size,
        "arena_lower_bound": plan.lower_bound,
        "peak": {"layer": peak_layer, "live_bytes": peak_bytes,
                 "name": layers[peak_layer]["name"] if layers else None},
        "inputs": program.inputs,
        "outputs": program.outputs,
        "kernels": program.sources,
        "memory_plan": [
            {"tensors": b.tensors, "offset": b.offset, "bytes": b.size, "first": b.first,
             "last": b.last, "overwrites": b.overwrites}
            for b in sorted(plan.buffers, key=lambda b: (b.offset, b.first))
        ],
        "cflags": OPT_FLAGS,
    }


def _write_project(tmp: Path, compiled: Compiled) -> None:
    p, board = compiled.program, compiled.board
    context = {"p": p, "board": board, "version": __version__,
               "totals": {"macs": compiled.report["macs"]}}
    (tmp / "runtime").mkdir()
    (tmp / "board").mkdir()
    (tmp / "model.h").write_text(render("model.h.j2", **context))
    (tmp / "model.c").write_text(render("model.c.j2", **context))
    (tmp / "weights.h").write_text(render("weights.h.j2", **context))
    (tmp / "weights.c").write_text(render("weights.c.j2", **context))
    (tmp / "main.c").write_text(render("main.c.j2", **context))
    model_sources = ["model.c", "weights.c", "main.c"]
    if not board.files:
        sample = sample_inputs(input_specs(compiled.graph), 1)[0]
        data = b"".join(np.ascontiguousarray(x).tobytes() for x in sample)
        (tmp / "sample.c").write_text(render("sample.c.j2", sample=list(data), **context))
        model_sources.append("sample.c")
    for name in runtime_files([*p.headers, *p.sources]):
        shutil.copy(runtime_dir() / name, tmp / "runtime" / name)
    model_sources += [f"runtime/{s}" for s in p.sources]
    # The serial benchmark firmware (MLPerf Tiny protocol): serial.c instead of main.c/sample.c.
    from tinyc.device import serial_harness

    (tmp / "serial.c").write_text(serial_harness(compiled, tmp, context))
    serial_sources = [s for s in model_sources if s not in ("main.c", "sample.c")] + ["serial.c"]
    board_files = _board_sources(board)
    for rel, src in board_files.items():
        shutil.copy(src, tmp / rel)
    board_sources = [rel for rel, src in board_files.items()
                     if src in board.sources]
    build = {"opt": OPT_FLAGS, "model_sources": model_sources, "board_sources": board_sources,
             "serial_sources": serial_sources, "ldflags": _relative_ldflags(board),
             "board_defs": [f for f in board.cflags if f.startswith("-D")]}
    (tmp / "Makefile").write_text(render("Makefile.j2", **context, **build))
    from tinyc.platformio import write_platformio_files

    write_platformio_files(tmp, context, build)
    (tmp / REPORT).write_text(json.dumps(compiled.report, indent=1) + "\n")


def _is_tinyc_output(path: Path) -> bool:
    try:
        return json.loads((path / REPORT).read_text()).get("generator") == "tinyc"
    except (OSError, ValueError, AttributeError):
        return False


def write_project(compiled: Compiled, outdir: Path) -> None:
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise TinycError(f"{outdir}: exists and is not a folder; choose another -o")
    if outdir.is_dir() and any(outdir.iterdir()) and not _is_tinyc_output(outdir):
        raise TinycError(f"{outdir}: exists, is not empty and is not a tinyc output; choose "
                         "another -o or remove it")
    try:
        outdir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    except OSError as exc:
        raise TinycError(f"{outdir}: cannot create the output folder there "
                         f"({exc.strerror or exc}); choose a writable -o") from None
    try:
        _write_project(tmp, compiled)
        if outdir.exists():
            shutil.rmtree(outdir)
        tmp.rename(outdir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


@dataclass
class Quantization:
    """What `--quantize int8` was given (post-training quantization)."""

    calibration: Path
    method: str = "minmax"
    labels: Path | None = None  # labels of the calibration samples, for the accuracy drop


def _top1(outputs: list[np.ndarray]) -> np.ndarray:
    return np.array([int(np.argmax(o.reshape(-1))) for o in outputs])


def _quantize(model: LoadedModel, graph: Graph, options: Quantization, allow_fallback: bool
              ) -> tuple[LoadedModel, Graph, dict[str, Any]]:
    """Post-training quantization: the int8 graph, the simulation as the new reference, and
    the float-vs-int8 comparison for the report."""
    from tinyc.interpret import run_graph
    from tinyc.quant.ptq import calibrate, quantize_graph
    from tinyc.verify import load_inputs

    specs = input_specs(model.graph)
    samples = load_inputs(options.calibration, [s for s, _ in specs], [d for _, d in specs],
                          list(model.graph.inputs))
    quantized = quantize_graph(graph, calibrate(graph, samples, options.method), allow_fallback)
    qgraph = quantized.graph
    floats = [run_graph(graph, s)[0] for s in samples]
    ints = [run_graph(qgraph, s)[0] for s in samples]
    summary: dict[str, Any] = {
        "method": options.method, "calibration_samples": len(samples),
        "float_fallback": quantized.float_fallback,
        "max_abs_error_vs_float": float(max(np.abs(a - b).max() for a, b in zip(
            floats, ints, strict=True))),
        "top1_agreement": float(np.mean(_top1(floats) == _top1(ints))),
    }
    if options.labels is not None:
        try:
            labels = np.load(options.labels, allow_pickle=False).reshape(-1)
        except (OSError, ValueError) as exc:
            raise TinycError(f"{options.labels}: not a readable .npy file ({exc})") from None
        if len(labels) != len(samples):
            raise TinycError(f"{options.labels}: {len(labels)} labels for {len(samples)} "
                             "calibration samples")
        summary["accuracy_float"] = float(np.mean(_top1(floats) == labels))
        summary["accuracy_int8"] = float(np.mean(_top1(ints) == labels))
    kernels: dict = {}  # qgraph no longer changes: its kernels are built once, not per sample
    simulated = LoadedModel(model.graph, model.kind,
                            lambda values: run_graph(qgraph, values, kernels),
                            "tinyc int8 simulation")
    return simulated, qgraph, summary


def compile_model(source: Path, board: Board, name: str = "model",
                  input_shape: str | None = None, check_fit: bool = True,
                  reference: str | None = None, quantize: Quantization | None = None,
                  allow_float_fallback: bool = False) -> Compiled:
    """Everything `tinyc compile` does except writing files."""
    if not name.isidentifier() or not name.isascii():
        raise TinycError(f"--name '{name}' must be a C identifier (letters, digits, _)")
    model = load_model(source, input_shape, name, reference)
    graph = lower(clone(model.graph))
    quant_summary = None
    if quantize is not None:
        model, graph, quant_summary = _quantize(model, graph, quantize, allow_float_fallback)
        fallback = quant_summary["float_fallback"]
    else:
        fallback = check_float_fallback(graph, allow_float_fallback)
    plan = plan_memory(graph, *kernel_memory(graph))
    program = build_program(graph, plan, name)
    report = make_report(plan, program, board, model, source, graph)
    report["float_fallback"] = fallback
    if quant_summary is not None:
        report["quantization"] = quant_summary
    compiled = Compiled(model, graph, plan, program, board, report)
    problems = fit_errors(report, board) if check_fit else []
    if problems:
        raise TinycError(f"{source.name} does not fit {board.id}: " + "; ".join(problems))
    return compiled
