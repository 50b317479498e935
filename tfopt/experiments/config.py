"""`ExperimentConfig`: the frozen, validated configuration of an ablation run (the whole grid).

Everything here is TensorFlow-free on purpose: a bad flagfile must fail in well under a second,
before TensorFlow (about 5 s to import) is loaded. The closed sets of allowed values live in
`tfopt.core.choices`, the recipe grammar in `tfopt.core.recipe` (both re-exported here). Variant
ids are checked by `check_variant_id` alone -- the one place to swap for the registry's
TF-free variant table; technique combinations such as `resnet101[block=ghost,attention=se]`
are checked and canonicalised by the TensorFlow-free `tfopt.models.spec`.

A config is validated once, when it is built (`flags.config_from_flags`); the driver then hands
the object itself to every trial.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import re
from typing import Mapping

from tfopt.core.choices import (  # noqa: F401  (re-exported)
    CALIBRATIONS,
    CONVERT_MODES,
    DATASETS,
    EXECUTORS,
    METRICS,
    OCNNA_CRITERIA,
    OCNNA_KINDS,
    OPTIMIZERS,
    PRUNE_KINDS,
    PRUNE_SERIES_KINDS,
    RECIPE_STEP_KINDS,
    close_matches,
    unknown as _unknown,
)
from tfopt.core.recipe import (  # noqa: F401  (re-exported)
    NONE_RECIPE,
    Recipe,
    RecipeStep,
    parse_recipe,
    parse_step,
    split_recipe_list,
)
from tfopt.core.variants import VARIANT_IDS
from tfopt.models import spec as _spec  # TensorFlow-free: the variant-spec grammar

# The zoo's ids, defined once in tfopt.core.variants (TensorFlow-free). Only `check_variant_id`
# reads it.
KNOWN_VARIANT_IDS: tuple[str, ...] = VARIANT_IDS


# --------------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------------

# Fields that only say how/where to run; they may change between a run and its resume.
EXECUTION_FIELDS = (
    "workdir",
    "executor",
    "workers",
    "ray_address",
    "ray_gpus_per_trial",
    "overwrite",
    "variants",
    "recipes",
    "compress_variants",
    "verbose",
    "seeds",  # which seeds make up the grid, like variants/recipes: adding one extends a run
    "board",  # the board pre-pass only chooses which trials run (skips are recorded)
    "board_reserve",
    "export_metadata",  # one more file beside the firmware export; no result changes
)
# Fields added after workdirs existed: left out of the fingerprint while unset (None), so an
# older workdir still resumes.
OPTIONAL_FIELDS = ("variant_widths", "finetune_limit", "calibration")


# The ExperimentConfig fields that change what a trial's data holds (tfopt.experiments.trial_data
# reloads the data when one of them differs).
DATA_FIELDS = (
    "dataset",
    "data_dir",
    "image_size",
    "to_rgb",
    "train_limit",
    "val_fraction",
    "workdir",
    "test_limit",
    "train_batch_size",
    "train_augment",
    "seed",
    "ocnna_images",
    "calibration_samples",
)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything an ablation run depends on. Built by `flags.config_from_flags()`.

    Units: epochs and counts are integers; learning rates per step; sparsities and `val_fraction`
    are fractions; `latency_runs` is a number of interpreter invocations.
    """

    variants: tuple[str, ...]
    recipes: tuple[Recipe, ...]  # recipe specs (str) are parsed into Recipe objects once
    workdir: str
    compress_variants: tuple[str, ...] | None = None  # variants that get the non-'none' recipes
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    image_size: int | None = None  # resize to image_size x image_size; None keeps native size
    to_rgb: bool = False  # grey -> 3 channels (the zoo's CIFAR stems expect 3)
    train_limit: int | None = None  # use only this many training images (None: all)
    test_limit: int | None = None  # evaluate on this many test images (None: all)
    width_multiplier: float = 1.0
    # Per-variant width (variant -> multiplier); variants not named use width_multiplier.
    variant_widths: Mapping[str, float] | None = None
    train_epochs: int = 150
    train_batch_size: int = 128
    train_optimizer: str = "sgd_onecycle"
    train_max_lr: float = 0.0125
    train_weight_decay: float = 2e-5
    train_augment: bool = True
    seed: int = 0  # the seed of this config's trials (a per-seed copy: `for_seed`)
    seeds: tuple[int, ...] | None = None  # every trial runs once per seed; None: (seed,)
    val_fraction: float = 1 / 11  # held-out tail of the (limited) train split; 0: no held-out
    train_patience: int = 3  # baseline early stopping on the held-out accuracy; 0: off
    finetune_epochs: int = 1  # cap of every fine-tuning fit (pruning step, control, OCNNA, kd)
    finetune_patience: int = 2  # its early-stopping patience (plateau recipe, issue #14)
    finetune_max_lr: float = 1e-3
    finetune_optimizer: str | None = None  # None: train_optimizer
    # Images per fine-tuning / QAT epoch (a seeded stream of the train split, not a fixed
    # subset); None: the whole train split. The baseline always trains on all of it.
    finetune_limit: int | None = None
    qat_epochs: int = 1
    ocnna_images: int = 1000
    kd_teacher: str | None = None  # variant whose baseline teaches stand-alone `kd` recipes
    kd_epochs: int | None = None  # None: train_epochs
    convert_modes: tuple[str, ...] = ("float32", "int8")
    calibration_samples: int = 200
    # int8 activation ranges (tfopt.tflite.calibrate.CALIBRATIONS); None: convert()'s default,
    # "percentile" (None keeps workdirs made before the field resumable).
    calibration: str | None = None
    eval_tflite: bool = True  # accuracy of every converted model on the test split
    eval_latency: bool = True
    latency_runs: int = 50
    eval_micro: bool = True  # run int8 models on TensorFlow Lite Micro
    export: bool = True  # firmware export (.tflite, .cc/.h, .json) per trial
    export_metadata: bool = True  # with export: also NAME.mediapipe.tflite (labels, mean/std)
    board: str | None = None  # fit pre-pass: skip the variants that cannot fit this board
    board_reserve: float = 0.2  # with board: fraction of SRAM and flash kept for the app
    reference_variant: str | None = None  # accuracy drops are also reported vs this baseline
    executor: str = "local"
    workers: int = 2  # executor=processes: trials run at once (one worker process each)
    ray_address: str | None = None
    ray_gpus_per_trial: float | None = None  # None: 1 if the cluster has GPUs, else 0
    overwrite: bool = False
    verbose: int = 1

    def __post_init__(self):
        self._check_grid()
        check_dataset(self.dataset, self.data_dir)
        self._check_numbers()
        self._check_conversion_and_execution()
        self._check_roles()
        self._check_widths_and_board()

    def _set(self, name, value) -> None:
        object.__setattr__(self, name, value)  # frozen: canonical forms are set once, here

    def _check_grid(self) -> None:
        if not self.variants:
            raise ValueError(
                "variants is empty; give at least one zoo id, e.g. --variants=tiny_cnn"
            )
        self._set("variants", tuple(check_variant_id(v, "variants") for v in self.variants))
        if len(set(self.variants)) != len(self.variants):
            raise ValueError(f"variants={list(self.variants)} lists an id twice")
        if self.compress_variants is not None:
            cv = tuple(check_variant_id(v, "compress_variants") for v in self.compress_variants)
            self._set("compress_variants", cv)
            for v in cv:
                if v not in self.variants:
                    raise ValueError(
                        f"compress_variants: {v!r} is not in variants={list(self.variants)}"
                    )
        if not self.recipes:
            raise ValueError("recipes is empty; e.g. --recipes=none,qat")
        parsed = {}
        for r in self.recipes:
            try:
                recipe = parse_recipe(r)  # parsed once; the config holds Recipe objects
            except ValueError as err:
                raise ValueError(f"--recipes: {err}") from None
            parsed.setdefault(recipe.spec(), recipe)
        self._set("recipes", tuple(parsed.values()))

    def _check_numbers(self) -> None:
        _positive_int("train_epochs", self.train_epochs)
        _positive_int("train_batch_size", self.train_batch_size)
        for name in ("train_limit", "test_limit", "image_size", "kd_epochs", "finetune_limit"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.image_size is not None and self.image_size < 8:
            raise ValueError(f"image_size={self.image_size!r}; expected >= 8 (pixels)")
        for name in ("finetune_epochs", "qat_epochs", "train_patience", "finetune_patience"):
            _nonneg_int(name, getattr(self, name))
        self._check_seeds()
        vf = self.val_fraction
        if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0 <= vf < 0.5:
            raise ValueError(f"val_fraction={vf!r}; expected a fraction 0 <= f < 0.5 of the train "
                             "split (0: no held-out split, no early stopping)")
        for name in ("ocnna_images", "calibration_samples", "latency_runs"):
            _positive_int(name, getattr(self, name))
        if self.calibration is not None and self.calibration not in CALIBRATIONS:
            raise _unknown("calibration", self.calibration, CALIBRATIONS)
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

    def _check_seeds(self) -> None:
        _nonneg_int("seed", self.seed)
        seeds = (self.seed,) if self.seeds is None else tuple(self.seeds)
        if not seeds:
            raise ValueError("seeds is empty; e.g. --seeds=0,1,2")
        for s in seeds:
            _nonneg_int("seeds", s)
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds={list(seeds)} lists a seed twice")
        self._set("seeds", seeds)

    def for_seed(self, seed: int) -> "ExperimentConfig":
        """This config for one seed's trials (`seed` seeds init, data order, OCNNA, calibration);
        a copy, not re-validated (the seed was checked with the rest)."""
        if seed not in self.seeds:
            raise ValueError(f"seed={seed!r} is not one of seeds={list(self.seeds)}")
        twin = copy.copy(self)
        object.__setattr__(twin, "seed", seed)
        object.__setattr__(twin, "seeds", (seed,))
        return twin

    def _check_conversion_and_execution(self) -> None:
        modes = tuple(dict.fromkeys(self.convert_modes))
        for m in modes:
            if m not in CONVERT_MODES:
                raise _unknown("convert_modes", m, CONVERT_MODES)
        self._set("convert_modes", modes)
        if self.eval_micro and "int8" not in modes:
            raise ValueError(
                "eval_micro=True needs 'int8' in convert_modes (TFLite Micro runs "
                "int8 models); add it or pass --noeval_micro"
            )
        if any(r.last.kind == "qat" for r in self.recipes) and "int8" not in modes:
            raise ValueError("a 'qat' recipe needs 'int8' in convert_modes")
        if self.executor not in EXECUTORS:
            raise _unknown("executor", self.executor, EXECUTORS)
        _positive_int("workers", self.workers)
        if self.ray_address and self.executor != "ray":
            raise ValueError(
                f"ray_address={self.ray_address!r} given but executor="
                f"{self.executor!r}; add --executor=ray"
            )
        if self.ray_gpus_per_trial is not None and self.ray_gpus_per_trial < 0:
            raise ValueError(f"ray_gpus_per_trial={self.ray_gpus_per_trial!r}; expected >= 0")

    def _check_roles(self) -> None:
        if self.kd_teacher is not None:
            self._set("kd_teacher", check_variant_id(self.kd_teacher, "kd_teacher"))
        if any(r.steps[0].kind == "kd" for r in self.recipes) and self.kd_teacher is None:
            raise ValueError(
                "a recipe starting with 'kd' needs --kd_teacher=VARIANT (whose "
                "trained baseline is the teacher)"
            )
        if self.reference_variant is not None:
            ref = check_variant_id(self.reference_variant, "reference_variant")
            self._set("reference_variant", ref)
            if ref not in self.variants:
                raise ValueError(
                    f"reference_variant={ref!r} is not in variants={list(self.variants)}"
                )

    def _check_widths_and_board(self) -> None:
        """variant_widths: canonical variant ids that are in `variants`, 0 < width <= 8; board:
        a known profile (tfopt.tflite.boards, TensorFlow-free)."""
        if self.variant_widths is not None:
            self._set("variant_widths", parse_variant_widths(self.variant_widths, self.variants))
        if self.board is not None:
            from tfopt.tflite import boards

            boards.get_board(self.board)
            self._set("board_reserve", boards.check_reserve(self.board_reserve))

    # ---- derived ------------------------------------------------------------------------
    def width_of(self, variant: str) -> float:
        """The width multiplier `variant` is built with (--variant_widths, else
        --width_multiplier)."""
        return float((self.variant_widths or {}).get(variant, self.width_multiplier))

    def variants_for(self, recipe: Recipe) -> tuple[str, ...]:
        """The variants a recipe runs on: all for 'none', else `compress_variants` (or all)."""
        if recipe.is_baseline or self.compress_variants is None:
            return self.variants
        return self.compress_variants

    @property
    def reference(self) -> str:
        return self.reference_variant or self.variants[0]

    def to_dict(self) -> dict:
        """Plain JSON types; recipes as their canonical specs."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["recipes"] = [r.spec() for r in self.recipes]
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ExperimentConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"config keys {unknown} are unknown; allowed: {sorted(fields)}")
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        if isinstance(kw.get("variant_widths"), tuple):  # [[variant, width], ...] is accepted too
            kw["variant_widths"] = dict(kw["variant_widths"])
        return cls(**kw)

    def finetune_steps(self, train_examples: int) -> int | None:
        """Batches per fine-tuning epoch under `finetune_limit` (images), or None: a whole
        epoch of the `train_examples` images."""
        limit = self.finetune_limit
        if limit is None or limit >= train_examples:
            return None
        return max(1, -(-limit // self.train_batch_size))

    def finetune_examples(self, train_examples: int) -> int:
        """Images one fine-tuning epoch fits: `train_examples`, capped by `finetune_limit`."""
        steps = self.finetune_steps(train_examples)
        return train_examples if steps is None else steps * self.train_batch_size

    def fingerprint(self) -> str:
        """Hash of every field that changes a trial's result (not where/how it runs, nor which
        trials make up the grid): a workdir accepts new trials only under the same fingerprint."""
        d = self.trial_settings()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def trial_settings(self) -> dict:
        return {k: v for k, v in self.to_dict().items() if k not in EXECUTION_FIELDS
                and not (k in OPTIONAL_FIELDS and v is None)}


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}; expected an integer >= 1")


def _nonneg_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r}; expected an integer >= 0")


def parse_variant_widths(value, variants) -> dict[str, float]:
    """{variant: width} from a mapping or 'VARIANT:WIDTH' items (`--variant_widths=vgg19_v04:0.25,
    resnet101_v13:0.5`); each variant must be one of `variants`. One-line ValueError otherwise."""
    items = value.items() if isinstance(value, Mapping) else []
    if not isinstance(value, Mapping):
        for item in _spec.split_variant_list(value):
            variant, sep, width = str(item).rpartition(":")
            if not sep or not variant:
                raise ValueError(f"variant_widths: {item!r} is not VARIANT:WIDTH; e.g. "
                                 "--variant_widths=vgg19_v04:0.25,resnet101_v13:0.5")
            items.append((variant, width))
    out: dict[str, float] = {}
    for variant, width in items:
        variant = check_variant_id(variant, "variant_widths")
        try:
            w = float(width)
        except (TypeError, ValueError):
            w = float("nan")
        if not (math.isfinite(w) and 0 < w <= 8):
            raise ValueError(f"variant_widths: {variant}:{width!r}; expected 0 < width <= 8")
        if variant not in variants:
            raise ValueError(f"variant_widths: {variant!r} is not in variants={list(variants)}")
        if variant in out and out[variant] != w:
            raise ValueError(f"variant_widths: {variant!r} is given two widths")
        out[variant] = w
    return out


def check_variant_id(variant_id: str, flag: str = "variants") -> str:
    """The canonical id of a zoo id or a technique combination (`resnet101[block=ghost,...]`,
    grammar: tfopt.models.spec); a one-line ValueError otherwise (TensorFlow-free)."""
    if _spec.is_combination(variant_id):
        try:
            return _spec.canonical_spec(variant_id)
        except ValueError as err:
            raise ValueError(f"{flag}: {err}") from None
    if variant_id not in KNOWN_VARIANT_IDS:
        near = close_matches(variant_id, KNOWN_VARIANT_IDS)
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
