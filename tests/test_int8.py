"""int8 from PyTorch and ONNX: the three ways to quantize a PyTorch model, onnxruntime's QDQ and
QOperator formats, and the refusals.  Each model is compiled and verified (host and QEMU) through
the real command line.

References: a quantized framework model computes with its own integer arithmetic (torch's
fbgemm/qnnpack, onnxruntime's float requantization), so its outputs may differ from TFLite's
fixed-point kernels by one quantization step: verify allows one step and counts them.  tinyc's
own post-training quantization is verified against its exact simulation: no difference at all.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import models
from helpers import tinyc
from test_cli_errors import assert_user_error

SHAPE = (1, 3, 32, 32)


def _calibration(count: int = 16, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(count)]


def _passed(result, lsb: int, exact: bool = False) -> dict:
    assert result.code == 0, result.stderr + result.stdout
    report = result.json()
    assert report["verdict"] == "PASS"
    assert report["tolerance"]["lsb"] == lsb
    assert {t["target"] for t in report["targets"]} == {"host", "qemu-m4"}
    for target in report["targets"]:
        for out in target["outputs"]:
            assert out["mismatches"] == 0
            if exact:
                assert out["differing"] == 0 and out["max_abs_error"] == 0.0
    return report


def test_tinyc_post_training_quantization(tmp_path: Path) -> None:
    model, shape = models.build("mobilenetv2_tiny")
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(shape)), str(path))
    np.save(tmp_path / "calib.npy", np.stack(_calibration(24)))
    labels = np.array([int(np.argmax(model(torch.from_numpy(x)).detach().numpy()))
                       for x in _calibration(24)])
    np.save(tmp_path / "labels.npy", labels)
    args = ["--input-shape", "1x3x32x32", "--quantize", "int8", "--calibration",
            tmp_path / "calib.npy"]
    report = _passed(tinyc("verify", path, *args, "--samples", "4", "--json"), lsb=0,
                     exact=True)
    assert report["reference"] == "tinyc int8 simulation"
    q = report["quantization"]
    assert q["calibration_samples"] == 24 and q["float_fallback"] == []
    assert q["top1_agreement"] >= 0.9
    compiled = tinyc("compile", path, *args, "--labels", tmp_path / "labels.npy",
                     "-o", tmp_path / "out")
    assert compiled.code == 0, compiled.stderr
    # The labels are the float model's own predictions: float accuracy is 100 %.
    assert "accuracy float 100.0%, int8" in compiled.stdout
    float_weights = tinyc("compile", path, "--input-shape", "1x3x32x32", "-o", tmp_path / "f",
                          "--json").json()["weight_bytes"]
    int8_weights = (tmp_path / "out" / "report.json").read_text()
    assert f'"weight_bytes": {float_weights}' not in int8_weights


def test_post_training_quantization_3d(tmp_path: Path) -> None:
    """The EEG-style 3-D CNN: its convolutions run as the fast GEMM kernel (the 1x1x1 ones over
    the depth slices folded into the batch, quant/fast.fold_depth; the 3x3x3 stem from its
    padded frame), the 3x3x3 depthwise ones as the planar kernel over a padded volume; all
    exact."""
    model, shape = models.build("eeg3dcnn")
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(shape)), str(path))
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", rng.standard_normal((16, *shape[1:])).astype(np.float32))
    args = ["--input-shape", "x".join(map(str, shape)), "--quantize", "int8", "--calibration",
            tmp_path / "calib.npy"]
    report = _passed(tinyc("verify", path, *args, "--samples", "3", "--json"), lsb=0,
                     exact=True)
    assert report["reference"] == "tinyc int8 simulation"
    compiled = tinyc("compile", path, *args, "-o", tmp_path / "out", "--json").json()
    functions = [layer["function"] for layer in compiled["layers"]]
    assert {"tc_conv_gemm_s8", "tc_depthwise_conv_planar_s8"} <= set(functions)
    assert not {"tc_conv_s8", "tc_depthwise_conv_s8"} & set(functions)


class _PoolDifference(torch.nn.Module):
    """Average pooling, and a difference about 1e-7 of its operands: its calibrated range is
    far too narrow for TFLite's int8 SUB rescaling, and ADD takes it with a wide input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.pool = torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.head = torch.nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(torch.relu(self.conv(x)))
        return self.head(y + (y - y * 0.9999999))


