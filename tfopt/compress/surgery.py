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
import dataclasses
from typing import Mapping, Sequence

import numpy as np

from tfopt._keras import keras

# Layers whose output's last axis is the input's last axis, channel for channel.
_PASS_THROUGH = frozenset({
    "BatchNormalization", "ReLU", "Activation", "LeakyReLU", "ELU", "ThresholdedReLU",
    "PReLU", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D",
    "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D",
})
# Element-wise merges: all inputs must keep the same channels.
_TIE_MERGES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
# Layers whose output channels can be pruned (their width is a config field).
_PRODUCERS = {"Conv2D": "filters", "SeparableConv2D": "filters", "Conv1D": "filters",
              "Dense": "units"}


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
    """Producers whose output channels must be pruned together.

    Attributes:
      name: The group id: its first member's layer name (topological order).
      members: Producer layer names (one for an ordinary conv; several for a residual stream).
      channels: Output channels of every member (equal for all members).
    """

    name: str
    members: tuple[str, ...]
    channels: int


@dataclasses.dataclass(frozen=True)
class GraphAnalysis:
    """Which channel groups of a model surgery can prune, and why the others are skipped.

    Attributes:
      groups: Prunable groups, in topological order of their first member.
      skipped: Producer layer name -> reason it is not pruned.
    """

    groups: tuple[ChannelGroup, ...]
    skipped: dict[str, str]

    def group(self, name: str) -> ChannelGroup:
        for g in self.groups:
            if g.name == name:
                return g
        import difflib
        near = difflib.get_close_matches(name, [g.name for g in self.groups], n=3)
        why = f"; skipped because: {self.skipped[name]}" if name in self.skipped else ""
        raise ValueError(f"unknown channel group {name!r}; close prunable groups: {near}{why}")


# --------------------------------------------------------------------------------------------
# Graph reading


@dataclasses.dataclass
class _Node:
    name: str
    cls: str
    config: dict
    inputs: list  # [(layer_name, node_index, tensor_index)]
    n_nodes: int


def as_functional(model):
    """`model` as a functional model (a built Sequential is wrapped; same layers/weights)."""
    if isinstance(model, keras.Sequential):
        if not model.built or model.inputs is None:
            raise ValueError(f"Sequential model {model.name!r} is not built; call it or give "
                             "it an input shape first")
        return keras.Model(model.inputs, model.outputs, name=model.name)
    if not getattr(model, "_is_graph_network", False):
        raise ValueError(f"model {model.name!r} is a subclassed model; surgery needs a "
                         "functional (or Sequential) tf_keras model")
    return model


def _read_graph(model):
    config = model.get_config()
    nodes = []
    for lc in config["layers"]:
        inbound = lc.get("inbound_nodes") or []
        ins = []
        for node in inbound:
            for entry in node:
                ins.append((entry[0], int(entry[1]), int(entry[2])))
        nodes.append(_Node(lc["name"], lc["class_name"], lc["config"], ins, len(inbound)))
    outputs = [(o[0], int(o[1]), int(o[2])) for o in config["output_layers"]]
    return config, nodes, outputs


def _channels_last(cfg: dict) -> bool:
    return cfg.get("data_format", "channels_last") in (None, "channels_last")


def _last_axis(cfg: dict, rank: int) -> bool:
    axis = cfg.get("axis", -1)
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            return False
        axis = axis[0]
    return axis == -1 or axis == rank - 1


