"""`resnet8`, the MLPerf Tiny image-classification reference, as an extra (non-paper) zoo id."""

import fnmatch

import pytest

from tfopt import metrics
from tfopt.core.variants import VARIANT_IDS, get_variant
from tfopt.models import build_model


def test_resnet8_matches_the_mlperf_reference_counts():
    model = build_model("resnet8", num_classes=10, input_shape=(32, 32, 3))
    # mlcommons/tiny resnet_v1_eembc: "Total params: 78,666" (incl. 480 BN moving statistics).
    assert metrics.count_params(model) == 78_186
    assert model.count_params() == 78_666
    costs = metrics.layer_costs(model)
    assert sum(c.macs for c in costs) == 12_501_632
    assert model.output_shape == (None, 10)
    names = {layer.name for layer in model.layers}
    assert {"stem_conv", "s1_b1_add", "s2_b1_shortcut_conv", "s3_b1_relu", "head_logits"} <= names
    assert "s1_b1_shortcut_conv" not in names   # the first stack's shortcut is the identity


def test_resnet8_width_and_small_input():
    model = build_model("resnet8", num_classes=3, input_shape=(8, 8, 1), width_multiplier=0.5)
    widths = [layer.filters for layer in model.layers if layer.name.endswith("_conv2")]
    assert widths == [8, 16, 32]
    with pytest.raises(ValueError, match="resnet8"):
        build_model("resnet8", num_classes=3, input_shape=(2, 2, 1))


def test_resnet8_is_not_a_paper_variant():
    assert get_variant("resnet8").techniques is None
    paper = [v for v in VARIANT_IDS
             if fnmatch.fnmatch(v, "resnet101_v*") or fnmatch.fnmatch(v, "vgg19_v*")]
    assert len(paper) == 28 and "resnet8" not in paper
