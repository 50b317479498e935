"""Recompute a cheap activation at the TFLM arena peak instead of keeping it alive (int8).

A ghost module before a stride-2 depthwise (resnet101_v13) converts to: primary 1x1 CONV_2D ->
shuffle (RESHAPE, TRANSPOSE, RESHAPE) = p; cheap DEPTHWISE_CONV_2D(p) = c; PAD(c) -> the strided
depthwise; and ADD(p, BN offset) -> PAD -> the strided depthwise for the other half. Whichever
half is padded first, p (or c) stays alive beside the pad output: the trained-like resnet101_v13
peaks there at 108,672 B (36,992 B pad output + 2 x 32,768 B + the 6,144 B shortcut).

`recompute_at_peak` gives the readers of such a p that run after the peak op their own copy of
the chain that made p (the same CONV_2D, RESHAPE, TRANSPOSE ops on the same weight tensors, new
activation tensors with the same quantization), so p dies early and its copy is made when it is
needed; the chain's input (16 KB there) stays alive instead. Every copy computes the same
integers with the same kernel, so the outputs are bit-identical (tests/test_rewrite_recompute.py).
Each candidate (a tensor alive at the peak, made by a chain of RESHAPE/TRANSPOSE ops on one 1x1
CONV_2D, read again after the peak) is tried, the ops re-ordered (`schedule.memory_order`), and
kept only when the offline arena plan's head (`arena_plan.best_plan`) goes down; repeated
while it does. A tensor made before the peak and read only after it is tried the same way with
its op deferred to just before its first reader (the downsample shortcut 1x1 conv there).

Measured (trained-like resnet101_v13, width 1.0, lean int8): one chain recomputed and one
shortcut deferred, head 108,672 -> 87,680 B, TFLM arena 271,808 -> 251,616 B, 0 LSB. Cost: the
copied 1x1 conv's MACs (+0.13 M, 1 %) and 288 B of flatbuffer.
"""

from __future__ import annotations

import copy

from tfopt.tflite.arena_plan import best_plan, lifetimes, peak_of
from tfopt.tflite.rewrite import _activation_like, _graph, _op_names

_VIEWS = ("RESHAPE", "TRANSPOSE", "GATHER")


def _is_1x1(sg, op) -> bool:
    shape = sg.tensors[int(op.inputs[1])].shape
    return shape is not None and len(shape) == 4 and int(shape[1]) == int(shape[2]) == 1


def _chain(sg, kinds, producer, consumers, t: int) -> list[int] | None:
    """Op indices (first to last) of RESHAPE/TRANSPOSE/GATHER links on one 1x1 CONV_2D that make
    tensor `t`, each link read only by the next; None when `t` is not made that way."""
    chain = []
    while True:
        i = producer.get(t)
        if i is None:
            return None
        chain.insert(0, i)
        if kinds[i] == "CONV_2D":
            return chain if _is_1x1(sg, sg.operators[i]) else None
        if kinds[i] not in _VIEWS:
            return None
        t = int(sg.operators[i].inputs[0])
        if len(consumers.get(t, ())) != 1:
            return None


def _copy_chain(model, chain: list[int], readers: list[int]) -> None:
    """Inserts a copy of the ops `chain` (new output tensors) before the first of `readers`
    and points `readers` at the copy's end."""
    sg = model.subgraphs[0]
    renamed: dict[int, int] = {}
    new_ops = []
    for i in chain:
        op = copy.deepcopy(sg.operators[i])
        op.inputs = [renamed.get(int(t), int(t)) for t in op.inputs]
        for t in op.outputs:
            renamed[int(t)] = _activation_like(sg, int(t), sg.tensors[int(t)].shape,
                                               "_recomputed")
        op.outputs = [renamed[int(t)] for t in op.outputs]
        new_ops.append(op)
    end = int(sg.operators[chain[-1]].outputs[0])
    for r in readers:
        sg.operators[r].inputs = [renamed[end] if int(t) == end else int(t)
                                  for t in sg.operators[r].inputs]
    # before the first reader, so the op list stays in a valid (topological) order
    at = min(readers)
    sg.operators[at:at] = new_ops


def _defer(model, op_index: int, before: int) -> None:
    """Moves operator `op_index` to just before operator `before` (a later one)."""
    ops = model.subgraphs[0].operators
    ops.insert(before - 1, ops.pop(op_index))


def _candidates(model) -> list[tuple]:
    """("copy", chain, readers after the peak) for each recomputable tensor alive at the peak
    op, and ("defer", producer, first reader) for each tensor made before the peak and read
    only after it."""
    sg = model.subgraphs[0]
    kinds = _op_names(model)
    producer, consumers = _graph(sg)
    life = lifetimes(model)
    peak = peak_of(life, len(sg.operators))[1]
    outputs = {int(t) for t in sg.outputs}
    found = []
    for t, (first, last, _) in life.items():
        if not first < peak < last or t in outputs:
            continue
        later = [r for r in consumers.get(t, ()) if r > peak]
        if not later:
            continue
        if len(later) == len(consumers[t]):
            if t in producer and len(sg.operators[producer[t]].outputs) == 1:
                found.append(("defer", producer[t], min(later)))
            continue
        chain = _chain(sg, kinds, producer, consumers, t)
        if chain is not None:
            found.append(("copy", chain, later))
    return found


def recompute_at_peak(model, *, max_rounds: int = 16) -> int:
    """Recomputes cheap tensors alive at the arena peak where that lowers the offline plan's
    head (module docstring); edits `model` (a `schema.ModelT`) in place.

    Returns:
      How many changes were kept (a tensor recomputed, or an op deferred to its first reader).
    """
    from tfopt.tflite.schedule import memory_order

    sg = model.subgraphs[0]
    head = best_plan(model)[1]
    done = 0
    for _ in range(max_rounds):
        best = None
        for kind, ops, readers in _candidates(model):
            trial = copy.deepcopy(model)
            if kind == "copy":
                _copy_chain(trial, ops, readers)
                memory_order(trial)
            else:
                _defer(trial, ops, readers)
            trial_head = best_plan(trial)[1]
            if trial_head < (best[0] if best else head):
                best = (trial_head, trial)
        if best is None:
            break
        head = best[0]
        sg.operators, sg.tensors = best[1].subgraphs[0].operators, best[1].subgraphs[0].tensors
        done += 1
    return done
