"""QAT on tfopt's blocks and zoo: custom QuantizeConfigs, PQAT keeps sparsity, int8 TFLite."""

import numpy as np
import pytest
import tensorflow as tf

from tfopt._keras import keras, layers
from tfopt.compress import pruning as P
from tfopt.compress import qat
from tfopt.compress import sparsity as S
from zoo_models import FULL_DEPTH_CHECK, build_small


def _block_model():
    """Every QAT trouble-maker of the zoo in one small graph (real tfopt blocks).

    ghost bottleneck with SE (Multiply) + grouped 1x1 + channel shuffle (Reshape/Permute) +
    depthwise + concat -> BN (a BN after no conv); DiCE unit (Permute'd depthwise, padded
    grouped conv, sigmoid gate Multiply); the dead-parameter holder; Fire module.
    """
    from tfopt.blocks.conv import conv_bn_act
    from tfopt.blocks.dead import dead_depthwise_bn
    from tfopt.blocks.dice import dice_unit
    from tfopt.blocks.ghost import ghost_bottleneck
    i = keras.Input((16, 16, 3), name="input")
    x = conv_bn_act(i, filters=8, kernel_size=3, name="stem")
    x = ghost_bottleneck(x, expand=16, filters=8, stride=2, downsample=True, downsample_dw=True,
                         se=True, groups=2, name="gb")
    x = dead_depthwise_bn(x, channels=8, name="dead")
    x = dice_unit(x, filters=8, name="dice")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(i, layers.Dense(10, name="logits")(x))


def _images(n=8, shape=(16, 16, 3)):
    return np.random.default_rng(0).normal(size=(n, *shape)).astype("float32")


def test_custom_configs_are_chosen_for_the_trouble_makers():
    model = _block_model()
    kinds = {l.name: type(qat.quantize_config_for(l)).__name__ for l in model.layers}
    assert kinds["gb_se_scale"] == "TfoptMulOutputQuantizeConfig"
    assert kinds["dice_scale"] == "TfoptMulOutputQuantizeConfig"
    assert kinds["dead"] == "TfoptNoOpQuantizeConfig"
    assert kinds["gb_ghost1_bn"] == "TfoptOutputQuantizeConfig"    # BN after a Concatenate
    assert kinds["stem_bn"] == "NoneType"                           # folded by tfmot


@pytest.mark.slow
def test_qat_model_builds_runs_and_converts_to_int8():
    model = _block_model()
    before = [w.copy() for w in model.get_weights()]
    q = qat.quantize(model)
    x = _images()
    y_q = q(x).numpy()
    assert y_q.shape == (8, 10) and np.isfinite(y_q).all()
    assert sum(type(l).__name__.startswith("QuantizeWrapper") for l in q.layers) > 20
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert all(len(l.inbound_nodes) <= 1 for l in model.layers)   # no graph grafted on ours

    converter = tf.lite.TFLiteConverter.from_keras_model(q)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[i:i + 1]] for i in range(len(x)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    blob = converter.convert()
    interp = tf.lite.Interpreter(model_content=blob)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    scale, zero = inp["quantization"]
    interp.resize_tensor_input(inp["index"], (1, 16, 16, 3))
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], np.clip(np.round(x[:1] / scale + zero), -128, 127)
                      .astype(np.int8))
    interp.invoke()
    o_scale, o_zero = out["quantization"]
    logits = (interp.get_tensor(out["index"]).astype(np.float32) - o_zero) * o_scale
    # The int8 model computes what the fake-quant Keras model simulates (a few output steps).
    assert np.abs(logits - y_q[:1]).max() <= 3 * o_scale + 0.05 * np.abs(y_q[:1]).max()


@pytest.fixture(scope="module")
def pruned_weights():
    """The block model's weights with 60% of every kernel zeroed (tfmot wrap, prune, strip),
    pruned once for the module (plain numpy: conftest clears the Keras session per test)."""
    import tensorflow_model_optimization as tfmot
    keras.utils.set_random_seed(0)
    wrapped = P.wrap(_block_model(), tfmot.sparsity.keras.ConstantSparsity(0.6, 0, 0, 1))
    P.prune_now(wrapped)
    return P.strip(wrapped).get_weights()


def _pruned_block_model(weights):
    model = _block_model()
    model.set_weights(weights)
    return model


def _compile(q):
    # Eager steps: the few steps here cost less than tracing the QAT train graph (same ops).
    q.compile(keras.optimizers.SGD(0.05, momentum=0.9),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)


def test_pqat_keeps_sparsity_through_training(pruned_weights):
    pruned = _pruned_block_model(pruned_weights)
    target = S.model_sparsity(pruned)
    assert target > 0.5
    zeros = {r.layer: r.zeros for r in S.layer_sparsities(pruned)}
    q = qat.quantize(pruned)                      # auto: the model is sparse -> PQAT
    assert qat.kernel_sparsity(q) == pytest.approx(target)
    _compile(q)
    x = _images(32)
    q.fit(x, np.arange(32) % 10, batch_size=8, epochs=2, verbose=0)
    after = {r.layer: r.zeros for r in S.layer_sparsities(q)}
    assert after == zeros                        # depthwise kernels included
    assert qat.kernel_sparsity(q) == pytest.approx(target)


def test_plain_qat_does_not_preserve_sparsity_and_saves_and_loads_in_scope(pruned_weights,
                                                                          tmp_path):
    q = qat.quantize(_pruned_block_model(pruned_weights), preserve_sparsity=False)
    assert qat.kernel_sparsity(q) > 0.5
    _compile(q)
    q.fit(_images(32), np.arange(32) % 10, batch_size=8, epochs=1, verbose=0)
    assert qat.kernel_sparsity(q) < 0.5          # zeros regrow without PQAT
    # the trained QAT model (quantize wrappers, tfopt's QuantizeConfigs) saves and loads
    path = str(tmp_path / "qat.h5")
    qat.save(q, path)
    loaded = qat.load(path)
    x = _images(2)
    np.testing.assert_allclose(loaded(x).numpy(), q(x).numpy(), atol=1e-5)


def test_wrapped_model_is_refused():
    import tensorflow_model_optimization as tfmot
    wrapped = P.wrap(_block_model(), tfmot.sparsity.keras.ConstantSparsity(0.5, 0, 0, 1))
    with pytest.raises(ValueError, match="still has pruning wrappers"):
        qat.quantize(wrapped)


def _variants():
    from tfopt.models import list_variants
    return list_variants()


@pytest.mark.slow
@pytest.mark.parametrize("variant", _variants() + ["full_depth:" + FULL_DEPTH_CHECK])
def test_qat_builds_on_every_zoo_variant(variant):
    # ResNet-101 variants with three blocks per stage: see tests/zoo_models.py.
    full_depth = variant.startswith("full_depth:")
    model = build_small(variant.removeprefix("full_depth:"), full_depth=full_depth)
    q = qat.quantize(model)
    shape = model.input_shape[1:]
    assert q(_images(2, shape)).shape == (2, 10)
