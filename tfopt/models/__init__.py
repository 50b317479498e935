"""Model zoo: the paper's ResNet-101 / VGG-19 variants and the OCNNA bases.

Importing this package does not import TensorFlow: the rows are data (`tfopt.core.variants`)
and a family's builder module is imported when a model is built.
"""

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
