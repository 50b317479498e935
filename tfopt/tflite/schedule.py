"""Operator order for a smaller activation peak (TFLM arena); outputs unchanged.

TFLite Micro plans the arena from the tensors' lifetimes in operator order (greedy planner), so
a branchy graph (ghost modules, residual blocks, fire/DiCE concats) needs less memory when each
branch is finished before the next one starts. `memory_order` re-lists subgraph 0's operators
in a topological order chosen greedily: among the operators whose inputs are ready, the one
that adds the fewest live bytes (its outputs minus the inputs it is the last reader of) runs
next, ties by original position. The new order is kept only when it lowers the liveness peak
(`tfopt.tflite.inspect.liveness_peak`). Every op computes exactly what it did: same inputs,
same kernels.

Measured (resnet101_v13, width 1.0, lean int8): liveness peak 155,904 -> 147,456 B, TFLM arena
331,408 -> 322,960 B (head 172,288 -> 163,840; the tail, per-op and per-channel runtime
structs, is unchanged at 159,120 B).
"""

from __future__ import annotations

from tfopt.tflite.arena_plan import constant_tensors


def _nbytes(sg, t: int) -> int:
    shape = sg.tensors[t].shape
    n = 1
    for d in (shape if shape is not None else ()):
        n *= int(d)
    return (n + 15) // 16 * 16   # int8 activations, 16-byte aligned like the planner


def _greedy_order(model) -> list[int]:
    sg = model.subgraphs[0]
    ops = sg.operators
    const = constant_tensors(model)
    producer = {int(t): i for i, op in enumerate(ops) for t in op.outputs}
    readers: dict[int, set] = {}
    for i, op in enumerate(ops):
        for t in op.inputs:
            if t >= 0 and int(t) not in const:
                readers.setdefault(int(t), set()).add(i)
    keep = {int(t) for t in sg.outputs}
    waiting = {i: {producer[int(t)] for t in op.inputs if t >= 0 and int(t) in producer}
               for i, op in enumerate(ops)}
    done: set = set()
    order: list[int] = []
    ready = {i for i, deps in waiting.items() if not deps}
    dependents: dict[int, set] = {}
    for i, deps in waiting.items():
        for d in deps:
            dependents.setdefault(d, set()).add(i)

    def added(i: int) -> tuple[int, int]:
        ins = {int(t) for t in ops[i].inputs if t >= 0 and int(t) in readers}
        freed = sum(_nbytes(sg, t) for t in ins if readers[t] == {i} and t not in keep)
        return sum(_nbytes(sg, int(t)) for t in ops[i].outputs) - freed, i

    while ready:
        i = min(ready, key=added)
        ready.discard(i)
        order.append(i)
        done.add(i)
        for t in ops[i].inputs:
            if t >= 0 and int(t) in readers:
                readers[int(t)].discard(i)
        for j in dependents.get(i, ()):
            if waiting[j] <= done and j not in done:
                ready.add(j)
    return order


def memory_order(model) -> dict:
    """Reorders subgraph 0's operators when that lowers the liveness peak (module docstring).

    Returns:
      {"reordered": bool, "peak_before": B, "peak_after": B}.
    """
    from tfopt.tflite.inspect import liveness_peak

    sg = model.subgraphs[0]
    before = liveness_peak(model)[0]
    order = _greedy_order(model)
    if len(order) != len(sg.operators) or order == list(range(len(order))):
        return {"reordered": False, "peak_before": before, "peak_after": before}
    original = sg.operators
    sg.operators = [original[i] for i in order]
    after = liveness_peak(model)[0]
    if after >= before:
        sg.operators = original
        return {"reordered": False, "peak_before": before, "peak_after": before}
    return {"reordered": True, "peak_before": before, "peak_after": after}
