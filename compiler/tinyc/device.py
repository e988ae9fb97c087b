"""Real boards: the serial benchmark firmware, flashing it, and benchmarking over serial.

The firmware side is serial.c (templates/serial.c.j2), generated next to main.c by `tinyc
compile`; it speaks the MLPerf Tiny / EEMBC runner protocol on the board's UART, plus three
tinyc commands (tinyc-info, tinyc-output, tinyc-count). The host side here:

- `DeviceSession` sends commands over a serial port (pyserial; a QEMU pseudo-terminal works the
  same) and reads answers up to `m-ready`, with a deadline on every read: a device that stops
  answering or disappears gives a TinycError naming the port and the command, never a hang.
- `bench_device` checks that the firmware matches the project (model signature), loads seeded
  inputs, compares the outputs (exact bytes, through tinyc-output) with the Python reference,
  then times windows of inferences: latency from the board counter (median over windows),
  throughput from the standard m-lap-us timestamps, as the MLPerf runner computes it.
- `flash` builds the serial firmware and uploads it with OpenOCD, st-flash or PlatformIO.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyc.errors import TinycError

BAUD = 115200
CHUNK_BYTES = 128  # input bytes per `db` command (256 hex digits; the firmware takes 318)
SYNC_TIMEOUT = 5.0  # seconds for the device to answer at all
COMMAND_TIMEOUT = 5.0  # seconds for a command other than infer
FIRST_INFER_TIMEOUT = 120.0  # seconds for the first single inference (its time is unknown)
_PROFILES = re.compile(r"^(ic|kws|vww|ad|sww)\d\d", re.IGNORECASE)


# --- the firmware side: serial.c ----------------------------------------------------------------


def model_signature(project_dir: Path) -> str:
    """8 hex digits identifying the compiled model: a hash of model.h, model.c and weights.c.
    serial.c carries it (tinyc-info), so the host can tell whether a device runs this project."""
    digest = hashlib.sha256()
    for name in ("model.h", "model.c", "weights.c"):
        digest.update((Path(project_dir) / name).read_bytes())
    return digest.hexdigest()[:8]


def mlperf_profile(model_path: str, name: str) -> str:
    """The MLPerf Tiny model id the runner expects from `profile` (ic01, kws01, vww01, ad01)
    when the model file is named after one, else the model's C name."""
    match = _PROFILES.match(Path(model_path).name)
    return match.group(0).lower() if match else name


def _c_float(value: float) -> str:
    text = repr(float(np.float32(value)))
    return (text if ("." in text or "e" in text) else text + ".0") + "f"


def serial_harness(compiled: Any, project_dir: Path, context: dict[str, Any]) -> str:
    """serial.c for a compiled model; model.h, model.c and weights.c must be written already."""
    from tinyc.codegen import render

    program, board, graph = compiled.program, compiled.board, compiled.graph
    outputs = []
    for io in program.outputs:
        quant = getattr(graph.tensors[io["name"]], "quant", None)
        if io["dtype"] == "float32":
            value, note = "values[i]", ""
        elif quant is not None and quant.scale.size == 1:
            scale, zero = float(quant.scale[0]), int(quant.zero_point[0])
            value = f"((float)values[i] - {_c_float(zero)}) * {_c_float(scale)}"
            note = f", dequantized (scale {scale:.6g}, zero point {zero})"
        else:
            value, note = "(float)values[i]", ""
        outputs.append(io | {"value": value, "note": note})
    fast = board.fast_ram is not None and program.arena_size <= board.fast_ram.size
    serial = {
        "input_bytes": sum(io["bytes"] for io in program.inputs),
        "output_bytes": sum(io["bytes"] for io in program.outputs),
        "outputs": outputs,
        "signature": model_signature(project_dir),
        "profile": mlperf_profile(compiled.report["model"], program.name),
        "fast_arena": fast,
        "counter_hz": "the core clock" if board.counter.unit == "cycles" else "10^9",
    }
    return render("serial.c.j2", serial=serial, **context)


