"""BatchNormalization after a channel concat folded into the convs before it (Keras, pre-conversion).

The converter folds a BN into the conv right before it, but not a BN after a CONCATENATION: a
ghost module (tfopt/blocks/ghost.py: primary 1x1 -> [shuffle] -> cheap dw 3x3, concat[cheap,
primary], BN, act) converts to CONCATENATION -> MUL -> ADD (per-channel constants). With
trained BN statistics that is 68 MULs and 68 ADDs in resnet101_v13 (an untrained model's ADD of
zeros is folded away, which is why a random-init benchmark missed it; docs/deployment.md).

`fold_concat_batch_norm` writes y = a * x + b (a = gamma / sqrt(var + eps), b = beta - a * mean)
per concat input, on its channel slice, exactly in float:

* **input from a conv used by the concat alone** (Conv2D / DepthwiseConv2D, linear; the ghost
  "cheap" dw 3x3): kernel * a per output channel, bias * a + b. The BN is gone on that slice.
* **input from a conv that other convs also read** (the ghost primary conv, read by the cheap
  dw; possibly through a Reshape/Permute channel shuffle): the scale a moves into that conv's
  output channels (permuted through the shuffle) and every conv reading it divides its input
  channels by a -- exact, zero padding of a * x is still zero -- and the offset b stays as a
  `ChannelOffset` layer (one int8 ADD) when any b != 0. The offset cannot move into the primary
  conv: the cheap dw would then see b at the image border where its zero padding is.
* **otherwise** (another input, some |a| ~0, or b = 0 with an activation after the BN, which
  would then be an op of its own) the BN is left as it is: split, each such slice would cost a
  MUL + ADD of its own (vgg19_v13's DiCE concats: 427 -> 459 ops, +7.7 KB, measured).

A BN whose offsets b are all 0 (an untrained model's) is left alone: the converter writes it
as one MUL, which `rewrite_concat` moves past a following PAD, so the activation peak before a
stride-2 depthwise stays at two of the three tensors the fold would keep alive there
(resnet101_v13: TFLM arena 247,264 B unfolded vs 264,608 B folded, measured).

An elementwise activation right after the BN (ReLU / ReLU6 / Activation) is applied per input
instead (relu(concat) = concat(relu)), so the converter fuses it into each producer. Shared
layers and QAT-wrapped models are left alone. The returned model is for conversion only
(layer names of the changed parts differ).
"""

from __future__ import annotations

import copy

import numpy as np

from tfopt._keras import keras, layers

_CONVS = ("Conv2D", "DepthwiseConv2D")
_ACTIVATIONS = ("ReLU", "Activation", "LeakyReLU")
# Activation layers that work on each element alone (softmax does not).
_ELEMENTWISE = ("relu", "relu6", "sigmoid", "tanh", "hard_sigmoid", "swish", "silu", "elu")
_SHUFFLE = ("Reshape", "Permute")
# Scales below this fraction of the largest one are not divided out of the readers' filters.
MIN_SCALE = 1e-6


class ChannelOffset(layers.Layer):
    """y = x + offset (one constant per channel, last axis): the BN offset left after folding."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)

    def build(self, input_shape):
        self.offset = self.add_weight(name="offset", shape=(self.channels,),
                                      initializer="zeros", trainable=False)
        super().build(input_shape)

    def call(self, x):
        return x + self.offset

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def _affine(layer) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) with BN(x) = a * x + b per channel (inference)."""
    cfg = layer.get_config()
    weights = {w.name.split("/")[-1].split(":")[0]: w.numpy().astype(np.float64)
               for w in layer.weights}
    n = int(weights["moving_mean"].shape[0])
    gamma = weights.get("gamma", np.ones(n))
    beta = weights.get("beta", np.zeros(n))
    a = gamma / np.sqrt(weights["moving_variance"] + float(cfg["epsilon"]))
    return a, beta - a * weights["moving_mean"]


