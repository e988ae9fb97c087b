"""The `tinyc` command line.

User mistakes (a missing file, an unsupported operator, a model too large for the board) are
TinycErrors: one line on stderr, exit code 2, no traceback.  `verify` exits 1 when the C output
does not match the reference.
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import click

from tinyc import __version__
from tinyc.errors import TinycError

DEFAULT_BOARD = "qemu-m4"
board_option = click.option("--board", "board_name", default=DEFAULT_BOARD, show_default=True,
                            help="Board id or alias (see `tinyc boards`).")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON object instead of the text report.")
shape_option = click.option("--input-shape", default=None,
                            help="Input shape(s) like 1x3x32x32 (several: 1x3x32x32,1x10).")
name_option = click.option("--name", default="model", show_default=True,
                           help="C name prefix of the generated API (NAME_run, ...).")


def _emit_json(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(obj, indent=1, default=str))


def _human(n: int) -> str:
    return f"{n:,}"


def _board(name: str):
    from tinyc.boards import load_board

    return load_board(name)


@dataclass
class CompileOptions:
    """The options every command that compiles a model takes."""

    input_shape: str | None
    quantize: str | None
    calibration: Path | None
    calibration_method: str
    labels: Path | None
    allow_float_fallback: bool


def compile_options(command):
    """Add --input-shape and the quantization options; the command receives `options`."""
    decorators = [
        shape_option,
        click.option("--quantize", type=click.Choice(["int8"]), default=None,
                     help="Post-training quantization of a float model (TFLite int8 scheme)."),
        click.option("--calibration", type=click.Path(path_type=Path), default=None,
                     help=".npy of calibration inputs for --quantize."),
        click.option("--calibration-method", type=click.Choice(["minmax", "percentile"]),
                     default="minmax", show_default=True),
        click.option("--labels", type=click.Path(path_type=Path), default=None,
                     help=".npy of the calibration samples' class labels: report the "
                          "float vs int8 accuracy."),
        click.option("--allow-float-fallback", is_flag=True,
                     help="Let operators without an int8 kernel run in float32 in a "
                          "quantized model (the report lists them)."),
    ]

    @functools.wraps(command)
    def wrapper(**kwargs):
        keys = [f.name for f in fields(CompileOptions)]
        options = CompileOptions(**{k: kwargs.pop(k) for k in keys})
        return command(options=options, **kwargs)

    for decorate in reversed(decorators):
        wrapper = decorate(wrapper)
    return wrapper


def _compile(model: Path, board_name: str, name: str, options: CompileOptions,
             reference: str | None = None):
    from tinyc.project import Quantization, compile_model

    quantize = None
    if options.quantize:
        if options.calibration is None:
            raise TinycError("--quantize int8 needs --calibration calib.npy (inputs to "
                             "measure activation ranges on)")
        quantize = Quantization(options.calibration, options.calibration_method, options.labels)
    elif options.calibration is not None or options.labels is not None:
        raise TinycError("--calibration and --labels go with --quantize int8")
    return compile_model(model, _board(board_name), name, options.input_shape,
                         reference=reference, quantize=quantize,
                         allow_float_fallback=options.allow_float_fallback)


def _layer_table(report: dict[str, Any], counts: list[int] | None = None,
                 unit: str = "") -> list[str]:
    head = f"{'#':>3}  {'layer':<28} {'op':<14} {'output':<18} {'MACs':>11}"
    if counts is not None:
        head += f" {unit:>13} {'/MAC':>6}"
    lines = [head]
    for i, layer in enumerate(report["layers"]):
        shape = "x".join(str(d) for d in layer["output_shape"])
        row = (f"{layer['index']:>3}  {layer['name'][:28]:<28} {layer['op'][:14]:<14} "
               f"{shape[:18]:<18} {_human(layer['macs']):>11}")
        if counts is not None:
            per_mac = f"{counts[i] / layer['macs']:.2f}" if layer["macs"] else ""
            row += f" {_human(counts[i]):>13} {per_mac:>6}"
        lines.append(row)
    return lines


def _summary(report: dict[str, Any]) -> str:
    return (f"layers {len(report['layers'])}, parameters {_human(report['parameters'])}, "
            f"MACs {_human(report['macs'])}, weights {_human(report['weight_bytes'])} B "
            f"(flash), arena {_human(report['arena_bytes'])} B (RAM; lower bound "
            f"{_human(report['arena_lower_bound'])})")


def _quantization_lines(report: dict[str, Any]) -> None:
    if report.get("float_fallback"):
        click.echo(f"float fallback ({len(report['float_fallback'])}): "
                   + ", ".join(report["float_fallback"]))
    q = report.get("quantization")
    if q is None:
        return
    line = (f"int8 ({q['method']} calibration on {q['calibration_samples']} samples): top-1 "
            f"agreement with float {q['top1_agreement']:.1%}, max |int8 - float| "
            f"{q['max_abs_error_vs_float']:.4g}")
    if "accuracy_float" in q:
        drop = (q["accuracy_float"] - q["accuracy_int8"]) * 100
        line += (f"; accuracy float {q['accuracy_float']:.1%}, int8 {q['accuracy_int8']:.1%} "
                 f"(drop {drop:.1f} points)")
    click.echo(line)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinyc")
def cli() -> None:
    """tinyc: compile neural networks to dependency-free C for Cortex-M, and prove it right."""


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@board_option
@click.option("-o", "--output", "outdir", type=click.Path(path_type=Path), required=True,
              help="Folder for the generated C project.")
@compile_options
@name_option
@json_option
def compile(model: Path, board_name: str, outdir: Path, options: CompileOptions, name: str,
            as_json: bool) -> None:
    """Compile MODEL (.onnx, .tflite, .pt, .pt2) into a C project in OUTDIR."""
    from tinyc.project import write_project

    compiled = _compile(model, board_name, name, options)
    write_project(compiled, outdir)
    report = compiled.report
    if as_json:
        _emit_json(report | {"outdir": str(outdir)})
        return
    board = compiled.board
    click.echo(f"tinyc: {model} ({compiled.model.kind}) -> {outdir}/ for {board.id} "
               f"({board.name})")
    for line in _layer_table(report):
        click.echo(line)
    click.echo(_summary(report))
    _quantization_lines(report)
    click.echo(f"flash {report['weight_bytes'] / board.flash.size:.1%} of "
               f"{_human(board.flash.size)} B in weights; RAM "
               f"{(report['arena_bytes'] + board.stack_size) / board.ram.size:.1%} of "
               f"{_human(board.ram.size)} B with a {_human(board.stack_size)} B stack")


@cli.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@json_option
def build(outdir: Path, as_json: bool) -> None:
    """Build the firmware of a compiled project (make, arm-none-eabi-gcc)."""
    from tinyc.firmware import build as build_target
    from tinyc.firmware import open_project, size

    project = open_project(outdir)
    elf = build_target(project)
    info = size(project, elf)
    board = project.board
    if info.flash_used > board.flash.size or info.ram_used > board.ram.size:
        raise TinycError(f"{elf} does not fit {board.id}: flash {_human(info.flash_used)} of "
                         f"{_human(board.flash.size)} B, RAM {_human(info.ram_used)} of "
                         f"{_human(board.ram.size)} B")
    if as_json:
        _emit_json({"elf": str(elf), **asdict(info), "flash_size": board.flash.size,
                    "ram_size": board.ram.size})
        return
    click.echo(f"tinyc: built {elf}")
    click.echo(f".text {_human(info.text)} B  .data {_human(info.data)} B  "
               f".bss {_human(info.bss)} B  stack {_human(info.stack)} B")
    click.echo(f"flash {_human(info.flash_used)} B = {info.flash_used / board.flash.size:.1%} "
               f"of {board.id}'s {_human(board.flash.size)} B; RAM {_human(info.ram_used)} B = "
               f"{info.ram_used / board.ram.size:.1%} of {_human(board.ram.size)} B")


def _format_values(values) -> str:
    import numpy as np

    flat = np.asarray(values).reshape(-1)
    shown = " ".join(f"{v:.6g}" for v in flat[:16])
    return shown + (f" ... ({flat.size} values)" if flat.size > 16 else "")


@cli.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help=".npy with one input sample (or a batch); default: one seeded sample.")
@click.option("--host", is_flag=True, help="Run the native host build instead of the emulator.")
@json_option
def run(outdir: Path, input_path: Path | None, host: bool, as_json: bool) -> None:
    """Run a compiled project on its board's emulator and print the outputs."""
    from tinyc.firmware import open_project
    from tinyc.firmware import run as run_firmware
    from tinyc.project import sample_inputs
    from tinyc.verify import load_inputs

    project = open_project(outdir)
    specs = [(tuple(i["shape"]), i["dtype"]) for i in project.report["inputs"]]
    if input_path is not None:
        samples = load_inputs(input_path, [s for s, _ in specs], [d for _, d in specs])
    else:
        samples = sample_inputs(specs, 1)
    result = run_firmware(project, samples, "host" if host else "board")
    names = [o["name"] for o in project.report["outputs"]]
    if as_json:
        _emit_json({"unit": result.unit, "counts": result.counts,
                    "outputs": [[o.tolist() for o in s] for s in result.outputs]})
        return
    target = "host" if host else project.board.id
    for n, outputs in enumerate(result.outputs):
        click.echo(f"sample {n} on {target}: {_human(result.counts[n])} {result.unit}")
        for name, value in zip(names, outputs, strict=True):
            click.echo(f"  {name} {list(value.shape)}: {_format_values(value)}")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@board_option
