"""QAT and PQAT train grouped convs through GroupedConv2D's fast paths (issues #12 / #15).

`tfopt.compress.qat.quantize` hands tfmot stock `Conv2D(groups > 1)` layers and, after
quantize_apply, turns the conv inside each QuantizeWrapper back into a `GroupedConv2D`
(`grouped_path`, default "auto"). Here, on tiny shapes (8x8 inputs, 16 channels, groups 2-16):
the training graph no longer runs the native grouped conv (XLA `_jit_compiled_convolution_op`),
and the fast QAT model's training outputs and gradients equal the stock QAT model's (same
weights and quantizer state; float32, 1e-5 / 1e-4), for QAT and PQAT; the int8 .tflite is the
same file. tfmot pruning wrappers keep `GroupedConv2D` and its fast path as they are.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfopt._keras import keras, layers
from tfopt.blocks import grouped
from tfopt.compress import pruning as P
from tfopt.compress import qat
from tfopt.compress import sparsity as S

SHAPE = (8, 8, 3)


def _model(path="auto"):
    """stem conv + BN, then grouped convs that all fit `path` (each followed by BN + ReLU6, as in
    the zoo, so tfmot's Conv+BN transforms apply), GAP, logits."""
    keras.utils.set_random_seed(0)
    i = keras.Input(SHAPE, name="input")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(i)
    x = layers.ReLU(6.0, name="stem_relu")(layers.BatchNormalization(name="stem_bn")(x))
    specs = {  # (filters, kernel, groups)
        "dense": [(16, 1, 4), (16, 3, 2)],
        "split": [(16, 1, 4), (16, 3, 2)],
        "depthwise": [(32, 3, 16)],
        "reduce": [(4, 1, 4)],
        "auto": [(16, 1, 4), (16, 3, 16), (16, 3, 2)],  # dense, depthwise, dense
    }[path]
    for n, (filters, k, g) in enumerate(specs):
        x = grouped.GroupedConv2D(filters, k, padding="same", groups=g, use_bias=False,
                                  name=f"g{n}")(x)
        x = layers.ReLU(6.0, name=f"g{n}_relu")(layers.BatchNormalization(name=f"g{n}_bn")(x))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(i, layers.Dense(10, name="logits")(x))


def _images(n=8):
    return np.random.default_rng(1).normal(size=(n, *SHAPE)).astype("float32")


def _native_grouped_convs(model) -> int:
    """How many native grouped convs (Keras' XLA `_jit_compiled_convolution_op`) a training
    call of `model` traces."""
    fn = tf.function(lambda x: model(x, training=True)).get_concrete_function(
        tf.TensorSpec((4, *SHAPE)))
    return sum("jit_compiled_convolution_op" in name
               for name in fn.graph._functions)  # pylint: disable=protected-access


def _pair(model, path="auto"):
    """(stock QAT, fast QAT) copies of `model` with the same weights and quantizer state."""
    stock = qat.quantize(model, grouped_path="native")
    fast = qat.quantize(model, grouped_path=path)
    fast.set_weights(stock.get_weights())
    return stock, fast


def _train_outputs_and_grads(model, x):
    with tf.GradientTape() as tape:
        y = model(x, training=True)
        loss = tf.reduce_mean(tf.square(y)) + tf.reduce_mean(y[:, :3] * y[:, 3:6])
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]


def _assert_same_training_step(stock, fast):
    x = _images()
    y_s, g_s = _train_outputs_and_grads(stock, x)
    y_f, g_f = _train_outputs_and_grads(fast, x)
    np.testing.assert_allclose(y_f, y_s, atol=1e-5, rtol=0)
    assert len(g_f) == len(g_s)
    for v, a, b in zip(fast.trainable_variables, g_f, g_s):
        np.testing.assert_allclose(a, b, atol=1e-4 * max(1.0, np.abs(b).max()), rtol=0,
                                   err_msg=v.name)
    np.testing.assert_allclose(fast(x).numpy(), stock(x).numpy(), atol=1e-5, rtol=0)


def _inner_paths(qat_model):
    return {l.layer.name: getattr(l.layer, "_path", "native") for l in qat_model.layers
            if isinstance(getattr(l, "layer", None), layers.Conv2D) and l.layer.groups > 1}


