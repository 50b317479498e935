"""OCNNA: filter importance by PCA -> Frobenius norm -> coefficient of variation, then surgery.

Paper: L. Balderas, M. Lastra, J. M. Benitez, "Optimizing Convolutional Neural Network
Architecture", arXiv:2401.01361 (2023); journal version Mathematics 12(19):3032 (2024).
The paper body could not be read; what is implemented follows the project's design notes
(OCNNA design notes, sections 1.3-1.5 and 5), which mark each choice:

- [C] confirmed: per filter m of conv layer l, P = PCA(o_m^l), F = ||P||_F, C_m = CV(F) over
  the images; keep the filters at or above the k-th percentile of C; copy the kept filters'
  weights into a smaller model ("transferring knowledge from the original network").
- [R] ours, exposed as options with the design's defaults:
  `n_components=None` (all components: F = Frobenius norm of the column-centred H x W map;
  an int c keeps the top-c singular values; a float in (0, 1) is an explained-variance
  ratio, sklearn's rule), `pca_axis="image"` (one PCA per image and filter; "dataset" is the
  design's alternative B: one PCA across images, F_i = ||o_i - mean_i o||), `tap="conv"` (the
  raw conv output; "activation" follows the conv through BN / activation layers),
  `scope="layer"` (percentile per layer; "global" over all scored filters), `min_filters=1`,
  N = 1,000 seeded class-balanced *training* images (`balanced_subset`), population std
  (ddof=0).
- Degenerate cases (design 1.3): a filter with mean F = 0 (dead) gets C = 0 and is pruned
  first; maps with a single row (H = 1, e.g. the 1x1 last stage of ResNet-50 / MobileNet at
  32x32) make every centred map zero, so those layers fall back to the uncentred norm, and
  the report notes it.

Baselines through the same selection and surgery: `criterion="l1"` (sum of |kernel| per
filter, Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017) and
`criterion="random"` (seeded uniform scores).

CLI: python -m tfopt.compress.ocnna --model=PATH.keras --dataset=fashion_mnist --k=30 --out=DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import time
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from tfopt import modelfile
from tfopt._keras import keras
from tfopt.compress import surgery

CRITERIA = ("ocnna", "l1", "random")
SCOPES = ("layer", "global")
TAPS = ("conv", "activation")
PCA_AXES = ("image", "dataset")
# Layers the "activation" tap follows a producer through (single consumer chain).
_TAP_FOLLOW = frozenset({"BatchNormalization", "ReLU", "Activation", "LeakyReLU", "ELU",
                         "PReLU", "ThresholdedReLU"})


def _check_choice(name: str, value, allowed: Sequence[str]):
    if value not in allowed:
        near = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"{name}={value!r}{hint}; expected one of {tuple(allowed)}")


# --------------------------------------------------------------------------------------------
# Images


def balanced_subset(x: np.ndarray, y: np.ndarray, n: int = 1000, *, seed: int = 0):
    """A seeded, class-balanced subset of (x, y): about n // classes images per class.

    The remainder n % classes goes to the first classes (sorted label order); a class with
    too few images contributes all it has. Returns (x_subset, y_subset) in a seeded shuffle.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n={n!r}; expected a positive number of images")
    y = np.asarray(y).reshape(-1)
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per, extra = divmod(int(n), len(classes))
    picks = []
    for i, c in enumerate(classes):
        idx = np.flatnonzero(y == c)
        take = min(len(idx), per + (1 if i < extra else 0))
        picks.append(rng.choice(idx, take, replace=False))
    sel = rng.permutation(np.concatenate(picks))
    return x[sel], y[sel]


def _batches(images, batch_size: int) -> Iterable[np.ndarray]:
    """Image batches from an array, or from a tf.data.Dataset of images or (images, labels)."""
    if isinstance(images, np.ndarray):
        for i in range(0, len(images), batch_size):
            yield images[i:i + batch_size]
        return
    for item in images:
        yield item[0] if isinstance(item, (tuple, list)) else item


# --------------------------------------------------------------------------------------------
# Scores


