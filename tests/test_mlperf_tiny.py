"""The six MLPerf Tiny int8 models: compiled for qemu-m4, built, run natively and on QEMU, and
compared byte for byte with TFLM (the tflite-micro package) on at least 20 inputs each.

Inputs: seeded uniform int8 tensors, plus the benchmark's own data where it ships: the KWS
reference sample, and for AD the first sliding windows of the shipped log-mel spectrogram,
quantized with the model's input scale and zero point as the benchmark does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT
from tinyc.boards import load_board
from tinyc.firmware import open_project, run
from tinyc.project import compile_model, input_specs, sample_inputs, write_project
from tinyc.quant import arith

MODELS = ROOT.parent / "shared" / "models" / "mlperf_tiny"
NAMES = ["ad01_fc_autoencoder_int8", "ic01_resnet8_cifar10_int8", "ic01_resnet_large_int8",
         "kws01_dscnn_int8", "sww01_str_ww_ref_model", "vww01_mobilenetv1_025_96_int8"]
SAMPLES = 20


def shipped_inputs(name: str, graph) -> list[np.ndarray]:
    """The benchmark's own input data for this model, as int8 model inputs."""
    shape = graph.tensors[graph.inputs[0]].shape
    if name.startswith("kws01"):
        raw = np.fromfile(MODELS / "inputs" / "kws01_ref_sample_i8_49x10.bin", dtype=np.int8)
        return [raw.reshape(shape)]
    if name.startswith("ad01"):
        q = graph.tensors[graph.inputs[0]].quant
        frames = np.fromfile(MODELS / "inputs" /
                             "ad01_normal_id_01_00000000_hist_librosa_f32_200x128.bin",
                             dtype="<f4").reshape(200, 128)
        windows = [frames[i:i + 5].reshape(shape) for i in range(0, 10)]
        params = arith.quantize_params(q.s, q.zp)
        return [arith.quantize_s8(params, w) for w in windows]
    return []


@pytest.mark.parametrize("name", NAMES)
def test_bit_exact_with_tflm(name: str, tmp_path: Path) -> None:
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} is not available (../shared/models is beside the checkout in CI)")
    compiled = compile_model(path, load_board("qemu-m4"))
    assert compiled.model.reference_name == "tflm"
    graph = compiled.model.graph
    own = shipped_inputs(name, graph)
    samples = [[x] for x in own] + sample_inputs(input_specs(graph), SAMPLES - len(own) + 2)
    samples = samples[:max(SAMPLES, len(own))]
    expected = [compiled.model.reference(s)[0] for s in samples]
    write_project(compiled, tmp_path / "p")
    project = open_project(tmp_path / "p")
    for target in ("host", "board"):
        result = run(project, samples, target, timeout=300)
        for i, (got, want) in enumerate(zip(result.outputs, expected, strict=True)):
            got = got[0].reshape(want.shape)
            diff = np.argwhere(got != want)
            assert diff.size == 0, (f"{name} on {target}, sample {i}: {len(diff)} bytes differ; "
                                    f"first at {tuple(diff[0])}: C {got[tuple(diff[0])]}, "
                                    f"TFLM {want[tuple(diff[0])]}")
    # The simulation of the quantized graph in Python is exact too.
    from tinyc.interpret import run_graph

    for sample, want in zip(samples[:3], expected[:3], strict=True):
        assert np.array_equal(run_graph(compiled.graph, sample)[0].reshape(want.shape), want)