def _linear(cfg: dict) -> bool:
    return cfg.get("activation", "linear") in ("linear", None)


class _Graph:
    """A functional model's config: layers by name, who reads whom."""

    def __init__(self, model):
        self.model = model
        self.original = {layer.name: layer for layer in model.layers}
        self.config = copy.deepcopy(model.get_config())
        self.outputs = {o[0] for o in self.config["output_layers"]}
        self.index()

    def index(self) -> None:
        """(Re)builds the name and reader maps from the config (after an edit)."""
        self.layers = {lc["name"]: lc for lc in self.config["layers"]}
        self.readers: dict[str, list[str]] = {}
        for lc in self.config["layers"]:
            for src in self.inputs(lc["name"]):
                self.readers.setdefault(src, []).append(lc["name"])

    def inputs(self, name: str) -> list[str]:
        nodes = self.layers[name].get("inbound_nodes") or []
        return [entry[0] for node in nodes for entry in node]

    def single(self, name: str) -> bool:
        """Used at one node, reading one tensor, not a model output."""
        lc = self.layers[name]
        return len(lc.get("inbound_nodes") or []) == 1 and name not in self.outputs

    def kind(self, name: str) -> str:
        """The class name; "Conv2D" / "DepthwiseConv2D" also for subclasses (GroupedConv2D)."""
        layer = self.original.get(name)
        if isinstance(layer, layers.DepthwiseConv2D):
            return "DepthwiseConv2D"
        if isinstance(layer, layers.Conv2D) and not isinstance(layer, layers.Conv2DTranspose):
            return "Conv2D"
        return self.layers[name]["class_name"]


def _shuffle_source(g: _Graph, name: str):
    """(producer conv, channel permutation P: out[k] = producer[P[k]]) when `name` is a
    Conv2D/DepthwiseConv2D or the end of a Reshape/Permute chain on one (each link read once);
    else None."""
    chain = []
    while g.kind(name) in _SHUFFLE:
        chain.append(name)
        (name,) = g.inputs(name) or [None]
        if name is None or len(g.readers.get(name, [])) != 1 or not g.single(name):
            return None
    if g.kind(name) not in _CONVS or not g.single(name) or not _linear(g.layers[name]["config"]):
        return None
    shape = g.model.get_layer(name).output_shape
    c = int(shape[-1])
    if not chain:
        return name, np.arange(c)
    h, w = int(shape[1]), int(shape[2])
    x = np.arange(h * w * c, dtype=np.float32).reshape(1, h, w, c)
    for link in reversed(chain):
        x = g.model.get_layer(link)(x).numpy()
    if x.shape != (1, h, w, c):   # a chain that moves pixels into channels (DiCE's permutes)
        return None
    x = x.reshape(h * w, c).astype(np.int64)
    perm = x[0] % c
    if np.any(x // c != np.arange(h * w)[:, None]) or np.any(
            x % c != perm) or sorted(perm.tolist()) != list(range(c)):
        return None
    return name, perm


class _Weights:
    """Layer name -> its weight arrays (float64), edited in place, written back at the end."""

    def __init__(self, model):
        self.model = model
        self.arrays: dict[str, list[np.ndarray]] = {}

    def get(self, name: str) -> list[np.ndarray]:
        if name not in self.arrays:
            self.arrays[name] = [w.astype(np.float64) for w in
                                 self.model.get_layer(name).get_weights()]
        return self.arrays[name]


def _conv_bias(g: _Graph, w: _Weights, name: str) -> list[np.ndarray]:
    """`name`'s [kernel, bias] (a zero bias added to the config when it had none)."""
    arrays = w.get(name)
    cfg = g.layers[name]["config"]
    if not cfg.get("use_bias", True):
        cfg["use_bias"] = True
        k = arrays[0]
        out = k.shape[2] * k.shape[3] if g.kind(name) == "DepthwiseConv2D" else k.shape[3]
        arrays.append(np.zeros(out))
    return arrays


