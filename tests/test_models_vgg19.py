"""VGG-19 variants 01-13 (tfopt.models.vgg), their units and the DiCE unit.

Exact params/FLOPs/MACs against the reference are asserted in tests/test_reference_counts.py;
this file checks builds, names, units and the DiCE layout.
"""

import json
import pathlib
import re

import numpy as np
import pytest

from tfopt import metrics
from tfopt._keras import keras
from tfopt.blocks.dice import dice_unit, strided_dice_unit
from tfopt.core.techniques import VGG_UNITS, VggTechniques
from tfopt.core.variants import VARIANTS
from tfopt.models import build_model
from tfopt.models.vgg import vgg

DATA = pathlib.Path(__file__).parent / "data"
VGG_IDS = [v.id for v in VARIANTS if v.base == "vgg19"]
NAME_RE = re.compile(r"^(input|s[1-5]_(pool|b[1-4]_[a-z0-9_]+)|head_[a-z0-9_]+)$")


def _reference():
    """{variant id: {"10"|"100": {"params", "flops", "macs"}}}, sources cited in the file."""
    return json.loads((DATA / "reference_figures.json").read_text())["models"]


REFERENCE = _reference()


def test_registry_lists_all_13_vgg19_variants():
    assert VGG_IDS == [f"vgg19_v{i:02d}" for i in range(1, 14)]


def test_unit_kinds_are_the_unit_functions():
    from tfopt.blocks import vgg_units

    assert tuple(vgg_units.UNITS) == VGG_UNITS


# Exact params/FLOPs/MACs of all 28 paper variants: tests/test_reference_counts.py.
# Every registered variant is built and run at tiny width in tests/test_models_zoo.py.


def test_logit_dropout_quirk_of_variants_02_to_06():
    # Reference quirk: VGG-02..06 apply Dropout(0.5) to the logits (identity at inference).
    heads = {v.id: v.techniques.head for v in VARIANTS if v.base == "vgg19"}
    assert [v for v, h in heads.items() if h == "gap_fc_dropout"] == [
        f"vgg19_v{i:02d}" for i in range(2, 7)]
    names = [layer.name for layer in build_model("vgg19_v04", num_classes=10,
                                                 width_multiplier=0.125).layers]
    assert names[-1] == "head_dropout" and all(NAME_RE.match(n) for n in names)


def test_vgg16_is_table_d_with_the_fc_bn_head():
    model = vgg(VggTechniques(unit="conv3x3", head="fc_bn", final_pool=True), num_classes=10,
                base="vgg16", width_multiplier=0.125)
    convs = [layer.name for layer in model.layers if layer.name.endswith("_conv")]
    assert len(convs) == 13 and model.name == "vgg16"
    assert model.get_layer("head_fc1").units == 64  # 512 at 1/8 width


def test_batch_size_1_builds_fixed_batch_deployment_graph():
    model = build_model("vgg19_v10", num_classes=10, width_multiplier=0.125, batch_size=1)
    assert model.inputs[0].shape == (1, 32, 32, 3)
    assert model.outputs[0].shape == (1, 10)


def test_dead_batch_norm_parameters_are_counted_but_cost_no_flops():
    # VGG-05: squeeze BN(sq) is dead; sq = 16/8 = 2 at width 16 -> 4 trainable params per slot.
    model = build_model("vgg19_v05", num_classes=10, width_multiplier=0.125)
    dead = model.get_layer("s1_b1_squeeze_dead_bn")
    assert sum(int(np.prod(w.shape)) for w in dead.trainable_weights) == 2 * 2
    costs = {c.name: c for c in metrics.layer_costs(model)}
    assert costs["s1_b1_squeeze_dead_bn"].flops == 0


def test_width_multiplier_scales_every_stage():
    half = build_model("vgg19_v06", num_classes=10, width_multiplier=0.5)
    # v06 params are ~quadratic in width: 473,778 at 1.0 (reference); well under half at 0.5.
    assert metrics.count_params(half) < REFERENCE["vgg19_v06"]["10"]["params"] // 2
    assert half.get_layer("s5_b4_concat").output.shape[-1] == 256


def test_combination_not_in_paper_builds():
    techniques = VggTechniques(unit="dws", head="conv", se=True)
    model = vgg(techniques, num_classes=7, width_multiplier=0.125, name="vgg19_custom")
    assert model.name == "vgg19_custom"
    assert model.output.shape[-1] == 7
    assert model.get_layer("s3_b2_se_scale") is not None


