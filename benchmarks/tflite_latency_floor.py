"""Measured int8/f32 latency floor per variant: what no rewrite of the removable ops can beat.

    python benchmarks/tflite_latency_floor.py --variants=resnet101_v13,vgg19_v08 --width=1.0
    # one process per variant, then one table:
    for v in resnet101_v13 vgg19_v08; do python benchmarks/tflite_latency_floor.py --variants=$v \
        --append=floor.jsonl; done
    python benchmarks/tflite_latency_floor.py --table_from=floor.jsonl

For each variant (random weights with trained-like BatchNormalization, like `tflite_latency.py`;
`--untrained_bn` keeps the fresh model's): the float32 file and the shipped
lean int8 file, and two floors, all times = thread CPU ms, 1 thread, LiteRT default kernels
(XNNPACK), timed interleaved (`tflite_latency.paired_cpu_ms`):

* **bypass floor**: the int8 graph with every op that a rewrite could remove bypassed -- channel
  shuffles (RESHAPE -> TRANSPOSE -> RESHAPE back to the same shape), MULs by a constant (BN after
  a concat), same-shape MAX_POOL_2D (the RELU clamps) -- and every activation put on one common
  quantization (LOGISTIC outputs on 1/256, -128) so that XNNPACK prepares it. A timing-only
  graph: its outputs are meaningless; the common quantization alone does not change the time
  (`int8_common_q` column). Also for the LiteRT-only file (`make_lean(dense_groups=True)`).
* **kernel floor**: the int8 CONV_2D + DEPTHWISE_CONV_2D ops, each timed alone
  (`tfopt.tflite.op_profile`) minus the invoke overhead (the smallest op's alone time), summed,
  over the whole float model's time.

What remains in the bypass graph is what the architecture defines (convs, depthwise, concats,
residual ADDs, PADs, SE blocks). Issue 13 asks int8/f32 <= 0.7; a floor above it shows the
target is out of reach on this CPU whatever happens to the removable ops.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def common_quantization(model) -> None:
    """Every int8 activation on scale 0.05 / zero point 0 (LOGISTIC outputs 1/256, -128)."""
    import numpy as np

    from tfopt.tflite.model_info import _schema
    from tfopt.tflite.rewrite import _op_names

    schema = _schema()
    sg = model.subgraphs[0]
    kinds = _op_names(model)
    logistic = {int(op.outputs[0]) for k, op in zip(kinds, sg.operators) if k == "LOGISTIC"}
    for i, t in enumerate(sg.tensors):
        data = model.buffers[t.buffer].data
        if t.type != schema.TensorType.INT8 or (data is not None and len(data)):
            continue
        q = schema.QuantizationParametersT()
        q.scale = np.array([1 / 256 if i in logistic else 0.05], np.float32)
        q.zeroPoint = np.array([-128 if i in logistic else 0], np.int64)
        t.quantization = q


def _removable(model, sg, kinds, producer, i: int) -> tuple[str, int] | None:
    """(kind, tensor that op i's output is replaced by) when op i ends a removable op."""
    op = sg.operators[i]
    out = int(op.outputs[0])
    shape = lambda t: [int(d) for d in sg.tensors[t].shape]

    def const(t: int) -> bool:
        data = model.buffers[sg.tensors[t].buffer].data
        return data is not None and len(data) > 0

    if kinds[i] == "RESHAPE":
        tr = producer.get(int(op.inputs[0]))
        first = producer.get(int(sg.operators[tr].inputs[0])) if tr is not None and kinds[
            tr] == "TRANSPOSE" else None
        if first is not None and kinds[first] == "RESHAPE":
            src = int(sg.operators[first].inputs[0])
            return ("shuffle", src) if shape(src) == shape(out) else None
    if kinds[i] == "MUL" and const(int(op.inputs[1])) and shape(int(op.inputs[0])) == shape(out):
        return "mul", int(op.inputs[0])
    if kinds[i] == "MAX_POOL_2D" and shape(int(op.inputs[0])) == shape(out):
        return "clamp", int(op.inputs[0])
    return None


def bypass_removable(model) -> dict:
    """Rewires the readers of each removable op to its input and drops the dead ops (module
    docstring). Returns {"shuffle", "mul", "clamp"} counts."""
    import numpy as np

    from tfopt.tflite.rewrite import _graph, _op_names, drop_unused

    sg = model.subgraphs[0]
    kinds = _op_names(model)
    producer, _ = _graph(sg)
    counts = {"shuffle": 0, "mul": 0, "clamp": 0}
    replace = {}
    for i, op in enumerate(sg.operators):
        found = _removable(model, sg, kinds, producer, i)
        if found:
            counts[found[0]] += 1
            replace[int(op.outputs[0])] = found[1]

    def resolve(t: int) -> int:
        while t in replace:
            t = replace[t]
        return t

    for op in sg.operators:
        op.inputs = np.array([resolve(int(t)) if t >= 0 else -1 for t in op.inputs], np.int32)
    sg.outputs = np.array([resolve(int(t)) for t in sg.outputs], np.int32)
    while True:
        read = {int(t) for op in sg.operators for t in op.inputs} | {int(t) for t in sg.outputs}
        live = [op for op in sg.operators if any(int(t) in read for t in op.outputs)]
        if len(live) == len(sg.operators):
            break
        sg.operators = live
    drop_unused(model)
    return counts


def timing_graph(content: bytes, *, bypass: bool) -> tuple[bytes, dict, int]:
    """(common-quantization int8 graph, bypassed when asked; counts; op count)."""
    from tfopt.tflite import lean
    from tfopt.tflite.model_info import _model_object

    model = _model_object(content, "floor")
    common_quantization(model)
    counts = bypass_removable(model) if bypass else {}
    return lean.serialize(model), counts, len(model.subgraphs[0].operators)


def kernel_ms(content: bytes) -> float:
    """Sum over CONV_2D / DEPTHWISE_CONV_2D of (alone ms - smallest op's alone ms)."""
    from tfopt.tflite.op_profile import profile_ops

    timings = profile_ops(content, runs=20)
    overhead = min(t.median_ms for t in timings)
    return sum(t.median_ms - overhead for t in timings if t.op in KERNEL_OPS)


def measure(vid: str, width: float, runs: int, rounds: int, untrained_bn: bool = False) -> dict:
    import numpy as np

    from tflite_latency import paired_cpu_ms
    from tfopt.models import build_model
    from tfopt.models.trained_like import trained_like_batch_norm
    from tfopt.tflite.convert import convert, make_lean

    shape = (32, 32, 3)
    x = np.random.default_rng(0).standard_normal((16,) + shape).astype(np.float32)
    model = build_model(vid, num_classes=10, input_shape=shape, width_multiplier=width)
    if not untrained_bn:
        trained_like_batch_norm(model, seed=0)
    f32 = convert(model, "float32", name=vid).content
    plain = convert(model, "int8", representative_data=x, name=vid, lean=False,
                    fold_bn=True).content
    i8 = make_lean(plain, name=vid)[0]
    dense = make_lean(plain, name=vid, dense_groups=True)[0]
    common, _, ops = timing_graph(i8, bypass=False)
    floor, counts, floor_ops = timing_graph(i8, bypass=True)
    dense_floor = timing_graph(dense, bypass=True)[0]
    names = ("f32", "int8", "int8_common_q", "floor", "floor_dense_groups")
    times = paired_cpu_ms([f32, i8, common, floor, dense_floor], runs=runs, rounds=rounds)
    row = dict(zip(names, times))
    row.update(variant=vid, ops=ops, floor_ops=floor_ops, **counts,
               kernel_int8_ms=kernel_ms(i8), kernel_f32_ms=kernel_ms(f32))
    return row


def print_table(rows: list[dict]) -> None:
    print("| variant | f32 ms | int8 ms (/f32) | int8 ops | bypassed shuffle / mul / clamp | "
          "bypass floor ms (/f32) | same, dense groups (/f32) | int8 conv+dw ms | "
          "f32 conv+dw ms | kernel floor: int8 conv+dw / f32 model |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: r["variant"]):
        f = r["f32"]
        print(f"| {r['variant']} | {f:.3f} | {r['int8']:.3f} ({r['int8'] / f:.2f}) | {r['ops']} "
              f"| {r['shuffle']} / {r['mul']} / {r['clamp']} | {r['floor']:.3f} "
              f"(**{r['floor'] / f:.2f}**) | {r['floor_dense_groups']:.3f} "
              f"({r['floor_dense_groups'] / f:.2f}) | {r['kernel_int8_ms']:.3f} | "
              f"{r['kernel_f32_ms']:.3f} | {r['kernel_int8_ms'] / f:.2f} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", default="resnet101_v13,vgg19_v08", help="comma-separated ids")
    p.add_argument("--width", type=float, default=1.0, help="width_multiplier")
    p.add_argument("--runs", type=int, default=70, help="timed invocations per model (>= 50)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    p.add_argument("--untrained_bn", action="store_true",
                   help="keep the fresh model's BatchNormalization instead of trained-like values")
    p.add_argument("--append", default=None, help="append each row as a JSON line here")
    p.add_argument("--table_from", default=None, help="print the table of an --append file")
    args = p.parse_args(argv)
    if args.runs < 50:
        p.error(f"--runs={args.runs}; need >= 50")
    if args.table_from:
        with open(args.table_from, encoding="utf-8") as f:
            rows = {r["variant"]: r for r in map(json.loads, filter(str.strip, f))}
        print_table(list(rows.values()))
        return 0
    rows = []
    for vid in filter(None, args.variants.split(",")):
        rows.append(measure(vid, args.width, args.runs, args.rounds, args.untrained_bn))
        if args.append:
            with open(args.append, "a", encoding="utf-8") as f:
                f.write(json.dumps(rows[-1]) + "\n")
    print(f"LiteRT {platform.machine()}, {os.cpu_count()} CPUs, 1 thread, width {args.width}\n")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
