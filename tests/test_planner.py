"""Memory planner: exact offsets on a tiny graph, in-place outputs where the kernels allow
them (and nowhere else), invariants on real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import models
from tinyc.boards import load_board
from tinyc.codegen import kernel_memory
from tinyc.frontends import load_model
from tinyc.ir import Graph, Node, Tensor, clone
from tinyc.ops import InPlace
from tinyc.pipeline import lower
from tinyc.planner import MemoryPlan, plan_memory
from tinyc.project import compile_model

MLPERF = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny"


def _chain(sizes: dict[str, int]) -> Graph:
    """x -> a -> b -> y through three nodes; sizes in float32 elements."""
    tensors = {n: Tensor(n, (s,)) for n, s in sizes.items()}
    nodes = [Node("Relu", "n0", ["x"], ["a"]), Node("Relu", "n1", ["a"], ["b"]),
             Node("Relu", "n2", ["b"], ["y"])]
    return Graph("chain", tensors, nodes, ["x"], ["y"])


def test_exact_offsets_on_a_chain() -> None:
    plan = plan_memory(_chain({"x": 32, "a": 64, "b": 16, "y": 32}))
    # Largest first: a (256 B) at 0; x lives with a -> after it; y does not meet a -> 0;
    # b meets a and y -> after a.
    assert plan.offsets == {"a": 0, "x": 256, "y": 0, "b": 256}
    assert plan.arena_size == 384
    assert plan.lower_bound == 384  # x and a together, at the first step


def test_view_shares_its_input_buffer() -> None:
    g = _chain({"x": 32, "a": 64, "b": 64, "y": 32})
    g.nodes[1] = Node("Reshape", "n1", ["a"], ["b"], {"shape": (64,)})
    plan = plan_memory(g)
    assert plan.offsets["a"] == plan.offsets["b"]
    buffer = next(b for b in plan.buffers if "a" in b.tensors)
    assert buffer.tensors == ["a", "b"]
    assert (buffer.first, buffer.last) == (0, 2)  # a's buffer lives until b's last read


def test_scratch_lives_only_during_its_node() -> None:
    plan = plan_memory(_chain({"x": 32, "a": 64, "b": 16, "y": 32}), scratch={"n1": 1000})
    scratch = next(b for b in plan.buffers if b.name == "n1:scratch")
    assert (scratch.first, scratch.last) == (1, 1)
    assert plan.arena_size >= 1000 + 256 + 64


def _relu_chain(sizes: dict[str, int]) -> tuple[Graph, dict[str, tuple[InPlace, ...]]]:
    """The chain of three Relus with the in-place declarations their kernel makes."""
    graph = _chain(sizes)
    return graph, kernel_memory(graph)[1]


def test_elementwise_chain_runs_in_place() -> None:
    graph, in_place = _relu_chain({"x": 32, "a": 32, "b": 32, "y": 32})
    assert in_place == {"n0": (InPlace("x", 0),), "n1": (InPlace("a", 0),),
                        "n2": (InPlace("b", 0),)}
    plan = plan_memory(graph, in_place=in_place)
    assert plan.offsets == {"x": 0, "a": 0, "b": 0, "y": 0}
    assert [b.overwrites for b in plan.buffers] == [None, "x", "a", "b"]
    assert plan.arena_size == plan.lower_bound == 128
    assert plan.live_bytes(1) == 128  # a and b share their bytes at step 1
    assert plan_memory(graph).arena_size == 256  # without the declarations: two buffers


def test_no_in_place_over_an_input_read_later() -> None:
    """x is read again by the last node: the first Relu must not overwrite it."""
    graph, _ = _relu_chain({"x": 32, "a": 32, "b": 32, "y": 32})
    graph.nodes[2] = Node("Add", "n2", ["b", "x"], ["y"])
    plan = plan_memory(graph, in_place=kernel_memory(graph)[1])
    x, a, b, y = plan.buffers
    assert a.overwrites is None and a.offset != x.offset
    assert b.overwrites == "a" and y.overwrites in ("b", "x")
    assert plan.arena_size == plan.lower_bound == 256


def test_graph_output_is_never_overwritten() -> None:
    graph, in_place = _relu_chain({"x": 32, "a": 32, "b": 32, "y": 32})
    graph.outputs = ["a", "y"]
    plan = plan_memory(graph, in_place=in_place)
    assert plan.buffers[2].overwrites is None  # b may not take a's bytes: a is an output
    assert plan.offsets["a"] != plan.offsets["b"]


def _one_node(op: str, attrs: dict, x_shape: tuple, w_shape: tuple, y_shape: tuple) -> Graph:
    """x -> one float layer (with constant weights w when w_shape) -> y."""
    tensors = {"x": Tensor("x", x_shape), "y": Tensor("y", y_shape)}
    inputs = ["x"]
    if w_shape:
        tensors["w"] = Tensor("w", w_shape, data=np.zeros(w_shape, np.float32))
        inputs.append("w")
    return Graph("g", tensors, [Node(op, "n0", inputs, ["y"], attrs)], ["x"], ["y"])


def test_depthwise_conv_in_place_one_row_and_two_pixels_below() -> None:
    """tc_conv_f32 writes output pixel (h, w) of a 3x3 / pad 1 window while it still reads
    input rows h-1.. from column w-1 on: the output must start W + 2 pixels (C floats each)
    below the input; 4x4x4 input: 6 pixels x 16 B = 96 B.  tc_depthwise_conv3x3_f32 (rows of
    at least 5 columns) writes each channel's pixels in the same order, a channel after the
    other: exactly a whole number of pixels below, 8x8x4: 10 pixels = 160 B."""
    attrs = {"kernel_shape": (3, 3), "strides": (1, 1), "dilations": (1, 1),
             "pads": (1, 1, 1, 1), "group": 4, "channels_last": True}
    graph = _one_node("Conv", attrs, (1, 4, 4, 4), (4, 3, 3, 1), (1, 4, 4, 4))
    assert kernel_memory(graph)[1] == {"n0": (InPlace("x", -96),)}
    graph = _one_node("Conv", attrs, (1, 8, 8, 4), (4, 3, 3, 1), (1, 8, 8, 4))
    assert kernel_memory(graph)[1] == {"n0": (InPlace("x", -160, exact=True),)}
    attrs = {"kernel_shape": (2, 2), "strides": (2, 2), "dilations": (1, 1),
             "pads": (0, 0, 0, 0), "ceil_mode": 0, "channels_last": True}
    # tc_pool_f32 starts each output pixel (4 floats) by writing its initial value.
    pool = _one_node("MaxPool", attrs, (1, 8, 8, 4), (), (1, 4, 4, 4))
    assert kernel_memory(pool)[1] == {"n0": (InPlace("x", -16),)}


def test_kernels_that_read_everything_first_are_not_in_place() -> None:
    """A float Gemm / Softmax kernel declares nothing: its output never overlaps its input."""
    graph = _one_node("MatMul", {}, (1, 64), (64, 64), (1, 64))
    assert kernel_memory(graph)[1] == {"n0": ()}
    plan = plan_memory(graph, *kernel_memory(graph))
    assert plan.offsets["x"] != plan.offsets["y"]


def _check_valid(plan: MemoryPlan, in_place: dict[str, tuple[InPlace, ...]]) -> int:
    """No two simultaneously live buffers overlap, except an in-place output over the input
    it was declared over (at or below input + shift; exactly there for `exact`); every offset
    aligned and inside the arena.  Returns how many buffers were placed in place.  A
    declaration names a tensor, which may be an alias (a Reshape's output) sharing the buffer
    named after another."""
    buffer_of = {t: b.name for b in plan.buffers for t in b.tensors}
    declared = {(buffer_of[d.tensor], d.exact): d.shift
                for decls in in_place.values() for d in decls}
    by_name = {b.name: b for b in plan.buffers}
    shared = 0
    for i, a in enumerate(plan.buffers):
        assert a.offset % 16 == 0
        assert a.offset + a.size <= plan.arena_size
        for b in plan.buffers[i + 1:]:
            live_together = a.first <= b.last and b.first <= a.last
            overlap = a.offset < b.offset + b.size and b.offset < a.offset + a.size
            if live_together and overlap:
                out, src = (b, a) if b.overwrites == a.name else (a, b)
                assert out.overwrites == src.name, (a, b)
                assert src.last == out.first  # the input dies where the output is written
                exact = (src.name, True) in declared
                shift = declared[(src.name, exact)]
                assert out.offset == src.offset + shift if exact else \
                    out.offset <= src.offset + shift
                shared += 1
    for b in plan.buffers:
        if b.overwrites is not None:
            assert b.offset < by_name[b.overwrites].offset + by_name[b.overwrites].size
    assert plan.lower_bound <= plan.arena_size
    return shared


@pytest.mark.parametrize("name", ["small_cnn", "mobilenetv2_tiny", "eeg3dcnn"])
def test_plans_are_valid_on_real_models(name: str, tmp_path: Path) -> None:
    model, shape = models.build(name)
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(shape)), str(path))
    graph = lower(clone(load_model(path, "x".join(map(str, shape))).graph))
    scratch, in_place = kernel_memory(graph)
    plan = plan_memory(graph, scratch, in_place)
    assert _check_valid(plan, in_place) > 0
    # Greedy placement is not optimal, but on these chain-like graphs it stays close.
    assert plan.arena_size <= 1.02 * plan.lower_bound + 16
    assert plan.arena_size < plan_memory(graph, scratch).arena_size


# MLPerf Tiny: arena bytes with in-place outputs (before them: 2,048 / 50,304 / 16,624 /
# 55,360 / 7,168 / 125,760); the live-bytes bound leaves no room at all on five of them.
# kws01's stem reads its windows from a 696-byte frame (quant.fast._frame_pays): 8,656 -> 9,072;
# the GEMM panels of 6 pixels instead of 4 take 4 * k_padded bytes more scratch: kws01 9,232,
# ic01 34,448 -> 35,024, sww01 4,096 -> 4,608, ic01-large 86,128 -> 87,568; kws01's depthwise
# layers copy four channels per pass (quant.fast._four_planes): 9,232 -> 9,808; 128 planar
# depthwise accumulators per pass instead of 64 (quant.fast.PLANAR_CHUNK): kws01 -> 10,064,
# vww01 42,096 -> 42,288.
ARENAS = {"ad01_fc_autoencoder_int8": 1920, "ic01_resnet8_cifar10_int8": 35024,
          "kws01_dscnn_int8": 10064, "vww01_mobilenetv1_025_96_int8": 42288,
          "sww01_str_ww_ref_model": 4608, "ic01_resnet_large_int8": 87568}


@pytest.mark.parametrize("name", sorted(ARENAS))
def test_mlperf_tiny_plans(name: str) -> None:
    path = MLPERF / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"{path} not found (the MLPerf Tiny models live in ../shared)")
    compiled = compile_model(path, load_board("qemu-m4"))
    plan, report = compiled.plan, compiled.report
    assert _check_valid(plan, kernel_memory(compiled.graph)[1]) > 0
    assert plan.arena_size == ARENAS[name]
    assert plan.arena_size <= plan.lower_bound + 256
    live = [layer["live_bytes"] for layer in report["layers"]]
    assert live == [plan.live_bytes(i) for i in range(len(live))]
    assert report["peak"]["live_bytes"] == max(live) <= plan.arena_size
    assert live[report["peak"]["layer"]] == max(live)
    if name == "kws01_dscnn_int8":  # every layer after the first in place, at offset 0
        assert [b.overwrites is not None for b in plan.buffers if b.first in range(1, 9)
                and not b.name.endswith(":scratch")] == [True] * 8
