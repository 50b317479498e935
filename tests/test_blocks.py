"""Tests of tfopt.blocks: PyTorch-equivalent numerics, parameter formulas, names, QAT/TFLite."""

import numpy as np
import pytest
import tensorflow as tf

from tfopt import metrics
from tfopt._keras import keras, layers
from tfopt.blocks import bottleneck, conv, dead, fire, ghost, heads, inverted, se, shuffle


def _model(fn, shape=(8, 8, 16), batch_size=None):
    x = keras.Input(shape, batch_size=batch_size)
    return keras.Model(x, fn(x))


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def test_batch_norm_uses_pytorch_epsilon_and_momentum():
    m = _model(lambda x: conv.batch_norm(x, name="bn"))
    bn = m.get_layer("bn")
    assert bn.epsilon == 1e-5 and bn.momentum == 0.9
    assert metrics.count_params(m) == 2 * 16  # gamma, beta; running stats are not trainable


def test_strided_conv_pads_symmetrically_like_pytorch():
    m = _model(lambda x: conv.conv2d(x, filters=4, kernel_size=3, stride=2, name="c"))
    assert isinstance(m.get_layer("c_pad"), layers.ZeroPadding2D)
    x = _rand((1, 8, 8, 16))
    kernel = m.get_layer("c").kernel
    # PyTorch Conv2d(padding=1, stride=2): pad 1 on every side, then a valid conv.
    want = tf.nn.conv2d(x, kernel, strides=2, padding=[[0, 0], [1, 1], [1, 1], [0, 0]])
    np.testing.assert_allclose(m(x).numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    assert m.output_shape == (None, 4, 4, 4)


def test_stride1_conv_uses_same_padding_and_no_pad_layer():
    m = _model(lambda x: conv.conv2d(x, filters=4, kernel_size=3, name="c"))
    assert [type(layer).__name__ for layer in m.layers[1:]] == ["Conv2D"]
    assert m.get_layer("c").padding == "same" and not m.get_layer("c").use_bias


def test_conv2d_rejects_groups_that_do_not_divide_channels():
    with pytest.raises(ValueError, match="groups=3"):
        _model(lambda x: conv.conv2d(x, filters=6, groups=3, name="c"))


def test_factorized_conv_strides_rows_then_columns():
    m = _model(lambda x: conv.factorized_conv(x, filters=8, stride=2, name="f"))
    assert m.get_layer("f_nx1").kernel.shape == (3, 1, 16, 16)
    assert m.get_layer("f_1xn").kernel.shape == (1, 3, 16, 8)
    assert m.get_layer("f_nx1").output_shape == (None, 4, 8, 16)
    assert m.output_shape == (None, 4, 4, 8)
    assert metrics.count_params(m) == 3 * 16 * 16 + 3 * 16 * 8  # no BN, no bias between


def test_separable_conv_is_depthwise_then_pointwise():
    m = _model(lambda x: conv.separable_conv(x, filters=8, name="s"))
    assert metrics.count_params(m) == 9 * 16 + 16 * 8


def test_activation_rejects_unknown_kind():
    with pytest.raises(ValueError, match="swish"):
        _model(lambda x: conv.activation(x, "swish", name="a"))


def test_channel_shuffle_matches_pytorch_view_transpose():
    g, c = 4, 16
    m = _model(lambda x: shuffle.channel_shuffle(x, groups=g, name="sh"), shape=(2, 2, c))
    x = _rand((1, 2, 2, c))
    # PyTorch: x.view(C) -> (g, C/g) -> transpose -> flatten; output channel j = input perm[j].
    perm = np.arange(c).reshape(g, c // g).T.reshape(-1)
    np.testing.assert_array_equal(m(x).numpy(), x[..., perm])
    assert metrics.count_params(m) == 0 and metrics.count_flops(m) == 0


def test_channel_shuffle_rejects_indivisible_groups():
    with pytest.raises(ValueError, match="sh: groups=3"):
        _model(lambda x: shuffle.channel_shuffle(x, groups=3, name="sh"))


def test_squeeze_excite_params_flops_and_range():
    m = _model(lambda x: se.squeeze_excite(x, name="se"))
    assert metrics.count_params(m) == 2 * 16 * 4  # two bias-free FCs 16 -> 4 -> 16
    assert metrics.count_flops(m) == 8 * 8 * 16 + 2 * 16 * 4  # GAP + FCs
    x = np.abs(_rand((1, 8, 8, 16)))
    y = m(x).numpy()
    assert np.all(y <= x + 1e-6) and np.all(y >= 0)  # sigmoid gate in (0, 1)


def test_ghost_module_concatenates_cheap_then_primary():
    m = _model(lambda x: ghost.ghost_module(x, filters=8, name="gm"))
    probe = keras.Model(m.input, [m.get_layer("gm_concat").output,
                                  m.get_layer("gm_primary").output,
                                  m.get_layer("gm_cheap").output])
    cat, primary, cheap = (t.numpy() for t in probe(_rand((1, 8, 8, 16))))
    np.testing.assert_array_equal(cat[..., :4], cheap)
    np.testing.assert_array_equal(cat[..., 4:], primary)
    assert metrics.count_params(m) == 16 * 4 + 9 * 4 + 2 * 8


def test_grouped_ghost_module_shuffles_right_after_primary():
    m = _model(lambda x: ghost.ghost_module(x, filters=16, groups=4, act="relu6", name="gm"))
    assert m.get_layer("gm_primary").groups == 4
    assert m.get_layer("gm_cheap").input.node.layer.name == "gm_shuffle_merge"
    assert metrics.count_params(m) == 16 * 8 // 4 + 9 * 8 + 2 * 16


@pytest.mark.parametrize("dw, se_on, extra", [(False, False, 0), (True, False, 9 * 32 + 64),
                                              (True, True, 9 * 32 + 64 + 2 * 32 * 8)])
def test_ghost_bottleneck_params(dw, se_on, extra):
    m = _model(lambda x: ghost.ghost_bottleneck(
        x, expand=32, filters=8, stride=2 if dw else 1, downsample=True, downsample_dw=dw,
        se=se_on, name="gb"))
    gm1 = 16 * 16 + 9 * 16 + 2 * 32
    gm2 = 32 * 4 + 9 * 4 + 2 * 8
    shortcut = 16 * 8 + 2 * 8
    assert metrics.count_params(m) == gm1 + gm2 + shortcut + extra
    assert m.output_shape == (None, 4 if dw else 8, 4 if dw else 8, 8)


def test_identity_shortcut_needs_matching_channels():
    with pytest.raises(ValueError, match="gb: identity shortcut"):
        _model(lambda x: ghost.ghost_bottleneck(x, expand=32, filters=8, name="gb"))
    with pytest.raises(ValueError, match="ir: identity shortcut"):
        _model(lambda x: inverted.inverted_residual(x, expand=32, filters=8, name="ir"))


def test_inverted_residual_params_and_linear_output():
    m = _model(lambda x: inverted.inverted_residual(x, expand=32, filters=16, name="ir"))
    assert metrics.count_params(m) == 16 * 32 + 9 * 32 + 32 * 16 + 2 * (32 + 32 + 16)
    assert m.layers[-1].name == "ir_add"  # linear bottleneck: nothing after the add
    assert "ir_shortcut_conv" not in [layer.name for layer in m.layers]


def test_fire_residual_has_biases_and_no_main_path_bn():
    m = _model(lambda x: fire.fire_residual(x, squeeze=4, expand1x1=8, expand3x3=8, stride=2,
                                            downsample=True, name="fi"))
    squeeze, e1, e3 = 16 * 4 + 4, 4 * 8 + 8, 9 * 4 * 8 + 8
    shortcut = 16 * 16 + 16 + 2 * 16  # conv with bias, then BN
    assert metrics.count_params(m) == squeeze + e1 + e3 + shortcut
    bns = [layer.name for layer in m.layers if isinstance(layer, layers.BatchNormalization)]
    assert bns == ["fi_shortcut_bn"]
    assert m.output_shape == (None, 4, 4, 16)


@pytest.mark.parametrize("kind, conv2_params", [("standard", 9 * 8 * 8), ("factorized", 6 * 8 * 8),
                                                ("depthwise", 9 * 8)])
def test_bottleneck_3x3_kinds(kind, conv2_params):
    m = _model(lambda x: bottleneck.bottleneck(x, width=8, stride=2, downsample=True, conv=kind,
                                               name="b"))
    rest = 16 * 8 + 8 * 32 + 2 * (8 + 8 + 32) + 16 * 32 + 2 * 32
    assert metrics.count_params(m) == conv2_params + rest
    assert m.output_shape == (None, 4, 4, 32)


def test_shuffle_bottleneck_groups_and_shuffles():
    m = _model(lambda x: bottleneck.bottleneck(x, width=8, downsample=True, conv="depthwise",
                                               groups=4, name="b"), shape=(8, 8, 32))
    names = [layer.name for layer in m.layers]
    assert "b_relu2" not in names and "b_shuffle1_swap" in names and "b_shuffle3_swap" in names
    assert m.get_layer("b_conv1").groups == 4 and m.get_layer("b_conv3").groups == 4
    assert m.get_layer("b_shortcut_conv").groups == 1


def test_dice_bottleneck_dead_dw_adds_params_but_no_flops():
    def build(dead_dw):
        return _model(lambda x: bottleneck.dice_bottleneck(
            x, expand=16, filters=8, stride=2, downsample=True, dead_dw=dead_dw, name="db"))
    with_dead, without = build(True), build(False)
    assert metrics.count_params(with_dead) - metrics.count_params(without) == 11 * 16
    assert metrics.count_flops(with_dead) == metrics.count_flops(without)


def test_dead_parameters_identity_params_config_and_no_flops():
    m = _model(lambda x: dead.dead_depthwise_bn(x, channels=16, name="unused"))
    layer = m.get_layer("unused")
    assert metrics.count_params(m) == 11 * 16 and metrics.count_flops(m) == 0
    assert len(layer.non_trainable_weights) == 2  # the BN running mean / variance
    x = _rand((2, 8, 8, 16))
    np.testing.assert_array_equal(m(x).numpy(), x)
    clone = dead.DeadParameters.from_config(layer.get_config())
    assert clone.weight_shapes == layer.weight_shapes and layer.get_prunable_weights() == []
    m2 = _model(lambda x: dead.dead_batch_norm(x, channels=16, name="unused_bn"))
    assert metrics.count_params(m2) == 2 * 16


def test_dead_parameters_vanish_in_tflite():
    def net(x):
        y = conv.conv2d(x, filters=4, name="c")
        return dead.dead_depthwise_bn(y, channels=4, name="unused")
    m = _model(net, batch_size=1)
    tflite = tf.lite.TFLiteConverter.from_keras_model(m).convert()
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=tflite)
    assert [op["op_name"] for op in interp._get_ops_details()] == ["CONV_2D"]


def test_dead_parameters_survive_qat_with_a_noop_quantize_config():
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs as configs,
    )
    q = tfmot.quantization.keras

    def net(x):
        y = conv.conv_bn_act(x, filters=4, name="c")
        y = q.quantize_annotate_layer(
            dead.DeadParameters({"k": (3, 3, 4, 1)}, name="unused"), configs.NoOpQuantizeConfig())(y)
        return heads.gap_fc_head(y, num_classes=3)
    x = keras.Input((8, 8, 16))
    annotated = q.quantize_annotate_model(keras.Model(x, net(x)))
    with q.quantize_scope({"DeadParameters": dead.DeadParameters,
                           "NoOpQuantizeConfig": configs.NoOpQuantizeConfig}):
        qat = q.quantize_apply(annotated)
    assert qat(_rand((1, 8, 8, 16))).shape == (1, 3)
    assert metrics.count_params(qat) >= 4 * 16 + 8 + 9 * 4 + 4 * 3 + 3


