"""Fast training layers (tfopt.blocks.grouped) equal the native layers on tiny shapes."""

import numpy as np
import pytest
import tensorflow as tf

from tfopt._keras import keras, layers
from tfopt.blocks import conv, grouped
from tfopt.metrics import count_flops, count_params

# (H, W, cin, cout, kernel, groups, padding, use_bias)
SHAPES = [
    (6, 6, 8, 12, 1, 4, "valid", False),   # grouped pointwise (ShuffleNet / ghost primary)
    (5, 7, 6, 3, 1, 3, "valid", True),     # 3C -> C weight-average (DiCE), with bias
    (6, 6, 4, 8, 3, 4, "valid", False),    # one input channel per group (DiCE projection)
    (6, 6, 4, 16, 3, 4, "valid", False),   # the same with multiplier 4 (DiCE's C -> 4C)
    (7, 5, 8, 6, 3, 2, "same", True),      # general k x k grouped conv
]


def _pair(path, h, w, cin, cout, k, g, padding, bias):
    """(native Conv2D, GroupedConv2D on `path`) with the same weights, both built."""
    native = layers.Conv2D(cout, k, padding=padding, groups=g, use_bias=bias)
    fast = grouped.GroupedConv2D(cout, k, padding=padding, groups=g, use_bias=bias,
                                 training_path=path)
    native.build((None, h, w, cin))
    fast.build((None, h, w, cin))
    rng = np.random.default_rng(0)
    fast.set_weights([rng.standard_normal(v.shape).astype("float32")
                      for v in native.get_weights()])
    native.set_weights(fast.get_weights())
    return native, fast


def _fwd_bwd(layer, x, training):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(y * tf.cos(y))  # non-trivial upstream gradient
    gx, gk = tape.gradient(loss, [x, layer.kernel])
    return y.numpy(), gx.numpy(), gk.numpy()


def _paths(shape):
    h, w, cin, cout, k, g, padding, bias = shape
    paths = ["dense", "split", "auto"]
    paths += ["depthwise"] if cin == g else []
    paths += ["reduce"] if cout == g and k == 1 else []
    return paths


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[:6])))
def test_fast_paths_match_native(shape):
    x = tf.random.stateless_normal((2, *shape[:2], shape[2]), seed=(1, 2))
    for path in _paths(shape):
        native, fast = _pair(path, *shape)
        y0, gx0, gk0 = _fwd_bwd(native, x, training=True)
        y1, gx1, gk1 = _fwd_bwd(fast, x, training=True)
        np.testing.assert_allclose(y1, y0, atol=1e-5, rtol=1e-5, err_msg=path)
        np.testing.assert_allclose(gx1, gx0, atol=1e-4, rtol=1e-4, err_msg=path)
        np.testing.assert_allclose(gk1, gk0, atol=1e-4, rtol=1e-4, err_msg=path)


def _op_types(fn, spec):
    """Op types of `fn`'s graph, function library included (Keras wraps grouped convs)."""
    graph_def = tf.function(fn).get_concrete_function(spec).graph.as_graph_def()
    return ({n.op for n in graph_def.node}
            | {n.op for f in graph_def.library.function for n in f.node_def})


def test_inference_traces_the_native_grouped_conv():
    _, fast = _pair("dense", 6, 6, 8, 12, 1, 4, "valid", False)
    spec = tf.TensorSpec((1, 6, 6, 8))
    infer = _op_types(lambda x: fast(x, training=False), spec)
    assert "Conv2D" in infer and "Tile" not in infer
    assert _op_types(lambda x: fast(x), spec) == infer  # training=None: inference
    assert "Tile" in _op_types(lambda x: fast(x, training=True), spec)


# (H, W, cin, cout, kernel, groups) -> expected training path
CHOICES = [((8, 8, 64, 256, 3, 64), "depthwise"), ((8, 8, 40, 128, 1, 4), "dense"),
           ((32, 32, 256, 1024, 1, 4), "split"), ((34, 34, 192, 64, 1, 64), "reduce"),
           ((34, 34, 24, 8, 1, 8), "dense"), ((64, 64, 96, 32, 1, 32), "reduce"),
           ((32, 32, 256, 512, 3, 16), "native"), ((8, 8, 16, 16, 1, 1), "native")]


@pytest.mark.parametrize("shape,path", CHOICES)
def test_choose_path_rules(shape, path):
    h, w, cin, cout, k, g = shape
    assert grouped.choose_path(height=h, width=w, cin=cin, cout=cout, kernel_size=(k, k),
                               groups=g) == path


def test_bad_training_path_is_a_clear_error():
    with pytest.raises(ValueError, match="training_path='fast'"):
        grouped.GroupedConv2D(8, 1, groups=2, training_path="fast")
    layer = grouped.GroupedConv2D(8, 1, groups=2, training_path="depthwise")
    with pytest.raises(ValueError, match="one input channel per group"):
        layer.build((None, 4, 4, 4))
    layer = grouped.GroupedConv2D(8, 1, groups=2, training_path="reduce")
    with pytest.raises(ValueError, match="one output channel per group"):
        layer.build((None, 4, 4, 4))


def _tiny_model():
    inputs = keras.Input((8, 8, 8))
    y = conv.conv2d(inputs, filters=16, kernel_size=1, groups=4, name="g1")
    y = conv.conv2d(y, filters=8, kernel_size=3, groups=8, name="g2")
    outputs = layers.Dense(3)(layers.GlobalAveragePooling2D()(y))
    return keras.Model(inputs, outputs)


def test_blocks_build_grouped_layer_counted_like_conv2d():
    model = _tiny_model()
    assert isinstance(model.get_layer("g1"), grouped.GroupedConv2D)
    native = grouped.to_native(model)
    assert not any(isinstance(l, grouped.GroupedConv2D) for l in native.layers)
    assert type(native.get_layer("g1")) is layers.Conv2D
    assert count_params(native) == count_params(model) == 8 * 16 // 4 + 9 * (16 // 8) * 8 + 8 * 3 + 3
    assert count_flops(native) == count_flops(model)
    x = tf.random.stateless_normal((2, 8, 8, 8), seed=(3, 4))
    np.testing.assert_allclose(native(x).numpy(), model(x).numpy(), atol=1e-6)


def test_fit_and_config_round_trip():
    model = _tiny_model()
    model.compile(keras.optimizers.SGD(0.01), keras.losses.MeanSquaredError())
    x = tf.random.stateless_normal((4, 8, 8, 8), seed=(5, 6))
    model.fit(x, tf.zeros((4, 3)), epochs=1, verbose=0)
    clone = keras.Model.from_config(model.get_config())
    assert isinstance(clone.get_layer("g2"), grouped.GroupedConv2D)
    assert clone.get_layer("g2").groups == 8
