"""Static memory planner: every activation tensor gets a fixed offset in one arena.

Liveness: a buffer is live from the step of the node that writes it (graph inputs: before the
first node) to the last step that reads it (graph outputs: to the end).  A view (Reshape) shares
its input's buffer, so the shared buffer lives as long as the longest of them.  A kernel's
scratch memory is a buffer live during its node's step only.

In place: a kernel may declare that it can write its output over an input (ops.InPlace: the
shift, derived from the kernel's access order, at or below which no byte it writes is one it
has still to read).  When that input dies at the node (no later reader, no view read later,
not a graph output), the pair may overlap during that step, as long as the output starts at
or below the input's offset + shift (exactly there, for an `exact` declaration).  That only
relaxes which offsets conflict; where the pair ends up is the placement's choice.

Placement is first-fit, as TFLM's GreedyMemoryPlanner does: buffers are placed one by one, each
at the lowest aligned offset that overlaps no already-placed buffer whose lifetime intersects
its own (beyond what an in-place pair allows).  The result depends on the order; the planner
tries a few orders (largest first, as TFLM; largest size x lifetime first; execution order) and
then seeded random orders, and keeps the smallest arena, stopping as soon as one reaches the
lower bound.  This is not optimal in general (the problem is NP-hard), so the report prints the
lower bound (the most bytes live at one step, an in-place pair overlapping as much as it can)
beside the arena to make the gap visible.
The arena the generated C declares is exactly `arena_size`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tinyc import ops
from tinyc.ir import Graph
from tinyc.ops import ALIGNMENT, InPlace

SEARCH_SEED = 0
MAX_RANDOM_ORDERS = 256
SEARCH_BUDGET = 4_000_000  # random orders x blocks^2 placement steps


@dataclass
class Buffer:
    name: str  # the tensor that owns it (or "<node>:scratch")
    size: int
    first: int  # step of the first write
    last: int  # step of the last read
    tensors: list[str] = field(default_factory=list)  # every tensor stored here (views too)
    offset: int = -1
    overwrites: str | None = None  # the buffer its node writes it over (in place), if placed so


@dataclass
class MemoryPlan:
    buffers: list[Buffer]
    offsets: dict[str, int]  # tensor (or scratch) name -> arena offset
    arena_size: int
    steps: int  # number of nodes
    lower_bound: int  # no placement of these buffers can use less (see the module comment)

    def live_bytes(self, step: int) -> int:
        """Arena bytes in use during `step` (an in-place output and its input counted once)."""
        spans = sorted((b.offset, b.offset + b.size) for b in self.buffers
                       if b.first <= step <= b.last)
        total, end = 0, 0
        for lo, hi in spans:
            total += max(0, hi - max(lo, end))
            end = max(end, hi)
        return total

    def peak(self) -> tuple[int, int]:
        """(layer, live bytes) of the layer with the most live bytes (the first of ties)."""
        live = [self.live_bytes(s) for s in range(self.steps)]
        return max(enumerate(live), key=lambda x: (x[1], -x[0]), default=(-1, 0))


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


Pairs = dict[tuple[int, int], InPlace]  # (id(output buffer), id(input buffer)) -> declaration


def _collect(graph: Graph, scratch: dict[str, int],
             in_place: dict[str, tuple[InPlace, ...]]) -> tuple[list[Buffer], Pairs]:
    """Every buffer with its lifetime, and the in-place pairs whose input dies at the node."""
    owner: dict[str, Buffer] = {}
    buffers: list[Buffer] = []
    end = len(graph.nodes)

    def new(tensor: str, step: int) -> None:
        buf = Buffer(tensor, graph.tensors[tensor].nbytes, step, step, [tensor])
        owner[tensor] = buf
        buffers.append(buf)

    for name in graph.inputs:
        new(name, -1)
    for step, node in enumerate(graph.nodes):
        for t in node.inputs:
            if t and t in owner:
                owner[t].last = max(owner[t].last, step)
        if ops.has_trait(node, "view"):
            buf = owner[node.inputs[0]]
            buf.tensors.append(node.outputs[0])
            owner[node.outputs[0]] = buf
        else:
            for t in node.outputs:
                new(t, step)
        if scratch.get(node.name, 0) > 0:
            name = f"{node.name}:scratch"  # codegen.scratch_name
            buf = Buffer(name, scratch[node.name], step, step, [name])
            buffers.append(buf)
    for name in graph.outputs:
        owner[name].last = end
    pairs: Pairs = {}
    for step, node in enumerate(graph.nodes):
        if len(node.outputs) != 1 or ops.has_trait(node, "view"):
            continue
        out = owner[node.outputs[0]]
        for decl in in_place.get(node.name, ()):
            source = owner[decl.tensor]
            if source.last == step and source is not out:
                pairs[(id(out), id(source))] = decl
    return buffers, pairs


def _lower_bound(buffers: list[Buffer], pairs: Pairs, steps: int) -> int:
    """The most bytes live at one step, each in-place output overlapping the input it shares
    the most with as much as its declaration allows."""
    by_id = {id(b): b for b in buffers}
    saved: dict[int, int] = {}  # output id -> bytes saved at its first step
    for (out, src), decl in pairs.items():
        overlap = min(by_id[src].size, decl.shift + by_id[out].size)
        saved[out] = max(saved.get(out, 0), overlap)
    bound = 0
    for s in range(-1, steps + 1):
        live = [b for b in buffers if b.first <= s <= b.last]
        total = sum(b.size for b in live) - sum(saved.get(id(b), 0) for b in live if b.first == s)
        bound = max(bound, total)
    return _align(bound)


# Orders in which to place buffers; the plan keeps the smallest arena any of them gives.
ORDERS = (
    lambda b: (-b.size, b.first, b.name),  # largest first (TFLM's greedy planner)
    lambda b: (-b.size * (b.last - b.first + 1), b.first, b.name),  # largest size x lifetime
    lambda b: (b.first, -b.size, b.name),  # in execution order
)


def _forbidden(buf: Buffer, other: Buffer, pairs: Pairs) -> list[tuple[int, int]]:
    """Offsets of `buf` (open intervals) that would overlap the placed `other` wrongly: any
    overlap, or for an in-place pair one the declaration does not allow."""
    lo, hi = other.offset - buf.size, other.offset + other.size
    if (decl := pairs.get((id(buf), id(other)))) is not None:  # buf is written over other
        at = other.offset + decl.shift  # buf may start here or lower
        return [(lo, at), (at, hi)] if decl.exact else [(at, hi)]
    if (decl := pairs.get((id(other), id(buf)))) is not None:  # other is written over buf
        at = other.offset - decl.shift  # buf may start here or higher
        return [(lo, at), (at, hi)] if decl.exact else [(lo, at)]
    return [(lo, hi)]


def _place(buffers: list[Buffer], order, pairs: Pairs) -> int:
    """First-fit placement in the given order; returns the arena size."""
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=order):
        spans = sorted(span for p in placed if p.first <= buf.last and buf.first <= p.last
                       for span in _forbidden(buf, p, pairs))
        offset = 0
        for lo, hi in spans:
            if offset <= lo:
                break  # every later interval starts at or above lo: offset is free
            if offset < hi:
                offset = _align(hi)
        buf.offset = offset
        placed.append(buf)
    return _align(max((b.offset + b.size for b in buffers), default=0))


def _orders(buffers: list[Buffer]):
    """The heuristic orders, then seeded random ones (deterministic: the same plan every
    compile), as many as keep planning well under a second for the graph's size."""
    yield from ORDERS
    rng = random.Random(SEARCH_SEED)
    for _ in range(min(MAX_RANDOM_ORDERS, SEARCH_BUDGET // max(1, len(buffers)) ** 2)):
        keys = {id(b): rng.random() for b in buffers}
        yield lambda b, keys=keys: keys[id(b)]


def plan_memory(graph: Graph, scratch: dict[str, int] | None = None,
                in_place: dict[str, tuple[InPlace, ...]] | None = None) -> MemoryPlan:
    """Place every activation of `graph` (and each node's scratch) in one arena; `in_place`
    gives, per node, the inputs its kernel may write its output over."""
    buffers, pairs = _collect(graph, scratch or {}, in_place or {})
    steps = len(graph.nodes)
    bound = _lower_bound(buffers, pairs, steps)
    best_order, best = None, None
    for order in _orders(buffers):
        arena = _place(buffers, order, pairs)
        if best is None or arena < best:
            best_order, best = order, arena
        if best <= bound:
            break  # optimal: no placement can beat the live-bytes lower bound
    arena = _place(buffers, best_order, pairs)
    by_id = {id(b): b for b in buffers}
    for (out, src) in pairs:
        a, b = by_id[out], by_id[src]
        if a.offset < b.offset + b.size and b.offset < a.offset + a.size:
            a.overwrites = b.name
    offsets = {t: b.offset for b in buffers for t in b.tensors}
    return MemoryPlan(buffers, offsets, arena, steps, bound)
