"""int8 MUL by a per-channel constant, then ADD of one -> one 1x1 DEPTHWISE_CONV_2D (LiteRT files).

A BatchNormalization that the converter cannot fold into a conv (DiCE's BN after the concat of
its channel-, height- and width-wise branches, whose height/width parts come through a
transpose) is left as y = a[c] * x + b[c]: an int8 MUL by a
constant [C] vector, then an int8 ADD of another. XNNPACK's int8 binary kernels with a
broadcast operand are slow on x86 (measured on an AVX2 EPYC, LiteRT 1 thread, each op alone):
MUL + ADD at 32x32x24 take 18.3 us in int8 against 11.1 us in float32, while the same affine map
as one 1x1 DEPTHWISE_CONV_2D with a bias takes 9.3 us in int8 (32x32x64: 29.4 -> 16.6 us).

Math: the MUL's constant holds a[c] = s_a (q_a[c] - z_a) and the ADD's b[c] = s_b (q_b[c] - z_b)
(real values as the converter quantized them). The depthwise filter represents a[c] exactly:
per tensor as q_a - z_a with scale s_a when every value fits int8's [-127, 127], otherwise per
channel as +-127 with scale |a[c]| / 127; the int32 bias is b[c] / (s_x s_w[c]) rounded, an
error of at most 1/254 of the product's step. The result is rounded once, into the ADD's output
quantization (MUL then ADD rounded twice), so outputs may differ from the converter's graph by
1 LSB, towards the float result; the ADD's fused activation carries over. TFLite Micro runs the
depthwise with the requantization LiteRT's reference kernels use (0 LSB, tests). Each pair costs
flash: 4 B per channel for the int32 bias instead of an int8 vector, and a scale and zero point
per channel for filter and bias where the filter must be per channel (vgg19_v13 +4.7 KB,
resnet101_v15 +68 KB at full width), so it is on only for `--target=litert`
(`make_lean(affine_as_depthwise=True)`).
"""

from __future__ import annotations

import numpy as np

from tfopt.tflite.model_info import _schema
from tfopt.tflite.rewrite import (_INT8, _become, _const, _constant, _graph, _input_uses,
                                  _op_names, _zero_point)


def _quantization(scales: np.ndarray, axis: int):
    """Symmetric (zero point 0) int8/int32 quantization with `scales` along `axis`."""
    q = _schema().QuantizationParametersT()
    q.scale = np.asarray(scales, np.float32)
    q.zeroPoint = np.zeros(len(q.scale), dtype=np.int64)
    q.quantizedDimension = axis
    return q


def _channel_constant(model, sg, t: int, channels: int) -> np.ndarray | None:
    """Real values [channels] of an int8 constant of shape [C], [1, C] or [1, 1, 1, C] (per
    tensor), or None when `t` is not one."""
    tensor = sg.tensors[t]
    data = _constant(model, sg, t)
    shape = [int(d) for d in tensor.shape]
    zero = _zero_point(tensor)
    if (data is None or tensor.type != _INT8 or zero is None or not shape
            or shape[-1] != channels or int(np.prod(shape)) != channels):
        return None
    return (data.view(np.int8).astype(np.float64) - zero) * float(tensor.quantization.scale[0])


def _filter(model, sg, mul_const: int, a: np.ndarray) -> int:
    """The [1, 1, 1, C] int8 filter tensor that represents a[c] exactly (module docstring)."""
    schema = _schema()
    q = sg.tensors[mul_const].quantization
    centred = (_constant(model, sg, mul_const).view(np.int8).astype(np.int64)
               - _zero_point(sg.tensors[mul_const]))
    if np.all(np.abs(centred) <= 127):
        values, scales = centred, np.array([float(q.scale[0])])
    else:
        values = np.where(a < 0, -127, np.where(a > 0, 127, 0))
        scales = np.where(a != 0, np.abs(a) / 127.0, float(q.scale[0]))
    w = _const(model, sg, values.astype(np.int8).reshape(1, 1, 1, -1), schema.TensorType.INT8,
               "affine_as_depthwise/filter")
    sg.tensors[w].quantization = _quantization(scales, axis=3)
    return w


