"""Typed, frozen configuration of an ablation run: `Recipe` (one compression pipeline) and
`ExperimentConfig` (the whole grid).

Everything here is TensorFlow-free on purpose: a bad flagfile must fail in well under 2 s,
before TensorFlow (about 5 s to import) is loaded. Variant ids are therefore checked against
`KNOWN_VARIANT_IDS` (the zoo's ids, kept in sync with `tfopt.models.list_variants()` by
`tests/test_experiments_flags.py`); technique combinations such as
`resnet101[block=ghost,attention=se]` are checked and canonicalised by the TensorFlow-free
`tfopt.models.spec`.

Recipe grammar (one recipe = steps joined by "+", applied left to right to a trained baseline):

  none                         the trained baseline itself
  prune_global:S1,S2,...       the paper's iterative global L1 magnitude series; each sparsity
                               is one trial, fine-tuned from the previous step (S in (0, 1))
  prune_layer:S1,S2,...        the same series with per-layer (tfmot layerwise) allocation
  prune_poly:S                 tfmot PolynomialDecay to final sparsity S, fine-tuned
  prune_const:S                tfmot ConstantSparsity S, fine-tuned
  qat                          quantization-aware training (pruning-preserving after pruning)
  ocnna:k=K[,scope=layer|global]        OCNNA filter pruning at percentile K (0 <= K < 100)
  ocnna_l1:k=K / ocnna_random:k=K       the same surgery with L1-norm / random filter ranking
  kd[:t=T,alpha=A]             knowledge distillation: alone, the variant is trained from scratch
                               with `kd_teacher`'s baseline as teacher; after another step, it
                               fine-tunes with the step's parent model as teacher

Examples: `prune_global:0.2,0.36,0.488,0.59`, `prune_global:0.2,0.36,0.488,0.59+qat`,
`ocnna:k=30+kd`, `prune_const:0.5+qat`.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
from typing import Any

from tfopt.models import spec as _spec  # TensorFlow-free: the variant-spec grammar

# The zoo's ids (common brief, issue 3). A test keeps this equal to tfopt.models.list_variants().
KNOWN_VARIANT_IDS: tuple[str, ...] = (
    *(f"resnet101_v{i:02d}" for i in range(1, 16)),
    *(f"vgg19_v{i:02d}" for i in range(1, 14)),
    "vgg16",
    "resnet50",
    "densenet40",
    "mobilenet_v1",
    "tiny_cnn",
)

RECIPE_STEP_KINDS: tuple[str, ...] = (
    "none",
    "prune_global",
    "prune_layer",
    "prune_poly",
    "prune_const",
    "qat",
    "ocnna",
    "ocnna_l1",
    "ocnna_random",
    "kd",
)
PRUNE_SERIES_KINDS = ("prune_global", "prune_layer")
PRUNE_KINDS = (*PRUNE_SERIES_KINDS, "prune_poly", "prune_const")
OCNNA_KINDS = ("ocnna", "ocnna_l1", "ocnna_random")
OCNNA_CRITERIA = {"ocnna": "ocnna", "ocnna_l1": "l1", "ocnna_random": "random"}

CONVERT_MODES: tuple[str, ...] = ("float32", "float16", "dynamic", "int8")
DATASETS: tuple[str, ...] = ("fashion_mnist", "cifar10", "cifar100", "imagenet2012", "synthetic")
OPTIMIZERS: tuple[str, ...] = ("sgd_onecycle", "sgd_plateau", "adam", "sgd")  # tfopt.train
EXECUTORS: tuple[str, ...] = ("local", "ray")
METRICS: tuple[str, ...] = ("params", "flops", "bytes", "latency")


def _unknown(what: str, value: Any, allowed) -> ValueError:
    allowed = list(allowed)
    near = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    return ValueError(f"{what}={value!r} is unknown{hint}; allowed: {', '.join(map(str, allowed))}")


def _fmt_float(x: float) -> str:
    return f"{x:g}"


# --------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RecipeStep:
    """One step of a recipe.

    Attributes:
      kind: One of RECIPE_STEP_KINDS.
      sparsities: Target sparsities (fractions of prunable weights set to zero) for pruning kinds;
        a series for prune_global / prune_layer, exactly one value for prune_poly / prune_const.
      k: OCNNA percentile (filters scoring below the k-th percentile are removed), 0 <= k < 100.
      scope: OCNNA percentile scope, "layer" or "global".
      temperature: Distillation temperature T (kd).
      alpha: Weight of the distillation term (1 - alpha on the hard-label loss) (kd).
    """

    kind: str
    sparsities: tuple[float, ...] = ()
    k: float | None = None
    scope: str = "layer"
    temperature: float = 4.0
    alpha: float = 0.9

    def __post_init__(self):
        if self.kind not in RECIPE_STEP_KINDS:
            raise _unknown("recipe step", self.kind, RECIPE_STEP_KINDS)
        if self.kind in PRUNE_KINDS:
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
        elif self.sparsities:
            raise ValueError(f"recipe {self.kind!r} takes no sparsities, got {self.sparsities}")
        if self.kind in OCNNA_KINDS:
            if self.k is None or not (0.0 <= self.k < 100.0):
                raise ValueError(
                    f"recipe {self.kind!r} needs k in [0, 100), e.g. {self.kind}:k=30;"
                    f" got k={self.k!r}"
                )
            if self.scope not in ("layer", "global"):
                raise _unknown(f"{self.kind} scope", self.scope, ("layer", "global"))
        if self.kind == "kd":
            if not self.temperature > 0:
                raise ValueError(f"kd temperature t={self.temperature!r}; expected > 0")
            if not 0.0 <= self.alpha <= 1.0:
                raise ValueError(f"kd alpha={self.alpha!r}; expected 0 <= alpha <= 1")

    def spec(self) -> str:
        """Canonical text form, parseable by `parse_recipe`."""
        if self.kind in PRUNE_KINDS:
            return f"{self.kind}:" + ",".join(_fmt_float(s) for s in self.sparsities)
        if self.kind in OCNNA_KINDS:
            extra = "" if self.scope == "layer" else f",scope={self.scope}"
            return f"{self.kind}:k={_fmt_float(self.k)}{extra}"
        if self.kind == "kd" and (self.temperature, self.alpha) != (4.0, 0.9):
            return f"kd:t={_fmt_float(self.temperature)},alpha={_fmt_float(self.alpha)}"
        return self.kind


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
        if kinds.count("qat") > 1:
            raise ValueError(f"recipe {self.spec()!r}: qat appears twice")
        if "qat" in kinds and kinds[-1] not in ("qat",):
            raise ValueError(
                f"recipe {self.spec()!r}: qat must be the last step (a QAT model is only converted)"
            )

    def spec(self) -> str:
        return "+".join(s.spec() for s in self.steps)

    @property
    def id(self) -> str:
        """Filesystem-safe id, e.g. 'prune_global-0.2-0.36+qat' -> 'prune_global_0.2_0.36__qat'."""
        return "__".join(re.sub(r"[^A-Za-z0-9.]+", "_", s.spec()).strip("_") for s in self.steps)

    @property
    def is_baseline(self) -> bool:
        return self.steps[0].kind == "none"

    def expand(self) -> list["Recipe"]:
        """The recipe and every prefix whose result it is built from, in dependency order.

        A pruning series `prune_global:0.2,0.36` expands to `prune_global:0.2` (one trial) and
        `prune_global:0.2,0.36` (fine-tuned from the first); the baseline `none` is implicit.
        """
        out: list[Recipe] = []
        done: list[RecipeStep] = []
        for step in self.steps:
            if step.kind in PRUNE_SERIES_KINDS:
                for i in range(1, len(step.sparsities) + 1):
                    sub = dataclasses.replace(step, sparsities=step.sparsities[:i])
                    out.append(Recipe(tuple(done) + (sub,)))
            else:
                out.append(Recipe(tuple(done) + (step,)))
            done.append(step)
        return out

    def parent(self) -> "Recipe | None":
        """The recipe whose output model this one starts from (None: the baseline 'none')."""
        if self.is_baseline:
            return None
        last = self.steps[-1]
        if last.kind in PRUNE_SERIES_KINDS and len(last.sparsities) > 1:
            return Recipe(
                self.steps[:-1] + (dataclasses.replace(last, sparsities=last.sparsities[:-1]),)
            )
        if len(self.steps) == 1:
            return NONE_RECIPE
        return Recipe(self.steps[:-1])

    @property
    def last(self) -> RecipeStep:
        return self.steps[-1]


def _parse_value(kind: str, key: str, raw: str) -> float:
    try:
        val = float(raw)
    except ValueError:
        raise ValueError(f"recipe {kind!r}: {key}={raw!r} is not a number") from None
    if not math.isfinite(val):
        raise ValueError(f"recipe {kind!r}: {key}={raw!r} is not finite")
    return val


def parse_step(text: str) -> RecipeStep:
    """Parse one step, e.g. 'prune_poly:0.8', 'ocnna:k=30', 'kd:t=4,alpha=0.9'."""
    text = text.strip()
    kind, _, args = text.partition(":")
    kind = kind.strip().lower()
    if kind not in RECIPE_STEP_KINDS:
        raise _unknown("recipe", kind or text, RECIPE_STEP_KINDS)
    parts = [a.strip() for a in args.split(",") if a.strip()] if args else []
    if kind in PRUNE_KINDS:
        if not parts:
            raise ValueError(f"recipe {kind!r} needs sparsities, e.g. {kind}:0.5")
        return RecipeStep(kind, sparsities=tuple(_parse_value(kind, "sparsity", p) for p in parts))
    kwargs: dict[str, Any] = {}
    allowed = {
        "ocnna": ("k", "scope"),
        "ocnna_l1": ("k", "scope"),
        "ocnna_random": ("k", "scope"),
        "kd": ("t", "alpha"),
    }.get(kind, ())
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
            raise _unknown(f"recipe {kind} argument", key, allowed or ["(no arguments)"])
        if key == "scope":
            kwargs["scope"] = raw.strip()
        elif key == "t":
            kwargs["temperature"] = _parse_value(kind, key, raw)
        else:
            kwargs[key] = _parse_value(kind, key, raw)
    if kind in OCNNA_KINDS and "k" not in kwargs:
        raise ValueError(f"recipe {kind!r} needs k, e.g. {kind}:k=30")
    return RecipeStep(kind, **kwargs)


def parse_recipe(text: str) -> Recipe:
    """Parse a recipe: steps joined by '+', e.g. 'prune_global:0.2,0.36+qat'."""
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


NONE_RECIPE = Recipe((RecipeStep("none"),))


# --------------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------------

# Fields that only say how/where to run; they may change between a run and its resume.
EXECUTION_FIELDS = (
    "workdir",
    "executor",
    "ray_address",
    "ray_gpus_per_trial",
    "overwrite",
    "variants",
    "recipes",
    "compress_variants",
    "verbose",
)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything an ablation run depends on. Built by `flags.config_from_flags()`.

    Units: epochs and counts are integers; learning rates per step; sparsities and `val_fraction`
    are fractions; `latency_runs` is a number of interpreter invocations.
    """

    variants: tuple[str, ...]
    recipes: tuple[str, ...]  # canonical recipe specs (see parse_recipe)
    workdir: str
    compress_variants: tuple[str, ...] | None = None  # variants that get the non-'none' recipes
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    image_size: int | None = None  # resize to image_size x image_size; None keeps native size
    to_rgb: bool = False  # grey -> 3 channels (the zoo's CIFAR stems expect 3)
    train_limit: int | None = None  # use only this many training images (None: all)
    test_limit: int | None = None  # evaluate on this many test images (None: all)
    width_multiplier: float = 1.0
    train_epochs: int = 150
    train_batch_size: int = 128
    train_optimizer: str = "sgd_onecycle"
    train_max_lr: float = 0.0125
    train_weight_decay: float = 2e-5
    train_augment: bool = True
    seed: int = 0
    finetune_epochs: int = 1  # per pruning step / after OCNNA surgery / kd recovery
    finetune_max_lr: float = 1e-3
    finetune_optimizer: str | None = None  # None: train_optimizer
    qat_epochs: int = 1
    ocnna_images: int = 1000
    kd_teacher: str | None = None  # variant whose baseline teaches stand-alone `kd` recipes
    kd_epochs: int | None = None  # None: train_epochs
    convert_modes: tuple[str, ...] = ("float32", "int8")
    calibration_samples: int = 200
    eval_tflite: bool = True  # accuracy of every converted model on the test split
    eval_latency: bool = True
    latency_runs: int = 50
    eval_micro: bool = True  # run int8 models on TensorFlow Lite Micro
    export: bool = True  # firmware export (.tflite, .cc/.h, .json) per trial
    reference_variant: str | None = None  # accuracy drops are also reported vs this baseline
    executor: str = "local"
    ray_address: str | None = None
    ray_gpus_per_trial: float | None = None  # None: 1 if the cluster has GPUs, else 0
    overwrite: bool = False
    verbose: int = 1

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        if not self.variants:
            raise ValueError(
                "variants is empty; give at least one zoo id, e.g. --variants=tiny_cnn"
            )
        set_("variants", tuple(check_variant_id(v, "variants") for v in self.variants))
        if len(set(self.variants)) != len(self.variants):
            raise ValueError(f"variants={list(self.variants)} lists an id twice")
        if self.compress_variants is not None:
            set_(
                "compress_variants",
                tuple(check_variant_id(v, "compress_variants") for v in self.compress_variants),
            )
            for v in self.compress_variants:
                if v not in self.variants:
                    raise ValueError(
                        f"compress_variants: {v!r} is not in variants={list(self.variants)}"
                    )
        if not self.recipes:
            raise ValueError("recipes is empty; e.g. --recipes=none,qat")
        specs = []
        for r in self.recipes:
            try:
                specs.append(parse_recipe(r).spec())
            except ValueError as err:
                raise ValueError(f"--recipes: {err}") from None
        set_("recipes", tuple(dict.fromkeys(specs)))
        check_dataset(self.dataset, self.data_dir)
        _positive_int("train_epochs", self.train_epochs)
        _positive_int("train_batch_size", self.train_batch_size)
        for name in ("train_limit", "test_limit", "image_size", "kd_epochs"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.image_size is not None and self.image_size < 8:
            raise ValueError(f"image_size={self.image_size!r}; expected >= 8 (pixels)")
        for name in ("finetune_epochs", "qat_epochs"):
            _nonneg_int(name, getattr(self, name))
        _positive_int("ocnna_images", self.ocnna_images)
        _positive_int("calibration_samples", self.calibration_samples)
        _positive_int("latency_runs", self.latency_runs)
        for name in ("width_multiplier", "train_max_lr", "finetune_max_lr"):
            val = getattr(self, name)
            if not (isinstance(val, (int, float)) and math.isfinite(val) and val > 0):
                raise ValueError(f"{name}={val!r}; expected a number > 0")
        if self.width_multiplier > 8:
            raise ValueError(f"width_multiplier={self.width_multiplier!r}; expected 0 < w <= 8")
        if not (isinstance(self.train_weight_decay, (int, float)) and self.train_weight_decay >= 0):
            raise ValueError(f"train_weight_decay={self.train_weight_decay!r}; expected >= 0")
        if self.train_optimizer not in OPTIMIZERS:
            raise _unknown("train_optimizer", self.train_optimizer, OPTIMIZERS)
        if self.finetune_optimizer is not None and self.finetune_optimizer not in OPTIMIZERS:
            raise _unknown("finetune_optimizer", self.finetune_optimizer, OPTIMIZERS)
        modes = tuple(dict.fromkeys(self.convert_modes))
        for m in modes:
            if m not in CONVERT_MODES:
                raise _unknown("convert_modes", m, CONVERT_MODES)
        set_("convert_modes", modes)
        if self.eval_micro and "int8" not in modes:
            raise ValueError(
                "eval_micro=True needs 'int8' in convert_modes (TFLite Micro runs "
                "int8 models); add it or pass --noeval_micro"
            )
        if any(parse_recipe(r).last.kind == "qat" for r in self.recipes) and "int8" not in modes:
            raise ValueError("a 'qat' recipe needs 'int8' in convert_modes")
        if self.executor not in EXECUTORS:
            raise _unknown("executor", self.executor, EXECUTORS)
        if self.ray_address and self.executor != "ray":
            raise ValueError(
                f"ray_address={self.ray_address!r} given but executor="
                f"{self.executor!r}; add --executor=ray"
            )
        if self.ray_gpus_per_trial is not None and self.ray_gpus_per_trial < 0:
            raise ValueError(f"ray_gpus_per_trial={self.ray_gpus_per_trial!r}; expected >= 0")
        if self.kd_teacher is not None:
            set_("kd_teacher", check_variant_id(self.kd_teacher, "kd_teacher"))
        standalone_kd = any(parse_recipe(r).steps[0].kind == "kd" for r in self.recipes)
        if standalone_kd and self.kd_teacher is None:
            raise ValueError(
                "a recipe starting with 'kd' needs --kd_teacher=VARIANT (whose "
                "trained baseline is the teacher)"
            )
        if self.reference_variant is not None:
            set_("reference_variant", check_variant_id(self.reference_variant, "reference_variant"))
            if self.reference_variant not in self.variants:
                raise ValueError(
                    f"reference_variant={self.reference_variant!r} is not in "
                    f"variants={list(self.variants)}"
                )

    # ---- derived ------------------------------------------------------------------------
    def variants_for(self, recipe: str) -> tuple[str, ...]:
        """The variants a recipe runs on: all for 'none', else `compress_variants` (or all)."""
        if parse_recipe(recipe).is_baseline or self.compress_variants is None:
            return self.variants
        return self.compress_variants

    @property
    def reference(self) -> str:
        return self.reference_variant or self.variants[0]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ExperimentConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"config keys {unknown} are unknown; allowed: {sorted(fields)}")
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        return cls(**kw)

    def fingerprint(self) -> str:
        """Hash of every field that changes a trial's result (not where/how it runs, nor which
        trials make up the grid): a workdir accepts new trials only under the same fingerprint."""
        d = {k: v for k, v in self.to_dict().items() if k not in EXECUTION_FIELDS}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def trial_settings(self) -> dict:
        return {k: v for k, v in self.to_dict().items() if k not in EXECUTION_FIELDS}


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}; expected an integer >= 1")


