"""Static memory planner: every activation tensor gets a fixed offset in one arena.

Liveness: a buffer is live from the step of the node that writes it (graph inputs: before the
first node) to the last step that reads it (graph outputs: to the end).  A view (Reshape) shares
its input's buffer, so the shared buffer lives as long as the longest of them.  A kernel's
scratch memory is a buffer live during its node's step only.

Placement is first-fit, as TFLM's GreedyMemoryPlanner does: buffers are placed one by one, each
at the lowest aligned offset that overlaps no already-placed buffer whose lifetime intersects
its own.  The result depends on the order; the planner tries a few orders (largest first, as
TFLM; largest size x lifetime first; execution order) and then seeded random orders, and keeps
the smallest arena, stopping as soon as one reaches the lower bound.  This is not
optimal in general (the problem is NP-hard), so the report prints the lower bound
max(live bytes at any step) beside the arena to make the gap visible.
The arena the generated C declares is exactly `arena_size`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tinyc import ops
from tinyc.ir import Graph

ALIGNMENT = 16
SEARCH_SEED = 0
MAX_RANDOM_ORDERS = 256
SEARCH_BUDGET = 4_000_000  # random orders x buffers^2 placement steps


@dataclass
class Buffer:
    name: str  # the tensor that owns it (or "<node>:scratch")
    size: int
    first: int  # step of the first write
    last: int  # step of the last read
    tensors: list[str] = field(default_factory=list)  # every tensor stored here (views too)
    offset: int = -1


@dataclass
class MemoryPlan:
    buffers: list[Buffer]
    offsets: dict[str, int]  # tensor (or scratch) name -> arena offset
    arena_size: int
    steps: int  # number of nodes

    def live_bytes(self, step: int) -> int:
        return sum(b.size for b in self.buffers if b.first <= step <= b.last)

    @property
    def lower_bound(self) -> int:
        """No placement can use less than the largest total of simultaneously live bytes."""
        return max((self.live_bytes(s) for s in range(-1, self.steps + 1)), default=0)


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _collect(graph: Graph, scratch: dict[str, int]) -> list[Buffer]:
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
    return buffers


# Orders in which to place buffers; the plan keeps the smallest arena any of them gives.
ORDERS = (
    lambda b: (-b.size, b.first, b.name),  # largest first (TFLM's greedy planner)
    lambda b: (-b.size * (b.last - b.first + 1), b.first, b.name),  # largest size x lifetime
    lambda b: (b.first, -b.size, b.name),  # in execution order
)


def _place(buffers: list[Buffer], order) -> int:
    """First-fit placement in the given order; returns the arena size."""
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=order):
        offset = 0
        conflicts = sorted(
            (p for p in placed if p.first <= buf.last and buf.first <= p.last),
            key=lambda p: p.offset,
        )
        for other in conflicts:
            if offset + buf.size <= other.offset:
                break
            offset = max(offset, _align(other.offset + other.size))
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


def plan_memory(graph: Graph, scratch: dict[str, int] | None = None) -> MemoryPlan:
    """Place every activation of `graph` (and each node's scratch) in one arena."""
    buffers = _collect(graph, scratch or {})
    steps = len(graph.nodes)
    bound = _align(max((sum(b.size for b in buffers if b.first <= s <= b.last)
                        for s in range(-1, steps + 1)), default=0))
    best_order, best = None, None
    for order in _orders(buffers):
        arena = _place(buffers, order)
        if best is None or arena < best:
            best_order, best = order, arena
        if best <= bound:
            break  # optimal: no placement can beat the live-bytes lower bound
    arena = _place(buffers, best_order)
    offsets = {t: b.offset for b in buffers for t in b.tensors}
    return MemoryPlan(buffers, offsets, arena, steps)