def test_unknown_unit_is_a_value_error_listing_kinds():
    with pytest.raises(ValueError, match="unit='firee'.*fire_dws"):
        VggTechniques(unit="firee")
    with pytest.raises(ValueError, match=r"se='yes'; expected one of \(False, True\)"):
        VggTechniques(se="yes")


# ------------------------------------------------------------------------------- DiCE unit

def _model(shape, fn, **kw):
    x = keras.Input(shape)
    return keras.Model(x, fn(x, name="d", **kw))


def test_dice_unit_params_follow_the_spatial_size():
    # DICE(C=8, o=32): 9C + 9H + 9W + 2*3C + 3C + 2C + C*(C//4) + (C//4)*o + 9*(C/8)*o + 2o
    # = 72 + 9H + 9W + 48 + 24 + 16 + 16 + 64 + 288 + 64 = 592 + 9(H + W).
    for hw in (32, 8):
        model = _model((hw, hw, 8), dice_unit, filters=32)
        assert metrics.count_params(model) == 592 + 18 * hw
        assert model.output.shape[1:] == (hw, hw, 32)


def test_strided_dice_unit_params():
    # SDICE(c=64, o=22): left 9*64 + 2*64 + 64*11 + 2*11 = 1,430; right DICE(64, 11) at 16x16:
    # 576 + 144 + 144 + 384 + 192 + 128 + 64*16 + 16*11 + 9*64*11 + 22 = 9,126.
    model = _model((32, 32, 64), strided_dice_unit, filters=22)
    assert metrics.count_params(model) == 1430 + 9126
    assert model.output.shape[1:] == (16, 16, 22)


def test_dice_unit_refuses_unknown_spatial_size():
    with pytest.raises(ValueError, match="static spatial size"):
        _model((None, None, 8), dice_unit, filters=8)


def _torch_dw3x3(planes, kernels):
    """PyTorch depthwise 3x3, pad 1: planes (G, P, Q), kernels (G, 3, 3) -> (G, P, Q)."""
    g, p, q = planes.shape
    padded = np.pad(planes, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros_like(planes)
    for i in range(3):
        for j in range(3):
            out += kernels[:, i, j, None, None] * padded[:, i:i + p, j:j + q]
    return out


def test_dice_height_and_width_wise_convs_match_pytorch_transposes():
    h, w, c = 5, 6, 4
    x = np.random.default_rng(1).normal(size=(1, h, w, c)).astype("float32")
    model = _model((h, w, c), dice_unit, filters=4)
    for op in ("dw_h", "dw_w"):
        kernel = np.random.default_rng(2).normal(size=model.get_layer(f"d_{op}").weights[0].shape)
        model.get_layer(f"d_{op}").set_weights([kernel.astype("float32")])
    probe = keras.Model(model.input, [model.get_layer("d_dw_h_out").output,
                                      model.get_layer("d_dw_w_out").output])
    got_h, got_w = (t.numpy()[0] for t in probe(x))
    xt = x[0].transpose(2, 0, 1)  # PyTorch (C, H, W)
    k_h = model.get_layer("d_dw_h").get_weights()[0][:, :, :, 0].transpose(2, 0, 1)  # (H, 3, 3)
    k_w = model.get_layer("d_dw_w").get_weights()[0][:, :, :, 0].transpose(2, 0, 1)  # (W, 3, 3)
    # height-wise: x.transpose(1, 2) -> (H, C, W), H groups; transpose back -> (C, H, W)
    want_h = _torch_dw3x3(xt.transpose(1, 0, 2), k_h).transpose(1, 0, 2)
    # width-wise: x.transpose(1, 3) -> (W, H, C), W groups; transpose back -> (C, H, W)
    want_w = _torch_dw3x3(xt.transpose(2, 1, 0), k_w).transpose(2, 1, 0)
    np.testing.assert_allclose(got_h, want_h.transpose(1, 2, 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_w, want_w.transpose(1, 2, 0), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_dice_units_convert_to_integer_only_tflite():
    from tfopt.tflite.convert import convert_int8

    x = keras.Input((8, 8, 8), batch_size=1)
    y = strided_dice_unit(dice_unit(x, filters=8, name="a"), filters=8, name="b")
    model = keras.Model(x, y)
    rep = np.random.default_rng(0).normal(size=(4, 8, 8, 8)).astype("float32")
    result = convert_int8(model, rep, num_calibration_samples=4)  # raises on any float op
    ops = {op.name for op in result.info.operators}
    assert {"TRANSPOSE", "DEPTHWISE_CONV_2D", "PAD", "MUL", "AVERAGE_POOL_2D"} <= ops
