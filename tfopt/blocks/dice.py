"""DiCE unit and strided DiCE unit (Mehta et al., "DiCENet", arXiv:1906.03516), Keras layers only.

Port of the EdgeNets unit as used by Sobolewski & Szyc (ResNet-101 variant 15, VGG-19 variant 13);
spec: reference-variants.md §1 "DiCE unit" / "Strided DiCE". Every op is a real Keras layer
(`Permute` for the axis swaps, `ZeroPadding2D` for PyTorch's explicit paddings), so the unit
survives QAT, int8 conversion and TFLite Micro (TRANSPOSE, PAD, DEPTHWISE_CONV_2D, CONV_2D, MUL).

The height-wise and width-wise depthwise convolutions have one filter per row / per column, so
their weight count (9·H, 9·W) depends on the spatial size. The reference fixes H and W when the
network is built (32/16/8/4/2 at 32×32 input) and resizes at run time if the input differs; here
H and W are read from the tensor's static shape when the unit is built, so they always follow the
actual input size (a different `input_shape` gives different 9·H / 9·W counts, no resize op).
A tensor with an unknown spatial size is refused with a ValueError.

Layer names: every layer is `f"{name}_<op>"`; ops: dw_ch, dw_h, dw_w (+ _in/_out permutes), cat,
bn, relu, shuffle, pad, avg (weight-average conv), avg_bn, avg_relu, gate_gap, gate_squeeze,
gate_relu, gate_expand, gate_sigmoid, proj, proj_bn, proj_relu, scale.
"""

from __future__ import annotations

import math

from tfopt._keras import layers

# PyTorch BatchNorm2d defaults (eps 1e-5, momentum 0.1 == Keras momentum 0.9); reference-variants.md §0.
_BN_KW = dict(epsilon=1e-5, momentum=0.9)


def _bn(name: str):
    return layers.BatchNormalization(name=name, **_BN_KW)


def _static_hw(x, name: str) -> tuple[int, int]:
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None:
        raise ValueError(
            f"{name}: DiCE needs a static spatial size (its height/width-wise depthwise convs have "
            f"one filter per row/column); got input shape {tuple(x.shape)}. Build the model with a "
            "fixed input_shape such as (32, 32, 3).")
    return int(h), int(w)


