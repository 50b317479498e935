"""TFLite Metadata for apps: the `.tflite` an Android/iOS app loads with MediaPipe's ImageClassifier.

MediaPipe Tasks (and the older TFLite Task Library) read the standard *TFLite Metadata*: a
`ModelMetadata` flatbuffer (schema `metadata_schema.fbs`, file identifier `M001`) stored in
the model's `TFLITE_METADATA` entry, plus the associated files (`labels.txt`) as an
uncompressed zip appended to the model. `with_app_metadata` writes both, with the plain
`flatbuffers` builder, so no extra package is needed to export (`tflite-support` has no wheel
for Python 3.11 / TF 2.21; MediaPipe 1.2.3's own `metadata_writers` fail to import:
`mediapipe.tasks.cc.metadata.python` is missing from its wheel). The result is checked against
MediaPipe itself in tests/test_mediapipe.py.

MediaPipe's image classifier takes only float32 or uint8 input tensors and float32/uint8
scores, not int8. `float_interface` therefore wraps tfopt's int8 model: float32 input ->
QUANTIZE -> the unchanged int8 graph -> DEQUANTIZE -> SOFTMAX -> float32 probabilities. The
arithmetic inside is the int8 model's, so its top-1 equals the int8 model's.

Normalisation: tfopt normalises `x = (pixel / 255 - mean) / std`; MediaPipe computes
`x = (pixel - mean') / std'` on 0..255 pixels, so the metadata stores mean' = 255 * mean and
std' = 255 * std.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import flatbuffers
import numpy as np

from tfopt.tflite.model_info import inspect_model, read_bytes, set_metadata_entry, with_metadata

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # every field written here exists since schema 1.0.0
LABELS_FILE = "labels.txt"
APP_INTERFACE = "float32 image -> QUANTIZE -> int8 graph -> DEQUANTIZE -> SOFTMAX -> float32"

# metadata_schema.fbs enum values and union indices (NONE = 0).
_TENSOR_AXIS_LABELS = 2
_RGB, _GRAYSCALE = 1, 2
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2
_NORMALIZATION_OPTIONS = 1


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


# ---- the ModelMetadata flatbuffer ------------------------------------------------------------


def _table(b: flatbuffers.Builder, fields: dict[int, tuple[str, object]]) -> int:
    """One table: slot -> ("offset" | "int8" | "uint8", value); None values are left out."""
    b.StartObject(max(fields) + 1)
    for slot, (kind, value) in fields.items():
        if value is None:
            continue
        if kind == "offset":
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "int8":
            b.PrependInt8Slot(slot, value, 0)
        else:
            b.PrependUint8Slot(slot, value, 0)
    return b.EndObject()


def _offsets(b: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _floats(b: flatbuffers.Builder, values: Sequence[float]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependFloat32(float(v))
    return b.EndVector()


def _text(b: flatbuffers.Builder, s: str | None) -> int | None:
    return None if s is None else b.CreateString(s)


def model_metadata(*, name: str, version: str, description: str, mean: Sequence[float],
                   std: Sequence[float], channels: int, author: str | None = None) -> bytes:
    """The `ModelMetadata` flatbuffer of an image classifier (MediaPipe's layout).

    Args:
      mean, std: MediaPipe normalisation on 0..255 pixels, one per channel.
      channels: 3 (RGB) or 1 (grayscale).
    """
    b = flatbuffers.Builder(1024)
    # Input: an image, normalised, with its value range.
    lo = [(0.0 - m) / s for m, s in zip(mean, std)]
    hi = [(255.0 - m) / s for m, s in zip(mean, std)]
    image_props = _table(b, {0: ("int8", _RGB if channels == 3 else _GRAYSCALE)})
    content_in = _table(b, {0: ("uint8", _IMAGE_PROPERTIES), 1: ("offset", image_props)})
    norm = _table(b, {0: ("offset", _floats(b, mean)), 1: ("offset", _floats(b, std))})
    unit = _table(b, {0: ("uint8", _NORMALIZATION_OPTIONS), 1: ("offset", norm)})
    stats_in = _table(b, {0: ("offset", _floats(b, hi)), 1: ("offset", _floats(b, lo))})
    tensor_in = _table(b, {
        0: ("offset", _text(b, "image")),
        1: ("offset", _text(b, "Input image to be classified.")),
        3: ("offset", content_in),
        4: ("offset", _offsets(b, [unit])),
        5: ("offset", stats_in),
    })
    # Output: class probabilities with the labels file.
    labels = _table(b, {
        0: ("offset", _text(b, LABELS_FILE)),
        1: ("offset", _text(b, "Labels for categories that the model can recognize.")),
        2: ("int8", _TENSOR_AXIS_LABELS),
    })
    content_out = _table(b, {0: ("uint8", _FEATURE_PROPERTIES),
                             1: ("offset", _table(b, {0: ("offset", None)}))})
    stats_out = _table(b, {0: ("offset", _floats(b, [1.0])), 1: ("offset", _floats(b, [0.0]))})
    tensor_out = _table(b, {
        0: ("offset", _text(b, "probability")),
        1: ("offset", _text(b, "Probabilities of the labels respectively.")),
        3: ("offset", content_out),
        5: ("offset", stats_out),
        6: ("offset", _offsets(b, [labels])),
    })
    subgraph = _table(b, {2: ("offset", _offsets(b, [tensor_in])),
                          3: ("offset", _offsets(b, [tensor_out]))})
    root = _table(b, {
        0: ("offset", _text(b, name)),
        1: ("offset", _text(b, description)),
        2: ("offset", _text(b, version)),
        3: ("offset", _offsets(b, [subgraph])),
        4: ("offset", _text(b, author)),
        7: ("offset", _text(b, MIN_PARSER_VERSION)),
    })
    b.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


# ---- float32 interface around the int8 graph ---------------------------------------------------


def _opcode(model, schema, builtin: int, version: int) -> int:
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin and code.version >= version:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _float_tensor(model, schema, like, name: str) -> int:
    """A new float32 tensor of `like`'s shape (own empty buffer); its index in subgraph 0."""
    sg = model.subgraphs[0]
    buf = schema.BufferT()
    model.buffers.append(buf)
    t = schema.TensorT()
    t.shape, t.type, t.name = list(like.shape), schema.TensorType.FLOAT32, name
    t.buffer = len(model.buffers) - 1
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _name(tensor) -> str:
    name = tensor.name or ""
    return name.decode() if isinstance(name, bytes) else str(name)


def _op(model, schema, builtin: int, version: int, inputs, outputs, options=None, kind=0):
    op = schema.OperatorT()
    op.opcodeIndex = _opcode(model, schema, builtin, version)
    op.inputs, op.outputs = list(inputs), list(outputs)
    op.builtinOptionsType, op.builtinOptions = kind, options
    return op


def float_interface(content: bytes, *, softmax: bool = True) -> bytes:
    """An int8-I/O model with float32 input and float32 output (probabilities if `softmax`).

    Adds QUANTIZE (float32 -> the int8 input, with its scale/zero point), DEQUANTIZE (int8
    output -> float32) and SOFTMAX; every other op and tensor is unchanged. A model whose I/O is
    already float32 is returned as is.

    Raises:
      ValueError: the model is not single-input/single-output, or its I/O is not int8/float32.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    info = inspect_model(content)
    dtypes = {info.inputs[0].dtype, info.outputs[0].dtype} if info.inputs and info.outputs else set()
    if len(info.inputs) != 1 or len(info.outputs) != 1 or not dtypes <= {"int8", "float32"}:
        raise ValueError("float_interface needs one int8/float32 input and output; got "
                         f"{[t.dtype for t in info.inputs]} -> {[t.dtype for t in info.outputs]}")
    if dtypes == {"float32"}:
        return content
    schema = _schema()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    sg = model.subgraphs[0]
    q_in, q_out = sg.inputs[0], sg.outputs[0]
    f_in = _float_tensor(model, schema, sg.tensors[q_in], _name(sg.tensors[q_in]))
    f_out = _float_tensor(model, schema, sg.tensors[q_out],
                          "probability" if softmax else _name(sg.tensors[q_out]))
    for idx in (q_in, q_out):
        sg.tensors[idx].name = f"{_name(sg.tensors[idx])}_int8"
    ops = schema.BuiltinOperator
    tail = [_op(model, schema, ops.DEQUANTIZE, 2, [q_out], [f_out])]
    if softmax:
        logits = f_out
        sg.tensors[logits].name = "logits"
        f_out = _float_tensor(model, schema, sg.tensors[logits], "probability")
        opts = schema.SoftmaxOptionsT()
        opts.beta = 1.0
        tail.append(_op(model, schema, ops.SOFTMAX, 1, [logits], [f_out], opts,
                        schema.BuiltinOptions.SoftmaxOptions))
    sg.operators = [_op(model, schema, ops.QUANTIZE, 1, [f_in], [q_in])] + list(sg.operators) + tail
    sg.inputs, sg.outputs = [f_in], [f_out]
    for sig in model.signatureDefs or []:  # keep the signature runner pointing at the new I/O
        for tmap in sig.inputs or []:
            tmap.tensorIndex = f_in if tmap.tensorIndex == q_in else tmap.tensorIndex
        for tmap in sig.outputs or []:
            tmap.tensorIndex = f_out if tmap.tensorIndex == q_out else tmap.tensorIndex
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


# ---- attaching metadata and associated files ---------------------------------------------------


def _append_files(content: bytes, files: dict[str, bytes]) -> bytes:
    """`content` + an uncompressed zip of `files` (how TFLite Metadata packs associated files)."""
    out = io.BytesIO()
    out.write(content)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as zf:
        for fname, data in files.items():
            zf.writestr(fname, data)
    return out.getvalue()


def with_app_metadata(
    model: str | bytes,
    *,
    labels: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    name: str | None = None,
    version: str = "1",
    description: str | None = None,
) -> bytes:
    """The model with float32 I/O, TFLite Metadata and `labels.txt`: what MediaPipe loads.

    Args:
      model: Path or bytes of a tfopt `.tflite` (int8 or float32 I/O).
      labels: Class names (default: the tfopt metadata's; else "0", "1", ...).
      mean, std: tfopt normalisation on [0, 1] pixels, per channel (default: the tfopt
        metadata's; else mean 0, std 1); written as MediaPipe's 0..255 convention.
      name, version, description: Model name (default: the tfopt metadata's), version string
        and description.

    Raises:
      ValueError: the labels do not match the number of outputs, or the I/O is not an image
        classifier's.
    """
    content = read_bytes(model, name=model if isinstance(model, str) else "model")
    info = inspect_model(content)
    meta = info.metadata
    num_classes = int(np.prod(info.outputs[0].shape[1:]))
    channels = int(info.inputs[0].shape[-1])
    labels = list(labels if labels is not None else meta.get("labels") or
                  [str(i) for i in range(num_classes)])
    if len(labels) != num_classes:
        raise ValueError(f"{len(labels)} labels for a model with {num_classes} outputs")
    norm = meta.get("normalization") or {}
    mean = list(mean if mean is not None else norm.get("mean") or [0.0] * channels)
    std = list(std if std is not None else norm.get("std") or [1.0] * channels)
    mean, std = (v * channels if len(v) == 1 else v for v in (mean, std))
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise ValueError(f"mean={mean} std={std}: expected {channels} values each, std > 0")
    name = name or meta.get("name") or "tfopt image classifier"
    description = description or (
        f"tfopt {meta.get('mode', 'int8')} image classifier ({meta.get('dataset') or 'custom data'}); "
        "int8 graph with float32 I/O for MediaPipe")
    content = float_interface(content)
    if meta:  # the tfopt entry now describes a float32 interface
        content = with_metadata(content, {**meta, "input_dtype": "float32",
                                          "app_interface": APP_INTERFACE, "labels": labels})
    fb = model_metadata(name=name, version=str(version), description=description,
                        mean=[255.0 * m for m in mean], std=[255.0 * s for s in std],
                        channels=channels, author="tfopt")
    content = set_metadata_entry(content, METADATA_NAME, fb)
    return _append_files(content, {LABELS_FILE: ("\n".join(labels) + "\n").encode("utf-8")})
