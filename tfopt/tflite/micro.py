"""Run int8 models on TensorFlow Lite Micro (the `tflite-micro` pip package's runtime).

The package's Python interpreter is the real TFLM C++ runtime with its portable reference
kernels, so it answers the microcontroller questions: does every op have a kernel, how
many arena bytes does the model need, and do the outputs match LiteRT's reference kernels
(`OpResolverType.BUILTIN_REF`, not XNNPACK) bit for bit (or within 1 LSB)? It is not a
latency benchmark for MCUs.

Arena bytes come from the recording allocator: `print_allocations()` prints
`[RecordingMicroAllocator] Arena allocation total N bytes` at the C level, so the output is
captured by redirecting file descriptors 1 and 2 (`os.dup2`), not `sys.stdout`
(ecosystem survey section 3; a bisection over `arena_size` agrees within alignment).

`tflite-micro` only has wheels for x86-64 Linux, CPython 3.10-3.13: the import is guarded
and `micro_unavailable_reason()` says why it is missing.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import re
import sys
import tempfile
from collections.abc import Callable

import numpy as np

from tfopt.tflite import tflm_ops
from tfopt.tflite.model_info import inspect_model, read_bytes

_MISSING_OP_RE = re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'")
_START_ARENA = 1 << 20
_MAX_ARENA = 1 << 30


class MicroUnavailableError(RuntimeError):
    """The tflite-micro runtime cannot be imported on this platform."""


def micro_unavailable_reason() -> str | None:
    """None if the TFLM runtime imports; otherwise a one-line reason."""
    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError as err:
        return (f"tflite-micro runtime not importable ({err}); its wheels exist only for "
                "x86-64 Linux, CPython 3.10-3.13 (pip install tflite-micro)")
    return None


def micro_available() -> bool:
    """Whether the TFLM Python runtime can be imported here."""
    return micro_unavailable_reason() is None


def _runtime():
    reason = micro_unavailable_reason()
    if reason:
        raise MicroUnavailableError(reason)
    from tflite_micro.python.tflite_micro import runtime

    return runtime


def capture_fd_output(fn: Callable[[], object]) -> tuple[object, BaseException | None, str]:
    """Calls `fn` with the process's fds 1 and 2 redirected to a temporary file.

    C/C++ code (TFLM's MicroPrintf) writes to the file descriptors directly, past Python's
    `sys.stdout`. Exceptions are caught and returned so the captured text is never lost.

    Returns:
      (result or None, exception or None, captured text).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    libc = ctypes.CDLL(None)
    saved = (os.dup(1), os.dup(2))
    result = error = None
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            result = fn()
        except Exception as err:  # noqa: BLE001  (returned to the caller with the C output)
            error = err
        finally:
            libc.fflush(None)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        tmp.seek(0)
        text = tmp.read().decode("utf-8", errors="replace")
    return result, error, text


@dataclasses.dataclass(frozen=True)
class MicroReport:
    """Result of running one model on TFLM.

    Attributes:
      name: Model name or file.
      ok: The model allocated and ran on TFLM (and matched LiteRT within 1 LSB if compared).
      flash_bytes: Model size in bytes (what the firmware stores in flash).
      arena_bytes: Tensor arena bytes the recording allocator reports (None if it did not load).
      ops: Distinct operators in the model.
      unsupported_ops: Ops TFLM has no kernel for.
      max_diff_lsb: Largest |TFLM - LiteRT reference| over all compared outputs, in LSB of
        the output tensor (None if not compared).
      num_compared: How many inputs were compared.
      error: One-line reason when `ok` is False.
    """

    name: str
    ok: bool
    flash_bytes: int
    arena_bytes: int | None
    ops: tuple[str, ...]
    unsupported_ops: tuple[str, ...] = ()
    max_diff_lsb: int | None = None
    num_compared: int = 0
    error: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _first_error_line(text: str, err: BaseException | None) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines:
        return lines[0][:300]
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}" if err else ""


