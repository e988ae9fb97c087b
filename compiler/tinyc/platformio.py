"""PlatformIO: the generated project's platformio.ini, and building it without the registry.

Every generated project carries a platformio.ini with the same sources and flags as its
Makefile:

- `serial` / `sample` (real boards): the official `ststm32` platform and the board's PlatformIO
  id, for a user with internet: `pio run -e serial -t upload` builds and flashes the serial
  benchmark firmware.
- `offline-serial` / `offline-sample` (every board): tinyc's local development platform
  `tinyc-cortexm`, which uses the system arm-none-eabi toolchain and declares no registry
  package. `tinyc build OUTDIR --with platformio` builds these.

PlatformIO's build_flags reach only the compiler, so the link flags (architecture, C library
specs, stack size, no start files) are added by platformio_link.py, an extra script the ini
names; the official and the offline platform both run it.

Offline set-up (`ensure_offline_platform`, idempotent, run by scripts/setup.sh and on demand):
in a PlatformIO core folder of tinyc's own (TINYC_PLATFORMIO_DIR, default
<python prefix>/tinyc-platformio, i.e. inside .venv), it writes
- packages/tool-scons: the SCons PlatformIO runs builds with, as PlatformIO expects it (a
  package.json whose version satisfies platformio's own requirement, a .piopm whose spec owner
  is `platformio`, and a scons.py starting the pip-installed SCons from the same Python);
- platforms/tinyc-cortexm: platform.json, platform.py, builder/main.py (tinyc/pio_builder.py)
  and one boards/<id>.json per board, made from boards/<id>.yaml.
pio then runs with PLATFORMIO_CORE_DIR pointing there, telemetry and upgrade checks off.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tinyc import __version__
from tinyc.boards import Board, list_boards
from tinyc.errors import TinycError

PLATFORM = "tinyc-cortexm"
OFFLINE_ENVS = {"serial": "offline-serial", "board": "offline-sample"}
LINK_SCRIPT = "platformio_link.py"
_BUILDER = Path(__file__).with_name("pio_builder.py")


# --- the generated project ----------------------------------------------------------------------


def link_flags(board: Board) -> list[str]:
    """The Makefile's link flags less what PlatformIO passes itself (-T, -L)."""
    flags, skip = [], False
    for flag in board.ldflags:
        if skip:
            skip = False
            continue
        if flag == "-T":
            skip = True
            continue
        if flag.startswith("-L"):
            continue
        flags.append(flag)
    return flags


def write_platformio_files(folder: Path, context: dict[str, Any], build: dict[str, Any]) -> None:
    """platformio.ini and platformio_link.py for a project being written in `folder`."""
    from tinyc.codegen import render

    board: Board = context["board"]
    (folder / "platformio.ini").write_text(render("platformio.ini.j2", platform=PLATFORM,
                                                  link_script=LINK_SCRIPT, **context, **build))
    flags = [*link_flags(board), "-Wl,-Map=${BUILD_DIR}/firmware.map"]
    (folder / LINK_SCRIPT).write_text(
        f'"""Link flags for PlatformIO builds of "{context["p"].name}" on {board.id} (generated '
        f"by tinyc {__version__}).\n\n"
        "PlatformIO gives build_flags to the compiler only; the link needs the architecture flags "
        "too\n(they choose the C library variant), the C library specs, the stack size and "
        "-nostartfiles,\nexactly as LDFLAGS in the Makefile. platformio.ini runs this script "
        '(extra_scripts).\n"""\n\n'
        'Import("env")  # noqa: F821 (SCons)\n'
        "env.Append(  # noqa: F821\n    LINKFLAGS=[\n"
        + "".join(f"        {json.dumps(flag)},\n" for flag in flags)
        + f"    ],\n    LIBS={json.dumps(board.ldlibs_names)},\n)\n"
    )


# --- the offline platform -----------------------------------------------------------------------


def core_dir() -> Path:
    """tinyc's PlatformIO core folder (not the user's ~/.platformio)."""
    configured = os.environ.get("TINYC_PLATFORMIO_DIR")
    return Path(configured) if configured else Path(sys.prefix) / "tinyc-platformio"


def pio_environment(core: Path | None = None) -> dict[str, str]:
    """The environment `pio` runs offline with."""
    return os.environ | {
        "PLATFORMIO_CORE_DIR": str(core or core_dir()),
        "PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No",
        "PLATFORMIO_DISABLE_UPGRADE_CHECK": "true",
        "PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL": "3650",
        "PLATFORMIO_NO_ANSI": "true",
    }


def _require_platformio() -> str:
    """platformio's version; TinycError if platformio or SCons is missing."""
    try:
        import platformio
        import SCons  # noqa: F401
    except ImportError as error:
        raise TinycError(f"{error.name} is not installed; pip install platformio==6.2.0 "
                         "scons==4.11.1 (or run `make setup`)") from None
    return platformio.__version__


def _scons_version() -> str:
    """The tool-scons version platformio asks for, e.g. '~4.41101.0' -> '4.41101.0'."""
    from platformio.dependencies import get_core_dependencies

    return get_core_dependencies()["tool-scons"].lstrip("~^=<> ")


