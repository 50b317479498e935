"""tfopt.tflite.rewrite_pool (gate after max pool) and rewrite_affine (MUL + ADD as a depthwise)."""

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.tflite import micro
from tfopt.tflite.convert import convert, make_lean
from tfopt.tflite.evaluate import predict
from tfopt.tflite.model_info import _model_object
from tfopt.tflite.rewrite import _op_names
from tflite_fixtures import op_names

SHAPE = (16, 16, 3)


def _int8(model) -> bytes:
    x = np.random.default_rng(0).standard_normal((32,) + SHAPE).astype(np.float32)
    return convert(model, "int8", representative_data=x, lean=False).content


def _inputs(n=24):
    return np.random.default_rng(1).integers(-128, 128, (n,) + SHAPE).astype(np.int8)


def _outputs(content, x, reference):
    return predict(content, x, reference=reference, raw=True).astype(np.int32)


def _assert_tflm_equals_reference(content, x):
    if micro.micro_available():
        report = micro.run_micro(content, x, num_samples=len(x))
        assert report.ok and report.max_diff_lsb == 0


def _se_pool_model():
    """conv -> squeeze-excite gate (x * sigmoid) -> 2x2 max pool -> conv -> GAP -> Dense(5)."""
    inp = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(inp)
    g = layers.GlobalAveragePooling2D(keepdims=True, name="se_gap")(x)
    g = layers.Conv2D(2, 1, activation="relu", name="se_squeeze")(g)
    g = layers.Conv2D(8, 1, activation="sigmoid", name="se_expand")(g)
    x = layers.Multiply(name="se_scale")([x, g])
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, layers.Dense(5, name="logits")(x), name="se_pool")


@pytest.fixture(scope="module")
def se_pool():
    keras.utils.set_random_seed(0)
    return _int8(_se_pool_model())


def test_gate_moves_after_the_max_pool_bit_identical(se_pool):
    before, _, _ = make_lean(se_pool, gate_after_pool=False)
    after, _, report = make_lean(se_pool)
    assert report["gates_after_pool"] == 1
    m = _model_object(after, "after")
    sg, kinds = m.subgraphs[0], _op_names(m)
    shape = lambda t: [int(d) for d in sg.tensors[int(t)].shape]  # noqa: E731
    mul = sg.operators[kinds.index("MUL")]
    assert [shape(t) for t in mul.inputs][0] == [1, 8, 8, 8]   # the gate multiplies the pooled map
    pools = [i for i, k in enumerate(kinds) if k == "MAX_POOL_2D"
             and shape(sg.operators[i].inputs[0]) == [1, 16, 16, 8]]
    assert len(pools) == 1 and pools[0] < kinds.index("MUL")
    x = _inputs()
    for reference in (True, False):
        want = _outputs(before, x, reference)
        assert len({tuple(r) for r in want}) > 1           # outputs that depend on the input
        np.testing.assert_array_equal(_outputs(after, x, reference), want)
    _assert_tflm_equals_reference(after, x)


def test_a_gate_whose_output_is_also_read_elsewhere_stays():
    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(inp)
    g = layers.GlobalAveragePooling2D(keepdims=True, name="se_gap")(x)
    g = layers.Conv2D(8, 1, activation="sigmoid", name="se_expand")(g)
    y = layers.Multiply(name="se_scale")([x, g])
    pooled = layers.GlobalAveragePooling2D(name="gap_a")(layers.MaxPooling2D(2, name="pool")(y))
    other = layers.GlobalAveragePooling2D(name="gap_b")(y)      # a second reader of x * g
    out = layers.Dense(5, name="logits")(layers.Concatenate(name="cat")([pooled, other]))
    _, _, report = make_lean(_int8(keras.Model(inp, out)))
    assert report["gates_after_pool"] == 0


def _affine_model():
    """An input-side BN the converter cannot fold (after a transpose): MUL + ADD + RELU."""
    inp = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(8, 3, padding="same", name="conv_a")(inp)
    x = layers.Permute((2, 1, 3), name="swap")(x)
    bn = layers.BatchNormalization(name="bn")
    x = layers.ReLU(name="relu")(bn(x))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inp, layers.Dense(5, name="logits")(x), name="affine")
    rng = np.random.default_rng(3)
    bn.set_weights([rng.uniform(-1.5, 1.5, 8), rng.normal(0, 0.5, 8), rng.normal(0, 0.3, 8),
                    rng.uniform(0.5, 2.0, 8)])
    return model


def test_mul_add_becomes_one_depthwise_within_one_lsb():
    keras.utils.set_random_seed(0)
    model = _affine_model()
    plain = _int8(model)
    assert {"MUL", "ADD"} <= set(op_names(plain))
    before, _, _ = make_lean(plain)
    after, _, report = make_lean(plain, affine_as_depthwise=True)
    assert report["affine_as_depthwise"] == 1
    assert "MUL" not in op_names(after) and "ADD" not in op_names(after)
    depthwise = [op_names(f).count("DEPTHWISE_CONV_2D") for f in (before, after)]
    assert depthwise[1] == depthwise[0] + 1
    x = _inputs()
    for reference in (True, False):
        want, got = _outputs(before, x, reference), _outputs(after, x, reference)
        assert len({tuple(r) for r in want}) > 1
        assert np.max(np.abs(got - want)) <= 1
    _assert_tflm_equals_reference(after, x)


def test_litert_target_writes_the_affine_pair_as_a_depthwise():
    keras.utils.set_random_seed(0)
    model = _affine_model()
    x = np.random.default_rng(0).standard_normal((8,) + SHAPE).astype(np.float32)
    assert convert(model, "int8", representative_data=x, target="litert"
                   ).lean_report["affine_as_depthwise"] == 1
    assert convert(model, "int8", representative_data=x).lean_report["affine_as_depthwise"] == 0
