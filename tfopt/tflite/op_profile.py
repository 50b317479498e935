"""Per-operator LiteRT latency: each operator timed alone, as a one-op model.

The `ai-edge-litert` wheel has no Python hook into LiteRT's op profiler (that lives in the
C++ `benchmark_model --enable_op_profiling` binary, not on PyPI), so the profile is measured
the way that profiler attributes time: every operator of subgraph 0 is cut out into its own
model (its constant inputs kept, its other inputs made graph inputs), run by the default
LiteRT kernels (XNNPACK where it takes the op, batch 1, `num_threads`) and timed as the calling
thread's CPU time (with `num_threads=1` every kernel runs in it; waiting for a core on a shared
machine does not count, wall time did). The
per-op medians add up to a little more than the whole model's latency (each op pays its own
invoke overhead); their shares per op type say where the time goes.

`delegated` tells whether XNNPACK took the op (the one-op model gets a DELEGATE node): an
op that falls off XNNPACK runs LiteRT's builtin kernel and splits the delegated graph.
"""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np

from tfopt.tflite.model_info import _builtin_names, _model_object, _schema, read_bytes

_NUMPY_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64,
                6: np.bool_, 7: np.int16, 9: np.int8}


@dataclasses.dataclass(frozen=True)
class OpTiming:
    """One operator's latency alone: index in the graph, builtin name, median ms, XNNPACK."""

    index: int
    op: str
    median_ms: float
    delegated: bool


def _one_op_model(model, op_index: int):
    """A ModelT holding only operator `op_index` of subgraph 0 (shares the tensor objects)."""
    schema = _schema()
    sg = model.subgraphs[0]
    op = sg.operators[op_index]
    used = [t for t in list(op.inputs) + list(op.outputs) if t >= 0]
    order = list(dict.fromkeys(used))
    remap = {t: i for i, t in enumerate(order)}
    buffers = [schema.BufferT()]
    tensors, inputs = [], []
    for t in order:
        tensor = copy.copy(sg.tensors[t])
        data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
        if data is not None and len(data):
            buffers.append(model.buffers[tensor.buffer])
            tensor.buffer = len(buffers) - 1
        else:
            tensor.buffer = 0
            if t not in op.outputs:
                inputs.append(remap[t])
        tensors.append(tensor)
    new_op = copy.copy(op)
    new_op.inputs = np.array([remap[t] if t >= 0 else -1 for t in op.inputs], dtype=np.int32)
    new_op.outputs = np.array([remap[t] for t in op.outputs], dtype=np.int32)
    new_sg = schema.SubGraphT()
    new_sg.tensors, new_sg.operators = tensors, [new_op]
    new_sg.inputs = np.array(inputs, dtype=np.int32)
    new_sg.outputs = np.array([remap[t] for t in op.outputs], dtype=np.int32)
    one = schema.ModelT()
    one.version, one.operatorCodes = model.version, model.operatorCodes
    one.subgraphs, one.buffers = [new_sg], buffers
    return one


def _time_model(content: bytes, runs: int, num_threads: int) -> tuple[float, bool]:
    from ai_edge_litert import interpreter as litert

    interp = litert.Interpreter(model_content=content, num_threads=num_threads)
    interp.allocate_tensors()
    delegated = any(d["op_name"] == "DELEGATE" for d in interp._get_ops_details())
    rng = np.random.default_rng(0)
    for detail in interp.get_input_details():
        dtype = np.dtype(detail["dtype"])
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            x = rng.integers(max(info.min, -128), min(info.max, 127) + 1, detail["shape"])
        else:
            x = rng.standard_normal(detail["shape"])
        interp.set_tensor(detail["index"], x.astype(dtype))
    interp.invoke()
    times = []
    for _ in range(runs):
        t0 = time.thread_time()   # CPU time of this thread (1 thread: the kernels run here)
        interp.invoke()
        times.append(time.thread_time() - t0)
    return float(np.median(times) * 1e3), delegated


def profile_ops(model, *, runs: int = 10, num_threads: int = 1,
                name: str = "<bytes>") -> list[OpTiming]:
    """Times every operator of subgraph 0 alone (see module docstring).

    Args:
      model: Path or bytes of a .tflite model.
      runs: Timed invocations per operator (median reported), after one warm-up.

    Returns:
      One `OpTiming` per operator, in graph order.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    obj = _model_object(read_bytes(model, name=name), name)
    names = _builtin_names()
    out = []
    for i, op in enumerate(obj.subgraphs[0].operators):
        code = obj.operatorCodes[op.opcodeIndex]
        op_name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        one = bytes(flatbuffer_utils.convert_object_to_bytearray(_one_op_model(obj, i)))
        ms, delegated = _time_model(one, runs, num_threads)
        out.append(OpTiming(i, op_name, ms, delegated))
    return out


def share_by_type(timings: list[OpTiming]) -> dict[str, dict]:
    """{op type: {"count", "ms", "share", "delegated"}} sorted by time, share of the op sum."""
    total = sum(t.median_ms for t in timings) or 1.0
    by: dict[str, dict] = {}
    for t in timings:
        row = by.setdefault(t.op, {"count": 0, "ms": 0.0, "delegated": 0})
        row["count"] += 1
        row["ms"] += t.median_ms
        row["delegated"] += int(t.delegated)
    for row in by.values():
        row["share"] = row["ms"] / total
        row["ms"] = round(row["ms"], 4)
    return dict(sorted(by.items(), key=lambda kv: -kv[1]["ms"]))
