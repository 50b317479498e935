"""The Keras-side measurements of a trial's model, and the ratios to its baseline.

Units: parameters and FLOPs are counts (fvcore convention, 1 multiply-add = 1 FLOP), bytes,
accuracy in percent, drops in percentage points (baseline minus this trial), ratios in percent.
Imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from tfopt import metrics
from tfopt._keras import layers
from tfopt.compress import sparsity
from tfopt.core.results import TrialResult
from tfopt.experiments.config import ExperimentConfig
from tfopt.experiments.grid import Trial
from tfopt.experiments.trial_data import TrialData
from tfopt.models import paper_variant, techniques_of
from tfopt.train import evaluate


def keras_measurements(
    config: ExperimentConfig,
    trial: Trial,
    model,
    data: TrialData,
    trial_dir: str,
    deps: dict[str, TrialResult],
) -> dict:
    """TrialResult fields: counts, accuracy, weights bytes, and the ratios to the baseline."""
    keras_acc = 100.0 * float(evaluate(model, data.test_ds)["accuracy"])
    params = int(metrics.count_params(model))
    nonzero = int(metrics.count_nonzero_params(model))
    flops = int(metrics.count_flops(model))
    weights_path = os.path.join(trial_dir, "weights.h5")
    model.save_weights(weights_path)
    conv_sparsity, paper_nonzero = sparsity_counts(model, is_qat=trial.recipe.last.kind == "qat")
    base = deps.get(trial.baseline) if trial.baseline != trial.id else None
    base_acc = keras_acc if base is None else base.keras_accuracy_pct
    base_params = params if base is None else base.params
    base_flops = flops if base is None else base.flops
    return {
        "techniques": techniques(trial.variant),
        "paper_variant": paper_variant(trial.variant),
        "dataset": config.dataset,
        "num_classes": data.info.num_classes,
        "input_shape": tuple(data.info.image_shape),
        "width_multiplier": config.width_of(trial.variant),
        "train_examples": data.train_examples,
        "test_examples": int(len(data.y_test)),
        "params": params,
        "nonzero_params": nonzero,
        "paper_nonzero_params": paper_nonzero,
        "conv_sparsity": round(conv_sparsity, 6),
        "flops": flops,
        "macs": int(metrics.count_macs(model)),
        "keras_weights_bytes": os.path.getsize(weights_path),
        "keras_accuracy_pct": round(keras_acc, 4),
        "baseline_accuracy_pct": round(base_acc, 4),
        "accuracy_drop_pp": round(base_acc - keras_acc, 4),
        "baseline_params": base_params,
        "rpr_pct": _pct(nonzero, base_params),
        "params_ratio_pct": _pct(params, base_params),
        "flops_ratio_pct": _pct(flops, base_flops),
    }


def _pct(part, whole):
    return round(100.0 * part / whole, 4) if whole else None


def sparsity_counts(model, *, is_qat: bool) -> tuple[float, int | None]:
    """(fraction of zero conv-kernel weights, the paper's non-zeroed count) of a model.

    tfopt.compress.sparsity reads kernels through tfmot wrappers; the pruning-preserving QAT
    wrapper only exposes its kernel symbolically, so a QAT model is measured from the kernel
    variables among its wrappers' trainable weights, and its non-zeroed count is None.
    """
    try:
        return float(sparsity.model_sparsity(model)), int(sparsity.paper_nonzero_count(model))
    except (AttributeError, TypeError, ValueError):
        if not is_qat:
            raise
    zeros = total = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)):
            for w in layer.trainable_weights:
                if w.name.split("/")[-1].split(":")[0].endswith("kernel"):
                    v = np.asarray(w.numpy())
                    zeros += int(v.size - np.count_nonzero(v))
                    total += int(v.size)
    return (zeros / total if total else 0.0), None


def techniques(variant: str) -> dict:
    """The variant's technique set as a flat dict (for the report's check-mark table)."""
    tech = techniques_of(variant)[1]
    if dataclasses.is_dataclass(tech):
        return {
            k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
            for k, v in dataclasses.asdict(tech).items()
        }
    return {"techniques": str(tech)} if tech is not None else {}
