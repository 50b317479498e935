"""Run .tflite models with the LiteRT interpreter: accuracy, size, operators, latency.

This is the only tfopt module that imports the TFLite interpreter (`ai_edge_litert`;
TF 2.21's `tf.lite.Interpreter` is deprecated in its favour). The TFLM runner
(`tfopt/tflite/micro.py`) borrows `predict(..., reference=True)` from here for its
bit-exactness check against LiteRT's reference kernels.

Inputs are normalised float images; an int8 model's inputs are quantized with the model's
own input scale and zero point (`q = clip(round(x / scale) + zero_point, -128, 127)`).
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import time
from collections.abc import Sequence

import numpy as np

from tfopt.tflite.model_info import ModelInfo, inspect_model, read_bytes

_INT_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255),
               np.dtype(np.int16): (-32768, 32767)}


def all_threads() -> int:
    """How many threads "all threads" means here: the CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def make_interpreter(model: str | os.PathLike | bytes, *, num_threads: int = 1,
                     reference: bool = False, keep_all_tensors: bool = False):
    """A LiteRT interpreter with tensors allocated.

    Args:
      model: Path or bytes of a .tflite model.
      num_threads: CPU threads for the kernels.
      reference: Use the reference kernels (`OpResolverType.BUILTIN_REF`, no XNNPACK) that
        TFLite Micro's kernels are derived from, instead of the optimized default.
      keep_all_tensors: Give every tensor its own buffer (nothing computed in place), so each
        intermediate can be read after `invoke`; without a delegate (XNNPACK would compute its
        intermediates internally), on the builtin kernels unless `reference`.
    """
    from ai_edge_litert import interpreter as litert

    content = read_bytes(model)
    resolver = (litert.OpResolverType.BUILTIN_REF if reference
                else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if keep_all_tensors
                else litert.OpResolverType.AUTO)
    interp = litert.Interpreter(model_content=content, num_threads=num_threads,
                                experimental_op_resolver_type=resolver,
                                experimental_preserve_all_tensors=keep_all_tensors)
    interp.allocate_tensors()
    return interp


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """Float -> integer with the tensor's own parameters: clip(round(x/scale) + zp)."""
    lo, hi = _INT_RANGES[np.dtype(dtype)]
    return np.clip(np.round(x / scale) + zero_point, lo, hi).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer -> float: (q - zp) * scale."""
    return (q.astype(np.float32) - zero_point) * scale


def _check_images(x: np.ndarray, info: ModelInfo, where: str, source: str) -> None:
    expected = tuple(info.inputs[0].shape[1:])
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"{where}: {source} images have shape {tuple(x.shape[1:])} but the "
                         f"model expects {expected} (H, W, C)")


def predict(model: str | os.PathLike | bytes, x: np.ndarray, *, reference: bool = False,
            num_threads: int = 1, raw: bool = False, name: str | None = None) -> np.ndarray:
    """Runs the model on each image (batch 1) and stacks the outputs.

    Args:
      x: Normalised float images (N, H, W, C); quantized here for an integer input.
      raw: Return the output tensor as stored (int8 for an int8 model) instead of
        dequantized float32.

    Returns:
      (N, num_outputs) array.
    """
    content = read_bytes(model, name=name)
    where = name or (os.fspath(model) if not isinstance(model, (bytes, bytearray)) else "model")
    info = inspect_model(content, name=where)
    x = np.asarray(x)
    _check_images(x, info, where, "input")
    interp = make_interpreter(content, num_threads=num_threads, reference=reference)
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    in_dtype = np.dtype(inp["dtype"])
    if in_dtype.kind in "iu" and x.dtype != in_dtype:
        scale, zp = inp["quantization"]
        x = quantize(x.astype(np.float32), scale, zp, in_dtype)
    else:
        x = x.astype(in_dtype)
    outputs = []
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i:i + 1])
        interp.invoke()
        outputs.append(interp.get_tensor(out["index"]).reshape(-1).copy())
    y = np.stack(outputs) if outputs else np.zeros((0,) + tuple(out["shape"][1:]))
    out_scale, out_zp = out["quantization"]
    if not raw and np.dtype(out["dtype"]).kind in "iu" and out_scale:
        y = dequantize(y, out_scale, out_zp)
    return y


def latency(model: str | os.PathLike | bytes, *, num_threads: int = 1, runs: int = 50,
            warmup: int = 5) -> dict:
    """Wall time of `invoke()` on one fixed random input, after `warmup` invocations.

    Also the calling thread's CPU time per invoke (`cpu_median_ms`): with `num_threads=1`
    LiteRT runs every kernel in the calling thread, so this is the compute time even on a
    machine shared with other jobs, where wall time includes waiting for a core.

    Returns:
      {"median_ms", "p90_ms", "cpu_median_ms", "runs", "num_threads"} (milliseconds).
    """
    if runs < 1:
        raise ValueError(f"runs={runs}; expected >= 1")
    interp = make_interpreter(model, num_threads=num_threads)
    inp = interp.get_input_details()[0]
    rng = np.random.default_rng(0)
    dtype = np.dtype(inp["dtype"])
    if dtype.kind in "iu":
        lo, hi = _INT_RANGES[dtype]
        data = rng.integers(lo, hi + 1, size=inp["shape"]).astype(dtype)
    else:
        data = rng.standard_normal(inp["shape"]).astype(dtype)
    interp.set_tensor(inp["index"], data)
    for _ in range(warmup):
        interp.invoke()
    times = np.empty(runs)
    cpu = np.empty(runs)
    for i in range(runs):
        c0, t0 = time.thread_time(), time.perf_counter()
        interp.invoke()
        times[i], cpu[i] = time.perf_counter() - t0, time.thread_time() - c0
    return {"median_ms": float(np.median(times) * 1e3),
            "p90_ms": float(np.percentile(times, 90) * 1e3),
            "cpu_median_ms": float(np.median(cpu) * 1e3),
            "runs": runs, "num_threads": num_threads}


def gzip_size(content: bytes) -> int:
    """Bytes after gzip (level 9): what zeros from pruning save in transfer/storage."""
    return len(gzip.compress(content, compresslevel=9, mtime=0))


@dataclasses.dataclass(frozen=True)
class TFLiteReport:
    """Evaluation of one .tflite model.

    Attributes:
      name: File or model name.
      mode: Conversion mode from the metadata ("int8", ...), or the input dtype if unknown.
      accuracy: Top-1 accuracy in [0, 1] on `num_examples` examples (None without data).
      num_examples: How many examples were evaluated.
      size_bytes / gzip_bytes: File size and gzip size in bytes.
      ops: Distinct operators, sorted.
      latency_1_thread / latency_all_threads: `latency()` dicts (milliseconds).
      keras_accuracy: The Keras float model's accuracy on the same examples (None if not given).
      accuracy_diff_pp: (accuracy - keras_accuracy) in percentage points.
      agreement: Fraction of examples where TFLite and Keras predict the same class.
    """

    name: str
    mode: str
    accuracy: float | None
    num_examples: int
    size_bytes: int
    gzip_bytes: int
    ops: tuple[str, ...]
    latency_1_thread: dict | None
    latency_all_threads: dict | None
    keras_accuracy: float | None = None
    accuracy_diff_pp: float | None = None
    agreement: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_split(dataset: str, split: str, *, info: ModelInfo, where: str,
               limit: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Loads a tfopt.data split with the model's recorded preprocessing and checks its shape."""
    from tfopt import data as tfdata

    preprocessing = dict(info.metadata.get("preprocessing") or {})
    x, y, data_info = tfdata.load_arrays(dataset, split, limit=limit, seed=seed, **preprocessing)
    _check_images(np.asarray(x), info, where, f"dataset {dataset!r} ({split})")
    outputs = info.outputs[0].shape[-1] if info.outputs and info.outputs[0].shape else None
    if outputs and outputs > 1 and outputs != data_info.num_classes:
        raise ValueError(f"{where}: the model has {outputs} outputs but dataset {dataset!r} has "
                         f"{data_info.num_classes} classes; evaluate it on its own dataset")
    return np.asarray(x, dtype=np.float32), np.asarray(y)


