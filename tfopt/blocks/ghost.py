"""Ghost module and ghost bottleneck (GhostNet, arXiv:1911.11907), as in the reference.

reference-variants.md §1: ratio 2, a 3x3 depthwise "cheap" op on the primary output, and the
concat order [cheap, primary]. With `groups > 1` the primary 1x1 conv is grouped and directly
followed by a channel shuffle (ResNet-13/14 "GM-shuffle", VGG-10); no BN/act in between.
"""

from __future__ import annotations

from tfopt._keras import layers
from tfopt.blocks.conv import activation, batch_norm, conv2d, depthwise_conv2d
from tfopt.blocks.residual import add_shortcut, check_identity_shortcut
from tfopt.blocks.se import squeeze_excite
from tfopt.blocks.shuffle import channel_shuffle


def ghost_module(x, *, filters: int, act: str | None = None, groups: int = 1, name: str):
    """GM(cin -> filters): primary 1x1 -> filters/2, cheap dw 3x3 on it, concat, BN, act.

    Params: cin*filters/(2*groups) + 9*filters/2 + 2*filters.
    Layers: `{name}_primary` [`{name}_shuffle_*`], `{name}_cheap`, `{name}_concat`, `{name}_bn`,
    `{name}_{act}`.
    """
    if filters % 2:
        raise ValueError(f"{name}: ghost module filters={filters} must be even (ratio 2)")
    p = conv2d(x, filters=filters // 2, kernel_size=1, groups=groups, name=f"{name}_primary")
    if groups > 1:
        p = channel_shuffle(p, groups=groups, name=f"{name}_shuffle")
    cheap = depthwise_conv2d(p, kernel_size=3, name=f"{name}_cheap")
    y = layers.Concatenate(name=f"{name}_concat")([cheap, p])
    y = batch_norm(y, name=f"{name}_bn")
    return activation(y, act, name=f"{name}_{act}")


def ghost_bottleneck(x, *, expand: int, filters: int, stride: int = 1,
                     downsample: bool = False, downsample_dw: bool = False, se: bool = False,
                     groups: int = 1, name: str):
    """GB(cin, expand, filters, stride, downsample) of the reference ResNet-10..14.

    GM(cin -> expand, ReLU6) -> [dw 3x3 /stride + BN if `downsample_dw`] -> [SE(expand)] ->
    GM(expand -> filters, no act) -> + shortcut (identity, or 1x1 conv /stride + BN when
    `downsample`). No activation after the add.

    Args:
      downsample_dw: Build the strided dw 3x3 + BN. ResNet-10..12 build it whenever
        `downsample`; ResNet-13/14 only when stride > 1 (the caller decides).
      groups: Groups of both ghost modules' primary convs (then followed by a shuffle).
    """
    if stride != 1 and not downsample_dw:
        raise ValueError(f"{name}: stride={stride} needs downsample_dw=True")
    check_identity_shortcut(x, filters=filters, stride=stride, downsample=downsample, name=name)
    y = ghost_module(x, filters=expand, act="relu6", groups=groups, name=f"{name}_ghost1")
    if downsample_dw:
        y = depthwise_conv2d(y, kernel_size=3, stride=stride, name=f"{name}_dw")
        y = batch_norm(y, name=f"{name}_dw_bn")
    if se:
        y = squeeze_excite(y, name=f"{name}_se")
    y = ghost_module(y, filters=filters, act=None, groups=groups, name=f"{name}_ghost2")
    return add_shortcut(y, x, filters=filters, stride=stride, downsample=downsample, name=name)
