"""Small models and data shared by the tfopt.tflite tests (test_tflite_*.py, test_micro.py,
test_export.py).

Keras objects do not outlive a test (conftest clears the session), so what is cached here is
plain numpy: the Fashion-MNIST slice and the trained weights; models are rebuilt from them.
"""

from __future__ import annotations

import functools

import numpy as np

from tfopt._keras import keras, layers

def op_names(content) -> list[str]:
    """Builtin operator names of a .tflite file, in graph order."""
    from tfopt.tflite.model_info import inspect_model

    return [op.name for op in inspect_model(content).operators]


FMNIST_TRAIN = 3000   # train slice: ~82% test accuracy after 2 epochs of tiny_cnn at width 0.5
FMNIST_TEST = 600     # 1 pp = 6 images


@functools.cache
def fmnist_slice():
    """(x_train, y_train, x_test, y_test, info): normalised float32 NHWC 28x28x1."""
    from tfopt import data

    x_tr, y_tr, info = data.load_arrays("fashion_mnist", "train", limit=FMNIST_TRAIN)
    x_te, y_te, _ = data.load_arrays("fashion_mnist", "test", limit=FMNIST_TEST)
    return x_tr, y_tr, x_te, y_te, info


def build_fmnist_model(batch_size=None):
    from tfopt.models import build_model

    return build_model("tiny_cnn", num_classes=10, input_shape=(28, 28, 1),
                       width_multiplier=0.5, batch_size=batch_size)


@functools.cache
def _trained_weights():
    x_tr, y_tr, *_ = fmnist_slice()
    keras.utils.set_random_seed(0)
    model = build_fmnist_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_tr, y_tr, batch_size=64, epochs=2, verbose=0)
    return tuple(model.get_weights())


def trained_fmnist_model():
    """tiny_cnn (width 0.5) trained 2 epochs on the first 3,000 Fashion-MNIST train images."""
    model = build_fmnist_model()
    model.set_weights(list(_trained_weights()))
    return model


@functools.cache
def fmnist_int8_bytes() -> bytes:
    """The trained model converted to int8 (calibrated on 200 train images)."""
    from tfopt.tflite.convert import convert

    x_tr, *_ , info = fmnist_slice()
    result = convert(trained_fmnist_model(), "int8", representative_data=x_tr[:200],
                     normalization=(info.mean, info.std), labels=info.class_names,
                     name="fmnist_tiny")
    return result.content


def se_shuffle_model(input_shape=(16, 16, 4), num_classes=5, batch_size=None):
    """Conv -> squeeze-excite (Multiply) -> channel shuffle (Reshape/Permute) -> depthwise."""
    h, w, _ = input_shape
    inp = keras.Input(input_shape, batch_size=batch_size, name="image")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem_conv")(inp)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    s = layers.GlobalAveragePooling2D(keepdims=True, name="b1_se_squeeze")(x)
    s = layers.Conv2D(2, 1, activation="relu", name="b1_se_reduce")(s)
    s = layers.Conv2D(8, 1, activation="sigmoid", name="b1_se_gate")(s)
    x = layers.Multiply(name="b1_se_scale")([x, s])
    x = layers.Reshape((h, w, 2, 4), name="b1_shuffle_split")(x)
    x = layers.Permute((1, 2, 4, 3), name="b1_shuffle")(x)
    x = layers.Reshape((h, w, 8), name="b1_shuffle_merge")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="b1_dw")(x)
    x = layers.Conv2D(8, 1, groups=2, name="b1_gconv")(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    out = layers.Dense(num_classes, name="head_logits")(x)
    return keras.Model(inp, out, name="se_shuffle")


def synthetic_images(n=8, shape=(16, 16, 4), seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + tuple(shape)).astype(np.float32)


@functools.cache
def sparse_tflite_bytes() -> bytes:
    """A 90%-zero float model converted with EXPERIMENTAL_SPARSITY: it contains DENSIFY, which
    TFLite Micro has no kernel for (design notes, ecosystem survey section 3)."""
    import tensorflow as tf

    inp = keras.Input((8, 8, 4), batch_size=1)
    out = layers.Dense(32)(layers.Flatten()(layers.Conv2D(32, 3, padding="same")(inp)))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    model.set_weights([np.where(rng.random(w.shape) < 0.9, 0.0, w) for w in model.get_weights()])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    return converter.convert()
