"""PlatformIO: the generated platformio.ini, the offline platform, and building every board both
ways (`tinyc build` with the Makefile and `--with platformio`) from the same generated sources.

No registry is reachable here (nor in CI): the offline environments use tinyc's local platform
tinyc-cortexm and the pip-installed SCons, set up by scripts/setup.sh (and on demand).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from helpers import tiny_model, tinyc
from tinyc import platformio
from tinyc.boards import list_boards, load_board
from tinyc.emulator import QEMU_BINARY, run_qemu
from tinyc.project import sample_inputs

BOARDS = [board.id for board in list_boards()]

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"
)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    platformio.ensure_offline_platform()  # idempotent; the set-up script normally did it
    return tiny_model(tmp_path_factory.mktemp("pio") / "tiny.onnx")


def _sources(folder: Path) -> dict[str, str]:
    """Every generated file (not the build outputs) -> its SHA-256."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and not {"build", ".pio"} & set(path.relative_to(folder).parts)}


@pytest.mark.parametrize("board_id", BOARDS)
def test_every_board_builds_with_make_and_platformio(model: Path, tmp_path: Path, board_id: str):
    with_make, with_pio = tmp_path / "make", tmp_path / "pio"
    result = tinyc("compile", model, "--board", board_id, "-o", with_make)
    assert result.code == 0, result.stderr
    shutil.copytree(with_make, with_pio)  # one generated project, built both ways
    generated = _sources(with_make)
    assert {"main.c", "serial.c", "Makefile", "platformio.ini", "platformio_link.py"} <= set(
        generated)

    made = tinyc("build", with_make, "--json")
    assert made.code == 0, made.stderr
    piod = tinyc("build", with_pio, "--with", "platformio", "--json")
    assert piod.code == 0, piod.stderr
    assert _sources(with_make) == generated and _sources(with_pio) == generated  # untouched

    board = load_board(board_id)
    make_report, pio_report = made.json(), piod.json()
    assert pio_report["with"] == "platformio"
    assert pio_report["firmwares"]["serial"]["elf"].endswith(
        ".pio/build/offline-serial/firmware.elf")
    for target in ("board", "serial"):
        by_make, by_pio = make_report["firmwares"][target], pio_report["firmwares"][target]
        # Same sources, same flags: the same code and constants, up to the alignment padding
        # that a different link order moves (measured: 0 to 8 bytes).
        assert abs(by_pio["flash_used"] - by_make["flash_used"]) <= 64, target
        assert 0 < by_pio["flash_used"] <= board.flash.size
        assert 0 < by_pio["ram_used"] <= board.ram.size
        assert abs(by_pio["ram_used"] - by_make["ram_used"]) <= 64  # .bss alignment


def test_compiling_twice_gives_byte_identical_sources(model: Path, tmp_path: Path):
    for folder in (tmp_path / "a", tmp_path / "b"):
        assert tinyc("compile", model, "--board", "nucleo-h743zi2", "-o", folder).code == 0
    assert _sources(tmp_path / "a") == _sources(tmp_path / "b")


def test_build_text_reports_flash_and_ram(model: Path, tmp_path: Path):
    folder = tmp_path / "out"
    assert tinyc("compile", model, "--board", "nucleo", "-o", folder).code == 0
    result = tinyc("build", folder, "--with", "platformio")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"tinyc: built {folder}/.pio/build/offline-sample/firmware.elf (test "
                        "harness, platformio)")
    assert lines[3] == (f"tinyc: built {folder}/.pio/build/offline-serial/firmware.elf (serial "
                        "benchmark firmware, platformio)")
    for line in (lines[2], lines[5]):
        assert line.startswith("flash ") and "of nucleo-f446re's 524,288 B; RAM " in line


