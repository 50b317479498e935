"""ResNet-101 (CIFAR) and the paper's 15 ResNet-101 variants as technique sets.

Paper: Sobolewski & Szyc, "Architecture Optimization Techniques for Convolutional Neural
Networks", ResNet-101 tables, columns 1-15. Spec: reference-variants.md §1-2 (blocks, channel
plans), §8 (FLOP rules). The network is the torchvision skeleton at 32x32 input: stem (no
max-pool) -> four stages -> head. A `ResNetTechniques` picks the stem, the block and its channel
plan, the pointwise / 3x3 / attention options and the head; `stage_table` turns it into one row
per block, and `resnet101` builds the rows. The paper's variants are the rows of `VARIANTS`.

Reproduced exactly at width 1 on 32x32x3 (trainable params and fvcore FLOPs of the authors'
PyTorch code, tests/test_reference_counts.py): all 15 variants x {10, 100} classes.

Layer names: `stem_*`, `stage{s}_block{b}_<op>` (s, b 1-based), `head_*`.
"""

from __future__ import annotations

import dataclasses
import re

from tfopt._keras import keras, layers
from tfopt.blocks.bottleneck import bottleneck, dice_bottleneck
from tfopt.blocks.conv import (
    batch_norm,
    conv2d,
    conv_bn_act,
    factorized_conv,
    pytorch_init,
    separable_conv,
)
from tfopt.blocks.fire import fire_residual
from tfopt.blocks.ghost import ghost_bottleneck
from tfopt.blocks.heads import conv_head, gap_fc_head
from tfopt.blocks.inverted import inverted_residual
from tfopt.models.registry import Variant
from tfopt.models.techniques import ResNetTechniques

