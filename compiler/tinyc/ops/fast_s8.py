"""Compile-time choice of the optimized int8 kernels.

Every int8 operator first describes its portable kernel (an `S8Kernel`); `optimize_s8` then
replaces it, when the layer qualifies, by the optimized kernel that gives the same bytes
(runtime_c/tc_conv_fast_s8.h and the *_rows4 / *_lut variants), with its constants laid out by
tinyc.quant.fast.  The replacement keeps the portable kernel's NumPy reference (the results are
identical by construction, and tests/test_kernels_s8_fast.py holds the C of both to it), so the
simulation of a graph does not depend on the choice.

The optimized kernels have portable C paths as well as the DSP ones, so the choice does not
depend on the target: a core without the DSP extension (and the host build) runs their C path.
Layers they do not cover keep the portable kernel.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyc.ir import Graph
from tinyc.ops import CArray, InPlace, in_place_shift, window_in_place
from tinyc.ops.quantized import DerivedConst, Operand, S8Kernel
from tinyc.quant import fast

ENABLED = True  # tests switch it off to compile the portable kernels for comparison

_RUNTIME = ("tc_conv_fast_s8.c", "tc_conv_fast_s8.h")
GEMM_PIXELS = 6  # output pixels per panel of tc_conv_gemm_s8 (runtime_c/tc_conv_fast_s8.c)


def _constant(graph: Graph, operand: Operand) -> np.ndarray | None:
    if isinstance(operand, DerivedConst):
        return operand.value
    if operand == "":
        return None
    return graph.tensors[operand].data


def _keeping_reference(kernel: S8Kernel, constants: list[np.ndarray | None]) -> Callable:
    """The portable kernel's reference, fed its own operands (the input(s) come first)."""
    n_inputs = len(kernel.operands) - len(constants)

    def reference(_params, *values):
        return kernel.reference(kernel.params, *values[:n_inputs], *constants)

    return reference


def _as_arrays(params: dict) -> None:
    """The bias and requantization records become the const arrays the struct points to."""
    params["bias"] = CArray("int32_t", params["bias"])
    params["requant"] = CArray(fast.CHANNEL_TYPE, params["requant"])


def optimize_s8(kernel: S8Kernel, graph: Graph) -> S8Kernel:
    """The optimized equivalent of `kernel` when there is one for this layer, else `kernel`."""
    if not ENABLED:
        return kernel
    chooser = _CHOOSERS.get(kernel.function)
    return (chooser(kernel, graph) if chooser is not None else None) or kernel


def _conv(kernel: S8Kernel, graph: Graph) -> S8Kernel | None:
    x, w_op, b_op = kernel.operands
    w, b = _constant(graph, w_op), _constant(graph, b_op)
    geometry = fast.columns_as_rows(fast.fold_depth(kernel.params))
    if w is None or (b_op != "" and b is None) or not fast.conv_gemm_eligible(geometry):
        return None
    params, weights, scratch = fast.conv_gemm(geometry, w, b)
    function = fast.conv_gemm_function(params)
    _as_arrays(params)
    # Each panel of GEMM_PIXELS output pixels is gathered into the scratch before any of its
    # outputs is written (3-D layers copy a whole image into their frame even earlier).
    in_place = window_in_place(x, graph, geometry, (geometry["in_c"], geometry["out_c"]), 1,
                               group=GEMM_PIXELS, rereads=False)
    return S8Kernel(function, *_RUNTIME, "tc_conv_gemm_s8_params_t", params,
                    [x, DerivedConst("weight_gemm", weights)],
                    _keeping_reference(kernel, [w, b]), kernel.summary,
                    scratch_bytes=scratch, in_place=in_place)


