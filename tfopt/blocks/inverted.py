"""Inverted residual with linear bottleneck (MobileNetV2, arXiv:1801.04381), as in ResNet-06..09.

reference-variants.md §1, IR(cin, h, cout, s, ds): 1x1 cin->h, BN, ReLU6 -> dw 3x3 /s, BN,
ReLU6 -> 1x1 h->cout, BN -> + shortcut (identity, or 1x1 /s + BN when ds). No act after the add.
"""

from __future__ import annotations

from tfopt.blocks.conv import conv_bn_act, dw_bn_act
from tfopt.blocks.residual import add_shortcut, check_identity_shortcut
from tfopt.blocks.se import squeeze_excite


def inverted_residual(x, *, expand: int, filters: int, stride: int = 1,
                      downsample: bool = False, se: bool = False, name: str):
    """IR block. Params: cin*h + 9h + h*cout + 2*(2h + cout) [+ cin*cout + 2*cout shortcut].

    Layers: `{name}_expand` (+`_bn`, `_relu6`), `{name}_dw` (+`_bn`, `_relu6`), `{name}_project`
    (+`_bn`), [`{name}_shortcut_conv`, `{name}_shortcut_bn`], `{name}_add`.
    `se=True` adds squeeze-excitation on the expanded map after the dw conv (MobileNetV3
    placement, arXiv:1905.02244; not in the paper): `{name}_se_*`.
    """
    check_identity_shortcut(x, filters=filters, stride=stride, downsample=downsample, name=name)
    y = conv_bn_act(x, filters=expand, kernel_size=1, act="relu6", name=f"{name}_expand")
    y = dw_bn_act(y, kernel_size=3, stride=stride, act="relu6", name=f"{name}_dw")
    if se:
        y = squeeze_excite(y, name=f"{name}_se")
    y = conv_bn_act(y, filters=filters, kernel_size=1, act=None, name=f"{name}_project")
    return add_shortcut(y, x, filters=filters, stride=stride, downsample=downsample, name=name)
