"""The per-slot units of the VGG-19 variants (Sobolewski & Szyc, reference-variants.md §3).

Each VGG-19 "conv slot" of width l becomes one unit `f(x, *, filters=l, name) -> tensor` with
`filters` output channels. Fire-style units use squeeze sq = l/8 and expands e1 = e3 = l/2.

| unit kind (function = kind + "_unit") | variants | reference-variants.md §3 |
|--------------------|----------|------------------------------------------------------|
| conv3x3            | 01, 02   | conv 3×3 +b, BN, ReLU |
| nx1                | 03       | conv 3×1 cin→cin → conv 1×3 cin→l, BN, ReLU |
| dws                | 04       | dw 3×3 → conv 1×1, BN, ReLU |
| fire               | 05       | F5 (expands read the raw squeeze; dead squeeze BN) |
| fire_dws           | 06, 07   | F6 |
| fire_gpw_shuffle   | 08, 12   | F8 (dead BN after the 3×3 depthwise expand) |
| ghost_fire         | 09       | F9 |
| ghost_fire_shuffle | 10, 11   | F10 |
| dice_fire          | 13       | F13 (DiCE expand, tfopt.blocks.dice) |

Dead parameters (§10.7): the reference computes a BN whose result is never used (VGG-05 squeeze
BN, VGG-08/12 expand-3×3 BN). Their γ/β count as trainable parameters and cost no FLOPs; they
are held by `tfopt.blocks.dead.dead_batch_norm` (an identity layer owning BN-shaped weights).

Layer names: `f"{name}_<op>"` with ops conv, conv3x1, conv1x3, dw, pw, squeeze, expand1,
expand3, expand3_dw, *_bn, *_relu, *_relu6, concat, shuffle_*, dead_bn, primary, cheap, dice_*.

Width multipliers: thresholds of the reference ("groups 1 if cin ≤ 24", "shuffle primary if
sq > 24") compare the actual channel counts; a group count that does not divide the channels
falls back to gcd(groups, channels), so every width builds. At width 1 nothing falls back.
All VGG layers use PyTorch's default init (§0: the VGG scripts never re-initialise).
"""

from __future__ import annotations

import math

from tfopt.blocks.conv import (activation, batch_norm, conv2d, depthwise_conv2d,
                               torch_default_initializer)
from tfopt.blocks.dead import dead_batch_norm
from tfopt.blocks.dice import dice_unit
from tfopt.blocks.ghost import ghost_module
from tfopt.blocks.shuffle import channel_shuffle
from tfopt._keras import layers


def fit_groups(groups: int, *channels: int) -> int:
    """`groups` if it divides every channel count, else gcd(groups, *channels) (≥ 1)."""
    return math.gcd(groups, *channels)


def _conv(x, *, filters, kernel_size=1, groups=1, use_bias=False, name):
    return conv2d(x, filters=filters, kernel_size=kernel_size, groups=groups, use_bias=use_bias,
                  kernel_initializer=torch_default_initializer(), name=name)


def _fire_widths(filters: int, name: str) -> tuple[int, int, int]:
    if filters % 8:
        raise ValueError(f"{name}: fire-style units need filters divisible by 8 "
                         f"(squeeze l/8, expands l/2); got filters={filters}")
    return filters // 8, filters // 2, filters // 2


# ---------------------------------------------------------------- plain-conv units (01–04)

def conv3x3_unit(x, *, filters: int, name: str):
    """VGG 01/02: conv 3×3 cin→l with bias, BN, ReLU. Params 9·cin·l + l + 2l."""
    y = _conv(x, filters=filters, kernel_size=3, use_bias=True, name=f"{name}_conv")
    y = batch_norm(y, name=f"{name}_bn")
    return activation(y, "relu", name=f"{name}_relu")


