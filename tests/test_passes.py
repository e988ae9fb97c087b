"""Passes keep the graph's meaning: the IR interpreter gives the same outputs before and after
every pass, and the IR verifies between passes.  Also what each pass is for actually happens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import models
from tinyc.frontends import load_model
from tinyc.interpret import run_graph
from tinyc.ir import clone
from tinyc.pipeline import PIPELINE

SHAPES = {"small_cnn": (1, 3, 32, 32), "mobilenetv2_tiny": (1, 3, 32, 32),
          "eeg3dcnn": (1, 1, 8, 9, 16)}


def _graph(name: str, tmp_path: Path):
    model, shape = models.build(name)
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(shape)), str(path))
    return load_model(path, "x".join(map(str, shape))).graph, model, shape


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_pass_preserves_outputs(name: str, tmp_path: Path) -> None:
    graph, model, shape = _graph(name, tmp_path)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_graph(graph, [x])[0], expected, atol=1e-4, rtol=1e-4)
    for run in PIPELINE:
        graph = run(clone(graph))
        graph.verify()
        np.testing.assert_allclose(run_graph(graph, [x])[0], expected, atol=1e-4, rtol=1e-4,
                                   err_msg=f"after {run.__name__}")


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_lowered_graph_is_channels_last_and_folded(name: str, tmp_path: Path) -> None:
    graph, _, _ = _graph(name, tmp_path)
    for run in PIPELINE:
        graph = run(graph)
    ops = [n.op for n in graph.nodes]
    assert "BatchNormalization" not in ops
    assert all(n.attrs["channels_last"] for n in graph.nodes if n.op in ("Conv", "MaxPool"))
    # Relu / Relu6 are fused into the convolutions; the layout Transposes between
    # convolutions cancel: at most one remains, at the model's NCHW input (a free view when the
    # input has one channel, as the EEG model's does).
    assert "Relu" not in ops and "Clip" not in ops
    assert ops.count("Transpose") <= 1
    assert graph.nodes[0].op == ("Reshape" if name == "eeg3dcnn" else "Transpose")
