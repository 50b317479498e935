"""Process environment defaults that must be set before TensorFlow is first imported.

`tfopt/__init__.py` calls `quiet_tensorflow()` and `install_quiet_import()` once, so every CLI
(and every program that imports tfopt before TensorFlow) starts without TensorFlow's C++ start-up
noise on a CPU machine: the `failed call to cuInit` E-lines and CPU-feature notice (hidden by
TF_CPP_MIN_LOG_LEVEL=3), and the absl pre-init banner with the oneDNN and CUDA-driver I-lines,
which TensorFlow prints while it loads, before that level applies (filtered from fd 2 during
`import tensorflow`). A TF_CPP_MIN_LOG_LEVEL the user set wins (0 shows everything again); the
ablation CLI's `--tf_log_level` sets it explicitly. TensorFlow-free.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
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
    r"|To enable the following instructions: "
    # ... and what the TFLite converter and LiteRT print from C++ on every conversion
    r"|fully_quantize: \d+, inference_type: "
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)"
)


@contextlib.contextmanager
def filtered_stderr():
    """Hold fd 2 in a file while the block runs, then write back all but `_PREINIT_NOISE`
    (everything when TF_CPP_MIN_LOG_LEVEL is 0)."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept = [ln for ln in text.splitlines(True) if not _PREINIT_NOISE.match(ln)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def import_tensorflow():
    """`import tensorflow` with its pre-init C++ lines filtered out of stderr (unless
    TF_CPP_MIN_LOG_LEVEL is 0). Other lines are kept."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if quiet_tensorflow() == "0":
        import tensorflow as tf

        return tf
    with filtered_stderr():
        import tensorflow as tf
    return tf


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's own loader inside `filtered_stderr`."""

    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        with filtered_stderr():
            self.inner.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once (the normal way) and wraps its loader in `_QuietLoader`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one use; the search below must not find us again
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install_quiet_import() -> None:
    """Make the first `import tensorflow` of the process (whoever does it) filter its pre-init
    lines; called once by tfopt/__init__.py. No effect once TensorFlow is imported."""
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
