"""Explain a .tflite file: where its bytes go, which ops it runs, where the time and RAM go.

    python -m tfopt.tflite inspect MODEL.tflite [--format=json] [--no_profile] [--no_micro]
    result = tfopt.tflite.inspect.inspect_tflite("m.tflite"); result.to_dict()

Bytes by category (they add up to the file size), measured by re-serializing the model
without each category with tfopt's sharing serializer (`tfopt/tflite/lean.py`):
  weights       constant tensor data (int8 weights, int32 biases, shape constants)
  quantization  scale / zero-point vectors and their tables
  strings       tensor names, description, subgraph and signature names
  metadata      metadata buffers (tfopt JSON, converter entries)
  structure     everything else: tensor and operator tables, shapes, options, vtables
  duplicates    copies of equal vectors/tables that sharing would remove (0 for a lean file)

Arena: the TFLM recording allocator's total when `tflite-micro` is installed, and the
liveness peak in operator order (sum of the non-constant tensors alive at one operator,
16-byte aligned): the activation memory any planner needs at least. The tensors alive at that
peak are listed by name (from NAME.names.json next to the file when the names were stripped).
The arena is broken down by part (head, per-op, per-tensor, kernel data with its per-channel
requantization arrays, the rest of the tail; `micro.arena_breakdown_of`); with an offline plan
(`tfopt.tflite.arena_plan`) the head can be below the liveness peak (in-place ADD/MUL).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import pathlib

from tfopt.tflite import lean
from tfopt.tflite.model_info import _builtin_names, _model_object, inspect_model, read_bytes

_ARENA_PARTS = ("head", "node_and_registration", "eval_tensors", "kernel_data",
                "persistent_tensors", "other_tail")
_INTEGER = {"int8", "int16", "int32", "uint8", "int64", "bool"}


@dataclasses.dataclass(frozen=True)
class InspectResult:
    """What `inspect_tflite` found (bytes in B, latency in ms, arena in B).

    Attributes:
      name: File or model name.
      size_bytes: File size.
      bytes_by_category: {weights, quantization, strings, metadata, structure, duplicates}.
      num_ops / num_tensors: Operators and tensors of subgraph 0.
      op_counts: {op type: count}, most frequent first.
      int8_coverage: Fraction of operators whose tensors are all integer.
      float_ops: "OP#index" of the operators touching a float tensor.
      per_channel_tensors: Tensors with per-channel quantization (one scale per channel).
      latency_by_op: {op type: {count, ms, share, delegated}} from `op_profile` (None if skipped).
      arena_bytes: TFLM arena from the recording allocator (None without tflite-micro).
      arena_breakdown: That arena by part (`micro.arena_breakdown_of`: head, node_and_registration,
        eval_tensors, kernel_data, persistent_tensors, other_tail), plus requant_arrays, the
        part of kernel_data that is conv/depthwise output multipliers and shifts (2 x 4 B per
        output channel, 16-byte aligned, allocated also for per-tensor weights), and
        offline_plan (whether the file carries a TFLM offline arena plan); None without TFLM.
      peak_bytes: Liveness peak of the activation tensors in operator order.
      peak_op: "OP#index" at the peak.
      peak_tensors: [{"index", "name", "shape", "bytes"}] alive at the peak, largest first.
    """

    name: str
    size_bytes: int
    bytes_by_category: dict
    num_ops: int
    num_tensors: int
    op_counts: dict
    int8_coverage: float
    float_ops: list
    per_channel_tensors: int
    latency_by_op: dict | None
    arena_bytes: int | None
    arena_breakdown: dict | None
    peak_bytes: int
    peak_op: str
    peak_tensors: list

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _size(model) -> int:
    return len(lean.serialize(model))


def _contents(buffer) -> bytes:
    """A buffer's data bytes (b"" for an empty buffer)."""
    return b"" if buffer.data is None else bytes(bytearray(buffer.data))


