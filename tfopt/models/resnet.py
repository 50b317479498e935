"""The CIFAR ResNet builder: ResNet-101 (the paper's 15 variants) and ResNet-50 (OCNNA base).

Paper: Sobolewski & Szyc, "Architecture Optimization Techniques for Convolutional Neural
Networks", ResNet-101 tables, columns 1-15. Spec: reference-variants.md §1-2 (blocks, channel
plans), §8 (FLOP rules). The network is the torchvision skeleton at 32x32 input: stem (no
max-pool) -> four stages -> head. A `ResNetTechniques` picks the stem, the block and its channel
plan, the pointwise / 3x3 / attention options and the head; the base picks the blocks per stage
(`tfopt.core.variants.RESNET_DEPTHS`: 3/4/23/3 for ResNet-101, 3/4/6/3 for ResNet-50);
`stage_table` turns both into one row per block, and `resnet` builds the rows. The variants are
rows of `tfopt.core.variants`.

Reproduced exactly at width 1 on 32x32x3 (trainable params and fvcore FLOPs of the authors'
PyTorch code, tests/test_reference_counts.py): all 15 variants x {10, 100} classes; ResNet-50
is the baseline technique set at depth 3/4/6/3 (23,520,842 trainable, tests/test_ocnna_bases.py).

Layer names (the zoo's one scheme): `stem_*`, `s{stage}_b{block}_<op>` (1-based), `head_*`.
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
from tfopt.core.techniques import ResNetTechniques
from tfopt.core.variants import RESNET_DEPTHS
from tfopt.models.sizing import scale_channels

SHUFFLE_GROUPS = 4  # groups of the grouped 1x1 convs (ShuffleNet bottleneck, GM-shuffle)
BOTTLENECK_EXPANSION = 4


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a channel plan.

    Attributes:
      width: Hidden width of the blocks (bottleneck width, IR/ghost expansion, fire squeeze).
      out: Channels the blocks keep inside the stage (the residual width).
      stride: The stage's spatial stride (on its first block, or on its last for `exit_out`).
      first_width: Hidden width of the first block if it differs (ghost/DiCE plan).
      exit_out: Inverted plan: the last block widens to this and carries the stride
        (ResNet-06..09 downsample at the end of a stage).
    """

    width: int
    out: int
    stride: int
    first_width: int | None = None
    exit_out: int | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """The channel plan of a block family (reference-variants.md §2, width 1); the number of
    blocks per stage comes from the base (RESNET_DEPTHS)."""

    stages: tuple[Stage, ...]
    stem: int  # stem output channels
    reduced_stem: int  # stem with early_channels="reduced"
    neck: int | None  # 1x1 conv + BN + ReLU6 widening the features before GAP -> FC
    fc_bias: bool


_BOTTLENECK_PLAN = Plan(
    stages=(Stage(64, 256, 1), Stage(128, 512, 2), Stage(256, 1024, 2),
            Stage(512, 2048, 2)),
    stem=64, reduced_stem=16, neck=None, fc_bias=True)
_INVERTED_PLAN = Plan(  # 06: IR(64,64,10,1,ds), IR(10,64,10), IR(10,64,22,2,ds); ...
    stages=(Stage(64, 10, 2, exit_out=22), Stage(128, 22, 2, exit_out=42),
            Stage(256, 42, 2, exit_out=86), Stage(512, 86, 1, exit_out=512)),
    stem=64, reduced_stem=10, neck=2048, fc_bias=True)
_GHOST_PLAN = Plan(  # 10: GB(64,64,10,1,ds), GB(10,64,10)x2; GB(10,64,22,2,ds), GB(22,128,22)x3
    stages=(Stage(64, 10, 1, first_width=64), Stage(128, 22, 2, first_width=64),
            Stage(256, 42, 2, first_width=128), Stage(512, 86, 2, first_width=512)),
    stem=64, reduced_stem=16, neck=None, fc_bias=False)
