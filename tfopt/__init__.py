"""tfopt: compress CNNs for phones and microcontrollers, and measure every step.

Keras 2 only. tensorflow-model-optimization does not support Keras 3, so the legacy
Keras (`tf_keras`) must be selected before TensorFlow is first imported. This is the one
place that does it; nothing else runs at import time (TensorFlow itself is imported lazily
by the sub-modules that need it).
"""

import os as _os

_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
if _os.environ["TF_USE_LEGACY_KERAS"] != "1":
    raise ImportError(
        f"TF_USE_LEGACY_KERAS={_os.environ['TF_USE_LEGACY_KERAS']!r}; tfopt needs '1' "
        "(Keras 2 via tf_keras, required by tensorflow-model-optimization)")

__version__ = "0.1.0"

_LAZY = {
    "build_model": "tfopt.models",
    "build_from_spec": "tfopt.models",
    "list_variants": "tfopt.models",
    "get_variant": "tfopt.models",
    "convert_int8": "tfopt.tflite.convert",
    "evaluate_tflite": "tfopt.tflite.evaluate",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfopt' has no attribute {name!r}")
