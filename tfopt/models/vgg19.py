"""VGG-19 and the paper's 13 VGG-19 variants (Sobolewski & Szyc, "Architecture Optimization
Techniques for Convolutional Neural Networks", VGG table columns 1-13).

Spec: reference-variants.md §3 (units and heads), §8 (FLOP rules), §10 (quirks). The network is
a stage table, VGG-19 "E" = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)) with a 2×2/2
max-pool after every stage (variant 01 keeps the last one, 02-13 drop it), in which every conv
slot becomes one unit of `tfopt.blocks.vgg_units`. A variant is a row: base + `VggTechniques`.

Reproduced exactly at width 1, 32×32×3 input (trainable params / fvcore FLOPs of the reference
PyTorch code, tests/test_models_vgg19.py): all 13 variants × {10, 100} classes.

Layer names: `s{stage}_b{slot}_<op>` inside stages (stage 1-5, slot 1-based within the stage),
`s{stage}_pool`, `s{stage}_b{slot}_se_*`, and `head_*` for the classifier (tfopt.blocks.heads).
"""

from __future__ import annotations

import dataclasses

from tfopt._keras import keras, layers
from tfopt.blocks import heads, vgg_units
from tfopt.blocks.se import squeeze_excite
from tfopt.models.registry import Variant

VGG19_STAGES: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
"""VGG-19 configuration "E" (Simonyan & Zisserman, Table 1): (width, conv slots) per stage."""

UNIT_KINDS = tuple(vgg_units.UNITS)
HEAD_KINDS = ("fc3", "gap_fc_dropout", "conv_bn", "conv")


@dataclasses.dataclass(frozen=True)
class VggTechniques:
    """A VGG-19 technique set (reference-variants.md §3); the paper's variants are rows below.

    Attributes:
      unit: How every conv slot is built; one of UNIT_KINDS (tfopt.blocks.vgg_units.UNITS).
      head: Classifier; one of HEAD_KINDS:
        "fc3" flatten → FC 4096 → ReLU → Dropout → FC 4096 → ReLU → Dropout → FC n (variant 01);
        "gap_fc_dropout" GAP → FC n → Dropout(0.5) on the logits (02-06);
        "conv_bn" conv 1×1 → n (+bias) → BN → ReLU → GAP (07, 08, 12, 13; no FC);
        "conv" conv 1×1 → n (+bias) → ReLU → GAP (09-11; no FC, no BN).
      se: Squeeze-excitation SE(l) after every unit (11, 12).
      final_pool: Keep the max-pool after the last stage (01: the map ends at 1×1).
    """

    unit: str = "conv3x3"
    head: str = "gap_fc_dropout"
    se: bool = False
    final_pool: bool = False

    def __post_init__(self):
        if self.unit not in UNIT_KINDS:
            raise ValueError(f"unit={self.unit!r}; expected one of {UNIT_KINDS}")
        if self.head not in HEAD_KINDS:
            raise ValueError(f"head={self.head!r}; expected one of {HEAD_KINDS}")


def scale_width(channels: int, width_multiplier: float) -> int:
    """`channels` × `width_multiplier`, rounded to a multiple of 8 and at least 16.

    Multiples of 8 keep every fire split (l/8, l/2), the shuffle(8) and SE(l/4) integral; 16
    keeps the ghost squeeze (l/8 = 2 → primary 1) non-empty. Width 1.0 returns `channels`.
    """
    if width_multiplier == 1.0:
        return channels
    return max(16, int(round(channels * width_multiplier / 8.0)) * 8)