def test_post_training_quantization_of_average_pooling_and_an_empty_range(tmp_path: Path
                                                                        ) -> None:
    """TFLite's int8 average pooling keeps its input's quantization, so the quantizer gives
    AveragePool that of its input; the tiny difference's output scale is widened to what SUB
    can rescale to.  Both compiled and exact (they were refused, and a traceback, before)."""
    torch.manual_seed(0)
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(_PoolDifference().eval(), torch.zeros(SHAPE)), str(path))
    np.save(tmp_path / "calib.npy", np.stack(_calibration()))
    _passed(tinyc("verify", path, "--input-shape", "1x3x32x32", "--quantize", "int8",
                  "--calibration", tmp_path / "calib.npy", "--samples", "3", "--json"),
            lsb=0, exact=True)


class _ZeroSoftmax(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax((x - x) * 2.0, dim=1) + x


def test_post_training_quantization_of_a_tensor_that_is_always_zero(tmp_path: Path) -> None:
    """(x - x) * 2 is zero on every calibration sample: any scale holds it, and the quantizer
    takes [0, 1] rather than a tiny range that TFLite's softmax input rescaling cannot take (a
    traceback before)."""
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(_ZeroSoftmax(), torch.zeros(SHAPE)), str(path))
    np.save(tmp_path / "calib.npy", np.stack(_calibration(8)))
    _passed(tinyc("verify", path, "--input-shape", "1x3x32x32", "--quantize", "int8",
                  "--calibration", tmp_path / "calib.npy", "--samples", "2", "--json"),
            lsb=0, exact=True)


