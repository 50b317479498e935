"""Technique sets: which optimisation technique each part of a network uses, as frozen data.

TensorFlow-free. Every closed set of allowed technique values is defined here, once; the
dataclasses check their fields against these sets, and the variant-spec grammar
(`tfopt.models.spec`) reads the fields and sets from the dataclasses (`allowed_values`).

A technique set is data, one enumerated field per choice (style.md §2.2): the paper's numbered
variants are rows of `tfopt.core.variants`, and any other combination the builders support can
be built too, e.g. `ResNetTechniques(block="inverted", attention="se")`.

Paper: Sobolewski & Szyc, "Architecture Optimization Techniques for Convolutional Neural
Networks"; spec reference-variants.md §1-3.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

# ResNet (tfopt.models.resnet)
STEMS = ("conv3x3", "factorized", "separable")
BLOCKS = ("bottleneck", "fire", "inverted", "ghost", "dice")
CONV3X3 = ("standard", "factorized", "depthwise")
POINTWISE = ("dense", "grouped_shuffle")
ATTENTION = ("none", "se")
HEADS = ("fc", "conv", "optim_gap")
EARLY_CHANNELS = ("standard", "reduced")

# VGG (tfopt.models.vgg; unit functions in tfopt.blocks.vgg_units.UNITS, same keys)
VGG_UNITS = ("conv3x3", "nx1", "dws", "fire", "fire_dws", "fire_gpw_shuffle", "ghost_fire",
             "ghost_fire_shuffle", "dice_fire")
VGG_HEADS = ("fc3", "gap_fc_dropout", "conv_bn", "conv", "fc_bn")
BOOLS = (False, True)

# Which ResNet blocks support which optional technique (others raise a ValueError).
_CONV3X3_BLOCKS = ("bottleneck",)
_POINTWISE_BLOCKS = ("bottleneck", "ghost")
_ATTENTION_BLOCKS = ("bottleneck", "inverted", "ghost")


def _check_fields(obj) -> None:
    for name, allowed in obj.ALLOWED.items():
        value = getattr(obj, name)
        if value not in allowed or type(value) is not type(allowed[0]):
            raise ValueError(f"{name}={value!r}; expected one of {allowed}")


def allowed_values(cls) -> dict[str, tuple[tuple[Any, ...], Any]]:
    """field -> (allowed values, default) of a technique dataclass, in field order."""
    return {f.name: (cls.ALLOWED[f.name], f.default) for f in dataclasses.fields(cls)}


def describe(techniques) -> str:
    """Short text of the non-default choices, e.g. "stem=separable, block=ghost"."""
    if techniques is None:
        return "-"
    parts = [f"{f.name}={getattr(techniques, f.name)}" for f in dataclasses.fields(techniques)
             if getattr(techniques, f.name) != f.default]
    return ", ".join(parts) or "baseline"


@dataclasses.dataclass(frozen=True)
class ResNetTechniques:
    """How a CIFAR ResNet (101 or 50) is built. The default is the paper's baseline (variant 01).

    Attributes:
      stem: The stem convolution, one of STEMS: "conv3x3" 3x3 conv; "factorized" 3x1 then 1x3
        (variant 03); "separable" depthwise 3x3 then pointwise 1x1 (04-15). Each is followed by
        BN + ReLU; there is no max-pool.
      block: The residual block, one of BLOCKS: "bottleneck" (torchvision v1.5), "fire"
        (SqueezeNet fire residual, 02), "inverted" (MobileNetV2 linear bottleneck, 06-09),
        "ghost" (GhostNet bottleneck, 10-14), "dice" (DiCE unit block, 15). Each block kind comes
        with its channel plan (see tfopt/models/resnet.py).
      conv3x3: The 3x3 conv inside bottleneck blocks, one of CONV3X3: "standard",
        "factorized" (3x1 + 1x3, 03), "depthwise" (04, 05).
      pointwise: The 1x1 convs, one of POINTWISE: "dense", or "grouped_shuffle" (4 groups
        followed by a channel shuffle: ShuffleNet bottleneck in 05, ghost primaries in 13/14).
      attention: "none" or "se" (squeeze-excitation inside each block, 12/14).
      head: One of HEADS: "fc" GAP -> FC; "conv" no FC: a 1x1 conv to the classes + BN + ReLU6
        before the GAP, which replaces the widening neck conv when there is one (07);
        "optim_gap" as "conv" and the last block of the last stage is dropped, replaced by a
        1x1 conv + BN + ReLU6 when it changed the width (08, 11-14).
      early_channels: "standard", or "reduced": a narrow stem (10 channels for inverted blocks,
        16 otherwise; 09, 11-14).
    """

    ALLOWED: ClassVar[dict[str, tuple]] = {
        "stem": STEMS, "block": BLOCKS, "conv3x3": CONV3X3, "pointwise": POINTWISE,
        "attention": ATTENTION, "head": HEADS, "early_channels": EARLY_CHANNELS}

    stem: str = "conv3x3"
    block: str = "bottleneck"
    conv3x3: str = "standard"
    pointwise: str = "dense"
    attention: str = "none"
    head: str = "fc"
    early_channels: str = "standard"

    def __post_init__(self):
        _check_fields(self)
        if self.conv3x3 != "standard" and self.block not in _CONV3X3_BLOCKS:
            raise ValueError(f"conv3x3={self.conv3x3!r} needs block in {_CONV3X3_BLOCKS}, "
                             f"got block={self.block!r} (its 3x3 conv is fixed)")
        if self.pointwise != "dense" and self.block not in _POINTWISE_BLOCKS:
            raise ValueError(f"pointwise={self.pointwise!r} needs block in {_POINTWISE_BLOCKS}, "
                             f"got block={self.block!r}")
        if self.attention != "none" and self.block not in _ATTENTION_BLOCKS:
            raise ValueError(f"attention={self.attention!r} needs block in {_ATTENTION_BLOCKS}, "
                             f"got block={self.block!r}")

    def describe(self) -> str:
        """Short text of the non-default choices, e.g. "stem=separable, block=ghost"."""
        return describe(self)


@dataclasses.dataclass(frozen=True)
class VggTechniques:
    """A VGG (19 or 16) technique set (reference-variants.md §3); paper variants are rows.

    Attributes:
      unit: How every conv slot is built; one of VGG_UNITS (tfopt.blocks.vgg_units.UNITS).
      head: Classifier; one of VGG_HEADS:
        "fc3" flatten → FC 4096 → ReLU → Dropout → FC 4096 → ReLU → Dropout → FC n (VGG-19 01);
        "gap_fc_dropout" GAP → FC n → Dropout(0.5) on the logits (02-06);
        "conv_bn" conv 1×1 → n (+bias) → BN → ReLU → GAP (07, 08, 12, 13; no FC);
        "conv" conv 1×1 → n (+bias) → ReLU → GAP (09-11; no FC, no BN);
        "fc_bn" flatten → FC 512 (+bias) → BN → ReLU → Dropout(0.5) → FC n (OCNNA's VGG-16).
      se: Squeeze-excitation SE(l) after every unit (11, 12).
      final_pool: Keep the max-pool after the last stage (01: the map ends at 1×1).
    """

    ALLOWED: ClassVar[dict[str, tuple]] = {
        "unit": VGG_UNITS, "head": VGG_HEADS, "se": BOOLS, "final_pool": BOOLS}

    unit: str = "conv3x3"
    head: str = "gap_fc_dropout"
    se: bool = False
    final_pool: bool = False

    def __post_init__(self):
        _check_fields(self)

    def describe(self) -> str:
        """Short text of the non-default choices, e.g. "unit=dws, se=True"."""
        return describe(self)
