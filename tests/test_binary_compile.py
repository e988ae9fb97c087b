"""Binary layers through the whole compile path: tinyc.nn models -> ONNX -> binarize pass ->
binary operators -> generated C, run natively, equal to PyTorch.

- Seeded random binary convolutions (1-D/2-D/3-D; channel counts 1-200 across the word
  boundaries 31/32/33/63/64/65; strides, dilations, zero and one padding, groups incl.
  depthwise with multipliers) and binary dense layers, each followed by nothing (real output:
  fl(fl(dot * scale) + bias)), BatchNorm (real output, folded), BatchNorm + sign (packed output,
  integer thresholds) or that and a second binary layer reading the packed bits.  Several cases
  share one model (one input and one output each) so one C build checks many of them.  Outputs
  that the model computes exactly (tinyc.verify.exact_outputs: every binary path here except
  the BatchNorm-folded real outputs) must equal PyTorch bit for bit; the rest within the float
  tolerance.  The IR interpreter (the simulation the C must match) must equal the C bit for bit.
- The digits BNN of examples/bnn_models.py, trained for a few epochs, through the real command
  line on the emulated Cortex-M4: `tinyc verify --json` (bit-identical logits on the held-out
  split, host and QEMU) and `tinyc run --json` (C accuracy == PyTorch accuracy).
- Refusals, one line naming the node: weights that are not +/-1 behind a sign, and paddings the
  kernels cannot represent.
"""

from __future__ import annotations

import io
import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import bnn_models  # noqa: E402
from torch import nn  # noqa: E402

from helpers import ROOT, tinyc  # noqa: E402
from tinyc import nn as tnn  # noqa: E402
from tinyc.boards import load_board  # noqa: E402
from tinyc.errors import UnsupportedOperator  # noqa: E402
from tinyc.firmware import open_project, run  # noqa: E402
from tinyc.interpret import run_graph  # noqa: E402
from tinyc.project import Quantization, compile_model, write_project  # noqa: E402
from tinyc.verify import exact_outputs, verify_compiled, within_tolerance  # noqa: E402

CHANNELS = [1, 2, 3, 5, 16, 31, 32, 33, 63, 64, 65, 100, 128, 200]
BOUNDARY = [31, 32, 33, 63, 64, 65]
CONVS = {1: tnn.BinaryConv1d, 2: tnn.BinaryConv2d, 3: tnn.BinaryConv3d}
BNS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
FOLLOW = ("none", "bn", "bn_sign", "bn_sign_conv")
EXACT_FOLLOW = ("none", "bn_sign", "bn_sign_conv")
SPATIAL = {1: 12, 2: 6, 3: 4}  # base input extent per axis
BATCHES = 6  # models of random cases
CASES_PER_BATCH = 6
PYTHONPATH = f"{ROOT / 'compiler'}:{ROOT / 'examples'}"


# ------------------------------------------------------------------------------------------------
# Random cases
# ------------------------------------------------------------------------------------------------


