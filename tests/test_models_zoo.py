"""Every registered variant, found through the registry: TF-free data, tiny-width builds, names.

Parametrised over `list_variants()`, so a newly registered id is tested without editing this
file. ResNet-101 variants are built as their shallow twins (tests/zoo_models.py: every block
kind and shape transition, at most three blocks per stage) and VGGs with the first two conv slots
of every stage, to keep the fast suite fast.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tfopt.core import variants
from tfopt.models import list_variants, registry

from zoo_models import build_small

# The zoo's one layer-naming scheme: stem, s{stage}_b{block}_<op> / s{stage}_pool /
# s{stage}_trans_<op> (DenseNet transitions), head.
NAME = re.compile(r"^(input|image|stem_[a-z0-9_]+|s\d_(pool|trans_[a-z]+|b\d+_[a-z0-9_]+)"
                  r"|head_[a-z0-9_]+)$")


@pytest.mark.parametrize("variant", list_variants())
def test_tiny_width_builds_runs_and_follows_the_naming_scheme(variant):
    model = build_small(variant, num_classes=10)
    y = model(np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32"),
              training=False)
    assert y.shape == (2, 10) and np.all(np.isfinite(y.numpy()))
    assert model.name == variant
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert [n for n in names if not NAME.match(n)] == []


def test_every_family_has_a_builder_and_every_row_a_family():
    assert set(registry.FAMILY_BUILDERS) == set(variants.FAMILIES)
    assert {v.family for v in variants.VARIANTS} == set(variants.FAMILIES)
    assert set(variants.BASE_FAMILY) == {v.base for v in variants.VARIANTS}
    assert tuple(list_variants()) == variants.VARIANT_IDS
    assert len(set(variants.VARIANT_IDS)) == len(variants.VARIANT_IDS) == 34  # 28 paper + 5 OCNNA/tiny + resnet8


def test_a_family_module_that_fails_to_import_raises(monkeypatch):
    monkeypatch.setitem(registry.FAMILY_BUILDERS, "tiny", ("tfopt.models.no_such", "tiny_cnn"))
    with pytest.raises(ModuleNotFoundError, match="tfopt.models.no_such"):
        registry.build_model("tiny_cnn", num_classes=10)


def test_unknown_variant_names_close_matches():
    with pytest.raises(ValueError, match="did you mean tiny_cnn"):
        variants.get_variant("tiny_cn")


def test_variant_ids_and_techniques_need_no_tensorflow():
    code = ("import sys, json; import tfopt.models as m; from tfopt.core import variants; "
            "ids = m.list_variants(); m.techniques_of('vgg19[unit=dws]'); "
            "m.paper_variant('resnet101[]'); "
            "print(json.dumps([len(ids), len(variants.VARIANT_IDS), "
            "sorted(k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'tf_keras'))]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ})
    n_ids, n_core, tf_modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert n_ids == n_core == 34 and tf_modules == []   # 33 + resnet8 (MLPerf Tiny)


def test_vgg_twin_keeps_the_first_two_slots_of_every_stage():
    names = [layer.name for layer in build_small("vgg19_v02").layers]
    slots = {tuple(n.split("_")[:2]) for n in names if re.match(r"s\d_b\d+_", n)}
    assert slots == {(f"s{s}", f"b{b}") for s in range(1, 6) for b in (1, 2)}
    with pytest.raises(ValueError, match="max_slots_per_stage=0"):
        from tfopt.models.vgg import vgg
        vgg(None, num_classes=10, max_slots_per_stage=0)
