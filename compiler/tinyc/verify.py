"""`tinyc verify`: the generated C, on the host and on the emulated board, against the reference.

Float outputs pass when |c - ref| <= ATOL + RTOL * |ref| for every element.  The bound covers
float32 reassociation (the kernels accumulate in a fixed order that differs from the
framework's) and the C library's expf/tanhf/erff against the framework's.  Integer outputs must
be equal to the reference, except where the reference itself is known to round differently
(the model's `lsb_tolerance`: 2 steps against the desktop TFLite interpreter); then every
element that is not bit-identical is still counted and reported.  A float output that the
model computes exactly (binary layers whose output transform is the source's own float
arithmetic, and data movement: `exact_outputs`) must be bit-identical too: the tolerance is
only for outputs that pass through float layers.  The host build and the board build run the
same C, and each is compared with the reference on its own.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyc.errors import TinycError
from tinyc.firmware import Project, RunResult, open_project, run
from tinyc.project import Compiled, input_specs, sample_inputs, write_project

ATOL = 1e-4
RTOL = 1e-4


@dataclass
class Comparison:
    output: str
    max_abs_error: float
    worst_index: tuple[int, ...]
    mismatches: int  # elements outside the tolerance
    count: int
    differing: int = 0  # integer outputs: elements not bit-identical (within the LSB tolerance)
    exact: bool = False  # held to bit-identity (exact_outputs), not to the float tolerance


@dataclass
class TargetResult:
    target: str  # "host" | board id
    comparisons: list[Comparison]
    counts: list[int]
    unit: str

    @property
    def passed(self) -> bool:
        return all(c.mismatches == 0 for c in self.comparisons)


@dataclass
class VerifyResult:
    samples: int
    reference: str
    targets: list[TargetResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.targets)


def within_tolerance(actual: np.ndarray, expected: np.ndarray, lsb: int = 0,
                     step: float | None = None, exact: bool = False) -> np.ndarray:
    """Elementwise: float within ATOL + RTOL*|ref|; integers within `lsb` steps.  A float
    output dequantized from int8 (quantum `step`) may also be `lsb` quanta away.  `exact`:
    equal values (NaN matching NaN)."""
    if exact and not np.issubdtype(expected.dtype, np.integer):
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        return (a == e) | (np.isnan(a) & np.isnan(e))
    if np.issubdtype(expected.dtype, np.integer):
        return np.abs(actual.astype(np.int64) - expected.astype(np.int64)) <= lsb
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    quanta = lsb * step * (1 + 1e-6) if step else 0.0
    ok = np.abs(a - e) <= ATOL + RTOL * np.abs(e) + quanta
    return ok | (np.isnan(a) & np.isnan(e)) | (np.isinf(e) & (a == e))


def compare(names: list[str], results: list[list[np.ndarray]],
            references: list[list[np.ndarray]], lsb: int = 0,
            steps: list[float | None] | None = None,
            exact: list[bool] | None = None) -> list[Comparison]:
    """Per output: the largest error, where it is, how many elements are out of tolerance and
    (integer or dequantized outputs) how many are not identical.  `exact[i]`: output i must be
    bit-identical."""
    comparisons = []
    for i, name in enumerate(names):
        step = steps[i] if steps else None
        is_exact = bool(exact[i]) if exact else False
        actual = np.stack([r[i] for r in results])
        expected = np.stack([np.asarray(r[i]).reshape(actual.shape[1:]) for r in references])
        if actual.shape != expected.shape:
            raise TinycError(f"output '{name}': C shape {actual.shape[1:]} != reference "
                             f"{expected.shape[1:]}")
        err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        err = np.where(np.isnan(err) & np.isnan(expected), 0.0, err)
        worst = np.unravel_index(int(np.nanargmax(err)) if err.size else 0, err.shape)
        if np.issubdtype(expected.dtype, np.integer):
            differing = int((actual != expected).sum())
        else:
            differing = int((err > step / 2).sum()) if step else 0
        outside = ~within_tolerance(actual, expected, lsb, step, is_exact)
        comparisons.append(Comparison(name, float(np.nanmax(err)) if err.size else 0.0,
                                      tuple(int(i) for i in worst), int(outside.sum()),
                                      int(actual.size), differing, is_exact))
    return comparisons


# Operators whose float results are exact whatever the order of evaluation (data movement,
# max, packing); binary layers are exact when their output transform is (attrs["exact"]).
EXACT_OPS = ("Reshape", "Transpose", "Slice", "Expand", "Concat", "Pad", "MaxPool",
             "SignPack", "Unpack", "BinaryMaxPool")


def exact_outputs(graph) -> list[bool]:
    """Per graph output: True when every operator it depends on computes exactly (so the C
    output must equal a reference that computes the same model in float32 bit for bit).  Only
    outputs that depend on at least one binary layer qualify: a pure data-movement graph keeps
    the usual tolerance."""
    memo: dict[str, tuple[bool, bool]] = {}  # tensor -> (exact, depends on a binary layer)

    def visit(name: str) -> tuple[bool, bool]:
        if name in memo:
            return memo[name]
        producer = graph.producer(name)
        if producer is None:
            memo[name] = (True, False)
            return memo[name]
        binary = producer.op in ("BinaryConv", "BinaryDense")
        ok = producer.op in EXACT_OPS or (binary and bool(producer.attrs.get("exact")))
        for t in producer.inputs:
            if t:
                e, b = visit(t)
                ok, binary = ok and e, binary or b
        memo[name] = (ok, binary)
        return memo[name]

    return [all(visit(name)) and graph.tensors[name].dtype == "float32"
            for name in graph.outputs]


def load_inputs(path: Path, shapes: list[tuple[int, ...]], dtypes: list[str],
                names: list[str] | None = None) -> list[list[np.ndarray]]:
    """Samples from an .npy file (a single-input model: one sample of the input's shape, or a
    batch of them) or an .npz with one such array per input, named after the inputs or, as
    np.savez(a, b) names them, arr_0, arr_1, ... in input order; every array holds the same
    number of samples."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TinycError(f"{path}: not a readable .npy or .npz file ({exc})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            arrays = _npz_arrays(path, data, len(shapes), names)
    elif len(shapes) != 1:
        raise TinycError(f"{path}: this model has {len(shapes)} inputs; give them in an .npz "
                         "with one array per input (np.savez(path, x0, x1, ...))")
    else:
        arrays = [data]
    batches = [_batch(path, x, shape) for x, shape in zip(arrays, shapes, strict=True)]
    counts = {len(b) for b in batches}
    if len(counts) != 1:
        raise TinycError(f"{path}: the inputs' arrays hold different numbers of samples "
                         f"({', '.join(str(len(b)) for b in batches)})")
    return [[b[i].reshape(shape).astype(dtype) for b, shape, dtype in
             zip(batches, shapes, dtypes, strict=True)] for i in range(counts.pop())]