def _randomize(module: nn.Module, gen: torch.Generator) -> None:
    """Trained-looking BatchNorm statistics (some negative scales), thresholds and biases."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) * 2 - 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.5)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 3)
                m.running_var.copy_(torch.rand(n, generator=gen) * 4 + 0.5)
            elif isinstance(m, tnn.SignSTE) and m.threshold is not None:
                m.threshold.copy_(torch.rand(m.threshold.shape, generator=gen) - 0.5)
            elif isinstance(m, tnn.BinaryConv1d | tnn.BinaryConv2d | tnn.BinaryConv3d |
                            tnn.BinaryLinear) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen))


class Case(nn.Module):
    """One binary layer and what follows it (FOLLOW), on its own input."""

    def __init__(self, layer: nn.Module, rank: int, out: int, follow: str,
                 flatten: bool = False) -> None:
        super().__init__()
        self.flatten = flatten
        self.layer = layer
        bn = nn.BatchNorm1d if rank == 0 else BNS[rank]
        tail: list[nn.Module] = []
        if follow != "none":
            tail.append(bn(out))
        if follow in ("bn_sign", "bn_sign_conv"):
            tail.append(tnn.SignSTE(out, learnable_threshold=True))
        if follow == "bn_sign_conv":
            second = tnn.BinaryLinear(out, 37, scale="mean_abs", input_is_binary=True) \
                if rank == 0 else CONVS[rank](out, 33, 3, padding=1, input_is_binary=True)
            tail.append(second)
        self.tail = nn.Sequential(*tail)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flatten:
            x = x.flatten(1)
        return self.tail(self.layer(x))


class Cases(nn.Module):
    def __init__(self, cases: list[Case]) -> None:
        super().__init__()
        self.cases = nn.ModuleList(cases)

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(case(x) for case, x in zip(self.cases, xs, strict=True))


def _conv_case(rng: np.random.Generator) -> tuple[Case, tuple[int, ...], str, str]:
    rank = int(rng.integers(1, 4))
    cin = int(rng.choice(BOUNDARY if rng.random() < 0.5 else CHANNELS))
    kind = rng.choice(["dense", "depthwise", "grouped"])
    if kind == "depthwise":
        groups, cout = cin, cin * int(rng.choice([1, 1, 2]))
    elif kind == "grouped":
        divisors = [g for g in range(2, min(cin, 8) + 1) if cin % g == 0]
        groups = int(rng.choice(divisors)) if divisors else 1
        cout = groups * int(rng.integers(1, 12))
    else:
        groups, cout = 1, int(rng.choice(CHANNELS))
    if rank == 3 and cin * cout // groups > 4000:  # keep 3-D cases small
        cout = groups * max(1, 4000 // cin)
    k = tuple(int(rng.integers(1, 4)) for _ in range(rank))
    stride = tuple(int(rng.integers(1, 3)) for _ in range(rank))
    dilation = tuple(int(rng.integers(1, 3)) if kk > 1 else 1 for kk in k)
    padding = tuple(int(rng.integers(0, kk + 1)) for kk in k)
    size = tuple(max(SPATIAL[rank], d * (kk - 1) + 1) + int(rng.integers(0, 3))
                 for kk, d in zip(k, dilation, strict=True))
    padding_mode = str(rng.choice(["zeros", "ones"]))
    follow = str(rng.choice(FOLLOW))
    layer = CONVS[rank](cin, cout, k, stride=stride, padding=padding, dilation=dilation,
                        groups=groups, padding_mode=padding_mode,
                        scale=str(rng.choice(["none", "mean_abs"])), bias=bool(rng.random() < 0.5),
                        learnable_threshold=bool(rng.random() < 0.5))
    label = (f"conv{rank}d {cin}->{cout} k{k} s{stride} d{dilation} p{padding} {padding_mode} "
             f"g{groups} {follow}")
    return Case(layer, rank, cout, follow), (1, cin, *size), follow, label


def _dense_case(rng: np.random.Generator) -> tuple[Case, tuple[int, ...], str, str]:
    follow = str(rng.choice(FOLLOW))
    if rng.random() < 0.5:  # a plain [N, features] input
        features = int(rng.choice(CHANNELS + BOUNDARY))
        shape: tuple[int, ...] = (2, features)
        flatten = False
    else:  # the flatten of a feature map (packed channels-last, permuted weight columns)
        channels = int(rng.choice([3, 31, 32, 33, 64]))
        shape = (1, channels, 3, 2)
        features = channels * 6
        flatten = True
    out = int(rng.choice([1, 10, 33, 64]))
    layer = tnn.BinaryLinear(features, out, bias=bool(rng.random() < 0.5),
                             scale=str(rng.choice(["none", "mean_abs"])))
    label = f"dense {'flatten ' if flatten else ''}{features}->{out} {follow}"
    return Case(layer, 0, out, follow, flatten), shape, follow, label


def _batch(seed: int) -> tuple[Cases, list[tuple[int, ...]], list[str], list[str]]:
    rng = np.random.default_rng(seed)
    built = [(_dense_case if i == CASES_PER_BATCH - 1 else _conv_case)(rng)
             for i in range(CASES_PER_BATCH)]
    model = Cases([b[0] for b in built])
    _randomize(model, torch.Generator().manual_seed(seed))
    return model.eval(), [b[1] for b in built], [b[2] for b in built], [b[3] for b in built]


# ------------------------------------------------------------------------------------------------
# Compile, run on the host
# ------------------------------------------------------------------------------------------------


def _compile(model: nn.Module, shapes: list[tuple[int, ...]], tmp: Path, **kwargs):
    path = tmp / "model.pt"
    torch.save(model, str(path))
    spec = ",".join("x".join(map(str, s)) for s in shapes)
    return compile_model(path, load_board("qemu-m4"), input_shape=spec, **kwargs)


def _host(compiled, samples: list[list[np.ndarray]], tmp: Path, simulated: bool = True
          ) -> list[list[np.ndarray]]:
    """The host build's outputs; with `simulated` (models without float layers, and int8
    ones), checked bit for bit against the IR interpreter."""
    write_project(compiled, tmp / "project")
    outputs = run(open_project(tmp / "project"), samples, "host").outputs
    for sample, got in zip(samples, outputs, strict=True):
        for c, sim in zip(got, run_graph(compiled.graph, sample) if simulated else got,
                          strict=True):
            np.testing.assert_array_equal(c.reshape(sim.shape), sim)
    return outputs


def _samples(shapes: list[tuple[int, ...]], count: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        for x in xs:
            x.reshape(-1)[::7] = 0.0  # sign(0) = +1 on both sides
        samples.append(xs)
    return samples


def _check(got: np.ndarray, want: np.ndarray, exact: bool, label: str) -> None:
    got = got.reshape(want.shape)
    ok = got == want if exact else within_tolerance(got, want)
    if not ok.all():
        where = tuple(int(i) for i in np.argwhere(~ok)[0])
        pytest.fail(f"{label}: {int((~ok).sum())} of {ok.size} differ "
                    f"({'exact' if exact else 'tolerance'}); first at {where}: "
                    f"C {got[where]!r}, torch {want[where]!r}")


@pytest.mark.parametrize("batch", range(BATCHES))
def test_random_binary_layers_equal_pytorch(batch: int, tmp_path: Path) -> None:
    model, shapes, follows, labels = _batch(1000 + batch)
    compiled = _compile(model, shapes, tmp_path)
    ops = {n.op for n in compiled.graph.nodes}
    assert {"BinaryConv", "SignPack"} <= ops, ops
    assert not ops & {"Conv", "Gemm", "MatMul"}, "a binary layer stayed float"
    exact = exact_outputs(compiled.graph)
    assert exact == [f in EXACT_FOLLOW for f in follows], list(zip(labels, exact, strict=True))
    samples = _samples(shapes, 2, batch)
    outputs = _host(compiled, samples, tmp_path)
    for sample, got in zip(samples, outputs, strict=True):
        with torch.no_grad():
            want = model(*(torch.from_numpy(x) for x in sample))
        for i, label in enumerate(labels):
            _check(got[i], want[i].numpy(), exact[i], label)


def test_boundary_channels_packed_chain(tmp_path: Path) -> None:
    """Packed tensors of 1 ... 65 channels passed between binary convolutions (BN + sign as
    thresholds, some with negative BN scales; 3x3 and 1x1), through max pooling (one with
    ceil_mode) and into a binary dense layer on the flattened packed map: one exact integer
    path end to end."""
    torch.manual_seed(7)
    layers: list[nn.Module] = []
    channels = [3, 31, 32, 33, 63, 64, 65, 1, 33]
    for i, (cin, cout) in enumerate(itertools.pairwise(channels)):
        k = 1 if i in (2, 5) else 3  # 1x1: run per pixel by tc_bfc
        layers += [tnn.BinaryConv2d(cin, cout, k, padding=k // 2, input_is_binary=i > 0,
                                    padding_mode="ones" if i % 2 else "zeros",
                                    scale="mean_abs"),
                   nn.BatchNorm2d(cout)]
        if i == 3:
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        layers.append(tnn.SignSTE())
    model = nn.Sequential(*layers[:-1], nn.MaxPool2d(2), nn.Flatten(),
                          tnn.BinaryLinear(33 * 4, 10, bias=True, scale="mean_abs")).eval()
    _randomize(model, torch.Generator().manual_seed(8))
    shapes = [(1, 3, 9, 7)]
    compiled = _compile(model, shapes, tmp_path)
    ops = [n.op for n in compiled.graph.nodes]
    assert ops.count("SignPack") == 1 and "Unpack" not in ops, ops
    assert ops.count("BinaryMaxPool") == 2 and ops[-1] == "BinaryDense", ops
    functions = [layer.function for layer in compiled.program.layers]
    bconv = [f for f in functions if f.startswith("tc_bconv_") and f.endswith("_b1")]
    bfc = [f for f in functions if f in ("tc_bfc_b1", "tc_bfc_sliced_b1", "tc_bfc_list_b1")]
    assert len(bfc) == 2 and len(bconv) == 6, functions  # portable or fast
    assert exact_outputs(compiled.graph) == [True]
    samples = _samples(shapes, 3, 0)
    for sample, got in zip(samples, _host(compiled, samples, tmp_path), strict=True):
        with torch.no_grad():
            want = model(torch.from_numpy(sample[0])).numpy()
        _check(got[0], want, True, "packed chain")


def test_wide_pointwise_layers_take_the_minority_list(tmp_path: Path) -> None:
    """1x1 binary convolutions with wide inputs compile to tc_bfc_list_* where the model saves
    enough to pay for its code (packed and float outputs, and int8 with --quantize int8), and
    the C equals tinyc's simulation bit for bit and PyTorch as exactly as the graph promises;
    the same layers on few pixels keep tc_bfc_sliced_* (binary_fast.list_pays)."""
    torch.manual_seed(5)
    model = nn.Sequential(
        tnn.BinaryConv2d(3, 128, 3, padding=1), nn.BatchNorm2d(128), tnn.SignSTE(),
        tnn.BinaryConv2d(128, 256, 1, input_is_binary=True), nn.BatchNorm2d(256), tnn.SignSTE(),
        tnn.BinaryConv2d(256, 64, 1, input_is_binary=True), nn.BatchNorm2d(64)).eval()
    _randomize(model, torch.Generator().manual_seed(6))
    # 20 pixels save 70,000 instructions, the list's code (the slice sums linked by the 3x3
    # layer already) needs 93,000
    small = _compile(model, [(1, 3, 4, 5)], tmp_path)
    assert not any("list" in layer.function for layer in small.program.layers)
    shapes = [(1, 3, 16, 12)]
    compiled = _compile(model, shapes, tmp_path)
    functions = [layer.function for layer in compiled.program.layers]
    assert {"tc_bfc_list_b1", "tc_bfc_list_f32"} <= set(functions), functions
    exact = exact_outputs(compiled.graph)[0]
    samples = _samples(shapes, 2, 3)
    for sample, got in zip(samples, _host(compiled, samples, tmp_path), strict=True):
        with torch.no_grad():
            want = model(torch.from_numpy(sample[0])).numpy()
        _check(got[0], want, exact, "wide 1x1")
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, np.stack([s[0] for s in _samples(shapes, 8, 4)]))
    quantized = _compile(model, shapes, tmp_path, quantize=Quantization(calibration))
    assert "tc_bfc_list_s8" in [layer.function for layer in quantized.program.layers]
    _host(quantized, samples, tmp_path / "int8")  # C == simulation, bit for bit


def test_bireal_blocks_and_int8_real_layers(tmp_path: Path) -> None:
    """Bi-Real / ReActNet blocks (real residual stream, RPReLU, avg-pool shortcut) compile with
    float first and last layers (within tolerance), and with `--quantize int8` the real layers
    become int8 around the unchanged binary ones; the C equals tinyc's simulation exactly."""
    def blocks(act: str) -> nn.Module:
        torch.manual_seed(3)
        model = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
            tnn.BiRealBlock(2, 16, 16, act=act, learnable_threshold=True),
            tnn.BiRealBlock(2, 16, 32, stride=2, act=act, scale="mean_abs"),
            tnn.BiRealBlock(2, 32, 32, groups=32, padding_mode="ones", act="hardtanh"),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 5)).eval()
        _randomize(model, torch.Generator().manual_seed(4))
        return model

    model = blocks("rprelu")
    shapes = [(1, 3, 8, 8)]
    compiled = _compile(model, shapes, tmp_path)
    assert sum(n.op == "BinaryConv" for n in compiled.graph.nodes) == 3
    samples = _samples(shapes, 3, 1)
    outputs = _host(compiled, samples, tmp_path, simulated=False)
    for sample, got in zip(samples, outputs, strict=True):
        with torch.no_grad():
            want = model(torch.from_numpy(sample[0])).numpy()
        _check(got[0], want, False, "Bi-Real float")
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, np.stack([s[0] for s in _samples(shapes, 8, 2)]))
    int8_model = blocks("hardtanh")
    sign = next(m for m in int8_model.modules()
                if isinstance(m, tnn.SignSTE) and m.threshold is not None)
    with torch.no_grad():  # beyond the int8 range: every bit set (the always mask); no bit
        sign.threshold.view(-1)[:2] = torch.tensor([1e3, -1e3])
    quantized = _compile(int8_model, shapes, tmp_path, quantize=Quantization(calibration))
    packs = [n for n in quantized.graph.nodes if n.op == "SignPack"]
    assert packs and all(quantized.graph.tensors[n.inputs[0]].dtype == "int8" for n in packs)
    assert sum(n.op == "BinaryConv" for n in quantized.graph.nodes) == 3
    assert quantized.report["float_fallback"] == []
    _host(quantized, samples, tmp_path / "int8")  # C == simulation, bit for bit
    assert "_always" in (tmp_path / "int8" / "project" / "weights.c").read_text()


