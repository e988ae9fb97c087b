"""Width sweep: ScaleCNN and MobileNetV2 at five widths each on scikit-learn's digits, compiled
for the Nucleo-F446RE as float and as int8, and validated as deployed.

    .venv/bin/python examples/width_sweep.py [OUTDIR] [--epochs 6]
        [--scalecnn 12,16,24,32,48] [--mobilenetv2 8,12,16,24,32] [--builds float,int8]
        [--workers N]               (default out/width_sweep; about 3 minutes on 2 cores)

Each width (about 20k to 300k parameters) is trained briefly on the 1,437 training digits
(examples/bnn_models.py's split and loop), then deployed twice for `nucleo-f446re`
(Cortex-M4F at 180 MHz, 512 KiB flash, 128 KiB RAM):
  float  the model as trained: the M4F's single-precision FPU runs it, and its C computes
         PyTorch's logits to within float rounding (the same accuracy);
  int8   `tinyc compile --quantize int8` (calibrated on 64 training images): weights take a
         quarter of the flash and the kernels use the M4's SIMD multiply-accumulate.
On this board int8 is what a user would ship: float weights over ~125k parameters do not fit its
flash at all, and int8 runs faster; the float build shows what quantization costs, measured on
the deployed C rather than assumed.  For every build the table gives the linked size of the
serial benchmark firmware (`tinyc build`'s flash figure: model, kernels and board support; for an
image too large, the size the linker needed), the arena, whether flash and RAM fit, and what
`tinyc validate` measures on the deployed C over the 360 held-out images: accuracy, expected
calibration error, and the top-1 agreement and error-set Jaccard overlap with the widest model of
the same family and build, itself as deployed.  The widths are trained and validated side by
side in --workers processes (default: one per core).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from bnn_models import digits_data, parameters, train
from torch import nn
from tqdm import tqdm

from models import MobileNetV2Tiny
from tinyc import validate as v
from tinyc.boards import Board, load_board
from tinyc.firmware import FirmwareTooLarge, build, open_project, size
from tinyc.project import Compiled, Quantization, compile_model, write_project

BOARD = "nucleo-f446re"
INPUT_SHAPE = "1x1x8x8"
CLASSES = 10
CALIBRATION_SAMPLES = 64
BUILDS = ("float", "int8")


class ScaleCNN(nn.Module):
    """A plain ConvNet for 8x8 images: two stages of two 3x3 conv-BN-ReLU and a 2x2 max pool,
    a last 3x3 conv-BN-ReLU at 4 * width channels, global average pool, linear classifier."""

    def __init__(self, width: int, classes: int = CLASSES) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *self._conv(1, w), *self._conv(w, w), nn.MaxPool2d(2),
            *self._conv(w, 2 * w), *self._conv(2 * w, 2 * w), nn.MaxPool2d(2),
            *self._conv(2 * w, 4 * w))
        self.classifier = nn.Linear(4 * w, classes)

    @staticmethod
    def _conv(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def mobilenetv2(width: int) -> nn.Module:
    """examples/models.py's MobileNetV2 on one-channel 8x8 images (stride-1 stem)."""
    return MobileNetV2Tiny(CLASSES, width, in_channels=1, stem_stride=1)


FAMILIES = {"ScaleCNN": ScaleCNN, "MobileNetV2": mobilenetv2}
DEFAULT_WIDTHS = {"ScaleCNN": (12, 16, 24, 32, 48), "MobileNetV2": (8, 12, 16, 24, 32)}


@dataclass
class Digits:
    """The training split (for training and calibration) and the held-out split as tinyc
    validates it; pixel values scaled from 0..16 to 0..1."""

    x_train: np.ndarray
    y_train: np.ndarray
    test: v.Dataset

    @classmethod
    def load(cls) -> Digits:
        x_train, y_train, x_test, y_test = digits_data()
        return cls(x_train / 16, y_train, v.Dataset(x_test[:, None] / 16, y_test, CLASSES))


