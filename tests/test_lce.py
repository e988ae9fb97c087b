"""Larq Compute Engine .tflite files: LCE's custom operators lowered onto tinyc's binary IR, the
generated C held to the outputs of LCE's own interpreter.

The fixtures in tests/data/lce/ are real LCE 0.16 conversions of small Larq models with their
reference outputs (tests/data/lce/make_fixtures.py made them in .venv-lce; nothing here needs
LCE).  Binary-only paths (LceQuantize, packed-output LceBconv2d thresholds, LceBMaxPool2d,
LceDequantize, a float output whose multiplier is 1) must match bit for bit.  A float
LceBconv2d output is dot * m + b rounded in another order than LCE's (frontends/lce.py), so it
is held to that rounding bound, 2^-22 * (4 * K * |m| + 2 * |b|) per element; outputs that
pass through float layers afterwards to 2^-16 of the output's largest magnitude.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from flatbuffers import flexbuffers

from helpers import ROOT, tinyc
from tinyc.boards import load_board
from tinyc.errors import TinycError, UnsupportedOperator
from tinyc.firmware import open_project, run
from tinyc.frontends.tflite_frontend import convert_tflite, load_schema
from tinyc.project import compile_model, write_project

pytest.importorskip("ai_edge_litert")

DATA = ROOT / "tests" / "data" / "lce"
# fixture -> how its outputs compare with LCE's: "exact", "bconv" (the float transform's
# rounding bound) or "float" (2^-16 of the largest magnitude).
FIXTURES = {
    "binary_out": "exact",
    "dilated_grouped_relu": "exact",
    "bconv_float_out": "bconv",
    "bconv_zero_pad_out": "bconv",
    "one_pad_chain": "float",
    "float_first_maxpool_zero_pad": "float",
}
FLOAT_REL = 2.0**-16


def _fixture(name: str) -> tuple[Path, np.ndarray, np.ndarray]:
    data = np.load(DATA / f"{name}.npz")
    return DATA / f"{name}.tflite", data["input"], data["output"]


def _bconv_bound(graph) -> np.ndarray:
    """Per output channel: 2^-22 * (4 * K * |m| + 2 * |b|) of the graph's one BinaryConv."""
    (node,) = [n for n in graph.nodes if n.op == "BinaryConv"]
    taps = graph.tensors[node.inputs[1]].shape[1]
    m = np.abs(graph.const(node.inputs[2]).astype(np.float64))
    b = np.abs(graph.const(node.inputs[3]).astype(np.float64))
    return 2.0**-22 * (4 * taps * m + 2 * b)


def _compare(kind: str, got: np.ndarray, want: np.ndarray, graph) -> float:
    """Assert `got` matches LCE's `want` under the fixture's rule; returns the largest error."""
    got = got.reshape(want.shape)
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    if kind == "exact":
        bound = np.zeros_like(err)
    elif kind == "bconv":
        bound = np.broadcast_to(_bconv_bound(graph), err.shape)
    else:
        bound = np.full(err.shape, FLOAT_REL * float(np.abs(want).max()))
    bad = err > bound
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        pytest.fail(f"{int(bad.sum())} of {bad.size} outside the {kind} rule; first at {where}: "
                    f"C {got[where]!r}, LCE {want[where]!r}, bound {bound[where]:.3g}")
    return float(err.max())


def _run(name: str, tmp_path: Path, target: str) -> None:
    path, x, y = _fixture(name)
    compiled = compile_model(path, load_board("qemu-m4"))
    write_project(compiled, tmp_path / "project")
    samples = [[sample[None]] for sample in x]
    outputs = run(open_project(tmp_path / "project"), samples, target).outputs
    got = np.stack([o[0] for o in outputs])
    worst = _compare(FIXTURES[name], got, y, compiled.graph)
    print(f"{name} on {target}: max |C - LCE| = {worst:.3g} (max |LCE| "
          f"{float(np.abs(y).max()):.3g}, rule {FIXTURES[name]})")


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_host_c_matches_lce(name: str, tmp_path: Path) -> None:
    _run(name, tmp_path, "host")


def test_fixture_on_cortex_m4(tmp_path: Path) -> None:
    _run("float_first_maxpool_zero_pad", tmp_path, "board")


def test_lce_operators_lower_to_binary_ir() -> None:
    graph = convert_tflite(DATA / "float_first_maxpool_zero_pad.tflite")
    assert [n.op for n in graph.nodes] == ["Conv", "SignPack", "BinaryConv", "BinaryMaxPool",
                                           "BinaryConv", "Reshape", "Gemm"]
    first, pool, second = (n for n in graph.nodes if n.op.startswith("Binary"))
    # valid 3x3 over 16 channels with packed output (thresholds); LCE's 2x2 max pool; then
    # SAME zero padding (pad_values=0) with float output.
    assert first.attrs["out_dtype"] == "bin" and first.attrs["pads"] == (0, 0, 0, 0)
    assert pool.attrs["kernel_shape"] == (2, 2) and pool.attrs["strides"] == (2, 2)
    assert second.attrs["pad_value"] == 0 and second.attrs["pads"] == (1, 1, 1, 1)
    assert second.attrs["out_dtype"] == "float32" and not second.attrs["exact"]
    assert graph.tensors[second.inputs[0]].shape == (1, 3, 3, 35)
    chain = convert_tflite(DATA / "one_pad_chain.tflite")
    assert {n.attrs["pad_value"] for n in chain.nodes if n.op == "BinaryConv"} == {1}