class _PerStepLinear(torch.nn.Module):
    """Linear layers applied to every step of a [1, T, C] sequence: MatMul with a 3-D input."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 24)
        self.fc2 = torch.nn.Linear(24, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def test_post_training_quantization_of_linear_layers_on_a_sequence(tmp_path: Path) -> None:
    """A [1, 10, 16] input through Linear layers: FULLY_CONNECTED over its 10 rows (was
    refused: 'int8 matrix products need a 2-D input'); exact on host and qemu-m4."""
    torch.manual_seed(0)
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(_PerStepLinear().eval(), torch.zeros(1, 10, 16)), str(path))
    rng = np.random.default_rng(1)
    np.save(tmp_path / "calib.npy", rng.standard_normal((8, 1, 10, 16)).astype(np.float32))
    _passed(tinyc("verify", path, "--input-shape", "1x10x16", "--quantize", "int8",
                  "--calibration", tmp_path / "calib.npy", "--samples", "3", "--json"),
            lsb=0, exact=True)


class _Upsample(torch.nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, stride=2, padding=1)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.nn.functional.interpolate(self.conv(x), scale_factor=2, mode=self.mode)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_post_training_quantization_of_upsampling(tmp_path: Path, mode: str) -> None:
    """Nearest upsampling by 2 moves int8 codes (Reshape -> Expand -> Reshape, the
    quantization kept): exact.  Bilinear is refused in one line."""
    torch.manual_seed(0)
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(_Upsample(mode).eval(), torch.zeros(SHAPE)), str(path))
    np.save(tmp_path / "calib.npy", np.stack(_calibration(8)))
    args = ["--input-shape", "1x3x32x32", "--quantize", "int8", "--calibration",
            tmp_path / "calib.npy"]
    if mode == "bilinear":
        assert_user_error(tinyc("compile", path, *args, "-o", tmp_path / "o"),
                          "Resize node", "mode 'linear'", "nearest neighbour")
        return
    _passed(tinyc("verify", path, *args, "--samples", "2", "--json"), lsb=0, exact=True)


class _FlatSoftmax(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(0.01 * x, dim=1)


@pytest.mark.parametrize(("depth", "refused"), [(600, False), (5000, True)])
def test_post_training_quantization_of_a_long_softmax(tmp_path: Path, depth: int,
                                                      refused: bool) -> None:
    """600 values close together: the int8 softmax's final shift is 32, taken exactly on the
    host and on the board alike (TFLM's shift is undefined there).  Over 4095 values its sum
    of exps overflows: refused."""
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(_FlatSoftmax(), torch.zeros(1, depth)), str(path))
    rng = np.random.default_rng(depth)
    np.save(tmp_path / "calib.npy", rng.standard_normal((8, 1, depth)).astype(np.float32))
    args = ["--input-shape", f"1x{depth}", "--quantize", "int8", "--calibration",
            tmp_path / "calib.npy"]
    if refused:
        assert_user_error(tinyc("compile", path, *args, "-o", tmp_path / "o"),
                          "int8 softmax over 5000 values", "beyond 4095")
        return
    _passed(tinyc("verify", path, *args, "--samples", "3", "--json"), lsb=0, exact=True)


def test_torch_ao_eager_quantization(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.ao.quantization import (
        DeQuantStub,
        QuantStub,
        convert,
        fuse_modules,
        get_default_qconfig,
        prepare,
    )

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.quant, self.dequant = QuantStub(), DeQuantStub()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.relu = torch.nn.ReLU()
            self.fc = torch.nn.Linear(8 * 32 * 32, 10)

        def forward(self, x):
            x = self.relu(self.conv(self.quant(x)))
            return self.dequant(self.fc(x.reshape(1, -1)))

    torch.manual_seed(0)
    net = Net().eval()
    # qnnpack for this test only: the engine is process-wide, and test_dynamic_quant.py's
    # references are fbgemm's
    monkeypatch.setattr(torch.backends.quantized, "engine", "qnnpack")
    net.qconfig = get_default_qconfig("qnnpack")  # uint8 activations, int8 weights
    fuse_modules(net, [["conv", "relu"]], inplace=True)
    prepared = prepare(net)
    for x in _calibration():
        prepared(torch.from_numpy(x))
    quantized = convert(prepared)
    path = tmp_path / "eager.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(quantized, torch.zeros(SHAPE)), str(path))
    _passed(tinyc("verify", path, "--input-shape", "1x3x32x32", "--samples", "4", "--json"),
            lsb=1)


def test_torchao_pt2e_quantization(tmp_path: Path) -> None:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.testing.pt2e._xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    model, shape = models.build("small_cnn")
    example = (torch.zeros(shape),)
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(
        is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(model, example).module(), quantizer)
    for x in _calibration():
        prepared(torch.from_numpy(x))
    program = torch.export.export(convert_pt2e(prepared), example)
    path = tmp_path / "pt2e.pt2"
    torch.export.save(program, str(path))
    # XNNPACK's quantizer leaves the global average pool float: refused unless allowed.
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o"),
                      "ReduceMean node", "would run in float32 inside a quantized model",
                      "--allow-float-fallback")
    report = _passed(tinyc("verify", path, "--allow-float-fallback", "--samples", "4",
                           "--json"), lsb=1)
    assert report["float_fallback"] == ["ReduceMean 'node_mean'"]


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_onnxruntime_static_quantization(fmt: str, tmp_path: Path) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model, shape = models.build("mobilenetv2_tiny")
    float_path = tmp_path / "f.onnx"
    torch.onnx.export(model, (torch.zeros(shape),), str(float_path), dynamo=False,
                      opset_version=17, input_names=["input"], output_names=["output"])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.data = iter({"input": x} for x in _calibration())

        def get_next(self):
            return next(self.data, None)

    path = tmp_path / "q.onnx"
    quantize_static(str(float_path), str(path), Reader(), quant_format=getattr(QuantFormat, fmt),
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    per_channel=True)
    _passed(tinyc("verify", path, "--samples", "4", "--json"), lsb=1)


def _qdq_model(path: Path, zero_point: np.ndarray, scale: np.ndarray, op: str = "Relu",
               arity: int = 1, out_scale: np.ndarray | None = None) -> Path:
    """x -> QDQ -> op (its `arity` inputs all the dequantized x) -> QDQ (scale `out_scale`, or
    the input's) -> y."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 2, 2])
    so = "s" if out_scale is None else "so"
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in", axis=1),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_in", axis=1),
             helper.make_node(op, ["xd"] * arity, ["r"], name="act"),
             helper.make_node("QuantizeLinear", ["r", so, "z"], ["rq"], name="q_out", axis=1),
             helper.make_node("DequantizeLinear", ["rq", so, "z"], ["y"], name="dq_out",
                              axis=1)]
    constants = [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zero_point, "z")]
    if out_scale is not None:
        constants.append(numpy_helper.from_array(out_scale, "so"))
    graph = helper.make_graph(nodes, "g", [x], [y], constants)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_per_channel_activation_is_refused(tmp_path: Path) -> None:
    path = _qdq_model(tmp_path / "m.onnx", np.zeros(4, np.int8),
                      np.array([0.1, 0.2, 0.3, 0.4], np.float32))
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o"),
                      "QuantizeLinear node 'q_in'", "per-channel quantization of an activation")


