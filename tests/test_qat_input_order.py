"""QAT keeps every Concatenate's inputs in call order (tfmot #1179; vgg19_v08's QAT collapse).

tfmot 0.8.1's graph rewriter rewired `concat[expand1_bn, expand3_dead_bn]` of the fire unit with
grouped pointwise convs and shuffles (VGG-19 v08/v12) as `concat[expand3, expand1]`: it looks
a matched layer's inputs up in the order of its layer list, where the rewritten Conv+BN pair
(expand1_bn) has been moved to the end. The QAT model computed something else than the float
model it came from, and one QAT epoch on CIFAR-10 ended at chance (10.66 %) from a 27.70 %
baseline. Tiny shapes: one real fire unit at 8x8, 16 channels.
"""

import contextlib

import numpy as np
import pytest

from tfopt._keras import keras, layers
from tfopt.blocks.vgg_units import fire_gpw_shuffle_unit
from tfopt.compress import qat


def _fire_model():
    """input -> the v08 fire unit (its concat's second input comes first in the config) -> GAP
    -> logits."""
    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 3), name="input")
    x = fire_gpw_shuffle_unit(i, filters=16, name="f")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(i, layers.Dense(10, name="logits")(x))


def _concat_sources(model, name):
    layer = model.get_layer(name)
    return [getattr(getattr(t.node.layer, "layer", None), "name", t.node.layer.name)
            for t in layer.input]


def test_qat_model_keeps_the_concat_order_and_computes_the_float_model():
    model = _fire_model()
    q = qat.quantize(model)
    assert _concat_sources(q, "quant_f_concat") == ["f_expand1_bn", "f_expand3_dead_bn"]
    assert qat.input_order_mismatches(model, q) == []
    # Training-mode pass: BN on batch statistics in both, weights fake-quantized with their
    # own ranges (8 bit per channel), activations with tfmot's initial [-6, 6] range.
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    y_float = model(x, training=True).numpy()
    y_qat = q(x, training=True).numpy()
    rel = np.linalg.norm(y_qat - y_float) / np.linalg.norm(y_float)
    assert rel < 0.1, f"QAT output differs from the float model by {rel:.2f} (relative)"


def test_quantize_refuses_a_rewired_graph(monkeypatch):
    # Without the order fix, tfmot swaps the inputs; the check must catch it.
    monkeypatch.setattr(qat, "_keep_input_order", contextlib.nullcontext)
    with pytest.raises(RuntimeError, match=r"rewired the inputs of \['f_concat'\]"):
        qat.quantize(_fire_model())


def test_the_order_fix_is_scoped_to_quantize():
    from tensorflow_model_optimization.python.core.quantization.keras.graph_transformations import (
        model_transformer,
    )
    before = model_transformer.ModelTransformer._get_layers
    qat.quantize(_fire_model())
    assert model_transformer.ModelTransformer._get_layers is before