def load(content: bytes, *, arena_size: int | None = None, name: str = "model"):
    """A TFLM interpreter for `content`, growing the arena until allocation succeeds.

    Returns:
      (interpreter, captured C output).

    Raises:
      RuntimeError: (one line) TFLM cannot load the model; names the model and, when TFLM
        lacks a kernel, the op.
    """
    runtime = _runtime()
    # Weights stay in the model buffer (flash); the arena holds activations and runtime
    # structs, so its start size does not scale with the model.
    size = arena_size or _START_ARENA
    while True:
        interp, err, text = capture_fd_output(
            lambda size=size: runtime.Interpreter.from_bytes(content, arena_size=size))
        if err is None:
            return interp, text
        missing = _MISSING_OP_RE.findall(text)
        if missing:
            raise RuntimeError(f"{name}: TFLite Micro has no kernel for op(s) "
                               f"{sorted(set(missing))}")
        # TFLM prints e.g. "Failed to allocate tail memory. Requested: 80, available 0".
        too_small = "failed to allocate" in (text + str(err)).lower()
        if arena_size is None and too_small and size < _MAX_ARENA:
            size *= 4
            continue
        raise RuntimeError(f"{name}: TFLite Micro failed to load the model: "
                           f"{_first_error_line(text, err)}") from err


def arena_bytes_of(interp) -> int:
    """Arena bytes in use: the total of `arena_breakdown_of` (one parse of the recording
    allocator's C-level report)."""
    return arena_breakdown_of(interp)["total"]


_USED_RE = re.compile(r"'([^']+)' used (\d+) bytes")
# print_allocations() categories -> arena_breakdown keys.
_TAIL_KEYS = {"NodeAndRegistration struct": "node_and_registration",
              "TfLiteEvalTensor data": "eval_tensors",
              "Persistent buffer data": "kernel_data",
              "Persistent TfLiteTensor data": "persistent_tensors",
              "Persistent TfLiteTensor quantization data": "persistent_tensors"}


def arena_breakdown_of(interp) -> dict[str, int]:
    """The arena in bytes by part, from the recording allocator's report.

    Keys: total; head (non-persistent: the planned activation tensors and kernel scratch
    buffers); node_and_registration (64 B per op); eval_tensors (24 B per tensor, constants
    included); kernel_data (kernels' persistent OpData, e.g. conv/depthwise output multiplier
    and shift, 2 x 4 B per output channel); persistent_tensors (TfLiteTensor structs of the
    I/O); other_tail (tail not itemised by the recorder: the op option structs parsed from the
    flatbuffer, allocator and planner objects).
    """
    _, err, text = capture_fd_output(interp.print_allocations)
    parts = {k: int(v) for k, v in re.findall(r"Arena allocation (total|head|tail) (\d+)", text)}
    if err is not None or set(parts) != {"total", "head", "tail"}:
        raise RuntimeError(f"could not read the TFLM arena from print_allocations(): "
                           f"{_first_error_line(text, err)!r}")
    out = {"total": parts["total"], "head": parts["head"]}
    for label, used in _USED_RE.findall(text):
        key = _TAIL_KEYS.get(label, "other_tail")
        out[key] = out.get(key, 0) + int(used)
    out["other_tail"] = parts["tail"] - sum(v for k, v in out.items()
                                            if k not in ("total", "head", "other_tail"))
    return out


def arena_breakdown(content: bytes, *, name: str = "model") -> dict[str, int]:
    """Loads `content` in TFLM and returns `arena_breakdown_of` its interpreter."""
    interp, _ = load(content, name=name)
    return arena_breakdown_of(interp)


