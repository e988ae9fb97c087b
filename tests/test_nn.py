"""tinyc.nn: the binary training modules.

Their forward must equal, bit for bit, what the deployed kernels compute, so every binary layer
is compared exactly with tinyc.binary's NumPy reference (integer dot products and the kernels'
output transforms); the modules must train (gradients flow through the straight-through
estimators); and they must export with torch.onnx.export(dynamo=False) to the documented
pattern, which onnxruntime runs to the same values.  Everything is seeded.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from torch import nn  # noqa: E402

from tinyc import binary as B  # noqa: E402
from tinyc import nn as tnn  # noqa: E402

CONVS = {1: tnn.BinaryConv1d, 2: tnn.BinaryConv2d, 3: tnn.BinaryConv3d}


def assert_exact(actual, expected, what: str = "") -> None:
    """Bit-for-bit equality of float32 arrays; on failure print positions, actual, expected."""
    actual = np.asarray(actual, dtype=np.float32)
    expected = np.asarray(expected, dtype=np.float32)
    assert actual.shape == expected.shape, f"{what}: {actual.shape} != {expected.shape}"
    bad = np.argwhere(actual.view(np.uint32) != expected.view(np.uint32))
    if len(bad):
        lines = [f"{what}: {len(bad)} of {actual.size} differ"]
        for pos in bad[:10]:
            t = tuple(int(i) for i in pos)
            lines.append(f"  at {t}: got {actual[t]!r}, expected {expected[t]!r}")
        pytest.fail("\n".join(lines))


# ------------------------------------------------------------------------------------------------
# SignSTE
# ------------------------------------------------------------------------------------------------


def test_sign_values_and_sign_of_zero():
    x = torch.tensor([-2.0, -1e-45, -0.0, 0.0, 1e-45, 3.0, float("nan")])
    assert tnn.sign_ste(x).tolist() == [-1, -1, 1, 1, 1, 1, 1]
    t = torch.tensor(0.5)
    assert tnn.sign_ste(torch.tensor([0.49, 0.5, 0.51]), t).tolist() == [-1, 1, 1]
    # The same bits as the kernels' packing (bit = x < t).
    xs = torch.randn(4, 37, generator=torch.Generator().manual_seed(0))
    bits = B.unpack_bits(B.pack_signs(xs.numpy()), 37)
    assert (B.bits_to_pm1(bits) == tnn.sign_ste(xs).numpy()).all()


@pytest.mark.parametrize("grad", ["ste", "approx"])
def test_sign_gradients(grad):
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.25, 1.0, 1.5], requires_grad=True)
    tnn.sign_ste(x, None, grad).sum().backward()
    d = x.detach().abs()
    expected = (d <= 1).float() if grad == "ste" else torch.clamp(2 - 2 * d, min=0)
    assert torch.equal(x.grad, expected)


def test_learnable_threshold_rsign():
    sign = tnn.SignSTE(3, learnable_threshold=True)
    with torch.no_grad():
        sign.threshold.copy_(torch.tensor([0.0, 0.5, -0.5]))
    x = torch.tensor([[[0.2], [0.2], [-0.6]]], requires_grad=True)  # [N=1, C=3, L=1]
    y = sign(x)
    assert y.flatten().tolist() == [1, -1, -1]
    y.sum().backward()
    assert sign.threshold.grad.tolist() == [-1.0, -1.0, -1.0]  # |x - t| <= 1 everywhere
    assert x.grad.flatten().tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        tnn.SignSTE(learnable_threshold=True)


# ------------------------------------------------------------------------------------------------
# Forward == the kernels' reference, exactly
# ------------------------------------------------------------------------------------------------


def conv_reference(m: tnn._BinaryConvNd, x: torch.Tensor) -> np.ndarray:
    """The module's output from tinyc.binary: pack-level bits, integer dots, the _f32 transform."""
    rank = m.rank
    x_cl = np.moveaxis(x.detach().numpy(), 1, -1)  # [N, *S, C]
    if m.input_sign is not None:
        t = m.input_sign.threshold
        xs = B.bits_to_pm1(B.sign_bits(x_cl, 0.0 if t is None else t.detach().numpy()))
    else:
        xs = x_cl.astype(np.int8)
    n, spatial, c = xs.shape[0], xs.shape[1:-1], xs.shape[-1]
    xs = xs.reshape(n, *(1,) * (3 - rank), *spatial, c)
    geom = B.conv_geometry(spatial, m.in_channels, m.out_channels, m.kernel_size, m.stride,
                           m.dilation, m.padding, m.padding, m.groups,
                           pad_value=1 if m.padding_mode == "ones" else 0)
    w = B.bits_to_pm1(B.sign_bits(B.conv_weight_channels_last(m.weight.detach().numpy())))
    dot = B.bconv_dot(xs, w, geom)
    s = m.scale()
    mul = np.ones(m.out_channels, np.float32) if s is None else s.detach().numpy()
    bias = np.zeros(m.out_channels, np.float32) if m.bias is None else m.bias.detach().numpy()
    y = B.transform_f32(dot, mul, bias)
    y = y.reshape(n, *geom.out_shape[3 - rank:], m.out_channels)
    return np.moveaxis(y, -1, 1)