def _tap_layer(model, name: str, tap: str) -> str:
    if tap == "conv":
        return name
    _, nodes, outputs = surgery._read_graph(model)
    consumers: dict[str, list[str]] = {}
    cls = {n.name: n.cls for n in nodes}
    for n in nodes:
        for r in n.inputs:
            consumers.setdefault(r[0], []).append(n.name)
    outs = {o[0] for o in outputs}
    cur = name
    while cur not in outs and len(consumers.get(cur, [])) == 1 \
            and cls[consumers[cur][0]] in _TAP_FOLLOW:
        cur = consumers[cur][0]
    return cur


def _frobenius_fn(n_components, pca_axis: str):
    """A reduction (b, H, W, C) maps [, mean maps] -> (F (b, C), degenerate flag)."""
    import tensorflow as tf

    def reduce(o, mean_map):
        o = tf.cast(o, tf.float32)
        if o.shape.rank == 2:  # a dense output: a 1 x 1 map
            return tf.abs(o), True
        if o.shape.rank == 3:  # Conv1D (b, L, C): an L x 1 map
            o = tf.expand_dims(o, 2)
        if pca_axis == "dataset":
            d = o - mean_map[None]
            return tf.sqrt(tf.reduce_sum(tf.square(d), axis=(1, 2))), False
        if o.shape[1] == 1:  # one row: column-centring gives 0; uncentred fallback
            return tf.sqrt(tf.reduce_sum(tf.square(o), axis=(1, 2))), True
        c = o - tf.reduce_mean(o, axis=1, keepdims=True)  # centre each column over the rows
        if n_components is None:
            return tf.sqrt(tf.reduce_sum(tf.square(c), axis=(1, 2))), False
        # Squared singular values of each centred map = eigenvalues of its small Gram matrix
        # (min(H, W) square); eigvalsh is several times faster than a batched SVD on CPU.
        m = tf.transpose(c, (0, 3, 1, 2))  # (b, C, H, W)
        gram = tf.matmul(m, m, transpose_a=m.shape[-2] >= m.shape[-1],
                         transpose_b=m.shape[-2] < m.shape[-1])
        s2 = tf.linalg.eigvalsh(tf.cast(gram, tf.float64))  # float64: exact small components
        s2 = tf.cast(tf.maximum(tf.reverse(s2, [-1]), 0.0), tf.float32)  # descending
        if isinstance(n_components, float):
            total = tf.reduce_sum(s2, axis=-1, keepdims=True)
            ratio = tf.math.divide_no_nan(tf.cumsum(s2, axis=-1), total)
            # sklearn: the smallest number of components whose cumulative ratio > n_components.
            count = tf.reduce_sum(tf.cast(ratio <= n_components, tf.int32), axis=-1,
                                  keepdims=True) + 1
            mask = tf.cast(tf.range(tf.shape(s2)[-1])[None, None, :] < count, tf.float32)
            return tf.sqrt(tf.reduce_sum(s2 * mask, axis=-1)), False
        return tf.sqrt(tf.reduce_sum(s2[..., :n_components], axis=-1)), False

    return reduce


def coefficient_of_variation(f: np.ndarray) -> np.ndarray:
    """Population CV (std / mean, ddof=0) of F over axis 0; 0 where the mean is 0 (dead)."""
    f = np.asarray(f, dtype=np.float64)
    mean = f.mean(axis=0)
    std = f.std(axis=0)
    out = np.zeros_like(mean)
    live = mean > 1e-12 * max(1.0, float(np.abs(f).max(initial=0.0)))
    out[live] = std[live] / mean[live]
    return out


