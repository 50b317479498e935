"""The per-slot units of the VGG-19 variants (Sobolewski & Szyc, reference-variants.md §3).

Each VGG-19 "conv slot" of width l becomes one unit `f(x, *, filters=l, name) -> tensor` with
`filters` output channels. Fire-style units use squeeze sq = l/8 and expands e1 = e3 = l/2.

| unit            | variants | reference-variants.md §3 |
|-----------------|----------|--------------------------|
| conv3x3_unit    | 01, 02   | conv 3×3 +b, BN, ReLU |
| nx1_unit        | 03       | conv 3×1 cin→cin → conv 1×3 cin→l, BN, ReLU |
| dws_unit        | 04       | dw 3×3 → conv 1×1, BN, ReLU |
| fire_unit       | 05       | F5 (expands read the raw squeeze; dead squeeze BN) |
| fire_dws_unit   | 06, 07   | F6 |
| fire_gpw_shuffle_unit | 08, 12 | F8 (dead BN after the 3×3 depthwise expand) |
| ghost_fire_unit | 09, 10, 11 | F9, and F10 with `shuffle_expand=True` |
| dice_fire_unit  | 13       | F13 (DiCE expand, tfopt.blocks.dice) |

Dead parameters (§10.7): the reference computes a BN whose result is never used (VGG-05 squeeze
BN, VGG-08/12 expand-3×3 BN). Their γ/β count as trainable parameters and add no FLOPs; here
they are held by `DeadBatchNorm`, an identity layer that owns BN-shaped weights.

Every layer is named `f"{name}_<op>"` with ops from: conv, bn, relu, dw, pw, squeeze, expand1,
expand3, cheap, primary, concat, shuffle, dead_bn.

Channel counts below the reference's (width multipliers < 1) keep the rules of the reference
(grouping thresholds such as "g=1 if cin ≤ 24" compare actual channel counts); a requested group
count that does not divide the channels falls back to their gcd, so every width builds.
"""

from __future__ import annotations

import math

from tfopt._keras import keras, layers
from tfopt.blocks.dice import dice_unit

# TODO(ResNet engineer's blocks): use the shared channel shuffle, ghost module, SE and
# dead-parameter holder from tfopt/blocks once they land; the private versions below are the
# stand-ins the brief allows for time-critical VGG needs.

_BN_KW = dict(epsilon=1e-5, momentum=0.9)  # PyTorch BatchNorm2d defaults, §0


def _bn(name: str):
    return layers.BatchNormalization(name=name, **_BN_KW)


def _channels(x) -> int:
    return int(x.shape[-1])


def fit_groups(groups: int, *channels: int) -> int:
    """`groups` if it divides every channel count, else gcd(groups, *channels) (≥ 1)."""
    return math.gcd(groups, *channels)


