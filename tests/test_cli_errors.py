"""Bad inputs: each gives one line on stderr naming the cause, exit code 2, no traceback, and
no half-written output folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from helpers import save_torchscript, tinyc


def _onnx_model(path: Path, nodes, inputs, outputs, initializers=(), opset: int = 17) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return path


def _relu_model(path: Path, shape) -> Path:
    return _onnx_model(path, [helper.make_node("Relu", ["x"], ["y"], name="relu1")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])


def assert_user_error(result, *fragments: str) -> str:
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tinyc: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_missing_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = tinyc("compile", tmp_path / "nope.onnx", "-o", out)
    assert_user_error(result, "nope.onnx: no such file")
    assert not out.exists()


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF")
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o"),
                      "unknown model format '.h5'", ".onnx", ".tflite", ".pt2")


@pytest.mark.parametrize("suffix", [".onnx", ".tflite", ".pt", ".pt2"])
def test_malformed_model(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    out = tmp_path / "out"
    result = tinyc("compile", path, "-o", out, "--input-shape", "1x4")
    assert_user_error(result, str(path))
    assert not out.exists()


def test_unsupported_operator_names_op_and_node(tmp_path: Path) -> None:
    shape = [1, 4, 8, 8]
    path = _onnx_model(
        tmp_path / "lrn.onnx", [helper.make_node("LRN", ["x"], ["y"], name="norm1", size=3)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    out = tmp_path / "out"
    line = assert_user_error(tinyc("compile", path, "-o", out), "operator LRN",
                             "node 'norm1'", "not supported")
    assert line == "tinyc: error: operator LRN (node 'norm1') is not supported by tinyc"
    assert not out.exists()


def test_dynamic_input_shape_needs_input_shape(tmp_path: Path) -> None:
    path = _relu_model(tmp_path / "dyn.onnx", ["N", 3, "H", "W"])
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o"),
                      "input 'x' has dynamic shape ?x3x?x?", "--input-shape")
    ok = tinyc("compile", path, "-o", tmp_path / "o", "--input-shape", "1x3x8x8")
    assert ok.code == 0, ok.stderr


def test_pytorch_needs_input_shape(tmp_path: Path) -> None:
    path = save_torchscript(torch.nn.Linear(4, 2).eval(), (1, 4), tmp_path / "m.pt")
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o"),
                      "does not record its input shape", "--input-shape")


def test_pytorch_input_shape_the_model_rejects(tmp_path: Path) -> None:
    """The model's own complaint, not the ONNX exporter's, nor the graph the exporter prints
    from C++ when it fails on such a model (3.5 kB on stdout without tinyc's capture)."""
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU6(), nn.Conv2d(4, 4, 1),
                          nn.BatchNorm2d(4)).eval()
    path = save_torchscript(model, (1, 3, 8, 8), tmp_path / "m.pt")
    result = tinyc("compile", path, "-o", tmp_path / "o", "--input-shape", "1x3")
    line = assert_user_error(result, "m.pt: the model does not run on inputs of shape [[1, 3]]",
                             "RuntimeError: Expected 4-dimensional input", "check --input-shape")
    assert "TorchScript interpreter" not in line and result.stdout == ""
    assert not (tmp_path / "o").exists()


def test_output_folder_that_cannot_be_created(tmp_path: Path) -> None:
    path = _relu_model(tmp_path / "m.onnx", [1, 4])
    (tmp_path / "a_file").write_text("")
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "a_file" / "out"),
                      "a_file/out: cannot create the output folder there", "choose a writable -o")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "m.onnx"]


def test_bad_input_shape_text(tmp_path: Path) -> None:
    path = _relu_model(tmp_path / "m.onnx", [1, 4])
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o", "--input-shape", "1by4"),
                      "--input-shape '1by4' is not like 1x3x32x32")
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o", "--input-shape", "1x4x2"),
                      "rank 3", "rank 2")


def test_state_dict_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), str(path))
    assert_user_error(tinyc("compile", path, "-o", tmp_path / "o", "--input-shape", "1x4"),
                      "holds a state_dict (weights only), not a model")


def test_pickled_module_class_not_importable(tmp_path: Path) -> None:
    module = tmp_path / "private_net.py"
    module.write_text("import torch\nclass Net(torch.nn.Linear):\n    pass\n")
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import torch, private_net; "
              "torch.save(private_net.Net(4, 2), sys.argv[2])")
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", script, str(tmp_path), str(tmp_path / "m.pt")],
                   check=True)
    module.unlink()
    assert_user_error(tinyc("compile", tmp_path / "m.pt", "-o", tmp_path / "o",
                            "--input-shape", "1x4"),
                      "class cannot be imported", "private_net", "PYTHONPATH",
                      "torch.jit.save")


def test_too_large_for_nucleo_flash(tmp_path: Path) -> None:
    path = save_torchscript(torch.nn.Linear(512, 512).eval(), (1, 512), tmp_path / "big.pt")
    out = tmp_path / "out"
    assert_user_error(tinyc("compile", path, "--board", "nucleo", "-o", out,
                            "--input-shape", "1x512"),
                      "does not fit nucleo-f446re", "weights need 1,050,624 bytes of flash",
                      "nucleo-f446re has 524,288")
    assert not out.exists()
    # The same model fits the emulated board.
    assert tinyc("compile", path, "-o", out, "--input-shape", "1x512").code == 0


