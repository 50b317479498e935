"""Shrink a .tflite flatbuffer without changing a single computed value.

Two post-conversion steps, each measured on resnet101_v13 (full width, int8; see
docs/deployment.md "Lean int8"):

* **Strip tensor names** (and the model description / subgraph name). The names are kept in a
  JSON sidecar (`names_sidecar`) so a debugger can map tensor indices back to Keras layers.
  The graph's input/output tensor names and the signature defs stay: LiteRT's
  `get_input_details()` and signature runners show them.
* **Activations on buffer 0.** The converter gives every tensor a buffer of its own, also the
  activations, whose buffers are empty; the schema reserves buffer 0 as "an always existent
  empty buffer" for exactly those tensors. Every tensor with an empty buffer now refers to
  buffer 0 and the others are dropped: resnet101_v13 (lean int8) 489 buffers fewer,
  230,608 -> 224,696 B, outputs identical on LiteRT and TFLM.
* **Rank from the shape.** The converter sets `has_rank` on every ranked tensor; a non-empty
  shape already gives the rank, so the flag is cleared there (4 B per tensor: resnet101_v13
  `--target=tflm` 217,856 -> 215,160 B), as in files older than the field.
* **Serialize with shared objects.** The object-API serializer writes every vector and table
  anew; here identical vectors (tensor shapes, all-zero per-channel zero points, operator
  options) and identical quantization tables are written once and referenced from every
  tensor that uses them. Flatbuffers allow any table field to point at an object written
  earlier (the builder writes back to front), and both LiteRT's verifier and TFLM read such
  files unchanged (tests/test_inspect.py checks 0 LSB against the original).

Not done, because a runtime rejects it: shortening a per-channel zero-point vector to one
value is accepted by TFLM (it reads `zero_point[0]` for weights) but LiteRT refuses to load the
model ("QuantizationParam has 1 zero_point values and N scale values. Must have same number.").
"""

from __future__ import annotations

import copy
import json

import flatbuffers
import numpy as np

from tfopt.tflite.model_info import _model_object, _schema, read_bytes
from tfopt.tflite.rewrite import _drop_unused_buffers


class _SharingBuilder(flatbuffers.Builder):
    """A flatbuffers Builder that writes each distinct numpy vector and string once."""

    def __init__(self, size: int):
        super().__init__(size)
        self._vectors: dict = {}
        self._strings: dict = {}

    def CreateNumpyVector(self, x):  # noqa: N802 (flatbuffers API name)
        arr = np.asarray(x)
        key = (arr.dtype.str, arr.tobytes())
        if key not in self._vectors:
            self._vectors[key] = super().CreateNumpyVector(arr)
        return self._vectors[key]

    def CreateString(self, s, encoding="utf-8", errors="strict"):  # noqa: N802
        key = s if isinstance(s, bytes) else str(s).encode(encoding, errors)
        if key not in self._strings:
            self._strings[key] = super().CreateString(s, encoding, errors)
        return self._strings[key]


def _as_array(values, dtype) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=dtype)


def _quantization_key(q) -> tuple:
    # Vectors as numpy: CreateNumpyVector (shared) instead of element-wise prepends.
    q.scale, q.zeroPoint = _as_array(q.scale, np.float32), _as_array(q.zeroPoint, np.int64)
    q.min, q.max = _as_array(q.min, np.float32), _as_array(q.max, np.float32)
    key = tuple(None if v is None else v.tobytes() for v in (q.scale, q.zeroPoint, q.min, q.max))
    return key + (q.quantizedDimension, q.detailsType)


def _share_tables(model) -> None:
    """Makes equal quantization tables and operator options the same Python object, and packs
    each such object once (memoised `Pack`), so the flatbuffer stores it once."""
    seen: dict = {}
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.quantization is not None and t.quantization.details is None:
                t.quantization = seen.setdefault(_quantization_key(t.quantization),
                                                 t.quantization)
        for op in sg.operators:
            if op.builtinOptions is not None:
                opts = op.builtinOptions
                key = (op.builtinOptionsType, type(opts).__name__,
                       repr(sorted(vars(opts).items())))
                op.builtinOptions = seen.setdefault(key, opts)


def _memoised_pack(obj_types):
    """Patches `Pack` of the given object-API classes to return one offset per object."""
    originals = {cls: cls.Pack for cls in obj_types}
    cache: dict = {}

    def make(cls):
        def pack(self, builder):
            key = (id(builder), id(self))
            if key not in cache:
                cache[key] = originals[cls](self, builder)
            return cache[key]
        return pack

    for cls in obj_types:
        cls.Pack = make(cls)
    return originals