def _ini(folder: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read(folder / "platformio.ini")
    return parser


def test_ini_has_official_and_offline_environments(model: Path, tmp_path: Path):
    real, emulated = tmp_path / "real", tmp_path / "emulated"
    assert tinyc("compile", model, "--board", "nucleo-h743zi2", "-o", real).code == 0
    assert tinyc("compile", model, "--board", "qemu-m4", "-o", emulated).code == 0
    ini = _ini(real)
    assert ini["platformio"]["default_envs"] == "serial"
    assert (ini["env:serial"]["platform"], ini["env:serial"]["board"]) == ("ststm32",
                                                                         "nucleo_h743zi2")
    assert (ini["env:offline-serial"]["platform"],
            ini["env:offline-serial"]["board"]) == ("tinyc-cortexm", "nucleo-h743zi2")
    assert ini["tinyc"]["board_build.ldscript"] == "$PROJECT_DIR/board/stm32h743zi.ld"
    assert ini["tinyc"]["extra_scripts"] == "post:platformio_link.py"
    flags = ini["tinyc"]["build_flags"].split()
    assert flags[:5] == ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard", "-O2"]
    assert "-DTINYC_BOARD_CLOCK_HZ=400000000u" in flags
    assert "+<serial.c>" in ini["tinyc-serial"]["build_src_filter"]
    assert "+<main.c>" not in ini["tinyc-serial"]["build_src_filter"]
    assert "+<main.c>" in ini["tinyc-sample"]["build_src_filter"]
    link = (real / "platformio_link.py").read_text()
    assert '"--specs=nano.specs"' in link and '"-Wl,--defsym=__stack_size__=16384"' in link
    assert "-T" not in link.split("LINKFLAGS")[1]
    ini = _ini(emulated)
    assert ini["platformio"]["default_envs"] == "offline-serial"
    assert not ini.has_section("env:serial")  # no official platform for QEMU's boards


def test_offline_platform_layout_and_idempotence(tmp_path: Path):
    core = platformio.ensure_offline_platform(tmp_path / "core")
    piopm = json.loads((core / "packages/tool-scons/.piopm").read_text())
    assert piopm["spec"]["owner"] == "platformio"
    from platformio.dependencies import get_core_dependencies

    wanted = get_core_dependencies()["tool-scons"]
    assert wanted.lstrip("~") == json.loads(
        (core / "packages/tool-scons/package.json").read_text())["version"]
    platform = core / "platforms/tinyc-cortexm"
    assert json.loads((platform / "platform.json").read_text())["packages"] == {}
    for board in list_boards():
        manifest = json.loads((platform / "boards" / f"{board.id}.json").read_text())
        assert manifest["build"]["cpu"] == board.core
        assert manifest["upload"]["maximum_size"] == board.flash.size
    stamp = core / ".tinyc-offline"
    before = (stamp.stat().st_mtime_ns, (platform / "platform.json").stat().st_mtime_ns)
    platformio.ensure_offline_platform(tmp_path / "core")
    assert (stamp.stat().st_mtime_ns, (platform / "platform.json").stat().st_mtime_ns) == before


@pytest.mark.skipif(shutil.which(QEMU_BINARY) is None, reason="qemu-system-arm not installed")
def test_platformio_firmware_runs_like_the_makefile_one(model: Path, tmp_path: Path):
    folder = tmp_path / "out"
    assert tinyc("compile", model, "-o", folder).code == 0
    assert tinyc("build", folder).code == 0
    assert tinyc("build", folder, "--with", "platformio").code == 0
    sample = sample_inputs([((1, 3, 4, 4), "float32")], 2)
    outputs = []
    for elf in (folder / "build/firmware.elf", folder / ".pio/build/offline-sample/firmware.elf"):
        work = tmp_path / elf.parent.name
        work.mkdir()
        (work / "input.bin").write_bytes(b"".join(s[0].tobytes() for s in sample))
        result = run_qemu(load_board("qemu-m4"), elf, work, timeout=30)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("tinyc: sample ") == 2
        outputs.append((work / "output.bin").read_bytes())
    assert outputs[0] == outputs[1] and len(outputs[0]) == 2 * 5 * 4
