"""Squeeze-and-excitation (Hu et al., arXiv:1709.01507), as in the reference (no FC biases).

SE(c): GAP -> FC c -> c//reduction (no bias) -> ReLU -> FC -> c (no bias) -> sigmoid -> multiply
the input channel-wise (reference-variants.md §1). The `Multiply` layer needs a QuantizeConfig
for tfmot QAT (see tfopt.compress).
"""

from __future__ import annotations

from tfopt._keras import layers
from tfopt.blocks.conv import torch_default_initializer


def squeeze_excite(x, *, reduction: int = 4, name: str):
    """Channel attention. Params: 2 * c * (c // reduction). FLOPs (fvcore): H*W*c + 2*c*(c//r).

    Layers: `{name}_squeeze` (GAP), `{name}_reduce`, `{name}_relu`, `{name}_expand`,
    `{name}_gate` (sigmoid), `{name}_unsqueeze` (Reshape to 1x1xc), `{name}_scale` (Multiply).
    """
    c = x.shape[-1]
    mid = c // reduction
    if mid < 1:
        raise ValueError(f"{name}: {c} channels // reduction {reduction} = 0 hidden units")
    # FCs on the (B, C) vector (not on a (B, 1, 1, C) map) so TFLite gets plain FULLY_CONNECTED.
    s = layers.GlobalAveragePooling2D(name=f"{name}_squeeze")(x)
    s = layers.Dense(mid, use_bias=False, kernel_initializer=torch_default_initializer(),
                     name=f"{name}_reduce")(s)
    s = layers.ReLU(name=f"{name}_relu")(s)
    s = layers.Dense(c, use_bias=False, kernel_initializer=torch_default_initializer(),
                     name=f"{name}_expand")(s)
    s = layers.Activation("sigmoid", name=f"{name}_gate")(s)
    s = layers.Reshape((1, 1, c), name=f"{name}_unsqueeze")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])
