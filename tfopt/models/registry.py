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