def _depthwise(kernel: S8Kernel, graph: Graph) -> S8Kernel | None:
    x, w_op, b_op = kernel.operands
    w, b = _constant(graph, w_op), _constant(graph, b_op)
    geometry = fast.columns_as_rows(fast.fold_depth(kernel.params))
    if w is None or (b_op != "" and b is None) or not fast.depthwise_planar_eligible(geometry):
        return None
    if fast.depthwise_cl_pays(geometry):
        name = "cl"
        params, weights, scratch = fast.depthwise_cl(geometry, w, b)
        in_place = _depthwise_in_place(x, params, exact=False)
    else:
        name = "planar"
        params, weights, scratch = fast.depthwise_planar(geometry, w, b)
        in_place = _depthwise_in_place(x, geometry, exact=True)
    _as_arrays(params)
    function = f"tc_depthwise_conv_{name}_s8"
    return S8Kernel(function, *_RUNTIME, f"{function}_params_t", params,
                    [x, DerivedConst(f"weight_{name}", weights)],
                    _keeping_reference(kernel, [w, b]), kernel.summary,
                    scratch_bytes=scratch, in_place=in_place)


def _depthwise_in_place(x: str, p: dict, exact: bool) -> tuple[InPlace, ...]:
    """The depthwise kernels may write over their input at its offset (`exact`: there and
    nowhere lower) where an output image is no larger than an input image:

    tc_depthwise_conv_planar_s8 (exact) copies all of input channel c (of one image) into its
    scratch plane (a volume for 3-D layers) before writing output channel c, and writes
    nothing else then.  With as many output as input channels, every byte at an offset = c
    (mod channels) belongs to channel c of both tensors, so writing channel c over the input
    only destroys input values of channel c already copied (or of an earlier image); a lower
    offset would shift the channels.

    tc_depthwise_conv_cl_s8 with a frame copies each whole image before writing any of its
    outputs.  Without one (no padding, so out_* <= in_*) output pixel i, flat index in
    (batch, d, h, w) order, is written four channels at a time while its window is read from
    flat index i on: the window's first tap is at least i, later windows start further on, and
    channels below the group written are done with; so at or below the input's offset."""
    in_image = p["in_d"] * p["in_h"] * p["in_w"]
    out_image = p["out_d"] * p["out_h"] * p["out_w"]
    return (InPlace(x, 0, exact=exact),) if out_image <= in_image else ()


def _fully_connected(kernel: S8Kernel, graph: Graph) -> S8Kernel | None:
    x, w_op, b_op = kernel.operands
    w, b = _constant(graph, w_op), _constant(graph, b_op)
    if w is None or (b_op != "" and b is None):
        return None
    params, weights, scratch = fast.fully_connected_rows4(kernel.params, w, b)
    _as_arrays(params)
    # Each batch row of the input is expanded into the scratch before its outputs are written.
    rows, n_in, n_out = params["batch"], params["in_features"], params["out_features"]
    shift = in_place_shift(np.arange(rows) * n_in, n_out, 1, rereads=False)
    return S8Kernel("tc_fully_connected_rows4_s8", "tc_fully_connected_fast_s8.c",
                    "tc_fully_connected_fast_s8.h", "tc_fully_connected_rows4_s8_params_t",
                    params, [x, DerivedConst("weight_rows4", weights)],
                    _keeping_reference(kernel, [w, b]), kernel.summary, scratch_bytes=scratch,
                    in_place=() if shift is None else (InPlace(x, shift),))


def _add_sub(kernel: S8Kernel, _graph: Graph) -> S8Kernel | None:
    if not fast.add_lut_eligible(kernel.params):
        return None
    sign = -1 if kernel.function == "tc_sub_s8" else 1
    params, table1, table2 = fast.add_lut(kernel.params, sign)
    return S8Kernel("tc_add_lut_s8", "tc_elementwise_fast_s8.c", "tc_elementwise_fast_s8.h",
                    "tc_add_lut_s8_params_t", params,
                    [*kernel.operands, DerivedConst("table1", table1),
                     DerivedConst("table2", table2)],
                    _keeping_reference(kernel, []), kernel.summary, in_place=kernel.in_place)


_CHOOSERS: dict[str, Callable[[S8Kernel, Graph], S8Kernel | None]] = {
    "tc_conv_s8": _conv,
    "tc_depthwise_conv_s8": _depthwise,
    "tc_fully_connected_s8": _fully_connected,
    "tc_add_s8": _add_sub,
    "tc_sub_s8": _add_sub,
}