CONV_CONFIGS = [
    dict(rank=1, cin=3, cout=5, k=3, padding=1),
    dict(rank=1, cin=33, cout=8, k=5, padding=2, padding_mode="ones", stride=2),
    dict(rank=2, cin=3, cout=16, k=3, padding=1, padding_mode="ones", scale="mean_abs"),
    dict(rank=2, cin=32, cout=33, k=3, padding=1, stride=2, dilation=2, bias=True),
    dict(rank=2, cin=40, cout=40, k=3, padding=1, groups=40, scale="mean_abs",
         learnable_threshold=True),
    dict(rank=2, cin=64, cout=32, k=1, input_is_binary=True),
    dict(rank=3, cin=4, cout=8, k=3, padding=1, padding_mode="ones", scale="mean_abs"),
    dict(rank=3, cin=16, cout=32, k=(1, 3, 3), padding=(0, 1, 1), groups=4, stride=(1, 2, 2)),
    dict(rank=3, cin=24, cout=48, k=3, padding=1, groups=24, padding_mode="ones",
         learnable_threshold=True, bias=True),  # depthwise, multiplier 2
]


def _make_conv(cfg: dict, seed: int) -> tnn._BinaryConvNd:
    torch.manual_seed(seed)
    kw = {k: v for k, v in cfg.items() if k not in ("rank", "cin", "cout", "k")}
    m = CONVS[cfg["rank"]](cfg["cin"], cfg["cout"], cfg["k"], **kw)
    with torch.no_grad():
        if m.input_sign is not None and m.input_sign.threshold is not None:
            m.input_sign.threshold.uniform_(-0.3, 0.3)
        if m.bias is not None:
            m.bias.uniform_(-1, 1)
    return m


def _conv_input(cfg: dict, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (2, cfg["cin"], *{1: (11,), 2: (7, 6), 3: (4, 5, 6)}[cfg["rank"]])
    if cfg.get("input_is_binary"):
        return torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)
    x = torch.randn(shape, generator=g)
    x[..., 0] = 0.0  # sign(0) = +1 must agree too
    return x


def _cfg_id(cfg: dict) -> str:
    return "_".join(f"{k}{v}" for k, v in cfg.items()).replace(" ", "")


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=_cfg_id)
def test_binary_conv_forward_equals_kernel_reference(cfg):
    m = _make_conv(cfg, seed=0)
    x = _conv_input(cfg, seed=1)
    with torch.no_grad():
        y = m(x)
    assert_exact(y.numpy(), conv_reference(m, x), "module vs tinyc.binary reference")