@pytest.mark.parametrize("path", ["auto", "dense", "split", "depthwise", "reduce"])
def test_fast_qat_trains_like_stock_qat(path):
    model = _model(path)
    stock, fast = _pair(model, path)
    expected = ({"g0": "dense", "g1": "depthwise", "g2": "dense"} if path == "auto"
                else {n: path for n in _inner_paths(stock)})
    assert _inner_paths(fast) == expected
    assert all(type(stock.get_layer(f"quant_{n}").layer) is layers.Conv2D for n in expected)
    assert _native_grouped_convs(stock) == len(expected)
    assert _native_grouped_convs(fast) == 0
    _assert_same_training_step(stock, fast)


def test_the_float_model_keeps_its_layers_and_fit_runs_the_fast_qat_model():
    model = _model()
    q = qat.quantize(model)
    assert all(type(l) is not layers.Conv2D or l.groups == 1 for l in model.layers)
    assert isinstance(model.get_layer("g0"), grouped.GroupedConv2D)
    q.compile(keras.optimizers.SGD(0.01),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    kernel = next(v for v in q.get_layer("quant_g0").trainable_weights if "kernel" in v.name)
    before = kernel.numpy().copy()
    q.fit(_images(16), np.arange(16) % 10, batch_size=8, epochs=1, verbose=0)
    assert not np.array_equal(kernel.numpy(), before)
    assert qat.input_order_mismatches(model, q) == []


def _pruned(model, fraction=0.6):
    """`model` with the smallest `fraction` of every conv/dense kernel set to zero (numpy)."""
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.Dense)):
            w = layer.get_weights()
            k = w[0]
            k[np.abs(k) <= np.quantile(np.abs(k), fraction)] = 0.0
            layer.set_weights([k, *w[1:]])
    return model


def test_fast_pqat_trains_like_stock_pqat_and_keeps_the_zeros():
    model = _pruned(_model())
    assert S.model_sparsity(model) > 0.5
    zeros = {r.layer: r.zeros for r in S.layer_sparsities(model)}
    stock, fast = _pair(model)                    # sparse model -> PQAT in both
    assert _native_grouped_convs(fast) == 0
    _assert_same_training_step(stock, fast)
    fast.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                 keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    fast.fit(_images(16), np.arange(16) % 10, batch_size=8, epochs=2, verbose=0)
    assert {r.layer: r.zeros for r in S.layer_sparsities(fast)} == zeros


def _int8(model):
    from tfopt.tflite import convert as conv
    return conv.convert(model, "int8", representative_data=_images(4),
                        num_calibration_samples=4).content


def test_fast_qat_converts_to_the_stock_int8_tflite():
    from tfopt.tflite.model_info import inspect_model
    stock, fast = _pair(_model())
    a, b = _int8(stock), _int8(fast)
    assert [op.name for op in inspect_model(b).operators] == \
        [op.name for op in inspect_model(a).operators]
    assert b == a                                 # tensor names included (same bytes)


def test_qat_refuses_an_unknown_grouped_path():
    with pytest.raises(ValueError, match=r"grouped_path='fast'; expected one of \('auto'"):
        qat.quantize(_model(), grouped_path="fast")


def test_a_forced_path_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="training_path='depthwise' needs one input channel"):
        qat.quantize(_model("dense"), grouped_path="depthwise")


def test_make_fast_leaves_other_layers_alone():
    plain = layers.Conv2D(4, 1)
    plain.build((None, 8, 8, 4))
    assert grouped.make_fast(plain, (None, 8, 8, 4)) == "native"
    assert type(plain) is layers.Conv2D
    g = layers.Conv2D(8, 1, groups=4)
    g.build((None, 8, 8, 8))
    assert grouped.make_fast(g, (None, 8, 8, 8)) == "dense"
    assert isinstance(g, grouped.GroupedConv2D) and g.training_path == "auto"


def test_pruning_wrappers_keep_grouped_conv_fast():
    import tensorflow_model_optimization as tfmot
    wrapped = P.wrap(_model(), tfmot.sparsity.keras.ConstantSparsity(0.5, 0, 0, 1))
    inner = {w.layer.name: type(w.layer) for w in P.wrappers(wrapped)}
    assert inner["g0"] is grouped.GroupedConv2D and inner["g1"] is grouped.GroupedConv2D
    assert _native_grouped_convs(wrapped) == 0
