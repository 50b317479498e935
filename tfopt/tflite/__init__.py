"""Deployment: Keras -> TFLite (float32/float16/dynamic/int8), LiteRT evaluation, TFLite Micro
checks and firmware export. See docs/deployment.md.

    result = tfopt.tflite.convert_model(model, "int8", representative_data="fashion_mnist")
    report = tfopt.tflite.evaluate_tflite(result.content, dataset="fashion_mnist", limit=1000)
    micro = tfopt.tflite.run_micro(result.content, x_test[:10])
    tfopt.tflite.export_model(result.content, "tflite_models", name="tiny_cnn__int8")

Command line: `python -m tfopt.tflite {convert,evaluate,export} --help`.
Sub-modules are imported lazily (TensorFlow and the interpreters load only when needed).
"""

_LAZY = {
    "MODES": "tfopt.tflite.convert",
    "ConversionResult": "tfopt.tflite.convert",
    "Int8FallbackError": "tfopt.tflite.convert",
    "convert_int8": "tfopt.tflite.convert",
    "check_integer_only": "tfopt.tflite.convert",
    "TFLiteReport": "tfopt.tflite.evaluate",
    "evaluate_tflite": "tfopt.tflite.evaluate",
    "predict": "tfopt.tflite.evaluate",
    "latency": "tfopt.tflite.evaluate",
    "gzip_size": "tfopt.tflite.evaluate",
    "MicroReport": "tfopt.tflite.micro",
    "MicroUnavailableError": "tfopt.tflite.micro",
    "micro_available": "tfopt.tflite.micro",
    "run_micro": "tfopt.tflite.micro",
    "ExportResult": "tfopt.tflite.export",
    "export_model": "tfopt.tflite.export",
    "ModelInfo": "tfopt.tflite.model_info",
    "inspect_model": "tfopt.tflite.model_info",
}

# `convert` is the sub-module's name, so the function is exported as `convert_model`.
_RENAMED = {"convert_model": ("tfopt.tflite.convert", "convert")}

__all__ = [
    "MODES",
    "ConversionResult",
    "ExportResult",
    "Int8FallbackError",
    "MicroReport",
    "MicroUnavailableError",
    "ModelInfo",
    "TFLiteReport",
    "check_integer_only",
    "convert_int8",
    "convert_model",
    "evaluate_tflite",
    "export_model",
    "gzip_size",
    "inspect_model",
    "latency",
    "micro_available",
    "predict",
    "run_micro",
]


def __getattr__(name):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _RENAMED:
        module, attr = _RENAMED[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'tfopt.tflite' has no attribute {name!r}")
