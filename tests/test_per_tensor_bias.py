"""Per-tensor weights only where every int32 bias still fits and XNNPACK accepts the
requantization ratio (rewrite.per_tensor_weights).

A depthwise conv reads a nearly dead input (tiny scale) and one of its channels has a large
bias. The converter stores that channel with a raised weight scale so that its bias fits in
int32; one shared, smaller weight scale would clip that bias, and the channel's output with it.
"""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.tflite.convert import convert
from tfopt.tflite.evaluate import make_interpreter, predict
from tfopt.tflite.model_info import _model_object
from tfopt.tflite.rewrite import BIAS_LIMIT, per_tensor_weights


def _model():
    inp = keras.Input((8, 8, 2))
    dead = layers.Conv2D(2, 1)
    x = dead(inp)
    dw = layers.DepthwiseConv2D(3, padding="same")
    y = layers.GlobalAveragePooling2D()(dw(x))
    model = keras.Model(inp, y)
    rng = np.random.default_rng(0)
    dead.set_weights([1e-6 * rng.standard_normal((1, 1, 2, 2)), np.zeros(2)])
    dw.set_weights([0.3 * rng.standard_normal((3, 3, 2, 1)), np.array([0.0, 1.0])])
    return model


@pytest.fixture(scope="module")
def case():
    model = _model()
    data = np.random.default_rng(1).standard_normal((32, 8, 8, 2)).astype(np.float32)
    return model, data


def test_the_layer_whose_bias_would_not_fit_stays_per_channel(case):
    model, data = case
    obj = _model_object(convert(model, "int8", representative_data=data, lean=False).content, "m")
    report = per_tensor_weights(obj)
    (row,) = [r for r in report if r["op"] == "DEPTHWISE_CONV_2D"]
    assert not row["bias_fits"] and not row["per_tensor"]
    assert BIAS_LIMIT == 2.0 ** 30


def test_the_lean_file_keeps_the_large_bias(case):
    model, data = case
    out = predict(convert(model, "int8", representative_data=data).content, data)
    np.testing.assert_allclose(out[:, 1], model.predict(data, verbose=0)[:, 1], atol=0.02)


def test_a_fully_pruned_classifier_keeps_a_ratio_xnnpack_accepts():
    """All-zero weights used to get the per-tensor scale 1.0: with the all-zero output's tiny
    scale (7.8e-9) the ratio was 4e5, and XNNPACK refused the file (vgg19_v04 pruned to 90 %,
    bias never trained)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3, activation="relu")(inp))
    head = layers.Dense(3)
    model = keras.Model(inp, head(x))
    head.set_weights([np.zeros((4, 3)), np.zeros(3)])
    data = np.random.default_rng(1).standard_normal((16, 8, 8, 3)).astype(np.float32)
    content = convert(model, "int8", representative_data=data).content
    make_interpreter(content)            # XNNPACK (the default) prepares it
    np.testing.assert_allclose(predict(content, data), model.predict(data, verbose=0),
                               atol=0.01)
