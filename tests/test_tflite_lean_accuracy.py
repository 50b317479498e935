"""The lean int8 pass costs no accuracy on trained models (issue 13).

resnet101_v13 (ghost + grouped shuffle: per-tensor weights, sharing) at width 0.25, and a small
fire/DiCE-style net (concat + ReLU fusion, a 1-channel-group conv turned depthwise), each trained
1 epoch on 3,000 Fashion-MNIST images. The vgg19_v08 / vgg19_v13 builders at 28x28x1 and width
0.25 do not learn in one epoch (10-12 % float accuracy), so the fire/DiCE rewrites are scored on
the stand-in net. int8 accuracy uses LiteRT's reference kernels (what TFLM matches bit for bit;
the converter's own DiCE file fails XNNPACK's prepare step).

Measured (1,000 test images): resnet101_v13 float 62.7 %, converter int8 59.9 %, lean int8
61.0 %, lean with every layer per-channel 59.9 %: the float-int8 gap is the converter's PTQ on a
1-epoch model, and the lean pass does not widen it; fire_dice float 57.7 %, converter int8
57.6 %, lean int8 57.5 % (within 0.3 pp of float). The assertion is lean int8 >= converter
int8 - 0.3 pp; the float gap is printed. The lean file of resnet101_v13 has its 64 ghost BNs
folded into the convs before the concats (`tfopt.tflite.fold_bn`); the converter's file does
not. Measured with the fold (same recipe, 2026-12-03, shared 2-core machine): float 62.5 %, lean
int8 without the fold 61.5 %, with it 61.9 %; 110,048 -> 99,456 B, 550 -> 478 ops, TFLM arena
137,968 -> 126,080 B, TFLM = LiteRT reference 0 LSB in both.
"""

import numpy as np
import pytest
import tflite_fixtures as fx

from tfopt._keras import keras, layers
from tfopt.models import build_model
from tfopt.tflite import micro
from tfopt.tflite.convert import convert
from tfopt.tflite.evaluate import predict

pytestmark = pytest.mark.slow
TEST_IMAGES = 1000


def _fire_dice_net():
    inp = keras.Input((28, 28, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", name="stem")(inp)
    x = layers.ReLU(name="stem_relu")(layers.BatchNormalization(name="stem_bn")(x))
    x = layers.MaxPooling2D(name="pool1")(x)
    a = layers.Conv2D(16, 1, name="expand1x1")(x)
    b = layers.DepthwiseConv2D(3, padding="same", name="expand_dw")(x)
    x = layers.ReLU(name="fire_relu")(layers.Concatenate(name="fire_cat")([a, b]))
    x = layers.Conv2D(64, 3, groups=32, padding="same", name="proj")(x)
    x = layers.ReLU(name="proj_relu")(layers.BatchNormalization(name="proj_bn")(x))
    x = layers.MaxPooling2D(name="pool2")(x)
    x = layers.Flatten(name="flat")(x)
    return keras.Model(inp, layers.Dense(10, name="logits")(x), name="fire_dice")


def _accuracy(logits, y):
    return float(np.mean(np.argmax(logits, axis=1) == y))


@pytest.mark.parametrize("variant", ["resnet101_v13", "fire_dice"])
def test_lean_int8_accuracy_no_worse_than_converter_and_tflm_exact(variant):
    from tfopt import data

    x_tr, y_tr, _, _, _ = fx.fmnist_slice()
    x_te, y_te, _ = data.load_arrays("fashion_mnist", "test", limit=TEST_IMAGES)
    keras.utils.set_random_seed(0)
    model = (_fire_dice_net() if variant == "fire_dice" else
             build_model(variant, num_classes=10, input_shape=(28, 28, 1), width_multiplier=0.25))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_tr, y_tr, batch_size=32, epochs=1, verbose=0)
    float_acc = _accuracy(model.predict(x_te, verbose=0), y_te)
    assert float_acc > 0.5, f"{variant} did not train ({float_acc:.3f}); the check would be void"
    plain = convert(model, "int8", representative_data=x_tr[:200], name=variant, lean=False)
    lean = convert(model, "int8", representative_data=x_tr[:200], name=variant)
    assert lean.lean_report["per_tensor_layers"] > 0
    # ghost BNs after the concats folded (fire_dice's BNs follow convs: the converter folds them)
    assert lean.lean_report["concat_bn_folded"] == (64 if variant == "resnet101_v13" else 0)
    if variant == "fire_dice":
        assert lean.lean_report["relu_fused"] == 0   # opt-in only (TFLM differs, see make_lean)
        assert lean.lean_report["grouped_to_depthwise"] == 1
        # on by default: RELU as a 1x1 max pool, depth multiplier 1, Dense as a 1x1 conv
        assert lean.lean_report["relu_as_pool"] == 1
        assert lean.lean_report["dw_multiplier_one"] == 1 and lean.lean_report["fc_as_conv"] == 1
    plain_acc = _accuracy(predict(plain.content, x_te, reference=True), y_te)
    lean_acc = _accuracy(predict(lean.content, x_te, reference=True), y_te)
    print(f"{variant}: float {float_acc:.3f} converter int8 {plain_acc:.3f} lean {lean_acc:.3f}")
    assert lean_acc >= plain_acc - 0.003 - 1e-9, (variant, float_acc, plain_acc, lean_acc)
    if variant == "fire_dice":   # the converter's PTQ keeps this net within 0.3 pp below float
        # (one-sided: on an AVX2 EPYC int8 landed 0.5 pp above float, 0.586 -> 0.591; not a loss)
        assert lean_acc >= float_acc - 0.003 - 1e-9, (float_acc, plain_acc, lean_acc)
    if micro.micro_available():
        report = micro.run_micro(lean.content, x_te[:20], num_samples=20, name=variant)
        assert report.ok, report.error
        assert report.max_diff_lsb == 0
