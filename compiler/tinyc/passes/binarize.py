"""Binarization: the sign -> +/-1 layer pattern becomes binary operators with fused outputs.

What is recognised (tinyc.nn's export, tinyc.nn.export_pattern_description(); the frontend has
already turned Less(x, T) -> Where(., -1, +1) into one Binarize node):

    Binarize(x, T) [-> Pad(constant 0 / +1 / -1)] -> Conv(W in {-1,+1}[, bias])
    Binarize(x, T) -> MatMul(x, W^T in {-1,+1})  or  Gemm(transA=0)
        then the longest chain of per-channel affine steps, each the only consumer of the
        last: Mul / Add / Sub by a constant (per channel or scalar), BatchNormalization
        [then: every consumer a Binarize with one common per-channel threshold]

A Conv / MatMul / Gemm whose input is binary (+/-1 valued: a Binarize, or a max pool / flatten /
padding of one) IS a binary layer: if its weights are not all +/-1 (e.g. a runtime folded the
scale into them) it is refused, as is a padding the kernels cannot represent (a pad value other
than 0 and +/-1, reflect / edge padding, zero and one padding mixed): nothing is approximated.
Only a layer the frontend marks `real_weights` (weights quantized to more than one bit on
purpose: QONNX Quant) stays real-valued on a binary input, reading the unpacked +/-1 values.

The rewrite, node by node:
  * Binarize -> SignPack (bit = x < T, T per channel), on the channels-last view of x;
  * a binary layer -> BinaryConv / BinaryDense reading the packed input, with the chain fused
    into its output transform:
      - all consumers are Binarize with one threshold T (and nothing else reads the chain):
        packed output bits, thr / flip from binary.sign_thresholds_from_function (below);
      - otherwise a real output: float32, y = fl(fl(dot * mul) + bias) with the chain composed
        in float64 and rounded once (for the chain [Mul s][Add b] that is exactly what the
        source computes, so the layer is marked exact);
  * MaxPool of binary values -> BinaryMaxPool (max of +/-1 is the AND of the bits);
  * Flatten of binary values feeding a binary dense layer: the dense layer reads the packed
    channels-last map directly, its weight columns permuted to (spatial, channel) order;
  * wherever a real-valued operator needs +/-1 values, Unpack restores them.
Before that, Binarize is moved above MaxPool (sign(max x) = max(sign x), per-channel T) and
Flatten (scalar T), so BatchNorm + sign fuse into the layer before the pool / flatten.

BatchNorm + sign -> thresholds (the choice the kernel author left open): the threshold of output
channel c is found by evaluating the chain for every reachable dot product d in [-N, N] and
taking where sign(chain(d) - T) steps (binary.sign_thresholds_from_function).  Mul / Add / Sub
are evaluated in float32 exactly as the exported model computes them (separate IEEE operations);
BatchNormalization, whose float32 arithmetic differs between runtimes (PyTorch uses
x * (g / sqrt(v + eps)) + (b - m * g / sqrt(v + eps)), onnxruntime and tinyc's reference other
orders, with or without fused multiply-add), is evaluated in float64, i.e. the real value to
within 1e-16 relative.  Any float32 evaluation then agrees with the deployed bit except where its
own rounding error straddles the threshold, which the float model itself does not decide
consistently either.  The exact rational fold (binary.sign_thresholds on folded float32 mul /
bias) would add the rounding of the folded constants; evaluating the chain avoids that.

Layout: this pass runs before fold_batchnorm (which would fold BN into the +/-1 weights) and so
before to_channels_last.  Binary operators exist only channels-last (packing runs along the
channel axis), so the pass lays them out itself: Transposes go on the real-valued tensors at the
binary region's boundary (into SignPack, out of a real-valued BinaryConv / Unpack), never on
packed tensors, and sink_transposes cancels them between layers as it does for float Conv.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyc import binary as B
from tinyc.errors import UnsupportedOperator
from tinyc.ir import Graph, Node
from tinyc.ops.norm import batchnorm_affine
from tinyc.passes.cleanup import remove_dead_nodes

AFFINE_OPS = ("Mul", "Add", "Sub")


def _to_last_perm(rank: int) -> tuple[int, ...]:
    return (0, *range(2, rank), 1)


def _to_first_perm(rank: int) -> tuple[int, ...]:
    return (0, rank - 1, *range(1, rank - 1))


def _last_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The channels-last shape of a channels-first tensor (rank 2: unchanged)."""
    return tuple(shape[p] for p in _to_last_perm(len(shape))) if len(shape) > 2 else shape


