"""`tinyc validate`: the deployed C model over a whole labelled dataset, against its reference.

The fast path runs the very sources that go on the board (model.c, weights.c, runtime/*.c; no
main.c, no board files) compiled by the host gcc into a shared library and called through
ctypes: one 16-byte aligned arena per worker process, each sample copied to the input offset,
`<name>_run(arena)`, the output read back from its offset.  Samples are split into chunks over
a pool of os.cpu_count() processes.  `verify` already holds these sources on the host and on the
emulated board to the reference; `--on-target N` checks it again on N samples of the dataset.

Metrics (for the deployed model and for its Python reference, side by side):
- accuracy, per-class accuracy (classes without samples are left out), the five worst classes;
- the Gini coefficient of the per-class accuracies (0: every class equally well served;
  larger: some classes are abandoned), sum_ij |a_i - a_j| / (2 n^2 mean(a));
- expected calibration error over 15 equal-width bins of the confidence (the largest class
  probability), sum_b |B_b|/N * |accuracy(B_b) - confidence(B_b)|, bins (k/15, (k+1)/15], the
  first one closed at 0, and the per-bin data of the reliability diagram.
  Probability rule: an output row is taken as probabilities as is when every value of every row
  is in [0, 1] and every row sums to 1 within 1e-3 (a model ending in Softmax); otherwise
  (logits, log-probabilities, ...) softmax is applied.  Integer (int8) outputs are first
  dequantized with the output tensor's scale and zero point.
- top-1 agreement between deployed and reference, and the Jaccard overlap of their error sets
  |E_dep & E_ref| / |E_dep | E_ref| (1.0 when both make no error).
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyc.errors import TinycError

ECE_BINS = 15
WORST = 5
ARENA_ALIGNMENT = 64  # >= the generated code's 16
CHUNK = 256  # samples per pool task
PARALLEL_SECONDS = 1.0  # use the process pool only for more host time than this
HOST_CFLAGS = ["-O2", "-std=c99", "-shared", "-fPIC"]


# --------------------------------------------------------------------------------------------
# The dataset

@dataclass
class Dataset:
    x: np.ndarray  # [N, *input shape], the model input's dtype
    y: np.ndarray  # [N] int64 class labels
    classes: int


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TinycError(f"{path}: not a readable .npy file of {what} ({exc})") from None


def load_dataset(data: Path, labels: Path, input_shape: tuple[int, ...], input_dtype: str,
                 output_shape: tuple[int, ...]) -> Dataset:
    """Samples and labels, checked against the model: one clear error per kind of mistake."""
    x = _load_npy(data, "samples")
    y = _load_npy(labels, "labels")
    shape = tuple(input_shape)
    if x.shape == shape:
        x = x[None]
    elif x.shape[1:] == shape:
        pass
    elif shape[0] == 1 and x.shape[1:] == shape[1:]:
        x = x[:, None]
    else:
        raise TinycError(f"{data}: shape {list(x.shape)} does not match the model input "
                         f"{list(shape)} (or a batch of them)")
    if x.dtype.kind not in "fiub":
        raise TinycError(f"{data}: dtype {x.dtype} is not numeric")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).reshape(len(x), -1).any(axis=1).sum())
        kind = "NaN" if np.isnan(x).any() else "infinite"
        raise TinycError(f"{data}: contains {kind} values ({bad} of {len(x)} samples)")
    y = y.reshape(-1) if y.ndim == 2 and 1 in y.shape else y
    if y.ndim != 1:
        raise TinycError(f"{labels}: labels must be one class index per sample, got shape "
                         f"{list(y.shape)}")
    if len(y) != len(x):
        raise TinycError(f"{labels}: {len(y)} labels for {len(x)} samples in {data}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise TinycError(f"{labels}: labels must be integer class indices")
    elif y.dtype.kind not in "iub":
        raise TinycError(f"{labels}: labels must be integer class indices, not {y.dtype}")
    y = y.astype(np.int64)
    classes = int(np.prod(output_shape))
    if classes < 2:
        raise TinycError(f"the model has {classes} output value(s); validate needs a "
                         "classifier with one score per class")
    if len(y) and (y.min() < 0 or y.max() >= classes):
        raise TinycError(f"{labels}: labels span classes {int(y.min())}..{int(y.max())} "
                         f"({len(np.unique(y))} classes) but the model outputs {classes} "
                         "class scores")
    if np.dtype(input_dtype).kind == "i" and x.dtype.kind == "f":
        raise TinycError(f"{data}: float samples for a model whose input is {input_dtype}")
    return Dataset(x.astype(input_dtype, copy=False), y, classes)


# --------------------------------------------------------------------------------------------
# The host shared library and the worker pool

@dataclass
class HostModel:
    """What a worker needs to run the library: all plain data, so it pickles."""

    library: str
    name: str
    arena_size: int
    input_offset: int
    input_bytes: int
    output_offset: int
    output_bytes: int
    output_dtype: str
    output_count: int


def build_library(outdir: Path, report: dict[str, Any], tmp: Path) -> HostModel:
    """Compile the project's model sources into tmp/libmodel.so with the host gcc."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise TinycError("gcc not found; install it (apt-get install gcc)")
    if len(report["inputs"]) != 1 or len(report["outputs"]) != 1:
        raise TinycError(f"validate takes models with one input and one output; this one has "
                         f"{len(report['inputs'])} and {len(report['outputs'])}")
    sources = [outdir / "model.c", outdir / "weights.c",
               *sorted((outdir / "runtime").glob("*.c"))]
    lib = tmp / "libmodel.so"
    cmd = [gcc, *HOST_CFLAGS, f"-I{outdir}", f"-I{outdir / 'runtime'}",
           *map(str, sources), "-lm", "-o", str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr)
        raise TinycError(f"compiling the host library of {outdir} failed: {first.strip()}")
    i, o = report["inputs"][0], report["outputs"][0]
    return HostModel(str(lib), report["name"], report["arena_bytes"], i["offset"], i["bytes"],
                     o["offset"], o["bytes"], o["dtype"], int(np.prod(o["shape"])))


