"""Heavily pruned zoo models convert to a lean int8 file that LiteRT (XNNPACK) runs.

Global magnitude pruning zeroes whole filters and layers: shared all-zero weight tensors,
biases on nearly dead inputs, constant outputs. Each once broke the lean pass
(docs/deployment.md, "Pruned models"). Width 0.25, 16x16 inputs, BN statistics like a trained
model's, then 90 % of the conv kernels zeroed with one global threshold
(`tfopt.compress.global_pruning.compute_masks`).
"""

import numpy as np
import pytest

from tfopt.compress.global_pruning import compute_masks
from tfopt.compress.pruning import selected_layers
from tfopt.models import build_model
from tfopt.models.trained_like import trained_like_batch_norm
from tfopt.tflite.convert import convert
from tfopt.tflite.evaluate import make_interpreter, predict

SHAPE = (16, 16, 3)


def _pruned(variant: str, sparsity: float):
    model = build_model(variant, num_classes=10, input_shape=SHAPE, width_multiplier=0.25)
    trained_like_batch_norm(model, seed=0)
    layers = [model.get_layer(name) for name in selected_layers(model, "conv")]
    kernels = [layer.get_weights()[0] for layer in layers]
    for layer, kernel, keep in zip(layers, kernels, compute_masks(kernels, sparsity=sparsity)):
        layer.set_weights([kernel * keep, *layer.get_weights()[1:]])
    return model


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["resnet101_v13", "vgg19_v04", "vgg19_v13"])
def test_a_90_percent_pruned_model_runs_on_xnnpack_as_close_as_the_converters_file(variant):
    model = _pruned(variant, 0.9)
    x = np.random.default_rng(0).standard_normal((64, *SHAPE)).astype(np.float32)
    keras_out = model.predict(x, verbose=0)
    lean = convert(model, "int8", representative_data=x[:32], num_calibration_samples=32)
    make_interpreter(lean.content)    # XNNPACK prepares it
    lean_error = np.sqrt(np.mean((predict(lean.content, x) - keras_out) ** 2))
    plain = convert(model, "int8", representative_data=x[:32], num_calibration_samples=32,
                    lean=False)
    plain_error = np.sqrt(np.mean((predict(plain.content, x, reference=True) - keras_out) ** 2))
    assert lean_error <= 3 * plain_error + 1e-3 * np.abs(keras_out).max()
