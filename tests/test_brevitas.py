"""Brevitas QONNX exports of binarized networks through tinyc (optional: skipped without
brevitas and qonnx).

- A 2-D BNN as Brevitas users write it: an 8-bit-weight first convolution (QONNX Quant, a real
  layer), BatchNorm, binary activations (SignedBinaryActPerTensorConst -> BipolarQuant), binary
  convolutions with zero padding and a max pool, a binary Linear
  (SignedBinaryWeightPerTensorConst, scale 0.1), BatchNorm between the binary layers, and an
  8-bit-weight last Linear reading the binary activations (TorchScript exports it as
  Transpose -> MatMul); channel counts 20 / 35 / 33 / 40, none a multiple of 32.  Exported
  with both of Brevitas's exporters (torch.export and TorchScript), compiled, built for the
  host: the binary layers must run as binary kernels, and the C output must equal both the
  Brevitas PyTorch model and qonnx's executor within the float tolerance (the first and last
  layers and the binary layers' folded 0.1 weight scale are float arithmetic).
- A binary network whose output is a binary layer's with power-of-two weight scales: every sum
  is exact, so the C output must equal Brevitas and qonnx bit for bit.
- `tinyc verify` of the BNN on the emulated Cortex-M4, qonnx's executor as the reference.
- Refusals, one line each: a binary convolution with reflect padding, an 8-bit activation
  quantizer (Quant of a run-time tensor), an unsupported QONNX operator (Trunc), and the missing
  qonnx package for the reference.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")
pytest.importorskip("qonnx")

import brevitas.nn as qnn  # noqa: E402
import onnx  # noqa: E402
from brevitas.export import export_qonnx  # noqa: E402
from brevitas.quant import SignedBinaryActPerTensorConst as BinaryAct  # noqa: E402
from brevitas.quant import SignedBinaryWeightPerTensorConst as BinaryWeight  # noqa: E402
from torch import nn  # noqa: E402

from helpers import tinyc  # noqa: E402
from tinyc.boards import load_board  # noqa: E402
from tinyc.errors import TinycError, UnsupportedOperator  # noqa: E402
from tinyc.firmware import open_project, run  # noqa: E402
from tinyc.project import Compiled, compile_model, write_project  # noqa: E402
from tinyc.verify import exact_outputs, within_tolerance  # noqa: E402

SAMPLES = 8


class ConvBNN(nn.Module):
    """8-bit first conv -> BN -> sign -> binary conv (zero padding) -> BN -> sign -> max pool ->
    binary conv stride 2 -> BN -> sign -> binary Linear -> BN -> sign -> 8-bit Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            qnn.QuantConv2d(3, 20, 3, padding=1, weight_bit_width=8, bias=True),
            nn.BatchNorm2d(20), qnn.QuantIdentity(act_quant=BinaryAct),
            qnn.QuantConv2d(20, 35, 3, padding=1, weight_quant=BinaryWeight, bias=False),
            nn.BatchNorm2d(35), qnn.QuantIdentity(act_quant=BinaryAct), nn.MaxPool2d(2),
            qnn.QuantConv2d(35, 33, 3, stride=2, padding=1, weight_quant=BinaryWeight,
                            bias=False),
            nn.BatchNorm2d(33), qnn.QuantIdentity(act_quant=BinaryAct))
        self.classifier = nn.Sequential(
            qnn.QuantLinear(33 * 9, 40, weight_quant=BinaryWeight, bias=False),
            nn.BatchNorm1d(40), qnn.QuantIdentity(act_quant=BinaryAct),
            qnn.QuantLinear(40, 10, weight_bit_width=8, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class BinaryHead(nn.Module):
    """sign(input) -> binary conv (scale 0.5) -> BN -> sign -> binary Linear (scale 0.25) + bias:
    a binary layer's output, which the C computes exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.sign = qnn.QuantIdentity(act_quant=BinaryAct)
        self.conv = qnn.QuantConv2d(5, 37, 3, padding=1, weight_quant=BinaryWeight,
                                    weight_scaling_const=0.5, bias=False)
        self.bn = nn.BatchNorm2d(37)
        self.sign2 = qnn.QuantIdentity(act_quant=BinaryAct)
        self.fc = qnn.QuantLinear(37 * 16, 12, weight_quant=BinaryWeight,
                                  weight_scaling_const=0.25, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.sign2(self.bn(self.conv(self.sign(x)))).flatten(1))


def _trained_looking(model: nn.Module, seed: int) -> nn.Module:
    """Random latent weights, BatchNorm statistics away from the untrained identity (some
    negative scales), eval mode."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) * 2 - 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.5)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 3)
                m.running_var.copy_(torch.rand(n, generator=gen) * 4 + 0.5)
    return model.eval()


def _export(model: nn.Module, shape: tuple[int, ...], path: Path, dynamo: bool = True) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.zeros(shape), str(path), dynamo=dynamo)
    return path


def _samples(shape: tuple[int, ...], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    samples = [rng.standard_normal(shape).astype(np.float32) * 2 for _ in range(SAMPLES)]
    for x in samples:
        x.reshape(-1)[::7] = 0.0  # sign(0) = +1 in QONNX's BipolarQuant and in tinyc
    return samples


def _qonnx(path: Path, samples: list[np.ndarray]) -> np.ndarray:
    """qonnx's executor's outputs on every sample."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    wrapped = ModelWrapper(str(path)).transform(InferShapes())
    name, out = wrapped.graph.input[0].name, wrapped.graph.output[0].name
    return np.stack([execute_onnx(wrapped, {name: x})[out] for x in samples])


def _brevitas(model: nn.Module, samples: list[np.ndarray]) -> np.ndarray:
    """The Brevitas PyTorch model's outputs on every sample."""
    with torch.no_grad():
        return np.stack([model(torch.from_numpy(x)).numpy() for x in samples])


def _host(path: Path, samples: list[np.ndarray], tmp: Path) -> tuple[Compiled, np.ndarray]:
    """Compile, build for the host and run: the compiled model and its C outputs."""
    compiled = compile_model(path, load_board("qemu-m4"))
    write_project(compiled, tmp / "project")
    ran = run(open_project(tmp / "project"), [[x] for x in samples], "host")
    return compiled, np.stack([o[0] for o in ran.outputs])


def _compare(got: np.ndarray, want: np.ndarray, exact: bool, label: str) -> None:
    """Assert got == want (exact) or within the verify tolerance; print the max error."""
    got = got.reshape(want.shape)
    ok = got == want if exact else within_tolerance(got, want)
    error = float(np.abs(got.astype(np.float64) - want).max())
    print(f"{label}: max abs error {error:.3g} over {len(want)} samples "
          f"({'exact' if exact else 'tolerance'})")
    assert ok.all(), f"{label}: {int((~ok).sum())} of {ok.size} differ, max error {error:.3g}"


@pytest.mark.parametrize("dynamo", [True, False], ids=["torch.export", "torchscript"])
def test_conv_bnn_equals_brevitas_and_qonnx(dynamo: bool, tmp_path: Path) -> None:
    model = _trained_looking(ConvBNN(), 1)
    path = _export(model, (1, 3, 10, 10), tmp_path / "bnn.onnx", dynamo)
    samples = _samples((1, 3, 10, 10), 2)
    compiled, got = _host(path, samples, tmp_path)
    ops = [n.op for n in compiled.graph.nodes]
    assert ops.count("BinaryConv") == 2 and ops.count("BinaryDense") == 1, ops
    assert "BinaryMaxPool" in ops and ops.count("Conv") == 1, ops
    assert sum(op in ("Gemm", "MatMul") for op in ops) == 1, ops  # the 8-bit last layer
    assert exact_outputs(compiled.graph) == [False]  # float first/last layers
    _compare(got, _brevitas(model, samples), False, "ConvBNN C vs Brevitas")
    _compare(got, _qonnx(path, samples), False, "ConvBNN C vs qonnx")


def test_binary_output_is_exact(tmp_path: Path) -> None:
    model = _trained_looking(BinaryHead(), 3)
    path = _export(model, (1, 5, 4, 4), tmp_path / "head.onnx")
    samples = _samples((1, 5, 4, 4), 4)
    compiled, got = _host(path, samples, tmp_path)
    assert [n.op for n in compiled.graph.nodes if n.op.startswith("Binary")] == \
        ["BinaryConv", "BinaryDense"]
    assert exact_outputs(compiled.graph) == [True]
    _compare(got, _brevitas(model, samples), True, "BinaryHead C vs Brevitas")
    _compare(got, _qonnx(path, samples), True, "BinaryHead C vs qonnx")


def _with_conv_weight_scale(path: Path, scale: np.ndarray, out: Path) -> Path:
    """The export at `path` with the convolution's BipolarQuant weight scale replaced."""
    proto = onnx.load(str(path))
    inits = {t.name: t for t in proto.graph.initializer}
    (node,) = [n for n in proto.graph.node if n.op_type == "BipolarQuant"
               and n.input[0] in inits and len(inits[n.input[0]].dims) == 4]
    node.input[1] = f"{node.name}_new_scale"  # (the old one may be shared)
    proto.graph.initializer.append(onnx.numpy_helper.from_array(scale.astype(np.float32),
                                                                node.input[1]))
    onnx.save(proto, str(out))
    return out


def test_per_channel_weight_scale(tmp_path: Path) -> None:
    """Per-output-channel BipolarQuant scales (powers of two: exact) become the binary
    convolution's per-channel multiplier; a scale varying along the input channels is
    refused."""
    path = _export(_trained_looking(BinaryHead(), 3), (1, 5, 4, 4), tmp_path / "head.onnx")
    scale = 2.0 ** -np.random.default_rng(0).integers(-2, 4, (37, 1, 1, 1))
    per_channel = _with_conv_weight_scale(path, scale, tmp_path / "per_channel.onnx")
    samples = _samples((1, 5, 4, 4), 6)
    compiled, got = _host(per_channel, samples, tmp_path)
    assert exact_outputs(compiled.graph) == [True]
    _compare(got, _qonnx(per_channel, samples), True, "per-channel scale C vs qonnx")
    along_inputs = 2.0 ** -np.arange(5).reshape(1, 5, 1, 1)
    bad = _with_conv_weight_scale(path, along_inputs, tmp_path / "bad.onnx")
    assert _compile_error(bad, tmp_path) == (
        "tinyc: error: Conv node 'node_Conv_49': the scale of its BipolarQuant weights "
        "[37, 5, 3, 3] varies along another axis than the output channels")


def test_verify_on_cortex_m4(tmp_path: Path) -> None:
    path = _export(_trained_looking(ConvBNN(), 5), (1, 3, 10, 10), tmp_path / "bnn.onnx")
    result = tinyc("verify", path, "--board", "qemu-m4", "--samples", "5", "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["verdict"] == "PASS" and report["reference"] == "qonnx", report
    assert [t["target"] for t in report["targets"]] == ["host", "qemu-m4"]
    for target in report["targets"]:
        (output,) = target["outputs"]
        assert output["mismatches"] == 0 and not output["exact"]
        print(f"verify {target['target']}: max abs error {output['max_abs_error']:.3g} "
              f"over {report['samples']} samples")


# ------------------------------------------------------------------------------------------------
# Refusals
# ------------------------------------------------------------------------------------------------


def _compile_error(path: Path, tmp: Path) -> str:
    result = tinyc("compile", path, "-o", tmp / "out")
    lines = result.stderr.strip().splitlines()
    assert result.code == 2 and len(lines) == 1, result.stderr
    assert not (tmp / "out").exists()
    return lines[0]


def test_refuses_reflect_padding_of_binary_input(tmp_path: Path) -> None:
    model = nn.Sequential(qnn.QuantIdentity(act_quant=BinaryAct),
                          qnn.QuantConv2d(3, 4, 3, padding=1, padding_mode="reflect",
                                          weight_quant=BinaryWeight, bias=False))
    path = _export(_trained_looking(model, 0), (1, 3, 6, 6), tmp_path / "m.onnx", dynamo=False)
    assert _compile_error(path, tmp_path) == (
        "tinyc: error: Conv node '/1/Conv': its binary input is padded in mode 'reflect' (Pad "
        "'/1/Pad'); binary kernels pad with a constant 0, +1 or -1")


def test_refuses_activation_quantizer(tmp_path: Path) -> None:
    model = nn.Sequential(qnn.QuantConv2d(3, 4, 3, weight_quant=BinaryWeight, bias=False),
                          qnn.QuantReLU(bit_width=8))
    path = _export(_trained_looking(model, 0), (1, 3, 6, 6), tmp_path / "m.onnx", dynamo=False)
    assert _compile_error(path, tmp_path) == (
        "tinyc: error: Quant node '/1/act_quant/export_handler/Quant': 8-bit quantization of a "
        "run-time tensor (an activation quantizer); tinyc takes QONNX Quant on constant weights "
        "only: export activations binary (SignedBinaryActPerTensorConst) or float")


def test_refuses_unsupported_qonnx_operator(tmp_path: Path) -> None:
    h = onnx.helper
    graph = h.make_graph(
        [h.make_node("Trunc", ["x", "s", "z", "b", "ob"], ["y"], name="trunc0",
                     domain="qonnx.custom_op.general")], "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.numpy_helper.from_array(np.array(v, np.float32), n)
         for n, v in (("s", 1.0), ("z", 0.0), ("b", 8.0), ("ob", 4.0))])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17),
                                               h.make_opsetid("qonnx.custom_op.general", 1)])
    path = tmp_path / "trunc.onnx"
    onnx.save(model, str(path))
    assert _compile_error(path, tmp_path) == (
        "tinyc: error: QONNX operator Trunc (node 'trunc0') is not supported by tinyc; it takes "
        "BipolarQuant and Quant (Brevitas binary weights and activations, quantized constant "
        "weights)")


def test_reference_without_qonnx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _export(_trained_looking(BinaryHead(), 3), (1, 5, 4, 4), tmp_path / "head.onnx")
    compiled = compile_model(path, load_board("qemu-m4"))
    monkeypatch.setitem(sys.modules, "qonnx.core.modelwrapper", None)
    with pytest.raises(TinycError) as error:
        compiled.model.reference([np.zeros((1, 5, 4, 4), np.float32)])
    assert not isinstance(error.value, UnsupportedOperator)
    assert str(error.value) == (
        "the reference for a QONNX model (BipolarQuant, Quant) is qonnx's executor: pip install "
        "qonnx (requirements-dev.txt pins it)")
