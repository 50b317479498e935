"""Model zoo: the paper's ResNet-101 / VGG-19 variants and the OCNNA bases."""

from tfopt.models.registry import (
    Variant,
    build_from_spec,
    build_model,
    get_variant,
    list_variants,
    paper_variant,
    techniques_of,
)

__all__ = [
    "Variant",
    "build_from_spec",
    "build_model",
    "get_variant",
    "list_variants",
    "paper_variant",
    "techniques_of",
]