def _scale_outputs(g, w, name: str, a: np.ndarray, b: np.ndarray | None) -> None:
    """Output channel o of conv `name` becomes a[o] * out + b[o] (b None: scale only)."""
    arrays = _conv_bias(g, w, name) if b is not None else w.get(name)
    k = arrays[0]
    if g.kind(name) == "DepthwiseConv2D":
        k *= a.reshape(k.shape[2], k.shape[3])[None, None]
    else:
        k *= a[None, None, None, :]
    if len(arrays) > 1:
        arrays[1] *= a
        if b is not None:
            arrays[1] += b


def _divide_inputs(g, w, name: str, a: np.ndarray) -> None:
    """Conv `name` reads x / a instead of x: its filter's input channel i is divided by a[i]."""
    k = w.get(name)[0]
    if g.kind(name) == "DepthwiseConv2D":
        k /= a[None, None, :, None]
        return
    fin, cout = k.shape[2], k.shape[3]
    groups = len(a) // fin
    per = cout // groups
    for i in range(len(a)):
        grp = i // fin
        k[:, :, i % fin, grp * per:(grp + 1) * per] /= a[i]


def _new_layer(g: _Graph, class_name: str, config: dict, source: str) -> str:
    """Adds a layer reading `source` to the config; its name."""
    name = config["name"]
    base, n = name, 1
    while name in g.layers:
        name, n = f"{base}_{n}", n + 1
    config["name"] = name
    lc = {"class_name": class_name, "config": config, "name": name,
          "inbound_nodes": [[[source, 0, 0, {}]]]}
    g.config["layers"].insert([x["name"] for x in g.config["layers"]].index(source) + 1, lc)
    g.layers[name] = lc
    return name


def _plan(g: _Graph, bn: str, cat: str, act: str | None):
    """[(concat input, lo, hi, "fold" | "scale", (producer, permutation))] for every input
    of `cat`, or None when one of them can take neither (the BN then stays as it is: split,
    its kept slices would cost a MUL + ADD each instead of one pair)."""
    a, b = _affine(g.model.get_layer(bn))
    plan, lo = [], 0
    for src, shape in zip(g.inputs(cat), g.model.get_layer(cat).input_shape):
        hi = lo + int(shape[-1])
        found = _shuffle_source(g, src) if g.single(src) else None
        others = [r for r in g.readers.get(src, []) if r != cat]
        if found and found[0] == src and not others:
            plan.append((src, lo, hi, "fold", found))
        elif (found and all(g.kind(r) in _CONVS and g.single(r) and g.inputs(r) == [src]
                            for r in others)
              and np.min(np.abs(a[lo:hi])) > MIN_SCALE * np.max(np.abs(a[lo:hi]))
              and (act is None or np.any(b[lo:hi] != 0))):   # else a lone activation op
            plan.append((src, lo, hi, "scale", found))
        else:
            return None
        lo = hi
    return plan


def _fold_one(g: _Graph, w: _Weights, new_weights: dict, bn: str, cat: str, act: str | None,
              plan, counts: dict) -> None:
    a, b = _affine(g.model.get_layer(bn))
    ends = []
    for i, (src, lo, hi, how, (producer, perm)) in enumerate(plan):
        ai, bi = a[lo:hi], b[lo:hi]
        end = src
        if how == "fold":
            _scale_outputs(g, w, src, ai, bi)             # BN slice into the conv's kernel + bias
            counts["folded"] += 1
        else:
            scale = np.empty_like(ai)
            scale[perm] = ai
            _scale_outputs(g, w, producer, scale, None)
            for r in g.readers.get(src, []):
                if r != cat:
                    _divide_inputs(g, w, r, ai)
            if np.any(bi != 0):
                end = _new_layer(g, "ChannelOffset", {"name": f"{bn}_offset{i}",
                                                      "channels": hi - lo}, src)
                new_weights[end] = [bi]
            counts["scale_moved"] += 1
        if act is not None:
            cfg = copy.deepcopy(g.layers[act]["config"])
            cfg["name"] = f"{act}_part{i}"
            end = _new_layer(g, g.kind(act), cfg, end)
        ends.append(end)
    g.layers[cat]["inbound_nodes"] = [[[e, 0, 0, {}] for e in ends]]
    last = act or bn
    for lc in g.config["layers"]:   # readers of the BN (or its activation) read the concat
        for node in lc.get("inbound_nodes") or []:
            for entry in node:
                if entry[0] == last:
                    entry[0] = cat
    for o in g.config["output_layers"]:
        if o[0] == last:
            o[0] = cat
    drop = {bn} | ({act} if act else set())
    g.config["layers"] = [lc for lc in g.config["layers"] if lc["name"] not in drop]


