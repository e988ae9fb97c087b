"""BatchNormalization (inference form).

y = (x - mean) / sqrt(var + epsilon) * scale + bias, per channel.
Attributes: epsilon (float), channels_last (bool: the channel axis is last, else axis 1).
Inputs: x, scale, bias, mean, var (constants).  It has no kernel: the passes fold it into the
convolution or Gemm before it, or rewrite it as one per-channel Mul and Add.
"""

from __future__ import annotations

import numpy as np

from tinyc.ir import Graph, Node
from tinyc.ops import Shape, register


def batchnorm_affine(node: Node, graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel (multiplier, offset) of a BatchNormalization node, in float64."""
    scale, bias, mean, var = (graph.const(t).astype(np.float64) for t in node.inputs[1:5])
    mul = scale / np.sqrt(var + node.attrs["epsilon"])
    return mul, bias - mean * mul


def _infer(node: Node, graph: Graph) -> list[tuple[Shape, str]]:
    x = graph.tensors[node.inputs[0]]
    return [(x.shape, x.dtype)]


def _evaluate(node: Node, inputs: list, graph: Graph) -> list[np.ndarray]:
    x, scale, bias, mean, var = inputs
    shape = [1] * x.ndim
    shape[-1 if node.attrs["channels_last"] else 1] = -1
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + node.attrs["epsilon"])
    return [(y * scale.reshape(shape) + bias.reshape(shape)).astype(np.float32)]


register("BatchNormalization", _infer, _evaluate, traits=("spatial",))
