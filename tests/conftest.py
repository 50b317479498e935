"""Shared test set-up: a clean Keras session and fixed seeds for every test that uses Keras.

TensorFlow is not imported here: a TF-free test (the core data, the spec grammar, the flag
parsers) runs without it. When TensorFlow is loaded (a test module imported it, or an earlier
test did) every test starts from a cleared session seeded with 0 and clears it afterwards;
otherwise Python's and NumPy's global generators are seeded with 0.
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from absl import flags as absl_flags  # noqa: E402


def _keras_if_loaded():
    """`tf_keras` if TensorFlow is already imported in this process, else None."""
    if "tensorflow" not in sys.modules:
        return None
    from tfopt._keras import keras
    return keras


@pytest.fixture(autouse=True)
def _clean_keras_session():
    keras = _keras_if_loaded()
    if keras is not None:
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)  # Python, NumPy and TensorFlow
    else:
        import random

        import numpy as np
        random.seed(0)
        np.random.seed(0)
    yield
    keras = _keras_if_loaded()
    if keras is not None:
        keras.backend.clear_session()


class CliResult:
    """What `subprocess.run(..., capture_output=True, text=True)` gives: returncode, stdout,
    stderr."""

    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """`run_cli(main, *argv, cwd=None)`: a CLI's `main(argv)` run in this process, as its
    program runs it (exit status, stdout, stderr), without a fresh interpreter importing
    TensorFlow (~3.5 s CPU each). The error path is the same code (`tfopt.core.cli.run`);
    tests/test_bad_inputs.py::test_real_entry_points keeps real programs for a few cases."""

    def run(main, *argv, cwd=None):
        monkeypatch.delenv("TFOPT_TRACEBACK", raising=False)
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            rc = main([str(a) for a in argv])
        finally:  # the next test sees absl's global FLAGS unparsed, as in a fresh process
            absl_flags.FLAGS.unparse_flags()
        out = capsys.readouterr()
        return CliResult(0 if rc is None else rc, out.out, out.err)

    return run