def _head(x, *, kind: str, num_classes: int, width_multiplier: float):
    if kind == "fc3":
        hidden = scale_width(4096, width_multiplier)
        return heads.mlp_head(x, num_classes=num_classes, hidden=(hidden, hidden), dropout=0.5)
    if kind == "gap_fc_dropout":
        y = heads.gap_fc_head(x, num_classes=num_classes, use_bias=True)
        # Reference quirk (§10.8): Dropout(0.5) on the logits; identity at inference.
        return layers.Dropout(0.5, name="head_dropout")(y)
    # "conv_bn" / "conv": 1×1 conv (+bias) to the classes, [BN], ReLU, GAP = logits (≥ 0).
    return heads.conv_head(x, num_classes=num_classes, use_bias=True, bn=kind == "conv_bn",
                           act="relu")


def vgg(techniques: VggTechniques, *, num_classes: int, input_shape=(32, 32, 3),
        width_multiplier: float = 1.0, batch_size: int | None = None,
        stages: tuple[tuple[int, int], ...] = VGG19_STAGES, name: str = "vgg19"):
    """Build a VGG from a stage table and a technique set.

    Args:
      techniques: Unit, head and SE choice.
      num_classes: Number of logits.
      input_shape: (H, W, C) of one image.
      width_multiplier: Scales every channel count (see `scale_width`).
      batch_size: None for a training graph; 1 for the fixed-batch deployment graph.
      stages: (width, conv slots) per stage; a 2×2/2 max-pool follows every stage but the last
        (and the last too when `techniques.final_pool`).
      name: Model name.

    Returns:
      A functional `tf_keras.Model` mapping images to logits.
    """
    unit = vgg_units.UNITS[techniques.unit]
    inputs = keras.Input(shape=tuple(input_shape), batch_size=batch_size, name="input")
    x = inputs
    for s, (width, slots) in enumerate(stages, start=1):
        filters = scale_width(width, width_multiplier)
        for b in range(1, slots + 1):
            x = unit(x, filters=filters, name=f"s{s}_b{b}")
            if techniques.se:
                x = squeeze_excite(x, reduction=4, name=f"s{s}_b{b}_se")
        if s < len(stages) or techniques.final_pool:
            x = layers.MaxPooling2D(2, 2, name=f"s{s}_pool")(x)
    outputs = _head(x, kind=techniques.head, num_classes=num_classes,
                    width_multiplier=width_multiplier)
    return keras.Model(inputs, outputs, name=name)


def _build(variant: Variant, *, num_classes, input_shape, width_multiplier, batch_size):
    return vgg(variant.techniques, num_classes=num_classes, input_shape=input_shape,
               width_multiplier=width_multiplier, batch_size=batch_size, name=variant.id)


def _row(n: int, title: str, **techniques) -> Variant:
    return Variant(id=f"vgg19_v{n:02d}", base="vgg19", techniques=VggTechniques(**techniques),
                   paper_ref=f"Sobolewski & Szyc, VGG-19 table column {n} ({title})",
                   build=_build)


VARIANTS = (
    _row(1, "baseline", unit="conv3x3", head="fc3", final_pool=True),
    _row(2, "GAP", unit="conv3x3"),
    _row(3, "3x1 + 1x3 conv", unit="nx1"),
    _row(4, "depthwise-separable conv", unit="dws"),
    _row(5, "fire modules", unit="fire"),
    _row(6, "fire + DWS", unit="fire_dws"),
    _row(7, "fire + DWS, no FC", unit="fire_dws", head="conv_bn"),
    _row(8, "fire + grouped pointwise + shuffle", unit="fire_gpw_shuffle", head="conv_bn"),
    _row(9, "ghost modules", unit="ghost_fire", head="conv"),
    _row(10, "ghost + grouped pointwise + shuffle", unit="ghost_fire_shuffle", head="conv"),
    _row(11, "ghost + grouped pointwise + shuffle + SE", unit="ghost_fire_shuffle", head="conv",
         se=True),
    _row(12, "fire + grouped pointwise + shuffle + SE", unit="fire_gpw_shuffle", head="conv_bn",
         se=True),
    _row(13, "DiCE", unit="dice_fire", head="conv_bn"),
)
