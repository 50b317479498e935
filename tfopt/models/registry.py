"""Build a registered variant or a technique combination: the one family -> builder table.

The rows are data in `tfopt.core.variants` (TensorFlow-free); this module maps each family to
its builder and imports the builder's module only when a model is built. Family modules never
import this module (no cycle), and a family module that fails to import raises.

Every builder has the signature
`builder(techniques, *, num_classes, input_shape, width_multiplier, batch_size, base, name)`.
"""

from __future__ import annotations

import importlib

from tfopt.core import variants as _variants
from tfopt.core.variants import Variant, get_variant, list_variants
from tfopt.models import spec as _spec

FAMILY_BUILDERS: dict[str, tuple[str, str]] = {
    "resnet": ("tfopt.models.resnet", "resnet"),
    "vgg": ("tfopt.models.vgg", "vgg"),
    "densenet": ("tfopt.models.densenet", "densenet40"),
    "mobilenet": ("tfopt.models.mobilenet", "mobilenet_v1"),
    "tiny": ("tfopt.models.tiny", "tiny_cnn"),
    "mlperf": ("tfopt.models.mlperf", "resnet8"),
}
"""Family (tfopt.core.variants.FAMILIES) -> (module, builder function)."""

__all__ = ["FAMILY_BUILDERS", "Variant", "build_from_spec", "build_model", "builder",
           "get_variant", "list_variants", "paper_variant", "techniques_of"]


def builder(family: str):
    """The builder function of a family (imports its module, and so TensorFlow)."""
    if family not in FAMILY_BUILDERS:
        raise ValueError(f"family={family!r}; expected one of {tuple(FAMILY_BUILDERS)}")
    module_name, function = FAMILY_BUILDERS[family]
    return getattr(importlib.import_module(module_name), function)


def _check_build_args(num_classes, width_multiplier) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r}; expected a positive int")
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier={width_multiplier!r}; expected a number > 0")


def _build(base: str, techniques, name: str, *, num_classes, input_shape, width_multiplier,
           batch_size):
    _check_build_args(num_classes, width_multiplier)
    build = builder(_variants.BASE_FAMILY[base])
    return build(techniques, num_classes=num_classes, input_shape=tuple(input_shape),
                 width_multiplier=float(width_multiplier), batch_size=batch_size, base=base,
                 name=name)


def build_model(variant: str, *, num_classes: int, input_shape=(32, 32, 3),
                width_multiplier: float = 1.0, batch_size: int | None = None):
    """Build a registered variant as a functional `tf_keras.Model` named by its id.

    Args:
      variant: A registry id (see `list_variants()`).
      num_classes: Classifier outputs.
      input_shape: (H, W, C) of one image.
      width_multiplier: Scales every channel count (tfopt.models.sizing.scale_channels).
      batch_size: None for training graphs; 1 builds the deployment graph (fixed batch).
    """
    row = get_variant(variant)
    return _build(row.base, row.techniques, row.id, num_classes=num_classes,
                  input_shape=input_shape, width_multiplier=width_multiplier,
                  batch_size=batch_size)


def techniques_of(spec: str):
    """(base, technique dataclass) of a zoo id or a combination spec such as
    'resnet101[block=ghost,attention=se]' (techniques is None for the fixed networks)."""
    if not _spec.is_combination(spec):
        row = get_variant(spec)
        return row.base, row.techniques
    parsed = _spec.parse_spec(spec)
    return parsed.base, _spec.TECHNIQUE_CLASSES[parsed.base](**parsed.kwargs())


def paper_variant(spec: str) -> str | None:
    """The registered id with the same base and technique set as `spec` (None if none)."""
    base, tech = techniques_of(spec)
    for row in _variants.VARIANTS:
        if row.base == base and row.techniques == tech and tech is not None:
            return row.id
    return None


def build_from_spec(spec: str, *, num_classes: int, input_shape=(32, 32, 3),
                    width_multiplier: float = 1.0, batch_size: int | None = None):
    """Build a zoo id or a technique combination (see tfopt.models.spec) as a `tf_keras.Model`.

    `build_from_spec('resnet101[block=ghost,attention=se,head=optim_gap]', num_classes=10)`
    builds `resnet(ResNetTechniques(block='ghost', attention='se', head='optim_gap'), ...)`;
    a zoo id is the same as `build_model(id, ...)`. The model is named by `spec_slug(spec)`.
    """
    if not _spec.is_combination(spec):
        return build_model(spec, num_classes=num_classes, input_shape=input_shape,
                           width_multiplier=width_multiplier, batch_size=batch_size)
    _check_build_args(num_classes, width_multiplier)
    base, tech = techniques_of(spec)
    return _build(base, tech, _spec.spec_slug(spec), num_classes=num_classes,
                  input_shape=input_shape, width_multiplier=width_multiplier,
                  batch_size=batch_size)
