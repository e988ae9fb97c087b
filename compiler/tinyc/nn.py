"""Drop-in PyTorch modules for training binarized neural networks that tinyc deploys exactly.

Semantics (what the forward computes, and so what the deployed integer kernels reproduce):

  * SignSTE(x) = +1 where x >= t, -1 where x < t, with t = 0 or a learned per-channel threshold
    (ReActNet's RSign).  sign(0) := +1, not 0: a binary value must be one of the two packed
    states (bit 1 = -1, bit 0 = +1), and 0 >= 0 keeps "bit = x < t" a single comparison, the
    same in PyTorch, ONNX (Less) and C (tc_bitpack_*).  NaN gives +1.  Backward: the
    straight-through estimator grad * 1{|x - t| <= 1} ("ste", Larq's ste_sign), or Bi-Real's
    ApproxSign grad * max(0, 2 - 2|x - t|) ("approx").
  * A binary layer (BinaryConv1d/2d/3d, BinaryLinear) computes
        y = conv(pad(sign(x)), sign(w)) * scale (+ bias)
    where sign(w) uses SignSTE with t = 0 on the latent real weights, scale is None or the
    per-output-channel mean |w| of XNOR-Net (gradient flows into it), and pad is
      padding_mode="zeros": PyTorch's zero padding: padded positions contribute 0 (neither +1
                            nor -1; deployed with no table: the kernel skips padded taps);
      padding_mode="ones":  padded positions are +1 (Larq's pad_values=1; deployed with
                            binary.padding_correction's table).
    The convolution of +/-1 data is an integer, exact in float32 whatever the summation order
    while |dot| < 2^24, so y is fl(dot * scale) (then fl(... + bias)): bit for bit what the
    kernels' _f32 transform computes with mul = scale, bias = bias.  The input is binarized by
    the layer's own SignSTE unless input_is_binary=True (the input is then used as given and
    must already be +/-1).

Saving: torch.save(model) (a pickled module) or torch.jit.trace + torch.jit.save (while
tracing, the modules record plain operators instead of their autograd Functions, which a
TorchScript file cannot hold; the values are the same).  torch.jit.script is not supported.

ONNX export (torch.onnx.export(..., dynamo=False), do_constant_folding=True, the defaults)
produces, per layer, exactly this pattern, which the compiler matches:

    SignSTE:       Less(x, T) -> Where(less, -1.0, +1.0)
                   T: scalar float32 Constant 0.0, or the threshold initializer [1, C, 1, ...]
    BinaryConvNd:  [SignSTE pattern] -> [Pad(mode="constant", pads=Constant int64,
                   value=Constant 1.0): padding_mode="ones" with nonzero padding only]
                   -> Conv(W, no bias; pads = the zero padding, 0 with "ones")
                   -> [Mul(y, S): scale="mean_abs"] -> [Add(y, B): bias=True]
                   W: float32 initializer with values in {-1, +1} (Where folded on the latent
                   weights); S: float32 Constant node [1, C_out, 1, ...] holding the scale
                   PyTorch computed; B: initializer [1, C_out, 1, ...]
    BinaryLinear:  [SignSTE pattern] -> MatMul(x, W^T) -> [Mul(y, S)] -> [Add(y, B)]
                   W^T: float32 initializer [in, out] in {-1, +1}; S: Constant [C_out];
                   B: initializer [C_out]  (a Flatten may precede the SignSTE pattern)
    Identical initializers may be shared through Identity nodes (the exporter deduplicates).
    RPReLU:        Sub(x, gamma) -> PRelu(., slope) -> Add(., zeta)  (real valued)
    BatchNorm:     BatchNormalization (not fused into the Conv by the exporter, because W is
                   not a plain initializer when the fusion runs)
The input SignSTE pattern is absent with input_is_binary=True.  `export_pattern_description()`
returns this text.  The exported graph is exact in ONNX semantics too (Less/Where give sign(0)
= +1, ONNX Sign would not), so onnxruntime reproduces the PyTorch forward bit for bit.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Grad = Literal["ste", "approx"]
PaddingMode = Literal["zeros", "ones"]
Scale = Literal["none", "mean_abs"]


def export_pattern_description() -> str:
    """The ONNX patterns the modules of this file export to (the module docstring's part)."""
    doc = __doc__ or ""
    return doc[doc.index("ONNX export"):].strip()


# ------------------------------------------------------------------------------------------------
# Autograd functions (forward, straight-through backward, ONNX symbolic)
# ------------------------------------------------------------------------------------------------


def _sum_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient back to `shape` (same rank, size-1 axes reduced)."""
    dims = [i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1]
    return grad.sum(dim=dims, keepdim=True) if dims else grad


class _Sign(torch.autograd.Function):
    """sign(x - t) with sign(0) = +1 as `x < t`; STE backward; Less -> Where in ONNX."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, threshold: torch.Tensor | None, grad: str) -> torch.Tensor:
        t = threshold if threshold is not None else torch.zeros((), dtype=x.dtype)
        ctx.save_for_backward(x, t)
        ctx.grad = grad
        ctx.has_threshold = threshold is not None
        one = torch.ones((), dtype=x.dtype, device=x.device)
        return torch.where(x < t, -one, one)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, t = ctx.saved_tensors
        d = (x - t).abs()
        if ctx.grad == "approx":
            gx = g * torch.clamp(2.0 - 2.0 * d, min=0.0)
        else:
            gx = g * (d <= 1.0).to(g.dtype)
        gt = -_sum_to(gx, t.shape) if ctx.has_threshold and ctx.needs_input_grad[1] else None
        return gx, gt, None

    @staticmethod
    def symbolic(g, x, threshold, grad):  # the ONNX graph of forward; grad is unused
        t = threshold if threshold is not None else g.op(
            "Constant", value_t=torch.tensor(0.0, dtype=torch.float32))
        less = g.op("Less", x, t)
        minus = g.op("Constant", value_t=torch.tensor(-1.0, dtype=torch.float32))
        plus = g.op("Constant", value_t=torch.tensor(1.0, dtype=torch.float32))
        return g.op("Where", less, minus, plus)


class _PadConstant(torch.autograd.Function):
    """F.pad with a constant, exported as one Pad node with constant pads (F.pad's own export
    builds the pads at run time from a dozen shape ops)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, pads: tuple[int, ...], value: float) -> torch.Tensor:
        ctx.pads = pads
        return F.pad(x, pads, value=value)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        return F.pad(g, [-p for p in ctx.pads]), None, None  # negative pads crop

    @staticmethod
    def symbolic(g, x, pads, value):
        spatial = len(pads) // 2  # F.pad order: last axis first, (begin, end) pairs
        begins = [pads[2 * (spatial - 1 - i)] for i in range(spatial)]
        ends = [pads[2 * (spatial - 1 - i) + 1] for i in range(spatial)]
        onnx_pads = [0, 0, *begins, 0, 0, *ends]
        return g.op(
            "Pad", x,
            g.op("Constant", value_t=torch.tensor(onnx_pads, dtype=torch.int64)),
            g.op("Constant", value_t=torch.tensor(float(value), dtype=torch.float32)),
            mode_s="constant",
        )


def _recording_trace() -> bool:
    """True inside torch.jit.trace (not the ONNX exporter's own trace).  A trace records a
    custom autograd Function as a Python call that torch.jit.save cannot store, so while
    tracing, which only serves inference, the modules record their forward as plain operators:
    the same values, and once exported to ONNX the same Less -> Where / Pad pattern."""
    return torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export()


def sign_ste(x: torch.Tensor, threshold: torch.Tensor | None = None,
             grad: Grad = "ste") -> torch.Tensor:
    """+1 where x >= threshold, -1 where x < threshold (threshold broadcasts; None is 0), with a
    straight-through gradient (module docstring)."""
    if _recording_trace():
        return torch.where(x < (0.0 if threshold is None else threshold), -1.0, 1.0)
    return _Sign.apply(x, threshold, grad)


def pad_constant(x: torch.Tensor, pads: tuple[int, ...], value: float) -> torch.Tensor:
    """F.pad(x, pads, value=value) that exports as one Pad node with constant pads."""
    if _recording_trace():
        return F.pad(x, pads, value=value)
    return _PadConstant.apply(x, pads, value)


# ------------------------------------------------------------------------------------------------
# Modules
# ------------------------------------------------------------------------------------------------


class SignSTE(nn.Module):
    """Binary activation sign(x - t), sign(0) = +1, straight-through gradient.

    channels / learnable_threshold: a learned per-channel threshold t (ReActNet's RSign, init 0)
    along channel_dim (1 for [N, C, ...], -1 for channels-last features).  Deployed as the
    threshold of tc_bitpack_f32 (bit = x < t, exact).
    """

    def __init__(self, channels: int | None = None, learnable_threshold: bool = False,
                 grad: Grad = "ste", channel_dim: int = 1) -> None:
        super().__init__()
        if learnable_threshold and channels is None:
            raise ValueError("a learnable threshold needs the channel count")
        self.grad: Grad = grad
        self.channel_dim = channel_dim
        self.threshold = nn.Parameter(torch.zeros(channels)) if learnable_threshold else None

    def broadcast_threshold(self, x: torch.Tensor) -> torch.Tensor | None:
        """The threshold shaped to broadcast against x, or None (threshold 0)."""
        if self.threshold is None:
            return None
        shape = [1] * x.dim()
        shape[self.channel_dim] = -1
        return self.threshold.view(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sign_ste(x, self.broadcast_threshold(x), self.grad)


def _tuple(value: int | Sequence[int], rank: int, name: str) -> tuple[int, ...]:
    values = (value,) * rank if isinstance(value, int) else tuple(int(v) for v in value)
    if len(values) != rank:
        raise ValueError(f"{name}: expected {rank} values, got {values}")
    return values


class _BinaryLayer(nn.Module):
    """Shared by the binary layers: input binarization, weight binarization, scale, bias."""

    weight: nn.Parameter

    def _init_common(self, in_channels: int, out_channels: int, bias: bool, scale: Scale,
                     input_is_binary: bool, learnable_threshold: bool, grad: Grad,
                     channel_dim: int) -> None:
        if scale not in ("none", "mean_abs"):
            raise ValueError(f"scale must be 'none' or 'mean_abs', got {scale!r}")
        self.scale_mode: Scale = scale
        self.input_sign = None if input_is_binary else SignSTE(
            in_channels, learnable_threshold, grad, channel_dim)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def binary_weight(self) -> torch.Tensor:
        """sign(w) in {-1, +1} (sign(0) = +1), straight-through to the latent weights."""
        return sign_ste(self.weight, None, "ste")

    def scale(self) -> torch.Tensor | None:
        """The per-output-channel scale [out] (mean |w| over all but axis 0), or None."""
        if self.scale_mode == "none":
            return None
        return self.weight.abs().mean(dim=tuple(range(1, self.weight.dim())))

    def _binarize_input(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.input_sign is None else self.input_sign(x)

    def _finish(self, y: torch.Tensor, channel_dim: int) -> torch.Tensor:
        """y * scale (+ bias), each a separate float32 operation (one rounding each)."""
        shape = [1] * y.dim()
        shape[channel_dim] = -1
        s = self.scale()
        if s is not None:
            if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
                # A constant of the values PyTorch computed: the exporter does not fold
                # Abs -> ReduceMean, and another runtime's summation order could change the
                # last bit of the scale.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", torch.jit.TracerWarning)
                    s = torch.tensor(s.tolist(), dtype=s.dtype)
            y = y * s.view(shape)
        if self.bias is not None:
            y = y + self.bias.view(shape)
        return y


class _BinaryConvNd(_BinaryLayer):
    rank = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                 dilation: int | Sequence[int] = 1, groups: int = 1, bias: bool = False,
                 padding_mode: PaddingMode = "zeros", scale: Scale = "none",
                 input_is_binary: bool = False, learnable_threshold: bool = False,
                 grad: Grad = "ste") -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups {groups} must divide {in_channels} and {out_channels}")
        if padding_mode not in ("zeros", "ones"):
            raise ValueError(f"padding_mode must be 'zeros' or 'ones', got {padding_mode!r}")
        r = self.rank
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, r, "kernel_size")
        self.stride = _tuple(stride, r, "stride")
        self.padding = _tuple(padding, r, "padding")
        self.dilation = _tuple(dilation, r, "dilation")
        self.padding_mode: PaddingMode = padding_mode
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.ConvNd's initialisation
        self._init_common(in_channels, out_channels, bias, scale, input_is_binary,
                          learnable_threshold, grad, channel_dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._binarize_input(x)
        conv = (F.conv1d, F.conv2d, F.conv3d)[self.rank - 1]
        padding = self.padding
        if self.padding_mode == "ones" and any(padding):
            pads = tuple(p for v in reversed(padding) for p in (v, v))
            x = pad_constant(x, pads, 1.0)
            padding = (0,) * self.rank
        y = conv(x, self.binary_weight(), None, self.stride, padding, self.dilation, self.groups)
        return self._finish(y, channel_dim=1)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, padding_mode={self.padding_mode}, "
                f"scale={self.scale_mode}, input_is_binary={self.input_sign is None}")


class BinaryConv1d(_BinaryConvNd):
    """Binary 1-D convolution, [N, C, L]; see the module docstring for the exact semantics."""

    rank = 1


class BinaryConv2d(_BinaryConvNd):
    """Binary 2-D convolution, [N, C, H, W]; see the module docstring."""

    rank = 2


class BinaryConv3d(_BinaryConvNd):
    """Binary 3-D convolution, [N, C, D, H, W]; see the module docstring."""

    rank = 3


class BinaryLinear(_BinaryLayer):
    """Binary fully connected layer on [N, in_features] (or [..., in_features]): y =
    sign(x) @ sign(w).T * scale (+ bias); see the module docstring."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 scale: Scale = "none", input_is_binary: bool = False,
                 learnable_threshold: bool = False, grad: Grad = "ste") -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self._init_common(in_features, out_features, bias, scale, input_is_binary,
                          learnable_threshold, grad, channel_dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(self._binarize_input(x), self.binary_weight())
        return self._finish(y, channel_dim=-1)


class RPReLU(nn.Module):
    """ReActNet's RPReLU: PReLU(x - gamma, slope) + zeta, all three per channel (real valued)."""

    def __init__(self, channels: int, init_slope: float = 0.25, channel_dim: int = 1) -> None:
        super().__init__()
        self.channel_dim = channel_dim
        self.shift_in = nn.Parameter(torch.zeros(channels))
        self.slope = nn.Parameter(torch.full((channels,), float(init_slope)))
        self.shift_out = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1] * x.dim()
        shape[self.channel_dim] = -1
        y = x - self.shift_in.view(shape)
        y = torch.where(y >= 0, y, y * self.slope.view(shape)) if self.channel_dim != 1 \
            else F.prelu(y, self.slope)
        return y + self.shift_out.view(shape)


_BATCH_NORMS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_AVG_POOLS = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BINARY_CONVS = {1: BinaryConv1d, 2: BinaryConv2d, 3: BinaryConv3d}


class BinaryConvBN(nn.Module):
    """A binary convolution followed by BatchNorm: the unit the compiler fuses into one kernel
    (BN folded into the _f32 / _s8 transform, or with a following SignSTE into the _b1
    thresholds).  Arguments as for BinaryConv{rank}d."""

    def __init__(self, rank: int, in_channels: int, out_channels: int,
                 kernel_size: int | Sequence[int], **conv_kwargs) -> None:
        super().__init__()
        self.conv = _BINARY_CONVS[rank](in_channels, out_channels, kernel_size, **conv_kwargs)
        self.bn = _BATCH_NORMS[rank](out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class BiRealBlock(nn.Module):
    """Bi-Real Net's block: y = act(BN(BinaryConv(sign(x))) + shortcut(x)), the shortcut
    carrying the real-valued x around the binary convolution.

    shortcut: identity when the shapes match; otherwise Bi-Real's downsampling, AvgPool(stride,
    ceil_mode, count_include_pad=False) when stride > 1, then a real 1x1 Conv + BN when the
    channel count changes.  padding defaults to kernel_size // 2 ("same" for odd kernels).
    act: "none", "rprelu" (ReActNet) or "hardtanh".
    """

    def __init__(self, rank: int, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int | None = None, groups: int = 1,
                 padding_mode: PaddingMode = "zeros", scale: Scale = "none",
                 learnable_threshold: bool = False, act: str = "none") -> None:
        super().__init__()
        self.body = BinaryConvBN(
            rank, in_channels, out_channels, kernel_size, stride=stride,
            padding=kernel_size // 2 if padding is None else padding, groups=groups,
            padding_mode=padding_mode, scale=scale, learnable_threshold=learnable_threshold)
        layers: list[nn.Module] = []
        if stride > 1:
            layers.append(_AVG_POOLS[rank](stride, stride, ceil_mode=True,
                                           count_include_pad=False))
        if in_channels != out_channels:
            layers += [_CONVS[rank](in_channels, out_channels, 1, bias=False),
                       _BATCH_NORMS[rank](out_channels)]
        self.shortcut = nn.Sequential(*layers)
        if act == "none":
            self.act: nn.Module = nn.Identity()
        elif act == "rprelu":
            self.act = RPReLU(out_channels)
        elif act == "hardtanh":
            self.act = nn.Hardtanh()
        else:
            raise ValueError(f"act must be 'none', 'rprelu' or 'hardtanh', got {act!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))
