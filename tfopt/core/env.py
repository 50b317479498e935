"""Process environment defaults that must be set before TensorFlow is first imported.

`tfopt/__init__.py` calls `quiet_tensorflow()` once, so every CLI (and every import of tfopt)
starts without TensorFlow's C++ start-up noise on a CPU machine: the `failed call to cuInit`
E-lines, the oneDNN notice and absl's pre-init warning. A value the user set wins; the ablation
CLI's `--tf_log_level` sets it explicitly. TensorFlow-free.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# TF_CPP_MIN_LOG_LEVEL: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR (C++ logging only; Python
# warnings and exceptions are unaffected).
DEFAULT_TF_LOG_LEVEL = "3"
TF_LOG_LEVELS = ("0", "1", "2", "3")


def quiet_tensorflow(level: str | int | None = None) -> str:
    """Set TF_CPP_MIN_LOG_LEVEL (default: keep the user's, else 3); returns the value in force.

    Has no effect on a TensorFlow that is already imported.
    """
    if level is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_LOG_LEVEL)
    else:
        if str(level) not in TF_LOG_LEVELS:
            raise ValueError(f"tf_log_level={level!r}; allowed: {', '.join(TF_LOG_LEVELS)}")
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = str(level)
    return os.environ["TF_CPP_MIN_LOG_LEVEL"]


# Lines TensorFlow's C++ runtime writes to fd 2 while it loads, before its logging honours
# TF_CPP_MIN_LOG_LEVEL (absl's pre-init banner and the INFO/WARNING lines printed under it).
_PREINIT_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} [0-9:. ]+\d+ \S+:\d+\]"
    r"|To enable the following instructions: )"
)


def import_tensorflow():
    """`import tensorflow` (and device discovery, where cuInit runs) with TensorFlow's pre-init
    C++ lines filtered out of stderr unless TF_CPP_MIN_LOG_LEVEL is 0. Other lines are kept."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if quiet_tensorflow() == "0":
        import tensorflow as tf

        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode("utf-8", "replace").splitlines(True)
                if not _PREINIT_NOISE.match(line)
            ]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
    return tf
