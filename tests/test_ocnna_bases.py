"""OCNNA base networks (vgg16, resnet50, densenet40, mobilenet_v1): counts derived here.

Each expected count is computed from the architecture in plain arithmetic below, and checked
against the Keras-computed figures quoted in the OCNNA design notes (ocnna.md §4, computed with
Keras 3.15 / TF 2.21): VGG-16-BN + FC-512: 15,001,418 total / 14,991,946 trainable (10 classes);
DenseNet-40 (k=12, initial 16): 1,037,818 / 1,019,722; MobileNet(alpha=1) + GAP + Dense:
3,239,114 / 3,217,226.
"""

import numpy as np
import pytest

from tfopt import metrics
from tfopt.models import build_model, list_variants

BASES = ("vgg16", "resnet50", "densenet40", "mobilenet_v1")


def bn(c):
    """(trainable, non-trainable) of a BatchNorm over c channels: gamma/beta, mean/var."""
    return 2 * c, 2 * c


def vgg16_counts(n):
    trainable = buffers = 0
    cin = 3
    for width, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            trainable += 9 * cin * width + width + bn(width)[0]  # conv 3x3 + bias, BN
            buffers += bn(width)[1]
            cin = width
    trainable += 512 * 512 + 512 + bn(512)[0]  # flatten 1x1x512 -> FC 512 (+bias), BN
    buffers += bn(512)[1]
    trainable += 512 * n + n  # FC out
    return trainable, trainable + buffers


def resnet50_counts(n):
    trainable = 27 * 64 + 2 * 64  # stem conv 3x3 3->64 (no bias) + BN
    buffers = 2 * 64
    cin = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for b in range(blocks):
            convs = cin * width + 9 * width * width + width * 4 * width
            bns = width + width + 4 * width
            if b == 0:  # projection shortcut 1x1 cin -> 4w + BN
                convs += cin * 4 * width
                bns += 4 * width
            trainable += convs + 2 * bns
            buffers += 2 * bns
            cin = 4 * width
    trainable += 2048 * n + n
    return trainable, trainable + buffers


def densenet40_counts(n):
    c = 16
    trainable, buffers = 27 * 16, 0  # initial conv 3x3 3->16, no bias
    for block in range(3):
        for _ in range(12):  # BN(c) -> ReLU -> conv 3x3 c->12
            trainable += 2 * c + 9 * c * 12
            buffers += 2 * c
            c += 12
        if block < 2:  # transition: BN(c) -> ReLU -> conv 1x1 c->c -> avg-pool
            trainable += 2 * c + c * c
            buffers += 2 * c
    trainable += 2 * c + c * n + n  # final BN(448), FC
    buffers += 2 * c
    return trainable, trainable + buffers


def mobilenet_v1_counts(n):
    trainable = 27 * 32 + 2 * 32  # stem conv 3x3 3->32 + BN
    buffers = 2 * 32
    cin = 32
    for cout in (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024):
        trainable += 9 * cin + 2 * cin + cin * cout + 2 * cout  # dw + BN, pw + BN
        buffers += 2 * cin + 2 * cout
        cin = cout
    trainable += 1024 * n + n
    return trainable, trainable + buffers


DERIVED = {"vgg16": vgg16_counts, "resnet50": resnet50_counts, "densenet40": densenet40_counts,
           "mobilenet_v1": mobilenet_v1_counts}


def test_derivations_agree_with_the_design_notes():
    assert vgg16_counts(10) == (14_991_946, 15_001_418)
    assert vgg16_counts(100) == (15_038_116, 15_047_588)
    assert densenet40_counts(10) == (1_019_722, 1_037_818)
    assert densenet40_counts(100) == (1_060_132, 1_078_228)
    assert mobilenet_v1_counts(10) == (3_217_226, 3_239_114)
    assert mobilenet_v1_counts(100) == (3_309_476, 3_331_364)
    assert resnet50_counts(10)[0] == 23_520_842  # pytorch-cifar ResNet50 (kuangliu), 10 classes


def test_bases_are_registered():
    assert set(BASES) <= set(list_variants())


@pytest.mark.parametrize("num_classes", [10, 100])
@pytest.mark.parametrize("base", BASES)
def test_full_width_counts_match_the_derivation(base, num_classes):
    model = build_model(base, num_classes=num_classes)
    total = sum(int(np.prod(w.shape)) for w in model.weights)
    assert (metrics.count_params(model), total) == DERIVED[base](num_classes)


# Tiny-width builds and the naming scheme of every registered id: tests/test_models_zoo.py.


def test_every_conv_feeds_its_batch_norm_directly_except_densenet_preactivation():
    # OCNNA surgery slices a conv's outputs together with the BN right after it.
    for base in ("vgg16", "resnet50", "mobilenet_v1"):
        model = build_model(base, num_classes=10, width_multiplier=0.125)
        for layer in model.layers:
            if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D"):
                consumers = [n.outbound_layer for n in layer.outbound_nodes]
                assert [type(c).__name__ for c in consumers] == ["BatchNormalization"], layer.name


def test_densenet_joins_are_concatenate_layers_growing_by_k():
    model = build_model("densenet40", num_classes=10)
    concats = [layer for layer in model.layers if type(layer).__name__ == "Concatenate"]
    assert len(concats) == 36
    assert [c.output.shape[-1] for c in concats[:2]] == [28, 40]  # 16 + 12, + 12
    assert model.get_layer("s3_b12_concat").output.shape[1:] == (8, 8, 448)


def test_mobilenet_last_stage_is_2x2_at_32x32():
    model = build_model("mobilenet_v1", num_classes=10, width_multiplier=0.125)
    assert model.get_layer("s5_b2_pw_conv").output.shape[1:3] == (2, 2)
    assert model.get_layer("s1_b1_pw_conv").output.shape[1:3] == (32, 32)


def test_too_small_input_is_a_clear_value_error():
    with pytest.raises(ValueError, match="needs at least 2x2"):
        build_model("vgg16", num_classes=10, input_shape=(28, 28, 1), width_multiplier=0.125)
