"""The validation examples (examples/width_sweep.py, eeg_validate.py, equivariant.py) at their
smallest settings, so they keep working: each runs its real pipeline (training, tinyc compile,
the deployed C over the held-out data) and the outcomes are checked against PyTorch, the int8
simulation and the board's limits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from bnn_models import accuracy, digits_data, torch_logits

from helpers import ROOT, tinyc
from tinyc.boards import load_board
from tinyc.firmware import FirmwareTooLarge, build, map_sections, open_project, size, size_info


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # pytest -n 2: threads would only contend
    yield
    torch.set_num_threads(threads)


def _digits_test() -> tuple[np.ndarray, np.ndarray]:
    _, _, x_test, y_test = digits_data()
    return x_test / 16, y_test


def test_width_sweep_rows_fit_and_match_pytorch(tmp_path) -> None:
    import width_sweep

    board = load_board("nucleo-f446re")
    rows = width_sweep.sweep(tmp_path, {"ScaleCNN": (4, 32)}, epochs=1, progress=False)
    assert [(r.family, r.width, r.build) for r in rows] == [
        ("ScaleCNN", 4, "float"), ("ScaleCNN", 4, "int8"),
        ("ScaleCNN", 32, "float"), ("ScaleCNN", 32, "int8")]
    x_test, y_test = _digits_test()
    for width in (4, 32):
        model = torch.load(tmp_path / f"scalecnn_w{width}.pt", weights_only=False)
        float_row = next(r for r in rows if (r.width, r.build) == (width, "float"))
        assert float_row.deployment.deployed["accuracy"] == accuracy(
            torch_logits(model, x_test), y_test)
    for r in rows:
        assert r.deployment.vs_reference["top1_agreement"] == 1.0, r.deployment.label
        assert r.params == sum(p.numel() for p in width_sweep.ScaleCNN(r.width).parameters())
    widest = [r for r in rows if r.width == 32]
    assert all(r.vs_widest == {"top1_agreement": 1.0, "error_jaccard": 1.0} for r in widest)
    # 140k float parameters (562 KB) cannot fit 512 KiB of flash; everything else fits
    assert [r.linked.fits for r in rows] == [True, True, False, True]
    assert rows[2].linked.flash > board.flash.size > rows[3].linked.flash

    lines = width_sweep.table_lines(rows)
    assert len(lines) == 4 + len(rows) + 2
    assert lines[4].split()[:4] == ["ScaleCNN", "4", "2,446", "float"]
    assert " no: flash " in lines[6] and " yes " in lines[7]
    assert lines[-2].endswith("simulation): 4 of 4 builds")
    _check_firmware_sizes(tmp_path)


def _check_firmware_sizes(sweep_dir: Path) -> None:
    """`build` of an image larger than the flash reports the sizes from the linker map, which
    equal arm-none-eabi-size's for an image that fits."""
    project = open_project(sweep_dir / "scalecnn_w32_float")
    with pytest.raises(FirmwareTooLarge) as caught:
        build(project, "serial")
    error = caught.value
    assert error.sizes.flash_used == project.board.flash.size + error.overflow["FLASH"]
    assert str(error) == (
        f"{project.outdir}: the serial benchmark firmware does not fit nucleo-f446re: it "
        f"needs flash "
        f"{error.sizes.flash_used:,} of 524,288 B, RAM {error.sizes.ram_used:,} of 131,072 B "
        f"(the linker: region FLASH overflowed by {error.overflow['FLASH']:,} B)")
    for name in ("scalecnn_w4_float", "scalecnn_w32_int8"):
        project = open_project(sweep_dir / name)
        elf = build(project, "serial")
        assert size_info(project, map_sections(elf.with_suffix(".map"))) == size(project, elf)


def test_eeg_validate_compares_binary_float_int8(tmp_path) -> None:
    import eeg_validate

    args = eeg_validate.prepare(tmp_path, "6k", samples=100, epochs=1, on_target=0)
    path = os.pathsep.join([str(ROOT / "compiler"), str(ROOT / "examples")])
    result = tinyc(*args, "--json", env={"PYTHONPATH": path})
    assert result.code == 0, result.stderr[-2000:]
    report = result.json()
    deployments = report["deployments"]
    assert report["samples"] == 100 and report["classes"] == 3
    assert [d["label"] for d in deployments] == [
        "eeg_binary binary", "eeg_float float", "eeg_float int8"]
    assert [d["reference_name"] for d in deployments] == [
        "torch", "torch", "tinyc int8 simulation"]
    for d in deployments:
        assert d["top1_agreement"] == 1.0 and d["error_jaccard"] == 1.0, d["label"]
        assert d["deployed"]["accuracy"] == d["reference"]["accuracy"]
    x, y = np.load(tmp_path / "x.npy"), np.load(tmp_path / "y.npy")
    model = torch.load(tmp_path / "eeg_float.pt", weights_only=False)
    assert deployments[1]["deployed"]["accuracy"] == accuracy(torch_logits(model, x), y)
    assert deployments[1]["vs_first"] is not None and deployments[0]["vs_first"] is None
    html = (tmp_path / "report.html").read_text()
    assert "eeg_binary binary" in html and "<svg" in html


def test_equivariant_invariance_survives_deployment(tmp_path) -> None:
    import equivariant

    result = equivariant.run(tmp_path, epochs=1, keep=0.5, fields=(2, 2, 4, 4), finetune_epochs=1)
    assert result.export_error < 1e-5
    assert result.pruned_params < result.plain_params
    for by_rotation in result.torch_accuracy.values():
        assert len(set(by_rotation.values())) == 1  # PyTorch: the same accuracy at every turn
    pruned = torch.load(tmp_path / "float.pt", weights_only=False)
    convs = [m for m in pruned if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 4, 8, 8]  # half of (2, 2, 4, 4) fields x 4
    assert pruned[-1].in_features == 2

    builds = {b.name: b for b in result.builds}
    assert list(builds) == ["float", "hybrid int8", "static int8"]
    for deployed in builds.values():
        assert deployed.error is None, deployed.error
        for degrees, deployment in deployed.by_rotation.items():
            assert deployment.vs_reference["top1_agreement"] == 1.0, (deployed.name, degrees)
        if deployed.name != "hybrid int8":  # its run-time input scale moves with float rounding
            assert equivariant.invariance(deployed)[0] == {90: 1.0, 180: 1.0, 270: 1.0}
    for degrees, deployment in builds["float"].by_rotation.items():
        assert deployment.deployed["accuracy"] == result.torch_accuracy["pruned+tuned"][degrees]
    assert equivariant.invariance(builds["static int8"])[1] == 0  # bit-identical at every turn
    assert equivariant.invariance(builds["float"])[1] < 1e-4
    lines = equivariant.table_lines(result, 0.5)
    assert [ln.split()[1] for ln in lines[-6:-3]] == ["float", "hybrid", "static"]