def frobenius_norms(model, images, layer_names: Sequence[str], *, n_components=None,
                    pca_axis: str = "image", tap: str = "conv", batch_size: int = 64):
    """Per image and filter, F = ||PCA(o)||_F for every named layer, streamed by batch.

    One multi-output feature model runs once per batch; only the (batch, filters) reductions
    are kept, so memory is O(N x filters) per layer, never the feature maps.

    Returns:
      (F: name -> float64 array (N, filters), notes: name -> remark on degenerate maps).
    """
    import tensorflow as tf

    _check_n_components(n_components)
    _check_choice("pca_axis", pca_axis, PCA_AXES)
    _check_choice("tap", tap, TAPS)
    if pca_axis == "dataset" and n_components is not None:
        raise ValueError(f"pca_axis='dataset' supports only n_components=None (all components);"
                         f" got n_components={n_components!r}")
    model = surgery.as_functional(model)
    taps = [_tap_layer(model, n, tap) for n in layer_names]
    feat = keras.Model(model.inputs, [model.get_layer(t).output for t in taps])
    reduce = _frobenius_fn(n_components, pca_axis)
    mean_maps = [tf.zeros(()) for _ in feat.outputs]  # only used by pca_axis="dataset"
    if pca_axis == "dataset":  # pass 1: mean map per filter
        sums, count = None, 0

        @tf.function(reduce_retracing=True)
        def sum_step(x):
            outs = feat(x, training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            return [tf.reduce_sum(tf.cast(o, tf.float64), axis=0) for o in outs]

        for x in _batches(images, batch_size):
            part = sum_step(tf.convert_to_tensor(x))
            sums = part if sums is None else [a + b for a, b in zip(sums, part)]
            count += int(x.shape[0])
        mean_maps = [tf.cast(s / count, tf.float32) for s in sums]
        mean_maps = [m[:, None, :] if m.shape.rank == 2 else m for m in mean_maps]

    @tf.function(reduce_retracing=True)
    def step(x, means):
        outs = feat(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return [reduce(o, m)[0] for o, m in zip(outs, means)]

    # Degenerate maps (design 1.3): dense outputs and single-row maps use the uncentred norm.
    degenerate = [o.shape.rank == 2 or (pca_axis == "image" and o.shape.rank == 4
                                        and o.shape[1] == 1) for o in feat.outputs]
    parts: list[list[np.ndarray]] = [[] for _ in layer_names]
    for x in _batches(images, batch_size):
        for i, f in enumerate(step(tf.convert_to_tensor(x), mean_maps)):
            parts[i].append(f.numpy().astype(np.float64))
    if not parts or not parts[0]:
        raise ValueError("images is empty; OCNNA needs at least 2 images to score filters")
    norms = {n: np.concatenate(p) for n, p in zip(layer_names, parts)}
    notes = {}
    for n, t, deg in zip(layer_names, taps, degenerate):
        if deg:
            notes[n] = "maps have one row (or are 1x1): uncentred Frobenius norm used"
        if t != n:
            notes[n] = (notes.get(n, "") + f"; scored at {t!r}").lstrip("; ")
    return norms, notes


def _check_n_components(n_components):
    ok = n_components is None or (isinstance(n_components, (int, np.integer))
                                  and not isinstance(n_components, bool) and n_components >= 1) \
        or (isinstance(n_components, float) and 0.0 < n_components < 1.0)
    if not ok:
        raise ValueError(f"n_components={n_components!r}; expected None (all components), an "
                         "int >= 1, or a float in (0, 1) (explained-variance ratio)")


def l1_scores(model, layer_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Li et al. (2017): sum of absolute kernel weights of every output filter."""
    return {n: np.abs(surgery.producer_output_weights(model, n)).sum(axis=0).astype(np.float64)
            for n in layer_names}


def score_filters(model, images=None, *, criterion: str = "ocnna",
                  analysis: surgery.GraphAnalysis | None = None, n_components=None,
                  pca_axis: str = "image", tap: str = "conv", batch_size: int = 64,
                  seed: int = 0, **analyze_kwargs):
    """Importance of every filter of every prunable channel group (higher = more important).

    Args:
      model: A trained functional tf_keras model.
      images: For criterion "ocnna": array (N, H, W, C) or a tf.data.Dataset of image
        batches (or (image, label) batches). Ignored by "l1" and "random".
      criterion: "ocnna" (CV of ||PCA(o)||_F), "l1" (filter L1 norm) or "random" (seeded).
      analysis: A `surgery.analyze` result; computed with `analyze_kwargs` if None.

    Returns:
      (scores: group name -> float64 array (filters,), the mean over the group's members;
       notes: group name -> remark; analysis).
    """
    _check_choice("criterion", criterion, CRITERIA)
    model = surgery.as_functional(model)
    analysis = analysis or surgery.analyze(model, **analyze_kwargs)
    names = [m for g in analysis.groups for m in g.members]
    notes: dict[str, str] = {}
    if criterion == "ocnna":
        if images is None:
            raise ValueError("criterion='ocnna' needs images (N training images)")
        norms, layer_notes = frobenius_norms(model, images, names, n_components=n_components,
                                             pca_axis=pca_axis, tap=tap, batch_size=batch_size)
        per_layer = {n: coefficient_of_variation(f) for n, f in norms.items()}
    elif criterion == "l1":
        per_layer, layer_notes = l1_scores(model, names), {}
    else:
        rng = np.random.default_rng(seed)
        per_layer, layer_notes = {n: rng.random(model.get_layer(n).output_shape[-1])
                                  for n in names}, {}
    scores = {}
    for g in analysis.groups:
        scores[g.name] = np.mean([per_layer[m] for m in g.members], axis=0)
        remarks = [f"{m}: {layer_notes[m]}" for m in g.members if m in layer_notes]
        if remarks:
            notes[g.name] = "; ".join(remarks)
    return scores, notes, analysis


def select_filters(scores: Mapping[str, np.ndarray], k: float, *, scope: str = "layer",
                   min_filters: int = 1) -> dict[str, np.ndarray]:
    """Keep the filters whose score is at or above the k-th percentile.

    `np.percentile` with linear interpolation, per group (scope "layer") or over all scored
    filters (scope "global"). k = 0 keeps everything; k = 30 removes about 30 % of the
    filters. At least `min_filters` (the highest-scoring; ties to the lower index) are kept
    in every group.

    Returns:
      Group name -> sorted indices of the kept filters.
    """
    if not (isinstance(k, (int, float, np.number)) and 0 <= k <= 100):
        raise ValueError(f"k={k!r}; expected a percentile in [0, 100]")
    _check_choice("scope", scope, SCOPES)
    if not isinstance(min_filters, (int, np.integer)) or min_filters < 1:
        raise ValueError(f"min_filters={min_filters!r}; expected an int >= 1")
    if scope == "global" and scores:
        threshold = np.percentile(np.concatenate([np.asarray(s) for s in scores.values()]), k)
    keep = {}
    for name, s in scores.items():
        s = np.asarray(s, dtype=np.float64)
        t = np.percentile(s, k) if scope == "layer" else threshold
        kept = np.flatnonzero(s >= t)
        need = min(min_filters, len(s))
        if len(kept) < need:
            order = np.lexsort((np.arange(len(s)), -s))  # by score desc, then index
            kept = np.sort(order[:need])
        keep[name] = kept
    return keep


# --------------------------------------------------------------------------------------------
# Report


@dataclasses.dataclass
class LayerReport:
    """One pruned channel group: filters before/after, the scores, the kept indices."""

    name: str
    members: tuple[str, ...]
    filters_before: int
    filters_after: int
    kept: list[int]
    scores: list[float]
    note: str = ""


@dataclasses.dataclass
class SimplifyReport:
    """What `simplify` did. Parameter counts are parameters; FLOPs follow fvcore (1 MAC = 1 FLOP).

    Attributes:
      params_before / params_after: trainable parameters (`tfopt.metrics.count_params`).
      total_params_before / total_params_after: all parameters incl. BN moving statistics.
      accuracy_*: top-1 accuracy in [0, 1], filled by `evaluate_drop` (None until then).
    """

    criterion: str
    k: float
    scope: str
    options: dict
    layers: list[LayerReport]
    skipped: dict[str, str]
    params_before: int
    params_after: int
    total_params_before: int
    total_params_after: int
    flops_before: int | None
    flops_after: int | None
    n_images: int | None
    scoring_seconds: float
    accuracy_original: float | None = None
    accuracy_simplified: float | None = None
    accuracy_finetuned: float | None = None

    @property
    def rpr(self) -> float:
        """Remaining Parameters Ratio: % of trainable parameters kept."""
        return 100.0 * self.params_after / self.params_before

    @property
    def total_param_ratio(self) -> float:
        """% of all parameters (incl. non-trainable) kept."""
        return 100.0 * self.total_params_after / self.total_params_before

    @property
    def flops_ratio(self) -> float | None:
        """% of FLOPs kept (None if FLOPs could not be counted)."""
        if not self.flops_before:
            return None
        return 100.0 * self.flops_after / self.flops_before

    @property
    def accuracy_drop_pp(self) -> float | None:
        """Original minus simplified (before fine-tuning) top-1, in percentage points."""
        if self.accuracy_original is None or self.accuracy_simplified is None:
            return None
        return 100.0 * (self.accuracy_original - self.accuracy_simplified)

    @property
    def accuracy_drop_finetuned_pp(self) -> float | None:
        """Original minus simplified-and-fine-tuned top-1, in percentage points."""
        if self.accuracy_original is None or self.accuracy_finetuned is None:
            return None
        return 100.0 * (self.accuracy_original - self.accuracy_finetuned)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in ("rpr", "total_param_ratio", "flops_ratio", "accuracy_drop_pp",
                    "accuracy_drop_finetuned_pp"):
            d[key] = getattr(self, key)
        return d

    def to_markdown(self) -> str:
        fr = self.flops_ratio
        lines = [
            f"OCNNA simplify: criterion={self.criterion}, k={self.k}, scope={self.scope}",
            "",
            f"- Remaining Parameters Ratio (trainable): {self.rpr:.2f} % "
            f"({self.params_after:,} / {self.params_before:,})",
            f"- total-parameter ratio: {self.total_param_ratio:.2f} %",
            f"- FLOPs ratio: {'n/a' if fr is None else f'{fr:.2f} %'}",
        ]
        if self.accuracy_drop_pp is not None:
            lines.append(f"- accuracy: original {100 * self.accuracy_original:.2f} %, simplified "
                         f"{100 * self.accuracy_simplified:.2f} % (drop "
                         f"{self.accuracy_drop_pp:+.2f} pp)")
        if self.accuracy_drop_finetuned_pp is not None:
            lines.append(f"- after fine-tuning: {100 * self.accuracy_finetuned:.2f} % (drop "
                         f"{self.accuracy_drop_finetuned_pp:+.2f} pp)")
        lines += ["", "| group | members | filters before | after | note |",
                  "|---|---|---:|---:|---|"]
        for lr in self.layers:
            lines.append(f"| {lr.name} | {len(lr.members)} | {lr.filters_before} | "
                         f"{lr.filters_after} | {lr.note} |")
        if self.skipped:
            lines += ["", "Skipped producers:", ""]
            lines += [f"- {k}: {v}" for k, v in self.skipped.items()]
        return "\n".join(lines) + "\n"


def _costs(model):
    from tfopt import metrics
    trainable = metrics.count_params(model)
    total = int(model.count_params())
    try:
        flops = int(metrics.count_flops(model))
    except Exception:  # noqa: BLE001 - an uncountable layer leaves FLOPs unreported
        flops = None
    return trainable, total, flops


# --------------------------------------------------------------------------------------------
# Entry points


def simplify(model, images=None, *, k: float, scope: str = "layer", criterion: str = "ocnna",
             min_filters: int = 1, n_components=None, pca_axis: str = "image", tap: str = "conv",
             prune_residual_groups: bool = False, prune_dense: bool = False,
             exclude: Sequence[str] = (), batch_size: int = 64, seed: int = 0):
    """Score every prunable filter, keep those at or above the k-th percentile, rebuild.

    Args:
      model: A trained functional (or built Sequential) tf_keras model; not modified.
      images: Scoring images for criterion "ocnna" (see `score_filters`); the design's default
        is 1,000 seeded class-balanced training images (`balanced_subset`).
      k: Percentile in [0, 100]; about k % of the filters of each group are removed.
      scope: "layer" (a percentile per group) or "global" (one over all filters).
      criterion: "ocnna", "l1" or "random".
      min_filters: Filters always kept per group.
      n_components, pca_axis, tap: OCNNA options (see module docstring).
      prune_residual_groups, prune_dense, exclude: Which producers surgery may prune
        (`surgery.analyze`).
      batch_size: Images per scoring batch.
      seed: Seed of the "random" criterion.

    Returns:
      (smaller_model, SimplifyReport).
    """
    model = surgery.as_functional(model)
    analysis = surgery.analyze(model, prune_residual_groups=prune_residual_groups,
                               prune_dense=prune_dense, exclude=exclude)
    t0 = time.perf_counter()
    scores, notes, _ = score_filters(model, images, criterion=criterion, analysis=analysis,
                                     n_components=n_components, pca_axis=pca_axis, tap=tap,
                                     batch_size=batch_size, seed=seed)
    scoring_seconds = time.perf_counter() - t0
    keep = select_filters(scores, k, scope=scope, min_filters=min_filters)
    small = surgery.apply_keep(model, keep, analysis=analysis)
    before, after = _costs(model), _costs(small)
    n_images = None
    if criterion == "ocnna" and isinstance(images, np.ndarray):
        n_images = int(len(images))
    layers_report = [
        LayerReport(g.name, g.members, g.channels, int(len(keep[g.name])),
                    [int(i) for i in keep[g.name]], [float(s) for s in scores[g.name]],
                    notes.get(g.name, ""))
        for g in analysis.groups]
    report = SimplifyReport(
        criterion=criterion, k=float(k), scope=scope,
        options=dict(min_filters=min_filters, n_components=n_components, pca_axis=pca_axis,
                     tap=tap, prune_residual_groups=prune_residual_groups,
                     prune_dense=prune_dense, exclude=list(exclude), seed=seed),
        layers=layers_report, skipped=dict(analysis.skipped),
        params_before=before[0], params_after=after[0],
        total_params_before=before[1], total_params_after=after[1],
        flops_before=before[2], flops_after=after[2], n_images=n_images,
        scoring_seconds=scoring_seconds)
    return small, report


def recalibrate_batchnorm(model, images, *, batch_size: int = 100) -> int:
    """Re-estimate every BatchNormalization's moving mean/variance on `images`, in place.

    Not part of OCNNA (design notes): an optional, criterion-neutral step after surgery. A
    removed channel changes the statistics its consumers' BN layers were trained on; this
    replaces the moving statistics by the average of the per-batch statistics over `images`
    (the model runs in training mode, eagerly, one batch at a time; no weight is trained).

    Returns:
      The number of batches used.
    """
    bns = [l for l in model.layers if l.__class__.__name__ == "BatchNormalization"]
    saved = [l.momentum for l in bns]
    n = 0
    try:
        for x in _batches(images, batch_size):
            n += 1
            for layer in bns:  # cumulative average: new = (1 - 1/n) old + 1/n batch
                layer.momentum = 1.0 - 1.0 / n
            model(x, training=True)
    finally:
        for layer, m in zip(bns, saved):
            layer.momentum = m
    if n == 0:
        raise ValueError("images is empty; nothing to recalibrate BatchNormalization on")
    return n


def accuracy(model, data, *, batch_size: int = 256) -> float:
    """Top-1 accuracy in [0, 1] of a logits model on (x, y) arrays or a dataset of batches."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
        x, y = data
        batches = ((x[i:i + batch_size], y[i:i + batch_size])
                   for i in range(0, len(x), batch_size))
    else:
        batches = data
    correct = total = 0
    for xb, yb in batches:
        pred = np.argmax(model(xb, training=False).numpy(), axis=-1)
        yb = np.asarray(yb).reshape(-1)
        correct += int((pred == yb).sum())
        total += len(yb)
    if total == 0:
        raise ValueError("evaluation data is empty")
    return correct / total


def evaluate_drop(original, simplified, data, report: SimplifyReport | None = None, *,
                  finetuned: bool = False) -> dict:
    """Accuracy of both models on `data` and the Accuracy Drop (pp); fills `report` if given.

    Args:
      data: (x, y) arrays or a tf.data.Dataset of (x, y) batches (use the test split).
      finetuned: Store the simplified accuracy as the fine-tuned one in `report`.

    Returns:
      dict(accuracy_original, accuracy_simplified, accuracy_drop_pp).
    """
    a0 = report.accuracy_original if (report and report.accuracy_original is not None
                                      and finetuned) else accuracy(original, data)
    a1 = accuracy(simplified, data)
    if report is not None:
        report.accuracy_original = a0
        if finetuned:
            report.accuracy_finetuned = a1
        else:
            report.accuracy_simplified = a1
    return dict(accuracy_original=a0, accuracy_simplified=a1, accuracy_drop_pp=100 * (a0 - a1))


def finetune(model, train_ds, config=None, *, teacher=None, val_ds=None, workdir=None,
             **distill_kwargs) -> dict:
    """Fine-tune the simplified model in place with the project's training recipe.

    Args:
      train_ds: tf.data.Dataset of (x, y) batches.
      config: A `tfopt.train.TrainConfig` (default: 1 epoch, adam, max_lr 1e-3).
      teacher: If given and `tfopt.compress.distill` exists, distil from it (the original
        model) instead of plain fine-tuning; `distill_kwargs` (e.g. temperature, alpha) go to
        `distill.distill`.

    Returns:
      The training metrics dict of `tfopt.train.fit` (or of the distillation routine).
    """
    try:
        from tfopt import train
    except ImportError as err:
        raise RuntimeError("fine-tuning needs tfopt.train (issue 2), which is not installed "
                           "in this checkout") from err
    if config is None:
        config = train.TrainConfig(epochs=1, optimizer="adam", max_lr=1e-3)
    if teacher is not None:
        try:
            from tfopt.compress import distill
        except ImportError as err:
            raise RuntimeError("teacher= needs tfopt.compress.distill, which does not exist "
                               "in this checkout; fine-tune without a teacher") from err
        return distill.distill(model, teacher, train_ds, config, val_ds=val_ds,
                               workdir=workdir, **distill_kwargs)
    return train.fit(model, train_ds, config, val_ds=val_ds, workdir=workdir)


# --------------------------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfopt.compress.ocnna --model=M.keras --dataset=NAME --k=30 --out=DIR`."""
    p = argparse.ArgumentParser(prog="python -m tfopt.compress.ocnna", description=__doc__
                                .split("\n")[0])
    p.add_argument("--model", required=True, help="saved tf_keras model (.keras / .h5 / dir)")
    p.add_argument("--dataset", required=True, help="tfopt.data source, e.g. fashion_mnist")
    p.add_argument("--k", type=float, required=True, help="percentile in [0, 100]")
    p.add_argument("--out", required=True, help="output folder (simplified.keras, report.*)")
    p.add_argument("--criterion", default="ocnna", choices=CRITERIA)
    p.add_argument("--scope", default="layer", choices=SCOPES)
    p.add_argument("--n_images", type=int, default=1000, help="scoring images (train split)")
    p.add_argument("--min_filters", type=int, default=1)
    p.add_argument("--tap", default="conv", choices=TAPS)
    p.add_argument("--prune_residual_groups", action="store_true")
    p.add_argument("--eval_limit", type=int, default=None,
                   help="test images for the Accuracy Drop (default: all; 0 skips it)")
    p.add_argument("--finetune_epochs", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    modelfile.add_unsafe_load_flag(p)
    args = p.parse_args(argv)
    from tfopt import data

    modelfile.check_safe_or_exit(args.model, unsafe_load=args.unsafe_load)
    model = keras.models.load_model(args.model, compile=False, safe_mode=not args.unsafe_load)
    h, w, c = model.input_shape[1:4]
    prep = dict(image_size=(h, w), to_rgb=(c == 3))
    x, y, _ = data.load_arrays(args.dataset, "train", seed=args.seed, **prep)
    images, _ = balanced_subset(x, y, args.n_images, seed=args.seed)
    small, report = simplify(model, images, k=args.k, scope=args.scope,
                             criterion=args.criterion, min_filters=args.min_filters,
                             tap=args.tap, prune_residual_groups=args.prune_residual_groups,
                             seed=args.seed)
    if args.eval_limit != 0:
        xt, yt, _ = data.load_arrays(args.dataset, "test", limit=args.eval_limit, **prep)
        evaluate_drop(model, small, (xt, yt), report)
        if args.finetune_epochs > 0:
            from tfopt import train
            ds, _ = data.load(args.dataset, "train", augment=True, seed=args.seed, **prep)
            finetune(small, ds, train.TrainConfig(epochs=args.finetune_epochs, optimizer="adam",
                                                  max_lr=1e-3, seed=args.seed))
            evaluate_drop(model, small, (xt, yt), report, finetuned=True)
    os.makedirs(args.out, exist_ok=True)
    small.save(os.path.join(args.out, "simplified.keras"))
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report.to_dict(), f, indent=1, default=_json_default)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report.to_markdown())
    print(report.to_markdown())
    return 0


def _json_default(o: Any):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


if __name__ == "__main__":
    raise SystemExit(main())