@pytest.mark.parametrize("scale", ["none", "mean_abs"])
@pytest.mark.parametrize("in_features", [1, 31, 33, 200])
def test_binary_linear_forward_equals_kernel_reference(in_features, scale):
    torch.manual_seed(in_features)
    m = tnn.BinaryLinear(in_features, 10, bias=True, scale=scale, learnable_threshold=True)
    with torch.no_grad():
        m.input_sign.threshold.uniform_(-0.2, 0.2)
        m.bias.uniform_(-1, 1)
    x = torch.randn(5, in_features)
    with torch.no_grad():
        y = m(x)
    xs = B.bits_to_pm1(B.sign_bits(x.numpy(), m.input_sign.threshold.detach().numpy()))
    dot = B.bfc_dot(xs, B.bits_to_pm1(B.sign_bits(m.weight.detach().numpy())))
    s = m.scale()
    mul = np.ones(10, np.float32) if s is None else s.detach().numpy()
    assert_exact(y.numpy(), B.transform_f32(dot, mul, m.bias.detach().numpy()), "linear")


@pytest.mark.parametrize("rank", [2, 3])
def test_conv_bn_sign_equals_threshold_kernel(rank):
    """BinaryConvBN -> SignSTE (with the next layer's RSign threshold) is the _b1 kernel with
    thresholds from sign_thresholds_from_function over PyTorch's own BN; the analytic fold
    (fold_batch_norm + sign_thresholds) agrees on this data."""
    torch.manual_seed(rank)
    block = tnn.BinaryConvBN(rank, 8, 40, 3, padding=1, padding_mode="ones", scale="mean_abs")
    nxt = tnn.SignSTE(40, learnable_threshold=True)
    bn = block.bn
    with torch.no_grad():
        bn.weight.uniform_(-2, 2)
        bn.weight[:3] = 0.0  # zero scale: constant output
        bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.2, 2.0)
        nxt.threshold.uniform_(-0.3, 0.3)
    block.eval()
    x = torch.randn(2, 8, *(5,) * rank)
    with torch.no_grad():
        y = nxt(block(x)).numpy()
    conv = block.conv
    dot = np.moveaxis(np.rint(conv_reference(conv, x) / conv.scale().detach().numpy()
                              .reshape(1, -1, *(1,) * rank)), 1, -1).astype(np.int32)
    n_max = 27 * 8 if rank == 3 else 9 * 8

    def torch_bn_minus_threshold(dots: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            v = torch.from_numpy(dots.astype(np.float32)) * conv.scale()
            v = bn(v.reshape(*v.shape, *(1,) * rank)).reshape(v.shape)  # [rows, C] as [N, C]
            return (v - nxt.threshold).numpy()

    thr, flip = B.sign_thresholds_from_function(torch_bn_minus_threshold, n_max, 40)
    bits = B.transform_b1(dot, thr, flip)
    assert_exact(y, np.moveaxis(B.bits_to_pm1(bits), -1, 1), "BN + sign via thresholds")
    mul, add = B.fold_batch_norm(bn.weight.detach().numpy(), bn.bias.detach().numpy(),
                                 bn.running_mean.numpy(), bn.running_var.numpy(), bn.eps,
                                 scale=conv.scale().detach().numpy())
    thr2, flip2 = B.sign_thresholds(mul, add, n_max, nxt.threshold.detach().numpy())
    assert (B.transform_b1(dot, thr2, flip2) == bits).all(), "analytic fold disagrees"


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------


def test_small_bnn_trains_and_gradients_flow():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16),
        tnn.BinaryConv2d(16, 32, 3, padding=1, stride=2, scale="mean_abs",
                         learnable_threshold=True),
        nn.BatchNorm2d(32), tnn.RPReLU(32),
        tnn.BinaryConv2d(32, 32, 3, padding=1, groups=32, padding_mode="ones"),
        nn.BatchNorm2d(32), nn.Flatten(),
        tnn.BinaryLinear(32 * 16, 4, bias=True), nn.BatchNorm1d(4),
    )
    x = torch.randn(64, 1, 8, 8)
    labels = (x[:, 0, :4].mean((1, 2)) > 0).long() + 2 * (x[:, 0, :, :4].mean((1, 2)) > 0).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    assert losses[-1] < 0.7 * losses[0], losses
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_eeg_like_3d_birealnet_trains():
    """A small 3-D Bi-Real network of the issue's size class (inverted-residual style)."""
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv3d(1, 16, 3, padding=1, bias=False), nn.BatchNorm3d(16),
        tnn.BiRealBlock(3, 16, 16, act="rprelu"),
        tnn.BiRealBlock(3, 16, 32, stride=2, act="rprelu", scale="mean_abs"),
        tnn.BiRealBlock(3, 32, 32, groups=32, padding_mode="ones", learnable_threshold=True),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(32, 3),
    )
    n_params = sum(p.numel() for p in model.parameters())
    assert 6_000 <= n_params <= 25_000, n_params
    x = torch.randn(8, 1, 4, 9, 9)
    labels = torch.arange(8) % 3
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    first = None
    for _ in range(10):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        first = first if first is not None else loss.item()
        opt.step()
    assert loss.item() < first
    assert model[2].body.conv.weight.grad.abs().sum() > 0
    assert model[4].body.conv.input_sign.threshold.grad is not None


