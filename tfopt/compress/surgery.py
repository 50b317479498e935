"""Physical filter surgery on functional tf_keras models.

Given, for every prunable channel group, the indices of the output filters to keep, build
the physically smaller functional model and copy the kept weights into it:

- conv / separable-conv / (optional) hidden dense: kernel and bias output slices;
- every layer the pruned channels flow through: BatchNormalization (gamma, beta, moving
  mean, moving variance), DepthwiseConv2D (a removed channel removes the depthwise channel),
  PReLU alphas, and the channel-preserving layers without weights (activations, pooling,
  dropout, padding, cropping, up-sampling, global pooling);
- every consumer's input slice: the next Conv2D / SeparableConv2D, Dense after
  GlobalAveragePooling (row = channel) and Dense after Flatten (row = (h*W + w)*C + c, the
  channels-last order Keras flattens in);
- Concatenate: channel provenance is tracked, so a filter removed from one input is removed
  at its offset in the concatenation (DenseNet);
- Add / Subtract / Multiply / Average / Maximum / Minimum tie their inputs: every producer
  whose channels meet at such a merge forms one channel *group*. A group of one conv is pruned
  normally; a larger group (a ResNet residual stream) is pruned only with
  `prune_residual_groups=True`, and then identically in all members.

A channel group is *skipped* (never pruned, reported with the reason) when its channels reach
anything the rules above do not cover: a grouped convolution, Reshape / Permute, LayerNorm,
Softmax, a nested model, a shared layer, a merge whose inputs are concatenations, a model
output, or a merge with a tensor that is not itself prunable (the excitation branch of a
squeeze-excite block, a model input). Skipping is always safe: surgery never rewrites a layer
it does not understand.

Design source: OCNNA design notes, section 1.5 (weight transfer "[R]").
The graph is read from `model.get_config()`; the smaller model is rebuilt by
`keras.Model.from_config` with changed `filters` / `units`, so every layer keeps its name and
configuration.
"""

from __future__ import annotations

import copy
from typing import Mapping, Sequence

import numpy as np

from tfopt._keras import keras
from tfopt.compress.surgery_graph import (  # noqa: F401  (re-exported)
    _PASS_THROUGH, _PRODUCERS, _TIE_MERGES, ChannelGroup, GraphAnalysis, analyze,
    as_functional, _read_graph)


# --------------------------------------------------------------------------------------------
# Keep vectors and weight slicing


def _normalise_keep(analysis: GraphAnalysis, keep: Mapping[str, Sequence[int]]):
    """Producer layer name -> sorted int array of kept output channels."""
    per_layer = {}
    for name, idx in keep.items():
        g = analysis.group(name)
        idx = np.unique(np.asarray(idx, dtype=np.int64))
        if idx.size == 0:
            raise ValueError(f"keep[{name!r}] is empty; at least one filter must be kept")
        if idx[0] < 0 or idx[-1] >= g.channels:
            raise ValueError(f"keep[{name!r}] has indices outside [0, {g.channels})")
        for m in g.members:
            per_layer[m] = idx
    return per_layer


def _propagate(model, nodes, per_layer):
    """Layer name -> (input keep vector or None, output keep vector) in original indices."""
    out_keep: dict[str, np.ndarray] = {}
    in_keep: dict[str, list] = {}
    for n in nodes:
        layer = model.get_layer(n.name)
        ins = [out_keep[r[0]] for r in n.inputs]
        in_keep[n.name] = ins
        shape = _single(layer.output_shape)
        width = int(shape[-1]) if shape is not None else None
        full = np.arange(width) if width is not None else None
        cls = n.cls
        if cls == "InputLayer" or n.n_nodes > 1:
            out_keep[n.name] = full
        elif n.name in per_layer:
            out_keep[n.name] = per_layer[n.name]
        elif cls in _PRODUCERS or (cls == "Conv2D"):
            out_keep[n.name] = full
        elif cls == "DepthwiseConv2D":
            m = int(n.config.get("depth_multiplier", 1))
            out_keep[n.name] = (ins[0][:, None] * m + np.arange(m)[None, :]).ravel()
        elif cls in _PASS_THROUGH:
            out_keep[n.name] = ins[0]
        elif cls == "Flatten":
            shape = layer.input_shape
            c = int(shape[-1])
            positions = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
            out_keep[n.name] = (np.arange(positions)[:, None] * c + ins[0][None, :]).ravel()
        elif cls == "Concatenate" and len(ins) > 1 and width is not None:
            offset, parts = 0, []
            for shape, k in zip(layer.input_shape, ins):
                parts.append(k + offset)
                offset += int(shape[-1])
            out_keep[n.name] = np.concatenate(parts)
        elif cls in _TIE_MERGES:
            for k in ins[1:]:
                if not np.array_equal(k, ins[0]):
                    raise AssertionError(f"merge {n.name!r}: inputs pruned differently")
            out_keep[n.name] = ins[0]
        else:
            out_keep[n.name] = full
    return in_keep, out_keep


def _is_full(k, n):
    return k is None or (len(k) == n and np.array_equal(k, np.arange(n)))


