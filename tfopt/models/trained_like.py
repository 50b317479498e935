"""Trained-like BatchNormalization weights for untrained models (benchmarks of the int8 graph).

A freshly built model has BN beta = 0, moving mean 0 and moving variance 1: the converter folds
the zero offsets away, so a BN after a concat converts to a MUL only, where a trained model's
converts to MUL + ADD, and every conv's folded bias is zero (one shared buffer) where a trained
model's are distinct (resnet101_v13 at width 1.0: 68 more ADDs, +32 KB file, +36 KB TFLM
arena; docs/deployment.md). `trained_like_batch_norm` gives every BN seeded random values in
the ranges below; resnet101_v13 then converts to the bytes and arena of the model trained 4
epochs on CIFAR-10 (241,240 vs 239,760 B, arena 283,696 B both; measured in docs/deployment.md).
gamma stays near 1 as after short training (0.97-1.03 after one Fashion-MNIST epoch, measured):
a wide gamma spread makes folded filters per-channel where a trained model's are per-tensor.
"""

from __future__ import annotations

import numpy as np

GAMMA_RANGE = (0.9, 1.1)      # uniform
BETA_STD = 0.1                # normal, mean 0
MEAN_STD = 0.2                # normal, mean 0
VARIANCE_RANGE = (0.5, 2.0)   # uniform


def trained_like_batch_norm(model, *, seed: int = 0) -> int:
    """Sets gamma, beta, moving mean and moving variance of every BatchNormalization of
    `model` (in place, nested models included) to seeded random trained-like values (module
    docstring). Returns how many BatchNormalization layers were set."""
    from tfopt._keras import layers

    rng = np.random.default_rng(seed)
    bns = [layer for layer in _all_layers(model) if isinstance(layer, layers.BatchNormalization)]
    for layer in bns:
        n = int(layer.moving_mean.shape[0])
        values = {"gamma": rng.uniform(*GAMMA_RANGE, n), "beta": rng.normal(0.0, BETA_STD, n),
                  "moving_mean": rng.normal(0.0, MEAN_STD, n),
                  "moving_variance": rng.uniform(*VARIANCE_RANGE, n)}
        for v in layer.weights:
            key = v.name.split("/")[-1].split(":")[0]
            if key in values:
                v.assign(values[key].astype(v.dtype.as_numpy_dtype))
    return len(bns)


def _all_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
        else:
            yield layer
