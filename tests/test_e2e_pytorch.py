"""End to end: PyTorch models compiled, built, run natively and on QEMU, verified against torch.

Each model goes through the real command line (`tinyc verify --json`) as a user runs it, in
each of the three ways a PyTorch model can be saved.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import models
from helpers import ROOT, save_torchscript, tinyc

SHAPES = {"small_cnn": "1x3x32x32", "mobilenetv2_tiny": "1x3x32x32", "eeg3dcnn": "1x1x8x9x16"}


def _check_verdict(result, samples: int, board_id: str = "qemu-m4") -> dict:
    assert result.code == 0, result.stderr + result.stdout
    report = result.json()
    assert report["verdict"] == "PASS"
    assert report["reference"] == "torch"
    targets = {t["target"]: t for t in report["targets"]}
    assert set(targets) == {"host", board_id}
    for t in targets.values():
        assert t["passed"]
        for out in t["outputs"]:
            assert out["mismatches"] == 0
            assert out["max_abs_error"] <= 1e-4
    board = targets[board_id]
    assert board["unit"] == "instructions"
    assert len(board["counts"]) == samples
    # Every sample takes the same instruction path; the SysTick counter resolves one tick of
    # 40 instructions.
    assert max(board["counts"]) - min(board["counts"]) <= 40
    return report


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_verify_torchscript(name: str, tmp_path: Path) -> None:
    model, shape = models.build(name)
    path = save_torchscript(model, shape, tmp_path / f"{name}.pt")
    result = tinyc("verify", path, "--input-shape", SHAPES[name], "--samples", "3", "--json")
    _check_verdict(result, 3)


@pytest.mark.parametrize("name", ["mobilenetv2_tiny", "eeg3dcnn"])
def test_verify_on_the_m7_with_fused_multiply_adds(name: str, tmp_path: Path) -> None:
    """The Cortex-M7 build fuses the float kernels' multiply-adds (the host build does not):
    every specialised float convolution of these models still passes against torch."""
    model, shape = models.build(name)
    path = save_torchscript(model, shape, tmp_path / f"{name}.pt")
    result = tinyc("verify", path, "--board", "qemu-m7", "--input-shape", SHAPES[name],
                   "--samples", "2", "--json")
    _check_verdict(result, 2, "qemu-m7")


def test_verify_exported_program(tmp_path: Path) -> None:
    model, shape = models.build("mobilenetv2_tiny")
    program = torch.export.export(model, (torch.zeros(shape),))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    # An ExportedProgram records its input shape: no --input-shape needed.
    _check_verdict(tinyc("verify", tmp_path / "m.pt2", "--samples", "2", "--json"), 2)


def test_verify_pickled_module(tmp_path: Path) -> None:
    model, _ = models.build("eeg3dcnn")
    torch.save(model, str(tmp_path / "m.pt"))
    result = tinyc("verify", tmp_path / "m.pt", "--input-shape", SHAPES["eeg3dcnn"],
                   "--samples", "2", "--json",
                   env={"PYTHONPATH": f"{ROOT / 'compiler'}:{ROOT / 'examples'}"})
    _check_verdict(result, 2)


class _ShapeArithmetic(torch.nn.Module):
    """A shape read in the model: the exporter's Shape -> Gather (a scalar index) ->
    Unsqueeze -> Concat, after a Pad."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.pad(x, [0, 1])
        return x.reshape(x.shape[0], -1)


def test_verify_scalar_constants(tmp_path: Path) -> None:
    """A 0-d ONNX constant stays 0-d (np.ascontiguousarray made it 1-D, and this model a
    traceback in the frontend)."""
    path = save_torchscript(_ShapeArithmetic(), (1, 2, 8), tmp_path / "m.pt")
    _check_verdict(tinyc("verify", path, "--input-shape", "1x2x8", "--samples", "2", "--json"),
                   2)


class _Normalized(torch.nn.Module):
    """InstanceNorm2d (affine) over each channel's plane, LayerNorm over the last axis and one
    without a bias over the last two (ONNX InstanceNormalization, LayerNormalization)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.instance = torch.nn.InstanceNorm2d(8, affine=True)
        self.layer = torch.nn.LayerNorm(16)
        self.plane = torch.nn.LayerNorm([12, 16], bias=False)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.plane(self.layer(self.instance(self.conv(x))))


def test_verify_normalization_layers(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = save_torchscript(_Normalized().eval(), (1, 3, 12, 16), tmp_path / "m.pt")
    _check_verdict(tinyc("verify", path, "--input-shape", "1x3x12x16", "--samples", "2",
                         "--json"), 2)


class _Upsampled(torch.nn.Module):
    """A stride-2 convolution, then nearest-neighbour upsampling back (F.interpolate by 2 and by
    (1, 3): ONNX Resize) added to the input: an FPN / U-Net style skip."""

    def __init__(self) -> None:
        super().__init__()
        self.down = torch.nn.Conv2d(3, 3, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.interpolate(torch.relu(self.down(x)), scale_factor=2)
        return x + y + torch.nn.functional.interpolate(x[:, :, :, ::3], scale_factor=(1, 3))


def test_verify_nearest_upsampling(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = save_torchscript(_Upsampled().eval(), (1, 3, 8, 12), tmp_path / "m.pt")
    _check_verdict(tinyc("verify", path, "--input-shape", "1x3x8x12", "--samples", "2",
                         "--json"), 2)


def test_compile_writes_project(tmp_path: Path) -> None:
    model, shape = models.build("small_cnn")
    path = save_torchscript(model, shape, tmp_path / "m.pt")
    out = tmp_path / "project"
    result = tinyc("compile", path, "--input-shape", "1x3x32x32", "-o", out, "--name", "net")
    assert result.code == 0, result.stderr
    for name in ("model.h", "model.c", "weights.c", "weights.h", "main.c", "Makefile",
                 "platformio.ini", "report.json", "runtime/tc_conv_f32.c", "board/mps2.ld"):
        assert (out / name).is_file(), name
    source = (out / "model.c").read_text()
    assert "void net_run(uint8_t *arena)" in source
    # Weights are const (flash); the only mutable memory is the caller's arena.
    weights = (out / "weights.c").read_text()
    assert "const float " in weights and "static float" not in source
    assert "summary" not in result.stderr
    assert "arena" in result.stdout and "MACs" in result.stdout
    built = tinyc("build", out)
    assert built.code == 0, built.stderr
    assert "flash" in built.stdout and "RAM" in built.stdout


def test_generated_c_is_warning_free_under_pedantic_flags(tmp_path: Path) -> None:
    model, shape = models.build("mobilenetv2_tiny")
    path = save_torchscript(model, shape, tmp_path / "m.pt")
    out = tmp_path / "p"
    assert tinyc("compile", path, "--input-shape", "1x3x32x32", "-o", out).code == 0
    import subprocess

    for source in ("model.c", "weights.c"):
        proc = subprocess.run(
            ["arm-none-eabi-gcc", "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16",
             "-mfloat-abi=hard", "-O2", "-Wall", "-Wextra", "-Werror", "-Wpedantic",
             "-Wdouble-promotion", "-Iruntime", "-c", source, "-o", "/dev/null"],
            cwd=out, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
