"""MobileNetV1 with CIFAR strides, an OCNNA base network (ocnna.md §4, §5.10).

conv 3×3 3→32 **stride 1** → 13 depthwise-separable blocks [dw 3×3 → BN → ReLU6 → pw 1×1 → BN
→ ReLU6] with Keras Applications' widths and strides (64, 128/2, 128, 256/2, 256, 512/2, 512×5,
1024/2, 1024) → GAP → Dropout(1e-3) → FC n (+bias). 3,217,226 trainable at 32×32×3, 10 classes,
the same as Keras `MobileNet(alpha=1)` + GAP + Dense (tests/test_ocnna_bases.py derives it).
CIFAR adaptation: only the stem stride changes (2 → 1), so at 32×32 the stages see
32/16/8/4/2, and the last stage is 2×2 instead of 1×1 (ocnna.md §1.3, §5.10: a 1×1 map makes
the PCA importance degenerate). This is also the layout of the common PyTorch CIFAR MobileNet
(kuangliu/pytorch-cifar). ReLU6 as in Keras Applications (int8-friendly).

Every conv is directly followed by its BatchNorm and activation (what OCNNA surgery needs); no
conv has a bias. Layer names (the zoo's one scheme): `stem_*`, `s{stage}_b{block}_{dw,pw}_*`,
`head_*`. `width_multiplier` scales every channel count (multiples of 8, at least 8).
"""

from __future__ import annotations

from tfopt._keras import keras, layers
from tfopt.blocks.conv import activation, batch_norm, conv2d, depthwise_conv2d
from tfopt.models.sizing import check_map_size, scale_channels

STEM = 32
STAGES = (
    ((64, 1),),
    ((128, 2), (128, 1)),
    ((256, 2), (256, 1)),
    ((512, 2),) + ((512, 1),) * 5,
    ((1024, 2), (1024, 1)),
)
"""(filters, stride) of every depthwise-separable block, per stage."""


def _conv_bn_relu6(x, *, filters, kernel_size, name):
    y = conv2d(x, filters=filters, kernel_size=kernel_size, name=f"{name}_conv")
    y = batch_norm(y, name=f"{name}_bn")
    return activation(y, "relu6", name=f"{name}_relu6")


def mobilenet_v1(techniques: None = None, *, num_classes: int, input_shape=(32, 32, 3),
                 width_multiplier: float = 1.0, batch_size: int | None = None,
                 base: str = "mobilenet_v1", name: str | None = None):
    """MobileNetV1 with CIFAR strides (module docstring); outputs logits.

    `techniques` must be None (a fixed network); `base` is accepted for the uniform builder
    signature of `tfopt.models.registry`.
    """
    del techniques, base
    name = name or "mobilenet_v1"
    inputs = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = _conv_bn_relu6(inputs, filters=scale_channels(STEM, width_multiplier, divisor=8),
                       kernel_size=3, name="stem")
    for s, blocks in enumerate(STAGES, start=1):
        for b, (filters, stride) in enumerate(blocks, start=1):
            if stride > 1:
                check_map_size(x, 2, name, f"before s{s}_b{b}_dw")
            y = depthwise_conv2d(x, kernel_size=3, stride=stride, name=f"s{s}_b{b}_dw")
            y = batch_norm(y, name=f"s{s}_b{b}_dw_bn")
            y = activation(y, "relu6", name=f"s{s}_b{b}_dw_relu6")
            x = _conv_bn_relu6(y, filters=scale_channels(filters, width_multiplier, divisor=8),
                               kernel_size=1, name=f"s{s}_b{b}_pw")
    x = layers.GlobalAveragePooling2D(name="head_gap")(x)
    x = layers.Dropout(1e-3, name="head_dropout")(x)  # Keras Applications' default
    outputs = layers.Dense(num_classes, name="head_fc")(x)
    return keras.Model(inputs, outputs, name=name)
