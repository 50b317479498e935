"""int8 channel CONCATENATION moved past the per-channel ops after it (smaller TFLM arena).

A ghost module ends in CONCATENATION(dw(s), s) -> MUL (BN per channel) -> a grouped 1x1 CONV_2D,
or -> PAD -> a stride-2 DEPTHWISE_CONV_2D. The full-width concat output is alive together with
both its inputs and then with the MUL's output: resnet101_v13 (width 1.0) peaks there at
147,456 B (2 x 32 KB inputs + 64 KB concat + the 16 KB residual). Every op of such a chain
works on each channel (or each channel group) alone, so it can run on each concat input
separately: `sink_concat` splits the chain per input -- MUL or ADD by the matching slice of
its per-channel constant (BN after the concat), PAD (no channel padding; a MUL -> PAD pair runs
as PAD -> MUL, `_pad_first`), DEPTHWISE_CONV_2D with multiplier 1 (filter,
bias and per-channel scales sliced), pooling, and a grouped CONV_2D whose groups do not straddle
two inputs (filter rows, bias, scales of those groups) -- and concatenates the small results
at the end. Every output element is computed by the same kernel from the same integers with
the same quantization, so the model's outputs are bit-identical (LiteRT reference, XNNPACK,
TFLM; tests/test_rewrite_concat.py). Only chains whose concat lands on fewer bytes are split.
Concat inputs must share the output's quantization (a pure copy), as the converter writes them.

Measured (resnet101_v13, width 1.0, lean int8, with the offline arena plan of
`tfopt.tflite.arena_plan`): 4 concats moved (the three 32x32x64 ghost concats before a grouped
conv and the one before the first stride-2 depthwise), +10 ops, +27 tensors; activation head
147,456 -> 86,016 B, TFLM arena 306,576 -> 247,264 B; file 203,928 -> 208,704 B with the
plan (3,320 B of it).
"""

from __future__ import annotations

import copy

import numpy as np

from tfopt.tflite.model_info import _schema
from tfopt.tflite.rewrite import _INT8, _activation_like, _constant, _graph, _op_names, drop_unused
from tfopt.tflite.schedule import _nbytes