def _npz_arrays(path: Path, data, count: int, names: list[str] | None) -> list[np.ndarray]:
    """The arrays of an .npz in input order: named after the inputs, or arr_0, arr_1, ..."""
    keys = set(data.keys())
    orders = [o for o in (names, [f"arr_{i}" for i in range(count)]) if o]
    for order in orders:
        if len(order) == count and keys == set(order):
            return [data[k] for k in order]
    raise TinycError(f"{path}: holds {', '.join(sorted(keys)) or 'no arrays'}; this model's "
                     f"{count} input(s) are wanted as {' or '.join(', '.join(o) for o in orders)}")


def _batch(path: Path, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """x as a batch of samples of the input's shape."""
    if x.shape == shape:
        batch = x[None]
    elif x.shape[1:] == shape:
        batch = x
    elif shape[0] == 1 and x.shape[1:] == shape[1:]:
        batch = x[:, None]
    else:
        raise TinycError(f"{path}: shape {list(x.shape)} does not match the model input "
                         f"{list(shape)} (or a batch of them)")
    if np.issubdtype(batch.dtype, np.floating) and np.isnan(batch).any():
        raise TinycError(f"{path}: contains NaN values")
    return batch


def output_steps(graph) -> list[float | None]:
    """Per graph output: the quantum of a float output dequantized from int8, else None."""
    steps = []
    for name in graph.outputs:
        producer = graph.producer(name)
        quant = graph.tensors[producer.inputs[0]].quant if producer is not None and \
            producer.op == "Dequantize" else None
        steps.append(quant.s if quant is not None else None)
    return steps


def verify_compiled(compiled: Compiled, samples: list[list[np.ndarray]],
                    project: Project | None = None, on_board: bool = True) -> VerifyResult:
    with tempfile.TemporaryDirectory(prefix="tinyc-verify-") as tmp:
        if project is None:
            write_project(compiled, Path(tmp) / "project")
            project = open_project(Path(tmp) / "project")
        references = [[np.asarray(v) for v in compiled.model.reference(s)] for s in samples]
        names = [o["name"] for o in project.report["outputs"]]
        result = VerifyResult(len(samples), compiled.model.reference_name)
        targets = ["host"] + (["board"] if on_board else [])
        for target in targets:
            ran: RunResult = run(project, samples, target)
            label = "host" if target == "host" else project.board.id
            comparisons = compare(names, ran.outputs, references, compiled.model.lsb_tolerance,
                                  output_steps(compiled.graph), exact_outputs(compiled.graph))
            result.targets.append(TargetResult(label, comparisons, ran.counts, ran.unit))
        return result


def default_samples(compiled: Compiled, count: int, path: Path | None
                    ) -> list[list[np.ndarray]]:
    graph = compiled.model.graph
    if path is not None:
        return load_inputs(path, [graph.tensors[t].shape for t in graph.inputs],
                           [graph.tensors[t].dtype for t in graph.inputs], list(graph.inputs))
    return sample_inputs(input_specs(graph), count)
