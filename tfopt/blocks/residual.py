"""The residual join every ResNet-101 block kind shares (reference-variants.md §1).

A block's output is `main + shortcut`, where the shortcut is the identity, or, when the block
downsamples (`ds`), a 1x1 conv with the block's stride followed by BN (cout*cin [+cout bias]
+ 2*cout params).
"""

from __future__ import annotations

from tfopt._keras import layers
from tfopt.blocks.conv import batch_norm, conv2d


def check_identity_shortcut(x, *, filters: int, stride: int, downsample: bool, name: str):
    """Raise a ValueError unless an identity shortcut fits (stride 1, same channel count)."""
    cin = x.shape[-1]
    if not downsample and (stride != 1 or cin != filters):
        raise ValueError(f"{name}: identity shortcut needs stride 1 and {cin} == {filters} "
                         "channels; pass downsample=True")


def add_shortcut(y, x, *, filters: int, stride: int, downsample: bool, use_bias: bool = False,
                 name: str):
    """`y + shortcut(x)`; layers `{name}_shortcut_conv`, `{name}_shortcut_bn`, `{name}_add`."""
    shortcut = x
    if downsample:
        shortcut = conv2d(x, filters=filters, kernel_size=1, stride=stride, use_bias=use_bias,
                          name=f"{name}_shortcut_conv")
        shortcut = batch_norm(shortcut, name=f"{name}_shortcut_bn")
    return layers.Add(name=f"{name}_add")([y, shortcut])