def test_int16_activations_are_refused(tmp_path: Path) -> None:
    path = _qdq_model(tmp_path / "m.onnx", np.array(0, np.int16), np.array(0.1, np.float32))
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o"),
                      "QuantizeLinear node 'q_in'", "int16 quantization",
                      "int8 and uint8 are supported")


def test_operator_without_int8_kernel_is_refused(tmp_path: Path) -> None:
    path = _qdq_model(tmp_path / "m.onnx", np.array(0, np.int8), np.array(0.1, np.float32),
                      op="Exp")
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o"),
                      "Exp node 'act' would run in float32 inside a quantized model")
    ok = tinyc("compile", path, "--allow-float-fallback", "-o", tmp_path / "o", "--json")
    assert ok.code == 0, ok.stderr
    assert ok.json()["float_fallback"] == ["Exp 'act'"]


def test_add_output_scale_too_small_for_tflite_is_refused(tmp_path: Path) -> None:
    path = _qdq_model(tmp_path / "m.onnx", np.array(0, np.int8), np.array(0.1, np.float32),
                      op="Add", arity=2, out_scale=np.array(1e-9, np.float32))
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o"),
                      "Add node 'act': int8 output scale 1e-09 is too small for input scales "
                      "0.1 and 0.1")
    assert not (tmp_path / "o").exists()


def test_softmax_input_scale_too_small_for_tflite_is_refused(tmp_path: Path) -> None:
    path = _qdq_model(tmp_path / "m.onnx", np.array(-128, np.int8), np.array(1e-9, np.float32),
                      op="Softmax", out_scale=np.array(1 / 256, np.float32))
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o"),
                      "Softmax node 'act': int8 input scale 1e-09 (beta 1) is too small")


def test_quantize_needs_calibration(tmp_path: Path) -> None:
    model, shape = models.build("small_cnn")
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(shape)), str(path))
    assert_user_error(tinyc("compile", path, "--input-shape", "1x3x32x32", "--quantize", "int8",
                            "-o", tmp_path / "o"), "--quantize int8 needs --calibration")


def test_dynamic_range_tflite_matches_tflite_reference_kernels() -> None:
    from helpers import ROOT

    path = ROOT.parent / "shared" / "models" / "mlperf_tiny" / "float" / "kws01_dscnn_fp32.tflite"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    result = tinyc("verify", path, "--samples", "3", "--json")
    report = _passed(result, lsb=0)
    assert report["reference"] == "litert"
    for target in report["targets"]:
        # Same arithmetic as TFLite's reference kernels (run-time symmetric input
        # quantization, integer dot product, float rescale): equal up to float rounding.
        assert all(out["max_abs_error"] <= 1e-6 for out in target["outputs"])
    # 22,604 parameters: the convolutions' weights stay int8 (float32 would be ~90 kB).
    assert report["weight_bytes"] < 40_000
