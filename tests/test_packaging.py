"""A non-editable install (a built wheel) carries runtime_c, templates and boards."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

from helpers import ROOT


def test_wheel_is_self_contained(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(ROOT)], check=True,
                   capture_output=True)
    wheel = next((tmp_path / "dist").glob("tinyc-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for required in ("tinyc/runtime_c/tc_conv_f32.c", "tinyc/templates/model.c.j2",
                     "tinyc/board_files/qemu-m4.yaml", "tinyc/board_files/mps2/mps2.ld",
                     "tinyc/board_files/common/startup_cortexm.c"):
        assert required in names, required
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(np.ones((4, 2), np.float32), "w")])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
         str(tmp_path / "m.onnx"))
    # Only the unpacked wheel on the path: no source checkout to fall back on.
    env = os.environ | {"PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-m", "tinyc.cli", "verify", str(tmp_path / "m.onnx"),
                           "--json"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"verdict": "PASS"' in proc.stdout
    probe = subprocess.run([sys.executable, "-c", "import tinyc.resources as r; "
                            "print(r.runtime_dir())"], capture_output=True, text=True, env=env,
                           cwd=tmp_path)
    assert probe.stdout.strip().startswith(str(site)), probe.stdout
