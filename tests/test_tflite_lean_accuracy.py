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


def _se_affine_net():
    """Stand-in for vgg19_v11/v12/v13's session-11 rewrites: a BN after a transpose (MUL + ADD
    by constants: one depthwise with --target=litert), SE gates read by a 2x2 max pool (the gate
    moves after it), one of them through a channel shuffle (folds through the pool)."""
    inp = keras.Input((28, 28, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="stem")(inp)
    x = layers.Permute((2, 1, 3), name="swap")(x)
    x = layers.ReLU(name="swap_relu")(layers.BatchNormalization(name="swap_bn")(x))
    for i, shuffle in enumerate((False, True)):
        g = layers.GlobalAveragePooling2D(keepdims=True, name=f"se{i}_gap")(x)
        g = layers.Conv2D(4, 1, activation="relu", name=f"se{i}_squeeze")(g)
        g = layers.Conv2D(int(x.shape[-1]), 1, activation="sigmoid", name=f"se{i}_expand")(g)
        x = layers.Multiply(name=f"se{i}_scale")([x, g])
        if shuffle:
            h, w, c = (int(d) for d in x.shape[1:])
            x = layers.Reshape((h, w, 2, c // 2), name=f"s{i}_split")(x)
            x = layers.Reshape((h, w, c), name=f"s{i}_merge")(
                layers.Permute((1, 2, 4, 3), name=f"s{i}_swap")(x))
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
        x = layers.Conv2D(32, 3, padding="same", activation="relu", name=f"conv{i}")(x)
    x = layers.Flatten(name="flat")(x)
    return keras.Model(inp, layers.Dense(10, name="logits")(x), name="se_affine")


def test_phone_file_rewrites_cost_no_accuracy_and_tflm_exact():
    """gate after pool, shuffle through a pool (default) and affine as depthwise (--target=litert)
    on a trained net: int8 >= the converter's int8 - 0.3 pp and >= float - 0.3 pp; TFLM = LiteRT
    reference. Measured 2026-12-07 (1 epoch, 3,000 images; 1,000 test): float 77.7 %, converter
    int8 78.0 %, phone file 78.1 %."""
    from tfopt import data

    x_tr, y_tr, _, _, _ = fx.fmnist_slice()
    x_te, y_te, _ = data.load_arrays("fashion_mnist", "test", limit=TEST_IMAGES)
    keras.utils.set_random_seed(0)
    model = _se_affine_net()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_tr, y_tr, batch_size=32, epochs=1, verbose=0)
    float_acc = _accuracy(model.predict(x_te, verbose=0), y_te)
    assert float_acc > 0.5, f"se_affine did not train ({float_acc:.3f}); the check would be void"
    plain = convert(model, "int8", representative_data=x_tr[:200], name="se_affine", lean=False)
    phone = convert(model, "int8", representative_data=x_tr[:200], name="se_affine",
                    target="litert")
    report = phone.lean_report
    assert report["gates_after_pool"] == 2 and report["affine_as_depthwise"] == 1
    assert report["shuffles_folded"] == 1
    plain_acc = _accuracy(predict(plain.content, x_te, reference=True), y_te)
    phone_acc = _accuracy(predict(phone.content, x_te, reference=True), y_te)
    print(f"se_affine: float {float_acc:.3f} converter int8 {plain_acc:.3f} phone {phone_acc:.3f}")
    assert phone_acc >= plain_acc - 0.003 - 1e-9, (float_acc, plain_acc, phone_acc)
    assert phone_acc >= float_acc - 0.003 - 1e-9, (float_acc, plain_acc, phone_acc)
    if micro.micro_available():
        run = micro.run_micro(phone.content, x_te[:20], num_samples=20, name="se_affine")
        assert run.ok, run.error
        assert run.max_diff_lsb == 0
