"""Board descriptions: boards/<id>.yaml loaded, validated and turned into compiler flags.

A board file is data only (schema in boards/README.md). `load_board("nucleo")` resolves ids and
aliases; every problem with a file is reported as one line naming the file and the field, e.g.
``boards/foo.yaml: field 'flash.size' must be a positive integer``.

From a Board the build gets everything it needs for arm-none-eabi-gcc: `cflags` (architecture,
float ABI, clock define), `include_dirs`, `sources` (startup and board support C files),
`ldflags` (linker script, C library specs, stack size) and `ldlibs`. `host_board()` gives the
same for a native gcc build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tinyc.errors import TinycError
from tinyc.resources import boards_dir

FLOAT_ABIS = ("hard", "softfp", "soft")
CONSOLES = ("semihosting", "uart")
COUNTER_KINDS = ("systick", "dwt_cyccnt")
COUNTER_UNITS = ("instructions", "cycles", "ns")
COUNTER_UNIT_OF_KIND = {"systick": "instructions", "dwt_cyccnt": "cycles"}
CLOCK_SETUPS = ("none", "pll")
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PIN_PATTERN = re.compile(r"^P([A-K])([0-9]|1[0-5])$")
_INSTANCE_PATTERN = re.compile(r"^[A-Z]+[0-9]+$")
_SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")


class BoardError(TinycError):
    """A board file is missing, malformed or names something that does not exist."""


@dataclass(frozen=True)
class MemoryRegion:
    """A contiguous memory range of the target, in bytes."""

    origin: int
    size: int

    @property
    def end(self) -> int:
        """First address past the region."""
        return self.origin + self.size

    def contains(self, address: int, size: int = 0) -> bool:
        """True if [address, address + size) lies inside the region."""
        return self.origin <= address and address + size <= self.end


@dataclass(frozen=True)
class NamedRegion(MemoryRegion):
    """A separate memory region with its part name, e.g. the Cortex-M7 DTCM."""

    name: str = ""


@dataclass(frozen=True)
class Pin:
    """A GPIO pin: port index (0 = A) and pin number, e.g. PD8 -> Pin(3, 8)."""

    port: int
    number: int

    @property
    def name(self) -> str:
        return f"P{chr(ord('A') + self.port)}{self.number}"


@dataclass(frozen=True)
class Uart:
    """The serial port of the board: its instance, bit rate and (STM32) pins."""

    instance: str
    baud: int
    tx: Pin | None = None
    rx: Pin | None = None
    af: int | None = None


@dataclass(frozen=True)
class Counter:
    """The hardware counter behind board_counter(): which one, and what it counts."""

    kind: str
    unit: str


@dataclass(frozen=True)
class QemuMachine:
    """How QEMU emulates the board: `-M machine` and, if the machine needs it, `-cpu cpu`;
    `serial` is the position of the board's UART among QEMU's -serial options."""

    machine: str
    cpu: str | None = None
    serial: int = 0


@dataclass(frozen=True)
class PlatformIOTarget:
    """The PlatformIO ids of a real board (`board = ...`, `platform = ...`)."""

    board: str
    platform: str


# Cores whose single-precision VFMA is pipelined, one issue slot where VMUL + VADD take two (the
# Cortex-M7: LLVM's ARMScheduleM7.td, FP multiply-accumulate on the pipelined VFP unit): the
# float kernels fuse their multiply-adds there (tc_common.h, tc_mac_f32).  Not the Cortex-M4,
# whose VFMA holds the FPU for 3 cycles against 1 + 1 (GCC's cortex-m4-fpu.md): fusing would
# cut its instruction count by a fifth and cost cycles.
FUSED_MAC_CORES = frozenset({"cortex-m7"})


@dataclass(frozen=True)
class Board:
    """One board, as described by boards/<id>.yaml. Paths are absolute."""

    id: str
    aliases: tuple[str, ...]
    name: str
    mcu: str
    core: str
    fpu: str | None
    float_abi: str
    clock_hz: int
    max_clock_hz: int | None
    clock_setup: str
    flash: MemoryRegion
    ram: MemoryRegion
    fast_ram: NamedRegion | None
    stack_size: int
    platform: str
    linker_script: str
    console: str
    files: bool
    uart: Uart
    counter: Counter
    qemu: QemuMachine | None
    platformio: PlatformIOTarget | None
    openocd_target: str | None
    path: Path
    """The YAML file the board was loaded from."""

    @property
    def directory(self) -> Path:
        """The boards folder holding this board's YAML, platform folder and common/."""
        return self.path.parent

    @property
    def platform_dir(self) -> Path:
        return self.directory / self.platform

    @property
    def common_dir(self) -> Path:
        return self.directory / "common"

    @property
    def linker_script_path(self) -> Path:
        return self.platform_dir / self.linker_script

    @property
    def emulated(self) -> bool:
        """True if the board runs under QEMU here."""
        return self.qemu is not None

    @property
    def arch_flags(self) -> list[str]:
        """-mcpu/-mthumb/-mfpu/-mfloat-abi: needed when compiling and when linking."""
        flags = [f"-mcpu={self.core}", "-mthumb"]
        if self.fpu is not None:
            flags.append(f"-mfpu={self.fpu}")
        flags.append(f"-mfloat-abi={self.float_abi}")
        return flags

    @property
    def cflags(self) -> list[str]:
        """Flags for compiling any C file of the firmware (board support and generated code)."""
        return [
            *self.arch_flags,
            "-ffunction-sections",
            "-fdata-sections",
            *self.defines,
        ]

    @property
    def defines(self) -> list[str]:
        """The -D flags that tell the board support C code about this board, and the runtime
        about its core (TC_FUSED_MAC: FUSED_MAC_CORES)."""
        flags = [
            f"-DTINYC_BOARD_CLOCK_HZ={self.clock_hz}u",
            f"-DTINYC_MCU_{self.mcu.upper().replace('-', '_')}",
        ]
        if self.core in FUSED_MAC_CORES and self.fpu is not None:
            flags.append("-DTC_FUSED_MAC")
        if self.clock_setup == "pll":
            flags.append("-DTINYC_BOARD_CLOCK_SETUP_PLL")
        if self.emulated:
            flags.append("-DTINYC_BOARD_EMULATED")
        flags += [f"-DTINYC_UART_{self.uart.instance}", f"-DTINYC_UART_BAUD={self.uart.baud}u"]
        if self.uart.tx is not None and self.uart.rx is not None:
            flags += [
                f"-DTINYC_UART_TX_PORT={self.uart.tx.port}",
                f"-DTINYC_UART_TX_PIN={self.uart.tx.number}",
                f"-DTINYC_UART_RX_PORT={self.uart.rx.port}",
                f"-DTINYC_UART_RX_PIN={self.uart.rx.number}",
                f"-DTINYC_UART_AF={self.uart.af}",
            ]
        return flags

    @property
    def include_dirs(self) -> list[Path]:
        """Folders to pass with -I; boards/common holds tinyc_board.h."""
        return [self.common_dir]

    @property
    def sources(self) -> list[Path]:
        """The board's C files to compile and link with the generated code."""
        files = [self.common_dir / "startup_cortexm.c"]
        if self.console == "uart":
            files.append(self.common_dir / "retarget_uart.c")
        files.append(self.common_dir / f"counter_{self.counter.kind.split('_')[0]}.c")
        files.extend(sorted(self.platform_dir.glob("*.c")))
        return files

    @property
    def ldflags(self) -> list[str]:
        """Flags for the link step, complete on their own (architecture flags repeated so gcc
        picks the matching multilib). Put them before the object files."""
        specs = "rdimon" if self.console == "semihosting" else "nano"
        libc = [f"--specs={specs}.specs"]
        return [
            *self.arch_flags,
            "-T",
            str(self.linker_script_path),
            f"-L{self.common_dir}",
            "-nostartfiles",
            *libc,
            "-Wl,--gc-sections",
            f"-Wl,--defsym=__stack_size__={self.stack_size}",
        ]

    @property
    def ldlibs(self) -> list[str]:
        """Libraries to put after the object files on the link line."""
        return ["-lm"]

    @property
    def ldlibs_names(self) -> list[str]:
        """The same libraries by name (m for -lm), as build systems such as SCons want them."""
        return [lib[2:] for lib in self.ldlibs]

    def describe(self) -> str:
        """The id with its aliases, as listed in messages: 'nucleo-f446re (nucleo)'."""
        return f"{self.id} ({', '.join(self.aliases)})" if self.aliases else self.id


