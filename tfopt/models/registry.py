"""The model registry: variant id -> (base network, technique set, builder).

Each family module (`resnet101.py`, `vgg19.py`, `ocnna_bases.py`) defines a tuple
`VARIANTS` of `Variant` rows; this module only collects them, checks that ids are unique
and dispatches `build_model`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from typing import Any, Callable

FAMILY_MODULES = (
    "tfopt.models.resnet101",
    "tfopt.models.vgg19",
    "tfopt.models.ocnna_bases",
    "tfopt.models.tiny",
)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One registry row.

    Attributes:
      id: Stable public id, e.g. "resnet101_v13" (a contract: never rename).
      base: Base network name, e.g. "resnet101", "vgg19", "vgg16".
      techniques: The frozen technique set this variant is built from (family-specific dataclass).
      paper_ref: Where the variant comes from, e.g. "Sobolewski & Szyc, ResNet table column 13".
      build: `build(variant, *, num_classes, input_shape, width_multiplier, batch_size) -> keras.Model`.
    """

    id: str
    base: str
    techniques: Any
    paper_ref: str
    build: Callable[..., Any] = dataclasses.field(compare=False, repr=False)


_REGISTRY: dict[str, Variant] | None = None


def _registry() -> dict[str, Variant]:
    global _REGISTRY
    if _REGISTRY is None:
        table: dict[str, Variant] = {}
        for module_name in FAMILY_MODULES:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as err:
                if err.name == module_name:
                    continue  # family not written yet
                raise
            for variant in module.VARIANTS:
                if variant.id in table:
                    raise RuntimeError(f"duplicate variant id {variant.id!r} in {module_name}")
                table[variant.id] = variant
        _REGISTRY = table
    return _REGISTRY


def list_variants() -> list[str]:
    """All registered variant ids, in registration order."""
    return list(_registry())


def get_variant(variant_id: str) -> Variant:
    """The registry row for `variant_id`; a ValueError naming close matches if unknown."""
    table = _registry()
    if variant_id not in table:
        near = difflib.get_close_matches(str(variant_id), table, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ValueError(
            f"unknown variant {variant_id!r}{hint} (see `python -m tfopt.models list`)")
    return table[variant_id]


def build_model(variant: str, *, num_classes: int, input_shape=(32, 32, 3),
                width_multiplier: float = 1.0, batch_size: int | None = None):
    """Build a registered variant as a functional `tf_keras.Model`.

    Args:
      variant: A registry id (see `list_variants()`).
      num_classes: Classifier outputs.
      input_shape: (H, W, C) of one image.
      width_multiplier: Scales every channel count (rounded to keep group/shuffle divisibility).
      batch_size: None for training graphs; 1 builds the deployment graph (fixed batch).
    """
    row = get_variant(variant)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r}; expected a positive int")
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier={width_multiplier!r}; expected a number > 0")
    return row.build(row, num_classes=num_classes, input_shape=tuple(input_shape),
                     width_multiplier=float(width_multiplier), batch_size=batch_size)


# Technique-combination specs (grammar: tfopt.models.spec): base -> (family module, builder).
_COMBINATION_BUILDERS = {
    "resnet101": ("tfopt.models.resnet101", "resnet101"),
    "vgg19": ("tfopt.models.vgg19", "vgg"),
}


def techniques_of(spec: str):
    """(base, technique dataclass) of a zoo id or a combination spec such as
    'resnet101[block=ghost,attention=se]' (techniques is None for tiny_cnn)."""
    from tfopt.models import spec as _spec

    if not _spec.is_combination(spec):
        row = get_variant(spec)
        return row.base, row.techniques
    parsed = _spec.parse_spec(spec)
    if parsed.base == "resnet101":
        from tfopt.models.techniques import ResNetTechniques as cls
    else:
        from tfopt.models.vgg19 import VggTechniques as cls
    return parsed.base, cls(**parsed.kwargs())


def paper_variant(spec: str) -> str | None:
    """The registered id with the same base and technique set as `spec` (None if none)."""
    base, tech = techniques_of(spec)
    for row in _registry().values():
        if row.base == base and row.techniques == tech and tech is not None:
            return row.id
    return None


def build_from_spec(spec: str, *, num_classes: int, input_shape=(32, 32, 3),
                    width_multiplier: float = 1.0, batch_size: int | None = None):
    """Build a zoo id or a technique combination (see tfopt.models.spec) as a `tf_keras.Model`.

    `build_from_spec('resnet101[block=ghost,attention=se,head=optim_gap]', num_classes=10)`
    builds `resnet101(ResNetTechniques(block='ghost', attention='se', head='optim_gap'), ...)`;
    a zoo id is the same as `build_model(id, ...)`. The model is named by `spec_slug(spec)`.
    """
    from tfopt.models import spec as _spec

    if not _spec.is_combination(spec):
        return build_model(spec, num_classes=num_classes, input_shape=input_shape,
                           width_multiplier=width_multiplier, batch_size=batch_size)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r}; expected a positive int")
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier={width_multiplier!r}; expected a number > 0")
    base, tech = techniques_of(spec)
    module_name, builder = _COMBINATION_BUILDERS[base]
    build = getattr(importlib.import_module(module_name), builder)
    return build(tech, num_classes=num_classes, input_shape=tuple(input_shape),
                 width_multiplier=float(width_multiplier), batch_size=batch_size,
                 name=_spec.spec_slug(spec))