class _Runner:
    """One loaded library and one aligned arena (one per process)."""

    def __init__(self, model: HostModel) -> None:
        self.model = model
        self.lib = ctypes.CDLL(model.library)
        self.run = getattr(self.lib, f"{model.name}_run")
        self.run.argtypes = [ctypes.c_void_p]
        self.run.restype = None
        raw = np.zeros(max(model.arena_size, 1) + ARENA_ALIGNMENT, np.uint8)
        start = (-raw.ctypes.data) % ARENA_ALIGNMENT
        self.raw = raw
        self.arena = raw[start:start + max(model.arena_size, 1)]
        self.pointer = ctypes.c_void_p(self.arena.ctypes.data)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        m = self.model
        flat = np.ascontiguousarray(x).reshape(len(x), -1).view(np.uint8)
        out = np.empty((len(x), m.output_bytes), np.uint8)
        arena, ins, outs = self.arena, slice(m.input_offset, m.input_offset + m.input_bytes), \
            slice(m.output_offset, m.output_offset + m.output_bytes)
        for n in range(len(x)):
            arena[ins] = flat[n]
            self.run(self.pointer)
            out[n] = arena[outs]
        return out.view(m.output_dtype).reshape(len(x), m.output_count)


_worker: _Runner | None = None
_worker_data: np.ndarray | None = None


def _init_worker(model: HostModel, data: np.ndarray | None) -> None:
    global _worker, _worker_data
    _worker = _Runner(model)
    if data is not None:
        _worker_data = data


def _run_chunk(bounds: tuple[int, int]) -> tuple[int, np.ndarray]:
    assert _worker is not None and _worker_data is not None
    return bounds[0], _worker(_worker_data[bounds[0]:bounds[1]])


@dataclass
class HostRun:
    outputs: np.ndarray  # [N, classes], the output dtype
    seconds: float
    workers: int

    @property
    def throughput(self) -> float:
        return len(self.outputs) / self.seconds if self.seconds > 0 else float("inf")


