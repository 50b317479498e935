"""Every registered paper variant reproduces the reference's parameter and FLOP integers exactly.

The integers (trainable params, fvcore FLOPs, conv+linear MACs at 32x32x3, for 10 and 100
classes) are copied into tests/data/reference_figures.json; its `_source` key says where from.
Full-width builds: ~5-20 s each on one CPU core, hence slow.
"""

import json
import pathlib

import pytest

from tfopt import metrics
from tfopt.models import build_model

REFERENCE = json.loads(
    (pathlib.Path(__file__).parent / "data" / "reference_figures.json").read_text())
MODELS = REFERENCE["models"]
CASES = [(v, int(n)) for v in MODELS for n in sorted(MODELS[v], key=int)]


def test_reference_covers_the_28_paper_variants():
    ids = set(MODELS)
    assert ids == {f"resnet101_v{i:02d}" for i in range(1, 16)} | {
        f"vgg19_v{i:02d}" for i in range(1, 14)}
    assert "_source" in REFERENCE


@pytest.mark.slow
@pytest.mark.parametrize("variant, num_classes", CASES)
def test_params_flops_macs_match_reference_exactly(variant, num_classes):
    want = MODELS[variant][str(num_classes)]
    model = build_model(variant, num_classes=num_classes)
    got = {"params": metrics.count_params(model), "flops": metrics.count_flops(model),
           "macs": metrics.count_macs(model)}
    assert got == want