def test_conv_head_outputs_logits_per_class():
    m = _model(lambda x: heads.conv_head(x, num_classes=5))
    assert m.output_shape == (None, 5)
    assert metrics.count_params(m) == 16 * 5 + 2 * 5
    assert [layer.name for layer in m.layers[1:]] == ["head_conv", "head_bn", "head_relu6",
                                                      "head_gap"]


def test_mlp_head_has_biases_and_dropout():
    m = _model(lambda x: heads.mlp_head(x, num_classes=3, hidden=(7,)), shape=(1, 1, 4))
    assert metrics.count_params(m) == 4 * 7 + 7 + 7 * 3 + 3
    assert isinstance(m.get_layer("head_dropout1"), layers.Dropout)


def test_pytorch_init_uses_pytorch_fans_and_kaiming_where_asked():
    x = keras.Input((8, 8, 64))
    y = conv.conv2d(x, filters=128, kernel_size=3, use_bias=True, name="k")
    y = conv.conv2d(y, filters=128, kernel_size=3, name="u")
    y = conv.depthwise_conv2d(y, kernel_size=3, name="dw")
    m = conv.pytorch_init(keras.Model(x, y), kaiming=lambda layer: layer.name == "k")
    k = m.get_layer("k").kernel.numpy()
    assert abs(k.std() - (2.0 / (128 * 9)) ** 0.5) < 0.002  # Kaiming-normal, torch fan_out
    u = m.get_layer("u").kernel.numpy()
    bound = 1 / (128 * 9) ** 0.5  # default: U(+-1/sqrt(fan_in))
    assert np.abs(u).max() <= bound and np.abs(u).max() > 0.9 * bound
    dw = m.get_layer("dw").depthwise_kernel.numpy()
    assert np.abs(dw).max() <= 1 / 3 and np.abs(dw).max() > 0.3  # torch fan_in of a dw = 9
    bias = m.get_layer("k").bias.numpy()
    assert np.abs(bias).max() <= 1 / (64 * 9) ** 0.5 and np.any(bias != 0)