def test_verify_without_lce_interpreter_is_refused(tmp_path: Path) -> None:
    if importlib.util.find_spec("larq_compute_engine") is not None:
        pytest.skip("LCE's interpreter is installed here: verify runs it")
    result = tinyc("verify", DATA / "binary_out.tflite", "--samples", "1")
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        f"tinyc: error: {DATA / 'binary_out.tflite'}: verifying a Larq Compute Engine model "
        "needs LCE's interpreter (the larq-compute-engine package, as in the .venv-lce that "
        "scripts/setup_lce_env.sh makes), which is not importable here and LiteRT/TFLM cannot "
        "run LCE's custom ops; tinyc compile and tinyc run still work"]
    wrong = tinyc("verify", DATA / "binary_out.tflite", "--reference", "litert")
    assert wrong.code == 2
    assert f"--reference litert: {DATA / 'binary_out.tflite'} holds Larq Compute Engine " \
        "operators, which only LCE's interpreter runs (--reference lce)" in wrong.stderr


# ------------------------------------------------------------------------------------------------
# Bad input: one line naming the operator and the option
# ------------------------------------------------------------------------------------------------


def _edited(name: str, tmp_path: Path, op_code: str, edit) -> Path:
    """A copy of fixture `name` whose first `op_code` operator's custom options (a dict) and
    operator are changed by edit(options, op, model)."""
    schema = load_schema()
    model = schema.ModelT.InitFromPackedBuf((DATA / f"{name}.tflite").read_bytes(), 0)
    codes = [c.customCode.decode() if c.customCode else "" for c in model.operatorCodes]
    op = next(o for o in model.subgraphs[0].operators if codes[o.opcodeIndex] == op_code)
    options = flexbuffers.Loads(np.asarray(op.customOptions, np.uint8).tobytes()) \
        if op.customOptions is not None and len(op.customOptions) else {}
    edit(options, op, model)
    if options:
        op.customOptions = list(flexbuffers.Dumps(options))
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / f"{name}_edited.tflite"
    path.write_bytes(bytes(builder.Output()))
    return path


def _set(key: str, value):
    def edit(options: dict, op, model) -> None:
        options[key] = value
    return edit


def _threshold_out_zero_pad(options: dict, op, model) -> None:
    options["padding"], options["pad_values"] = 0, 0


def _drop_options(options: dict, op, model) -> None:
    options.clear()
    op.customOptions = None


def _int8_output(options: dict, op, model) -> None:
    tensor = model.subgraphs[0].tensors[op.outputs[0]]
    tensor.type = 9  # INT8
    tensor.quantization = load_schema().QuantizationParametersT()
    tensor.quantization.scale, tensor.quantization.zeroPoint = [0.1], [0]


@pytest.mark.parametrize("name, op_code, edit, message", [
    ("bconv_float_out", "LceBconv2d", _set("pad_values", 2),
     "pad_values 2 (LCE pads with 0 or 1)"),
    ("bconv_float_out", "LceBconv2d", _set("padding", 5),
     "padding 5 (LCE writes 0 SAME or 1 VALID)"),
    ("bconv_float_out", "LceBconv2d", _set("fused_activation_function", 1),
     "fused_activation_function RELU with a post-activation multiplier or bias (LCE clamps the "
     "integer dot before scaling it; tinyc's binary kernels clamp after)"),
    ("bconv_float_out", "LceBconv2d", _set("fused_activation_function", 4),
     "fused_activation_function TANH (RELU, RELU6 and RELU_N1_TO_1 fuse)"),
    ("bconv_float_out", "LceBconv2d", _set("channels_in", 40),
     "channels_in 40 but its input is [1, 9, 7, 37]"),
    ("bconv_float_out", "LceBconv2d", _set("stride_width", "2"),
     "its custom option 'stride_width' is missing or not an integer (got '2')"),
    ("binary_out", "LceBconv2d", _threshold_out_zero_pad,
     "bitpacked output with SAME zero padding (pad_values=0); LCE's optimized kernels refuse "
     "it too (export with pad_values=1 or padding 'valid')"),
    ("bconv_float_out", "LceBconv2d", _int8_output,
     "INT8 output (float32 and bitpacked int32 are supported; LCE's int8 output rounds its "
     "float transform in an order tinyc does not reproduce)"),
    ("float_first_maxpool_zero_pad", "LceBMaxPool2d", _drop_options,
     "it has no custom options; the model is malformed"),
])
def test_bad_lce_options_are_refused(name: str, op_code: str, edit, message: str,
                                     tmp_path: Path) -> None:
    path = _edited(name, tmp_path, op_code, edit)
    with pytest.raises(UnsupportedOperator) as info:
        convert_tflite(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"custom operator {op_code} (output tensor '")
    assert text.endswith(f"): {message}")


def test_packed_graph_output_is_refused(tmp_path: Path) -> None:
    def drop_dequantize(options: dict, op, model) -> None:
        sg = model.subgraphs[0]
        sg.outputs = [op.inputs[0]]
        sg.operators = sg.operators[:sg.operators.index(op)]  # up to the bconv

    path = _edited("binary_out", tmp_path, "LceDequantize", drop_dequantize)
    with pytest.raises(TinycError, match=r"^.*binary_out_edited\.tflite: model output "
                       r"'.*' is bitpacked; tinyc writes float32 or int8 outputs \(end the "
                       r"model with LceDequantize\)$"):
        convert_tflite(path)
