"""Base networks of the OCNNA experiments (ocnna.md §4): CIFAR-style VGG-16, ResNet-50,
DenseNet-40 and MobileNetV1, built so that OCNNA's filter surgery (ocnna.md §1.5) can rebuild
them with fewer channels.

Conventions that keep surgery simple:
* Every conv is directly followed by its BatchNorm and activation (Conv→BN→ReLU); DenseNet is
  pre-activation by definition (BN→ReLU→Conv), its joins are real `Concatenate` layers.
* No conv has a bias except VGG-16's (the cifar10vgg / PFEC lineage has them); BN uses PyTorch's
  epsilon 1e-5 / momentum 0.9 (tfopt.blocks.conv).
* Names: `stem_*`, `s{stage}_b{block}_{op}` (op: conv, bn, relu, relu6, dw, pw, concat, ...),
  DenseNet transitions `s{stage}_trans_{op}`, classifier `head_*`. All outputs are logits.

Architectures (counts for 32×32×3, 10 classes; tests/test_ocnna_bases.py derives them):
* `vgg16`: 13 × [conv 3×3 +bias → BN → ReLU], max-pool 2×2 after each of the 5 stages
  (64×2, 128×2, 256×3, 512×3, 512×3) → Flatten (1×1×512) → FC 512 (+bias) → BN → ReLU →
  Dropout(0.5) → FC n. 14,991,946 trainable (15,001,418 with BN statistics), ocnna.md §4 row 1.
* `resnet50`: CIFAR stem (conv 3×3 /1 → 64, BN, ReLU, no max-pool), torchvision bottlenecks
  (v1.5, stride on the 3×3) 3/4/6/3 with widths 64/128/256/512 and strides 1/2/2/2 →
  GAP → FC n (+bias). 23,520,842 trainable. Maps: 32 → 32/16/8/4.
* `densenet40`: conv 3×3 3→16, three dense blocks of 12 layers [BN → ReLU → conv 3×3 → 12,
  concatenated to the input], transitions BN → ReLU → conv 1×1 (same width, no compression) →
  avg-pool 2×2, final BN → ReLU → GAP → FC n (+bias). 1,019,722 trainable (Huang et al. 2017,
  DenseNet (L=40, k=12), no bottleneck/compression).
* `mobilenet_v1`: conv 3×3 3→32 **stride 1** → 13 depthwise-separable blocks [dw 3×3 → BN →
  ReLU6 → pw 1×1 → BN → ReLU6] with Keras Applications' widths and strides (64, 128/2, 128,
  256/2, 256, 512/2, 512×5, 1024/2, 1024) → GAP → Dropout(1e-3) → FC n (+bias). 3,217,226
  trainable, the same as Keras `MobileNet(alpha=1)` + GAP + Dense. CIFAR adaptation: only the
  stem stride changes (2 → 1), so at 32×32 the stages see 32/16/8/4/2, and the last stage is
  2×2 instead of 1×1 (ocnna.md §1.3, §5.10: a 1×1 map makes the PCA importance degenerate). This
  is also the layout of the common PyTorch CIFAR MobileNet (kuangliu/pytorch-cifar). ReLU6 as in
  Keras Applications (int8-friendly).

`width_multiplier` scales every channel count (multiples of 8, at least 8; DenseNet's growth
rate and initial width to at least 2). Input sizes other than 32×32 are allowed as long as the
maps do not shrink below 1×1 (VGG-16 and DenseNet-40 need ≥ 32 and ≥ 4 per side).
"""

from __future__ import annotations

import dataclasses

from tfopt._keras import keras, layers
from tfopt.blocks.bottleneck import bottleneck
from tfopt.blocks.conv import activation, batch_norm, conv2d, depthwise_conv2d
from tfopt.blocks.heads import gap_fc_head
from tfopt.models.registry import Variant


