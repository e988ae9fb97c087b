"""Binary (1-bit) operators: the sign pattern, bit packing, binary convolution, fully connected
and max pooling.

The conventions (values in {-1, +1}, bit 1 = -1, packing along the channel axis into uint32
words, padding bits zero, dot = N - 2 * popcount(x ^ w)) are those of runtime_c/tc_binary.h and
tinyc.binary; in the IR a packed tensor has dtype "bin" and its logical shape (tinyc.ir).

Compile-time pieces of the exported sign pattern (tinyc.nn.SignSTE exports
Less(x, T) -> Where(less, -1, +1)):
  Less, Where   numpy semantics; constant folding only (no kernel).  The ONNX frontend turns
                the run-time pattern into one Binarize node.  (Equal too: the exporter spells
                shape arithmetic such as expand(-1, ...) with Equal -> Where on constants.)
  Binarize      inputs x (float32, channels-first like the source model), t (constant threshold
                broadcasting to x).  y = -1.0 where x < t, else +1.0 (sign(0) = +1, NaN gives
                +1).  No kernel: passes.binarize replaces every Binarize by SignPack (and
                Unpack where a real-valued consumer needs the +/-1 values).

Run-time operators (channels-last, like every tinyc spatial operator):
  SignPack      x float32 or int8 [..., C], optional thr float32 [C] -> bin [..., C]:
                bit = x < t with t = thr[c] (or attrs threshold, a float).  On int8 x the real
                threshold becomes the integer one of tc_bitpack_s8 (binary.s8_sign_threshold:
                exact for the quantized values).
  Unpack        x bin [..., C] -> y float32 (+1.0 / -1.0) or int8 (y's quantized +1 / -1).
  BinaryConv    (runs as tc_bfc per pixel when 1x1, stride 1, unpadded, one group; otherwise
                as the fast tc_bconv_sparse_* / tc_bconv_dw_* when tinyc.binary_fast.choose
                picks one for the layer, else as the portable tc_bconv_*)
                x bin [N, *S, C_in] (1 to 3 spatial axes), w bin constant
                [C_out, k_d*k_h*k_w*C_in/group] (each output channel's bits in (kd, kh, kw, ic)
                order: tc_bconv's weight layout), then the output transform's constants:
                  out_dtype "float32" / "int8": mul, bias float32 [C_out]:
                      y = clamp(fl(fl(dot * mul) + bias))       (int8: requantized to y's
                      scale and zero point in fixed point, binary.requant_s8)
                  out_dtype "bin": thr int32 [C_out], flip bin [C_out]: bit = (dot < thr) ^ flip
                attrs kernel_shape, strides, dilations, pads (leading then trailing), group,
                pad_value (0: PyTorch's zero padding of sign(x), taps outside the input add
                nothing; +1 / -1: constant one-padding, deployed with binary.padding_correction's
                table), out_dtype, optional act_min/act_max, exact (the transform reproduces
                the source model's float arithmetic bit for bit; tinyc verify then requires
                equality).
  BinaryDense   x bin, w bin constant [C_out, F], transform constants and attrs out_dtype /
                act_min / act_max / exact as BinaryConv, and flatten:
                  flatten False: x [..., F], y [..., C_out] (one dot per row);
                  flatten True:  x [N, *S, C] a packed feature map, F = prod(S) * C with w's
                                 columns in (*S, C) order, y [N, C_out].  When C % 32 == 0 the
                                 packed pixels are one dense bit stream and tc_bfc reads them as
                                 they are; otherwise the layer runs as a binary convolution whose
                                 window is the whole map (no repacking).
  BinaryMaxPool x bin [N, *S, C] -> bin: max pooling of +/-1 values, the AND of the window's
                words; taps outside the input are ignored (PyTorch's -inf padding).  attrs
                kernel_shape, strides, dilations, pads (leading then trailing; trailing pads
                also absorb ceil_mode's extra windows).

Each run-time operator builds one `BinaryKernel`: the C function, its parameter struct (from
binary.py's geometry), its operands (IR tensors or constants derived in the kernel's layout),
and the NumPy reference of the kernel over those same values, so the interpreter's simulation
and the generated C agree bit for bit by construction (the kernel tests hold the C to the same
references).  MACs of binary layers count binary multiply-accumulates (one per bit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyc import binary as B
from tinyc import binary_fast
from tinyc.errors import UnsupportedOperator
from tinyc.ir import Graph, Node, packed_shape
from tinyc.ops import KernelCall, Shape, clamp_of, fmt_shape, register, shape_of
from tinyc.ops.quantized import DerivedConst, act_range, per_tensor
from tinyc.quant import arith

HEADER = "tc_binary.h"
OUT_DTYPES = ("float32", "int8", "bin")
SUFFIX = {"float32": "f32", "int8": "s8", "bin": "b1"}
INT8_MIN, INT8_MAX = -128, 127

Operand = str | DerivedConst


@dataclass
class BinaryKernel:
    function: str
    source: str  # runtime_c file
    params_type: str
    params: dict[str, Any]
    operands: list[Operand]  # C argument order, output excluded
    reference: Callable[..., np.ndarray]  # reference(params, *operand values) -> output value
    summary: str
    scratch_bytes: int = 0  # working memory (the last C argument, planned in the arena)


def _operand_value(node: Node, operand: Operand, inputs: list[Any]) -> np.ndarray | None:
    if isinstance(operand, DerivedConst):
        return operand.value
    if operand == "":
        return None
    return inputs[node.inputs.index(operand)]


def _evaluate_kernel(kernel: BinaryKernel, node: Node, inputs: list[Any], graph: Graph
                     ) -> list[np.ndarray]:
    values = [_operand_value(node, operand, inputs) for operand in kernel.operands]
    y = np.asarray(kernel.reference(kernel.params, *values))
    out = graph.tensors[node.outputs[0]]
    if out.dtype == "bin":
        return [y.reshape(packed_shape(out.shape)).astype(np.uint32)]
    return [y.reshape(out.shape).astype(out.dtype)]


def _emit_kernel(kernel: BinaryKernel, node: Node) -> KernelCall:
    return KernelCall(kernel.function, (kernel.source,), HEADER, kernel.params_type,
                      dict(kernel.params), [*kernel.operands, node.outputs[0]], kernel.summary,
                      scratch_bytes=kernel.scratch_bytes)


def _kernel_op(name: str, build: Callable[[Node, Graph], BinaryKernel],
               infer: Callable[[Node, Graph], list[tuple[Shape, str]]],
               traits: tuple[str, ...] = (),
               macs: Callable[[Node, Graph], int] | None = None) -> None:
    register(name, infer,
             lambda node, inputs, graph: _evaluate_kernel(build(node, graph), node, inputs, graph),
             lambda node, graph: _emit_kernel(build(node, graph), node), traits, macs)


def _typed_shape(graph: Graph, name: str) -> str:
    t = graph.tensors[name]
    return f"{fmt_shape(t.shape)} {t.dtype}"


# ------------------------------------------------------------------------------------------------
# The sign pattern (compile time)
# ------------------------------------------------------------------------------------------------


def _infer_broadcast(dtype: str | None, first: int = 0):
    def infer(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
        shapes = [shape_of(graph, t) for t in node.inputs]
        out_dtype = dtype or graph.tensors[node.inputs[first]].dtype
        return [(tuple(np.broadcast_shapes(*shapes)), out_dtype)]

    return infer


def sign_values(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Binarize's semantics: -1.0 where x < t, else +1.0 (float32)."""
    return np.where(np.asarray(x) < np.asarray(t), np.float32(-1), np.float32(1))


