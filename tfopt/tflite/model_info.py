"""Read a .tflite flatbuffer without an interpreter: operators, tensor types, I/O quantization.

Also reads and writes the `tfopt` metadata entry (a UTF-8 JSON object stored in the model's
`metadata` table) that records what a device needs to feed the model: normalisation, labels,
input quantization. The TFLite converter itself appends its `CONVERSION_METADATA` entry the
same way (flatbuffer object API round trip), so the result loads in LiteRT and TFLM alike.

Parsing uses the schema module shipped with `ai-edge-litert` (no TensorFlow import, no
interpreter: only `tfopt/tflite/evaluate.py` and the TFLM runner in `micro.py` run models).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

TFOPT_METADATA_NAME = "tfopt"
_FILE_IDENTIFIER = b"TFL3"

# schema TensorType enum -> numpy-style name.
_TENSOR_TYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
    7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
    13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16",
}
FLOAT_TYPES = frozenset({"float32", "float16", "float64", "bfloat16"})


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _builtin_names() -> dict[int, str]:
    ops = _schema().BuiltinOperator
    return {v: k for k, v in vars(ops).items() if not k.startswith("_") and isinstance(v, int)}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One model input or output tensor.

    Attributes:
      name: Tensor name in the flatbuffer.
      shape: Static shape (batch first).
      dtype: "int8", "float32", ...
      scale: Quantization scale (per-tensor), or None when not quantized.
      zero_point: Quantization zero point, or None when not quantized.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """One operator node: builtin name and the dtypes of all its input and output tensors."""

    index: int
    name: str
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What a .tflite file contains (subgraph 0).

    Attributes:
      size_bytes: File size in bytes (the flash a microcontroller needs for the model).
      operators: Every operator node in execution order.
      inputs / outputs: The graph's I/O tensors.
      metadata: The decoded `tfopt` metadata entry ({} when absent).
      metadata_names: Names of all metadata entries.
    """

    size_bytes: int
    operators: tuple[OpInfo, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata: dict
    metadata_names: tuple[str, ...]

    @property
    def op_names(self) -> tuple[str, ...]:
        """Distinct builtin op names, sorted (e.g. ("CONV_2D", "MEAN", ...))."""
        return tuple(sorted({op.name for op in self.operators}))

    def float_ops(self) -> list[OpInfo]:
        """Operators that read or write a floating-point tensor."""
        return [op for op in self.operators
                if FLOAT_TYPES & (set(op.input_dtypes) | set(op.output_dtypes))]


def read_bytes(model: str | os.PathLike | bytes | bytearray, *, name: str | None = None) -> bytes:
    """Returns the bytes of a .tflite model given as a path or bytes, after validating them.

    Raises:
      ValueError: (one line) the file is missing, or is not a TFLite flatbuffer.
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        content, where = bytes(model), name or "<bytes>"
    else:
        where = os.fspath(model)
        if not os.path.isfile(where):
            raise ValueError(f"{where}: no such .tflite file")
        with open(where, "rb") as f:
            content = f.read()
    if len(content) < 8:
        raise ValueError(f"{where}: not a TFLite model (only {len(content)} bytes)")
    if content[4:8] != _FILE_IDENTIFIER:
        raise ValueError(f"{where}: not a TFLite model (file identifier {content[4:8]!r}, "
                         f"expected {_FILE_IDENTIFIER!r})")
    return content


def _model_object(content: bytes, where: str):
    schema = _schema()
    try:
        return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    except Exception as err:  # flatbuffers raises struct.error/IndexError/... on corrupt data
        raise ValueError(f"{where}: corrupt TFLite flatbuffer ({type(err).__name__}: "
                         f"{str(err)[:120]})") from err


def _tensor_info(tensor) -> TensorInfo:
    q = tensor.quantization
    scale = zp = None
    if q is not None and q.scale is not None and len(q.scale) == 1:
        scale, zp = float(q.scale[0]), int(q.zeroPoint[0])
    name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
    shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))
    return TensorInfo(name, shape, _TENSOR_TYPES.get(tensor.type, str(tensor.type)), scale, zp)


def inspect_model(model: str | os.PathLike | bytes, *, name: str | None = None) -> ModelInfo:
    """Parses a .tflite model (path or bytes) into a `ModelInfo`.

    Raises:
      ValueError: (one line, naming the file) not a TFLite model, or a corrupt one.
    """
    where = name or (os.fspath(model) if not isinstance(model, (bytes, bytearray)) else "<bytes>")
    content = read_bytes(model, name=where)
    obj = _model_object(content, where)
    if not obj.subgraphs:
        raise ValueError(f"{where}: corrupt TFLite model (no subgraph)")
    names = _builtin_names()
    sg = obj.subgraphs[0]
    tensors = sg.tensors if sg.tensors is not None else []
    try:
        ops = []
        for i, op in enumerate(sg.operators if sg.operators is not None else []):
            code = obj.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            op_name = names.get(builtin, f"BUILTIN_{builtin}")
            if op_name == "CUSTOM":
                custom = code.customCode
                op_name = f"CUSTOM:{custom.decode() if isinstance(custom, bytes) else custom}"
            ins = [] if op.inputs is None else op.inputs
            outs = [] if op.outputs is None else op.outputs
            ops.append(OpInfo(
                i, op_name,
                tuple(_TENSOR_TYPES.get(tensors[t].type, "?") for t in ins if t >= 0),
                tuple(_TENSOR_TYPES.get(tensors[t].type, "?") for t in outs if t >= 0)))
        inputs = tuple(_tensor_info(tensors[t]) for t in sg.inputs)
        outputs = tuple(_tensor_info(tensors[t]) for t in sg.outputs)
    except (IndexError, TypeError) as err:
        raise ValueError(f"{where}: corrupt TFLite model ({err})") from err
    meta: dict = {}
    meta_names = []
    for entry in obj.metadata or []:
        entry_name = entry.name.decode() if isinstance(entry.name, bytes) else str(entry.name)
        meta_names.append(entry_name)
        if entry_name == TFOPT_METADATA_NAME:
            data = obj.buffers[entry.buffer].data
            try:
                meta = json.loads(bytes(np.asarray(data, dtype=np.uint8)).decode("utf-8"))
            except ValueError as err:
                raise ValueError(f"{where}: unreadable '{TFOPT_METADATA_NAME}' metadata") from err
    return ModelInfo(len(content), tuple(ops), inputs, outputs, meta, tuple(meta_names))


def with_metadata(content: bytes, metadata: dict[str, Any]) -> bytes:
    """Returns `content` with its `tfopt` metadata entry replaced by `metadata` (JSON)."""
    payload = json.dumps(metadata, sort_keys=True).encode("utf-8")
    return set_metadata_entry(read_bytes(content), TFOPT_METADATA_NAME, payload)


def put_metadata(obj, name: str, payload: bytes) -> None:
    """Sets metadata entry `name` of a `schema.ModelT` to `payload` (its buffer replaced in
    place if the entry exists, so no orphan buffer is left; appended otherwise)."""
    schema = _schema()
    data = np.frombuffer(payload, dtype=np.uint8)
    for entry in obj.metadata or []:
        if entry.name in (name, name.encode()):
            obj.buffers[entry.buffer].data = data
            return
    buf = schema.BufferT()
    buf.data = data
    obj.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name, entry.buffer = name, len(obj.buffers) - 1
    obj.metadata = list(obj.metadata or []) + [entry]


def set_metadata_entry(content: bytes, name: str, payload: bytes) -> bytes:
    """Returns `content` with metadata entry `name` holding `payload` (`put_metadata`)."""
    from ai_edge_litert.tools import flatbuffer_utils

    obj = _model_object(content, "<bytes>")
    put_metadata(obj, name, payload)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))