def nx1_unit(x, *, filters: int, name: str):
    """VGG 03: conv 3×1 cin→cin → conv 1×3 cin→l (no biases, nothing between), BN, ReLU.

    Params 3·cin² + 3·cin·l + 2l.
    """
    y = _conv(x, filters=int(x.shape[-1]), kernel_size=(3, 1), name=f"{name}_conv3x1")
    y = _conv(y, filters=filters, kernel_size=(1, 3), name=f"{name}_conv1x3")
    y = batch_norm(y, name=f"{name}_bn")
    return activation(y, "relu", name=f"{name}_relu")


def dws_unit(x, *, filters: int, name: str):
    """VGG 04: dw 3×3 → conv 1×1 cin→l (no biases, nothing between), BN, ReLU.

    Params 9·cin + cin·l + 2l.
    """
    y = depthwise_conv2d(x, kernel_size=3, name=f"{name}_dw")
    y = _conv(y, filters=filters, name=f"{name}_pw")
    y = batch_norm(y, name=f"{name}_bn")
    return activation(y, "relu", name=f"{name}_relu")


# ---------------------------------------------------------------- fire-style units (05–13)

def fire_unit(x, *, filters: int, name: str):
    """F5 (VGG 05): squeeze 1×1 +b; expand1 1×1 +b and expand3 3×3 +b, each BN + ReLU; concat.

    Quirk (§3, §10.8): the expands read the *raw* squeeze output; the reference's squeeze
    BN + ReLU is computed and thrown away, so its γ/β are dead parameters (counted, 0 FLOPs).
    """
    sq, e1, e3 = _fire_widths(filters, name)
    s = _conv(x, filters=sq, use_bias=True, name=f"{name}_squeeze")
    s = dead_batch_norm(s, channels=sq, name=f"{name}_squeeze_dead_bn")
    a = _conv(s, filters=e1, use_bias=True, name=f"{name}_expand1")
    a = batch_norm(a, name=f"{name}_expand1_bn")
    a = activation(a, "relu", name=f"{name}_expand1_relu")
    b = _conv(s, filters=e3, kernel_size=3, use_bias=True, name=f"{name}_expand3")
    b = batch_norm(b, name=f"{name}_expand3_bn")
    b = activation(b, "relu", name=f"{name}_expand3_relu")
    return layers.Concatenate(name=f"{name}_concat")([a, b])