def test_onnx_model_verified_against_onnxruntime_exactly(tmp_path: Path) -> None:
    """A .onnx export of a binary network, verified against onnxruntime (run without graph
    optimizations, which would fold the scale into the +/-1 weights)."""
    torch.manual_seed(5)
    model = nn.Sequential(tnn.BinaryConv2d(4, 40, 3, padding=1, scale="mean_abs"),
                          nn.BatchNorm2d(40), tnn.BinaryConv2d(40, 8, 3, stride=2,
                                                               padding_mode="ones", padding=1,
                                                               scale="mean_abs", bias=True))
    model = model.eval()
    _randomize(model, torch.Generator().manual_seed(6))
    path = tmp_path / "model.onnx"
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 4, 6, 6),), buffer, dynamo=False)
    path.write_bytes(buffer.getvalue())
    compiled = compile_model(path, load_board("qemu-m4"))
    result = verify_compiled(compiled, _samples([(1, 4, 6, 6)], 3, 3), on_board=False)
    assert result.passed and result.reference == "onnxruntime"
    comparison = result.targets[0].comparisons[0]
    assert comparison.exact and comparison.max_abs_error == 0.0


@pytest.mark.parametrize("name", ["digits", "eeg"])
def test_every_pass_preserves_binary_models(name: str, tmp_path: Path) -> None:
    """The IR verifies and the interpreter's outputs stay the same after every pass (bit for
    bit for the all-binary digits network); no layout Transposes are left between layers
    (binary operators run channels-last like the float ones)."""
    from tinyc.frontends import load_model
    from tinyc.ir import clone
    from tinyc.pipeline import PIPELINE

    torch.manual_seed(0)
    if name == "digits":
        model, shape = bnn_models.DigitsBNN(), (1, 1, 8, 8)
        x = np.random.default_rng(0).integers(0, 17, shape).astype(np.float32)
    else:
        model, shape = bnn_models.EEGNet(8, 3, binary=True), bnn_models.EEG_SHAPE
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    _randomize(model, torch.Generator().manual_seed(1))
    model.eval()
    torch.save(model, str(tmp_path / "m.pt"))
    graph = load_model(tmp_path / "m.pt", "x".join(map(str, shape))).graph
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    for run_pass in PIPELINE:
        graph = run_pass(clone(graph))
        graph.verify()
        _check(run_graph(graph, [x])[0], expected, name == "digits", run_pass.__name__)
    ops = [n.op for n in graph.nodes]
    # (digits: the thermometer's Expand output is transposed once, before its packing)
    assert "Binarize" not in ops and ops.count("Transpose") == (name == "digits"), ops


