"""Refusing Keras model files whose loading would run code, before they are deserialised.

A Keras `Lambda` layer stores its function as Python bytecode; loading an `.h5` file (or a
`.keras` file with `safe_mode=False`) runs it. `check_safe` reads only the model's JSON config
-- the HDF5 `model_config` attribute (h5py) or the `.keras` zip's `config.json` -- so nothing
is deserialised, and refuses a model with a Lambda layer (at any nesting depth) unless the
user passed `--unsafe_load`. A SavedModel folder's layers are read from its
`keras_metadata.pb` (a SavedModel loads its Lambda code too). TensorFlow-free: every CLI
that loads a user's model calls this first (`tfopt.tflite`, `tfopt.compress.ocnna`).
"""

from __future__ import annotations

import json
import os
import sys
import zipfile

UNSAFE_FLAG = "--unsafe_load"
UNSAFE_CLASSES = ("Lambda",)  # layers whose config carries code run on load


class UnsafeModelError(ValueError):
    """A model file holds a layer that would run code on load, and --unsafe_load was not given."""


def add_unsafe_load_flag(parser) -> None:
    """Adds `--unsafe_load` to an argparse parser (the one spelling and help text)."""
    parser.add_argument(UNSAFE_FLAG, action="store_true",
                        help="load a .h5/.keras model even if it has Lambda layers (their "
                             "Python code runs on load: only for files you trust)")


def define_unsafe_load_flag(flag_values) -> None:
    """Adds `--unsafe_load` to an absl FlagValues (the one spelling and help text)."""
    from absl import flags

    flags.DEFINE_bool(UNSAFE_FLAG[2:], False, "load a .h5/.keras model even if it has Lambda "
                      "layers (their Python code runs on load: only for files you trust)",
                      flag_values=flag_values)


def model_config(path: str) -> dict | None:
    """The model's JSON config from an `.h5` or `.keras` file (or a SavedModel folder's layer
    metadata), or None (weights only, or a file Keras will reject itself when it loads it)."""
    if os.path.isdir(path):
        return _saved_model_config(path)
    if not os.path.isfile(path):
        return None
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                if "config.json" not in z.namelist():
                    return None
                return _json(z.read("config.json"))
        import h5py

        if not h5py.is_hdf5(path):
            return None
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except (OSError, zipfile.BadZipFile):  # corrupt: the loader reports it
        return None
    return None if raw is None else _json(raw)


def _saved_model_config(folder: str) -> dict | None:
    """{"nodes": [layer metadata JSON, ...]} from a SavedModel's `keras_metadata.pb` (a
    SavedMetadata proto: field 1 = repeated nodes, each holding its metadata as a JSON string),
    decoded from the wire format so that no TensorFlow is imported; None if absent or corrupt."""
    meta = os.path.join(folder, "keras_metadata.pb")
    if not os.path.isfile(meta):
        return None
    with open(meta, "rb") as f:
        buf = f.read()
    try:
        nodes = [value for field, value in _proto_fields(buf) if field == 1]
        found = [_json(value) for node in nodes for _, value in _proto_fields(node)
                 if isinstance(value, bytes) and value[:1] == b"{"]
    except (IndexError, ValueError):
        return None
    return {"nodes": [c for c in found if c is not None]}


def _proto_fields(buf: bytes):
    """(field number, value) of a protobuf message: int for varints, bytes for length-delimited,
    skipped fixed-width values as bytes too. ValueError / IndexError if malformed."""
    pos = 0

    def varint():
        nonlocal pos
        shift = result = 0
        while True:
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    while pos < len(buf):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, varint()
        elif wire in (1, 2, 5):
            size = {1: 8, 5: 4}.get(wire) or varint()
            if pos + size > len(buf):
                raise ValueError("truncated protobuf")
            yield field, buf[pos:pos + size]
            pos += size
        else:
            raise ValueError(f"protobuf wire type {wire}")


def _json(raw) -> dict | None:
    try:
        value = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def unsafe_layers(config) -> list[str]:
    """Names of the layers in `config` (nested models and wrappers included) whose class is in
    UNSAFE_CLASSES, in config order."""
    found = []
    if isinstance(config, dict):
        if config.get("class_name") in UNSAFE_CLASSES:
            inner = config.get("config") or {}
            found.append(str(inner.get("name") or config.get("name") or "?"))
        for value in config.values():
            found += unsafe_layers(value)
    elif isinstance(config, list):
        for value in config:
            found += unsafe_layers(value)
    return list(dict.fromkeys(found))  # a SavedModel names each layer in several nodes


def check_safe(path: str, *, unsafe_load: bool = False) -> None:
    """Raises UnsafeModelError (one line: file, layer, flag) if `path` holds a Lambda layer and
    `unsafe_load` is False. Reads the config only; never deserialises the model."""
    if unsafe_load:
        return
    names = unsafe_layers(model_config(path))
    if names:
        more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
        raise UnsafeModelError(
            f"{path}: layer {names[0]!r}{more} is a Lambda layer, whose Python code would run "
            f"on load; refusing to load it (pass {UNSAFE_FLAG} if you trust this file)")


def check_safe_or_exit(path: str, *, unsafe_load: bool = False) -> None:
    """`check_safe` for a CLI: the refusal is one line on stderr and exit status 2."""
    try:
        check_safe(path, unsafe_load=unsafe_load)
    except UnsafeModelError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