def test_too_large_for_nucleo_ram(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).eval()
    path = save_torchscript(model, (1, 3, 96, 96), tmp_path / "wide.pt")
    assert_user_error(tinyc("compile", path, "--board", "nucleo", "-o", tmp_path / "o",
                            "--input-shape", "1x3x96x96"),
                      "does not fit nucleo-f446re", "bytes of RAM", "nucleo-f446re has 131,072")


def test_unknown_board(tmp_path: Path) -> None:
    path = _relu_model(tmp_path / "m.onnx", [1, 4])
    assert_user_error(tinyc("compile", path, "--board", "arduino", "-o", tmp_path / "o"),
                      "unknown board 'arduino'", "qemu-m4", "nucleo-f446re (nucleo)")


def test_output_folder_is_not_clobbered(tmp_path: Path) -> None:
    path = _relu_model(tmp_path / "m.onnx", [1, 4])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    assert_user_error(tinyc("compile", path, "-o", mine),
                      "is not a tinyc output", "choose another -o")
    assert (mine / "notes.txt").read_text() == "precious"
    # A previous tinyc output is replaced.
    out = tmp_path / "out"
    assert tinyc("compile", path, "-o", out).code == 0
    assert tinyc("compile", path, "-o", out).code == 0


def test_build_and_run_need_a_project(tmp_path: Path) -> None:
    assert_user_error(tinyc("build", tmp_path), "not a tinyc output folder")
    assert_user_error(tinyc("run", tmp_path / "missing"), "not a tinyc output folder")


def test_verify_input_file_of_wrong_shape(tmp_path: Path) -> None:
    path = _relu_model(tmp_path / "m.onnx", [1, 4])
    np.save(tmp_path / "x.npy", np.zeros((3, 5), np.float32))
    assert_user_error(tinyc("verify", path, "--input", tmp_path / "x.npy"),
                      "shape [3, 5] does not match the model input [1, 4]")
    np.save(tmp_path / "ok.npy", np.ones((3, 1, 4), np.float32))
    result = tinyc("verify", path, "--input", tmp_path / "ok.npy", "--json")
    assert result.code == 0, result.stderr
    assert result.json()["samples"] == 3


def _two_input_model(path: Path) -> Path:
    """y = relu(a) + b, a [1, 4] and b [1, 4]."""
    value = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "aby"]
    return _onnx_model(path, [helper.make_node("Relu", ["a"], ["r"], name="relu1"),
                              helper.make_node("Add", ["r", "b"], ["y"], name="add1")],
                       value[:2], value[2:])


def test_input_files_of_a_two_input_model(tmp_path: Path) -> None:
    """An .npz gives one array per input, named after the inputs or arr_0, arr_1, ...; its
    samples are the arrays' rows, the same number in each."""
    path = _two_input_model(tmp_path / "m.onnx")
    a, b = np.ones((3, 1, 4), np.float32), np.full((3, 1, 4), 2.0, np.float32)
    np.savez(tmp_path / "named.npz", b=b, a=a)
    np.savez(tmp_path / "positional.npz", a, b)
    for data in ("named.npz", "positional.npz"):
        result = tinyc("verify", path, "--input", tmp_path / data, "--json")
        assert result.code == 0, result.stderr
        assert result.json()["samples"] == 3
    compiled = tinyc("compile", path, "-o", tmp_path / "c")
    assert compiled.code == 0, compiled.stderr
    ran = tinyc("run", tmp_path / "c", "--input", tmp_path / "named.npz", "--host", "--json")
    assert ran.code == 0, ran.stderr
    assert np.array_equal(np.array(ran.json()["outputs"]), np.full((3, 1, 1, 4), 3.0))

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", *(rng.standard_normal((16, 1, 4)).astype(np.float32)
                                       for _ in "ab"))
    quantized = tinyc("verify", path, "--quantize", "int8", "--calibration",
                      tmp_path / "calib.npz", "--json")
    assert quantized.code == 0, quantized.stderr
    assert quantized.json()["quantization"]["calibration_samples"] == 16

    np.save(tmp_path / "x.npy", a)
    assert_user_error(tinyc("verify", path, "--input", tmp_path / "x.npy"),
                      "x.npy: this model has 2 inputs; give them in an .npz")
    np.savez(tmp_path / "wrong.npz", a=a, c=b)
    assert_user_error(tinyc("verify", path, "--input", tmp_path / "wrong.npz"),
                      "wrong.npz: holds a, c; this model's 2 input(s) are wanted as a, b or "
                      "arr_0, arr_1")
    np.savez(tmp_path / "uneven.npz", a=a, b=b[:2])
    assert_user_error(tinyc("verify", path, "--input", tmp_path / "uneven.npz"),
                      "the inputs' arrays hold different numbers of samples (3, 2)")


def test_run_real_board_is_refused(tmp_path: Path) -> None:
    path = _onnx_model(
        tmp_path / "m.onnx",
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(np.ones((4, 2), np.float32), "w")])
    out = tmp_path / "out"
    assert tinyc("compile", path, "--board", "nucleo", "-o", out).code == 0
    assert tinyc("build", out).code == 0
    assert_user_error(tinyc("run", out), "nucleo-f446re is a real board")
