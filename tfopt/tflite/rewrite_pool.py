"""int8 MUL by a non-negative per-channel gate, then MAX_POOL_2D -> the pool first, bit-identical.

In the squeeze-excite VGG variants (vgg19_v11, v12) the last block of each stage ends with the
SE gate, out = x * g[c] with g = sigmoid(...) >= 0, and the stage's 2x2 max pool reads it. Since
the gate is one non-negative factor per channel, max-pooling first and gating the 4x smaller map
gives the same result: max(g x_1, ..., g x_4) = g max(x_1, ..., x_4).

This holds exactly in int8 too. The MUL's integer output q_y = clamp(round(m (q_x - z_x)
(q_g - z_g)) + z_y), with m > 0, is a non-decreasing function of q_x when q_g >= z_g, in
LiteRT's reference kernels, in XNNPACK (float requantization) and in TFLite Micro (fixed-point
multiplier): it commutes with max. This is required here as the gate's zero point being int8's
minimum (-128, LOGISTIC's fixed output quantization), so that no gate value lies below it. The
pool then runs on x's quantization (an int8 max pool keeps its input's), and the MUL writes the
pool's old output tensor. A RELU fused into the pool is also exact: the clamp at z_x before the
MUL gives the clamp at z_y after it. Outputs are bit-identical on every runtime and the file
keeps its ops and bytes. The MUL does 1/4 of the work; measured on vgg19_v11 (LiteRT, 1 thread,
each op alone): 32x32x64 int8 MUL 17.4 us, more than twice its float32 time.
"""

from __future__ import annotations

import numpy as np

from tfopt.tflite.rewrite import _INT8, _activation_like, _graph, _op_names, _zero_point

_NO_ACTIVATION, _RELU = 0, 1


def _gated_input(sg, mul) -> tuple[int, int] | None:
    """(position of x in the MUL's inputs, x) when MUL(x, g) has a per-channel gate g ([C],
    [1, C] or [1, 1, 1, C]) with zero point -128 and an x of the output's shape (module
    docstring), else None."""
    if len(mul.inputs) != 2 or mul.builtinOptions is None:
        return None
    if mul.builtinOptions.fusedActivationFunction != _NO_ACTIVATION:
        return None
    y = sg.tensors[int(mul.outputs[0])]
    for pos in (0, 1):
        x, g = (sg.tensors[int(t)] for t in (mul.inputs[pos], mul.inputs[1 - pos]))
        g_shape = [int(d) for d in g.shape]
        if (x.type == g.type == y.type == _INT8 and _zero_point(x) is not None
                and _zero_point(g) == -128 and _zero_point(y) is not None
                and [int(d) for d in x.shape] == [int(d) for d in y.shape]
                and 1 <= len(g_shape) <= 4 and g_shape[-1] == int(y.shape[-1])
                and int(np.prod(g_shape)) == g_shape[-1]):
            return pos, int(mul.inputs[pos])
    return None


def gate_after_max_pool(model) -> int:
    """Moves each int8 MUL by a non-negative per-channel gate after the MAX_POOL_2D that alone
    reads it (module docstring). Returns how many were moved."""
    sg = model.subgraphs[0]
    kinds = _op_names(model)
    producer, consumers = _graph(sg)
    outputs = {int(t) for t in sg.outputs}
    done = 0
    for p, pool in enumerate(sg.operators):
        if kinds[p] != "MAX_POOL_2D" or pool.builtinOptions is None:
            continue
        opts = pool.builtinOptions
        if opts.fusedActivationFunction not in (_NO_ACTIVATION, _RELU):
            continue
        if opts.filterWidth * opts.filterHeight == 1 and opts.strideW * opts.strideH == 1:
            continue   # a 1x1 clamp (tfopt.tflite.rewrite.relu_as_max_pool): nothing to gain
        y = int(pool.inputs[0])
        m = producer.get(y)
        if m is None or kinds[m] != "MUL" or y in outputs or len(consumers.get(y, [])) != 1:
            continue
        mul = sg.operators[m]
        found = _gated_input(sg, mul)
        if found is None:
            continue
        pos, x = found
        out = int(pool.outputs[0])
        pooled = _activation_like(sg, x, [int(d) for d in sg.tensors[out].shape], "/pooled")
        pool.inputs = np.array([x], dtype=np.int32)
        pool.outputs = np.array([pooled], dtype=np.int32)
        mul.inputs = np.array([pooled if k == pos else int(t) for k, t in enumerate(mul.inputs)],
                              dtype=np.int32)
        mul.outputs = np.array([out], dtype=np.int32)
        sg.operators[m], sg.operators[p] = pool, mul   # the pool now runs where the MUL did
        done += 1
    return done