# --- talking to a device ------------------------------------------------------------------------


class DeviceError(TinycError):
    """The device is missing, does not answer, or answered something unexpected."""


class DeviceLost(DeviceError):
    """The connection broke: the board was unplugged or reset, or the emulator ended."""


class _Link:
    """A byte stream to a device: write(), read_some() with a time-out, close()."""

    label: str

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read_some(self, timeout: float) -> bytes:
        """Whatever arrived within `timeout` seconds (b"" if nothing); raises DeviceError when
        the device is gone."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def available_ports() -> list[str]:
    """Serial ports the system knows (for messages)."""
    try:
        from serial.tools import list_ports
    except ImportError:
        return []
    return sorted(port.device for port in list_ports.comports())


class SerialLink(_Link):
    """A serial port through pyserial (a real board's /dev/ttyACM0, or QEMU's /dev/pts/N)."""

    def __init__(self, port: str, baud: int = BAUD) -> None:
        try:
            import serial
        except ImportError:
            raise TinycError("pyserial is not installed; pip install pyserial==3.5") from None
        self.label = port
        self._serial_exception = serial.SerialException
        if "://" not in port and not os.path.exists(port):
            found = ", ".join(available_ports()) or "none"
            raise DeviceError(f"serial port {port} does not exist; is the board plugged in? "
                              f"(serial ports found: {found})")
        try:
            self._port = serial.serial_for_url(port, baudrate=baud, timeout=0, write_timeout=10)
        except (serial.SerialException, OSError) as error:
            reason = str(error)
            if "Permission denied" in reason or "Errno 13" in reason:
                raise DeviceError(f"cannot open serial port {port}: permission denied (add your "
                                  "user to the dialout group, then log in again)") from None
            raise DeviceError(f"cannot open serial port {port}: {reason}") from None

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (self._serial_exception, OSError):
            raise DeviceLost(f"lost the connection to {self.label}") from None

    def read_some(self, timeout: float) -> bytes:
        try:
            self._port.timeout = max(timeout, 0.0)
            data = self._port.read(1)
            if data:
                self._port.timeout = 0
                data += self._port.read(4096)
            return data
        except (self._serial_exception, OSError):
            raise DeviceLost(f"lost the connection to {self.label}") from None

    def close(self) -> None:
        with contextlib.suppress(self._serial_exception, OSError):
            self._port.close()


class ProcessLink(_Link):
    """The serial firmware's host build (`make serial-host`) as a child process on pipes."""

    def __init__(self, executable: Path) -> None:
        import selectors

        self.label = f"{executable} (host build)"
        self._process = subprocess.Popen([str(executable)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._selector = selectors.DefaultSelector()
        assert self._process.stdout is not None
        self._selector.register(self._process.stdout, selectors.EVENT_READ)

    def write(self, data: bytes) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(data)
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise DeviceLost(f"lost the connection to {self.label}") from None

    def read_some(self, timeout: float) -> bytes:
        assert self._process.stdout is not None
        if not self._selector.select(max(timeout, 0.0)):
            return b""
        data = os.read(self._process.stdout.fileno(), 4096)
        if not data:
            raise DeviceLost(f"lost the connection to {self.label}")
        return data

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._selector.close()


@dataclass
class Answer:
    """The lines a command produced before `m-ready`."""

    command: str
    lines: list[str]

    def find(self, prefix: str) -> str | None:
        """The first line starting with `prefix`, without the prefix."""
        return next((line[len(prefix):] for line in self.lines if line.startswith(prefix)),
                    None)

    def bracketed(self, prefix: str) -> str:
        """The text between [ and ] of the line `prefix[...]`; DeviceError if absent."""
        text = self.find(prefix + "[")
        if text is None or not text.endswith("]"):
            raise DeviceError(f"'{self.command}' did not answer {prefix}[...]: got "
                              f"{self.lines[-3:] or 'nothing'}")
        return text[:-1]


class DeviceSession:
    """The MLPerf Tiny protocol over a link. Every read has a deadline."""

    def __init__(self, link: _Link) -> None:
        self.link = link
        self._pending = b""

    def __enter__(self) -> DeviceSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.link.close()

    def _read_line(self, deadline: float, command: str) -> str:
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceError(f"the device on {self.link.label} stopped answering: no "
                                  f"m-ready after '{command}'")
            try:
                self._pending += self.link.read_some(min(remaining, 0.5))
            except DeviceLost:
                raise DeviceLost(f"lost the connection to {self.link.label} during "
                                 f"'{command}': the device was unplugged or reset, or the "
                                 "emulator ended") from None
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode("ascii", errors="replace").strip("\r")

    def handshake(self, timeout: float = SYNC_TIMEOUT) -> dict[str, str]:
        """Aligns with the device and returns its tinyc-info (model, sig, board, in, out,
        arena, unit, hz). Sends '%' (ending any half-sent command) then tinyc-info, and skips
        whatever came before the answer (boot messages, the '%''s m-ready), so that the next
        answer read belongs to the next command, however late the device saw our bytes."""
        self._pending = b""
        self.link.write(b"%tinyc-info%")
        deadline = time.monotonic() + timeout
        try:
            while True:
                line = self._read_line(deadline, "tinyc-info")
                if line.startswith("m-tinyc-info-[") and line.endswith("]"):
                    break
                if line.startswith("e-[") and "tinyc-info" in line:
                    raise DeviceError(f"the device on {self.link.label} speaks the benchmark "
                                      "protocol but is not running tinyc firmware ("
                                      f"{line}); flash it with `tinyc flash`")
            while self._read_line(deadline, "tinyc-info") != "m-ready":
                pass
        except DeviceError as error:
            if isinstance(error, DeviceLost) or "stopped answering" not in str(error):
                raise
            raise DeviceError(f"no answer from {self.link.label} within {timeout:g} s: is the "
                              "tinyc serial firmware running there? (`tinyc flash OUTDIR "
                              "--board B` puts it on the board)") from None
        text = line[len("m-tinyc-info-["):-1]
        return dict(item.split("=", 1) for item in text.split(",") if "=" in item)

    def command(self, text: str, timeout: float = COMMAND_TIMEOUT) -> Answer:
        """Sends `text%` and returns the lines up to m-ready; e-[...] answers raise."""
        label = text if len(text) <= 24 else text[:21] + "..."
        try:
            self.link.write(text.encode("ascii") + b"%")
        except DeviceLost:
            raise DeviceLost(f"lost the connection to {self.link.label} during '{label}': the "
                             "device was unplugged or reset, or the emulator ended") from None
        deadline = time.monotonic() + timeout
        lines = []
        while (line := self._read_line(deadline, label)) != "m-ready":
            lines.append(line)
        errors = [line for line in lines if line.startswith("e-[")]
        if errors:
            raise DeviceError(f"the device refused '{label}': {errors[0]}")
        return Answer(text, lines)

    def info(self) -> dict[str, str]:
        """tinyc-info as a dict (model, sig, board, in, out, arena, unit, hz)."""
        text = self.command("tinyc-info").bracketed("m-tinyc-info-")
        return dict(item.split("=", 1) for item in text.split(",") if "=" in item)

    def load(self, data: bytes) -> None:
        self.command(f"db load {len(data)}")
        answer = None
        for start in range(0, len(data), CHUNK_BYTES):
            answer = self.command("db " + data[start:start + CHUNK_BYTES].hex())
        if answer is None or "m-load-done" not in answer.lines:
            raise DeviceError(f"{self.link.label} did not confirm the input (no m-load-done)")

    def infer(self, runs: int, warmup: int, timeout: float) -> Inference:
        answer = self.command(f"infer {runs} {warmup}", timeout)
        laps = [int(line[len("m-lap-us-"):]) for line in answer.lines
                if line.startswith("m-lap-us-")]
        if len(laps) != 2 or "m-infer-done" not in answer.lines:
            raise DeviceError(f"'infer {runs} {warmup}' on {self.link.label} did not give two "
                              f"m-lap-us timestamps and m-infer-done: {answer.lines[-4:]}")
        text = answer.bracketed("m-results-")
        results = [float(v) for v in text.split(",")] if text else []
        count = self.command("tinyc-count").bracketed("m-tinyc-count-")
        values = dict(item.split("=", 1) for item in count.split(","))
        return Inference(runs, laps[0], laps[1], results, int(values["count"]))

    def output_bytes(self) -> bytes:
        return bytes.fromhex(self.command("tinyc-output").bracketed("m-tinyc-output-"))


@dataclass
class Inference:
    """One `infer N W`: its timestamps, m-results values and counter total."""

    runs: int
    lap_start_us: int
    lap_end_us: int
    results: list[float]
    count: int


# --- tinyc bench --port -------------------------------------------------------------------------


@dataclass
class DeviceBenchResult:
    board: str
    port: str
    model: str
    signature: str
    unit: str  # cycles | instructions | ns
    counter_hz: int
    emulated: bool
    samples: int
    reference: str
    comparisons: list[Any]  # verify.Comparison per output
    results_agree: bool  # m-results (3 decimals) match the exact output bytes
    runs: int
    warmup: int
    windows: list[dict[str, Any]] = field(default_factory=list)
    per_inference: float = 0.0  # median over windows, in `unit`
    latency_ms: float | None = None  # real boards only
    throughput: float = 0.0  # inferences per second from m-lap-us (median)

    @property
    def passed(self) -> bool:
        return self.results_agree and all(c.mismatches == 0 for c in self.comparisons)


def _reference(report: dict[str, Any]):
    from tinyc.frontends import load_model

    path = Path(report["model"])
    if not path.is_file():
        raise TinycError(f"cannot check the device's outputs: the model {path} is not there "
                         "any more (compile from an absolute path, or run tinyc bench from the "
                         "folder you compiled in)")
    shapes = ",".join("x".join(str(d) for d in io["shape"]) for io in report["inputs"])
    return load_model(path, shapes or None, report.get("name", "model"))


def _results_agree(outputs: list[np.ndarray], results: list[float]) -> bool:
    """m-results prints every output value with 3 decimals (int8 dequantized): they must agree
    with the exact bytes to within the rounding, for float outputs."""
    flat = np.concatenate([np.asarray(o, np.float64).reshape(-1) for o in outputs]) \
        if outputs else np.zeros(0)
    if flat.size != len(results):
        return False
    if all(np.asarray(o).dtype == np.float32 for o in outputs):
        ok = np.abs(flat - np.asarray(results)) <= 0.0005 + 1e-6 * np.abs(flat)
        return bool(np.all(ok | ~np.isfinite(flat) | (np.abs(flat) >= 1e15)))
    return True


def bench_device(project: Any, link: _Link, runs: int | None = None, warmup: int = 2,
                 windows: int = 5, samples: int = 1, timeout: float | None = None
                 ) -> DeviceBenchResult:
    """Verifies and times the serial firmware of `project` on the device behind `link`."""
    from tinyc.firmware import _decode
    from tinyc.project import sample_inputs
    from tinyc.verify import compare

    report, board = project.report, project.board
    expected_sig = model_signature(project.outdir)
    with DeviceSession(link) as session:
        info = session.handshake()
        if info.get("sig") != expected_sig or info.get("board") != board.id:
            raise DeviceError(
                f"the firmware on {link.label} is model '{info.get('model')}' (sig "
                f"{info.get('sig')}) for {info.get('board')}, not this project's (sig "
                f"{expected_sig}) for {board.id}; flash it first: tinyc flash "
                f"{project.outdir} --board {board.id}")
        loaded = _reference(report)
        specs = [(tuple(io["shape"]), io["dtype"]) for io in report["inputs"]]
        inputs = sample_inputs(specs, samples)
        outputs, references, agree, single_s = [], [], True, 0.0
        for sample in inputs:
            data = b"".join(np.ascontiguousarray(x, dtype=d).reshape(s).tobytes()
                            for x, (s, d) in zip(sample, specs, strict=True))
            session.load(data)
            started = time.monotonic()
            first = session.infer(1, 0, timeout or FIRST_INFER_TIMEOUT)
            single_s = max(single_s, time.monotonic() - started)
            decoded = _decode(project, session.output_bytes())[0]
            outputs.append(decoded)
            agree = agree and _results_agree(decoded, first.results)
            references.append([np.asarray(v) for v in loaded.reference(sample)])
        names = [o["name"] for o in report["outputs"]]
        comparisons = compare(names, outputs, references)

        hz = int(info["hz"])
        per_run_device_s = first.count / hz if first.count else 1e-6
        if runs is None:  # about half a second of device time per window
            runs = max(1, min(1000, round(0.5 / max(per_run_device_s, 1e-9))))
        limit = timeout or (10.0 + 5.0 * single_s * (runs + warmup))
        result = DeviceBenchResult(
            board=board.id, port=link.label, model=info.get("model", "?"),
            signature=expected_sig, unit=info["unit"], counter_hz=hz,
            emulated=board.emulated, samples=samples, reference=loaded.reference_name,
            comparisons=comparisons, results_agree=agree, runs=runs, warmup=warmup)
        counts, throughputs = [], []
        for _ in range(windows):
            timed = session.infer(runs, warmup, limit)
            per = timed.count / runs
            elapsed_us = timed.lap_end_us - timed.lap_start_us
            rate = runs / (elapsed_us / 1e6) if elapsed_us > 0 else float("inf")
            result.windows.append({"runs": runs, "count": timed.count, "per_inference": per,
                                   "lap_us": [timed.lap_start_us, timed.lap_end_us],
                                   "throughput": rate})
            counts.append(per)
            throughputs.append(rate)
        result.per_inference = float(statistics.median(counts))
        result.throughput = float(statistics.median(throughputs))
        if info["unit"] == "cycles":
            result.latency_ms = result.per_inference / hz * 1e3
        return result


def format_device_bench(result: DeviceBenchResult, target: str) -> list[str]:
    """The text report of `tinyc bench --port`."""
    lines = [f"tinyc bench: {target} on {result.board} via {result.port} (firmware "
             f"'{result.model}', sig {result.signature})"]
    for c in result.comparisons:
        status = "ok" if c.mismatches == 0 else f"{c.mismatches} of {c.count} outside"
        lines.append(f"  output {c.output[:24]:<24} max abs error {c.max_abs_error:.3g} vs "
                     f"{result.reference} over {result.samples} sample(s)  {status}")
    lines.append("  m-results agree with the exact output bytes" if result.results_agree
                 else "  m-results DISAGREE with the exact output bytes")
    medians = f"median of {len(result.windows)} windows of {result.runs} runs"
    if result.unit == "cycles":
        lines.append(f"  latency: {result.latency_ms:.3f} ms = {result.per_inference:,.0f} "
                     f"cycles per inference at {result.counter_hz / 1e6:g} MHz ({medians})")
        lines.append(f"  throughput: {result.throughput:,.1f} inferences/s (m-lap-us)")
    else:
        lines.append(f"  {result.per_inference:,.0f} {result.unit} per inference ({medians}; "
                     "emulated: instructions, not cycles or time)")
        lines.append(f"  throughput: {result.throughput:,.1f} inferences/s of virtual time "
                     "(m-lap-us under QEMU -icount; not real time)")
    lines.append("PASS" if result.passed else "FAIL")
    return lines


# --- tinyc flash --------------------------------------------------------------------------------

FLASH_TOOLS = ("openocd", "st-flash", "pio")
_NO_PROBE = re.compile(r"open failed|LIBUSB_ERROR|No ST-?LINK|Couldn't find any ST-Link|"
                       r"unable to (open|find) .*(device|adapter)|no device found|"
                       r"Error connecting DP", re.IGNORECASE)


@dataclass
class FlashResult:
    tool: str
    elf: Path
    command: list[str]
    output: str
    answer: dict[str, str] | None = None  # tinyc-info from --port after flashing


def _run_tool(command: list[str], cwd: Path, timeout: float = 300) -> tuple[int, str]:
    try:
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TinycError(f"{command[0]} did not finish within {timeout:.0f} s") from None
    return proc.returncode, (proc.stdout + proc.stderr)


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1][:200]


def flash(project: Any, port: str | None = None, tool: str | None = None) -> FlashResult:
    """Builds the serial firmware of `project` and uploads it to the board's flash."""
    from tinyc.firmware import build

    board = project.board
    if board.emulated:
        raise TinycError(f"{board.id} is emulated: there is nothing to flash; run the firmware "
                         "with `tinyc run`, or start it on QEMU and use `tinyc bench --port` "
                         "(see README, 'Real boards')")
    candidates = [tool] if tool else list(FLASH_TOOLS)
    found = [name for name in candidates if shutil.which(name)]
    if not found:
        if tool:
            raise TinycError(f"{tool} not found on PATH")
        raise TinycError(
            f"cannot flash {board.id}: no flashing tool found; install one of OpenOCD "
            "(apt-get install openocd), st-flash (apt-get install stlink-tools) or PlatformIO "
            "with internet (pip install platformio; `pio run -t upload` fetches the ststm32 "
            "platform)")
    name = found[0]
    elf = build(project, "serial").resolve()
    if name == "openocd":
        if board.openocd_target is None:
            raise TinycError(f"boards/{board.id}.yaml has no openocd_target; flash with "
                             "st-flash or PlatformIO instead (--tool)")
        command = ["openocd", "-f", "interface/stlink.cfg", "-f",
                   f"target/{board.openocd_target}.cfg", "-c",
                   f"program {elf} verify reset exit"]
    elif name == "st-flash":
        binary = elf.with_suffix(".bin")
        objcopy = shutil.which("arm-none-eabi-objcopy") or "arm-none-eabi-objcopy"
        subprocess.run([objcopy, "-O", "binary", str(elf), str(binary)], check=True)
        command = ["st-flash", "--reset", "write", str(binary), f"0x{board.flash.origin:08x}"]
    else:
        if board.platformio is None:
            raise TinycError(f"{board.id} has no PlatformIO board id; use OpenOCD or st-flash")
        command = ["pio", "run", "-d", str(project.outdir.resolve()), "-e", "serial", "-t",
                   "upload"] + (["--upload-port", port] if port else [])
    code, output = _run_tool(command, project.outdir)
    if code != 0:
        if _NO_PROBE.search(output):
            raise TinycError(f"{name} found no ST-LINK probe ({_last_error(output)}); connect "
                             f"the {board.id} by its ST-LINK USB port")
        if name == "pio" and "HTTPClientError" in output:
            raise TinycError("PlatformIO could not download the ststm32 platform (no "
                             "internet?); install OpenOCD or st-flash to flash offline")
        raise TinycError(f"{name} failed (exit code {code}): {_last_error(output)}")
    result = FlashResult(name, elf, command, output)
    if port:
        with DeviceSession(SerialLink(port, board.uart.baud)) as session:
            result.answer = session.handshake()
    return result
