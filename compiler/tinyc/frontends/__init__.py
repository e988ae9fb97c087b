"""Frontends: read a model file into tinyc IR, and give the reference that verifies it.

`load_model` picks the frontend by file type.  Each frontend also provides its framework's own
inference as the reference (onnxruntime for ONNX, qonnx's executor for QONNX, torch for
PyTorch, the TFLite interpreter for .tflite), which `tinyc verify` compares the generated C
against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyc.errors import TinycError
from tinyc.ir import Graph

Reference = Callable[[list[np.ndarray]], list[np.ndarray]]

SUFFIXES = {".onnx": "onnx", ".tflite": "tflite", ".pt": "pytorch", ".pth": "pytorch",
            ".pt2": "pytorch"}


@dataclass
class LoadedModel:
    graph: Graph
    kind: str  # "onnx" | "pytorch" | "tflite"
    reference: Reference
    reference_name: str
    # Integer outputs may differ from this reference by up to this many steps (a reference
    # whose requantization legitimately rounds differently); 0 means bit-exact.
    lsb_tolerance: int = 0


def parse_shapes(text: str | None) -> list[tuple[int, ...]] | None:
    """'1x3x32x32' or '1x3x32x32,1x10' (one shape per model input) -> shapes."""
    if not text:
        return None
    shapes = []
    for part in text.split(","):
        try:
            dims = tuple(int(d) for d in part.strip().lower().split("x"))
        except ValueError:
            raise TinycError(f"--input-shape '{text}' is not like 1x3x32x32 (several inputs: "
                             "1x3x32x32,1x10)") from None
        if not dims or min(dims) <= 0:
            raise TinycError(f"--input-shape '{text}': every dimension must be a positive integer")
        shapes.append(dims)
    return shapes


def _qonnx_reference(proto, inputs: list[str]) -> Reference:
    """qonnx's executor (onnxruntime cannot run QONNX operators such as BipolarQuant); qonnx is
    imported on the first run, and the shape-inferred model kept for the next ones."""
    wrapped = []

    def reference(values: list[np.ndarray]) -> list[np.ndarray]:
        try:
            from qonnx.core.modelwrapper import ModelWrapper
            from qonnx.core.onnx_exec import execute_onnx
            from qonnx.transformation.infer_shapes import InferShapes
        except ImportError:
            raise TinycError("the reference for a QONNX model (BipolarQuant, Quant) is qonnx's "
                             "executor: pip install qonnx (requirements-dev.txt pins it)") from None
        if not wrapped:
            wrapped.append(ModelWrapper(proto).transform(InferShapes()))
        outputs = execute_onnx(wrapped[0], dict(zip(inputs, values, strict=True)))
        return [outputs[o.name] for o in proto.graph.output]

    return reference


def _onnx(path: Path, shapes: list[tuple[int, ...]] | None, name: str,
          model=None, kind: str = "onnx") -> LoadedModel:
    from tinyc.frontends.onnx_frontend import convert, is_qonnx, load_onnx_model

    proto = load_onnx_model(path) if model is None else model
    initializers = {t.name for t in proto.graph.initializer}
    inputs = [v.name for v in proto.graph.input if v.name not in initializers]
    if shapes is not None and len(shapes) != len(inputs):
        raise TinycError(f"--input-shape gives {len(shapes)} shape(s) but the model has "
                         f"{len(inputs)} input(s): {', '.join(inputs)}")
    overrides = dict(zip(inputs, shapes, strict=True)) if shapes else None
    graph = convert(proto, str(path), overrides, name)
    # A binary layer (sign -> Conv with +/-1 weights) computes exact integer sums; onnxruntime's
    # graph optimizations fold the following Mul / BatchNorm into those weights and make the
    # sums inexact, so such a model is run as written.
    binary = any(n.op == "Binarize" for n in graph.nodes)

    def reference(values: list[np.ndarray]) -> list[np.ndarray]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if binary:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(proto.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        return session.run(None, dict(zip(inputs, values, strict=True)))

    # onnxruntime requantizes in float where TFLite's kernels use fixed point: its int8 results
    # may legitimately differ by one step.
    quantized = any(t.dtype == "int8" for t in graph.tensors.values())
    if is_qonnx(proto):
        return LoadedModel(graph, kind, _qonnx_reference(proto, inputs), "qonnx")
    return LoadedModel(graph, kind, reference, "onnxruntime", 1 if quantized else 0)


def _pytorch(path: Path, shapes: list[tuple[int, ...]] | None, name: str) -> LoadedModel:
    import onnx

    from tinyc.frontends.pytorch_frontend import load_torch, run_torch, to_onnx_bytes

    model = load_torch(path)
    shapes = shapes or model.input_shapes
    if shapes is None:
        raise TinycError(f"{path}: a PyTorch model does not record its input shape; give it "
                         "with --input-shape (e.g. 1x3x32x32)")
    try:
        proto = onnx.load_from_string(to_onnx_bytes(model, shapes))
    except TinycError as exc:
        raise TinycError(f"{path}: {exc}") from None
    loaded = _onnx(path, shapes, name, model=proto, kind="pytorch")
    # A quantized PyTorch model computes in its own integer arithmetic: one step, as ONNX.
    return LoadedModel(loaded.graph, "pytorch", lambda values: run_torch(model, values), "torch",
                       loaded.lsb_tolerance)


# TFLite references: TFLM (the tflite-micro package) is the microcontroller reference that
# CMSIS-NN also matches; the desktop interpreter (ai-edge-litert) rounds int8 requantization
# once where TFLM rounds twice, so against it int8 outputs may differ by up to 2 steps.
TFLITE_REFERENCES = ("tflm", "litert", "lce")  # lce: Larq Compute Engine files


def _litert(path: Path) -> Reference:
    def reference(values: list[np.ndarray]) -> list[np.ndarray]:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        # TFLite's reference kernels: the operators' defined arithmetic, no delegate (XNNPACK
        # quantizes dynamic-range layers its own way).
        interpreter = Interpreter(model_path=str(path),
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        interpreter.allocate_tensors()
        for detail, value in zip(interpreter.get_input_details(), values, strict=True):
            interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]

    return reference


def _tflm(path: Path, outputs: int) -> Reference:
    interpreters = []

    def reference(values: list[np.ndarray]) -> list[np.ndarray]:
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError:
            raise TinycError("the TFLM reference needs the tflite-micro package (make setup "
                             "installs it); or use --reference litert") from None
        if not interpreters:
            try:
                interpreters.append(runtime.Interpreter.from_file(str(path)))
            except RuntimeError as exc:
                raise TinycError(f"{path}: TFLM cannot run this model ({exc}); use "
                                 "--reference litert") from None
        interpreter = interpreters[0]
        for i, value in enumerate(values):  # TFLM reuses input memory: set every input anew
            interpreter.set_input(value, i)
        interpreter.invoke()
        return [np.array(interpreter.get_output(i)) for i in range(outputs)]

    return reference


def _lce(path: Path) -> Reference:
    """Larq Compute Engine's own interpreter: the only one that runs its custom operators."""
    def reference(values: list[np.ndarray]) -> list[np.ndarray]:
        try:
            from larq_compute_engine.tflite.python.interpreter import Interpreter
        except ImportError:
            raise TinycError(f"{path}: verifying a Larq Compute Engine model needs LCE's "
                             "interpreter (the larq-compute-engine package, as in the .venv-lce "
                             "that scripts/setup_lce_env.sh makes), which is not importable "
                             "here and LiteRT/TFLM cannot run LCE's custom ops; tinyc compile "
                             "and tinyc run still work") from None
        # predict() takes a batch (each value already has the model's batch axis of 1).
        outputs = Interpreter(path.read_bytes()).predict(values if len(values) > 1
                                                         else values[0])
        return [np.asarray(o) for o in (outputs if isinstance(outputs, list) else [outputs])]

    return reference


