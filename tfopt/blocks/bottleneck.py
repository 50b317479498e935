"""ResNet residual blocks of the reference ResNet-101 variants (reference-variants.md §1).

* `bottleneck`: torchvision Bottleneck v1.5 (stride on the 3x3), with the 3x3 conv standard,
  factorised (3x1 + 1x3) or depthwise, and optionally the ShuffleNet form (grouped 1x1 convs +
  channel shuffle, no act after the 3x3, arXiv:1707.01083) and SE.
* `dice_bottleneck`: 1x1 expand -> DiCE unit (or strided DiCE) -> + shortcut (ResNet-15).
"""

from __future__ import annotations

from tfopt._keras import layers
from tfopt.blocks import dice
from tfopt.blocks.conv import (
    batch_norm,
    conv2d,
    conv_bn_act,
    depthwise_conv2d,
    factorized_conv,
)
from tfopt.blocks.dead import dead_depthwise_bn
from tfopt.blocks.residual import add_shortcut, check_identity_shortcut
from tfopt.blocks.se import squeeze_excite
from tfopt.blocks.shuffle import channel_shuffle

CONV_KINDS = ("standard", "factorized", "depthwise")


def bottleneck(x, *, width: int, stride: int = 1, downsample: bool = False,
               conv: str = "standard", groups: int = 1, se: bool = False, expansion: int = 4,
               name: str):
    """BOT(cin, width, stride, downsample) -> width * expansion channels.

    conv1 1x1 cin->w, BN, ReLU -> conv2 3x3 w->w /s, BN, ReLU -> conv3 1x1 w->4w, BN
    [-> SE] -> + shortcut (identity, or 1x1 /s + BN) -> ReLU.

    Args:
      conv: The 3x3 conv: "standard", "factorized" (3x1 stride (s,1) then 1x3 stride (1,s)),
        or "depthwise" (dw 3x3 /s, no extra pointwise).
      groups: > 1 gives the ShuffleNet bottleneck (ResNet-05 "SB"): conv1/conv3 grouped (conv1
        dense when cin <= 24) and each followed by a channel shuffle, no ReLU after conv2's BN.
        The shortcut conv stays dense.
      se: Squeeze-excitation on the residual branch before the add (SE-ResNet).
      name: Layers `{name}_conv1`, `_bn1`, `_relu1`, `_shuffle1_*`, `_conv2[_dw|_nx1|_1xn]`,
        `_bn2`, `_relu2`, `_conv3`, `_bn3`, `_shuffle3_*`, `_se_*`, `_shortcut_conv`,
        `_shortcut_bn`, `_add`, `_out_relu`.
    """
    cin, cout = x.shape[-1], width * expansion
    if conv not in CONV_KINDS:
        raise ValueError(f"{name}: conv={conv!r}; expected one of {CONV_KINDS}")
    check_identity_shortcut(x, filters=cout, stride=stride, downsample=downsample, name=name)
    shuffled = groups > 1
    g1 = 1 if cin <= 24 else groups  # ShuffleNet: no grouping on a narrow input
    y = conv2d(x, filters=width, kernel_size=1, groups=g1 if shuffled else 1,
               name=f"{name}_conv1")
    y = batch_norm(y, name=f"{name}_bn1")
    y = layers.ReLU(name=f"{name}_relu1")(y)
    if shuffled and g1 > 1:
        y = channel_shuffle(y, groups=g1, name=f"{name}_shuffle1")
    if conv == "standard":
        y = conv2d(y, filters=width, kernel_size=3, stride=stride, name=f"{name}_conv2")
    elif conv == "factorized":
        y = factorized_conv(y, filters=width, kernel_size=3, stride=stride, name=f"{name}_conv2")
    else:
        y = depthwise_conv2d(y, kernel_size=3, stride=stride, name=f"{name}_conv2_dw")
    y = batch_norm(y, name=f"{name}_bn2")
    if not shuffled:
        y = layers.ReLU(name=f"{name}_relu2")(y)
    y = conv2d(y, filters=cout, kernel_size=1, groups=groups, name=f"{name}_conv3")
    y = batch_norm(y, name=f"{name}_bn3")
    if shuffled:
        y = channel_shuffle(y, groups=groups, name=f"{name}_shuffle3")
    if se:
        y = squeeze_excite(y, name=f"{name}_se")
    y = add_shortcut(y, x, filters=cout, stride=stride, downsample=downsample, name=name)
    return layers.ReLU(name=f"{name}_out_relu")(y)


def dice_bottleneck(x, *, expand: int, filters: int, stride: int = 1,
                    downsample: bool = False, dead_dw: bool = False, name: str):
    """DB(cin, e, cout, s, ds) of ResNet-15.

    conv 1x1 cin->e, BN, ReLU -> strided DiCE(e -> cout) when downsample and stride > 1, else
    DiCE(e -> cout) -> + shortcut (identity, or 1x1 /s + BN when downsample). No act after add.

    Args:
      dead_dw: Also own the reference's never-called dw 3x3 (e) + BN(e): 11*e parameters and no
        FLOPs (a `DeadParameters` layer, `{name}_unused_dw`). The reference builds it in every
        downsampling block.
    """
    check_identity_shortcut(x, filters=filters, stride=stride, downsample=downsample, name=name)
    y = conv_bn_act(x, filters=expand, kernel_size=1, act="relu", name=f"{name}_expand")
    if dead_dw:
        y = dead_depthwise_bn(y, channels=expand, name=f"{name}_unused_dw")
    if downsample and stride != 1:
        y = dice.strided_dice_unit(y, filters=filters, name=f"{name}_sdice")
    else:
        y = dice.dice_unit(y, filters=filters, name=f"{name}_dice")
    return add_shortcut(y, x, filters=filters, stride=stride, downsample=downsample, name=name)


