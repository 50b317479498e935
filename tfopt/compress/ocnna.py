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

import difflib
import time
from typing import Mapping, Sequence

import numpy as np

from tfopt._keras import keras
from tfopt.compress import surgery
from tfopt.compress.ocnna_eval import (  # noqa: F401  (re-exported)
    _batches, accuracy, evaluate_drop, finetune, recalibrate_batchnorm)
from tfopt.compress.ocnna_report import (  # noqa: F401  (re-exported)
    LayerReport, SimplifyReport, _json_default)

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
    if not layer_names:
        raise ValueError(f"model {model.name!r} has no Conv2D layers to score (OCNNA removes "
                         "filters of Conv2D layers)")
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
    if not names:
        raise ValueError(f"model {model.name!r} has no Conv2D layers to score (OCNNA removes "
                         "filters of Conv2D layers)")
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


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfopt.compress.ocnna ...`: the CLI, which lives in `tfopt.compress.ocnna_cli`."""
    from tfopt.compress import ocnna_cli
    return ocnna_cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
