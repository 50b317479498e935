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
passed on through the reshape-like ops after it, and the int32 bias of every conv reading it is
re-expressed in the new scale.
"""

from __future__ import annotations

import copy

import numpy as np

from tfopt.tflite.rewrite import (
    _PER_TENSOR_OPS, _graph, _grid_followers, _op_names, _rescale_bias_input)

XNNPACK_LIMIT = 256.0
MAX_RATIO = 255.0   # margin for float rounding of the scales


def cap_requant_ratio(model, *, max_ratio: float = MAX_RATIO) -> int:
    """Raises output scales whose requantization ratio reaches `max_ratio` (module
    docstring). Returns how many outputs were changed."""
    sg = model.subgraphs[0]
    kinds = _op_names(model)
    _, consumers = _graph(sg)
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
        followers = _grid_followers(sg, kinds, consumers, out)
        if followers is None:   # a graph output: its scale is the interface
            continue
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
