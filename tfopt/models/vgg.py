"""The VGG builder: VGG-19 (the paper's 13 variants) and VGG-16 (OCNNA base).

Paper: Sobolewski & Szyc, "Architecture Optimization Techniques for Convolutional Neural
Networks", VGG table columns 1-13. Spec: reference-variants.md §3 (units and heads), §8 (FLOP
rules), §10 (quirks). The network is a stage table (`tfopt.core.variants.VGG_BASES`: VGG-19 "E"
= ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)), VGG-16 "D" with 3 slots in stages 3-5)
with a 2×2/2 max-pool after every stage (the last one only with `final_pool`), in which every
conv slot becomes one unit of `tfopt.blocks.vgg_units`. A variant is a row: base +
`VggTechniques`. VGG-16 (OCNNA) is `VggTechniques(unit="conv3x3", head="fc_bn",
final_pool=True)` on stage table "D": conv 3×3 +bias → BN → ReLU per slot, FC 512 + BN head.

Reproduced exactly at width 1, 32×32×3 input (trainable params / fvcore FLOPs of the reference
PyTorch code, tests/test_reference_counts.py): all 13 variants × {10, 100} classes; VGG-16:
14,991,946 trainable at 10 classes (tests/test_ocnna_bases.py).

Layer names (the zoo's one scheme): `s{stage}_b{slot}_<op>` inside stages (1-based),
`s{stage}_pool`, `s{stage}_b{slot}_se_*`, and `head_*` for the classifier.
"""

from __future__ import annotations

from tfopt._keras import keras, layers
from tfopt.blocks import heads, vgg_units
from tfopt.blocks.se import squeeze_excite
from tfopt.core.techniques import VggTechniques
from tfopt.core.variants import VGG_BASES
from tfopt.models.sizing import check_map_size, scale_channels


def _fc_bn_head(x, *, num_classes: int, hidden: int):
    """Flatten → FC hidden (+bias) → BN → ReLU → Dropout(0.5) → FC n (OCNNA's VGG-16)."""
    x = layers.Flatten(name="head_flatten")(x)
    x = layers.Dense(hidden, name="head_fc1")(x)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="head_fc1_bn")(x)
    x = layers.ReLU(name="head_fc1_relu")(x)
    x = layers.Dropout(0.5, name="head_dropout")(x)
    return layers.Dense(num_classes, name="head_logits")(x)


def _head(x, *, kind: str, num_classes: int, hidden: int):
    if kind == "fc3":
        return heads.mlp_head(x, num_classes=num_classes, hidden=(hidden, hidden), dropout=0.5)
    if kind == "fc_bn":
        return _fc_bn_head(x, num_classes=num_classes, hidden=hidden)
    if kind == "gap_fc_dropout":
        y = heads.gap_fc_head(x, num_classes=num_classes, use_bias=True)
        # Reference quirk (§10.8): Dropout(0.5) on the logits; identity at inference.
        return layers.Dropout(0.5, name="head_dropout")(y)
    # "conv_bn" / "conv": 1×1 conv (+bias) to the classes, [BN], ReLU, GAP = logits (≥ 0).
    return heads.conv_head(x, num_classes=num_classes, use_bias=True, bn=kind == "conv_bn",
                           act="relu")


def _pool(x, stage: int, name: str):
    check_map_size(x, 2, name, f"before s{stage}_pool")
    return layers.MaxPooling2D(2, 2, name=f"s{stage}_pool")(x)


def vgg(techniques: VggTechniques | None = None, *, num_classes: int, input_shape=(32, 32, 3),
        width_multiplier: float = 1.0, batch_size: int | None = None, base: str = "vgg19",
        name: str | None = None, max_slots_per_stage: int | None = None):
    """Build a VGG from its stage table and a technique set; outputs logits.

    Args:
      techniques: Unit, head, SE and final-pool choice; None is `VggTechniques()` (VGG-19 v02).
      num_classes: Number of logits.
      input_shape: (H, W, C) of one image.
      width_multiplier: Scales every channel count: `scale_channels` to multiples of 8 (fire
        splits l/8 and l/2, shuffle(8), SE(l/4) stay integral), at least the base's min_width.
      batch_size: None for a training graph; 1 for the fixed-batch deployment graph.
      base: "vgg19" or "vgg16" (stage table and hidden FC width, VGG_BASES).
      name: Model name; None names it `base`.
      max_slots_per_stage: None for the table's slots; n keeps each stage's first n slots (the
        tests' shallow twins: with 2, the channel-changing first slot and a same-shape one).

    Returns:
      A functional `tf_keras.Model` mapping images to logits.
    """
    techniques = VggTechniques() if techniques is None else techniques
    if base not in VGG_BASES:
        raise ValueError(f"base={base!r}; expected one of {tuple(VGG_BASES)}")
    if max_slots_per_stage is not None and max_slots_per_stage < 1:
        raise ValueError(f"max_slots_per_stage={max_slots_per_stage!r}; expected None or >= 1")
    table, name = VGG_BASES[base], name or base
    unit = vgg_units.UNITS[techniques.unit]

    def ch(channels: int) -> int:
        return scale_channels(channels, width_multiplier, divisor=8, minimum=table.min_width)

    inputs = keras.Input(shape=tuple(input_shape), batch_size=batch_size, name="input")
    x = inputs
    for s, (width, slots) in enumerate(table.stages, start=1):
        filters = ch(width)
        for b in range(1, min(slots, max_slots_per_stage or slots) + 1):
            x = unit(x, filters=filters, name=f"s{s}_b{b}")
            if techniques.se:
                x = squeeze_excite(x, reduction=4, name=f"s{s}_b{b}_se")
        if s < len(table.stages) or techniques.final_pool:
            x = _pool(x, s, name)
    outputs = _head(x, kind=techniques.head, num_classes=num_classes,
                    hidden=ch(table.fc_hidden))
    return keras.Model(inputs, outputs, name=name)