def _slice_weights(layer, cls, cfg, ins, out):
    """The layer's weights sliced to the kept input/output channels (list of arrays)."""
    w = layer.get_weights()
    if not w:
        return w
    inp = ins[0] if ins else None
    if cls in ("Conv2D", "Conv1D") and cfg.get("groups", 1) == 1:
        kernel = w[0][..., inp, :] if inp is not None else w[0]
        res = [kernel[..., out]]
        if len(w) > 1:
            res.append(w[1][out])
        return res
    if cls == "SeparableConv2D":
        dw, pw = w[0], w[1]
        m = dw.shape[-1]
        rows = (inp[:, None] * m + np.arange(m)[None, :]).ravel()
        res = [dw[:, :, inp, :], pw[:, :, rows, :][..., out]]
        if len(w) > 2:
            res.append(w[2][out])
        return res
    if cls == "Dense":
        res = [w[0][inp][:, out]]
        if len(w) > 1:
            res.append(w[1][out])
        return res
    if cls == "DepthwiseConv2D":
        res = [w[0][:, :, inp, :]]
        if len(w) > 1:
            res.append(w[1][out])
        return res
    if cls == "BatchNormalization":
        return [v[out] for v in w]
    if cls == "PReLU":
        return [a[..., out] if a.shape[-1] == layer.input_shape[-1] and a.shape[-1] > 1 else a
                for a in w]
    # Any other layer with weights only ever sees unpruned inputs (analyze guarantees it).
    for k, shape in zip(ins, _input_shapes(layer)):
        assert _is_full(k, int(shape[-1])), f"{layer.name}: unhandled pruned input"
    return w


def _single(shape):
    """A layer's only output shape (InputLayer reports a 1-list); None for several outputs."""
    if isinstance(shape, list):
        return tuple(shape[0]) if len(shape) == 1 else None
    return shape


def _input_shapes(layer):
    s = layer.input_shape
    return s if isinstance(s, list) else [s]


def apply_keep(model, keep: Mapping[str, Sequence[int]], *, analysis: GraphAnalysis | None = None,
               **analyze_kwargs):
    """Build the physically smaller model keeping the given filters.

    Args:
      model: The trained functional (or built Sequential) tf_keras model; left unchanged.
      keep: Channel-group name (see `analyze`) -> indices of the output filters to keep.
        Groups not named keep every filter.
      analysis: A previous `analyze(model, ...)` result; computed with `analyze_kwargs` if None.

    Returns:
      A new functional model with the same layer names, smaller `filters`/`units` where
      pruned, and the kept weights copied in.
    """
    model = as_functional(model)
    analysis = analysis or analyze(model, **analyze_kwargs)
    per_layer = _normalise_keep(analysis, keep)
    config, nodes, _ = _read_graph(model)
    in_keep, out_keep = _propagate(model, nodes, per_layer)
    new_config = copy.deepcopy(config)
    for lc in new_config["layers"]:
        lc.pop("build_config", None)
        name = lc["name"]
        if name in per_layer:
            field = _PRODUCERS[lc["class_name"]]
            lc["config"][field] = int(len(per_layer[name]))
    new_model = keras.Model.from_config(new_config)
    by_name = {n.name: n for n in nodes}
    for layer in model.layers:
        n = by_name[layer.name]
        weights = _slice_weights(layer, n.cls, n.config, in_keep[n.name], out_keep[n.name])
        if weights:
            new_model.get_layer(layer.name).set_weights(weights)
    return new_model


def zero_pruned(model, keep: Mapping[str, Sequence[int]], *, analysis: GraphAnalysis | None = None,
                **analyze_kwargs):
    """A same-shape copy of `model` in which every removed channel outputs exactly zero.

    The reference for the exactness check: the removed filters' kernel and bias slices are
    zeroed, and along every path the removed channels travel, BatchNormalization gets gamma =
    beta = 0 and DepthwiseConv2D kernel/bias slices are zeroed, so each removed channel is 0
    when it reaches a consumer (ReLU-family activations keep 0 at 0). Its logits then equal
    the physically smaller model's.
    """
    model = as_functional(model)
    analysis = analysis or analyze(model, **analyze_kwargs)
    per_layer = _normalise_keep(analysis, keep)
    config, nodes, _ = _read_graph(model)
    _, out_keep = _propagate(model, nodes, per_layer)
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    for n in nodes:
        layer = clone.get_layer(n.name)
        w = layer.get_weights()
        if not w or n.cls not in ("Conv2D", "Conv1D", "SeparableConv2D", "Dense",
                                  "DepthwiseConv2D", "BatchNormalization"):
            continue
        width = int(layer.output_shape[-1])
        removed = np.setdiff1d(np.arange(width), out_keep[n.name])
        if removed.size == 0:
            continue
        if n.cls == "BatchNormalization":
            cfg = n.config
            i = 0
            if cfg.get("scale", True):
                w[i][removed] = 0.0
                i += 1
            if cfg.get("center", True):
                w[i][removed] = 0.0
        elif n.cls == "DepthwiseConv2D":
            w[0].reshape(w[0].shape[:2] + (-1,))[..., removed] = 0.0  # channel c*m + j
            if len(w) > 1:
                w[1][removed] = 0.0
        elif n.cls == "SeparableConv2D":
            w[1][..., removed] = 0.0
            if len(w) > 2:
                w[2][removed] = 0.0
        else:
            w[0][..., removed] = 0.0
            if len(w) > 1:
                w[1][removed] = 0.0
        layer.set_weights(w)
    return clone


def producer_output_weights(model, name: str) -> np.ndarray:
    """The kernel of producer `name` reshaped to (fan_in, filters) (for weight-norm criteria)."""
    layer = model.get_layer(name)
    w = layer.get_weights()
    kernel = w[1] if layer.__class__.__name__ == "SeparableConv2D" else w[0]
    return kernel.reshape(-1, kernel.shape[-1])
