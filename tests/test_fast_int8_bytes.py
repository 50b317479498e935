"""The fast training layers leave the deployment graph alone: int8 .tflite bytes per variant.

For the grouped-conv families (fire + shuffle, DiCE, ghost + shuffle; at the small test size of
tests/zoo_models.py; all 33 variants take too long for CI), the
int8 .tflite
converted from the model `build_model` returns (with `GroupedConv2D`, the fast training path)
has the same size within 1 % as the one converted from its stock-Keras copy
(`tfopt.blocks.grouped.to_native`), and the same operator list. Issue #12's "same deployment
graph" check; slow (two int8 conversions per variant).
"""

import numpy as np
import pytest

from tfopt.blocks import grouped
from tfopt.tflite import convert as conv
from tflite_fixtures import op_names
from zoo_models import build_small


def _int8(model):
    # 4 calibration images: the file's size and op list do not depend on how many
    images = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    return conv.convert(model, "int8", representative_data=images,
                        num_calibration_samples=4).content


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["vgg19_v08", "vgg19_v13", "resnet101_v13"])
def test_int8_bytes_of_fast_and_native_models_agree(variant):
    model = build_small(variant)
    native = grouped.to_native(model)
    if native is model:
        pytest.skip(f"{variant} has no fast-path layer")
    fast_bytes, native_bytes = _int8(model), _int8(native)
    assert abs(len(fast_bytes) - len(native_bytes)) <= 0.01 * len(native_bytes)
    assert op_names(fast_bytes) == op_names(native_bytes)
