"""Physical filter surgery (tfopt.compress.surgery) on small functional models.

Each architecture rule is checked the same way: prune some filters, then the smaller
model's logits must equal those of the original with the removed channels zeroed
(`zero_pruned`), to 1e-4; k = 0 (keep everything) must rebuild an equal model.
"""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.compress import surgery

# ---------------------------------------------------------------------------- small models


def _randomise_bn(model, seed=0):
    """Non-trivial BN statistics, so a wrong BN slice changes the logits."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.1, b.shape),
                               rng.normal(0, 0.1, m.shape), rng.uniform(0.5, 1.5, v.shape)])
    return model


def vgg_like(input_shape=(16, 16, 3), classes=5):
    """conv-BN-ReLU x2, pool, conv-BN-ReLU, pool, Flatten, Dense-BN-ReLU, Dropout, Dense."""
    x = inp = keras.Input(input_shape)
    for i, f in enumerate((6, 8)):
        x = layers.Conv2D(f, 3, padding="same", name=f"b1_c{i}")(x)
        x = layers.BatchNormalization(name=f"b1_bn{i}")(x)
        x = layers.ReLU(name=f"b1_relu{i}")(x)
    x = layers.MaxPooling2D(name="b1_pool")(x)
    x = layers.Conv2D(10, 3, padding="same", use_bias=False, name="b2_c0")(x)
    x = layers.BatchNormalization(name="b2_bn0")(x)
    x = layers.Activation("relu", name="b2_relu0")(x)
    x = layers.MaxPooling2D(name="b2_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(12, name="fc")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.ReLU(name="fc_relu")(x)
    x = layers.Dropout(0.5, name="drop")(x)
    out = layers.Dense(classes, name="logits")(x)
    return _randomise_bn(keras.Model(inp, out, name="vgg_like"))


def bottleneck_net(input_shape=(16, 16, 3), classes=5):
    """Stem, two bottleneck blocks (projection then identity shortcut), GAP, Dense."""
    x = inp = keras.Input(input_shape)
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for b, proj in enumerate((True, False)):
        p = f"s1_b{b}"
        y = layers.Conv2D(4, 1, use_bias=False, name=f"{p}_c1")(x)
        y = layers.BatchNormalization(name=f"{p}_bn1")(y)
        y = layers.ReLU(name=f"{p}_relu1")(y)
        y = layers.Conv2D(4, 3, padding="same", use_bias=False, name=f"{p}_c2")(y)
        y = layers.BatchNormalization(name=f"{p}_bn2")(y)
        y = layers.ReLU(name=f"{p}_relu2")(y)
        y = layers.Conv2D(12, 1, use_bias=False, name=f"{p}_c3")(y)
        y = layers.BatchNormalization(name=f"{p}_bn3")(y)
        if proj:
            s = layers.Conv2D(12, 1, use_bias=False, name=f"{p}_proj")(x)
            s = layers.BatchNormalization(name=f"{p}_proj_bn")(s)
        else:
            s = x
        x = layers.Add(name=f"{p}_add")([s, y])
        x = layers.ReLU(name=f"{p}_out")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(classes, name="logits")(x)
    return _randomise_bn(keras.Model(inp, out, name="bottleneck_net"))


def dense_net(input_shape=(16, 16, 3), classes=5, growth=4):
    """Initial conv, dense block of 3 layers, transition, dense block of 2, BN-ReLU-GAP-Dense."""
    x = inp = keras.Input(input_shape)
    x = layers.Conv2D(6, 3, padding="same", use_bias=False, name="init_conv")(x)
    for blk, n in enumerate((3, 2)):
        for i in range(n):
            y = layers.BatchNormalization(name=f"d{blk}_l{i}_bn")(x)
            y = layers.ReLU(name=f"d{blk}_l{i}_relu")(y)
            y = layers.Conv2D(growth, 3, padding="same", use_bias=False,
                              name=f"d{blk}_l{i}_conv")(y)
            x = layers.Concatenate(name=f"d{blk}_l{i}_concat")([x, y])
        if blk == 0:
            x = layers.BatchNormalization(name="t0_bn")(x)
            x = layers.ReLU(name="t0_relu")(x)
            x = layers.Conv2D(8, 1, use_bias=False, name="t0_conv")(x)
            x = layers.AveragePooling2D(name="t0_pool")(x)
    x = layers.BatchNormalization(name="final_bn")(x)
    x = layers.ReLU(name="final_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(classes, name="logits")(x)
    return _randomise_bn(keras.Model(inp, out, name="dense_net"))


def separable_net(input_shape=(16, 16, 3), classes=5):
    """MobileNet-style: stem conv, 2 depthwise-separable blocks (one with ZeroPadding), GAP."""
    x = inp = keras.Input(input_shape)
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    for i, (f, s) in enumerate(((12, 1), (16, 2))):
        if s == 2:
            x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"b{i}_pad")(x)
        x = layers.DepthwiseConv2D(3, strides=s, padding="same" if s == 1 else "valid",
                                   use_bias=False, name=f"b{i}_dw")(x)
        x = layers.BatchNormalization(name=f"b{i}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"b{i}_dw_relu")(x)
        x = layers.Conv2D(f, 1, use_bias=False, name=f"b{i}_pw")(x)
        x = layers.BatchNormalization(name=f"b{i}_pw_bn")(x)
        x = layers.ReLU(6.0, name=f"b{i}_pw_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.1, name="drop")(x)
    out = layers.Dense(classes, name="logits")(x)
    return _randomise_bn(keras.Model(inp, out, name="separable_net"))


def se_net(input_shape=(8, 8, 3), classes=3):
    """A conv whose output feeds a squeeze-excite Multiply, and a grouped conv."""
    x = inp = keras.Input(input_shape)
    x = layers.Conv2D(8, 3, padding="same", name="c0")(x)
    s = layers.GlobalAveragePooling2D(keepdims=True, name="se_squeeze")(x)
    s = layers.Conv2D(2, 1, activation="relu", name="se_reduce")(s)
    s = layers.Conv2D(8, 1, activation="sigmoid", name="se_expand")(s)
    x = layers.Multiply(name="se_scale")([x, s])
    x = layers.Conv2D(8, 3, padding="same", name="c1")(x)
    x = layers.Conv2D(8, 3, padding="same", groups=2, name="gconv")(x)
    x = layers.Conv2D(6, 3, padding="same", name="c2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(classes, name="logits")(x)
    return keras.Model(inp, out)


BUILDERS = {"vgg": vgg_like, "bottleneck": bottleneck_net, "dense": dense_net,
            "separable": separable_net}

# ---------------------------------------------------------------------------- helpers


def _random_keep(analysis, frac=0.5, seed=0):
    rng = np.random.default_rng(seed)
    keep = {}
    for g in analysis.groups:
        n = max(1, int(round(g.channels * frac)))
        keep[g.name] = np.sort(rng.choice(g.channels, n, replace=False))
    return keep


def _batch(model, n=4, seed=1):
    return np.random.default_rng(seed).normal(size=(n,) + model.input_shape[1:]).astype("float32")


def _assert_exact(model, keep, analysis, x):
    small = surgery.apply_keep(model, keep, analysis=analysis)
    zeroed = surgery.zero_pruned(model, keep, analysis=analysis)
    got = small(x, training=False).numpy()
    want = zeroed(x, training=False).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    # The pruning must be visible in the logits, or the test proves nothing.
    assert np.abs(model(x, training=False).numpy() - got).max() > 1e-3
    return small


# ---------------------------------------------------------------------------- tests


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_pruned_model_equals_zeroed_original(arch):
    model = BUILDERS[arch]()
    analysis = surgery.analyze(model)
    keep = _random_keep(analysis)
    small = _assert_exact(model, keep, analysis, _batch(model))
    for g in analysis.groups:
        for m in g.members:
            assert small.get_layer(m).output_shape[-1] == len(keep[g.name])


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_keep_all_rebuilds_an_equal_model(arch):
    model = BUILDERS[arch]()
    analysis = surgery.analyze(model)
    keep = {g.name: np.arange(g.channels) for g in analysis.groups}
    rebuilt = surgery.apply_keep(model, keep, analysis=analysis)
    x = _batch(model)
    np.testing.assert_allclose(rebuilt(x).numpy(), model(x).numpy(), atol=1e-6, rtol=0)
    assert rebuilt.count_params() == model.count_params()
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in model.weights]


def test_vgg_param_count_matches_new_widths():
    model = vgg_like()
    analysis = surgery.analyze(model)
    assert [g.name for g in analysis.groups] == ["b1_c0", "b1_c1", "b2_c0"]
    keep = {"b1_c0": [0, 2, 5], "b1_c1": [1, 3, 4, 7], "b2_c0": [0, 1, 2, 3, 4, 9]}
    small = surgery.apply_keep(model, keep, analysis=analysis)
    a, b, c = 3, 4, 6
    # conv(k*k*in*out + bias) + BN(4*out); b2_c0 has no bias; Flatten: 4*4 positions * c.
    expected = (9 * 3 * a + a + 4 * a) + (9 * a * b + b + 4 * b) + (9 * b * c + 4 * c) \
        + (16 * c * 12 + 12) + 4 * 12 + (12 * 5 + 5)
    assert small.count_params() == expected


def test_flatten_dense_rows_follow_hwc_order():
    model = vgg_like()
    keep = {"b2_c0": [1, 4, 9]}
    small = surgery.apply_keep(model, keep)
    big_w = model.get_layer("fc").get_weights()[0]
    small_w = small.get_layer("fc").get_weights()[0]
    rows = [(p * 10 + c) for p in range(16) for c in (1, 4, 9)]
    np.testing.assert_array_equal(small_w, big_w[rows])


def test_residual_stream_skipped_by_default_and_grouped_on_request():
    model = bottleneck_net()
    default = surgery.analyze(model)
    names = {g.name for g in default.groups}
    assert names == {"s1_b0_c1", "s1_b0_c2", "s1_b1_c1", "s1_b1_c2", "stem_conv"}
    for m in ("s1_b0_c3", "s1_b0_proj", "s1_b1_c3"):
        assert "prune_residual_groups" in default.skipped[m]
    grouped = surgery.analyze(model, prune_residual_groups=True)
    stream = [g for g in grouped.groups if len(g.members) > 1]
    assert len(stream) == 1
    assert set(stream[0].members) == {"s1_b0_c3", "s1_b0_proj", "s1_b1_c3"}
    keep = _random_keep(grouped, frac=0.5, seed=3)
    small = _assert_exact(model, keep, grouped, _batch(model))
    assert small.get_layer("s1_b1_add").output_shape[-1] == 6


def test_densenet_concat_provenance():
    model = dense_net()
    analysis = surgery.analyze(model)
    assert {g.name for g in analysis.groups} == {
        "init_conv", "d0_l0_conv", "d0_l1_conv", "d0_l2_conv", "t0_conv", "d1_l0_conv",
        "d1_l1_conv"}
    keep = {"init_conv": [0, 5], "d0_l1_conv": [3], "t0_conv": [1, 2, 6]}
    small = _assert_exact(model, keep, analysis, _batch(model))
    # 2 + 4 + 1 + 4 channels reach the transition BN.
    assert small.get_layer("t0_bn").output_shape[-1] == 11
    big_w = model.get_layer("t0_conv").get_weights()[0]
    rows = [0, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17]
    np.testing.assert_array_equal(small.get_layer("t0_conv").get_weights()[0],
                                  big_w[:, :, rows][..., [1, 2, 6]])


def test_pointwise_drives_depthwise_width():
    model = separable_net()
    analysis = surgery.analyze(model)
    assert {g.name for g in analysis.groups} == {"stem_conv", "b0_pw", "b1_pw"}
    small = surgery.apply_keep(model, {"stem_conv": [1, 2, 7], "b0_pw": [0, 11]},
                               analysis=analysis)
    assert small.get_layer("b0_dw").get_weights()[0].shape == (3, 3, 3, 1)
    assert small.get_layer("b1_dw").get_weights()[0].shape == (3, 3, 2, 1)
    np.testing.assert_array_equal(small.get_layer("b0_dw").get_weights()[0],
                                  model.get_layer("b0_dw").get_weights()[0][:, :, [1, 2, 7]])


def test_unsupported_consumers_are_skipped_with_reasons():
    model = se_net()
    analysis = surgery.analyze(model)
    assert {g.name for g in analysis.groups} == {"se_reduce", "c2"}
    assert "se_scale" in analysis.skipped["c0"] and "se_scale" in analysis.skipped["se_expand"]
    # As one tied group, the SE-scaled conv and the excitation conv are pruned together.
    grouped = surgery.analyze(model, prune_residual_groups=True)
    assert ("c0", "se_expand") in [g.members for g in grouped.groups]
    _assert_exact(model, {"c0": [1, 2, 5]}, grouped, _batch(model))
    assert "grouped conv" in analysis.skipped["c1"]
    assert "grouped conv" in analysis.skipped["gconv"]
    assert "classifier" in analysis.skipped["logits"]
    with pytest.raises(ValueError, match="c1"):
        surgery.apply_keep(model, {"c1": [0]}, analysis=analysis)
    _assert_exact(model, {"se_reduce": [1], "c2": [0, 3]}, analysis, _batch(model))


def test_prune_dense_hidden_layer_but_never_classifier():
    model = vgg_like()
    analysis = surgery.analyze(model, prune_dense=True)
    assert "fc" in {g.name for g in analysis.groups}
    assert "logits" not in {g.name for g in analysis.groups}
    _assert_exact(model, {"fc": [0, 3, 4, 11], "b1_c1": [2, 3]}, analysis, _batch(model))


def test_sequential_model_is_accepted():
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, name="a"),
                              layers.ReLU(), layers.Flatten(), layers.Dense(2, name="out")])
    small = surgery.apply_keep(model, {"a": [1, 2]})
    assert small.get_layer("a").output_shape[-1] == 2


def test_bad_keep_values_raise_value_errors():
    model = vgg_like()
    with pytest.raises(ValueError, match="b1_c0"):
        surgery.apply_keep(model, {"b1_c0": []})
    with pytest.raises(ValueError, match="outside"):
        surgery.apply_keep(model, {"b1_c0": [0, 6]})
    with pytest.raises(ValueError, match="unknown channel group 'b1_c9'"):
        surgery.apply_keep(model, {"b1_c9": [0]})