def test_bireal_block_shapes_and_shortcuts():
    x = torch.randn(2, 8, 9, 10)
    assert tnn.BiRealBlock(2, 8, 8)(x).shape == (2, 8, 9, 10)
    down = tnn.BiRealBlock(2, 8, 16, stride=2)
    assert down(x).shape == (2, 16, 5, 5)
    assert isinstance(down.shortcut[0], nn.AvgPool2d) and isinstance(down.shortcut[1], nn.Conv2d)
    assert len(tnn.BiRealBlock(2, 8, 8).shortcut) == 0  # identity
    with pytest.raises(ValueError):
        tnn.BiRealBlock(2, 8, 8, act="relu6")


def test_rprelu():
    m = tnn.RPReLU(3)
    with torch.no_grad():
        m.shift_in.copy_(torch.tensor([0.0, 1.0, -1.0]))
        m.slope.copy_(torch.tensor([0.25, 0.5, 0.0]))
        m.shift_out.copy_(torch.tensor([1.0, 0.0, 2.0]))
    x = torch.tensor([[[-2.0], [0.0], [0.5]]])  # [N, C, L]
    assert m(x).flatten().tolist() == [0.5, -0.5, 3.5]
    last = tnn.RPReLU(3, channel_dim=-1)
    last.load_state_dict(m.state_dict())
    assert torch.equal(last(x.transpose(1, 2)), m(x).transpose(1, 2))


def test_bad_arguments():
    with pytest.raises(ValueError):
        tnn.BinaryConv2d(6, 4, 3, groups=4)
    with pytest.raises(ValueError):
        tnn.BinaryConv2d(4, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError):
        tnn.BinaryConv2d(4, 4, 3, scale="learned")
    with pytest.raises(ValueError):
        tnn.BinaryConv3d(4, 4, (3, 3))


# ------------------------------------------------------------------------------------------------
# ONNX export
# ------------------------------------------------------------------------------------------------


def export(model: nn.Module, x: torch.Tensor) -> onnx.ModelProto:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), buf, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


def _consts(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
    return values


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node if n.op_type not in ("Constant", "Identity")]


def _run_ort(model: onnx.ModelProto, x: torch.Tensor) -> np.ndarray:
    """onnxruntime without graph optimizations: its Conv-Mul / Conv-BatchNorm fusions fold the
    scale into the +/-1 weights, and the convolution of real weights is no longer exact."""
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), options)
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=_cfg_id)
def test_conv_exports_documented_pattern_and_runs_exactly(cfg):
    m = _make_conv(cfg, seed=2)
    x = _conv_input(cfg, seed=3)
    model = export(m, x)
    expected = [] if cfg.get("input_is_binary") else ["Less", "Where"]
    if cfg.get("padding_mode") == "ones":
        expected.append("Pad")
    expected.append("Conv")
    if cfg.get("scale") == "mean_abs":
        expected.append("Mul")
    if cfg.get("bias"):
        expected.append("Add")
    assert _ops(model) == expected
    consts = _consts(model)
    nodes = {n.op_type: n for n in model.graph.node}
    w = consts[nodes["Conv"].input[1]]
    assert w.shape == tuple(m.weight.shape) and set(np.unique(w)) <= {-1.0, 1.0}
    assert (w == m.binary_weight().detach().numpy()).all()
    assert len(nodes["Conv"].input) == 2, "no Conv bias"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes["Conv"].attribute}
    if "Pad" in nodes:
        pad = nodes["Pad"]
        assert consts[pad.input[2]].item() == 1.0
        assert consts[pad.input[1]].tolist() == [0, 0, *m.padding, 0, 0, *m.padding]
        assert not any(attrs["pads"])
    else:
        assert attrs["pads"] == [*m.padding, *m.padding]
    if "Less" in nodes:
        t = consts[nodes["Less"].input[1]]
        thr = m.input_sign.threshold
        assert (t == 0).all() if thr is None else (t.ravel() == thr.detach().numpy()).all()
    if "Mul" in nodes:
        s = consts[nodes["Mul"].input[1]]
        assert (s.ravel() == m.scale().detach().numpy()).all()
    with torch.no_grad():
        y = m(x).numpy()
    assert_exact(_run_ort(model, x), y, "onnxruntime vs PyTorch")


