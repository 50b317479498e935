"""Variant specs: a zoo id, or a technique combination of a family (TensorFlow-free).

Grammar (one place for it; used by the ablation config's validation and by `build_from_spec`):

  SPEC   := ZOO_ID | BASE "[" [PAIR (SEP PAIR)*] "]"
  BASE   := resnet101 | vgg19
  PAIR   := FIELD "=" VALUE      a field of the family's technique dataclass
  SEP    := "," | ";"            (";" needs no care in comma-separated flag lists; "," works too:
                                  `split_variant_list` keeps commas inside brackets together)

Examples: `resnet101[block=ghost,attention=se,head=optim_gap]`, `vgg19[unit=dws;se=True]`.
Omitted fields keep the dataclass default (`resnet101[]` is the paper's baseline ResNet-101 =
resnet101_v01, `vgg19[]` is `VggTechniques()` = vgg19_v02). Field names and string values are
case-insensitive; booleans accept true/false/1/0/yes/no.

The canonical form (`canonical_spec`) lists only the non-default fields, in the dataclass's field
order, joined by ",", with booleans as True/False: it is the id used in results and reports.
`spec_slug` turns it into a path/name-safe slug (`resnet101.block-ghost.attention-se`).

The fields, allowed values and defaults are read from the technique dataclasses of
`tfopt.core.techniques` (TensorFlow-free), where each closed set is defined once.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from tfopt.core.techniques import ResNetTechniques, VggTechniques, allowed_values

TECHNIQUE_CLASSES = {"resnet101": ResNetTechniques, "vgg19": VggTechniques}
"""Base with a combination grammar -> its technique dataclass."""

# field -> (allowed values, default), in the dataclass's field order.
RESNET_FIELDS: dict[str, tuple[tuple[Any, ...], Any]] = allowed_values(ResNetTechniques)
VGG_FIELDS: dict[str, tuple[tuple[Any, ...], Any]] = allowed_values(VggTechniques)
FAMILIES: dict[str, dict[str, tuple[tuple[Any, ...], Any]]] = {
    "resnet101": RESNET_FIELDS,
    "vgg19": VGG_FIELDS,
}

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_SPEC_RE = re.compile(r"^\s*([A-Za-z0-9_]*)\s*\[(.*)\]\s*$", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class VariantSpec:
    """A parsed technique combination: family base name + the non-default fields."""

    base: str
    fields: tuple[tuple[str, Any], ...]  # non-default (field, value), in the family's order

    @property
    def canonical(self) -> str:
        return f"{self.base}[" + ",".join(f"{k}={_fmt(v)}" for k, v in self.fields) + "]"

    @property
    def slug(self) -> str:
        if not self.fields:
            return f"{self.base}.default"
        return self.base + "".join(f".{k}-{_fmt(v)}" for k, v in self.fields)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the family's technique dataclass."""
        return dict(self.fields)


def _fmt(v: Any) -> str:
    return str(v)  # booleans as True/False


def _near(value: str, allowed) -> str:
    from tfopt.core.choices import close_matches

    near = close_matches(value, allowed)
    return f" (did you mean {', '.join(near)}?)" if near else ""


def is_combination(text: str) -> bool:
    """True if `text` is spelled as a technique combination (`base[...]`), not a zoo id."""
    return isinstance(text, str) and "[" in text


def parse_spec(text: str) -> VariantSpec:
    """Parse `base[field=value,...]`; a one-line ValueError naming the bad part otherwise."""
    m = _SPEC_RE.match(text or "")
    if not m:
        raise ValueError(
            f"{text!r} is not a technique combination; expected BASE[field=value,...], "
            "e.g. resnet101[block=ghost,attention=se]"
        )
    base, body = m.group(1).lower(), m.group(2)
    if base not in FAMILIES:
        raise ValueError(
            f"{text!r}: unknown base {base!r}{_near(base, FAMILIES)}; "
            f"combinations exist for: {', '.join(FAMILIES)}"
        )
    family = FAMILIES[base]
    given: dict[str, Any] = {}
    for pair in re.split(r"[;,]", body):
        if not pair.strip():
            continue
        key, eq, raw = pair.partition("=")
        key, raw = key.strip().lower(), raw.strip()
        if not eq:
            raise ValueError(
                f"{text!r}: {pair.strip()!r} must be field=value; fields: {', '.join(family)}"
            )
        if key not in family:
            raise ValueError(
                f"{text!r}: unknown {base} field {key!r}{_near(key, family)}; "
                f"allowed: {', '.join(family)}"
            )
        if key in given:
            raise ValueError(f"{text!r}: field {key!r} is given twice")
        allowed, _ = family[key]
        if isinstance(allowed[0], bool):
            low = raw.lower()
            if low not in _TRUE + _FALSE:
                raise ValueError(
                    f"{text!r}: {key}={raw!r} is not allowed; allowed: True, False"
                )
            given[key] = low in _TRUE
        else:
            val = raw.lower()
            if val not in allowed:
                raise ValueError(
                    f"{text!r}: {key}={raw!r} is not allowed{_near(val, allowed)}; "
                    f"allowed: {', '.join(allowed)}"
                )
            given[key] = val
    try:  # the cross-field rules (e.g. conv3x3 only for bottleneck blocks); TF-free
        TECHNIQUE_CLASSES[base](**given)
    except ValueError as err:
        raise ValueError(f"{text!r}: {err}") from None
    fields = tuple(
        (k, given[k]) for k, (_, default) in family.items() if k in given and given[k] != default
    )
    return VariantSpec(base, fields)


def canonical_spec(text: str) -> str:
    """The canonical id of a combination (a zoo id is returned unchanged)."""
    return parse_spec(text).canonical if is_combination(text) else text


def spec_slug(text: str) -> str:
    """A path- and name-safe slug of a variant id: zoo ids unchanged, combinations e.g.
    'resnet101[block=ghost,attention=se]' -> 'resnet101.block-ghost.attention-se'."""
    return parse_spec(text).slug if is_combination(text) else text


def split_variant_list(values) -> list[str]:
    """Rejoin items of a comma-split list whose commas were inside brackets.

    absl's DEFINE_list splits `--variants=resnet101[block=ghost,attention=se],tiny_cnn` at every
    comma; this gives back ['resnet101[block=ghost,attention=se]', 'tiny_cnn'].
    """
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    current: list[str] = []
    depth = 0
    for value in values:
        for token in str(value).split(","):
            current.append(token.strip())
            depth += token.count("[") - token.count("]")
            if depth <= 0:
                item = ",".join(current).strip()
                if item:
                    out.append(item)
                current, depth = [], 0
    if current:
        out.append(",".join(current).strip())  # unbalanced: parse_spec names it
    return out
