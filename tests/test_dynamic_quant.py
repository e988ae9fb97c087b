"""PyTorch's dynamic quantization (`quantize_dynamic`: int8 Linear weights, inputs quantized at
run time) compiled to tc_fully_connected_hybrid with fbgemm's arithmetic (tc_hybrid.h).

The C output must equal PyTorch's own output bit for bit on the host (x86 fbgemm engine) over
inputs that exercise every branch of the run-time quantization: an all-zero input (scale 0.1),
ranges small enough to hit fbgemm's 6.1e-5 scale floor, one-signed inputs (zero point at an end),
large values; per-tensor and per-channel weights, the fused LinearReLU, a 3-D input, and the
pre-reduce_range module version (inputs in [0, 255]).  One model also runs on QEMU via verify.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import tinyc
from test_cli_errors import assert_user_error
from tinyc.boards import load_board
from tinyc.project import compile_model, write_project
from tinyc.validate import build_library, run_host


def _quantize(model: nn.Module, per_channel: bool = False) -> nn.Module:
    from torch.ao.nn.intrinsic import LinearReLU
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model.eval(), {nn.Linear: qconfig, LinearReLU: qconfig},
                                dtype=torch.qint8)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 10))


def _fused() -> nn.Module:
    from torch.ao.quantization import fuse_modules

    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10)).eval()
    return fuse_modules(model, [["1", "2"]])


class _Tokens(nn.Module):
    """A Linear over the last axis of a [1, 4, 16] input (fbgemm quantizes all rows at once)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).reshape(1, -1)


def _old_version(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if hasattr(m, "_packed_params"):
            m.version = 3  # saved before reduce_range: inputs in [0, 255]
    return model


def _inputs(shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    normal = rng.standard_normal((12, *shape[1:])).astype(np.float32)
    rows = [normal, np.zeros((1, *shape[1:]), np.float32), np.abs(normal[:2]),
            -np.abs(normal[:2]), normal[:2] * 1e-7, np.abs(normal[:2]) * 3e-6,
            -np.abs(normal[:1]) * 1e-6, normal[:2] * 1e3, normal[:2] + 5.0]
    return np.concatenate(rows).astype(np.float32)


CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "per_tensor": (lambda: _quantize(_mlp()), (1, 1, 8, 8)),
    "per_channel": (lambda: _quantize(_mlp(), per_channel=True), (1, 1, 8, 8)),
    "linear_relu": (lambda: _quantize(_fused()), (1, 1, 8, 8)),
    "rows": (lambda: _quantize(_Tokens()), (1, 4, 16)),
    "version3": (lambda: _old_version(_quantize(_mlp())), (1, 1, 8, 8)),
}


@pytest.mark.parametrize("case", CASES)
def test_c_equals_pytorch_bit_for_bit(case: str, tmp_path: Path) -> None:
    assert torch.backends.quantized.engine in ("x86", "fbgemm")
    torch.manual_seed(1)
    build, shape = CASES[case]
    model = build()
    path = tmp_path / "dyn.pt"
    torch.save(model, path)
    compiled = compile_model(path, load_board("qemu-m4"), input_shape="x".join(map(str, shape)))
    kernels = {layer["function"] for layer in compiled.report["layers"]}
    assert "tc_fully_connected_hybrid" in kernels
    write_project(compiled, tmp_path / "out")
    x = _inputs(shape)
    with tempfile.TemporaryDirectory() as tmp:
        library = build_library(tmp_path / "out", compiled.report, Path(tmp))
        got = run_host(library, x, workers=1, progress=False).outputs
    with torch.no_grad():
        want = np.stack([model(torch.from_numpy(v[None])).numpy().reshape(-1) for v in x])
    np.testing.assert_array_equal(got, want)


def test_verify_on_qemu(tmp_path: Path) -> None:
    torch.manual_seed(2)
    path = tmp_path / "dyn.pt"
    torch.save(_quantize(_mlp()), path)
    result = tinyc("verify", path, "--input-shape", "1x1x8x8", "--samples", "5", "--json")
    assert result.code == 0, result.stderr + result.stdout
    report = result.json()
    assert report["verdict"] == "PASS"
    assert {t["target"] for t in report["targets"]} == {"host", "qemu-m4"}
    for target in report["targets"]:
        assert all(out["max_abs_error"] == 0.0 for out in target["outputs"])


def test_dynamic_lstm_is_refused(tmp_path: Path) -> None:
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = quantize_dynamic(nn.Sequential(nn.LSTM(8, 8)).eval(), {nn.LSTM},
                                 dtype=torch.qint8)
    path = tmp_path / "lstm.pt"
    torch.save(model, path)
    assert_user_error(tinyc("compile", path, "--input-shape", "4x1x8", "-o", tmp_path / "o"),
                      "dynamic quantized LSTM '0' is not supported; tinyc imports "
                      "quantize_dynamic's Linear layers only")


def test_float16_dynamic_linear_is_refused(tmp_path: Path) -> None:
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = quantize_dynamic(_mlp().eval(), {nn.Linear}, dtype=torch.float16)
    path = tmp_path / "fp16.pt"
    torch.save(model, path)
    assert_user_error(tinyc("compile", path, "--input-shape", "1x1x8x8", "-o", tmp_path / "o"),
                      "dynamic quantized Linear '1' has torch.float16 weights; tinyc imports "
                      "quantize_dynamic(..., dtype=torch.qint8)")