def channel_shuffle(x, *, groups: int, name: str):
    """PyTorch ShuffleNet shuffle (C -> (g, C/g) -> transpose -> flatten) in NHWC, Keras layers."""
    h, w, c = (int(d) for d in x.shape[1:])
    if c % groups:
        raise ValueError(f"{name}: channel shuffle needs channels divisible by groups; "
                         f"got {c} channels, groups={groups}")
    if groups == 1:
        return x
    y = layers.Reshape((h, w, groups, c // groups), name=f"{name}_reshape_in")(x)
    y = layers.Permute((1, 2, 4, 3), name=f"{name}_transpose")(y)
    return layers.Reshape((h, w, c), name=f"{name}_reshape_out")(y)


@keras.utils.register_keras_serializable(package="tfopt")
class DeadBatchNorm(layers.Layer):
    """Identity layer owning the weights of a BatchNorm the reference computes but never uses.

    It holds γ, β (trainable) and moving mean/variance (non-trainable) of `channels`, so
    parameter counts match the reference (2·channels trainable), and returns its input
    unchanged (0 FLOPs). The weights never influence the output.
    """

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)

    def build(self, input_shape):
        c = self.channels
        self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")
        self.moving_mean = self.add_weight(name="moving_mean", shape=(c,),
                                           initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=(c,),
                                               initializer="ones", trainable=False)
        super().build(input_shape)

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def squeeze_excite(x, *, name: str):
    """SE(c) of §1: GAP → FC c→c/4 (no bias) → ReLU → FC c/4→c (no bias) → sigmoid → scale."""
    c = _channels(x)
    s = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    s = layers.Dense(max(1, c // 4), use_bias=False, name=f"{name}_squeeze")(s)
    s = layers.ReLU(name=f"{name}_relu")(s)
    s = layers.Dense(c, use_bias=False, name=f"{name}_excite")(s)
    s = layers.Activation("sigmoid", name=f"{name}_gate")(s)
    s = layers.Reshape((1, 1, c), name=f"{name}_reshape")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])


def ghost_module(x, *, filters: int, relu6: bool, shuffle_groups: int = 1, name: str):
    """Ghost module GM(cin, cout) of §1 (ratio 2, 3×3 cheap op), output concat [cheap, primary].

    primary = 1×1 conv cin→cout/2 (grouped + channel shuffle when `shuffle_groups` > 1, no BN
    between); cheap = 3×3 depthwise on the primary; BN(cout); ReLU6 if `relu6`.
    """
    if filters % 2:
        raise ValueError(f"{name}: ghost module needs an even channel count; got {filters}")
    half = filters // 2
    g = fit_groups(shuffle_groups, _channels(x), half)
    p = layers.Conv2D(half, 1, groups=g, use_bias=False, name=f"{name}_primary")(x)
    if g > 1:
        p = channel_shuffle(p, groups=g, name=f"{name}_primary_shuffle")
    c = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_cheap")(p)
    y = layers.Concatenate(name=f"{name}_concat")([c, p])
    y = _bn(f"{name}_bn")(y)
    if relu6:
        y = layers.ReLU(6.0, name=f"{name}_relu6")(y)
    return y


def _fire_widths(filters: int, name: str) -> tuple[int, int, int]:
    if filters % 8:
        raise ValueError(f"{name}: fire-style units need filters divisible by 8 "
                         f"(squeeze l/8, expands l/2); got {filters}")
    return filters // 8, filters // 2, filters // 2


# ---------------------------------------------------------------- plain-conv units (01–04)

def conv3x3_unit(x, *, filters: int, name: str):
    """VGG 01/02: conv 3×3 cin→l with bias, BN, ReLU."""
    y = layers.Conv2D(filters, 3, padding="same", use_bias=True, name=f"{name}_conv")(x)
    y = _bn(f"{name}_bn")(y)
    return layers.ReLU(name=f"{name}_relu")(y)


def nx1_unit(x, *, filters: int, name: str):
    """VGG 03: conv 3×1 cin→cin → conv 1×3 cin→l (no biases, nothing between), BN, ReLU."""
    y = layers.Conv2D(_channels(x), (3, 1), padding="same", use_bias=False,
                      name=f"{name}_conv3x1")(x)
    y = layers.Conv2D(filters, (1, 3), padding="same", use_bias=False, name=f"{name}_conv1x3")(y)
    y = _bn(f"{name}_bn")(y)
    return layers.ReLU(name=f"{name}_relu")(y)


def dws_unit(x, *, filters: int, name: str):
    """VGG 04: dw 3×3 → conv 1×1 cin→l (no biases, nothing between), BN, ReLU."""
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(y)
    y = _bn(f"{name}_bn")(y)
    return layers.ReLU(name=f"{name}_relu")(y)


# ---------------------------------------------------------------- fire-style units (05–13)

def fire_unit(x, *, filters: int, name: str):
    """F5 (VGG 05): squeeze 1×1 +b; expands 1×1 +b and 3×3 +b each BN+ReLU; concat.

    Quirk (§3, §10.8): the expands read the *raw* squeeze output; the reference's squeeze BN+ReLU
    is computed and thrown away, so its γ/β are dead parameters (DeadBatchNorm).
    """
    sq, e1, e3 = _fire_widths(filters, name)
    s = layers.Conv2D(sq, 1, use_bias=True, name=f"{name}_squeeze")(x)
    s = DeadBatchNorm(sq, name=f"{name}_squeeze_dead_bn")(s)
    a = layers.Conv2D(e1, 1, use_bias=True, name=f"{name}_expand1")(s)
    a = _bn(f"{name}_expand1_bn")(a)
    a = layers.ReLU(name=f"{name}_expand1_relu")(a)
    b = layers.Conv2D(e3, 3, padding="same", use_bias=True, name=f"{name}_expand3")(s)
    b = _bn(f"{name}_expand3_bn")(b)
    b = layers.ReLU(name=f"{name}_expand3_relu")(b)
    return layers.Concatenate(name=f"{name}_concat")([a, b])


def fire_dws_unit(x, *, filters: int, name: str):
    """F6 (VGG 06/07): squeeze 1×1 +b, BN, ReLU; expand1 1×1 +b, BN; expand3 = 3×3 depthwise
    with multiplier e3/sq (= 4; PyTorch groups=sq), no bias, BN; ReLU(concat)."""
    sq, e1, e3 = _fire_widths(filters, name)
    s = layers.Conv2D(sq, 1, use_bias=True, name=f"{name}_squeeze")(x)
    s = _bn(f"{name}_squeeze_bn")(s)
    s = layers.ReLU(name=f"{name}_squeeze_relu")(s)
    a = layers.Conv2D(e1, 1, use_bias=True, name=f"{name}_expand1")(s)
    a = _bn(f"{name}_expand1_bn")(a)
    b = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=e3 // sq, use_bias=False,
                               name=f"{name}_expand3_dw")(s)
    b = _bn(f"{name}_expand3_bn")(b)
    y = layers.Concatenate(name=f"{name}_concat")([a, b])
    return layers.ReLU(name=f"{name}_relu")(y)


