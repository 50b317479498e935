"""The lean int8 pass costs no accuracy on trained models of each rewritten family (issue 13).

resnet101_v13 (ghost + grouped shuffle: per-tensor weights, sharing), vgg19_v08 (fire: concat +
RELU fusion), vgg19_v13 (DiCE: concat + RELU fusion, 1-channel groups as depthwise), at a tiny
width, trained 1 epoch on 3,000 Fashion-MNIST images. int8 accuracy is measured with LiteRT's
reference kernels (what TFLM matches bit for bit; the converter's own vgg19_v13 file fails
XNNPACK's prepare step, so the optimized kernels cannot score both files).
"""

import numpy as np
import pytest
import tflite_fixtures as fx

from tfopt._keras import keras
from tfopt.models import build_model
from tfopt.tflite import micro
from tfopt.tflite.convert import convert
from tfopt.tflite.evaluate import predict

pytestmark = pytest.mark.slow
TEST_IMAGES = 1000


def _accuracy(logits, y):
    return float(np.mean(np.argmax(logits, axis=1) == y))


@pytest.mark.parametrize("variant,width", [("resnet101_v13", 0.25), ("vgg19_v08", 0.25),
                                           ("vgg19_v13", 0.25)])
def test_lean_int8_accuracy_within_0p3_pp_of_float_and_tflm_exact(variant, width):
    from tfopt import data

    x_tr, y_tr, _, _, _ = fx.fmnist_slice()
    x_te, y_te, _ = data.load_arrays("fashion_mnist", "test", limit=TEST_IMAGES)
    keras.utils.set_random_seed(0)
    model = build_model(variant, num_classes=10, input_shape=(28, 28, 1), width_multiplier=width)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_tr, y_tr, batch_size=32, epochs=1, verbose=0)
    float_acc = _accuracy(model.predict(x_te, verbose=0), y_te)
    assert float_acc > 0.5, f"{variant} did not train ({float_acc:.3f}); the check would be void"
    result = convert(model, "int8", representative_data=x_tr[:200], name=variant)
    assert result.lean_report["per_tensor_layers"] > 0
    lean_acc = _accuracy(predict(result.content, x_te, reference=True), y_te)
    assert abs(lean_acc - float_acc) <= 0.003 + 1e-9, (variant, float_acc, lean_acc,
                                                       result.lean_report)
    if micro.micro_available():
        report = micro.run_micro(result.content, x_te[:20], num_samples=20, name=variant)
        assert report.ok, report.error
        assert report.max_diff_lsb == 0
