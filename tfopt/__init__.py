"""tfopt: compress CNNs for phones and microcontrollers, and measure every step.

Keras 2 only. tensorflow-model-optimization does not support Keras 3, so the legacy
Keras (`tf_keras`) must be selected before TensorFlow is first imported. This is the one
place that does it. It also defaults TF_CPP_MIN_LOG_LEVEL (tfopt.core.env); nothing else
runs at import time (TensorFlow itself is imported lazily by the sub-modules that need it).
`tfopt.report` is `tfopt.experiments.report`, loaded on first use.
"""

import os as _os

_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
if _os.environ["TF_USE_LEGACY_KERAS"] != "1":
    raise ImportError(
        f"TF_USE_LEGACY_KERAS={_os.environ['TF_USE_LEGACY_KERAS']!r}; tfopt needs '1' "
        "(Keras 2 via tf_keras, required by tensorflow-model-optimization)")

# TensorFlow's C++ start-up noise off unless the user set TF_CPP_MIN_LOG_LEVEL (tfopt.core.env).
from tfopt.core import env as _env  # noqa: E402
from tfopt.core.lazy import lazy_getattr as _lazy_getattr  # noqa: E402

_env.quiet_tensorflow()
_env.install_quiet_import()

__version__ = "0.1.0"

_LAZY = {
    "report": "tfopt.experiments.report",
    "build_model": "tfopt.models",
    "build_from_spec": "tfopt.models",
    "list_variants": "tfopt.models",
    "get_variant": "tfopt.models",
    "convert_int8": "tfopt.tflite.convert",
    "evaluate_tflite": "tfopt.tflite.evaluate",
}


__getattr__ = _lazy_getattr("tfopt", _LAZY)