@dataclass(frozen=True)
class HostBoard:
    """The board API for a native gcc build on the development machine (boards/host)."""

    sources: list[Path]
    include_dirs: list[Path]
    cflags: list[str]
    ldflags: list[str]
    ldlibs: list[str]
    counter_unit: str = "ns"
    id: str = "host"


def host_board(directory: Path | None = None) -> HostBoard:
    """Sources and flags to build the firmware natively with gcc (counter in ns)."""
    root = directory if directory is not None else boards_dir()
    return HostBoard(
        sources=[root / "host" / "board.c"],
        include_dirs=[root / "common"],
        cflags=[],
        ldflags=[],
        ldlibs=["-lm"],
    )


def load_board(name_or_alias: str, directory: Path | None = None) -> Board:
    """The board whose id or alias is `name_or_alias`, from `directory` (default: boards/)."""
    root = directory if directory is not None else boards_dir()
    direct = root / f"{name_or_alias}.yaml"
    if direct.is_file():
        return _load_file(direct, _label(direct, directory))
    boards = list_boards(directory)
    for board in boards:
        if name_or_alias in board.aliases:
            return board
    available = ", ".join(board.describe() for board in boards) or "none"
    raise BoardError(f"unknown board '{name_or_alias}'; available: {available}")


def list_boards(directory: Path | None = None) -> list[Board]:
    """Every board in `directory` (default: boards/), sorted by id. Aliases must be unique."""
    root = directory if directory is not None else boards_dir()
    boards = [_load_file(path, _label(path, directory)) for path in sorted(root.glob("*.yaml"))]
    owners: dict[str, Board] = {}
    for board in boards:
        for name in (board.id, *board.aliases):
            if name in owners:
                raise BoardError(
                    f"{_label(board.path, directory)}: name '{name}' is already used by "
                    f"{_label(owners[name].path, directory)}"
                )
            owners[name] = board
    return sorted(boards, key=lambda board: board.id)


