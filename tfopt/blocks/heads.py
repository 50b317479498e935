"""Classifier heads. Every head outputs logits (no softmax).

* `gap_fc_head`: GAP -> FC (the paper's "GAP" head).
* `conv_head`: 1x1 conv -> classes [+ BN] [+ act] -> GAP: the "no FC" head (ResNet-07..14,
  VGG-07..13). In the reference the logits come out of a ReLU/ReLU6 followed by GAP.
* `mlp_head`: flatten -> (FC, ReLU, Dropout) x k -> FC (VGG-19 baseline).
"""

from __future__ import annotations

from collections.abc import Sequence

from tfopt._keras import layers
from tfopt.blocks.conv import activation, batch_norm, conv2d, torch_default_initializer


def _dense(x, units, use_bias, name):
    return layers.Dense(units, use_bias=use_bias, kernel_initializer=torch_default_initializer(),
                        name=name)(x)


def gap_fc_head(x, *, num_classes: int, use_bias: bool = True, name: str = "head"):
    """GAP -> FC. Params c*n (+n). Layers `{name}_gap`, `{name}_fc`."""
    x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    return _dense(x, num_classes, use_bias, f"{name}_fc")


def conv_head(x, *, num_classes: int, use_bias: bool = False, bn: bool = True,
              act: str | None = "relu6", name: str = "head"):
    """1x1 conv -> num_classes [+ BN] [+ act] -> GAP (logits). Params c*n (+n) (+2n).

    Layers `{name}_conv`, `{name}_bn`, `{name}_{act}`, `{name}_gap`.
    """
    x = conv2d(x, filters=num_classes, kernel_size=1, use_bias=use_bias, name=f"{name}_conv")
    if bn:
        x = batch_norm(x, name=f"{name}_bn")
    x = activation(x, act, name=f"{name}_{act}")
    return layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)


def mlp_head(x, *, num_classes: int, hidden: Sequence[int] = (4096, 4096),
             dropout: float = 0.5, name: str = "head"):
    """Flatten -> [FC +b, ReLU, Dropout] per hidden width -> FC +b (logits).

    Layers `{name}_flatten`, `{name}_fc{i}`, `{name}_relu{i}`, `{name}_dropout{i}`, `{name}_fc`.
    """
    x = layers.Flatten(name=f"{name}_flatten")(x)
    for i, units in enumerate(hidden, start=1):
        x = _dense(x, units, True, f"{name}_fc{i}")
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{name}_dropout{i}")(x)
    return _dense(x, num_classes, True, f"{name}_fc")
