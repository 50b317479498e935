"""Technique sets: which optimisation technique each part of a network uses, as frozen data.

A technique set is data, one enumerated field per choice (style.md §2.2): the paper's numbered
variants are rows of a registry (`tfopt/models/resnet101.py`), and any other combination the
builder supports can be built too, e.g. `ResNetTechniques(block="inverted", attention="se")`.

Paper: Sobolewski & Szyc, "Architecture Optimization Techniques for Convolutional Neural
Networks"; spec reference-variants.md §1-2.
"""

from __future__ import annotations

import dataclasses

STEMS = ("conv3x3", "factorized", "separable")
BLOCKS = ("bottleneck", "fire", "inverted", "ghost", "dice")
CONV3X3 = ("standard", "factorized", "depthwise")
POINTWISE = ("dense", "grouped_shuffle")
ATTENTION = ("none", "se")
HEADS = ("fc", "conv", "optim_gap")
EARLY_CHANNELS = ("standard", "reduced")

# Which blocks support which optional technique (others raise a ValueError).
_CONV3X3_BLOCKS = ("bottleneck",)
_POINTWISE_BLOCKS = ("bottleneck", "ghost")
_ATTENTION_BLOCKS = ("bottleneck", "inverted", "ghost")


def _check(field: str, value, allowed):
    if value not in allowed:
        raise ValueError(f"{field}={value!r}; expected one of {allowed}")


@dataclasses.dataclass(frozen=True)
class ResNetTechniques:
    """How a ResNet-101 (CIFAR) is built. The default is the paper's baseline (variant 01).

    Attributes:
      stem: The stem convolution, one of STEMS: "conv3x3" 3x3 conv; "factorized" 3x1 then 1x3
        (variant 03); "separable" depthwise 3x3 then pointwise 1x1 (04-15). Each is followed by
        BN + ReLU; there is no max-pool.
      block: The residual block, one of BLOCKS: "bottleneck" (torchvision v1.5), "fire"
        (SqueezeNet fire residual, 02), "inverted" (MobileNetV2 linear bottleneck, 06-09),
        "ghost" (GhostNet bottleneck, 10-14), "dice" (DiCE unit block, 15). Each block kind comes
        with its channel plan (see resnet101.py).
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

    stem: str = "conv3x3"
    block: str = "bottleneck"
    conv3x3: str = "standard"
    pointwise: str = "dense"
    attention: str = "none"
    head: str = "fc"
    early_channels: str = "standard"

    def __post_init__(self):
        _check("stem", self.stem, STEMS)
        _check("block", self.block, BLOCKS)
        _check("conv3x3", self.conv3x3, CONV3X3)
        _check("pointwise", self.pointwise, POINTWISE)
        _check("attention", self.attention, ATTENTION)
        _check("head", self.head, HEADS)
        _check("early_channels", self.early_channels, EARLY_CHANNELS)
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
        default = ResNetTechniques()
        parts = [f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)
                 if getattr(self, f.name) != getattr(default, f.name)]
        return ", ".join(parts) or "baseline"
