"""The TFLite frontend against the TFLite interpreter (ai_edge_litert, reference kernels).

Every model is imported, run through tinyc's IR interpreter before and after lowering, and
compared with the interpreter's output within |a - b| <= 1e-4 + 1e-4 * |b|.  The models: two
real MLPerf Tiny float32 models from ../shared, and single-operator models written here with
the flatbuffer schema's object API (no TensorFlow), one per converter and edge case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
litert = pytest.importorskip("ai_edge_litert.interpreter")
flatbuffers = pytest.importorskip("flatbuffers")

from tinyc.errors import TinycError, UnsupportedOperator  # noqa: E402
from tinyc.frontends.tflite_frontend import convert_tflite  # noqa: E402
from tinyc.interpret import run_graph  # noqa: E402
from tinyc.ir import Graph  # noqa: E402
from tinyc.pipeline import lower  # noqa: E402

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny"
FLOAT_MODELS = [
    MODELS / "float" / "ic01_resnet8_cifar10_fp32.tflite",
    MODELS / "float" / "vww01_mobilenetv1_025_96_fp32.tflite",
]
ATOL = RTOL = 1e-4


# ---- reference and comparison -----------------------------------------------------------------
def tflite_interpreter(path: Path):
    """TFLite's reference kernels (no XNNPACK delegate); its builtin kernels for the few
    operators the reference resolver lacks (CEIL, ELU)."""
    try:
        return litert.Interpreter(model_path=str(path),
                                  experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    except ValueError as exc:
        if "Didn't find op" not in str(exc):
            raise
    return litert.Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def tflite_reference(path: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs by name from the TFLite interpreter."""
    interpreter = tflite_interpreter(path)
    for detail in interpreter.get_input_details():
        shape = inputs[detail["name"]].shape
        if tuple(detail["shape"]) != shape:
            interpreter.resize_tensor_input(detail["index"], shape)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], inputs[detail["name"]])
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]).copy()
            for d in interpreter.get_output_details()}


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = np.abs(actual.astype(np.float64) - expected)
    bound = ATOL + RTOL * np.abs(expected.astype(np.float64))
    bad = ~(err <= bound)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} values differ; first at "
                             f"{pos}: got {actual[pos]!r}, TFLite {expected[pos]!r}")


def check_against_tflite(path: Path, graph: Graph, inputs: list[np.ndarray]) -> None:
    """The imported graph and the lowered graph both reproduce the interpreter's outputs."""
    expected = tflite_reference(path, dict(zip(graph.inputs, inputs, strict=True)))
    lowered = lower(graph, verify=True)
    for label, g in (("imported", graph), ("lowered", lowered)):
        results = run_graph(g, inputs)
        for out, got in zip(g.outputs, results, strict=True):
            assert_close(got, expected[out], f"{path.name} {label} output '{out}'")


def random_inputs(graph: Graph, seed: int, transform=None) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(graph.tensors[t].shape).astype(np.float32)
              for t in graph.inputs]
    return [transform(v).astype(np.float32) for v in values] if transform else values


# ---- the real float models ----------------------------------------------------------------------
@pytest.fixture(scope="module", params=FLOAT_MODELS, ids=lambda p: p.stem)
def float_model(request) -> tuple[Path, Graph]:
    path = request.param
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path, convert_tflite(path, name=path.stem)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float_model_matches_tflite(float_model, seed):
    path, graph = float_model
    check_against_tflite(path, graph, random_inputs(graph, seed))


def test_float_model_structure(float_model):
    path, graph = float_model
    graph.verify()
    interpreter = litert.Interpreter(model_path=str(path))
    assert graph.inputs == [d["name"] for d in interpreter.get_input_details()]
    assert graph.outputs == [d["name"] for d in interpreter.get_output_details()]
    convs = [n for n in graph.nodes if n.op in ("Conv", "AveragePool", "MaxPool")]
    assert convs and all(n.attrs["channels_last"] for n in convs)
    # TFLite is NHWC already: lowering must not need a single layout transpose.
    assert not [n for n in lower(graph).nodes if n.op == "Transpose"]


