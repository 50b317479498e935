"""Tests of the ResNet-101 family: technique sets, stage tables, tiny builds, names.

The exact parameter / FLOP counts against the reference are in test_reference_counts.py.
"""

import numpy as np
import pytest

from tfopt import metrics
from tfopt.blocks.dead import DeadParameters
from tfopt.core.techniques import ResNetTechniques
from tfopt.models import build_model, get_variant, list_variants
from tfopt.models.resnet import _torchvision_layer, resnet, stage_table
from tfopt.models.sizing import scale_channels

RESNET_IDS = [v for v in list_variants() if get_variant(v).base == "resnet101"]


def _layout(variant_id, width=1.0):
    return stage_table(get_variant(variant_id).techniques, width)


def test_registry_lists_the_15_resnet_variants_in_order():
    assert RESNET_IDS == [f"resnet101_v{i:02d}" for i in range(1, 16)]
    assert get_variant("resnet101_v01").techniques == ResNetTechniques()


# Every registered variant (ResNet-101 ones included) is built and run at tiny width in
# tests/test_models_zoo.py.


def test_batch_size_1_builds_the_fixed_batch_graph():
    m = resnet(get_variant("resnet101_v13").techniques, num_classes=10, width_multiplier=0.125,
               batch_size=1, max_blocks_per_stage=1)
    assert m.input_shape == (1, 32, 32, 3) and m.output_shape == (1, 10)


def test_baseline_stage_table_is_torchvision_resnet101():
    layout = _layout("resnet101_v01")
    assert layout.stem == 64 and layout.neck is None and layout.fc_bias
    per_stage = [sum(r.stage == s for r in layout.blocks) for s in (1, 2, 3, 4)]
    assert per_stage == [3, 4, 23, 3]
    firsts = [r for r in layout.blocks if r.index == 1]
    assert [(r.cin, r.width, r.cout, r.stride, r.downsample) for r in firsts] == [
        (64, 64, 256, 1, True), (256, 128, 512, 2, True), (512, 256, 1024, 2, True),
        (1024, 512, 2048, 2, True)]
    assert not any(r.downsample for r in layout.blocks if r.index > 1)


def test_resnet50_is_the_baseline_at_depth_3_4_6_3():
    layout = stage_table(get_variant("resnet50").techniques, base="resnet50")
    assert [sum(r.stage == s for r in layout.blocks) for s in (1, 2, 3, 4)] == [3, 4, 6, 3]
    assert get_variant("resnet50").techniques == ResNetTechniques()
    with pytest.raises(ValueError, match="base='resnet18'; expected one of"):
        stage_table(ResNetTechniques(), base="resnet18")


def test_inverted_plan_downsamples_at_the_end_of_each_stage():
    rows = _layout("resnet101_v06").blocks
    strided = [(r.name, r.cin, r.cout) for r in rows if r.stride == 2]
    assert strided == [("s1_b3", 10, 22), ("s2_b4", 22, 42), ("s3_b23", 42, 86)]
    assert (rows[-1].cin, rows[-1].cout, rows[-1].downsample) == (86, 512, True)


def test_optim_gap_drops_the_last_block():
    v07, v08, v11 = _layout("resnet101_v07"), _layout("resnet101_v08"), _layout("resnet101_v11")
    assert len(v08.blocks) == len(v07.blocks) - 1
    assert (v08.tail_conv.cin, v08.tail_conv.cout) == (86, 512)  # 08: conv 86 -> 512
    assert v11.tail_conv is None and sum(r.stage == 4 for r in v11.blocks) == 2


def test_reduced_early_channels():
    v09, v11 = _layout("resnet101_v09"), _layout("resnet101_v11")
    assert v09.stem == 10 and (v09.blocks[0].cin, v09.blocks[0].cout) == (10, 10)
    assert v09.blocks[0].downsample  # 09 keeps its 10 -> 10 shortcut conv
    assert v11.stem == 16 and v11.blocks[0].cout == 10


def test_grouped_ghost_plan_rounds_widths_to_multiples_of_8():
    layout = _layout("resnet101_v13")
    assert sorted({r.cout for r in layout.blocks}) == [16, 24, 40, 88]
    assert [r.width for r in layout.blocks if r.index == 1] == [64, 64, 128, 512]


def test_scale_channels_keeps_exact_multiples():
    for v in (10, 22, 42, 86, 64, 128, 2048):
        assert scale_channels(v, divisor=2 if v % 2 == 0 else 1) == v
    assert [scale_channels(v, divisor=8) for v in (10, 22, 42, 86)] == [16, 24, 40, 88]
    assert [scale_channels(v, 0.125, divisor=8, minimum=16) for v in (64, 128, 256, 512)] == [
        16, 16, 32, 64]


@pytest.mark.parametrize("variant, divisor", [("resnet101_v05", 4), ("resnet101_v13", 8)])
@pytest.mark.parametrize("width", [0.3, 0.55, 0.7])
def test_odd_width_multipliers_keep_grouped_widths_divisible(variant, divisor, width):
    layout = _layout(variant, width)
    assert layout.stem % divisor == 0
    assert all(r.width % divisor == 0 and r.cout % divisor == 0 for r in layout.blocks)


