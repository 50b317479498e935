"""Model zoo: the paper's ResNet-101 / VGG-19 variants and the OCNNA bases."""

from tfopt.models.registry import Variant, build_model, get_variant, list_variants

__all__ = ["Variant", "build_model", "get_variant", "list_variants"]