@dataclasses.dataclass(frozen=True)
class BaseArchitecture:
    """A fixed base network as data: its family and stage table.

    Attributes:
      family: "vgg", "resnet", "densenet" or "mobilenet".
      stem: Channels of the stem conv (0: none, VGG).
      stages: Family-specific rows: vgg (width, convs); resnet (width, blocks, stride);
        densenet (growth rate, layers); mobilenet a tuple of (filters, stride) per block.
      head_hidden: Width of the hidden FC (VGG-16: 512), 0 for none.
    """

    family: str
    stem: int
    stages: tuple
    head_hidden: int = 0


VGG16 = BaseArchitecture("vgg", 0, ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), 512)
RESNET50 = BaseArchitecture("resnet", 64, ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)))
DENSENET40 = BaseArchitecture("densenet", 16, ((12, 12), (12, 12), (12, 12)))
MOBILENET_V1 = BaseArchitecture("mobilenet", 32, (
    ((64, 1),),
    ((128, 2), (128, 1)),
    ((256, 2), (256, 1)),
    ((512, 2),) + ((512, 1),) * 5,
    ((1024, 2), (1024, 1)),
))


def scale_channels(channels: int, width_multiplier: float, *, divisor: int = 8,
                   minimum: int = 8) -> int:
    """`channels` × `width_multiplier` rounded to a multiple of `divisor`, at least `minimum`.

    Width 1.0 returns `channels` unchanged.
    """
    if width_multiplier == 1.0:
        return channels
    return max(minimum, int(round(channels * width_multiplier / divisor)) * divisor)


def _check_size(x, need: int, base: str):
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None or h < need or w < need:
        raise ValueError(f"{base}: the feature map is {h}x{w} here but needs at least "
                         f"{need}x{need}; use a larger input_shape (e.g. (32, 32, 3))")


def _conv_bn_act(x, *, filters, kernel_size=3, stride=1, use_bias=False, act="relu", name):
    y = conv2d(x, filters=filters, kernel_size=kernel_size, stride=stride, use_bias=use_bias,
               name=f"{name}_conv")
    y = batch_norm(y, name=f"{name}_bn")
    return activation(y, act, name=f"{name}_{act}")


def vgg16(*, num_classes: int, input_shape=(32, 32, 3), width_multiplier: float = 1.0,
          batch_size: int | None = None, name: str = "vgg16"):
    """CIFAR VGG-16 with BN after every conv and a 512-unit FC + BN (module docstring)."""
    inputs = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = inputs
    for s, (width, convs) in enumerate(VGG16.stages, start=1):
        for b in range(1, convs + 1):
            x = _conv_bn_act(x, filters=scale_channels(width, width_multiplier), use_bias=True,
                             name=f"s{s}_b{b}")
        _check_size(x, 2, name)
        x = layers.MaxPooling2D(2, 2, name=f"s{s}_pool")(x)
    x = layers.Flatten(name="head_flatten")(x)
    x = layers.Dense(scale_channels(VGG16.head_hidden, width_multiplier), name="head_fc1")(x)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="head_fc1_bn")(x)
    x = layers.ReLU(name="head_fc1_relu")(x)
    x = layers.Dropout(0.5, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, name="head_logits")(x)
    return keras.Model(inputs, outputs, name=name)


def resnet50(*, num_classes: int, input_shape=(32, 32, 3), width_multiplier: float = 1.0,
             batch_size: int | None = None, name: str = "resnet50"):
    """CIFAR ResNet-50: 3×3 stride-1 stem, no max-pool, bottlenecks 3/4/6/3 (module docstring)."""
    inputs = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = _conv_bn_act(inputs, filters=scale_channels(RESNET50.stem, width_multiplier),
                     name="stem")
    for s, (width, blocks, stride) in enumerate(RESNET50.stages, start=1):
        for b in range(1, blocks + 1):
            x = bottleneck(x, width=scale_channels(width, width_multiplier),
                           stride=stride if b == 1 else 1, downsample=b == 1,
                           name=f"s{s}_b{b}")
    outputs = gap_fc_head(x, num_classes=num_classes, use_bias=True, name="head")
    return keras.Model(inputs, outputs, name=name)