def _channel_shuffle(x, *, groups: int, name: str):
    """PyTorch ShuffleNet shuffle: C -> (g, C/g) -> transpose -> flatten (NHWC, Keras layers)."""
    # TODO(lead): switch to the shared shuffle block in tfopt/blocks once it lands (ResNet engineer).
    h, w, c = (int(d) for d in x.shape[1:])
    if c % groups:
        raise ValueError(f"{name}: channel shuffle needs channels divisible by groups; "
                         f"got {c} channels, groups={groups}")
    if groups == 1:
        return x
    y = layers.Reshape((h, w, groups, c // groups), name=f"{name}_reshape_in")(x)
    y = layers.Permute((1, 2, 4, 3), name=f"{name}_transpose")(y)
    return layers.Reshape((h, w, c), name=f"{name}_reshape_out")(y)


def dice_unit(x, *, filters: int, name: str):
    """DiCE unit DICE(C, o, H, W) of reference-variants.md §1 (kernel 3, no biases).

    Steps: three parallel 3×3 depthwise convs over the channel, height and width axes → concat
    (3C) → BN → ReLU → shuffle(3) → 1×1 "weight-average" conv 3C→C, groups=C, padding 1 (the map
    grows to (H+2)×(W+2)) → BN → ReLU; gate = GAP of that padded map → 1×1 C→max(1, ⌊C/4⌋) → ReLU
    → 1×1 →o → sigmoid; projection = 3×3 valid conv C→o, groups=gcd(C, o) (back to H×W) → BN →
    ReLU; output = projection × gate.

    Parameters: 9C + 9H + 9W + 2·3C + 3C + 2C + C·⌊C/4⌋ + ⌊C/4⌋·o + 9·(C/g)·o + 2o.
    The ⌊C/4⌋ gate width is clamped to ≥ 1 so tiny width multipliers still build (exact for C ≥ 4).

    Args:
      x: NHWC tensor with a static spatial size.
      filters: Output channels o.
      name: Unique prefix for every layer.

    Returns:
      NHWC tensor of shape (H, W, filters).

    Raises:
      ValueError: If the spatial size is unknown.
    """
    c = int(x.shape[-1])
    h, w = _static_hw(x, name)
    # Channel-wise: an ordinary depthwise conv on the C channels (9·C weights).
    y_ch = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw_ch")(x)
    # Height-wise: PyTorch transposes (B,C,H,W) -> (B,H,C,W) and convolves the (C,W) plane with H
    # groups. NHWC (B,H,W,C) -> Permute((3,2,1)) -> (B,C,W,H): the same plane, H as channels.
    t = layers.Permute((3, 2, 1), name=f"{name}_dw_h_in")(x)
    t = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw_h")(t)
    y_h = layers.Permute((3, 2, 1), name=f"{name}_dw_h_out")(t)
    # Width-wise: PyTorch (B,C,H,W) -> (B,W,H,C), plane (H,C), W groups.
    # NHWC (B,H,W,C) -> Permute((1,3,2)) -> (B,H,C,W).
    t = layers.Permute((1, 3, 2), name=f"{name}_dw_w_in")(x)
    t = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw_w")(t)
    y_w = layers.Permute((1, 3, 2), name=f"{name}_dw_w_out")(t)
    assert (h, w) == tuple(y_w.shape[1:3])  # internal invariant: 'same' keeps H×W

    y = layers.Concatenate(name=f"{name}_cat")([y_ch, y_h, y_w])
    y = _bn(f"{name}_bn")(y)
    y = layers.ReLU(name=f"{name}_relu")(y)
    y = _channel_shuffle(y, groups=3, name=f"{name}_shuffle")  # channels now (ch_i, h_i, w_i)

    # "Weight-average": grouped 1×1 conv 3C→C (groups=C) with padding 1, as in the reference.
    y = layers.ZeroPadding2D(1, name=f"{name}_pad")(y)
    y = layers.Conv2D(c, 1, groups=c, use_bias=False, name=f"{name}_avg")(y)
    y = _bn(f"{name}_avg_bn")(y)
    y = layers.ReLU(name=f"{name}_avg_relu")(y)

    # Gate: pooled over the padded (H+2)×(W+2) map (reference quirk, §10.8).
    g = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_gate_gap")(y)
    g = layers.Conv2D(max(1, c // 4), 1, use_bias=False, name=f"{name}_gate_squeeze")(g)
    g = layers.ReLU(name=f"{name}_gate_relu")(g)
    g = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_gate_expand")(g)
    g = layers.Activation("sigmoid", name=f"{name}_gate_sigmoid")(g)

    # Projection: valid 3×3, groups = gcd(C, o), brings (H+2)×(W+2) back to H×W.
    p = layers.Conv2D(filters, 3, padding="valid", groups=math.gcd(c, filters), use_bias=False,
                      name=f"{name}_proj")(y)
    p = _bn(f"{name}_proj_bn")(p)
    p = layers.ReLU(name=f"{name}_proj_relu")(p)
    return layers.Multiply(name=f"{name}_scale")([p, g])


def strided_dice_unit(x, *, filters: int, name: str):
    """Strided DiCE SDICE(c, o, H, W) of reference-variants.md §1 (halves H and W).

    Left: 3×3 depthwise /2 (pad 1) → BN → ReLU → 1×1 c→round(o/2) → BN → ReLU.
    Right: 3×3 average pool /2 with zero padding 1 counted in the mean (PyTorch
    `count_include_pad=True`: ZeroPadding2D + valid AveragePooling2D) → DICE(c, round(o/2)).
    Output: concat [left, right] → channel shuffle(2); 2·round(o/2) channels (= o for even o).

    Parameters: 11c + c·h + 2h + DICE(c, h) with h = round(o/2) (Python rounding, as the reference).

    Args:
      x: NHWC tensor with a static spatial size.
      filters: Output channels o.
      name: Unique prefix for every layer.

    Returns:
      NHWC tensor of shape (⌈H/2⌉, ⌈W/2⌉, 2·round(o/2)).
    """
    _static_hw(x, name)
    half = round(filters / 2)
    left = layers.ZeroPadding2D(1, name=f"{name}_left_pad")(x)
    left = layers.DepthwiseConv2D(3, strides=2, padding="valid", use_bias=False,
                                  name=f"{name}_left_dw")(left)
    left = _bn(f"{name}_left_dw_bn")(left)
    left = layers.ReLU(name=f"{name}_left_dw_relu")(left)
    left = layers.Conv2D(half, 1, use_bias=False, name=f"{name}_left_pw")(left)
    left = _bn(f"{name}_left_pw_bn")(left)
    left = layers.ReLU(name=f"{name}_left_pw_relu")(left)

    right = layers.ZeroPadding2D(1, name=f"{name}_right_pad")(x)
    right = layers.AveragePooling2D(3, strides=2, padding="valid", name=f"{name}_right_pool")(right)
    right = dice_unit(right, filters=half, name=f"{name}_right_dice")

    y = layers.Concatenate(name=f"{name}_cat")([left, right])
    return _channel_shuffle(y, groups=2, name=f"{name}_shuffle")