def evaluate_tflite(
    model: str | os.PathLike | bytes,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    *,
    keras_model=None,
    dataset: str | None = None,
    split: str = "test",
    limit: int | None = None,
    latency_runs: int = 50,
    warmup: int = 5,
    name: str | None = None,
) -> TFLiteReport:
    """Accuracy, size, gzip size, operators and latency of a .tflite model.

    Args:
      model: Path or bytes.
      x, y: Normalised float images (N, H, W, C) and integer labels; or give `dataset`.
      keras_model: The float Keras model to compare with, on the same examples.
      dataset: A tfopt.data source name, loaded with the preprocessing recorded in the model.
      split, limit: Which examples of `dataset`.
      latency_runs: Timed invocations (>= 50 for reported figures), after `warmup` ones;
        0 skips latency.

    Raises:
      ValueError: (one line naming the file) not a TFLite model, or images whose shape does
        not match the model's input.
    """
    content = read_bytes(model, name=name)
    where = name or (os.fspath(model) if not isinstance(model, (bytes, bytearray)) else "model")
    info = inspect_model(content, name=where)
    if x is None and dataset is not None:
        x, y = load_split(dataset, split, info=info, where=where, limit=limit)
    acc = keras_acc = diff = agreement = None
    n = 0
    if x is not None:
        if y is None:
            raise ValueError(f"{where}: images given without labels")
        y = np.asarray(y).reshape(-1)
        logits = predict(content, x, name=where)
        pred = logits.argmax(axis=1)
        n = len(y)
        acc = float(np.mean(pred == y)) if n else None
        if keras_model is not None and n:
            keras_pred = np.asarray(keras_model.predict(x, batch_size=128, verbose=0)).argmax(1)
            keras_acc = float(np.mean(keras_pred == y))
            diff = 100.0 * (acc - keras_acc)
            agreement = float(np.mean(keras_pred == pred))
    lat1 = latn = None
    if latency_runs:
        lat1 = latency(content, num_threads=1, runs=latency_runs, warmup=warmup)
        latn = latency(content, num_threads=all_threads(), runs=latency_runs, warmup=warmup)
    return TFLiteReport(
        name=where, mode=info.metadata.get("mode") or info.inputs[0].dtype, accuracy=acc,
        num_examples=n, size_bytes=len(content), gzip_bytes=gzip_size(content),
        ops=info.op_names, latency_1_thread=lat1, latency_all_threads=latn,
        keras_accuracy=keras_acc, accuracy_diff_pp=diff, agreement=agreement)


def format_report(report: TFLiteReport, extra: Sequence[tuple[str, str]] = ()) -> str:
    """A short human-readable summary (one `key: value` per line)."""
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f}%"

    lines = [f"model: {report.name} ({report.mode})",
             f"accuracy: {pct(report.accuracy)} on {report.num_examples} examples"]
    if report.keras_accuracy is not None:
        lines.append(f"keras float accuracy: {pct(report.keras_accuracy)} "
                     f"(diff {report.accuracy_diff_pp:+.2f} pp, agreement {pct(report.agreement)})")
    lines += [f"size: {report.size_bytes} B (gzip {report.gzip_bytes} B)",
              f"ops: {', '.join(report.ops)}"]
    for label, lat in (("1 thread", report.latency_1_thread),
                       ("all threads", report.latency_all_threads)):
        if lat:
            lines.append(f"latency {label} ({lat['num_threads']}): median {lat['median_ms']:.3f} "
                         f"ms, p90 {lat['p90_ms']:.3f} ms over {lat['runs']} runs")
    lines += [f"{k}: {v}" for k, v in extra]
    return "\n".join(lines)
