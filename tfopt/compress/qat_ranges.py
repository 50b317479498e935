"""QAT activation ranges started from the float model, not from tfmot's [-6, 6].

tfmot's `MovingAverageQuantizer` starts every activation range at [-6, 6]. Each training step
moves it 0.1 % of the way to the batch's min/max (EMA decay 0.999, hard-coded; tfmot #368).
It therefore needs about 1,000 steps to forget the start.

tfopt's QAT fine-tunes one epoch of 4,096 images at batch 128, which is 32 steps, after which
a range is still 97 % of its start: 0.999 ** 32 = 0.968. Every activation whose real range
exceeds 6 is clipped in training and in the int8 file:
- resnet101_v01 at width 0.25 has a residual stream up to 294 (its max after 32 steps: 15);
- its QAT fell to 62.12 % against a control of 78.88 % (README "More seeds").

`init_activation_ranges` sets each range to where the EMA would converge: the mean over
calibration batches of each batch's min and max. The values come from the float model (inference
mode), with 0 included, as tfmot does. Only the moving-average activation ranges are set
("post_activation" and "output"). The input's range (tfmot's QuantizeLayer, an
AllValuesQuantizer) takes the min/max of every batch seen from its first step, and weight ranges
follow the weights every step (LastValueQuantizer).
"""

from __future__ import annotations

import numpy as np

from tfopt._keras import keras

RANGE_VARS = ("post_activation", "output")  # tfmot's <prefix>_min / <prefix>_max variables


def _short_name(variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def _range_pairs(layer) -> list[tuple[object, object]]:
    """(min var, max var) of each per-tensor activation range of a QAT layer."""
    by_name = {_short_name(w): w for w in layer.non_trainable_weights}
    pairs = []
    for prefix in RANGE_VARS:
        lo, hi = by_name.get(prefix + "_min"), by_name.get(prefix + "_max")
        if lo is not None and hi is not None and int(np.prod(lo.shape)) == 1:
            pairs.append((lo, hi))
    return pairs


def _source_layer(layer) -> str | None:
    """Name of the float layer (wrapped by a QuantizeWrapper) whose output the ranges quantize."""
    inner = getattr(layer, "layer", None)
    return inner.name if inner is not None else None


def range_targets(qat_model, float_model) -> list[tuple[str, object, object]]:
    """(float layer name, min var, max var) for every activation range found in both models."""
    float_names = {l.name for l in float_model.layers if len(l.inbound_nodes) == 1}
    targets = []
    for layer in qat_model.layers:
        pairs = _range_pairs(layer)
        source = _source_layer(layer) if pairs else None
        if source in float_names:
            targets.extend((source, lo, hi) for lo, hi in pairs)
    return targets


def batch_extremes(float_model, names: list[str], images: np.ndarray, *,
                   batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean over batches of each batch's min (<= 0) and max (>= 0) of each named layer's output.

    Full batches only, or one batch of every image when there are fewer than `batch_size`.
    """
    probe = keras.Model(float_model.inputs, [float_model.get_layer(n).output for n in names])
    n = len(images)
    starts = range(0, n - batch_size + 1, batch_size) if n >= batch_size else [0]
    size = batch_size if n >= batch_size else n
    mins, maxs = [], []
    for start in starts:
        outs = probe(np.asarray(images[start:start + size], np.float32), training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        mins.append([min(float(np.min(o)), 0.0) for o in outs])
        maxs.append([max(float(np.max(o)), 0.0) for o in outs])
    return np.mean(mins, axis=0), np.mean(maxs, axis=0)


def init_activation_ranges(qat_model, float_model, images: np.ndarray, *,
                           batch_size: int = 128) -> int:
    """Sets every activation range of `qat_model` from `float_model` on `images`.

    `images` are normalised float images (N, H, W, C), e.g. the int8 calibration images.
    The models must have the same layer names: `tfopt.compress.qat.quantize` keeps them.
    Returns the number of ranges set.
    """
    targets = range_targets(qat_model, float_model)
    if not targets or not len(images):
        return 0
    names = list(dict.fromkeys(name for name, _, _ in targets))
    lo, hi = batch_extremes(float_model, names, images, batch_size=batch_size)
    index = {name: i for i, name in enumerate(names)}
    for name, min_var, max_var in targets:
        i = index[name]
        min_var.assign(np.full(min_var.shape, lo[i], np.float32))
        max_var.assign(np.full(max_var.shape, hi[i], np.float32))
    return len(targets)
