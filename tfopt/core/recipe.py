"""Recipes: a compression pipeline parsed once into frozen step objects. TensorFlow-free.

Grammar (one recipe = steps joined by "+", applied left to right to a trained baseline):

  none                         the trained baseline itself
  prune_global:S1,S2,...       the paper's iterative global L1 magnitude series; each sparsity
                               is one trial, fine-tuned from the previous step (S in (0, 1))
  prune_layer:S1,S2,...        the same series with per-layer (tfmot layerwise) allocation
  prune_poly:S                 tfmot PolynomialDecay to final sparsity S, fine-tuned
  prune_const:S                tfmot ConstantSparsity S, fine-tuned
  qat                          quantization-aware training (pruning-preserving after pruning)
  ocnna:k=K[,scope=layer|global]        OCNNA filter pruning at percentile K (0 <= K < 100)
  ocnna_l1:k=K / ocnna_random:k=K       the same surgery with L1-norm / random filter ranking
  control[:N]                  matched control (issue #14): the baseline fine-tuned N times with
                               the fine-tuning recipe, nothing compressed (the grid adds it)
  kd[:t=T,alpha=A]             knowledge distillation: alone, the variant is trained from scratch
                               with `kd_teacher`'s baseline as teacher; after another step, it
                               fine-tunes with the step's parent model as teacher

Examples: `prune_global:0.2,0.36,0.488,0.59`, `prune_global:0.2,0.36,0.488,0.59+qat`,
`ocnna:k=30+kd`, `prune_const:0.5+qat`.

Step types: `BaselineStep` (none), `PruneStep` (the four pruning kinds), `QatStep`,
`OcnnaStep` (the three OCNNA kinds), `KdStep`. Each has `kind` and `spec()`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Union

from tfopt.core.choices import (
    OCNNA_CRITERIA,
    OCNNA_KINDS,
    OCNNA_SCOPES,
    PRUNE_KINDS,
    PRUNE_SERIES_KINDS,
    RECIPE_STEP_KINDS,
    unknown,
)


def _fmt_float(x: float) -> str:
    return f"{x:g}"


class _BareStep:
    """A step without arguments: its spec is its kind."""

    kind: str

    def spec(self) -> str:
        return self.kind


@dataclasses.dataclass(frozen=True)
class BaselineStep(_BareStep):
    """`none`: the variant trained from scratch with the baseline recipe."""

    kind: str = "none"


@dataclasses.dataclass(frozen=True)
class PruneStep:
    """Magnitude pruning. `sparsities`: fractions of prunable weights set to zero; a strictly
    increasing series for prune_global / prune_layer, one value for prune_poly / prune_const."""

    kind: str
    sparsities: tuple[float, ...]

    def __post_init__(self):
        if self.kind not in PRUNE_KINDS:
            raise unknown("prune step", self.kind, PRUNE_KINDS)
        if not self.sparsities:
            raise ValueError(f"recipe {self.kind!r} needs sparsities, e.g. {self.kind}:0.5")
        if self.kind not in PRUNE_SERIES_KINDS and len(self.sparsities) != 1:
            raise ValueError(f"recipe {self.kind!r} takes one sparsity, got {self.sparsities}")
        for s in self.sparsities:
            if not (isinstance(s, (int, float)) and 0.0 < s < 1.0):
                raise ValueError(
                    f"sparsity {s!r} in recipe {self.kind!r} is out of range; "
                    "expected a fraction 0 < s < 1 (e.g. 0.59 for 59%)"
                )
        if list(self.sparsities) != sorted(set(self.sparsities)):
            raise ValueError(
                f"sparsities {self.sparsities} in recipe {self.kind!r} must "
                "strictly increase (each step prunes further)"
            )

    @property
    def target(self) -> float:
        """The sparsity this step ends at (the last of the series)."""
        return float(self.sparsities[-1])

    @property
    def is_series(self) -> bool:
        return self.kind in PRUNE_SERIES_KINDS

    def spec(self) -> str:
        return f"{self.kind}:" + ",".join(_fmt_float(s) for s in self.sparsities)


@dataclasses.dataclass(frozen=True)
class QatStep(_BareStep):
    """`qat`: quantization-aware training (always the last step)."""

    kind: str = "qat"


@dataclasses.dataclass(frozen=True)
class OcnnaStep:
    """Filter removal at percentile `k` (0 <= k < 100) by OCNNA / L1 / random ranking."""

    kind: str
    k: float
    scope: str = "layer"

    def __post_init__(self):
        if self.kind not in OCNNA_KINDS:
            raise unknown("ocnna step", self.kind, OCNNA_KINDS)
        if self.k is None or not (0.0 <= self.k < 100.0):
            raise ValueError(
                f"recipe {self.kind!r} needs k in [0, 100), e.g. {self.kind}:k=30; got k={self.k!r}"
            )
        if self.scope not in OCNNA_SCOPES:
            raise unknown(f"{self.kind} scope", self.scope, OCNNA_SCOPES)

    @property
    def criterion(self) -> str:
        """The filter ranking of tfopt.compress.ocnna: 'ocnna', 'l1' or 'random'."""
        return OCNNA_CRITERIA[self.kind]

    def spec(self) -> str:
        extra = "" if self.scope == "layer" else f",scope={self.scope}"
        return f"{self.kind}:k={_fmt_float(self.k)}{extra}"


@dataclasses.dataclass(frozen=True)
class KdStep:
    """Knowledge distillation: temperature T > 0, weight alpha of the soft term in [0, 1]."""

    kind: str = "kd"
    temperature: float = 4.0
    alpha: float = 0.9

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"kd temperature t={self.temperature!r}; expected > 0")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"kd alpha={self.alpha!r}; expected 0 <= alpha <= 1")

    def spec(self) -> str:
        if (self.temperature, self.alpha) == (4.0, 0.9):
            return "kd"
        return f"kd:t={_fmt_float(self.temperature)},alpha={_fmt_float(self.alpha)}"


@dataclasses.dataclass(frozen=True)
class ControlStep:
    """`control:N` (issue #14's matched control): the baseline fine-tuned N successive times with
    the fine-tuning recipe and nothing compressed; `control:J` is built from `control:J-1`."""

    kind: str = "control"
    fits: int = 1

    def __post_init__(self):
        if isinstance(self.fits, bool) or not isinstance(self.fits, int) or self.fits < 1:
            raise ValueError(f"recipe 'control': {self.fits!r} fine-tunes; expected an integer "
                             ">= 1, e.g. control:4")

    def spec(self) -> str:
        return f"control:{self.fits}"


RecipeStep = Union[BaselineStep, PruneStep, QatStep, OcnnaStep, KdStep, ControlStep]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A compression pipeline: steps applied in order to the trained baseline of a variant."""

    steps: tuple[RecipeStep, ...]

    def __post_init__(self):
        if not self.steps:
            raise ValueError("empty recipe; use 'none' for the baseline")
        kinds = [s.kind for s in self.steps]
        if "none" in kinds and len(kinds) > 1:
            raise ValueError(f"recipe {self.spec()!r}: 'none' cannot be combined with other steps")
        if "control" in kinds and len(kinds) > 1:
            raise ValueError(f"recipe {self.spec()!r}: 'control' cannot be combined with other "
                             "steps")
        if kinds.count("qat") > 1:
            raise ValueError(f"recipe {self.spec()!r}: qat appears twice")
        if "qat" in kinds and kinds[-1] != "qat":
            raise ValueError(
                f"recipe {self.spec()!r}: qat must be the last step (a QAT model is only converted)"
            )

    def spec(self) -> str:
        """Canonical text form, parseable by `parse_recipe`."""
        return "+".join(s.spec() for s in self.steps)

    def __str__(self) -> str:
        return self.spec()

    @property
    def id(self) -> str:
        """Filesystem-safe id, e.g. 'prune_global:0.2,0.36+qat' -> 'prune_global_0.2_0.36__qat'."""
        return "__".join(re.sub(r"[^A-Za-z0-9.]+", "_", s.spec()).strip("_") for s in self.steps)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(s.kind for s in self.steps)

    @property
    def is_baseline(self) -> bool:
        return self.steps[0].kind == "none"

    @property
    def last(self) -> RecipeStep:
        return self.steps[-1]

    @property
    def is_pruned(self) -> bool:
        """Whether any step before the last one prunes weights."""
        return any(isinstance(s, PruneStep) for s in self.steps[:-1])

    @property
    def finetune_fits(self) -> int:
        """Fine-tuning fits from the baseline to this recipe's model: one per pruning-series
        sparsity, `N` for `control:N`, 0 for the baseline and a stand-alone `kd` (trained from
        scratch), 1 for every other step. Its matched control is `control:<finetune_fits>`."""
        if self.is_baseline or (self.kinds == ("kd",)):
            return 0
        n = 0
        for step in self.steps:
            if isinstance(step, PruneStep) and step.is_series:
                n += len(step.sparsities)
            elif isinstance(step, ControlStep):
                n += step.fits
            else:
                n += 1
        return n

    def expand(self) -> list["Recipe"]:
        """The recipe and every prefix whose result it is built from, in dependency order.

        A pruning series `prune_global:0.2,0.36` expands to `prune_global:0.2` (one trial) and
        `prune_global:0.2,0.36` (fine-tuned from the first); the baseline `none` is implicit.
        """
        out: list[Recipe] = []
        done: list[RecipeStep] = []
        for step in self.steps:
            if isinstance(step, PruneStep) and step.is_series:
                for i in range(1, len(step.sparsities) + 1):
                    sub = dataclasses.replace(step, sparsities=step.sparsities[:i])
                    out.append(Recipe(tuple(done) + (sub,)))
            elif isinstance(step, ControlStep):
                out += [Recipe((ControlStep(fits=i),)) for i in range(1, step.fits + 1)]
            else:
                out.append(Recipe(tuple(done) + (step,)))
            done.append(step)
        return out

    def parent(self) -> "Recipe | None":
        """The recipe whose output model this one starts from (None: the baseline 'none')."""
        if self.is_baseline:
            return None
        last = self.steps[-1]
        if isinstance(last, PruneStep) and last.is_series and len(last.sparsities) > 1:
            shorter = dataclasses.replace(last, sparsities=last.sparsities[:-1])
            return Recipe(self.steps[:-1] + (shorter,))
        if isinstance(last, ControlStep) and last.fits > 1:
            return Recipe((ControlStep(fits=last.fits - 1),))
        if len(self.steps) == 1:
            return NONE_RECIPE
        return Recipe(self.steps[:-1])


def _parse_value(kind: str, key: str, raw: str) -> float:
    try:
        val = float(raw)
    except ValueError:
        raise ValueError(f"recipe {kind!r}: {key}={raw!r} is not a number") from None
    if not math.isfinite(val):
        raise ValueError(f"recipe {kind!r}: {key}={raw!r} is not finite")
    return val


_STEP_KEYS = {kind: ("k", "scope") for kind in OCNNA_KINDS} | {"kd": ("t", "alpha")}


def parse_step(text: str) -> RecipeStep:
    """Parse one step, e.g. 'prune_poly:0.8', 'ocnna:k=30', 'kd:t=4,alpha=0.9'."""
    text = text.strip()
    kind, _, args = text.partition(":")
    kind = kind.strip().lower()
    if kind not in RECIPE_STEP_KINDS:
        raise unknown("recipe", kind or text, RECIPE_STEP_KINDS)
    parts = [a.strip() for a in args.split(",") if a.strip()] if args else []
    if kind in PRUNE_KINDS:
        if not parts:
            raise ValueError(f"recipe {kind!r} needs sparsities, e.g. {kind}:0.5")
        return PruneStep(kind, tuple(_parse_value(kind, "sparsity", p) for p in parts))
    if kind == "control":
        if len(parts) > 1:
            raise ValueError(f"recipe 'control' takes one count, e.g. control:4; got {args!r}")
        raw = parts[0] if parts else "1"
        if not raw.isdigit():
            raise ValueError(f"recipe 'control': {raw!r} is not a whole number, e.g. control:4")
        return ControlStep(fits=int(raw))
    allowed = _STEP_KEYS.get(kind, ())
    kwargs: dict = {}
    for p in parts:
        key, eq, raw = p.partition("=")
        key = key.strip().lower()
        if not eq:
            if kind in OCNNA_KINDS and "k" not in kwargs:  # 'ocnna:30' means k=30
                key, raw = "k", p
            else:
                raise ValueError(
                    f"recipe {kind!r}: argument {p!r} must be key=value "
                    f"(keys: {', '.join(allowed) or 'none'})"
                )
        if key not in allowed:
            raise unknown(f"recipe {kind} argument", key, allowed or ["(no arguments)"])
        if key == "scope":
            kwargs["scope"] = raw.strip()
        else:
            kwargs["temperature" if key == "t" else key] = _parse_value(kind, key, raw)
    if kind in OCNNA_KINDS:
        if "k" not in kwargs:
            raise ValueError(f"recipe {kind!r} needs k, e.g. {kind}:k=30")
        return OcnnaStep(kind, **kwargs)
    return {"none": BaselineStep, "qat": QatStep, "kd": KdStep}[kind](**kwargs)


def parse_recipe(text: "str | Recipe") -> Recipe:
    """Parse a recipe: steps joined by '+', e.g. 'prune_global:0.2,0.36+qat' (a Recipe passes)."""
    if isinstance(text, Recipe):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"recipe {text!r} is empty; e.g. none, qat, prune_global:0.2,0.36")
    return Recipe(tuple(parse_step(part) for part in text.split("+")))


_CONT = re.compile(r"^\s*([-0-9.eE]+|[A-Za-z_]+\s*=[^+]*)\s*$")


def split_recipe_list(values) -> list[str]:
    """Split comma-joined recipe lists while keeping commas that belong to one recipe.

    `none,prune_global:0.2,0.36,qat` -> ['none', 'prune_global:0.2,0.36', 'qat']: a token that is a
    bare number or `key=value` continues the previous recipe; anything else starts a new one.
    """
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        current: list[str] = []
        for token in str(value).split(","):
            head = token.split("+", 1)[0]
            if current and _CONT.match(head) and head.strip().lower() not in RECIPE_STEP_KINDS:
                current.append(token.strip())
            else:
                if current:
                    out.append(",".join(current))
                current = [token.strip()]
        if current:
            out.append(",".join(current))
    return [o for o in out if o]


NONE_RECIPE = Recipe((BaselineStep(),))
