"""Convs with an all-zero int32 bias read one shared zero-bias tensor (rewrite.share_zero_biases)."""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.tflite import lean, micro
from tfopt.tflite.convert import convert
from tfopt.tflite.evaluate import predict
from tfopt.tflite.model_info import _model_object
from tfopt.tflite.rewrite import drop_unused, per_tensor_weights, share_zero_biases


@pytest.fixture(scope="module")
def files():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, activation="relu")(inp)
    x = layers.Conv2D(8, 1, use_bias=False, activation="relu")(x)
    x = layers.Conv2D(8, 1, use_bias=False)(x)
    model = keras.Model(inp, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)))
    data = np.random.default_rng(0).standard_normal((16, 8, 8, 3)).astype(np.float32)
    obj = _model_object(convert(model, "int8", representative_data=data, lean=False).content, "m")
    per_tensor_weights(obj)   # as make_lean does first: per-tensor biases, one scale each
    plain = lean.serialize(obj)
    shared = share_zero_biases(obj)
    dropped = drop_unused(obj)
    return plain, lean.serialize(obj), shared, dropped


def _inputs():
    return np.random.default_rng(1).integers(-128, 128, (8, 8, 8, 3)).astype(np.int8)


def test_zero_biases_are_shared_and_the_file_shrinks(files):
    plain, shared_file, shared, dropped = files
    assert shared == 2 and dropped == 2       # three bias-free convs of 8 channels: one tensor
    assert len(shared_file) < len(plain)


def test_sharing_changes_no_output(files):
    plain, shared_file, _, _ = files
    for reference in (True, False):
        np.testing.assert_array_equal(
            predict(shared_file, _inputs(), reference=reference, raw=True),
            predict(plain, _inputs(), reference=reference, raw=True))


@pytest.mark.skipif(not micro.micro_available(), reason="tflite-micro not installed")
def test_tflm_runs_the_shared_bias_exactly(files):
    _, shared_file, _, _ = files
    assert micro.run_micro(shared_file, num_samples=4, compare=True, name="m").max_diff_lsb == 0
