"""PyTorch frontend: TorchScript `.pt`, pickled `nn.Module` `.pt`, ExportedProgram `.pt2`.

The model is exported to ONNX in memory and read by the ONNX frontend, so there is one
operator mapping to maintain.  The exporter is torch's TorchScript-based one
(`torch.onnx.export(..., dynamo=False)`): it accepts all three kinds of saved model (a
ScriptModule cannot go through the dynamo exporter), needs no onnxscript, takes milliseconds
instead of seconds, and folds constants (eval-mode BatchNorm statistics, shape arithmetic) as it
traces.  PyTorch's dynamic quantized Linear layers (`quantize_dynamic`: int8 weights, inputs
quantized at run time), which no ONNX exporter writes, are exported as tinyc.DynamicQuantLinear
nodes carrying their int8 weights (see `_with_dynamic_linear_nodes`).  An ExportedProgram is
exported through its `.module()`; its recorded example input shapes serve as the default input
shapes.  A program quantized with torchao's PT2E flow
(quantized_decomposed operators, which the TorchScript exporter does not know) goes through the
dynamo exporter instead, which writes clean QDQ ONNX for it.
"""

from __future__ import annotations

import contextlib
import copy as copy_module
import io
import logging
import os
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyc.errors import TinycError

OPSET = 17


@dataclass
class TorchModel:
    module: Any  # a callable torch module in eval mode
    input_shapes: list[tuple[int, ...]] | None  # known from the file (ExportedProgram), else None
    program: Any = None  # the ExportedProgram of a .pt2


def _import_torch():
    try:
        import torch
    except ImportError:
        raise TinycError("PyTorch models need torch; install it with `pip install torch==2.13.0` "
                         "(make setup does)") from None
    return torch


@contextlib.contextmanager
def _no_stdout():
    """Sends everything written to standard output, Python's and C++'s (file descriptor 1), to
    a discarded temporary file: PyTorch's TorchScript exporter turns its ONNX log on by itself
    and prints the whole graph from C++ when an export fails."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with tempfile.TemporaryFile() as sink, contextlib.redirect_stdout(io.StringIO()):
            os.dup2(sink.fileno(), 1)
            try:
                yield
            finally:
                os.dup2(saved, 1)
    finally:
        os.close(saved)


@contextlib.contextmanager
def _quiet(logger: str):
    """Silence a torch logger that prints tracebacks for errors tinyc reports in one line."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _register_quantized_ops() -> None:
    """A program quantized with torchao's PT2E flow uses operators torchao registers on import
    (quantized_decomposed.*); import it when installed, without its start-up log lines."""
    with _quiet("torchao"), _quiet("torch.utils._pytree"), contextlib.suppress(ImportError):
        import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401


