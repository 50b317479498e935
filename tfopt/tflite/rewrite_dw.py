"""int8 DEPTHWISE_CONV_2D with depth_multiplier M > 1 -> channel replication + multiplier 1.

Why (measured, LiteRT XNNPACK, 1 thread, vgg19_v08 at width 1.0, 16 such ops: fire expand
3x3 as depthwise with M = 4): the int8 ops took 1.77 ms against 0.21 ms in float32; with M = 1
XNNPACK runs its int8 depthwise microkernels. out[c*M + m] = sum_k w[k, c*M + m] * x[c] is a
multiplier-1 depthwise on x'[c*M + m] = x[c], with the same filter bytes, bias and
quantization. x' is made by a 1x1 CONV_2D with one-hot int8 weights (1 at [c*M + m, c]), weight
scale 1.0, zero bias, and x's quantization on its output: the requantization multiplier is
s_x * 1.0 / s_x = 1.0 exactly (2^30 with shift 1 in TFLite's fixed point; 1.0 in XNNPACK's
float requantization), so x' copies x bit for bit in every runtime.
"""

from __future__ import annotations

import copy

import numpy as np

from tfopt.tflite.model_info import _schema
from tfopt.tflite.rewrite import _activation_like, _become, _const, _op_names


def _replicate_op(model, sg, x: int, m: int):
    """(1x1 CONV_2D op writing x' = x with each channel repeated m times, x' tensor index)."""
    schema = _schema()
    xt = sg.tensors[x]
    c = int(xt.shape[-1])
    w = np.zeros((c * m, 1, 1, c), dtype=np.int8)
    w[np.arange(c * m), 0, 0, np.arange(c * m) // m] = 1
    w_t = _const(model, sg, w, schema.TensorType.INT8, "dw_multiplier/replicate", 1.0)
    b_t = _const(model, sg, np.zeros(c * m, np.int32), schema.TensorType.INT32,
                 "dw_multiplier/bias", float(xt.quantization.scale[0]))
    xr = _activation_like(sg, x, list(xt.shape[:-1]) + [c * m], "/replicated")
    opts = schema.Conv2DOptionsT()
    opts.padding = schema.Padding.VALID
    opts.strideW = opts.strideH = opts.dilationWFactor = opts.dilationHFactor = 1
    op = schema.OperatorT()
    _become(model, op, "CONV_2D", "Conv2DOptions", opts)
    op.inputs = np.array([x, w_t, b_t], dtype=np.int32)
    op.outputs = np.array([xr], dtype=np.int32)
    return op, xr


def depthwise_multiplier_one(model) -> int:
    """Rewrites each int8 DEPTHWISE_CONV_2D with depth_multiplier > 1 on a per-tensor-quantized
    4-D input as replication + multiplier 1 (module docstring). Returns how many."""
    schema = _schema()
    sg = model.subgraphs[0]
    kinds = _op_names(model)
    out, done = [], 0
    for i, op in enumerate(sg.operators):
        opts = op.builtinOptions
        x = int(op.inputs[0])
        xt = sg.tensors[x]
        q = xt.quantization
        if (kinds[i] != "DEPTHWISE_CONV_2D" or opts is None or opts.depthMultiplier <= 1
                or xt.type != schema.TensorType.INT8 or len(xt.shape) != 4
                or q is None or q.scale is None or len(q.scale) != 1):
            out.append(op)
            continue
        rep, xr = _replicate_op(model, sg, x, int(opts.depthMultiplier))
        op.builtinOptions = copy.copy(opts)
        op.builtinOptions.depthMultiplier = 1
        op.inputs = np.array([xr] + [int(t) for t in op.inputs[1:]], dtype=np.int32)
        out += [rep, op]
        done += 1
    sg.operators = out
    return done
