"""int8 FULLY_CONNECTED -> 1x1 CONV_2D, so TFLite Micro computes what LiteRT's reference does.

Why (measured, tflite-micro 0.dev20261023 vs ai-edge-litert's BUILTIN_REF kernels): the two
runtimes requantize an int8 FULLY_CONNECTED accumulator differently. LiteRT's reference FC uses
the single-rounding multiply (int64 `acc * multiplier`, one round-half-up shift); TFLM's uses
gemmlowp's double rounding (`SaturatingRoundingDoublingHighMul`, then a rounding shift). They
disagree by 1 LSB when the exact value lies within one rounding step of a .5 boundary: on the
converter's own file of the tests/test_inspect.py model, 19 of 10,000 FC outputs (2,000 random
inputs), every one explained by the two formulas. CONV_2D and DEPTHWISE_CONV_2D requantize the
same way in both runtimes (0 differences on the same inputs), and a FULLY_CONNECTED on a
[1, K] input is the 1x1 CONV_2D with filter [N, 1, 1, K] on a [1, 1, 1, K] input: the filter
bytes, the int32 bias and the (per-tensor or per-channel, dimension 0) quantization carry over
unchanged, only the requantization changes to the one both runtimes share.

The 4-D input comes from the producer where that costs no op: a flattening RESHAPE or a MEAN
(keepDims) that only this FC reads is retargeted, the RESHAPE after a previous rewritten FC is
skipped (SE blocks: FC -> FC); otherwise a RESHAPE is inserted. The output
gets a RESHAPE back to [1, N] (graph output shapes stay).
"""

from __future__ import annotations

import copy

import numpy as np

from tfopt.tflite.model_info import _schema
from tfopt.tflite.rewrite import (
    _activation_like, _become, _const, _graph, _input_uses, _op_names, _opcode_index)


def _const_int32(model, sg, values, name: str) -> int:
    """Appends an int32 constant tensor (its own buffer) and returns its index."""
    return _const(model, sg, np.asarray(values, np.int32), _schema().TensorType.INT32, name)


def _zero_bias(model, sg, x: int, w: int, n: int) -> int:
    """An all-zero int32 bias [N] in units of input scale x filter scale (per channel)."""
    schema = _schema()
    t = _const_int32(model, sg, [0] * n, "fc_as_conv/bias")
    wq, xq = sg.tensors[w].quantization, sg.tensors[x].quantization
    q = schema.QuantizationParametersT()
    w_scales = np.asarray(wq.scale, np.float64)
    q.scale = (w_scales * float(xq.scale[0])).astype(np.float32)
    q.zeroPoint = np.zeros(len(q.scale), dtype=np.int64)
    q.quantizedDimension = 0
    sg.tensors[t].quantization = q
    return t


def _reshape_op(model, sg, x: int, y: int, shape) -> object:
    schema = _schema()
    op = schema.OperatorT()
    op.opcodeIndex = _opcode_index(model, schema.BuiltinOperator.RESHAPE)
    op.inputs = np.array([x, _const_int32(model, sg, shape, "fc_as_conv/shape")], np.int32)
    op.outputs = np.array([y], np.int32)
    return op


def _four_d_input(model, sg, kinds, producer, consumers, x: int, k: int):
    """(4-D [1, 1, 1, K] tensor feeding the conv, RESHAPE op to insert before it or None)."""
    p = producer.get(x)
    outputs = {int(t) for t in sg.outputs}
    if p is not None and len(consumers.get(x, ())) == 1 and x not in outputs:
        op = sg.operators[p]
        if kinds[p] == "RESHAPE":
            src = int(op.inputs[0])
            if [int(d) for d in sg.tensors[src].shape] == [1, 1, 1, k]:
                return src, None       # that RESHAPE is then unused (removed by fc_as_conv)
            op.inputs = np.array([int(op.inputs[0]),
                                  _const_int32(model, sg, [1, 1, 1, k], "fc_as_conv/shape")],
                                 np.int32)
            sg.tensors[x].shape = np.array([1, 1, 1, k], np.int32)
            return x, None
        axes = _constant_ints(model, sg, int(op.inputs[1])) if kinds[p] == "MEAN" else None
        rank = len(sg.tensors[int(op.inputs[0])].shape)
        if axes is not None and rank == 4 and sorted(a % 4 for a in axes) == [1, 2]:
            op.builtinOptions = copy.copy(op.builtinOptions)
            op.builtinOptions.keepDims = True
            sg.tensors[x].shape = np.array([1, 1, 1, k], np.int32)
            return x, None
    x4 = _activation_like(sg, x, [1, 1, 1, k], "/as_4d")
    return x4, _reshape_op(model, sg, x, x4, [1, 1, 1, k])


