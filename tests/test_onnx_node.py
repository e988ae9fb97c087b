"""ONNX backend node tests, compiled to C and run natively (host gcc), against the shipped outputs.

The cases come from the installed `onnx` package (onnx/backend/test/data/node/*): every case
whose operators tinyc's ONNX frontend maps and whose graph inputs and outputs are float32 is run.
A node test feeds a convolution's weights or a Clip's bounds as graph inputs; a deployment
compiler needs those constant, so the harness binds inputs in such parameter slots to the case's
own test data as initializers (the operator's semantics are unchanged).  The cases tinyc refuses
are listed in REFUSED with the reason, and each must be refused with that reason: a case that
compiles is run and must pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tinyc.boards import load_board
from tinyc.codegen import build_program, kernel_memory
from tinyc.errors import TinycError
from tinyc.firmware import open_project, run
from tinyc.frontends import LoadedModel
from tinyc.frontends.onnx_frontend import CONVERTERS, convert
from tinyc.ir import clone
from tinyc.pipeline import lower
from tinyc.planner import plan_memory
from tinyc.project import Compiled, make_report, write_project
from tinyc.verify import within_tolerance

NODE_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"

# (ONNX op, input index) pairs that are compile-time parameters in tinyc.
PARAMETER_SLOTS = {
    "Conv": {1, 2}, "ConvTranspose": {1, 2}, "BatchNormalization": {1, 2, 3, 4},
    "Clip": {1, 2}, "Reshape": {1}, "Expand": {1}, "Pad": {1, 2, 3}, "Slice": {1, 2, 3, 4},
    "Squeeze": {1}, "Unsqueeze": {1}, "ReduceMean": {1}, "ReduceMax": {1}, "ReduceMin": {1},
    "ReduceSum": {1}, "LayerNormalization": {1, 2}, "InstanceNormalization": {1, 2},
    "Resize": {1, 2, 3}, "Upsample": {1},
}

# Cases tinyc refuses, with the text its one-line error must contain.
REFUSED = {
    "test_batchnorm_epsilon_training_mode": "training_mode=1",
    "test_batchnorm_example_training_mode": "training_mode=1",
    "test_celu_expanded": "opset 12 is not supported",
    "test_dropout_default_old": "opset 11 is not supported",
    "test_dropout_random_old": "opset 11 is not supported",
    "test_gelu_tanh_1": "approximate=tanh",
    "test_gelu_tanh_2": "approximate=tanh",
    # Resize: nearest neighbour by whole factors only (each input element repeated).
    **{f"test_resize_{way}_scales_{mode}": f"mode '{mode.split('_')[0]}'"
       for way in ("upsample", "downsample") for mode in (
           "cubic", "cubic_A_n0p5_exclude_outside", "cubic_align_corners", "linear",
           "linear_align_corners", "linear_half_pixel_symmetric")},
    "test_resize_upsample_scales_cubic_asymmetric": "mode 'cubic'",
    "test_resize_downsample_scales_cubic_antialias": "mode 'cubic'",
    "test_resize_downsample_scales_linear_antialias": "mode 'linear'",
    "test_resize_downsample_scales_nearest": "tinyc resizes by whole factors",
    "test_resize_upsample_scales_nearest_axes_2_3": "the axes attribute",
    "test_resize_upsample_scales_nearest_axes_3_2": "the axes attribute",
    "test_upsample_nearest": "opset 9 is not supported",
    # Less/Where are taken as the binary sign pattern only (Less(x, T) -> Where(., -1, +1)).
    **{f"test_clip_{case}expanded": "run-time Where" for case in (
        "", "default_max_", "default_min_", "example_", "inbounds_",
        "min_greater_than_max_", "outbounds_", "splitbounds_")},
}


def _is_float_case(model: onnx.ModelProto) -> bool:
    values = list(model.graph.input) + list(model.graph.output)
    return all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in values)


def _opset(model: onnx.ModelProto) -> int:
    return next(e.version for e in model.opset_import if e.domain in ("", "ai.onnx"))


def collect_cases() -> list[str]:
    cases = []
    for case in sorted(p.name for p in NODE_DIR.iterdir()):
        model = onnx.load(str(NODE_DIR / case / "model.onnx"))
        ops = {n.op_type for n in model.graph.node}
        if ops <= set(CONVERTERS) and _is_float_case(model) and _opset(model) <= 25:
            cases.append(case)
    return cases


def _load_case(case: str) -> tuple[onnx.ModelProto, list[np.ndarray], list[np.ndarray]]:
    model = onnx.load(str(NODE_DIR / case / "model.onnx"))
    data = sorted((NODE_DIR / case).glob("test_data_set_*"))[0]
    inputs = [numpy_helper.to_array(onnx.load_tensor(str(f)))
              for f in sorted(data.glob("input_*.pb"))]
    outputs = [numpy_helper.to_array(onnx.load_tensor(str(f)))
               for f in sorted(data.glob("output_*.pb"))]
    return model, inputs, outputs


def bind_parameters(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Turn graph inputs used in parameter slots into initializers; return the run-time inputs."""
    params = set()
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if i in PARAMETER_SLOTS.get(node.op_type, ()):
                params.add(name)
    runtime = []
    kept = []
    for value, data in zip(list(model.graph.input), inputs, strict=False):
        if value.name in params:
            model.graph.initializer.append(numpy_helper.from_array(data, value.name))
        else:
            kept.append(value)
            runtime.append(data)
    del model.graph.input[:]
    model.graph.input.extend(kept)
    return runtime


CASES = collect_cases()


def test_node_cases_found() -> None:
    assert len(CASES) > 200, f"only {len(CASES)} ONNX node cases selected"


@pytest.mark.parametrize("case", CASES)
def test_node(case: str, tmp_path: Path) -> None:
    model, inputs, expected = _load_case(case)
    runtime_inputs = bind_parameters(model, inputs)
    board = load_board("qemu-m4")
    if case in REFUSED:
        with pytest.raises(TinycError, match=REFUSED[case].replace("(", r"\(")):
            convert(model, case)
        return
    graph = convert(model, case)
    lowered = lower(clone(graph), verify=True)
    plan = plan_memory(lowered, *kernel_memory(lowered))
    program = build_program(lowered, plan, "model")
    loaded = LoadedModel(graph, "onnx", lambda v: expected, "onnx node test")
    report = make_report(plan, program, board, loaded, Path(case))
    write_project(Compiled(loaded, lowered, plan, program, board, report), tmp_path / "p")
    result = run(open_project(tmp_path / "p"), [runtime_inputs], "host")
    for i, (got, want) in enumerate(zip(result.outputs[0], expected, strict=True)):
        got = got.reshape(want.shape)
        ok = within_tolerance(got, want)
        if not ok.all():
            where = tuple(int(j) for j in np.argwhere(~ok)[0])
            pytest.fail(f"{case} output {i}: {int((~ok).sum())} of {ok.size} elements differ; "
                        f"first at {where}: C {got[where]!r}, expected {want[where]!r}")