@click.option("--samples", default=3, show_default=True, type=click.IntRange(1, 10000),
              help="Seeded random input samples.")
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help=".npy with input sample(s) to use instead of random ones.")
@compile_options
@name_option
@click.option("--reference", default=None,
              help=".tflite only: tflm (default for int8: TFLite Micro, bit-exact) or litert "
                   "(the desktop interpreter; int8 within 2 steps).")
@json_option
def verify(model: Path, board_name: str, samples: int, input_path: Path | None,
           options: CompileOptions, name: str, reference: str | None, as_json: bool) -> None:
    """Check the generated C (host and emulated board) against the Python reference."""
    from tinyc.verify import ATOL, RTOL, default_samples, verify_compiled

    compiled = _compile(model, board_name, name, options, reference)
    inputs = default_samples(compiled, samples, input_path)
    result = verify_compiled(compiled, inputs, on_board=compiled.board.emulated)
    verdict = "PASS" if result.passed else "FAIL"
    if as_json:
        _emit_json({
            "verdict": verdict, "samples": result.samples, "reference": result.reference,
            "tolerance": {"atol": ATOL, "rtol": RTOL, "lsb": compiled.model.lsb_tolerance},
            "targets": [{"target": t.target, "passed": t.passed, "counts": t.counts,
                         "unit": t.unit, "outputs": [asdict(c) for c in t.comparisons]}
                        for t in result.targets],
            "weight_bytes": compiled.report["weight_bytes"],
            "arena_bytes": compiled.report["arena_bytes"],
            "float_fallback": compiled.report["float_fallback"],
            "quantization": compiled.report.get("quantization"),
        })
    else:
        lsb = compiled.model.lsb_tolerance
        click.echo(f"tinyc verify: {model} on {result.samples} sample(s), reference "
                   f"{result.reference}, tolerance: float |c - ref| <= {ATOL:g} + {RTOL:g}*|ref|"
                   f", integers {'exact' if lsb == 0 else f'within {lsb} steps'}")
        for t in result.targets:
            for c in t.comparisons:
                status = "ok" if c.mismatches == 0 else f"{c.mismatches} of {c.count} outside"
                if c.differing:
                    status += f" ({c.differing} of {c.count} not bit-identical)"
                click.echo(f"  {t.target:<14} {c.output[:24]:<24} max abs error "
                           f"{c.max_abs_error:.3g} at {list(c.worst_index)}  {status}")
            if t.target != "host" and t.counts:
                click.echo(f"  {t.target:<14} {_human(t.counts[0])} {t.unit} per inference")
        if not compiled.board.emulated:
            click.echo(f"  ({compiled.board.id} is a real board: checked on the host build only)")
        _quantization_lines(compiled.report)
        click.echo(verdict)
    sys.exit(0 if result.passed else 1)