# ---- single-operator models ---------------------------------------------------------------------
TENSOR_TYPES = {np.dtype(np.float32): schema.TensorType.FLOAT32,
                np.dtype(np.float16): schema.TensorType.FLOAT16,
                np.dtype(np.int32): schema.TensorType.INT32,
                np.dtype(np.int64): schema.TensorType.INT64,
                np.dtype(np.int8): schema.TensorType.INT8}


@dataclass
class ModelMaker:
    """Writes a small .tflite file through the schema's object API."""

    tensors: list = field(default_factory=list)
    buffers: list = field(default_factory=lambda: [schema.BufferT()])  # 0: the empty buffer
    operators: list = field(default_factory=list)
    codes: list = field(default_factory=list)

    def tensor(self, name: str, shape, dtype=np.float32, data=None) -> int:
        t = schema.TensorT()
        t.name, t.shape, t.type = name, list(shape), TENSOR_TYPES[np.dtype(dtype)]
        buffer = schema.BufferT()
        if data is not None:
            raw = np.ascontiguousarray(data, dtype=np.dtype(dtype).newbyteorder("<"))
            buffer.data = np.frombuffer(raw.tobytes(), dtype=np.uint8)
        self.buffers.append(buffer)
        t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, name: str, value, dtype=np.float32) -> int:
        value = np.asarray(value, dtype=dtype)
        return self.tensor(name, value.shape, dtype, value)

    def op(self, name: str, inputs, outputs, options=None, custom: str | None = None) -> None:
        builtin = getattr(schema.BuiltinOperator, name)
        key = (builtin, custom)
        if key not in self.codes:
            self.codes.append(key)
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = self.codes.index(key), list(inputs), list(outputs)
        if options is not None:
            op.builtinOptionsType = getattr(schema.BuiltinOptions, type(options).__name__[:-1])
            op.builtinOptions = options
        self.operators.append(op)

    def write(self, path: Path, inputs, outputs, subgraphs: int = 1) -> Path:
        codes = []
        for builtin, custom in self.codes:
            code = schema.OperatorCodeT()
            code.builtinCode, code.deprecatedBuiltinCode = builtin, min(builtin, 127)
            code.customCode, code.version = custom, 1
            codes.append(code)
        sg = schema.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.operators
        sg.inputs, sg.outputs, sg.name = list(inputs), list(outputs), "main"
        model = schema.ModelT()
        model.version, model.operatorCodes, model.buffers = 3, codes, self.buffers
        model.subgraphs, model.description = [sg] * subgraphs, "tinyc test"
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        path.write_bytes(bytes(builder.Output()))
        return path


def options(kind: str, **values):
    opts = getattr(schema, f"{kind}T")()
    for key, value in values.items():
        assert hasattr(opts, key), f"{kind} has no field {key}"
        setattr(opts, key, value)
    return opts


ACT = schema.ActivationFunctionType
SAME, VALID = schema.Padding.SAME, schema.Padding.VALID