@dataclass
class Packed:
    """The packed version of a +/-1-valued float tensor of the source graph."""

    tensor: str  # bin tensor, channels-last
    spatial: tuple[int, ...] | None = None  # set when the float tensor is the flatten of a
    # channels-first map of this shape that `tensor` packs channels-last


def per_channel(value: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """`value` broadcast against a tensor of `shape` as a vector along `axis`, or None when
    it varies along another axis (or does not broadcast)."""
    value = np.asarray(value)
    rank = len(shape)
    if value.ndim > rank:
        return None
    full = (1,) * (rank - value.ndim) + value.shape
    axis %= rank
    if any(d != 1 for i, d in enumerate(full) if i != axis) or full[axis] not in (1, shape[axis]):
        return None
    return np.broadcast_to(value.reshape(-1), (shape[axis],)).copy()


def _binary_layer(node: Node) -> bool:
    """A Conv / MatMul / Gemm that is binary when its input is (module docstring)."""
    return not node.attrs.get("real_weights", False)


def _flatten_source(graph: Graph, node: Node) -> bool:
    """A Reshape that flattens [N, C, *S] into [N, C * prod(S)]."""
    x = graph.tensors[node.inputs[0]].shape
    y = graph.tensors[node.outputs[0]].shape
    return len(x) >= 3 and y == (x[0], int(np.prod(x[1:])))


# ------------------------------------------------------------------------------------------------
# Moving Binarize above MaxPool and Flatten
# ------------------------------------------------------------------------------------------------


def _hoist_once(graph: Graph) -> bool:
    for sign in [n for n in graph.nodes if n.op == "Binarize"]:
        m = sign.inputs[0]
        producer = graph.producer(m)
        if producer is None or len(graph.consumers(m)) != 1 or graph.is_output(m):
            continue
        src = producer.inputs[0]
        t = graph.const(sign.inputs[1])
        src_shape = graph.tensors[src].shape
        if producer.op == "MaxPool" and not producer.attrs["channels_last"]:
            if len(src_shape) < 3 or per_channel(t, graph.tensors[m].shape, 1) is None:
                continue
        elif producer.op == "Reshape" and _flatten_source(graph, producer):
            if t.size != 1:
                continue
        else:
            continue
        out = sign.outputs[0]
        signs = graph.add_tensor(f"{sign.name}_hoisted", src_shape)
        sign.inputs = [src, sign.inputs[1]]
        sign.outputs = [signs]
        producer.inputs = [signs]
        producer.outputs = [out]
        graph.nodes.remove(sign)
        graph.nodes.insert(graph.nodes.index(producer), sign)
        return True
    return False


# ------------------------------------------------------------------------------------------------
# The rewrite
# ------------------------------------------------------------------------------------------------


@dataclass
class Chain:
    steps: list[tuple[str, object]]  # ("mul" | "add" | "sub", vector [C]) or ("bn", (m, c))
    nodes: list[Node]
    end: str  # the tensor the last step writes
    # False when a Mul stands for a scale the source folded into its weights (attrs
    # exact=False, from the ONNX frontend's QONNX BipolarQuant): the source's float sums of
    # +/-s terms are then not fl(dot * s).
    source_exact: bool = True

    @property
    def exact(self) -> bool:
        """True when fl(fl(dot * mul) + bias) is the chain's own float arithmetic."""
        kinds = [k for k, _ in self.steps]
        return self.source_exact and kinds in ([], ["mul"], ["add"], ["sub"], ["mul", "add"],
                                               ["mul", "sub"])

    def affine64(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) float64 [C] with chain(d) = a * d + b in real arithmetic."""
        a, b = np.ones(channels), np.zeros(channels)
        for kind, value in self.steps:
            if kind == "bn":
                m, c = value
                a, b = a * m, b * m + c
            elif kind == "mul":
                v = np.asarray(value, np.float64)
                a, b = a * v, b * v
            else:
                b = b + np.asarray(value, np.float64) * (1 if kind == "add" else -1)
        return a, b

    def evaluate(self, dots: np.ndarray) -> np.ndarray:
        """The chain over int32 dots [rows, C]: Mul/Add/Sub in float32 as the source model
        computes them, BatchNormalization in float64 (and everything after it)."""
        v: np.ndarray = dots.astype(np.float32)
        for kind, value in self.steps:
            if kind == "bn":
                m, c = value
                v = v.astype(np.float64) * m + c
                continue
            w = np.asarray(value, v.dtype)
            v = v * w if kind == "mul" else (v + w if kind == "add" else v - w)
        return v.astype(np.float64)


class _Rewriter:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.old = list(graph.nodes)
        self.producer = {t: n for n in self.old for t in n.outputs}
        self.consumers: dict[str, list[Node]] = {}
        for n in self.old:
            for t in n.inputs:
                if t:
                    self.consumers.setdefault(t, []).append(n)
        self.packed: dict[str, Packed] = {}
        self.ready: set[str] = set(graph.inputs)  # float tensors the new graph computes
        self.skip: set[int] = set()  # ids of source nodes absorbed into binary operators
        self.new: list[Node] = []
        graph.nodes = self.new  # rebuilt in order; replaced nodes keep their names

    # -- helpers
    def add(self, op: str, hint: str, inputs: list[str], outputs: list[str],
            attrs: dict | None = None) -> Node:
        node = Node(op, self.g.unique_name(hint), inputs, outputs, attrs or {})
        self.new.append(node)
        return node

    def transpose(self, x: str, perm: tuple[int, ...], hint: str, out: str | None = None) -> str:
        t = self.g.tensors[x]
        if out is None:
            out = self.g.add_tensor(hint, tuple(t.shape[p] for p in perm), t.dtype, t.quant)
        self.add("Transpose", hint, [x], [out], {"perm": perm})
        return out

    def to_last(self, x: str, hint: str) -> str:
        rank = len(self.g.tensors[x].shape)
        return self.transpose(x, _to_last_perm(rank), hint) if rank > 2 else x

    def need(self, t: str) -> None:
        """Make float tensor t exist in the new graph (Unpack a packed one)."""
        if not t or t in self.ready or self.g.tensors[t].is_const:
            return
        p = self.packed[t]  # a float tensor not computed is one that is packed
        out = self.g.tensors[t]
        bits = self.g.tensors[p.tensor]
        if p.spatial is None and len(out.shape) <= 2:
            self.add("Unpack", f"{t}_unpack", [p.tensor], [t])
        else:
            values = self.g.add_tensor(f"{t}_unpacked", bits.shape)
            self.add("Unpack", f"{t}_unpack", [p.tensor], [values])
            rank = len(bits.shape)
            if p.spatial is None:
                self.transpose(values, _to_first_perm(rank), f"{t}_nchw", out=t)
            else:
                first = self.transpose(values, _to_first_perm(rank), f"{t}_nchw")
                self.add("Reshape", f"{t}_flatten", [first], [t], {"shape": out.shape})
        self.ready.add(t)

    def keep(self, node: Node) -> None:
        for t in node.inputs:
            self.need(t)
        if any(n.name == node.name for n in self.new):
            node.name = self.g.unique_name(node.name)
        self.new.append(node)
        self.ready.update(node.outputs)

    def refuse(self, node: Node, why: str):
        raise UnsupportedOperator(f"{node.op} node '{node.name}': {why}")

    # -- recognition
    def binary_input(self, node: Node) -> tuple[Packed, Node | None] | None:
        """The packed input of a Conv/MatMul/Gemm, and the Pad between them if any."""
        x = node.inputs[0]
        if x in self.packed:
            return self.packed[x], None
        pad = self.producer.get(x)
        if pad is not None and pad.op == "Pad" and id(pad) in self.skip and \
                pad.inputs[0] in self.packed:
            return self.packed[pad.inputs[0]], pad
        return None

    def pad_absorbed(self, node: Node) -> bool:
        """A Pad of binary values whose every consumer is a convolution (which absorbs it)."""
        cons = self.consumers.get(node.outputs[0], [])
        return (node.inputs[0] in self.packed and self.packed[node.inputs[0]].spatial is None
                and bool(cons) and all(c.op == "Conv" and _binary_layer(c) for c in cons)
                and not self.g.is_output(node.outputs[0]))

    def pm1_weights(self, node: Node, name: str) -> np.ndarray:
        w = self.g.const(name)
        if w is None:
            self.refuse(node, "its input is binary but its weights are computed at run time")
        bad = w[(w != 1) & (w != -1)]
        if bad.size:
            self.refuse(node, f"its input is binarized (sign) but {bad.size} of {w.size} "
                              f"weights are not +/-1 (e.g. {float(bad.reshape(-1)[0]):g}); a "
                              "binary layer needs +/-1 weights with any scale as a separate "
                              "Mul (as tinyc.nn exports it; do not fold it into the weights)")
        return w

    def chain(self, start: str, axis: int) -> Chain:
        steps: list[tuple[str, object]] = []
        nodes: list[Node] = []
        t = start
        while not self.g.is_output(t):
            cons = self.consumers.get(t, [])
            if len(cons) != 1:
                break
            n = cons[0]
            shape = self.g.tensors[t].shape
            if n.op in AFFINE_OPS:
                other = n.inputs[1] if n.inputs[0] == t else n.inputs[0]
                if (n.inputs[0] != t and n.op == "Sub") or n.inputs[0] == n.inputs[1]:
                    break
                value = self.g.const(other)
                if value is None or value.dtype != np.float32 or \
                        self.g.tensors[n.outputs[0]].shape != shape:
                    break
                vec = per_channel(value, shape, axis)
                if vec is None:
                    break
                steps.append((n.op.lower(), vec.astype(np.float32)))
            elif n.op == "BatchNormalization" and n.inputs[0] == t and \
                    not n.attrs["channels_last"] and axis % len(shape) == 1:
                steps.append(("bn", batchnorm_affine(n, self.g)))
            else:
                break
            nodes.append(n)
            t = n.outputs[0]
        return Chain(steps, nodes, t, all(n.attrs.get("exact", True) for n in nodes))

    def sign_consumers(self, t: str, axis: int) -> tuple[list[Node], np.ndarray] | None:
        """The Binarize nodes reading t, when they are all its readers and share one
        per-channel threshold."""
        cons = self.consumers.get(t, [])
        if not cons or self.g.is_output(t) or any(c.op != "Binarize" or c.inputs[0] != t
                                                  for c in cons):
            return None
        shape = self.g.tensors[t].shape
        thresholds = [per_channel(self.g.const(c.inputs[1]), shape, axis) for c in cons]
        if any(th is None for th in thresholds) or \
                any(not np.array_equal(th, thresholds[0]) for th in thresholds):
            return None
        return cons, thresholds[0].astype(np.float32)

    # -- rewrites
    def sign(self, node: Node) -> None:
        x, t = node.inputs[0], node.inputs[1]
        self.need(x)
        shape = self.g.tensors[x].shape
        if len(shape) < 2:
            self.refuse(node, f"binarizing a rank-{len(shape)} tensor (rank 2 and more are "
                              "supported)")
        if self.g.tensors[node.outputs[0]].shape != shape:
            self.refuse(node, "its threshold broadcasts beyond its input's shape")
        thr = per_channel(self.g.const(t), shape, 1)
        if thr is None:
            self.refuse(node, "its threshold varies along other axes than the channels; the "
                              "packing kernels take one threshold per channel")
        x_last = self.to_last(x, f"{node.name}_input_nhwc")
        packed = self.g.add_tensor(f"{node.name}_bits", _last_shape(shape), "bin")
        if np.all(thr == thr[0]):
            self.add("SignPack", node.name, [x_last], [packed], {"threshold": float(thr[0])})
        else:
            thr_name = self.g.add_const(f"{node.name}_threshold", thr.astype(np.float32))
            self.add("SignPack", node.name, [x_last, thr_name], [packed])
        self.packed[node.outputs[0]] = Packed(packed)

    def finish_layer(self, node: Node, op: str, x: str, w_packed: str, attrs: dict,
                     out_shape_first: tuple[int, ...], axis: int, n_max: int,
                     bias: np.ndarray | None) -> None:
        """Fuse the chain after the layer's output, choose the output transform, add the op."""
        channels = out_shape_first[axis]
        chain = self.chain(node.outputs[0], axis)
        if bias is not None:
            chain.steps.insert(0, ("add", bias.astype(np.float32)))
        fused = self.sign_consumers(chain.end, axis)
        rank = len(out_shape_first)
        out_last = _last_shape(out_shape_first) if axis == 1 and rank > 2 else out_shape_first
        for n in chain.nodes:
            self.skip.add(id(n))
        if fused is not None:
            signs, threshold = fused

            def chain_minus_threshold(dots: np.ndarray) -> np.ndarray:
                return chain.evaluate(dots) - threshold.astype(np.float64)

            try:
                thr, flip = B.sign_thresholds_from_function(chain_minus_threshold, n_max,
                                                            channels)
            except ValueError as exc:
                self.refuse(node, f"its BatchNorm / scale before a sign cannot be fused into "
                                  f"thresholds ({exc})")
            out = self.g.add_tensor(f"{node.name}_bits", out_last, "bin")
            inputs = [x, w_packed, self.g.add_const(f"{node.name}_threshold", thr),
                      self.g.add_packed_const(f"{node.name}_flip", B.pack_flip(flip),
                                              (channels,))]
            self.add(op, node.name, inputs, [out], attrs | {"out_dtype": "bin", "exact": True})
            for s in signs:
                self.skip.add(id(s))
                self.packed[s.outputs[0]] = Packed(out)
            return
        a, b = chain.affine64(channels)
        inputs = [x, w_packed, self.g.add_const(f"{node.name}_mul", a.astype(np.float32)),
                  self.g.add_const(f"{node.name}_bias", b.astype(np.float32))]
        attrs = attrs | {"out_dtype": "float32", "exact": chain.exact}
        if out_last == out_shape_first:
            self.add(op, node.name, inputs, [chain.end], attrs)
        else:
            y = self.g.add_tensor(f"{node.name}_nhwc", out_last)
            self.add(op, node.name, inputs, [y], attrs)
            self.transpose(y, _to_first_perm(rank), f"{node.name}_output_nchw", out=chain.end)
        self.ready.add(chain.end)

    def conv(self, node: Node, src: Packed, pad: Node | None) -> None:
        a = node.attrs
        w = self.pm1_weights(node, node.inputs[1])
        nsp = len(a["kernel_shape"])
        pads = list(a["pads"])
        pad_value = 0
        if pad is not None:
            pa = pad.attrs
            rank = nsp + 2
            value = float(pa["value"])
            if pa["mode"] != "constant":
                self.refuse(node, f"its binary input is padded in mode '{pa['mode']}' (Pad "
                                  f"'{pad.name}'); binary kernels pad with a constant 0, +1 or -1")
            if value not in (0.0, 1.0, -1.0):
                self.refuse(node, f"its binary input is padded with {value:g} (Pad "
                                  f"'{pad.name}'); binary kernels pad with 0, +1 or -1")
            extra = pa["pads"]
            if any(extra[i] or extra[i + rank] for i in (0, 1)) or min(extra) < 0:
                self.refuse(node, f"Pad '{pad.name}' pads the batch or channel axis or crops; "
                                  "binary kernels pad the spatial axes only")
            if value != 0.0 and any(pads):
                self.refuse(node, f"its input mixes {value:+g} padding (Pad '{pad.name}') and "
                                  "the convolution's zero padding; binary kernels take one pad "
                                  "value per layer")
            pads = [pads[i] + extra[2 + i] for i in range(nsp)] + \
                [pads[nsp + i] + extra[rank + 2 + i] for i in range(nsp)]
            pad_value = int(value)
        cig = w.shape[1]
        taps = int(np.prod(a["kernel_shape"]))
        canonical = B.conv_weight_channels_last(w)
        packed_w = self.g.add_packed_const(f"{node.name}_weight_bits",
                                           B.pack_conv_weights(canonical),
                                           (w.shape[0], taps * cig))
        attrs = {"kernel_shape": tuple(a["kernel_shape"]), "strides": tuple(a["strides"]),
                 "dilations": tuple(a["dilations"]), "pads": tuple(pads), "group": a["group"],
                 "pad_value": pad_value}
        bias = self.g.const(node.input(2)) if node.input(2) else None
        self.finish_layer(node, "BinaryConv", src.tensor, packed_w, attrs,
                          self.g.tensors[node.outputs[0]].shape, 1, taps * cig, bias)

    def dense(self, node: Node, src: Packed) -> None:
        if node.op == "Gemm":
            at = node.attrs
            if at["transA"]:
                self.refuse(node, "transA=1 on a binary input")
            w = self.pm1_weights(node, node.inputs[1])
            w = w if at["transB"] else w.T
            bias = self.g.const(node.input(2)) if node.input(2) else None
            if node.input(2) and bias is None:
                self.refuse(node, "its bias is computed at run time")
            alpha, beta = float(at["alpha"]), float(at["beta"])
        else:
            w = self.pm1_weights(node, node.inputs[1])
            if w.ndim != 2:
                self.refuse(node, f"rank-{w.ndim} weights (a binary dense layer takes [in, out])")
            w = w.T
            bias, alpha, beta = None, 1.0, 1.0
        out_c, features = w.shape
        y_shape = self.g.tensors[node.outputs[0]].shape
        attrs = {"flatten": src.spatial is not None}
        if src.spatial is not None:
            # Columns in the source's (C, *S) order -> the packed map's (*S, C) order.
            c, sp = src.spatial[1], src.spatial[2:]
            w = np.moveaxis(w.reshape(out_c, c, *sp), 1, -1).reshape(out_c, features)
        w_packed = self.g.add_packed_const(f"{node.name}_weight_bits", B.pack_fc_weights(w),
                                           (out_c, features))
        steps_bias = None
        if bias is not None:
            vec = per_channel(bias, y_shape, -1)
            if vec is None:
                self.refuse(node, "its bias is not one value per output")
            steps_bias = vec * np.float32(beta)
        if alpha != 1.0:
            self.refuse(node, f"Gemm alpha {alpha:g} on a binary layer (export the scale as a Mul)")
        self.finish_layer(node, "BinaryDense", src.tensor, w_packed, attrs, y_shape, -1,
                          features, steps_bias)

    def maxpool(self, node: Node, src: Packed) -> None:
        a = node.attrs
        x = self.g.tensors[src.tensor]
        y = self.g.tensors[node.outputs[0]]
        nsp = len(a["kernel_shape"])
        pads_end = []
        for i in range(nsp):  # ceil_mode's extra windows: more trailing padding (ignored taps)
            size, k, s, d = x.shape[1 + i], a["kernel_shape"][i], a["strides"][i], \
                a["dilations"][i]
            need = (y.shape[2 + i] - 1) * s + d * (k - 1) + 1 - size - a["pads"][i]
            pads_end.append(max(a["pads"][nsp + i], need))
        attrs = {"kernel_shape": tuple(a["kernel_shape"]), "strides": tuple(a["strides"]),
                 "dilations": tuple(a["dilations"]),
                 "pads": tuple(a["pads"][:nsp]) + tuple(pads_end)}
        geom = B.pool_geometry(x.shape[1:-1], x.shape[-1], attrs["kernel_shape"],
                               attrs["strides"], attrs["dilations"], attrs["pads"][:nsp],
                               pads_end)
        if geom.out_shape[3 - nsp:] != y.shape[2:]:
            self.refuse(node, f"its output {list(y.shape[2:])} (ceil_mode) is not a binary max "
                              "pool window layout")
        out = self.g.add_tensor(f"{node.name}_bits", _last_shape(y.shape), "bin")
        self.add("BinaryMaxPool", node.name, [src.tensor], [out], attrs)
        self.packed[node.outputs[0]] = Packed(out)

    def run(self) -> None:
        for node in self.old:
            if id(node) in self.skip:
                continue
            x = node.inputs[0] if node.inputs else ""
            src = self.packed.get(x)
            if node.op == "Binarize":
                self.sign(node)
            elif node.op == "Pad" and self.pad_absorbed(node):
                self.skip.add(id(node))
            elif node.op == "Conv" and _binary_layer(node) and \
                    (found := self.binary_input(node)) is not None and found[0].spatial is None:
                self.conv(node, *found)
            elif node.op in ("MatMul", "Gemm") and src is not None and _binary_layer(node):
                if src.spatial is None and len(self.g.tensors[x].shape) != 2:
                    self.refuse(node, "a binary dense layer on a rank-"
                                      f"{len(self.g.tensors[x].shape)} input (rank 2, or the "
                                      "flatten of a feature map, is supported)")
                self.dense(node, src)
            elif node.op == "MaxPool" and src is not None and src.spatial is None and \
                    not node.attrs["channels_last"] and len(self.g.tensors[x].shape) >= 3:
                self.maxpool(node, src)
            elif node.op == "Reshape" and src is not None and src.spatial is None and \
                    _flatten_source(self.g, node):
                self.packed[node.outputs[0]] = Packed(src.tensor, self.g.tensors[x].shape)
            else:
                self.keep(node)
        for t in self.g.outputs:
            self.need(t)


def binarize(graph: Graph) -> Graph:
    """Rewrite the sign -> +/-1 layer patterns into binary operators (module docstring)."""
    if not any(n.op == "Binarize" for n in graph.nodes):
        return graph
    while _hoist_once(graph):
        pass
    _Rewriter(graph).run()
    return remove_dead_nodes(graph)