def _frozen(module):
    """`module` in eval mode with gradients off, so tracing records weights as constants."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())
    except zipfile.BadZipFile:
        return False


def load_torch(path: Path) -> TorchModel:
    torch = _import_torch()
    if path.suffix == ".pt2":
        _register_quantized_ops()
        try:
            if not zipfile.is_zipfile(path):
                raise zipfile.BadZipFile
            with _quiet("torch.export"):
                program = torch.export.load(str(path))
        except Exception as exc:
            raise TinycError(f"{path}: not a readable ExportedProgram ({type(exc).__name__}); "
                             "save it with torch.export.save") from None
        module = program.module()
        for p in module.parameters():
            p.requires_grad_(False)
        shapes = [tuple(n.meta["val"].shape) for n in program.graph.nodes
                  if n.op == "placeholder" and n.name in program.graph_signature.user_inputs]
        return TorchModel(_CallOnly(module), shapes, program)
    if _is_torchscript(path):
        try:
            return TorchModel(_frozen(torch.jit.load(str(path), map_location="cpu")), None)
        except Exception as exc:
            raise TinycError(f"{path}: not a readable TorchScript model "
                             f"({type(exc).__name__}); save it with torch.jit.save") from None
    try:
        with warnings.catch_warnings():  # quantized tensors' deprecation warnings
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise TinycError(f"{path}: the pickled model's class cannot be imported ({exc}); put its "
                         "module on PYTHONPATH, or save the model with torch.jit.save or "
                         "torch.export.save instead") from None
    except Exception as exc:
        raise TinycError(f"{path}: not a readable PyTorch file ({type(exc).__name__})") from None
    if isinstance(obj, dict):
        raise TinycError(f"{path}: holds a state_dict (weights only), not a model; save the "
                         "module itself (torch.save(model), torch.jit.save or torch.export.save)")
    if not isinstance(obj, torch.nn.Module):
        raise TinycError(f"{path}: holds a {type(obj).__name__}, not a torch.nn.Module")
    return TorchModel(_frozen(obj), None)


class _CallOnly:
    """Wraps an ExportedProgram's module: callable, but invisible to `.train()` (which the
    exported module refuses) when wrapped in a plain nn.Module for tracing."""

    def __init__(self, module) -> None:
        self.module = module

    def __call__(self, *args):
        return self.module(*args)


def _traceable(model: TorchModel):
    torch = _import_torch()
    if not isinstance(model.module, _CallOnly):
        return model.module

    class Wrapper(torch.nn.Module):
        def forward(self, *args):
            return model.module(*args)

    return Wrapper()


def _dynamic_linear_function():
    """The autograd Function a dynamic Linear stand-in calls: its forward computes the layer
    with dequantized weights (only shapes matter while tracing), its symbolic writes the node."""
    torch = _import_torch()

    class DynamicQuantLinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, scale, zero_point, bias, qmax: int):
            w = (weight.float() - zero_point.float().reshape(-1, 1)) * scale.reshape(-1, 1)
            return torch.nn.functional.linear(x, w, bias)

        @staticmethod
        def symbolic(g, x, weight, scale, zero_point, bias, qmax: int):
            y = g.op("tinyc::DynamicQuantLinear", x, weight, scale, zero_point, bias,
                     input_qmax_i=qmax)
            rows, out = x.type().sizes()[0], weight.type().sizes()[0]
            y.setType(x.type().with_sizes([rows, out]))  # the exporter's shape inference
            return y

    return DynamicQuantLinear


def _dynamic_linear_parts(name: str, layer) -> tuple:
    """(int8 codes [N, K], scales, zero points, float bias, input qmax) of one of PyTorch's
    dynamic quantized Linear layers, as fbgemm computes it."""
    torch = _import_torch()
    if layer._packed_params.dtype != torch.qint8:
        raise TinycError(f"dynamic quantized Linear '{name}' has {layer._packed_params.dtype} "
                         "weights; tinyc imports quantize_dynamic(..., dtype=torch.qint8)")
    w = layer.weight()
    if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        if w.q_per_channel_axis() != 0:
            raise TinycError(f"dynamic quantized Linear '{name}': weights quantized along axis "
                             f"{w.q_per_channel_axis()}; tinyc takes per-output-channel scales")
        scale = w.q_per_channel_scales().float()
        zero_point = w.q_per_channel_zero_points().to(torch.int8)
    else:
        scale = torch.tensor([w.q_scale()], dtype=torch.float32)
        zero_point = torch.tensor([w.q_zero_point()], dtype=torch.int8)
    bias = layer.bias()
    bias = torch.zeros(w.shape[0]) if bias is None else bias.detach().float()
    # reduce_range (inputs in [0, 127]) since the module's version 4, as its forward passes it
    qmax = 127 if (layer.version or 0) >= 4 else 255
    return w.int_repr(), scale, zero_point, bias, qmax


def _with_dynamic_linear_nodes(module):
    """`module`, or a copy whose dynamic quantized Linear layers (torch.ao.nn.quantized.dynamic,
    also LinearReLU) are stand-ins exporting as tinyc.DynamicQuantLinear [+ Relu].  Other
    dynamic quantized layers (LSTM, GRU, ...) have no tinyc kernel and are refused."""
    torch = _import_torch()
    dynamic = torch.ao.nn.quantized.dynamic
    layers = {n: m for n, m in module.named_modules()
              if type(m).__module__.startswith(("torch.ao.nn.quantized.dynamic",
                                                "torch.ao.nn.intrinsic.quantized.dynamic"))}
    if not layers:
        return module
    for name, layer in layers.items():
        if not isinstance(layer, dynamic.Linear):
            raise TinycError(f"dynamic quantized {type(layer).__name__} '{name}' is not "
                             "supported; tinyc imports quantize_dynamic's Linear layers only")
    function = _dynamic_linear_function()

    class StandIn(torch.nn.Module):
        def __init__(self, name: str, layer) -> None:
            super().__init__()
            codes, scale, zero_point, bias, self.qmax = _dynamic_linear_parts(name, layer)
            for key, value in (("codes", codes), ("scale", scale),
                               ("zero_point", zero_point), ("bias", bias)):
                self.register_buffer(key, value)
            self.relu = type(layer).__name__ == "LinearReLU"

        def forward(self, x):
            # fbgemm quantizes the whole input at once: rows of all leading dimensions
            rows = x if x.dim() == 2 else x.reshape(-1, int(self.codes.shape[1]))
            y = function.apply(rows, self.codes, self.scale, self.zero_point, self.bias,
                               self.qmax)
            if x.dim() != 2:
                y = y.reshape(*x.shape[:-1], int(self.codes.shape[0]))
            return torch.relu(y) if self.relu else y

    copy = copy_module.deepcopy(module)
    for name, layer in layers.items():
        parent_name, _, child = name.rpartition(".")
        parent = copy.get_submodule(parent_name) if parent_name else copy
        setattr(parent, child, StandIn(name, layer))
    return copy


def _is_pt2e_quantized(program) -> bool:
    """True for an ExportedProgram holding torchao PT2E quantize/dequantize operators."""
    return program is not None and any(
        "quantized_decomposed" in str(node.target) for node in program.graph.nodes)


def _names(prefix: str, count: int) -> list[str]:
    """'input' for one tensor, 'input_0', 'input_1', ... for several."""
    return [prefix] if count == 1 else [f"{prefix}_{i}" for i in range(count)]


def _cause(exc: Exception) -> str:
    """`Type: the first line of the message` (at most 200 characters of it); for an error
    raised inside a TorchScript module, the original error, which ends its message after the
    interpreter's traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and "TorchScript interpreter" in lines[0]:
        return lines[-1][:200]
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