def densenet40(*, num_classes: int, input_shape=(32, 32, 3), width_multiplier: float = 1.0,
               batch_size: int | None = None, name: str = "densenet40"):
    """DenseNet-40 (k=12), no bottleneck or compression (module docstring)."""
    inputs = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = conv2d(inputs, filters=scale_channels(DENSENET40.stem, width_multiplier, divisor=1,
                                              minimum=2), kernel_size=3, name="stem_conv")
    for s, (growth, n_layers) in enumerate(DENSENET40.stages, start=1):
        k = scale_channels(growth, width_multiplier, divisor=1, minimum=2)
        for b in range(1, n_layers + 1):
            y = batch_norm(x, name=f"s{s}_b{b}_bn")
            y = activation(y, "relu", name=f"s{s}_b{b}_relu")
            y = conv2d(y, filters=k, kernel_size=3, name=f"s{s}_b{b}_conv")
            x = layers.Concatenate(name=f"s{s}_b{b}_concat")([x, y])
        if s < len(DENSENET40.stages):
            _check_size(x, 2, name)
            x = batch_norm(x, name=f"s{s}_trans_bn")
            x = activation(x, "relu", name=f"s{s}_trans_relu")
            x = conv2d(x, filters=int(x.shape[-1]), kernel_size=1, name=f"s{s}_trans_conv")
            x = layers.AveragePooling2D(2, 2, name=f"s{s}_trans_pool")(x)
    x = batch_norm(x, name="head_bn")
    x = activation(x, "relu", name="head_relu")
    outputs = gap_fc_head(x, num_classes=num_classes, use_bias=True, name="head")
    return keras.Model(inputs, outputs, name=name)


def mobilenet_v1(*, num_classes: int, input_shape=(32, 32, 3), width_multiplier: float = 1.0,
                 batch_size: int | None = None, name: str = "mobilenet_v1"):
    """MobileNetV1 with CIFAR strides: stride-1 stem, last stage 2×2 at 32×32 (module docstring)."""
    inputs = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = _conv_bn_act(inputs, filters=scale_channels(MOBILENET_V1.stem, width_multiplier),
                     act="relu6", name="stem")
    for s, blocks in enumerate(MOBILENET_V1.stages, start=1):
        for b, (filters, stride) in enumerate(blocks, start=1):
            if stride > 1:
                _check_size(x, 2, name)
            y = depthwise_conv2d(x, kernel_size=3, stride=stride, name=f"s{s}_b{b}_dw")
            y = batch_norm(y, name=f"s{s}_b{b}_dw_bn")
            y = activation(y, "relu6", name=f"s{s}_b{b}_dw_relu6")
            x = _conv_bn_act(y, filters=scale_channels(filters, width_multiplier),
                             kernel_size=1, act="relu6", name=f"s{s}_b{b}_pw")
    x = layers.GlobalAveragePooling2D(name="head_gap")(x)
    x = layers.Dropout(1e-3, name="head_dropout")(x)  # Keras Applications' default
    outputs = layers.Dense(num_classes, name="head_fc")(x)
    return keras.Model(inputs, outputs, name=name)


_BUILDERS = {"vgg16": vgg16, "resnet50": resnet50, "densenet40": densenet40,
             "mobilenet_v1": mobilenet_v1}


def _build(variant: Variant, *, num_classes, input_shape, width_multiplier, batch_size):
    return _BUILDERS[variant.id](num_classes=num_classes, input_shape=input_shape,
                                 width_multiplier=width_multiplier, batch_size=batch_size,
                                 name=variant.id)


VARIANTS = (
    Variant("vgg16", "vgg16", VGG16, "OCNNA base: CIFAR VGG-16-BN + FC-512 (ocnna.md §4 row 1)",
            build=_build),
    Variant("resnet50", "resnet50", RESNET50,
            "OCNNA base: ResNet-50 with a CIFAR stem (ocnna.md §4, §5.10)", build=_build),
    Variant("densenet40", "densenet40", DENSENET40,
            "OCNNA base: DenseNet-40, k=12, no bottleneck/compression (ocnna.md §4)",
            build=_build),
    Variant("mobilenet_v1", "mobilenet_v1", MOBILENET_V1,
            "OCNNA base: MobileNetV1 with CIFAR strides (ocnna.md §4, §5.10)", build=_build),
)