@dataclass
class Linked:
    """The serial benchmark firmware as linked for the board (or as large as the linker found it
    when it does not fit)."""

    flash: int
    ram: int
    board: Board

    @property
    def fits(self) -> bool:
        return self.flash <= self.board.flash.size and self.ram <= self.board.ram.size


@dataclass
class Row:
    family: str
    width: int
    build: str
    params: int
    linked: Linked
    deployment: v.Deployment
    vs_widest: dict[str, float] | None = None


def link(compiled: Compiled, outdir: Path) -> Linked:
    """Write the project and link its serial benchmark firmware: `tinyc build`'s flash/RAM."""
    write_project(compiled, outdir)
    project = open_project(outdir)
    try:
        info = size(project, build(project, "serial"))
    except FirmwareTooLarge as exc:
        info = exc.sizes
    return Linked(info.flash_used, info.ram_used, project.board)


def deploy(model_path: Path, build_name: str, digits: Digits, calibration: Path,
           outdir: Path, label: str) -> tuple[v.Deployment, Linked]:
    quantize = Quantization(calibration) if build_name == "int8" else None
    compiled = compile_model(model_path, load_board(BOARD), input_shape=INPUT_SHAPE,
                             quantize=quantize, check_fit=False)
    # one process: the sweep itself spreads the widths over the cores
    deployment = v.validate_compiled(compiled, digits.test, label, progress=False, workers=1)
    return deployment, link(compiled, outdir)


@dataclass
class Job:
    """One width of one family: train it, then deploy and validate each build."""

    family: str
    width: int
    builds: tuple[str, ...]
    epochs: int
    outdir: Path
    calibration: Path


def run_job(job: Job) -> list[Row]:
    digits = Digits.load()
    name = f"{job.family.lower()}_w{job.width}"
    torch.manual_seed(0)
    model = train(FAMILIES[job.family](job.width), digits.x_train, digits.y_train, job.epochs,
                  lr=3e-3)
    path = job.outdir / f"{name}.pt"
    torch.save(model, str(path))
    rows = []
    for build_name in job.builds:
        deployment, linked = deploy(path, build_name, digits, job.calibration,
                                    job.outdir / f"{name}_{build_name}",
                                    f"{job.family} w={job.width} {build_name}")
        rows.append(Row(job.family, job.width, build_name, parameters(model), linked,
                        deployment))
    return rows


def _run_in_worker(job: Job) -> list[Row]:
    torch.set_num_threads(1)  # one worker per core
    return run_job(job)


def run_jobs(jobs: list[Job], workers: int, progress: bool) -> list[Row]:
    """The jobs over `workers` processes (widest first: they take longest), or in this process
    when workers is 1; rows in the order of `jobs`."""
    bar = tqdm(total=len(jobs), desc="train, compile, validate", unit="width",
               disable=not progress, leave=False)
    results: dict[int, list[Row]] = {}
    if workers <= 1:
        for i, job in enumerate(jobs):
            results[i] = run_job(job)
            bar.update()
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(workers, multiprocessing.get_context(method)) as pool:
            order = sorted(range(len(jobs)), key=lambda i: -jobs[i].width)
            futures = {pool.submit(_run_in_worker, jobs[i]): i for i in order}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    bar.close()
    return [row for i in range(len(jobs)) for row in results[i]]


def sweep(outdir: Path, widths: dict[str, tuple[int, ...]], builds: tuple[str, ...] = BUILDS,
          epochs: int = 6, progress: bool = True, workers: int = 1) -> list[Row]:
    """Train, compile, validate and link every (family, width, build); fill in each row's
    agreement with the widest model of its family and build."""
    outdir.mkdir(parents=True, exist_ok=True)
    calibration = outdir / "calibration.npy"
    np.save(calibration, Digits.load().x_train[:CALIBRATION_SAMPLES])
    jobs = [Job(family, width, builds, epochs, outdir, calibration)
            for family, family_widths in widths.items() for width in family_widths]
    rows = run_jobs(jobs, workers, progress)
    for row in rows:
        widest = max((r for r in rows if (r.family, r.build) == (row.family, row.build)),
                     key=lambda r: r.width)
        row.vs_widest = v.agreement(row.deployment.deployed, widest.deployment.deployed)
    return rows