def test_odd_width_multiplier_builds_grouped_convs():
    m = resnet(get_variant("resnet101_v14").techniques, num_classes=3, width_multiplier=0.3,
               max_blocks_per_stage=2)
    grouped = [layer for layer in m.layers if getattr(layer, "groups", 1) > 1]
    assert grouped and all(layer.input_shape[-1] % layer.groups == 0
                           and layer.filters % layer.groups == 0 for layer in grouped)
    assert m.output_shape == (None, 3)


def test_width_multiplier_shrinks_every_stage():
    full, half = _layout("resnet101_v10"), _layout("resnet101_v10", 0.5)
    assert half.stem == 32
    assert all(h.width < f.width and h.cout <= f.cout for h, f in zip(half.blocks, full.blocks))


def test_techniques_are_present_only_when_on():
    def shallow(variant):  # every block kind of the variant, at most 2 blocks per stage
        m = resnet(get_variant(variant).techniques, num_classes=10, width_multiplier=0.125,
                   max_blocks_per_stage=2)
        return [layer.name for layer in m.layers]
    v12, v11 = shallow("resnet101_v12"), shallow("resnet101_v11")
    # 12: SE in all 3 + 4 + 23 + 2 ghost blocks (the reference has 64 SE Linear layers): the
    # full layout has 32 blocks and every block that is built carries one SE.
    assert len(_layout("resnet101_v12").blocks) == 32
    n_blocks = len(stage_table(get_variant("resnet101_v12").techniques, 0.125, 2).blocks)
    assert sum(n.endswith("_se_scale") for n in v12) == n_blocks
    assert not any("_se_" in n for n in v11) and not any("shuffle" in n for n in v11)


def test_dice_variant_owns_the_reference_dead_parameters():
    m = resnet(get_variant("resnet101_v15").techniques, num_classes=10, width_multiplier=0.125,
               max_blocks_per_stage=1)  # the first (downsampling) block of each stage
    dead = [layer for layer in m.layers if isinstance(layer, DeadParameters)]
    assert [d.name for d in dead] == [f"s{s}_b1_unused_dw" for s in (1, 2, 3, 4)]
    assert all(c.flops == 0 for c in metrics.layer_costs(m) if c.kind == "DeadParameters")


@pytest.mark.parametrize("techniques", [
    ResNetTechniques(stem="separable", block="inverted", attention="se"),
    ResNetTechniques(conv3x3="factorized", pointwise="grouped_shuffle", attention="se",
                     head="optim_gap"),
    ResNetTechniques(stem="factorized", block="dice", head="conv", early_channels="reduced"),
    ResNetTechniques(block="fire", head="optim_gap"),
], ids=lambda t: t.describe())
def test_combinations_not_in_the_paper_build(techniques):
    m = resnet(techniques, num_classes=7, width_multiplier=0.125, max_blocks_per_stage=2)
    assert m.output_shape == (None, 7)
    assert m(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 7)


@pytest.mark.parametrize("kwargs, match", [
    ({"block": "resnext"}, r"block='resnext'; expected one of \('bottleneck'"),
    ({"block": "ghost", "conv3x3": "depthwise"}, "conv3x3='depthwise' needs block"),
    ({"block": "fire", "pointwise": "grouped_shuffle"}, "pointwise='grouped_shuffle' needs"),
    ({"block": "dice", "attention": "se"}, "attention='se' needs block"),
    ({"head": "mlp"}, "head='mlp'"),
])
def test_invalid_technique_sets_are_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNetTechniques(**kwargs)


def test_describe_lists_non_default_choices():
    assert ResNetTechniques().describe() == "baseline"
    assert get_variant("resnet101_v05").techniques.describe() == (
        "stem=separable, conv3x3=depthwise, pointwise=grouped_shuffle")


def test_unknown_variant_suggests_close_ids():
    with pytest.raises(ValueError, match="resnet101_v05"):
        build_model("resnet101_v5", num_classes=10)


def test_only_torchvision_own_convs_get_kaiming_init():
    class L:  # a stand-in with just a name
        def __init__(self, name):
            self.name = name
    names = ["stem_conv", "s1_b1_conv1", "s1_b1_conv2", "s4_b3_conv3",
             "s2_b1_shortcut_conv", "s1_b1_conv2_nx1", "head_fc"]
    pick = {v: [n for n in names if _torchvision_layer(get_variant(v).techniques)(L(n))]
            for v in ("resnet101_v01", "resnet101_v03", "resnet101_v05", "resnet101_v10")}
    assert pick["resnet101_v01"] == names[1:5]  # the CIFAR stem and the FC are swapped in
    assert pick["resnet101_v03"] == ["s1_b1_conv1", "s4_b3_conv3", "s2_b1_shortcut_conv"]
    assert pick["resnet101_v05"] == [] and pick["resnet101_v10"] == []


@pytest.mark.parametrize("variant", RESNET_IDS)
def test_shallow_twin_keeps_every_shape_transition(variant):
    # max_blocks_per_stage=3 keeps each stage's first and last two blocks: every distinct
    # (cin, width, cout, stride, downsample) row of the paper's 3/4/23/3 layout survives.
    t = get_variant(variant).techniques
    full, shallow = stage_table(t), stage_table(t, max_blocks_per_stage=3)
    shape = lambda r: (r.cin, r.width, r.cout, r.stride, r.downsample)  # noqa: E731
    assert {shape(r) for r in shallow.blocks} == {shape(r) for r in full.blocks}
    assert set(shallow.blocks) <= set(full.blocks)
    assert len(shallow.blocks) <= 12 and shallow.tail_conv == full.tail_conv