SHUFFLE_GROUPS = 4  # groups of the grouped 1x1 convs (ShuffleNet bottleneck, GM-shuffle)
BOTTLENECK_EXPANSION = 4


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a channel plan.

    Attributes:
      blocks: Number of blocks.
      width: Hidden width of the blocks (bottleneck width, IR/ghost expansion, fire squeeze).
      out: Channels the blocks keep inside the stage (the residual width).
      stride: The stage's spatial stride (on its first block, or on its last for `exit_out`).
      first_width: Hidden width of the first block if it differs (ghost/DiCE plan).
      exit_out: Inverted plan: the last block widens to this and carries the stride
        (ResNet-06..09 downsample at the end of a stage).
    """

    blocks: int
    width: int
    out: int
    stride: int
    first_width: int | None = None
    exit_out: int | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """The channel plan of a block family (reference-variants.md §2, width 1)."""

    stages: tuple[Stage, ...]
    stem: int  # stem output channels
    reduced_stem: int  # stem with early_channels="reduced"
    neck: int | None  # 1x1 conv + BN + ReLU6 widening the features before GAP -> FC
    fc_bias: bool


_BOTTLENECK_PLAN = Plan(
    stages=(Stage(3, 64, 256, 1), Stage(4, 128, 512, 2), Stage(23, 256, 1024, 2),
            Stage(3, 512, 2048, 2)),
    stem=64, reduced_stem=16, neck=None, fc_bias=True)
_INVERTED_PLAN = Plan(  # 06: IR(64,64,10,1,ds), IR(10,64,10), IR(10,64,22,2,ds); ...
    stages=(Stage(3, 64, 10, 2, exit_out=22), Stage(4, 128, 22, 2, exit_out=42),
            Stage(23, 256, 42, 2, exit_out=86), Stage(3, 512, 86, 1, exit_out=512)),
    stem=64, reduced_stem=10, neck=2048, fc_bias=True)
_GHOST_PLAN = Plan(  # 10: GB(64,64,10,1,ds), GB(10,64,10)x2; GB(10,64,22,2,ds), GB(22,128,22)x3
    stages=(Stage(3, 64, 10, 1, first_width=64), Stage(4, 128, 22, 2, first_width=64),
            Stage(23, 256, 42, 2, first_width=128), Stage(3, 512, 86, 2, first_width=512)),
    stem=64, reduced_stem=16, neck=None, fc_bias=False)
PLANS = {"bottleneck": _BOTTLENECK_PLAN, "fire": _BOTTLENECK_PLAN, "inverted": _INVERTED_PLAN,
         "ghost": _GHOST_PLAN, "dice": _GHOST_PLAN}


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One row of the stage table: a block `stage{stage}_block{index}`."""

    stage: int
    index: int
    cin: int
    width: int
    cout: int
    stride: int
    downsample: bool

    @property
    def name(self) -> str:
        return f"stage{self.stage}_block{self.index}"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Everything `resnet101` builds, resolved from techniques and width multiplier."""

    stem: int
    blocks: tuple[BlockSpec, ...]
    tail_conv: BlockSpec | None  # optim_gap: 1x1 conv replacing a dropped widening block
    neck: int | None
    fc_bias: bool


def make_divisible(value: float, divisor: int) -> int:
    """Round `value` to a multiple of `divisor`, >= divisor and >= 90% of value (MobileNet rule).

    Exact multiples are unchanged. With divisor 8 this maps the ghost plan's 10/22/42/86 to the
    16/24/40/88 of the grouped-shuffle variants 13/14.
    """
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def _divisor(t: ResNetTechniques) -> int:
    grouped = t.pointwise == "grouped_shuffle"
    if t.block == "ghost":
        return 2 * SHUFFLE_GROUPS if grouped else 2  # ghost halves: cout/2 split in groups
    if t.block == "dice":
        return 2  # the strided DiCE concatenates two halves
    return SHUFFLE_GROUPS if grouped else 1


def stage_table(techniques: ResNetTechniques, width_multiplier: float = 1.0,
                max_blocks_per_stage: int | None = None) -> Layout:
    """Resolve a technique set into the block rows `resnet101` builds.

    Every channel count is scaled by `width_multiplier` and rounded with `make_divisible` so
    that grouped convs and shuffles divide evenly (the class count is never scaled).
    `max_blocks_per_stage` (None = the paper's 3/4/23/3) keeps only each stage's first block and
    its last `n - 1` blocks: every block kind, downsampling position and shape transition stays,
    the identity-shaped repeats go (a shallow twin for CPU tests and smoke runs).
    """
    if max_blocks_per_stage is not None and max_blocks_per_stage < 1:
        raise ValueError(f"max_blocks_per_stage={max_blocks_per_stage!r}; expected None or >= 1")
    t, plan, d = techniques, PLANS[techniques.block], _divisor(techniques)

    def ch(v: int) -> int:
        return make_divisible(v * width_multiplier, d)

    stem = ch(plan.reduced_stem if t.early_channels == "reduced" else plan.stem)
    rows, cin = [], stem
    for s, st in enumerate(plan.stages, start=1):
        for b in range(1, st.blocks + 1):
            first, last = b == 1, b == st.blocks
            if max_blocks_per_stage and not first and b <= st.blocks - max_blocks_per_stage + 1:
                continue  # an identity-shaped repeat (cin == cout, stride 1)
            width = st.first_width if (first and st.first_width) else st.width
            if st.exit_out is not None:
                cout, stride = (st.exit_out, st.stride) if last else (st.out, 1)
            else:
                cout, stride = st.out, (st.stride if first else 1)
            width = ch(width)
            cout = BOTTLENECK_EXPANSION * width if t.block in ("bottleneck", "fire") else ch(cout)
            # torchvision builds the first block's downsample even when shapes match (09, 13)
            ds = (s == 1 and first) or cin != cout or stride != 1
            rows.append(BlockSpec(s, b, cin, width, cout, stride, ds))
            cin = cout
    tail = None
    if t.head == "optim_gap":  # "optimisation before GAP": drop the last block
        dropped = rows.pop()
        if dropped.cout != dropped.cin:  # it widened the map: a plain 1x1 conv does that now
            tail = dropped
    neck = ch(plan.neck) if plan.neck else None
    return Layout(stem, tuple(rows), tail, neck, plan.fc_bias)


def _stem(x, kind: str, filters: int):
    if kind == "conv3x3":
        x = conv2d(x, filters=filters, kernel_size=3, name="stem_conv")
    elif kind == "factorized":
        x = factorized_conv(x, filters=filters, name="stem_conv")
    else:
        x = separable_conv(x, filters=filters, name="stem")
    x = batch_norm(x, name="stem_bn")
    return layers.ReLU(name="stem_relu")(x)


def _block(x, row: BlockSpec, t: ResNetTechniques):
    se = t.attention == "se"
    grouped = t.pointwise == "grouped_shuffle"
    common = {"stride": row.stride, "downsample": row.downsample, "name": row.name}
    if t.block == "bottleneck":
        return bottleneck(x, width=row.width, conv=t.conv3x3,
                          groups=SHUFFLE_GROUPS if grouped else 1, se=se, **common)
    if t.block == "fire":
        return fire_residual(x, squeeze=row.width, expand1x1=row.cout // 2,
                             expand3x3=row.cout // 2, **common)
    if t.block == "inverted":
        return inverted_residual(x, expand=row.width, filters=row.cout, se=se, **common)
    if t.block == "ghost":
        # Reference quirk: 10-12 build the strided dw whenever the block downsamples, the
        # grouped-shuffle variants 13/14 only when the stride is > 1 (reference-variants.md §1).
        dw = row.stride > 1 if grouped else row.downsample
        return ghost_bottleneck(x, expand=row.width, filters=row.cout, downsample_dw=dw, se=se,
                                groups=SHUFFLE_GROUPS if grouped else 1, **common)
    # Reference quirk: every downsampling DiCE block owns an unused dw 3x3 + BN.
    return dice_bottleneck(x, expand=row.width, filters=row.cout, dead_dw=row.downsample,
                           **common)


def resnet101(techniques: ResNetTechniques | None = None, *, num_classes: int,
              input_shape=(32, 32, 3), width_multiplier: float = 1.0,
              batch_size: int | None = None, name: str = "resnet101",
              max_blocks_per_stage: int | None = None):
    """Build a ResNet-101 (CIFAR) from a technique set; outputs logits.

    Args:
      techniques: The technique set; None is the paper's baseline (variant 01).
      num_classes: Classifier outputs.
      input_shape: (H, W, C); the reference uses 32x32x3.
      width_multiplier: Scales every channel count (see `stage_table`).
      batch_size: None for a training graph; 1 for the fixed-batch deployment graph.
      name: Model name.
      max_blocks_per_stage: None for the paper's depth; n keeps each stage's first and last
        n - 1 blocks (see `stage_table`), for tests and smoke runs.

    Returns:
      A functional `tf_keras.Model`.
    """
    techniques = ResNetTechniques() if techniques is None else techniques
    layout = stage_table(techniques, width_multiplier, max_blocks_per_stage)
    inputs = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = _stem(inputs, techniques.stem, layout.stem)
    for row in layout.blocks:
        x = _block(x, row, techniques)
    if layout.tail_conv is not None:
        x = conv_bn_act(x, filters=layout.tail_conv.cout, kernel_size=1, act="relu6",
                        name=f"{layout.tail_conv.name}_conv")
    if techniques.head == "fc":
        if layout.neck:
            x = conv_bn_act(x, filters=layout.neck, kernel_size=1, act="relu6", name="head_neck")
        outputs = gap_fc_head(x, num_classes=num_classes, use_bias=layout.fc_bias, name="head")
    else:  # no FC: the classifier conv takes the neck's place
        outputs = conv_head(x, num_classes=num_classes, use_bias=False, bn=True, act="relu6",
                            name="head")
    model = keras.Model(inputs, outputs, name=name)
    return pytorch_init(model, kaiming=_torchvision_layer(techniques))


def _torchvision_layer(t: ResNetTechniques):
    """Which convs are torchvision's own (Kaiming-normal fan_out init) rather than swapped in.

    The reference builds `torchvision.models.resnet101` and then replaces modules; replaced
    modules (the CIFAR stem, every non-bottleneck block, factorised/depthwise 3x3 convs, the
    shuffle bottleneck) keep PyTorch's default init (reference-variants.md §0).
    """
    if t.block != "bottleneck" or t.pointwise != "dense":
        return lambda layer: False
    ops = "conv1|conv3|shortcut_conv" + ("|conv2" if t.conv3x3 == "standard" else "")
    pattern = re.compile(rf"^stage\d+_block\d+_({ops})$")
    return lambda layer: bool(pattern.match(layer.name))


def _build(variant: Variant, *, num_classes, input_shape, width_multiplier, batch_size):
    return resnet101(variant.techniques, num_classes=num_classes, input_shape=input_shape,
                     width_multiplier=width_multiplier, batch_size=batch_size, name=variant.id)


_T = ResNetTechniques
_SEP = {"stem": "separable"}
_PAPER_ROWS = (  # (column, reference file, technique set); reference-variants.md §2
    (1, "01_baseline", _T()),
    (2, "02_fireModules", _T(block="fire")),
    (3, "03_3x1_1x3_conv", _T(stem="factorized", conv3x3="factorized")),
    (4, "04_DWSconv", _T(**_SEP, conv3x3="depthwise")),
    (5, "05_GPointwise_shuffle", _T(**_SEP, conv3x3="depthwise", pointwise="grouped_shuffle")),
    (6, "06_invResBottleneck", _T(**_SEP, block="inverted")),
    (7, "07_invResB_noFC", _T(**_SEP, block="inverted", head="conv")),
    (8, "08_invResB_optimGAP", _T(**_SEP, block="inverted", head="optim_gap")),
    (9, "09_invResB_lessC", _T(**_SEP, block="inverted", head="optim_gap",
                               early_channels="reduced")),
    (10, "10_invResB_ghostBlocks", _T(**_SEP, block="ghost")),
    (11, "11_invResB_ghostB_small", _T(**_SEP, block="ghost", head="optim_gap",
                                       early_channels="reduced")),
    (12, "12_invResB_ghostB_small_SE", _T(**_SEP, block="ghost", head="optim_gap",
                                          early_channels="reduced", attention="se")),
    (13, "13_invResB_ghostB_small_shuffle", _T(**_SEP, block="ghost", head="optim_gap",
                                               early_channels="reduced",
                                               pointwise="grouped_shuffle")),
    (14, "14_invResB_ghostB_small_shuffle_SE", _T(**_SEP, block="ghost", head="optim_gap",
                                                  early_channels="reduced",
                                                  pointwise="grouped_shuffle", attention="se")),
    (15, "15_invResB_DiCE", _T(**_SEP, block="dice")),
)

VARIANTS = tuple(
    Variant(id=f"resnet101_v{col:02d}", base="resnet101", techniques=t,
            paper_ref=f"Sobolewski & Szyc, ResNet-101 table column {col} "
                      f"(reference ResNet/{ref}.py)",
            build=_build)
    for col, ref, t in _PAPER_ROWS)
