"""`resnet8`: the MLPerf Tiny image-classification reference model (not from the paper).

The embedded community's CIFAR-10 benchmark network (MLPerf Tiny v0.5+ "IC" reference,
`resnet_v1_eembc` in mlcommons/tiny `benchmark/training/image_classification/keras_model.py`;
85 % top-1 on the CIFAR-10 test split, ~96 KB int8). Kept here as the anchor the paper's variants
are compared with in the CIFAR-10 study (issue #15); it is an extra zoo id, not one of the 28
paper variants.

Structure (as the reference): a 3x3 conv (16) + BN + ReLU stem, then three stacks of one basic
residual block each (16, 32, 64 filters; the 2nd and 3rd downsample with stride 2): 3x3 conv +
BN + ReLU, 3x3 conv + BN, add, ReLU; the downsampling blocks' shortcut is a 1x1 stride-2 conv
with bias and no BN, the first block's is the identity. Head: 8x8 average pool, flatten, dense.
Convs keep Keras 'same' padding and a bias, as the reference (the reference's L2 1e-4 is the
recipe's coupled weight decay here; BN uses the zoo's epsilon/momentum).

At 32x32x3 and 10 classes: 78,186 trainable parameters (78,666 with the BN moving statistics,
the reference's "Total params"), 12,501,632 MACs: stem 442,368, stack 1 4,718,592, stack 2
3,670,016, stack 3 3,670,016, dense 640.

Layer names (the zoo's one scheme): `stem_{conv,bn,relu}`, `s{stack}_b1_{conv1,bn1,relu1,conv2,
bn2,shortcut_conv,add,relu}`, `head_{pool,flatten,logits}`.
"""

from __future__ import annotations

from tfopt._keras import keras, layers
from tfopt.blocks.conv import batch_norm
from tfopt.models.sizing import check_map_size, scale_channels

WIDTHS = (16, 32, 64)   # filters of the three stacks at width_multiplier 1.0
STRIDES = (1, 2, 2)


def _conv(x, filters: int, kernel: int, stride: int, name: str):
    return layers.Conv2D(filters, kernel, strides=stride, padding="same",
                         kernel_initializer="he_normal", name=name)(x)


def _block(x, filters: int, stride: int, name: str):
    y = _conv(x, filters, 3, stride, f"{name}_conv1")
    y = batch_norm(y, name=f"{name}_bn1")
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(y, filters, 3, 1, f"{name}_conv2")
    y = batch_norm(y, name=f"{name}_bn2")
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv(x, filters, 1, stride, f"{name}_shortcut_conv")
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_relu")(y)


def resnet8(techniques: None = None, *, num_classes: int, input_shape=(32, 32, 3),
            width_multiplier: float = 1.0, batch_size: int | None = None,
            base: str = "resnet8", name: str | None = None) -> keras.Model:
    """Build the MLPerf Tiny ResNet-8.

    Args:
      techniques: None (a fixed network; the argument keeps the registry's builder signature).
      num_classes: Logits produced (the reference ends in softmax; the zoo outputs logits).
      input_shape: (H, W, C) of one image; H and W at least 4 (two stride-2 stacks).
      width_multiplier: Scales every conv's filters (`scale_channels`, at least 1 each).
      batch_size: None for training; 1 for the deployment graph.
      base: Ignored (the registry's builder signature).
      name: Model name; None names it "resnet8".
    """
    del techniques, base
    inputs = keras.Input(shape=tuple(input_shape), batch_size=batch_size, name="image")
    check_map_size(inputs, 4, "resnet8", "input")
    widths = [scale_channels(w, width_multiplier, minimum=1) for w in WIDTHS]
    x = _conv(inputs, widths[0], 3, 1, "stem_conv")
    x = batch_norm(x, name="stem_bn")
    x = layers.ReLU(name="stem_relu")(x)
    for i, (filters, stride) in enumerate(zip(widths, STRIDES), start=1):
        x = _block(x, filters, stride, f"s{i}_b1")
    # The reference pools 8x8 at 32x32 input: global average pooling is the same there and
    # keeps other input sizes valid.
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = layers.Dense(num_classes, name="head_logits")(x)
    return keras.Model(inputs, outputs, name=name or "resnet8")
