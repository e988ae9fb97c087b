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
                     help=".npy of calibration inputs for --quantize (.npz: one array per input)."),
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
    else:  # weight storage in bits: as compiled, and the same layer in int8 and float
        head += f" {'weight bits':>11} {'as int8':>9} {'as float':>9}"
    lines = [head]
    for i, layer in enumerate(report["layers"]):
        shape = "x".join(str(d) for d in layer["output_shape"])
        row = (f"{layer['index']:>3}  {layer['name'][:28]:<28} {layer['op'][:14]:<14} "
               f"{shape[:18]:<18} {_human(layer['macs']):>11}")
        if counts is not None:
            per_mac = f"{counts[i] / layer['macs']:.2f}" if layer["macs"] else ""
            row += f" {_human(counts[i]):>13} {per_mac:>6}"
        elif "weight_bits" in layer:
            row += (f" {_human(layer['weight_bits']):>11}"
                    f" {_human(layer.get('weight_bits_int8', 0)):>9}"
                    f" {_human(layer.get('weight_bits_float', 0)):>9}")
        lines.append(row)
    return lines


def _summary(report: dict[str, Any]) -> str:
    line = (f"layers {len(report['layers'])}, parameters {_human(report['parameters'])}, "
            f"MACs {_human(report['macs'])}, weights {_human(report['weight_bytes'])} B "
            f"(flash), arena {_human(report['arena_bytes'])} B (RAM; lower bound "
            f"{_human(report['arena_lower_bound'])})")
    storage = report.get("weight_storage")
    if storage and "float_mbit" in storage:
        binary = (f", {_human(storage['binary_weights'])} binary weights at 1 bit"
                  if storage.get("binary_weights") else "")
        line += (f"\nweight storage {storage['mbit']:.4f} Mbit{binary} (as int8 "
                 f"{storage['int8_mbit']:.4f} Mbit, as float {storage['float_mbit']:.4f} Mbit)")
    return line


def _peak_line(report: dict[str, Any]) -> str:
    """Where the arena's peak is: the layer with the most live bytes, and what is live there."""
    peak = report["peak"]
    if peak["layer"] < 0:
        return "memory peak: no layers"
    layer = report["layers"][peak["layer"]]
    live = [b for b in report["memory_plan"] if b["first"] <= peak["layer"] <= b["last"]]
    shared = sum(1 for b in live if b["overwrites"] and b["first"] == peak["layer"])
    return (f"memory peak: {_human(peak['live_bytes'])} B live at layer {peak['layer']} "
            f"{layer['name'][:28]} ({layer['op']}), {len(live)} buffers"
            + (f", {shared} written in place" if shared else ""))


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
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None,
              help="Also write a self-contained HTML report (memory plan, per-layer cost, "
                   "flash/RAM).")
def compile(model: Path, board_name: str, outdir: Path, options: CompileOptions, name: str,
            as_json: bool, html_path: Path | None) -> None:
    """Compile MODEL (.onnx, .tflite, .pt, .pt2) into a C project in OUTDIR."""
    from tinyc.project import write_project

    compiled = _compile(model, board_name, name, options)
    write_project(compiled, outdir)
    if html_path is not None:
        from tinyc.report_html import write_html

        write_html(html_path, str(model), [(f"{Path(model).stem}", compiled.report,
                                            compiled.board)])
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
    click.echo(_peak_line(report))
    _quantization_lines(report)
    click.echo(f"flash {report['weight_bytes'] / board.flash.size:.1%} of "
               f"{_human(board.flash.size)} B in weights; RAM "
               f"{(report['arena_bytes'] + board.stack_size) / board.ram.size:.1%} of "
               f"{_human(board.ram.size)} B with a {_human(board.stack_size)} B stack")


@cli.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option("--with", "tool", type=click.Choice(["make", "platformio"]), default="make",
              show_default=True, help="Build with the Makefile, or with PlatformIO (offline "
              "environments, tinyc's local platform).")