def run_host(model: HostModel, x: np.ndarray, workers: int | None = None,
             progress: bool = True, label: str = "validate") -> HostRun:
    """Every sample of `x` through the library, over a process pool, with a progress bar."""
    from tqdm import tqdm

    n = len(x)
    cpus = workers or os.cpu_count() or 1
    chunks = [(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    out = np.empty((n, model.output_count), model.output_dtype)
    bar = tqdm(total=n, desc=label, unit="sample", disable=not progress, file=sys.stderr,
               leave=False)
    start = time.perf_counter()
    # The first chunk runs here and times the model: starting worker processes (forking a
    # parent that holds torch) costs ~0.1 s each, so the pool is used only when the rest would
    # take longer than PARALLEL_SECONDS in this process.
    runner = _Runner(model)
    if chunks:
        lo, hi = chunks.pop(0)
        out[lo:hi] = runner(x[lo:hi])
        bar.update(hi - lo)
    per_sample = (time.perf_counter() - start) / max(1, min(CHUNK, n))
    rest = n - min(CHUNK, n)
    workers = max(1, min(cpus, len(chunks))) if per_sample * rest > PARALLEL_SECONDS else 1
    if workers == 1:
        for lo, hi in chunks:
            out[lo:hi] = runner(x[lo:hi])
            bar.update(hi - lo)
    else:
        # fork (where there is one) hands the dataset to the workers without pickling it.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        global _worker_data
        _worker_data = x
        share = None if method == "fork" else x
        try:
            with ctx.Pool(workers, _init_worker, (model, share)) as pool:
                for lo, values in pool.imap_unordered(_run_chunk, chunks):
                    out[lo:lo + len(values)] = values
                    bar.update(len(values))
        finally:
            _worker_data = None
    seconds = time.perf_counter() - start
    bar.close()
    return HostRun(out, seconds, workers)


# --------------------------------------------------------------------------------------------
# Metrics

def probabilities(scores: np.ndarray) -> tuple[np.ndarray, str]:
    """[N, K] float scores -> probabilities and the rule applied ("as is" or "softmax")."""
    s = scores.astype(np.float64)
    if s.size and np.all((s >= 0) & (s <= 1)) and np.all(np.abs(s.sum(axis=1) - 1) <= 1e-3):
        return s, "as is"
    z = s - s.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True), "softmax"


def gini(values: np.ndarray) -> float:
    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0 or v.mean() == 0:
        return 0.0
    return float(np.abs(v[:, None] - v[None, :]).sum() / (2 * v.size ** 2 * v.mean()))


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
                ) -> tuple[float, list[dict[str, Any]]]:
    """ECE and the reliability-diagram bins (lo, hi, count, accuracy, confidence)."""
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    n = len(confidence)
    ece, rows = 0.0, []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        acc = float(correct[members].mean()) if count else None
        conf = float(confidence[members].mean()) if count else None
        if count:
            ece += count / n * abs(acc - conf)
        rows.append({"lo": b / bins, "hi": (b + 1) / bins, "count": count, "accuracy": acc,
                     "confidence": conf})
    return float(ece), rows


def metrics(scores: np.ndarray, labels: np.ndarray, classes: int) -> dict[str, Any]:
    probs, rule = probabilities(scores)
    pred = probs.argmax(axis=1)
    correct = pred == labels
    per_class: list[float | None] = []
    counts = np.bincount(labels, minlength=classes)
    for c in range(classes):
        per_class.append(float(correct[labels == c].mean()) if counts[c] else None)
    present = [(a, c) for c, a in enumerate(per_class) if a is not None]
    worst = sorted(present)[:WORST]
    ece, bins = reliability(probs.max(axis=1), correct)
    return {
        "accuracy": float(correct.mean()) if len(correct) else 0.0,
        "per_class": per_class,
        "class_counts": counts.tolist(),
        "worst_classes": [{"class": c, "accuracy": a, "count": int(counts[c])}
                          for a, c in worst],
        "gini": gini(np.array([a for a, _ in present])),
        "ece": ece,
        "reliability": bins,
        "probability_rule": rule,
        "predictions": pred,
        "errors": np.flatnonzero(~correct),
    }


