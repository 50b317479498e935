"""Parameters the reference creates but never uses in its forward pass ("dead parameters").

Some reference models build modules that `forward()` never calls (ResNet-15's downsample
dw 3x3 + BN, reference-variants.md §1) or whose output is computed and thrown away (VGG-05's
squeeze BN, VGG-08/12's expand-3x3 BN, §3). PyTorch still counts their parameters, so the
paper's totals include them, while fvcore counts no FLOPs for them (§8).

`DeadParameters` reproduces that: an identity layer placed on the forward path that owns the
unused weights. It adds trainable parameters, costs 0 FLOPs, and lowers to nothing in TFLite
(the identity is folded away). For tfmot QAT it needs a no-op QuantizeConfig (nothing to
quantise), which `tfopt.compress` registers for this class; for tfmot pruning it reports no
prunable weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf

from tfopt._keras import keras, layers


@keras.utils.register_keras_serializable(package="tfopt")
class DeadParameters(layers.Layer):
    """Identity layer owning weights that no computation reads.

    Args:
      weight_shapes: Trainable weights, name -> shape (e.g. {"dw_kernel": (3, 3, 64, 1)}).
      buffer_shapes: Non-trainable weights (e.g. BN running mean/var), name -> shape.
    """

    def __init__(self, weight_shapes: Mapping[str, Sequence[int]],
                 buffer_shapes: Mapping[str, Sequence[int]] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.weight_shapes = {k: tuple(int(d) for d in v) for k, v in weight_shapes.items()}
        self.buffer_shapes = {k: tuple(int(d) for d in v)
                              for k, v in (buffer_shapes or {}).items()}

    def build(self, input_shape):
        for key, shape in self.weight_shapes.items():
            init = "ones" if key.endswith(("gamma", "variance")) else (
                "zeros" if key.endswith(("beta", "mean", "bias")) else "glorot_uniform")
            self.add_weight(name=key, shape=shape, initializer=init, trainable=True)
        for key, shape in self.buffer_shapes.items():
            init = "ones" if key.endswith("variance") else "zeros"
            self.add_weight(name=key, shape=shape, initializer=init, trainable=False)
        super().build(input_shape)

    def call(self, inputs):
        return tf.identity(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_prunable_weights(self):
        """tfmot `PrunableLayer` protocol: nothing here is worth pruning."""
        return []

    def get_config(self):
        config = super().get_config()
        config.update(weight_shapes={k: list(v) for k, v in self.weight_shapes.items()},
                      buffer_shapes={k: list(v) for k, v in self.buffer_shapes.items()})
        return config


def dead_batch_norm(x, *, channels: int, name: str):
    """x unchanged, plus an unused BN(channels): 2*channels params (+2*channels buffers)."""
    return DeadParameters({"gamma": (channels,), "beta": (channels,)},
                          {"moving_mean": (channels,), "moving_variance": (channels,)},
                          name=name)(x)


def dead_depthwise_bn(x, *, channels: int, kernel_size: int = 3, name: str):
    """x unchanged, plus an unused dw k x k conv and BN on `channels`: (k*k + 2)*channels params."""
    return DeadParameters(
        {"dw_kernel": (kernel_size, kernel_size, channels, 1), "bn_gamma": (channels,),
         "bn_beta": (channels,)},
        {"bn_moving_mean": (channels,), "bn_moving_variance": (channels,)}, name=name)(x)
