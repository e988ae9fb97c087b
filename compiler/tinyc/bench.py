"""`tinyc bench`: cost of one inference on the emulated board, whole and per layer.

On QEMU with `-icount shift=0` the counter is in guest *instructions*: exact and repeatable, not
cycles and not time (a Cortex-M4 takes one to three cycles per instruction).  The total comes
from a normal build; the per-layer split from a build with -DTINYC_PROFILE (whose hooks add a few
instructions per layer, so the layer sum is slightly above the total).  Flash is measured from
the linked ELF, for the whole firmware and for the model alone (model.c, weights.c and the
runtime kernels, from the linker map).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tinyc.firmware import Project, SizeInfo, build, run, size
from tinyc.project import sample_inputs

MODEL_OBJECTS = re.compile(r"(^|/)(model|weights|sample)\.o$|(^|/)runtime/[^/]+\.o$")
FLASH_INPUT_SECTIONS = (".text", ".rodata", ".data")


@dataclass
class LayerCost:
    index: int
    name: str
    op: str
    macs: int
    count: int


@dataclass
class BenchResult:
    board: str
    unit: str
    per_inference: int
    layers: list[LayerCost]
    sizes: SizeInfo
    model_flash: int
    weight_bytes: int
    arena_bytes: int
    stack_used: int
    macs: int


def model_flash_bytes(map_file: Path) -> int:
    """Flash taken by the model's own objects, from a GNU ld map file."""
    text = map_file.read_text()
    start = text.find("Linker script and memory map")
    lines = text[start:].splitlines()
    total = 0
    for i, line in enumerate(lines):
        if not line.startswith(" ."):
            continue  # input sections are indented by one space; output sections are not
        tokens = line.split()
        if len(tokens) == 1 and i + 1 < len(lines):
            tokens += lines[i + 1].split()  # a long name puts address and size on the next line
        if (len(tokens) == 4 and tokens[0].startswith(FLASH_INPUT_SECTIONS)
                and tokens[1].startswith("0x") and MODEL_OBJECTS.search(tokens[3])):
            total += int(tokens[2], 16)
    return total


def bench_project(project: Project) -> BenchResult:
    specs = [(tuple(i["shape"]), i["dtype"]) for i in project.report["inputs"]]
    samples = sample_inputs(specs, 1)
    plain = run(project, samples, "board")
    profiled = run(project, samples, "profile")
    elf = build(project, "board")
    layers = [
        LayerCost(i, name, project.report["layers"][i]["op"], project.report["layers"][i]["macs"],
                  count)
        for i, (name, count) in enumerate(profiled.layer_counts)
    ]
    stack = re.search(r"^tinyc: stack (\d+)$", plain.stdout, re.MULTILINE)
    return BenchResult(
        board=project.board.id,
        unit=plain.unit,
        per_inference=plain.counts[0],
        layers=layers,
        sizes=size(project, elf),
        model_flash=model_flash_bytes(elf.with_suffix(".map")),
        weight_bytes=project.report["weight_bytes"],
        arena_bytes=project.report["arena_bytes"],
        stack_used=int(stack.group(1)) if stack else 0,
        macs=project.report["macs"],
    )
