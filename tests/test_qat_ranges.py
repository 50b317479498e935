"""tfopt.compress.qat_ranges: QAT activation ranges start from the float model's, not [-6, 6].

A tiny residual model whose activations reach about 60 (inputs scaled up): right after
`qat.quantize` every activation range is tfmot's [-6, 6], and the QAT model's inference output is
far from the float one. After `init_activation_ranges` each range is the float layer's mean
batch min/max, and the QAT output tracks the float output.
"""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.compress import qat, qat_ranges


def _model():
    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 3), name="input")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(i)
    x = layers.ReLU(name="stem_relu")(layers.BatchNormalization(name="stem_bn")(x))
    y = layers.Conv2D(8, 3, padding="same", use_bias=False, name="branch")(x)
    y = layers.BatchNormalization(name="branch_bn")(y)
    x = layers.ReLU(name="out")(layers.Add(name="add")([x, y]))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(i, layers.Dense(4, name="fc")(x))


@pytest.fixture(scope="module")
def models():
    model = _model()
    images = (20.0 * np.random.default_rng(0).normal(size=(64, 8, 8, 3))).astype(np.float32)
    return model, qat.quantize(model), images


def test_ranges_start_at_tfmots_six_and_are_set_to_the_float_batch_extremes(models):
    model, qat_model, images = models
    targets = qat_ranges.range_targets(qat_model, model)
    names = {name for name, _, _ in targets}
    assert {"stem_relu", "branch_bn", "out", "fc"} <= names and "input" not in names
    assert all(float(np.ravel(hi.numpy())[0]) == 6.0 for _, _, hi in targets)  # tfmot's start
    # The input's range, as the first training step leaves it (AllValuesQuantizer: min/max
    # seen); a real training step would also move the BN statistics away from the float model's.
    for w in qat_model.get_layer("quantize_layer").non_trainable_weights:
        w.assign(images.min() if "_min" in w.name else images.max())
    before = qat_model.predict(images, verbose=0)
    count = qat_ranges.init_activation_ranges(qat_model, model, images, batch_size=32)
    assert count == len(targets) >= 3
    for name, lo, hi in targets:
        out = keras.Model(model.input, model.get_layer(name).output).predict(images, verbose=0)
        want_hi = np.mean([max(out[:32].max(), 0), max(out[32:].max(), 0)])
        want_lo = np.mean([min(out[:32].min(), 0), min(out[32:].min(), 0)])
        assert float(np.ravel(hi.numpy())[0]) == pytest.approx(want_hi, rel=1e-5), name
        assert float(np.ravel(lo.numpy())[0]) == pytest.approx(want_lo, rel=1e-5, abs=1e-6), name
    assert max(float(np.ravel(hi.numpy())[0]) for _, _, hi in targets) > 12.0  # clipped at 6 before
    after = qat_model.predict(images, verbose=0)
    float_out = model.predict(images, verbose=0)
    err_before = np.abs(before - float_out).mean()
    err_after = np.abs(after - float_out).mean()
    assert err_after < 0.25 * err_before, (err_before, err_after)


def test_no_images_sets_nothing(models):
    model, qat_model, _ = models
    assert qat_ranges.init_activation_ranges(qat_model, model, np.zeros((0, 8, 8, 3))) == 0