def bytes_by_category(content: bytes, *, name: str = "<bytes>") -> dict[str, int]:
    """Bytes per category (module docstring); the values add up to `len(content)`."""
    model = _model_object(content, name)
    meta_buffers = {m.buffer for m in model.metadata or []}
    # a lean file writes equal buffer contents once (lean.serialize shares vectors), so each
    # distinct content counts once: else shared one-hot filters / zero biases counted twice
    # made "structure" negative (CIFAR-10 vgg19_v08: weights 324,988 B in a 206,760 B file)
    contents = [_contents(b) for b in model.buffers]
    metadata = sum(len(c) for i, c in enumerate(contents) if i in meta_buffers)
    weights = sum(len(c) for c in {c for i, c in enumerate(contents) if i not in meta_buffers})
    shared = _size(model)
    lean.strip_names(model)
    model.subgraphs[0].name = None
    for sg in model.subgraphs:
        for t in sg.tensors:
            t.name = None
    for sig in model.signatureDefs or []:
        sig.signatureKey = None
        for tmap in list(sig.inputs or []) + list(sig.outputs or []):
            tmap.name = None
    no_strings = _size(model)
    for sg in model.subgraphs:
        for t in sg.tensors:
            t.quantization = None
    no_quant = _size(model)
    return {"weights": weights, "quantization": no_strings - no_quant,
            "strings": shared - no_strings, "metadata": metadata,
            "structure": no_quant - weights - metadata, "duplicates": len(content) - shared}