def _tflite(path: Path, shapes: list[tuple[int, ...]] | None, name: str,
            reference: str | None = None) -> LoadedModel:
    from tinyc.frontends.lce import uses_lce
    from tinyc.frontends.tflite_frontend import convert_tflite

    graph = convert_tflite(path, name)
    if uses_lce(graph):
        if reference not in (None, "lce"):
            raise TinycError(f"--reference {reference}: {path} holds Larq Compute Engine "
                             "operators, which only LCE's interpreter runs (--reference lce)")
        return LoadedModel(graph, "tflite", _lce(path), "lce")
    if reference == "lce":
        raise TinycError(f"--reference lce: {path} holds no Larq Compute Engine operators; use "
                         "tflm or litert")
    quantized = any(t.dtype == "int8" and not t.is_const for t in graph.tensors.values())
    reference = reference or ("tflm" if quantized else "litert")
    if reference == "tflm":
        return LoadedModel(graph, "tflite", _tflm(path, len(graph.outputs)), "tflm")
    return LoadedModel(graph, "tflite", _litert(path), "litert", 2 if quantized else 0)


def load_model(path: Path, input_shape: str | None = None, name: str = "model",
               reference: str | None = None) -> LoadedModel:
    """Read a model file into IR with its reference.  `reference` picks the reference where a
    format has several (.tflite: "tflm", the default for int8, or "litert")."""
    path = Path(path)
    if not path.exists():
        raise TinycError(f"{path}: no such file")
    if path.is_dir():
        raise TinycError(f"{path}: is a directory, not a model file")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise TinycError(f"{path}: unknown model format '{path.suffix}'; tinyc reads .onnx, "
                         ".tflite, .pt / .pth (TorchScript or pickled nn.Module) and .pt2 "
                         "(torch.export)")
    shapes = parse_shapes(input_shape)
    if reference is not None and (kind != "tflite" or reference not in TFLITE_REFERENCES):
        choices = ", ".join(TFLITE_REFERENCES)
        raise TinycError(f"--reference {reference}: only .tflite models have a choice of "
                         f"reference ({choices})")
    if kind == "tflite":
        return _tflite(path, shapes, name, reference)
    return {"onnx": _onnx, "pytorch": _pytorch}[kind](path, shapes, name)