def agreement(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """Top-1 agreement and Jaccard overlap of the error sets of two metric dicts."""
    ea, eb = set(a["errors"].tolist()), set(b["errors"].tolist())
    union = ea | eb
    return {"top1_agreement": float(np.mean(a["predictions"] == b["predictions"])),
            "error_jaccard": len(ea & eb) / len(union) if union else 1.0}


def public(m: dict[str, Any]) -> dict[str, Any]:
    """A metric dict without the per-sample arrays (for JSON)."""
    return {k: v for k, v in m.items() if k not in ("predictions", "errors")}


# --------------------------------------------------------------------------------------------
# One deployment, end to end

@dataclass
class Deployment:
    label: str
    report: dict[str, Any]
    board: Any
    plan: Any
    deployed: dict[str, Any]
    reference: dict[str, Any]
    reference_name: str
    vs_reference: dict[str, float]
    host: HostRun
    vs_first: dict[str, float] | None = None
    on_target: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _scores(values: np.ndarray, scale: float | None, zero: int | None) -> np.ndarray:
    if np.issubdtype(values.dtype, np.integer):
        if scale is None:
            return values.astype(np.float64)
        return (values.astype(np.float64) - zero) * scale
    return values.astype(np.float64)


def _output_quant(compiled) -> tuple[float | None, int | None]:
    t = compiled.graph.tensors[compiled.graph.outputs[0]]
    if t.quant is None or t.quant.scale.size != 1:
        return None, None
    return float(t.quant.scale.reshape(-1)[0]), int(t.quant.zero_point.reshape(-1)[0])


def reference_outputs(compiled, x: np.ndarray, progress: bool = True) -> np.ndarray:
    """The Python reference (torch, onnxruntime, TFLite, or tinyc's int8 simulation) per sample."""
    from tqdm import tqdm

    # One sample at a time is far too small for torch's intra-op threads: with them it is ~25x
    # slower here (2.4 ms vs 0.09 ms per digits sample), worse when other processes compete.
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        rows = []
        for sample in tqdm(x, desc="reference", unit="sample", disable=not progress,
                           file=sys.stderr, leave=False):
            rows.append(np.asarray(compiled.model.reference([sample])[0]).reshape(-1))
    finally:
        if torch is not None:
            torch.set_num_threads(threads)
    return np.stack(rows) if rows else np.empty((0, 0))


def on_target_check(project, host_outputs: np.ndarray, x: np.ndarray, count: int
                    ) -> dict[str, Any]:
    """Run `count` samples on the emulated board; raise TinycError if any output differs from
    the host library's (integers: exactly; floats: beyond verify's tolerance, since the board's
    C library computes expf & co. differently).  Also counts the instructions of each layer
    on the first sample (the -DTINYC_PROFILE build), for the report."""
    from tinyc.firmware import run
    from tinyc.verify import within_tolerance

    count = min(count, len(x))
    shape = tuple(project.report["inputs"][0]["shape"])
    result = run(project, [[s.reshape(shape)] for s in x[:count]], "board")
    board = np.stack([o[0].reshape(-1) for o in result.outputs])
    host = host_outputs[:count]
    ok = within_tolerance(board, host)
    identical = int(np.all(board == host, axis=1).sum())
    diff = float(np.abs(board.astype(np.float64) - host.astype(np.float64)).max()) \
        if board.size else 0.0
    if not ok.all():
        bad = int((~ok).any(axis=1).sum())
        raise TinycError(f"on {project.board.id}, {bad} of {count} samples differ from the host "
                         f"build (max |board - host| {diff:.3g})")
    profiled = run(project, [[x[0].reshape(shape)]], "profile")  # instructions per layer
    return {"board": project.board.id, "samples": count, "identical": identical,
            "max_abs_difference": diff, "unit": result.unit,
            "per_inference": int(np.median(result.counts)) if result.counts else None,
            "layer_counts": [c for _, c in profiled.layer_counts]}


def validate_compiled(compiled, dataset: Dataset, label: str, on_target: int = 0,
                      progress: bool = True, workers: int | None = None) -> Deployment:
    from tinyc.firmware import open_project
    from tinyc.project import write_project

    i, o = compiled.report["inputs"][0], compiled.report["outputs"][0]
    if tuple(i["shape"]) != dataset.x.shape[1:] or int(np.prod(o["shape"])) != dataset.classes:
        raise TinycError(f"{label}: input {i['shape']} / {int(np.prod(o['shape']))} classes do "
                         f"not match the dataset ({list(dataset.x.shape[1:])}, "
                         f"{dataset.classes} classes)")
    with tempfile.TemporaryDirectory(prefix="tinyc-validate-") as tmp:
        work = Path(tmp)
        write_project(compiled, work / "project")
        project = open_project(work / "project")
        host_model = build_library(work / "project", project.report, work)
        host = run_host(host_model, dataset.x, workers, progress, label)
        target = on_target_check(project, host.outputs, dataset.x, on_target) \
            if on_target else None
    scale, zero = _output_quant(compiled)
    ref = reference_outputs(compiled, dataset.x, progress)
    if ref.shape[1:] != (dataset.classes,):
        raise TinycError(f"the reference gives {ref.shape[1:]} values per sample, the C "
                         f"{dataset.classes}")
    deployed = metrics(_scores(host.outputs, scale, zero), dataset.y, dataset.classes)
    reference = metrics(_scores(ref, scale, zero), dataset.y, dataset.classes)
    return Deployment(label, compiled.report, compiled.board, compiled.plan, deployed, reference,
                      compiled.model.reference_name, agreement(deployed, reference), host,
                      on_target=target)


def compare_to_first(deployments: list[Deployment]) -> None:
    for d in deployments[1:]:
        d.vs_first = agreement(d.deployed, deployments[0].deployed)


def to_json(deployments: list[Deployment], dataset: Dataset) -> dict[str, Any]:
    return {
        "samples": len(dataset.y), "classes": dataset.classes, "ece_bins": ECE_BINS,
        "deployments": [{
            "label": d.label, "board": d.board.id, "reference_name": d.reference_name,
            "parameters": d.report["parameters"], "macs": d.report["macs"],
            "weight_bytes": d.report["weight_bytes"], "arena_bytes": d.report["arena_bytes"],
            "flash_size": d.board.flash.size, "ram_size": d.board.ram.size,
            "quantization": d.report.get("quantization"),
            "deployed": public(d.deployed), "reference": public(d.reference),
            **d.vs_reference,
            "vs_first": d.vs_first,
            "throughput": d.host.throughput, "seconds": d.host.seconds,
            "workers": d.host.workers, "on_target": d.on_target,
        } for d in deployments],
    }


def _pct(v: float | None) -> str:
    return "  -  " if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1%}"