def _model_inputs(info, x: np.ndarray | None, num_samples: int, seed: int) -> np.ndarray:
    """Inputs in the model's input dtype: quantized for int8, random when `x` is None."""
    from tfopt.tflite.evaluate import quantize

    t = info.inputs[0]
    int8 = t.dtype == "int8"
    if x is None:
        rng = np.random.default_rng(seed)
        shape = (num_samples,) + t.shape[1:]
        if int8:
            return rng.integers(-128, 128, size=shape).astype(np.int8)
        return rng.standard_normal(shape).astype(np.float32)
    x = np.asarray(x)[:num_samples]
    if tuple(x.shape[1:]) != tuple(t.shape[1:]):
        raise ValueError(f"images have shape {tuple(x.shape[1:])} but the model expects "
                         f"{tuple(t.shape[1:])}")
    if not int8:
        return x.astype(np.float32)
    if x.dtype == np.int8:
        return x
    return quantize(x.astype(np.float32), t.scale, t.zero_point, np.int8)


def run_micro(
    model: str | os.PathLike | bytes,
    x: np.ndarray | None = None,
    *,
    num_samples: int = 10,
    compare: bool = True,
    arena_size: int | None = None,
    seed: int = 0,
    name: str | None = None,
) -> MicroReport:
    """Loads an int8 model in TFLM, runs it, measures the arena, compares with LiteRT.

    Never raises for a model TFLM cannot run: the report has ok=False and a one-line `error`
    naming the model and the missing op. Bad arguments still raise ValueError.

    Args:
      model: Path or bytes of a .tflite model (int8 for deployment; float models are run
        but not compared).
      x: Normalised float images (quantized with the model's input parameters) or int8
        tensors; None uses `num_samples` random int8 inputs.
      num_samples: How many images to run and compare (at least one invocation always runs).
      compare: Compare each output with LiteRT's reference kernels (BUILTIN_REF).
      arena_size: Arena to give TFLM in bytes; None starts at 1 MiB and grows 4x while
        allocation fails (up to 1 GiB). The reported arena_bytes is what the allocator actually used.

    Raises:
      MicroUnavailableError: tflite-micro is not installed / has no wheel here.
      ValueError: not a TFLite file, or images of the wrong shape.
    """
    where = name or (os.fspath(model) if not isinstance(model, (bytes, bytearray)) else "model")
    content = read_bytes(model, name=where)
    info = inspect_model(content, name=where)
    _runtime()
    xq = _model_inputs(info, x, max(1, num_samples), seed)
    missing = tflm_ops.unsupported_ops(info.op_names)
    base = {"name": where, "flash_bytes": len(content), "ops": info.op_names}
    if missing:
        return MicroReport(**base, ok=False, arena_bytes=None, unsupported_ops=missing,
                           error=f"{where}: TFLite Micro has no kernel for op(s) {list(missing)}")
    # Only an integer output can be compared in LSB; float models are run but not compared.
    compare = compare and info.outputs[0].dtype == "int8"
    try:
        interp, _ = load(content, arena_size=arena_size, name=where)
        outputs = []
        for i in range(len(xq)):
            _, err, text = capture_fd_output(lambda i=i: (interp.set_input(xq[i:i + 1], 0),
                                                          interp.invoke()))
            if err is not None:
                raise RuntimeError(f"{where}: TFLM invoke failed: {_first_error_line(text, err)}")
            outputs.append(np.array(interp.get_output(0)).reshape(-1))
        arena = arena_bytes_of(interp)
    except RuntimeError as err:
        missing = tuple(sorted(set(_MISSING_OP_RE.findall(str(err)))))
        return MicroReport(**base, ok=False, arena_bytes=None, unsupported_ops=missing,
                           error=str(err).splitlines()[0])
    max_diff = None
    ok = True
    error = None
    if compare:
        from tfopt.tflite.evaluate import predict

        ref = predict(content, xq, reference=True, raw=True, name=where)
        max_diff = int(np.max(np.abs(np.stack(outputs).astype(np.int32) - ref.astype(np.int32))))
        if max_diff > 1:
            ok = False
            error = f"{where}: TFLM output differs from LiteRT reference by {max_diff} LSB (> 1)"
    return MicroReport(**base, ok=ok, arena_bytes=arena, max_diff_lsb=max_diff,
                       num_compared=len(xq) if compare else 0, error=error)