def board_manifest(board: Board) -> dict[str, Any]:
    """PlatformIO's board JSON for a tinyc board."""
    manifest: dict[str, Any] = {
        "build": {"cpu": board.core, "f_cpu": f"{board.clock_hz}L", "mcu": board.mcu},
        "frameworks": [],
        "name": board.name,
        "upload": {"maximum_size": board.flash.size, "maximum_ram_size": board.ram.size,
                   "protocol": "stlink" if board.openocd_target else "custom"},
        "url": "",
        "vendor": "tinyc",
    }
    if board.openocd_target:
        manifest["debug"] = {"openocd_target": board.openocd_target}
    return manifest


def _platform_files(boards: list[Board]) -> dict[str, str]:
    files = {
        "platform.json": json.dumps({
            "name": PLATFORM, "title": "tinyc Cortex-M (offline)", "version": "1.0.0",
            "description": "Builds tinyc projects with the system arm-none-eabi toolchain, "
                           "without PlatformIO's registry.",
            "engines": {"platformio": "^6"}, "frameworks": {}, "packages": {},
        }, indent=1),
        "platform.py": "from platformio.public import PlatformBase\n\n\n"
                       "class TinyccortexmPlatform(PlatformBase):\n"
                       '    """tinyc\'s offline platform (see builder/main.py)."""\n',
        "builder/main.py": _BUILDER.read_text(),
    }
    for board in boards:
        files[f"boards/{board.id}.json"] = json.dumps(board_manifest(board), indent=1)
    return files


def _scons_files(version: str) -> dict[str, str]:
    return {
        "package.json": json.dumps({"name": "tool-scons", "version": version,
                                    "description": "SCons from PyPI, installed by tinyc"}),
        ".piopm": json.dumps({"type": "tool", "name": "tool-scons", "version": version,
                              "spec": {"owner": "platformio", "id": None, "name": "tool-scons",
                                       "requirements": None, "uri": None}}),
        "scons.py": "# Starts the SCons installed in this Python (pip install scons), for "
                    "PlatformIO.\nimport sys\n\nfrom SCons.Script.Main import main\n\n"
                    "if __name__ == '__main__':\n    sys.exit(main())\n",
    }


def ensure_offline_platform(core: Path | None = None) -> Path:
    """Installs (or refreshes) tool-scons and the tinyc-cortexm platform in the core folder;
    does nothing when they are up to date. Safe to call from several processes at once."""
    pio_version = _require_platformio()
    core = core or core_dir()
    boards = list_boards()
    groups = {"packages/tool-scons": _scons_files(_scons_version()),
              f"platforms/{PLATFORM}": _platform_files(boards)}
    digest = hashlib.sha256(f"{__version__} {pio_version}".encode())
    for folder, files in sorted(groups.items()):
        for name, text in sorted(files.items()):
            digest.update(f"{folder}/{name}\0{text}\0".encode())
    stamp = core / ".tinyc-offline"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return core
    core.mkdir(parents=True, exist_ok=True)
    with open(core / ".tinyc-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text() == digest.hexdigest():
            return core
        for folder, files in groups.items():
            target = core / folder
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tinyc-", dir=target.parent))
            for name, text in files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_text(text)
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        stamp.write_text(digest.hexdigest())
    return core


def build(project: Any, targets: tuple[str, ...] = ("board", "serial")) -> dict[str, Path]:
    """Builds the project's offline environments with `pio run`; returns target -> ELF."""
    core = ensure_offline_platform()
    if shutil.which("arm-none-eabi-gcc") is None:
        raise TinycError("arm-none-eabi-gcc not found; run `make setup` or apt-get install "
                         "gcc-arm-none-eabi libnewlib-arm-none-eabi")
    envs = [OFFLINE_ENVS[t] for t in targets]
    command = [sys.executable, "-m", "platformio", "run", "-d", str(Path(project.outdir).resolve())]
    for env in envs:
        command += ["-e", env]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=900,
                              env=pio_environment(core))
    except subprocess.TimeoutExpired:
        raise TinycError(f"pio run on {project.outdir} did not finish within 900 s") from None
    if proc.returncode != 0:
        lines = (proc.stderr + proc.stdout).splitlines()
        first = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")
        raise TinycError(f"building {project.outdir} with PlatformIO failed: {first.strip()}")
    return {t: Path(project.outdir) / ".pio" / "build" / OFFLINE_ENVS[t] / "firmware.elf"
            for t in targets}


def main(argv: list[str] | None = None) -> int:
    """`python -m tinyc.platformio install`: the set-up step of scripts/setup.sh."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["install"]:
        print("usage: python -m tinyc.platformio install", file=sys.stderr)
        return 2
    try:
        core = ensure_offline_platform()
    except TinycError as error:
        print(f"tinyc: error: {error}", file=sys.stderr)
        return 2
    print(f"tinyc: offline PlatformIO platform '{PLATFORM}' ready in {core}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
