"""The serial benchmark firmware (serial.c, MLPerf Tiny / EEMBC protocol) and `tinyc bench
--port` / `tinyc flash`.

The protocol is checked answer by answer on the firmware's native build (stdin/stdout), then end
to end exactly as on a real board: the firmware runs on QEMU (qemu-m4: CMSDK UART0; qemu-f405:
the STM32 USART2 of the real board support) with its UART on a pseudo-terminal, and the `tinyc`
command drives it through that port. Failures (no such port, a silent device, the emulator
killed mid-run, firmware of another model, no flashing tool or probe) must give one clear line
and exit code 2, never a hang.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, tiny_model, tinyc
from tinyc import __version__
from tinyc.boards import load_board
from tinyc.device import DeviceError, DeviceSession, ProcessLink, SerialLink
from tinyc.emulator import QEMU_BINARY, SerialQemu
from tinyc.firmware import build, open_project

needs_tools = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which(QEMU_BINARY) is None,
    reason="arm-none-eabi-gcc / qemu-system-arm not installed (make setup)",
)


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> dict[str, Path]:
    """The tiny model compiled for qemu-m4 and qemu-f405, serial firmware built."""
    root = tmp_path_factory.mktemp("serial")
    model = tiny_model(root / "tiny.onnx")
    folders = {}
    for board in ("qemu-m4", "qemu-f405"):
        result = tinyc("compile", model, "--board", board, "-o", root / board)
        assert result.code == 0, result.stderr
        folders[board] = root / board
    return folders


def assert_user_error(result, pattern: str) -> str:
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.fullmatch("tinyc: error: " + pattern, lines[0]), lines[0]
    return lines[0]


# --- the protocol, on the native build ----------------------------------------------------------


@pytest.fixture
def host_session(projects):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    executable = build(open_project(projects["qemu-m4"]), "serial-host")
    with DeviceSession(ProcessLink(executable)) as session:
        yield session


def test_standard_commands_answer_as_the_runner_expects(host_session, projects):
    info = host_session.handshake()
    assert info["model"] == "model" and info["board"] == "qemu-m4"
    assert (info["in"], info["out"], info["unit"], info["hz"]) == ("192", "20", "ns",
                                                                     "1000000000")
    assert host_session.command("name").lines == ["m-name-dut-[tinyc]"]
    assert host_session.command("profile").lines == [f"m-profile-[tinyc {__version__}]",
                                                     "m-model-[model]"]
    assert re.fullmatch(r"m-lap-us-\d+", host_session.command("timestamp").lines[0])
    assert host_session.command("db load 192").lines == ["m-[Expecting 192 bytes]"]
    data = np.random.default_rng(1).standard_normal((1, 3, 4, 4)).astype(np.float32)
    raw = data.tobytes()
    assert host_session.command("db " + raw[:100].hex()).lines == []
    assert host_session.command("db " + raw[100:].hex().upper()).lines == ["m-load-done"]
    answer = host_session.command("infer 3 2")
    assert [re.sub(r"\d+$", "N", line) if line.startswith("m-lap-us-") else line
            for line in answer.lines[:-1]] == [
        "m-warmup-start-2", "m-warmup-done", "m-infer-start-3", "m-lap-us-N", "m-lap-us-N",
        "m-infer-done"]
    results = answer.bracketed("m-results-").split(",")
    assert len(results) == 5 and all(re.fullmatch(r"-?\d+\.\d{3}", v) for v in results)
    exact = np.frombuffer(host_session.output_bytes(), np.float32)
    assert np.allclose(exact, [float(v) for v in results], atol=0.0005)
    import onnxruntime as ort

    session = ort.InferenceSession(str(projects["qemu-m4"].parent / "tiny.onnx"),
                                   providers=["CPUExecutionProvider"])
    reference = session.run(None, {"x": data})[0].reshape(-1)
    assert np.allclose(exact, reference, atol=1e-4, rtol=1e-4)
    count = host_session.command("tinyc-count").bracketed("m-tinyc-count-")
    assert re.fullmatch(r"runs=3,count=\d+", count)


@pytest.mark.parametrize(("command", "error"), [
    ("infer 1 0", "e-[Load the 192-byte input first: db load N, then db HEX]"),
    ("db 00", "e-[Send db load N first]"),
    ("db load 193", "e-[DB load size must be 1 to 192 bytes]"),
    ("db load x", "e-[DB load size must be 1 to 192 bytes]"),
    ("db", "e-[Usage: db load N, or db HEX]"),
    ("infer 0", "e-[Usage: infer N W, with N >= 1 timed runs and W warm-up runs]"),
    ("infer 1 2 3", "e-[Usage: infer N W, with N >= 1 timed runs and W warm-up runs]"),
    ("fly", "e-[Unknown command: fly]"),
    ("x" * 400, "e-[Command too long]"),
])  # fmt: skip
def test_bad_commands_are_refused_and_the_firmware_stays_ready(host_session, command, error):
    host_session.handshake()
    with pytest.raises(DeviceError) as refused:
        host_session.command(command)
    assert str(refused.value).endswith(f": {error}")
    assert host_session.command("name").lines == ["m-name-dut-[tinyc]"]  # still in step


def test_bad_hex_payloads(host_session):
    host_session.handshake()
    host_session.command("db load 2")
    for payload, error in (("abc", "e-[Insufficient number of hex digits]"),
                           ("zz00", "e-[Not a hex digit]"),
                           ("000000", "e-[Buffer overflow: more than the announced bytes]")):
        with pytest.raises(DeviceError, match=re.escape(error)):
            host_session.command("db " + payload)
    assert host_session.command("db 0102").lines == ["m-load-done"]


# --- end to end on QEMU, through a pseudo-terminal ----------------------------------------------


def _serial_elf(folder: Path) -> Path:
    return build(open_project(folder), "serial")


@needs_tools
@pytest.mark.parametrize("board_id", ["qemu-m4", "qemu-f405"])
def test_bench_port_on_emulated_board(projects, board_id: str):
    folder = projects[board_id]
    with SerialQemu(load_board(board_id), _serial_elf(folder)) as qemu:
        result = tinyc("bench", folder, "--port", qemu.port, "--runs", "4", "--windows", "3",
                       "--samples", "2", "--json", cwd=folder.parent)
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["verdict"] == "PASS" and report["results_agree"]
    assert report["board"] == board_id and report["unit"] == "instructions"
    assert report["samples"] == 2 and report["reference"] == "onnxruntime"
    assert all(c["mismatches"] == 0 and c["max_abs_error"] < 1e-4
               for c in report["comparisons"])
    assert len(report["windows"]) == 3
    for window in report["windows"]:
        start, end = window["lap_us"]
        assert window["runs"] == 4 and 0 < start < end  # timestamps parsed
        # 2,048 MACs plus the input copy: some ten thousand instructions per inference.
        assert 5_000 < window["per_inference"] < 100_000
    # Virtual time under -icount: 1 instruction = 1 ns, so the laps agree with the counter.
    window = report["windows"][0]
    assert abs((end - start) * 1000 - window["count"]) < 0.2 * window["count"] + 5_000
    assert report["latency_ms"] is None and report["throughput"] > 0


@needs_tools
def test_bench_port_text_report(projects):
    folder = projects["qemu-m4"]
    with SerialQemu(load_board("qemu-m4"), _serial_elf(folder)) as qemu:
        result = tinyc("bench", folder, "--port", qemu.port, "--runs", "2", "--windows", "1",
                       cwd=folder.parent)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"tinyc bench: {folder} on qemu-m4 via {qemu.port} (firmware 'model', "
                        f"sig {lines[0][-9:-1]})")
    assert re.fullmatch(r"  output y +max abs error \S+ vs onnxruntime over 1 sample\(s\)  ok",
                        lines[1])
    assert lines[2] == "  m-results agree with the exact output bytes"
    assert re.fullmatch(r"  [\d,]+ instructions per inference \(median of 1 windows of 2 runs; "
                        r"emulated: instructions, not cycles or time\)", lines[3])
    assert lines[-1] == "PASS"


def test_missing_serial_port(projects):
    assert_user_error(tinyc("bench", projects["qemu-m4"], "--port", "/dev/ttyTINYC9"),
                      r"serial port /dev/ttyTINYC9 does not exist; is the board plugged in\? "
                      r"\(serial ports found: .*\)")


@needs_tools
def test_silent_device_times_out(projects):
    folder = projects["qemu-m4"]
    with SerialQemu(load_board("qemu-m4"), _serial_elf(folder), start_paused=True) as qemu:
        started = time.monotonic()
        result = tinyc("bench", folder, "--port", qemu.port)
    assert time.monotonic() - started < 30
    assert_user_error(result, re.escape(
        f"no answer from {qemu.port} within 5 s: is the tinyc serial firmware running there? "
        "(`tinyc flash OUTDIR --board B` puts it on the board)"))


@needs_tools
def test_emulator_killed_mid_run(projects):
    folder = projects["qemu-m4"]
    with SerialQemu(load_board("qemu-m4"), _serial_elf(folder)) as qemu:
        env = os.environ | {"PYTHONPATH": str(ROOT / "compiler")}
        bench = subprocess.Popen(
            [sys.executable, "-m", "tinyc.cli", "bench", str(folder), "--port", qemu.port,
             "--runs", "1000000", "--windows", "1"],  # a window of about a minute
            cwd=folder.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(6)  # handshake and output check take about a second, then a long infer
        assert bench.poll() is None, bench.communicate()
        qemu.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        stdout, stderr = bench.communicate(timeout=60)
    assert time.monotonic() - killed < 10
    assert bench.returncode == 2, (stdout, stderr)
    # Normally during the long window ('infer 1000000 2'); on a very loaded machine possibly
    # an earlier command: either way one line naming the port and the command.
    assert re.fullmatch(
        re.escape(f"tinyc: error: lost the connection to {qemu.port} during '") + r"[^']+"
        + re.escape("': the device was unplugged or reset, or the emulator ended") + "\n",
        stderr)


@needs_tools
def test_device_with_another_model_is_refused(projects, tmp_path):
    other = tmp_path / "other"
    assert tinyc("compile", tiny_model(tmp_path / "other.onnx", seed=5), "-o", other).code == 0
    folder = projects["qemu-m4"]
    with SerialQemu(load_board("qemu-m4"), _serial_elf(folder)) as qemu:
        result = tinyc("bench", other, "--port", qemu.port)
    assert_user_error(result, (
        rf"the firmware on {re.escape(qemu.port)} is model 'model' \(sig [0-9a-f]{{8}}\) for "
        r"qemu-m4, not this project's \(sig [0-9a-f]{8}\) for qemu-m4; flash it first: tinyc "
        rf"flash {re.escape(str(other))} --board qemu-m4"))


def test_bench_port_needs_a_project_folder(tmp_path):
    model = tiny_model(tmp_path / "tiny.onnx")
    assert_user_error(tinyc("bench", model, "--port", "/dev/ttyACM0"),
                      re.escape(f"bench --port needs the compiled project folder whose firmware "
                                f"the device runs, not {model}"))


def test_serial_link_to_a_busy_or_odd_port_is_one_line(tmp_path):
    fifo = tmp_path / "not-a-tty"
    fifo.write_text("")
    with pytest.raises(DeviceError, match=rf"^cannot open serial port {re.escape(str(fifo))}: "):
        SerialLink(str(fifo))


# --- tinyc flash --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nucleo_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nucleo")
    result = tinyc("compile", tiny_model(root / "tiny.onnx"), "--board", "nucleo", "-o",
                   root / "out")
    assert result.code == 0, result.stderr
    return root / "out"


def _fake_tool(folder: Path, name: str, output: str, code: int) -> Path:
    folder.mkdir(exist_ok=True)
    tool = folder / name
    tool.write_text(f'#!/bin/sh\necho "$@" > "{folder}/{name}.args"\necho "{output}" >&2\n'
                    f"exit {code}\n")
    tool.chmod(0o755)
    return tool


def _path_without_flash_tools(extra: Path | None = None) -> str:
    system = "/usr/bin:/bin"
    if any(shutil.which(tool, path=system) for tool in ("openocd", "st-flash", "pio")):
        pytest.skip("a flashing tool is installed system-wide")
    return f"{extra}:{system}" if extra else system


def test_flash_emulated_board_is_refused(projects):
    assert_user_error(tinyc("flash", projects["qemu-m4"]), re.escape(
        "qemu-m4 is emulated: there is nothing to flash; run the firmware with `tinyc run`, or "
        "start it on QEMU and use `tinyc bench --port` (see README, 'Real boards')"))


def test_flash_without_any_tool_says_what_to_install(nucleo_project):
    result = tinyc("flash", nucleo_project, "--board", "nucleo",
                   env={"PATH": _path_without_flash_tools()})
    assert_user_error(result, re.escape(
        "cannot flash nucleo-f446re: no flashing tool found; install one of OpenOCD (apt-get "
        "install openocd), st-flash (apt-get install stlink-tools) or PlatformIO with internet "
        "(pip install platformio; `pio run -t upload` fetches the ststm32 platform)"))


@needs_tools
def test_flash_without_probe(nucleo_project, tmp_path):
    _fake_tool(tmp_path / "bin", "openocd", "Error: open failed", 1)
    result = tinyc("flash", nucleo_project, env={"PATH": _path_without_flash_tools(
        tmp_path / "bin")})
    assert_user_error(result, re.escape(
        "openocd found no ST-LINK probe (Error: open failed); connect the nucleo-f446re by its "
        "ST-LINK USB port"))


@needs_tools
def test_flash_with_openocd(nucleo_project, tmp_path):
    _fake_tool(tmp_path / "bin", "openocd", "** Programming Finished **", 0)
    result = tinyc("flash", nucleo_project, env={"PATH": _path_without_flash_tools(
        tmp_path / "bin")})
    assert result.code == 0, result.stderr
    elf = (nucleo_project / "build" / "serial" / "firmware.elf").resolve()
    assert result.stdout == f"tinyc: flashed {elf} to nucleo-f446re with openocd\n"
    assert (tmp_path / "bin" / "openocd.args").read_text() == (
        f"-f interface/stlink.cfg -f target/stm32f4x.cfg -c program {elf} verify reset exit\n")


@needs_tools
def test_flash_with_st_flash(nucleo_project, tmp_path):
    _fake_tool(tmp_path / "bin", "st-flash", "Couldn't find any ST-Link devices", 255)
    result = tinyc("flash", nucleo_project, "--tool", "st-flash",
                   env={"PATH": _path_without_flash_tools(tmp_path / "bin")})
    assert_user_error(result, re.escape(
        "st-flash found no ST-LINK probe (Couldn't find any ST-Link devices); connect the "
        "nucleo-f446re by its ST-LINK USB port"))
    binary = (nucleo_project / "build" / "serial" / "firmware.bin").resolve()
    assert (tmp_path / "bin" / "st-flash.args").read_text() == (
        f"--reset write {binary} 0x08000000\n")
    assert binary.stat().st_size > 1000


def test_bench_real_board_without_port_says_how(nucleo_project):
    assert_user_error(tinyc("bench", nucleo_project), re.escape(
        f"nucleo-f446re is a real board: flash it (`tinyc flash {nucleo_project} --board "
        "nucleo-f446re`), then benchmark it with --port (e.g. --port /dev/ttyACM0)"))
