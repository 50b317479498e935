"""Keras -> TFLite conversion: float32, float16, dynamic-range and full-integer int8.

Deployment graphs have batch size 1: the model is traced with a fixed `(1, H, W, C)` input
signature, so a `Reshape` of a channel shuffle becomes RESHAPE + TRANSPOSE only (a `None`
batch adds SHAPE / STRIDED_SLICE / PACK ops; see docs/deployment.md).

int8 follows the workaround for tensorflow/tensorflow#38285 and tfmot #765 (design notes,
ecosystem survey section 2 item 6): always `supported_ops=[TFLITE_BUILTINS_INT8]`, int8 input
and output, and a representative dataset, also for QAT models. After conversion every operator
and the I/O tensors are checked: a float fallback raises `Int8FallbackError` listing the ops.

Pruned models still wrapped by tfmot are stripped first (`tfopt.compress.pruning.strip`); the stored weights
keep their zeros, so only gzip shrinks (ecosystem survey section 2 item 5).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import pathlib
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tfopt.tflite.calibrate import CALIBRATIONS, replaced_ranges
from tfopt.tflite.model_info import ModelInfo, inspect_model, with_metadata

from tfopt.core.choices import CONVERT_MODES as MODES  # noqa: E402  (defined once)

METADATA_FORMAT = "tfopt-tflite/1"
# How a device turns a raw image into the int8 input tensor (stored in the metadata).
QUANTIZE_FORMULA = "q = clip(round(x / input_scale) + input_zero_point, -128, 127)"
# tfopt.data normalises [0, 1]-scaled pixels per channel (tfopt/data/info.py).
NORMALIZATION_FORMULA = "x = (pixel / 255 - mean[c]) / std[c]"


class Int8FallbackError(ValueError):
    """An int8 conversion left float operators or float input/output tensors."""


@dataclasses.dataclass(frozen=True)
class ConversionResult:
    """A converted model.

    Attributes:
      content: The .tflite flatbuffer (with a `tfopt` metadata entry).
      mode: One of MODES.
      info: Parsed operators and I/O tensors.
      metadata: The JSON metadata stored in the model (normalisation, labels, input quantization).
      names: Tensor-name sidecar of a lean int8 model (`tfopt.tflite.lean`), else None.
      lean_report: What the lean int8 pass did (RELUs fused, per-tensor layers, bytes before).
    """

    content: bytes
    mode: str
    info: ModelInfo
    metadata: dict
    names: dict | None = None
    lean_report: dict | None = None

    @property
    def size_bytes(self) -> int:
        """Size of the .tflite file in bytes."""
        return len(self.content)

    @property
    def ops(self) -> tuple[str, ...]:
        """Distinct builtin operator names, sorted."""
        return self.info.op_names

    @property
    def input_scale(self) -> float | None:
        return self.info.inputs[0].scale

    @property
    def input_zero_point(self) -> int | None:
        return self.info.inputs[0].zero_point

    def save(self, path: str | os.PathLike) -> pathlib.Path:
        """Writes the .tflite file (parents created) and returns its path; a lean model's
        tensor names go to NAME.names.json beside it (read by `inspect`)."""
        from tfopt.tflite import lean

        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.content)
        if self.names:
            path.with_suffix("").with_suffix(".names.json").write_text(
                lean.sidecar_json(self.names))
        return path


# Which runtime the int8 file is tuned for: "any" is exact on both LiteRT and TFLM and fast on
# XNNPACK; "tflm" adds shuffles as GATHER (smaller flash and arena, slow on LiteRT); "litert"
# adds dense block-diagonal groups (faster on XNNPACK, groups x the MACs on TFLM).
TARGETS = ("any", "tflm", "litert")
TARGET_OPTIONS = {"any": {}, "tflm": {"shuffle_as_gather": True},
                   "litert": {"dense_groups": True, "densify_for_shuffles": True,
                              "affine_as_depthwise": True}}


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """One-line ValueError naming `value`, the closest allowed one, and all of `allowed`."""
    if value not in allowed:
        near = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"{name}={value!r}{hint}; expected one of {allowed}")


def _is_wrapped(model, class_names: Iterable[str]) -> bool:
    names = set(class_names)
    return any(type(layer).__name__ in names for layer in model.layers)


def prepare_for_conversion(model):
    """Returns the model to convert: tfmot pruning wrappers stripped; other models unchanged.

    QAT models (QuantizeWrapper layers) are converted as they are: the converter reads their
    fake-quant ranges.
    """
    if _is_wrapped(model, ("PruneLowMagnitude",)):
        from tfopt.compress import pruning

        model = pruning.strip(model)  # re-applies masks, swaps tfopt's prunable stand-ins back
    return model


def _input_shape(model) -> tuple[int, ...]:
    if len(model.inputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(model.inputs)} inputs; "
                         "tfopt.tflite converts single-input image classifiers only")
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"model {model.name!r} input shape {shape} has unknown dimensions; "
                         "build it with a fixed (H, W, C) input")
    return tuple(int(d) for d in shape)


def batch_one_function(model):
    """The model's inference call (`training=False`) traced for a batch-1 float32 input.

    Returns:
      (concrete function, a `tf.Module` tracking it and the model's variables: the converter's
      `trackable_obj`; handing it the Keras model instead makes it serialise every layer).
    """
    import tensorflow as tf

    # The TFLite input tensor is named after the Keras input ("image", ...).
    spec = tf.TensorSpec((1,) + _input_shape(model), tf.float32, name=model.input_names[0])
    module = tf.Module()
    module.model_variables = list(model.variables)
    module.serve = tf.function(lambda x: model(x, training=False))
    return module.serve.get_concrete_function(spec), module


def _num_outputs(model) -> int | None:
    shape = getattr(model, "output_shape", None)
    return shape[-1] if isinstance(shape, tuple) and shape else None


def _representative(data, model, *, num_samples: int, seed: int,
                    preprocessing: Mapping[str, Any]) -> Callable[[], Iterable[list]]:
    """Normalises the accepted representative-data forms into TFLite's generator contract."""
    expected = _input_shape(model)
    if isinstance(data, str) or callable(data):
        if isinstance(data, str):
            from tfopt import data as tfdata

            data = tfdata.representative_dataset(data, num_samples=num_samples, seed=seed,
                                                 **dict(preprocessing))
            source = f"representative data from {data.info.name!r}"
        else:
            source = "representative data"
        first = next(iter(data()), None)
        shape = tuple(np.shape(first[0])) if first is not None else None
        if shape != (1,) + expected:
            raise ValueError(f"model {model.name!r}: {source} yields batches of shape {shape}, "
                             f"expected {(1,) + expected} (resize with preprocessing="
                             "{'image_size': ..., 'to_rgb': ...})")
        outputs, info = _num_outputs(model), getattr(data, "info", None)
        if info is not None and outputs and outputs > 1 and outputs != info.num_classes:
            raise ValueError(f"model {model.name!r} has {outputs} outputs but dataset "
                             f"{info.name!r} has {info.num_classes} classes; "
                             "calibrate on the dataset it was trained on")
        return data
    x = np.asarray(data, dtype=np.float32)
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"representative data shape {x.shape} does not match model "
                         f"{model.name!r} input (N,) + {expected}")
    x = x[:num_samples]

    def gen():
        for i in range(len(x)):
            yield [x[i:i + 1]]

    return gen