def to_onnx_bytes(model: TorchModel, input_shapes: list[tuple[int, ...]]) -> bytes:
    torch = _import_torch()
    example = tuple(torch.zeros(s) for s in input_shapes)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            with _no_stdout(), _quiet("torch.onnx"):
                if _is_pt2e_quantized(model.program):
                    exported = torch.onnx.export(model.program, example, dynamo=True,
                                                 verbose=False)
                    return _name_outputs(exported.model_proto.SerializeToString())
                module = _traceable(model)
                exported_module = _with_dynamic_linear_nodes(module)
                domains = {"tinyc": 1} if exported_module is not module else {}
                torch.onnx.export(exported_module, example, buffer, dynamo=False,
                                  opset_version=OPSET, do_constant_folding=True,
                                  input_names=_names("input", len(example)),
                                  custom_opsets=domains)
        except Exception as exc:
            raise TinycError(_export_failure(model, example, exc)) from None
    return _name_outputs(buffer.getvalue())


def _export_failure(model: TorchModel, example: tuple, exc: Exception) -> str:
    """Why the export with inputs `example` failed: the model's own error where it cannot run
    on them (a wrong --input-shape), else the exporter's."""
    shapes = [list(x.shape) for x in example]
    try:
        model.module(*example)
    except Exception as own:
        return (f"the model does not run on inputs of shape {shapes}: {_cause(own)}; check "
                "--input-shape")
    return f"PyTorch could not export the model to ONNX with input shapes {shapes}: {_cause(exc)}"


def _name_outputs(model_bytes: bytes) -> bytes:
    """The exporter names outputs after trace values ('162'); call them output[_i]."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    names = _names("output", len(graph.output))
    renames = {o.name: n for o, n in zip(graph.output, names, strict=True)
               if o.name.isdigit() and n not in {t.name for t in graph.input}}
    for node in graph.node:
        node.output[:] = [renames.get(t, t) for t in node.output]
        node.input[:] = [renames.get(t, t) for t in node.input]
    for out in graph.output:
        out.name = renames.get(out.name, out.name)
    return model.SerializeToString()


def run_torch(model: TorchModel, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The PyTorch reference: the model's own forward on the same inputs."""
    torch = _import_torch()
    with torch.no_grad():
        out = model.module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
    outs = out if isinstance(out, list | tuple) else [out]
    return [o.detach().numpy() for o in outs]
