"""BatchNormalization after a concat folded into the convs before it (tfopt.tflite.fold_bn)."""

import collections

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.blocks.ghost import ghost_module
from tfopt.models.trained_like import trained_like_batch_norm
from tfopt.tflite import micro
from tfopt.tflite.convert import convert
from tfopt.tflite.evaluate import predict
from tfopt.tflite.fold_bn import fold_concat_batch_norm
from tfopt.tflite.model_info import inspect_model

HW = 8


def _model():
    """Ghost modules (with and without shuffle, ReLU6 and none), a fire-like concat of two
    convs, and a concat with a pooled input (no conv to fold into)."""
    inp = keras.Input((HW, HW, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", name="stem")(inp)
    g = ghost_module(x, filters=8, act="relu6", groups=2, name="g1")
    x = layers.Add(name="res")([x, ghost_module(g, filters=8, name="g2")])
    a = layers.Conv2D(4, 1, name="fire_a")(x)
    b = layers.DepthwiseConv2D(3, padding="same", name="fire_b")(x)
    y = layers.ReLU(name="fire_relu")(layers.BatchNormalization(name="fire_bn")(
        layers.Concatenate(name="fire_cat")([a, b])))
    pooled = layers.MaxPooling2D(1, name="pool")(y)
    z = layers.Concatenate(name="mixed_cat")([layers.Conv2D(4, 1, name="mixed_conv")(y), pooled])
    z = layers.BatchNormalization(name="mixed_bn")(z)
    out = layers.Dense(3, name="logits")(layers.GlobalAveragePooling2D()(z))
    return keras.Model(inp, out, name="ghosts")


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    model = _model()
    assert trained_like_batch_norm(model, seed=0) == 4
    folded, counts = fold_concat_batch_norm(model)
    return model, folded, counts


def _images(n=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, HW, HW, 3)).astype(np.float32)


def test_trained_like_batch_norm_is_seeded_and_non_trivial():
    keras.utils.set_random_seed(0)
    m1, m2 = _model(), _model()
    trained_like_batch_norm(m1, seed=3)
    trained_like_batch_norm(m2, seed=3)
    bn1, bn2 = m1.get_layer("g1_bn"), m2.get_layer("g1_bn")
    for w1, w2 in zip(bn1.get_weights(), bn2.get_weights()):
        np.testing.assert_array_equal(w1, w2)
    gamma, beta, mean, var = bn1.get_weights()
    assert np.all(beta != 0) and np.all(mean != 0) and np.all(var > 0)
    assert len(set(np.round(gamma, 6))) == len(gamma)


def test_every_concat_bn_is_folded_and_float_outputs_are_unchanged(models):
    model, folded, counts = models
    assert counts == {"batch_norms": 3, "folded": 4, "scale_moved": 2}
    names = {layer.name for layer in folded.layers}
    assert not {"g1_bn", "g2_bn", "fire_bn"} & names
    assert "mixed_bn" in names   # its pooled input has no conv: left whole (one MUL + ADD)
    x = _images()
    np.testing.assert_allclose(folded(x, training=False).numpy(),
                               model(x, training=False).numpy(), rtol=1e-4, atol=1e-5)
    # the original model's weights are untouched
    assert model.get_layer("g1_cheap").get_weights()[0].shape == (3, 3, 4, 1)


def test_int8_graph_has_one_half_width_add_per_ghost_and_no_bn_mul(models):
    model, _, _ = models
    x = _images()
    plain = convert(model, "int8", representative_data=x, fold_bn=False)
    lean = convert(model, "int8", representative_data=x)
    before = collections.Counter(op.name for op in inspect_model(plain.content).operators)
    after = collections.Counter(op.name for op in inspect_model(lean.content).operators)
    assert lean.lean_report["concat_bn_folded"] == 3
    # 4 BNs as MUL + ADD before; after: mixed_bn's MUL + ADD and the 2 ghost offsets
    assert before["MUL"] == 4 and after["MUL"] == 1
    assert after["ADD"] == before["ADD"] - 3 + 2
    assert sum(after.values()) < sum(before.values())
    # the folded int8 file is as close to the float model as the unfolded one
    x_test = _images(64, seed=1)
    want = model.predict(x_test, verbose=0)
    err = [np.mean(np.abs(predict(r.content, x_test, reference=True) - want)) for r in (lean, plain)]
    assert err[0] <= 1.5 * err[1] + 1e-3, err


@pytest.mark.skipif(not micro.micro_available(), reason="tflite-micro not installed")
def test_folded_int8_runs_on_tflm_equal_to_litert_reference(models):
    model, _, _ = models
    content = convert(model, "int8", representative_data=_images()).content
    report = micro.run_micro(content, num_samples=8, name="ghosts")
    assert report.ok, report.error
    assert report.max_diff_lsb == 0


def test_models_without_concat_bn_or_with_zero_bn_offsets_are_returned_unchanged():
    inp = keras.Input((HW, HW, 3))
    model = keras.Model(inp, layers.BatchNormalization()(layers.Conv2D(4, 1)(inp)))
    same, counts = fold_concat_batch_norm(model)
    assert same is model and counts["batch_norms"] == 0
    fresh = _model()   # beta 0, mean 0: the converter's MUL is kept (it moves past a PAD)
    same, counts = fold_concat_batch_norm(fresh)
    assert same is fresh and counts["batch_norms"] == 0


def test_a_permute_that_moves_pixels_into_channels_is_not_taken_for_a_shuffle():
    """DiCE-like: a 1-channel conv whose W axis a Permute turns into channels feeds a concat
    + BN (vgg19_v13 at width 0.25 on 16x16 images crashed the fold: 'shape mismatch')."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 4, 3))
    dim = layers.Permute((1, 3, 2), name="w_to_c")(layers.Conv2D(1, 1, name="dim")(inp))
    other = layers.Conv2D(2, (1, 4), name="other")(inp)
    x = layers.BatchNormalization(name="cat_bn")(layers.Concatenate(name="cat")([dim, other]))
    model = keras.Model(inp, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)))
    trained_like_batch_norm(model, seed=0)
    folded, _ = fold_concat_batch_norm(model)
    x = np.random.default_rng(0).standard_normal((8, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)
