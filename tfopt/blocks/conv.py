"""Convolution units with PyTorch numerics: conv / depthwise / factorised / separable + BN + act.

Conventions (reference-variants.md §0): BatchNorm uses PyTorch's epsilon 1e-5 and momentum 0.1,
i.e. Keras `epsilon=1e-5, momentum=0.9`. Convolutions pad symmetrically by k//2 like PyTorch;
where Keras 'same' would pad asymmetrically (stride > 1 on an even input) or a non-'same'
padding is asked for, an explicit `ZeroPadding2D` followed by a 'valid' conv is used, so
weights transferred from PyTorch give bit-identical outputs. No conv has a bias unless asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfopt._keras import keras, layers
from tfopt.blocks.grouped import GroupedConv2D

BN_EPSILON = 1e-5  # PyTorch BatchNorm2d default
BN_MOMENTUM = 0.9  # = 1 - PyTorch momentum 0.1
ACTIVATIONS = (None, "relu", "relu6", "sigmoid")


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(i) for i in v)
    if len(v) != 2:
        raise ValueError(f"expected an int or a pair of ints, got {v!r}")
    return v


def conv_initializer():
    """torchvision ResNet init: Kaiming-normal, fan_out, gain for ReLU (std = sqrt(2 / fan_out))."""
    return keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


def torch_default_initializer():
    """PyTorch's default Conv/Linear weight init: Kaiming-uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in))."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


def _keras_padding(x, kernel, strides, padding, name):
    """Returns (x, keras_padding) reproducing PyTorch's symmetric zero padding `padding`."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, strides, padding
    if ph == 0 and pw == 0:
        return x, "valid"
    if (sh, sw) == (1, 1) and 2 * ph == kh - 1 and 2 * pw == kw - 1:
        return x, "same"  # identical to symmetric padding at stride 1
    x = layers.ZeroPadding2D(((ph, ph), (pw, pw)), name=f"{name}_pad")(x)
    return x, "valid"


def batch_norm(x, *, name: str):
    """BatchNorm over channels with PyTorch's epsilon/momentum (2 trainable params per channel)."""
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)


def activation(x, kind: str | None, *, name: str):
    """ReLU / ReLU6 / sigmoid as QAT-supported layers; `kind=None` returns x unchanged."""
    if kind is None:
        return x
    if kind == "relu":
        return layers.ReLU(name=name)(x)
    if kind == "relu6":
        return layers.ReLU(6.0, name=name)(x)
    if kind == "sigmoid":
        return layers.Activation("sigmoid", name=name)(x)
    raise ValueError(f"activation={kind!r} in {name!r}; expected one of {ACTIVATIONS}")