register("Less", _infer_broadcast("bool"),
         lambda node, inputs, graph: [np.less(inputs[0], inputs[1])])
register("Equal", _infer_broadcast("bool"),
         lambda node, inputs, graph: [np.equal(inputs[0], inputs[1])])
register("Where", _infer_broadcast(None, first=1),
         lambda node, inputs, graph: [np.where(inputs[0], inputs[1], inputs[2])])
register("Binarize", _infer_broadcast("float32"),
         lambda node, inputs, graph: [sign_values(inputs[0], inputs[1])])


# ------------------------------------------------------------------------------------------------
# SignPack, Unpack
# ------------------------------------------------------------------------------------------------


def _infer_signpack(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    return [(shape_of(graph, node.inputs[0]), "bin")]


def _signpack(node: Node, graph: Graph) -> BinaryKernel:
    x = graph.tensors[node.inputs[0]]
    channels = x.shape[-1]
    thr_name = node.input(1)
    real = graph.const(thr_name) if thr_name else None
    if thr_name and real is None:
        raise UnsupportedOperator(f"SignPack node '{node.name}': its threshold is not constant")
    params = {"outer": x.size // channels, "channels": channels, "threshold_f32": 0.0,
              "threshold_s8": 0}
    if x.dtype == "int8":
        q = per_tensor(graph, x.name, node)
        if real is None:
            params["threshold_s8"] = B.s8_sign_threshold(q.zp, q.s, node.attrs["threshold"])
            operands: list[Operand] = [x.name, "", ""]
        else:
            ints = np.array([B.s8_sign_threshold(q.zp, q.s, float(v)) for v in real.reshape(-1)])
            operands = [x.name, *_s8_thresholds(ints)]
        function = "tc_bitpack_s8"
    elif x.dtype == "float32":
        params["threshold_f32"] = float(node.attrs.get("threshold", 0.0))
        operands = [x.name, thr_name]
        function = "tc_bitpack_f32"
    else:
        raise UnsupportedOperator(f"SignPack node '{node.name}': {x.dtype} input (float32 and "
                                  "int8 are supported)")

    def reference(p: dict, xv: np.ndarray, tv: np.ndarray | None,
                  always: np.ndarray | None = None) -> np.ndarray:
        if function == "tc_bitpack_f32":
            return B.pack_bits(xv < np.asarray(p["threshold_f32"] if tv is None else tv,
                                               np.float32))
        bits = B.pack_bits(xv.astype(np.int32) < np.asarray(
            p["threshold_s8"] if tv is None else tv, np.int32))
        return bits if always is None else bits | always

    how = "per-channel thresholds" if thr_name else (
        f"threshold {params['threshold_s8']}" if x.dtype == "int8"
        else f"threshold {params['threshold_f32']:g}")
    return BinaryKernel(function, "tc_bitpack.c", "tc_bitpack_params_t", params, operands,
                        reference,
                        f"SignPack {_typed_shape(graph, x.name)} -> bin, bit = x < t, {how}")


def _s8_thresholds(t: np.ndarray) -> tuple[Operand, Operand]:
    """tc_bitpack_s8's per-channel operands for the integer thresholds t: thr int8 (t clamped to
    [-128, 127]: below -128 no value is below t, as below -128) and, when some t exceeds 127
    (every value below it), the always mask with those channels' bits (else no operand)."""
    thr = DerivedConst("threshold_s8", np.clip(t, INT8_MIN, INT8_MAX).astype(np.int8))
    above = t > INT8_MAX
    return thr, DerivedConst("always", B.pack_bits(above)) if above.any() else ""


def _infer_unpack(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    return [(shape_of(graph, node.inputs[0]), node.attrs.get("out_dtype", "float32"))]


def _unpack(node: Node, graph: Graph) -> BinaryKernel:
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    channels = x.shape[-1]
    params = {"outer": x.size // channels, "channels": channels, "plus_s8": 1, "minus_s8": -1}
    if y.dtype == "int8":
        q = per_tensor(graph, y.name, node)
        params["plus_s8"] = int(np.clip(arith.quantize_value(1.0, q.s, q.zp), -128, 127))
        params["minus_s8"] = int(np.clip(arith.quantize_value(-1.0, q.s, q.zp), -128, 127))
        function = "tc_bitunpack_s8"
    else:
        function = "tc_bitunpack_f32"

    def reference(p: dict, xv: np.ndarray) -> np.ndarray:
        bits = B.unpack_bits(xv, p["channels"])
        if function == "tc_bitunpack_s8":
            return np.where(bits, np.int8(p["minus_s8"]), np.int8(p["plus_s8"]))
        return B.bits_to_pm1(bits).astype(np.float32)

    return BinaryKernel(function, "tc_bitpack.c", "tc_bitunpack_params_t", params, [x.name],
                        reference, f"Unpack bin {fmt_shape(x.shape)} -> {y.dtype}")


# ------------------------------------------------------------------------------------------------
# BinaryConv, BinaryDense: geometry, output transforms
# ------------------------------------------------------------------------------------------------


def conv_geometry(node: Node, graph: Graph) -> B.BConvGeometry:
    a = node.attrs
    x = shape_of(graph, node.inputs[0])
    nsp = len(a["kernel_shape"])
    w = graph.tensors[node.inputs[1]]
    return B.conv_geometry(x[1:-1], x[-1], w.shape[0], a["kernel_shape"], a["strides"],
                           a["dilations"], a["pads"][:nsp], a["pads"][nsp:], a["group"],
                           a.get("pad_value", 0))


def _infer_bconv(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    x = shape_of(graph, node.inputs[0])
    geom = conv_geometry(node, graph)
    nsp = len(node.attrs["kernel_shape"])
    out_sp = geom.out_shape[3 - nsp:]
    return [((x[0], *out_sp, geom.out_c), node.attrs["out_dtype"])]


def _class_index(out: int, lead: int, trail: int) -> np.ndarray:
    """tc_bconv's padding class of every output position along one axis (tc_binary.h)."""
    o = np.arange(out)
    return np.where(o < lead, o, np.where(o >= out - trail, lead + 1 + o - (out - trail), lead))


def bconv_reference_dot(p: dict, x: np.ndarray, w: np.ndarray,
                        pad_corr: np.ndarray | None) -> np.ndarray:
    """tc_bconv_*'s dot products [N, od, oh, ow, out_c] from its parameter struct and operands:
    the taps inside the input (binary.bconv_dot_packed with zero padding), plus the padding
    correction table looked up by each position's class."""
    geom = B.BConvGeometry(
        in_shape=(p["in_d"], p["in_h"], p["in_w"]), kernel=(p["k_d"], p["k_h"], p["k_w"]),
        strides=(p["stride_d"], p["stride_h"], p["stride_w"]),
        dilations=(p["dilation_d"], p["dilation_h"], p["dilation_w"]),
        pads_begin=(p["pad_d"], p["pad_h"], p["pad_w"]),
        pads_end=tuple(  # implied by the output size (tc_binary.h)
            max(0, (p[f"out_{a}"] - 1) * p[f"stride_{a}"] + p[f"dilation_{a}"] * (p[f"k_{a}"] - 1)
                + 1 - p[f"in_{a}"] - p[f"pad_{a}"]) for a in "dhw"),
        in_c=p["in_c"], out_c=p["out_c"], groups=p["groups"])
    xs = x.reshape(p["batch"], p["in_d"], p["in_h"], p["in_w"], -1)
    dot = B.bconv_dot_packed(xs, w, geom).astype(np.int64)
    dot = dot[:, :p["out_d"], :p["out_h"], :p["out_w"]]
    if pad_corr is not None:
        cd, ch, cw = (_class_index(p[f"out_{a}"], p[f"lead_{a}"], p[f"trail_{a}"]) for a in "dhw")
        dot = dot + pad_corr[cd[:, None, None], ch[None, :, None], cw[None, None, :]][None]
    return dot.astype(np.int32)


def bfc_reference_dot(p: dict, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return B.bfc_dot_packed(x.reshape(p["batch"], -1), w, p["in_c"])


def _transform(kind: str, p: dict, dot: np.ndarray, t1: np.ndarray, t2: np.ndarray
               ) -> np.ndarray:
    """The output transform of tc_bconv_<kind> / tc_bfc_<kind> (tc_binary.h)."""
    if kind == "f32":
        return B.transform_f32(dot, t1, t2, p["act_min"], p["act_max"])
    if kind == "s8":
        return B.transform_s8(dot, t1, t2, p["out_shift"], p["out_min"], p["out_max"])
    return B.pack_bits(B.transform_b1(dot, t1, B.unpack_bits(t2, p["out_c"])))


def _transform_operands(node: Node, graph: Graph, n_max: int
                        ) -> tuple[str, list[Operand], dict[str, Any], str]:
    """(kind, the transform's operands, the clamp fields, summary) of a BinaryConv/Dense."""
    out = graph.tensors[node.outputs[0]]
    if out.dtype != node.attrs["out_dtype"] or out.dtype not in OUT_DTYPES:
        raise UnsupportedOperator(f"{node.op} node '{node.name}': output dtype {out.dtype}")
    kind = SUFFIX[out.dtype]
    clamp = {"act_min": float("-inf"), "act_max": float("inf"), "out_min": INT8_MIN,
             "out_max": INT8_MAX, "out_shift": 0}
    t1, t2 = node.input(2), node.input(3)
    if kind == "b1":
        return kind, [t1, t2], clamp, "BN + sign as integer thresholds -> packed bits"
    if kind == "f32":
        if n_max > B.MAX_FLOAT_EXACT_N:
            raise UnsupportedOperator(f"{node.op} node '{node.name}': {n_max} bits per dot "
                                      "product exceed 2^24, where float(dot) stops being exact")
        clamp["act_min"], clamp["act_max"] = clamp_of(node)
        return kind, [t1, t2], clamp, "scale/BN folded into float mul, bias"
    q = per_tensor(graph, out.name, node)
    clamp["out_min"], clamp["out_max"] = act_range(node, graph)
    try:
        fixed = B.requant_s8(graph.const(t1), graph.const(t2), q.s, q.zp, n_max,
                             clamp["out_min"], clamp["out_max"])
    except ValueError as e:
        raise UnsupportedOperator(f"{node.op} node '{node.name}': {e}") from None
    clamp["out_shift"] = fixed.shift
    return kind, [DerivedConst("mul_s8", fixed.mul), DerivedConst("bias_s8", fixed.bias)], \
        clamp, (f"scale/BN folded and requantized to int8 in fixed point (scale {q.s:g}, zero "
                f"point {q.zp}, shift {fixed.shift})")


def _bconv_kernel(node: Node, graph: Graph, geom: B.BConvGeometry, x: str, summary: str
                  ) -> BinaryKernel:
    kind, tables, clamp, how = _transform_operands(node, graph, geom.n_max)
    w = graph.const(node.inputs[1])
    if w is None or graph.tensors[node.inputs[1]].dtype != "bin":
        raise UnsupportedOperator(f"{node.op} node '{node.name}': weights must be a constant "
                                  "bin tensor")
    batch = shape_of(graph, x)[0]
    params = geom.c_params(batch, **clamp)
    pad_corr: Operand = ""
    table = B.padding_correction(geom, B.unpack_conv_weights(w, geom))
    if table is not None:
        pad_corr = DerivedConst("pad_corr", table)

    def reference(p: dict, xv, wv, corr, t1, t2) -> np.ndarray:
        return _transform(kind, p, bconv_reference_dot(p, xv, wv, corr), t1, t2)

    portable = BinaryKernel(f"tc_bconv_{kind}", "tc_bconv.c", "tc_bconv_params_t", params,
                            [x, node.inputs[1], pad_corr, *tables], reference,
                            f"{summary}, {how}")
    return _fast_bconv(portable, graph, geom, w, table) or portable


def _fast_bconv(portable: BinaryKernel, graph: Graph, geom: B.BConvGeometry, w: np.ndarray,
                pad_corr: np.ndarray | None) -> BinaryKernel | None:
    """The fast kernel of tc_bconv_fast.c computing `portable`'s outputs, when one serves this
    layer (binary_fast.choose).  It keeps the portable kernel's reference, fed the portable
    weights, padding table and thresholds: the results are identical by construction, and
    tests/test_binary_fast.py holds the C of both to it."""
    family = binary_fast.choose(geom)
    if family is None:
        return None
    x, _, _, *tables = portable.operands
    kind = portable.function.rsplit("_", 1)[1]
    scratch = 0
    thr = graph.const(tables[0]) if kind == "b1" else None
    if family == "dw":
        constants = [DerivedConst("weight_dw", binary_fast.depthwise_weights(w, geom))]
        thresholds = binary_fast.depthwise_thresholds
    else:
        constants = [DerivedConst("weight_sparse", binary_fast.sparse_weights(w, geom))]
        thresholds = binary_fast.sparse_thresholds
        scratch = binary_fast.sparse_scratch_bytes(geom)
    if kind == "b1":  # padding, valid taps and thresholds as bit planes of counts per class
        thr_class, thr_planes = thresholds(thr, w, geom)
        tables = [DerivedConst("thr_class", thr_class), DerivedConst("thr_planes", thr_planes),
                  tables[1]]
    else:
        if family == "sparse":
            constants.append(DerivedConst("valid_ones", binary_fast.sparse_valid_ones(w, geom)))
        constants.append(portable.operands[2])

    def reference(p: dict, xv, *values) -> np.ndarray:
        t1, t2 = values[-2:]
        return portable.reference(p, xv, w, pad_corr, t1 if thr is None else thr, t2)

    return BinaryKernel(f"tc_bconv_{family}_{kind}", "tc_bconv_fast.c", "tc_bconv_params_t",
                        portable.params, [x, *constants, *tables], reference,
                        f"{portable.summary} ({'depthwise' if family == 'dw' else 'sparse'}"
                        " fast kernel)", scratch)


def _pointwise(geom: B.BConvGeometry) -> bool:
    """A 1x1 convolution of stride 1, no padding, one group: a fully connected layer applied to
    every pixel (packed pixels are tc_bfc's rows, its weight rows are tc_bfc's)."""
    return (geom.kernel == (1, 1, 1) and geom.strides == (1, 1, 1) and geom.groups == 1
            and not any(geom.pads_begin + geom.pads_end))


def _fc_shape(node: Node, graph: Graph) -> tuple[int, int] | None:
    """(rows, in_c) of a BinaryConv / BinaryDense node that runs as a binary fully connected
    layer (a 1x1 convolution per pixel, a dense layer per row), else None."""
    if node.op == "BinaryConv":
        geom = conv_geometry(node, graph)
        if not _pointwise(geom):
            return None
        return graph.tensors[node.inputs[0]].size // geom.in_c, geom.in_c
    x = shape_of(graph, node.inputs[0])
    if node.attrs.get("flatten") and len(x) > 2 and x[-1] % B.WORD_BITS:
        return None  # a whole-map convolution (_bdense)
    features = _dense_features(node, graph)
    return int(np.prod(x)) // features, features


def _list_pays(graph: Graph) -> bool:
    """Whether the model's binary fully connected layers together save enough with
    tc_bfc_list_* to pay for the code it adds (binary_fast.list_pays): the output kinds of the
    layers it would serve, and whether a binary convolution links tc_bconv_sparse_* (and with
    it the slice sums) anyway."""
    saving, kinds, sparse_linked = 0.0, set(), False
    for node in graph.nodes:
        if node.op not in ("BinaryConv", "BinaryDense"):
            continue
        out = graph.tensors[node.outputs[0]]
        if out.dtype not in OUT_DTYPES:
            continue
        shape = _fc_shape(node, graph)
        if shape is None:
            sparse_linked |= (node.op == "BinaryConv"
                              and binary_fast.choose(conv_geometry(node, graph)) == "sparse")
            continue
        kind = SUFFIX[out.dtype]
        layer = binary_fast.list_saving(*shape, shape_of(graph, node.inputs[1])[0], kind)
        if layer > 0:
            saving += layer
            kinds.add(kind)
    return binary_fast.list_pays(saving, kinds, sparse_linked)


def _bfc_kernel(node: Node, graph: Graph, batch: int, in_c: int, summary: str
                ) -> BinaryKernel:
    kind, tables, clamp, how = _transform_operands(node, graph, in_c)
    params = {"batch": batch, "in_c": in_c, "out_c": shape_of(graph, node.inputs[1])[0]} | {
        k: clamp[k] for k in ("act_min", "act_max", "out_min", "out_max", "out_shift")}

    def reference(p: dict, xv, wv, t1, t2) -> np.ndarray:
        return _transform(kind, p, bfc_reference_dot(p, xv, wv), t1, t2)

    portable = BinaryKernel(f"tc_bfc_{kind}", "tc_bfc.c", "tc_bfc_params_t", params,
                            [node.inputs[0], node.inputs[1], *tables], reference,
                            f"{summary}, {how}")
    # the model-wide sum (_list_pays) only for a layer where the list can win at all
    list_allowed = (binary_fast.list_saving(1, in_c, params["out_c"], kind) > 0
                    and _list_pays(graph))
    choice = binary_fast.fc_kernel(in_c, params["out_c"], kind, list_allowed)
    if choice == "popcount":
        return portable
    w = graph.const(node.inputs[1])
    if kind == "b1":  # the thresholds as bit planes of counts; flip kept
        thr = graph.const(tables[0])
        planes = (binary_fast.sliced_fc_thresholds(thr, in_c) if choice == "sliced"
                  else binary_fast.list_fc_thresholds(thr, w, in_c))
        tables = [DerivedConst("thr_planes", planes), tables[1]]

    def fast_reference(p: dict, xv, *values) -> np.ndarray:
        t1, t2 = (graph.const(node.input(2)), values[-1]) if kind == "b1" else values[-2:]
        return reference(p, xv, w, t1, t2)

    if choice == "sliced":
        return BinaryKernel(f"tc_bfc_sliced_{kind}", "tc_bconv_fast.c", "tc_bfc_params_t",
                            params, [node.inputs[0], DerivedConst(
                                "weight_sliced",
                                binary_fast.sliced_fc_weights(w, in_c, params["out_c"])),
                                *tables], fast_reference,
                            f"{summary}, {how} (bit-sliced over output channels)")
    ones = [] if kind == "b1" else [DerivedConst("weight_ones",
                                                 binary_fast.fc_weight_ones(w, in_c))]
    return BinaryKernel(f"tc_bfc_list_{kind}", "tc_bconv_fast.c", "tc_bfc_params_t", params,
                        [node.inputs[0], DerivedConst(
                            "weight_list", binary_fast.list_fc_weights(w, in_c, params["out_c"])),
                         *ones, *tables], fast_reference,
                        f"{summary}, {how} (minority bits listed, bit-sliced over output "
                        "channels)", binary_fast.list_fc_scratch_bytes(in_c))


def _bconv(node: Node, graph: Graph) -> BinaryKernel:
    a = node.attrs
    geom = conv_geometry(node, graph)
    pads = list(a["pads"])
    padding = {0: "zero padding", 1: "one padding", -1: "minus-one padding"}[geom.pad_value]
    summary = (f"BinaryConv {'x'.join(map(str, a['kernel_shape']))}"
               f" stride {'x'.join(map(str, a['strides']))} pads {pads} ({padding})"
               + (f" dilation {'x'.join(map(str, a['dilations']))}"
                  if any(d != 1 for d in a["dilations"]) else "")
               + (f" groups {a['group']}" if a["group"] != 1 else "")
               + f", {_typed_shape(graph, node.inputs[0])} -> "
               f"{_typed_shape(graph, node.outputs[0])}")
    fc = _fc_shape(node, graph)
    if fc is not None:
        return _bfc_kernel(node, graph, *fc, summary + " (per pixel: binary fully connected)")
    return _bconv_kernel(node, graph, geom, node.inputs[0], summary)


def _macs_bconv(node: Node, graph: Graph) -> int:
    geom = conv_geometry(node, graph)
    return graph.tensors[node.outputs[0]].size * geom.taps * geom.cig


def _dense_features(node: Node, graph: Graph) -> int:
    x = shape_of(graph, node.inputs[0])
    return int(np.prod(x[1:])) if node.attrs.get("flatten") else x[-1]


def _infer_bdense(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    x = shape_of(graph, node.inputs[0])
    out_c = shape_of(graph, node.inputs[1])[0]
    shape = (x[0], out_c) if node.attrs.get("flatten") else (*x[:-1], out_c)
    return [(shape, node.attrs["out_dtype"])]


def _bdense(node: Node, graph: Graph) -> BinaryKernel:
    x = shape_of(graph, node.inputs[0])
    features = _dense_features(node, graph)
    w = graph.tensors[node.inputs[1]]
    if w.shape[1] != features:
        raise UnsupportedOperator(f"BinaryDense node '{node.name}': weights {w.shape} for "
                                  f"{features} input features")
    summary = (f"BinaryDense {features} -> {w.shape[0]}, {_typed_shape(graph, node.inputs[0])}"
               f" -> {_typed_shape(graph, node.outputs[0])}")
    fc = _fc_shape(node, graph)
    if fc is None:
        # Pixels of C % 32 != 0 channels are not one bit stream: a convolution whose window
        # is the whole feature map reads them where they are.
        geom = B.conv_geometry(x[1:-1], x[-1], w.shape[0], x[1:-1])
        return _bconv_kernel(node, graph, geom, node.inputs[0],
                             summary + " (as a whole-map binary convolution)")
    return _bfc_kernel(node, graph, *fc, summary)


def _macs_bdense(node: Node, graph: Graph) -> int:
    y = graph.tensors[node.outputs[0]]
    return y.size * _dense_features(node, graph)


# ------------------------------------------------------------------------------------------------
# BinaryMaxPool
# ------------------------------------------------------------------------------------------------


def pool_geometry(node: Node, graph: Graph) -> B.BPoolGeometry:
    a = node.attrs
    x = shape_of(graph, node.inputs[0])
    nsp = len(a["kernel_shape"])
    return B.pool_geometry(x[1:-1], x[-1], a["kernel_shape"], a["strides"], a["dilations"],
                           a["pads"][:nsp], a["pads"][nsp:])


def _infer_bmaxpool(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    x = shape_of(graph, node.inputs[0])
    nsp = len(node.attrs["kernel_shape"])
    out_sp = pool_geometry(node, graph).out_shape[3 - nsp:]
    return [((x[0], *out_sp, x[-1]), "bin")]


def _bmaxpool(node: Node, graph: Graph) -> BinaryKernel:
    a = node.attrs
    geom = pool_geometry(node, graph)
    x = graph.tensors[node.inputs[0]]

    def reference(p: dict, xv: np.ndarray) -> np.ndarray:
        g = B.pool_geometry((p["in_d"], p["in_h"], p["in_w"]), p["c"],
                            (p["k_d"], p["k_h"], p["k_w"]),
                            (p["stride_d"], p["stride_h"], p["stride_w"]),
                            (p["dilation_d"], p["dilation_h"], p["dilation_w"]),
                            (p["pad_d"], p["pad_h"], p["pad_w"]), geom.pads_end)
        return B.bmaxpool_packed(xv.reshape(p["batch"], p["in_d"], p["in_h"], p["in_w"], -1), g)

    summary = (f"BinaryMaxPool {'x'.join(map(str, a['kernel_shape']))}"
               f" stride {'x'.join(map(str, a['strides']))} pads {list(a['pads'])}, "
               f"{_typed_shape(graph, x.name)} -> {_typed_shape(graph, node.outputs[0])}")
    return BinaryKernel("tc_bmaxpool_b1", "tc_bmaxpool.c", "tc_bmaxpool_params_t",
                        geom.c_params(x.shape[0]), [x.name], reference, summary)


_kernel_op("SignPack", _signpack, _infer_signpack)
_kernel_op("Unpack", _unpack, _infer_unpack)
_kernel_op("BinaryConv", _bconv, _infer_bconv, traits=("fuses_clamp",), macs=_macs_bconv)
_kernel_op("BinaryDense", _bdense, _infer_bdense, traits=("fuses_clamp",), macs=_macs_bdense)
_kernel_op("BinaryMaxPool", _bmaxpool, _infer_bmaxpool)

BINARY_OPS = ("SignPack", "Unpack", "BinaryConv", "BinaryDense", "BinaryMaxPool")