def check_integer_only(content: bytes, *, name: str = "model") -> ModelInfo:
    """Checks that every operator and the I/O tensors of a converted model are integer.

    Returns:
      The parsed model.

    Raises:
      Int8FallbackError: (one line) lists each offending op with its index and dtypes,
        and any non-int8 input/output tensor.
    """
    info = inspect_model(content, name=name)
    problems = [f"{op.name}#{op.index} ({'/'.join(sorted(set(op.input_dtypes + op.output_dtypes)))})"
                for op in info.float_ops()]
    problems += [f"{kind} '{t.name}' is {t.dtype}"
                 for kind, tensors in (("input", info.inputs), ("output", info.outputs))
                 for t in tensors if t.dtype != "int8"]
    if problems:
        raise Int8FallbackError(
            f"{name}: int8 conversion is not integer-only; offending ops/tensors: "
            + ", ".join(problems))
    return info


def _converter(model, mode: str, representative):
    import tensorflow as tf

    fn, module = batch_one_function(model)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    # Freeze the traced graph directly instead of a SavedModel round trip: same ops and
    # bytes for these CNNs, 3x less CPU (ResNet-101 at width 0.125: 2.8 s vs 9.3 s, measured).
    conv.experimental_lower_to_saved_model = False
    if mode == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv


