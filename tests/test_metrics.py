"""Tests of tfopt.metrics: fvcore FLOP rules, trainable / non-zero params, MACs, live-path only."""

import numpy as np
import pytest

from tfopt import metrics
from tfopt._keras import keras, layers
from tfopt.blocks.dead import dead_batch_norm


def _toy():
    """8x8x3 -> conv3x3(4,+b) -> BN -> ReLU -> dw3x3 /2 -> grouped 1x1 (8, g=2) -> GAP -> FC 5."""
    x = keras.Input((8, 8, 3))
    y = layers.Conv2D(4, 3, padding="same", name="conv")(x)
    y = layers.BatchNormalization(name="bn")(y)
    y = layers.ReLU(name="relu")(y)
    y = layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name="dw")(y)
    y = layers.Conv2D(8, 1, groups=2, use_bias=False, name="gconv")(y)
    y = layers.MaxPooling2D(name="pool")(y)
    y = dead_batch_norm(y, channels=8, name="dead")
    y = layers.GlobalAveragePooling2D(name="gap")(y)
    return keras.Model(x, layers.Dense(5, name="fc")(y))


# Hand arithmetic (fvcore: multiply-add = 1, bias ignored, eval BN = 2/element, GAP = 1/element):
CONV = 8 * 8 * 4 * 3 * 9      # 6,912
BN = 2 * 8 * 8 * 4            # 512
DW = 4 * 4 * 4 * 9            # 576
GCONV = 4 * 4 * 8 * (4 // 2)  # 256
GAP = 2 * 2 * 8               # 32 (after the 2x2 max-pool, which is free)
FC = 8 * 5                    # 40


def test_count_flops_follows_fvcore_rules():
    assert metrics.count_flops(_toy()) == CONV + BN + DW + GCONV + GAP + FC


def test_count_macs_is_conv_and_dense_only():
    assert metrics.count_macs(_toy()) == CONV + DW + GCONV + FC


def test_count_params_is_trainable_only_and_includes_dead_params():
    # conv 3*9*4+4, BN gamma/beta 8, dw 36, gconv 4/2*8, dead BN 16, fc 8*5+5
    assert metrics.count_params(_toy()) == 112 + 8 + 36 + 16 + 16 + 45


def test_layer_costs_per_layer():
    costs = {c.name: c for c in metrics.layer_costs(_toy())}
    assert costs["conv"].params == 112 and costs["conv"].flops == CONV
    assert costs["dead"].params == 16 and costs["dead"].flops == 0
    assert costs["pool"].flops == 0 and costs["gap"].macs == 0


def test_count_activations_counts_written_outputs_not_views():
    # conv, bn, relu 8x8x4 each; dw 4x4x4; gconv 4x4x8; pool 2x2x8; dead (identity) 2x2x8;
    # gap 8; fc 5
    toy = 3 * 256 + 64 + 128 + 32 + 32 + 8 + 5
    assert metrics.count_activations(_toy()) == toy
    x = keras.Input((4, 4, 2))
    y = layers.Reshape((16, 2), name="view")(layers.ReLU(name="relu")(x))
    y = layers.Flatten(name="flat")(y)
    assert metrics.count_activations(keras.Model(x, y)) == 32  # the ReLU only


def test_count_nonzero_params_sees_zeroed_weights():
    m = _toy()
    before = metrics.count_nonzero_params(m)
    kernel = m.get_layer("conv").kernel
    k = kernel.numpy()
    k[..., :2] = 0.0
    kernel.assign(k)
    assert metrics.count_nonzero_params(m) == before - 3 * 9 * 2


def test_dead_branches_are_not_counted():
    x = keras.Input((8, 8, 3))
    y = layers.Conv2D(4, 1, use_bias=False, name="live")(x)
    layers.Conv2D(4, 3, use_bias=False, name="dead_branch")(x)  # result never used
    m = keras.Model(x, y)
    assert metrics.count_flops(m) == 8 * 8 * 4 * 3


def test_nested_model_is_expanded():
    inner = _toy()
    x = keras.Input((8, 8, 3))
    outer = keras.Model(x, layers.ReLU(name="outer_relu")(inner(x)))
    assert metrics.count_flops(outer) == metrics.count_flops(inner)
    assert any(c.name.startswith(f"{inner.name}/") for c in metrics.layer_costs(outer))


def test_dense_on_a_map_counts_every_position():
    x = keras.Input((2, 3, 4))
    m = keras.Model(x, layers.Dense(5, use_bias=False)(x))
    assert metrics.count_flops(m) == 2 * 3 * 4 * 5


def test_unknown_weighted_layer_is_an_error():
    x = keras.Input((4, 6))
    m = keras.Model(x, layers.LayerNormalization(name="ln")(x))
    with pytest.raises(ValueError, match="no FLOP rule for layer 'ln'"):
        metrics.count_flops(m)


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="functional"):
        metrics.count_flops(Net())


def test_pruning_wrappers_cost_like_the_inner_layer():
    import tensorflow_model_optimization as tfmot
    m = _toy()
    flops = metrics.count_flops(m)
    # DeadParameters is not prunable by tfmot's registry: wrap only the conv layers.
    def wrap(layer):
        if isinstance(layer, layers.Conv2D) and not isinstance(layer, layers.DepthwiseConv2D):
            return tfmot.sparsity.keras.prune_low_magnitude(layer)
        return layer
    pruned = keras.models.clone_model(m, clone_function=wrap)
    assert metrics.count_flops(pruned) == flops
    assert metrics.count_macs(pruned) == metrics.count_macs(m)
    np.testing.assert_equal(metrics.count_params(pruned), metrics.count_params(m))
