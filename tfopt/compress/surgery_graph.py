"""Reading a functional tf_keras graph: which producers' channels surgery can prune together.

A producer is a conv / separable conv / (optional) hidden Dense layer; its output channels
flow through channel-preserving layers, concatenations and element-wise merges to their
consumers. `analyze` groups the producers tied by element-wise merges and says, for every
producer it cannot prune, why. Split out of `tfopt.compress.surgery` (the rules are in its
docstring), which re-exports every name.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

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
    sp = _Spaces()
    output_layers = {o[0] for o in outputs}
    for n in nodes:
        in_descs = [sp.desc[r[0]] for r in n.inputs]
        layer = model.get_layer(n.name)
        sp.desc[n.name] = _describe(n, layer, in_descs, sp, output_layers=output_layers,
                                    prune_dense=prune_dense, exclude=exclude)
    for o in outputs:
        sp.mark_bad(sp.desc[o[0]], f"reaches model output {o[0]!r}")
    return _collect_groups(sp, nodes, prune_residual_groups=prune_residual_groups,
                           exclude=exclude)


class _Spaces:
    """Channel spaces met while walking the graph, and which of them may not be pruned.

    A space is a producer layer name ("candidate") or a fixed marker "#<layer>".
    """

    def __init__(self):
        self.uf = _UnionFind()
        self.bad: dict[str, str] = {}  # space -> reason
        self.candidates: dict[str, int] = {}  # producer -> output channels
        self.desc: dict[str, list] = {}  # layer name -> list of segments; each a space id
        self.tie_names: dict[str, list] = {}  # space -> element-wise merges it meets

    def fixed(self, name, why):
        sid = f"#{name}"
        self.uf.add(sid)
        self.bad[sid] = why
        return sid

    def mark_bad(self, segs, why):
        for s in segs:
            r = self.uf.find(s)
            self.bad.setdefault(r, why)


def _describe(n, layer, in_descs, sp: _Spaces, *, output_layers, prune_dense, exclude):
    """The segments (space ids) of node `n`'s output channels; records producers and ties."""
    cls, cfg = n.cls, n.config
    if n.n_nodes > 1:
        for d in in_descs:
            sp.mark_bad(d, f"reaches shared layer {n.name!r}")
        return [sp.fixed(n.name, f"output of shared layer {n.name!r}")]
    if cls == "InputLayer":
        return [sp.fixed(n.name, "model input")]
    is_producer = cls in _PRODUCERS and _channels_last(cfg)
    if cls == "Conv2D" and cfg.get("groups", 1) != 1:
        for d in in_descs:
            sp.mark_bad(d, f"feeds grouped conv {n.name!r}")
        return [sp.fixed(n.name, f"grouped conv {n.name!r} (groups={cfg['groups']})")]
    if is_producer:
        # Input channels are absorbed (sliced) by this consumer.
        if cls == "Dense" and (not prune_dense or n.name in output_layers):
            why = ("classifier (a model output)" if n.name in output_layers
                   else "dense layer (prune_dense=False)")
            return [sp.fixed(n.name, why)]
        if n.name in exclude:
            return [sp.fixed(n.name, "excluded by the caller")]
        sp.uf.add(n.name)
        sp.candidates[n.name] = int(layer.output_shape[-1])
        return [n.name]
    if cls == "DepthwiseConv2D" and _channels_last(cfg):
        return list(in_descs[0])
    if cls in _PASS_THROUGH and _channels_last(cfg):
        if cls == "BatchNormalization" and not _last_axis(cfg, len(layer.output_shape)):
            pass  # falls through to unsupported
        else:
            return list(in_descs[0])
    if cls == "Flatten" and _channels_last(cfg):
        return list(in_descs[0])
    if cls == "Concatenate" and _last_axis(cfg, len(layer.output_shape)):
        return [s for d in in_descs for s in d]
    if cls in _TIE_MERGES:
        if all(len(d) == 1 for d in in_descs):
            first = in_descs[0][0]
            for d in in_descs:
                sp.uf.union(first, d[0])
                sp.tie_names.setdefault(d[0], []).append(n.name)
            return [first]
        for d in in_descs:
            sp.mark_bad(d, f"reaches merge {n.name!r} of concatenated tensors")
        return [sp.fixed(n.name, f"output of merge {n.name!r}")]
    for d in in_descs:
        sp.mark_bad(d, f"reaches unsupported layer {n.name!r} ({cls})")
    return [sp.fixed(n.name, f"output of unsupported layer {n.name!r} ({cls})")]


def _collect_groups(sp: _Spaces, nodes, *, prune_residual_groups, exclude) -> GraphAnalysis:
    """Groups (union-find root -> members), with badness from any member, and the skipped."""
    uf, bad, candidates = sp.uf, sp.bad, sp.candidates
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
                             for t in sp.tie_names.get(s, [])})
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
