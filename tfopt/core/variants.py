"""The model zoo as data: every registered variant id, its base network and technique set.

TensorFlow-free: `VARIANT_IDS`, `list_variants()` and `get_variant()` never import TensorFlow.
The builders live in `tfopt.models` (one per family, looked up by `Variant.family` in
`tfopt.models.registry`); this module holds only rows and stage tables.

Sources: Sobolewski & Szyc, "Architecture Optimization Techniques for Convolutional Neural
Networks" (ResNet-101 table columns 1-15, VGG-19 table columns 1-13; reference-variants.md §2-3);
the OCNNA base networks (ocnna.md §4); `tiny_cnn` is not from a paper; `resnet8` is the MLPerf
Tiny image-classification reference (the CIFAR-10 study's anchor, not a paper variant).
"""

from __future__ import annotations

import dataclasses

from tfopt.core import choices
from tfopt.core.techniques import ResNetTechniques, VggTechniques

FAMILIES = ("resnet", "vgg", "densenet", "mobilenet", "tiny", "mlperf")
"""Builder families; `tfopt.models.registry.FAMILY_BUILDERS` maps each to its builder."""

BASE_FAMILY: dict[str, str] = {
    "resnet101": "resnet", "resnet50": "resnet", "vgg19": "vgg", "vgg16": "vgg",
    "densenet40": "densenet", "mobilenet_v1": "mobilenet", "tiny_cnn": "tiny",
    "resnet8": "mlperf"}
"""Base network -> family."""

RESNET_DEPTHS: dict[str, tuple[int, int, int, int]] = {
    "resnet101": (3, 4, 23, 3),  # He et al. 2016, Table 1
    "resnet50": (3, 4, 6, 3),
}
"""ResNet base -> blocks per stage (widths and strides come from the block's channel plan)."""


@dataclasses.dataclass(frozen=True)
class VggBase:
    """A VGG stage table and its width rules.

    Attributes:
      stages: (width, conv slots) per stage, at width 1.
      fc_hidden: Hidden FC width of the "fc3" / "fc_bn" heads, at width 1.
      min_width: Smallest channel count a width multiplier may give (VGG-19: 16 keeps the
        fire/ghost squeeze l/8 >= 2; VGG-16 has plain convs only: 8).
    """

    stages: tuple[tuple[int, int], ...]
    fc_hidden: int
    min_width: int


VGG_BASES: dict[str, VggBase] = {
    # Simonyan & Zisserman, Table 1: configuration "E" (19) and "D" (16)
    "vgg19": VggBase(((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)), fc_hidden=4096,
                     min_width=16),
    "vgg16": VggBase(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), fc_hidden=512,
                     min_width=8),
}

Techniques = ResNetTechniques | VggTechniques | None


@dataclasses.dataclass(frozen=True)
class Variant:
    """One registry row (data only; `tfopt.models.build_model` builds it).

    Attributes:
      id: Stable public id, e.g. "resnet101_v13" (a contract: never rename).
      base: Base network, a key of BASE_FAMILY, e.g. "resnet101", "vgg16".
      techniques: The frozen technique set (ResNetTechniques for ResNets, VggTechniques for
        VGGs, None for the fixed networks densenet40, mobilenet_v1, tiny_cnn, resnet8).
      paper_ref: Where the variant comes from.
    """

    id: str
    base: str
    techniques: Techniques
    paper_ref: str

    @property
    def family(self) -> str:
        """The builder family, e.g. "resnet" for resnet101 and resnet50."""
        return BASE_FAMILY[self.base]


_T = ResNetTechniques
_SEP = {"stem": "separable"}
_RESNET101 = (  # (column, reference file, technique set); reference-variants.md §2
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

_V = VggTechniques
_VGG19 = (  # (column, title, technique set); reference-variants.md §3
    (1, "baseline", _V(unit="conv3x3", head="fc3", final_pool=True)),
    (2, "GAP", _V(unit="conv3x3")),
    (3, "3x1 + 1x3 conv", _V(unit="nx1")),
    (4, "depthwise-separable conv", _V(unit="dws")),
    (5, "fire modules", _V(unit="fire")),
    (6, "fire + DWS", _V(unit="fire_dws")),
    (7, "fire + DWS, no FC", _V(unit="fire_dws", head="conv_bn")),
    (8, "fire + grouped pointwise + shuffle", _V(unit="fire_gpw_shuffle", head="conv_bn")),
    (9, "ghost modules", _V(unit="ghost_fire", head="conv")),
    (10, "ghost + grouped pointwise + shuffle", _V(unit="ghost_fire_shuffle", head="conv")),
    (11, "ghost + grouped pointwise + shuffle + SE",
     _V(unit="ghost_fire_shuffle", head="conv", se=True)),
    (12, "fire + grouped pointwise + shuffle + SE",
     _V(unit="fire_gpw_shuffle", head="conv_bn", se=True)),
    (13, "DiCE", _V(unit="dice_fire", head="conv_bn")),
)

VARIANTS: tuple[Variant, ...] = (
    *(Variant(f"resnet101_v{col:02d}", "resnet101", t,
              f"Sobolewski & Szyc, ResNet-101 table column {col} (reference ResNet/{ref}.py)")
      for col, ref, t in _RESNET101),
    *(Variant(f"vgg19_v{col:02d}", "vgg19", t,
              f"Sobolewski & Szyc, VGG-19 table column {col} ({title})")
      for col, title, t in _VGG19),
    Variant("vgg16", "vgg16", _V(unit="conv3x3", head="fc_bn", final_pool=True),
            "OCNNA base: CIFAR VGG-16-BN + FC-512 (ocnna.md §4 row 1)"),
    Variant("resnet50", "resnet50", _T(),
            "OCNNA base: ResNet-50 with a CIFAR stem (ocnna.md §4, §5.10)"),
    Variant("densenet40", "densenet40", None,
            "OCNNA base: DenseNet-40, k=12, no bottleneck/compression (ocnna.md §4)"),
    Variant("mobilenet_v1", "mobilenet_v1", None,
            "OCNNA base: MobileNetV1 with CIFAR strides (ocnna.md §4, §5.10)"),
    Variant("tiny_cnn", "tiny_cnn", None,
            "not from the paper: a small CNN for tests and quick runs"),
    Variant("resnet8", "resnet8", None,
            "not from the paper: MLPerf Tiny image-classification reference ResNet-8"),
)

_BY_ID: dict[str, Variant] = {v.id: v for v in VARIANTS}
if len(_BY_ID) != len(VARIANTS):
    raise RuntimeError("duplicate variant id in tfopt.core.variants.VARIANTS")

VARIANT_IDS: tuple[str, ...] = tuple(_BY_ID)
"""Every registered variant id, in registration order (a contract: ids are never renamed)."""


def list_variants() -> list[str]:
    """All registered variant ids, in registration order."""
    return list(VARIANT_IDS)


def get_variant(variant_id: str) -> Variant:
    """The registry row for `variant_id`; a ValueError naming close matches if unknown."""
    if variant_id not in _BY_ID:
        near = choices.close_matches(variant_id, _BY_ID)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ValueError(
            f"unknown variant {variant_id!r}{hint} (see `python -m tfopt.models list`)")
    return _BY_ID[variant_id]
