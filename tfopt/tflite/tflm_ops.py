"""Which TFLite builtin ops TensorFlow Lite Micro can register, and under which method name.

The table maps a builtin op name to its `tflite::MicroMutableOpResolver<N>::Add*()` method
(source: tensorflow/tflite-micro `tensorflow/lite/micro/micro_mutable_op_resolver.h`, 2025;
`AllOpsResolver` was removed in tflite-micro #1969, so firmware lists its ops explicitly).
An op missing here (e.g. DENSIFY from sparse conversion) has no TFLM kernel.
"""

from __future__ import annotations

from collections.abc import Iterable

RESOLVER_METHODS: dict[str, str] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin", "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D", "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce", "CAST": "AddCast",
    "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup", "ELU": "AddElu", "EQUAL": "AddEqual",
    "EXP": "AddExp", "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv", "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather", "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual", "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization", "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic", "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D", "MIRROR_PAD": "AddMirrorPad",
    "MEAN": "AddMean", "MINIMUM": "AddMinimum", "MUL": "AddMul", "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad", "PADV2": "AddPadV2",
    "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize", "READ_VARIABLE": "AddReadVariable",
    "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu",
    "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound", "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape",
    "SIN": "AddSin", "SLICE": "AddSlice", "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQUEEZE": "AddSqueeze", "SQRT": "AddSqrt",
    "SQUARE": "AddSquare", "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf",
    "TANH": "AddTanh", "TRANSPOSE_CONV": "AddTransposeConv", "TRANSPOSE": "AddTranspose",
    "UNPACK": "AddUnpack",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}


def unsupported_ops(ops: Iterable[str]) -> tuple[str, ...]:
    """The ops (sorted, distinct) that TFLM's MicroMutableOpResolver cannot register."""
    return tuple(sorted({op for op in ops if op not in RESOLVER_METHODS}))


def resolver_methods(ops: Iterable[str]) -> list[str]:
    """`Add*` method names for `ops`, in sorted op order.

    Raises:
      ValueError: an op has no TFLM kernel (named in the message).
    """
    ops = sorted(set(ops))
    missing = unsupported_ops(ops)
    if missing:
        raise ValueError(f"TFLite Micro has no kernel for op(s) {list(missing)}")
    return [RESOLVER_METHODS[op] for op in ops]
