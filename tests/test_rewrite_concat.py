"""Channel concat moved past the per-channel ops after it (tfopt.tflite.rewrite_concat)."""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.tflite import arena_plan, lean, micro, rewrite_concat
from tfopt.tflite.convert import convert
from tfopt.tflite.evaluate import predict
from tfopt.tflite.model_info import _model_object
from tfopt.tflite.rewrite import _op_names

HW = 16


def _ghost(x, c, name):
    s = layers.Conv2D(c, 1, groups=2, name=f"{name}_primary")(x)
    y = layers.Concatenate(name=f"{name}_cat")([layers.DepthwiseConv2D(3, padding="same")(s), s])
    return layers.ReLU(6.0)(layers.BatchNormalization(name=f"{name}_bn")(y))


def _ghost_model():
    """Ghost concats (BN after the concat) feeding a grouped 1x1 conv and, in a stride-2 block,
    a PAD + stride-2 depthwise: the resnet101_v13 patterns."""
    inp = keras.Input((HW, HW, 3))
    x = layers.Conv2D(8, 3, padding="same")(inp)
    y = _ghost(x, 8, "g1")
    x = layers.Add()([x, layers.Conv2D(8, 1, groups=4, name="g1_project")(y)])
    y = _ghost(x, 8, "g2")
    y = layers.DepthwiseConv2D(3, strides=2, name="down")(layers.ZeroPadding2D(1)(y))
    return keras.Model(inp, layers.Dense(3)(layers.GlobalAveragePooling2D()(y)))


@pytest.fixture(scope="module")
def files():
    keras.utils.set_random_seed(0)
    model = _ghost_model()
    for layer in model.layers:   # non-trivial BN so the MUL constant differs per channel
        if isinstance(layer, layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([np.linspace(0.5, 1.5, n), np.linspace(-0.2, 0.2, n),
                               np.linspace(-0.1, 0.1, n), np.linspace(0.8, 1.2, n)])
    x = np.random.default_rng(0).standard_normal((16, HW, HW, 3)).astype(np.float32)
    plain = convert(model, "int8", representative_data=x, lean=False).content
    obj = _model_object(plain, "m")
    moved = rewrite_concat.sink_concat(obj)
    return plain, lean.serialize(obj), moved


def _inputs(n=12):
    return np.random.default_rng(1).integers(-128, 128, (n, HW, HW, 3)).astype(np.int8)


def test_sinking_changes_no_output(files):
    plain, sunk, moved = files
    assert moved >= 1
    for reference in (True, False):
        np.testing.assert_array_equal(predict(sunk, _inputs(), reference=reference, raw=True),
                                      predict(plain, _inputs(), reference=reference, raw=True))


def test_concat_lands_after_the_split_chain(files):
    _, sunk, _ = files
    obj = _model_object(sunk, "m")
    kinds = _op_names(obj)
    sg = obj.subgraphs[0]
    cat_inputs = {len(sg.tensors[int(t)].shape) and int(sg.tensors[int(t)].shape[1])
                  for i, op in enumerate(sg.operators) if kinds[i] == "CONCATENATION"
                  for t in op.inputs}
    assert HW // 2 in cat_inputs           # a concat now joins the stride-2 depthwise outputs
    assert kinds.count("PAD") == 2 and kinds.count("DEPTHWISE_CONV_2D") >= 4


@pytest.mark.skipif(not micro.micro_available(), reason="tflite-micro not installed")
def test_sinking_lowers_the_planned_arena_and_tflm_stays_exact(files):
    plain, sunk, _ = files
    heads = []
    for content in (plain, sunk):
        obj = _model_object(content, "m")
        arena_plan.offline_plan(obj)
        heads.append(micro.arena_breakdown(lean.serialize(obj))["head"])
    assert heads[1] < heads[0]
    report = micro.run_micro(sunk, _inputs(), num_samples=12)
    assert report.ok and report.max_diff_lsb == 0


def test_a_failed_split_leaves_no_unused_tensor():
    # The concat's chain ends in a dense conv (its 16-channel groups straddle both inputs), so
    # the split fails after the MUL parts were made; none may stay behind: TFLM allocates a
    # TfLiteEvalTensor (24 B) for every tensor of the file.
    keras.utils.set_random_seed(0)
    inp = keras.Input((HW, HW, 3))
    y = _ghost(layers.Conv2D(8, 3, padding="same")(inp), 8, "g")
    out = layers.Dense(3)(layers.GlobalAveragePooling2D()(layers.Conv2D(4, 1)(y)))
    x = np.random.default_rng(0).standard_normal((8, HW, HW, 3)).astype(np.float32)
    obj = _model_object(convert(keras.Model(inp, out), "int8", representative_data=x,
                                lean=False).content, "m")
    before = len(obj.subgraphs[0].tensors)
    assert rewrite_concat.sink_concat(obj) == 0
    sg = obj.subgraphs[0]
    used = {int(t) for op in sg.operators for t in list(op.inputs) + list(op.outputs)}
    assert len(sg.tensors) <= before
    assert (used - {-1}) | {int(t) for t in sg.inputs} == set(range(len(sg.tensors)))
