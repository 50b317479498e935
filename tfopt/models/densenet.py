"""DenseNet-40 (k=12), an OCNNA base network (ocnna.md §4), built for OCNNA's filter surgery.

Huang et al. 2017, DenseNet (L=40, k=12), no bottleneck or compression: conv 3×3 3→16, three
dense blocks of 12 layers [BN → ReLU → conv 3×3 → 12, concatenated to the input], transitions
BN → ReLU → conv 1×1 (same width) → avg-pool 2×2, final BN → ReLU → GAP → FC n (+bias).
1,019,722 trainable at 32×32×3, 10 classes (tests/test_ocnna_bases.py derives it).
Pre-activation by definition (BN→ReLU→Conv); its joins are real `Concatenate` layers. No conv
has a bias; BN uses PyTorch's epsilon 1e-5 / momentum 0.9 (tfopt.blocks.conv).

Layer names (the zoo's one scheme): `stem_conv`, `s{stage}_b{layer}_{bn,relu,conv,concat}`,
transitions `s{stage}_trans_{op}`, classifier `head_*`. `width_multiplier` scales the initial
width and the growth rate (at least 2 each). The input needs >= 4 pixels per side.
"""

from __future__ import annotations

from tfopt._keras import keras, layers
from tfopt.blocks.conv import activation, batch_norm, conv2d
from tfopt.blocks.heads import gap_fc_head
from tfopt.models.sizing import check_map_size, scale_channels

STEM = 16
STAGES = ((12, 12), (12, 12), (12, 12))
"""(growth rate, layers) per dense block."""


def densenet40(techniques: None = None, *, num_classes: int, input_shape=(32, 32, 3),
               width_multiplier: float = 1.0, batch_size: int | None = None,
               base: str = "densenet40", name: str | None = None):
    """DenseNet-40 (k=12) (module docstring); outputs logits. `techniques` and `base` are
    unused (a fixed network; they keep the registry's builder signature)."""
    del techniques, base
    name = name or "densenet40"
    inputs = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = conv2d(inputs, filters=scale_channels(STEM, width_multiplier, minimum=2), kernel_size=3,
               name="stem_conv")
    for s, (growth, n_layers) in enumerate(STAGES, start=1):
        k = scale_channels(growth, width_multiplier, minimum=2)
        for b in range(1, n_layers + 1):
            y = batch_norm(x, name=f"s{s}_b{b}_bn")
            y = activation(y, "relu", name=f"s{s}_b{b}_relu")
            y = conv2d(y, filters=k, kernel_size=3, name=f"s{s}_b{b}_conv")
            x = layers.Concatenate(name=f"s{s}_b{b}_concat")([x, y])
        if s < len(STAGES):
            check_map_size(x, 2, name, f"before s{s}_trans_pool")
            x = batch_norm(x, name=f"s{s}_trans_bn")
            x = activation(x, "relu", name=f"s{s}_trans_relu")
            x = conv2d(x, filters=int(x.shape[-1]), kernel_size=1, name=f"s{s}_trans_conv")
            x = layers.AveragePooling2D(2, 2, name=f"s{s}_trans_pool")(x)
    x = batch_norm(x, name="head_bn")
    x = activation(x, "relu", name="head_relu")
    outputs = gap_fc_head(x, num_classes=num_classes, use_bias=True, name="head")
    return keras.Model(inputs, outputs, name=name)