def _nonneg_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r}; expected an integer >= 0")


def check_variant_id(variant_id: str, flag: str = "variants") -> str:
    """The canonical id of a zoo id or a technique combination (`resnet101[block=ghost,...]`,
    grammar: tfopt.models.spec); a one-line ValueError otherwise (TensorFlow-free)."""
    if _spec.is_combination(variant_id):
        try:
            return _spec.canonical_spec(variant_id)
        except ValueError as err:
            raise ValueError(f"{flag}: {err}") from None
    if variant_id not in KNOWN_VARIANT_IDS:
        near = difflib.get_close_matches(str(variant_id), KNOWN_VARIANT_IDS, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ValueError(
            f"{flag}: unknown variant {variant_id!r}{hint} (list them: python -m tfopt.models "
            "list; or combine techniques, e.g. resnet101[block=ghost,attention=se])"
        )
    return variant_id


def check_dataset(source: str, data_dir: str | None = None) -> None:
    """TensorFlow-free check that a data source exists (see tfopt.data.load for the sources)."""
    if not source:
        raise ValueError(
            f"dataset={source!r} is missing; e.g. --dataset=fashion_mnist, cifar10, "
            "folder:PATH, synthetic"
        )
    if source.startswith("folder:"):
        path = source[len("folder:") :]
        if not os.path.isdir(path):
            raise ValueError(f"dataset={source!r}: folder {path!r} does not exist")
        return
    if source in DATASETS or source.startswith("synthetic:"):
        return
    # Any other TFDS name must already be prepared in the data dir (no downloads here).
    name = source.split(":", 1)[0].split("/", 1)[0]
    roots = [data_dir] if data_dir else []
    roots += [os.environ.get("TFDS_DATA_DIR", ""), os.path.expanduser("~/tensorflow_datasets")]
    if re.fullmatch(r"[a-z0-9_]+", name) and any(
        r and os.path.isdir(os.path.join(r, name)) for r in roots
    ):
        return
    raise _unknown("dataset", source, (*DATASETS, "folder:PATH", "<prepared tfds name>"))