@json_option
def build(outdir: Path, tool: str, as_json: bool) -> None:
    """Build the firmware of a compiled project: the test harness (main.c) and the serial
    benchmark firmware (serial.c)."""
    from tinyc.firmware import build_firmwares, open_project

    project = open_project(outdir)
    firmwares = build_firmwares(project, tool)
    board = project.board
    if as_json:
        main = firmwares[0]
        _emit_json({"elf": str(main.elf), **asdict(main.sizes), "flash_size": board.flash.size,
                    "ram_size": board.ram.size, "with": tool,
                    "firmwares": {f.target: {"elf": str(f.elf), **asdict(f.sizes)}
                                  for f in firmwares}})
        return
    for firmware in firmwares:
        info = firmware.sizes
        label = "serial benchmark firmware" if firmware.target == "serial" else "test harness"
        click.echo(f"tinyc: built {firmware.elf} ({label}, {tool})")
        click.echo(f".text {_human(info.text)} B  .data {_human(info.data)} B  "
                   f".bss {_human(info.bss)} B  stack {_human(info.stack)} B")
        click.echo(f"flash {_human(info.flash_used)} B = "
                   f"{info.flash_used / board.flash.size:.1%} of {board.id}'s "
                   f"{_human(board.flash.size)} B; RAM {_human(info.ram_used)} B = "
                   f"{info.ram_used / board.ram.size:.1%} of {_human(board.ram.size)} B")


@cli.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@board_option
@click.option("--port", default=None, help="Serial port of the board: after flashing, check "
              "that the firmware answers there.")
@click.option("--tool", type=click.Choice(["openocd", "st-flash", "pio"]), default=None,
              help="Flashing tool (default: the first found of openocd, st-flash, pio).")
def flash(outdir: Path, board_name: str, port: str | None, tool: str | None) -> None:
    """Build the serial benchmark firmware of OUTDIR and write it to the board's flash."""
    from tinyc.device import flash as flash_device
    from tinyc.firmware import open_project

    project = open_project(outdir, board_name if board_name != DEFAULT_BOARD else None)
    result = flash_device(project, port, tool)
    click.echo(f"tinyc: flashed {result.elf} to {project.board.id} with {result.tool}")
    if result.answer is not None:
        click.echo(f"{port} answers: model '{result.answer.get('model')}' sig "
                   f"{result.answer.get('sig')} on {result.answer.get('board')}, counter in "
                   f"{result.answer.get('unit')}")


def _format_values(values) -> str:
    import numpy as np

    flat = np.asarray(values).reshape(-1)
    shown = " ".join(f"{v:.6g}" for v in flat[:16])
    return shown + (f" ... ({flat.size} values)" if flat.size > 16 else "")


@cli.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help=".npy with one input sample (or a batch; .npz: one array per input); default: "
                   "one seeded sample.")
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
        samples = load_inputs(input_path, [s for s, _ in specs], [d for _, d in specs],
                              [i["name"] for i in project.report["inputs"]])
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
              help=".npy with input sample(s) to use instead of random ones (.npz: one array "
                   "per input).")
@compile_options
@name_option
@click.option("--reference", default=None,
              help=".tflite only: tflm (default for int8: TFLite Micro, bit-exact), litert "
                   "(the desktop interpreter; int8 within 2 steps), or lce (Larq Compute "
                   "Engine files: its interpreter, the default there).")
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
                if c.exact:
                    status += " (computed exactly: bit-identity required)"
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
@click.option("--port", default=None, help="Benchmark on a device over this serial port "
              "(e.g. /dev/ttyACM0) running the project's serial firmware (`tinyc flash`).")
@click.option("--runs", type=click.IntRange(1, 1000000), default=None,
              help="--port: timed inferences per window (default: about 0.5 s of device time).")
@click.option("--warmup", type=click.IntRange(0, 1000), default=2, show_default=True,
              help="--port: untimed inferences before each window.")
@click.option("--windows", type=click.IntRange(1, 100), default=5, show_default=True,
              help="--port: timed windows; the median is reported.")
@click.option("--samples", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="--port: seeded inputs whose outputs are checked against the reference.")
@click.option("--timeout", type=click.FloatRange(0.1, None), default=None,
              help="--port: seconds to wait for any one inference command.")
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None,
              help="Also write the HTML report with the measured instructions per layer.")