_PER_CHANNEL = ("MUL", "ADD", "PAD", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D")


def _quant_key(t) -> tuple:
    q = t.quantization
    if q is None or q.scale is None:
        return ()
    return tuple(np.asarray(q.scale).tolist()), tuple(np.asarray(q.zeroPoint).tolist())


def _sliced_const(model, sg, t: int, lo: int, hi: int, axis: int) -> int:
    """A copy of constant tensor `t` holding [lo, hi) along `axis` (per-axis scales sliced)."""
    tensor = sg.tensors[t]
    dtype = {9: np.int8, 2: np.int32, 0: np.float32, 7: np.int16}[tensor.type]
    data = _constant(model, sg, t).view(dtype).reshape([int(d) for d in tensor.shape])
    part = np.ascontiguousarray(np.take(data, np.arange(lo, hi), axis=axis))
    new = copy.deepcopy(tensor)
    new.shape = np.array(part.shape, dtype=np.int32)
    new.shapeSignature = None
    q = new.quantization
    if q is not None and q.scale is not None and len(q.scale) > 1:
        q.scale = np.asarray(q.scale)[lo:hi]
        q.zeroPoint = np.asarray(q.zeroPoint)[lo:hi]
    buf = _schema().BufferT()
    buf.data = np.frombuffer(part.tobytes(), dtype=np.uint8)
    model.buffers.append(buf)
    new.buffer = len(model.buffers) - 1
    sg.tensors.append(new)
    return len(sg.tensors) - 1


def _split_op(model, sg, kind: str, op, x: int, lo: int, hi: int, quant_of=None):
    """`op` applied to the channel slice [lo, hi) of its input, now tensor `x`: (op, output)
    or None when the op cannot be split there. The output has `op`'s output quantization (or
    `quant_of`'s) and `x`'s spatial size after the op (a PAD's or pool's own)."""
    out = int(op.outputs[0])
    ins = [int(t) for t in op.inputs]
    shape = [int(d) for d in sg.tensors[out].shape]
    if kind in ("MUL", "ADD"):
        shape = [int(d) for d in sg.tensors[x].shape[:-1]] + [shape[-1]]
    new = copy.copy(op)
    if kind in ("MUL", "ADD"):   # by a per-channel (or scalar) constant: BN after a concat
        act = 0 if _constant(model, sg, ins[0]) is None else 1
        const = ins[1 - act]
        c_shape = [int(d) for d in sg.tensors[const].shape]
        if _constant(model, sg, const) is None or any(d > 1 for d in c_shape[:-1]):
            return None
        if c_shape and c_shape[-1] > 1:
            const = _sliced_const(model, sg, const, lo, hi, len(c_shape) - 1)
        new.inputs = np.array([x, const] if act == 0 else [const, x], dtype=np.int32)
    elif kind == "PAD":
        pads = _constant(model, sg, ins[1])
        if pads is None or np.any(pads.view(np.int32).reshape(-1, 2)[-1] != 0):
            return None
        new.inputs = np.array([x, ins[1]], dtype=np.int32)
    elif kind == "DEPTHWISE_CONV_2D":
        if op.builtinOptions.depthMultiplier != 1:
            return None
        bias = ([_sliced_const(model, sg, ins[2], lo, hi, 0)]
                if len(ins) > 2 and ins[2] >= 0 else [])
        new.inputs = np.array([x, _sliced_const(model, sg, ins[1], lo, hi, 3)] + bias,
                              dtype=np.int32)
    elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        new.inputs = np.array([x], dtype=np.int32)
    else:
        return None
    y = _activation_like(sg, out if quant_of is None else quant_of, shape[:-1] + [hi - lo],
                         f"/part{lo}")
    new.outputs = np.array([y], dtype=np.int32)
    return new, y


def _split_grouped_conv(model, sg, op, parts):
    """A grouped CONV_2D over the concat of `parts` [(tensor, lo, hi)], one conv per part, or
    None when a part is not a whole number of groups."""
    ins = [int(t) for t in op.inputs]
    out = int(op.outputs[0])
    depth = int(sg.tensors[ins[1]].shape[3])
    channels = parts[-1][2]
    out_c = int(sg.tensors[out].shape[3])
    if channels % depth or any(lo % depth or hi % depth for _, lo, hi in parts):
        return None
    per_group = out_c // (channels // depth)
    shape = [int(d) for d in sg.tensors[out].shape]
    result = []
    for x, lo, hi in parts:
        a, b = lo // depth * per_group, hi // depth * per_group
        new = copy.copy(op)
        new.inputs = np.array([x, _sliced_const(model, sg, ins[1], a, b, 0)]
                              + ([_sliced_const(model, sg, ins[2], a, b, 0)]
                                 if len(ins) > 2 and ins[2] >= 0 else []), dtype=np.int32)
        y = _activation_like(sg, out, shape[:-1] + [b - a], f"/part{a}")
        new.outputs = np.array([y], dtype=np.int32)
        result.append((new, y, a, b))
    return result


def _pad_first(sg, kinds, chain: list[int]) -> list[int]:
    """`chain` with each MUL -> PAD pair as PAD -> MUL. Exact: the PAD then pads with the MUL
    input's zero point, which the MUL maps to its output's zero point (a real 0 times the
    constant, inside any fused ReLU/ReLU6 range), the value the PAD wrote before; the MUL then
    runs in place on the padded part and the part's unpadded copy dies one op earlier."""
    out = list(chain)
    for k in range(len(out) - 1):
        if kinds[out[k]] == "MUL" and kinds[out[k + 1]] == "PAD":
            out[k], out[k + 1] = out[k + 1], out[k]
    return out


def _chain(model, sg, kinds, consumers, graph_outputs, start: int) -> list[int]:
    """Ops after the concat writing `start`: per-channel ops, each the single reader (a MUL
    or ADD only with a constant other input)."""
    chain, t = [], start
    while True:
        readers = consumers.get(t, [])
        if len(readers) != 1 or t in graph_outputs:
            return chain
        i = readers[0]
        others = [int(u) for u in sg.operators[i].inputs if int(u) != t]
        if kinds[i] not in _PER_CHANNEL + ("CONV_2D",) or (
                kinds[i] in ("MUL", "ADD")
                and any(_constant(model, sg, u) is None for u in others)):
            return chain
        chain.append(i)
        if kinds[i] == "CONV_2D":
            return chain
        t = int(sg.operators[i].outputs[0])


def _concat_ok(sg, op) -> bool:
    opts = op.builtinOptions
    out = sg.tensors[int(op.outputs[0])]
    return (opts is not None and opts.axis in (3, -1) and opts.fusedActivationFunction == 0
            and len(out.shape) == 4 and out.type == _INT8
            and all(_quant_key(sg.tensors[int(t)]) == _quant_key(out) for t in op.inputs))


def _sink_one(model, sg, kinds, ci: int, chain: list[int], lead: dict):
    """New ops for concat `ci` and its `chain`, or None when a link cannot be split. Parts are
    run one after the other; a part whose producer op is in `lead` ({part: op}, producers read
    only by the concat) goes last, its producer moved just before it."""
    cat = sg.operators[ci]
    parts, lo = [], 0
    for t in cat.inputs:
        c = int(sg.tensors[int(t)].shape[3])
        parts.append((int(t), lo, lo + c))
        lo += c
    final_out = int(sg.operators[chain[-1]].outputs[0])
    chain = _pad_first(sg, kinds, chain)
    stages = []   # per chain op, the per-part ops
    for i in chain:
        op = sg.operators[i]
        if kinds[i] == "CONV_2D":
            split = _split_grouped_conv(model, sg, op, parts)
            if split is None:
                return None
            stages.append([s[0] for s in split])
            parts = [(y, a, b) for _, y, a, b in split]
            continue
        # A PAD keeps its input's quantization (also when moved before a MUL).
        step = [_split_op(model, sg, kinds[i], op, x, a, b, x if kinds[i] == "PAD" else None)
                for x, a, b in parts]
        if any(s is None for s in step):
            return None
        stages.append([s[0] for s in step])
        parts = [(s[1], a, b) for s, (_, a, b) in zip(step, parts)]
    # Part by part (each part's chain to its end before the next one starts): fewer bytes live.
    order = sorted(range(len(parts)), key=lambda p: p in lead)
    new_ops = [op for p in order for op in ([lead[p]] if p in lead else [])
               + [st[p] for st in stages]]
    final = copy.copy(cat)
    final.inputs = np.array([x for x, _, _ in parts], dtype=np.int32)
    final.outputs = np.array([final_out], dtype=np.int32)
    return new_ops + [final]


def _candidates(model) -> dict[int, tuple[list[int], set[int]]]:
    """{concat op: (chain, tensors it writes that splitting removes)} for every concat whose
    chain ends on fewer bytes than the concat writes."""
    sg = model.subgraphs[0]
    kinds = _op_names(model)
    _, consumers = _graph(sg)
    graph_outputs = {int(t) for t in sg.outputs}
    found = {}
    for ci, op in enumerate(sg.operators):
        if kinds[ci] != "CONCATENATION" or not _concat_ok(sg, op):
            continue
        chain = _chain(model, sg, kinds, consumers, graph_outputs, int(op.outputs[0]))
        size = _nbytes(sg, int(op.outputs[0]))
        while chain and _nbytes(sg, int(sg.operators[chain[-1]].outputs[0])) >= size:
            chain.pop()
        if chain:
            found[ci] = (chain, {int(op.outputs[0])}
                         | {int(sg.operators[i].outputs[0]) for i in chain[:-1]})
    return found


def sink_concat(model, *, max_moves: int = 256) -> int:
    """Moves int8 channel concats past the per-channel ops after them (module docstring), one
    at a time, each time the one holding tensors alive at the activation peak, until the peak
    holds none (each split costs TFLM ~64 B per extra op and 24 B per extra tensor, so only
    the concats at the peak are split). Runs on the final operator order (after
    `schedule.memory_order`); the new ops go where the chain's last op was, part by part.
    Returns how many concats were moved."""
    from tfopt.tflite.arena_plan import lifetimes

    sg = model.subgraphs[0]
    tried: set[int] = set()
    moved = 0
    while moved < max_moves:
        life = lifetimes(model)
        n_ops = len(sg.operators)
        live = [sum(s for a, b, s in life.values() if a <= i <= b) for i in range(n_ops)]
        peak = int(np.argmax(live)) if live else 0
        alive = {t for t, (a, b, _) in life.items() if a <= peak <= b}
        pick = next(((ci, chain) for ci, (chain, ts) in _candidates(model).items()
                     if ts & alive and id(sg.operators[ci]) not in tried), None)
        if pick is None:
            break
        ci, chain = pick
        tried.add(id(sg.operators[ci]))
        producer, consumers = _graph(sg)
        lead = {p: producer[int(t)] for p, t in enumerate(sg.operators[ci].inputs)
                if int(t) in producer and consumers.get(int(t)) == [ci]}
        try:
            ops = _sink_one(model, sg, _op_names(model), ci, chain,
                            {p: sg.operators[i] for p, i in lead.items()})
        except KeyError:   # a constant of a type _sliced_const does not slice (e.g. int4)
            ops = None
        if ops is None:
            continue
        drop = {ci, *chain, *lead.values()}
        sg.operators = [o for i, op in enumerate(sg.operators)
                        for o in (ops if i == chain[-1] else [] if i in drop else [op])]
        moved += 1
    if tried:   # a split that failed half way left tensors no op uses
        drop_unused(model)
    return moved
