"""Lean int8 of a model whose pruned convs read one shared weight tensor (rewrite._private_input).

The converter shares equal constants: two fully pruned (all-zero) grouped 1x1 convs of one shape
read one weight tensor. `per_tensor_weights` used to requantize that tensor for its first reader
only, so the second kept a per-channel int32 bias beside per-tensor weights, and LiteRT's XNNPACK
delegate refused the whole file ("failed to delegate CONV_2D node"): a 50 %-pruned resnet101_v13
at width 0.5 could not run.
"""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.tflite import micro
from tfopt.tflite.convert import convert
from tfopt.tflite.evaluate import make_interpreter, predict


def _pruned_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 8))
    primaries, branches = [], []
    for _ in range(2):      # two bias-free grouped convs of one shape: equal when pruned
        primaries.append(layers.Conv2D(8, 1, activation="relu")(inp))
        conv = layers.Conv2D(8, 1, groups=2, use_bias=False)
        branches.append(conv(primaries[-1]))
        conv.set_weights([np.zeros_like(w) for w in conv.get_weights()])
    x = layers.BatchNormalization()(layers.Concatenate()([*primaries, *branches]))
    x = layers.Conv2D(6, 1, activation="relu")(x)
    model = keras.Model(inp, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)))
    bn = next(layer for layer in model.layers if isinstance(layer, layers.BatchNormalization))
    rng = np.random.default_rng(0)
    bn.set_weights([rng.uniform(0.5, 1.5, 32), rng.normal(0, 0.3, 32), rng.normal(0, 0.2, 32),
                    rng.uniform(0.5, 2.0, 32)])
    return model


@pytest.fixture(scope="module")
def converted():
    model = _pruned_model()
    data = np.random.default_rng(1).standard_normal((32, 8, 8, 8)).astype(np.float32)
    return model, data, convert(model, "int8", representative_data=data)


def _zero_filter_convs(content):
    interp = make_interpreter(content, keep_all_tensors=True)
    details = {t["index"]: t for t in interp.get_tensor_details()}
    found = []
    for op in interp._get_ops_details():
        if op["op_name"] == "CONV_2D" and not interp.get_tensor(op["inputs"][1]).any():
            weights, bias = (details[op["inputs"][k]]["quantization_parameters"]["scales"]
                             for k in (1, 2))
            found.append((len(weights), len(bias)))
    return found


def test_every_zero_filter_has_as_many_bias_scales_as_weight_scales(converted):
    _, _, result = converted
    found = _zero_filter_convs(result.content)
    assert len(found) == 2
    assert all(weights == bias for weights, bias in found), found


def test_litert_runs_the_lean_file_with_xnnpack_and_matches_keras(converted):
    model, data, result = converted
    make_interpreter(result.content)     # XNNPACK (the default) used to refuse to prepare it
    keras_out = model.predict(data, verbose=0)
    int8_out = predict(result.content, data)
    scale = np.abs(keras_out).max()
    assert np.abs(int8_out - keras_out).max() < 0.1 * scale


@pytest.mark.skipif(not micro.micro_available(), reason="tflite-micro not installed")
def test_tflm_matches_litert_reference_on_the_lean_file(converted):
    _, _, result = converted
    assert micro.run_micro(result.content, num_samples=4, compare=True,
                           name="m").max_diff_lsb == 0