def _bias(model, sg, x: int, w: int, b: np.ndarray) -> int:
    """int32 bias [C] = b / (input scale x filter scale), per tensor or per channel as the
    filter is."""
    schema = _schema()
    w_scales = np.asarray(sg.tensors[w].quantization.scale, np.float64)
    b_scales = w_scales * float(sg.tensors[x].quantization.scale[0])
    units = np.round(b / np.broadcast_to(b_scales, b.shape))
    t = _const(model, sg, np.clip(units, -2**31, 2**31 - 1).astype(np.int32),
               schema.TensorType.INT32, "affine_as_depthwise/bias")
    sg.tensors[t].quantization = _quantization(b_scales, axis=0)
    return t


def _affine_pair(model, sg, kinds, consumers, uses, outputs, i: int):
    """(x, a, mul constant, ADD op index, b) when op i is MUL(x, a[c]) read only by ADD(., b[c])."""
    op = sg.operators[i]
    if kinds[i] != "MUL" or len(op.inputs) != 2 or op.builtinOptions is None:
        return None
    if op.builtinOptions.fusedActivationFunction != 0:
        return None
    y = int(op.outputs[0])
    yt = sg.tensors[y]
    readers = consumers.get(y, [])
    if len(readers) != 1 or y in outputs or kinds[readers[0]] != "ADD":
        return None
    channels = int(yt.shape[-1]) if len(yt.shape) == 4 else 0
    for x, c in (op.inputs, op.inputs[::-1]):
        x, c = int(x), int(c)
        xt = sg.tensors[x]
        a = _channel_constant(model, sg, c, channels) if channels else None
        if (a is None or uses.get(c, 0) != 1 or xt.type != _INT8 or _zero_point(xt) is None
                or [int(d) for d in xt.shape] != [int(d) for d in yt.shape]):
            continue
        add = sg.operators[readers[0]]
        for u, k in (add.inputs, add.inputs[::-1]):
            if int(u) != y:
                continue
            b = _channel_constant(model, sg, int(k), channels)
            out = sg.tensors[int(add.outputs[0])]
            if b is not None and out.type == _INT8 and _zero_point(out) is not None:
                return x, a, c, readers[0], b
    return None


def affine_as_depthwise(model) -> int:
    """Rewrites each int8 MUL(x, a[c]) -> ADD(., b[c]) pair as one 1x1 DEPTHWISE_CONV_2D with
    filter a and bias b (module docstring). Returns how many pairs were rewritten."""
    schema = _schema()
    sg = model.subgraphs[0]
    kinds = _op_names(model)
    _, consumers = _graph(sg)
    uses = _input_uses(sg)
    outputs = {int(t) for t in sg.outputs}
    drop, done = set(), 0
    for i in range(len(sg.operators)):
        pair = _affine_pair(model, sg, kinds, consumers, uses, outputs, i)
        if pair is None:
            continue
        x, a, mul_const, j, b = pair
        add = sg.operators[j]
        w = _filter(model, sg, mul_const, a)
        opts = schema.DepthwiseConv2DOptionsT()
        opts.padding = schema.Padding.VALID
        opts.strideW = opts.strideH = opts.dilationWFactor = opts.dilationHFactor = 1
        opts.depthMultiplier = 1
        opts.fusedActivationFunction = add.builtinOptions.fusedActivationFunction \
            if add.builtinOptions is not None else 0
        mul = sg.operators[i]
        _become(model, mul, "DEPTHWISE_CONV_2D", "DepthwiseConv2DOptions", opts)
        mul.inputs = np.array([x, w, _bias(model, sg, x, w, b)], dtype=np.int32)
        mul.outputs = np.array([int(add.outputs[0])], dtype=np.int32)
        drop.add(j)
        done += 1
    sg.operators = [op for k, op in enumerate(sg.operators) if k not in drop]
    return done