class _UnionFind:
    def __init__(self):
        self.parent = {}

    def add(self, x):
        self.parent.setdefault(x, x)

    def find(self, x):
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def analyze(model, *, prune_residual_groups: bool = False, prune_dense: bool = False,
            exclude: Sequence[str] = ()) -> GraphAnalysis:
    """Find the channel groups surgery can prune.

    Args:
      model: A functional (or built Sequential) tf_keras model.
      prune_residual_groups: Also prune groups of several producers tied by an Add (ResNet
        residual streams), identically in every member. Default off: streams keep their width.
      prune_dense: Also prune hidden Dense layers (never one whose output is a model output).
      exclude: Producer layer names never to prune.

    Returns:
      A GraphAnalysis: prunable groups and the reasons the other producers are skipped.
    """
    model = as_functional(model)
    _, nodes, outputs = _read_graph(model)
    exclude = set(exclude)
    known = {n.name for n in nodes}
    for name in exclude:
        if name not in known:
            import difflib
            raise ValueError(f"exclude names unknown layer {name!r}; close: "
                             f"{difflib.get_close_matches(name, known, n=3)}")
    uf = _UnionFind()
    bad: dict[str, str] = {}  # space -> reason
    # A space is a producer layer name ("candidate") or a fixed marker "#<layer>".
    candidates: dict[str, int] = {}
    desc: dict[str, list] = {}  # layer name -> list of segments; each segment = a space id
    tie_names: dict[str, list] = {}  # space -> element-wise merges it meets

    def fixed(name, why):
        sid = f"#{name}"
        uf.add(sid)
        bad[sid] = why
        return sid

    def spaces_of(ref):
        return desc[ref[0]]

    def mark_bad(segs, why):
        for s in segs:
            r = uf.find(s)
            bad.setdefault(r, why)

    output_layers = {o[0] for o in outputs}
    for n in nodes:
        cls, cfg = n.cls, n.config
        in_descs = [spaces_of(r) for r in n.inputs]
        layer = model.get_layer(n.name)
        if n.n_nodes > 1:
            for d in in_descs:
                mark_bad(d, f"reaches shared layer {n.name!r}")
            desc[n.name] = [fixed(n.name, f"output of shared layer {n.name!r}")]
            continue
        if cls == "InputLayer":
            desc[n.name] = [fixed(n.name, "model input")]
            continue
        is_producer = cls in _PRODUCERS and _channels_last(cfg)
        if cls == "Conv2D" and cfg.get("groups", 1) != 1:
            for d in in_descs:
                mark_bad(d, f"feeds grouped conv {n.name!r}")
            desc[n.name] = [fixed(n.name, f"grouped conv {n.name!r} (groups={cfg['groups']})")]
            continue
        if is_producer:
            # Input channels are absorbed (sliced) by this consumer.
            if cls == "Dense" and (not prune_dense or n.name in output_layers):
                why = ("classifier (a model output)" if n.name in output_layers
                       else "dense layer (prune_dense=False)")
                desc[n.name] = [fixed(n.name, why)]
            elif n.name in exclude:
                desc[n.name] = [fixed(n.name, "excluded by the caller")]
            else:
                uf.add(n.name)
                candidates[n.name] = int(layer.output_shape[-1])
                desc[n.name] = [n.name]
            continue
        if cls == "DepthwiseConv2D" and _channels_last(cfg):
            desc[n.name] = list(in_descs[0])
            continue
        if cls in _PASS_THROUGH and _channels_last(cfg):
            if cls == "BatchNormalization" and not _last_axis(cfg, len(layer.output_shape)):
                pass  # falls through to unsupported
            else:
                desc[n.name] = list(in_descs[0])
                continue
        if cls == "Flatten" and _channels_last(cfg):
            desc[n.name] = list(in_descs[0])
            continue
        if cls == "Concatenate" and _last_axis(cfg, len(layer.output_shape)):
            desc[n.name] = [s for d in in_descs for s in d]
            continue
        if cls in _TIE_MERGES:
            if all(len(d) == 1 for d in in_descs):
                first = in_descs[0][0]
                for d in in_descs:
                    uf.union(first, d[0])
                    tie_names.setdefault(d[0], []).append(n.name)
                desc[n.name] = [first]
            else:
                for d in in_descs:
                    mark_bad(d, f"reaches merge {n.name!r} of concatenated tensors")
                desc[n.name] = [fixed(n.name, f"output of merge {n.name!r}")]
            continue
        for d in in_descs:
            mark_bad(d, f"reaches unsupported layer {n.name!r} ({cls})")
        desc[n.name] = [fixed(n.name, f"output of unsupported layer {n.name!r} ({cls})")]

    for o in outputs:
        mark_bad(desc[o[0]], f"reaches model output {o[0]!r}")

    # Collect groups (root -> members), with badness from any member.
    members: dict[str, list[str]] = {}
    root_bad: dict[str, str] = {}
    for sid in uf.parent:
        r = uf.find(sid)
        if sid in bad:
            root_bad.setdefault(r, bad[sid])
        if not sid.startswith("#"):
            members.setdefault(r, []).append(sid)
        else:
            root_bad.setdefault(r, bad.get(sid, f"tied to non-prunable {sid[1:]!r}"))
    order = {n.name: i for i, n in enumerate(nodes)}
    groups, skipped = [], {}
    for r, mem in members.items():
        mem = sorted(mem, key=order.__getitem__)
        if r in root_bad:
            why = root_bad[r]
            if len(mem) > 1:
                why = f"{why} (channel group {mem})"
            for m in mem:
                skipped[m] = why
        elif len(mem) > 1 and not prune_residual_groups:
            merges = sorted({t for s in uf.parent if uf.find(s) == r
                             for t in tie_names.get(s, [])})
            for m in mem:
                skipped[m] = (f"channel group {mem} tied by element-wise merge(s) {merges}; "
                              "set prune_residual_groups=True to prune it as one group")
        else:
            widths = {candidates[m] for m in mem}
            assert len(widths) == 1, (mem, widths)
            groups.append(ChannelGroup(mem[0], tuple(mem), widths.pop()))
    groups.sort(key=lambda g: order[g.name])
    for n in nodes:  # producers that never became candidates
        if (n.cls in _PRODUCERS or n.name in exclude) and n.name not in skipped \
                and n.name not in candidates:
            skipped[n.name] = bad.get(f"#{n.name}", "not a supported producer")
    return GraphAnalysis(tuple(groups), skipped)


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