def fire_dws_unit(x, *, filters: int, name: str):
    """F6 (VGG 06/07): squeeze 1×1 +b, BN, ReLU; expand1 1×1 +b, BN; expand3 = 3×3 depthwise
    with multiplier e3/sq = 4 (PyTorch groups=sq), no bias, BN; ReLU(concat)."""
    sq, e1, e3 = _fire_widths(filters, name)
    s = _conv(x, filters=sq, use_bias=True, name=f"{name}_squeeze")
    s = batch_norm(s, name=f"{name}_squeeze_bn")
    s = activation(s, "relu", name=f"{name}_squeeze_relu")
    a = _conv(s, filters=e1, use_bias=True, name=f"{name}_expand1")
    a = batch_norm(a, name=f"{name}_expand1_bn")
    b = depthwise_conv2d(s, kernel_size=3, depth_multiplier=e3 // sq, name=f"{name}_expand3_dw")
    b = batch_norm(b, name=f"{name}_expand3_bn")
    y = layers.Concatenate(name=f"{name}_concat")([a, b])
    return activation(y, "relu", name=f"{name}_relu")


def fire_gpw_shuffle_unit(x, *, filters: int, name: str):
    """F8 (VGG 08/12): fire with grouped pointwise convs and channel shuffles, no biases.

    squeeze = 1×1 cin→sq, groups 4 (1 and no shuffle if cin ≤ 24), BN, ReLU, shuffle(4);
    expand1 = 1×1 sq→e1, groups 4 (1 if sq ≤ 24), BN; expand3 = 3×3 depthwise ×4 on the
    squeeze, whose BN the reference computes and discards (dead parameters);
    ReLU(shuffle(8)(concat[expand1, expand3])).
    """
    sq, e1, e3 = _fire_widths(filters, name)
    cin = int(x.shape[-1])
    g = fit_groups(4 if cin > 24 else 1, cin, sq)
    s = _conv(x, filters=sq, groups=g, name=f"{name}_squeeze")
    s = batch_norm(s, name=f"{name}_squeeze_bn")
    s = activation(s, "relu", name=f"{name}_squeeze_relu")
    if g > 1:
        s = channel_shuffle(s, groups=g, name=f"{name}_squeeze_shuffle")
    g1 = fit_groups(4 if sq > 24 else 1, sq, e1)
    a = _conv(s, filters=e1, groups=g1, name=f"{name}_expand1")
    a = batch_norm(a, name=f"{name}_expand1_bn")
    b = depthwise_conv2d(s, kernel_size=3, depth_multiplier=e3 // sq, name=f"{name}_expand3_dw")
    b = dead_batch_norm(b, channels=e3, name=f"{name}_expand3_dead_bn")
    y = layers.Concatenate(name=f"{name}_concat")([a, b])
    y = channel_shuffle(y, groups=fit_groups(8, filters), name=f"{name}_shuffle")
    return activation(y, "relu", name=f"{name}_relu")


def ghost_fire_unit(x, *, filters: int, shuffle_expand: bool = False, name: str):
    """F9 (VGG 09), or F10 (VGG 10/11) with `shuffle_expand=True`. No biases.

    squeeze = GM(cin→sq) with BN, ReLU6; expand1 = 1×1 sq→e1, BN; expand3 = GM(sq→e3) with BN
    and no activation, whose primary is 1×1 groups 4 + shuffle(4) in F10 when sq > 24;
    ReLU(concat[expand1, expand3]).
    """
    sq, e1, e3 = _fire_widths(filters, name)
    s = ghost_module(x, filters=sq, act="relu6", name=f"{name}_squeeze")
    a = _conv(s, filters=e1, name=f"{name}_expand1")
    a = batch_norm(a, name=f"{name}_expand1_bn")
    groups = fit_groups(4, sq, e3 // 2) if (shuffle_expand and sq > 24) else 1
    b = ghost_module(s, filters=e3, act=None, groups=groups, name=f"{name}_expand3")
    y = layers.Concatenate(name=f"{name}_concat")([a, b])
    return activation(y, "relu", name=f"{name}_relu")


def ghost_fire_shuffle_unit(x, *, filters: int, name: str):
    """F10 (VGG 10/11): `ghost_fire_unit` with a grouped + shuffled expand3 primary."""
    return ghost_fire_unit(x, filters=filters, shuffle_expand=True, name=name)


def dice_fire_unit(x, *, filters: int, name: str):
    """F13 (VGG 13): squeeze 1×1 cin→sq, groups gcd(cin, sq), BN, ReLU; expand1 1×1 sq→e1, BN;
    expand3 = DICE(sq, e3) at the current H×W; ReLU(concat). No biases.

    The reference follows the squeeze with a channel shuffle that is a no-op (one output channel
    per group); it is left out.
    """
    sq, e1, e3 = _fire_widths(filters, name)
    s = _conv(x, filters=sq, groups=math.gcd(int(x.shape[-1]), sq), name=f"{name}_squeeze")
    s = batch_norm(s, name=f"{name}_squeeze_bn")
    s = activation(s, "relu", name=f"{name}_squeeze_relu")
    a = _conv(s, filters=e1, name=f"{name}_expand1")
    a = batch_norm(a, name=f"{name}_expand1_bn")
    b = dice_unit(s, filters=e3, name=f"{name}_expand3_dice")
    y = layers.Concatenate(name=f"{name}_concat")([a, b])
    return activation(y, "relu", name=f"{name}_relu")


UNITS = {
    "conv3x3": conv3x3_unit,
    "nx1": nx1_unit,
    "dws": dws_unit,
    "fire": fire_unit,
    "fire_dws": fire_dws_unit,
    "fire_gpw_shuffle": fire_gpw_shuffle_unit,
    "ghost_fire": ghost_fire_unit,
    "ghost_fire_shuffle": ghost_fire_shuffle_unit,
    "dice_fire": dice_fire_unit,
}
"""Unit kind (the `unit` field of VggTechniques) -> unit function `(x, *, filters, name)`."""