def text_lines(deployments: list[Deployment], dataset: Dataset, source: str) -> list[str]:
    """The terminal report: one table row per deployment, then each one's worst classes."""
    lines = [f"tinyc validate: {Path(source).name} on {len(dataset.y):,} samples, "
             f"{dataset.classes} classes (deployed: the C on the host; ref: the Python "
             f"reference; ECE over {ECE_BINS} bins)"]
    head = (f"{'deployment':<22} {'acc':>6} {'ref acc':>7} {'gini':>5} {'ECE':>6} "
            f"{'ref ECE':>7} {'agree':>6} {'err J':>5} {'flash B':>9} {'arena B':>8} "
            f"{'samples/s':>9}")
    lines.append(head)
    for d in deployments:
        lines.append(
            f"{d.label[:22]:<22} {_pct(d.deployed['accuracy']):>6} "
            f"{_pct(d.reference['accuracy']):>7} {d.deployed['gini']:>5.3f} "
            f"{d.deployed['ece']:>6.4f} {d.reference['ece']:>7.4f} "
            f"{_pct(d.vs_reference['top1_agreement']):>6} "
            f"{d.vs_reference['error_jaccard']:>5.2f} {d.report['weight_bytes']:>9,} "
            f"{d.report['arena_bytes']:>8,} {d.host.throughput:>9,.0f}")
    for d in deployments:
        worst = ", ".join(f"{w['class']} {_pct(w['accuracy'])}"
                          for w in d.deployed["worst_classes"])
        lines.append(f"{d.label[:22]}: worst classes {worst}")
        lines.append(f"  reference {d.reference_name}; probabilities "
                     f"{d.deployed['probability_rule']}")
        if d.vs_first is not None:
            lines.append(f"  vs {deployments[0].label}: top-1 agreement "
                         f"{_pct(d.vs_first['top1_agreement'])}, error-set Jaccard "
                         f"{d.vs_first['error_jaccard']:.2f}")
        if d.on_target is not None:
            t = d.on_target
            count = f", {t['per_inference']:,} {t['unit']} per inference" \
                if t["per_inference"] else ""
            lines.append(f"  on {t['board']}: {t['samples']} samples match the host build "
                         f"({t['identical']} bit-identical){count}")
    return lines


def parse_compare(spec: str) -> tuple[Path, str | None]:
    """`--compare PATH[@float|@int8]`: another model file, or the same one built another way
    (the suffix overrides --quantize)."""
    path, _, mode = spec.rpartition("@") if "@" in spec else (spec, "", "")
    if mode and mode not in ("float", "int8"):
        raise TinycError(f"--compare {spec}: the suffix after @ must be float or int8")
    return Path(path), (mode or None)


def deployment_label(model: Path, quantize: str | None, taken: list[str],
                     binary: bool = False) -> str:
    """`STEM float|int8|binary|binary+int8`, numbered when the same one appears again."""
    kind = quantize or "float"
    if binary:
        kind = f"binary+{quantize}" if quantize else "binary"
    label = f"{model.stem} {kind}"
    n = 2
    while label in taken:
        label, n = f"{model.stem} {kind} #{n}", n + 1
    return label