@json_option
def bench(target: Path, board_name: str, options: CompileOptions, port: str | None,
          runs: int | None, warmup: int, windows: int, samples: int, timeout: float | None,
          html_path: Path | None, as_json: bool) -> None:
    """Instructions per inference on the emulator, code size, arena, per-layer breakdown; with
    --port, latency, cycles and throughput measured on a device over serial.

    TARGET is a compiled project folder or a model file (compiled on the fly)."""
    from tinyc.bench import bench_project
    from tinyc.firmware import open_project
    from tinyc.project import write_project

    if port is not None:
        from tinyc.device import SerialLink, bench_device, format_device_bench

        if not Path(target).is_dir():
            raise TinycError(f"bench --port needs the compiled project folder whose firmware "
                             f"the device runs, not {target}")
        project = open_project(target, board_name if board_name != DEFAULT_BOARD else None)
        result = bench_device(project, SerialLink(port, project.board.uart.baud), runs,
                              warmup, windows, samples, timeout)
        if as_json:
            _emit_json(asdict(result) | {"verdict": "PASS" if result.passed else "FAIL"})
        else:
            for line in format_device_bench(result, str(target)):
                click.echo(line)
        sys.exit(0 if result.passed else 1)

    with tempfile.TemporaryDirectory(prefix="tinyc-bench-") as tmp:
        if Path(target).is_dir():
            project = open_project(target, board_name if board_name != DEFAULT_BOARD else None)
        else:
            compiled = _compile(target, board_name, "model", options)
            write_project(compiled, Path(tmp) / "project")
            project = open_project(Path(tmp) / "project")
        if not project.board.emulated:
            raise TinycError(f"{project.board.id} is a real board: flash it (`tinyc flash "
                             f"{target} --board {project.board.id}`), then benchmark it with "
                             "--port (e.g. --port /dev/ttyACM0)")
        result = bench_project(project)
    if html_path is not None:
        from tinyc.report_html import write_html

        label = Path(target).stem
        write_html(html_path, str(target), [(label, project.report, project.board)],
                   layer_counts={label: [layer.count for layer in result.layers]})
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
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", type=click.Path(path_type=Path), required=True,
              help=".npy of samples: N x the model's input shape.")
@board_option
@compile_options
@click.option("--compare", multiple=True, metavar="MODEL[@float|@int8]",
              help="Another deployment in the same table (repeatable); @int8/@float overrides "
                   "--quantize, so MODEL@int8 compares the int8 build of the same file.")
@click.option("--on-target", type=click.IntRange(0, 10000), default=0, show_default=True,
              help="Also run this many samples on the emulated board; fail if any output "
                   "differs from the host build.")
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None,
              help="Write a self-contained HTML report.")
@name_option
@json_option
def validate(model: Path, data: Path, board_name: str, options: CompileOptions,
             compare: tuple[str, ...], on_target: int, html_path: Path | None, name: str,
             as_json: bool) -> None:
    """Run the deployed C model over a labelled dataset (--data X.npy --labels y.npy): accuracy,
    per-class accuracy, Gini, calibration, agreement with the Python reference.  Here --labels
    gives the dataset's class labels (one integer per sample)."""
    from dataclasses import replace

    from tinyc import validate as v

    if options.labels is None:
        raise TinycError("validate needs --labels y.npy (one class index per sample)")
    labels, options = options.labels, replace(options, labels=None)
    builds = [(Path(model), options.quantize),
              *[v.parse_compare(c) for c in compare]]
    deployments, dataset = [], None
    for path, quantize in builds:
        compiled = _compile(path, board_name, name, replace(
            options, quantize=quantize, calibration=options.calibration if quantize else None))
        if dataset is None:
            i, o = compiled.report["inputs"][0], compiled.report["outputs"][0]
            dataset = v.load_dataset(data, labels, tuple(i["shape"]), i["dtype"],
                                     tuple(o["shape"]))
        label = v.deployment_label(path, quantize, [d.label for d in deployments],
                                   compiled.report["binary_macs"] > 0)
        deployments.append(v.validate_compiled(compiled, dataset, label, on_target,
                                               progress=not as_json))
    v.compare_to_first(deployments)
    if html_path is not None:
        from tinyc.report_html import write_html

        write_html(html_path, str(model), [(d.label, d.report, d.board) for d in deployments],
                   deployments, {d.label: d.on_target["layer_counts"] for d in deployments
                                 if d.on_target is not None})
    if as_json:
        _emit_json(v.to_json(deployments, dataset))
        return
    for line in v.text_lines(deployments, dataset, str(model)):
        click.echo(line)


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
            "emulated": b.emulated, "default": b.id == DEFAULT_BOARD, "mcu": b.mcu,
            "fast_ram": None if b.fast_ram is None else {"name": b.fast_ram.name,
                                                         "origin": b.fast_ram.origin,
                                                         "size": b.fast_ram.size},
            "counter": b.counter.unit, "uart": b.uart.instance,
            "platformio": None if b.platformio is None else b.platformio.board,
            "qemu": None if b.qemu is None else b.qemu.machine} for b in found]})
        return
    click.echo(f"{'board':<19} {'aliases':<8} {'core':<11} {'FPU':<12} {'flash':>9} "
               f"{'RAM':>9}  description")
    for b in found:
        mark = " (default)" if b.id == DEFAULT_BOARD else ""
        click.echo(f"{b.id:<19} {','.join(b.aliases):<8} {b.core:<11} {b.fpu or 'none':<12} "
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