def _empty(buffer) -> bool:
    return buffer.data is None or not len(buffer.data)


def activations_on_buffer_zero(model) -> int:
    """Points every tensor whose buffer is empty at buffer 0 (when that one is empty) and drops
    the buffers no longer used; returns how many tensors moved."""
    if not model.buffers or not _empty(model.buffers[0]):
        return 0
    moved = 0
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.buffer != 0 and _empty(model.buffers[t.buffer]):
                t.buffer, moved = 0, moved + 1
    if moved:
        _drop_unused_buffers(model, _schema())
    return moved


def ranks_from_shapes(model) -> int:
    """Clears `has_rank` on every tensor with a non-empty shape; returns how many.

    The schema's `has_rank` ("encodes `shape` with unknown rank") only tells a scalar (shape
    [], rank 0) from a tensor of unknown rank; a non-empty shape gives the rank itself. The
    converter sets it on every ranked tensor, which costs 4 B per tensor (resnet101_v13,
    `--target=tflm`: 683 tensors, 217,856 -> 215,160 B); files written before the field
    existed (TF < 2.5) have it clear on every tensor, and LiteRT and TFLM read them unchanged
    (tests/test_inspect.py: the same outputs, 0 LSB against the LiteRT reference)."""
    cleared = 0
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.hasRank and t.shape is not None and len(t.shape):
                t.hasRank, cleared = False, cleared + 1
    return cleared


def serialize(model) -> bytes:
    """Packs a `schema.ModelT` with shared vectors, strings and tables, activations on buffer 0,
    `has_rank` only where the shape is empty (see module docstring).

    The model is copied first: sharing makes equal option/quantization tables one Python
    object, and a later rewrite of one operator must not change the others.
    """
    schema = _schema()
    model = copy.deepcopy(model)
    activations_on_buffer_zero(model)
    ranks_from_shapes(model)
    _share_tables(model)
    option_types = [getattr(schema, n) for n in dir(schema)
                    if n.endswith("OptionsT") and hasattr(getattr(schema, n), "Pack")]
    patched = [schema.QuantizationParametersT] + option_types
    originals = _memoised_pack(patched)
    try:
        builder = _SharingBuilder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
    finally:
        for cls, pack in originals.items():
            cls.Pack = pack


def _decode(name) -> str:
    if name is None:
        return ""
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def strip_names(model) -> dict:
    """Removes tensor names (except graph inputs/outputs), the description and subgraph names.

    Returns:
      The names sidecar: {"format": "tfopt-names/1", "subgraphs": [{"tensors": [name, ...]}]},
      tensor names by index, to restore or debug.
    """
    sidecar = {"format": "tfopt-names/1", "description": _decode(model.description),
               "subgraphs": []}
    model.description = None
    for sg in model.subgraphs:
        sidecar["subgraphs"].append({"name": _decode(sg.name),
                                     "tensors": [_decode(t.name) for t in sg.tensors]})
        keep = set(sg.inputs if sg.inputs is not None else ()) | set(
            sg.outputs if sg.outputs is not None else ())
        sg.name = None
        for i, t in enumerate(sg.tensors):
            if i not in keep:
                t.name = None
    return sidecar


def lean(content: bytes, *, names: bool = False, name: str = "<bytes>") -> tuple[bytes, dict]:
    """Returns (`content` re-serialized with shared objects, names sidecar).

    Args:
      content: A .tflite flatbuffer.
      names: Keep the tensor names (only sharing is applied); the sidecar is then empty.

    Raises:
      ValueError: (one line) not a TFLite flatbuffer.
    """
    model = _model_object(read_bytes(content, name=name), name)
    sidecar = {} if names else strip_names(model)
    return serialize(model), sidecar


def restore_names(content: bytes, sidecar: dict) -> bytes:
    """`content` with the tensor names of `sidecar` (from `lean`) put back."""
    model = _model_object(read_bytes(content), "<bytes>")
    for sg, entry in zip(model.subgraphs, sidecar.get("subgraphs", [])):
        sg.name = entry.get("name") or None
        for t, tname in zip(sg.tensors, entry["tensors"]):
            t.name = tname or None
    return serialize(model)


def sidecar_json(sidecar: dict) -> str:
    """The sidecar as compact JSON text (written next to the .tflite as NAME.names.json)."""
    return json.dumps(sidecar, separators=(",", ":"))
