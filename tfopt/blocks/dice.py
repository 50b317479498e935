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
bn, relu, shuffle_*, avg_pad + avg (weight-average conv), avg_bn, avg_relu, gate_gap, gate_squeeze,
gate_relu, gate_expand, gate_sigmoid, proj, proj_bn, proj_relu, scale; strided: left_dw_pad,
left_dw(_bn/_relu), left_pw(_bn/_relu), right_pad, right_pool, right_dice_*, cat, shuffle_*.
Built from tfopt.blocks.conv / shuffle (PyTorch BN eps/momentum, symmetric padding).
"""

from __future__ import annotations

import math

from tfopt._keras import layers
from tfopt.blocks.conv import (activation, batch_norm, conv2d, depthwise_conv2d, spatial_size,
                               torch_default_initializer)
from tfopt.blocks.shuffle import channel_shuffle


def _static_hw(x, name: str) -> tuple[int, int]:
    try:
        return spatial_size(x.shape)
    except ValueError as err:
        raise ValueError(
            f"{name}: DiCE needs a static spatial size (its height/width-wise depthwise convs have "
            f"one filter per row/column); got input shape {tuple(x.shape)}. Build the model with a "
            "fixed input_shape such as (32, 32, 3).") from err


def _conv(x, *, filters, kernel_size=1, groups=1, padding=None, name):
    # Modules the reference swaps into torchvision keep PyTorch's default init (§0).
    return conv2d(x, filters=filters, kernel_size=kernel_size, groups=groups, padding=padding,
                  kernel_initializer=torch_default_initializer(), name=name)


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
    y_ch = depthwise_conv2d(x, kernel_size=3, name=f"{name}_dw_ch")
    # Height-wise: PyTorch transposes (B,C,H,W) -> (B,H,C,W) and convolves the (C,W) plane with H
    # groups. NHWC (B,H,W,C) -> Permute((3,2,1)) -> (B,C,W,H): the same plane, H as channels.
    t = layers.Permute((3, 2, 1), name=f"{name}_dw_h_in")(x)
    t = depthwise_conv2d(t, kernel_size=3, name=f"{name}_dw_h")
    y_h = layers.Permute((3, 2, 1), name=f"{name}_dw_h_out")(t)
    # Width-wise: PyTorch (B,C,H,W) -> (B,W,H,C), plane (H,C), W groups.
    # NHWC (B,H,W,C) -> Permute((1,3,2)) -> (B,H,C,W).
    t = layers.Permute((1, 3, 2), name=f"{name}_dw_w_in")(x)
    t = depthwise_conv2d(t, kernel_size=3, name=f"{name}_dw_w")
    y_w = layers.Permute((1, 3, 2), name=f"{name}_dw_w_out")(t)
    assert (h, w) == tuple(y_w.shape[1:3])  # internal invariant: 'same' keeps H×W

    y = layers.Concatenate(name=f"{name}_cat")([y_ch, y_h, y_w])
    y = batch_norm(y, name=f"{name}_bn")
    y = activation(y, "relu", name=f"{name}_relu")
    y = channel_shuffle(y, groups=3, name=f"{name}_shuffle")  # channels now (ch_i, h_i, w_i)

    # "Weight-average": grouped 1×1 conv 3C→C (groups=C) with padding 1, as in the reference.
    # (explicit ZeroPadding2D `{name}_avg_pad` + valid 1×1 conv)
    y = _conv(y, filters=c, kernel_size=1, groups=c, padding=1, name=f"{name}_avg")
    y = batch_norm(y, name=f"{name}_avg_bn")
    y = activation(y, "relu", name=f"{name}_avg_relu")

    # Gate: pooled over the padded (H+2)×(W+2) map (reference quirk, §10.8).
    g = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_gate_gap")(y)
    g = _conv(g, filters=max(1, c // 4), name=f"{name}_gate_squeeze")
    g = activation(g, "relu", name=f"{name}_gate_relu")
    g = _conv(g, filters=filters, name=f"{name}_gate_expand")
    g = activation(g, "sigmoid", name=f"{name}_gate_sigmoid")

    # Projection: valid 3×3, groups = gcd(C, o), brings (H+2)×(W+2) back to H×W.
    p = _conv(y, filters=filters, kernel_size=3, groups=math.gcd(c, filters), padding=0,
              name=f"{name}_proj")
    p = batch_norm(p, name=f"{name}_proj_bn")
    p = activation(p, "relu", name=f"{name}_proj_relu")
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
    # Symmetric PyTorch padding: explicit `{name}_left_dw_pad` + valid conv (tfopt.blocks.conv).
    left = depthwise_conv2d(x, kernel_size=3, stride=2, name=f"{name}_left_dw")
    left = batch_norm(left, name=f"{name}_left_dw_bn")
    left = activation(left, "relu", name=f"{name}_left_dw_relu")
    left = _conv(left, filters=half, name=f"{name}_left_pw")
    left = batch_norm(left, name=f"{name}_left_pw_bn")
    left = activation(left, "relu", name=f"{name}_left_pw_relu")

    right = layers.ZeroPadding2D(1, name=f"{name}_right_pad")(x)
    right = layers.AveragePooling2D(3, strides=2, padding="valid", name=f"{name}_right_pool")(right)
    right = dice_unit(right, filters=half, name=f"{name}_right_dice")

    y = layers.Concatenate(name=f"{name}_cat")([left, right])
    return channel_shuffle(y, groups=2, name=f"{name}_shuffle")