def fire_gpw_shuffle_unit(x, *, filters: int, name: str):
    """F8 (VGG 08/12): grouped-pointwise fire with channel shuffles, no biases.

    squeeze = 1×1 cin→sq, groups 4 (1 and no shuffle if cin ≤ 24), BN, ReLU, shuffle(4);
    expand1 = 1×1 sq→e1, groups 4 (1 if sq ≤ 24), BN; expand3 = 3×3 depthwise ×4 on the squeeze,
    whose BN the reference computes and discards (DeadBatchNorm); ReLU(shuffle(8)(concat)).
    """
    sq, e1, e3 = _fire_widths(filters, name)
    cin = _channels(x)
    g = fit_groups(4 if cin > 24 else 1, cin, sq)
    s = layers.Conv2D(sq, 1, groups=g, use_bias=False, name=f"{name}_squeeze")(x)
    s = _bn(f"{name}_squeeze_bn")(s)
    s = layers.ReLU(name=f"{name}_squeeze_relu")(s)
    if g > 1:
        s = channel_shuffle(s, groups=g, name=f"{name}_squeeze_shuffle")
    g1 = fit_groups(4 if sq > 24 else 1, sq, e1)
    a = layers.Conv2D(e1, 1, groups=g1, use_bias=False, name=f"{name}_expand1")(s)
    a = _bn(f"{name}_expand1_bn")(a)
    b = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=e3 // sq, use_bias=False,
                               name=f"{name}_expand3_dw")(s)
    b = DeadBatchNorm(e3, name=f"{name}_expand3_dead_bn")(b)
    y = layers.Concatenate(name=f"{name}_concat")([a, b])
    y = channel_shuffle(y, groups=fit_groups(8, filters), name=f"{name}_shuffle")
    return layers.ReLU(name=f"{name}_relu")(y)


def ghost_fire_unit(x, *, filters: int, shuffle_expand: bool = False, name: str):
    """F9 (VGG 09) / F10 (VGG 10, 11 with `shuffle_expand=True`), no biases.

    squeeze = GM(cin→sq) with BN, ReLU6; expand1 = 1×1 sq→e1, BN; expand3 = GM(sq→e3) with BN,
    no activation — in F10 its primary is 1×1 groups 4 + shuffle(4) when sq > 24;
    ReLU(concat[expand1, expand3]).
    """
    sq, e1, e3 = _fire_widths(filters, name)
    s = ghost_module(x, filters=sq, relu6=True, name=f"{name}_squeeze")
    a = layers.Conv2D(e1, 1, use_bias=False, name=f"{name}_expand1")(s)
    a = _bn(f"{name}_expand1_bn")(a)
    groups = 4 if (shuffle_expand and sq > 24) else 1
    b = ghost_module(s, filters=e3, relu6=False, shuffle_groups=groups, name=f"{name}_expand3")
    y = layers.Concatenate(name=f"{name}_concat")([a, b])
    return layers.ReLU(name=f"{name}_relu")(y)


def dice_fire_unit(x, *, filters: int, name: str):
    """F13 (VGG 13): squeeze 1×1 cin→sq with groups gcd(cin, sq), BN, ReLU; expand1 1×1 sq→e1,
    BN; expand3 = DICE(sq, e3) at the current H×W; ReLU(concat). No biases.

    The reference follows the squeeze with a channel shuffle that is a no-op (one output per
    group); it is left out (identity).
    """
    sq, e1, e3 = _fire_widths(filters, name)
    g = math.gcd(_channels(x), sq)
    s = layers.Conv2D(sq, 1, groups=g, use_bias=False, name=f"{name}_squeeze")(x)
    s = _bn(f"{name}_squeeze_bn")(s)
    s = layers.ReLU(name=f"{name}_squeeze_relu")(s)
    a = layers.Conv2D(e1, 1, use_bias=False, name=f"{name}_expand1")(s)
    a = _bn(f"{name}_expand1_bn")(a)
    b = dice_unit(s, filters=e3, name=f"{name}_expand3_dice")
    y = layers.Concatenate(name=f"{name}_concat")([a, b])
    return layers.ReLU(name=f"{name}_relu")(y)


UNITS = {
    "conv3x3": conv3x3_unit,
    "nx1": nx1_unit,
    "dws": dws_unit,
    "fire": fire_unit,
    "fire_dws": fire_dws_unit,
    "fire_gpw_shuffle": fire_gpw_shuffle_unit,
    "ghost_fire": ghost_fire_unit,
    "ghost_fire_shuffle": lambda x, *, filters, name: ghost_fire_unit(
        x, filters=filters, shuffle_expand=True, name=name),
    "dice_fire": dice_fire_unit,
}
"""Unit kind (the `unit` field of VggTechniques) -> unit function."""