def _constant_ints(model, sg, t: int) -> list[int] | None:
    data = model.buffers[sg.tensors[t].buffer].data
    if data is None or not len(data):
        return None
    return np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtype=np.int32).tolist()


def _eligible(model, sg, op, uses) -> bool:
    schema = _schema()
    if len(op.inputs) < 2 or op.builtinOptions is None:
        return False
    x, w, y = (sg.tensors[int(t)] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
    opts = op.builtinOptions
    w_data = model.buffers[w.buffer].data
    q = w.quantization
    return (x.type == y.type == w.type == schema.TensorType.INT8 and len(x.shape) == 2
            and int(x.shape[0]) == 1 and len(w.shape) == 2 and len(y.shape) == 2
            and w_data is not None and len(w_data) and uses[int(op.inputs[1])] == 1
            and opts.weightsFormat == 0 and not opts.keepNumDims
            and (q is None or q.scale is None or len(q.scale) == 1
                 or int(q.quantizedDimension) == 0))


def fc_as_conv(model) -> int:
    """Rewrites every eligible int8 FULLY_CONNECTED (input [1, K], constant int8 filter [N, K]
    used once) as CONV_2D 1x1 (module docstring). Returns how many were rewritten."""
    schema = _schema()
    sg = model.subgraphs[0]
    uses = _input_uses(sg)
    done = 0
    i = 0
    while i < len(sg.operators):
        kinds = _op_names(model)
        op = sg.operators[i]
        if kinds[i] != "FULLY_CONNECTED" or not _eligible(model, sg, op, uses):
            i += 1
            continue
        producer, consumers = _graph(sg)
        x, w, y = int(op.inputs[0]), int(op.inputs[1]), int(op.outputs[0])
        n, k = (int(d) for d in sg.tensors[w].shape)
        x4, before = _four_d_input(model, sg, kinds, producer, consumers, x, k)
        sg.tensors[w].shape = np.array([n, 1, 1, k], np.int32)
        y4 = _activation_like(sg, y, [1, 1, 1, n], "/as_4d")
        conv = schema.Conv2DOptionsT()
        conv.padding = schema.Padding.VALID
        conv.strideW = conv.strideH = conv.dilationWFactor = conv.dilationHFactor = 1
        conv.fusedActivationFunction = op.builtinOptions.fusedActivationFunction
        _become(model, op, "CONV_2D", "Conv2DOptions", conv)
        bias = int(op.inputs[2]) if len(op.inputs) > 2 else -1
        if bias < 0:  # CONV_2D needs a bias tensor (LiteRT: "optional but was expected")
            bias = _zero_bias(model, sg, x, w, n)
        op.inputs = np.array([x4, w, bias], np.int32)
        op.outputs = np.array([y4], np.int32)
        after = _reshape_op(model, sg, y4, y, [1, n])
        new = ([before] if before is not None else []) + [op, after]
        sg.operators[i:i + 1] = new
        i += len(new)
        done += 1
    _drop_dead_reshapes(sg, kinds=_op_names(model))
    return done


def _drop_dead_reshapes(sg, kinds) -> None:
    """Removes RESHAPE ops whose output nothing reads (left by chained FC rewrites)."""
    read = {int(t) for op in sg.operators for t in op.inputs} | {int(t) for t in sg.outputs}
    sg.operators = [op for op, kind in zip(sg.operators, kinds)
                    if kind != "RESHAPE" or int(op.outputs[0]) in read]
