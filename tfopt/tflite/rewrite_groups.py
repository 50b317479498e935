"""int8 grouped CONV_2D -> dense CONV_2D with block-diagonal filter (opt-in, LiteRT only).

Why (measured, LiteRT XNNPACK, 1 thread, AVX-512 VNNI x86, chains of 20 1x1 convs + ReLU):
XNNPACK's int8 convolution costs ~16 ns per output pixel and group whatever the channel
count, so a grouped int8 conv at 32x32 takes ~70 us with 4 groups against ~16 us dense (c=16
and c=64 alike), while float32 grouped convs are cheap (c=16, groups=4: int8/f32 5.9; dense
c=16: 3.4; c=64 dense: 0.33). Filling the other groups' weights with zeros gives the same
integer accumulator, hence bit-identical outputs, for (groups - 1) x the layer's weight bytes
and groups x its MACs. A layer is rewritten when its output pixels are at least
`min_pixels_per_weight` x its (grouped) weight count: large activations, few weights, where
XNNPACK's per-pixel cost dominates and the extra flash is small (resnet101_v13 at width 1.0:
8 layers, +3,264 B, int8 2.24 -> 1.80 ms against float 1.21 ms).

Opt-in (`make_lean(dense_groups=True)`): on a microcontroller TFLM runs the dense filter at
groups x the MACs of the grouped one, so the shipped default keeps the grouped convs.
"""

from __future__ import annotations

import numpy as np

from tfopt.tflite.model_info import _schema
from tfopt.tflite.rewrite import _input_uses, _op_names, _private_input

MIN_PIXELS_PER_WEIGHT = 1.0


def dense_groups(model, *, min_pixels_per_weight: float = MIN_PIXELS_PER_WEIGHT) -> dict:
    """Rewrites eligible grouped int8 CONV_2D ops as dense ones (module docstring).

    Returns:
      {"layers": how many were rewritten, "extra_weight_bytes": int8 filter bytes added}.
    """
    sg = model.subgraphs[0]
    kinds = _op_names(model)
    uses = _input_uses(sg)
    done = extra = 0
    for i, op in enumerate(sg.operators):
        if kinds[i] != "CONV_2D" or len(op.inputs) < 2 or uses[int(op.inputs[1])] != 1:
            continue
        x, w = sg.tensors[int(op.inputs[0])], sg.tensors[int(op.inputs[1])]
        y = sg.tensors[int(op.outputs[0])]
        buf = model.buffers[w.buffer]
        if (w.type != _schema().TensorType.INT8 or len(w.shape) != 4 or buf.data is None
                or not len(buf.data)):
            continue
        o, kh, kw, fin = (int(d) for d in w.shape)
        cin = int(x.shape[-1])
        groups = cin // fin
        pixels = int(np.prod([int(d) for d in y.shape[1:3]]))
        if groups <= 1 or cin % fin or o % groups or pixels < min_pixels_per_weight * w_size(w):
            continue
        wq = np.frombuffer(np.asarray(buf.data, np.uint8).tobytes(), np.int8).reshape(
            o, kh, kw, fin)
        dense = block_diagonal(wq, cin)
        w = sg.tensors[_private_input(model, sg, op, 1)]  # a buffer shared with another tensor
        model.buffers[w.buffer].data = np.frombuffer(dense.tobytes(), np.uint8)
        w.shape = np.array(dense.shape, np.int32)
        done += 1
        extra += dense.size - wq.size
    return {"layers": done, "extra_weight_bytes": extra}


def block_diagonal(wq: np.ndarray, cin: int) -> np.ndarray:
    """A grouped int8 filter [O, kh, kw, cin / groups] as the dense [O, kh, kw, cin] one that
    computes the same accumulators: group g's filter rows read input channels
    g * fin .. (g + 1) * fin - 1, zeros elsewhere."""
    o, kh, kw, fin = wq.shape
    groups, per = cin // fin, o // (cin // fin)
    dense = np.zeros((o, kh, kw, cin), wq.dtype)
    for g in range(groups):
        dense[g * per:(g + 1) * per, :, :, g * fin:(g + 1) * fin] = wq[g * per:(g + 1) * per]
    return dense


def w_size(tensor) -> int:
    """Elements of a tensor (its shape's product)."""
    return int(np.prod([int(d) for d in tensor.shape]))
