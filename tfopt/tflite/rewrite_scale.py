"""Cap a conv's requantization scale below XNNPACK's limit (the "failed to create XNNPACK
runtime" of an unseeded vgg19_v13).

XNNPACK creates an int8 convolution / fully connected operator only when its output scale
ratio input_scale x filter_scale / output_scale is below 256 (per channel); otherwise the
delegate fails to prepare and LiteRT refuses to run the model. The converter calibrates each
output range on the representative data; a conv whose output barely moves there (an untrained
squeeze-excite conv after a MEAN: vgg19_v13 at width 1.0, output scale 7.8e-9 for input scale
7.0e-4 and filter scale 2.8e-3, ratio 246.7 in one random draw) gets a ratio near or past 256
depending on the draw -- in the converter's own file as much as in the lean one. Here such an
output's scale is raised to input x filter scale / `MAX_RATIO` (a coarser grid for values that
the calibration saw as ~constant; the zero point stays, so the old range stays representable),
passed on through the reshape-like ops after it and over every CONCATENATION it feeds (the
concat's other inputs and its output take the same scale: TFLite's int8 concat refuses unequal
ones -- a 89 %-pruned CIFAR-10 resnet101_v13 failed that way), and the int32 bias of every conv
reading it is re-expressed in the new scale.
"""

from __future__ import annotations

import copy

import numpy as np

from tfopt.tflite.rewrite import (
    _PER_TENSOR_OPS, _SAME_QUANT_OPS, MAX_RATIO, _graph, _grid_followers, _op_names,
    _rescale_bias_input, _same_grid)

XNNPACK_LIMIT = 256.0   # MAX_RATIO = 255: margin for float rounding of the scales


def _concat_group(sg, kinds, producer, consumers, start: int) -> list[int] | None:
    """`_grid_followers` of `start`, extended over every int8 CONCATENATION they feed: its
    other inputs and its output must keep one scale with them (TFLite's kernels refuse a concat
    whose input scale differs from its output's). None when that group reaches a graph output,
    or a sibling input not written by a requantizing op (a graph input, a same-grid op), or
    holds two grids. `producer`, `consumers`: `tfopt.tflite.rewrite._graph(sg)`."""
    first = _grid_followers(sg, kinds, consumers, start)
    if first is None:
        return None
    group, todo = list(first), list(first)
    while todo:
        t = todo.pop()
        for c in consumers.get(t, ()):
            if kinds[c] != "CONCATENATION":
                continue
            cat = sg.operators[c]
            for u in [int(v) for v in cat.inputs] + [int(cat.outputs[0])]:
                if u in group:
                    continue
                if u != int(cat.outputs[0]):
                    p = producer.get(u)
                    if p is None or kinds[p] in _SAME_QUANT_OPS or kinds[p] == "CONCATENATION":
                        return None
                more = _grid_followers(sg, kinds, consumers, u)
                if more is None:
                    return None
                new = [m for m in more if m not in group]
                group += new
                todo += new
    q0 = sg.tensors[start].quantization
    if any(not _same_grid(sg.tensors[t].quantization, q0) for t in group):
        return None
    return group


def cap_requant_ratio(model, *, max_ratio: float = MAX_RATIO) -> int:
    """Raises output scales whose requantization ratio reaches `max_ratio` (module
    docstring). Returns how many outputs were changed."""
    sg = model.subgraphs[0]
    kinds = _op_names(model)
    producer, consumers = _graph(sg)
    done = 0
    for i, op in enumerate(sg.operators):
        if kinds[i] not in _PER_TENSOR_OPS or len(op.inputs) < 2:
            continue
        x, w, y = (sg.tensors[int(t)] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
        qs = [t.quantization for t in (x, w, y)]
        if any(q is None or q.scale is None or not len(q.scale) for q in qs):
            continue
        ratio = float(qs[0].scale[0]) * float(np.max(qs[1].scale)) / float(qs[2].scale[0])
        if ratio < max_ratio + 0.5:   # (a capped one stays at ~max_ratio: left alone)
            continue
        out = int(op.outputs[0])
        followers = _concat_group(sg, kinds, producer, consumers, out)
        if followers is None:   # a graph output (its scale is the interface), or a concat
            continue            # sibling whose scale cannot move with it
        old = float(qs[2].scale[0])
        q = copy.deepcopy(qs[2])
        q.scale = np.array([old * ratio / max_ratio], dtype=np.float32)
        for t in followers:
            sg.tensors[t].quantization = copy.deepcopy(q)
            for c in consumers.get(t, ()):
                _rescale_bias_input(model, sg, sg.operators[c], kinds[c], t,
                                    old / float(q.scale[0]))
        done += 1
    return done