def conv2d(x, *, filters: int, kernel_size=1, stride=1, groups: int = 1, padding=None,
           use_bias: bool = False, kernel_initializer=None, name: str):
    """A PyTorch-style `nn.Conv2d` (optionally grouped) as Keras layers.

    Args:
      filters: Output channels.
      kernel_size: int or (kh, kw).
      stride: int or (sh, sw).
      groups: Conv groups; must divide both the input channels and `filters`.
      padding: Symmetric zero padding int or (ph, pw); None means (kh // 2, kw // 2).
      use_bias: Whether the conv has a bias (the reference says where; default none).
      kernel_initializer: Keras initializer; default Kaiming-normal fan_out (torchvision).
      name: The conv layer's name; an explicit pad layer, if needed, is `f"{name}_pad"`.

    groups > 1 builds a `tfopt.blocks.grouped.GroupedConv2D` (a Conv2D subclass with the same
    weights that trains fast on a CPU and converts to the native grouped conv).
    """
    kernel, strides = _pair(kernel_size), _pair(stride)
    pad = (kernel[0] // 2, kernel[1] // 2) if padding is None else _pair(padding)
    cin = x.shape[-1]
    if groups < 1 or cin % groups or filters % groups:
        raise ValueError(f"{name}: groups={groups} must divide input channels {cin} and "
                         f"filters {filters}")
    x, mode = _keras_padding(x, kernel, strides, pad, name)
    cls = GroupedConv2D if groups > 1 else layers.Conv2D  # fast CPU training, same weights
    return cls(filters, kernel, strides=strides, padding=mode, groups=groups,
                         use_bias=use_bias,
                         kernel_initializer=kernel_initializer or conv_initializer(),
                         name=name)(x)


def depthwise_conv2d(x, *, kernel_size=3, stride=1, depth_multiplier: int = 1, padding=None,
                     use_bias: bool = False, name: str):
    """Depthwise conv (PyTorch groups = channels), no bias by default, symmetric k//2 padding.

    `depth_multiplier=m` gives m outputs per input channel, ordered like PyTorch's
    `Conv2d(c, m*c, groups=c)` (outputs i*m .. i*m+m-1 come from input i).
    """
    kernel, strides = _pair(kernel_size), _pair(stride)
    pad = (kernel[0] // 2, kernel[1] // 2) if padding is None else _pair(padding)
    x, mode = _keras_padding(x, kernel, strides, pad, name)
    return layers.DepthwiseConv2D(kernel, strides=strides, padding=mode,
                                  depth_multiplier=depth_multiplier, use_bias=use_bias,
                                  depthwise_initializer=conv_initializer(), name=name)(x)


def conv_bn_act(x, *, filters: int, kernel_size=1, stride=1, groups: int = 1,
                use_bias: bool = False, act: str | None = "relu", name: str):
    """conv -> BN -> activation. Layers: `{name}`, `{name}_bn`, `{name}_{act}`."""
    x = conv2d(x, filters=filters, kernel_size=kernel_size, stride=stride, groups=groups,
               use_bias=use_bias, name=name)
    x = batch_norm(x, name=f"{name}_bn")
    return activation(x, act, name=f"{name}_{act}")


def dw_bn_act(x, *, kernel_size=3, stride=1, act: str | None = "relu", name: str):
    """depthwise conv -> BN -> activation. Layers: `{name}`, `{name}_bn`, `{name}_{act}`."""
    x = depthwise_conv2d(x, kernel_size=kernel_size, stride=stride, name=name)
    x = batch_norm(x, name=f"{name}_bn")
    return activation(x, act, name=f"{name}_{act}")


def factorized_conv(x, *, filters: int, kernel_size: int = 3, stride=1, mid_filters=None,
                    use_bias: bool = False, name: str):
    """An N x N conv factorised as N x 1 then 1 x N, with nothing in between (no BN/act).

    PyTorch layout (ResNet-03, VGG-03): conv (N,1) cin->mid, stride (s,1), pad (N//2, 0);
    conv (1,N) mid->filters, stride (1,s), pad (0, N//2).

    Args:
      filters: Output channels of the 1 x N conv.
      mid_filters: Output channels of the N x 1 conv; None keeps the input channels.
      stride: int or (sh, sw); rows are strided by the first conv, columns by the second.
      name: Layers `{name}_nx1` and `{name}_1xn`.
    """
    sh, sw = _pair(stride)
    mid = x.shape[-1] if mid_filters is None else mid_filters
    x = conv2d(x, filters=mid, kernel_size=(kernel_size, 1), stride=(sh, 1),
               padding=(kernel_size // 2, 0), use_bias=use_bias, name=f"{name}_nx1")
    return conv2d(x, filters=filters, kernel_size=(1, kernel_size), stride=(1, sw),
                  padding=(0, kernel_size // 2), use_bias=use_bias, name=f"{name}_1xn")


def separable_conv(x, *, filters: int, kernel_size: int = 3, stride=1, name: str):
    """Depthwise k x k (stride s) then pointwise 1 x 1 -> filters, no BN/act between, no biases.

    Layers `{name}_dw` and `{name}_pw` (ResNet STEM-DWS, VGG-04 units).
    """
    x = depthwise_conv2d(x, kernel_size=kernel_size, stride=stride, name=f"{name}_dw")
    return conv2d(x, filters=filters, kernel_size=1, name=f"{name}_pw")


def spatial_size(shape: Sequence) -> tuple[int, int]:
    """(H, W) of an NHWC shape; raises if unknown (the zoo builds fixed-size graphs)."""
    h, w = shape[1], shape[2]
    if h is None or w is None:
        raise ValueError(f"spatial size must be known at build time, got shape {tuple(shape)}")
    return int(h), int(w)


def _torch_fans(layer) -> tuple[int, int]:
    """PyTorch's (fan_in, fan_out) of a Keras Conv2D / DepthwiseConv2D / Dense kernel."""
    if isinstance(layer, layers.DepthwiseConv2D):  # torch weight (C*m, 1, kh, kw)
        kh, kw, c, m = (int(d) for d in layer.depthwise_kernel.shape)
        return kh * kw, c * m * kh * kw
    if isinstance(layer, layers.Conv2D):  # torch weight (cout, cin/g, kh, kw)
        kh, kw, cin_g, cout = (int(d) for d in layer.kernel.shape)
        return cin_g * kh * kw, cout * kh * kw
    fan_in, fan_out = (int(d) for d in layer.kernel.shape)  # Dense: torch weight (out, in)
    return fan_in, fan_out


def pytorch_init(model, *, kaiming=lambda layer: False):
    """Re-initialise conv/dense weights as PyTorch would (reference-variants.md §0).

    Layers for which `kaiming(layer)` is true get torchvision's ResNet init, Kaiming-normal
    fan_out (std = sqrt(2 / fan_out)); all others PyTorch's module default, Kaiming-uniform with
    a = sqrt(5), i.e. U(+-1/sqrt(fan_in)), and biases U(+-1/sqrt(fan_in)). Fans follow PyTorch's
    weight layout (Keras computes depthwise fans differently). BN stays gamma=1, beta=0. Uses
    the global TF seed (`keras.utils.set_random_seed`). Returns the model.
    """
    for layer in model.layers:
        if not isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)):
            continue
        fan_in, fan_out = _torch_fans(layer)
        kernel = layer.depthwise_kernel if isinstance(layer, layers.DepthwiseConv2D) \
            else layer.kernel
        if kaiming(layer):
            init = keras.initializers.RandomNormal(0.0, (2.0 / fan_out) ** 0.5)
        else:
            bound = 1.0 / fan_in ** 0.5
            init = keras.initializers.RandomUniform(-bound, bound)
        kernel.assign(init(kernel.shape))
        if getattr(layer, "use_bias", False) and layer.bias is not None:
            bound = 1.0 / fan_in ** 0.5
            layer.bias.assign(keras.initializers.RandomUniform(-bound, bound)(layer.bias.shape))
    return model