def _label(path: Path, directory: Path | None) -> str:
    """How messages name a board file: boards/<file> for the built-in ones, else the path."""
    return f"boards/{path.name}" if directory is None else str(path)


_KNOWN_FIELDS = (
    "id", "aliases", "name", "mcu", "core", "fpu", "float_abi", "clock_hz", "max_clock_hz",
    "clock_setup", "flash", "ram", "fast_ram", "stack_size", "platform", "linker_script",
    "console", "files", "uart", "counter", "qemu", "platformio", "openocd_target",
)  # fmt: skip


class _Fields:
    """Typed access to one mapping of a board file; every failure names file and field."""

    def __init__(self, data: dict[str, Any], label: str, prefix: str = "") -> None:
        self.data = data
        self.label = label
        self.prefix = prefix

    def error(self, key: str, problem: str) -> BoardError:
        return BoardError(f"{self.label}: field '{self.prefix}{key}' {problem}")

    def check_known(self, known: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in known:
                raise BoardError(
                    f"{self.label}: unknown field '{self.prefix}{key}' (known: {', '.join(known)})"
                )

    def _get(self, key: str, expected: str, optional: bool) -> Any:
        if key not in self.data or self.data[key] is None:
            if optional:
                return None
            raise self.error(key, f"is missing; it must be {expected}")
        return self.data[key]

    def string(self, key: str, choices: tuple[str, ...] | None = None) -> str:
        expected = "one of " + ", ".join(choices) if choices else "a non-empty string"
        value = self._get(key, expected, optional=False)
        if not isinstance(value, str) or not value or (choices and value not in choices):
            raise self.error(key, f"must be {expected}")
        return value

    def optional_string(self, key: str) -> str | None:
        value = self._get(key, "a non-empty string", optional=True)
        if value is None:
            return None
        return self.string(key)

    def positive_int(self, key: str) -> int:
        value = self._get(key, "a positive integer", optional=False)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(key, "must be a positive integer")
        return value

    def optional_positive_int(self, key: str) -> int | None:
        if self._get(key, "a positive integer", optional=True) is None:
            return None
        return self.positive_int(key)

    def int_in_range(self, key: str, low: int, high: int) -> int:
        expected = f"an integer from {low} to {high}"
        value = self._get(key, expected, optional=False)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(key, f"must be {expected}")
        return value

    def matching(self, key: str, pattern: re.Pattern[str], expected: str) -> str:
        value = self._get(key, expected, optional=False)
        if not isinstance(value, str) or not pattern.match(value):
            raise self.error(key, f"must be {expected}")
        return value

    def natural_int(self, key: str) -> int:
        value = self._get(key, "an integer >= 0", optional=False)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(key, "must be an integer >= 0")
        return value

    def boolean(self, key: str) -> bool:
        value = self._get(key, "true or false", optional=False)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self._get(key, "a list of names", optional=False)
        if not isinstance(value, list) or not all(
            isinstance(item, str) and _ID_PATTERN.match(item) for item in value
        ):
            raise self.error(key, "must be a list of names (lower case, digits and '-')")
        return tuple(value)

    def mapping(self, key: str, known: tuple[str, ...]) -> _Fields:
        expected = "a mapping with " + ", ".join(known)
        value = self._get(key, expected, optional=False)
        if not isinstance(value, dict):
            raise self.error(key, f"must be {expected}")
        fields = _Fields(value, self.label, f"{self.prefix}{key}.")
        fields.check_known(known)
        return fields

    def optional_mapping(self, key: str, known: tuple[str, ...]) -> _Fields | None:
        if self._get(key, "a mapping", optional=True) is None:
            return None
        return self.mapping(key, known)


def _load_file(path: Path, label: str) -> Board:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BoardError(f"{label}: cannot read ({error.strerror})") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "syntax error"
        raise BoardError(f"{label}: not valid YAML{where}: {problem}") from error
    if not isinstance(data, dict):
        raise BoardError(f"{label}: must be a mapping of fields (see boards/README.md)")

    fields = _Fields(data, label)
    fields.check_known(_KNOWN_FIELDS)

    board_id = fields.string("id")
    if board_id != path.stem:
        raise fields.error("id", f"must match the file name '{path.stem}'")

    fpu_name = fields.string("fpu")
    fpu = None if fpu_name == "none" else fpu_name
    float_abi = fields.string("float_abi", FLOAT_ABIS)
    if fpu is None and float_abi != "soft":
        raise fields.error("float_abi", "must be soft when fpu is none")
    if fpu is not None and float_abi == "soft":
        raise fields.error("float_abi", f"must be hard or softfp when fpu is {fpu}")

    clock_hz = fields.positive_int("clock_hz")
    max_clock_hz = fields.optional_positive_int("max_clock_hz")
    if max_clock_hz is not None and max_clock_hz < clock_hz:
        raise fields.error("max_clock_hz", "must be at least clock_hz")

    console = fields.string("console", CONSOLES)
    files = fields.boolean("files")
    if files and console != "semihosting":
        raise fields.error("files", "can be true only with console: semihosting")

    platform = fields.string("platform")
    platform_dir = path.parent / platform
    if not platform_dir.is_dir():
        raise fields.error("platform", f"names a folder that does not exist: {platform_dir}")
    linker_script = fields.string("linker_script")
    if not (platform_dir / linker_script).is_file():
        raise fields.error(
            "linker_script", f"names a file that does not exist: {platform_dir / linker_script}"
        )

    stack_size = fields.positive_int("stack_size")
    if stack_size % 8 != 0:
        raise fields.error("stack_size", "must be a multiple of 8 (the AAPCS stack alignment)")

    counter = fields.mapping("counter", ("kind", "unit"))
    counter_kind = counter.string("kind", COUNTER_KINDS)
    counter_unit = counter.string("unit", COUNTER_UNITS)
    if counter_unit != COUNTER_UNIT_OF_KIND[counter_kind]:
        raise counter.error(
            "unit", f"must be {COUNTER_UNIT_OF_KIND[counter_kind]} with kind {counter_kind}"
        )
    qemu = fields.optional_mapping("qemu", ("machine", "cpu", "serial"))
    platformio = fields.optional_mapping("platformio", ("board", "platform"))

    clock_setup = fields.string("clock_setup", CLOCK_SETUPS)
    if qemu is not None and clock_setup != "none":
        raise fields.error("clock_setup", "must be none on an emulated board (QEMU has no PLL)")
    if qemu is not None and counter_kind != "systick":
        raise counter.error("kind", "must be systick on an emulated board (QEMU has no DWT)")

    ram = _region(fields, "ram")
    fast_ram = None
    region = fields.optional_mapping("fast_ram", ("origin", "size", "name"))
    if region is not None:
        fast_ram = NamedRegion(
            origin=region.natural_int("origin"),
            size=region.positive_int("size"),
            name=region.string("name"),
        )
        if fast_ram.origin < ram.end and ram.origin < fast_ram.end:
            raise fields.error("fast_ram", "must not overlap ram")

    return Board(
        id=board_id,
        aliases=fields.string_list("aliases"),
        name=fields.string("name"),
        mcu=fields.matching("mcu", _ID_PATTERN, "a part name (lower case, digits and '-')"),
        core=fields.string("core"),
        fpu=fpu,
        float_abi=float_abi,
        clock_hz=clock_hz,
        max_clock_hz=max_clock_hz,
        clock_setup=clock_setup,
        flash=_region(fields, "flash"),
        ram=ram,
        fast_ram=fast_ram,
        stack_size=stack_size,
        platform=platform,
        linker_script=linker_script,
        console=console,
        files=files,
        uart=_uart(fields),
        counter=Counter(kind=counter_kind, unit=counter_unit),
        qemu=None
        if qemu is None
        else QemuMachine(
            machine=qemu.string("machine"),
            cpu=qemu.optional_string("cpu"),
            serial=qemu.int_in_range("serial", 0, 7) if "serial" in qemu.data else 0,
        ),
        platformio=None
        if platformio is None
        else PlatformIOTarget(
            board=platformio.string("board"), platform=platformio.string("platform")
        ),
        openocd_target=None
        if fields.optional_string("openocd_target") is None
        else fields.matching("openocd_target", _SYMBOL_PATTERN, "an OpenOCD target name"),
        path=path.resolve(),
    )


def _uart(fields: _Fields) -> Uart:
    uart = fields.mapping("uart", ("instance", "baud", "tx", "rx", "af"))
    instance = uart.matching("instance", _INSTANCE_PATTERN, "a name like USART2 or LPUART1")
    baud = uart.positive_int("baud")
    given = [key for key in ("tx", "rx", "af") if key in uart.data]
    if not given:
        return Uart(instance, baud)
    for key in ("tx", "rx", "af"):
        if key not in given:
            raise uart.error(key, "is missing; tx, rx and af go together")

    def pin(key: str) -> Pin:
        match = _PIN_PATTERN.match(uart.matching(key, _PIN_PATTERN, "a pin like PA2 or PD9"))
        assert match is not None
        return Pin(ord(match.group(1)) - ord("A"), int(match.group(2)))

    return Uart(instance, baud, pin("tx"), pin("rx"), uart.int_in_range("af", 0, 15))


def _region(fields: _Fields, key: str) -> MemoryRegion:
    region = fields.mapping(key, ("origin", "size"))
    return MemoryRegion(origin=region.natural_int("origin"), size=region.positive_int("size"))