@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@board_option
@compile_options
@json_option
def bench(target: Path, board_name: str, options: CompileOptions, as_json: bool) -> None:
    """Instructions per inference on the emulator, code size, arena, per-layer breakdown.

    TARGET is a compiled project folder or a model file (compiled on the fly)."""
    from tinyc.bench import bench_project
    from tinyc.firmware import open_project
    from tinyc.project import write_project

    with tempfile.TemporaryDirectory(prefix="tinyc-bench-") as tmp:
        if Path(target).is_dir():
            project = open_project(target, board_name if board_name != DEFAULT_BOARD else None)
        else:
            compiled = _compile(target, board_name, "model", options)
            write_project(compiled, Path(tmp) / "project")
            project = open_project(Path(tmp) / "project")
        if not project.board.emulated:
            raise TinycError(f"{project.board.id} is a real board; on-device benchmarking "
                             "needs --port (serial), which this build does not have yet; "
                             "use an emulated board such as qemu-m4")
        result = bench_project(project)
    if as_json:
        _emit_json(asdict(result))
        return
    click.echo(f"tinyc bench: {target} on {result.board} (counts are {result.unit}, exact; "
               "not cycles)")
    for line in _layer_table(project.report, [layer.count for layer in result.layers],
                             result.unit):
        click.echo(line)
    per_mac = result.per_inference / result.macs if result.macs else 0.0
    click.echo(f"per inference: {_human(result.per_inference)} {result.unit} "
               f"({per_mac:.2f} per MAC, {_human(result.macs)} MACs)")
    click.echo(f"flash: firmware {_human(result.sizes.flash_used)} B, model alone "
               f"{_human(result.model_flash)} B (weights {_human(result.weight_bytes)} B)")
    click.echo(f"RAM: arena {_human(result.arena_bytes)} B, stack used "
               f"{_human(result.stack_used)} B, firmware total {_human(result.sizes.ram_used)} B")


