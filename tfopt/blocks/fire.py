"""Fire module residual block (SqueezeNet, arXiv:1602.07360) of the reference ResNet-02.

reference-variants.md §1, FIRE(cin, sq, e1, e3, s, ds): squeeze 1x1 cin->sq +b, ReLU -> two
branches on the squeeze output, [1x1 sq->e1 /s +b, ReLU] and [3x3 sq->e3 /s +b, ReLU] ->
concat (e1 first) -> + shortcut (identity, or 1x1 cin->e1+e3 /s +b then BN when ds). No BN in
the main path and no activation after the add.
"""

from __future__ import annotations

from tfopt._keras import layers
from tfopt.blocks.conv import conv2d
from tfopt.blocks.residual import add_shortcut, check_identity_shortcut


def fire_residual(x, *, squeeze: int, expand1x1: int, expand3x3: int, stride: int = 1,
                  downsample: bool = False, name: str):
    """FIRE block. Output channels expand1x1 + expand3x3.

    Layers: `{name}_squeeze` (+`_relu`), `{name}_expand1x1` (+`_relu`), `{name}_expand3x3`
    (+`_relu`), `{name}_concat`, [`{name}_shortcut_conv`, `{name}_shortcut_bn`], `{name}_add`.
    """
    cout = expand1x1 + expand3x3
    check_identity_shortcut(x, filters=cout, stride=stride, downsample=downsample, name=name)
    s = conv2d(x, filters=squeeze, kernel_size=1, use_bias=True, name=f"{name}_squeeze")
    s = layers.ReLU(name=f"{name}_squeeze_relu")(s)
    a = conv2d(s, filters=expand1x1, kernel_size=1, stride=stride, use_bias=True,
               name=f"{name}_expand1x1")
    a = layers.ReLU(name=f"{name}_expand1x1_relu")(a)
    b = conv2d(s, filters=expand3x3, kernel_size=3, stride=stride, use_bias=True,
               name=f"{name}_expand3x3")
    b = layers.ReLU(name=f"{name}_expand3x3_relu")(b)
    y = layers.Concatenate(name=f"{name}_concat")([a, b])
    return add_shortcut(y, x, filters=cout, stride=stride, downsample=downsample, use_bias=True,
                        name=name)