# ------------------------------------------------------------------------------------------------
# The digits BNN on the emulated Cortex-M4
# ------------------------------------------------------------------------------------------------


def test_digits_bnn_on_cortex_m4(tmp_path: Path) -> None:
    model, (_, _, x_test, y_test) = bnn_models.trained_digits_bnn(epochs=4)
    torch_accuracy = bnn_models.accuracy(bnn_models.torch_logits(model, x_test), y_test)
    assert torch_accuracy > 0.85
    path = tmp_path / "digits_bnn.pt"
    torch.save(model, str(path))
    np.save(tmp_path / "x_test.npy", x_test)
    env = {"PYTHONPATH": PYTHONPATH}  # the pickled model's class lives in examples/
    verified = tinyc("verify", path, "--input-shape", "1x1x8x8", "--input",
                     tmp_path / "x_test.npy", "--json", env=env)
    assert verified.code == 0, verified.stderr + verified.stdout
    report = verified.json()
    assert report["verdict"] == "PASS"
    assert [t["target"] for t in report["targets"]] == ["host", "qemu-m4"]
    for target in report["targets"]:
        (output,) = target["outputs"]
        assert output["exact"] and output["max_abs_error"] == 0.0, output
        assert output["count"] == 10 * len(x_test)
    compiled = tinyc("compile", path, "--input-shape", "1x1x8x8", "-o", tmp_path / "c",
                     "--json", env=env)
    assert compiled.code == 0, compiled.stderr
    storage = compiled.json()["weight_storage"]
    assert storage["binary_weights"] > 0.95 * sum(p.numel() for p in model.parameters())
    assert storage["mbit"] < storage["int8_mbit"] / 4
    assert storage["mbit"] < storage["float_mbit"] / 16
    ran = tinyc("run", tmp_path / "c", "--input", tmp_path / "x_test.npy", "--json")
    assert ran.code == 0, ran.stderr
    logits = np.array(ran.json()["outputs"], dtype=np.float32)
    assert bnn_models.accuracy(logits, y_test) == torch_accuracy