def seeded(*shape, seed=7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@dataclass
class Case:
    """A one- or few-operator model: `build(m)` returns (graph inputs, graph outputs)."""

    id: str
    build: Callable[[ModelMaker], tuple[list[int], list[int]]]
    transform: Callable[[np.ndarray], np.ndarray] | None = None  # applied to random inputs


def unary(op: str, opts=None, shape=(2, 3, 4)):
    def build(m):
        x, y = m.tensor("x", shape), m.tensor("y", shape)
        m.op(op, [x], [y], opts)
        return [x], [y]
    return build


def binary(op: str, a_shape, b_shape, out_shape, opts=None, b_const=None):
    def build(m):
        a = m.tensor("a", a_shape)
        b = m.const("b", b_const) if b_const is not None else m.tensor("b", b_shape)
        y = m.tensor("y", out_shape)
        m.op(op, [a, b], [y], opts)
        return [a] + ([] if b_const is not None else [b]), [y]
    return build


def conv(x_shape, w_shape, y_shape, opts, depthwise=False):
    def build(m):
        x = m.tensor("x", x_shape)
        w = m.const("filter", seeded(*w_shape, seed=1))
        b = m.const("bias", seeded(w_shape[3 if depthwise else 0], seed=2))  # TFLite needs it
        y = m.tensor("y", y_shape)
        m.op("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [x, w, b], [y], opts)
        return [x], [y]
    return build


def pool(op, x_shape, y_shape, **opts):
    def build(m):
        x, y = m.tensor("x", x_shape), m.tensor("y", y_shape)
        m.op(op, [x], [y], options("Pool2DOptions", **opts))
        return [x], [y]
    return build


def with_consts(op, x_shape, y_shape, consts, opts=None):
    """op(x, *consts): consts as (value, dtype) pairs, e.g. axes, shapes, paddings."""
    def build(m):
        x = m.tensor("x", x_shape)
        cs = [m.const(f"c{i}", v, dt) for i, (v, dt) in enumerate(consts)]
        y = m.tensor("y", y_shape)
        m.op(op, [x, *cs], [y], opts)
        return [x], [y]
    return build


def fully_connected(x_shape, n, y_shape, keep=False, bias=True, act=ACT.NONE):
    def build(m):
        x = m.tensor("x", x_shape)
        w = m.const("weights", seeded(n, x_shape[-1], seed=3))
        b = m.const("bias", seeded(n, seed=4)) if bias else -1
        y = m.tensor("y", y_shape)
        m.op("FULLY_CONNECTED", [x, w, b], [y],
             options("FullyConnectedOptions", keepNumDims=keep, fusedActivationFunction=act))
        return [x], [y]
    return build


def concat3(m, act=ACT.NONE):
    xs = [m.tensor(f"x{i}", (1, 2, 3, c)) for i, c in enumerate((2, 1, 3))]
    y = m.tensor("y", (1, 2, 3, 6))
    m.op("CONCATENATION", xs, [y],
         options("ConcatenationOptions", axis=-1, fusedActivationFunction=act))
    return xs, [y]


def add_n(m):
    xs = [m.tensor(f"x{i}", (2, 5)) for i in range(3)]
    y = m.tensor("y", (2, 5))
    m.op("ADD_N", xs, [y])
    return xs, [y]


def conv_then_mean(m):
    """CONV_2D -> MEAN over H, W: a chain, with a shape that follows the input."""
    x = m.tensor("x", (1, 6, 6, 2))
    w = m.const("filter", seeded(4, 3, 3, 2, seed=5))
    b = m.const("bias", seeded(4, seed=6))
    h = m.tensor("h", (1, 6, 6, 4))
    m.op("CONV_2D", [x, w, b], [h],
         options("Conv2DOptions", padding=SAME, strideH=1, strideW=1))
    axes = m.const("axes", [1, 2], np.int32)
    y = m.tensor("y", (1, 4))
    m.op("MEAN", [h, axes], [y], options("ReducerOptions", keepDims=False))
    return [x], [y]


def batch_matmul_adj_y(m):
    a, b, y = m.tensor("a", (2, 3, 4)), m.tensor("b", (2, 5, 4)), m.tensor("y", (2, 3, 5))
    m.op("BATCH_MATMUL", [a, b], [y], options("BatchMatMulOptions", adjX=False, adjY=True))
    return [a, b], [y]


def positive(x: np.ndarray) -> np.ndarray:
    return np.abs(x) + 0.1


I32 = np.int32
CASES = [
    Case("conv_same_stride2_relu6", conv((1, 7, 9, 3), (4, 3, 3, 3), (1, 4, 5, 4), options(
        "Conv2DOptions", padding=SAME, strideH=2, strideW=2, fusedActivationFunction=ACT.RELU6,
        dilationHFactor=1, dilationWFactor=1))),
    Case("conv_valid_dilated", conv((1, 9, 8, 2), (3, 3, 3, 2), (1, 5, 4, 3), options(
        "Conv2DOptions", padding=VALID, strideH=1, strideW=1, dilationHFactor=2,
        dilationWFactor=2, fusedActivationFunction=ACT.RELU_N1_TO_1))),
    Case("conv_same_dilated_1x5", conv((2, 6, 10, 3), (2, 1, 5, 3), (2, 3, 10, 2), options(
        "Conv2DOptions", padding=SAME, strideH=2, strideW=1, dilationHFactor=1,
        dilationWFactor=2))),
    Case("depthwise_multiplier2_same_relu", conv((1, 5, 6, 3), (1, 3, 3, 6), (1, 5, 6, 6), options(
        "DepthwiseConv2DOptions", padding=SAME, strideH=1, strideW=1, depthMultiplier=2,
        dilationHFactor=1, dilationWFactor=1, fusedActivationFunction=ACT.RELU),
        depthwise=True)),
    Case("depthwise_stride2_valid", conv((1, 9, 8, 4), (1, 3, 3, 4), (1, 4, 3, 4), options(
        "DepthwiseConv2DOptions", padding=VALID, strideH=2, strideW=2, depthMultiplier=1,
        dilationHFactor=1, dilationWFactor=1), depthwise=True)),
    Case("depthwise_same_stride2_even", conv((1, 8, 8, 2), (1, 3, 3, 2), (1, 4, 4, 2), options(
        "DepthwiseConv2DOptions", padding=SAME, strideH=2, strideW=2, depthMultiplier=1,
        dilationHFactor=1, dilationWFactor=1), depthwise=True)),
    Case("average_pool_same_partial_windows", pool(
        "AVERAGE_POOL_2D", (1, 7, 8, 3), (1, 4, 4, 3), padding=SAME, strideH=2, strideW=2,
        filterHeight=3, filterWidth=3)),
    Case("average_pool_valid", pool(
        "AVERAGE_POOL_2D", (1, 6, 6, 2), (1, 2, 2, 2), padding=VALID, strideH=3, strideW=3,
        filterHeight=3, filterWidth=3)),
    Case("max_pool_same_relu", pool(
        "MAX_POOL_2D", (1, 5, 5, 2), (1, 3, 3, 2), padding=SAME, strideH=2, strideW=2,
        filterHeight=2, filterWidth=2, fusedActivationFunction=ACT.RELU)),
    Case("fully_connected_2d", fully_connected((3, 8), 5, (3, 5), bias=False)),
    Case("fully_connected_flatten_relu", fully_connected((2, 3, 4), 5, (6, 5), act=ACT.RELU)),
    Case("fully_connected_keep_num_dims", fully_connected((2, 3, 4), 5, (2, 3, 5), keep=True)),
    Case("add_broadcast_relu", binary("ADD", (1, 4, 4, 3), (3,), (1, 4, 4, 3),
                                      options("AddOptions", fusedActivationFunction=ACT.RELU))),
    Case("sub_relu6", binary("SUB", (2, 3), (1, 3), (2, 3),
                             options("SubOptions", fusedActivationFunction=ACT.RELU6))),
    Case("mul_const", binary("MUL", (1, 2, 2, 3), None, (1, 2, 2, 3), options(
        "MulOptions", fusedActivationFunction=ACT.RELU_N1_TO_1), b_const=seeded(1, 1, 3))),
    Case("div_const", binary("DIV", (2, 4), None, (2, 4), options("DivOptions"),
                             b_const=positive(seeded(4)))),
    Case("maximum", binary("MAXIMUM", (2, 3, 4), (3, 4), (2, 3, 4))),
    Case("minimum", binary("MINIMUM", (2, 3, 4), (2, 3, 4), (2, 3, 4))),
    Case("pow_const_exponent", binary("POW", (2, 3), None, (2, 3), b_const=seeded(3)),
         transform=positive),
    Case("prelu", binary("PRELU", (1, 3, 3, 4), None, (1, 3, 3, 4),
                         b_const=np.abs(seeded(1, 1, 4)))),
    Case("squared_difference", binary("SQUARED_DIFFERENCE", (2, 3), (2, 3), (2, 3))),
    Case("add_n", add_n),
    Case("logistic", unary("LOGISTIC")),
    Case("tanh", unary("TANH")),
    Case("hard_swish", unary("HARD_SWISH"), transform=lambda x: 4 * x),
    Case("exp", unary("EXP")),
    Case("log", unary("LOG"), transform=positive),
    Case("abs", unary("ABS")),
    Case("sqrt", unary("SQRT"), transform=positive),
    Case("rsqrt", unary("RSQRT"), transform=positive),
    Case("neg", unary("NEG")),
    Case("square", unary("SQUARE")),
    Case("floor", unary("FLOOR"), transform=lambda x: 3 * x),
    Case("ceil", unary("CEIL"), transform=lambda x: 3 * x),
    Case("elu", unary("ELU")),
    Case("gelu", unary("GELU", options("GeluOptions", approximate=False))),
    Case("leaky_relu", unary("LEAKY_RELU", options("LeakyReluOptions", alpha=0.2))),
    Case("relu", unary("RELU")),
    Case("relu6", unary("RELU6"), transform=lambda x: 5 * x),
    Case("relu_n1_to_1", unary("RELU_N1_TO_1"), transform=lambda x: 2 * x),
    Case("relu_0_to_1", unary("RELU_0_TO_1"), transform=lambda x: 2 * x),
    Case("softmax", unary("SOFTMAX", options("SoftmaxOptions", beta=1.0), (2, 7))),
    Case("softmax_beta", unary("SOFTMAX", options("SoftmaxOptions", beta=0.5), (2, 7))),
    Case("log_softmax", unary("LOG_SOFTMAX", shape=(3, 5))),
    Case("mean_hw", with_consts("MEAN", (1, 4, 5, 3), (1, 3), [([1, 2], I32)],
                                options("ReducerOptions", keepDims=False))),
    Case("mean_keep_dims", with_consts("MEAN", (1, 4, 5, 3), (1, 1, 1, 3), [([2, -3], I32)],
                                       options("ReducerOptions", keepDims=True))),
    Case("sum_last", with_consts("SUM", (2, 3, 4), (2, 3), [(-1, I32)],
                                 options("ReducerOptions", keepDims=False))),
    Case("reduce_max", with_consts("REDUCE_MAX", (2, 3, 4), (2, 1, 4), [([1], I32)],
                                   options("ReducerOptions", keepDims=True))),
    Case("reduce_min", with_consts("REDUCE_MIN", (2, 3, 4), (4,), [([0, 1], I32)],
                                   options("ReducerOptions", keepDims=False))),
    Case("reshape_shape_input", with_consts("RESHAPE", (1, 2, 3, 4), (2, 12),
                                            [([-1, 12], I32)])),
    Case("reshape_options_only", with_consts("RESHAPE", (2, 6), (3, 4), [],
                                             options("ReshapeOptions", newShape=[3, -1]))),
    Case("squeeze_dims", with_consts("SQUEEZE", (1, 3, 1, 1), (3, 1), [],
                                     options("SqueezeOptions", squeezeDims=[0, -2]))),
    Case("squeeze_all", with_consts("SQUEEZE", (1, 3, 1, 2), (3, 2), [],
                                    options("SqueezeOptions", squeezeDims=[]))),
    Case("expand_dims", with_consts("EXPAND_DIMS", (2, 3), (2, 3, 1), [(-1, I32)])),
    Case("concatenation", concat3),
    Case("pad", with_consts("PAD", (1, 2, 3, 2), (1, 5, 4, 2), [([[0, 0], [1, 2], [0, 1],
                                                                   [0, 0]], I32)])),
    Case("padv2", with_consts("PADV2", (2, 3), (4, 4), [([[1, 1], [0, 1]], I32),
                                                         (0.5, np.float32)])),
    Case("mirror_pad_reflect", with_consts(
        "MIRROR_PAD", (1, 3, 4, 1), (1, 5, 7, 1), [([[0, 0], [1, 1], [2, 1], [0, 0]], I32)],
        options("MirrorPadOptions", mode=schema.MirrorPadMode.REFLECT))),
    Case("transpose", with_consts("TRANSPOSE", (1, 2, 3, 4), (1, 4, 2, 3),
                                  [([0, 3, 1, 2], I32)])),
    Case("strided_slice_masks_shrink", with_consts(
        "STRIDED_SLICE", (2, 6, 7, 4), (3, 6, 4),
        [([1, 1, -6, 0], I32), ([2, 6, 7, 3], I32), ([1, 2, 1, 1], I32)],
        options("StridedSliceOptions", shrinkAxisMask=1, endMask=0b1000))),
    Case("strided_slice_negative_stride", with_consts(
        "STRIDED_SLICE", (3, 8), (3, 4),
        [([0, -1], I32), ([3, 0], I32), ([1, -2], I32)],
        options("StridedSliceOptions", endMask=0b10))),
    Case("strided_slice_begin_mask_clamp", with_consts(
        "STRIDED_SLICE", (4, 5), (2, 5),
        [([3, -9], I32), ([-2, 100], I32), ([1, 1], I32)],
        options("StridedSliceOptions", beginMask=0b1))),
    Case("strided_slice_shrink_with_begin_mask", with_consts(
        "STRIDED_SLICE", (4, 5), (3,),
        [([2, 1], I32), ([3, 4], I32), ([1, 1], I32)],
        options("StridedSliceOptions", beginMask=0b1, shrinkAxisMask=0b1))),
    Case("strided_slice_full_is_identity", with_consts(
        "STRIDED_SLICE", (2, 3), (2, 3),
        [([0, 0], I32), ([0, 0], I32), ([1, 1], I32)],
        options("StridedSliceOptions", beginMask=0b11, endMask=0b11))),
    Case("slice", with_consts("SLICE", (2, 4, 5, 3), (2, 2, 3, 3),
                              [([0, 1, 2, 0], I32), ([-1, 2, 3, -1], I32)])),
    Case("batch_matmul_adj_y", batch_matmul_adj_y),
    Case("conv_then_mean", conv_then_mean),
]


def make_model(tmp_path: Path, build, name: str = "model.tflite") -> Path:
    m = ModelMaker()
    inputs, outputs = build(m)
    return m.write(tmp_path / name, inputs, outputs)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_operator_matches_tflite(case: Case, tmp_path):
    path = make_model(tmp_path, case.build)
    graph = convert_tflite(path)
    graph.verify()
    for seed in (0, 1):
        check_against_tflite(path, graph, random_inputs(graph, seed, case.transform))


def test_input_shape_override(tmp_path):
    path = make_model(tmp_path, conv_then_mean)
    graph = convert_tflite(path, input_shapes={"x": (3, 9, 7, 2)})
    assert graph.tensors["x"].shape == (3, 9, 7, 2)
    assert graph.tensors["y"].shape == (3, 4)
    check_against_tflite(path, graph, random_inputs(graph, 0))
    with pytest.raises(TinycError, match="has rank 3 but model input 'x' has rank 4"):
        convert_tflite(path, input_shapes={"": (1, 6, 6)})


def test_depthwise_becomes_grouped_conv(tmp_path):
    case = next(c for c in CASES if c.id == "depthwise_multiplier2_same_relu")
    graph = convert_tflite(make_model(tmp_path, case.build))  # multiplier 2 on 3 channels
    (node,) = graph.nodes
    assert node.op == "Conv" and node.attrs["group"] == 3 and node.attrs["channels_last"]
    assert graph.tensors[node.inputs[1]].shape == (6, 3, 3, 1)


# ---- errors -------------------------------------------------------------------------------------
def error_of(path: Path, kind: type[Exception] = UnsupportedOperator) -> str:
    with pytest.raises(kind) as info:
        convert_tflite(path)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_int8_model_imports_with_quantization():
    path = MODELS / "ic01_resnet8_cifar10_int8.tflite"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    graph = convert_tflite(path)
    x = graph.tensors[graph.inputs[0]]
    assert x.dtype == "int8" and x.quant is not None
    assert (x.quant.s, x.quant.zp) == (1.0, -128)  # the MLPerf README's input quantization
    conv = next(n for n in graph.nodes if n.op == "Conv")
    w = graph.tensors[conv.inputs[1]]
    assert w.dtype == "int8" and w.quant.per_channel and w.quant.axis == 0
    assert graph.tensors[conv.inputs[2]].dtype == "int32"


def test_hybrid_model_keeps_int8_weights():
    path = MODELS / "float" / "kws01_dscnn_fp32.tflite"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    graph = convert_tflite(path)
    conv = next(n for n in graph.nodes if n.op == "Conv")
    assert graph.tensors[conv.inputs[0]].dtype == "float32"
    w = graph.tensors[conv.inputs[1]]
    assert w.dtype == "int8" and w.quant is not None  # dynamic range: int8 stays in flash


@pytest.mark.parametrize("content", [b"", b"not a model", b"\x08\x00\x00\x00ONNX" + bytes(64)],
                         ids=["empty", "text", "other_identifier"])
def test_not_a_tflite_file(tmp_path, content):
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    message = error_of(path, TinycError)
    assert message.startswith(f"{path}: not a TFLite flatbuffer")


def test_missing_file(tmp_path):
    assert "cannot read the file" in error_of(tmp_path / "absent.tflite", TinycError)


def test_two_subgraphs_are_refused(tmp_path):
    m = ModelMaker()
    inputs, outputs = unary("RELU")(m)
    path = m.write(tmp_path / "two.tflite", inputs, outputs, subgraphs=2)
    assert "the model has 2 subgraphs" in error_of(path, TinycError)


def test_unsupported_builtin_operator(tmp_path):
    path = make_model(tmp_path, with_consts("RESIZE_BILINEAR", (1, 2, 2, 1), (1, 4, 4, 1),
                                            [([4, 4], I32)]))
    assert error_of(path) == ("operator RESIZE_BILINEAR (output tensor 'y') is not supported "
                              "by tinyc")


def test_custom_operator_is_named_by_its_code(tmp_path):
    def build(m):
        x, y = m.tensor("x", (1, 4)), m.tensor("y", (1, 4))
        m.op("CUSTOM", [x], [y], custom="MyFancyOp")
        return [x], [y]

    path = make_model(tmp_path, build)
    assert error_of(path) == ("custom operator MyFancyOp (output tensor 'y') is not supported "
                              "by tinyc")


def test_fused_tanh_is_refused(tmp_path):
    path = make_model(tmp_path, binary("ADD", (2, 3), (2, 3), (2, 3),
                                       options("AddOptions", fusedActivationFunction=ACT.TANH)))
    assert error_of(path) == "ADD (output tensor 'y'): fused activation TANH (RELU, RELU6 and " \
                             "RELU_N1_TO_1 fuse)"


def test_fused_activation_on_concatenation_is_refused(tmp_path):
    path = make_model(tmp_path, lambda m: concat3(m, ACT.RELU))
    assert "CONCATENATION kernel has none" in error_of(path)


def test_strided_slice_ellipsis_is_refused(tmp_path):
    path = make_model(tmp_path, with_consts(
        "STRIDED_SLICE", (2, 3, 4), (2, 3, 2), [([0], I32), ([2], I32), ([1], I32)],
        options("StridedSliceOptions", ellipsisMask=1)))
    assert "ellipsis_mask" in error_of(path)


def test_dequantize_of_float16_weights_is_refused(tmp_path):
    def build(m):
        x = m.tensor("x", (2, 3))
        w16 = m.const("w16", seeded(2, 3).astype(np.float16), np.float16)
        w, y = m.tensor("w", (2, 3)), m.tensor("y", (2, 3))
        m.op("DEQUANTIZE", [w16], [w])
        m.op("ADD", [x, w], [y], options("AddOptions"))
        return [x], [y]

    message = error_of(make_model(tmp_path, build))
    assert message.startswith("DEQUANTIZE (output tensor 'w'): dequantizing the float16 constant")


def test_int8_weights_without_scales_are_refused(tmp_path):
    def build(m):
        x, y = m.tensor("x", (1, 4)), m.tensor("y", (1, 3))
        w = m.const("w8", np.arange(12).reshape(3, 4), np.int8)
        m.op("FULLY_CONNECTED", [x, w, -1], [y], options("FullyConnectedOptions"))
        return [x], [y]

    message = error_of(make_model(tmp_path, build))
    assert message == ("FULLY_CONNECTED (output tensor 'y'): its weights 'w8' is int8 without "
                       "quantization parameters")