PLANS = {"bottleneck": _BOTTLENECK_PLAN, "fire": _BOTTLENECK_PLAN, "inverted": _INVERTED_PLAN,
         "ghost": _GHOST_PLAN, "dice": _GHOST_PLAN}


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One row of the stage table: a block `s{stage}_b{index}`."""

    stage: int
    index: int
    cin: int
    width: int
    cout: int
    stride: int
    downsample: bool

    @property
    def name(self) -> str:
        return f"s{self.stage}_b{self.index}"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Everything `resnet` builds, resolved from techniques and width multiplier."""

    stem: int
    blocks: tuple[BlockSpec, ...]
    tail_conv: BlockSpec | None  # optim_gap: 1x1 conv replacing a dropped widening block
    neck: int | None
    fc_bias: bool


def _divisor(t: ResNetTechniques) -> int:
    grouped = t.pointwise == "grouped_shuffle"
    if t.block == "ghost":
        return 2 * SHUFFLE_GROUPS if grouped else 2  # ghost halves: cout/2 split in groups
    if t.block == "dice":
        return 2  # the strided DiCE concatenates two halves
    return SHUFFLE_GROUPS if grouped else 1


def stage_table(techniques: ResNetTechniques, width_multiplier: float = 1.0,
                max_blocks_per_stage: int | None = None, *, base: str = "resnet101") -> Layout:
    """Resolve a technique set into the block rows `resnet` builds.

    Every channel count is scaled by `width_multiplier` and rounded with `scale_channels` so
    that grouped convs and shuffles divide evenly (the class count is never scaled).
    `base` picks the blocks per stage (RESNET_DEPTHS). `max_blocks_per_stage` (None = all)
    keeps only each stage's first block and its last `n - 1` blocks: every block kind,
    downsampling position and shape transition stays, the identity-shaped repeats go (a shallow
    twin for CPU tests and smoke runs).
    """
    if max_blocks_per_stage is not None and max_blocks_per_stage < 1:
        raise ValueError(f"max_blocks_per_stage={max_blocks_per_stage!r}; expected None or >= 1")
    if base not in RESNET_DEPTHS:
        raise ValueError(f"base={base!r}; expected one of {tuple(RESNET_DEPTHS)}")
    t, plan, d = techniques, PLANS[techniques.block], _divisor(techniques)

    def ch(v: int) -> int:
        return scale_channels(v, width_multiplier, divisor=d)

    stem = ch(plan.reduced_stem if t.early_channels == "reduced" else plan.stem)
    rows, cin = [], stem
    for s, (st, n_blocks) in enumerate(zip(plan.stages, RESNET_DEPTHS[base]), start=1):
        for b in range(1, n_blocks + 1):
            first, last = b == 1, b == n_blocks
            if max_blocks_per_stage and not first and b <= n_blocks - max_blocks_per_stage + 1:
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


def resnet(techniques: ResNetTechniques | None = None, *, num_classes: int,
           input_shape=(32, 32, 3), width_multiplier: float = 1.0,
           batch_size: int | None = None, base: str = "resnet101", name: str | None = None,
           max_blocks_per_stage: int | None = None):
    """Build a CIFAR ResNet (101 or 50) from a technique set; outputs logits.

    Args:
      techniques: The technique set; None is the paper's baseline (variant 01).
      num_classes: Classifier outputs.
      input_shape: (H, W, C); the reference uses 32x32x3.
      width_multiplier: Scales every channel count (see `stage_table`).
      batch_size: None for a training graph; 1 for the fixed-batch deployment graph.
      base: "resnet101" or "resnet50" (blocks per stage, RESNET_DEPTHS).
      name: Model name; None names it `base`.
      max_blocks_per_stage: None for the paper's depth; n keeps each stage's first and last
        n - 1 blocks (see `stage_table`), for tests and smoke runs.

    Returns:
      A functional `tf_keras.Model`.
    """
    techniques = ResNetTechniques() if techniques is None else techniques
    layout = stage_table(techniques, width_multiplier, max_blocks_per_stage, base=base)
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
    model = keras.Model(inputs, outputs, name=name or base)
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
    pattern = re.compile(rf"^s\d+_b\d+_({ops})$")
    return lambda layer: bool(pattern.match(layer.name))