@cli.command()
@json_option
def boards(as_json: bool) -> None:
    """List the boards tinyc knows."""
    from tinyc.boards import list_boards

    found = list_boards()
    if as_json:
        _emit_json({"boards": [{
            "id": b.id, "aliases": list(b.aliases), "name": b.name, "core": b.core,
            "fpu": b.fpu, "clock_hz": b.clock_hz, "flash": b.flash.size, "ram": b.ram.size,
            "emulated": b.emulated, "default": b.id == DEFAULT_BOARD} for b in found]})
        return
    click.echo(f"{'board':<16} {'aliases':<8} {'core':<11} {'FPU':<12} {'flash':>9} "
               f"{'RAM':>9}  description")
    for b in found:
        mark = " (default)" if b.id == DEFAULT_BOARD else ""
        click.echo(f"{b.id:<16} {','.join(b.aliases):<8} {b.core:<11} {b.fpu or 'none':<12} "
                   f"{b.flash.size // 1024:>6} KiB {b.ram.size // 1024:>5} KiB  {b.name}{mark}")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@shape_option
@click.option("--lowered", is_flag=True, help="Show the graph after tinyc's passes.")
def inspect(model: Path, input_shape: str | None, lowered: bool) -> None:
    """Print MODEL's graph as tinyc sees it."""
    from tinyc.frontends import load_model
    from tinyc.ir import clone
    from tinyc.pipeline import lower

    loaded = load_model(model, input_shape)
    graph = lower(clone(loaded.graph)) if lowered else loaded.graph
    click.echo(f"graph {graph.name} ({loaded.kind}), {len(graph.nodes)} nodes")
    for name in graph.inputs:
        t = graph.tensors[name]
        click.echo(f"  input  {name}: {t.dtype} {list(t.shape)}")
    for node in graph.nodes:
        attrs = ", ".join(f"{k}={v}" for k, v in node.attrs.items())
        outs = ", ".join(f"{o} {list(graph.tensors[o].shape)}" for o in node.outputs)
        ins = ", ".join(i if not graph.tensors.get(i) or not graph.tensors[i].is_const
                        else f"{i} (const {list(graph.tensors[i].shape)})"
                        for i in node.inputs if i)
        click.echo(f"  {node.op} '{node.name}': {ins} -> {outs}" + (f"  [{attrs}]" if attrs
                                                                     else ""))
    for name in graph.outputs:
        t = graph.tensors[name]
        click.echo(f"  output {name}: {t.dtype} {list(t.shape)}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except TinycError as exc:
        click.echo(f"tinyc: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("tinyc: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except SystemExit:
        raise
    except OSError as exc:
        click.echo(f"tinyc: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
                   err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
