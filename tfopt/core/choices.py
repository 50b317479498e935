"""Every closed set of allowed values of the experiments side, defined once.

Flag checks, configs, the trial runner, the report and the recommender import these tuples;
nothing re-declares them. TensorFlow-free.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Iterable

# Data sources with a name (plus "folder:PATH", "synthetic:...", prepared TFDS names).
DATASETS: tuple[str, ...] = ("fashion_mnist", "cifar10", "cifar100", "imagenet2012", "synthetic")
# Training recipes of tfopt.train (TrainConfig.optimizer).
OPTIMIZERS: tuple[str, ...] = ("sgd_onecycle", "sgd_plateau", "adam", "sgd")
# What the plateau and early-stopping callbacks watch: the train loss (the paper's choice) or a
# metric of the validation data passed to `fit` (never the test split).
MONITORS: tuple[str, ...] = ("loss", "val_accuracy", "val_loss")
# TFLite conversion modes of tfopt.tflite.convert.
CONVERT_MODES: tuple[str, ...] = ("float32", "float16", "dynamic", "int8")
# Where int8 activation ranges come from (tfopt.tflite.calibrate).
CALIBRATIONS: tuple[str, ...] = ("converter", "minmax", "percentile")
# How the trials of a grid run.
EXECUTORS: tuple[str, ...] = ("local", "processes", "ray")
# What "smallest" means for the recommender.
METRICS: tuple[str, ...] = ("params", "flops", "bytes", "latency")

# Recipe step kinds (grammar: tfopt.core.recipe).
PRUNE_SERIES_KINDS: tuple[str, ...] = ("prune_global", "prune_layer")
PRUNE_SCHEDULE_KINDS: tuple[str, ...] = ("prune_poly", "prune_const")
PRUNE_KINDS: tuple[str, ...] = (*PRUNE_SERIES_KINDS, *PRUNE_SCHEDULE_KINDS)
OCNNA_KINDS: tuple[str, ...] = ("ocnna", "ocnna_l1", "ocnna_random")
OCNNA_CRITERIA: dict[str, str] = {"ocnna": "ocnna", "ocnna_l1": "l1", "ocnna_random": "random"}
OCNNA_SCOPES: tuple[str, ...] = ("layer", "global")
# "control" (matched control, issue #14): the baseline fine-tuned N times with the fine-tuning
# recipe and no compression; the grid adds it, users may also list `control:N`.
RECIPE_STEP_KINDS: tuple[str, ...] = ("none", *PRUNE_KINDS, "qat", *OCNNA_KINDS, "kd", "control")

# Outcome of a trial, a conversion, a TFLite Micro run.
TRIAL_STATUSES: tuple[str, ...] = ("ok", "failed", "skipped")  # skipped: --board pre-pass
MICRO_STATUSES: tuple[str, ...] = ("ok", "failed", "skipped", "unavailable")


def _numbers_as_ints(text: str) -> str:
    """`resnet101_v01` -> `resnet101_v1`: zero padding does not make a different name."""
    return re.sub(r"\d+", lambda m: str(int(m.group())), text.lower())


def close_matches(value: Any, allowed: Iterable, n: int = 3) -> list[str]:
    """Up to `n` allowed values close to `value`: first those equal to it but for zero padding
    or case (`resnet101_v1` -> `resnet101_v01`), then difflib's closest."""
    allowed = [str(a) for a in allowed]
    key = _numbers_as_ints(str(value))
    same = [a for a in allowed if _numbers_as_ints(a) == key]
    near = difflib.get_close_matches(str(value), allowed, n=n, cutoff=0.5)
    return list(dict.fromkeys(same + near))[:n]


def unknown(what: str, value: Any, allowed: Iterable) -> ValueError:
    """A one-line ValueError naming the bad value, close matches and every allowed value."""
    allowed = [str(a) for a in allowed]
    near = close_matches(value, allowed)
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    return ValueError(f"{what}={value!r} is unknown{hint}; allowed: {', '.join(allowed)}")


def check(what: str, value: Any, allowed: Iterable) -> Any:
    """`value` if it is in `allowed`, else the `unknown` error."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise unknown(what, value, allowed)
    return value


# One training setting, two spellings: `python -m tfopt.train` name -> the ablation driver's name.
# Each CLI keeps its own as canonical and accepts the other as an alias (docs/ablation.md).
TRAIN_FLAG_SPELLINGS = {"epochs": "train_epochs", "batch_size": "train_batch_size",
                        "optimizer": "train_optimizer", "max_lr": "train_max_lr",
                        "weight_decay": "train_weight_decay", "augment": "train_augment",
                        "limit": "train_limit"}