def table_lines(rows: list[Row]) -> list[str]:
    """The sweep as a terminal table, with the checks and the validate throughput below it."""
    board = rows[0].linked.board
    test = rows[0].deployment.deployed
    samples = sum(test["class_counts"])
    lines = [
        f"{samples} held-out digits; {board.id}: {board.flash.size // 1024} KiB flash, "
        f"{board.ram.size // 1024} KiB RAM; flash, RAM: the linked serial firmware",
        "acc, ECE: the C as deployed; agree, err J: top-1 agreement and error-set Jaccard",
        "with the widest model of the same family and build, as deployed",
        f"{'model':<11} {'width':>5} {'params':>8} {'build':<5} {'flash B':>10} {'arena B':>8} "
        f"{'RAM B':>8} {'fits?':<9} {'acc':>6} {'ECE':>6} {'agree':>6} {'err J':>5}",
    ]
    for r in rows:
        d, linked = r.deployment, r.linked
        over = [what for what, used, limit in (("flash", linked.flash, board.flash.size),
                                               ("RAM", linked.ram, board.ram.size))
                if used > limit]
        fits = "yes" if linked.fits else "no: " + "+".join(over)
        lines.append(
            f"{r.family:<11} {r.width:>5} {r.params:>8,} {r.build:<5} {linked.flash:>10,} "
            f"{d.report['arena_bytes']:>8,} {linked.ram:>8,} {fits:<9} "
            f"{d.deployed['accuracy']:>6.1%} {d.deployed['ece']:>6.3f} "
            f"{r.vs_widest['top1_agreement']:>6.1%} {r.vs_widest['error_jaccard']:>5.2f}")
    same = [r for r in rows if r.deployment.vs_reference["top1_agreement"] == 1.0]
    lines.append(f"top-1 of the C == its Python reference's (float: PyTorch; int8: tinyc's int8 "
                 f"simulation): {len(same)} of {len(rows)} builds")
    seconds = sum(r.deployment.host.seconds for r in rows)
    count = samples * len(rows)
    rates = [r.deployment.host.throughput for r in rows]
    lines.append(f"validate: {count:,} images in {seconds:.1f} s, {count / seconds:,.0f} samples/s "
                 f"({min(rates):,.0f} to {max(rates):,.0f} per build; host build, 1 process)")
    return lines


def _widths(text: str) -> tuple[int, ...]:
    return tuple(int(w) for w in text.split(",") if w)


def _builds(text: str) -> tuple[str, ...]:
    builds = tuple(text.split(","))
    if not set(builds) <= set(BUILDS):
        raise argparse.ArgumentTypeError(f"builds are a comma-separated subset of "
                                         f"{','.join(BUILDS)}, not {text}")
    return builds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="out/width_sweep", type=Path)
    parser.add_argument("--epochs", type=int, default=6)
    for family, widths in DEFAULT_WIDTHS.items():
        parser.add_argument(f"--{family.lower()}", type=_widths,
                            default=widths, help=f"widths (default {widths})")
    parser.add_argument("--builds", type=_builds, default=BUILDS)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes training and validating widths side by side")
    args = parser.parse_args()
    widths = {f: getattr(args, f.lower()) for f in FAMILIES if getattr(args, f.lower())}
    rows = sweep(args.outdir, widths, args.builds, args.epochs, workers=args.workers)
    print("\n".join(table_lines(rows)))


if __name__ == "__main__":
    main()