def _as_normalization(normalization) -> dict | None:
    if normalization is None:
        return None
    if isinstance(normalization, Mapping):
        mean, std = normalization["mean"], normalization["std"]
    else:
        mean, std = normalization
    as_list = lambda v: np.asarray(v, dtype=float).reshape(-1).tolist()
    return {"mean": as_list(mean), "std": as_list(std)}


def _dataset_facts(representative) -> dict:
    """Labels and normalisation from a tfopt.data representative callable's `.info`."""
    info = getattr(representative, "info", None)
    if info is None:
        return {"labels": None, "normalization": None}
    return {"labels": list(info.class_names) if info.class_names else None,
            "normalization": _as_normalization((info.mean, info.std))}


def convert(
    model,
    mode: str = "int8",
    *,
    representative_data: str | np.ndarray | Callable[[], Iterable[list]] | None = None,
    num_calibration_samples: int = 200,
    normalization: Mapping[str, Any] | Sequence[Any] | None = None,
    labels: Sequence[str] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    seed: int = 0,
    name: str | None = None,
    lean: bool = True,
    fold_bn: bool | None = None,
    target: str = "any",
    calibration: str = "percentile",
) -> ConversionResult:
    """Converts a Keras model (plain, pruned or QAT) to a batch-1 TFLite model.

    Args:
      model: A functional tf_keras model with one fixed-shape image input. tfmot pruning
        wrappers are stripped; QAT models are converted with their learned ranges.
      mode: "float32", "float16" (float16 weights), "dynamic" (int8 weights, float
        activations) or "int8" (full integer, int8 input and output).
      representative_data: int8 only (required, also for QAT). A tfopt.data source name
        (calibrates on its train split through `tfopt.data.representative_dataset`), a float32
        array of normalised images (N, H, W, C), or a callable yielding `[x[None]]` batches.
      num_calibration_samples: How many images calibrate the int8 ranges.
      normalization: (mean, std) or {"mean", "std"} applied to images before the model;
        recorded in the metadata. Taken from the dataset when `representative_data` names one.
      labels: Class names, recorded in the metadata (from the dataset when one is named).
      preprocessing: Extra keyword arguments for tfopt.data (image_size, to_rgb, data_dir).
      seed: Seed of the calibration sample.
      name: Model name used in messages and metadata (default: the Keras model name).
      lean: int8 only: apply `make_lean` (standalone RELU as a 1x1 MAX_POOL_2D clamp,
        1-channel groups as depthwise, depthwise with multiplier 1, FULLY_CONNECTED as 1x1
        CONV_2D, per-tensor weights where no channel's weight error exceeds 3 %, strip tensor
        names into `.names`, share equal flatbuffer objects). False keeps the converter's flatbuffer.
      fold_bn: int8 only: before converting, fold each BatchNormalization after a channel
        concat into the convs before it (`tfopt.tflite.fold_bn`, exact in float; a ghost
        module's BN then costs one ADD on half its channels instead of a MUL and an ADD on all).
        None: as `lean`. The count is `lean_report["concat_bn_folded"]` (lean files only).
      target: int8 lean only: "any" (default; exact on LiteRT and TFLM, XNNPACK-friendly),
        "tflm" (channel shuffles as GATHER: smaller file and TFLM arena, but LiteRT runs
        GATHER without XNNPACK) or "litert" (grouped convs on large activations and every
        grouped neighbour of a shuffle written dense: faster on XNNPACK, more flash and
        groups x the MACs on TFLM).
      calibration: int8 post-training only: where the activation ranges come from
        (`tfopt.tflite.calibrate`). "percentile" (default) is the 99th percentile over the
        calibration images of each image's extremes, re-measured without the converter's
        in-place buffers. "minmax" is their exact min/max. "converter" is the converter's
        recorded ranges, which give a residual branch the range of its sum (resnet101_v01 w0.25
        on CIFAR-10: 77.04 % int8; minmax 78.28 %; percentile 78.66 %; Keras 78.82 %). QAT
        models keep their learned ranges.

    Returns:
      A `ConversionResult`; `.content` holds the .tflite bytes.

    Raises:
      ValueError: unknown mode, missing/mis-shaped representative data, or a conversion error.
      Int8FallbackError: the int8 model still has float operators or float I/O.
    """
    _check_choice("mode", mode, MODES)
    _check_choice("target", target, TARGETS)
    _check_choice("calibration", calibration, CALIBRATIONS)
    name = name or model.name
    preprocessing = dict(preprocessing or {})
    if mode == "int8" and representative_data is None:
        raise ValueError(f"{name}: mode='int8' needs representative_data (a dataset name, an "
                         "array of images or a generator), also for QAT models")
    model = prepare_for_conversion(model)
    bn_folded = 0
    if mode == "int8" and (lean if fold_bn is None else fold_bn):
        from tfopt.tflite.fold_bn import fold_concat_batch_norm

        model, folded = fold_concat_batch_norm(model)
        bn_folded = folded["batch_norms"]
    input_shape = _input_shape(model)
    representative = None
    if mode == "int8":
        representative = _representative(representative_data, model,
                                         num_samples=num_calibration_samples, seed=seed,
                                         preprocessing=preprocessing)
    elif isinstance(representative_data, str):  # only for the labels and normalisation
        representative = _representative(representative_data, model, num_samples=1, seed=seed,
                                         preprocessing=preprocessing)
    facts = _dataset_facts(representative)
    qat = _is_wrapped(model, ("QuantizeWrapper", "QuantizeWrapperV2"))
    calibrate = mode == "int8" and not qat
    try:
        with warnings.catch_warnings():
            # Emitted for every int8-input conversion on the frozen-graph path; the input
            # scale/zero point come from the representative data instead.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            with replaced_ranges(representative,
                                 calibration if calibrate else "converter") as replaced:
                content = _converter(model, mode, representative).convert()
    except Exception as err:  # ConverterError / ValueError from the MLIR converter
        first = next((line.strip() for line in str(err).splitlines() if "error" in line.lower()),
                     str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
        raise ValueError(f"{name}: TFLite {mode} conversion failed: {first}") from err
    if mode == "int8":
        info = check_integer_only(content, name=name)
    else:
        info = inspect_model(content, name=name)
    import tensorflow as tf

    metadata = {
        "format": METADATA_FORMAT,
        "name": name,
        "mode": mode,
        "input_shape": [1, *input_shape],
        "input_dtype": info.inputs[0].dtype,
        "input_scale": info.inputs[0].scale,
        "input_zero_point": info.inputs[0].zero_point,
        "output_scale": info.outputs[0].scale,
        "output_zero_point": info.outputs[0].zero_point,
        "quantize_formula": QUANTIZE_FORMULA if mode == "int8" else None,
        "normalization": (_as_normalization(normalization) if normalization is not None
                          else facts["normalization"]),
        "normalization_formula": NORMALIZATION_FORMULA,
        "labels": list(labels) if labels is not None else facts["labels"],
        "dataset": representative_data if isinstance(representative_data, str) else None,
        # Only what changes the images; data_dir/limit are local choices, not model facts.
        "preprocessing": {k: preprocessing[k] for k in ("image_size", "to_rgb")
                          if k in preprocessing} or None,
        "qat": qat,
        # Where the activation ranges came from; tensors: ranges re-measured, narrowed: of them
        # narrower than the converter's, max_ratio: its widest range / ours.
        "calibration": {"method": calibration, **replaced} if calibrate else None,
        "tensorflow": tf.__version__,
    }
    content = with_metadata(content, metadata)
    names = report = None
    if mode == "int8" and lean:
        content, names, report = make_lean(content, name=name, **TARGET_OPTIONS[target])
        report["concat_bn_folded"] = bn_folded
        check_integer_only(content, name=name)
    return ConversionResult(content, mode, inspect_model(content, name=name), metadata,
                            names, report)


def make_lean(content: bytes, *, name: str = "model", fuse_relu: bool = False,
              relu_as_pool: bool = True, fc_as_conv: bool = True,
              dw_multiplier_one: bool = True,
              dense_groups: bool = False,
              fold_shuffles: bool = True,
              recompute: bool = True,
              shuffle_as_gather: bool = False,
              densify_for_shuffles: bool = False,
              affine_as_depthwise: bool = False,
              gate_after_pool: bool = True) -> tuple[bytes, dict, dict]:
    """The lean int8 pass: `tfopt.tflite.rewrite` (each standalone RELU as a 1x1 MAX_POOL_2D
    clamp that XNNPACK runs, 1-channel-group CONV_2D as DEPTHWISE_CONV_2D, per-tensor weights
    where cheap, drop orphans; with `fuse_relu` also concat+RELU fused),
    `tfopt.tflite.rewrite_dw` (depthwise with depth_multiplier > 1 as an exact channel
    replication + multiplier 1, which XNNPACK runs 10x faster in int8),
    `tfopt.tflite.rewrite_fc` (FULLY_CONNECTED as a 1x1 CONV_2D), then `tfopt.tflite.lean`
    (strip names, share objects).

    `fuse_relu` is off by default: a CONCATENATION with a fused RELU runs fast on XNNPACK, but
    TFLite Micro's output then differs from LiteRT's reference kernels (7-11 LSB measured on
    vgg19_v11 at width 0.125), so it is only for LiteRT-only deployments. `relu_as_pool`
    (vgg19_v08 int8 4.52 -> 0.97 ms on LiteRT, float 0.56 ms) is exact on TFLM; the 1 LSB once
    blamed on it came from FULLY_CONNECTED, whose int8 requantization rounds differently in
    TFLM and in LiteRT's reference kernels, also in the converter's own file: `fc_as_conv`
    removes that (tfopt/tflite/rewrite_fc.py). `dense_groups` (off: TFLM would run groups x the
    MACs) writes grouped convs with large activations as dense block-diagonal ones, which
    XNNPACK runs faster in int8 (tfopt/tflite/rewrite_groups.py), for LiteRT-only deployments;
    it also lets `fold_shuffles` densify a grouped neighbour. `fold_shuffles` moves each int8
    channel shuffle (RESHAPE + TRANSPOSE + RESHAPE) into the filter of a dense conv next to it,
    bit-identical (tfopt/tflite/rewrite_shuffle.py). `recompute` copies a 1x1 conv chain whose
    output is alive at the arena peak for its later readers, or defers an op to its first
    reader, where that lowers the planned arena (tfopt/tflite/rewrite_recompute.py).
    `shuffle_as_gather` (off: LiteRT runs GATHER without XNNPACK, 2.2x slower on
    resnet101_v13) writes each remaining shuffle as one GATHER, for TFLM deployments: smaller
    file and arena (rewrite_shuffle.shuffles_as_gather). `densify_for_shuffles` (off; on for
    `--target=litert`) lets `dense_groups` write every grouped neighbour of a shuffle dense,
    whatever its size, so that it takes the permutation (XNNPACK: resnet101_v13 int8/f32
    0.71 -> 0.59, file 222 -> 398 KB; rewrite_shuffle.fold_shuffles), after moving each
    shuffle read by a squeeze-excite block past it (rewrite_shuffle.shuffles_past_se:
    vgg19_v12 0.77 -> 0.68). `affine_as_depthwise` (off; on for `--target=litert`) writes each
    int8 MUL by a per-channel constant followed by an ADD of one (a BN the converter could not
    fold) as one 1x1 DEPTHWISE_CONV_2D, which XNNPACK runs in half the time; rounded once
    instead of twice, so within 1 LSB of the converter's graph (tfopt/tflite/rewrite_affine.py).
    `gate_after_pool` (on) moves a squeeze-excite gate MUL after the max pool that reads it, so
    it multiplies a 4x smaller map, bit-identical (tfopt/tflite/rewrite_pool.py).

    Returns:
      (lean .tflite bytes, tensor-name sidecar, {"bytes_before", "relu_fused", "relu_as_pool",
      "grouped_to_depthwise", "dw_multiplier_one", "fc_as_conv", "dense_groups",
      "shuffles_past_se", "shuffles_folded", "shuffles_as_gather", "affine_as_depthwise",
      "gates_after_pool", "ratio_capped",
      "zero_biases_shared", "concats_sunk", "recomputed", "reordered", "peak_bytes", "offline_plan",
      "planned_head_bytes", "per_tensor_layers", "per_channel_layers"});
      output scales whose requantization ratio would make XNNPACK refuse the model are raised
      (`tfopt.tflite.rewrite_scale`); the operators
      are put in the order with the lowest activation peak found (`tfopt.tflite.schedule`),
      and an offline TFLM arena plan is stored when it beats TFLM's own (`tfopt.tflite.arena_plan`);
      channel concats at the activation peak are moved past the per-channel ops after them
      (`tfopt.tflite.rewrite_concat`, bit-identical).
    """
    from tfopt.tflite import (arena_plan, lean, rewrite, rewrite_affine, rewrite_concat,
                              rewrite_dw, rewrite_fc, rewrite_groups, rewrite_pool,
                              rewrite_recompute, rewrite_scale, rewrite_shuffle, schedule)
    from tfopt.tflite.model_info import _model_object

    model = _model_object(content, name)
    # (report key, pass): run in this order; each pass returns what its key reports.
    passes = [
        ("relu_fused", lambda m: rewrite.fuse_concat_relu(m) if fuse_relu else 0),
        ("relu_as_pool", lambda m: rewrite.relu_as_max_pool(m) if relu_as_pool else 0),
        ("grouped_to_depthwise", rewrite.grouped_to_depthwise),
        ("dw_multiplier_one",
         lambda m: rewrite_dw.depthwise_multiplier_one(m) if dw_multiplier_one else 0),
        ("fc_as_conv", lambda m: rewrite_fc.fc_as_conv(m) if fc_as_conv else 0),
        ("shuffles_past_se",
         lambda m: rewrite_shuffle.shuffles_past_se(m) if densify_for_shuffles else 0),
        ("shuffles_folded", lambda m: rewrite_shuffle.fold_shuffles(
            m, densify=dense_groups, any_size=densify_for_shuffles)
         if fold_shuffles else 0),
        ("dense_groups",
         lambda m: rewrite_groups.dense_groups(m)["layers"] if dense_groups else 0),
        ("shuffles_as_gather",
         lambda m: rewrite_shuffle.shuffles_as_gather(m) if shuffle_as_gather else 0),
        ("affine_as_depthwise",
         lambda m: rewrite_affine.affine_as_depthwise(m) if affine_as_depthwise else 0),
        ("gates_after_pool",
         lambda m: rewrite_pool.gate_after_max_pool(m) if gate_after_pool else 0),
        ("per_tensor_weights", rewrite.per_tensor_weights),
        ("ratio_capped", rewrite_scale.cap_requant_ratio),
        ("zero_biases_shared", rewrite.share_zero_biases),
        ("dropped", rewrite.drop_unused),
        ("memory_order", schedule.memory_order),
        ("concats_sunk", rewrite_concat.sink_concat),
        ("recomputed", lambda m: rewrite_recompute.recompute_at_peak(m) if recompute else 0),
        ("arena_plan", arena_plan.offline_plan),
    ]
    done = {key: run(model) for key, run in passes}
    names = lean.strip_names(model)
    order, plan, layers = done.pop("memory_order"), done.pop("arena_plan"), done.pop(
        "per_tensor_weights")
    done.pop("dropped")
    report = {"bytes_before": len(content), **done,
              "reordered": order["reordered"], "peak_bytes": order["peak_after"],
              "offline_plan": plan["planned"], "planned_head_bytes": plan["offline_head"],
              "per_tensor_layers": sum(r["per_tensor"] for r in layers),
              "per_channel_layers": sum(not r["per_tensor"] for r in layers)}
    return lean.serialize(model), names, report


def convert_int8(model, representative_data, **kwargs) -> ConversionResult:
    """Full-integer int8 conversion with checks; see `convert` for the arguments."""
    return convert(model, "int8", representative_data=representative_data, **kwargs)
