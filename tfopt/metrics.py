"""Model cost metrics: trainable parameters, non-zero parameters, FLOPs and MACs.

Pure graph arithmetic over the layer configs and static shapes of a functional `tf_keras`
model: nothing is traced or run. All counts are per image (batch size 1), in plain integers.

FLOPs follow the fvcore convention of the paper's README (reference-variants.md §8), which the
reference figures are measured with:

* Conv2D / DepthwiseConv2D: output elements x (input channels / groups) x kh x kw; one
  multiply-add is 1 FLOP, the bias is ignored.
* Dense: (input elements / input features) x in x out (bias ignored); SE FCs included.
* BatchNormalization (inference): 2 x elements.
* Global average pooling: 1 x input elements.
* Everything else is 0: activations, Add, Multiply, Concatenate, max/avg pooling, reshape,
  permute, padding, dropout, and `tfopt.blocks.dead.DeadParameters`.
* Only layers on a path to a model output are counted ("dead ops are not counted").

MACs count conv + dense multiply-accumulates only (equal to their FLOPs above).

Activations count the output elements per image of every live layer call that writes a new
tensor; Reshape and Flatten outputs are views of their input and count 0. This is the memory
a training step writes forward per image (float32: 4 bytes each), which bounds the speed of the
many-small-layer variants on a CPU (docs/training_speed.md).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfopt._keras import keras, layers

__all__ = ["LayerCost", "count_activations", "count_flops", "count_macs",
           "count_nonzero_params", "count_params", "layer_costs"]

VIEW_LAYERS = ("Reshape", "Flatten")  # outputs alias their input's buffer: no new activations


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """Cost of one layer call: `params` (trainable), `flops` (fvcore), `macs` (conv + dense),
    `activations` (output elements per image it writes; 0 for a view, module docstring)."""

    name: str
    kind: str
    params: int
    flops: int
    macs: int
    activations: int = 0


def _size(shape) -> int:
    return int(np.prod([int(d) for d in shape])) if len(shape) else 1


def _per_sample(shape) -> int:
    """Elements of one sample (drops the batch axis); unknown non-batch dims are an error."""
    dims = tuple(shape)[1:]
    if any(d is None for d in dims):
        raise ValueError(f"cost needs static shapes; got {tuple(shape)} (build the model with a "
                         "fixed input_shape)")
    return _size(dims)


def _trainable(layer) -> int:
    return sum(_size(w.shape) for w in layer.trainable_weights)


def _layer_flops(layer, in_shapes, out_shapes) -> tuple[int, int]:
    """(flops, macs) of one call of `layer`, fvcore convention (module docstring)."""
    while isinstance(layer, layers.Wrapper) and not isinstance(layer, layers.Bidirectional):
        layer = layer.layer  # tfmot PruneLowMagnitude / QuantizeWrapper: cost of the inner layer
    out = out_shapes[0] if out_shapes else None
    if isinstance(layer, layers.DepthwiseConv2D):  # before Conv2D: it is a subclass
        kh, kw = layer.kernel_size
        macs = _per_sample(out) * kh * kw
        return macs, macs
    if isinstance(layer, layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        cin = int(in_shapes[0][-1])
        spatial = _per_sample(out) // int(out[-1])
        macs = spatial * cin * layer.depth_multiplier * (kh * kw + int(out[-1]))
        return macs, macs
    if isinstance(layer, layers.Conv2D) and not isinstance(layer, layers.Conv2DTranspose):
        kh, kw = layer.kernel_size
        cin = int(in_shapes[0][-1])
        macs = _per_sample(out) * (cin // layer.groups) * kh * kw
        return macs, macs
    if isinstance(layer, layers.Dense):
        macs = _per_sample(in_shapes[0]) * int(layer.units)
        return macs, macs
    if isinstance(layer, layers.BatchNormalization):
        return 2 * _per_sample(in_shapes[0]), 0
    if isinstance(layer, (layers.GlobalAveragePooling2D, layers.GlobalAveragePooling1D,
                          layers.GlobalAveragePooling3D)):
        return _per_sample(in_shapes[0]), 0
    if layer.trainable_weights and not _is_dead_params(layer):
        raise ValueError(f"no FLOP rule for layer {layer.name!r} of type "
                         f"{type(layer).__name__} (it has trainable weights); known: Conv2D, "
                         "DepthwiseConv2D, SeparableConv2D, Dense, BatchNormalization, GAP")
    return 0, 0


def _is_dead_params(layer) -> bool:
    from tfopt.blocks.dead import DeadParameters
    return isinstance(layer, DeadParameters)


def _live_nodes(model):
    """Call nodes of `model` on a path to one of its outputs, in model.layers order."""
    stack = [t._keras_history.layer._inbound_nodes[t._keras_history.node_index]
             for t in model.outputs]
    seen = {}
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node.parent_nodes)
    order = {id(layer): i for i, layer in enumerate(model.layers)}
    return sorted(seen.values(), key=lambda n: order.get(id(n.layer), -1))


def layer_costs(model) -> list[LayerCost]:
    """Per-layer costs of every live layer call (nested functional models are expanded).

    `params` are the layer's own trainable parameters (counted at its first live call).
    """
    if not getattr(model, "_is_graph_network", False):
        raise ValueError(f"{getattr(model, 'name', model)!r} is not a functional/Sequential "
                         "Keras model with known inputs; cost needs a static graph")
    costs, counted = [], set()
    for node in _live_nodes(model):
        layer = node.layer
        if node.is_input or isinstance(layer, layers.InputLayer):
            continue
        if getattr(layer, "_is_graph_network", False):
            for c in layer_costs(layer):
                costs.append(dataclasses.replace(c, name=f"{layer.name}/{c.name}"))
            counted.add(id(layer))
            continue
        ins = [tuple(t.shape) for t in node.keras_inputs] or [tuple(node.input_tensors.shape)]
        outs = [tuple(t.shape) for t in _flatten(node.outputs)]
        flops, macs = _layer_flops(layer, ins, outs)
        params = 0 if id(layer) in counted else _trainable(layer)
        counted.add(id(layer))
        kind = type(layer).__name__
        written = 0 if kind in VIEW_LAYERS else sum(_per_sample(s) for s in outs)
        costs.append(LayerCost(layer.name, kind, params, flops, macs, written))
    return costs


def _flatten(x):
    if isinstance(x, (list, tuple)):
        return [t for item in x for t in _flatten(item)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _flatten(v)]
    return [x]


def count_params(model) -> int:
    """Trainable parameters (PyTorch `numel` of parameters; BN running stats excluded)."""
    seen, total = set(), 0
    for w in model.trainable_weights:
        if id(w) not in seen:
            seen.add(id(w))
            total += _size(w.shape)
    return total


def count_nonzero_params(model) -> int:
    """Trainable parameters whose current value is not exactly zero (e.g. after pruning).

    For tfmot pruning wrappers, strip the model first (`strip_pruning`) or the unmasked kernel
    is read.
    """
    seen, total = set(), 0
    for w in model.trainable_weights:
        if id(w) not in seen:
            seen.add(id(w))
            total += int(np.count_nonzero(keras.backend.get_value(w)))
    return total


def count_flops(model) -> int:
    """FLOPs of one forward pass of one image, fvcore convention (module docstring)."""
    return sum(c.flops for c in layer_costs(model))


def count_activations(model) -> int:
    """Output elements per image written by one forward pass (views excluded; module docstring)."""
    return sum(c.activations for c in layer_costs(model))


def count_macs(model) -> int:
    """Multiply-accumulates of the conv and dense layers for one image."""
    return sum(c.macs for c in layer_costs(model))