def requant_array_bytes(model) -> int:
    """Bytes TFLM's CONV_2D / DEPTHWISE_CONV_2D kernels allocate for per-channel output
    multiplier + shift: 2 x align16(4 B x output channels) per op, whatever the weights'
    quantization (measured: a 16-channel conv's kernel data is 124 + 2 x 64 B)."""
    from tfopt.tflite.rewrite import _op_names

    sg = model.subgraphs[0]
    total = 0
    for op, kind in zip(sg.operators, _op_names(model)):
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            channels = int(sg.tensors[op.outputs[0]].shape[-1])
            total += 2 * ((4 * channels + 15) // 16 * 16)
    return total


def _sidecar_names(path) -> list[str] | None:
    if path is None:
        return None
    side = pathlib.Path(path).with_suffix("").with_suffix(".names.json")
    if not side.is_file():
        return None
    try:
        return json.loads(side.read_text())["subgraphs"][0]["tensors"]
    except (ValueError, KeyError, IndexError):
        return None


def liveness_peak(model, names: list[str] | None = None) -> tuple[int, int, list[dict]]:
    """(peak bytes, op index at the peak, tensors alive there) for subgraph 0 in op order."""
    from tfopt.tflite.arena_plan import lifetimes, peak_of

    sg = model.subgraphs[0]
    life = lifetimes(model)
    def nbytes(t):
        return life[t][2]
    best, best_op = peak_of(life, len(sg.operators))
    alive = sorted((t for t, (a, b, _) in life.items() if a <= best_op <= b), key=nbytes,
                   reverse=True)
    def tname(t):
        raw = sg.tensors[t].name
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
        return text or (names[t] if names and t < len(names) else f"tensor {t}")
    tensors = [{"index": t, "name": tname(t), "shape": [int(d) for d in sg.tensors[t].shape],
                "bytes": nbytes(t)} for t in alive]
    return best, best_op, tensors


def inspect_tflite(model: str | os.PathLike | bytes, *, profile: bool = True,
                   micro: bool = True, runs: int = 10, name: str | None = None,
                   tensor_names: list[str] | None = None) -> InspectResult:
    """Bytes by category, op counts, int8 coverage, per-op latency share, arena and its peak.

    Args:
      model: Path or bytes of a .tflite model.
      profile: Time every operator alone with LiteRT (`op_profile`; ~10 ms per op).
      micro: Measure the TFLM arena (skipped when tflite-micro is not installed).
      runs: Timed invocations per operator for the profile.
      tensor_names: Names of the tensors by index for a file whose names were stripped
        (default: NAME.names.json next to a path).

    Raises:
      ValueError: (one line) missing file, not a TFLite model, or a corrupt one.
    """
    path = None if isinstance(model, (bytes, bytearray, memoryview)) else os.fspath(model)
    where = name or path or "<bytes>"
    content = read_bytes(model, name=where)
    info = inspect_model(content, name=where)
    obj = _model_object(content, where)
    sg = obj.subgraphs[0]
    counts = collections.Counter(op.name for op in info.operators)
    float_ops = [f"{op.name}#{op.index}" for op in info.float_ops()]
    per_channel = sum(1 for t in sg.tensors if t.quantization is not None
                      and t.quantization.scale is not None and len(t.quantization.scale) > 1)
    latency = None
    if profile:
        from tfopt.tflite import op_profile

        latency = op_profile.share_by_type(op_profile.profile_ops(content, runs=runs, name=where))
    arena = breakdown = None
    if micro and info.outputs and info.outputs[0].dtype == "int8":
        from tfopt.tflite import arena_plan
        from tfopt.tflite import micro as tflm

        if tflm.micro_available():
            breakdown = tflm.arena_breakdown(content, name=where)
            breakdown["requant_arrays"] = requant_array_bytes(obj)
            breakdown["offline_plan"] = arena_plan.has_plan(obj)
            arena = breakdown["total"]
    peak, peak_op, tensors = liveness_peak(obj, tensor_names or _sidecar_names(path))
    op_name = info.operators[peak_op].name if info.operators else "-"
    n_ops = len(info.operators) or 1
    return InspectResult(
        name=where, size_bytes=len(content), bytes_by_category=bytes_by_category(content, name=where),
        num_ops=len(info.operators), num_tensors=len(sg.tensors), op_counts=dict(counts.most_common()),
        int8_coverage=round(1 - len(float_ops) / n_ops, 4), float_ops=float_ops,
        per_channel_tensors=per_channel, latency_by_op=latency, arena_bytes=arena,
        arena_breakdown=breakdown,
        peak_bytes=peak, peak_op=f"{op_name}#{peak_op}", peak_tensors=tensors)


def format_text(r: InspectResult) -> str:
    """Human-readable report of an `InspectResult`."""
    lines = [f"{r.name}: {r.size_bytes:,} B, {r.num_ops} ops, {r.num_tensors} tensors, "
             f"int8 coverage {r.int8_coverage:.0%}, {r.per_channel_tensors} per-channel tensors",
             "bytes by category:"]
    lines += [f"  {k:<13}{v:>12,} B  {v / max(r.size_bytes, 1):6.1%}"
              for k, v in r.bytes_by_category.items()]
    lines.append("ops: " + ", ".join(f"{k} {v}" for k, v in r.op_counts.items()))
    if r.float_ops:
        lines.append("float ops: " + ", ".join(r.float_ops[:20]))
    if r.latency_by_op:
        lines.append("LiteRT latency by op type (each op timed alone, 1 thread):")
        lines += [f"  {k:<20}{v['count']:>4} ops {v['ms']:>8.3f} ms {v['share']:6.1%}  "
                  f"XNNPACK {v['delegated']}/{v['count']}" for k, v in r.latency_by_op.items()]
    arena = "n/a (tflite-micro not installed)" if r.arena_bytes is None else f"{r.arena_bytes:,} B"
    lines.append(f"TFLM arena: {arena}; activation peak {r.peak_bytes:,} B at {r.peak_op}:")
    lines += [f"  {t['bytes']:>9,} B  {t['shape']}  {t['name'][:90]}" for t in r.peak_tensors]
    if r.arena_breakdown:
        b = r.arena_breakdown
        lines.append(f"TFLM arena by part ({'offline' if b['offline_plan'] else 'online'} plan):")
        lines += [f"  {k:<22}{b[k]:>10,} B" for k in _ARENA_PARTS if k in b]
        lines.append(f"    of which requant_arrays {b['requant_arrays']:>8,} B (conv/depthwise "
                     "multiplier + shift per output channel)")
    return "\n".join(lines)