def _elementwise(g: _Graph, name: str) -> bool:
    kind = g.kind(name)
    return g.single(name) and kind in _ACTIVATIONS and (
        kind != "Activation" or g.layers[name]["config"].get("activation") in _ELEMENTWISE)


def _candidates(g: _Graph) -> list[tuple[str, str, str | None]]:
    """(BN, concat, activation or None) for each BN that alone reads a channel concat."""
    found = []
    for name, lc in g.layers.items():
        if lc["class_name"] != "BatchNormalization" or not g.single(name):
            continue
        axis = lc["config"].get("axis")
        (cat,) = g.inputs(name) or [None]
        if (cat is None or g.kind(cat) != "Concatenate" or not g.single(cat)
                or len(set(g.inputs(cat))) != len(g.inputs(cat))):
            continue
        rank = len(g.model.get_layer(cat).output_shape)
        if axis not in (-1, rank - 1, [-1], [rank - 1]) or g.layers[cat]["config"].get(
                "axis") not in (-1, rank - 1) or g.readers.get(cat) != [name]:
            continue
        readers = g.readers.get(name, [])
        act = readers[0] if len(readers) == 1 and _elementwise(g, readers[0]) else None
        found.append((name, cat, act))
    return found


def fold_concat_batch_norm(model):
    """A copy of `model` with each BatchNormalization after a channel concat folded into the
    concat's inputs (module docstring); same float outputs up to float rounding.

    Returns:
      (new model, or `model` itself when nothing was folded; {"folded": concat inputs whose
      conv took the BN, "scale_moved": inputs whose producer took the scale (an offset ADD
      left where beta != 0), "batch_norms": BNs removed}).
    """
    counts = {"batch_norms": 0, "folded": 0, "scale_moved": 0}
    if not getattr(model, "_is_graph_network", False) or any(
            type(layer).__name__.startswith("QuantizeWrapper") for layer in model.layers):
        return model, counts
    g = _Graph(model)
    found = _candidates(g)
    w = _Weights(model)
    new_weights: dict[str, list[np.ndarray]] = {}
    for bn, cat, act in found:
        if not np.any(_affine(model.get_layer(bn))[1]):
            continue   # b = 0 (untrained): one MUL, which sink_concat moves past a PAD
        plan = _plan(g, bn, cat, act)
        if plan is None:
            continue
        _fold_one(g, w, new_weights, bn, cat, act, plan, counts)
        counts["batch_norms"] += 1
        g.outputs = {o[0] for o in g.config["output_layers"]}
        g.index()
    if not counts["batch_norms"]:
        return model, counts
    for lc in g.config["layers"]:
        lc.pop("build_config", None)
    new = keras.Model.from_config(g.config, custom_objects={"ChannelOffset": ChannelOffset})
    for layer in new.layers:
        arrays = new_weights.get(layer.name)
        if arrays is None and layer.weights:
            arrays = w.arrays.get(layer.name) or model.get_layer(layer.name).get_weights()
        if arrays is not None and layer.weights:
            layer.set_weights([np.asarray(x, dtype=v.dtype.as_numpy_dtype)
                               for x, v in zip(arrays, layer.weights)])
    return new, counts