# ------------------------------------------------------------------------------------------------
# Refusals
# ------------------------------------------------------------------------------------------------


class _PaddedBinaryConv(nn.Module):
    """sign -> an explicit Pad -> a binary convolution of the padded +/-1 values."""

    def __init__(self, value: float, mode: str = "constant", conv_padding: int = 0) -> None:
        super().__init__()
        self.value, self.mode = value, mode
        self.conv = tnn.BinaryConv2d(3, 4, 3, padding=conv_padding, input_is_binary=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = tnn.sign_ste(x)
        if self.mode == "constant":
            x = nn.functional.pad(x, (1, 1, 1, 1), value=self.value)
        else:
            x = nn.functional.pad(x, (1, 1, 1, 1), mode=self.mode)
        return self.conv(x)


@pytest.mark.parametrize("model, message", [
    (lambda: nn.Sequential(tnn.SignSTE(), nn.Conv2d(3, 4, 3)),
     r"Conv node '.*': its input is binarized \(sign\) but \d+ of 108 weights are not \+/-1"),
    (lambda: nn.Sequential(tnn.SignSTE(), nn.Flatten(), nn.Linear(48, 4)),
     r"(Gemm|MatMul) node '.*': its input is binarized \(sign\) but"),
    (lambda: _PaddedBinaryConv(0.5), r"Conv node '.*': its binary input is padded with 0.5"),
    (lambda: _PaddedBinaryConv(0.0, "reflect"), r"padded in mode 'reflect'"),
    (lambda: _PaddedBinaryConv(1.0, conv_padding=1), r"mixes \+1 padding"),
], ids=["conv-weights", "linear-weights", "pad-value", "pad-reflect", "pad-mixed"])
def test_refusals(model, message: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    with pytest.raises(UnsupportedOperator, match=message):
        _compile(model().eval(), [(1, 3, 4, 4)], tmp_path)


def test_refusal_on_the_command_line(tmp_path: Path) -> None:
    torch.save(nn.Sequential(tnn.SignSTE(), nn.Conv2d(3, 4, 3)).eval(), str(tmp_path / "m.pt"))
    result = tinyc("compile", tmp_path / "m.pt", "--input-shape", "1x3x4x4", "-o",
                   tmp_path / "out")
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyc: error: Conv node"), result.stderr
    assert "+/-1" in lines[0] and not (tmp_path / "out").exists()
