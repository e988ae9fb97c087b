"""PyTorch frontend: TorchScript `.pt`, pickled `nn.Module` `.pt`, ExportedProgram `.pt2`.

The model is exported to ONNX in memory and read by the ONNX frontend, so there is one
operator mapping to maintain.  The exporter is torch's TorchScript-based one
(`torch.onnx.export(..., dynamo=False)`): it accepts all three kinds of saved model (a
ScriptModule cannot go through the dynamo exporter), needs no onnxscript, takes milliseconds
instead of seconds, and folds constants (eval-mode BatchNorm statistics, shape arithmetic) as it
traces.  An ExportedProgram is exported through its `.module()`; its recorded example input
shapes serve as the default input shapes.  A program quantized with torchao's PT2E flow
(quantized_decomposed operators, which the TorchScript exporter does not know) goes through the
dynamo exporter instead, which writes clean QDQ ONNX for it.
"""

from __future__ import annotations

import contextlib
import io
import logging
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


def _is_pt2e_quantized(program) -> bool:
    """True for an ExportedProgram holding torchao PT2E quantize/dequantize operators."""
    return program is not None and any(
        "quantized_decomposed" in str(node.target) for node in program.graph.nodes)


def _names(prefix: str, count: int) -> list[str]:
    """'input' for one tensor, 'input_0', 'input_1', ... for several."""
    return [prefix] if count == 1 else [f"{prefix}_{i}" for i in range(count)]


def to_onnx_bytes(model: TorchModel, input_shapes: list[tuple[int, ...]]) -> bytes:
    torch = _import_torch()
    example = tuple(torch.zeros(s) for s in input_shapes)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            if _is_pt2e_quantized(model.program):
                with contextlib.redirect_stdout(io.StringIO()), _quiet("torch.onnx"):
                    exported = torch.onnx.export(model.program, example, dynamo=True,
                                                 verbose=False)
                return _name_outputs(exported.model_proto.SerializeToString())
            torch.onnx.export(_traceable(model), example, buffer, dynamo=False,
                              opset_version=OPSET, do_constant_folding=True,
                              input_names=_names("input", len(example)))
        except Exception as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise TinycError(f"PyTorch could not export the model to ONNX with input shapes "
                             f"{[list(s) for s in input_shapes]}: {type(exc).__name__}: "
                             f"{message[:200]}") from None
    return _name_outputs(buffer.getvalue())


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
