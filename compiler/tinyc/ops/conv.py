"""Conv and ConvTranspose (1-D, 2-D, 3-D; groups; stride, dilation, explicit padding).

Canonical attributes (the frontends resolve auto_pad, output_shape and defaults into these):
  kernel_shape  tuple[int]   spatial kernel extent, one per spatial axis
  strides, dilations         tuple[int], one per spatial axis
  pads          tuple[int]   leading pads of every spatial axis, then trailing pads
  group         int
  output_padding tuple[int]  ConvTranspose only: extra trailing output rows
  channels_last bool         False: x [N, C, *S], Conv w [Co, Ci/g, *K], ConvT w [Ci, Co/g, *K]
                             True:  x [N, *S, C], Conv w [Co, *K, Ci/g], ConvT w [Ci, *K, Co/g]
  act_min, act_max float     optional fused clamp
Inputs: x, w (constant), b (optional, [Co]).  Kernels exist for channels_last only; the layout
pass converts every channels-first convolution before code generation.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from tinyc.errors import UnsupportedOperator
from tinyc.ir import Graph, Node
from tinyc.ops import (
    ALIGNMENT,
    InPlace,
    KernelCall,
    Shape,
    apply_clamp,
    clamp_of,
    clamp_summary,
    fmt_shape,
    register,
    shape_of,
    window_in_place,
)
from tinyc.ops.fast_s8 import optimize_s8
from tinyc.ops.quantized import (
    DerivedConst,
    S8Kernel,
    act_range,
    emit_s8,
    evaluate_s8,
    int8_range_summary,
    is_hybrid,
    is_int8,
    per_tensor,
    quant,
)
from tinyc.quant import arith, hybrid


def spatial_rank(node: Node) -> int:
    return len(node.attrs["kernel_shape"])


def to_channels_first(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, -1, 1)


def to_channels_last(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, 1, -1)


def conv_out_size(size: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    return (size + pb + pe - d * (k - 1) - 1) // s + 1


def conv_transpose_out_size(size: int, k: int, s: int, d: int, pb: int, pe: int, op: int) -> int:
    return (size - 1) * s - pb - pe + d * (k - 1) + 1 + op


def _split(node: Node, graph: Graph) -> tuple[int, int, Shape]:
    """(batch, channels, spatial shape) of the input."""
    x = shape_of(graph, node.inputs[0])
    if node.attrs["channels_last"]:
        return x[0], x[-1], x[1:-1]
    return x[0], x[1], x[2:]


def _assemble(node: Node, batch: int, channels: int, spatial: list[int]) -> Shape:
    if node.attrs["channels_last"]:
        return (batch, *spatial, channels)
    return (batch, channels, *spatial)


def _infer_conv(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    a = node.attrs
    n, _, sp = _split(node, graph)
    nsp = len(sp)
    out_c = shape_of(graph, node.inputs[1])[0]
    out = [
        conv_out_size(sp[i], a["kernel_shape"][i], a["strides"][i], a["dilations"][i],
                      a["pads"][i], a["pads"][i + nsp])
        for i in range(nsp)
    ]
    return [(_assemble(node, n, out_c, out), graph.tensors[node.inputs[0]].dtype)]


def _infer_conv_transpose(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    a = node.attrs
    n, _, sp = _split(node, graph)
    nsp = len(sp)
    w = shape_of(graph, node.inputs[1])
    out_c = (w[-1] if a["channels_last"] else w[1]) * a["group"]
    out = [
        conv_transpose_out_size(sp[i], a["kernel_shape"][i], a["strides"][i],
                                a["dilations"][i], a["pads"][i], a["pads"][i + nsp],
                                a["output_padding"][i])
        for i in range(nsp)
    ]
    return [(_assemble(node, n, out_c, out), "float32")]


def _window(start: int, count: int, step: int) -> slice:
    return slice(start, start + (count - 1) * step + 1, step)


def conv_nchw(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, node: Node) -> np.ndarray:
    """Reference convolution, channels first (NumPy, float32 accumulation per tap)."""
    a = node.attrs
    nsp = x.ndim - 2
    pads = a["pads"]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[i + nsp]) for i in range(nsp)])
    ks, ss, ds, g = a["kernel_shape"], a["strides"], a["dilations"], a["group"]
    out = [(xp.shape[2 + i] - ds[i] * (ks[i] - 1) - 1) // ss[i] + 1 for i in range(nsp)]
    cig, cog = x.shape[1] // g, w.shape[0] // g
    y = np.zeros((x.shape[0], w.shape[0], *out), dtype=np.float32)
    for gi in range(g):
        xs = xp[:, gi * cig:(gi + 1) * cig]
        ws = w[gi * cog:(gi + 1) * cog]
        for tap in itertools.product(*(range(k) for k in ks)):
            window = tuple(_window(tap[i] * ds[i], out[i], ss[i]) for i in range(nsp))
            patch = xs[(slice(None), slice(None), *window)]
            y[:, gi * cog:(gi + 1) * cog] += np.einsum(
                "nc...,oc->no...", patch, ws[(slice(None), slice(None), *tap)]
            ).astype(np.float32)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nsp)
    return y


def conv_transpose_nchw(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, node: Node
) -> np.ndarray:
    """Reference transposed convolution, channels first: scatter every tap, then crop."""
    a = node.attrs
    nsp = x.ndim - 2
    ks, ss, ds, g = a["kernel_shape"], a["strides"], a["dilations"], a["group"]
    pads, op = a["pads"], a["output_padding"]
    cig, cog = x.shape[1] // g, w.shape[1]
    insp = x.shape[2:]
    full = [(insp[i] - 1) * ss[i] + ds[i] * (ks[i] - 1) + 1 + op[i] for i in range(nsp)]
    y = np.zeros((x.shape[0], cog * g, *full), dtype=np.float32)
    for gi in range(g):
        xs = x[:, gi * cig:(gi + 1) * cig]
        ws = w[gi * cig:(gi + 1) * cig]
        for tap in itertools.product(*(range(k) for k in ks)):
            window = tuple(_window(tap[i] * ds[i], insp[i], ss[i]) for i in range(nsp))
            contrib = np.einsum("nc...,co->no...", xs, ws[(slice(None), slice(None), *tap)])
            y[(slice(None), slice(gi * cog, (gi + 1) * cog), *window)] += contrib
    crop = tuple(slice(pads[i], full[i] - pads[i + nsp]) for i in range(nsp))
    y = y[(slice(None), slice(None), *crop)]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nsp)
    return np.ascontiguousarray(y, dtype=np.float32)


def _int8_weight_conv(node: Node, graph: Graph):
    """(x, w, y, weight quantization, geometry params) of a Conv with int8 weights, checked:
    channels-last Conv (not ConvTranspose), scales per output channel."""
    if node.op != "Conv" or not node.attrs["channels_last"]:
        raise UnsupportedOperator(f"{node.op} node '{node.name}': int8 weights are supported "
                                  "for Conv")
    x, w, y = (graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]],
               graph.tensors[node.outputs[0]])
    wq = quant(graph, w.name, node)
    if wq.per_channel and wq.axis != 0:
        raise UnsupportedOperator(f"Conv node '{node.name}': weights quantized along axis "
                                  f"{wq.axis}; int8 kernels take per-output-channel scales")
    geometry = spatial_params(node, graph) | {
        "in_c": x.shape[-1], "out_c": y.shape[-1], "groups": node.attrs["group"]}
    return x, w, y, wq, geometry


def _conv_s8(node: Node, graph: Graph) -> S8Kernel:
    """int8 Conv: tc_conv_s8, or tc_depthwise_conv_s8 (TFLite's [K..., C*m] weight layout)
    when every group holds one input channel."""
    x, w, y, wq, geometry = _int8_weight_conv(node, graph)
    xq, yq = per_tensor(graph, x.name, node), per_tensor(graph, y.name, node)
    lo, hi = act_range(node, graph)
    params = geometry | arith.conv_params(xq.s, xq.zp, wq.scale, yq.s, yq.zp, lo, hi)
    k = pad3(node.attrs["kernel_shape"], 1)
    depthwise = node.attrs["group"] == x.shape[-1] and w.shape[-1] == 1 and x.shape[-1] > 1
    if depthwise:
        weights = DerivedConst("weight_khwc",
                               np.ascontiguousarray(w.data.reshape(w.shape[0], *k).transpose(
                                   1, 2, 3, 0)))
        function, reference = "tc_depthwise_conv_s8", arith.depthwise_conv_s8
    else:
        weights, function, reference = w.name, "tc_conv_s8", arith.conv_s8
    # Both portable kernels compute output pixels in order, channel by channel from the window.
    in_place = window_in_place(x.name, graph, geometry, (x.shape[-1], y.shape[-1]), 1, group=1,
                               rereads=True)
    portable = S8Kernel(function, "tc_conv_s8.c", "tc_conv_s8.h", "tc_conv_s8_params_t",
                        params, [x.name, weights, node.input(2)], reference,
                        _summary(node, graph) + int8_range_summary(lo, hi),
                        pointers=("multiplier", "shift"), in_place=in_place)
    return optimize_s8(portable, graph)


def _conv_hybrid(node: Node, graph: Graph) -> S8Kernel:
    """Float input, int8 weights (a dynamic-range "hybrid" model): tc_conv_hybrid."""
    x, w, _, wq, geometry = _int8_weight_conv(node, graph)
    lo, hi = clamp_of(node)
    params = {f"conv.{k}": v for k, v in geometry.items()} | {
        "per_channel": int(wq.per_channel), "weight_scale": tuple(float(s) for s in wq.scale),
        "act_min": lo, "act_max": hi}
    return S8Kernel("tc_conv_hybrid", "tc_hybrid.c", "tc_hybrid.h", "tc_conv_hybrid_params_t",
                    params, [x.name, w.name, node.input(2)], hybrid.conv_hybrid,
                    _summary(node, graph) + ", int8 weights (dynamic range)" +
                    clamp_summary(node), pointers=("weight_scale",),
                    scratch_bytes=x.size // x.shape[0])


def _evaluate(reference):
    def evaluate(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
        if is_int8(graph, node.inputs[0]):
            return evaluate_s8(_conv_s8, node, inputs, graph)
        if is_hybrid(node, graph):
            return evaluate_s8(_conv_hybrid, node, inputs, graph)
        x, w, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
        if node.attrs["channels_last"]:
            y = reference(to_channels_first(x), to_channels_first(w), b, node)
            y = to_channels_last(y)
        else:
            y = reference(x, w, b, node)
        return [apply_clamp(node, np.ascontiguousarray(y, dtype=np.float32))]

    return evaluate


def pad3(values: tuple[int, ...], fill: int) -> list[int]:
    """Spatial values of a 1-D/2-D/3-D operator as (D, H, W), filling the missing leading axes."""
    return [fill] * (3 - len(values)) + list(values)


def spatial_params(node: Node, graph: Graph) -> dict[str, int]:
    """The (D, H, W) geometry shared by the conv and pool parameter structs."""
    a = node.attrs
    nsp = spatial_rank(node)
    x = shape_of(graph, node.inputs[0])
    y = shape_of(graph, node.outputs[0])
    in_sp, out_sp = pad3(x[1:-1], 1), pad3(y[1:-1], 1)
    k, s = pad3(a["kernel_shape"], 1), pad3(a["strides"], 1)
    d = pad3(a.get("dilations", (1,) * nsp), 1)
    pb = pad3(a["pads"][:nsp], 0)
    fields = {"in": in_sp, "out": out_sp, "k": k, "stride": s, "dilation": d, "pad": pb}
    params: dict[str, int] = {"batch": x[0]}
    for key, values in fields.items():
        params |= {f"{key}_{axis}": values[i] for i, axis in enumerate("dhw")}
    return params


def _summary(node: Node, graph: Graph) -> str:
    a = node.attrs
    x, y = shape_of(graph, node.inputs[0]), shape_of(graph, node.outputs[0])
    dtype = graph.tensors[node.inputs[0]].dtype
    return (
        f"{node.op} {'x'.join(map(str, a['kernel_shape']))}"
        f" stride {'x'.join(map(str, a['strides']))}"
        f" pads {list(a['pads'])}"
        + (f" dilation {'x'.join(map(str, a['dilations']))}"
           if any(d != 1 for d in a["dilations"]) else "")
        + (f" groups {a['group']}" if a["group"] != 1 else "")
        + f", {fmt_shape(x)} -> {fmt_shape(y)}"
        + (f" {dtype}" if dtype != "float32" else f"{clamp_summary(node)}")
    )


def _emit(function: str, source: str):
    def emit(node: Node, graph: Graph) -> KernelCall:
        assert node.attrs["channels_last"], "layout pass must run before code generation"
        if is_int8(graph, node.inputs[0]):
            return emit_s8(_conv_s8(node, graph), node)
        if is_hybrid(node, graph):
            return emit_s8(_conv_hybrid(node, graph), node)
        a = node.attrs
        x, y = shape_of(graph, node.inputs[0]), shape_of(graph, node.outputs[0])
        lo, hi = clamp_of(node)
        params = spatial_params(node, graph) | {
            "in_c": x[-1], "out_c": y[-1], "groups": a["group"], "act_min": lo, "act_max": hi,
        }
        summary = _summary(node, graph)
        w = graph.tensors[node.inputs[1]].data
        dw_blocked = node.op == "Conv" and w is not None and _depthwise_blocked(params)
        blocked = node.op == "Conv" and w is not None and (_blocked(params) or dw_blocked)
        depthwise = node.op == "Conv" and not dw_blocked and _depthwise3x3(params)
        kernel, weights, sources = function, node.inputs[1], (source,)
        if dw_blocked:
            kernel = "tc_depthwise_conv_blocked_f32"
            weights = DerivedConst("weight_blocked", blocked_weights(w))
        elif blocked:
            kernel = "tc_conv_pointwise_f32" if _pointwise(params) else "tc_conv_blocked_f32"
            weights = DerivedConst("weight_blocked", blocked_weights(w))
        elif depthwise:
            kernel = "tc_depthwise_conv3x3_3d_f32" if params["k_d"] > 1 else \
                "tc_depthwise_conv3x3_f32"
            sources = ("tc_depthwise_f32.c",)
        # In-place order: tc_conv_f32 computes output pixels in order, channel by channel from
        # the window; tc_conv_blocked_f32 pixel pairs from even pixels on, channel block by
        # block from both windows; the depthwise kernels each channel's pixels in order, a
        # channel after the other, the 3-D one a row at a time (it adds the depth slices to
        # the row, so a row is written before its windows are all read).  ConvTranspose
        # scatters: never in place.
        group = 1
        if blocked:
            group = 2
        elif depthwise and params["k_d"] > 1:
            group = params["out_w"]
        in_place = () if node.op != "Conv" else window_in_place(
            node.inputs[0], graph, params, (x[-1], y[-1]), 4, group=group, rereads=True)
        if depthwise:
            out_bytes = graph.tensors[node.outputs[0]].size * 4
            in_place = tuple(a for p in in_place
                             if (a := _pixel_aligned(p, x[-1] * 4, out_bytes)))
        return KernelCall(
            function=kernel,
            sources=sources,
            header="tc_conv_f32.h",
            params_type="tc_conv_f32_params_t",
            params=params,
            args=[node.inputs[0], weights, node.input(2), node.outputs[0]],
            summary=summary,
            in_place=in_place,
        )

    return emit


CONV_BLOCK = 8  # tc_conv_blocked_f32: output channels per weight block (tc_conv_f32.h)


def _blocked(params: dict[str, int]) -> bool:
    """tc_conv_blocked_f32 (same results) where it is the faster kernel: convolutions without
    groups with at least one block of output channels, the last block at least two-thirds full
    unless there are fewer than 4 input channels (tc_conv_f32's inner loop over them is short:
    it is slow whatever the waste).  Measured on qemu-m4, 3x3x3 on 4x9x9, instructions per MAC
    (tc_conv_f32 -> tc_conv_blocked_f32): 1 -> 14 channels 12.1 -> 4.4, 3 -> 12 4.8 -> 3.6,
    8 -> 16 3.4 -> 2.4, 8 -> 12 3.5 -> 3.1, 16 -> 20 3.1 -> 2.7; but 8 -> 4 3.6 -> 4.7: the
    zero weights of a partial block cost as much as real ones."""
    out_c, in_c = params["out_c"], params["in_c"]
    padded = -(-out_c // CONV_BLOCK) * CONV_BLOCK
    return (params["groups"] == 1 and out_c >= CONV_BLOCK
            and (in_c < 4 or 3 * padded <= 4 * out_c))


def _depthwise_blocked(params: dict[str, int]) -> bool:
    """tc_depthwise_conv_blocked_f32 (same results): plain depthwise convolutions with channels
    in blocks of 8, except those tc_depthwise_conv3x3_f32 takes at stride 1 on rows of at least
    16 outputs (its set-up per row and channel, about 160 instructions, repaid; measured on
    qemu-m4 in instructions per MAC, 3x3 -> blocked: 48x48x8 4.31 -> 5.57, 24x24x32 4.63 ->
    4.87, 16x16x16 4.80 -> 5.15; but 12x12x64 5.31 -> 4.76, 8x8x64 5.91 -> 4.78, 6x6x128 6.84
    -> 4.71, stride 2 from 48x48x16 5.38 -> 5.10, from 6x6x128 11.55 -> 4.65, and
    tc_conv_f32's 4x4x128 7.83 -> 4.75).  The demo 2,933,760 -> 2,773,880 instructions, vww01
    fp32 22,396,240 -> 21,644,600."""
    p = params
    if not (p["groups"] == p["in_c"] == p["out_c"] and p["out_c"] % CONV_BLOCK == 0):
        return False
    return not (_depthwise3x3(p) and p["stride_w"] == 1 and p["out_w"] >= 16)


def _pointwise(params: dict[str, int]) -> bool:
    """tc_conv_pointwise_f32 (tc_conv_blocked_f32 without the window bookkeeping): 1x1 kernels
    of stride 1 without padding.  Measured on qemu-m4 (instructions per inference): the demo
    3,720,760 -> 3,597,040, vww01 fp32 27,686,040 -> 27,055,960, eeg3dcnn 6,426,360 ->
    6,232,280; +1.8 KiB of flash where linked."""
    return (all(params[f"k_{a}"] == 1 and params[f"stride_{a}"] == 1 and params[f"pad_{a}"] == 0
                and params[f"out_{a}"] == params[f"in_{a}"] for a in "dhw"))


def _depthwise3x3(params: dict[str, int]) -> bool:
    """tc_depthwise_conv3x3_f32 / _3d_f32 (the same results for finite inputs): plain depthwise
    3x3 (2-D) or k_d x 3 x 3 (3-D) convolutions, dilation 1, stride_w 1 with at most 2 columns
    of padding on either side or stride_w 2 with at most 1, on input rows of at least 5 columns
    (3-D: also 5 output columns): its setup per row and channel costs what tc_conv_f32's per
    pixel saves only on rows that long.  Measured on qemu-m4 (instructions per MAC,
    tc_conv_f32 -> tc_depthwise_conv3x3_f32), in the demo's MobileNetV2: 16 channels 16x16
    stride 1 9.99 -> 4.97, 64 channels 8x8 stride 1 9.11 -> 6.33, 32 channels 16x16 -> 8x8
    stride 2 9.69 -> 6.63, 64 channels 8x8 -> 4x4 stride 2 9.15 -> 8.85; single layers with
    ReLU6 (with the model's input transpose): 128 channels 4x4 stride 1 10.51 -> 10.66, 2x2
    10.50 -> 18.70.  3-D, eeg3dcnn: 16 channels 3x3x3 on 8x9x16 6.61 -> 4.56; on 4x4x8 -> 2x2x4
    stride 2 5.62 -> 7.71 (hence the 5 output columns)."""
    p = params
    if not (p["groups"] == p["in_c"] == p["out_c"] and (p["k_h"], p["k_w"]) == (3, 3)
            and p["dilation_d"] == p["dilation_h"] == p["dilation_w"] == 1
            and p["stride_w"] in (1, 2) and p["in_w"] >= 5
            and (p["k_d"] == 1 or p["out_w"] >= 5)):
        return False
    pad_end = (p["out_w"] - 1) * p["stride_w"] + 3 - p["in_w"] - p["pad_w"]
    return max(p["pad_w"], pad_end) <= 3 - p["stride_w"]


def _pixel_aligned(found: InPlace, pixel_bytes: int, out_bytes: int) -> InPlace | None:
    """A kernel that writes channel after channel, each channel's pixels in the order of a
    pixel-order kernel (found: its InPlace), may overwrite only its own channel: the output
    exactly a whole number of pixels (and of ALIGNMENT) at or below found.shift, or nowhere."""
    step = math.lcm(pixel_bytes, ALIGNMENT)
    shift = found.shift // step * step
    return InPlace(found.tensor, shift, exact=True) if shift > -out_bytes else None


def blocked_weights(w: np.ndarray) -> np.ndarray:
    """Channels-last Conv weights [out_c, *K, in_c] in tc_conv_blocked_f32's layout
    [ceil(out_c / CONV_BLOCK), *K, in_c, CONV_BLOCK], the channels past out_c zero."""
    out_c = w.shape[0]
    blocks = -(-out_c // CONV_BLOCK)
    padded = np.zeros((blocks * CONV_BLOCK, *w.shape[1:]), np.float32)
    padded[:out_c] = w
    grouped = padded.reshape(blocks, CONV_BLOCK, *w.shape[1:])
    return np.ascontiguousarray(np.moveaxis(grouped, 1, -1))


def _macs_conv(node: Node, graph: Graph) -> int:
    y = graph.tensors[node.outputs[0]]
    w = graph.tensors[node.inputs[1]]
    return y.size * w.size // w.shape[0]  # each output: prod(kernel) * in_c / groups


def _macs_conv_transpose(node: Node, graph: Graph) -> int:
    x = graph.tensors[node.inputs[0]]
    w = graph.tensors[node.inputs[1]]
    return x.size * w.size // w.shape[0]  # each input: prod(kernel) * out_c / groups


register("Conv", _infer_conv, _evaluate(conv_nchw), _emit("tc_conv_f32", "tc_conv_f32.c"),
         traits=("fuses_clamp", "spatial"), macs=_macs_conv)
register("ConvTranspose", _infer_conv_transpose, _evaluate(conv_transpose_nchw),
         _emit("tc_conv_transpose_f32", "tc_conv_transpose_f32.c"),
         traits=("fuses_clamp", "spatial"), macs=_macs_conv_transpose)