def test_linear_and_network_export():
    torch.manual_seed(5)
    model = nn.Sequential(
        tnn.BinaryConv2d(3, 8, 3, padding=1, scale="mean_abs"), nn.BatchNorm2d(8),
        tnn.RPReLU(8), nn.Flatten(), tnn.BinaryLinear(8 * 16, 6, scale="mean_abs", bias=True),
    )
    x = torch.randn(2, 3, 4, 4)
    exported = export(model, x)
    assert _ops(exported) == ["Less", "Where", "Conv", "Mul", "BatchNormalization", "Sub",
                              "PRelu", "Add", "Flatten", "Less", "Where", "MatMul", "Mul", "Add"]
    consts = _consts(exported)
    matmul = next(n for n in exported.graph.node if n.op_type == "MatMul")
    wt = consts[matmul.input[1]]
    assert wt.shape == (128, 6) and set(np.unique(wt)) <= {-1.0, 1.0}
    with torch.no_grad():
        y = model(x).numpy()
    assert_exact(_run_ort(exported, x), y, "onnxruntime vs PyTorch, whole network")


def test_torchscript_trace_saves_and_deploys_exactly(tmp_path):
    """torch.jit.trace + torch.jit.save of tinyc.nn layers (one padding, learned thresholds,
    XNOR scales, a binary dense layer), then `tinyc verify` on host and QEMU: exact."""
    from helpers import tinyc

    torch.manual_seed(6)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16),
        tnn.BinaryConv2d(16, 40, 3, padding=1, padding_mode="ones", learnable_threshold=True,
                         scale="mean_abs"), nn.BatchNorm2d(40), nn.MaxPool2d(2),
        tnn.BinaryConv2d(40, 35, 3, padding=1), nn.BatchNorm2d(35),
        nn.Flatten(), tnn.BinaryLinear(35 * 16, 10, bias=True, scale="mean_abs"))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # trained-looking statistics
            m.running_mean.uniform_(-2, 2)
            m.running_var.uniform_(0.5, 3)
            m.weight.data.uniform_(-1, 1)
        if isinstance(m, tnn.SignSTE) and m.threshold is not None:
            m.threshold.data.uniform_(-0.5, 0.5)
    model.eval()
    x = torch.randn(4, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, torch.zeros(1, 1, 8, 8))
    with torch.no_grad():
        assert_exact(traced(x).numpy(), model(x).numpy(), "traced vs eager")
    torch.jit.save(traced, str(tmp_path / "bnn.pt"))
    result = tinyc("verify", tmp_path / "bnn.pt", "--input-shape", "1x1x8x8", "--samples", "4",
                   "--json")
    assert result.code == 0, result.stderr + result.stdout
    report = result.json()
    assert report["verdict"] == "PASS"
    for target in report["targets"]:
        assert all(out["max_abs_error"] == 0.0 for out in target["outputs"])
    compiled = tinyc("compile", tmp_path / "bnn.pt", "--input-shape", "1x1x8x8", "-o",
                     tmp_path / "out", "--json").json()
    ops = [layer["op"] for layer in compiled["layers"]]
    assert ops.count("BinaryConv") == 2 and "BinaryDense" in ops


def test_export_pattern_description_is_documented():
    text = tnn.export_pattern_description()
    for word in ("Less", "Where", "Pad", "Conv", "Mul", "MatMul", "dynamo=False"):
        assert word in text
